"""Chunks with their character offsets: the one splitting routine behind ``DocumentProcessor``.

Every method works on character *spans* of the original text, so merging two neighbours keeps the original
separator between them (``text[start_of_first:end_of_second]``), and every :class:`Chunk` knows where it came
from (``text[chunk.start:chunk.end] == chunk.text``). After the method's own split, the same size rules hold for
every method:

1. a piece longer than ``max_length`` is split again (at sentence ends, then whitespace, then anywhere);
2. a piece shorter than ``min_length`` is merged into a neighbour when the result fits in ``max_length``;
3. with ``overlap``, each chunk after the first also repeats the end of the one before it
   (:func:`rag.sizing.add_overlap`); pieces are then planned at ``max_length - overlap`` so the overlap fits.

``max_length`` is a hard limit; ``min_length`` is best effort (a short piece between two long ones stays, it is
never dropped). Only a whole text shorter than ``min_length`` gives no chunks. For ``method="tokens"`` the three
sizes count a tokenizer's tokens (``tokenizer=...``, :mod:`rag.token_chunks`); for the others, characters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from minillm.errors import InputError

from .semantic import semantic_spans
from .sentences import Span, paragraph_spans, sentence_spans, spans_between, strip_span
from .sizing import add_overlap, chunk_spans, merge_short, split_long
from .token_chunks import token_spans

METHODS = ("paragraph", "sentence", "chunk", "semantic", "regex", "tokens")


@dataclass(frozen=True)
class Chunk:
    """One piece of a text: ``text == source[start:end]``; ``token_count`` is set by ``method="tokens"``."""

    text: str
    start: int
    end: int
    token_count: int | None = None

    def __len__(self) -> int:
        return len(self.text)


def regex_spans(text: str, pattern: str | re.Pattern | None) -> list[Span]:
    """Spans between the matches of ``pattern`` (the matched separators are left out)."""
    if pattern is None or pattern == "":
        raise InputError(
            "method='regex' needs a non-empty pattern=..., e.g. pattern=r'\\n#+ ' to split at headings"
        )
    try:
        compiled = re.compile(pattern) if isinstance(pattern, str) else pattern
    except re.error as exc:
        raise InputError(f"pattern={pattern!r} is not a valid regular expression ({exc})") from None
    return spans_between(text, [m.span() for m in compiled.finditer(text) if m.end() > m.start()])


def validate(method: object, min_length: object, max_length: object, overlap: object = 0) -> None:
    """Raise InputError naming a bad method, size or overlap."""
    if method not in METHODS:
        raise InputError(f"method={method!r} is unknown; valid methods: {', '.join(METHODS)}")
    for name, value in (("min_length", min_length), ("max_length", max_length), ("overlap", overlap)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise InputError(f"{name}={value!r} must be an int >= 0")
    if max_length < 1 or min_length > max_length:
        raise InputError(
            f"min_length={min_length} and max_length={max_length}: need 1 <= max_length and "
            "min_length <= max_length"
        )
    if method != "chunk" and overlap >= max_length:
        raise InputError(f"overlap={overlap} must be smaller than max_length={max_length}")


def chunk_text(
    text: str, method: str, min_length: int, max_length: int, overlap: int = 0, **options: Any
) -> list[Chunk]:
    """The chunks of ``text`` (stripped, in order) by ``method``; see the module docstring.

    Options: ``chunk``: ``chunk_size`` (default ``max_length``); ``semantic``: ``threshold`` (0-1, default 0.1)
    and ``window`` (sentences, default 3); ``regex``: ``pattern``; ``tokens``: ``tokenizer``.

    >>> [(c.text, c.start, c.end) for c in chunk_text("One. Two!", "sentence", 0, 100)]
    [('One.', 0, 4), ('Two!', 5, 9)]
    """
    validate(method, min_length, max_length, overlap)
    if not isinstance(text, str):
        raise InputError(f"text must be a str; got {type(text).__name__}")
    if method == "tokens":
        tokenizer = options.get("tokenizer")
        found = token_spans(text, tokenizer, max_length, min_length, overlap)
        return [Chunk(text[a:b], a, b, n) for (a, b), n in found]
    whole = strip_span(text, 0, len(text))
    if whole is None or whole[1] - whole[0] < min_length:
        return []
    if method == "chunk":
        spans = _chunk_method(text, min_length, max_length, overlap, options)
        return [Chunk(text[a:b], a, b) for a, b in spans]
    budget = max_length - overlap
    if method == "paragraph":
        spans = paragraph_spans(text)
    elif method == "sentence":
        spans = sentence_spans(text)
    elif method == "regex":
        spans = regex_spans(text, options.get("pattern"))
    else:
        threshold, window = float(options.get("threshold", 0.1)), int(options.get("window", 3))
        spans = semantic_spans(text, budget, min_length, threshold, window)
    spans = merge_short(split_long(text, spans, budget), min_length, budget)
    return [Chunk(text[a:b], a, b) for a, b in add_overlap(text, spans, overlap, max_length)]


def _chunk_method(text: str, min_length: int, max_length: int, overlap: int, options: dict) -> list[Span]:
    chunk_size = int(options.get("chunk_size", max_length))
    if not 0 < chunk_size <= max_length:
        raise InputError(f"chunk_size={chunk_size} must be in 1..max_length={max_length}")
    if not 0 <= overlap < chunk_size:
        raise InputError(f"overlap={overlap} must be >= 0 and smaller than chunk_size={chunk_size}")
    spans = chunk_spans(text, chunk_size, overlap)
    if (
        len(spans) > 1
        and spans[-1][1] - spans[-1][0] < min_length
        and spans[-1][1] - spans[-2][0] <= max_length
    ):
        spans[-2:] = [(spans[-2][0], spans[-1][1])]
    return spans
