"""How much of a document's text a reader recovered: multiset word recall against a reference.

- PDFs: the reference is the file's own text layer, PyMuPDF's plain ``page.get_text()`` of every page.
- EPUBs: the reference is a conversion made independently of our readers, with the standard library only:
  ``zipfile`` + ``xml.etree`` for the container and the OPF spine, ``html.parser.HTMLParser`` to strip the tags
  (no ebooklib, no BeautifulSoup, none of :mod:`rag.readers.epub_html`).

Words are runs of letters and digits, lower-cased, after NFKC normalisation on both sides (so a ligature in the
text layer is the same word as its letters). A word the reference holds 3 times and the output twice counts 2/3.
A reader that joins a hyphenated line break ("exam-", "ple" -> "example") or drops running headers and page
numbers loses those reference words, so 100% is not the goal; whole paragraphs missing or garbled are what
the figure catches.
"""

from __future__ import annotations

import os
import posixpath
import re
import unicodedata
import zipfile
from collections import Counter
from html.parser import HTMLParser
from xml.etree import ElementTree

_WORDS = re.compile(r"[^\W_]+")
_SKIP_TAGS = {"script", "style", "head", "title"}


def words(text: str) -> Counter[str]:
    """Lower-case word counts of ``text`` (NFKC-normalised).

    >>> sorted(words("The \ufb01le, the FILE.").items())
    [('file', 2), ('the', 2)]
    """
    return Counter(_WORDS.findall(unicodedata.normalize("NFKC", text).lower()))


def recall(reference: str | Counter[str], output: str | Counter[str]) -> float:
    """The share of the reference's words (with multiplicity) found in ``output``; 1.0 for an empty reference.

    >>> recall("a b b c", "a b")
    0.5
    """
    ref = words(reference) if isinstance(reference, str) else reference
    out = words(output) if isinstance(output, str) else output
    total = sum(ref.values())
    return 1.0 if total == 0 else sum(min(count, out[word]) for word, count in ref.items()) / total


def pdf_text_layer(path: str | os.PathLike) -> str:
    """Every page's plain PyMuPDF text, the reference for a PDF."""
    import pymupdf

    with pymupdf.open(path) as document:
        return "\n".join(page.get_text() for page in document)


class _TagStripper(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag.lower() in _SKIP_TAGS:
            self._skipping += 1
        self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag.lower() in _SKIP_TAGS and self._skipping:
            self._skipping -= 1
        self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def epub_reference_text(path: str | os.PathLike) -> str:
    """The spine's XHTML documents (navigation document excluded), tags stripped: the reference for an EPUB."""
    with zipfile.ZipFile(path) as archive:
        container = ElementTree.fromstring(archive.read("META-INF/container.xml"))
        opf_path = next(e.get("full-path") for e in container.iter() if _local(e.tag) == "rootfile")
        package = ElementTree.fromstring(archive.read(opf_path))
        items = {e.get("id"): e for e in package.iter() if _local(e.tag) == "item"}
        texts = []
        for itemref in (e for e in package.iter() if _local(e.tag) == "itemref"):
            item = items.get(itemref.get("idref"))
            if item is None or "nav" in (item.get("properties") or "").split():
                continue
            if item.get("media-type") not in ("application/xhtml+xml", "text/html"):
                continue
            member = posixpath.normpath(posixpath.join(posixpath.dirname(opf_path), item.get("href", "")))
            stripper = _TagStripper()
            stripper.feed(archive.read(member).decode("utf-8", errors="replace"))
            texts.append("".join(stripper.parts))
    return "\n".join(texts)
