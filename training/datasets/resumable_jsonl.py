"""Resumable record files: an append-only JSONL of keyed records, and atomic final JSONL / JSON-list files.

A builder appends each record to a progress file as soon as it is made (one line, flushed and fsynced), under a
key naming its source document and item (``"paper.md#section-3"``). A rerun reads the keys back and skips them,
so a killed run continues where it stopped, without duplicates, and what was written before stays unchanged. A
last line cut off by a kill is dropped (and cut from the file) on reading. The final ``train``/``val`` files are
then written whole through a temporary file and a rename (:func:`write_records`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from minillm.atomic import atomic_write_text
from minillm.errors import InputError

KEY = "key"


class ResumableJsonl:
    """The records of one progress file, by key; :meth:`append` adds one durably."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.records: dict[str, dict[str, Any]] = {}
        if self.path.is_file():
            self._read()

    def _read(self) -> None:
        data = self.path.read_bytes()
        good = 0  # bytes up to the end of the last complete line
        for number, line in enumerate(data.split(b"\n"), start=1):
            end = good + len(line) + 1
            if end > len(data):  # no newline after it: a line cut off by a kill (or an empty tail)
                break
            if line.strip():
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise InputError(f"{self.path}:{number} is not valid JSON ({exc.msg}); delete the file to start "
                                     "this builder over") from None
                if not isinstance(record, dict) or not isinstance(record.get(KEY), str):
                    raise InputError(f"{self.path}:{number} has no {KEY!r}; it was not written by prepare_dataset "
                                     "(delete it to start over)")
                self.records[record[KEY]] = record
            good = end
        if good < len(data):
            with self.path.open("r+b") as handle:
                handle.truncate(good)

    def __contains__(self, key: str) -> bool:
        return key in self.records

    def __len__(self) -> int:
        return len(self.records)

    def append(self, record: dict[str, Any]) -> None:
        """Add ``record`` (which holds a ``key`` not seen yet) to memory and to the file, durably."""
        key = record[KEY]
        if key in self.records:
            raise ValueError(f"record key {key!r} is already in {self.path}")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        self.records[key] = record


def write_records(path: str | os.PathLike, records: Iterable[dict[str, Any]]) -> Path:
    """Write ``records`` atomically: one JSON object per line for ``.jsonl``, one JSON list for ``.json``."""
    path = Path(path)
    rows = list(records)
    if path.suffix == ".json":
        text = json.dumps(rows, ensure_ascii=False, indent=1) + "\n"
    else:
        text = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    atomic_write_text(path, text)
    return path
