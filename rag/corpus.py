"""A corpus for the document store: files or a folder -> chunk texts with their metadata.

``.txt`` / ``.md`` files are read whole (UTF-8) and split by a :class:`~rag.splitters.DocumentProcessor`;
``.jsonl`` files give one document per line, an object whose ``text_field`` (default ``"text"``) holds the text
and whose other plain fields (strings, numbers, booleans) become metadata. Every chunk's metadata says where it
came from: ``source`` (the path relative to the folder given), ``chunk`` (its number within the document),
``start``/``end`` (character offsets in the document), ``line`` for JSONL, and a ``title`` (a JSONL ``title``
field, else a text file's first Markdown heading, else its first line when that is short and reads like a
title, else its file name).

``.pdf`` and ``.epub`` files are read by :mod:`rag.readers` (PyMuPDF / ebooklib, imported only when such a file
is read; without them a MissingDependencyError names ``pip install -e ".[papers]"``): cleaned text with headings
as Markdown ``#`` lines. In a folder, a PDF/EPUB those readers refuse (scanned: needs OCR, encrypted, broken) is
skipped with a warning and listed in ``Corpus.unreadable``; a single such file is an InputError.

Other formats plug in through :func:`register_reader` (``suffix -> function(path) -> str``). In a folder, files
with no reader are skipped and counted; a single such file is an InputError.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from minillm.errors import InputError

from .readers.errors import DocumentError
from .splitters import DocumentProcessor

logger = logging.getLogger(__name__)

JSONL_SUFFIXES = (".jsonl",)
_HEADING = re.compile(r"^#{1,6}[ \t]+(\S[^\n]*)", re.MULTILINE)


def _read_plain(path: Path) -> str:
    from training.data.text import read_text

    return read_text(path, allow_empty=True)


def _read_paper(path: Path) -> str:
    from .readers import read_document  # PyMuPDF / ebooklib load only when a PDF or EPUB is read

    return read_document(path, "txt")


#: suffix (lower-case, with the dot) -> reader returning the document's text
READERS: dict[str, Callable[[Path], str]] = {".txt": _read_plain, ".md": _read_plain, ".pdf": _read_paper,
                                             ".epub": _read_paper}


def register_reader(suffix: str, reader: Callable[[Path], str]) -> None:
    """Read files ending in ``suffix`` (e.g. ``".pdf"``) with ``reader(path) -> text``."""
    if not suffix.startswith("."):
        raise InputError(f"suffix {suffix!r} must start with a dot, e.g. '.pdf'")
    READERS[suffix.lower()] = reader


def supported_suffixes() -> list[str]:
    """Every suffix a corpus may hold: the readers' and JSONL."""
    return sorted({*READERS, *JSONL_SUFFIXES})


@dataclass
class Corpus:
    """Chunk texts, one metadata dict each, and what was read or skipped."""

    texts: list[str] = field(default_factory=list)
    metadata: list[dict[str, Any]] = field(default_factory=list)
    files: int = 0
    documents: int = 0
    skipped: dict[str, int] = field(default_factory=dict)  # suffix -> files without a reader
    unreadable: dict[str, str] = field(default_factory=dict)  # source -> why its reader refused it

    def add(self, text: str, meta: dict[str, Any]) -> None:
        self.texts.append(text)
        self.metadata.append(meta)


def list_documents(path: str | os.PathLike) -> tuple[Path, list[Path], dict[str, int]]:
    """``(root, files, skipped)``: the readable files under ``path`` (sorted), or ``path`` itself."""
    path = Path(path).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"--docs {str(path)!r} does not exist")
    known = set(supported_suffixes())
    if path.is_file():
        if path.suffix.lower() not in known:
            raise InputError(f"{str(path)!r} has no reader for {path.suffix or 'files without a suffix'}; "
                             f"supported: {', '.join(supported_suffixes())}")
        return path.parent, [path], {}
    files, skipped = [], {}
    for file in sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")):
        suffix = file.suffix.lower()
        if suffix in known:
            files.append(file)
        else:
            skipped[suffix or "(none)"] = skipped.get(suffix or "(none)", 0) + 1
    if not files:
        raise InputError(f"folder {str(path)!r} holds no {', '.join(supported_suffixes())} files")
    return path, files, skipped


def _title(text: str, file: Path) -> str:
    """The first Markdown heading, else a short first line that reads like a title, else the file name."""
    heading = _HEADING.search(text)
    if heading:
        return heading.group(1).strip()
    first = text.strip().split("\n", 1)[0].strip()
    if first and len(first) <= 80 and not first.endswith((".", ",", ";", ":", "!", "?")):
        return first
    return file.stem


def _plain_fields(record: dict[str, Any], text_field: str) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k != text_field and isinstance(v, str | int | float | bool)}


def _jsonl_records(path: Path, text_field: str) -> list[tuple[int, str, dict[str, Any]]]:
    """``(line number, text, other fields)`` of every non-blank line."""
    records = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"{path}:{number} is not valid JSON ({exc.msg})") from None
            if not isinstance(record, dict) or not isinstance(record.get(text_field), str):
                raise InputError(f"{path}:{number} needs a string field {text_field!r} (pass --text_field NAME for "
                                 f"another); it has {sorted(record) if isinstance(record, dict) else type(record).__name__}")
            records.append((number, record[text_field], _plain_fields(record, text_field)))
    return records


def load_corpus(path: str | os.PathLike, processor: DocumentProcessor, text_field: str = "text",
                progress: bool = False) -> Corpus:
    """Read and split every document under ``path`` (see the module docstring)."""
    root, files, skipped = list_documents(path)
    corpus = Corpus(skipped=skipped)
    iterator: Any = files
    if progress:
        from tqdm import tqdm

        iterator = tqdm(files, desc="reading", unit="file", disable=len(files) < 2)
    for file in iterator:
        source = str(file.relative_to(root))
        if file.suffix.lower() in JSONL_SUFFIXES:
            documents = [(text, {"title": fields.get("title"), **fields, "line": number})
                         for number, text, fields in _jsonl_records(file, text_field)]
        else:
            try:
                text = READERS[file.suffix.lower()](file)
            except DocumentError as exc:  # a scanned, encrypted or broken PDF/EPUB: skip it in a folder
                if len(files) == 1 and Path(path).is_file():
                    raise
                corpus.unreadable[source] = str(exc)
                logger.warning("skipped %s (%s)", source, exc)
                continue
            documents = [(text, {"title": _title(text, file)})]
        corpus.files += 1
        for text, meta in documents:
            corpus.documents += 1
            for number, chunk in enumerate(processor.chunks(text)):
                corpus.add(chunk.text, {"source": source, **{k: v for k, v in meta.items() if v is not None},
                                        "chunk": number, "start": chunk.start, "end": chunk.end})
    if skipped:
        logger.warning("skipped %d file(s) with no reader: %s", sum(skipped.values()),
                       ", ".join(f"{k} x{v}" for k, v in sorted(skipped.items())))
    return corpus
