"""Pure text clean-up for extracted documents: ligatures, hyphenated line breaks, running headers, footers and
page numbers, paragraphs split across columns or pages.

Every function takes and returns plain strings (or lists of them), so each is tested on crafted text; the
examples below run as doctests (tests/rag/test_readers.py).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

#: typographic ligatures (and the soft hyphen) -> plain letters
LIGATURES = {"\ufb00": "ff", "\ufb01": "fi", "\ufb02": "fl", "\ufb03": "ffi", "\ufb04": "ffl", "\ufb05": "st",
             "\ufb06": "st", "\u0132": "IJ", "\u0133": "ij", "\u0152": "OE", "\u0153": "oe", "\u00ad": ""}
_LIGATURE_TABLE = str.maketrans(LIGATURES)
#: the OT1 (Computer Modern) codes of TeX's ligatures, which Type 3 fonts of old papers leave in the text layer
TEX_LIGATURES = {"\x0b": "ff", "\x0c": "fi", "\x0d": "fl", "\x0e": "ffi", "\x0f": "ffl"}
_TEX_LIGATURE = re.compile(r"[\x0b\x0c\x0e\x0f](?=[a-z])|(?<=[^\W\d_])[\x0b-\x0f](?=[^\W\d_])")
_WORD = re.compile(r"[^\W\d_]+(?:-[^\W\d_]+)*")
_HYPHENS = "-\u2010\u2011"
_ENDS_HYPHENATED = re.compile(rf"([^\W\d_]+)[{_HYPHENS}]$")
_STARTS_WORD = re.compile(r"^([^\W\d_]+)")
_PAGE_NUMBER = re.compile(r"^[\W_]*(?:page\s*)?(?:\d{1,4}|[ivxlcdm]{1,7})(?:\s*(?:of|/)\s*\d{1,4})?[\W_]*$",
                          re.IGNORECASE)
MAX_RUNNING_CHARS = 150  # a running header or footer is short; a paragraph never is one
_SENTENCE_END = ".!?:;\"')]\u201d\u2019"
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ue000-\uf8ff]")  # controls, private-use glyphs


def normalize_ligatures(text: str) -> str:
    """Replace ligature characters with their letters and drop soft hyphens; control characters 0x0B-0x0F
    inside words become ff, fi, fl, ffi, ffl (old TeX fonts put their ligatures at those codes).

    >>> normalize_ligatures("The \ufb01rst e\ufb00ect of \ufb02ow, o\x0ecial \x0cndings")
    'The first effect of flow, official findings'
    """
    text = _TEX_LIGATURE.sub(lambda m: TEX_LIGATURES[m.group()], text)
    return text.translate(_LIGATURE_TABLE)


def strip_controls(text: str) -> str:
    """Drop control characters (tabs and newlines stay) and private-use glyphs, which math fonts without a
    Unicode mapping leave in a PDF's text layer.

    >>> strip_controls("x\\x00\\x15 = 1\\tend")
    'x = 1\\tend'
    """
    return _CONTROL.sub("", text)


def vocabulary(texts: Iterable[str]) -> Counter[str]:
    """Lower-case word counts (hyphenated compounds count as one word), used to decide de-hyphenation.

    >>> sorted(vocabulary(["Well-known words, well known."]).items())
    [('known', 1), ('well', 1), ('well-known', 1), ('words', 1)]
    """
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(word.lower() for word in _WORD.findall(text))
    return counts


def join_hyphenated(left: str, right: str, words: Counter[str] | None = None) -> str:
    """Join a word broken at a line end (``left`` without its hyphen, ``right`` the next line's first word).

    The hyphen is kept only when the document spells the compound with it more often than without.

    >>> join_hyphenated("exam", "ple")
    'example'
    >>> join_hyphenated("well", "known", vocabulary(["a well-known fact"]))
    'well-known'
    """
    joined, compound = left + right, f"{left}-{right}"
    if words is not None and words[compound.lower()] > words[joined.lower()]:
        return compound
    return joined


def join_lines(lines: list[str], words: Counter[str] | None = None) -> str:
    """The lines of one paragraph as one line: words hyphenated at a line end are joined, others get a space.

    >>> join_lines(["A hyphen-", "ated line and", "COVID-", "19 cases"])
    'A hyphenated line and COVID-19 cases'
    """
    text = ""
    for raw in lines:
        line = " ".join(raw.split())
        if not line:
            continue
        if not text:
            text = line
            continue
        text = _join_two(text, line, words)
    return text


def _join_two(left: str, right: str, words: Counter[str] | None) -> str:
    broken, start = _ENDS_HYPHENATED.search(left), _STARTS_WORD.match(right)
    if broken and start and right[0].islower():
        head = left[: broken.start()]
        return head + join_hyphenated(broken.group(1), start.group(1), words) + right[start.end():]
    if broken and right[:1].isalnum():  # "COVID-" + "19": a real hyphen
        return left + right
    return f"{left} {right}"


def dehyphenate(text: str, words: Counter[str] | None = None) -> str:
    """Join words hyphenated across line breaks in running text (the line break goes, the rest stays).

    >>> dehyphenate("an exam-\\nple of it\\nand more")
    'an example of it\\nand more'
    """
    words = vocabulary([text]) if words is None else words
    pattern = re.compile(rf"([^\W\d_]+)[{_HYPHENS}][ \t]*\n[ \t]*([a-z\u00e0-\u00ff]+)")
    return pattern.sub(lambda m: join_hyphenated(m.group(1), m.group(2), words), text)


def is_page_number(line: str) -> bool:
    """Whether a line is only a page number ("12", "- 12 -", "Page 3 of 9", "xii").

    >>> [is_page_number(s) for s in ["12", "- 4 -", "Page 3 of 9", "xii", "12 apples", "Figure 2"]]
    [True, True, True, True, False, False]
    """
    return bool(_PAGE_NUMBER.match(line.strip()))


def _shape(line: str) -> str:
    """A line with digits and case ignored, so "Page 3" and "Page 4" repeat."""
    return " ".join(re.sub(r"\d+", "#", line.lower()).split())


def running_lines(pages: list[list[str]], edge: int = 2, min_share: float = 0.35, min_pages: int = 3,
                  candidates: list[set[int]] | None = None) -> list[set[int]]:
    """For each page of lines (or blocks) in reading order, the positions of its running headers, footers and
    page numbers.

    Candidates are the first and last ``edge`` entries of each page (or the positions ``candidates`` gives,
    e.g. the blocks in the page's top and bottom margins) that are at most ``MAX_RUNNING_CHARS`` long. A
    candidate is dropped when it is a page number, or when the same line (digits and case ignored) is a
    candidate on at least ``min_share`` of the pages (and on ``min_pages`` pages; 0.35 because journals often
    alternate two running headers, one on even pages and one on odd).

    >>> running_lines([["Title", "Intro."], ["Title", "More."], ["Title", "End.", "3"]])
    [{0}, {0}, {0, 2}]
    """
    def edges(page: list[str]) -> set[int]:
        return set(range(min(edge, len(page)))) | set(range(max(len(page) - edge, 0), len(page)))

    zones = candidates if candidates is not None else [edges(page) for page in pages]
    zones = [{i for i in zone if page[i].strip() and len(page[i]) <= MAX_RUNNING_CHARS}
             for page, zone in zip(pages, zones, strict=True)]
    counts: Counter[str] = Counter()
    for page, zone in zip(pages, zones, strict=True):
        counts.update({_shape(page[i]) for i in zone})
    needed = max(min_pages, min_share * len(pages))
    repeated = {shape for shape, count in counts.items() if count >= needed}
    return [{i for i in zone if is_page_number(page[i]) or _shape(page[i]) in repeated}
            for page, zone in zip(pages, zones, strict=True)]


def remove_running_lines(pages: list[list[str]], edge: int = 2, min_share: float = 0.35,
                         min_pages: int = 3) -> list[list[str]]:
    """``pages`` without the lines :func:`running_lines` finds.

    >>> bodies = ["Intro.", "Methods.", "Results.", "End."]
    >>> pages = [[f"J. Tests {n}(2)", body, f"- {n} -"] for n, body in enumerate(bodies, start=1)]
    >>> remove_running_lines(pages)
    [['Intro.'], ['Methods.'], ['Results.'], ['End.']]
    """
    drop = running_lines(pages, edge, min_share, min_pages)
    return [[line for i, line in enumerate(page) if i not in gone] for page, gone in zip(pages, drop, strict=True)]


def join_split_paragraphs(paragraphs: list[str], words: Counter[str] | None = None) -> list[str]:
    """Merge a paragraph cut by a column or page break into the next one.

    A paragraph is merged with the next when it ends in a hyphenated word, or ends without closing
    punctuation while the next starts in lower case; headings (``#`` lines) are never merged.

    >>> join_split_paragraphs(["The data is trans-", "mitted in blocks and", "then stored.", "# Next"])
    ['The data is transmitted in blocks and then stored.', '# Next']
    """
    merged: list[str] = []
    for paragraph in paragraphs:
        if merged and _continues(merged[-1], paragraph):
            merged[-1] = _join_two(merged[-1], paragraph, words)
        else:
            merged.append(paragraph)
    return merged


def _continues(previous: str, paragraph: str) -> bool:
    if previous.startswith("#") or paragraph.startswith(("#", "- ", "* ")) or not paragraph[:1].islower():
        return False
    return bool(_ENDS_HYPHENATED.search(previous)) or previous[-1:] not in _SENTENCE_END


def tidy(text: str) -> str:
    """Ligatures normalised, control characters and trailing spaces gone, at most one blank line in a row, one
    final newline.

    >>> tidy("a \ufb01ne line\\x00   \\n\\n\\n\\nnext\\n")
    'a fine line\\n\\nnext\\n'
    """
    text = strip_controls(normalize_ligatures(text)).replace("\r\n", "\n").replace("\r", "\n")
    text = re.sub(r"[ \t]+\n", "\n", text)
    text = re.sub(r"\n{3,}", "\n\n", text).strip()
    return text + "\n" if text else ""
