"""The original Mini LLM docs' module name for the data helpers:
``from training.data_utils import load_and_split_data, create_dataloaders``.

They live in :mod:`training.data` (``split`` and ``loaders``).
"""

from .data import create_dataloaders, load_and_split_data

__all__ = ["create_dataloaders", "load_and_split_data"]
