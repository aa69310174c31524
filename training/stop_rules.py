"""When training stops, besides early stopping (:mod:`training.early_stopping`): a step limit and a time budget.

A time budget (``max_minutes``) also plans the run. After a few updates it knows the mean time per update
(evaluations and checkpoints included) and so how many updates the budget holds; the Trainer plans its
learning-rate schedule (the cosine's end, the warm-up's length) and its progress bar for that many, instead of for
epochs it will never reach:

>>> budget = TimeBudget(minutes=1.0, start_step=0, planned=1000)
>>> plans = [budget.plan(step, elapsed=0.5 * step) for step in range(1, 11)]   # 0.5 s per update
>>> plans[0], plans[-1]      # unknown at first; after 10 updates: 10 + 55 s / 0.5 s more
(1000, 120)
>>> TimeBudget.warmup(100, planned=120)   # warm-up at most a tenth of the plan
12

Stop reasons, as the Trainer's result reports them: ``"epochs"``, ``"max_steps"``, ``"max_time"``,
``"early_stopping"``.
"""

from __future__ import annotations

import math

STOP_REASONS = ("epochs", "max_steps", "max_time", "early_stopping")
PROBE_UPDATES = 3  # updates timed before the first estimate (the very first one pays warm-up costs)
MAX_WARMUP_SHARE = 0.1


class TimeBudget:
    """A wall-clock budget of ``minutes`` for the updates after ``start_step``.

    ``planned`` is the number of updates the run would make without the budget (None when unknown); the plan
    never exceeds it. Times come in as arguments (the Trainer averages them over ranks), so every rank of a
    distributed run plans the same.
    """

    def __init__(self, minutes: float, start_step: int, planned: int | None) -> None:
        self.seconds = float(minutes) * 60.0
        self.start_step = start_step
        self.planned = planned
        self.first_update: float | None = None  # elapsed seconds when the first update ended

    def out_of_time(self, elapsed: float) -> bool:
        """Whether ``elapsed`` seconds use up the budget."""
        return elapsed >= self.seconds

    def plan(self, step: int, elapsed: float) -> int | None:
        """Updates the run will have made when the budget ends (capped at ``planned``), or ``planned`` while the
        updates timed so far are too few to tell. Call it after every update, with the seconds since the start."""
        done = step - self.start_step
        if done == 1 and self.first_update is None:
            self.first_update = elapsed
        if done <= PROBE_UPDATES or self.first_update is None:
            return self.planned
        per_update = (elapsed - self.first_update) / (done - 1)
        remaining = max(0.0, self.seconds - elapsed)
        estimate = step + math.floor(remaining / max(per_update, 1e-9))
        return min(estimate, self.planned) if self.planned is not None else estimate

    @staticmethod
    def warmup(warmup_steps: int, planned: int | None) -> int:
        """The warm-up length for a plan of ``planned`` updates: at most a tenth of it."""
        if planned is None:
            return warmup_steps
        return min(warmup_steps, max(1, math.floor(planned * MAX_WARMUP_SHARE))) if warmup_steps else 0
