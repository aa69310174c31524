"""ModelConfig: one dataclass for the three families, derived and validated in ``__post_init__``.

It accepts the seed's keys (``model_type="decoder_only"``, ``d_model``, ``num_heads``, ``num_layers``, ``d_ff``,
``max_seq_len``, ``dropout``) and the names transformers writes in ``config.json`` (``hidden_size``,
``num_attention_heads``, ``rope_parameters`` ...), so ``ModelConfig.from_dict(json.load(f))`` works on both.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from minillm.errors import InputError

from .atomic import atomic_write_text

logger = logging.getLogger(__name__)

FAMILIES = ("decoder_only", "encoder_only", "encoder_decoder")

# transformers' model_type -> our family.
HF_MODEL_TYPES = {"llama": "decoder_only", "mistral": "decoder_only", "bert": "encoder_only", "t5": "encoder_decoder"}

# transformers' field names -> ours.
HF_ALIASES = {
    "hidden_size": "d_model",
    "n_embd": "d_model",
    "num_attention_heads": "num_heads",
    "n_head": "num_heads",
    "num_key_value_heads": "num_kv_heads",
    "num_hidden_layers": "num_layers",
    "n_layer": "num_layers",
    "intermediate_size": "d_ff",
    "max_position_embeddings": "max_seq_len",
    "rms_norm_eps": "norm_eps",
    "layer_norm_eps": "norm_eps",
    "layer_norm_epsilon": "norm_eps",
    "hidden_dropout_prob": "dropout",
    "attention_probs_dropout_prob": "attention_dropout",
    "dropout_rate": "dropout",
    "d_kv": "head_dim",
}

# Bookkeeping keys transformers writes that carry no architecture information for us.
HF_IGNORED = {
    "architectures", "transformers_version", "torch_dtype", "dtype", "use_cache", "pretraining_tp",
    "_name_or_path", "auto_map", "gradient_checkpointing", "output_past", "is_encoder_decoder",
    "classifier_dropout", "position_embedding_type", "task_specific_params", "n_positions", "is_gated_act",
    "dense_act_fn", "rope_interleaved", "_attn_implementation_autoset", "quantization_config",
    "torchscript", "return_dict", "output_hidden_states", "output_attentions", "chunk_size_feed_forward",
    "problem_type", "id2label", "label2id", "tokenizer_class", "prefix", "finetuning_task",
    "decoder_sparse_step", "model_name", "scale_decoder_outputs", "pad_token", "bos_token", "eos_token",
}

PRESETS: dict[str, dict[str, Any]] = {
    # A few-million-parameter decoder that trains on 2 CPU cores in minutes (the `train` default).
    "tiny": {"model_type": "decoder_only", "d_model": 192, "num_heads": 6, "num_layers": 4, "max_seq_len": 256},
    # ~10M parameters at vocab 8192: the Tiny Shakespeare quality run.
    "small": {"model_type": "decoder_only", "d_model": 384, "num_heads": 6, "num_layers": 6, "max_seq_len": 256},
    # ~40M parameters.
    "base": {"model_type": "decoder_only", "d_model": 512, "num_heads": 8, "num_layers": 8, "max_seq_len": 1024},
    "bert-tiny": {"model_type": "encoder_only", "d_model": 128, "num_heads": 2, "num_layers": 2, "max_seq_len": 512},
    "t5-tiny": {"model_type": "encoder_decoder", "d_model": 128, "num_heads": 4, "num_layers": 2, "max_seq_len": 512},
}


@dataclass
class ModelConfig:
    """Architecture of one of our three families. Unset derived fields are filled in ``__post_init__``."""

    model_type: str = "decoder_only"
    vocab_size: int = 8192
    d_model: int = 256
    num_heads: int = 4
    num_layers: int = 4
    d_ff: int | None = None
    max_seq_len: int = 512
    dropout: float = 0.0
    attention_dropout: float = 0.0
    num_kv_heads: int | None = None
    head_dim: int | None = None
    norm_eps: float = 1e-5
    hidden_act: str | None = None
    initializer_range: float = 0.02
    tie_word_embeddings: bool = True
    attention_bias: bool = False
    mlp_bias: bool = False
    # Decoder (Llama family)
    rope_theta: float = 10000.0
    rope_scaling: dict[str, Any] | None = None
    sliding_window: int | None = None
    # Encoder (BERT family)
    type_vocab_size: int = 2
    # Encoder-decoder (T5 family)
    num_decoder_layers: int | None = None
    relative_attention_num_buckets: int = 32
    relative_attention_max_distance: int = 128
    feed_forward_proj: str = "gated-gelu"
    decoder_start_token_id: int | None = None
    # Special tokens
    bos_token_id: int | None = None
    eos_token_id: int | list[int] | None = None
    pad_token_id: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.model_type in HF_MODEL_TYPES:
            self.model_type = HF_MODEL_TYPES[self.model_type]
        if self.model_type not in FAMILIES:
            raise InputError(f"model_type {self.model_type!r} is unknown; use one of {', '.join(FAMILIES)}")
        for name in ("vocab_size", "d_model", "num_heads", "num_layers", "max_seq_len"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise InputError(f"{name} must be a positive integer, got {value!r}")
        if self.head_dim is None:
            if self.d_model % self.num_heads:
                raise InputError(
                    f"d_model ({self.d_model}) must be divisible by num_heads ({self.num_heads}); "
                    f"try d_model={self.num_heads * max(1, round(self.d_model / self.num_heads))}"
                )
            self.head_dim = self.d_model // self.num_heads
        if self.num_kv_heads is None:
            self.num_kv_heads = self.num_heads
        if self.num_kv_heads <= 0 or self.num_heads % self.num_kv_heads:
            raise InputError(
                f"num_heads ({self.num_heads}) must be a multiple of num_kv_heads ({self.num_kv_heads})"
            )
        if self.d_ff is None:
            self.d_ff = self._default_d_ff()
        if self.d_ff <= 0:
            raise InputError(f"d_ff must be positive, got {self.d_ff}")
        for name in ("dropout", "attention_dropout"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise InputError(f"{name} must be in [0, 1), got {value}")
        if self.hidden_act is None:
            self.hidden_act = {"decoder_only": "silu", "encoder_only": "gelu", "encoder_decoder": "gelu_new"}[
                self.model_type
            ]
        if self.num_decoder_layers is None:
            self.num_decoder_layers = self.num_layers
        if self.sliding_window is not None and self.sliding_window <= 0:
            raise InputError(f"sliding_window must be a positive integer or None, got {self.sliding_window}")
        if self.rope_scaling is not None:
            kind = self.rope_scaling.get("rope_type", self.rope_scaling.get("type", "default"))
            if kind not in ("default", "linear", "llama3"):
                raise InputError(f"rope_scaling type {kind!r} is not supported; use default, linear or llama3")
            if kind == "default":
                self.rope_scaling = None

    def _default_d_ff(self) -> int:
        if self.model_type == "decoder_only":
            # SwiGLU: 8/3 * d_model keeps the parameter count of a 4x GELU MLP; round up to a multiple of 64.
            return 64 * ((8 * self.d_model // 3 + 63) // 64)
        return 4 * self.d_model

    # ----------------------------------------------------------------- construction
    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> ModelConfig:
        """A named preset (``tiny``, ``small``, ``base``, ``bert-tiny``, ``t5-tiny``) with overrides."""
        if name not in PRESETS:
            raise InputError(f"preset {name!r} is unknown; use one of {', '.join(PRESETS)}")
        return cls.from_dict({**PRESETS[name], **overrides})

    @classmethod
    def from_dict(cls, data: dict[str, Any], strict: bool = True) -> ModelConfig:
        """Build from our keys, the seed's keys or transformers' config.json keys.

        With ``strict`` an unknown key raises ValueError naming it; otherwise it is logged and kept in ``extra``.
        """
        if isinstance(data, ModelConfig):
            return data
        names = {f.name for f in dataclasses.fields(cls)}
        kwargs: dict[str, Any] = {}
        unknown: dict[str, Any] = {}
        for key, value in data.items():
            if key == "rope_parameters" and isinstance(value, dict):
                params = dict(value)
                if "rope_theta" in params:
                    kwargs["rope_theta"] = float(params.pop("rope_theta"))
                kind = params.get("rope_type", params.get("type", "default"))
                kwargs["rope_scaling"] = None if kind == "default" else params
            elif key in names:
                kwargs[key] = value
            elif key in HF_ALIASES:
                kwargs[HF_ALIASES[key]] = value
            elif key in HF_IGNORED:
                continue
            else:
                unknown[key] = value
        if data.get("model_type") == "t5":
            kwargs["hidden_act"] = None  # derived from feed_forward_proj by the T5 family
        if "d_ff" in data and data.get("model_type") == "t5":
            kwargs["d_ff"] = data["d_ff"]
        if unknown and strict:
            raise InputError(
                f"unknown config keys: {', '.join(sorted(unknown))}; valid keys are {', '.join(sorted(names))}"
            )
        if unknown:
            logger.debug("config keys kept in extra: %s", sorted(unknown))
            kwargs.setdefault("extra", {}).update(unknown)
        return cls(**kwargs)

    def to_dict(self) -> dict[str, Any]:
        """Every field (derived ones included) as plain JSON-ready values; ``from_dict`` reads it back."""
        return dataclasses.asdict(self)

    def to_json(self, path: str | os.PathLike) -> None:
        """Write :meth:`to_dict` as JSON to ``path`` atomically (temporary file, then rename)."""
        atomic_write_text(path, json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")

    @classmethod
    def from_json(cls, path: str | os.PathLike) -> ModelConfig:
        """Read a config written by :meth:`to_json` or a transformers ``config.json`` (unknown keys ignored)."""
        return cls.from_dict(json.loads(Path(path).read_text()), strict=False)

    # ----------------------------------------------------------------- derived
    @property
    def eos_token_ids(self) -> list[int]:
        """eos_token_id as a list (it may be an int, a list or None)."""
        if self.eos_token_id is None:
            return []
        return [self.eos_token_id] if isinstance(self.eos_token_id, int) else list(self.eos_token_id)


def coerce_config(config: ModelConfig | dict[str, Any]) -> ModelConfig:
    """Accept a ModelConfig or a dict (the seed's ``Model(config_dict)`` form)."""
    if isinstance(config, ModelConfig):
        return config
    if isinstance(config, dict):
        return ModelConfig.from_dict(config)
    raise TypeError(f"config must be a ModelConfig or a dict, got {type(config).__name__}")
