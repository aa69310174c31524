"""Boundary detection: paragraphs, sentences, headings and words of a text as character spans ``(start, end)``.

Sentences end at terminal punctuation (optionally followed by closing quotes or brackets) before whitespace and a
start that is not lower-case, or at a CJK stop; a blank line always ends one. A ``.`` does not end a sentence
after a title or reference word (``Dr.``, ``Fig. 2``, ``Eq.``, ``e.g.``, ``i.e.``, ``vs.``), nor after a list or
section number at the start of a line (``2.1. Methods``); after ``et al.``, ``U.S.``, ``Inc.`` or an initial
(``J. R. Tolkien``) it ends one only when a typical sentence opener follows (``The``, ``We``, ``However`` ...).
Decimals (``3.14``) never end one (no whitespace after the dot). Headings (Markdown ``#``, numbered ``2.1 Results``,
a known section name or an ALL-CAPS line alone on a line) are what extracted papers are cut at. Spans index the
original text, so joining neighbours keeps the original separator.
"""

from __future__ import annotations

import re

Span = tuple[int, int]

_PARAGRAPH_BREAK = re.compile(r"\n[ \t\r\f\v]*\n\s*")
# Candidate sentence end: terminal punctuation, optional closing quotes/brackets, then whitespace; or a CJK stop.
_SENTENCE_END = re.compile(r"[.!?…]+[\"'”’)\]]*(?=\s)|[。！？]+[\"'”’)\]」』]*")
_CLOSERS = "\"'”’)]"


def _words(spec: str) -> frozenset[str]:
    return frozenset(re.findall(r"\S+", spec))


# A '.' after these never ends a sentence: titles and Latin "for example" come before more text.
_NEVER_END = _words("e.g i.e cf vs viz dr mr mrs ms prof st sr jr rev gen ed eds approx ca resp")
# A '.' after these does not end a sentence when a number follows ("Fig. 2", "No. 5", "pp. 3-9").
_BEFORE_NUMBER = _words("fig figs eq eqs no nos vol vols ref refs sec secs tab ch chap p pp")
# After these (and initials) a '.' ends a sentence only when a typical sentence opener follows.
_MAY_END = _words(
    "al etc inc ltd co corp dept est u.s u.k u.n e.u a.m p.m ph.d b.sc m.sc jan feb mar apr jun jul aug sep sept "
    "oct nov dec mt ft"
)
_OPENERS = _words(
    "the this these that those there their they it its we our in on at for to a an as however thus therefore "
    "moreover furthermore here all both each finally first second then while although when after before since "
    "results methods conclusions"
)
_INITIALS = re.compile(r"(?:[A-Z]\.)*[A-Z]")
_LIST_NUMBER = re.compile(r"(?:\d{1,3}(?:\.\d{1,3})*|[IVXivx]{1,5}|[A-Za-z])")
_OPENING = "\"'“‘([{"

# Heading lines of Markdown and of text extracted from papers.
_MARKDOWN_HEADING = re.compile(r"[ \t]{0,3}#{1,6}[ \t]+\S[^\n]*")
_NUMBERED_HEADING = re.compile(r"[ \t]*(?:\d{1,2}(?:\.\d{1,2}){0,3}\.?|[IVX]{1,5}\.)[ \t]+[A-Z][^\n]{0,78}")
_SECTION_NAMES = _words(
    "abstract introduction background method methods materials results discussion conclusion conclusions "
    "references bibliography acknowledgments acknowledgements appendix limitations experiments evaluation "
    "summary contents preface"
)
_SECTION_PHRASES = frozenset(
    {"related work", "materials and methods", "future work", "experimental setup", "experimental results",
     "conclusions and future work", "results and discussion", "discussion and conclusions"}
)
_LINE = re.compile(r"[^\n]+")


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


def is_word_start(text: str, i: int) -> bool:
    """True when a word (a run of non-space characters) starts at ``i``."""
    return 0 <= i < len(text) and not text[i].isspace() and (i == 0 or text[i - 1].isspace())


def _token_before(text: str, dot: int) -> tuple[str, int]:
    """The whitespace-delimited token ending at ``dot`` (opening quotes/brackets dropped) and where it starts."""
    start = dot
    while start > 0 and not text[start - 1].isspace():
        start -= 1
    while start < dot and text[start] in _OPENING:
        start += 1
    return text[start:dot], start


def _starts_line(text: str, i: int, floor: int) -> bool:
    """True when only spaces or tabs lie between the previous newline (or ``floor``) and ``i``."""
    j = i
    while j > floor and text[j - 1] in " \t":
        j -= 1
    return j == floor or text[j - 1] == "\n"


def _dot_ends_sentence(text: str, dot: int, next_start: int, floor: int) -> bool:
    """Whether the single '.' at ``dot`` (followed by whitespace, then ``next_start``) ends a sentence."""
    token, token_start = _token_before(text, dot)
    word = token.lower()
    if _LIST_NUMBER.fullmatch(token) and _starts_line(text, token_start, floor):
        return False  # "2.1. Methods", "IV. Results", "a. first item" at the start of a line
    if word in _NEVER_END:
        return False
    if word in _BEFORE_NUMBER:
        return not (text[next_start].isdigit() or text[next_start] == "(")
    if word in _MAY_END or _INITIALS.fullmatch(token):
        opener = re.match(r"[^\W\d_]+", text[next_start:next_start + 20])
        return opener is not None and opener.group().lower() in _OPENERS
    return True


def sentence_spans(text: str, start: int = 0, end: int | None = None) -> list[Span]:
    """Spans of sentences; blank lines always end one. Abbreviations, initials and decimals do not.

    >>> t = "Dr. Smith paid 3.50 dollars, e.g. for tea. It rained! Did it? Yes."
    >>> [t[a:b] for a, b in sentence_spans(t)]
    ['Dr. Smith paid 3.50 dollars, e.g. for tea.', 'It rained!', 'Did it?', 'Yes.']
    >>> t = "As Lee et al. showed in Fig. 2, it works. Lee et al. The end."
    >>> [t[a:b] for a, b in sentence_spans(t)]
    ['As Lee et al. showed in Fig. 2, it works.', 'Lee et al.', 'The end.']
    """
    spans: list[Span] = []
    for p_start, p_end in paragraph_spans(text, start, end):
        breaks = []
        for match in _SENTENCE_END.finditer(text, p_start, p_end):
            stop = match.end()
            nxt = strip_span(text, stop, p_end)
            if nxt is None or text[nxt[0]].islower():
                continue
            if match.group().rstrip(_CLOSERS) == "." and not _dot_ends_sentence(text, match.start(), nxt[0], p_start):
                continue
            breaks.append((stop, nxt[0]))
        spans += spans_between(text, breaks, p_start, p_end)
    return spans


def is_heading(line: str) -> bool:
    """True for a heading line: Markdown ``#``, a numbered heading, a section name, or a short ALL-CAPS line.

    >>> [is_heading(s) for s in ("## Setup", "2.1 Related Work", "3. Methods", "INTRODUCTION", "Conclusions:")]
    [True, True, True, True, True]
    >>> [is_heading(s) for s in ("1. We enrolled 50 patients.", "The results", "2 of the mice died", "3 Apple 0.5 0.7")]
    [False, False, False, False]
    """
    stripped = line.strip()
    if not stripped or len(stripped) > 90:
        return False
    if _MARKDOWN_HEADING.fullmatch(line.rstrip()):
        return True
    words = stripped.rstrip(":").split()
    if _NUMBERED_HEADING.fullmatch(line.rstrip()):
        title = words[1:]
        numeric = sum(any(c.isdigit() for c in w) for w in title)
        return 0 < len(title) <= 10 and numeric * 2 < len(title) and not stripped.endswith((".", ",", ";"))
    name = " ".join(words).lower()
    if name in _SECTION_NAMES or name in _SECTION_PHRASES:
        return True
    letters = [c for c in stripped if c.isalpha()]
    return len(words) <= 6 and len(letters) >= 4 and all(c.isupper() for c in letters) and not stripped.endswith(".")


def heading_starts(text: str, start: int = 0, end: int | None = None) -> list[int]:
    """Start offsets of the heading lines in ``text[start:end]`` (each the first non-space character of its line).

    >>> t = "Intro text.\\n# Setup\\nbody\\n2 Results\\nmore"
    >>> [t[i:t.index(chr(10), i)] for i in heading_starts(t)]
    ['# Setup', '2 Results']
    """
    end = len(text) if end is None else end
    starts = []
    for match in _LINE.finditer(text, start, end):
        if (match.start() == 0 or text[match.start() - 1] == "\n") and is_heading(match.group()):
            first = strip_span(text, *match.span())
            if first is not None:
                starts.append(first[0])
    return starts


def section_spans(text: str, start: int = 0, end: int | None = None) -> list[Span]:
    """Spans of sections: each begins at a heading line (the text before the first heading is a section too).

    >>> t = "Preamble.\\n\\n## One\\nBody one.\\n## Two\\nBody two."
    >>> [t[a:b] for a, b in section_spans(t)]
    ['Preamble.', '## One\\nBody one.', '## Two\\nBody two.']
    """
    end = len(text) if end is None else end
    cuts = [i for i in heading_starts(text, start, end) if i > start]
    return [span for a, b in zip([start, *cuts], [*cuts, end], strict=True) if (span := strip_span(text, a, b))]
