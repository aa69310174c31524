"""Weight-only int8 (minillm.int8_weights): rounding bounds, logits near float32, the fused decoding step."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.testing import assert_close

from minillm import DecoderOnlyModel
from minillm.decoding import fused_rows, supports_fused_decoding
from minillm.errors import InputError
from minillm.generation import GenerationSettings
from minillm.int8_weights import Int8Linear, quantize_int8, quantize_rows

# Tolerance of int8 logits against float32 on the tiny random models below (their logits are within about +-1):
# int8 rounding of every weight plus one bfloat16 rounding of every projection input. Measured: 0.004.
LOGITS_ATOL = 0.02


def _model(bias: bool = False, tied: bool = False, kv_heads: int = 2) -> DecoderOnlyModel:
    torch.manual_seed(0)
    return DecoderOnlyModel({"model_type": "decoder_only", "vocab_size": 61, "d_model": 32, "num_heads": 4,
                             "num_kv_heads": kv_heads, "num_layers": 2, "d_ff": 48, "max_seq_len": 64,
                             "attention_bias": bias, "mlp_bias": bias, "tie_word_embeddings": tied}).eval()


def test_rows_round_within_half_a_step():
    g = torch.Generator().manual_seed(0)
    weight = torch.randn(17, 40, generator=g) * torch.logspace(-3, 1, 17)[:, None]
    weight[5] = 0.0
    q, scales = quantize_rows(weight)
    assert q.dtype == torch.int8 and q.abs().max() <= 127
    error = (q.float() * scales.float()[:, None] - weight).abs()  # (N, K)
    assert bool((error <= scales.float()[:, None] / 2 + 1e-7).all())
    assert q[5].abs().sum() == 0 and scales[5] == 1


@pytest.mark.parametrize("bias", [False, True])
def test_int8_linear_is_the_dequantized_product(bias):
    torch.manual_seed(1)
    linear = torch.nn.Linear(48, 24, bias=bias)
    module = Int8Linear.from_linear(linear)
    x = torch.randn(2, 5, 48)
    dequantized = module.weight_int8.float() * module.scales.float()[:, None]  # (N, K)
    expected = F.linear(x.bfloat16().float(), dequantized, linear.bias)
    got = module(x)
    assert got.shape == (2, 5, 24) and got.dtype == torch.float32
    assert_close(got, expected, atol=2e-2, rtol=1e-2)  # the product itself runs in bfloat16
    assert_close(got, linear(x), atol=0.05, rtol=0.05)


@pytest.mark.parametrize("bias,tied,kv_heads", [(False, False, 2), (True, True, 1), (True, False, 4)])
def test_quantized_model_logits_close_and_same_greedy_tokens(bias, tied, kv_heads):
    model = _model(bias, tied, kv_heads)
    ids = torch.randint(0, 61, (2, 12), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected = model(input_ids=ids).logits
        greedy = model.generate(ids, max_new_tokens=20, eos_token_id=[])
    embedding = model.model.embed_tokens.weight.detach().clone()
    quantize_int8(model)
    assert isinstance(model.lm_head, Int8Linear) and supports_fused_decoding(model)
    assert torch.equal(model.model.embed_tokens.weight, embedding)  # lookups stay exact, tied or not
    with torch.no_grad():
        got = model(input_ids=ids).logits
    assert_close(got, expected, atol=LOGITS_ATOL, rtol=0)
    assert torch.equal(model.generate(ids, max_new_tokens=20, eos_token_id=[]), greedy)


def test_groups_are_fused_and_quantizing_twice_is_a_no_op():
    model = quantize_int8(_model(bias=True))
    attn, mlp = model.model.layers[0].self_attn, model.model.layers[0].mlp
    for group in ([attn.q_proj, attn.k_proj, attn.v_proj], [mlp.gate_proj, mlp.up_proj]):
        for name in ("weight_int8", "scales"):
            assert fused_rows([getattr(m, name) for m in group]) is not None
    assert fused_rows([m.bias for m in (attn.q_proj, attn.k_proj, attn.v_proj)]) is not None
    before = attn.q_proj.weight_int8.data_ptr()
    quantize_int8(model)
    assert attn.q_proj.weight_int8.data_ptr() == before


def test_decode_steps_follow_the_int8_forward_with_left_padding():
    model = quantize_int8(_model(bias=True))
    g = torch.Generator().manual_seed(3)
    ids = torch.randint(3, 61, (2, 6), generator=g)
    mask = torch.ones_like(ids)
    mask[1, :2] = 0
    step, first, _ = model.prepare_generation(ids, mask, GenerationSettings(max_new_tokens=8))
    seq, full_mask, current = ids, mask, first
    with torch.inference_mode():
        for _ in range(8):
            logits = step(current)
            expected = model(input_ids=seq, attention_mask=full_mask).logits[:, -1]
            assert_close(logits, expected, atol=1e-3, rtol=1e-3)
            current = torch.randint(3, 61, (2, 1), generator=g)
            seq = torch.cat([seq, current], dim=1)
            full_mask = torch.cat([full_mask, torch.ones_like(current)], dim=1)


def test_refuses_what_it_cannot_quantize():
    with pytest.raises(InputError, match="needs a DecoderOnlyModel"):
        quantize_int8(torch.nn.Linear(4, 4))
    model = _model()
    attn = model.model.layers[0].self_attn
    attn.q_proj = torch.nn.Sequential(attn.q_proj)
    with pytest.raises(InputError, match="plain nn.Linear"):
        quantize_int8(model)
    with pytest.raises(InputError, match="int8"):
        Int8Linear(torch.zeros(3, 4), torch.ones(3))


@pytest.mark.slow
def test_smollm2_int8_greedy_agreement_over_128_tokens(smollm2_gguf):
    """Real weights: the int8 model's first greedy tokens are the float32 model's (reported, with the logits
    difference); measured on this prompt: 35 of 128 leading tokens agree, then both continue sensibly."""
    from transformers import AutoTokenizer

    from minillm.checkpoint import resolve_model_dir

    model = DecoderOnlyModel.from_pretrained(smollm2_gguf).eval()
    tokenizer = AutoTokenizer.from_pretrained(resolve_model_dir(smollm2_gguf))
    prompt = torch.tensor([tokenizer.encode("<|im_start|>user\nTell me a story about a robot.<|im_end|>\n"
                                            "<|im_start|>assistant\n")])
    with torch.no_grad():
        logits = model(input_ids=prompt).logits[0, -1]
        greedy = model.generate(prompt, max_new_tokens=128, eos_token_id=[])[0, prompt.shape[1]:]
        quantize_int8(model)
        logits_int8 = model(input_ids=prompt).logits[0, -1]
        greedy_int8 = model.generate(prompt, max_new_tokens=128, eos_token_id=[])[0, prompt.shape[1]:]
    agree = next((i for i in range(128) if greedy[i] != greedy_int8[i]), 128)
    print(f"SmolLM2 int8: max |logit - fp32| {float((logits_int8 - logits).abs().max()):.3f} "
          f"(fp32 logits span {float(logits.abs().max()):.1f}); {agree}/128 leading greedy tokens agree")
    assert logits_int8.argmax() == logits.argmax()
    assert agree >= 16


def test_docstring_examples():
    import doctest

    import minillm.int8_weights

    result = doctest.testmod(minillm.int8_weights)
    assert result.attempted > 0 and result.failed == 0
