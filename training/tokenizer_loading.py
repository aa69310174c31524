"""Open the tokenizer stored beside a model: our byte-level BPE first, transformers' AutoTokenizer otherwise.

The transformers fallback is wrapped so it speaks the project's tokenizer surface (``encode``, ``decode``,
``save``, ``vocab_size``, ``token_to_id``, ``all_special_ids`` and the ``bos/eos/pad/mask/unk/cls/sep`` ids).
transformers is imported only inside the fallback. The wrapper is the HF bridge's :class:`minillm.hf.tokenizer.HFTokenizer`, re-exported here.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from minillm.hf.tokenizer import HFTokenizer

__all__ = ["TOKENIZER_FILES", "HFTokenizer", "has_tokenizer", "load_tokenizer"]

logger = logging.getLogger(__name__)

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.txt", "spiece.model")


def has_tokenizer(directory: str | os.PathLike) -> bool:
    """Whether ``directory`` holds any tokenizer file."""
    return any((Path(directory) / name).is_file() for name in TOKENIZER_FILES)


def load_tokenizer(path: str | os.PathLike) -> Any:
    """Our ``BPETokenizer`` when ``path`` holds a byte-level BPE ``tokenizer.json``, else a wrapped HF tokenizer."""
    directory = Path(path)
    if directory.is_file():
        directory = directory.parent
    if not has_tokenizer(directory):
        raise FileNotFoundError(f"{str(directory)!r} holds no tokenizer files ({', '.join(TOKENIZER_FILES)})")
    if (directory / "tokenizer.json").is_file():
        from tokenizers_bpe import BPETokenizer

        try:
            return BPETokenizer.load(directory)
        except ValueError as exc:
            logger.info("%s is not a byte-level BPE we run (%s); using transformers' AutoTokenizer", directory, exc)
    return HFTokenizer.from_directory(directory)
