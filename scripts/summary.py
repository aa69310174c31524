"""The end of a training run as the train and continue modes print it: a JSON line and why it stopped."""

from __future__ import annotations

import json
from typing import Any

SUMMARY_KEYS = ("global_step", "epochs_completed", "early_stopped", "best_val_loss", "stop_reason")


def print_summary(result: dict[str, Any], epochs: int | None, max_steps: int | None, max_minutes: float | None,
                  patience: int | None) -> None:
    """Print the summary JSON (``stop_reason`` included) and, on the next line, why training stopped."""
    print(json.dumps({key: result.get(key) for key in SUMMARY_KEYS}))
    print(stop_sentence(result, epochs, max_steps, max_minutes, patience))


def stop_sentence(result: dict[str, Any], epochs: int | None, max_steps: int | None, max_minutes: float | None,
                  patience: int | None) -> str:
    """Why the Trainer stopped (its ``stop_reason``), as a sentence a user reads.

    >>> stop_sentence({"stop_reason": "max_time", "global_step": 412}, 10, None, 8.0, 3)
    'stopped: the 8-minute budget ran out after 412 steps (--max_minutes to change it)'
    >>> stop_sentence({"stop_reason": "early_stopping", "global_step": 90, "best_val_loss": 2.5, "best_step": 60,
    ...                "restored_best": True}, 10, None, None, 3)
    'early stopping: no improvement in 3 evaluations (best val loss 2.5000 at step 60, whose weights final/ holds)'
    """
    reason, steps = result.get("stop_reason"), result.get("global_step")
    if reason == "max_time":
        return (f"stopped: the {_number(max_minutes)}-minute budget ran out after {_steps(steps)} "
                "(--max_minutes to change it)")
    if reason == "max_steps":
        done = result.get("epochs_completed")
        return f"stopped: reached --max_steps {max_steps} " + (f"after {_epochs(done)}" if done else
                                                               "within the first epoch")
    if reason == "epochs":
        return f"finished: all {_epochs(epochs)} ran ({_steps(steps)})"
    if reason == "early_stopping":
        best = result.get("best_val_loss")
        where = f"best val loss {best:.4f} at step {result.get('best_step')}" if best is not None else "no best value"
        restored = ", whose weights final/ holds" if result.get("restored_best") else ""
        return f"early stopping: no improvement in {patience} evaluations ({where}{restored})"
    return f"stopped after {_steps(steps)} ({reason or 'no reason given'})"


def _number(value: float | None) -> str:
    """8.0 -> '8', 0.5 -> '0.5'."""
    return "?" if value is None else f"{value:g}"


def _steps(count: int | None) -> str:
    return "1 step" if count == 1 else f"{count} steps"


def _epochs(count: int | None) -> str:
    return "1 epoch" if count == 1 else f"{count} epochs"
