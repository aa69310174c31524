"""Read two or more results files for ``compare``: check they answer one bank, and summarise each run.

Two files answer the same bank when they hold the same ids with the same question text (order aside). Each run's
summary is recomputed from its items (:func:`training.evaluation.scoring.aggregate`); its perplexity comes from
the sidecar (:mod:`training.evaluation.results`), None when the run measured none.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from minillm.errors import InputError

from .results import read_meta, read_results, run_identity
from .scoring import aggregate

_SHOWN = 5  # ids listed in a "different banks" message


@dataclass
class RunResults:
    """One results file: who answered, the answers, and their summary (scores, times, perplexity)."""

    path: Path
    label: str
    model: str
    adapter: str | None
    items: list[dict[str, Any]]
    summary: dict[str, Any]

    def by_id(self) -> dict[str, dict[str, Any]]:
        return {str(item["id"]): item for item in self.items}


def load_run(path: str | os.PathLike) -> RunResults:
    """One results file as a :class:`RunResults`; InputError for a file that is not ours or holds no answers."""
    path = Path(path)
    items = read_results(path)
    identity = run_identity(path, items)
    if not items or identity is None:
        raise InputError(f"results file {str(path)!r} holds no answers yet; run 'python main.py evaluate --output "
                         f"{path}' to fill it")
    meta = read_meta(path) or {}
    summary = aggregate(items)
    summary["perplexity"] = (meta.get("perplexity") or {}).get("perplexity")
    return RunResults(path=path, label=identity.label, model=identity.model, adapter=identity.adapter, items=items,
                      summary=summary)


def load_runs(paths: Sequence[str | os.PathLike]) -> list[RunResults]:
    """Every results file in ``paths``, checked to answer one bank; labels made unique (``label (file)``)."""
    if len(paths) < 2:
        raise InputError(f"compare needs two or more results files; got {len(paths)} ({', '.join(map(str, paths))})")
    runs = [load_run(path) for path in paths]
    for other in runs[1:]:
        check_same_bank(runs[0], other)
    labels = [run.label for run in runs]
    for run in runs:
        if labels.count(run.label) > 1:
            run.label = f"{run.label} ({run.path.name})"
    return runs


def check_same_bank(first: RunResults, other: RunResults) -> None:
    """InputError naming both files and how their banks differ (ids on one side only, or a changed question)."""
    a, b = first.by_id(), other.by_id()
    only_a, only_b = sorted(set(a) - set(b), key=_order), sorted(set(b) - set(a), key=_order)
    where = f"{str(first.path)!r} and {str(other.path)!r} answer different question banks"
    if only_a or only_b:
        raise InputError(f"{where}: ids only in {first.path.name}: {_ids(only_a)}; only in {other.path.name}: "
                         f"{_ids(only_b)}; compare results of one bank (evaluate both with the same --questions)")
    for key, item in a.items():
        if item["question"] != b[key]["question"]:
            raise InputError(f"{where}: the question of id {key} differs ({_short(item['question'])!r} vs "
                             f"{_short(b[key]['question'])!r}); compare results of one bank")


def _order(key: str) -> tuple[int, str]:
    return (int(key), "") if key.isdigit() else (1 << 62, key)


def _ids(keys: list[str]) -> str:
    if not keys:
        return "none"
    shown = ", ".join(keys[:_SHOWN])
    return f"{shown} and {len(keys) - _SHOWN} more" if len(keys) > _SHOWN else shown


def _short(text: str, width: int = 40) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."
