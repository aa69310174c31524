"""What one ``download_papers`` run asks for, validated: every check raises one-line ``InputError``."""

from __future__ import annotations

import datetime as dt
import re
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

from minillm.errors import InputError

from . import arxiv, pubmed

SOURCE_NAMES = ("arxiv", "pubmed")
SORTS = ("relevance", "newest", "updated")
ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
DEFAULT_BASE_URLS = {"arxiv": arxiv.DEFAULT_BASE_URL, "pubmed": pubmed.DEFAULT_BASE_URL}


@dataclass
class DownloadConfig:
    """A search and where its papers go.

    ``request_interval`` (seconds between requests) defaults to the source's policy: 3 s for arXiv, 0.35 s for
    NCBI (0.11 s with ``api_key``); a shorter one is accepted only with ``base_url`` (a mirror or a test server),
    never against the real APIs. ``retries`` counts the attempts after the first.
    """

    source: str = "arxiv"
    query: str | None = None
    categories: list[str] = field(default_factory=list)
    date_from: dt.date | str | None = None
    date_to: dt.date | str | None = None
    max_results: int = 50
    output_dir: str | Path = "papers"
    base_url: str | None = None
    api_key: str | None = None
    email: str | None = None
    tool: str = "minillm"
    no_pdf: bool = False
    timeout: float = 30.0
    retries: int = 4
    request_interval: float | None = None
    sort: str = "relevance"

    def __post_init__(self) -> None:
        if self.source not in SOURCE_NAMES:
            raise InputError(f"--source {self.source!r} is not known; choose one of: {', '.join(SOURCE_NAMES)}")
        self.query = (self.query or "").strip() or None
        self.categories = list(self.categories or [])
        if self.source == "pubmed" and self.categories:
            raise InputError(f"--categories {' '.join(self.categories)} is for arXiv only; for PubMed put MeSH terms "
                             'in --query (e.g. "rag[tiab] AND neoplasms[mh]")')
        for category in self.categories:
            arxiv.check_category(category)
        if self.query is None and not (self.source == "arxiv" and self.categories):
            raise InputError(f"--query is missing; give the search terms, e.g. --query \"retrieval augmented "
                             f"generation\"{' (or --categories)' if self.source == 'arxiv' else ''}")
        self.date_from = _date(self.date_from, "date_from")
        self.date_to = _date(self.date_to, "date_to")
        if self.date_from and self.date_to and self.date_from > self.date_to:
            raise InputError(f"--date_from {self.date_from} is after --date_to {self.date_to}; swap them")
        if isinstance(self.max_results, bool) or not isinstance(self.max_results, int) or self.max_results < 1:
            raise InputError(f"--max_results must be an integer >= 1, got {self.max_results!r}")
        if self.sort not in SORTS:
            raise InputError(f"--sort {self.sort!r} is not known; choose one of: {', '.join(SORTS)}")
        if not self.timeout > 0:
            raise InputError(f"--timeout must be > 0 seconds, got {self.timeout}")
        if self.retries < 0:
            raise InputError(f"--retries must be >= 0, got {self.retries}")
        self.output_dir = Path(self.output_dir).expanduser()
        if self.base_url is not None:
            self.base_url = _base_url(self.base_url)
        if self.request_interval is not None:
            if self.request_interval < 0:
                raise InputError(f"--request_interval must be >= 0 seconds, got {self.request_interval}")
            if self.base_url is None and self.request_interval < self.policy_interval:
                raise InputError(f"--request_interval {self.request_interval} is shorter than {self.source}'s "
                                 f"limit of {self.policy_interval} s between requests; a shorter one is allowed "
                                 "only with --base_url (a mirror or a local server)")

    @property
    def api_base_url(self) -> str:
        """``base_url``, or the real API's."""
        return self.base_url or DEFAULT_BASE_URLS[self.source]

    @property
    def policy_interval(self) -> float:
        """The seconds between requests the source's terms ask for."""
        if self.source == "arxiv":
            return arxiv.MIN_INTERVAL
        return pubmed.MIN_INTERVAL_WITH_KEY if self.api_key else pubmed.MIN_INTERVAL

    @property
    def interval(self) -> float:
        """The seconds between requests this run keeps."""
        return self.policy_interval if self.request_interval is None else self.request_interval


def _date(value: dt.date | str | None, flag: str) -> dt.date | None:
    if value is None or isinstance(value, dt.date):
        return value
    text = str(value).strip()
    try:
        if not ISO_DATE.match(text):
            raise ValueError
        return dt.date.fromisoformat(text)
    except ValueError:
        raise InputError(f"--{flag} {value!r} is not a date; use YYYY-MM-DD, e.g. 2024-01-31") from None


def _base_url(url: str) -> str:
    parts = urllib.parse.urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InputError(f"--base_url {url!r} is not an http(s) URL; give e.g. http://127.0.0.1:8000")
    return url.strip().rstrip("/")
