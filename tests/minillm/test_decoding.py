"""The decoding path: fused projections, row-block products and DecodeStep against the plain forward."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.testing import assert_close

from minillm import DecoderOnlyModel, one_row_products
from minillm.decoding import fuse_linears, fused_rows, prepare_decoding_weights, supports_fused_decoding
from minillm.generation import GenerationSettings
from minillm.one_row_products import RowBlockMatmul, decode_matmul

from .decoding_checks import padded_prompt, steps_match_forward
from .hf_reference import LLAMA_VARIANTS as CONFIGS
from .hf_reference import ours_from_hf, tiny_llama


def _model(bias: bool = True, layers: int = 2) -> DecoderOnlyModel:
    torch.manual_seed(0)
    return DecoderOnlyModel({"model_type": "decoder_only", "vocab_size": 61, "d_model": 32, "num_heads": 4,
                             "num_kv_heads": 2, "num_layers": layers, "d_ff": 48, "max_seq_len": 64,
                             "attention_bias": bias, "mlp_bias": bias}).eval()


@pytest.mark.parametrize("rows", [8, 61, 3, 2])
@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("with_bias", [False, True])
def test_row_block_matmul_equals_linear(rows, batch, with_bias):
    g = torch.Generator().manual_seed(rows)
    weight, x = torch.randn(rows, 24, generator=g), torch.randn(batch, 24, generator=g)
    bias = torch.randn(rows, generator=g) if with_bias else None
    for parts in (2, 4, 16):
        got = RowBlockMatmul(weight, bias, parts)(x)
        assert got.shape == (batch, rows)
        assert_close(got, F.linear(x, weight, bias), atol=1e-5, rtol=1e-5)


def test_row_block_matmul_accepts_any_row_layout():
    weight = torch.randn(16, 8)
    row = torch.randn(1, 16)[:, :8]  # a (1, 8) view whose rows are 16 apart
    odd = torch.randn(8, 1).t()  # (1, 8) with stride (1, 1)
    product = RowBlockMatmul(weight, None, 2)
    for x in (row, odd):
        assert_close(product(x), F.linear(x, weight))
    with pytest.raises(ValueError, match="at least 2 rows"):
        RowBlockMatmul(torch.randn(1, 8), None, 2)


def test_decode_matmul_uses_linear_outside_cpu_float32(monkeypatch):
    weight = torch.randn(6, 4, dtype=torch.bfloat16)
    x = torch.randn(2, 4, dtype=torch.bfloat16)
    monkeypatch.setattr(one_row_products, "row_blocks_pay", lambda threads: True)
    assert not isinstance(decode_matmul(weight), RowBlockMatmul)
    assert torch.equal(decode_matmul(weight)(x), F.linear(x, weight))
    assert isinstance(decode_matmul(weight.float()), RowBlockMatmul)


def test_decode_matmul_follows_the_timed_choice_for_cpu_float32(monkeypatch):
    weight = torch.randn(6, 4)
    x = torch.randn(1, 4)
    monkeypatch.setattr(one_row_products, "row_blocks_pay", lambda threads: False)
    product = decode_matmul(weight)
    assert not isinstance(product, RowBlockMatmul)
    assert torch.equal(product(x), F.linear(x, weight))


def test_fusion_keeps_names_values_and_is_done_once():
    model = _model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    layers = prepare_decoding_weights(model)
    assert len(layers) == model.config.num_layers
    after = model.state_dict()
    assert list(after) == list(before)
    assert all(torch.equal(after[k], before[k]) for k in before)
    attn = model.model.layers[0].self_attn
    projections = [attn.q_proj, attn.k_proj, attn.v_proj]
    fused = fused_rows([p.weight.detach() for p in projections])
    assert fused is not None and fused.shape == (32 + 2 * 16, 32)
    assert fused_rows([p.bias.detach() for p in projections]) is not None
    pointer = attn.k_proj.weight.data_ptr()
    prepare_decoding_weights(model)
    assert attn.k_proj.weight.data_ptr() == pointer  # already fused: nothing copied
    assert fused_rows([attn.q_proj.weight, attn.o_proj.weight]) is None  # separate storages


def test_fusion_redone_after_weights_are_replaced():
    model = _model()
    prepare_decoding_weights(model)
    model.double().float()  # new storage for every parameter
    mlp = model.model.layers[1].mlp
    assert fused_rows([mlp.gate_proj.weight.detach(), mlp.up_proj.weight.detach()]) is None
    ids = torch.tensor([[3, 4, 5, 6]])
    expected = _greedy_uncached(model, ids, 6)
    assert torch.equal(model.generate(ids, max_new_tokens=6, eos_token_id=[]), expected)
    assert fused_rows([mlp.gate_proj.weight.detach(), mlp.up_proj.weight.detach()]) is not None


def test_fused_model_saves_loads_and_trains(tmp_path):
    model = _model()
    ids = torch.tensor([[1, 2, 3, 4, 5]])
    model.generate(ids, max_new_tokens=3)  # fuses
    model.save_pretrained(tmp_path / "m")
    again = DecoderOnlyModel.from_pretrained(tmp_path / "m")
    with torch.no_grad():
        assert torch.equal(again(input_ids=ids).logits, model(input_ids=ids).logits)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    batch = torch.randint(0, 61, (2, 8))
    for _ in range(2):
        model(input_ids=batch, labels=batch).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    fuse_linears([model.model.layers[0].self_attn.q_proj])  # a one-module group is a no-op when contiguous
    model.eval()
    # The optimizer wrote into the fused storage, so decoding sees the trained weights.
    assert torch.equal(model.generate(ids, max_new_tokens=5, eos_token_id=[]), _greedy_uncached(model, ids, 5))


def _greedy_uncached(model, ids, steps, mask=None):
    seq = ids
    with torch.no_grad():
        for _ in range(steps):
            logits = model(input_ids=seq, attention_mask=mask).logits[:, -1]
            seq = torch.cat([seq, logits.argmax(-1, keepdim=True)], dim=1)
            if mask is not None:
                mask = torch.cat([mask, mask.new_ones(mask.shape[0], 1)], dim=1)
    return seq


@pytest.mark.parametrize("name", list(CONFIGS))
def test_decode_steps_match_the_full_forward(name, tmp_path):
    """Every step's logits equal an uncached forward over the whole sequence, with left padding, past the
    sliding window, for every attention/rope/bias variant."""
    ours = ours_from_hf(tiny_llama(**CONFIGS[name]), tmp_path)
    g = torch.Generator().manual_seed(3)
    ids, mask = padded_prompt(g)
    steps_match_forward(ours, ids, mask, 14, 2e-5, g)  # 21 positions: past the window of 8


def test_generation_with_biases_matches_transformers(tmp_path):
    hf = tiny_llama(**CONFIGS["mqa-bias"])
    ours = ours_from_hf(hf, tmp_path)
    prompt = torch.tensor([[5, 9, 17, 33, 4, 8]])
    ref = hf.generate(prompt, max_new_tokens=24, do_sample=False, eos_token_id=None, min_new_tokens=24)
    assert torch.equal(ours.generate(prompt, max_new_tokens=24, eos_token_id=[]), ref)


def test_bfloat16_decoding_follows_the_bfloat16_forward():
    model = _model(bias=False).to(torch.bfloat16)
    ids = torch.tensor([[3, 14, 15, 9, 26]])
    step, first, _ = model.prepare_generation(ids, None, GenerationSettings(max_new_tokens=4))
    with torch.inference_mode():
        step(first)
        logits = step(torch.tensor([[7]]))
        expected = model(input_ids=torch.cat([ids, torch.tensor([[7]])], dim=1)).logits[:, -1]
    assert logits.dtype == torch.bfloat16
    assert_close(logits.float(), expected.float(), atol=0.05, rtol=0.05)


class _Adapter(torch.nn.Module):
    """A LoRA-like wrapper: base linear plus a low-rank delta (what peft puts in place of q_proj)."""

    def __init__(self, base: torch.nn.Linear) -> None:
        super().__init__()
        self.base = base
        self.down = torch.nn.Linear(base.in_features, 2, bias=False)
        self.up = torch.nn.Linear(2, base.out_features, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + self.up(self.down(x))


def test_wrapped_projections_step_through_the_modules():
    model = _model(bias=False)
    attn = model.model.layers[0].self_attn
    attn.q_proj = _Adapter(attn.q_proj)
    assert not supports_fused_decoding(model)
    ids = torch.tensor([[2, 7, 1, 8], [0, 0, 2, 8]])
    mask = torch.tensor([[1, 1, 1, 1], [0, 0, 1, 1]])
    got = model.generate(ids, attention_mask=mask, max_new_tokens=6, eos_token_id=[])
    assert torch.equal(got, _greedy_uncached(model, ids, 6, mask))
