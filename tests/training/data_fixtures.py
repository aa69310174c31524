"""Fixtures for the data-loading tests (imported by tests/training/test_data*.py through ``load()``).

``ByteTokenizer`` is a tiny byte-level tokenizer with ChatML special tokens (the whole
``minillm.tokenizer_protocol.Tokenizer`` surface) that counts how many texts it encodes; ``bpe_tokenizer`` is
a real ``tokenizers_bpe.BPETokenizer`` trained on a few KB.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from typing import ClassVar

import pytest

SPECIALS = {"<|endoftext|>": 256, "<|im_start|>": 257, "<|im_end|>": 258, "<mask>": 259}
_SPLIT = re.compile("(" + "|".join(re.escape(t) for t in SPECIALS) + ")")
CORPUS = (
    "The quick brown fox jumps over the lazy dog. Pack my box with five dozen liquor jugs.\n\n"
    "How vexingly quick daft zebras jump! Sphinx of black quartz, judge my vow.\n\n"
    "Dr. Jekyll met Mr. Hyde at 3.30 p.m. on a foggy London evening.\n\n"
) * 20


class ByteTokenizer:
    """Byte-level ids 0-255 plus the special tokens above; ``calls`` counts encoded texts."""

    eos_token_id = pad_token_id = bos_token_id = 256
    mask_token_id = 259
    unk_token_id = None
    all_special_ids: ClassVar[list[int]] = [256, 257, 258, 259]

    def __init__(self) -> None:
        self.calls = 0

    def __len__(self) -> int:
        return 260

    @property
    def vocab_size(self) -> int:
        return 260

    def token_to_id(self, token: str) -> int | None:
        return SPECIALS.get(token)

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        self.calls += 1
        ids: list[int] = []
        for part in _SPLIT.split(text):
            ids += [SPECIALS[part]] if part in SPECIALS else list(part.encode("utf-8"))
        return ids

    def encode_batch(self, texts: list[str], add_special_tokens: bool = True) -> list[list[int]]:
        return [self.encode(text, add_special_tokens) for text in texts]

    def decode(self, ids: list[int]) -> str:
        names = {v: k for k, v in SPECIALS.items()}
        out, buffer = [], bytearray()
        for i in ids:
            if i in names:
                out.append(buffer.decode("utf-8", "replace") + names[i])
                buffer = bytearray()
            else:
                buffer.append(i)
        return "".join(out) + buffer.decode("utf-8", "replace")

    def save(self, path):
        raise NotImplementedError("ByteTokenizer is a test fixture; it has nothing to save")

    def apply_chat_template(self, messages, add_generation_prompt=False, tokenize=False):
        text = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)
        text += "<|im_start|>assistant\n" if add_generation_prompt else ""
        return self.encode(text) if tokenize else text


@pytest.fixture
def byte_tok() -> ByteTokenizer:
    return ByteTokenizer()


@pytest.fixture(scope="session")
def bpe_tokenizer():
    """A real BPETokenizer trained on a few KB (the project's tokenizer); any error in it fails the tests."""
    from tokenizers_bpe import BPETokenizer

    tok = BPETokenizer(vocab_size=400, show_progress=False).train([CORPUS])
    assert tok.decode(tok.encode("Hello there")) == "Hello there"
    return tok


@pytest.fixture
def cache(tmp_path) -> Path:
    return tmp_path / "token-cache"


def load():
    """This module, imported once (tests use importlib mode, so it is not importable by name)."""
    name = "training_data_fixtures"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]
