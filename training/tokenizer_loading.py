"""Open a tokenizer: our byte-level BPE first, transformers' AutoTokenizer for anything else that is valid.

``load_tokenizer(path)`` takes a folder or one tokenizer file and loads exactly what it names:

* a folder: its ``tokenizer.json`` with ``tokenizer_config.json`` (``BPETokenizer``), else transformers;
* a ``.json`` file: that file, with the roles saved beside it (``NAME_config.json``, see
  :mod:`tokenizers_bpe.storage`); a sibling ``tokenizer.json`` is never read instead (``tokenizer_config.json``
  itself means its folder);
* another standard tokenizer file (``vocab.txt``, ``tokenizer.model`` ...): its folder, through transformers;
  any other file is refused with a one-line error.

Only a *valid* ``tokenizer.json`` that is not a byte-level BPE we run (WordPiece, Unigram, byte-fallback BPE
...) goes to transformers. A broken one (not JSON, no model, malformed merges) is a
:class:`~tokenizers_bpe.errors.TokenizerInputError` naming the file, and a failure inside transformers is an
:class:`~minillm.errors.InputError` naming it: the CLI reports either as one line. The transformers fallback is
the HF bridge's :class:`minillm.hf.tokenizer.HFTokenizer` (re-exported here); both implement
:class:`minillm.tokenizer_protocol.Tokenizer`. transformers is imported only inside the fallback.
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
    """Our ``BPETokenizer`` when ``path`` is (or holds) a byte-level BPE ``tokenizer.json``, else a wrapped HF
    tokenizer; see the module docstring for what a file path loads."""
    from tokenizers_bpe import BPETokenizer, UnsupportedTokenizerError

    path = Path(path).expanduser()
    if path.is_file() and path.name == "tokenizer_config.json":
        path = path.parent  # the config is read with its folder's tokenizer.json, as transformers does
    if path.is_dir():
        if not has_tokenizer(path):
            raise FileNotFoundError(f"{str(path)!r} holds no tokenizer files ({', '.join(TOKENIZER_FILES)})")
        ours = path if (path / "tokenizer.json").is_file() else None
    elif path.is_file():
        ours = path if path.suffix == ".json" else None
    else:
        raise FileNotFoundError(f"tokenizer path {str(path)!r} does not exist")
    if ours is not None:
        try:
            return BPETokenizer.load(ours)
        except UnsupportedTokenizerError as exc:
            logger.info("%s is not a byte-level BPE we run (%s); using transformers", ours, exc)
    return HFTokenizer.load(path)
