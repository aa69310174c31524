"""Size rules on character spans: cut long spans, merge short ones, slide windows, and add overlap.

Every function takes and returns spans ``(start, end)`` of one original text (stripped of surrounding
whitespace), so a piece is always ``text[start:end]`` and merging neighbours keeps the separator between them.
"""

from __future__ import annotations

from .sentences import Span, is_word_start, sentence_spans, strip_span


def wrap(text: str, span: Span, max_length: int) -> list[Span]:
    """Cut a span into pieces of at most ``max_length`` characters, at whitespace when there is some.

    >>> t = "aaa bbb ccc"
    >>> [t[a:b] for a, b in wrap(t, (0, 11), 7)]
    ['aaa bbb', 'ccc']
    """
    pieces, (start, end) = [], span
    while end - start > max_length:
        limit = start + max_length
        cut = limit
        while cut > start and not text[cut].isspace():
            cut -= 1
        if cut == start:  # one word longer than max_length: cut inside it
            cut = limit
        piece = strip_span(text, start, cut)
        if piece:
            pieces.append(piece)
        rest = strip_span(text, cut, end)
        if rest is None:
            return pieces
        start = rest[0]
    pieces.append((start, end))
    return pieces


def pack(spans: list[Span], max_length: int) -> list[Span]:
    """Join consecutive spans while the joined span fits in ``max_length``.

    >>> pack([(0, 3), (4, 7), (8, 11)], 7)
    [(0, 7), (8, 11)]
    """
    packed: list[Span] = []
    for span in spans:
        if packed and span[1] - packed[-1][0] <= max_length:
            packed[-1] = (packed[-1][0], span[1])
        else:
            packed.append(span)
    return packed


def split_long(text: str, spans: list[Span], max_length: int) -> list[Span]:
    """Split every span longer than ``max_length``: into sentences (packed), then at whitespace."""
    out: list[Span] = []
    for span in spans:
        if span[1] - span[0] <= max_length:
            out.append(span)
            continue
        sentences = sentence_spans(text, *span)
        if len(sentences) <= 1:
            out += wrap(text, span, max_length)
            continue
        out += pack([piece for s in sentences for piece in wrap(text, s, max_length)], max_length)
    return out


def merge_short(spans: list[Span], min_length: int, max_length: int) -> list[Span]:
    """Merge spans shorter than ``min_length`` into a neighbour when the merged span fits ``max_length``.

    >>> merge_short([(0, 2), (3, 10), (11, 30)], 5, 12)
    [(0, 10), (11, 30)]
    """
    merged: list[Span] = []
    for span in spans:
        if merged:
            last = merged[-1]
            short = last[1] - last[0] < min_length or span[1] - span[0] < min_length
            if short and span[1] - last[0] <= max_length:
                merged[-1] = (last[0], span[1])
                continue
        merged.append(span)
    return merged


def latest_word_start(text: str, low: int, high: int) -> int | None:
    """The last word start in ``[low, high]``, or None."""
    for i in range(high, low - 1, -1):
        if is_word_start(text, i):
            return i
    return None


def first_word_start(text: str, low: int, high: int) -> int | None:
    """The first word start in ``[low, high)``, or None."""
    for i in range(max(low, 0), high):
        if is_word_start(text, i):
            return i
    return None


def chunk_spans(text: str, chunk_size: int, overlap: int = 0) -> list[Span]:
    """Windows of at most ``chunk_size`` characters ending at whitespace; each starts at the last word start at
    least ``overlap`` characters before the previous one ended (after that one's start), else at the next one.

    >>> t = "one two three four five"
    >>> [t[a:b] for a, b in chunk_spans(t, 10, overlap=4)]
    ['one two', 'two three', 'three four', 'four five']
    """
    whole = strip_span(text, 0, len(text))
    if whole is None:
        return []
    spans, start, end = [], whole[0], whole[1]
    while True:
        piece = wrap(text, (start, end), chunk_size)[0]
        spans.append(piece)
        if piece[1] >= end:
            return spans
        start = strip_span(text, piece[1], end)[0]
        if overlap:
            aim = max(piece[1] - overlap, piece[0] + 1)
            back = latest_word_start(text, piece[0] + 1, aim)
            ahead = back if back is not None else first_word_start(text, aim + 1, piece[1])
            start = ahead if ahead is not None else start


def add_overlap(text: str, spans: list[Span], overlap: int, max_length: int) -> list[Span]:
    """Start every span after the first earlier, so it repeats the end of the chunk before it.

    A chunk starts at the last word start ``w`` with ``previous.start < w <= previous.end - overlap`` (so the two
    share at least ``overlap`` characters) when the chunk from ``w`` fits ``max_length``; otherwise at the first
    word start from which it fits (less overlap, maybe none). Starts and ends stay strictly increasing.

    >>> t = "Alpha beta. Gamma delta. Epsilon zeta."
    >>> [t[a:b] for a, b in add_overlap(t, [(0, 11), (12, 24), (25, 38)], 5, 30)]
    ['Alpha beta.', 'beta. Gamma delta.', 'delta. Epsilon zeta.']
    """
    if overlap <= 0 or not spans:
        return list(spans)
    out = [spans[0]]
    for start, end in spans[1:]:
        prev_start, prev_end = out[-1]
        begin = start
        w = latest_word_start(text, prev_start + 1, min(prev_end - overlap, start - 1))
        if w is not None:
            if end - w <= max_length:
                begin = w
            else:
                fits = first_word_start(text, max(end - max_length, prev_start + 1), start)
                begin = fits if fits is not None else start
        out.append((begin, end))
    return out
