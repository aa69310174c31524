"""Our DecoderOnlyModel against transformers' Llama/Mistral on tiny random configs (CPU, no network)."""

from __future__ import annotations

import pytest
import torch
from torch.testing import assert_close

from minillm import DecoderOnlyModel

from .hf_reference import LLAMA_VARIANTS as CONFIGS
from .hf_reference import ours_from_hf, tiny_llama

pytest.importorskip("transformers")



def _batch(seed: int = 1, B: int = 3, T: int = 20):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(3, 128, (B, T), generator=g)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_logits_and_loss_match_transformers(name, tmp_path):
    hf = tiny_llama(**CONFIGS[name])
    ours = ours_from_hf(hf, tmp_path)
    ids = _batch()
    with torch.no_grad():
        ref = hf(input_ids=ids, labels=ids)
        out = ours(input_ids=ids, labels=ids)
    assert_close(out.logits, ref.logits, atol=1e-5, rtol=1e-5)
    assert_close(out.loss, ref.loss, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("name", ["mha-untied", "gqa-tied", "mistral-window"])
def test_left_padding_matches_transformers(name, tmp_path):
    hf = tiny_llama(**CONFIGS[name])
    ours = ours_from_hf(hf, tmp_path)
    ids = _batch(T=16)
    mask = torch.ones_like(ids)
    mask[0, :5] = 0  # left padding of different lengths
    mask[1, :2] = 0
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    with torch.no_grad():
        ref = hf(input_ids=ids, attention_mask=mask, position_ids=positions).logits
        out = ours(input_ids=ids, attention_mask=mask).logits
    real = mask.bool()
    assert_close(out[real], ref[real], atol=1e-5, rtol=1e-5)
    # A left-padded row gives the same logits as the same tokens unpadded.
    with torch.no_grad():
        alone = ours(input_ids=ids[:1, 5:]).logits
    assert_close(out[0, 5:], alone[0], atol=1e-5, rtol=1e-5)
    assert not torch.isnan(out).any()


def test_right_padding_matches_transformers(tmp_path):
    hf = tiny_llama(num_kv_heads=2)
    ours = ours_from_hf(hf, tmp_path)
    ids = _batch(T=12)
    mask = torch.ones_like(ids)
    mask[0, 8:] = 0
    with torch.no_grad():
        ref = hf(input_ids=ids, attention_mask=mask).logits
        out = ours(input_ids=ids, attention_mask=mask).logits
    real = mask.bool()
    assert_close(out[real], ref[real], atol=1e-5, rtol=1e-5)


def test_loss_ignores_minus_100(tmp_path):
    hf = tiny_llama()
    ours = ours_from_hf(hf, tmp_path)
    ids = _batch()
    labels = ids.clone()
    labels[:, :7] = -100
    with torch.no_grad():
        assert_close(ours(input_ids=ids, labels=labels).loss, hf(input_ids=ids, labels=labels).loss)


@pytest.mark.parametrize("name", ["gqa-tied", "mistral-window"])
def test_greedy_generation_matches_transformers_and_uncached(name, tmp_path):
    hf = tiny_llama(**CONFIGS[name])
    ours = ours_from_hf(hf, tmp_path)
    prompt = _batch(B=1, T=6)
    ref = hf.generate(prompt, max_new_tokens=32, do_sample=False, eos_token_id=None, min_new_tokens=32)
    got = ours.generate(prompt, max_new_tokens=32, eos_token_id=[])
    assert torch.equal(got, ref)
    # Without a cache: re-run the full sequence each step.
    seq = prompt
    with torch.no_grad():
        for _ in range(32):
            nxt = ours(input_ids=seq).logits[:, -1].argmax(-1, keepdim=True)
            seq = torch.cat([seq, nxt], dim=1)
    assert torch.equal(seq, got)


def test_batched_left_padded_generation_equals_one_by_one(tmp_path):
    hf = tiny_llama(num_kv_heads=2)
    ours = ours_from_hf(hf, tmp_path)
    a, b = [5, 9, 17, 33, 4, 8, 21], [7, 11, 3]
    ids = torch.tensor([a, [0] * 4 + b])
    mask = torch.tensor([[1] * 7, [0] * 4 + [1] * 3])
    batched = ours.generate(ids, attention_mask=mask, max_new_tokens=12, eos_token_id=[])
    alone_a = ours.generate(torch.tensor([a]), max_new_tokens=12, eos_token_id=[])
    alone_b = ours.generate(torch.tensor([b]), max_new_tokens=12, eos_token_id=[])
    assert torch.equal(batched[0], alone_a[0])
    assert torch.equal(batched[1, 4:], alone_b[0])
    ref = hf.generate(ids, attention_mask=mask, max_new_tokens=12, do_sample=False, min_new_tokens=12)
    assert torch.equal(batched, ref)


def test_save_pretrained_opens_in_transformers(tmp_path):
    from transformers import AutoModelForCausalLM

    for tie in (True, False):
        ours = DecoderOnlyModel({"model_type": "decoder_only", "vocab_size": 100, "d_model": 64, "num_heads": 4,
                                     "num_layers": 2, "d_ff": 128, "max_seq_len": 64, "dropout": 0.0, "tie_word_embeddings": tie})
        ours.eval()
        ours.save_pretrained(tmp_path / f"ours-{tie}")
        hf = AutoModelForCausalLM.from_pretrained(tmp_path / f"ours-{tie}").eval()
        assert type(hf).__name__ == "LlamaForCausalLM"
        ids = torch.randint(0, 100, (2, 10))
        with torch.no_grad():
            assert_close(ours(input_ids=ids).logits, hf(input_ids=ids).logits, atol=1e-5, rtol=1e-5)
        again = DecoderOnlyModel.from_pretrained(tmp_path / f"ours-{tie}")
        with torch.no_grad():
            assert torch.equal(again(input_ids=ids).logits, ours(input_ids=ids).logits)
