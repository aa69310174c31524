"""An Ollama ``Modelfile`` beside a GGUF file: ``X.gguf`` -> ``X.Modelfile`` (then ``ollama create NAME -f X.Modelfile``).

The Modelfile holds ``FROM ./X.gguf``, a Go-template ``TEMPLATE`` translated from the tokenizer's Jinja chat
template, ``PARAMETER stop`` lines and, when the chat template injects a default system prompt (SmolLM2's "You
are a helpful AI assistant named SmolLM ..."), that prompt as ``SYSTEM``.

The translation recognises a template by its markers (:data:`CHAT_FORMATS`): ChatML (``<|im_start|>`` /
``<|im_end|>``: SmolLM2, Qwen, our own tokenizers), Llama 3 (``<|start_header_id|>`` / ``<|eot_id|>``) and the
Mistral / Llama 2 ``[INST]`` format, each written as the template Ollama ships for that family. A template it
does not recognise (or none) is not an error: the Modelfile then gets the raw ``{{ .Prompt }}`` template and
the end-of-sequence token as its stop, and a warning is logged, because a wrong chat format is worse than none;
edit the TEMPLATE by hand for such a model.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from minillm.atomic import atomic_write_text
from minillm.errors import InputError, MissingDependencyError

logger = logging.getLogger(__name__)

SUFFIX = ".Modelfile"

CHATML_TEMPLATE = """{{- if .Messages }}
{{- range .Messages }}<|im_start|>{{ .Role }}
{{ .Content }}<|im_end|>
{{ end }}<|im_start|>assistant
{{ else }}
{{- if .System }}<|im_start|>system
{{ .System }}<|im_end|>
{{ end }}{{ if .Prompt }}<|im_start|>user
{{ .Prompt }}<|im_end|>
{{ end }}<|im_start|>assistant
{{ end }}{{ .Response }}{{ if .Response }}<|im_end|>{{ end }}"""

LLAMA3_TEMPLATE = """{{- if .Messages }}
{{- range .Messages }}<|start_header_id|>{{ .Role }}<|end_header_id|>

{{ .Content }}<|eot_id|>
{{- end }}<|start_header_id|>assistant<|end_header_id|>

{{ else }}
{{- if .System }}<|start_header_id|>system<|end_header_id|>

{{ .System }}<|eot_id|>{{ end }}{{ if .Prompt }}<|start_header_id|>user<|end_header_id|>

{{ .Prompt }}<|eot_id|>{{ end }}<|start_header_id|>assistant<|end_header_id|>

{{ end }}{{ .Response }}{{ if .Response }}<|eot_id|>{{ end }}"""

INST_TEMPLATE = """{{- if .Messages }}
{{- range $index, $_ := .Messages }}
{{- if eq .Role "user" }}
{{- if and (eq (len (slice $.Messages $index)) 1) $.System }}[INST] {{ $.System }}

{{ .Content }} [/INST]
{{- else }}[INST] {{ .Content }} [/INST]
{{- end }}
{{- else if eq .Role "assistant" }} {{ .Content }}</s>
{{- end }}
{{- end }}
{{- else }}[INST] {{ if .System }}{{ .System }}

{{ end }}{{ .Prompt }} [/INST]
{{- end }} {{ .Response }}{{ if .Response }}</s>{{ end }}"""

RAW_TEMPLATE = "{{ .Prompt }}"


@dataclass(frozen=True)
class ChatFormat:
    """A chat format Ollama knows: the markers that identify its Jinja template, its Go template, its stops."""

    name: str
    markers: tuple[str, ...]
    template: str
    stops: tuple[str, ...]


CHAT_FORMATS: tuple[ChatFormat, ...] = (
    ChatFormat("chatml", ("<|im_start|>", "<|im_end|>"), CHATML_TEMPLATE, ("<|im_start|>", "<|im_end|>")),
    ChatFormat("llama3", ("<|start_header_id|>", "<|eot_id|>"), LLAMA3_TEMPLATE,
               ("<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>")),
    ChatFormat("inst", ("[INST]", "[/INST]"), INST_TEMPLATE, ("[INST]", "[/INST]")),
)
# A default system prompt written literally inside a ChatML template, e.g. SmolLM2's.
CHATML_SYSTEM = re.compile(r"<\|im_start\|>system(?:\\n|\n)([^'\"{}+\\]+?)<\|im_end\|>")


def detect_chat_format(chat_template: str | None) -> ChatFormat | None:
    """The :class:`ChatFormat` whose markers all appear in ``chat_template`` (None when none matches).

    Example:
        >>> detect_chat_format("{{ '<|im_start|>' + m['role'] }}...{{ '<|im_end|>' }}").name
        'chatml'
    """
    if not chat_template:
        return None
    return next((f for f in CHAT_FORMATS if all(m in chat_template for m in f.markers)), None)


def default_system_prompt(chat_template: str | None) -> str | None:
    """The system prompt a ChatML template inserts when the conversation has none (None when it inserts none)."""
    match = CHATML_SYSTEM.search(chat_template or "")
    return match.group(1).strip() if match else None


def modelfile_path(gguf_path: str | os.PathLike) -> Path:
    """``X.gguf`` -> ``X.Modelfile`` in the same folder."""
    return Path(gguf_path).with_suffix(SUFFIX)


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def modelfile_text(gguf_name: str, chat_template: str | None, stop_tokens: Sequence[str] = (),
                   system: str | None = None) -> str:
    """The Modelfile for ``gguf_name`` (a file name beside it); ``stop_tokens``: e.g. the eos token."""
    found = detect_chat_format(chat_template)
    if found is None:
        logger.warning("chat template not recognised (%s); the Modelfile uses the raw {{ .Prompt }} template: "
                       "edit its TEMPLATE for chat", "none given" if not chat_template else "not ChatML, Llama 3 "
                       "or [INST]")
    template = found.template if found else RAW_TEMPLATE
    stops = list(dict.fromkeys([*(found.stops if found else ()), *(t for t in stop_tokens if t)]))
    system = system if system is not None else default_system_prompt(chat_template)
    lines = [f"# Ollama model file for {gguf_name}, written by minillm.",
             f"# Use it with: ollama create NAME -f {Path(gguf_name).with_suffix(SUFFIX).name}",
             f"FROM ./{gguf_name}", "", f'TEMPLATE """{template}"""', ""]
    if system and '"""' not in system:
        lines += [f'SYSTEM """{system}"""', ""]
    lines += [f"PARAMETER stop {_quoted(stop)}" for stop in stops]
    return "\n".join(lines) + "\n"


def write_modelfile(gguf_path: str | os.PathLike, chat_template: str | None, stop_tokens: Sequence[str] = (),
                    system: str | None = None) -> Path:
    """Write ``X.Modelfile`` beside ``X.gguf`` (atomically) and return its path; see the module docstring."""
    gguf_path = Path(gguf_path)
    if gguf_path.suffix != ".gguf":
        raise InputError(f"a Modelfile goes beside a .gguf file; got {str(gguf_path)!r}")
    path = modelfile_path(gguf_path)
    atomic_write_text(path, modelfile_text(gguf_path.name, chat_template, stop_tokens, system))
    return path


def write_modelfile_for(gguf_path: str | os.PathLike) -> Path:
    """Write the Modelfile of an existing GGUF file from its own metadata (chat template and eos token)."""
    try:
        import gguf
    except ImportError as exc:
        raise MissingDependencyError("reading GGUF metadata needs the gguf package: pip install 'minillm[gguf]'") from exc
    reader = gguf.GGUFReader(str(gguf_path))

    def value(key: str) -> object:
        field = reader.get_field(key)
        return field.contents() if field is not None else None

    tokens = reader.get_field("tokenizer.ggml.tokens")
    eos = value("tokenizer.ggml.eos_token_id")
    stop = [tokens.contents(eos)] if tokens is not None and isinstance(eos, int) else []
    template = value("tokenizer.chat_template")
    return write_modelfile(gguf_path, template if isinstance(template, str) else None, stop)
