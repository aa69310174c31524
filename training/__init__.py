"""training: one Trainer for every model (early stopping, exact resume, DDP), checkpoints, model extraction.

Public API::

    from training import Trainer, EarlyStopping, find_latest_checkpoint
    from training import load_model_and_tokenizer, continue_training, extract_model_for_inference
    from training import load_and_split_data, create_dataloaders
"""

from __future__ import annotations

from typing import Any

from .checkpoints import find_latest_checkpoint

# Data loading (training/data*.py).
from .data import create_dataloaders, load_and_split_data
from .early_stopping import EarlyStopping
from .options import TrainerOptions
from .trainer import Trainer

# Imported on first use (they pull in minillm's loaders and, for some tokenizers, transformers).
_LAZY = {
    "load_model_and_tokenizer": "model_extraction",
    "continue_training": "model_extraction",
    "extract_model_for_inference": "model_extraction",
}

__all__ = [
    "EarlyStopping",
    "Trainer",
    "TrainerOptions",
    "continue_training",
    "create_dataloaders",
    "extract_model_for_inference",
    "find_latest_checkpoint",
    "load_and_split_data",
    "load_model_and_tokenizer",
]


def __getattr__(name: str) -> Any:
    """Import model_extraction only when one of its functions is asked for."""
    if name in _LAZY:
        import importlib

        module = importlib.import_module(f".{_LAZY[name]}", __name__)
        return getattr(module, name)
    raise AttributeError(f"module 'training' has no attribute {name!r}")
