"""EncoderDecoderModel: the T5 family (T5, T5 v1.1, flan-t5), written by hand.

Pre-norm blocks with T5's RMS norm (no mean, no bias), unscaled attention plus a relative position bias computed
by the first layer of each stack and shared by the rest (bidirectional buckets in the encoder, causal in the
decoder), ReLU or gated-GELU feed-forward, cross-attention through the same :class:`Attention` class, and a head
tied to the shared embedding or not. ``convert/t5.py`` maps the weights to transformers' T5ForConditionalGeneration.
Outputs equal transformers' in eval mode; in training, dropout sits on the residual branches and attention
probabilities (transformers also drops inside the feed-forward, after the activation).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from minillm.errors import InputError

from .attention import Attention, KVCache
from .checkpoint import PretrainedMixin, register_family
from .config import ModelConfig, coerce_config
from .convert import t5 as t5_convert
from .generation import GenerationMixin, GenerationSettings, StepFn
from .layers import MLP, GatedMLP, RMSNorm
from .losses import IGNORE_INDEX, token_loss
from .outputs import ModelOutput
from .t5_position import RelativePositionBias

SCALE_KEY = t5_convert.SCALE_KEY


def feed_forward_kind(config: ModelConfig) -> tuple[bool, str]:
    """(gated, activation) from ``feed_forward_proj`` ("relu", "gated-gelu", "gated-silu" ...), as transformers."""
    parts = config.feed_forward_proj.split("-")
    if len(parts) > 2 or (len(parts) == 2 and parts[0] != "gated"):
        raise InputError(f"feed_forward_proj must be 'ACT' or 'gated-ACT' (e.g. 'relu', 'gated-gelu'), got "
                         f"{config.feed_forward_proj!r}")
    act = "gelu_new" if config.feed_forward_proj == "gated-gelu" else parts[-1]
    return len(parts) == 2, act


class T5Block(nn.Module):
    """x + self_attn(norm(x)); [x + cross_attn(norm(x), encoder)]; x + ff(norm(x))."""

    def __init__(self, config: ModelConfig, cross: bool) -> None:
        super().__init__()
        d = config.d_model

        def attention() -> Attention:
            return Attention(d, config.num_heads, head_dim=config.head_dim, dropout=config.dropout, scale=1.0)

        self.self_attn_norm = RMSNorm(d, config.norm_eps)
        self.self_attn = attention()
        self.cross_attn_norm = RMSNorm(d, config.norm_eps) if cross else None
        self.cross_attn = attention() if cross else None
        self.ff_norm = RMSNorm(d, config.norm_eps)
        gated, act = feed_forward_kind(config)
        self.ff = GatedMLP(d, config.d_ff, act) if gated else MLP(d, config.d_ff, act, bias=False)
        self.dropout = nn.Dropout(config.dropout)

    def forward(
        self,
        x: torch.Tensor,
        self_mask: torch.Tensor,
        source: torch.Tensor | None = None,
        cross_mask: torch.Tensor | None = None,
        cache: KVCache | None = None,
        layer_idx: int = 0,
    ) -> torch.Tensor:
        """x (B, T, C) -> (B, T, C): self-attention, cross-attention to ``source`` (B, S, C) in the decoder, FF.

        ``self_mask`` is additive (position bias plus -inf where masked); ``cross_mask`` (B, 1, 1, S) is True
        where ``source`` is real; ``cache`` holds this layer's keys at ``layer_idx`` while decoding.
        """
        h = self.self_attn(self.self_attn_norm(x), attn_mask=self_mask, cache=cache, layer_idx=layer_idx)
        x = x + self.dropout(h)
        if self.cross_attn is not None:
            h = self.cross_attn(
                self.cross_attn_norm(x), source=source, attn_mask=cross_mask, cache=cache, layer_idx=layer_idx
            )
            x = x + self.dropout(h)
        return x + self.dropout(self.ff(self.ff_norm(x)))


class T5Stack(nn.Module):
    """The blocks of the encoder or the decoder, their shared position bias and the final norm."""

    def __init__(self, config: ModelConfig, decoder: bool) -> None:
        super().__init__()
        n = config.num_decoder_layers if decoder else config.num_layers
        self.position_bias = RelativePositionBias(
            config.relative_attention_num_buckets, config.num_heads, config.relative_attention_max_distance,
            bidirectional=not decoder,
        )
        self.layers = nn.ModuleList(T5Block(config, cross=decoder) for _ in range(n))
        self.final_norm = RMSNorm(config.d_model, config.norm_eps)
        self.dropout = nn.Dropout(config.dropout)

    def forward(
        self,
        x: torch.Tensor,
        self_mask: torch.Tensor,
        source: torch.Tensor | None = None,
        cross_mask: torch.Tensor | None = None,
        cache: KVCache | None = None,
    ) -> torch.Tensor:
        """Embedded tokens x (B, T, C) -> final-normed hidden states (B, T, C); see :meth:`T5Block.forward`."""
        x = self.dropout(x)
        for i, layer in enumerate(self.layers):
            x = layer(x, self_mask, source, cross_mask, cache, i)
        return self.dropout(self.final_norm(x))


def _additive(bias: torch.Tensor, keep: torch.Tensor | None) -> torch.Tensor:
    """Position bias (1, nh, T, S) with blocked positions (keep False) set to the dtype's minimum."""
    if keep is None:
        return bias
    return bias.masked_fill(~keep, torch.finfo(bias.dtype).min)  # (B|1, nh, T, S)


def _padding(attention_mask: torch.Tensor | None) -> torch.Tensor | None:
    """(B, S) 0/1 padding mask -> bool (B, 1, 1, S), or None when nothing is padded."""
    if attention_mask is None or bool(attention_mask.all()):
        return None
    return attention_mask.bool()[:, None, None, :]


@register_family("t5", "encoder_decoder")
class EncoderDecoderModel(GenerationMixin, PretrainedMixin, nn.Module):
    """Sequence-to-sequence model. ``EncoderDecoderModel(config)`` takes a ModelConfig or a config dict.

    ``model(input_ids=..., attention_mask=..., decoder_input_ids=... | labels=...)`` returns a ModelOutput with
    ``.logits`` (B, T_dec, V) and, with labels, ``.loss`` (decoder inputs are the labels shifted right after the
    decoder start token, as transformers does).
    """

    converter = t5_convert

    def __init__(self, config: ModelConfig | dict[str, Any]) -> None:
        super().__init__()
        config = coerce_config(config)
        if config.model_type != "encoder_decoder":
            raise InputError(f"EncoderDecoderModel needs model_type 'encoder_decoder', got {config.model_type!r}")
        self.config = config
        self.shared = nn.Embedding(config.vocab_size, config.d_model)
        self.encoder = T5Stack(config, decoder=False)
        self.decoder = T5Stack(config, decoder=True)
        self.lm_head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        self.generation_config: dict[str, Any] = {}
        self.apply(self._init_weights)
        self.tie_weights()

    @property
    def scale_outputs(self) -> bool:
        """Whether decoder outputs are multiplied by d_model**-0.5 before the head (original T5; not v1.1)."""
        return bool(self.config.extra.get(SCALE_KEY, self.config.tie_word_embeddings))

    @property
    def decoder_start_token_id(self) -> int:
        start = self.config.decoder_start_token_id
        if start is None:
            start = self.config.pad_token_id if self.config.pad_token_id is not None else 0
        return int(start)

    def _init_weights(self, module: nn.Module) -> None:
        # T5's initialisation: unit-variance embeddings, fan-in scaled projections (q also by head_dim).
        if isinstance(module, nn.Embedding):
            std = 1.0 if module is self.shared else self.config.d_model**-0.5
            nn.init.normal_(module.weight, mean=0.0, std=std)
        elif isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=module.in_features**-0.5)
        elif isinstance(module, Attention):
            nn.init.normal_(module.q_proj.weight, std=(module.q_proj.in_features * module.head_dim) ** -0.5)

    def tie_weights(self) -> None:
        """Share the output head with the embedding when the config says so."""
        if self.config.tie_word_embeddings:
            self.lm_head.weight = self.shared.weight

    def get_input_embeddings(self) -> nn.Embedding:
        return self.shared

    # ----------------------------------------------------------------- forward
    def encode(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Encoder hidden states (B, S, C)."""
        S = input_ids.shape[1]
        bias = self.encoder.position_bias(S, S)  # (1, nh, S, S)
        mask = _additive(bias, _padding(attention_mask))  # (B|1, nh, S, S)
        return self.encoder(self.shared(input_ids), mask)

    def decode(
        self,
        decoder_input_ids: torch.Tensor,
        encoder_hidden: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        decoder_attention_mask: torch.Tensor | None = None,
        cache: KVCache | None = None,
    ) -> torch.Tensor:
        """Decoder logits (B, T, V) for ``decoder_input_ids`` attending to ``encoder_hidden`` (B, S, C)."""
        T = decoder_input_ids.shape[1]
        past = cache.length if cache is not None else 0
        bias = self.decoder.position_bias(T, past + T, past)  # (1, nh, T, past+T)
        q_pos = torch.arange(past, past + T, device=bias.device)[:, None]  # (T, 1)
        keep = (torch.arange(past + T, device=bias.device)[None, :] <= q_pos)[None, None]  # (1, 1, T, S)
        padding = _padding(decoder_attention_mask)
        if padding is not None:
            keep = keep & padding[..., : past + T]  # (B, 1, T, S)
        self_mask = _additive(bias, keep)
        x = self.decoder(self.shared(decoder_input_ids), self_mask, encoder_hidden, _padding(attention_mask), cache)
        if cache is not None:
            cache.advance(T)
        if self.scale_outputs:
            x = x * self.config.d_model**-0.5
        return self.lm_head(x)

    def shift_right(self, labels: torch.Tensor) -> torch.Tensor:
        """Decoder inputs from labels: start token first, labels shifted right, -100 replaced by padding."""
        shifted = labels.new_zeros(labels.shape)
        shifted[:, 1:] = labels[:, :-1]
        shifted[:, 0] = self.decoder_start_token_id
        pad = self.config.pad_token_id if self.config.pad_token_id is not None else 0
        return shifted.masked_fill(shifted == IGNORE_INDEX, pad)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        decoder_input_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        decoder_attention_mask: torch.Tensor | None = None,
        encoder_outputs: torch.Tensor | None = None,
    ) -> ModelOutput:
        """Seq2seq forward: logits (B, T_dec, V), loss with labels (-100 ignored)."""
        if decoder_input_ids is None:
            if labels is None:
                raise InputError("pass decoder_input_ids or labels (decoder inputs are the labels shifted right)")
            decoder_input_ids = self.shift_right(labels)
        encoder_hidden = self.encode(input_ids, attention_mask) if encoder_outputs is None else encoder_outputs
        logits = self.decode(decoder_input_ids, encoder_hidden, attention_mask, decoder_attention_mask)
        loss = token_loss(logits, labels) if labels is not None else None
        return ModelOutput(logits=logits, loss=loss, encoder_last_hidden_state=encoder_hidden)

    # ----------------------------------------------------------------- generation
    def prepare_generation(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None, settings: GenerationSettings
    ) -> tuple[StepFn, torch.Tensor, torch.Tensor]:
        """The encoder runs once; the step feeds the decoder (KV-cached) from the start token on."""
        if settings.compile:
            raise InputError("compile=True is for the decoder-only model; generate without it here")
        start = self.generation_prefix(input_ids)
        cache = KVCache(self.config.num_decoder_layers, settings.max_new_tokens + 1)
        with torch.inference_mode():
            encoder_hidden = self.encode(input_ids, attention_mask)

        def step(new_ids: torch.Tensor) -> torch.Tensor:
            return self.decode(new_ids, encoder_hidden, attention_mask, cache=cache)[:, -1]  # (B, V)

        return step, start, start

    def generation_prefix(self, input_ids: torch.Tensor) -> torch.Tensor:
        """``generate`` returns the decoder start token (B, 1) followed by the new tokens."""
        return torch.full(
            (input_ids.shape[0], 1), self.decoder_start_token_id, dtype=torch.long, device=input_ids.device
        )
