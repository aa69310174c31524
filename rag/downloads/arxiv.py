"""arXiv: the Atom API (``/api/query``), paged with ``start``/``max_results``, one request per 3 seconds.

Free text becomes ``all:`` terms ANDed together (``"quoted phrases"`` stay phrases); a query already written in
arXiv's syntax (``ti:``, ``au:``, ``abs:``, ``cat:`` ... or ``AND``/``OR``/``ANDNOT``) is sent as it is.
``categories`` are ORed together (``cat:cs.CL OR cat:cs.LG``) and ANDed with the query; a date range becomes
``submittedDate:[YYYYMMDD0000 TO YYYYMMDD2359]``. See https://info.arxiv.org/help/api/user-manual.html.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import xml.etree.ElementTree as ET

from minillm.errors import InputError

from .http import HttpClient
from .records import Paper, SearchResult, clean_text

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://export.arxiv.org"
API_PATH = "/api/query"
MIN_INTERVAL = 3.0  # seconds between requests (arXiv's terms of use)
PAGE_SIZE = 100
EARLIEST = dt.date(1991, 8, 1)
NS = {"atom": "http://www.w3.org/2005/Atom", "opensearch": "http://a9.com/-/spec/opensearch/1.1/",
      "arxiv": "http://arxiv.org/schemas/atom"}
CATEGORY = re.compile(r"^[a-z]+(-[a-z]+)?(\.[A-Za-z]+(-[a-z]+)?)?$")  # cs.CL, hep-th, cond-mat.mes-hall
FIELD_SYNTAX = re.compile(r"\b(ti|au|abs|co|jr|cat|rn|id|all|submittedDate|lastUpdatedDate):|\b(AND|OR|ANDNOT)\b")
TERM = re.compile(r'"([^"]+)"|(\S+)')
SORTS = {"relevance": ("relevance", "descending"), "newest": ("submittedDate", "descending"),
         "updated": ("lastUpdatedDate", "descending")}


def check_category(category: str) -> str:
    """``category`` if it looks like an arXiv category (``cs.CL``, ``hep-th``, ``astro-ph.CO``); else InputError."""
    if not CATEGORY.match(category):
        raise InputError(f"--categories {category!r} is not an arXiv category; use archive.SUBJECT like cs.CL, "
                         "cs.LG, stat.ML, astro-ph.CO, or an archive alone like hep-th")
    return category


def build_search_query(query: str | None, categories: list[str] | None = None, date_from: dt.date | None = None,
                       date_to: dt.date | None = None) -> str:
    """The ``search_query`` value for the arguments.

    >>> build_search_query('retrieval "language model"', ["cs.CL", "cs.LG"], dt.date(2024, 1, 1), None)[:75]
    '(all:retrieval AND all:"language model") AND (cat:cs.CL OR cat:cs.LG) AND s'
    """
    parts = []
    if query and query.strip():
        if FIELD_SYNTAX.search(query):
            parts.append(f"({query.strip()})")
        else:
            terms = [f'all:"{phrase}"' if phrase else f"all:{word}" for phrase, word in TERM.findall(query)]
            parts.append(f"({' AND '.join(terms)})" if len(terms) > 1 else terms[0])
    if categories:
        cats = [f"cat:{check_category(c)}" for c in categories]
        parts.append(f"({' OR '.join(cats)})" if len(cats) > 1 else cats[0])
    if date_from or date_to:
        start = (date_from or EARLIEST).strftime("%Y%m%d")
        end = (date_to or dt.date.today()).strftime("%Y%m%d")
        parts.append(f"submittedDate:[{start}0000 TO {end}2359]")
    if not parts:
        raise InputError("arXiv needs --query or --categories (e.g. --query \"retrieval augmented generation\")")
    return " AND ".join(parts)


def parse_feed(xml: bytes, base_url: str = DEFAULT_BASE_URL) -> tuple[int, list[Paper]]:
    """(opensearch:totalResults, the entries as Papers) of one Atom page; an API error entry raises InputError."""
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as exc:
        raise ValueError(f"the arXiv API returned malformed XML ({exc})") from None
    total = int(root.findtext("opensearch:totalResults", default="0", namespaces=NS) or 0)
    papers = []
    for entry in root.findall("atom:entry", NS):
        entry_id = entry.findtext("atom:id", default="", namespaces=NS).strip()
        if "/api/errors" in entry_id:
            message = clean_text(entry.findtext("atom:summary", default="", namespaces=NS))
            raise InputError(f"the arXiv API refused the query: {message}")
        papers.append(_paper(entry, entry_id, base_url))
    return total, papers


def _paper(entry: ET.Element, entry_id: str, base_url: str) -> Paper:
    arxiv_id = entry_id.split("/abs/", 1)[-1]
    primary = entry.find("arxiv:primary_category", NS)
    categories = [primary.get("term", "")] if primary is not None else []
    categories += [c.get("term", "") for c in entry.findall("atom:category", NS)]
    pdf_url = page_url = None
    for link in entry.findall("atom:link", NS):
        if link.get("title") == "pdf" or (link.get("rel") == "related" and link.get("type") == "application/pdf"):
            pdf_url = pdf_url or link.get("href")
        elif link.get("rel") == "alternate":
            page_url = link.get("href")
    if not pdf_url:
        pdf_url = f"{'https://arxiv.org' if base_url == DEFAULT_BASE_URL else base_url}/pdf/{arxiv_id}"
    published = entry.findtext("atom:published", default="", namespaces=NS).strip()
    return Paper(
        id=arxiv_id, source="arxiv", title=clean_text(entry.findtext("atom:title", namespaces=NS)),
        authors=[clean_text(a.findtext("atom:name", namespaces=NS)) for a in entry.findall("atom:author", NS)],
        abstract=clean_text(entry.findtext("atom:summary", namespaces=NS)),
        categories=list(dict.fromkeys(c for c in categories if c)), published=published[:10] or None,
        url=page_url or entry_id, pdf_url=_https_for_arxiv(pdf_url),
        doi=(entry.findtext("arxiv:doi", namespaces=NS) or "").strip() or None)


def _https_for_arxiv(url: str) -> str:
    """arXiv's feed links say http://arxiv.org/...; fetch them over https."""
    return "https://" + url[len("http://"):] if url.startswith("http://arxiv.org/") else url


def search(client: HttpClient, search_query: str, max_results: int, base_url: str = DEFAULT_BASE_URL,
           sort: str = "relevance", page_size: int = PAGE_SIZE) -> SearchResult:
    """Page through the API until ``max_results`` papers or the end of the results (duplicates dropped).

    A page that comes back empty before ``totalResults`` is reached is asked for once more (the API does that
    now and then under load) before the search ends.
    """
    sort_by, sort_order = SORTS[sort]
    url = base_url.rstrip("/") + API_PATH
    papers: dict[str, Paper] = {}
    total, start, empty_retry = 0, 0, True
    while len(papers) < max_results:
        params = {"search_query": search_query, "start": str(start),
                  "max_results": str(min(page_size, max_results - len(papers))),
                  "sortBy": sort_by, "sortOrder": sort_order}
        total, page = parse_feed(client.get(url, params), base_url)
        if not page:
            if start < total and empty_retry:
                empty_retry = False
                log.info("arXiv returned an empty page at start=%d of %d; asking once more", start, total)
                continue
            break
        for paper in page:
            papers.setdefault(paper.id, paper)
        start += len(page)
        if start >= total:
            break
    return SearchResult(total=total, papers=list(papers.values())[:max_results])
