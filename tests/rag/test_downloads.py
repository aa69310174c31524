"""rag.downloads: rate limiting, retries, the arXiv and PubMed clients and resumable downloads, all against a
local server (tests/rag/download_server.py) serving response files in the APIs' real formats. No network."""

from __future__ import annotations

import datetime as dt
import json
import random
import time
from pathlib import Path

import pymupdf
import pytest

from minillm.errors import InputError
from rag.downloads import (
    DownloadConfig,
    DownloadError,
    HttpClient,
    Paper,
    PapersFile,
    RateLimiter,
    RetryPolicy,
    arxiv,
    download_papers,
    pubmed,
)
from rag.downloads.http import parse_retry_after
from rag.downloads.records import safe_file_stem

from .download_server import FIXTURES, Reply, fixture, serve


class FakeClock:
    """A clock that only moves when something sleeps on it; sleeps are recorded."""

    def __init__(self) -> None:
        self.now, self.sleeps = 100.0, []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture(scope="module")
def pdf_bytes() -> bytes:
    document = pymupdf.open()
    document.new_page().insert_text((72, 72), "A tiny test paper.")
    data = document.tobytes()
    document.close()
    return data


def client_for(clock: FakeClock, interval: float = 0.0, retries: int = 3) -> HttpClient:
    return HttpClient(RateLimiter(interval, clock=clock, sleep=clock.sleep), RetryPolicy(retries=retries),
                      timeout=5, sleep=clock.sleep, rng=random.Random(0))


def arxiv_routes(server, pdf: bytes) -> None:
    """Two Atom pages (2 + 1 entries) and a PDF for each entry, links pointing at ``server``."""
    to_server = {"http://arxiv.org": server.base_url}
    server.route("/api/query", Reply(200, fixture("arxiv_page1.xml", to_server)), when={"start": "0"})
    server.route("/api/query", Reply(200, fixture("arxiv_page2.xml", to_server)), when={"start": "2"})
    for paper_id in ("2101.00001v2", "hep-th/9901001v1", "2203.01234v1"):
        server.route(f"/pdf/{paper_id}", Reply(200, pdf, {"Content-Type": "application/pdf"}))


def arxiv_config(server, tmp_path: Path, **overrides) -> DownloadConfig:
    options = {"source": "arxiv", "query": "retrieval", "max_results": 3, "output_dir": tmp_path / "papers",
               "base_url": server.base_url, "retries": 2}
    return DownloadConfig(**{**options, **overrides})


# --- rate limiting and backoff -------------------------------------------------------------------------------

def test_rate_limiter_spaces_requests_on_an_injected_clock():
    clock = FakeClock()
    limiter = RateLimiter(3.0, clock=clock, sleep=clock.sleep)
    assert limiter.wait() == 0.0  # the first request goes at once
    assert limiter.wait() == pytest.approx(3.0)
    clock.now += 1.0  # one second of work before the next request
    assert limiter.wait() == pytest.approx(2.0)
    clock.now += 10.0
    assert limiter.wait() == 0.0
    assert clock.sleeps == pytest.approx([3.0, 2.0])


def test_rate_limiter_in_real_time_never_starts_two_requests_closer_than_the_interval():
    limiter = RateLimiter(0.02)
    began = time.monotonic()
    waited = [limiter.wait() for _ in range(4)]
    assert time.monotonic() - began >= 3 * 0.02  # 4 requests span at least 3 intervals, however fast the calls
    assert waited[0] == 0.0 and all(w > 0 for w in waited[1:])


def test_backoff_grows_exponentially_with_jitter_up_to_the_cap_and_retry_after_replaces_it():
    policy, rng = RetryPolicy(retries=8, base=1.0, cap=10.0, max_retry_after=30.0), random.Random(0)
    for retry, step in enumerate([1, 2, 4, 8, 10, 10]):
        delays = [policy.delay(retry, rng=rng) for _ in range(50)]
        assert all(step / 2 <= d <= step for d in delays)
        assert len(set(delays)) > 1  # jittered
    assert policy.delay(3, retry_after=7.0) == 7.0
    assert policy.delay(0, retry_after=500.0) == 30.0  # a huge Retry-After is capped
    assert parse_retry_after("12") == 12.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0) == pytest.approx(10.0)
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


def test_client_retries_429_honouring_retry_after_then_503_then_succeeds():
    clock = FakeClock()
    with serve() as server:
        server.route("/x", Reply(429, b"slow down", {"Retry-After": "7"}), Reply(503, b"busy"), Reply(200, b"ok"))
        client = client_for(clock)
        assert client.get(server.base_url + "/x", {"q": "a b"}) == b"ok"
        assert len(server.requests_to("/x")) == 3
        assert server.requests[0].params == {"q": "a b"}
    assert clock.sleeps[0] == 7.0  # Retry-After, not the backoff
    assert 1.0 <= clock.sleeps[1] <= 2.0  # the backoff before the second retry: 1 s * 2**1, equal jitter


def test_client_gives_up_after_the_retries_naming_url_and_status_and_does_not_retry_a_404():
    clock = FakeClock()
    with serve() as server:
        server.route("/busy", Reply(503, b"busy"))
        with pytest.raises(DownloadError) as caught:
            client_for(clock, retries=2).get(server.base_url + "/busy", {"api_key": "SECRET"})
        assert len(server.requests_to("/busy")) == 3
        assert caught.value.status == 503 and "HTTP 503" in str(caught.value)
        assert "/busy" in str(caught.value) and "SECRET" not in str(caught.value)  # the key is redacted
        with pytest.raises(DownloadError) as missing:
            client_for(clock).get(server.base_url + "/nothing-here")
        assert missing.value.status == 404 and len(server.requests_to("/nothing-here")) == 1


def test_a_refused_connection_is_retried_then_reported_as_a_network_error():
    with serve() as server:
        closed = server.base_url  # nothing listens there once the server has stopped
    clock = FakeClock()
    client = client_for(clock, retries=2)
    with pytest.raises(DownloadError, match="network error") as caught:
        client.get(closed + "/api/query")
    assert caught.value.status is None and client.requests == 3 and len(clock.sleeps) == 2


def test_client_refuses_non_http_urls_and_redirects_to_them():
    clock = FakeClock()
    with serve() as server:
        server.route("/redirect", Reply(302, b"", {"Location": "ftp://127.0.0.1/secret.pdf"}))
        with pytest.raises(DownloadError, match="ftp"):
            client_for(clock).get(server.base_url + "/redirect")
    with pytest.raises(DownloadError, match="file"):
        client_for(clock).get("file:///etc/passwd")


# --- arXiv ---------------------------------------------------------------------------------------------------

def test_arxiv_query_combines_words_phrases_categories_and_dates():
    query = arxiv.build_search_query('retrieval "language model"', ["cs.CL", "cs.LG"], dt.date(2024, 1, 1),
                                     dt.date(2024, 3, 31))
    assert query == ('(all:retrieval AND all:"language model") AND (cat:cs.CL OR cat:cs.LG) AND '
                     "submittedDate:[202401010000 TO 202403312359]")
    assert arxiv.build_search_query("ti:rag AND au:lewis") == "(ti:rag AND au:lewis)"  # arXiv syntax as it is
    assert arxiv.build_search_query(None, ["hep-th"]) == "cat:hep-th"
    for bad in ("cs CL", "cs.", "CS.CL", "cat:cs.CL"):
        with pytest.raises(InputError, match="not an arXiv category"):
            arxiv.check_category(bad)


def test_arxiv_feed_parses_ids_text_authors_categories_links_and_dates():
    total, papers = arxiv.parse_feed((FIXTURES / "arxiv_page1.xml").read_bytes())
    assert total == 3 and [p.id for p in papers] == ["2101.00001v2", "hep-th/9901001v1"]
    first = papers[0]
    assert first.title == "Retrieval-Augmented Generation for Small Language Models"
    assert first.abstract.startswith("We study retrieval-augmented generation with models under one billion "
                                     "parameters.")
    assert first.authors == ["Ada Lovelace", "Charles Babbage"]
    assert first.categories[:2] == ["cs.CL", "cs.LG"]  # primary first, no duplicates
    assert first.pdf_url == "https://arxiv.org/pdf/2101.00001v2" and first.published == "2021-01-04"
    assert first.doi == "10.1234/rag.2021.001"
    error_feed = (b'<feed xmlns="http://www.w3.org/2005/Atom"><entry><id>http://arxiv.org/api/errors#bad</id>'
                  b"<title>Error</title><summary>incorrect id format for 1234</summary></entry></feed>")
    with pytest.raises(InputError, match="incorrect id format"):
        arxiv.parse_feed(error_feed)


def test_arxiv_search_pages_with_start_and_stops_at_total_results(pdf_bytes):
    clock = FakeClock()
    with serve() as server:
        arxiv_routes(server, pdf_bytes)
        result = arxiv.search(client_for(clock), "all:retrieval", 10, server.base_url, page_size=2)
        pages = server.requests_to("/api/query")
    assert result.total == 3 and [p.id for p in result.papers] == ["2101.00001v2", "hep-th/9901001v1",
                                                                   "2203.01234v1"]
    assert [(r.params["start"], r.params["max_results"]) for r in pages] == [("0", "2"), ("2", "2")]
    assert pages[0].params["search_query"] == "all:retrieval"


def test_arxiv_download_saves_pdfs_and_metadata_then_a_rerun_fetches_nothing(tmp_path, pdf_bytes):
    clock = FakeClock()
    with serve() as server:
        arxiv_routes(server, pdf_bytes)
        config = arxiv_config(server, tmp_path, request_interval=3.0)
        summary = download_papers(config, sleep=clock.sleep, clock=clock)
        assert sorted(summary.new) == ["2101.00001v2", "2203.01234v1", "hep-th/9901001v1"]
        assert not summary.failed and not summary.existing
        # 2 pages + 3 PDFs, each request 3 s after the one before on the injected clock
        assert len(server.requests) == 5 and clock.sleeps == pytest.approx([3.0] * 4)
        folder = tmp_path / "papers"
        assert sorted(p.name for p in folder.iterdir()) == ["2101.00001v2.pdf", "2203.01234v1.pdf",
                                                           "hep-th_9901001v1.pdf", "papers.json"]
        document = json.loads((folder / "papers.json").read_text())
        entry = document["papers"][0]
        assert document["format"] == "minillm-papers" and len(document["papers"]) == 3
        assert entry["id"] == "2101.00001v2" and entry["source"] == "arxiv"
        assert entry["pdf_path"] == "2101.00001v2.pdf" and entry["pdf_bytes"] == len(pdf_bytes)
        assert entry["authors"] == ["Ada Lovelace", "Charles Babbage"] and entry["published"] == "2021-01-04"
        assert pymupdf.open(folder / "hep-th_9901001v1.pdf").page_count == 1

        again = download_papers(config, sleep=clock.sleep, clock=clock)
        assert sorted(again.existing) == sorted(summary.new) and not again.new
        assert not [r for r in server.requests[5:] if r.path.startswith("/pdf/")]  # only the search ran


def test_a_download_cut_off_mid_file_leaves_no_complete_looking_file_and_the_rerun_fetches_it(tmp_path, pdf_bytes):
    clock = FakeClock()
    with serve() as server:
        arxiv_routes(server, pdf_bytes)
        server.route("/pdf/2203.01234v1", Reply(200, pdf_bytes, truncate_to=len(pdf_bytes) // 2))
        server.route("/pdf/hep-th/9901001v1", Reply(200, b"<html>PDF is being generated</html>",
                                                   {"Content-Type": "text/html"}))
        config = arxiv_config(server, tmp_path, request_interval=0.0)
        summary = download_papers(config, sleep=clock.sleep, clock=clock)
        failed = dict(summary.failed)
        assert summary.new == ["2101.00001v2"] and set(failed) == {"2203.01234v1", "hep-th/9901001v1"}
        assert "did not return a PDF" in failed["hep-th/9901001v1"]
        assert "after 3 attempts" in failed["2203.01234v1"]  # a cut-off body is retried like a network failure
        folder = tmp_path / "papers"
        assert sorted(p.name for p in folder.iterdir()) == ["2101.00001v2.pdf", "papers.json"]  # no .part left
        entries = {p.id: p for p in PapersFile(folder)}
        assert entries["2203.01234v1"].pdf_path is None and entries["2203.01234v1"].error

        arxiv_routes(server, pdf_bytes)  # the server recovers
        (folder / "2101.00001v2.pdf").write_bytes(pdf_bytes[:-10])  # and one finished file got damaged
        again = download_papers(config, sleep=clock.sleep, clock=clock)
        assert sorted(again.new) == ["2101.00001v2", "2203.01234v1", "hep-th/9901001v1"] and not again.failed
        assert (folder / "2101.00001v2.pdf").read_bytes() == pdf_bytes
        assert all(p.error is None and p.pdf_path for p in PapersFile(folder))


def test_metadata_only_writes_papers_json_and_the_search_failing_raises_with_the_status(tmp_path, pdf_bytes):
    clock = FakeClock()
    with serve() as server:
        arxiv_routes(server, pdf_bytes)
        summary = download_papers(arxiv_config(server, tmp_path, no_pdf=True, max_results=2), sleep=clock.sleep,
                                  clock=clock)
        assert summary.new == ["2101.00001v2", "hep-th/9901001v1"]
        assert [p.name for p in (tmp_path / "papers").iterdir()] == ["papers.json"]
        assert server.requests_to("/api/query")[0].params["max_results"] == "2"
        server.route("/api/query", Reply(503, b"down"))
        with pytest.raises(DownloadError) as caught:
            download_papers(arxiv_config(server, tmp_path), sleep=clock.sleep, clock=clock)
        assert caught.value.status == 503 and "/api/query" in str(caught.value)


# --- PubMed --------------------------------------------------------------------------------------------------

def test_pubmed_efetch_parses_labelled_abstracts_authors_dates_mesh_and_pmc_ids():
    papers = {p.id: p for p in pubmed.parse_efetch((FIXTURES / "pubmed_efetch.xml").read_bytes())}
    trial = papers["38000001"]
    assert trial.title == "Inhaled corticosteroids in childhood asthma: a randomized trial."
    assert trial.abstract.splitlines() == ["BACKGROUND: Asthma is common in children.",
                                           "METHODS: We randomized 200 children to budesonide or placebo.",
                                           "RESULTS: Exacerbations fell by 40%."]
    assert trial.authors == ["Marie Curie", "L Pasteur"]  # the ValidYN="N" author is left out
    assert trial.published == "2023-11-05" and trial.pmcid == "PMC10000001" and trial.doi == "10.1000/jre.2023.100"
    assert trial.categories == ["Asthma", "Child"]
    assert papers["37000002"].authors == ["European Asthma Registry Group"] and papers["37000002"].published == "2022"
    assert papers["36000003"].abstract == "" and papers["36000003"].published == "2021-04"
    assert pubmed.parse_esearch((FIXTURES / "pubmed_esearch.xml").read_bytes()) == (
        3, ["38000001", "37000002", "36000003"])
    with pytest.raises(InputError, match="refused"):
        pubmed.parse_esearch(b"<eSearchResult><ERROR>Invalid query</ERROR></eSearchResult>")


def test_pubmed_download_writes_abstract_texts_with_etiquette_dates_and_batches(tmp_path):
    clock = FakeClock()
    with serve() as server:
        server.route("/entrez/eutils/esearch.fcgi", Reply(200, fixture("pubmed_esearch.xml")))
        server.route("/entrez/eutils/efetch.fcgi", Reply(200, fixture("pubmed_efetch.xml")))
        config = DownloadConfig(source="pubmed", query="asthma", max_results=3, output_dir=tmp_path / "pm",
                                base_url=server.base_url, api_key="KEY", email="me@example.org",
                                date_from="2021-01-01", date_to="2023-12-31")
        assert config.interval == pubmed.MIN_INTERVAL_WITH_KEY
        assert DownloadConfig(source="pubmed", query="a").interval == pubmed.MIN_INTERVAL  # 3/s without a key
        summary = download_papers(config, sleep=clock.sleep, clock=clock)
        search, fetch = server.requests_to("/entrez/eutils/esearch.fcgi"), server.requests_to(
            "/entrez/eutils/efetch.fcgi")
    assert summary.new == ["38000001", "37000002", "36000003"] and summary.total_found == 3
    assert search[0].params["term"] == "asthma" and search[0].params["db"] == "pubmed"
    assert {k: search[0].params[k] for k in ("datetype", "mindate", "maxdate", "retstart", "retmax")} == {
        "datetype": "pdat", "mindate": "2021/01/01", "maxdate": "2023/12/31", "retstart": "0", "retmax": "3"}
    assert fetch[0].params["id"] == "38000001,37000002,36000003"
    assert all(r.params["api_key"] == "KEY" and r.params["email"] == "me@example.org" and r.params["tool"]
               for r in search + fetch)
    text = (tmp_path / "pm" / "38000001.txt").read_text()
    assert text.startswith("Inhaled corticosteroids in childhood asthma: a randomized trial.\n\nBACKGROUND:")
    entry = next(p for p in PapersFile(tmp_path / "pm") if p.id == "38000001")
    assert entry.pdf_path is None and entry.text_path == "38000001.txt" and entry.source == "pubmed"


# --- papers.json, names, config ------------------------------------------------------------------------------

def test_papers_file_merges_across_runs_and_refuses_a_foreign_file(tmp_path):
    first = PapersFile(tmp_path)
    first.put(Paper(id="1", source="arxiv", title="One"))
    first.put(Paper(id="2", source="arxiv", title="Two"))
    first.save()
    second = PapersFile(tmp_path)
    second.put(Paper(id="2", source="arxiv", title="Two, revised"))
    second.put(Paper(id="2", source="pubmed", title="Another source"))
    second.flush()
    assert [(p.key, p.title) for p in PapersFile(tmp_path)] == [
        ("arxiv:1", "One"), ("arxiv:2", "Two, revised"), ("pubmed:2", "Another source")]
    assert not [p for p in tmp_path.iterdir() if p.name != "papers.json"]  # no temporary files left
    (tmp_path / "papers.json").write_text('{"something": "else"}')
    with pytest.raises(InputError, match="not a papers.json"):
        PapersFile(tmp_path)


def test_file_names_are_safe_for_old_and_new_arxiv_ids():
    assert safe_file_stem("2101.00001v2") == "2101.00001v2"
    assert safe_file_stem("hep-th/9901001v1") == "hep-th_9901001v1"
    assert safe_file_stem("../../etc/passwd") == "etc_passwd"
    assert "/" not in safe_file_stem("a/../../b") and not safe_file_stem(".hidden").startswith(".")
    with pytest.raises(ValueError):
        safe_file_stem("../")


@pytest.mark.parametrize(("options", "message"), [
    ({"query": None}, "--query is missing"),
    ({"date_from": "2024-02-01", "date_to": "2024-01-01"}, "is after --date_to"),
    ({"date_from": "01/02/2024"}, "use YYYY-MM-DD"),
    ({"date_to": "2024-02-30"}, "use YYYY-MM-DD"),
    ({"max_results": 0}, "--max_results must be an integer >= 1"),
    ({"categories": ["cs/CL"]}, "not an arXiv category"),
    ({"source": "pubmed", "categories": ["cs.CL"]}, "for arXiv only"),
    ({"request_interval": 0.5}, "shorter than arxiv's limit"),
    ({"base_url": "ftp://mirror"}, "not an http"),
])
def test_config_refuses_bad_input_in_one_line(options, message):
    with pytest.raises(InputError, match=message) as caught:
        DownloadConfig(**{"query": "rag", **options})
    assert "\n" not in str(caught.value)
