"""WordPiece (BERT) tokenizers: HF ``tokenizers`` behind the same surface as our BPETokenizer.

``tokenizers`` is imported lazily, inside :meth:`WordPieceTokenizer.load`, so ``import minillm`` never needs it.
Padding configured in the file (all-MiniLM-L6-v2 pads every sequence to 128) is switched off: ``encode`` returns
the real ids and batching pads (see ``minillm.collators``). Truncation stays as the file configures it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

TOKENIZER_FILE = "tokenizer.json"
CONFIG_FILE = "tokenizer_config.json"
ROLES = ("cls_token", "sep_token", "pad_token", "mask_token", "unk_token")
DEFAULTS = {"cls_token": "[CLS]", "sep_token": "[SEP]", "pad_token": "[PAD]", "mask_token": "[MASK]",
            "unk_token": "[UNK]"}


class WordPieceTokenizer:
    """A loaded HF tokenizer.json (WordPiece for BERT, but any model type works) with our tokenizer protocol."""

    def __init__(self, tokenizer: Any, special: dict[str, str] | None = None) -> None:
        self._tok = tokenizer
        self._tok.no_padding()
        self.special = {**DEFAULTS, **(special or {})}

    # ----------------------------------------------------------------- files
    @classmethod
    def load(cls, path: str | os.PathLike) -> WordPieceTokenizer:
        """Open ``tokenizer.json`` or a folder holding it (and, optionally, ``tokenizer_config.json``)."""
        from tokenizers import Tokenizer

        path = Path(path)
        file = path / TOKENIZER_FILE if path.is_dir() else path
        if not file.is_file():
            raise FileNotFoundError(f"no {TOKENIZER_FILE} at {str(path)!r}")
        special: dict[str, str] = {}
        config_file = file.parent / CONFIG_FILE
        if config_file.is_file():
            config = json.loads(config_file.read_text())
            special = {role: _text(config[role]) for role in ROLES if config.get(role)}
        return cls(Tokenizer.from_file(str(file)), special)

    from_pretrained = load

    def save(self, path: str | os.PathLike) -> Path:
        """Write ``tokenizer.json`` and ``tokenizer_config.json`` into folder ``path``; returns the json's path."""
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        self._tok.save(str(folder / TOKENIZER_FILE))
        config = {"tokenizer_class": "BertTokenizer", **self.special}
        (folder / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
        return folder / TOKENIZER_FILE

    save_pretrained = save

    # ----------------------------------------------------------------- encode / decode
    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        """Token ids of ``text`` ([CLS] ... [SEP] with ``add_special_tokens``)."""
        return list(self._tok.encode(text, add_special_tokens=add_special_tokens).ids)

    def encode_batch(self, texts: Iterable[str], add_special_tokens: bool = True) -> list[list[int]]:
        """Token ids of every text (HF tokenizers encodes the batch in parallel)."""
        encodings = self._tok.encode_batch(list(texts), add_special_tokens=add_special_tokens)
        return [list(e.ids) for e in encodings]

    def decode(self, ids: Iterable[int], skip_special_tokens: bool = False) -> str:
        return self._tok.decode([int(i) for i in ids], skip_special_tokens=skip_special_tokens)

    def decode_batch(self, batch: Iterable[Iterable[int]], skip_special_tokens: bool = False) -> list[str]:
        return [self.decode(ids, skip_special_tokens) for ids in batch]

    def tokenize(self, text: str) -> list[str]:
        return list(self._tok.encode(text, add_special_tokens=False).tokens)

    # ----------------------------------------------------------------- vocabulary
    @property
    def vocab_size(self) -> int:
        return self._tok.get_vocab_size(with_added_tokens=True)

    def __len__(self) -> int:
        return self.vocab_size

    def token_to_id(self, token: str) -> int | None:
        return self._tok.token_to_id(token)

    def id_to_token(self, index: int) -> str | None:
        return self._tok.id_to_token(index)

    def get_vocab(self) -> dict[str, int]:
        return self._tok.get_vocab(with_added_tokens=True)

    def _role_id(self, role: str) -> int | None:
        return self._tok.token_to_id(self.special[role])

    @property
    def cls_token_id(self) -> int | None:
        return self._role_id("cls_token")

    @property
    def sep_token_id(self) -> int | None:
        return self._role_id("sep_token")

    @property
    def pad_token_id(self) -> int | None:
        return self._role_id("pad_token")

    @property
    def mask_token_id(self) -> int | None:
        return self._role_id("mask_token")

    @property
    def unk_token_id(self) -> int | None:
        return self._role_id("unk_token")

    @property
    def bos_token_id(self) -> int | None:
        return self.cls_token_id

    @property
    def eos_token_id(self) -> int | None:
        return self.sep_token_id

    @property
    def all_special_ids(self) -> list[int]:
        ids = {self._role_id(role) for role in ROLES}
        return sorted(i for i in ids if i is not None)

    def __repr__(self) -> str:
        return f"WordPieceTokenizer(vocab_size={self.vocab_size})"


def _text(token: Any) -> str:
    """A special token as written in tokenizer_config.json: a string or an AddedToken dict."""
    return token["content"] if isinstance(token, dict) else str(token)
