"""Our DecoderOnlyModel <-> transformers' LlamaForCausalLM / MistralForCausalLM.

Module names are the same on both sides (``model.layers.{i}.self_attn.q_proj.weight`` ...), so the weight map is
the identity over an explicit list of expected names: anything else is an error.
"""

from __future__ import annotations

from typing import Any

import torch

from minillm.errors import InputError

from ..config import ModelConfig
from .common import check_keys, drop_buffers

LAYER_WEIGHTS = (
    "input_layernorm.weight",
    "self_attn.q_proj.weight",
    "self_attn.k_proj.weight",
    "self_attn.v_proj.weight",
    "self_attn.o_proj.weight",
    "post_attention_layernorm.weight",
    "mlp.gate_proj.weight",
    "mlp.up_proj.weight",
    "mlp.down_proj.weight",
)
ATTENTION_BIASES = ("self_attn.q_proj.bias", "self_attn.k_proj.bias", "self_attn.v_proj.bias", "self_attn.o_proj.bias")
MLP_BIASES = ("mlp.gate_proj.bias", "mlp.up_proj.bias", "mlp.down_proj.bias")
BUFFERS = ("rotary_emb.inv_freq",)


def expected_keys(config: ModelConfig) -> list[str]:
    """Every weight name a LlamaForCausalLM with this config has (lm_head only when untied)."""
    per_layer = list(LAYER_WEIGHTS)
    if config.attention_bias:
        per_layer += ATTENTION_BIASES
    if config.mlp_bias:
        per_layer += MLP_BIASES
    keys = ["model.embed_tokens.weight", "model.norm.weight"]
    keys += [f"model.layers.{i}.{name}" for i in range(config.num_layers) for name in per_layer]
    if not config.tie_word_embeddings:
        keys.append("lm_head.weight")
    return keys


def state_dict_from_hf(state: dict[str, torch.Tensor], config: ModelConfig) -> dict[str, torch.Tensor]:
    """transformers' Llama/Mistral weights -> ours. Raises on unknown or missing names."""
    state = drop_buffers(state, BUFFERS)
    optional = ["lm_head.weight"] if config.tie_word_embeddings else []
    check_keys(state, expected_keys(config), optional)
    if config.tie_word_embeddings:
        state.pop("lm_head.weight", None)
    return state


def state_dict_to_hf(state: dict[str, torch.Tensor], config: ModelConfig) -> dict[str, torch.Tensor]:
    """Ours -> transformers' names (identical); tied heads are written once, as the embedding."""
    state = drop_buffers(state, BUFFERS)
    if config.tie_word_embeddings:
        state.pop("lm_head.weight", None)
    check_keys(state, expected_keys(config), source="model")
    return state


def config_from_hf(data: dict[str, Any]) -> ModelConfig:
    """transformers' config.json (Llama or Mistral, v4 or v5 field names) -> ModelConfig."""
    data = dict(data)
    if data.get("model_type") not in ("llama", "mistral", "decoder_only"):
        raise InputError(f"expected a llama or mistral config, got model_type {data.get('model_type')!r}")
    data.setdefault("tie_word_embeddings", False)  # transformers' Llama default
    data.setdefault("norm_eps", data.pop("rms_norm_eps", 1e-6))
    if "rope_theta" in data and "rope_parameters" not in data:  # transformers 4 layout
        data["rope_parameters"] = {"rope_theta": data.pop("rope_theta"), **(data.pop("rope_scaling", None) or {})}
    return ModelConfig.from_dict(data, strict=False)


def config_to_hf(config: ModelConfig, dtype: str = "float32") -> dict[str, Any]:
    """ModelConfig -> a config.json transformers opens as LlamaForCausalLM (MistralForCausalLM with a window).

    ``dtype`` is the parameters' dtype as written ("float32", "bfloat16", ...).
    """
    mistral = config.sliding_window is not None
    rope: dict[str, Any] = {"rope_theta": float(config.rope_theta), "rope_type": "default"}
    if config.rope_scaling:
        rope.update(config.rope_scaling)
        rope["rope_type"] = config.rope_scaling.get("rope_type", config.rope_scaling.get("type"))
        rope.pop("type", None)
    out: dict[str, Any] = {
        "architectures": ["MistralForCausalLM" if mistral else "LlamaForCausalLM"],
        "model_type": "mistral" if mistral else "llama",
        "vocab_size": config.vocab_size,
        "hidden_size": config.d_model,
        "intermediate_size": config.d_ff,
        "num_hidden_layers": config.num_layers,
        "num_attention_heads": config.num_heads,
        "num_key_value_heads": config.num_kv_heads,
        "head_dim": config.head_dim,
        "hidden_act": config.hidden_act,
        "max_position_embeddings": config.max_seq_len,
        "initializer_range": config.initializer_range,
        "rms_norm_eps": config.norm_eps,
        "rope_parameters": rope,
        "attention_bias": config.attention_bias,
        "attention_dropout": config.attention_dropout,
        "mlp_bias": config.mlp_bias,
        "tie_word_embeddings": config.tie_word_embeddings,
        "bos_token_id": config.bos_token_id,
        "eos_token_id": config.eos_token_id,
        "pad_token_id": config.pad_token_id,
        "dtype": dtype,
    }
    if mistral:
        out["sliding_window"] = config.sliding_window
        for key in ("attention_bias", "mlp_bias"):
            out.pop(key)
    if config.dropout:
        out["dropout"] = config.dropout  # ours only: residual dropout for training from scratch
    return out
