"""Learning-rate schedules as pure functions of the optimizer step (no hidden state to save).

``lr_factor(step, ...)`` is the multiplier of the base learning rate for update number ``step`` (0-based).
Warmup is linear and reaches the full rate on update ``warmup_steps - 1``:

>>> [lr_factor(s, "constant", warmup_steps=4) for s in range(6)]
[0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
>>> [round(lr_factor(s, "cosine", warmup_steps=0, total_steps=4), 3) for s in range(5)]
[1.0, 0.854, 0.5, 0.146, 0.0]
>>> [lr_factor(s, "linear", warmup_steps=0, total_steps=4) for s in range(5)]
[1.0, 0.75, 0.5, 0.25, 0.0]

The Trainer's default is ``"constant"`` (after warmup), which does not depend on how many epochs are asked
for, so ``train(epochs=3)`` and ``train(epochs=10)`` share their first three epochs exactly. ``"cosine"`` and
``"linear"`` decay over ``max_steps`` when it is given, otherwise over the number of updates of the first
``train()`` call (recorded in the checkpoint, so a resumed run keeps the same curve).
"""

from __future__ import annotations

import math

from minillm.errors import InputError

SCHEDULES = ("constant", "cosine", "linear")


def validate_schedule(kind: str, warmup_steps: int, min_lr_ratio: float = 0.0) -> None:
    """Raise ValueError for an unknown schedule or out-of-range settings."""
    if kind not in SCHEDULES:
        raise InputError(f"lr_scheduler {kind!r} is unknown; use one of {', '.join(SCHEDULES)}")
    if not isinstance(warmup_steps, int) or warmup_steps < 0:
        raise InputError(f"warmup_steps must be an int >= 0, got {warmup_steps!r}")
    if not 0.0 <= min_lr_ratio <= 1.0:
        raise InputError(f"min_lr_ratio must be in [0, 1], got {min_lr_ratio!r}")


def lr_factor(
    step: int, kind: str = "constant", warmup_steps: int = 0, total_steps: int | None = None,
    min_lr_ratio: float = 0.0,
) -> float:
    """Multiplier of the base learning rate for update ``step`` (0-based)."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    if kind == "constant":
        return 1.0
    if total_steps is None:
        raise InputError(f"lr_scheduler {kind!r} needs total_steps (pass max_steps to the Trainer)")
    span = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / span)
    if kind == "cosine":
        decay = 0.5 * (1.0 + math.cos(math.pi * progress))
    elif kind == "linear":
        decay = 1.0 - progress
    else:
        raise InputError(f"lr_scheduler {kind!r} is unknown; use one of {', '.join(SCHEDULES)}")
    return min_lr_ratio + (1.0 - min_lr_ratio) * decay


def set_learning_rate(optimizer, base_lrs: list[float], factor: float) -> float:
    """Apply ``factor`` to every param group's base rate; return the first group's rate."""
    for group, base in zip(optimizer.param_groups, base_lrs, strict=True):
        group["lr"] = base * factor
    return optimizer.param_groups[0]["lr"]
