"""Fetching papers and their metadata from arXiv (Atom API) and PubMed (E-utilities), politely and resumably.

:func:`download_papers` runs a search and saves every hit into one folder: arXiv PDFs (``<id>.pdf``), PubMed
title + abstract texts (``<pmid>.txt``; PubMed serves no PDFs for most records) and ``papers.json`` (id, title,
authors, abstract, categories, published date, source, file paths). Requests are spaced by a
:class:`RateLimiter` (arXiv: one per 3 s; NCBI: 3 per second, 10 with an API key) and retried with capped,
jittered exponential backoff on 429/5xx and network errors (a ``Retry-After`` header is honoured). A re-run skips
papers whose file is already complete; files are written to ``.part`` and renamed only once verified.
"""

from __future__ import annotations

from .config import DownloadConfig
from .http import DownloadError, HttpClient, RateLimiter, RetryPolicy
from .papers_file import PAPERS_FILE, PapersFile
from .records import Paper
from .run import DownloadSummary, download_papers

__all__ = ["PAPERS_FILE", "DownloadConfig", "DownloadError", "DownloadSummary", "HttpClient", "Paper",
           "PapersFile", "RateLimiter", "RetryPolicy", "download_papers"]
