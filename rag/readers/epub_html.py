"""XHTML (an EPUB chapter) -> paragraphs of text with BeautifulSoup: headings as Markdown ``#`` lines, list
items as ``- `` lines, table rows as ``a | b`` lines (pipe tables with ``markdown=True``), preformatted text kept
as it is (fenced with ``markdown=True``); scripts, styles and the head dropped."""

from __future__ import annotations

import re
import warnings
from typing import Any

from . import cleaning
from .errors import optional_import

BLOCKS = {"address", "article", "aside", "blockquote", "dd", "div", "dl", "dt", "figcaption", "figure", "footer",
          "header", "hr", "main", "ol", "p", "section", "ul", "caption", "body", "html", "td", "th"}
SKIPPED = {"script", "style", "head", "title", "noscript", "template"}
HEADINGS = {f"h{n}": n for n in range(1, 7)}
LINE_BREAK = "\u2028"


def soup_of(markup: bytes | str, parser: str | None = None) -> Any:
    """A BeautifulSoup tree (lxml's HTML parser when installed, else Python's own)."""
    bs4 = optional_import("bs4", "beautifulsoup4")
    if parser is None:
        try:
            import lxml  # noqa: F401

            parser = "lxml"
        except ImportError:
            parser = "html.parser"
    with warnings.catch_warnings():  # XHTML through an HTML parser is what we mean
        warnings.simplefilter("ignore", bs4.XMLParsedAsHTMLWarning)
        return bs4.BeautifulSoup(markup, parser)


class _Writer:
    """Collects paragraphs while walking the tree."""

    def __init__(self, markdown: bool) -> None:
        self.markdown = markdown
        self.paragraphs: list[str] = []
        self.buffer: list[str] = []

    def flush(self, prefix: str = "") -> None:
        text = re.sub(r"\s+", " ", "".join(self.buffer)).replace(LINE_BREAK, "\n")
        text = "\n".join(line.strip() for line in text.split("\n")).strip()
        self.buffer = []
        if text:
            self.paragraphs.append(prefix + text)

    def walk(self, node: Any) -> None:
        bs4 = optional_import("bs4", "beautifulsoup4")
        for child in node.children:
            if isinstance(child, bs4.element.Comment | bs4.element.Declaration | bs4.element.Doctype
                          | bs4.element.ProcessingInstruction | bs4.element.CData):
                continue
            if isinstance(child, bs4.element.NavigableString):
                self.buffer.append(str(child))
                continue
            self.element(child)

    def element(self, tag: Any) -> None:
        name = (tag.name or "").lower().split(":")[-1]
        if name in SKIPPED:
            return
        if name in HEADINGS:
            self.flush()
            text = " ".join(tag.get_text(" ").split())
            if text:
                self.paragraphs.append(f"{'#' * HEADINGS[name]} {text}")
        elif name == "br":
            self.buffer.append(LINE_BREAK)
        elif name == "pre":
            self.flush()
            text = tag.get_text().strip("\n")
            if text.strip():
                self.paragraphs.append(f"```\n{text}\n```" if self.markdown else text)
        elif name == "li":
            self.flush()
            self.walk(tag)
            self.flush(prefix="- ")
        elif name == "tr":
            self.table_row(tag)
        elif name in BLOCKS:
            self.flush()
            self.walk(tag)
            self.flush()
        else:
            self.walk(tag)

    def table_row(self, row: Any) -> None:
        self.flush()
        cells = [" ".join(cell.get_text(" ").split()) for cell in row.find_all(["td", "th"], recursive=False)]
        if not any(cells):
            return
        if self.markdown:
            line = "| " + " | ".join(cells) + " |"
            header = row.find("th", recursive=False) is not None
            self.paragraphs.append(line + ("\n|" + " --- |" * len(cells) if header else ""))
        else:
            self.paragraphs.append(" | ".join(cells))


def html_paragraphs(markup: bytes | str, markdown: bool = False, parser: str | None = None) -> list[str]:
    """The paragraphs of an XHTML document's body (see the module docstring), ligatures normalised."""
    soup = soup_of(markup, parser)
    writer = _Writer(markdown)
    writer.walk(soup.body or soup)
    writer.flush()
    return [cleaning.normalize_ligatures(p) for p in writer.paragraphs]


def join_paragraphs(paragraphs: list[str]) -> str:
    """Paragraphs separated by blank lines; consecutive table rows (and list items) kept on adjacent lines."""
    out: list[str] = []
    for paragraph in paragraphs:
        tight = out and ((paragraph.startswith("|") and out[-1].startswith("|"))
                         or (paragraph.startswith("- ") and out[-1].startswith("- ")))
        if tight:
            out[-1] += "\n" + paragraph
        else:
            out.append(paragraph)
    return cleaning.tidy("\n\n".join(out))
