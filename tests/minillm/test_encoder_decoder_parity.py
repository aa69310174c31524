"""Our EncoderDecoderModel against transformers' T5ForConditionalGeneration on tiny random configs."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file
from torch.testing import assert_close

from minillm import EncoderDecoderModel
from minillm.t5_position import relative_position_bucket

pytest.importorskip("transformers")

# (feed_forward_proj, tied head): tied heads are original T5 (outputs scaled by d_model**-0.5), untied are
# T5 v1.1 / flan-t5 (no scaling, a separate lm_head.weight).
CONFIGS = {
    "gated-gelu-tied": ("gated-gelu", True),
    "gated-gelu-untied": ("gated-gelu", False),
    "relu-tied": ("relu", True),
    "relu-untied": ("relu", False),
}


def tiny_t5(ff: str, tie: bool, seed: int = 0, **overrides):
    from transformers import T5Config, T5ForConditionalGeneration

    torch.manual_seed(seed)
    kwargs = {"vocab_size": 96, "d_model": 64, "d_kv": 16, "d_ff": 96, "num_layers": 2, "num_heads": 4, "feed_forward_proj": ff,
                  "tie_word_embeddings": tie, "relative_attention_num_buckets": 8, "relative_attention_max_distance": 20,
                  "decoder_start_token_id": 0, "pad_token_id": 0, "eos_token_id": 1, "dropout_rate": 0.1}
    kwargs.update(overrides)
    model = T5ForConditionalGeneration(T5Config(**kwargs)).eval()
    with torch.no_grad():
        for module in model.modules():  # non-trivial norms so the test sees them
            if type(module).__name__ == "T5LayerNorm":
                module.weight.normal_(1.0, 0.2)
        if not tie:
            model.lm_head.weight = torch.nn.Parameter(torch.randn(96, 64) * 0.3)
    return model


def _batch(seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(2, 96, (3, 30), generator=g)  # long enough to reach the logarithmic buckets
    mask = torch.ones_like(ids)
    mask[0, 21:] = 0
    mask[1, 6:] = 0
    ids = ids.masked_fill(mask == 0, 0)
    labels = torch.randint(2, 96, (3, 25), generator=g)
    labels[0, 17:] = -100
    return ids, mask, labels


@pytest.mark.parametrize("name", list(CONFIGS))
def test_logits_and_loss_match_transformers(name, tmp_path):
    hf = tiny_t5(*CONFIGS[name])
    hf.save_pretrained(tmp_path / "hf")
    ours = EncoderDecoderModel.from_pretrained(tmp_path / "hf")
    assert ours.config.tie_word_embeddings == CONFIGS[name][1] == ours.scale_outputs
    ids, mask, labels = _batch()
    with torch.no_grad():
        ref = hf(input_ids=ids, attention_mask=mask, labels=labels)
        out = ours(input_ids=ids, attention_mask=mask, labels=labels)
        explicit = ours(input_ids=ids, attention_mask=mask, decoder_input_ids=hf._shift_right(labels))
    diff = (out.logits - ref.logits).abs().max().item()
    enc = (out.encoder_last_hidden_state - ref.encoder_last_hidden_state)[mask.bool()].abs().max().item()
    print(f"\nT5 {name}: logits max abs diff {diff:.2e}, encoder states {enc:.2e}")
    assert_close(out.logits, ref.logits, atol=1e-4, rtol=1e-4)
    assert_close(out.loss, ref.loss, atol=1e-5, rtol=1e-5)
    assert_close(explicit.logits, out.logits)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CONFIGS))
def test_greedy_generation_matches_transformers(name, tmp_path):
    hf = tiny_t5(*CONFIGS[name], seed=3, eos_token_id=95)
    hf.save_pretrained(tmp_path / "hf")
    ours = EncoderDecoderModel.from_pretrained(tmp_path / "hf")
    ids, mask, _ = _batch(seed=4)
    ref = hf.generate(input_ids=ids, attention_mask=mask, max_new_tokens=24, do_sample=False)
    out = ours.generate(ids, mask, max_new_tokens=24, do_sample=False)
    assert out[:, 0].eq(0).all()
    assert torch.equal(out, ref), (out, ref)
    # eos stops a row; later positions are padding, as in transformers
    eos = int(out[0, 5])
    ref = hf.generate(input_ids=ids, attention_mask=mask, max_new_tokens=12, eos_token_id=eos, do_sample=False)
    out = ours.generate(ids, mask, max_new_tokens=12, eos_token_id=eos)
    assert torch.equal(out, ref)


@pytest.mark.parametrize("name", ["gated-gelu-untied", "relu-tied"])
def test_save_pretrained_opens_in_transformers(name, tmp_path):
    from transformers import T5ForConditionalGeneration

    hf = tiny_t5(*CONFIGS[name])
    hf.save_pretrained(tmp_path / "hf")
    ours = EncoderDecoderModel.from_pretrained(tmp_path / "hf")
    ours.save_pretrained(tmp_path / "ours")
    reopened = T5ForConditionalGeneration.from_pretrained(tmp_path / "ours").eval()
    ids, mask, labels = _batch()
    with torch.no_grad():
        ref = hf(input_ids=ids, attention_mask=mask, labels=labels)
        back = reopened(input_ids=ids, attention_mask=mask, labels=labels)
    assert_close(back.logits, ref.logits, atol=1e-5, rtol=1e-5)
    again = EncoderDecoderModel.from_pretrained(tmp_path / "ours")
    assert again.config.tie_word_embeddings == ours.config.tie_word_embeddings


def test_v4_untied_config_and_extra_checkpoint_keys(tmp_path):
    """A T5 v1.1-style directory: tie_word_embeddings false, embed_tokens copies, separate lm_head."""
    hf = tiny_t5("gated-gelu", False)
    hf.save_pretrained(tmp_path / "hf")
    config_file = tmp_path / "hf" / "config.json"
    config = json.loads(config_file.read_text())
    config.pop("scale_decoder_outputs")
    config["tie_word_embeddings"] = False
    config_file.write_text(json.dumps(config))
    file = tmp_path / "hf" / "model.safetensors"
    state = load_file(file)
    state["encoder.embed_tokens.weight"] = state["shared.weight"].clone()
    state["decoder.embed_tokens.weight"] = state["shared.weight"].clone()
    save_file(state, file)
    ours = EncoderDecoderModel.from_pretrained(tmp_path / "hf")
    assert not ours.scale_outputs and not ours.config.tie_word_embeddings
    ids, mask, labels = _batch()
    with torch.no_grad():
        assert_close(ours(input_ids=ids, attention_mask=mask, labels=labels).logits,
                     hf(input_ids=ids, attention_mask=mask, labels=labels).logits, atol=1e-4, rtol=1e-4)
    state["decoder.block.1.layer.1.EncDecAttention.relative_attention_bias.weight"] = torch.zeros(8, 4)
    save_file(state, file)
    with pytest.raises(ValueError, match="unknown weights"):
        EncoderDecoderModel.from_pretrained(tmp_path / "hf")


def test_more_decoder_layers_than_encoder_layers(tmp_path):
    hf = tiny_t5("gated-gelu", True, num_decoder_layers=3)
    hf.save_pretrained(tmp_path / "hf")
    ours = EncoderDecoderModel.from_pretrained(tmp_path / "hf")
    assert len(ours.decoder.layers) == 3 and len(ours.encoder.layers) == 2
    ids, mask, labels = _batch()
    with torch.no_grad():
        assert_close(ours(input_ids=ids, attention_mask=mask, labels=labels).logits,
                     hf(input_ids=ids, attention_mask=mask, labels=labels).logits, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("bidirectional", [True, False])
def test_relative_position_buckets_match_transformers(bidirectional):
    from transformers.models.t5.modeling_t5 import T5Attention

    relative = torch.arange(-300, 300)[None, :]
    ours = relative_position_bucket(relative, bidirectional, 32, 128)
    ref = T5Attention._relative_position_bucket(relative, bidirectional, 32, 128)
    assert torch.equal(ours, ref)


def test_seed_style_config_and_errors():
    model = EncoderDecoderModel({"model_type": "encoder_decoder", "vocab_size": 40, "d_model": 32, "num_heads": 4,
                                     "num_layers": 2, "d_ff": 64, "max_seq_len": 64, "dropout": 0.0}).eval()
    ids = torch.randint(2, 40, (2, 9))
    out = model(input_ids=ids, labels=ids[:, :5])
    assert out.logits.shape == (2, 5, 40) and out.loss.ndim == 0
    with pytest.raises(ValueError, match="decoder_input_ids or labels"):
        model(input_ids=ids)
    assert model.generate(ids, max_new_tokens=0).shape == (2, 1)
    sampled = model.generate(ids, max_new_tokens=5, do_sample=True, top_k=5, seed=0, eos_token_id=[])
    assert sampled.shape == (2, 6)
    with pytest.raises(ValueError, match="feed_forward_proj"):
        EncoderDecoderModel({"model_type": "encoder_decoder", "vocab_size": 40, "d_model": 32, "num_heads": 4,
                                 "num_layers": 1, "feed_forward_proj": "gelu-gated"})
