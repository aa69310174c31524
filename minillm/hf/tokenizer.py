"""HFTokenizer: any transformers tokenizer behind the project's tokenizer surface (the one BPETokenizer speaks).

It implements :class:`minillm.tokenizer_protocol.Tokenizer`:
``encode`` / ``encode_batch`` / ``decode``, ``vocab_size``, ``token_to_id`` / ``id_to_token``, the
bos/eos/pad/unk/mask/cls/sep ids, ``all_special_ids``, ``apply_chat_template``, ``save(dir)`` / ``load(path)``.
transformers is imported lazily, inside :meth:`HFTokenizer.load`, so ``import minillm`` never needs it.

Fast tokenizers encode through their ``tokenizers`` backend directly: padding configured in the file
(all-MiniLM-L6-v2 pads every sequence to 128) is switched off, so ``encode`` returns the real ids and batching pads
(see ``minillm.collators``); truncation stays as the file configures it. BERT-style tokenizers have no bos/eos
tokens; [CLS] and [SEP] stand in for them.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from minillm.errors import InputError, MissingDependencyError

TOKENIZER_FILE = "tokenizer.json"
CONFIG_FILE = "tokenizer_config.json"
BERT_DEFAULTS = {"cls_token": "[CLS]", "sep_token": "[SEP]", "pad_token": "[PAD]", "mask_token": "[MASK]",
                 "unk_token": "[UNK]"}
#: Files transformers finds by name in a tokenizer folder: naming one of them means "the folder's tokenizer".
STANDARD_FILES = (TOKENIZER_FILE, CONFIG_FILE, "tokenizer.model", "vocab.txt", "spiece.model", "vocab.json",
                  "merges.txt", "special_tokens_map.json")
#: What a tokenizer config may say that PreTrainedTokenizerFast takes as arguments.
CONFIG_KEYS = ("bos_token", "eos_token", "pad_token", "unk_token", "mask_token", "cls_token", "sep_token",
               "chat_template", "model_max_length")


def _line(exc: BaseException) -> str:
    """An exception as one line: its type and the first line of its message."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def _read_config(path: Path) -> dict:
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{str(path)!r} is not a readable JSON tokenizer config ({_line(exc)})") from exc
    if not isinstance(config, dict):
        raise InputError(f"{str(path)!r} holds a {type(config).__name__}; expected a JSON object")
    return config


class HFTokenizer:
    """A loaded transformers tokenizer (``self.tokenizer``) with our tokenizer protocol."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer

    # ----------------------------------------------------------------- files
    @classmethod
    def load(cls, path: str | os.PathLike) -> HFTokenizer:
        """Open a tokenizer folder, or one named tokenizer file, with transformers.

        * a folder, or a file with a standard name (``tokenizer.json``, ``vocab.txt`` ... in
          :data:`STANDARD_FILES`): ``AutoTokenizer`` on the folder, as transformers lays it out; a folder holding
          only ``tokenizer.json`` opens as a ``PreTrainedTokenizerFast`` with BERT's special-token names where
          the vocabulary has them;
        * any other ``NAME.json``: that file alone, as a ``PreTrainedTokenizerFast`` with the roles and chat
          template of ``NAME_config.json`` beside it (the layout ``tokenizers_bpe`` saves), else BERT's names.

        Every failure is one :class:`~minillm.errors.InputError` naming the path.
        """
        path = Path(path).expanduser()
        if not path.exists():
            raise FileNotFoundError(f"tokenizer path {str(path)!r} does not exist")
        try:
            import transformers  # noqa: F401 - only to say clearly when it is missing
        except ImportError as exc:
            raise InputError(
                f"{str(path)!r} holds a tokenizer our BPE cannot read and transformers is not installed "
                f"(pip install 'minillm[hf]')"
            ) from exc
        if path.is_dir():
            return cls._open_folder(path)
        if path.name in STANDARD_FILES:
            return cls._open_folder(path.parent)
        if path.suffix == ".json":
            config = path.with_name(path.stem + "_config.json")  # the layout tokenizers_bpe.storage writes
            return cls._open_file(path, _read_config(config) if config.is_file() else None)
        raise InputError(
            f"{str(path)!r} is not a file transformers opens alone; pass a tokenizer.json-format file or the folder "
            f"holding the tokenizer ({', '.join(STANDARD_FILES)})"
        )

    @classmethod
    def _open_folder(cls, folder: Path) -> HFTokenizer:
        from transformers import AutoTokenizer

        try:
            return cls(AutoTokenizer.from_pretrained(str(folder)))
        except (OSError, ValueError, KeyError) as exc:  # no config saying which class: try tokenizer.json alone
            if not (folder / TOKENIZER_FILE).is_file():
                raise InputError(f"{str(folder)!r} holds no tokenizer transformers can open ({_line(exc)})") from exc
        except ImportError as exc:  # e.g. a SentencePiece folder without sentencepiece installed
            raise MissingDependencyError(f"opening the tokenizer in {str(folder)!r} needs {_line(exc)}") from exc
        except Exception as exc:  # tokenizers' Rust errors are plain Exceptions
            raise InputError(f"transformers cannot open the tokenizer in {str(folder)!r}: {_line(exc)}") from exc
        return cls._open_file(folder / TOKENIZER_FILE, None)

    @classmethod
    def _open_file(cls, file: Path, config: dict | None) -> HFTokenizer:
        """``file`` as a ``PreTrainedTokenizerFast`` with the roles of ``config``, else BERT's names."""
        from transformers import PreTrainedTokenizerFast

        options = {key: config[key] for key in CONFIG_KEYS if config and config.get(key) is not None}
        try:
            tokenizer = PreTrainedTokenizerFast(tokenizer_file=str(file), **options)
        except Exception as exc:  # tokenizers' Rust errors are plain Exceptions
            raise InputError(f"transformers cannot open tokenizer file {str(file)!r}: {_line(exc)}") from exc
        if config is None:
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

    def apply_chat_template(self, messages: list[dict[str, str]], add_generation_prompt: bool = False,
                            tokenize: bool = False, **kwargs: Any) -> str | list[int]:
        """The stored chat template rendered as BPETokenizer renders it: the text, or its ids with ``tokenize``
        (transformers 5 defaults to a tokenized dict; the project's surface returns ``str`` / ``list[int]``)."""
        kwargs.setdefault("return_dict", False)
        out = self.tokenizer.apply_chat_template(messages, add_generation_prompt=add_generation_prompt,
                                                 tokenize=tokenize, **kwargs)
        return list(out) if tokenize and not kwargs["return_dict"] else out

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
