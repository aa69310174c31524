"""One paper's metadata as the downloaders return it and ``papers.json`` stores it."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any

SAFE_CHARACTERS = re.compile(r"[^A-Za-z0-9._-]+")
MAX_NAME = 120


@dataclass
class Paper:
    """A search hit: what the API said about it, and where its files landed (paths relative to the folder).

    ``id`` is the source's own id (arXiv ``2101.00001v2`` or ``hep-th/9901001v1``; a PubMed PMID), ``published``
    an ISO date (``YYYY-MM-DD``, or ``YYYY-MM`` / ``YYYY`` when the record says no more). ``pdf_path`` stays
    ``None`` for records without a PDF (most of PubMed), whose title and abstract go to ``text_path`` instead.
    """

    id: str
    source: str
    title: str
    authors: list[str] = field(default_factory=list)
    abstract: str = ""
    categories: list[str] = field(default_factory=list)
    published: str | None = None
    url: str | None = None
    pdf_url: str | None = None
    pdf_path: str | None = None
    pdf_bytes: int | None = None
    text_path: str | None = None
    doi: str | None = None
    pmcid: str | None = None
    error: str | None = None

    @property
    def key(self) -> str:
        """``source:id``, unique within ``papers.json``."""
        return f"{self.source}:{self.id}"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Paper:
        """A Paper from a ``papers.json`` entry; unknown keys (from a newer version) are ignored."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass
class SearchResult:
    """What a search found: the server's total hit count and the papers fetched (at most ``max_results``)."""

    total: int
    papers: list[Paper]


def safe_file_stem(paper_id: str) -> str:
    """A file name stem for ``paper_id``: only letters, digits, ``.``, ``_`` and ``-``; never hidden or empty.

    >>> safe_file_stem("2101.00001v2"), safe_file_stem("hep-th/9901001v1"), safe_file_stem("../../etc/passwd")
    ('2101.00001v2', 'hep-th_9901001v1', 'etc_passwd')
    """
    stem = SAFE_CHARACTERS.sub("_", paper_id).strip("._")
    stem = re.sub(r"\.{2,}", ".", stem)[:MAX_NAME].strip("._")
    if not stem:
        raise ValueError(f"paper id {paper_id!r} gives no usable file name")
    return stem


def clean_text(text: str | None) -> str:
    """Whitespace (newlines, runs of spaces) collapsed to single spaces; ``None`` -> ``""``."""
    return " ".join((text or "").split())
