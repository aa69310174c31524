"""DocumentProcessor: split text into pieces by paragraph, sentence, fixed-size chunk, topic, or a regex.

Every method works on character *spans* of the original text, so merging two neighbours keeps the original
separator between them (``text[start_of_first:end_of_second]``). After the method's own split, two passes make
every method obey the same size rules:

1. a piece longer than ``max_length`` is split again (at sentence ends, then whitespace, then anywhere);
2. a piece shorter than ``min_length`` is merged into a neighbour when the result fits in ``max_length``.

``max_length`` is a hard limit; ``min_length`` is best effort (a short piece between two long ones stays, it is
never dropped). Only a whole text shorter than ``min_length`` gives no pieces. Paragraph and sentence
boundaries come from :mod:`rag.sentences`.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from minillm.errors import InputError

from .sentences import Span, paragraph_spans, sentence_spans, spans_between, strip_span

__all__ = [
    "METHODS", "DocumentProcessor", "chunk_spans", "merge_short", "paragraph_spans", "semantic_spans",
    "sentence_spans", "split_long",
]

METHODS = ("paragraph", "sentence", "chunk", "semantic", "regex")

_WORD = re.compile(r"[^\W_]+")
_STOPWORDS = frozenset(
    re.findall(
        r"\S+",
        "a an and are as at be been but by for from had has have he her his i if in into is it its of on or she so "
        "that the their them then there these they this to was we were what when which who will with you your not "
        "no can do does did also than more most such",
    )
)


def _wrap(text: str, span: Span, max_length: int) -> list[Span]:
    """Cut a span into pieces of at most ``max_length`` characters, at whitespace when there is some.

    >>> t = "aaa bbb ccc"
    >>> [t[a:b] for a, b in _wrap(t, (0, 11), 7)]
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


def _pack(spans: list[Span], max_length: int) -> list[Span]:
    """Join consecutive spans while the joined span fits in ``max_length``.

    >>> _pack([(0, 3), (4, 7), (8, 11)], 7)
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
            out += _wrap(text, span, max_length)
            continue
        out += _pack([piece for s in sentences for piece in _wrap(text, s, max_length)], max_length)
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


def _stems(text: str) -> set[str]:
    """Crude stems of the content words: stopwords dropped, a plural 's' removed, cut to 6 letters.

    >>> sorted(_stems("The cats were chasing particles"))
    ['cat', 'chasin', 'partic']
    """
    stems = set()
    for word in _WORD.findall(text.lower()):
        if word in _STOPWORDS or len(word) < 3:
            continue
        if word.endswith("s") and not word.endswith("ss") and len(word) > 3:
            word = word[:-1]
        stems.add(word[:6])
    return stems


def semantic_spans(
    text: str, max_length: int, min_length: int, threshold: float = 0.1, window: int = 3
) -> list[Span]:
    """Group consecutive sentences; a new group starts at a paragraph break, when the group would exceed
    ``max_length``, or at a topic shift: when less than ``threshold`` of a sentence's content words appear in the
    previous ``window`` sentences (and the group already has ``min_length`` characters)."""
    groups: list[Span] = []
    for p_span in paragraph_spans(text):
        recent: list[set[str]] = []
        for s_start, s_end in split_long(text, sentence_spans(text, *p_span), max_length):
            words = _stems(text[s_start:s_end])
            seen = set().union(*recent) if recent else set()
            similarity = len(words & seen) / len(words) if words and seen else 1.0
            if recent:
                group = groups[-1]
                too_long = s_end - group[0] > max_length
                shift = similarity < threshold and group[1] - group[0] >= min_length
                if not (too_long or shift):
                    groups[-1] = (group[0], s_end)
                    recent = (recent + [words])[-window:]
                    continue
            groups.append((s_start, s_end))
            recent = [words]
    return groups


def _regex_spans(text: str, pattern: str | re.Pattern | None) -> list[Span]:
    if pattern is None or pattern == "":
        raise InputError(
            "method='regex' needs a non-empty pattern=..., e.g. pattern=r'\\n#+ ' to split at headings"
        )
    try:
        compiled = re.compile(pattern) if isinstance(pattern, str) else pattern
    except re.error as exc:
        raise InputError(f"pattern={pattern!r} is not a valid regular expression ({exc})") from None
    return spans_between(text, [m.span() for m in compiled.finditer(text) if m.end() > m.start()])


def chunk_spans(text: str, chunk_size: int, overlap: int = 0) -> list[Span]:
    """Windows of at most ``chunk_size`` characters ending at whitespace; each starts at least ``overlap``
    characters before the previous one ended (at a word start), as long as that still moves forward.

    >>> t = "one two three four five"
    >>> [t[a:b] for a, b in chunk_spans(t, 10, overlap=4)]
    ['one two', 'two three', 'three four', 'four five']
    """
    whole = strip_span(text, 0, len(text))
    if whole is None:
        return []
    spans, start, end = [], whole[0], whole[1]
    while True:
        piece = _wrap(text, (start, end), chunk_size)[0]
        spans.append(piece)
        if piece[1] >= end:
            return spans
        start = strip_span(text, piece[1], end)[0]
        if overlap:
            # the last word start at or before piece_end - overlap (after the piece's own start), else the next
            aim = max(piece[1] - overlap, piece[0] + 1)
            for back in [*range(aim, piece[0], -1), *range(aim + 1, piece[1])]:
                if text[back - 1].isspace() and not text[back].isspace():
                    start = back
                    break


class _HybridMethod:
    """Descriptor: ``DocumentProcessor.split_text(...)`` works on the class (with defaults) and on an instance."""

    def __init__(self, func: Callable):
        self.func = func
        self.__doc__ = func.__doc__

    def __get__(self, instance, owner):
        target = instance if instance is not None else owner()
        return self.func.__get__(target, owner)


class DocumentProcessor:
    """Split documents into pieces for retrieval or training.

    >>> DocumentProcessor().split_text("First part.\\n\\nSecond part.", method="paragraph", min_length=0)
    ['First part.', 'Second part.']
    >>> DocumentProcessor.split_text("A b c. D e f.", method="sentence", min_length=0)
    ['A b c.', 'D e f.']

    Options: ``chunk``: ``chunk_size`` (default ``max_length``) and ``overlap`` (characters, default 0);
    ``semantic``: ``threshold`` (0-1, default 0.1) and ``window`` (sentences, default 3); ``regex``: ``pattern``.
    """

    def __init__(self, method: str = "paragraph", min_length: int = 50, max_length: int = 1000, **options):
        self.method, self.min_length, self.max_length, self.options = method, min_length, max_length, options
        _validate(method, min_length, max_length)

    @_HybridMethod
    def split_text(
        self,
        text: str,
        method: str | None = None,
        min_length: int | None = None,
        max_length: int | None = None,
        **options,
    ) -> list[str]:
        """Pieces of ``text`` (stripped, in order) split by ``method``; see the module docstring for sizes."""
        method = self.method if method is None else method
        min_length = self.min_length if min_length is None else min_length
        max_length = self.max_length if max_length is None else max_length
        options = {**self.options, **options}
        _validate(method, min_length, max_length)
        if not isinstance(text, str):
            raise InputError(f"text must be a str; got {type(text).__name__}")
        whole = strip_span(text, 0, len(text))
        if whole is None or whole[1] - whole[0] < min_length:
            return []
        if method == "paragraph":
            spans = paragraph_spans(text)
        elif method == "sentence":
            spans = sentence_spans(text)
        elif method == "regex":
            spans = _regex_spans(text, options.get("pattern"))
        elif method == "semantic":
            spans = semantic_spans(
                text,
                max_length,
                min_length,
                float(options.get("threshold", 0.1)),
                int(options.get("window", 3)),
            )
        else:
            return _chunks(text, min_length, max_length, options)
        spans = merge_short(split_long(text, spans, max_length), min_length, max_length)
        return [text[a:b] for a, b in spans]


def _chunks(text: str, min_length: int, max_length: int, options: dict) -> list[str]:
    chunk_size = int(options.get("chunk_size", max_length))
    overlap = int(options.get("overlap", 0))
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
    return [text[a:b] for a, b in spans]


def _validate(method: object, min_length: object, max_length: object) -> None:
    if method not in METHODS:
        raise InputError(f"method={method!r} is unknown; valid methods: {', '.join(METHODS)}")
    for name, value in (("min_length", min_length), ("max_length", max_length)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise InputError(f"{name}={value!r} must be an int >= 0")
    if max_length < 1 or min_length > max_length:
        raise InputError(
            f"min_length={min_length} and max_length={max_length}: need 1 <= max_length and "
            "min_length <= max_length"
        )
