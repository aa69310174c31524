"""DecoderOnlyModel: the Llama family (Llama 2/3, Mistral, SmolLM2), written by hand.

Module names follow transformers' LlamaForCausalLM (``model.layers.0.self_attn.q_proj`` ...), so a Llama
checkpoint maps onto ours one to one (see ``convert/llama.py``) and ours opens in transformers as it is.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from minillm.errors import InputError

from .attention import Attention, KVCache, padding_and_causal_mask
from .checkpoint import PretrainedMixin, register_family
from .compiled_decoding import CompiledDecodeStep, static_cache_length, supports_compiled_decoding
from .config import ModelConfig, coerce_config
from .convert import llama as llama_convert
from .decoding import DecodeStep, head_matmul, prepare_decoding_weights, supports_fused_decoding
from .generation import GenerationMixin, GenerationSettings, StepFn
from .layers import GatedMLP, RMSNorm, RotaryEmbedding
from .losses import causal_lm_loss
from .outputs import ModelOutput


def _loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Next-token loss. Under ``torch.compile`` the plain ``F.cross_entropy`` (Inductor fuses it with the head);
    eagerly :func:`~minillm.losses.causal_lm_loss`, whose hand-written backward keeps CPU buffers between steps
    and is not meant to be traced. Same value and gradient either way."""
    if torch.compiler.is_compiling():
        shift = F.pad(labels, (0, 1), value=-100)[:, 1:]  # (B, T): position t predicts token t+1
        return F.cross_entropy(logits.float().flatten(0, 1), shift.flatten(), ignore_index=-100)
    return causal_lm_loss(logits, labels)


class DecoderLayer(nn.Module):
    """Pre-norm block: x + attn(norm(x)), then x + mlp(norm(x))."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.input_layernorm = RMSNorm(config.d_model, config.norm_eps)
        self.self_attn = Attention(
            config.d_model,
            config.num_heads,
            config.num_kv_heads,
            config.head_dim,
            bias=config.attention_bias,
            dropout=config.attention_dropout,
        )
        self.post_attention_layernorm = RMSNorm(config.d_model, config.norm_eps)
        self.mlp = GatedMLP(config.d_model, config.d_ff, config.hidden_act, bias=config.mlp_bias)
        self.dropout = nn.Dropout(config.dropout) if config.dropout > 0 else nn.Identity()

    def forward(
        self,
        x: torch.Tensor,
        attn_mask: torch.Tensor | None,
        is_causal: bool,
        rotary: tuple[torch.Tensor, torch.Tensor],
        cache: KVCache | None,
        layer_idx: int,
    ) -> torch.Tensor:
        """x (B, T, C) -> (B, T, C). ``attn_mask`` (B|1, 1, T, S) bool, True = attend, or None with ``is_causal``;
        ``rotary`` is (cos, sin) (B, T, hd); ``cache`` stores this layer's keys/values at ``layer_idx``."""
        h = self.self_attn(
            self.input_layernorm(x), attn_mask=attn_mask, is_causal=is_causal, rotary=rotary, cache=cache,
            layer_idx=layer_idx,
        )
        x = x + self.dropout(h)
        return x + self.dropout(self.mlp(self.post_attention_layernorm(x)))


class DecoderBody(nn.Module):
    """Embeddings, the stack of blocks and the final norm (transformers' ``LlamaModel``)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.embed_tokens = nn.Embedding(config.vocab_size, config.d_model)
        self.layers = nn.ModuleList(DecoderLayer(config) for _ in range(config.num_layers))
        self.norm = RMSNorm(config.d_model, config.norm_eps)
        self.rotary_emb = RotaryEmbedding(config.head_dim, config.rope_theta, config.rope_scaling)
        self.dropout = nn.Dropout(config.dropout) if config.dropout > 0 else nn.Identity()


@register_family("llama", "mistral", "decoder_only")
class DecoderOnlyModel(GenerationMixin, PretrainedMixin, nn.Module):
    """Causal language model. ``DecoderOnlyModel(config)`` takes a ModelConfig or the seed's config dict.

    Forward follows transformers: ``model(input_ids=..., attention_mask=None, labels=None)`` returns a
    :class:`ModelOutput` with ``.logits`` (B, T, V) and, with labels, ``.loss`` (next-token cross-entropy).
    """

    converter = llama_convert

    def __init__(self, config: ModelConfig | dict[str, Any]) -> None:
        super().__init__()
        config = coerce_config(config)
        if config.model_type != "decoder_only":
            raise InputError(f"DecoderOnlyModel needs model_type 'decoder_only', got {config.model_type!r}")
        self.config = config
        self.model = DecoderBody(config)
        self.lm_head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        self.gradient_checkpointing = False
        self.generation_config: dict[str, Any] = {}
        self.apply(self._init_weights)
        self.tie_weights()

    def tie_weights(self) -> None:
        """Share the output head with the token embedding when the config says so."""
        if self.config.tie_word_embeddings:
            self.lm_head.weight = self.model.embed_tokens.weight

    def gradient_checkpointing_enable(self, gradient_checkpointing_kwargs: dict | None = None) -> None:
        """Recompute block activations in backward to save memory (transformers' method name)."""
        self.gradient_checkpointing = True

    def gradient_checkpointing_disable(self) -> None:
        self.gradient_checkpointing = False

    def get_input_embeddings(self) -> nn.Embedding:
        return self.model.embed_tokens

    # ----------------------------------------------------------------- forward
    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        segment_ids: torch.Tensor | None = None,
        cache: KVCache | None = None,
        last_only: bool = False,
        head: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> ModelOutput:
        """input_ids (B, T) -> logits (B, T, V).

        ``attention_mask`` (B, past+T) marks real tokens (1) and padding (0), left or right; ``segment_ids`` (B, T)
        separates packed documents; ``cache`` continues from stored keys; ``last_only`` computes the head for
        the last position only (generation); ``head`` replaces ``lm_head`` by a function of the hidden states
        (N, C) -> (N, V), such as the faster one-row product of :func:`~minillm.one_row_products.decode_matmul`.
        """
        B, T = input_ids.shape
        past = cache.length if cache is not None else 0
        if position_ids is None:
            position_ids = self._positions(attention_mask, segment_ids, B, T, past, input_ids.device)
        x = self.model.dropout(self.model.embed_tokens(input_ids))  # (B, T, C)
        rotary = self.model.rotary_emb(position_ids, x.dtype)
        mask = padding_and_causal_mask(attention_mask, T, past, True, self.config.sliding_window, segment_ids)
        is_causal = mask is None and T > 1
        for i, layer in enumerate(self.model.layers):
            if self.gradient_checkpointing and self.training:
                x = checkpoint(layer, x, mask, is_causal, rotary, cache, i, use_reentrant=False)
            else:
                x = layer(x, mask, is_causal, rotary, cache, i)
        if cache is not None:
            cache.advance(T)
        x = self.model.norm(x)
        x = x[:, -1:] if last_only else x
        if head is not None:
            logits = head(x.reshape(-1, x.shape[-1])).reshape(*x.shape[:2], -1)  # (B, T|1, V)
        else:
            logits = self.lm_head(x)  # (B, T|1, V)
        loss = _loss(logits, labels) if labels is not None else None
        return ModelOutput(logits=logits, loss=loss)

    @staticmethod
    def _positions(attention_mask, segment_ids, B, T, past, device) -> torch.Tensor:
        if segment_ids is not None:
            # Restart positions at every document boundary of a packed row.
            starts = torch.ones_like(segment_ids, dtype=torch.bool)
            starts[:, 1:] = segment_ids[:, 1:] != segment_ids[:, :-1]
            index = torch.arange(T, device=device).expand(B, T)
            start_index = torch.where(starts, index, torch.zeros_like(index)).cummax(dim=1).values
            return index - start_index
        if attention_mask is not None and not bool(attention_mask.all()):
            # Left padding: count real tokens so every row starts at position 0.
            positions = attention_mask.long().cumsum(-1) - 1
            return positions.clamp(min=0)[:, past : past + T]
        return torch.arange(past, past + T, device=device).expand(B, T)

    # ----------------------------------------------------------------- generation
    def prepare_generation(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None, settings: GenerationSettings
    ) -> tuple[StepFn, torch.Tensor, torch.Tensor]:
        """The first step runs the prompt through the model into a KV cache; each later step is a
        :class:`~minillm.decoding.DecodeStep` (fused projections, one token per row), or another cached forward
        when the projections are wrapped (adapters, 4-bit layers); int8 projections
        (:func:`~minillm.int8_weights.quantize_int8`) take the fused step too. With ``settings.compile`` the steps
        after the prompt are one compiled graph instead (:meth:`_prepare_compiled_generation`)."""
        B, T = input_ids.shape
        mask = attention_mask
        if mask is not None and bool(mask.all()):
            mask = None
        if settings.compile:
            return self._prepare_compiled_generation(input_ids, mask, settings), input_ids, input_ids
        cache = KVCache(self.config.num_layers, T + settings.max_new_tokens)
        # Fusing q/k/v and gate/up happens once, here, outside inference mode (training afterwards works).
        layers = prepare_decoding_weights(self) if supports_fused_decoding(self) else None
        head = head_matmul(self.lm_head)
        decode: DecodeStep | None = None

        def step(new_ids: torch.Tensor) -> torch.Tensor:
            nonlocal decode, mask
            if decode is not None:
                return decode(new_ids)
            if mask is not None and cache.length:
                mask = torch.cat([mask, mask.new_ones(B, new_ids.shape[1])], dim=1)
            logits = self(new_ids, attention_mask=mask, cache=cache, last_only=True, head=head).logits
            if layers is not None and head is not None:
                decode = DecodeStep(self, layers, cache, mask, head)
            return logits[:, -1]

        return step, input_ids, input_ids

    def _prepare_compiled_generation(
        self, input_ids: torch.Tensor, mask: torch.Tensor | None, settings: GenerationSettings
    ) -> StepFn:
        """The step of ``generate(..., compile=True)``: the prompt through the model into a static cache, then
        :class:`~minillm.compiled_decoding.CompiledDecodeStep`."""
        if not supports_compiled_decoding(self):
            raise InputError("compile=True needs plain nn.Linear projections and head, or all int8 (quantize_int8); "
                             "this model has adapters or other layers there (merge or drop them, or generate without "
                             "compile)")
        cache = KVCache(self.config.num_layers, static_cache_length(input_ids.shape[1] + settings.max_new_tokens))
        decode: CompiledDecodeStep | None = None

        def step(new_ids: torch.Tensor) -> torch.Tensor:
            nonlocal decode
            if decode is not None:
                return decode(new_ids)
            logits = self(new_ids, attention_mask=mask, cache=cache, last_only=True).logits
            decode = CompiledDecodeStep(self, cache, mask)
            return logits[:, -1]

        return step
