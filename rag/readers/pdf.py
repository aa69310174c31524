"""PDF -> text with PyMuPDF (plain text) or pymupdf4llm (layout-aware Markdown).

Plain text (``markdown=False``, the default and what ``rag build`` uses) reads each page's text blocks with
PyMuPDF, puts them in reading order (two-column pages column by column, :mod:`rag.readers.pdf_layout`), marks
large-font and numbered bold headings as Markdown ``#`` lines, drops running headers, footers and page numbers,
joins hyphenated line breaks and paragraphs cut by column or page breaks, and normalises ligatures. It takes
about 0.05 s a paper.

Markdown (``markdown=True``) hands the document to pymupdf4llm's layout model (headings, lists, tables, bold),
without OCR and without page headers/footers, then applies the same clean-up. It is better at tables and
formulas but takes seconds a paper (about 4 s for a 15-page paper on one CPU core), so it is opt-in
(``--format md``).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
from pathlib import Path
from typing import Any

from . import cleaning
from .errors import BrokenDocumentError, EncryptedDocumentError, NeedsOCRError, optional_import
from .pdf_layout import Line, TextBlock, body_size, heading_levels, reading_order, split_heading

logger = logging.getLogger(__name__)
BOLD_FLAG = 16  # PyMuPDF span flag
MARGIN = 0.12  # share of the page height at the top and bottom where running headers and footers stand


def open_pdf(path: str | os.PathLike) -> Any:
    """A PyMuPDF document, or a typed error for a broken, encrypted or text-less PDF."""
    pymupdf = optional_import("pymupdf", "PyMuPDF")
    pymupdf.TOOLS.mupdf_display_errors(False)  # MuPDF's complaints go to our log, not the terminal
    pymupdf.TOOLS.mupdf_display_warnings(False)
    name = Path(path).name
    try:
        document = pymupdf.open(Path(path), filetype="pdf")
    except (RuntimeError, ValueError) as exc:  # FileDataError, EmptyFileError
        raise BrokenDocumentError(f"{name}: not a readable PDF ({exc})") from None
    if document.needs_pass and not document.authenticate(""):
        document.close()
        raise EncryptedDocumentError(f"{name}: the PDF is encrypted and needs a password; skipped")
    if document.page_count == 0:
        document.close()
        raise BrokenDocumentError(f"{name}: the PDF has no pages")
    if not any(any(c.isalpha() for c in page.get_text("text")) for page in document):
        pages = document.page_count
        document.close()
        raise NeedsOCRError(f"{name}: no text layer on any of its {pages} pages (scanned?); it needs OCR")
    return document


def _log_mupdf_warnings(name: str) -> None:
    pymupdf = optional_import("pymupdf", "PyMuPDF")
    warnings = pymupdf.TOOLS.mupdf_warnings()
    if warnings:
        logger.info("%s: MuPDF said: %s", name, " | ".join(warnings.splitlines()[:5]))


def page_blocks(page: Any) -> list[TextBlock]:
    """The text blocks of a PyMuPDF page (images skipped; one :class:`Line` per text line)."""
    blocks = []
    for raw in page.get_text("dict", sort=False)["blocks"]:
        if raw.get("type") != 0:
            continue
        lines = []
        for raw_line in raw["lines"]:
            spans = [s for s in raw_line["spans"] if cleaning.strip_controls(s["text"]).strip()]
            if not spans:
                continue
            text = cleaning.strip_controls(cleaning.normalize_ligatures("".join(s["text"] for s in raw_line["spans"])))
            bold = all(s["flags"] & BOLD_FLAG or "bold" in s["font"].lower() for s in spans)
            sizes: dict[float, int] = {}
            for span in spans:
                sizes[span["size"]] = sizes.get(span["size"], 0) + len(span["text"].strip())
            upright = abs(raw_line.get("dir", (1, 0))[0] - 1) < 1e-3
            lines.append(Line(text=text, size=max(sizes, key=sizes.__getitem__), bold=bold, upright=upright))
        if lines:
            blocks.append(TextBlock(*raw["bbox"], lines=lines))
    return blocks


def _margin_blocks(blocks: list[TextBlock], height: float) -> set[int]:
    """Positions of the blocks lying in the top or bottom ``MARGIN`` of the page: where running headers,
    footers and page numbers stand."""
    return {i for i, b in enumerate(blocks) if b.y1 <= MARGIN * height or b.y0 >= (1 - MARGIN) * height}


def _page_paragraphs(blocks: list[TextBlock], body: float, levels: dict[float, int],
                     words: Any) -> list[str]:
    paragraphs = []
    for block in blocks:
        heading, level, rest = split_heading(block, body, levels)
        if heading:
            paragraphs.append(f"{'#' * level} {' '.join(heading.split())}")
        text = cleaning.join_lines([line.text for line in rest], words)
        if text:
            paragraphs.append(text)
    return paragraphs


def read_pdf_text(path: str | os.PathLike) -> str:
    """The plain-text reading of a PDF (see the module docstring); headings as Markdown ``#`` lines."""
    document = open_pdf(path)
    try:
        pages = [reading_order(page_blocks(page), page.rect.width) for page in document]
        heights = [page.rect.height for page in document]
    finally:
        document.close()
        _log_mupdf_warnings(Path(path).name)
    margins = [_margin_blocks(page, height) for page, height in zip(pages, heights, strict=True)]
    every_block = [block for page in pages for block in page]
    body = body_size(every_block)
    levels = heading_levels(every_block, body)
    words = cleaning.vocabulary(block.text for block in every_block)
    by_page = [[block.text for block in page] for page in pages]
    paragraphs: list[str] = []
    for page, drop in zip(pages, cleaning.running_lines(by_page, candidates=margins), strict=True):
        survivors = [block for i, block in enumerate(page) if i not in drop]
        paragraphs.extend(_page_paragraphs(survivors, body, levels, words))
    return cleaning.tidy("\n\n".join(cleaning.join_split_paragraphs(paragraphs, words)))


def read_pdf_markdown(path: str | os.PathLike) -> str:
    """The pymupdf4llm Markdown of a PDF, page headers/footers and page numbers dropped, cleaned."""
    document = open_pdf(path)  # the typed errors first (and no layout model run on a scan)
    pymupdf4llm = optional_import("pymupdf4llm")
    captured = io.StringIO()
    try:
        with contextlib.redirect_stdout(captured):  # pymupdf4llm may print notes; the library never prints
            chunks = pymupdf4llm.to_markdown(document, page_chunks=True, use_ocr=False, header=False,
                                             footer=False, show_progress=False)
    finally:
        document.close()
        _log_mupdf_warnings(Path(path).name)
    if captured.getvalue().strip():
        logger.info("%s: pymupdf4llm said: %s", Path(path).name, " ".join(captured.getvalue().split())[:300])
    pages = [[p for p in cleaning.normalize_ligatures(chunk["text"]).split("\n\n") if p.strip()]
             for chunk in chunks]
    text = "\n\n".join(p.strip() for page in cleaning.remove_running_lines(pages) for p in page)
    return cleaning.tidy(cleaning.dehyphenate(text))


def read_pdf(path: str | os.PathLike, markdown: bool = False) -> str:
    """A PDF's text (``markdown=False``: PyMuPDF blocks + our clean-up) or Markdown (pymupdf4llm)."""
    return read_pdf_markdown(path) if markdown else read_pdf_text(path)
