"""Masked-LM and seq2seq collators: masking rates, special tokens, padding, shifting."""

from __future__ import annotations

import pytest
import torch

from minillm.collators import MaskedLMCollator, Seq2SeqCollator, pad_sequences

PAD, CLS, SEP, MASK, VOCAB = 0, 101, 102, 103, 1000


def _examples(n: int = 400, seed: int = 0) -> list[list[int]]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        length = int(torch.randint(5, 40, (1,), generator=g))
        out.append([CLS] + torch.randint(200, VOCAB, (length,), generator=g).tolist() + [SEP])
    return out


def test_mlm_rates_and_never_masks_specials_or_padding():
    examples = _examples()
    collate = MaskedLMCollator(MASK, VOCAB, PAD, special_token_ids=[CLS, SEP], seed=0)
    batch = collate(examples)
    ids, mask, labels = batch["input_ids"], batch["attention_mask"], batch["labels"]
    original = pad_sequences(examples, PAD)
    assert ids.shape == labels.shape == mask.shape == original.shape
    assert torch.equal(mask, (original != PAD).long())
    chosen = labels != -100
    assert torch.equal(labels[chosen], original[chosen])
    specials = (original == CLS) | (original == SEP) | (original == PAD)
    assert not (chosen & specials).any()
    assert torch.equal(ids[~chosen], original[~chosen])  # unchosen tokens are untouched
    candidates = (~specials).sum().item()
    rate = chosen.sum().item() / candidates
    assert 0.13 < rate < 0.17
    n = chosen.sum().item()
    as_mask = (ids[chosen] == MASK).sum().item() / n
    kept = (ids[chosen] == original[chosen]).sum().item() / n
    assert 0.76 < as_mask < 0.84
    assert 0.07 < kept < 0.13
    assert 0.07 < 1 - as_mask - kept < 0.13  # random replacements


def test_mlm_is_seeded_and_accepts_dicts():
    examples = _examples(20)
    a = MaskedLMCollator(MASK, VOCAB, PAD, seed=7)([{"input_ids": e} for e in examples])
    b = MaskedLMCollator(MASK, VOCAB, PAD, seed=7)(examples)
    for key in a:
        assert torch.equal(a[key], b[key])
    with pytest.raises(ValueError, match="mlm_probability"):
        MaskedLMCollator(MASK, VOCAB, mlm_probability=1.5)
    with pytest.raises(ValueError, match="input_ids"):
        MaskedLMCollator(MASK, VOCAB)([{"ids": [1, 2]}])


def test_seq2seq_pads_and_shifts_labels():
    collate = Seq2SeqCollator(pad_token_id=PAD, decoder_start_token_id=PAD)
    batch = collate([([5, 6, 7, 1], [8, 9, 1]), {"input_ids": [5, 1], "labels": [4, 1]}])
    assert batch["input_ids"].tolist() == [[5, 6, 7, 1], [5, 1, PAD, PAD]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 1], [1, 1, 0, 0]]
    assert batch["labels"].tolist() == [[8, 9, 1], [4, 1, -100]]
    assert batch["decoder_input_ids"].tolist() == [[PAD, 8, 9], [PAD, 4, 1]]


def test_seq2seq_batch_feeds_the_model_like_labels_alone():
    from minillm import EncoderDecoderModel

    torch.manual_seed(0)
    model = EncoderDecoderModel({"model_type": "encoder_decoder", "vocab_size": 20, "d_model": 32, "num_heads": 4,
                                     "num_layers": 1, "d_ff": 48}).eval()
    batch = Seq2SeqCollator(pad_token_id=0)([([5, 6, 7, 1], [8, 9, 1]), ([5, 1], [4, 1])])
    with torch.no_grad():
        full = model(**batch)
        from_labels = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                            labels=batch["labels"])
    torch.testing.assert_close(full.logits, from_labels.logits)
    torch.testing.assert_close(full.loss, from_labels.loss)
