"""The original Mini LLM docs' module name for the Trainer: ``from training.enhanced_trainer import Trainer``.

It is :class:`training.trainer.Trainer`, with early stopping and resumable checkpoints.
"""

from .early_stopping import EarlyStopping
from .trainer import Trainer

__all__ = ["EarlyStopping", "Trainer"]
