"""The files of a saved document store: telling a pickle or a stray file from a store directory, and reading
``store.json`` and ``documents.jsonl`` back with checks (a damaged or foreign file is one InputError naming it)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from minillm.errors import InputError

FORMAT = "minillm-document-store"
VERSION = 1


def refuse_file(path: Path, doing: str) -> None:
    """A store is a directory: say what ``path`` (a file) is, never opening it as a pickle."""
    with open(path, "rb") as handle:
        head = handle.read(2)
    if len(head) == 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        raise InputError(f"{str(path)!r} is a pickle file (the original store format); minillm never unpickles "
                         f"(it can run code), so rebuild the store and {doing} a directory path instead")
    raise InputError(f"{str(path)!r} is a file, not a document store; a saved store is a directory, so {doing} a "
                     "directory path (new or written by SimpleDocumentStore.save)")



def read_meta(path: Path) -> dict[str, Any]:
    """store.json, checked: a missing, unreadable or foreign one is an InputError naming the file."""
    file = path / "store.json"
    try:
        meta = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{str(path)!r} holds no store.json, so it is not a document store minillm wrote") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"{str(file)!r} is not readable JSON ({exc}); the store is corrupt") from None
    found = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
    if found != FORMAT:
        raise InputError(f"{str(file)!r} has format {found!r}, not a document store minillm wrote ({FORMAT!r})")
    if meta.get("version") != VERSION:
        raise InputError(f"{str(file)!r} has store format version {meta.get('version')!r}; this minillm reads "
                         f"version {VERSION}")
    for key, kind in (("embedder", dict), ("retriever", str), ("rrf_k", int), ("count", int), ("next_id", int)):
        if not isinstance(meta.get(key), kind):
            raise InputError(f"{str(file)!r} has {key}={meta.get(key)!r}; expected a {kind.__name__}: the store "
                             "is corrupt")
    return meta


def read_documents(file: Path, count: int) -> tuple[list[int], list[str], list[dict[str, Any]]]:
    """(ids, texts, metadata) from documents.jsonl, refusing a damaged file or a count other than store.json's."""
    ids, texts, metas = [], [], []
    try:
        with open(file, encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                record = json.loads(line)
                doc, text, meta = record["id"], record["text"], record["metadata"]
                if isinstance(doc, bool) or not isinstance(doc, int) or not isinstance(text, str) or not isinstance(
                        meta, dict):
                    raise TypeError(f"line {number} has id {doc!r}, text of type {type(text).__name__}, metadata "
                                     f"of type {type(meta).__name__}")
                ids.append(doc)
                texts.append(text)
                metas.append(meta)
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{str(file)!r} is missing or damaged ({exc}); the store is corrupt") from None
    if len(ids) != count or len(set(ids)) != len(ids):
        raise InputError(f"{str(file)!r} holds {len(ids)} documents ({len(set(ids))} distinct ids); store.json says "
                         f"{count}: the store is corrupt")
    return ids, texts, metas
