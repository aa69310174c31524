"""Compiled CPU training attends by blocks of query rows: the same attention as SDPA, values and gradients."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from minillm import DecoderOnlyModel, ModelConfig, attention
from minillm.attention import BLOCKED_ROWS, causal_attention_in_row_blocks


def _qkv(T: int, heads: int = 4, kv_heads: int = 2, dtype=torch.float32) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    shapes = ((2, heads, T, 16), (2, kv_heads, T, 16), (2, kv_heads, T, 16))
    return [torch.randn(*shape, generator=g, dtype=dtype).requires_grad_() for shape in shapes]


@pytest.mark.parametrize("T", [5, BLOCKED_ROWS, 2 * BLOCKED_ROWS + 44])  # one short block, one full, a partial last
def test_row_blocks_equal_sdpa_values_and_gradients(T):
    ours, ref = _qkv(T), _qkv(T)
    out = causal_attention_in_row_blocks(*ours, scale=None)
    expected = F.scaled_dot_product_attention(*ref, is_causal=True, enable_gqa=True)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
    grad = torch.randn(out.shape, generator=torch.Generator().manual_seed(1))
    out.backward(grad)
    expected.backward(grad)
    for a, b in zip(ours, ref, strict=True):
        torch.testing.assert_close(a.grad, b.grad, atol=1e-5, rtol=1e-5)


def test_row_blocks_take_the_scale_and_run_in_the_autocast_dtype():
    q, k, v = _qkv(200, kv_heads=4)
    expected = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=0.3)
    torch.testing.assert_close(causal_attention_in_row_blocks(q, k, v, scale=0.3), expected, atol=1e-5, rtol=1e-5)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = causal_attention_in_row_blocks(q, k, v, scale=0.3)
    assert low.dtype == torch.bfloat16
    torch.testing.assert_close(low.float(), expected, atol=3e-2, rtol=3e-2)


def test_dropout_drops_attention_weights():
    q, k, v = _qkv(64)
    torch.manual_seed(0)
    dropped = causal_attention_in_row_blocks(q, k, v, scale=None, dropout=0.5)
    assert not torch.allclose(dropped, causal_attention_in_row_blocks(q, k, v, scale=None))


@pytest.mark.slow  # compiles a forward and backward
def test_compiled_training_step_uses_row_blocks_and_matches_eager(monkeypatch):
    calls = []
    original = attention.causal_attention_in_row_blocks

    def spy(*args, **kwargs):
        calls.append(1)  # runs while Dynamo traces the forward
        return original(*args, **kwargs)

    monkeypatch.setattr(attention, "causal_attention_in_row_blocks", spy)
    config = ModelConfig(vocab_size=101, d_model=64, num_heads=4, num_kv_heads=2, num_layers=2, max_seq_len=300)
    torch.manual_seed(0)
    eager, compiled = DecoderOnlyModel(config), DecoderOnlyModel(config)
    compiled.load_state_dict(eager.state_dict())
    ids = torch.randint(0, 101, (2, 2 * BLOCKED_ROWS + 20), generator=torch.Generator().manual_seed(3))
    eager_loss = eager(input_ids=ids, labels=ids).loss
    eager_loss.backward()
    assert not calls  # eager training stays on SDPA
    compiled_loss = torch.compile(compiled)(input_ids=ids, labels=ids).loss
    compiled_loss.backward()
    assert len(calls) == config.num_layers
    torch.testing.assert_close(compiled_loss, eager_loss, atol=1e-5, rtol=1e-5)
    for (name, a), b in zip(eager.named_parameters(), compiled.parameters(), strict=True):
        torch.testing.assert_close(b.grad, a.grad, atol=1e-5, rtol=1e-4, msg=name)
