"""The RAG prompt: numbered passages and the question, rendered with the tokenizer's chat template when it has one,
and fitted into the model's context in tokens.

Layout (the user turn of a chat, or plain text after the instructions when the tokenizer has no template)::

    Sources:
    [1] <title>: <passage text>

    [2] <passage text>

    Question: <question>

    Answer from the sources above and cite the ones you use as [1], [2].

:func:`fit_prompt` counts tokens of the *rendered* prompt (template, instructions and all): the question with the
instructions must fit ``context - max_new_tokens`` or it is an :class:`~minillm.errors.InputError` (the question is
never cut); then passages are added in rank order while they fit, and the first one that does not fit whole is
cut (at a sentence end when it can, by :mod:`rag.token_chunks`) to the room left, if that room holds at least
``min_passage_tokens``; passages after it are left out.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from minillm.errors import InputError

from .token_chunks import token_spans

logger = logging.getLogger(__name__)

SYSTEM_PROMPT = (
    "You answer questions using only the numbered sources you are given. Cite every source you use by its "
    "number in square brackets, like [1] or [2]. If the sources do not contain the answer, say that you do not "
    "know."
)
CITE_REMINDER = "Answer from the sources above and cite the ones you use as [1], [2]."
MIN_PASSAGE_TOKENS = 16


@dataclass(frozen=True)
class Passage:
    """A passage as the prompt shows it: its number, an optional title, its (maybe cut) text."""

    number: int
    text: str
    title: str | None = None
    truncated: bool = False


@dataclass(frozen=True)
class FittedPrompt:
    """The rendered prompt, its token ids, the passages it holds, and whether the chat template was used."""

    text: str
    ids: list[int]
    passages: list[Passage]
    chat: bool


def chat_template_of(tokenizer: Any) -> str | None:
    """The tokenizer's chat template (ours keeps it on the tokenizer, HFTokenizer on the wrapped one), or None."""
    for holder in (tokenizer, getattr(tokenizer, "tokenizer", None)):
        template = getattr(holder, "chat_template", None)
        if isinstance(template, str) and template:
            return template
    return None


def user_message(question: str, passages: Sequence[Passage]) -> str:
    """The sources block and the question.

    >>> print(user_message("Why?", [Passage(1, "Because.", "Doc A")]))
    Sources:
    [1] Doc A: Because.
    <BLANKLINE>
    Question: Why?
    <BLANKLINE>
    Answer from the sources above and cite the ones you use as [1], [2].
    """
    if not passages:
        return f"No sources were found.\n\nQuestion: {question}"
    blocks = [f"[{p.number}] {p.title + ': ' if p.title else ''}{p.text}" for p in passages]
    return "Sources:\n" + "\n\n".join(blocks) + f"\n\nQuestion: {question}\n\n{CITE_REMINDER}"


def render(tokenizer: Any, question: str, passages: Sequence[Passage], system: str, chat: bool) -> str:
    """The prompt text: the chat template with a system and a user turn (the system text joins the user turn
    when the template refuses a system role), else plain text ending in ``Answer:``."""
    user = user_message(question, passages)
    if not chat:
        return f"{system}\n\n{user}\n\nAnswer:"
    messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
    try:
        return tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    except Exception:  # noqa: BLE001 - a template without a system role raises its own error type
        merged = [{"role": "user", "content": f"{system}\n\n{user}"}]
        return tokenizer.apply_chat_template(merged, add_generation_prompt=True, tokenize=False)


def encode_prompt(tokenizer: Any, text: str, chat: bool) -> list[int]:
    """Token ids of a rendered prompt (a chat template writes its own special tokens)."""
    return list(tokenizer.encode(text, add_special_tokens=not chat))


def fit_prompt(
    tokenizer: Any,
    question: str,
    passages: Sequence[tuple[str, str | None]],
    budget: int,
    *,
    system: str = SYSTEM_PROMPT,
    chat: bool = True,
    min_passage_tokens: int = MIN_PASSAGE_TOKENS,
) -> FittedPrompt:
    """The prompt with as many of ``passages`` (``(text, title)``, best first) as fit ``budget`` tokens."""
    if not isinstance(question, str) or not question.strip():
        raise InputError(f"query must be a non-empty string; got {question!r}")

    def build(kept: list[Passage]) -> tuple[str, list[int]]:
        text = render(tokenizer, question, kept, system, chat)
        return text, encode_prompt(tokenizer, text, chat)

    text, ids = build([])
    if len(ids) > budget:
        raise InputError(
            f"the question does not fit the model's context: with the instructions it takes {len(ids)} tokens but "
            f"only {budget} are left after reserving room for the answer; shorten the query (it is never cut) or "
            f"lower max_length"
        )
    kept: list[Passage] = []
    for number, (passage, title) in enumerate(passages, start=1):
        candidate = [*kept, Passage(number, passage, title)]
        full_text, full_ids = build(candidate)
        if len(full_ids) <= budget:
            kept, text, ids = candidate, full_text, full_ids
            continue
        cut = _cut_to_fit(tokenizer, question, kept, Passage(number, passage, title), budget, len(ids), system, chat,
                          min_passage_tokens)
        if cut is not None:
            kept, (text, ids) = [*kept, cut], build([*kept, cut])
        dropped = len(passages) - len(kept)
        logger.info("context full: %d of %d passages fit (%d tokens of %d)", len(kept), len(passages), len(ids),
                    budget)
        if dropped:
            logger.info("left out %d passage(s) that did not fit", dropped)
        break
    return FittedPrompt(text, ids, kept, chat)


def _cut_to_fit(tokenizer: Any, question: str, kept: list[Passage], passage: Passage, budget: int, used: int,
                system: str, chat: bool, min_tokens: int) -> Passage | None:
    """``passage`` cut to the tokens left (a few tries: the rendered prompt is counted, not estimated)."""
    room = budget - used - 8  # the number, the separators and the template's framing of the block
    while room >= min_tokens:
        spans = token_spans(passage.text, tokenizer, room)
        if not spans:
            return None
        (start, end), _ = spans[0]
        cut = Passage(passage.number, passage.text[start:end], passage.title, truncated=True)
        ids = encode_prompt(tokenizer, render(tokenizer, question, [*kept, cut], system, chat), chat)
        if len(ids) <= budget:
            return cut
        room -= max(len(ids) - budget, 4)
    return None
