"""Train/validation splits by document, and the ``--max_samples`` cap.

Documents (not records) are shuffled with ``random.Random(seed)`` and the last ``round(n * val_ratio)`` go to
validation, so no document has records in both splits. With two or more documents and ``val_ratio > 0`` at
least one document is held out and at least one is kept for training.

``--max_samples N`` caps the total after the split, proportionally: validation keeps ``round(N * share)``
records (at least one when it had any), training the rest; within a split the first records (in document order)
are kept.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import TypeVar

from minillm.errors import InputError

T = TypeVar("T")


def check_ratio(val_ratio: float) -> None:
    """Refuse a validation ratio outside [0, 1)."""
    if not 0.0 <= val_ratio < 1.0:
        raise InputError(f"--val_ratio {val_ratio} must be >= 0 and < 1, e.g. 0.05")


def split_documents(sources: Sequence[str], val_ratio: float, seed: int) -> tuple[set[str], set[str]]:
    """``(train_sources, val_sources)``: a deterministic split of the document names.

    >>> train, val = split_documents(["a", "b"], 0.05, seed=0)
    >>> len(train), len(val), train | val == {"a", "b"}
    (1, 1, True)
    """
    check_ratio(val_ratio)
    unique = sorted(set(sources))
    random.Random(seed).shuffle(unique)
    n_val = round(len(unique) * val_ratio)
    if val_ratio > 0 and len(unique) >= 2:
        n_val = min(max(n_val, 1), len(unique) - 1)
    cut = len(unique) - n_val
    return set(unique[:cut]), set(unique[cut:])


def cap_samples(train: list[T], val: list[T], max_samples: int | None) -> tuple[list[T], list[T]]:
    """Keep at most ``max_samples`` records in all, proportionally to the two splits' sizes.

    >>> cap_samples(list(range(90)), list(range(10)), 20)
    ([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17], [0, 1])
    """
    if max_samples is None:
        return train, val
    if max_samples < 1:
        raise InputError(f"--max_samples {max_samples} must be >= 1 (or left out for no cap)")
    total = len(train) + len(val)
    if total <= max_samples:
        return train, val
    n_val = round(max_samples * len(val) / total)
    if val and max_samples >= 2:
        n_val = max(n_val, 1)
    n_val = min(n_val, len(val))
    return train[: max_samples - n_val], val[:n_val]
