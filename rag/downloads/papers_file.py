"""``papers.json``: the metadata of every paper in a download folder, merged across runs, written atomically.

The file is ``{"format": "minillm-papers", "version": 1, "papers": [ {id, source, title, authors, abstract,
categories, published, url, pdf_url, pdf_path, pdf_bytes, text_path, doi, pmcid, error}, ... ]}``, one entry per
``source:id`` in the order first seen. Paths are relative to the folder, so the folder can be moved. A re-run
merges: a paper seen again gets its fresh metadata, entries from earlier searches stay.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from minillm.atomic import atomic_write_text
from minillm.errors import InputError

from .records import Paper

PAPERS_FILE = "papers.json"
FORMAT = "minillm-papers"
VERSION = 1


class PapersFile:
    """The papers of one folder, keyed by ``source:id``; :meth:`save` rewrites ``papers.json`` atomically."""

    def __init__(self, folder: str | Path, clock: Callable[[], float] = time.monotonic) -> None:
        self.folder = Path(folder)
        self.path = self.folder / PAPERS_FILE
        self._clock = clock
        self._papers: dict[str, Paper] = {}
        self._last_save: float | None = None
        self._dirty = False
        if self.path.exists():
            for paper in read_papers(self.path):
                self._papers[paper.key] = paper

    def __len__(self) -> int:
        return len(self._papers)

    def __iter__(self) -> Iterator[Paper]:
        return iter(self._papers.values())

    def get(self, key: str) -> Paper | None:
        """The stored entry for ``source:id``, or ``None``."""
        return self._papers.get(key)

    def put(self, paper: Paper) -> None:
        """Add ``paper`` or replace the entry with its key (keeping its place in the file)."""
        self._papers[paper.key] = paper
        self._dirty = True

    def save(self) -> None:
        """Write ``papers.json`` now (through a temporary file and a rename)."""
        document = {"format": FORMAT, "version": VERSION, "papers": [p.to_dict() for p in self._papers.values()]}
        atomic_write_text(self.path, json.dumps(document, indent=1, ensure_ascii=False) + "\n")
        self._last_save, self._dirty = self._clock(), False

    def save_soon(self, min_interval: float = 1.0) -> bool:
        """Save unless the last save was under ``min_interval`` seconds ago (for entries whose file is already on
        disk, so nothing is lost by waiting: a re-run finds the file and rebuilds the entry); return whether it
        saved. :meth:`flush` at the end writes what is left."""
        if self._last_save is not None and self._clock() - self._last_save < min_interval:
            return False
        self.save()
        return True

    def flush(self) -> None:
        """Save if anything changed since the last save."""
        if self._dirty or not self.path.exists():
            self.save()


def read_papers(path: str | Path) -> list[Paper]:
    """The entries of a ``papers.json`` (also a bare JSON list of entries); ``InputError`` if it is unreadable."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path} is not valid JSON ({exc}); move it away or delete it to start a fresh list"
                         ) from None
    entries = data.get("papers") if isinstance(data, dict) else data
    if (isinstance(data, dict) and data.get("format") != FORMAT) or not isinstance(entries, list):
        raise InputError(f"{path} is not a papers.json written by download_papers (expected "
                         f'{{"format": "{FORMAT}", "papers": [...]}}); move it away or choose another --output_dir')
    papers = []
    for number, entry in enumerate(entries):
        if not isinstance(entry, dict) or not all(isinstance(entry.get(k), str) for k in ("id", "source", "title")):
            raise InputError(f"{path}: entry {number} lacks a string id, source or title; fix or delete it")
        papers.append(Paper.from_dict(entry))
    return papers
