"""HFTokenizer: any transformers tokenizer behind the project's tokenizer surface (the one BPETokenizer speaks).

``encode`` / ``encode_batch`` / ``decode``, ``vocab_size``, ``token_to_id`` / ``id_to_token``, the
bos/eos/pad/unk/mask/cls/sep ids, ``all_special_ids``, ``apply_chat_template``, ``save(dir)`` / ``load(path)``.
transformers is imported lazily, inside :meth:`HFTokenizer.load`, so ``import minillm`` never needs it.

Fast tokenizers encode through their ``tokenizers`` backend directly: padding configured in the file
(all-MiniLM-L6-v2 pads every sequence to 128) is switched off, so ``encode`` returns the real ids and batching pads
(see ``minillm.collators``); truncation stays as the file configures it. BERT-style tokenizers have no bos/eos
tokens; [CLS] and [SEP] stand in for them.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from minillm.errors import InputError

TOKENIZER_FILE = "tokenizer.json"
CONFIG_FILE = "tokenizer_config.json"
BERT_DEFAULTS = {"cls_token": "[CLS]", "sep_token": "[SEP]", "pad_token": "[PAD]", "mask_token": "[MASK]",
                 "unk_token": "[UNK]"}


class HFTokenizer:
    """A loaded transformers tokenizer (``self.tokenizer``) with our tokenizer protocol."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer

    # ----------------------------------------------------------------- files
    @classmethod
    def load(cls, path: str | os.PathLike) -> HFTokenizer:
        """Open a tokenizer folder (or its ``tokenizer.json``) with transformers' ``AutoTokenizer``.

        A folder holding only ``tokenizer.json`` opens as a ``PreTrainedTokenizerFast`` whose special tokens
        come from ``tokenizer_config.json`` when present, else BERT's names when the vocabulary has them.
        """
        path = Path(path).expanduser()
        if not path.exists():
            raise FileNotFoundError(f"tokenizer path {str(path)!r} does not exist")
        folder = path.parent if path.is_file() else path
        try:
            from transformers import AutoTokenizer, PreTrainedTokenizerFast
        except ImportError as exc:
            raise InputError(
                f"{str(folder)!r} holds a tokenizer our BPE cannot read and transformers is not installed "
                f"(pip install 'minillm[hf]')"
            ) from exc
        try:
            return cls(AutoTokenizer.from_pretrained(str(folder)))
        except (OSError, ValueError, KeyError) as exc:
            file = folder / TOKENIZER_FILE
            if not file.is_file():
                raise InputError(f"{str(folder)!r} holds no tokenizer transformers can open ({exc})") from exc
        tokenizer = PreTrainedTokenizerFast(tokenizer_file=str(file))
        vocab = tokenizer.get_vocab()
        tokenizer.add_special_tokens({role: text for role, text in BERT_DEFAULTS.items() if text in vocab})
        return cls(tokenizer)

    from_pretrained = load
    from_directory = load

    def save(self, path: str | os.PathLike) -> Path:
        """Write the tokenizer files into folder ``path`` (each file replaced atomically); returns the folder."""
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".tokenizer.tmp-", dir=folder))
        try:
            self.tokenizer.save_pretrained(str(staging))
            for file in staging.iterdir():
                os.replace(file, folder / file.name)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return folder

    save_pretrained = save

    # ----------------------------------------------------------------- encode / decode
    def _backend(self) -> Any:
        """The fast tokenizer's ``tokenizers`` object with padding off, or None for a slow tokenizer."""
        backend = getattr(self.tokenizer, "backend_tokenizer", None)
        if backend is not None and backend.padding is not None:
            backend.no_padding()
        return backend

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        """Token ids of ``text`` (with the tokenizer's own specials, e.g. [CLS] ... [SEP], when asked)."""
        if not isinstance(text, str):
            raise InputError(f"encode expects a str; got {type(text).__name__}")
        backend = self._backend()
        if backend is not None:
            return list(backend.encode(text, add_special_tokens=add_special_tokens).ids)
        return list(self.tokenizer.encode(text, add_special_tokens=add_special_tokens))

    def encode_batch(self, texts: Iterable[str], add_special_tokens: bool = True) -> list[list[int]]:
        """Token ids of every text (a fast backend encodes the batch in parallel)."""
        texts = list(texts)
        backend = self._backend()
        if backend is not None:
            return [list(e.ids) for e in backend.encode_batch(texts, add_special_tokens=add_special_tokens)]
        return [self.encode(text, add_special_tokens) for text in texts]

    def decode(self, ids: Iterable[int], skip_special_tokens: bool = False) -> str:
        return self.tokenizer.decode([int(i) for i in ids], skip_special_tokens=skip_special_tokens)

    def decode_batch(self, batch: Iterable[Iterable[int]], skip_special_tokens: bool = False) -> list[str]:
        return [self.decode(ids, skip_special_tokens) for ids in batch]

    def tokenize(self, text: str) -> list[str]:
        return list(self.tokenizer.tokenize(text))

    def apply_chat_template(self, messages: list[dict[str, str]], **kwargs: Any) -> Any:
        """transformers' ``apply_chat_template`` (the template stored with the tokenizer)."""
        return self.tokenizer.apply_chat_template(messages, **kwargs)

    # ----------------------------------------------------------------- vocabulary
    @property
    def vocab_size(self) -> int:
        """Every id the tokenizer can produce, added tokens included."""
        return len(self.tokenizer)

    def __len__(self) -> int:
        return self.vocab_size

    def token_to_id(self, token: str) -> int | None:
        """The id of ``token`` when it is one whole vocabulary entry, else None."""
        backend = getattr(self.tokenizer, "backend_tokenizer", None)
        if backend is not None:
            return backend.token_to_id(token)
        found = self.tokenizer.convert_tokens_to_ids(token)
        if found is None or (found == self.tokenizer.unk_token_id and token != self.tokenizer.unk_token):
            return None
        return int(found)

    def id_to_token(self, index: int) -> str | None:
        if not 0 <= int(index) < self.vocab_size:
            return None
        return self.tokenizer.convert_ids_to_tokens(int(index))

    def get_vocab(self) -> dict[str, int]:
        return dict(self.tokenizer.get_vocab())

    @property
    def cls_token_id(self) -> int | None:
        return self.tokenizer.cls_token_id

    @property
    def sep_token_id(self) -> int | None:
        return self.tokenizer.sep_token_id

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
    def bos_token_id(self) -> int | None:
        """The bos id, or [CLS]'s for BERT-style tokenizers that have none."""
        bos = self.tokenizer.bos_token_id
        return bos if bos is not None else self.cls_token_id

    @property
    def eos_token_id(self) -> int | None:
        """The eos id, or [SEP]'s for BERT-style tokenizers that have none."""
        eos = self.tokenizer.eos_token_id
        return eos if eos is not None else self.sep_token_id

    @property
    def all_special_ids(self) -> list[int]:
        return sorted(set(self.tokenizer.all_special_ids))

    def __repr__(self) -> str:
        return f"HFTokenizer({type(self.tokenizer).__name__}, vocab_size={self.vocab_size})"


WordPieceTokenizer = HFTokenizer  # the name earlier code and the encoder bench use
