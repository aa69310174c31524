"""Boundary detection: paragraphs and sentences of a text as character spans ``(start, end)`` of the original.

Sentences end at terminal punctuation (optionally followed by closing quotes or brackets) before whitespace and an
upper-case start, or at a CJK stop; abbreviations (``e.g.``, ``Dr.``), initials and decimals do not end one, and a
blank line always does. Spans index the original text, so joining neighbours keeps the original separator.
"""

from __future__ import annotations

import re

Span = tuple[int, int]

_PARAGRAPH_BREAK = re.compile(r"\n[ \t\r\f\v]*\n\s*")
# Candidate sentence end: terminal punctuation, optional closing quotes/brackets, then whitespace; or a CJK stop.
_SENTENCE_END = re.compile(r"[.!?…]+[\"'”’)\]]*(?=\s)|[。！？]+[\"'”’)\]」』]*")
_ABBREVIATIONS = frozenset(
    re.findall(
        r"\S+",
        "e.g i.e cf vs dr mr mrs ms prof st sr jr fig figs no nos vol eq eqs al approx dept est inc ltd co corp "
        "jan feb mar apr jun jul aug sep sept oct nov dec mt ft u.s u.k ph.d a.m p.m",
    )
)
def strip_span(text: str, start: int, end: int) -> Span | None:
    """Shrink ``[start, end)`` to exclude surrounding whitespace; None when nothing is left.

    >>> strip_span("  ab  ", 0, 6)
    (2, 4)
    """
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return (start, end) if end > start else None


def spans_between(text: str, breaks: list[Span], start: int = 0, end: int | None = None) -> list[Span]:
    """Stripped spans of ``text[start:end]`` between the separator spans ``breaks``."""
    end = len(text) if end is None else end
    spans, cursor = [], start
    for b_start, b_end in breaks + [(end, end)]:
        span = strip_span(text, cursor, b_start)
        if span:
            spans.append(span)
        cursor = b_end
    return spans


def paragraph_spans(text: str, start: int = 0, end: int | None = None) -> list[Span]:
    """Spans of blank-line separated paragraphs.

    >>> t = "one\\n\\n  two\\nstill two\\n\\n\\nthree"
    >>> [t[a:b] for a, b in paragraph_spans(t)]
    ['one', 'two\\nstill two', 'three']
    """
    end = len(text) if end is None else end
    breaks = [m.span() for m in _PARAGRAPH_BREAK.finditer(text, start, end)]
    return spans_between(text, breaks, start, end)


def _is_abbreviation(text: str, dot: int) -> bool:
    """True when the '.' at ``dot`` ends an abbreviation or an initial rather than a sentence."""
    word_start = dot
    while word_start > 0 and (text[word_start - 1].isalpha() or text[word_start - 1] == "."):
        word_start -= 1
    word = text[word_start:dot].lower()
    return word in _ABBREVIATIONS or (len(word) == 1 and text[word_start].isupper())


def sentence_spans(text: str, start: int = 0, end: int | None = None) -> list[Span]:
    """Spans of sentences; blank lines always end one. Abbreviations, initials and decimals do not.

    >>> t = "Dr. Smith paid 3.50 dollars, e.g. for tea. It rained! Did it? Yes."
    >>> [t[a:b] for a, b in sentence_spans(t)]
    ['Dr. Smith paid 3.50 dollars, e.g. for tea.', 'It rained!', 'Did it?', 'Yes.']
    """
    spans: list[Span] = []
    for p_start, p_end in paragraph_spans(text, start, end):
        breaks = []
        for match in _SENTENCE_END.finditer(text, p_start, p_end):
            stop = match.end()
            nxt = strip_span(text, stop, p_end)
            if nxt is None:
                continue
            if text[nxt[0]].islower():
                continue
            if match.group().rstrip("\"'”’)]") == "." and _is_abbreviation(text, match.start()):
                continue
            breaks.append((stop, nxt[0]))
        spans += spans_between(text, breaks, p_start, p_end)
    return spans
