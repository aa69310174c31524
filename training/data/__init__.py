"""training.data: from files to batches.

Reading order: ``text`` (decoding, files, paragraphs) -> ``formats`` (JSONL item kinds) -> ``split``
(:func:`load_and_split_data`) -> ``tokens`` (the memory-mapped token store) -> ``examples`` (instruction, chat,
seq2seq rows; packing) -> ``windows`` (fixed-length token windows) -> ``span_corruption`` (T5) -> ``collate``
(padding, masking) -> ``loaders`` (:func:`create_dataloaders`).
"""

from .loaders import create_dataloaders
from .split import load_and_split_data

__all__ = ["create_dataloaders", "load_and_split_data"]
