"""Batch assembly for the three objectives, plus the seeded epoch sampler the train loader uses.

MLM and seq2seq batches come from :mod:`minillm.collators` (``MaskedLMCollator``, ``Seq2SeqCollator``); the
causal-LM collator lives here because it also pads ``segment_ids``. The tokenizer is read through the
attributes of :class:`minillm.tokenizer_protocol.Tokenizer` (``mask_token_id``, ``all_special_ids``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import Sampler

from minillm.collators import MaskedLMCollator, Seq2SeqCollator
from minillm.errors import InputError
from minillm.losses import IGNORE_INDEX
from minillm.tokenizer_protocol import Tokenizer


def _as_list(value) -> list[int]:
    return value.tolist() if torch.is_tensor(value) else list(value)


class CausalLMCollator:
    """Right-pads rows: ``input_ids`` (pad id), ``attention_mask`` (0 on pads), ``labels`` (-100 on pads) and,
    when rows carry them, ``segment_ids`` (pads get a segment of their own)."""

    def __init__(self, pad_token_id: int):
        self.pad_token_id = int(pad_token_id)

    def __call__(self, rows: Sequence[dict]) -> dict[str, torch.Tensor]:
        if not rows:
            raise InputError("cannot collate an empty batch")
        width = max(len(row["input_ids"]) for row in rows)
        batch = {
            "input_ids": torch.full((len(rows), width), self.pad_token_id, dtype=torch.long),  # (B, T)
            "attention_mask": torch.zeros(len(rows), width, dtype=torch.long),
            "labels": torch.full((len(rows), width), IGNORE_INDEX, dtype=torch.long),
        }
        segments = all("segment_ids" in row for row in rows)
        if segments:
            batch["segment_ids"] = torch.zeros(len(rows), width, dtype=torch.long)
        for i, row in enumerate(rows):
            n = len(row["input_ids"])
            batch["input_ids"][i, :n] = torch.as_tensor(_as_list(row["input_ids"]))
            batch["attention_mask"][i, :n] = 1
            batch["labels"][i, :n] = torch.as_tensor(_as_list(row["labels"]))
            if segments:
                seg = torch.as_tensor(_as_list(row["segment_ids"]))
                batch["segment_ids"][i, :n] = seg
                batch["segment_ids"][i, n:] = (int(seg[-1]) + 1) if n else 0
        return batch


class MLMRowsCollator:
    """Feeds ``{"input_ids"}`` rows to :class:`minillm.collators.MaskedLMCollator`."""

    def __init__(self, collator: MaskedLMCollator):
        self.collator = collator

    def __call__(self, rows: Sequence[dict]) -> dict[str, torch.Tensor]:
        return self.collator([_as_list(row["input_ids"]) for row in rows])


def collator_for(objective: str, tokenizer: Tokenizer, pad_id: int, seed: int, vocab_size: int):
    """The batch collator of an objective (``mlm`` needs ``tokenizer.mask_token_id``; seq2seq decoders start
    from ``pad_id``, T5's convention)."""
    if objective == "clm":
        return CausalLMCollator(pad_id)
    if objective == "mlm":
        mask = tokenizer.mask_token_id
        if mask is None:
            raise InputError(
                f"objective 'mlm' needs a tokenizer with a mask token; {type(tokenizer).__name__} has "
                "mask_token_id None (BPETokenizer: include '<mask>' in special_tokens or pass mask_token=...)"
            )
        specials = set(tokenizer.all_special_ids)
        return MLMRowsCollator(MaskedLMCollator(int(mask), vocab_size, pad_id, specials, seed=seed))
    return Seq2SeqCollator(pad_token_id=pad_id)


class EpochSampler(Sampler[int]):
    """Random order that depends only on ``seed + epoch``.

    Each ``iter()`` uses the current epoch and then moves to the next one, so a plain loop over epochs gets a
    new order each time; a Trainer that resumes calls ``set_epoch(e)`` first and gets epoch ``e``'s order.

    >>> s = EpochSampler(5, seed=1)
    >>> first = list(s); s.set_epoch(0); list(s) == first
    True
    """

    def __init__(self, length: int, seed: int = 42):
        self.length, self.seed, self.epoch = length, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.length

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        self.epoch += 1
        return iter(torch.randperm(self.length, generator=generator).tolist())
