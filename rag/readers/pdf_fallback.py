"""PDF -> text with pypdf: the fallback reader, used when PyMuPDF crashed on a file (a native crash kills the
worker process; the re-run retries the file with this pure-Python parser).

pypdf gives lines without geometry, so there are no headings; lines are rejoined into paragraphs (a short
line ending a sentence ends a paragraph), running headers/footers and page numbers dropped, hyphenated line
breaks joined and ligatures normalised, as in :mod:`rag.readers.pdf`.
"""

from __future__ import annotations

import logging
import os
import statistics
from pathlib import Path

from . import cleaning
from .errors import BrokenDocumentError, EncryptedDocumentError, NeedsOCRError, optional_import

logger = logging.getLogger(__name__)
SHORT_LINE = 0.7  # a line shorter than this share of the typical line may end a paragraph


def _paragraphs(lines: list[str], typical: float) -> list[list[str]]:
    """Group a page's lines into paragraphs: a blank line, or a short line ending a sentence, closes one."""
    paragraphs: list[list[str]] = [[]]
    for line in lines:
        if not line.strip():
            if paragraphs[-1]:
                paragraphs.append([])
            continue
        paragraphs[-1].append(line)
        if len(line.strip()) < SHORT_LINE * typical and line.rstrip().endswith((".", "!", "?", ":")):
            paragraphs.append([])
    return [p for p in paragraphs if p]


def read_pdf_pypdf(path: str | os.PathLike, markdown: bool = False) -> str:
    """A PDF's text through pypdf (``markdown`` is accepted for symmetry; pypdf finds no headings)."""
    pypdf = optional_import("pypdf")
    name = Path(path).name
    try:
        reader = pypdf.PdfReader(Path(path), strict=False)
        if reader.is_encrypted and not reader.decrypt(""):
            raise EncryptedDocumentError(f"{name}: the PDF is encrypted and needs a password; skipped")
        pages = [(page.extract_text() or "") for page in reader.pages]
    except EncryptedDocumentError:
        raise
    except pypdf.errors.DependencyError as exc:  # AES without the cryptography package
        raise EncryptedDocumentError(f"{name}: the PDF is encrypted and pypdf cannot open it ({exc}); "
                                     "skipped") from None
    except (pypdf.errors.PyPdfError, ValueError, KeyError, TypeError, OSError) as exc:
        raise BrokenDocumentError(f"{name}: pypdf cannot read it ({type(exc).__name__}: {exc})") from None
    if not pages:
        raise BrokenDocumentError(f"{name}: the PDF has no pages")
    if not any(any(c.isalpha() for c in text) for text in pages):
        raise NeedsOCRError(f"{name}: no text layer on any of its {len(pages)} pages (scanned?); it needs OCR")
    page_lines = [cleaning.normalize_ligatures(text).splitlines() for text in pages]
    # without geometry only each page's first and last line may be a running header or footer
    kept = cleaning.remove_running_lines([[line for line in lines if line.strip()] for lines in page_lines], edge=1)
    lengths = [len(line.strip()) for lines in kept for line in lines]
    typical = statistics.median(lengths) if lengths else 0.0
    words = cleaning.vocabulary(line for lines in kept for line in lines)
    paragraphs = [cleaning.join_lines(p, words) for lines in kept for p in _paragraphs(lines, typical)]
    return cleaning.tidy("\n\n".join(cleaning.join_split_paragraphs(paragraphs, words)))
