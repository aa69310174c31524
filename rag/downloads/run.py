"""One download run: search a source, save each hit's file, keep ``papers.json`` current, report what happened.

arXiv hits get their PDF (``<id>.pdf``; ``hep-th/9901001v1`` becomes ``hep-th_9901001v1.pdf``). PubMed serves no
PDF for most records, so a PubMed hit gets ``<pmid>.txt`` (title, blank line, abstract) and ``pdf_path`` null.
PMC open-access PDFs are not fetched: the OA service hands out ``ftp://`` links, which are never followed.
With ``no_pdf`` only ``papers.json`` is written. A paper whose file is already complete is not fetched again.
``papers.json`` is rewritten after every fetched PDF; entries whose file was already there (or needs no
request) are flushed at most once a second and at the end, since a re-run rebuilds them from the files.
"""

from __future__ import annotations

import logging
import os
import random
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from . import arxiv, pubmed
from .config import DownloadConfig
from .files import NotAPdfError, fetch_pdf, pdf_is_complete, write_abstract_text
from .http import DownloadError, HttpClient, RateLimiter, RetryPolicy
from .papers_file import PapersFile
from .records import Paper, SearchResult, safe_file_stem

log = logging.getLogger(__name__)

NEW, EXISTING, FAILED = "new", "existing", "failed"


@dataclass
class DownloadSummary:
    """How a run went: hits on the server, papers saved now, papers already there, failures with reasons."""

    source: str
    total_found: int
    papers_file: Path
    new: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    requests: int = 0


def _search_arxiv(client: HttpClient, config: DownloadConfig) -> SearchResult:
    query = arxiv.build_search_query(config.query, config.categories, config.date_from, config.date_to)
    return arxiv.search(client, query, config.max_results, config.api_base_url, config.sort)


def _search_pubmed(client: HttpClient, config: DownloadConfig) -> SearchResult:
    etiquette = pubmed.Etiquette(tool=config.tool, email=config.email, api_key=config.api_key)
    return pubmed.search(client, config.query, config.max_results, config.date_from, config.date_to, etiquette,
                         config.api_base_url, config.sort)


def _save_pdf(paper: Paper, previous: Paper | None, folder: Path, client: HttpClient) -> tuple[str, str | None]:
    name = safe_file_stem(paper.id) + ".pdf"
    destination = folder / name
    expected = previous.pdf_bytes if previous and previous.pdf_path == name else None
    if pdf_is_complete(destination, expected):
        paper.pdf_path, paper.pdf_bytes = name, destination.stat().st_size
        return EXISTING, None
    if not paper.pdf_url:
        return FAILED, "the record has no PDF link"
    try:
        paper.pdf_bytes = fetch_pdf(client, paper.pdf_url, destination)
    except (DownloadError, NotAPdfError) as exc:
        return FAILED, str(exc)
    paper.pdf_path = name
    return NEW, None


def _save_text(paper: Paper, previous: Paper | None, folder: Path, client: HttpClient) -> tuple[str, str | None]:
    name = safe_file_stem(paper.id) + ".txt"
    paper.text_path = name
    if (folder / name).is_file():
        return EXISTING, None
    write_abstract_text(paper, folder / name)
    return NEW, None


Search = Callable[[HttpClient, DownloadConfig], SearchResult]
SaveFile = Callable[[Paper, "Paper | None", Path, HttpClient], tuple[str, "str | None"]]
# source -> (search, save one paper's file)
SOURCES: dict[str, tuple[Search, SaveFile]] = {
    "arxiv": (_search_arxiv, _save_pdf),
    "pubmed": (_search_pubmed, _save_text),
}


def prepare_folder(folder: Path) -> Path:
    """``folder`` created if needed and proven writable; NotADirectoryError / PermissionError (one line) if not."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(f"--output_dir {folder} is a file, not a folder; choose a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except (NotADirectoryError, FileExistsError):
        raise NotADirectoryError(f"--output_dir {folder}: a part of the path is a file; choose a folder") from None
    except OSError as exc:
        raise PermissionError(f"--output_dir {folder} cannot be written ({exc.strerror}); choose a folder you "
                              "can write to") from None
    return folder


def _keep_files(paper: Paper, previous: Paper | None, folder: Path) -> None:
    """Metadata only: keep the file paths an earlier run recorded, where the files are still there."""
    if previous is None:
        return
    if previous.pdf_path and pdf_is_complete(folder / previous.pdf_path, previous.pdf_bytes):
        paper.pdf_path, paper.pdf_bytes = previous.pdf_path, previous.pdf_bytes
    if previous.text_path and (folder / previous.text_path).is_file():
        paper.text_path = previous.text_path


def download_papers(config: DownloadConfig, progress: bool = False, sleep: Callable[[float], None] = time.sleep,
                    clock: Callable[[], float] = time.monotonic, rng: random.Random | None = None
                    ) -> DownloadSummary:
    """Search ``config.source`` and save every hit into ``config.output_dir``; see the module docstring.

    Raises :class:`DownloadError` when the search itself fails (after the retries), InputError for a query the
    API refuses, NotADirectoryError / PermissionError for an output folder that cannot be written. A paper whose
    file cannot be fetched does not stop the run: it is listed in ``summary.failed`` (and keeps its metadata and
    ``error`` in ``papers.json``); a re-run tries it again.
    """
    folder = prepare_folder(config.output_dir)
    papers_file = PapersFile(folder, clock=clock)
    agent = "minillm-download-papers/0.1" + (f" (mailto:{config.email})" if config.email else "")
    client = HttpClient(RateLimiter(config.interval, clock=clock, sleep=sleep),
                        RetryPolicy(retries=config.retries), timeout=config.timeout, user_agent=agent, sleep=sleep,
                        rng=rng)
    search, save = SOURCES[config.source]
    result = search(client, config)
    summary = DownloadSummary(config.source, result.total, papers_file.path)
    log.info("%s: %d hits, %d to save into %s", config.source, result.total, len(result.papers), folder)
    papers = result.papers
    if progress:
        from tqdm import tqdm

        papers = tqdm(papers, desc=f"{config.source} papers", unit="paper", disable=len(result.papers) < 2)
    try:
        for paper in papers:
            previous = papers_file.get(paper.key)
            if config.no_pdf:
                _keep_files(paper, previous, folder)
                outcome, reason = (EXISTING if previous else NEW), None
            else:
                requests_before = client.requests
                outcome, reason = save(paper, previous, folder, client)
            paper.error = reason
            papers_file.put(paper)
            if not config.no_pdf and client.requests > requests_before:
                papers_file.save()  # a fetched file (or a failure that cost requests): record it now
            else:
                papers_file.save_soon()
            if outcome == FAILED:
                summary.failed.append((paper.id, reason or "unknown"))
            else:
                (summary.new if outcome == NEW else summary.existing).append(paper.id)
    finally:
        papers_file.flush()
        summary.requests = client.requests
        _remove_stray_parts(folder)
    return summary


def _remove_stray_parts(folder: Path) -> None:
    """Delete ``*.part`` files a killed earlier run left (ours are removed as they fail)."""
    for part in folder.glob("*.pdf.part"):
        try:
            os.unlink(part)
        except OSError as exc:
            log.warning("could not remove %s: %s", part, exc)
