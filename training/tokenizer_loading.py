"""Open the tokenizer stored beside a model: our byte-level BPE first, transformers' AutoTokenizer otherwise.

The transformers fallback is wrapped so it speaks the project's tokenizer surface (``encode``, ``decode``,
``save``, ``vocab_size``, ``token_to_id``, ``all_special_ids`` and the ``bos/eos/pad/mask/unk/cls/sep`` ids). transformers is imported only inside the
fallback. (The wrapper belongs to the HF bridge, ``minillm/hf``; it lives here until the bridge offers one.)
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

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


class HFTokenizer:
    """A transformers tokenizer behind the project's tokenizer surface."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer

    @classmethod
    def from_directory(cls, directory: str | os.PathLike) -> HFTokenizer:
        """``AutoTokenizer.from_pretrained(directory)``, wrapped."""
        try:
            from transformers import AutoTokenizer
        except ImportError as exc:
            raise ValueError(
                f"{str(directory)!r} holds a tokenizer our BPE cannot read and transformers is not installed "
                f"(pip install 'minillm[hf]')"
            ) from exc
        return cls(AutoTokenizer.from_pretrained(str(directory)))

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        return list(self.tokenizer.encode(text, add_special_tokens=add_special_tokens))

    def decode(self, ids: Any, skip_special_tokens: bool = False) -> str:
        return self.tokenizer.decode(list(ids), skip_special_tokens=skip_special_tokens)

    def apply_chat_template(self, messages: list[dict[str, str]], **kwargs: Any) -> Any:
        return self.tokenizer.apply_chat_template(messages, **kwargs)

    def save(self, path: str | os.PathLike) -> Path:
        self.tokenizer.save_pretrained(str(path))
        return Path(path)

    @property
    def vocab_size(self) -> int:
        return len(self.tokenizer)

    def __len__(self) -> int:
        return len(self.tokenizer)

    def token_to_id(self, token: str) -> int | None:
        """The id of ``token`` when it is one whole vocabulary entry, else None."""
        found = self.tokenizer.convert_tokens_to_ids(token)
        unk = self.tokenizer.unk_token_id
        if found is None or (found == unk and token != self.tokenizer.unk_token):
            return None
        return int(found)

    @property
    def all_special_ids(self) -> list[int]:
        return list(self.tokenizer.all_special_ids)

    @property
    def bos_token_id(self) -> int | None:
        return self.tokenizer.bos_token_id

    @property
    def eos_token_id(self) -> int | None:
        return self.tokenizer.eos_token_id

    @property
    def pad_token_id(self) -> int | None:
        return self.tokenizer.pad_token_id

    @property
    def mask_token_id(self) -> int | None:
        return self.tokenizer.mask_token_id

    @property
    def unk_token_id(self) -> int | None:
        return self.tokenizer.unk_token_id

    @property
    def cls_token_id(self) -> int | None:
        return self.tokenizer.cls_token_id

    @property
    def sep_token_id(self) -> int | None:
        return self.tokenizer.sep_token_id
