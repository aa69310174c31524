"""Data collators: turn lists of token-id lists into padded tensor batches for ``model(**batch)``.

- :class:`MaskedLMCollator` (BERT pre-training): 15% of the real, non-special tokens are chosen; of those 80%
  become ``[MASK]``, 10% a random token, 10% stay; labels hold the original id there and -100 elsewhere.
- :class:`Seq2SeqCollator` (T5): pads inputs (attention mask) and labels (-100) and adds ``decoder_input_ids``,
  the labels shifted right after the decoder start token.

Example::

    >>> batch = Seq2SeqCollator(pad_token_id=0, decoder_start_token_id=0)([([5, 6, 1], [7, 1])])
    >>> batch["decoder_input_ids"].tolist(), batch["labels"].tolist()
    ([[0, 7]], [[7, 1]])
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import torch

from minillm.errors import InputError

from .losses import IGNORE_INDEX

Example = Sequence[int] | dict[str, Any]


def pad_sequences(sequences: Sequence[Sequence[int]], pad_value: int, max_length: int | None = None) -> torch.Tensor:
    """Right-pad (and, with ``max_length``, truncate) id lists into a (B, T) long tensor."""
    if not sequences:
        raise InputError("cannot collate an empty batch")
    rows = [list(s)[:max_length] if max_length else list(s) for s in sequences]
    width = max(1, max(len(r) for r in rows))
    out = torch.full((len(rows), width), pad_value, dtype=torch.long)
    for i, row in enumerate(rows):
        out[i, : len(row)] = torch.tensor(row, dtype=torch.long)
    return out


def _ids(example: Example, key: str = "input_ids") -> list[int]:
    if isinstance(example, dict):
        if key not in example:
            raise InputError(f"example has no {key!r} key; keys are {sorted(example)}")
        return list(example[key])
    return list(example)


def mask_tokens(
    input_ids: torch.Tensor, attention_mask: torch.Tensor, mask_token_id: int, vocab_size: int,
    special_token_ids: Sequence[int], probability: float, generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT's masking of (B, T) ids: ``(masked input_ids, labels)``.

    ``probability`` of the real (attention mask 1), non-special tokens are chosen; of those 80% become
    ``mask_token_id``, 10% a random id, 10% stay. Labels hold the original id at chosen positions, -100 elsewhere.
    All draws come from ``generator`` (on the CPU), so the same generator state gives the same masks.
    """
    special = torch.isin(input_ids, torch.tensor(list(special_token_ids), dtype=input_ids.dtype))
    special |= ~attention_mask.bool()  # (B, T): never chosen
    chance = torch.full(input_ids.shape, probability).masked_fill(special, 0.0)
    chosen = torch.bernoulli(chance, generator=generator).bool()
    labels = input_ids.masked_fill(~chosen, IGNORE_INDEX)
    to_mask = torch.bernoulli(torch.full(input_ids.shape, 0.8), generator=generator).bool() & chosen
    to_random = torch.bernoulli(torch.full(input_ids.shape, 0.5), generator=generator).bool()
    to_random &= chosen & ~to_mask
    random_ids = torch.randint(vocab_size, input_ids.shape, generator=generator)
    masked = torch.where(to_random, random_ids, input_ids.masked_fill(to_mask, mask_token_id))
    return masked, labels


class MaskedLMCollator:
    """Masked-LM batches: ``input_ids`` (masked), ``attention_mask`` and ``labels`` (-100 where not masked)."""

    def __init__(
        self,
        mask_token_id: int,
        vocab_size: int,
        pad_token_id: int = 0,
        special_token_ids: Iterable[int] = (),
        mlm_probability: float = 0.15,
        max_length: int | None = None,
        seed: int | None = 0,
    ) -> None:
        if not 0.0 < mlm_probability < 1.0:
            raise InputError(f"mlm_probability must be in (0, 1), got {mlm_probability}")
        self.mask_token_id = mask_token_id
        self.vocab_size = vocab_size
        self.pad_token_id = pad_token_id
        self.special_token_ids = sorted(set(special_token_ids) | {pad_token_id, mask_token_id})
        self.mlm_probability = mlm_probability
        self.max_length = max_length
        self.generator = torch.Generator()
        if seed is not None:
            self.generator.manual_seed(seed)

    @classmethod
    def from_tokenizer(cls, tokenizer: Any, **kwargs: Any) -> MaskedLMCollator:
        """Take mask, pad and special ids and the vocabulary size from a tokenizer (e.g. WordPieceTokenizer)."""
        if tokenizer.mask_token_id is None:
            raise InputError("the tokenizer has no mask token; pass mask_token_id explicitly")
        return cls(
            mask_token_id=tokenizer.mask_token_id,
            vocab_size=tokenizer.vocab_size,
            pad_token_id=tokenizer.pad_token_id or 0,
            special_token_ids=getattr(tokenizer, "all_special_ids", ()),
            **kwargs,
        )

    def __call__(self, examples: Sequence[Example]) -> dict[str, torch.Tensor]:
        lengths = [len(_ids(e)) for e in examples]
        input_ids = pad_sequences([_ids(e) for e in examples], self.pad_token_id, self.max_length)  # (B, T)
        positions = torch.arange(input_ids.shape[1])[None, :]  # (1, T)
        attention_mask = (positions < torch.tensor(lengths)[:, None]).long()  # (B, T)
        masked, labels = mask_tokens(input_ids, attention_mask, self.mask_token_id, self.vocab_size,
                                     self.special_token_ids, self.mlm_probability, self.generator)
        return {"input_ids": masked, "attention_mask": attention_mask, "labels": labels}


class Seq2SeqCollator:
    """Seq2seq batches: ``input_ids``, ``attention_mask``, ``labels`` (-100 padded), ``decoder_input_ids``.

    Examples are ``(source_ids, target_ids)`` pairs or dicts with ``input_ids`` and ``labels``.
    """

    def __init__(
        self,
        pad_token_id: int = 0,
        decoder_start_token_id: int | None = None,
        max_source_length: int | None = None,
        max_target_length: int | None = None,
    ) -> None:
        self.pad_token_id = pad_token_id
        self.decoder_start_token_id = pad_token_id if decoder_start_token_id is None else decoder_start_token_id
        self.max_source_length = max_source_length
        self.max_target_length = max_target_length

    def __call__(self, examples: Sequence[Example | tuple[Sequence[int], Sequence[int]]]) -> dict[str, torch.Tensor]:
        sources, targets = [], []
        for example in examples:
            if isinstance(example, dict):
                sources.append(_ids(example, "input_ids"))
                targets.append(_ids(example, "labels"))
            else:
                source, target = example
                sources.append(list(source))
                targets.append(list(target))
        input_ids = pad_sequences(sources, self.pad_token_id, self.max_source_length)  # (B, S)
        src_len = torch.tensor([min(len(s), input_ids.shape[1]) for s in sources])
        attention_mask = (torch.arange(input_ids.shape[1])[None, :] < src_len[:, None]).long()  # (B, S)
        labels = pad_sequences(targets, IGNORE_INDEX, self.max_target_length)  # (B, T)
        decoder_input_ids = torch.full_like(labels, self.pad_token_id)
        decoder_input_ids[:, 0] = self.decoder_start_token_id
        decoder_input_ids[:, 1:] = labels[:, :-1]
        decoder_input_ids = decoder_input_ids.masked_fill(decoder_input_ids == IGNORE_INDEX, self.pad_token_id)
        return {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "labels": labels,
            "decoder_input_ids": decoder_input_ids,
        }
