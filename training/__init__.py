"""training: one Trainer for every model (early stopping, exact resume, DDP), checkpoints, model extraction.

Public API::

    from training import Trainer, EarlyStopping, find_latest_checkpoint
    from training import load_model_and_tokenizer, continue_training, extract_model_for_inference
"""

from __future__ import annotations

from typing import Any

from .checkpoints import find_latest_checkpoint
from .early_stopping import EarlyStopping
from .options import TrainerOptions
from .trainer import Trainer

# Data loading (``load_and_split_data``, ``create_dataloaders``) lives in training/data*.py, added by the data
# loading work; export it here, next to the trainer:
# from .data import create_dataloaders, load_and_split_data

_LAZY = {
    "load_model_and_tokenizer": "model_extraction",
    "continue_training": "model_extraction",
    "extract_model_for_inference": "model_extraction",
}

__all__ = [
    "Trainer",
    "TrainerOptions",
    "EarlyStopping",
    "find_latest_checkpoint",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    """Import model_extraction only when one of its functions is asked for."""
    if name in _LAZY:
        import importlib

        module = importlib.import_module(f".{_LAZY[name]}", __name__)
        return getattr(module, name)
    raise AttributeError(f"module 'training' has no attribute {name!r}")

# Data loading (training/data*.py).
from .data import load_and_split_data  # noqa: E402
from .data_loaders import create_dataloaders  # noqa: E402

__all__ += ["load_and_split_data", "create_dataloaders"]
