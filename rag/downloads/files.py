"""The files a download folder holds: PDFs fetched to ``.part`` and renamed once verified, abstract texts.

A PDF counts as complete when it starts with ``%PDF-`` and has the size ``papers.json`` recorded (or, with no
record, ends with ``%%EOF`` within its last 2 KB). A crash mid-download leaves only ``NAME.pdf.part``, which the
next run overwrites; never a ``NAME.pdf`` that looks complete.
"""

from __future__ import annotations

import os
from pathlib import Path

from minillm.atomic import atomic_write_text

from .http import HttpClient
from .records import Paper

PDF_MAGIC = b"%PDF-"
PDF_END = b"%%EOF"
TAIL = 2048


class NotAPdfError(Exception):
    """The server answered, but not with a PDF (arXiv sends an HTML page while it builds one, for instance)."""


def pdf_is_complete(path: Path, expected_bytes: int | None = None) -> bool:
    """Whether ``path`` is a whole PDF: the magic, and the recorded size (or an ``%%EOF`` near the end)."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as handle:
            head = handle.read(len(PDF_MAGIC))
            if expected_bytes is not None:
                return head == PDF_MAGIC and size == expected_bytes
            handle.seek(max(0, size - TAIL))
            return head == PDF_MAGIC and PDF_END in handle.read()
    except OSError:
        return False


def fetch_pdf(client: HttpClient, url: str, destination: Path) -> int:
    """Download ``url`` to ``destination`` via ``destination.part``; return its size in bytes.

    Raises :class:`DownloadError` (HTTP or network failure) or :class:`NotAPdfError`; either way no file named
    ``destination`` is left behind by this call.
    """
    part = destination.with_name(destination.name + ".part")
    size = client.download(url, part)
    with open(part, "rb") as handle:
        head = handle.read(64)
    if not head.startswith(PDF_MAGIC):
        part.unlink(missing_ok=True)
        shown = head[:24].decode("latin-1").split("\n")[0]
        raise NotAPdfError(f"{url} did not return a PDF (starts with {shown!r}, {size} bytes)")
    os.replace(part, destination)
    return size


def write_abstract_text(paper: Paper, destination: Path) -> None:
    """Write ``title``, a blank line and the abstract to ``destination`` (atomically)."""
    atomic_write_text(destination, f"{paper.title}\n\n{paper.abstract}\n".replace("\n\n\n", "\n\n"))

