"""EPUB -> text without ebooklib or lxml: the fallback reader, used when the main reader crashed on a file.

It reads ``META-INF/container.xml`` and the OPF package with the standard library's XML parser, follows the
spine, and converts each XHTML chapter with BeautifulSoup on Python's own ``html.parser``.
"""

from __future__ import annotations

import os
import posixpath
import zipfile
from pathlib import Path
from xml.etree import ElementTree

from .epub import XHTML_TYPES, check_epub_zip
from .epub_html import html_paragraphs, join_paragraphs
from .errors import BrokenDocumentError

CONTAINER_NS = "{urn:oasis:names:tc:opendocument:xmlns:container}"
OPF_NS = "{http://www.idpf.org/2007/opf}"


def spine_paths(archive: zipfile.ZipFile, name: str) -> list[str]:
    """The zip paths of the spine's XHTML documents, in spine order (the navigation document left out)."""
    try:
        container = ElementTree.fromstring(archive.read("META-INF/container.xml"))
        rootfile = container.find(f".//{CONTAINER_NS}rootfile")
        if rootfile is None or not rootfile.get("full-path"):
            raise BrokenDocumentError(f"{name}: META-INF/container.xml names no package (rootfile)")
        opf_path = rootfile.get("full-path", "")
        package = ElementTree.fromstring(archive.read(opf_path))
    except (KeyError, ElementTree.ParseError) as exc:
        raise BrokenDocumentError(f"{name}: not a readable EPUB package ({exc})") from None
    base = posixpath.dirname(opf_path)
    manifest = {item.get("id"): item for item in package.iter(f"{OPF_NS}item")}
    paths = []
    for itemref in package.iter(f"{OPF_NS}itemref"):
        item = manifest.get(itemref.get("idref"))
        if item is None or item.get("media-type") not in XHTML_TYPES:
            continue
        if "nav" in (item.get("properties") or "").split():
            continue
        paths.append(posixpath.normpath(posixpath.join(base, item.get("href", ""))))
    return paths


def read_epub_zipfile(path: str | os.PathLike, markdown: bool = False) -> str:
    """The chapters of an EPUB in spine order, read with zipfile + ElementTree + html.parser."""
    check_epub_zip(path)
    name = Path(path).name
    paragraphs: list[str] = []
    with zipfile.ZipFile(path) as archive:
        for member in spine_paths(archive, name):
            try:
                markup = archive.read(member)
            except KeyError:
                continue  # a spine entry whose file is missing: read the rest
            paragraphs.extend(html_paragraphs(markup, markdown=markdown, parser="html.parser"))
    return join_paragraphs(paragraphs)
