"""PDF/EPUB readers and their clean-up: crafted text, and small PDFs and EPUBs generated here."""

from __future__ import annotations

import doctest
import subprocess
import sys
import zipfile
from pathlib import Path

import pymupdf
import pytest

from minillm.errors import InputError, MissingDependencyError
from rag.readers import (
    BrokenDocumentError,
    EncryptedDocumentError,
    NeedsOCRError,
    cleaning,
    coverage,
    read_document,
    read_epub,
    read_pdf,
    read_with,
)
from rag.readers.pdf_layout import Line, TextBlock, heading_levels, reading_order, split_heading

REPO = Path(__file__).resolve().parents[2]
HEADER = "Proceedings of Testing 2024"


# ---------------------------------------------------------------- generated documents

def write_paper_pdf(path: Path, pages: int = 4) -> Path:
    """Two-column pages whose right column is drawn before the left one, a running header, "Page N" footers, a
    20 pt heading, a hyphenated line break and an fi ligature (in an embedded font that has the glyph)."""
    document = pymupdf.open()
    ligature_font = pymupdf.Font("cjk")
    for n in range(1, pages + 1):
        page = document.new_page(width=612, height=792)
        page.insert_text((220, 40), HEADER, fontsize=10)
        top = 80
        if n == 1:
            page.insert_text((72, 80), "Widget Theory", fontsize=20)
            top = 130
        right = [f"Right column text on page {n} follows the left", "column in reading order, whatever",
                 "order the file draws them in."]
        page.insert_text((320, top), "\n".join(right), fontsize=10)  # drawn first
        left = [f"Left column paragraph on page {n} begins", "here, and the widget demon-",
                "stration continues on this line", "with more words to read."]
        page.insert_text((72, top), "\n".join(left), fontsize=10)
        if n == 2:
            writer = pymupdf.TextWriter(page.rect)
            writer.append((72, top + 80), "The \ufb01nancial report ends here.", font=ligature_font, fontsize=10)
            writer.write_text(page)
        page.insert_text((290, 770), f"Page {n}", fontsize=10)
    document.subset_fonts()
    document.save(path)
    return path


def write_image_only_pdf(path: Path) -> Path:
    document = pymupdf.open()
    page = document.new_page()
    pixmap = pymupdf.Pixmap(pymupdf.csRGB, pymupdf.IRect(0, 0, 40, 40), False)
    pixmap.clear_with(128)
    page.insert_image(pymupdf.Rect(72, 72, 300, 300), pixmap=pixmap)
    document.save(path)
    return path


def write_encrypted_pdf(path: Path, user_password: str = "secret") -> Path:
    document = pymupdf.open()
    document.new_page().insert_text((72, 72), "Confidential widget plans for the board.", fontsize=11)
    # RC4 when only the owner has a password: pypdf opens it without the cryptography package
    method = pymupdf.PDF_ENCRYPT_AES_256 if user_password else pymupdf.PDF_ENCRYPT_RC4_128
    document.save(path, encryption=method, user_pw=user_password, owner_pw="owner")
    return path


def _xhtml(title: str, body: str) -> str:
    return (f'<?xml version="1.0" encoding="utf-8"?>\n<html xmlns="http://www.w3.org/1999/xhtml"><head>'
            f"<title>{title}</title><style>p {{color: red}}</style></head><body>{body}</body></html>")


def write_epub(path: Path) -> Path:
    """A tiny EPUB 3: the spine reads zeta.xhtml before alpha.xhtml; a nav document that is not read."""
    opf = """<?xml version="1.0" encoding="utf-8"?>
<package xmlns="http://www.idpf.org/2007/opf" version="3.0" unique-identifier="id">
 <metadata xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:identifier id="id">test-book</dc:identifier>
  <dc:title>Test Book</dc:title><dc:language>en</dc:language></metadata>
 <manifest>
  <item id="nav" href="nav.xhtml" media-type="application/xhtml+xml" properties="nav"/>
  <item id="a" href="text/alpha.xhtml" media-type="application/xhtml+xml"/>
  <item id="z" href="text/zeta.xhtml" media-type="application/xhtml+xml"/>
 </manifest>
 <spine><itemref idref="z"/><itemref idref="a"/></spine>
</package>"""
    container = """<?xml version="1.0"?>
<container version="1.0" xmlns="urn:oasis:names:tc:opendocument:xmlns:container">
 <rootfiles><rootfile full-path="OEBPS/content.opf" media-type="application/oebps-package+xml"/></rootfiles>
</container>"""
    zeta = _xhtml("Zeta", "<h1>Zeta Opening</h1><p>The first chapter in reading order speaks of "
                          "<em>owls</em>.</p><h2>Owl Habits</h2><ul><li>Owls hunt at night.</li>"
                          "<li>Owls nest in trees.</li></ul><script>var hidden = 1;</script>")
    alpha = _xhtml("Alpha", "<h1>Alpha Closing</h1><p>The second chapter ends the \ufb01nal story.</p>"
                            "<table><tr><th>Bird</th><th>Wings</th></tr><tr><td>Owl</td><td>2</td></tr></table>")
    nav = _xhtml("Contents", '<nav epub:type="toc"><ol><li>Navigation entry only</li></ol></nav>')
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("mimetype", "application/epub+zip", compress_type=zipfile.ZIP_STORED)
        archive.writestr("META-INF/container.xml", container)
        archive.writestr("OEBPS/content.opf", opf)
        archive.writestr("OEBPS/nav.xhtml", nav)
        archive.writestr("OEBPS/text/alpha.xhtml", alpha)
        archive.writestr("OEBPS/text/zeta.xhtml", zeta)
    return path


@pytest.fixture(scope="module")
def docs(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("docs")
    zip_not_epub = folder / "zip-not-epub.epub"
    with zipfile.ZipFile(zip_not_epub, "w") as archive:
        archive.writestr("readme.txt", "I am a zip, not an EPUB.")
    (folder / "not-zip.epub").write_text("I'm not an epub!")
    (folder / "not-pdf.pdf").write_text("%PDF? no, just text")
    return {"paper": write_paper_pdf(folder / "paper.pdf"), "scan": write_image_only_pdf(folder / "scan.pdf"),
            "locked": write_encrypted_pdf(folder / "locked.pdf"),
            "owner_only": write_encrypted_pdf(folder / "owner-only.pdf", user_password=""),
            "book": write_epub(folder / "book.epub"), "zip_not_epub": zip_not_epub,
            "not_zip": folder / "not-zip.epub", "not_pdf": folder / "not-pdf.pdf"}


# ---------------------------------------------------------------- cleaning (pure functions)

@pytest.mark.parametrize("module", [cleaning, coverage])
def test_docstring_examples(module):
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0


def test_dehyphenation_follows_the_document_spelling():
    words = cleaning.vocabulary(["a well-known result", "an example"])
    assert cleaning.join_lines(["a well-", "known fact, an exam-", "ple here"], words) == \
        "a well-known fact, an example here"
    assert cleaning.dehyphenate("data is trans-\nmitted\nAnd a dash -\nstays") == \
        "data is transmitted\nAnd a dash -\nstays"


def test_running_lines_keep_body_numbers_and_rare_lines():
    bodies = ["Intro", "Methods", "Data", "Results", "Discussion", "Summary"]
    pages = [[("Even header" if n % 2 else "Odd header 2024"), f"{body} opens page {n}.", "12",
              f"{body} closes it.", f"- {n} -"] for n, body in enumerate(bodies, start=1)]
    cleaned = cleaning.remove_running_lines(pages)
    for n, (page, body) in enumerate(zip(cleaned, bodies, strict=True), start=1):
        assert page == [f"{body} opens page {n}.", "12", f"{body} closes it."]  # "12" is mid-page: kept
    # fewer than 3 pages: only page numbers go; a long line is never a running line
    assert cleaning.remove_running_lines([["Header", "Text one.", "1"], ["Header", "Text two.", "2"]]) == \
        [["Header", "Text one."], ["Header", "Text two."]]
    paragraph = "A long paragraph that repeats. " * 6
    assert cleaning.remove_running_lines([[paragraph, "Ex."], [paragraph, "Why."], [paragraph, "Zed."]]) == \
        [[paragraph, "Ex."], [paragraph, "Why."], [paragraph, "Zed."]]
    # positions given (a page's margins): only those are candidates
    assert cleaning.running_lines([["Head", "Head"]] * 3, candidates=[{1}] * 3) == [{1}] * 3


def test_split_paragraphs_stop_at_sentences_and_headings():
    assert cleaning.join_split_paragraphs(["Ends here.", "new one", "# Head", "lower start"]) == \
        ["Ends here.", "new one", "# Head", "lower start"]
    assert cleaning.join_split_paragraphs(["cut across the", "column break."]) == ["cut across the column break."]


def _block(x0, y0, x1, y1, text, size=10.0, bold=False):
    return TextBlock(x0, y0, x1, y1, [Line(line, size, bold) for line in text.split("\n")])


def test_reading_order_two_columns_between_spanning_blocks():
    title = _block(100, 50, 500, 70, "A Title Across Both Columns", size=18)
    right_top = _block(320, 100, 540, 300, "right top " * 20)
    left_top = _block(72, 100, 290, 300, "left top " * 20)
    left_bottom = _block(72, 310, 290, 500, "left bottom " * 20)
    wide_figure = _block(72, 520, 540, 540, "Figure 1: a caption spanning the page")
    right_after = _block(320, 560, 540, 700, "right after " * 20)
    left_after = _block(72, 560, 290, 700, "left after " * 20)
    blocks = [right_after, wide_figure, left_bottom, title, right_top, left_after, left_top]
    ordered = reading_order(blocks, 612)
    assert ordered == [title, left_top, left_bottom, right_top, wide_figure, left_after, right_after]
    single = [_block(72, 300, 540, 400, "second " * 30), _block(72, 100, 540, 200, "first " * 30)]
    assert [b.text[:5] for b in reading_order(single, 612)] == ["first", "secon"]


def test_headings_by_size_and_by_numbered_bold():
    blocks = [_block(72, 50, 500, 70, "Big Title", size=20), _block(72, 80, 500, 90, "Section Head", size=14),
              _block(72, 100, 500, 200, "body text " * 50),
              TextBlock(72, 210, 500, 260, [Line("2.1 Assumptions", 10, True), Line("We assume things.", 10)]),
              _block(72, 270, 500, 280, "\u2211", size=16)]
    levels = heading_levels(blocks, 10.0)
    assert [split_heading(b, 10.0, levels)[:2] for b in blocks] == \
        [("Big Title", 1), ("Section Head", 2), (None, 0), ("2.1 Assumptions", 3), (None, 0)]
    assert [line.text for line in split_heading(blocks[3], 10.0, levels)[2]] == ["We assume things."]


# ---------------------------------------------------------------- PDF readers

def test_pdf_text_reading_order_headers_hyphens_ligatures(docs):
    text = read_pdf(docs["paper"])
    assert text.splitlines()[0] == "# Widget Theory"
    assert "demonstration continues" in text and "demon-" not in text
    assert "The financial report" in text and "\ufb01" not in text
    assert HEADER not in text and "Page 2" not in text
    positions = []
    for n in range(1, 5):
        positions += [text.index(f"Left column paragraph on page {n}"), text.index(f"Right column text on page {n}")]
    assert positions == sorted(positions)  # page by page, the left column first


def test_pdf_fallback_reads_the_same_words(docs):
    text = read_with(docs["paper"], "fallback")
    assert "demonstration continues" in text and "The financial report" in text
    assert HEADER not in text and "Page 3" not in text
    assert coverage.recall(read_pdf(docs["paper"]), text) > 0.9


@pytest.mark.slow
def test_pdf_markdown_with_pymupdf4llm(docs):
    text = read_document(docs["paper"], fmt="md")
    assert any(line.startswith("#") and "Widget Theory" in line for line in text.splitlines())
    assert "demonstration" in text and "financial" in text and "\ufb01" not in text
    assert "Page 2" not in text


@pytest.mark.parametrize("role", ["primary", "fallback"])
def test_pdf_errors_are_typed(docs, role):
    with pytest.raises(NeedsOCRError, match="scan.pdf.*needs OCR"):
        read_with(docs["scan"], role)
    with pytest.raises(EncryptedDocumentError, match="locked.pdf"):
        read_with(docs["locked"], role)
    with pytest.raises(BrokenDocumentError, match="not-pdf.pdf"):
        read_with(docs["not_pdf"], role)
    assert "Confidential widget plans" in read_with(docs["owner_only"], role)  # no password needed to read
    assert issubclass(NeedsOCRError, InputError)


# ---------------------------------------------------------------- EPUB readers

@pytest.mark.parametrize("role", ["primary", "fallback"])
def test_epub_spine_order_headings_and_lists(docs, role):
    text = read_with(docs["book"], role)
    assert text.index("# Zeta Opening") < text.index("## Owl Habits") < text.index("# Alpha Closing")
    assert "- Owls hunt at night.\n- Owls nest in trees." in text
    assert "speaks of owls." in text and "the final story" in text
    assert "Navigation entry only" not in text and "hidden" not in text and "color" not in text
    if role == "primary":
        assert read_epub(docs["book"]) == text
    markdown = read_with(docs["book"], role, fmt="md")
    assert "| Bird | Wings |\n| --- | --- |\n| Owl | 2 |" in markdown


@pytest.mark.parametrize("role", ["primary", "fallback"])
def test_broken_epubs(docs, role):
    with pytest.raises(BrokenDocumentError, match="not-zip.epub: not an EPUB"):
        read_with(docs["not_zip"], role)
    with pytest.raises(BrokenDocumentError, match="zip-not-epub.epub: not an EPUB"):
        read_with(docs["zip_not_epub"], role)


def test_epub_that_ebooklib_refuses_is_read_from_its_spine(tmp_path):
    path = write_epub(tmp_path / "bare.epub")
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    opf = members["OEBPS/content.opf"].decode()
    start, end = opf.index("<metadata"), opf.index("</metadata>") + len("</metadata>")
    members["OEBPS/content.opf"] = (opf[:start] + "<metadata/>" + opf[end:]).encode()  # no Dublin Core at all
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    text = read_epub(path)
    assert text.index("# Zeta Opening") < text.index("# Alpha Closing")


def test_read_document_refuses_other_files(tmp_path):
    (tmp_path / "notes.docx").write_text("x")
    with pytest.raises(InputError, match="not a PDF or EPUB"):
        read_document(tmp_path / "notes.docx")
    with pytest.raises(FileNotFoundError, match="missing.pdf"):
        read_document(tmp_path / "missing.pdf")
    with pytest.raises(InputError, match="format 'html'"):
        read_document(tmp_path / "missing.pdf", fmt="html")


def test_missing_package_names_the_extra(docs, monkeypatch):
    monkeypatch.setitem(sys.modules, "pymupdf", None)  # import pymupdf now fails
    with pytest.raises(MissingDependencyError, match=r'pip install -e "\.\[papers\]"'):
        read_pdf(docs["paper"])


@pytest.mark.slow
def test_import_rag_stays_light():
    code = ("import sys, rag, rag.corpus, rag.readers, rag.readers.extraction_run; "
            "heavy = {'pymupdf', 'pymupdf4llm', 'pypdf', 'ebooklib', 'bs4'} & set(sys.modules); "
            "print(sorted(heavy))")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
