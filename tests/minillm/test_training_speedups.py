"""The speedups keep the maths: fp32 attention under CPU autocast, and the per-process choice of the one-row
decoding product."""

from __future__ import annotations

import torch

from minillm import DecoderOnlyModel, ModelConfig
from minillm.one_row_products import RowBlockMatmul, decode_matmul, row_blocks_pay


def _model(seed: int = 0) -> DecoderOnlyModel:
    torch.manual_seed(seed)
    return DecoderOnlyModel(ModelConfig(vocab_size=97, d_model=64, num_heads=4, num_kv_heads=2, num_layers=2,
                                        max_seq_len=32, attention_bias=True))


def test_attention_runs_in_fp32_under_cpu_autocast(monkeypatch):
    seen = []
    original = torch.nn.functional.scaled_dot_product_attention

    def spy(q, k, v, *args, **kwargs):
        seen.append(q.dtype)
        return original(q, k, v, *args, **kwargs)

    monkeypatch.setattr("minillm.attention.F.scaled_dot_product_attention", spy)
    model = _model()
    ids = torch.randint(0, 97, (2, 16), generator=torch.Generator().manual_seed(2))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = model(input_ids=ids, labels=ids).loss
    loss.backward()
    assert seen == [torch.float32, torch.float32]  # one call per layer, none in bf16
    reference = _model()(input_ids=ids, labels=ids).loss  # full fp32
    assert abs(loss.item() - reference.item()) < 0.02


def test_decode_product_choice_is_made_once_and_keeps_the_result():
    first = row_blocks_pay(2)
    assert isinstance(first, bool) and row_blocks_pay(2) is first  # cached for the process
    torch.manual_seed(0)
    weight, bias, x = torch.randn(300, 48), torch.randn(300), torch.randn(1, 48)
    expected = torch.nn.functional.linear(x, weight, bias)
    torch.testing.assert_close(decode_matmul(weight, bias)(x), expected)
    torch.testing.assert_close(RowBlockMatmul(weight, bias, 2)(x), expected)
