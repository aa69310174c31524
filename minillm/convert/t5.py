"""Our EncoderDecoderModel <-> transformers' T5ForConditionalGeneration.

An explicit name map, checked both ways (unknown weights raise). Skipped on load: the copies of the shared
embedding some checkpoints carry (``encoder.embed_tokens``, ``decoder.embed_tokens``) and the unused cross-attention
position bias transformers itself ignores.

Head and output scaling: transformers 5 always ties ``lm_head`` in memory, records the old
``tie_word_embeddings: false`` of T5 v1.1 / flan-t5 as ``scale_decoder_outputs: false`` and keeps a separate
``lm_head.weight`` in the file when it differs from ``shared.weight``. We read the same: the head is untied when
the file holds a different ``lm_head.weight``; decoder outputs are scaled by d_model**-0.5 when
``scale_decoder_outputs`` (default: ``tie_word_embeddings`` is not false) says so. The flag lives in
``config.extra["scale_decoder_outputs"]``.
"""

from __future__ import annotations

from typing import Any

import torch

from minillm.errors import InputError

from ..config import ModelConfig
from .common import check_keys

SCALE_KEY = "scale_decoder_outputs"
ATTENTION = (("q_proj", "q"), ("k_proj", "k"), ("v_proj", "v"), ("o_proj", "o"))
GATED_FF = (("gate_proj", "wi_0"), ("up_proj", "wi_1"), ("down_proj", "wo"))
PLAIN_FF = (("fc1", "wi"), ("fc2", "wo"))
SKIPPED = ("encoder.embed_tokens.weight", "decoder.embed_tokens.weight",
           "decoder.block.0.layer.1.EncDecAttention.relative_attention_bias.weight")


def _gated(config: ModelConfig) -> bool:
    return config.feed_forward_proj.startswith("gated-")


def name_map(config: ModelConfig) -> list[tuple[str, str]]:
    """(our name, transformers' name) for every weight of a T5ForConditionalGeneration with this config."""
    ff = GATED_FF if _gated(config) else PLAIN_FF
    pairs = [("shared.weight", "shared.weight")]
    for stack, n in (("encoder", config.num_layers), ("decoder", config.num_decoder_layers)):
        decoder = stack == "decoder"
        pairs.append(
            (f"{stack}.position_bias.embedding.weight",
             f"{stack}.block.0.layer.0.SelfAttention.relative_attention_bias.weight")
        )
        pairs.append((f"{stack}.final_norm.weight", f"{stack}.final_layer_norm.weight"))
        for i in range(n):
            ours, hf = f"{stack}.layers.{i}", f"{stack}.block.{i}.layer"
            pairs.append((f"{ours}.self_attn_norm.weight", f"{hf}.0.layer_norm.weight"))
            pairs += [(f"{ours}.self_attn.{a}.weight", f"{hf}.0.SelfAttention.{b}.weight") for a, b in ATTENTION]
            if decoder:
                pairs.append((f"{ours}.cross_attn_norm.weight", f"{hf}.1.layer_norm.weight"))
                pairs += [(f"{ours}.cross_attn.{a}.weight", f"{hf}.1.EncDecAttention.{b}.weight") for a, b in ATTENTION]
            f = 2 if decoder else 1
            pairs.append((f"{ours}.ff_norm.weight", f"{hf}.{f}.layer_norm.weight"))
            pairs += [(f"{ours}.ff.{a}.weight", f"{hf}.{f}.DenseReluDense.{b}.weight") for a, b in ff]
    if not config.tie_word_embeddings:
        pairs.append(("lm_head.weight", "lm_head.weight"))
    return pairs


def state_dict_from_hf(state: dict[str, torch.Tensor], config: ModelConfig) -> dict[str, torch.Tensor]:
    """transformers' T5 weights -> ours. Unties the head (in ``config``) when the file holds a distinct one."""
    state = {k: v for k, v in state.items() if k not in SKIPPED}
    head = state.get("lm_head.weight")
    if head is not None and config.tie_word_embeddings:
        if torch.equal(head, state.get("shared.weight", head)):
            state.pop("lm_head.weight")
        else:
            config.tie_word_embeddings = False
    if head is None and not config.tie_word_embeddings:
        config.tie_word_embeddings = True  # transformers 5 writes the head once when it equals the embedding
    pairs = name_map(config)
    check_keys(state, [hf for _, hf in pairs])
    return {ours: state[hf] for ours, hf in pairs}


def state_dict_to_hf(state: dict[str, torch.Tensor], config: ModelConfig) -> dict[str, torch.Tensor]:
    """Ours -> transformers' names; a tied head is written once, as ``shared.weight``."""
    if config.tie_word_embeddings:
        state = {k: v for k, v in state.items() if k != "lm_head.weight"}
    pairs = name_map(config)
    check_keys(state, [ours for ours, _ in pairs], source="model")
    return {hf: state[ours] for ours, hf in pairs}


def config_from_hf(data: dict[str, Any]) -> ModelConfig:
    """transformers' T5Config JSON (v4 or v5) -> ModelConfig (the head starts tied; the weights may untie it)."""
    data = dict(data)
    if data.get("model_type") not in ("t5", "encoder_decoder"):
        raise InputError(f"expected a t5 config, got model_type {data.get('model_type')!r}")
    if data.get("model_type") == "t5":
        tie = data.get("tie_word_embeddings", True) is not False
        scale = data.get(SCALE_KEY, tie)
        data["tie_word_embeddings"] = True
        data.setdefault("feed_forward_proj", "relu")
        data.setdefault("layer_norm_epsilon", 1e-6)
        data.setdefault("dropout_rate", 0.1)
        data.setdefault("d_kv", 64)
        data.setdefault("pad_token_id", 0)
        data.setdefault("eos_token_id", 1)
        data.setdefault("decoder_start_token_id", data["pad_token_id"])
        config = ModelConfig.from_dict(data, strict=False)
        config.extra[SCALE_KEY] = bool(scale)
        return config
    return ModelConfig.from_dict(data, strict=False)


def config_to_hf(config: ModelConfig, dtype: str = "float32") -> dict[str, Any]:
    """ModelConfig -> a config.json transformers 5 opens as T5ForConditionalGeneration with the same outputs.

    ``dtype`` is the parameters' dtype as written ("float32", "bfloat16", ...).
    """
    scale = bool(config.extra.get(SCALE_KEY, config.tie_word_embeddings))
    return {
        "architectures": ["T5ForConditionalGeneration"],
        "model_type": "t5",
        "is_encoder_decoder": True,
        "vocab_size": config.vocab_size,
        "d_model": config.d_model,
        "d_kv": config.head_dim,
        "d_ff": config.d_ff,
        "num_layers": config.num_layers,
        "num_decoder_layers": config.num_decoder_layers,
        "num_heads": config.num_heads,
        "relative_attention_num_buckets": config.relative_attention_num_buckets,
        "relative_attention_max_distance": config.relative_attention_max_distance,
        "dropout_rate": config.dropout,
        "layer_norm_epsilon": config.norm_eps,
        "initializer_factor": 1.0,
        "feed_forward_proj": config.feed_forward_proj,
        "tie_word_embeddings": config.tie_word_embeddings,
        SCALE_KEY: scale,
        "pad_token_id": config.pad_token_id if config.pad_token_id is not None else 0,
        "eos_token_id": config.eos_token_id if config.eos_token_id is not None else 1,
        "decoder_start_token_id": config.decoder_start_token_id
        if config.decoder_start_token_id is not None else (config.pad_token_id or 0),
        "dtype": dtype,
    }
