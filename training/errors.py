"""Errors of the training package that the command line reports as one line (exit 1) rather than a traceback."""

from __future__ import annotations


class TrainingError(RuntimeError):
    """Training could not go on (a non-finite loss, a missing best checkpoint ...); the message says why and what
    to try. Bad *input* is still a ValueError; this is for failures found while training."""
