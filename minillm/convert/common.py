"""Helpers every converter uses: checking a state dict against the names a config expects."""

from __future__ import annotations

from collections.abc import Iterable

import torch

from minillm.errors import InputError


def check_keys(
    present: Iterable[str], expected: Iterable[str], optional: Iterable[str] = (), source: str = "checkpoint"
) -> None:
    """Raise ValueError listing unknown and missing weight names (``optional`` ones may be absent)."""
    present, expected, optional = set(present), set(expected), set(optional)
    unknown = sorted(present - expected - optional)
    missing = sorted(expected - present)
    problems = []
    if unknown:
        problems.append(f"unknown weights {_preview(unknown)}")
    if missing:
        problems.append(f"missing weights {_preview(missing)}")
    if problems:
        raise InputError(f"{source} does not match the model config: " + "; ".join(problems))


def _preview(names: list[str], limit: int = 12) -> str:
    shown = ", ".join(names[:limit])
    return f"[{shown}{', ...' if len(names) > limit else ''}] ({len(names)})"


def drop_buffers(state: dict[str, torch.Tensor], suffixes: tuple[str, ...]) -> dict[str, torch.Tensor]:
    """Remove non-weight buffers (rotary ``inv_freq``, BERT ``position_ids``) that checkpoints may carry."""
    return {k: v for k, v in state.items() if not k.endswith(suffixes)}
