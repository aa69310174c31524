"""Bits per character: every token after the first scored exactly once, batching and padding change nothing, and
with a window covering the text it equals one plain cross-entropy pass."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from minillm import DecoderOnlyModel, ModelConfig
from minillm.errors import InputError
from training.evaluation.bits_per_char import bits_per_char, window_starts


class ByteTokenizer:
    def encode(self, text, add_special_tokens=False):
        return list(text.encode("utf-8"))


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return DecoderOnlyModel(ModelConfig(vocab_size=256, d_model=32, num_layers=2, num_heads=2, max_seq_len=64))


TEXT = "To be, or not to be, that is the question: whether 'tis nobler in the mind to suffer. " * 3


def test_every_token_after_the_first_is_scored_once():
    for n, window in ((10, 4), (11, 4), (100, 16), (5, 64), (33, 7)):
        covered = []
        for start, first in window_starts(n, window):
            end = min(start + window, n)
            covered += list(range(start + 1 + first, end))
        assert covered == list(range(1, n)), (n, window)


def test_a_window_over_the_whole_text_is_one_cross_entropy_pass(model):
    text = TEXT[:60]
    ids = torch.tensor([list(text.encode())])
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0, :-1]
    nats = float(F.cross_entropy(logits, ids[0, 1:], reduction="sum"))
    result = bits_per_char(model, ByteTokenizer(), text, window=64)
    assert result.bits_per_char == pytest.approx(nats / len(text) / math.log(2), rel=1e-5)
    assert result.tokens == 60 and result.chars_per_token == 1.0


def test_batching_and_padding_change_nothing(model):
    model.train()  # scoring evaluates without dropout, then gives the model back in the mode it came in
    one = bits_per_char(model, ByteTokenizer(), TEXT, window=32, batch_size=1)
    many = bits_per_char(model, ByteTokenizer(), TEXT, window=32, batch_size=7)
    assert many.bits_per_char == pytest.approx(one.bits_per_char, rel=1e-5)
    assert one.bits_per_char > 0 and model.training


def test_bad_input_is_refused(model):
    with pytest.raises(InputError, match="non-empty"):
        bits_per_char(model, ByteTokenizer(), "")
    with pytest.raises(InputError, match="at least 2"):
        bits_per_char(model, ByteTokenizer(), "a")
