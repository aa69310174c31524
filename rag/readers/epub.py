"""EPUB -> text with ebooklib: the chapters in spine order (the reading order the OPF declares, not the order
of the files in the zip), each XHTML chapter converted by :mod:`rag.readers.epub_html` (headings as Markdown).

The navigation document (the EPUB 3 table of contents) is left out: its entries repeat the headings. A file that
is not a zip, or a zip without ``META-INF/container.xml`` and an OPF package, is a
:class:`~rag.readers.errors.BrokenDocumentError`. A sound zip that ebooklib refuses (it is stricter than reading
needs, e.g. about missing Dublin Core metadata) is read by :mod:`rag.readers.epub_fallback` instead.
"""

from __future__ import annotations

import logging
import os
import warnings
import zipfile
from pathlib import Path

from .epub_html import html_paragraphs, join_paragraphs
from .errors import BrokenDocumentError, optional_import

logger = logging.getLogger(__name__)
XHTML_TYPES = ("application/xhtml+xml", "text/html")


def check_epub_zip(path: str | os.PathLike) -> None:
    """Raise :class:`BrokenDocumentError` unless ``path`` is a zip holding ``META-INF/container.xml``."""
    name = Path(path).name
    if not zipfile.is_zipfile(path):
        raise BrokenDocumentError(f"{name}: not an EPUB (not a zip archive)")
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, OSError) as exc:
        raise BrokenDocumentError(f"{name}: not a readable zip ({exc})") from None
    if "META-INF/container.xml" not in names:
        raise BrokenDocumentError(f"{name}: not an EPUB (the zip has no META-INF/container.xml)")


def read_epub(path: str | os.PathLike, markdown: bool = False) -> str:
    """The chapters of an EPUB in spine order as text (``markdown=True``: pipe tables and fenced code too)."""
    check_epub_zip(path)
    epub = optional_import("ebooklib.epub", "ebooklib")
    name = Path(path).name
    try:
        with warnings.catch_warnings():  # ebooklib warns about its own future defaults
            warnings.simplefilter("ignore")
            book = epub.read_epub(str(path), options={"ignore_ncx": True})
    except (epub.EpubException, KeyError, ValueError, AttributeError, zipfile.BadZipFile) as exc:
        # ebooklib is stricter than readers need (e.g. it refuses a package without Dublin Core metadata):
        # the zip and its container are sound, so read the spine ourselves
        from .epub_fallback import read_epub_zipfile

        logger.info("%s: ebooklib refused it (%s: %s); reading the spine with zipfile", name,
                    type(exc).__name__, exc)
        return read_epub_zipfile(path, markdown=markdown)
    paragraphs: list[str] = []
    for idref, _linear in book.spine:
        item = book.get_item_with_id(idref)
        if item is None:
            logger.warning("%s: the spine names %r, which the manifest lacks; skipped", name, idref)
            continue
        if isinstance(item, epub.EpubNav) or item.media_type not in XHTML_TYPES:
            continue
        paragraphs.extend(html_paragraphs(item.get_content(), markdown=markdown))
    if not book.spine:
        raise BrokenDocumentError(f"{name}: the EPUB's package has an empty spine (no chapters to read)")
    return join_paragraphs(paragraphs)
