"""The readers on ../shared/data: 21 research-paper PDFs (one scanned) and 5 EPUBs (two broken).

The whole folder goes through the extraction run once (module fixture); coverage is the multiset recall of the
reference's words (rag.readers.coverage): a PDF's own text layer, an EPUB's stdlib-only conversion. The floors
sit a little under what bench/bench_extraction.py measured (PDF txt: median 0.983, min 0.951; EPUB: 0.996+).
"""

from __future__ import annotations

import re
import statistics
from pathlib import Path

import pytest

from rag.readers import read_document, read_with
from rag.readers.coverage import epub_reference_text, pdf_text_layer, recall
from rag.readers.extraction_run import ExtractionConfig, run_extraction

pytestmark = [pytest.mark.shared_data, pytest.mark.slow]

PDF_MIN, PDF_MEDIAN, EPUB_MIN = 0.93, 0.97, 0.99


@pytest.fixture(scope="module")
def extracted(shared_data, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("extracted")
    inputs = [shared_data / "papers-pdf", shared_data / "epub"]
    report = run_extraction(ExtractionConfig(inputs, out, progress=False))
    outcomes = {Path(o.source).name: o for o in report.outcomes}
    texts = {name: (out / o.output).read_text() for name, o in outcomes.items() if o.status == "done"}
    return {"outcomes": outcomes, "texts": texts, "data": shared_data}


def test_every_file_has_the_expected_outcome(extracted):
    status = {name: o.status for name, o in extracted["outcomes"].items()}
    assert len(status) == 26
    assert status.pop("1985-Flajolet-Probabilistic-counting.pdf") == "needs_ocr"
    assert status.pop("not-an-epub.epub") == status.pop("not-an-epub-but-a-zip.epub") == "broken"
    assert set(status.values()) == {"done"}  # the other 20 PDFs and 3 EPUBs
    assert "needs OCR" in extracted["outcomes"]["1985-Flajolet-Probabilistic-counting.pdf"].message


def test_pdf_coverage_against_the_text_layer(extracted):
    folder = extracted["data"] / "papers-pdf"
    scores = {name: recall(pdf_text_layer(folder / name), text)
              for name, text in extracted["texts"].items() if name.endswith(".pdf")}
    assert len(scores) == 20
    low = {name: round(score, 3) for name, score in scores.items() if score < PDF_MIN}
    assert not low, low
    assert statistics.median(scores.values()) >= PDF_MEDIAN


def test_epub_coverage_against_an_independent_conversion(extracted):
    folder = extracted["data"] / "epub"
    for name in ("pg84-frankenstein.epub", "epub30-spec.epub", "figure-gallery-bindings.epub"):
        assert recall(epub_reference_text(folder / name), extracted["texts"][name]) >= EPUB_MIN, name


# A reference for Frankenstein made by hand from its spine and XHTML (a public-domain text): the book's sections in
# reading order, and the first and last sentences of the story, which must come in that order, once each.
FRANKENSTEIN_SECTIONS = [f"## Letter {n}" for n in range(1, 5)] + [f"## Chapter {n}" for n in range(1, 25)]
FRANKENSTEIN_FIRST = ("You will rejoice to hear that no disaster has accompanied the commencement of an enterprise "
                      "which you have regarded with such evil forebodings.")
FRANKENSTEIN_LAST = "He was soon borne away by the waves and lost in darkness and distance."


def test_epub_against_a_hand_made_reference_of_reading_order(extracted):
    text = extracted["texts"]["pg84-frankenstein.epub"]
    headings = [line for line in text.splitlines() if line.startswith(("## Letter", "## Chapter"))]
    assert headings == FRANKENSTEIN_SECTIONS  # every section once, in spine order
    body = " ".join(text.split())
    assert body.count(FRANKENSTEIN_FIRST) == 1 and body.count(FRANKENSTEIN_LAST) == 1
    assert body.index("## Letter 1") < body.index(FRANKENSTEIN_FIRST) < body.index("## Chapter 24") < \
        body.index(FRANKENSTEIN_LAST) < body.index("## THE FULL PROJECT GUTENBERG LICENSE")


def test_two_column_paper_reads_column_by_column_with_headings(extracted):
    text = extracted["texts"]["the-google-file-system.pdf"]
    # page 2: 2.1 fills the left column, 2.2 tops the right one (higher on the page than the end of 2.1)
    assert text.index("## 2.1 Assumptions") < text.index("## 2.2 Interface") < text.index("## 2.3 Architecture")
    assert text.startswith("# The Google File System\n")
    assert "\ufb01" not in text and "file system" in text
    headed = [name for name, t in extracted["texts"].items() if name.endswith(".pdf")
              and sum(line.startswith("#") for line in t.splitlines()) >= 3]
    assert len(headed) >= 15


def test_running_headers_and_page_numbers_are_gone(extracted):
    text = extracted["texts"]["tidy_data.pdf"]
    # every page of the journal layout carries "Journal of Statistical Software" / "Tidy Data" and a page number
    # (odd pages: "Journal of Statistical Software  N", even pages: "N  Tidy Data"); 23 pages
    assert text.count("Journal of Statistical Software") <= 3  # the title page and the references
    assert not [line for line in text.splitlines() if re.fullmatch(r"\d*\s*Tidy Data\s*\d*", line.strip())]
    assert "# Tidy Data" in text


def test_markdown_and_fallback_on_one_paper(shared_data):
    path = shared_data / "papers-pdf" / "bitcoin.pdf"
    reference = pdf_text_layer(path)
    markdown = read_document(path, fmt="md")
    assert any(line.startswith("#") and "Bitcoin" in line for line in markdown.splitlines())
    assert recall(reference, markdown) >= 0.95
    assert recall(reference, read_with(path, "fallback")) >= 0.95
