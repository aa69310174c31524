"""Read a folder of documents (``.txt`` / ``.md`` / ``.jsonl``) into :class:`Document` s: title, sections, abstract.

Text files are what ``extract_text`` writes: Markdown headings ``#`` .. ``###`` mark sections; the title is the
first heading, else the first line when it is short and reads like a title, else the file name. The abstract is
the section headed "Abstract" (or "Summary"), else the first paragraphs (up to ``ABSTRACT_CHARS``). A JSONL file
gives one document per non-blank line: an object with a string ``text`` field, and optionally ``title`` (or
``question``); labelled paragraphs such as PubMedQA's ``"Methods: ..."`` count as sections there.

Every document has a ``source`` that names it uniquely and stays the same between runs: the path relative to the
input folder, plus ``:LINE`` for JSONL. Splits and resume keys are built on it.
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from minillm.errors import InputError

logger = logging.getLogger(__name__)

TEXT_SUFFIXES = (".txt", ".md")
JSONL_SUFFIXES = (".jsonl",)
ABSTRACT_CHARS = 1500
ABSTRACT_HEADINGS = ("abstract", "summary")
_HEADING = re.compile(r"^(#{1,3})[ \t]+(\S[^\n]*?)[ \t#]*$", re.MULTILINE)
_LABEL = re.compile(r"^([A-Z][A-Za-z /&-]{2,40}):[ \t]+(\S.*)", re.DOTALL)  # "Methods: We ..." (PubMedQA)


@dataclass
class Section:
    """One section: its heading and its text (without the heading line)."""

    heading: str
    content: str


@dataclass
class Document:
    """One input document; ``source`` is unique within the input folder."""

    source: str
    title: str
    text: str
    sections: list[Section] = field(default_factory=list)
    abstract: str = ""


def _paragraphs(text: str) -> list[str]:
    return [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]


def _title_from_text(text: str, fallback: str) -> str:
    heading = _HEADING.search(text)
    if heading:
        return heading.group(2).strip()
    first = text.strip().split("\n", 1)[0].strip()
    if first and len(first) <= 120 and not first.endswith((".", ",", ";", ":", "!", "?")):
        return first
    return fallback


def markdown_sections(text: str) -> list[Section]:
    """The sections under ``#`` .. ``###`` headings (text before the first heading is not a section).

    >>> [(s.heading, s.content) for s in markdown_sections("# T\\n\\nIntro.\\n\\n## Methods\\nWe did it.\\n")]
    [('T', 'Intro.'), ('Methods', 'We did it.')]
    """
    found = list(_HEADING.finditer(text))
    sections = []
    for i, match in enumerate(found):
        end = found[i + 1].start() if i + 1 < len(found) else len(text)
        sections.append(Section(match.group(2).strip(), text[match.end():end].strip()))
    return sections


def labelled_sections(text: str) -> list[Section]:
    """Paragraphs that open with a label (``"Results: ..."``) as sections; consecutive unlabelled paragraphs join
    the section before them.

    >>> [(s.heading, s.content) for s in labelled_sections("Background: Why.\\n\\nMethods: How.")]
    [('Background', 'Why.'), ('Methods', 'How.')]
    """
    sections: list[Section] = []
    for paragraph in _paragraphs(text):
        match = _LABEL.match(paragraph)
        if match:
            sections.append(Section(match.group(1).strip(), match.group(2).strip()))
        elif sections:
            sections[-1].content += "\n\n" + paragraph
    return sections


def _abstract(text: str, sections: list[Section]) -> str:
    for section in sections:
        if section.heading.strip().lower().rstrip(":") in ABSTRACT_HEADINGS and section.content:
            return section.content
    body = _HEADING.sub("", text)
    picked: list[str] = []
    for paragraph in _paragraphs(body):
        if picked and sum(len(p) for p in picked) + len(paragraph) > ABSTRACT_CHARS:
            break
        picked.append(paragraph)
    return "\n\n".join(picked)[: ABSTRACT_CHARS * 2]


def document_from_text(source: str, text: str, title: str | None = None, fallback_title: str = "") -> Document:
    """A :class:`Document` from one text: Markdown sections, else labelled paragraphs; title and abstract."""
    sections = [s for s in markdown_sections(text) if s.content]
    if not sections:
        sections = labelled_sections(text)
    title = (title or "").strip() or _title_from_text(text, fallback_title or Path(source).stem)
    sections = [s for s in sections if s.heading != title]  # the title heading is not a section to ask about
    return Document(source=source, title=title, text=text.strip(), sections=sections, abstract=_abstract(text, sections))


def _jsonl_documents(path: Path, source: str) -> list[Document]:
    documents = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"{path}:{number} is not valid JSON ({exc.msg}); each line must be one object "
                                 'like {"text": "..."}') from None
            if not isinstance(record, dict) or not isinstance(record.get("text"), str):
                seen = sorted(record) if isinstance(record, dict) else type(record).__name__
                raise InputError(f"{path}:{number} needs a string field 'text'; it has {seen}")
            if not record["text"].strip():
                continue
            title = record.get("title") if isinstance(record.get("title"), str) else record.get("question")
            documents.append(document_from_text(f"{source}:{number}", record["text"],
                                                title if isinstance(title, str) else None, f"{Path(source).stem} {number}"))
    return documents


def list_input_files(input_dir: str | os.PathLike) -> tuple[Path, list[Path]]:
    """``(root, files)``: the ``.txt``/``.md``/``.jsonl`` files under ``input_dir`` (recursively, sorted, hidden
    ones left out), or ``input_dir`` itself when it is one such file."""
    path = Path(input_dir).expanduser()
    suffixes = (*TEXT_SUFFIXES, *JSONL_SUFFIXES)
    if not path.exists():
        raise FileNotFoundError(f"--input_dir {str(path)!r} does not exist; pass a folder of .txt/.md/.jsonl files")
    if path.is_file():
        if path.suffix.lower() not in suffixes:
            raise InputError(f"--input_dir {str(path)!r} is a {path.suffix or 'suffix-less'} file; pass a folder or "
                             "a .txt/.md/.jsonl file")
        return path.parent, [path]
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in suffixes
                   and not any(part.startswith(".") for part in p.relative_to(path).parts))
    return path, files


def read_documents(input_dir: str | os.PathLike) -> list[Document]:
    """Every usable document under ``input_dir``, in a fixed order; InputError when there is none."""
    from training.data.text import read_text

    root, files = list_input_files(input_dir)
    documents: list[Document] = []
    for file in files:
        source = file.relative_to(root).as_posix()
        if file.suffix.lower() in JSONL_SUFFIXES:
            documents += _jsonl_documents(file, source)
            continue
        text = read_text(file, encoding_errors="replace", allow_empty=True)
        if text.strip():
            documents.append(document_from_text(source, text, fallback_title=file.stem))
    if not documents:
        raise InputError(f"--input_dir {str(input_dir)!r} holds no usable documents ({len(files)} .txt/.md/.jsonl "
                         "file(s), none with text); pass the folder extract_text wrote, or .jsonl with a 'text' field")
    logger.info("read %d documents from %d files under %s", len(documents), len(files), root)
    return documents
