"""The training-step speedups keep the maths: joint q/k/v and gate/up products, fp32 attention under CPU autocast,
and the per-process choice of the one-row decoding product."""

from __future__ import annotations

import torch
from torch import nn

from minillm import DecoderOnlyModel, ModelConfig
from minillm.decoding import RowBlockMatmul, decode_matmul, row_blocks_pay
from minillm.layers import joint_projection


def _model(seed: int = 0) -> DecoderOnlyModel:
    torch.manual_seed(seed)
    return DecoderOnlyModel(ModelConfig(vocab_size=97, d_model=64, num_heads=4, num_kv_heads=2, num_layers=2,
                                        max_seq_len=32, attention_bias=True))


def _separate(monkeypatch) -> None:
    monkeypatch.setattr("minillm.attention.joint_projection", lambda x, linears: None)
    monkeypatch.setattr("minillm.layers.joint_projection", lambda x, linears: None)


def test_joint_projection_applies_only_while_training_plain_linears():
    torch.manual_seed(0)
    linears = (nn.Linear(8, 6), nn.Linear(8, 4))
    x = torch.randn(3, 5, 8)
    joint = joint_projection(x, linears)
    assert [t.shape for t in joint] == [(3, 5, 6), (3, 5, 4)]
    for got, linear in zip(joint, linears, strict=True):
        torch.testing.assert_close(got, linear(x))
    with torch.no_grad():
        assert joint_projection(x, linears) is None  # inference keeps the separate products
    linears[0].eval()
    assert joint_projection(x, linears) is None
    linears[0].train()
    handle = linears[1].register_forward_hook(lambda *args: None)
    assert joint_projection(x, linears) is None  # a hook must still fire
    handle.remove()
    assert joint_projection(x, (linears[0], nn.Linear(8, 4, bias=False))) is None  # mixed biases


def test_joint_training_step_matches_separate_products(monkeypatch):
    ids = torch.randint(0, 97, (2, 16), generator=torch.Generator().manual_seed(1))
    joint_model, separate_model = _model(), _model()
    calls = []

    def counted(x, linears):
        calls.append(len(linears))
        return joint_projection(x, linears)

    monkeypatch.setattr("minillm.attention.joint_projection", counted)
    monkeypatch.setattr("minillm.layers.joint_projection", counted)
    loss = joint_model(input_ids=ids, labels=ids).loss
    assert calls == [3, 2, 3, 2]  # q/k/v and gate/up of both layers went through one product each
    loss.backward()
    _separate(monkeypatch)
    reference = separate_model(input_ids=ids, labels=ids).loss
    reference.backward()
    torch.testing.assert_close(loss, reference)
    for (name, p), (_, r) in zip(joint_model.named_parameters(), separate_model.named_parameters(), strict=True):
        torch.testing.assert_close(p.grad, r.grad, msg=name)


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
