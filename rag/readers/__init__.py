"""Readers for papers and books: PDF and EPUB -> cleaned text (or Markdown).

    from rag.readers import read_document
    text = read_document("paper.pdf")            # plain text; headings as Markdown "#" lines
    text = read_document("book.epub", fmt="md")  # Markdown

- PDF: PyMuPDF text blocks in reading order + our clean-up (:mod:`.pdf`); ``fmt="md"`` uses pymupdf4llm's layout
  model (slower); pypdf is the fallback reader (:mod:`.pdf_fallback`).
- EPUB: ebooklib, chapters in spine order, XHTML through BeautifulSoup (:mod:`.epub`); a zipfile/ElementTree
  reader is the fallback (:mod:`.epub_fallback`).
- Clean-up (:mod:`.cleaning`): ligatures, hyphenated line breaks, running headers/footers and page numbers.
- Errors: :class:`NeedsOCRError` (no text layer), :class:`EncryptedDocumentError`,
  :class:`BrokenDocumentError`, all :class:`DocumentError` and so ``minillm.errors.InputError``; a missing
  package is a ``MissingDependencyError`` naming ``pip install -e ".[papers]"``.
- :func:`register_paper_readers` lets ``rag build`` read ``.pdf`` and ``.epub`` files (done by default in
  :mod:`rag.corpus`); the resumable folder run behind ``main.py extract_text`` is :mod:`.extraction_run`.

Nothing here imports PyMuPDF, pymupdf4llm, pypdf, ebooklib or BeautifulSoup until a file is read.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from minillm.errors import InputError

from .errors import BrokenDocumentError, DocumentError, EncryptedDocumentError, NeedsOCRError

__all__ = ["FORMATS", "SUFFIXES", "BrokenDocumentError", "DocumentError", "EncryptedDocumentError",
           "NeedsOCRError", "read_document", "read_epub", "read_pdf", "read_with", "reader_names",
           "register_paper_readers"]

#: output format -> file suffix
FORMATS = {"txt": ".txt", "md": ".md"}
Reader = Callable[[str | os.PathLike, bool], str]


def read_pdf(path: str | os.PathLike, markdown: bool = False) -> str:
    """A PDF as cleaned text (PyMuPDF) or, with ``markdown=True``, as Markdown (pymupdf4llm)."""
    from .pdf import read_pdf as read

    return read(path, markdown=markdown)


def read_pdf_fallback(path: str | os.PathLike, markdown: bool = False) -> str:
    """A PDF as cleaned text through pypdf (no headings)."""
    from .pdf_fallback import read_pdf_pypdf

    return read_pdf_pypdf(path, markdown=markdown)


def read_epub(path: str | os.PathLike, markdown: bool = False) -> str:
    """An EPUB's chapters in spine order as text; headings as Markdown (ebooklib + BeautifulSoup)."""
    from .epub import read_epub as read

    return read(path, markdown=markdown)


def read_epub_fallback(path: str | os.PathLike, markdown: bool = False) -> str:
    """An EPUB read with zipfile + ElementTree + html.parser (no ebooklib, no lxml)."""
    from .epub_fallback import read_epub_zipfile

    return read_epub_zipfile(path, markdown=markdown)


#: suffix -> {"primary"/"fallback": (reader name, reader)}
READERS: dict[str, dict[str, tuple[str, Reader]]] = {
    ".pdf": {"primary": ("pymupdf", read_pdf), "fallback": ("pypdf", read_pdf_fallback)},
    ".epub": {"primary": ("ebooklib", read_epub), "fallback": ("zipfile", read_epub_fallback)},
}
SUFFIXES = tuple(READERS)


def _check(path: str | os.PathLike, fmt: str) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in READERS:
        raise InputError(f"{str(path)!r} is not a PDF or EPUB (suffix {suffix or '(none)'!r}); "
                         f"readable: {', '.join(SUFFIXES)}")
    if fmt not in FORMATS:
        raise InputError(f"format {fmt!r} is not one of {', '.join(FORMATS)}")
    if not Path(path).is_file():
        raise FileNotFoundError(f"{str(path)!r} does not exist or is not a file")
    return suffix


def reader_names(path: str | os.PathLike) -> dict[str, str]:
    """``{"primary": name, "fallback": name}`` of the readers for ``path``'s suffix."""
    return {role: name for role, (name, _) in READERS[_check(path, "txt")].items()}


def read_with(path: str | os.PathLike, role: str = "primary", fmt: str = "txt") -> str:
    """``path`` read by its ``role`` ("primary" or "fallback") reader in ``fmt`` ("txt" or "md")."""
    _name, reader = READERS[_check(path, fmt)][role]
    return reader(path, fmt == "md")


def read_document(path: str | os.PathLike, fmt: str = "txt") -> str:
    """A PDF or EPUB (by suffix) as cleaned text (``fmt="txt"``) or Markdown (``fmt="md"``)."""
    return read_with(path, "primary", fmt)


def _corpus_reader(path: Path) -> str:
    return read_document(path, "txt")


def register_paper_readers() -> None:
    """Register the PDF and EPUB readers with :mod:`rag.corpus` so ``rag build`` indexes those files."""
    from rag.corpus import register_reader

    for suffix in SUFFIXES:
        register_reader(suffix, _corpus_reader)
