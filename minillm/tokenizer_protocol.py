"""The one tokenizer surface every part of the project codes against (GUIDE section 2).

``tokenizers_bpe.BPETokenizer`` (our byte-level BPE, which imports nothing of minillm) and
:class:`minillm.hf.tokenizer.HFTokenizer` (any transformers tokenizer) implement it; so can a test's toy
tokenizer. The data pipeline reads the attributes below directly instead of probing with ``getattr``, and
:func:`missing_members` lets it refuse, once and by name, a tokenizer that lacks some.

Example:
    >>> class Toy:
    ...     vocab_size, bos_token_id, eos_token_id, pad_token_id, mask_token_id, unk_token_id = 3, 0, 0, 1, None, None
    ...     all_special_ids = [0, 1]
    ...     def encode(self, text, add_special_tokens=True): return [2] * len(text)
    ...     def decode(self, ids, skip_special_tokens=False): return "x" * len(ids)
    ...     def apply_chat_template(self, messages, add_generation_prompt=False, tokenize=False, **kwargs): return ""
    ...     def token_to_id(self, token): return None
    ...     def save(self, path): return path
    >>> isinstance(Toy(), Tokenizer), missing_members(Toy()), missing_members(object())[:2]
    (True, [], ['encode', 'decode'])
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

#: Methods of the protocol (callables).
METHODS = ("encode", "decode", "apply_chat_template", "token_to_id", "save")
#: Attributes of the protocol (plain attributes or properties): ``vocab_size`` is an int, each ``*_token_id``
#: an int or None, ``all_special_ids`` a list of ints.
ATTRIBUTES = (
    "vocab_size",
    "bos_token_id",
    "eos_token_id",
    "pad_token_id",
    "mask_token_id",
    "unk_token_id",
    "all_special_ids",
)
MEMBERS = METHODS + ATTRIBUTES


@runtime_checkable
class Tokenizer(Protocol):
    """Text <-> ids, the special-token ids, chat rendering and saving.

    ``isinstance(obj, Tokenizer)`` checks that every member exists (not their signatures); a special-token id
    is None when the tokenizer has no such token (e.g. no mask token in a GPT-2 vocabulary).
    """

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        """Token ids of ``text``; ``add_special_tokens=False`` leaves out what the tokenizer adds around it
        (BERT's [CLS] ... [SEP])."""
        ...

    def decode(self, ids: Iterable[int], skip_special_tokens: bool = False) -> str:
        """The text of ``ids``."""
        ...

    def apply_chat_template(
        self,
        messages: list[dict[str, str]],
        add_generation_prompt: bool = False,
        tokenize: bool = False,
        **kwargs: Any,
    ) -> str | list[int]:
        """``messages`` (dicts with ``role`` and ``content``) rendered with the tokenizer's chat template."""
        ...

    def token_to_id(self, token: str) -> int | None:
        """The id of ``token`` when it is one whole vocabulary entry, else None."""
        ...

    def save(self, path: str | os.PathLike) -> Path:
        """Write the tokenizer files (a folder, or a named file where the tokenizer supports it)."""
        ...

    @property
    def vocab_size(self) -> int:
        """Every id the tokenizer can produce (the model's embedding rows must cover them)."""
        ...

    @property
    def bos_token_id(self) -> int | None: ...

    @property
    def eos_token_id(self) -> int | None: ...

    @property
    def pad_token_id(self) -> int | None: ...

    @property
    def mask_token_id(self) -> int | None: ...

    @property
    def unk_token_id(self) -> int | None: ...

    @property
    def all_special_ids(self) -> list[int]:
        """Ids of the special tokens."""
        ...


def missing_members(tokenizer: object) -> list[str]:
    """The protocol members ``tokenizer`` lacks (methods that are absent or not callable included)."""
    missing = [name for name in METHODS if not callable(getattr(tokenizer, name, None))]
    return missing + [name for name in ATTRIBUTES if not hasattr(tokenizer, name)]
