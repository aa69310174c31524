"""Sampling options, stopping rules and streaming of the KV-cached generation loop."""

from __future__ import annotations

import pytest
import torch

from minillm import DecoderOnlyModel
from minillm.generation import GenerationSettings, apply_repetition_penalty, top_k_filter, top_p_filter


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = DecoderOnlyModel({"model_type": "decoder_only", "vocab_size": 50, "d_model": 32, "num_heads": 4, "num_layers": 2,
                              "max_seq_len": 128, "eos_token_id": 7})
    return m.eval()


class CharTokenizer:
    """id i <-> chr(ord('a') + i % 26): enough to test stop strings."""

    def decode(self, ids):
        return "".join(chr(ord("a") + i % 26) for i in ids)


def test_top_k_keeps_k_largest():
    logits = torch.tensor([[1.0, 5.0, 3.0, 4.0]])
    out = top_k_filter(logits, 2)
    assert torch.isinf(out[0, [0, 2]]).all() and torch.equal(out[0, [1, 3]], logits[0, [1, 3]])


def test_top_p_keeps_smallest_nucleus():
    probs = torch.tensor([[0.5, 0.3, 0.15, 0.05]])
    out = top_p_filter(probs.log(), 0.75)
    assert torch.isfinite(out[0, :2]).all() and torch.isinf(out[0, 2:]).all()
    assert torch.isfinite(top_p_filter(probs.log(), 0.01)[0, 0])  # at least one token survives


def test_repetition_penalty_matches_ctrl_rule():
    logits = torch.tensor([[2.0, -2.0, 1.0]])
    out = apply_repetition_penalty(logits, torch.tensor([[0, 1]]), 2.0)
    assert torch.equal(out, torch.tensor([[1.0, -4.0, 1.0]]))


def test_sampling_is_reproducible_with_seed_and_varies_without(model):
    prompt = torch.tensor([[1, 2, 3]])
    kwargs = {"max_new_tokens": 20, "do_sample": True, "temperature": 1.5, "top_k": 40, "top_p": 0.95, "eos_token_id": []}
    a = model.generate(prompt, seed=123, **kwargs)
    b = model.generate(prompt, seed=123, **kwargs)
    c = model.generate(prompt, seed=321, **kwargs)
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_top_k_1_sampling_equals_greedy(model):
    prompt = torch.tensor([[4, 5, 6]])
    greedy = model.generate(prompt, max_new_tokens=10, eos_token_id=[])
    sampled = model.generate(prompt, max_new_tokens=10, do_sample=True, top_k=1, seed=0, eos_token_id=[])
    assert torch.equal(greedy, sampled)


def test_stops_at_eos_and_pads_finished_rows(model):
    prompt = torch.tensor([[1, 2, 3], [9, 8, 7]])
    free = model.generate(prompt, max_new_tokens=8, eos_token_id=[])
    eos = int(free[0, 3])  # row 0's first new token becomes the eos
    out = model.generate(prompt, max_new_tokens=8, eos_token_id=eos, pad_token_id=0)
    expected_rows, lengths = [], []
    for row in free[:, 3:].tolist():
        cut = row.index(eos) + 1 if eos in row else len(row)
        expected_rows.append(row[:cut])
        lengths.append(cut)
    assert out.shape[1] == 3 + max(lengths)  # stops once every row has finished
    for r, expected in enumerate(expected_rows):
        new = out[r, 3:].tolist()
        assert new[: len(expected)] == expected
        assert all(t == 0 for t in new[len(expected):])  # finished rows are padded


def test_eos_from_config_and_list(model):
    prompt = torch.tensor([[1, 2, 3]])
    free = model.generate(prompt, max_new_tokens=6, eos_token_id=[])
    first = int(free[0, 3])
    model.config.eos_token_id = [49, first]
    try:
        assert model.generate(prompt, max_new_tokens=6).shape[1] == 4
    finally:
        model.config.eos_token_id = 7


def test_stop_strings(model):
    prompt = torch.tensor([[1, 2, 3]])
    free = model.generate(prompt, max_new_tokens=12, eos_token_id=[])
    text = CharTokenizer().decode(free[0, 3:].tolist())
    stop = text[4:6]
    out = model.generate(prompt, max_new_tokens=12, eos_token_id=[], stop=[stop], tokenizer=CharTokenizer())
    produced = CharTokenizer().decode(out[0, 3:].tolist())
    assert stop in produced  # generation ran until the stop string appeared ...
    assert stop not in CharTokenizer().decode(out[0, 3:-1].tolist())  # ... and not one token longer
    assert out.shape[1] < free.shape[1]
    with pytest.raises(ValueError, match="stop strings need a tokenizer"):
        model.generate(prompt, max_new_tokens=3, stop=["x"])


def test_stream_yields_the_same_tokens_as_generate(model):
    prompt = torch.tensor([[3, 1, 4, 1, 5]])
    streamed = [t.item() for t in model.stream(prompt, max_new_tokens=15, eos_token_id=[])]
    assert streamed == model.generate(prompt, max_new_tokens=15, eos_token_id=[])[0, 5:].tolist()


def test_bad_settings_raise():
    with pytest.raises(ValueError, match="top_p must be in"):
        GenerationSettings(top_p=1.5)
    with pytest.raises(ValueError, match="temperature must be > 0"):
        GenerationSettings(do_sample=True, temperature=0)
    with pytest.raises(ValueError, match="max_new_tokens"):
        GenerationSettings(max_new_tokens=-1)


def test_model_stays_in_training_mode_after_generate(model):
    model.train()
    model.generate(torch.tensor([[1, 2]]), max_new_tokens=2)
    assert model.training
    model.eval()


def test_families_share_one_generation_interface():
    from minillm import EncoderDecoderModel
    from minillm.generation import GenerationMixin

    torch.manual_seed(0)
    seq2seq = EncoderDecoderModel({"model_type": "encoder_decoder", "vocab_size": 50, "d_model": 32, "num_heads": 4,
                                   "num_layers": 1, "max_seq_len": 64, "dropout": 0.1})
    assert issubclass(DecoderOnlyModel, GenerationMixin) and issubclass(EncoderDecoderModel, GenerationMixin)
    seq2seq.train()
    out = seq2seq.generate([[5, 6, 7]], max_new_tokens=4)
    assert out.shape == (1, 5) and int(out[0, 0]) == seq2seq.decoder_start_token_id
    assert seq2seq.training  # mode restored
    assert torch.equal(torch.stack(list(seq2seq.stream([[5, 6, 7]], max_new_tokens=4)), 1), out[:, 1:])


def test_training_works_after_generation():
    torch.manual_seed(0)
    m = DecoderOnlyModel({"model_type": "decoder_only", "vocab_size": 50, "d_model": 32, "num_heads": 2,
                          "num_layers": 1, "max_seq_len": 32})
    before = m(input_ids=torch.tensor([[1, 2, 3, 4]])).logits
    m.generate(torch.tensor([[1, 2, 3]]), max_new_tokens=3)  # fuses q/k/v and gate/up into shared storage
    after = m(input_ids=torch.tensor([[1, 2, 3, 4]])).logits
    torch.testing.assert_close(before, after, rtol=0, atol=1e-6)  # same values, other memory layout
    m.train()
    ids = torch.randint(0, 50, (2, 8))
    m(input_ids=ids, labels=ids).loss.backward()
    torch.optim.AdamW(m.parameters()).step()
    assert all(p.grad is not None for p in m.parameters() if p.requires_grad)
