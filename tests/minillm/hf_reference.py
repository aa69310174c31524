"""Tiny random transformers models and their copies in our classes (shared by parity tests)."""

from __future__ import annotations

import torch

# tiny_llama() overrides for each attention / rope / bias variant the parity tests cover.
LLAMA_VARIANTS = {
    "mha-untied": {"num_kv_heads": 4, "tie": False},
    "gqa-tied": {"num_kv_heads": 2, "tie": True},
    "mqa-bias": {"num_kv_heads": 1, "attention_bias": True, "mlp_bias": True},
    "llama3-rope": {
        "num_kv_heads": 2,
        "rope_parameters": {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0,
                             "high_freq_factor": 4.0, "original_max_position_embeddings": 64},
    },
    "mistral-window": {"num_kv_heads": 2, "sliding_window": 8},
}


def tiny_llama(num_kv_heads: int = 4, tie: bool = False, seed: int = 0, **overrides):
    """A random LlamaForCausalLM (or Mistral with ``sliding_window``) small enough for CPU tests."""
    from transformers import LlamaConfig, LlamaForCausalLM, MistralConfig, MistralForCausalLM

    torch.manual_seed(seed)
    kwargs = {
        "vocab_size": 128, "hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 2, "num_attention_heads": 4,
        "num_key_value_heads": num_kv_heads, "max_position_embeddings": 256, "tie_word_embeddings": tie,
        "rms_norm_eps": 1e-6, "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0,
    }
    kwargs.update(overrides)
    if "sliding_window" in kwargs:
        model = MistralForCausalLM(MistralConfig(**kwargs))
    else:
        model = LlamaForCausalLM(LlamaConfig(**kwargs))
    return model.eval()


def ours_from_hf(hf_model, tmp_path):
    """Save a transformers model and open it with our DecoderOnlyModel."""
    from minillm import DecoderOnlyModel

    hf_model.save_pretrained(tmp_path / "hf")
    return DecoderOnlyModel.from_pretrained(tmp_path / "hf")
