"""EarlyStopping: a small pure class that watches one metric and says when to stop.

>>> stopper = EarlyStopping(patience=2, min_delta=0.1)
>>> [stopper.step(v) for v in (1.0, 0.95, 0.5, 0.45, 0.44)]   # True when the value is a new best
[True, False, True, False, False]
>>> stopper.should_stop, stopper.best, stopper.bad_epochs
(True, 0.5, 2)
"""

from __future__ import annotations

import math
from typing import Any

from minillm.errors import InputError


class EarlyStopping:
    """Stop after ``patience`` evaluations without an improvement larger than ``min_delta``.

    ``mode="min"`` (validation loss) counts ``value < best - min_delta`` as an improvement; ``mode="max"`` counts
    ``value > best + min_delta``. ``patience=None`` never stops but still tracks the best value. The whole state is
    JSON (``state_dict`` / ``load_state_dict``) so a resumed run continues counting where it left off.
    """

    def __init__(self, patience: int | None = 3, min_delta: float = 0.0, mode: str = "min") -> None:
        if patience is not None and (not isinstance(patience, int) or patience < 1):
            raise InputError(f"early_stopping_patience must be a positive int or None, got {patience!r}")
        if not isinstance(min_delta, (int, float)) or min_delta < 0 or math.isnan(min_delta):
            raise InputError(f"early_stopping_min_delta must be a number >= 0, got {min_delta!r}")
        if mode not in ("min", "max"):
            raise InputError(f"mode must be 'min' or 'max', got {mode!r}")
        self.patience = patience
        self.min_delta = float(min_delta)
        self.mode = mode
        self.best: float | None = None
        self.best_step: int | None = None
        self.bad_epochs = 0
        self.should_stop = False

    def is_improvement(self, value: float) -> bool:
        """Whether ``value`` beats the best so far by more than ``min_delta`` (the first value always does)."""
        if math.isnan(value):
            return False
        if self.best is None:
            return True
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def step(self, value: float, step: int | None = None) -> bool:
        """Record one evaluation; return True when it is a new best. Sets ``should_stop`` when patience runs out."""
        value = float(value)
        improved = self.is_improvement(value)
        if improved:
            self.best, self.best_step, self.bad_epochs = value, step, 0
        else:
            self.bad_epochs += 1
            if self.patience is not None and self.bad_epochs >= self.patience:
                self.should_stop = True
        return improved

    def state_dict(self) -> dict[str, Any]:
        """JSON-serialisable state."""
        return {
            "patience": self.patience, "min_delta": self.min_delta, "mode": self.mode, "best": self.best,
            "best_step": self.best_step, "bad_epochs": self.bad_epochs, "should_stop": self.should_stop,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the counters (patience, min_delta and mode stay as constructed)."""
        self.best = state["best"]
        self.best_step = state.get("best_step")
        self.bad_epochs = int(state["bad_epochs"])
        self.should_stop = bool(state["should_stop"])
        if self.patience is not None and self.bad_epochs >= self.patience:
            self.should_stop = True
