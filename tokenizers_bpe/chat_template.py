"""Chat templates: Jinja rendered the way transformers renders them (sandboxed, trim/lstrip blocks)."""

from __future__ import annotations

import json
from datetime import datetime
from functools import lru_cache

from .errors import TokenizerInputError

#: ChatML, the default for our own tokenizers.
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def _raise_exception(message: str) -> None:
    from jinja2.exceptions import TemplateError

    raise TemplateError(message)


def _tojson(
    value: object,
    ensure_ascii: bool = False,
    indent: int | None = None,
    separators=None,
    sort_keys: bool = False,
) -> str:
    return json.dumps(
        value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys
    )


def _strftime_now(fmt: str) -> str:
    return datetime.now().strftime(fmt)


@lru_cache(maxsize=16)
def _compile(template: str):
    from jinja2 import TemplateSyntaxError
    from jinja2.ext import loopcontrols
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = _strftime_now
    try:
        return env.from_string(template)
    except TemplateSyntaxError as exc:
        raise TokenizerInputError(f"chat template is not valid Jinja ({exc.message}, line {exc.lineno})") from None


def render_chat(
    template: str,
    messages: list[dict],
    add_generation_prompt: bool = False,
    special_tokens: dict[str, str | None] | None = None,
    **kwargs: object,
) -> str:
    """Render ``messages`` (dicts with ``role`` and ``content``) with a Jinja chat template.

    ``special_tokens`` become template variables (``bos_token``, ``eos_token``, ...), as in transformers.
    A template's ``raise_exception(msg)`` surfaces as a ValueError.

    Example:
        >>> render_chat(CHATML_TEMPLATE, [{"role": "user", "content": "Hi"}], add_generation_prompt=True)
        '<|im_start|>user\\nHi<|im_end|>\\n<|im_start|>assistant\\n'
    """
    from jinja2.exceptions import TemplateError

    if not isinstance(messages, list) or not all(isinstance(m, dict) and "role" in m for m in messages):
        raise TokenizerInputError(
            f"messages must be a list of dicts with 'role' and 'content'; got {str(messages)[:80]!r}"
        )
    compiled = _compile(template)
    variables = {key: value for key, value in (special_tokens or {}).items()}
    variables.update(kwargs)
    try:
        return compiled.render(messages=messages, add_generation_prompt=add_generation_prompt, **variables)
    except TemplateError as exc:
        raise TokenizerInputError(f"chat template refused the messages: {exc}") from None
