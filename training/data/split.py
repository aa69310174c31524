"""``load_and_split_data``: read a text file, a folder of text files, a JSONL file or a JSON list; split; shuffle;
divide.

Example::

    train, val, test = load_and_split_data("corpus.txt", split_method="paragraph", val_split=0.1)
    train, val, _ = load_and_split_data("chats.jsonl")   # dict items kept as dicts (see training.data.formats)
"""

from __future__ import annotations

import logging
import os
import random
from pathlib import Path

from minillm.errors import InputError

from .formats import Item, read_json_list, read_jsonl
from .text import check_errors_mode, list_text_files, read_text

logger = logging.getLogger(__name__)
JSONL_SUFFIXES = (".jsonl",)


def load_and_split_data(
    file_path: str | os.PathLike,
    split_method: str = "paragraph",
    val_split: float = 0.1,
    test_split: float = 0.0,
    seed: int = 42,
    encoding_errors: str = "strict",
    **split_options,
) -> tuple[list[Item], list[Item], list[Item]]:
    """(train, val, test) items from ``file_path``.

    Text (.txt/.md, or a folder of them, read in sorted order) is split into pieces by
    :class:`rag.splitters.DocumentProcessor` with ``split_method`` and ``split_options`` (``min_length``,
    ``max_length``, ``overlap``, ``pattern`` ...); a piece never spans two files. JSONL gives one item per line, a ``.json`` list one item per element.
    Items are shuffled with ``random.Random(seed)``; ``val`` gets ``int(n * val_split)`` items and ``test``
    ``int(n * test_split)``. ``encoding_errors="replace"`` reads files that are not clean UTF-8.
    """
    check_errors_mode(encoding_errors)
    for name, value in (("val_split", val_split), ("test_split", test_split)):
        if not isinstance(value, (int, float)) or not 0 <= value < 1:
            raise InputError(f"{name}={value!r} must be a fraction in [0, 1)")
    if val_split + test_split >= 1:
        raise InputError(
            f"val_split={val_split} + test_split={test_split} must be below 1 (nothing left to train)"
        )
    items = load_items(file_path, split_method, encoding_errors, **split_options)
    random.Random(seed).shuffle(items)
    return split_items(items, val_split, test_split, str(file_path))


def load_items(
    file_path: str | os.PathLike,
    split_method: str = "paragraph",
    encoding_errors: str = "strict",
    **split_options,
) -> list[Item]:
    """Items of a file or folder, in file order (no shuffle)."""
    path = Path(file_path)
    if not path.exists():
        raise FileNotFoundError(f"data path {str(path)!r} does not exist")
    if path.is_file() and path.suffix.lower() in JSONL_SUFFIXES:
        return read_jsonl(path, encoding_errors)
    if path.is_file() and path.suffix.lower() == ".json":
        return read_json_list(path, encoding_errors)
    from rag.splitters import DocumentProcessor  # here, not at import time: rag may later import training

    processor = DocumentProcessor(method=split_method, **_size_options(split_options))
    items: list[Item] = []
    files = list_text_files(path)
    empty = 0
    for file in files:
        text = read_text(file, encoding_errors, allow_empty=len(files) > 1)  # one file alone must hold text
        if not text:
            logger.warning("skipping %s: the file is empty", file)
            empty += 1
            continue
        items += processor.split_text(text, **split_options)
    if empty == len(files):
        raise InputError(f"all {len(files)} text files under {str(path)!r} are empty (no text to train on)")
    if not items:
        sizes = f"min_length={processor.min_length}"
        raise InputError(
            f"{str(path)!r} gave no text pieces with split_method={split_method!r} and {sizes}; "
            "every text is shorter than min_length, lower it"
        )
    logger.info("read %d pieces from %d file(s) under %s", len(items), len(files), path)
    return items


def _size_options(options: dict) -> dict:
    """min/max length for the DocumentProcessor constructor (the other options go to split_text)."""
    return {key: options.pop(key) for key in ("min_length", "max_length") if key in options}


def split_items(
    items: list[Item], val_split: float, test_split: float, source: str = "the data"
) -> tuple[list[Item], list[Item], list[Item]]:
    """Divide already shuffled items into (train, val, test): val first, then test, the rest is train.

    >>> split_items(list(range(10)), 0.2, 0.1)
    ([3, 4, 5, 6, 7, 8, 9], [0, 1], [2])
    """
    n = len(items)
    n_val, n_test = int(n * val_split), int(n * test_split)
    if val_split > 0 and n_val == 0:
        raise InputError(
            f"{source} has only {n} piece(s), so val_split={val_split} gives an empty validation set; "
            f"need at least {_needed(val_split)} pieces, a larger val_split, or a smaller max_length"
        )
    if test_split > 0 and n_test == 0:
        raise InputError(
            f"{source} has only {n} piece(s), so test_split={test_split} gives an empty test set; "
            f"need at least {_needed(test_split)} pieces"
        )
    val, test, train = items[:n_val], items[n_val : n_val + n_test], items[n_val + n_test :]
    if not train:
        raise InputError(f"{source} has only {n} piece(s); nothing is left for training after the splits")
    return train, val, test


def _needed(fraction: float) -> int:
    n = 1
    while int(n * fraction) == 0:
        n += 1
    return n
