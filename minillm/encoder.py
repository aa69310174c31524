"""EncoderOnlyModel: the BERT family (BERT, MiniLM, sentence-transformers encoders), written by hand.

Embeddings (word + position + token type, LayerNorm) -> post-LayerNorm blocks (x = norm(x + attn(x)),
x = norm(x + mlp(x))) -> hidden states. An optional masked-LM head (transformers' ``BertForMaskedLM``: dense, GELU,
LayerNorm, decoder tied to the word embeddings, bias) gives token logits. ``convert/bert.py`` maps the weights.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from minillm.errors import InputError

from .attention import Attention
from .checkpoint import PretrainedMixin, register_family
from .collators import mask_tokens
from .config import ModelConfig, coerce_config
from .convert import bert as bert_convert
from .layers import MLP, activation
from .losses import token_loss
from .outputs import ModelOutput

MLM_HEAD = bert_convert.MLM_HEAD  # key in ModelConfig.extra: False for a plain BertModel checkpoint
MLM_PROBABILITY = 0.15  # BERT's share of masked tokens


class BertEmbeddings(nn.Module):
    """Word + absolute position + token-type embeddings, then LayerNorm and dropout."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.d_model)
        self.position_embeddings = nn.Embedding(config.max_seq_len, config.d_model)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.d_model)
        self.norm = nn.LayerNorm(config.d_model, eps=config.norm_eps)
        self.dropout = nn.Dropout(config.dropout)

    def forward(
        self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None, position_ids: torch.Tensor | None
    ) -> torch.Tensor:
        T = input_ids.shape[1]
        if T > self.position_embeddings.num_embeddings:
            raise InputError(f"sequence length {T} exceeds max_seq_len {self.position_embeddings.num_embeddings}")
        if position_ids is None:
            position_ids = torch.arange(T, device=input_ids.device)[None]  # (1, T)
        x = self.word_embeddings(input_ids) + self.position_embeddings(position_ids)  # (B, T, C)
        if token_type_ids is None:
            x = x + self.token_type_embeddings.weight[0]
        else:
            x = x + self.token_type_embeddings(token_type_ids)
        return self.dropout(self.norm(x))


class Packing:
    """Where the N real tokens of a padded (B, T) batch sit, to run per-token layers on real tokens only.

    Projections, the MLP and the norms are per token, so they run on the packed (N, C) rows; only the
    attention itself needs the (B, T) grid and gets it with zeros at padded positions (which its mask hides). With short
    sentences in long-padded batches this skips most of the work.
    """

    def __init__(self, attention_mask: torch.Tensor) -> None:
        self.B, self.T = attention_mask.shape
        self.index = attention_mask.reshape(-1).nonzero().squeeze(1)  # (N,) flat positions of real tokens

    def pack(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(self.B * self.T, -1).index_select(0, self.index)  # (N, C)

    def unpack(self, x: torch.Tensor) -> torch.Tensor:
        out = x.new_zeros(self.B * self.T, x.shape[-1]).index_copy(0, self.index, x)  # (B*T, C)
        return out.view(self.B, self.T, -1)  # (B, T, C)


class EncoderLayer(nn.Module):
    """Post-norm block: x = norm(x + attn(x)); x = norm(x + mlp(x))."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.attn = Attention(
            config.d_model, config.num_heads, head_dim=config.head_dim, bias=True, dropout=config.attention_dropout
        )
        self.attn_norm = nn.LayerNorm(config.d_model, eps=config.norm_eps)
        self.mlp = MLP(config.d_model, config.d_ff, config.hidden_act, bias=True)
        self.mlp_norm = nn.LayerNorm(config.d_model, eps=config.norm_eps)
        self.dropout = nn.Dropout(config.dropout)

    def forward(
        self, x: torch.Tensor, attn_mask: torch.Tensor | None, packing: Packing | None = None
    ) -> torch.Tensor:
        """x (B, T, C), or (N, C) real tokens only when ``packing`` says where they sit in the (B, T) grid."""
        h = self.attn(x, attn_mask=attn_mask) if packing is None else self._packed_attention(x, attn_mask, packing)
        x = self.attn_norm(x + self.dropout(h))
        return self.mlp_norm(x + self.dropout(self.mlp(x)))


    def _packed_attention(self, x: torch.Tensor, attn_mask: torch.Tensor, packing: Packing) -> torch.Tensor:
        """Projections on the real tokens (N, C); only the attention itself sees the padded grid."""
        attn = self.attn
        q, k, v = (attn._split(packing.unpack(proj(x)), attn.num_heads)
                   for proj in (attn.q_proj, attn.k_proj, attn.v_proj))  # (B, nh, T, hd)
        return attn.o_proj(packing.pack(attn.attend(q, k, v, attn_mask)))  # (N, C)


class MLMHead(nn.Module):
    """transformers' ``BertLMPredictionHead``: dense -> act -> LayerNorm -> decoder (tied) + bias."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.d_model, config.d_model)
        self.act = activation(config.hidden_act)
        self.norm = nn.LayerNorm(config.d_model, eps=config.norm_eps)
        self.decoder = nn.Linear(config.d_model, config.vocab_size, bias=False)
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm(self.act(self.dense(x)))
        return F.linear(x, self.decoder.weight, self.bias)  # (B, T, V)


@register_family("bert", "encoder_only")
class EncoderOnlyModel(PretrainedMixin, nn.Module):
    """BERT-style encoder. ``EncoderOnlyModel(config)`` takes a ModelConfig or the seed's config dict.

    ``model(input_ids, attention_mask)`` returns hidden states (B, T, C); with ``labels=`` it returns a
    :class:`ModelOutput` with the masked-LM ``.loss`` (-100 ignored) and ``.logits`` (B, T, V).
    """

    converter = bert_convert

    def __init__(self, config: ModelConfig | dict[str, Any]) -> None:
        super().__init__()
        config = coerce_config(config)
        if config.model_type != "encoder_only":
            raise InputError(f"EncoderOnlyModel needs model_type 'encoder_only', got {config.model_type!r}")
        self.config = config
        self.embeddings = BertEmbeddings(config)
        self.layers = nn.ModuleList(EncoderLayer(config) for _ in range(config.num_layers))
        self.mlm_head = MLMHead(config) if config.extra.get(MLM_HEAD, True) else None
        self.generation_config: dict[str, Any] = {}
        self.apply(self._init_weights)
        self.tie_weights()

    def tie_weights(self) -> None:
        """Share the MLM decoder with the word embeddings when the config says so."""
        if self.mlm_head is not None and self.config.tie_word_embeddings:
            self.mlm_head.decoder.weight = self.embeddings.word_embeddings.weight

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embeddings.word_embeddings

    # ----------------------------------------------------------------- forward
    def encode(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Last hidden states (B, T, C). Padded positions are skipped and come back as zeros."""
        x = self.embeddings(input_ids, token_type_ids, position_ids)  # (B, T, C)
        if attention_mask is None or bool(attention_mask.all()):
            for layer in self.layers:
                x = layer(x, None)
            return x
        mask = attention_mask.bool()[:, None, None, :]  # (B, 1, 1, T): True = attend
        packing = Packing(attention_mask)
        h = packing.pack(x)  # (N, C) real tokens only
        for layer in self.layers:
            h = layer(h, mask, packing)
        return packing.unpack(h)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
    ) -> torch.Tensor | ModelOutput:
        """Hidden states (B, T, C), or with ``labels`` a ModelOutput(loss, logits, hidden_states)."""
        hidden = self.encode(input_ids, attention_mask, token_type_ids, position_ids)
        if labels is None:
            return hidden
        logits = self._head()(hidden)
        return ModelOutput(logits=logits, loss=token_loss(logits, labels), hidden_states=hidden)

    def predict_mlm(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Masked-LM logits (B, T, V)."""
        head = self._head()
        return head(self.encode(input_ids, attention_mask, token_type_ids))

    def _head(self) -> MLMHead:
        if self.mlm_head is None:
            raise InputError(
                "this encoder has no masked-LM head (it was loaded from a plain BertModel checkpoint); "
                "use model(input_ids, attention_mask) for hidden states or model.embed(...) for sentence embeddings"
            )
        return self.mlm_head

    # ----------------------------------------------------------------- training
    def prepare_batch(self, batch: dict[str, Any], generator: torch.Generator, tokenizer: Any = None) -> dict[str, Any]:
        """The Trainer's batch hook: a plain-text batch becomes a masked-LM batch; a masked-LM batch passes as is.

        Plain text is what ``create_dataloaders`` builds without ``model_type`` (causal-LM rows carrying
        ``segment_ids``), or a batch without ``labels``. Its tokens are masked as BERT does (15%; 80/10/10, see
        :func:`minillm.collators.mask_tokens`) with ``tokenizer``'s mask and special ids, drawing from
        ``generator`` (the Trainer's, saved in its checkpoints, so resume stays exact). Documents packed into
        one row attend to each other, as in BERT's multi-sentence inputs.
        """
        if "segment_ids" not in batch and "labels" in batch:
            return batch
        mask_id = getattr(tokenizer, "mask_token_id", None)
        if mask_id is None:
            raise InputError(
                "EncoderOnlyModel got a plain-text batch (no masked-LM labels) and no tokenizer with a mask token to "
                "mask it; build the loaders with create_dataloaders(..., model_type='encoder_only') or give the "
                "Trainer a tokenizer that has a mask token (BPETokenizer's default <mask>)"
            )
        input_ids = batch["input_ids"]
        attention_mask = batch.get("attention_mask")
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        special = set(tokenizer.all_special_ids) | {mask_id}
        masked, labels = mask_tokens(input_ids.cpu(), attention_mask.cpu(), mask_id, self.config.vocab_size,
                                     sorted(special), MLM_PROBABILITY, generator)
        kept = {k: v for k, v in batch.items() if k not in ("segment_ids", "labels", "input_ids", "attention_mask")}
        return {**kept, "input_ids": masked, "attention_mask": attention_mask, "labels": labels}

    @torch.no_grad()
    def embed(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        pooling: str = "mean",
        normalize: bool = True,
    ) -> torch.Tensor:
        """Sentence embeddings (B, C): mean over real tokens (sentence-transformers) or the [CLS] state."""
        if pooling not in ("mean", "cls"):
            raise InputError(f"pooling must be 'mean' or 'cls', got {pooling!r}")
        was_training = self.training
        self.eval()  # no dropout in embeddings, even when called during training
        try:
            hidden = self.encode(input_ids, attention_mask)  # (B, T, C)
        finally:
            self.train(was_training)
        if pooling == "cls":
            pooled = hidden[:, 0]
        else:
            if attention_mask is None:
                attention_mask = torch.ones(input_ids.shape, device=hidden.device)
            weights = attention_mask.to(hidden.dtype)[..., None]  # (B, T, 1)
            pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
        return F.normalize(pooled, p=2, dim=-1) if normalize else pooled
