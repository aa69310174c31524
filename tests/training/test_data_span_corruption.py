"""T5 span corruption (training/data/span_corruption.py): the pure helper, the Dataset, and a real training run."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from training import create_dataloaders
from training.data.span_corruption import (
    SpanCorruptionDataset,
    corrupt_spans,
    restore_spans,
    sentinel_ids,
    sentinel_tokens,
)

from . import data_fixtures as F

byte_tok, cache = F.byte_tok, F.cache
SENTINELS = list(range(1000, 1032))


def _spans(inputs: list[int], targets: list[int], sentinels=SENTINELS) -> tuple[list[int], list[int]]:
    return [t for t in inputs if t in sentinels], [t for t in targets if t in sentinels]


@pytest.mark.parametrize("length", [2, 3, 7, 20, 31, 64, 200, 511])
def test_filling_the_sentinels_back_rebuilds_the_ids_and_sentinels_come_in_order(length):
    ids = [int(x) for x in np.random.default_rng(length).integers(0, 900, length)]
    for seed in range(20):
        inputs, targets = corrupt_spans(ids, np.random.default_rng(seed), sentinel_ids=SENTINELS)
        assert restore_spans(inputs, targets, SENTINELS) == ids
        in_sentinels, out_sentinels = _spans(inputs, targets)
        assert in_sentinels == out_sentinels == SENTINELS[: len(in_sentinels)]
        assert targets[0] == SENTINELS[0]
        unrolled = corrupt_spans(ids, np.random.default_rng(seed), sentinel_ids=SENTINELS, random_roll=False)
        assert restore_spans(*unrolled, SENTINELS) == ids
        # T5 without a roll: the row starts with kept tokens and ends with a noise span
        assert unrolled[0][0] == ids[0] and unrolled[0][-1] in SENTINELS
        noise = len(targets) - len(out_sentinels)
        assert noise == min(max(round(length * 0.15), 1), length - 1)
        assert len(inputs) + noise - len(in_sentinels) == length
        assert all(t not in SENTINELS for t in targets[1:2])  # every span holds at least one token
        assert all(b not in SENTINELS for a, b in itertools.pairwise(targets) if a in SENTINELS)


def test_noise_density_and_mean_span_length_over_many_rows():
    noise = spans = total = 0
    for seed in range(200):
        ids = list(range(100))
        _, targets = corrupt_spans(ids, np.random.default_rng(seed), sentinel_ids=SENTINELS)
        count = sum(t in SENTINELS for t in targets)
        noise, spans, total = noise + len(targets) - count, spans + count, total + len(ids)
    assert noise / total == pytest.approx(0.15, abs=0.01)
    assert noise / spans == pytest.approx(3.0, rel=0.1)


def test_deterministic_per_seed_and_different_across_seeds():
    ids = list(range(300))
    first = corrupt_spans(ids, np.random.default_rng(7), sentinel_ids=SENTINELS)
    assert corrupt_spans(ids, np.random.default_rng(7), sentinel_ids=SENTINELS) == first
    assert corrupt_spans(ids, np.random.default_rng(8), sentinel_ids=SENTINELS) != first


def test_random_roll_spreads_the_noise_over_short_rows():
    masked_first = masked_last = 0
    for seed in range(200):  # 10 tokens: one noise span of 2 (T5 without a roll: always the last two)
        inputs, _ = corrupt_spans(list(range(10)), np.random.default_rng(seed), sentinel_ids=SENTINELS)
        masked_first += inputs[0] in SENTINELS
        masked_last += inputs[-1] in SENTINELS
    assert 10 < masked_first < 60 and 10 < masked_last < 60


def test_fewer_sentinels_than_spans_gives_longer_spans_and_short_rows_pass_through():
    inputs, targets = corrupt_spans(list(range(200)), np.random.default_rng(0), sentinel_ids=[5000, 5001])
    assert _spans(inputs, targets, [5000, 5001]) == ([5000, 5001], [5000, 5001])
    assert restore_spans(inputs, targets, [5000, 5001]) == list(range(200))
    assert corrupt_spans([9], np.random.default_rng(0), sentinel_ids=[5000]) == ([9], [])
    with pytest.raises(ValueError, match="noise_density=1.5"):
        corrupt_spans([1, 2, 3], np.random.default_rng(0), 1.5, sentinel_ids=[5000])
    with pytest.raises(ValueError, match="sentinel_ids is empty"):
        corrupt_spans([1, 2, 3], np.random.default_rng(0), sentinel_ids=[])


@pytest.fixture(scope="module")
def t5_tokenizer():
    from tokenizers_bpe import BPETokenizer
    from training.run_tokenizer import ENCODER_SPECIALS

    tok = BPETokenizer(
        vocab_size=420,
        special_tokens=ENCODER_SPECIALS + sentinel_tokens(),
        pad_token="<pad>",
        show_progress=False,
    )
    return tok.train([F.CORPUS])


def test_tokenizer_without_sentinels_is_a_clear_error(byte_tok, cache):
    with pytest.raises(ValueError, match="needs sentinel tokens '<extra_id_0>'"):
        create_dataloaders(
            ["some text here"] * 4,
            [],
            byte_tok,
            batch_size=2,
            max_length=16,
            model_type="encoder_decoder",
            cache_dir=cache,
        )
    assert byte_tok.calls == 0  # it fails before tokenizing anything


def test_plain_text_seq2seq_rows_and_batches(t5_tokenizer, cache):
    tok = t5_tokenizer
    texts = [p for p in F.CORPUS.split("\n\n") if p.strip()]
    sentinels = sentinel_ids(tok)
    assert sentinels == [tok.token_to_id(t) for t in sentinel_tokens()]
    train, val = create_dataloaders(
        texts,
        texts[:4],
        tok,
        batch_size=4,
        max_length=24,
        model_type="encoder_decoder",
        seed=3,
        cache_dir=cache,
    )
    dataset = train.dataset
    # by name: a run with --doctest-modules may import the module twice
    assert type(dataset).__name__ == SpanCorruptionDataset.__name__
    rows = [dataset[i] for i in range(len(dataset))]
    assert [dataset[i] for i in reversed(range(len(dataset)))] == rows[::-1]  # order does not matter
    windows = dataset.windows
    for i, row in enumerate(rows):
        assert len(row["input_ids"]) <= 24 and len(row["labels"]) <= 24
        assert row["input_ids"][-1] == row["labels"][-1] == tok.eos_token_id
        original = windows[i]["input_ids"].tolist()
        assert restore_spans(row["input_ids"][:-1], row["labels"][:-1], sentinels) == original
    text = "".join(tok.decode(windows[i]["input_ids"].tolist()) for i in range(len(dataset)))
    assert text == "".join(texts)  # the windows cover the corpus exactly
    again, _ = create_dataloaders(
        texts, [], tok, batch_size=4, max_length=24, model_type="encoder_decoder", seed=3, cache_dir=cache
    )
    other, _ = create_dataloaders(
        texts, [], tok, batch_size=4, max_length=24, model_type="encoder_decoder", seed=4, cache_dir=cache
    )
    assert [again.dataset[i] for i in range(len(dataset))] == rows
    assert [other.dataset[i] for i in range(len(dataset))] != rows
    batch = next(iter(val))
    assert set(batch) == {"input_ids", "attention_mask", "labels", "decoder_input_ids"}
    assert (batch["decoder_input_ids"][:, 0] == tok.pad_token_id).all()
    assert torch.equal(
        batch["decoder_input_ids"][:, 1:][batch["labels"][:, :-1] != -100],
        batch["labels"][:, :-1][batch["labels"][:, :-1] != -100],
    )
    assert (batch["labels"][:, 0] == sentinels[0]).all()


def test_tiny_encoder_decoder_learns_span_corruption(t5_tokenizer, cache, tmp_path):
    from minillm import EncoderDecoderModel, ModelConfig
    from training import Trainer

    tok = t5_tokenizer
    texts = [p for p in F.CORPUS.split("\n\n") if p.strip()]
    train, val = create_dataloaders(
        texts, texts[:8], tok, batch_size=8, max_length=32, model_type="encoder_decoder", cache_dir=cache
    )
    torch.manual_seed(0)
    config = ModelConfig(
        model_type="encoder_decoder",
        vocab_size=tok.vocab_size,
        d_model=32,
        num_layers=1,
        num_heads=2,
        d_ff=64,
        max_seq_len=32,
        dropout=0.0,
        pad_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id,
        decoder_start_token_id=tok.pad_token_id,
    )
    model = EncoderDecoderModel(config)
    with torch.no_grad():
        initial = float(np.mean([model(**batch).loss.item() for batch in val]))
    trainer = Trainer(
        model=model,
        train_dataloader=train,
        val_dataloader=val,
        learning_rate=1e-2,
        checkpoint_dir=tmp_path,
        device="cpu",
        early_stopping_patience=None,
        max_steps=40,
        eval_every=20,
        progress_bar=False,
        tensorboard=False,
        plot=False,
    )
    result = trainer.train(epochs=100)
    val_losses = [h["val_loss"] for h in result["history"]]
    assert result["global_step"] == 40
    assert initial > np.log(tok.vocab_size) - 0.5  # ln(417) = 6.03: a random model
    assert val_losses[0] < initial - 2.0 and val_losses[-1] < val_losses[0] - 0.3, (initial, val_losses)
