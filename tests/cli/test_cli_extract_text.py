"""extract_text: PDFs and EPUBs -> text files, resumable, crash-proof; and rag build over PDF/EPUB folders."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pymupdf
import pytest

from minillm.errors import InputError
from rag.readers.extraction_run import ExtractionConfig, run_extraction
from rag.readers.extraction_worker import CRASH_HOOK

from .cli_helpers import REPO, run_cli

SENTENCES = ["Quokkas migrate across the island every spring.", "The survey counted fourteen colonies.",
             "Rangers tagged each animal with a small radio collar.", "Most colonies returned within a month."]


def write_pdf(path: Path, topic: str = "quokka", sentences: int = 4) -> Path:
    """A two-page PDF whose text is about ``topic`` (a few hundred characters)."""
    document = pymupdf.open()
    for page_number in range(2):
        page = document.new_page()
        lines = [f"{topic.capitalize()} report, part {page_number + 1}."]
        lines += [s.replace("Quokkas", f"{topic.capitalize()}s") for s in SENTENCES[:sentences]]
        page.insert_text((72, 100), "\n".join(lines), fontsize=11)
    document.save(path)
    return path


def write_epub(path: Path) -> Path:
    container = ('<?xml version="1.0"?><container version="1.0" xmlns="urn:oasis:names:tc:opendocument:xmlns:'
                 'container"><rootfiles><rootfile full-path="content.opf" media-type="application/oebps-package'
                 '+xml"/></rootfiles></container>')
    opf = ('<?xml version="1.0"?><package xmlns="http://www.idpf.org/2007/opf" version="3.0">'
           '<metadata xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:identifier>w</dc:identifier>'
           '<dc:title>Wombats</dc:title><dc:language>en</dc:language></metadata>'
           '<manifest><item id="c1" href="c1.xhtml" media-type="application/xhtml+xml"/></manifest>'
           '<spine><itemref idref="c1"/></spine></package>')
    body = "".join(f"<p>{s.replace('Quokkas', 'Wombats')}</p>" for s in SENTENCES * 2)
    chapter = (f'<html xmlns="http://www.w3.org/1999/xhtml"><head><title>W</title></head><body>'
               f"<h1>Wombat Chapter</h1>{body}</body></html>")
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("mimetype", "application/epub+zip")
        archive.writestr("META-INF/container.xml", container)
        archive.writestr("content.opf", opf)
        archive.writestr("c1.xhtml", chapter)
    return path


def write_scan(path: Path) -> Path:
    document = pymupdf.open()
    pixmap = pymupdf.Pixmap(pymupdf.csRGB, pymupdf.IRect(0, 0, 20, 20), False)
    pixmap.clear_with(200)
    document.new_page().insert_image(pymupdf.Rect(72, 72, 200, 200), pixmap=pixmap)
    document.save(path)
    return path


def resume_records(out: Path) -> dict[str, dict]:
    data = json.loads((out / ".resume.json").read_text())
    return {Path(key).name: record for key, record in data["files"].items()}


def one_line_error(result: subprocess.CompletedProcess, *needles: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[0]


# ---------------------------------------------------------------- the run, in process

def test_same_stems_in_different_folders_do_not_overwrite(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    write_pdf(tmp_path / "a" / "paper.pdf", "quokka")
    write_pdf(tmp_path / "b" / "paper.pdf", "numbat")
    write_epub(tmp_path / "a" / "paper.epub")
    out = tmp_path / "out"
    config = ExtractionConfig([tmp_path / "a", tmp_path / "b"], out, progress=False)
    report = run_extraction(config)
    outputs = {Path(o.source).relative_to(tmp_path).as_posix(): o.output for o in report.outcomes}
    assert outputs["a/paper.epub"] == "paper.txt"  # the first in input order keeps the plain stem
    assert len(set(outputs.values())) == 3 and all(name.startswith("paper-") for name in
                                                   (outputs["a/paper.pdf"], outputs["b/paper.pdf"]))
    assert "Wombat Chapter" in (out / outputs["a/paper.epub"]).read_text()
    assert "Quokka report" in (out / outputs["a/paper.pdf"]).read_text()
    assert "Numbat report" in (out / outputs["b/paper.pdf"]).read_text()
    again = run_extraction(ExtractionConfig([tmp_path / "a", tmp_path / "b"], out, progress=False, resume=False))
    assert [o.output for o in again.outcomes] == [o.output for o in report.outcomes]  # stable names


def test_min_length_reports_too_little_text(tmp_path):
    write_pdf(tmp_path / "short.pdf", sentences=0)  # two one-line pages, ~30 characters
    write_pdf(tmp_path / "long.pdf")
    out = tmp_path / "out"
    report = run_extraction(ExtractionConfig([tmp_path], out, min_length=200, progress=False))
    status = {Path(o.source).name: o for o in report.outcomes}
    assert status["short.pdf"].status == "too_short" and "too little text: needs OCR?" in status["short.pdf"].message
    assert not (out / "short.txt").exists() and (out / "long.txt").is_file()
    lower = run_extraction(ExtractionConfig([tmp_path], out, min_length=10, progress=False))
    assert {Path(o.source).name: o.status for o in lower.outcomes} == {"long.pdf": "done", "short.pdf": "done"}


def test_bad_folders_raise_one_line_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no papers here")
    write_pdf(tmp_path / "paper.pdf")
    (tmp_path / "a-file").write_text("x")
    cases = [([tmp_path / "missing"], tmp_path / "out", FileNotFoundError, "does not exist"),
             ([tmp_path / "empty"], tmp_path / "out", InputError, "holds no .pdf/.epub files"),
             ([tmp_path / "paper.pdf"], tmp_path / "out", NotADirectoryError, "is a file, not a folder"),
             ([tmp_path], tmp_path / "a-file", NotADirectoryError, "is a file"),
             ([tmp_path], tmp_path / "a-file" / "out", PermissionError, "cannot be created or written")]
    for inputs, out, error, message in cases:
        with pytest.raises(error, match=message):
            run_extraction(ExtractionConfig(inputs, out, progress=False))


# ---------------------------------------------------------------- the command line

def test_bad_input_exits_2_with_one_line(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "blocker").write_text("a file where the output folder should go")
    write_pdf(tmp_path / "paper.pdf")
    one_line_error(run_cli("extract_text", "--input-dir", "missing", "--output-dir", "out", cwd=tmp_path),
                   "--input_dir", "missing", "does not exist")
    one_line_error(run_cli("extract_text", "--input_dir", "empty", "--output_dir", "out", cwd=tmp_path),
                   "empty", "holds no .pdf/.epub files")
    one_line_error(run_cli("extract_text", "--input_dir", ".", "--output_dir", "blocker/out", cwd=tmp_path),
                   "--output_dir", "blocker/out", "cannot be created or written")


@pytest.mark.slow
def test_extracts_reports_and_resumes(tmp_path):
    (tmp_path / "papers").mkdir()
    (tmp_path / "books").mkdir()
    write_pdf(tmp_path / "papers" / "quokka.pdf")
    write_scan(tmp_path / "papers" / "scan.pdf")
    write_epub(tmp_path / "books" / "wombat.epub")
    (tmp_path / "books" / "broken.epub").write_text("I'm not an epub!")
    result = run_cli("extract_text", "--input-dir", "papers", "books", "--output-dir", "out", "--no-progress",
                     cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = tmp_path / "out"
    assert "Quokkas migrate across the island" in (out / "quokka.txt").read_text()
    assert (out / "wombat.txt").read_text().startswith("# Wombat Chapter\n")
    assert "2 written, 2 skipped, 1 need OCR" in result.stdout
    assert "needs OCR (1): scan.pdf" in result.stdout and "broken.epub" in result.stdout
    records = resume_records(out)
    assert {name: r["status"] for name, r in records.items()} == {
        "quokka.pdf": "done", "scan.pdf": "needs_ocr", "wombat.epub": "done", "broken.epub": "broken"}
    assert "scan.pdf: no text layer" in (out / "extract.log").read_text()
    written = (out / "quokka.txt").stat().st_mtime_ns
    again = run_cli("extract_text", "--input_dir", "papers", "books", "--output_dir", "out", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "0 written (+2 done by an earlier run)" in again.stdout
    assert (out / "quokka.txt").stat().st_mtime_ns == written  # skipped, not rewritten
    assert {n: r["attempts"] for n, r in resume_records(out).items()} == {n: 1 for n in records}


@pytest.mark.slow
def test_native_crash_keeps_progress_and_the_rerun_uses_the_fallback(tmp_path):
    (tmp_path / "in").mkdir()
    for name in ("a", "b", "c"):
        write_pdf(tmp_path / "in" / f"{name}.pdf", topic=f"topic{name}")
    env = {**os.environ, "PYTHONPATH": str(REPO), CRASH_HOOK: "b.pdf"}
    command = [sys.executable, "scripts/extract_text.py", "--input_dir", str(tmp_path / "in"), "--output_dir",
               str(tmp_path / "out"), "--no_progress"]
    first = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, check=False, timeout=300)
    assert first.returncode == 0, first.stderr  # the run went on after the crash
    records = resume_records(tmp_path / "out")
    assert records["b.pdf"]["status"] == "crashed" and "SIGABRT" in records["b.pdf"]["message"]
    assert records["a.pdf"]["status"] == records["c.pdf"]["status"] == "done"
    assert "the reader crashed (1): b.pdf" in first.stdout
    kept = (tmp_path / "out" / "a.txt").stat().st_mtime_ns
    second = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, check=False, timeout=300)
    assert second.returncode == 0, second.stderr
    record = resume_records(tmp_path / "out")["b.pdf"]
    assert (record["status"], record["reader"], record["role"], record["attempts"]) == ("done", "pypdf",
                                                                                       "fallback", 2)
    assert "Topicbs migrate across the island" in (tmp_path / "out" / "b.txt").read_text()
    assert (tmp_path / "out" / "a.txt").stat().st_mtime_ns == kept


@pytest.mark.slow
def test_nothing_extracted_exits_1(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "broken.epub").write_text("not a zip")
    result = run_cli("extract_text", "--input_dir", "in", "--output_dir", "out", cwd=tmp_path)
    assert result.returncode == 1 and "broken or not a PDF/EPUB (1): broken.epub" in result.stdout


@pytest.mark.slow
def test_rag_builds_an_index_from_pdf_and_epub(tmp_path):
    (tmp_path / "docs").mkdir()
    write_pdf(tmp_path / "docs" / "quokka.pdf")
    write_epub(tmp_path / "docs" / "wombat.epub")
    write_scan(tmp_path / "docs" / "scan.pdf")  # skipped with a warning, not fatal
    build = run_cli("rag", "build", "--docs", "docs", "--index_path", "idx", "--embedder", "hashed",
                    "--min_chunk_length", "20", "--max_chunk_length", "200", cwd=tmp_path)
    assert build.returncode == 0, build.stderr
    assert "2 document(s)" in build.stderr and "scan.pdf" in build.stderr
    ask = run_cli("rag", "ask", "--index_path", "idx", "--query", "Where do quokkas migrate every spring?",
                  "--retrieve_only", "--top_k", "1", cwd=tmp_path)
    assert ask.returncode == 0, ask.stderr
    assert "quokka.pdf" in ask.stdout and "Quokkas migrate across the island" in ask.stdout
