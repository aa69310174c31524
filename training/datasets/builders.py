"""The four builders: documents -> ``train``/``val`` files in the output folder, split by document.

=============  ==========================================  =============================  =========
builder        record                                      files                          val ratio
=============  ==========================================  =============================  =========
chunks         ``{"text"}``                                train.jsonl, val.jsonl         0.05
instructions   ``{"input", "output", "source"}``           train.json, val.json (lists)   0.10
chat           ``{"messages", "source"}``                  train.jsonl, val.jsonl         0.15
personas       ``{"messages", "style", "source"}``         train.jsonl, val.jsonl         0.15
=============  ==========================================  =============================  =========

Chunks are recomputed on every run (seconds) and the files replaced atomically. The other builders are
resumable: each record is appended to ``.progress/<builder>.jsonl`` under the key ``source#item`` as soon as it is
made, a rerun skips the keys it has, and the final files are rewritten atomically from that file (in document
order, whatever order the records were made in), after ``--trim_tokens`` and ``--max_samples``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from minillm.errors import InputError

from .chat import chat_items
from .chunk_dataset import check_sizes, chunk_text
from .documents import Document
from .instructions import instruction_items
from .personas import Generator, Style, persona_messages
from .resumable_jsonl import KEY, ResumableJsonl, write_records
from .splits import cap_samples, check_ratio, split_documents
from .trimming import Trimmer, count_tokens

BUILDERS = ("chunks", "instructions", "chat", "personas")
VAL_RATIO = {"chunks": 0.05, "instructions": 0.10, "chat": 0.15, "personas": 0.15}
SUFFIX = {"chunks": ".jsonl", "instructions": ".json", "chat": ".jsonl", "personas": ".jsonl"}
PROGRESS_DIR = ".progress"


@dataclass
class BuildConfig:
    """What one builder run is asked to do (the script's flags)."""

    output_dir: Path
    builder: str = "chunks"
    chunk_size: int = 2000
    overlap: int = 200
    val_ratio: float | None = None  # None: the builder's default (VAL_RATIO)
    max_samples: int | None = None
    seed: int = 42
    max_items: int | None = None
    styles: list[Style] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.builder not in BUILDERS:
            raise InputError(f"builder {self.builder!r} is unknown; choose one of {', '.join(BUILDERS)}")
        check_sizes(self.chunk_size, self.overlap)
        if self.val_ratio is None:
            self.val_ratio = VAL_RATIO[self.builder]
        check_ratio(self.val_ratio)
        if self.max_items is not None and self.max_items < 1:
            raise InputError(f"--max_items {self.max_items} must be >= 1 (or left out for all)")


@dataclass
class BuildResult:
    """What a run wrote, for the summary."""

    documents: int
    train_documents: int
    val_documents: int
    records: dict[str, int]
    characters: int
    files: list[Path]
    tokens: int | None = None
    new_records: int = 0
    resumed_records: int = 0
    empty_replies: int = 0
    trim: str | None = None
    texts: list[str] = field(default_factory=list)  # the train records' text (for the throughput estimate)


def check_output_dir(path: str | os.PathLike) -> Path:
    """``path`` created if needed; NotADirectoryError / PermissionError in one line when it cannot be written."""
    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(f"--output_dir {str(path)!r} is a file; pass a folder to write the datasets into")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PermissionError(f"--output_dir {str(path)!r} cannot be created ({exc.strerror}); pass a folder you "
                              "can write") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise PermissionError(f"--output_dir {str(path)!r} is not writable; pass a folder you can write")
    return path


def record_text(record: dict[str, Any]) -> str:
    """All the text of a record (what its characters count)."""
    if "messages" in record:
        return "\n".join(m["content"] for m in record["messages"])
    if "text" in record:
        return record["text"]
    return record["input"] + "\n" + record["output"]


def _finish(config: BuildConfig, documents: list[Document], val_sources: set[str],
            ordered: list[tuple[str, dict[str, Any]]], trimmer: Trimmer | None) -> BuildResult:
    """Trim, split, cap and write ``ordered`` ``(source, record)`` pairs; the result without resume counts."""
    splits: dict[str, list[dict[str, Any]]] = {"train": [], "val": []}
    for source, record in ordered:
        if trimmer is not None:
            record = trimmer(record)
            if record is None:
                continue
        splits["val" if source in val_sources else "train"].append(record)
    splits["train"], splits["val"] = cap_samples(splits["train"], splits["val"], config.max_samples)
    suffix = SUFFIX[config.builder]
    files = [write_records(config.output_dir / f"{name}{suffix}", rows) for name, rows in splits.items()]
    every = splits["train"] + splits["val"]
    tokens = sum(count_tokens(trimmer.tokenizer, r) for r in every) if trimmer is not None else None
    return BuildResult(
        documents=len(documents), train_documents=len(documents) - len(val_sources), val_documents=len(val_sources),
        records={name: len(rows) for name, rows in splits.items()},
        characters=sum(len(record_text(r)) for r in every), files=files, tokens=tokens,
        trim=trimmer.summary() if trimmer is not None else None,
        texts=[record_text(r) for r in splits["train"]],
    )


def build_chunks(documents: list[Document], config: BuildConfig, trimmer: Trimmer | None = None) -> BuildResult:
    """``{"text"}`` chunks of every document (see :mod:`training.datasets.chunk_dataset`)."""
    _, val_sources = split_documents([d.source for d in documents], config.val_ratio, config.seed)
    ordered = [(d.source, {"text": chunk}) for d in documents
               for chunk in chunk_text(d.text, config.chunk_size, config.overlap)]
    if not ordered:
        raise InputError("the documents gave no chunks (no text left after stripping); check --input_dir")
    return _finish(config, documents, val_sources, ordered, trimmer)


Item = tuple[str, str, Callable[[], dict[str, Any] | None]]  # (source, key, make the record)


def _items(documents: list[Document], config: BuildConfig, generator: Generator | None) -> list[Item]:
    """Every item of the builder, in document order, each with a function making its record (lazily)."""
    items: list[Item] = []
    for doc in documents:
        if config.builder == "instructions":
            items += [(doc.source, f"{doc.source}#{name}", lambda p=pair: p) for name, pair in instruction_items(doc)]
        elif config.builder == "chat":
            items += [(doc.source, f"{doc.source}#{name}", lambda r=rec: r) for name, rec in chat_items(doc)]
        else:
            text = doc.abstract or (chunk_text(doc.text, config.chunk_size, 0) or [""])[0]
            text = text[: config.chunk_size]
            for style in config.styles:
                items.append((doc.source, f"{doc.source}#{style.name}",
                              lambda d=doc, s=style, t=text: _persona_record(generator, s, d.title, t)))
    return items


def _persona_record(generator: Generator | None, style: Style, title: str, text: str) -> dict[str, Any] | None:
    if generator is None:
        raise ValueError("the personas builder needs a generator")
    messages = persona_messages(style, title, text)
    reply = generator.reply(messages)
    if not reply:
        return None
    return {"messages": [*messages, {"role": "assistant", "content": reply}], "style": style.name}


def build_keyed(documents: list[Document], config: BuildConfig, generator: Generator | None = None,
                trimmer: Trimmer | None = None, progress: Callable[[int], Any] | None = None) -> BuildResult:
    """The instructions, chat or personas dataset, resumable (see the module docstring).

    ``--max_items K`` makes only the first K items (in document order) this run; a rerun with a larger K (or
    none) continues. ``progress(total)`` may return a tqdm-like bar (``update()``) for the items left to make.
    """
    if config.builder == "chunks":
        raise ValueError("build_keyed does not build chunks; call build_chunks")
    if config.builder == "personas" and not config.styles:
        raise InputError("the personas builder needs at least one style (--styles eli5 intuitive executive)")
    _, val_sources = split_documents([d.source for d in documents], config.val_ratio, config.seed)
    store = ResumableJsonl(config.output_dir / PROGRESS_DIR / f"{config.builder}.jsonl")
    items = _items(documents, config, generator)
    if not items:
        raise InputError(f"the documents gave no {config.builder} items (no abstract or section with text); "
                         "check --input_dir")
    chosen = items if config.max_items is None else items[: config.max_items]
    todo = [item for item in chosen if item[1] not in store]
    bar = progress(len(todo)) if progress is not None and todo else None
    made = empty = 0
    for source, key, make in todo:
        record = make()
        if record is None:
            empty += 1
        else:
            store.append({KEY: key, **record, "source": source})
            made += 1
        if bar is not None:
            bar.update(1)
    if bar is not None and hasattr(bar, "close"):
        bar.close()
    ordered = [(source, _public(store.records[key])) for source, key, _ in chosen if key in store]
    result = _finish(config, documents, val_sources, ordered, trimmer)
    result.new_records, result.resumed_records, result.empty_replies = made, len(ordered) - made, empty
    return result


def _public(record: dict[str, Any]) -> dict[str, Any]:
    """The stored record without its resume key."""
    return {k: v for k, v in record.items() if k != KEY}
