"""The tokenizer of a training run (``main.py train``): the one saved in the run directory, ``--tokenizer_path``, or a
byte-level BPE trained on a sample of the training data, saved to ``RUN/tokenizer/`` at the start."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from minillm.atomic import atomic_directory

TOKENIZER_DIR = "tokenizer"
# The special tokens of a BPE trained for an encoder (ids 0-4; <pad> and <mask> take their roles by default).
ENCODER_SPECIALS = ("<|endoftext|>", "<pad>", "<mask>", "<cls>", "<sep>")


def run_tokenizer(settings: dict[str, Any], root: Path, train: list[Any], fresh: bool) -> Any:
    """The run's tokenizer: the one saved in the run (resume), ``--tokenizer_path``, or a BPE trained on the data.

    A trained BPE keeps BPETokenizer's default roles: decoders get its default special tokens (pad ``<pad>``,
    mask ``<mask>``), encoders :data:`ENCODER_SPECIALS`, T5 those plus the span-corruption sentinels.
    """
    from tokenizers_bpe import DEFAULT_SPECIAL_TOKENS, BPETokenizer

    from .data.span_corruption import sentinel_tokens
    from .tokenizer_loading import load_tokenizer

    saved = root / TOKENIZER_DIR
    if not fresh and saved.is_dir():
        return load_tokenizer(saved)  # a --tokenizer_path run saved an HF tokenizer here
    if settings.get("tokenizer_path"):
        tokenizer = load_tokenizer(settings["tokenizer_path"])
    else:
        specials = DEFAULT_SPECIAL_TOKENS if settings["model_type"] == "decoder_only" else ENCODER_SPECIALS
        if settings["model_type"] == "encoder_decoder":  # T5 span corruption replaces spans by sentinels
            specials = ENCODER_SPECIALS + sentinel_tokens()
        tokenizer = BPETokenizer(vocab_size=settings["vocab_size"], special_tokens=specials)
        tokenizer.train(training_sample(train, settings["tokenizer_sample_bytes"]))
    with atomic_directory(saved) as tmp:
        tokenizer.save(tmp)
    return tokenizer


def training_sample(items: list[Any], budget: int):
    """Texts of the training items up to ``budget`` UTF-8 bytes (the tokenizer's training sample).

    >>> list(training_sample(["éé", "b", "c"], 4))
    ['éé']
    """
    used = 0
    for item in items:
        text = item if isinstance(item, str) else " ".join(_strings(item))
        if used >= budget:
            return
        used += len(text.encode("utf-8"))
        yield text


def _strings(value: Any):
    """Every string inside a JSON item (the text of chat and instruction records)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for inner in value.values():
            yield from _strings(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _strings(inner)
