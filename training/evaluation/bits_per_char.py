"""Bits per character of a causal model on held-out text: a figure that compares across tokenizers.

bits/char = (total next-token negative log-likelihood of the text, in nats) / (characters of the text) / ln 2.
The text is encoded once without special tokens and scored in windows of ``window`` tokens with a stride of
half a window: every token after the first is scored exactly once, and every token after the first window is
scored with at least half a window of context before it (the first window's tokens with what precedes them).

>>> round(nats_to_bits_per_char(total_nats=693.147, chars=1000), 3)
1.0
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from minillm.errors import InputError


@dataclass
class BitsPerChar:
    """The figure and what it was computed over."""

    bits_per_char: float
    nats_per_token: float
    tokens: int
    chars: int

    @property
    def chars_per_token(self) -> float:
        return self.chars / max(1, self.tokens)


def nats_to_bits_per_char(total_nats: float, chars: int) -> float:
    """Total nats over ``chars`` characters, in bits per character."""
    return total_nats / chars / math.log(2)


def window_starts(num_tokens: int, window: int) -> list[tuple[int, int]]:
    """``(start, first_scored)`` of each window over ``num_tokens`` tokens: windows of ``window`` tokens, a stride
    of half a window; ``first_scored`` is the first position (inside the window) whose next token this window
    scores, so the windows together score every token after the first once.

    >>> window_starts(10, 4)
    [(0, 0), (2, 1), (4, 1), (6, 1)]
    """
    stride = max(1, window // 2)
    starts, start = [], 0
    while True:
        starts.append((start, 0 if start == 0 else window - stride - 1))
        if start + window >= num_tokens:
            return starts
        start += stride


@torch.no_grad()
def bits_per_char(model: Any, tokenizer: Any, text: str, window: int | None = None, batch_size: int = 8,
                  device: str | torch.device = "cpu") -> BitsPerChar:
    """Score ``text`` with ``model`` (forward protocol: ``model(input_ids=...)`` returns ``.logits``).

    ``window`` defaults to the model's context length (``config.max_seq_len``).
    """
    if not text:
        raise InputError("bits_per_char needs a non-empty text")
    window = window or int(getattr(model.config, "max_seq_len", 0) or 0)
    if window < 2:
        raise InputError(f"window={window!r} must be at least 2 tokens (or give a model with config.max_seq_len)")
    ids = tokenizer.encode(text, add_special_tokens=False)
    if len(ids) < 2:
        raise InputError(f"the text gives {len(ids)} token(s); bits_per_char needs at least 2")
    was_training = model.training
    model.eval()
    spans = window_starts(len(ids), window)
    total_nats, scored = 0.0, 0
    for first in range(0, len(spans), batch_size):
        group = spans[first : first + batch_size]
        rows = [ids[start : start + window] for start, _ in group]
        width = max(len(row) for row in rows)
        batch = torch.zeros(len(rows), width, dtype=torch.long)
        mask = torch.zeros(len(rows), width, dtype=torch.long)
        for i, row in enumerate(rows):
            batch[i, : len(row)] = torch.tensor(row)
            mask[i, : len(row)] = 1
        batch, mask = batch.to(device), mask.to(device)
        logits = model(input_ids=batch, attention_mask=mask).logits[:, :-1].float()  # (B, T-1, V)
        nats = F.cross_entropy(logits.transpose(1, 2), batch[:, 1:], reduction="none")  # (B, T-1)
        for i, ((_, skip), row) in enumerate(zip(group, rows)):
            kept = nats[i, skip : len(row) - 1]
            total_nats += float(kept.sum())
            scored += int(kept.numel())
    model.train(was_training)
    return BitsPerChar(nats_to_bits_per_char(total_nats, len(text)), total_nats / scored, len(ids), len(text))
