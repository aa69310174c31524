"""PubMed: NCBI E-utilities, ``esearch`` for ids (paged with ``retstart``/``retmax``), ``efetch`` for records.

NCBI asks for at most 3 requests per second without an API key and 10 with one, and for ``tool`` and ``email``
parameters naming the caller (https://www.ncbi.nlm.nih.gov/books/NBK25497/). A date range filters on the
publication date (``datetype=pdat``, ``mindate``/``maxdate`` as ``YYYY/MM/DD``; NCBI needs both, so a missing end
is filled in). esearch reaches only the first 10,000 hits of a query.
"""

from __future__ import annotations

import datetime as dt
import logging
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from minillm.errors import InputError

from .http import HttpClient
from .records import Paper, SearchResult, clean_text

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://eutils.ncbi.nlm.nih.gov"
ESEARCH, EFETCH = "/entrez/eutils/esearch.fcgi", "/entrez/eutils/efetch.fcgi"
MIN_INTERVAL, MIN_INTERVAL_WITH_KEY = 0.35, 0.11  # 3 and 10 requests per second, with a little margin
ESEARCH_PAGE, EFETCH_BATCH = 1000, 200
MAX_RESULTS = 10_000
EARLIEST = dt.date(1800, 1, 1)
MONTHS = {m: i for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov",
                                      "dec"), start=1)}
SORTS = {"relevance": "relevance", "newest": "pub_date", "updated": "pub_date"}


@dataclass
class Etiquette:
    """The parameters NCBI asks every request to carry: ``tool``, ``email`` and, when there is one, ``api_key``."""

    tool: str = "minillm"
    email: str | None = None
    api_key: str | None = None

    def params(self) -> dict[str, str]:
        values = {"tool": self.tool, "email": self.email, "api_key": self.api_key}
        return {k: v for k, v in values.items() if v}


def search(client: HttpClient, query: str, max_results: int, date_from: dt.date | None = None,
           date_to: dt.date | None = None, etiquette: Etiquette | None = None,
           base_url: str = DEFAULT_BASE_URL, sort: str = "relevance", page_size: int = ESEARCH_PAGE,
           batch_size: int = EFETCH_BATCH) -> SearchResult:
    """esearch pages of ids until ``max_results`` (or the end), then efetch in batches; papers in esearch order."""
    if max_results > MAX_RESULTS:
        raise InputError(f"--max_results {max_results} is more than PubMed's esearch returns ({MAX_RESULTS}); "
                         "narrow the query (e.g. with --date_from/--date_to) or lower --max_results")
    extra = (etiquette or Etiquette()).params()
    base_url = base_url.rstrip("/")
    term = {"db": "pubmed", "term": query, "retmode": "xml", "sort": SORTS[sort], **extra}
    if date_from or date_to:
        term.update(datetype="pdat", mindate=(date_from or EARLIEST).strftime("%Y/%m/%d"),
                    maxdate=(date_to or dt.date.today()).strftime("%Y/%m/%d"))
    ids: list[str] = []
    total = 0
    while len(ids) < max_results:
        page = {"retstart": str(len(ids)), "retmax": str(min(page_size, max_results - len(ids)))}
        total, page_ids = parse_esearch(client.get(base_url + ESEARCH, {**term, **page}))
        new = [i for i in page_ids if i not in ids]
        ids += new
        if not new or len(ids) >= total:
            break
    ids = ids[:max_results]
    found: dict[str, Paper] = {}
    for start in range(0, len(ids), batch_size):
        params = {"db": "pubmed", "id": ",".join(ids[start:start + batch_size]), "retmode": "xml", **extra}
        for paper in parse_efetch(client.get(base_url + EFETCH, params)):
            found[paper.id] = paper
    missing = [i for i in ids if i not in found]
    if missing:
        log.warning("efetch returned no record for %d PMIDs: %s", len(missing), ", ".join(missing[:10]))
    return SearchResult(total=total, papers=[found[i] for i in ids if i in found])


def _xml(data: bytes, what: str) -> ET.Element:
    try:
        return ET.fromstring(data)
    except ET.ParseError as exc:
        raise ValueError(f"PubMed {what} returned malformed XML ({exc})") from None


def parse_esearch(data: bytes) -> tuple[int, list[str]]:
    """(Count, the PMIDs of IdList) of an esearch answer; an ``<ERROR>`` raises InputError."""
    root = _xml(data, "esearch")
    error = root.findtext("ERROR")
    if error:
        raise InputError(f"PubMed esearch refused the query: {clean_text(error)}")
    for phrase in root.iterfind("ErrorList/PhraseNotFound"):
        log.warning("PubMed found nothing for the phrase %r", phrase.text)
    count = root.findtext("Count")
    if count is None or not count.strip().isdigit():
        raise ValueError("PubMed esearch answered without a <Count>; is --base_url an E-utilities server?")
    return int(count), [i.text.strip() for i in root.iterfind("IdList/Id") if i.text and i.text.strip()]


def parse_efetch(data: bytes) -> list[Paper]:
    """The ``PubmedArticle`` records of an efetch ``PubmedArticleSet`` as Papers (book records are skipped)."""
    root = _xml(data, "efetch")
    return [_paper(article) for article in root.iterfind("PubmedArticle")
            if article.findtext("MedlineCitation/PMID")]


def _paper(record: ET.Element) -> Paper:
    citation = record.find("MedlineCitation")
    pmid = citation.findtext("PMID").strip()
    article = citation.find("Article")
    ids = {i.get("IdType"): (i.text or "").strip() for i in record.iterfind("PubmedData/ArticleIdList/ArticleId")}
    return Paper(
        id=pmid, source="pubmed", title=_text(article.find("ArticleTitle")) if article is not None else "",
        authors=_authors(article), abstract=_abstract(article),
        categories=[_text(d) for d in citation.iterfind("MeshHeadingList/MeshHeading/DescriptorName")],
        published=_pub_date(article.find("Journal/JournalIssue/PubDate") if article is not None else None),
        url=f"https://pubmed.ncbi.nlm.nih.gov/{pmid}/", pdf_url=None, doi=ids.get("doi") or None,
        pmcid=ids.get("pmc") or None)


def _text(element: ET.Element | None) -> str:
    """All text inside ``element`` (inline markup such as ``<i>`` included), whitespace collapsed."""
    return clean_text("".join(element.itertext())) if element is not None else ""


def _abstract(article: ET.Element | None) -> str:
    """The abstract's sections, each ``LABEL: text`` when labelled, one per line."""
    if article is None:
        return ""
    sections = []
    for part in article.iterfind("Abstract/AbstractText"):
        text, label = _text(part), part.get("Label")
        if text:
            sections.append(f"{label}: {text}" if label else text)
    return "\n".join(sections)


def _authors(article: ET.Element | None) -> list[str]:
    names = []
    for author in article.iterfind("AuthorList/Author") if article is not None else ():
        if author.get("ValidYN", "Y") == "N":
            continue
        collective = _text(author.find("CollectiveName"))
        first = _text(author.find("ForeName")) or _text(author.find("Initials"))
        name = collective or " ".join(p for p in (first, _text(author.find("LastName"))) if p)
        if name:
            names.append(name)
    return names


def _pub_date(element: ET.Element | None) -> str | None:
    """``YYYY-MM-DD`` (or ``YYYY-MM`` / ``YYYY``) from a PubDate with Year/Month/Day or a MedlineDate."""
    if element is None:
        return None
    year = (element.findtext("Year") or "").strip()
    if not year:
        medline = (element.findtext("MedlineDate") or "").strip()
        return medline[:4] if medline[:4].isdigit() else None
    month_text = (element.findtext("Month") or "").strip().lower()
    month = int(month_text) if month_text.isdigit() else MONTHS.get(month_text[:3])
    day = (element.findtext("Day") or "").strip()
    if not month:
        return year
    if not day.isdigit():
        return f"{year}-{month:02d}"
    return f"{year}-{month:02d}-{int(day):02d}"
