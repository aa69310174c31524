"""Perplexity of a model on held-out text: exp of the mean next-token negative log-likelihood.

The texts (a ``.txt`` file is one text; a ``.jsonl`` / ``.json`` file of training items gives one text per
item: ``text``, an instruction's prompt and output, a chat's turns, or a seq2seq pair, each joined by newlines)
are encoded without special tokens, each followed by the tokenizer's eos, and concatenated into one stream. The
stream is cut into windows of the model's context (``window`` tokens, capped by ``max_window``), consecutive
windows sharing one token, so every token after the first is predicted exactly once, from up to ``window - 1``
tokens before it. Windows are batched; the padding of the last, shorter ones is masked out of the attention and
of the sum. The model is called through the forward protocol only (``model(input_ids=..., attention_mask=...)``
returning ``.logits``).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from minillm.errors import InputError
from training.data.text import read_text

from .answering import context_length, is_encoder_decoder

DEFAULT_MAX_WINDOW = 1024
HELD_OUT_SUFFIXES = (".txt", ".md", ".jsonl", ".json")


@dataclass
class PerplexityResult:
    """The figure and what it was computed over."""

    perplexity: float
    mean_nll: float
    tokens: int  # tokens predicted (scored)
    windows: int
    window: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def read_held_out(path: str | os.PathLike) -> list[str]:
    """The texts of a held-out file (see the module docstring); one-line errors for a missing or empty one."""
    from training.data.formats import as_messages, item_kind, read_json_list

    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"perplexity data {str(path)!r} does not exist; pass a .txt, .jsonl or .json file")
    suffix = path.suffix.lower()
    if suffix not in HELD_OUT_SUFFIXES:
        raise InputError(f"perplexity data {str(path)!r} has suffix {suffix!r}; use one of "
                         f"{', '.join(HELD_OUT_SUFFIXES)}")
    if suffix in (".txt", ".md"):
        return [read_text(path)]
    items = _jsonl_items(path) if suffix == ".jsonl" else read_json_list(path)
    texts = []
    for number, item in enumerate(items):
        kind = item_kind(item, f"item {number} of {str(path)!r}")
        if kind == "text":
            texts.append(item if isinstance(item, str) else item["text"])
        else:
            texts.append("\n".join(message["content"] for message in as_messages(item, kind)))
    if not texts:
        raise InputError(f"perplexity data {str(path)!r} holds no items")
    return texts


def _jsonl_items(path: Path) -> list[object]:
    """The objects of a JSONL file, split on newlines only (a U+2028 inside a JSON string is not a line break)."""
    items = []
    for number, line in enumerate(read_text(path).split("\n"), start=1):
        if line.strip():
            try:
                items.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise InputError(f"line {number} of {str(path)!r} is not valid JSON ({exc.msg} at column "
                                 f"{exc.colno})") from None
    return items


def token_stream(tokenizer: Any, texts: Iterable[str], limit: int | None = None) -> list[int]:
    """The texts' ids (no special tokens), each followed by eos when the tokenizer has one; the first ``limit``
    ids only (texts past it are not encoded)."""
    from training.data.tokens import encode_plain

    eos = getattr(tokenizer, "eos_token_id", None)
    stream: list[int] = []
    for text in texts:
        stream += encode_plain(tokenizer, text)
        if eos is not None:
            stream.append(int(eos))
        if limit is not None and len(stream) >= limit:
            return stream[:limit]
    return stream


def check_causal(model: Any) -> None:
    """InputError when ``model`` is not a causal LM (perplexity here is next-token, over one stream)."""
    if is_encoder_decoder(model):
        raise InputError(f"perplexity needs a causal (decoder-only) model; {type(model).__name__} is an "
                         "encoder-decoder: leave out --perplexity_data")


def windows_of(stream: Sequence[int], window: int) -> list[list[int]]:
    """``stream`` as windows of at most ``window`` tokens, each starting at the previous one's last token.

    >>> windows_of(list(range(7)), 3)
    [[0, 1, 2], [2, 3, 4], [4, 5, 6]]
    """
    if window < 2:
        raise InputError(f"a perplexity window must hold at least 2 tokens; got {window}")
    return [list(stream[start:start + window]) for start in range(0, len(stream) - 1, window - 1)]


def perplexity(model: Any, tokenizer: Any, texts: Iterable[str], window: int | None = None,
               batch_size: int = 4, max_tokens: int | None = None,
               max_window: int = DEFAULT_MAX_WINDOW, progress: bool = False) -> PerplexityResult:
    """Perplexity of ``model`` on ``texts`` (see the module docstring); ``max_tokens`` keeps the stream's first
    ``max_tokens + 1`` tokens. ``window`` defaults to the model's context, at most ``max_window``."""
    from minillm.hf.streaming import model_device

    check_causal(model)
    if batch_size < 1:
        raise InputError(f"--perplexity_batch_size {batch_size} is invalid; it must be >= 1")
    stream = token_stream(tokenizer, texts, None if max_tokens is None else max_tokens + 1)
    if len(stream) < 2:
        raise InputError(f"the perplexity data encodes to {len(stream)} token(s); it needs at least 2")
    if window is None:
        window = min(context_length(model) or max_window, max_window)
    chunks = windows_of(stream, window)
    pad = getattr(tokenizer, "pad_token_id", None)
    pad = int(pad if pad is not None else stream[-1])
    device = model_device(model)
    total, count = 0.0, 0
    batches = [chunks[i:i + batch_size] for i in range(0, len(chunks), batch_size)]
    if progress:
        from tqdm.auto import tqdm

        batches = tqdm(batches, desc="perplexity", unit="batch")
    was_training = getattr(model, "training", False)
    model.eval()
    try:
        with torch.inference_mode():
            for batch in batches:
                nll, scored = _batch_nll(model, batch, pad, device)
                total += nll
                count += scored
    finally:
        model.train(was_training)
    mean = total / count
    return PerplexityResult(perplexity=math.exp(mean), mean_nll=mean, tokens=count, windows=len(chunks),
                            window=window)


def _batch_nll(model: Any, batch: list[list[int]], pad: int, device: torch.device) -> tuple[float, int]:
    """Summed next-token NLL over the real (unpadded) tokens of ``batch``, and how many tokens it scored."""
    length = max(len(row) for row in batch)
    ids = torch.full((len(batch), length), pad, dtype=torch.long)
    mask = torch.zeros((len(batch), length), dtype=torch.long)
    for row, tokens in enumerate(batch):
        ids[row, :len(tokens)] = torch.tensor(tokens)
        mask[row, :len(tokens)] = 1
    ids, mask = ids.to(device), mask.to(device)
    logits = model(input_ids=ids, attention_mask=mask).logits  # (B, T, V)
    targets = ids[:, 1:].masked_fill(mask[:, 1:] == 0, -100)  # (B, T-1)
    nll = F.cross_entropy(logits[:, :-1].float().reshape(-1, logits.shape[-1]), targets.reshape(-1),
                          ignore_index=-100, reduction="sum")
    return float(nll), int((targets != -100).sum())
