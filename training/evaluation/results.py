"""Results files: the seed's JSON list, one object per answered question, plus a sidecar with the run's metadata.

Each item holds the seed's fields ``id, category, difficulty, question, response, time_seconds, timestamp`` and
ours: ``label``, ``model``, ``adapter`` (the run that answered; null without an adapter) and ``scores`` (a dict
of the scores that apply to the question, see :mod:`training.evaluation.scoring`). What belongs to the run as a
whole (generation settings, the bank's name and fingerprint, the perplexity on held-out text, the aggregate
scores) lives in a sidecar beside it, ``NAME.meta.json`` for ``NAME.json`` (``format: minillm-evaluation``), so
the results file stays the plain list the seed's tools read. ``compare`` reads the perplexity from the sidecar;
everything else it recomputes from the items. Both files are written atomically.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from minillm.atomic import atomic_write_text
from minillm.errors import InputError

META_FORMAT = "minillm-evaluation"
META_VERSION = 1
SEED_FIELDS = ("id", "category", "difficulty", "question", "response", "time_seconds", "timestamp")
OUR_FIELDS = ("label", "model", "adapter", "scores")
REQUIRED_FIELDS = ("id", "question", "response", "time_seconds", "label", "model", "scores")


@dataclass(frozen=True)
class RunIdentity:
    """Which run answered: the label it is reported under, the model path or alias, the adapter (or None)."""

    label: str
    model: str
    adapter: str | None = None

    def of(self, item: dict[str, Any]) -> RunIdentity:
        """The identity recorded in a results item."""
        return RunIdentity(str(item.get("label")), str(item.get("model")), item.get("adapter"))


def meta_path(results_path: str | os.PathLike) -> Path:
    """The sidecar of ``results_path``: ``NAME.meta.json`` beside ``NAME.json``."""
    path = Path(results_path)
    return path.with_name(f"{path.stem}.meta.json")


def write_results(path: str | os.PathLike, items: list[dict[str, Any]]) -> None:
    """Write the results list atomically (a temporary file, then a rename)."""
    atomic_write_text(path, json.dumps(items, indent=2, ensure_ascii=False) + "\n")


def write_meta(results_path: str | os.PathLike, meta: dict[str, Any]) -> None:
    """Write the sidecar of ``results_path`` atomically, with its format marker."""
    body = {"format": META_FORMAT, "version": META_VERSION, **meta}
    atomic_write_text(meta_path(results_path), json.dumps(body, indent=2, ensure_ascii=False) + "\n")


def read_meta(results_path: str | os.PathLike) -> dict[str, Any] | None:
    """The sidecar of ``results_path`` when it exists and is ours, else None."""
    path = meta_path(results_path)
    if not path.is_file():
        return None
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) and value.get("format") == META_FORMAT else None


def read_results(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The items of a results file written by ``evaluate``; InputError (one line) for a file that is not one."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"results file {str(path)!r} does not exist; pass a file written by "
                                "'python main.py evaluate --output FILE'")
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise InputError(f"{str(path)!r} is not a results file of ours: it is not valid JSON; pass a file "
                         "written by 'python main.py evaluate'") from None
    if not isinstance(value, list):
        raise InputError(f"{str(path)!r} is not a results file of ours: it holds a JSON {type(value).__name__}, "
                         "not a list of answers; pass a file written by 'python main.py evaluate'")
    for index, item in enumerate(value):
        missing = [name for name in REQUIRED_FIELDS if not isinstance(item, dict) or name not in item]
        if missing or not isinstance(item.get("scores"), dict):
            lacks = ", ".join(missing) if missing else "a 'scores' object"
            raise InputError(f"{str(path)!r} is not a results file of ours: item {index} lacks {lacks}; pass a "
                             "file written by 'python main.py evaluate'")
    return value


def run_identity(path: str | os.PathLike, items: list[dict[str, Any]]) -> RunIdentity | None:
    """The run a results file belongs to (its sidecar, else its first item); None for an empty file."""
    meta = read_meta(path)
    if meta is not None and meta.get("label") is not None:
        return RunIdentity(str(meta["label"]), str(meta.get("model")), meta.get("adapter"))
    return RunIdentity("", "").of(items[0]) if items else None


def check_same_run(path: str | os.PathLike, items: list[dict[str, Any]], run: RunIdentity) -> None:
    """Refuse to resume into ``path`` when its answers come from another run (label, model or adapter)."""
    for item in items:
        found = run.of(item)
        if found != run:
            raise InputError(
                f"{str(path)!r} holds answers of another run (label {found.label!r}, model {found.model!r}, "
                f"adapter {found.adapter!r}), not of label {run.label!r}, model {run.model!r}, adapter "
                f"{run.adapter!r}; pass another --output, the same --label/--model_path/--adapter, or --no_resume "
                "to start it over")
