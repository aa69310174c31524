"""The resume file of a text-extraction run (``OUT/.resume.json``) and the output names of its inputs.

One record per input file (keyed by its resolved path): its output name, status, reader, size of the text and
the source's size and modification time. The file is rewritten atomically after every input, so a run killed at
any moment loses at most the file it was reading.

Output names: ``<stem>.txt`` (or ``.md``); when several inputs share a stem (``a/paper.pdf`` and ``b/paper.pdf``,
or ``paper.pdf`` and ``paper.epub``), the first in input order keeps the plain stem and each other becomes
``<stem>-<first 8 hex digits of the sha1 of its resolved path>``. A name once given is kept on later runs.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from minillm.atomic import atomic_write_text

logger = logging.getLogger(__name__)
RESUME_FILE = ".resume.json"
RESUME_FORMAT = "minillm-extract-text-resume"
#: outcomes that end a file's processing (a re-run skips them while the source and the settings are unchanged)
FINAL = ("done", "too_short", "needs_ocr", "encrypted", "broken")
#: outcomes a re-run retries with the fallback reader
RETRY_WITH_FALLBACK = ("crashed", "timeout", "error")


def source_key(path: Path) -> str:
    return str(Path(path).resolve())


def fingerprint(path: Path) -> dict[str, int]:
    stat = Path(path).stat()
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


@dataclass
class ResumeState:
    """The records of ``OUT/.resume.json``; :meth:`save` after every change."""

    path: Path
    records: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def load(cls, output_dir: Path, resume: bool = True) -> ResumeState:
        """The state in ``output_dir`` (empty when ``resume`` is false or there is none; a damaged file is set
        aside as ``.resume.json.damaged`` and the run starts afresh)."""
        path = Path(output_dir) / RESUME_FILE
        if not resume or not path.is_file():
            return cls(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("format") != RESUME_FORMAT or not isinstance(data.get("files"), dict):
                raise ValueError(f"not a {RESUME_FORMAT} file")
        except (ValueError, OSError) as exc:
            logger.warning("%s is unreadable (%s); starting afresh", path, exc)
            path.replace(path.with_name(RESUME_FILE + ".damaged"))
            return cls(path)
        return cls(path, dict(data["files"]))

    def save(self) -> None:
        atomic_write_text(self.path, json.dumps({"format": RESUME_FORMAT, "version": 1, "files": self.records},
                                                indent=1, sort_keys=True) + "\n")

    def finished(self, source: Path, settings: dict[str, Any]) -> dict[str, Any] | None:
        """The record of ``source`` when it is finished for these settings and unchanged since, else None."""
        record = self.records.get(source_key(source))
        if not record or record.get("status") not in FINAL:
            return None
        if any(record.get(k) != v for k, v in fingerprint(source).items()):
            return None
        if record["status"] in ("done", "too_short") and any(record.get(k) != v for k, v in settings.items()):
            return None
        if record["status"] == "done" and not (self.path.parent / record.get("output", "")).is_file():
            return None
        return record

    def role_for(self, source: Path) -> str:
        """"fallback" when the last attempt at ``source`` crashed, hung or failed inside the parser."""
        record = self.records.get(source_key(source))
        return "fallback" if record and record.get("status") in RETRY_WITH_FALLBACK else "primary"

    def record(self, source: Path, **fields: Any) -> dict[str, Any]:
        key = source_key(source)
        previous = self.records.get(key, {})
        record = {"source": str(source), "name": previous.get("name"), "attempts": previous.get("attempts", 0) + 1,
                  **fingerprint(source), **fields}
        self.records[key] = record
        self.save()
        return record


def _hashed(path: Path) -> str:
    return f"{path.stem}-{hashlib.sha1(source_key(path).encode()).hexdigest()[:8]}"


def assign_names(files: list[Path], state: ResumeState) -> dict[Path, str]:
    """An output name (no suffix) for every input, unique ignoring case; see the module docstring."""
    names: dict[Path, str] = {}
    taken: set[str] = set()
    for file in files:  # names given by earlier runs stay
        name = state.records.get(source_key(file), {}).get("name")
        if name and name.lower() not in taken:
            names[file] = name
            taken.add(name.lower())
    for file in files:
        if file in names:
            continue
        name = file.stem if file.stem.lower() not in taken else _hashed(file)
        names[file] = name
        taken.add(name.lower())
    for file, name in names.items():
        state.records.setdefault(source_key(file), {})["name"] = name
    return names
