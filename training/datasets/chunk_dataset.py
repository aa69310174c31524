"""Documents -> overlapping text chunks of at most ``chunk_size`` characters, cut at paragraph and sentence ends.

The splitting is :mod:`rag.sizing`'s (the one text splitter): paragraphs are packed together while they fit in
``chunk_size - overlap``; a longer paragraph is cut at sentence ends, then at whitespace; then every chunk after
the first starts earlier, at a word start, so it repeats about ``overlap`` characters of the one before it
(:func:`rag.sizing.add_overlap`: at least ``overlap`` whenever that still fits in ``chunk_size``). No chunk is ever
longer than ``chunk_size``.
"""

from __future__ import annotations

from minillm.errors import InputError


def check_sizes(chunk_size: int, overlap: int) -> None:
    """Refuse a chunk size below 1 or an overlap that leaves no room for new text."""
    if chunk_size < 1:
        raise InputError(f"--chunk_size {chunk_size} must be >= 1 (characters), e.g. 2000")
    if not 0 <= overlap < chunk_size:
        raise InputError(f"--overlap {overlap} must be >= 0 and smaller than --chunk_size {chunk_size}, e.g. 200")


def overlap_slack(chunk_size: int, overlap: int) -> int:
    """Characters held back from each piece so the overlap (which starts at a word start, after a separator)
    still fits in ``chunk_size``."""
    return min(chunk_size - overlap - 1, max(2, overlap // 5)) if overlap else 0


def chunk_spans(text: str, chunk_size: int, overlap: int = 0) -> list[tuple[int, int]]:
    """``(start, end)`` of every chunk of ``text``, in order (starts and ends strictly increasing)."""
    from rag.sentences import paragraph_spans
    from rag.sizing import add_overlap, pack, split_long

    check_sizes(chunk_size, overlap)
    budget = chunk_size - overlap - overlap_slack(chunk_size, overlap)
    spans = pack(split_long(text, paragraph_spans(text), budget), budget)
    return [(a, b) for a, b in add_overlap(text, spans, overlap, chunk_size) if text[a:b].strip()]


def chunk_text(text: str, chunk_size: int, overlap: int = 0) -> list[str]:
    """The chunks of ``text`` (see the module docstring).

    >>> chunk_text("Alpha beta. Gamma delta.\\n\\nEpsilon zeta.", 40, 6)
    ['Alpha beta. Gamma delta.', 'delta.\\n\\nEpsilon zeta.']
    """
    return [text[a:b] for a, b in chunk_spans(text, chunk_size, overlap)]
