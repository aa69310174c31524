"""Our EncoderOnlyModel <-> transformers' BertModel / BertForMaskedLM.

An explicit name map, checked both ways: an unknown weight raises, except the parts of a BERT checkpoint we do not
use (the pooler, the next-sentence head) and buffers (``position_ids``, ``token_type_ids``), which are skipped.
Whether the model has a masked-LM head is read from the weights (``cls.predictions.*``) and recorded in
``config.extra["mlm_head"]``.
"""

from __future__ import annotations

from typing import Any

import torch

from minillm.errors import InputError

from ..config import ModelConfig
from .common import check_keys

MLM_HEAD = "mlm_head"

EMBEDDINGS = (
    ("embeddings.word_embeddings.weight", "embeddings.word_embeddings.weight"),
    ("embeddings.position_embeddings.weight", "embeddings.position_embeddings.weight"),
    ("embeddings.token_type_embeddings.weight", "embeddings.token_type_embeddings.weight"),
    ("embeddings.norm.weight", "embeddings.LayerNorm.weight"),
    ("embeddings.norm.bias", "embeddings.LayerNorm.bias"),
)
# (ours under layers.{i}., transformers' under encoder.layer.{i}.), each for .weight and .bias
LAYER = (
    ("attn.q_proj", "attention.self.query"),
    ("attn.k_proj", "attention.self.key"),
    ("attn.v_proj", "attention.self.value"),
    ("attn.o_proj", "attention.output.dense"),
    ("attn_norm", "attention.output.LayerNorm"),
    ("mlp.fc1", "intermediate.dense"),
    ("mlp.fc2", "output.dense"),
    ("mlp_norm", "output.LayerNorm"),
)
HEAD = (
    ("mlm_head.dense.weight", "cls.predictions.transform.dense.weight"),
    ("mlm_head.dense.bias", "cls.predictions.transform.dense.bias"),
    ("mlm_head.norm.weight", "cls.predictions.transform.LayerNorm.weight"),
    ("mlm_head.norm.bias", "cls.predictions.transform.LayerNorm.bias"),
    ("mlm_head.bias", "cls.predictions.bias"),
)
UNTIED_DECODER = ("mlm_head.decoder.weight", "cls.predictions.decoder.weight")
SKIPPED_PREFIXES = ("pooler.", "cls.seq_relationship.")
SKIPPED_SUFFIXES = ("position_ids", "token_type_ids")


def name_map(config: ModelConfig, with_head: bool, prefix: str) -> list[tuple[str, str]]:
    """(our name, transformers' name) for every weight; ``prefix`` is ``"bert."`` for BertForMaskedLM."""
    pairs = [(ours, prefix + hf) for ours, hf in EMBEDDINGS]
    for i in range(config.num_layers):
        for ours, hf in LAYER:
            for kind in ("weight", "bias"):
                pairs.append((f"layers.{i}.{ours}.{kind}", f"{prefix}encoder.layer.{i}.{hf}.{kind}"))
    if with_head:
        pairs += HEAD
        if not config.tie_word_embeddings:
            pairs.append(UNTIED_DECODER)
    return pairs


def state_dict_from_hf(state: dict[str, torch.Tensor], config: ModelConfig) -> dict[str, torch.Tensor]:
    """transformers' BERT weights (with or without the ``bert.`` prefix and MLM head) -> ours. Raises on unknown."""
    state = {k.removeprefix("bert."): v for k, v in state.items()}
    state = {
        k: v for k, v in state.items() if not k.startswith(SKIPPED_PREFIXES) and not k.endswith(SKIPPED_SUFFIXES)
    }
    with_head = any(k.startswith("cls.predictions.") for k in state)
    config.extra[MLM_HEAD] = with_head
    decoder_bias = state.pop("cls.predictions.decoder.bias", None)  # tied to cls.predictions.bias
    if decoder_bias is not None and "cls.predictions.bias" not in state:
        state["cls.predictions.bias"] = decoder_bias
    decoder = state.get(UNTIED_DECODER[1])
    if decoder is not None and config.tie_word_embeddings:
        if torch.equal(decoder, state["embeddings.word_embeddings.weight"]):
            state.pop(UNTIED_DECODER[1])
        else:
            config.tie_word_embeddings = False  # a head trained apart from the embeddings
    pairs = name_map(config, with_head, prefix="")
    check_keys(state, [hf for _, hf in pairs])
    return {ours: state[hf] for ours, hf in pairs}


def state_dict_to_hf(state: dict[str, torch.Tensor], config: ModelConfig) -> dict[str, torch.Tensor]:
    """Ours -> BertForMaskedLM names (``bert.`` prefix) with a head, BertModel names without one."""
    with_head = config.extra.get(MLM_HEAD, True)
    if config.tie_word_embeddings:
        state = {k: v for k, v in state.items() if k != UNTIED_DECODER[0]}
    pairs = name_map(config, with_head, prefix="bert." if with_head else "")
    check_keys(state, [ours for ours, _ in pairs], source="model")
    return {hf: state[ours] for ours, hf in pairs}


def config_from_hf(data: dict[str, Any]) -> ModelConfig:
    """transformers' BertConfig JSON (or ours) -> ModelConfig."""
    data = dict(data)
    if data.get("model_type") not in ("bert", "encoder_only"):
        raise InputError(f"expected a bert config, got model_type {data.get('model_type')!r}")
    if data.get("position_embedding_type", "absolute") != "absolute":
        raise InputError(
            f"position_embedding_type {data['position_embedding_type']!r} is not supported; only 'absolute' is"
        )
    if data.get("model_type") == "bert":
        data.setdefault("layer_norm_eps", 1e-12)
        data.setdefault("hidden_act", "gelu")
        data.setdefault("tie_word_embeddings", True)
        data.setdefault("type_vocab_size", 2)
    return ModelConfig.from_dict(data, strict=False)


def config_to_hf(config: ModelConfig, dtype: str = "float32") -> dict[str, Any]:
    """ModelConfig -> a config.json transformers opens as BertForMaskedLM (or BertModel without a head).

    ``dtype`` is the parameters' dtype as written ("float32", "bfloat16", ...).
    """
    with_head = config.extra.get(MLM_HEAD, True)
    return {
        "architectures": ["BertForMaskedLM" if with_head else "BertModel"],
        "model_type": "bert",
        "vocab_size": config.vocab_size,
        "hidden_size": config.d_model,
        "num_hidden_layers": config.num_layers,
        "num_attention_heads": config.num_heads,
        "intermediate_size": config.d_ff,
        "hidden_act": config.hidden_act,
        "hidden_dropout_prob": config.dropout,
        "attention_probs_dropout_prob": config.attention_dropout,
        "max_position_embeddings": config.max_seq_len,
        "type_vocab_size": config.type_vocab_size,
        "initializer_range": config.initializer_range,
        "layer_norm_eps": config.norm_eps,
        "pad_token_id": config.pad_token_id if config.pad_token_id is not None else 0,
        "position_embedding_type": "absolute",
        "tie_word_embeddings": config.tie_word_embeddings,
        "dtype": dtype,
    }
