"""download_papers from the command line, against a local server (tests/rag/download_server.py); no network."""

from __future__ import annotations

import json

import pytest

import main
from tests.rag.download_server import Reply, fixture, serve

from .cli_helpers import REPO, run_cli

PDF = (b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\n"
       b"trailer<</Root 1 0 R>>\n%%EOF\n")


def test_download_papers_saves_reports_failures_and_resumes(tmp_path):
    with serve() as server:
        to_server = {"http://arxiv.org": server.base_url}
        server.route("/api/query", Reply(429, b"", {"Retry-After": "0"}),
                     Reply(200, fixture("arxiv_page1.xml", to_server)))
        server.route("/pdf/2101.00001v2", Reply(200, PDF))
        server.route("/pdf/hep-th/9901001v1", Reply(404, b"no such paper"))
        flags = ["download_papers", "--query", "retrieval", "--max-results", "2", "--output_dir", "out",
                 "--base_url", server.base_url, "--request_interval", "0", "--retries", "1"]
        first = run_cli(*flags, cwd=tmp_path, timeout=60)
        assert first.returncode == 1, first.stderr  # one paper failed: reported, and the exit code says so
        assert "arxiv: 3 hits; 1 new, 0 already there, 1 failed" in first.stdout  # 3 on the server, 2 asked
        assert "failed hep-th/9901001v1:" in first.stdout and "HTTP 404" in first.stdout
        assert f"metadata: {tmp_path / 'out' / 'papers.json'}" in first.stdout
        assert "Traceback" not in first.stderr

        server.route("/pdf/hep-th/9901001v1", Reply(200, PDF))
        second = run_cli(*flags, cwd=tmp_path, timeout=60)
    assert second.returncode == 0, second.stderr
    assert "1 new, 1 already there, 0 failed" in second.stdout
    papers = json.loads((tmp_path / "out" / "papers.json").read_text())["papers"]
    assert [(p["id"], p["pdf_path"], p["error"]) for p in papers] == [
        ("2101.00001v2", "2101.00001v2.pdf", None), ("hep-th/9901001v1", "hep-th_9901001v1.pdf", None)]
    assert (tmp_path / "out" / "hep-th_9901001v1.pdf").read_bytes() == PDF


def test_a_server_error_after_every_retry_is_one_line_naming_url_and_status_exit_1(tmp_path):
    with serve() as server:
        server.route("/entrez/eutils/esearch.fcgi", Reply(503, b"busy", {"Retry-After": "0"}))
        result = run_cli("download_papers", "--source", "pubmed", "--query", "asthma", "--base_url",
                         server.base_url, "--retries", "2", "--api_key", "SECRET", cwd=tmp_path, timeout=60)
        assert len(server.requests) == 3
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert "esearch.fcgi" in lines[0] and "HTTP 503" in lines[0] and "after 3 attempts" in lines[0]
    assert "SECRET" not in lines[0]


def test_bad_input_as_a_file_run_is_one_line_and_exit_2(tmp_path):
    import subprocess
    import sys

    result = subprocess.run([sys.executable, str(REPO / "scripts" / "download_papers.py"), "--max_results", "5"],
                            check=False, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip()] and "--query is missing" in result.stderr


@pytest.mark.parametrize(("flags", "message"), [
    (["--query", "x", "--date_from", "2024-05-01", "--date_to", "2024-01-01"], "is after --date_to"),
    (["--query", "x", "--date_from", "yesterday"], "use YYYY-MM-DD"),
    (["--query", "x", "--max_results", "0"], "--max_results must be an integer >= 1"),
    (["--query", "x", "--categories", "cs.CL", "computer science"], "not an arXiv category"),
    (["--query", "x", "--request_interval", "0.1"], "shorter than arxiv's limit"),
    (["--query", "x", "--output_dir", "blocker/sub"], "a part of the path is a file"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys, flags, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "blocker").write_text("a file where a folder should be")
    assert main.main(["download_papers", *flags]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err and err.startswith("error: ")
    assert not (tmp_path / "papers").exists()  # nothing was written
