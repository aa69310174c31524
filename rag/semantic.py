"""The ``semantic`` method: sections (at headings), then paragraphs, then groups of sentences on one topic."""

from __future__ import annotations

import re

from .sentences import Span, is_heading, paragraph_spans, section_spans, sentence_spans
from .sizing import split_long

_WORD = re.compile(r"[^\W_]+")
_STOPWORDS = frozenset(
    re.findall(
        r"\S+",
        "a an and are as at be been but by for from had has have he her his i if in into is it its of on or she so "
        "that the their them then there these they this to was we were what when which who will with you your not "
        "no can do does did also than more most such",
    )
)


def stems(text: str) -> set[str]:
    """Crude stems of the content words: stopwords dropped, a plural 's' removed, cut to 6 letters.

    >>> sorted(stems("The cats were chasing particles"))
    ['cat', 'chasin', 'partic']
    """
    found = set()
    for word in _WORD.findall(text.lower()):
        if word in _STOPWORDS or len(word) < 3:
            continue
        if word.endswith("s") and not word.endswith("ss") and len(word) > 3:
            word = word[:-1]
        found.add(word[:6])
    return found


def semantic_spans(
    text: str, max_length: int, min_length: int, threshold: float = 0.1, window: int = 3
) -> list[Span]:
    """Group consecutive sentences; a new group starts at a heading line (Markdown ``#``, numbered ``2.1 Methods``,
    a section name such as ``References``: see :func:`rag.sentences.is_heading`), at a paragraph break, when the
    group would exceed ``max_length``, or at a topic shift: when less than ``threshold`` of a sentence's content
    words appear in the previous ``window`` sentences (and the group already has ``min_length`` characters).

    >>> t = "# Cats\\nCats purr. Cats nap.\\n2 Dogs\\n\\nDogs bark."
    >>> [t[a:b] for a, b in semantic_spans(t, 100, 0)]
    ['# Cats\\nCats purr. Cats nap.', '2 Dogs\\n\\nDogs bark.']
    """
    groups: list[Span] = []
    for section in section_spans(text):
        heading_alone = False  # the section's heading is a paragraph of its own: its first paragraph joins it
        for p_span in paragraph_spans(text, *section):
            recent: list[set[str]] = []
            for s_start, s_end in split_long(text, sentence_spans(text, *p_span), max_length):
                words = stems(text[s_start:s_end])
                seen = set().union(*recent) if recent else set()
                similarity = len(words & seen) / len(words) if words and seen else 1.0
                if recent or heading_alone:
                    group = groups[-1]
                    too_long = s_end - group[0] > max_length
                    shift = similarity < threshold and group[1] - group[0] >= min_length and not heading_alone
                    heading_alone = False
                    if not (too_long or shift):
                        groups[-1] = (group[0], s_end)
                        recent = (recent + [words])[-window:]
                        continue
                groups.append((s_start, s_end))
                recent = [words]
            heading_alone = p_span[0] == section[0] and "\n" not in text[slice(*p_span)] and is_heading(
                text[slice(*p_span)])
    return groups
