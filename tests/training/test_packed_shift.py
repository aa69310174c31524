"""Packed windows shift by epoch: epoch 0 is the plain cut, later epochs cut elsewhere (deterministically), every
row stays inside its own split, and the Trainer's epoch setter reaches the dataset."""

from __future__ import annotations

import numpy as np

from training.data.tokens import store_for_texts
from training.data.windows import TokenWindowDataset
from training.epoch_order import set_epoch


class ByteTokenizer:
    vocab_size = 257
    eos_token_id = 256
    pad_token_id = 256
    bos_token_id = None

    def encode(self, text, add_special_tokens=False):
        return list(text.encode("utf-8"))

    def decode(self, ids, skip_special_tokens=False):
        return bytes(i for i in ids if i < 256).decode("utf-8", "replace")


def _dataset(tmp_path, T=16):
    texts = [f"document number {i} says something a little longer than a window." for i in range(20)]
    store = store_for_texts(texts, ByteTokenizer(), cache_dir=tmp_path)
    return TokenWindowDataset(store, T, "packed"), np.asarray(store.tokens)


def test_epoch_zero_is_the_plain_cut_and_later_epochs_shift(tmp_path):
    data, tokens = _dataset(tmp_path)
    first = [data[i]["input_ids"].tolist() for i in range(3)]
    assert first == [tokens[i * 16 : (i + 1) * 16].tolist() for i in range(3)]
    data.set_epoch(1)
    shifted = data[0]["input_ids"].tolist()
    assert shifted != first[0] and shifted == tokens[9 : 9 + 16].tolist()  # int(0.618 * 16) = 9
    data.set_epoch(0)
    assert data[0]["input_ids"].tolist() == first[0]
    data.set_epoch(1)
    assert data[0]["input_ids"].tolist() == shifted  # the same epoch always gives the same rows (resume)


def test_a_shifted_train_split_never_reads_validation_tokens(tmp_path):
    data, tokens = _dataset(tmp_path)
    train, val = data.split(0.2)
    cut = len(train) * 16
    for epoch in range(6):
        train.set_epoch(epoch)
        rows = [train[i]["input_ids"] for i in range(len(train))]
        assert all(len(row) >= 2 for row in rows)
        last = rows[-1].tolist()
        end = (len(train) - 1) * 16 + train._shift
        expected = tokens[end:cut] if end + 2 <= cut else tokens[(len(train) - 1) * 16 : cut]
        assert last == expected.tolist()
    assert val[0]["input_ids"].tolist() == tokens[cut : cut + 16].tolist()


def test_the_trainer_epoch_setter_reaches_the_dataset(tmp_path):
    from torch.utils.data import DataLoader

    data, _ = _dataset(tmp_path)
    loader = DataLoader(data, batch_size=2)
    set_epoch(loader, 3, seed=0)
    assert data._shift == int(((3 * 0.618034) % 1) * 16)
