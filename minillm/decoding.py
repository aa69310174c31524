"""Token-by-token decoding for the decoder: fused projections, fast one-row products, one lean step per token.

Decoding one token reads every weight once and calls every operator once, so on a CPU it is bound by memory
traffic plus a few microseconds per operator call. The step here keeps both low:

- q/k/v and gate/up live in one row-major matrix each (:func:`fuse_linears`). The modules' weights become
  views into it (row blocks), so names, ``state_dict``, memory and training are unchanged, and each group is
  one product.
- On CPU in float32 a one-row product ``x @ W.T`` is whichever of ``F.linear`` and a row-block product times
  faster on this machine (:func:`minillm.one_row_products.decode_matmul`).
- Rotary embeddings of all query and key heads are one batched product with a (hd, hd) rotation that is built
  once per step and shared by every layer (:func:`rotation_matrices`).
- Attention reads the KV cache in place: one scaled product with the padding bias, a softmax, one product.

The prompt itself goes through the ordinary forward (SDPA); :class:`DecodeStep` runs every step after it.
It reads the weights directly, so forward hooks on the block modules do not fire during those steps, and a
model whose projections are not plain ``nn.Linear`` (:func:`supports_fused_decoding`) steps through its modules.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .attention import KVCache
from .int8_weights import Int8Linear, int8_matmul
from .layers import activation
from .one_row_products import MatmulFn, decode_matmul


def fused_rows(tensors: Sequence[torch.Tensor]) -> torch.Tensor | None:
    """The row-major matrix whose consecutive row blocks are ``tensors``, if they are such views of one
    contiguous storage run; else None. Works for weights (rows, in) and biases (rows,); the result is a view.
    """
    first = tensors[0]
    storage = first.untyped_storage().data_ptr()
    offset = first.storage_offset()
    for tensor in tensors:
        if tensor.untyped_storage().data_ptr() != storage or tensor.dtype != first.dtype:
            return None
        if not tensor.is_contiguous() or tensor.shape[1:] != first.shape[1:] or tensor.storage_offset() != offset:
            return None
        offset += tensor.numel()
    rows = sum(tensor.shape[0] for tensor in tensors)
    return first.as_strided((rows, *first.shape[1:]), first.stride(), first.storage_offset())


def fuse_linears(linears: Sequence[nn.Linear]) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Store the weights (and biases) of ``linears``, which share one input, as row blocks of one matrix.

    Each module keeps its own ``weight`` Parameter, now a contiguous view into the fused (sum of outputs, in)
    matrix. Values are unchanged; modules that are already fused are left as they are. Returns the fused
    weight and bias (None without biases), detached views of the parameters.
    """
    weights = [linear.weight.detach() for linear in linears]
    biases = [linear.bias.detach() for linear in linears if linear.bias is not None]
    weight = fused_rows(weights)
    bias = fused_rows(biases) if biases else None
    if weight is not None and (bias is not None or not biases):
        return weight, bias
    like = weights[0]
    rows = sum(w.shape[0] for w in weights)
    with torch.inference_mode(False), torch.no_grad():  # storage that autograd accepts when training later
        matrix = torch.empty(rows, like.shape[1], dtype=like.dtype, device=like.device)
        bias = torch.empty(rows, dtype=like.dtype, device=like.device) if biases else None
        start = 0
        for linear in linears:
            end = start + linear.weight.shape[0]
            matrix[start:end].copy_(linear.weight)
            linear.weight.data = matrix[start:end]
            if bias is not None:
                bias[start:end].copy_(linear.bias)
                linear.bias.data = bias[start:end]
            start = end
    return matrix.detach(), None if bias is None else bias.detach()


@dataclass
class LayerWeights:
    """One block's tensors and products for a decoding step (views of the module parameters, no copies)."""

    input_norm: torch.Tensor
    qkv: MatmulFn  # C -> nh*hd + 2*n_kv*hd
    out: MatmulFn  # nh*hd -> C
    post_norm: torch.Tensor
    gate_up: MatmulFn  # C -> 2*ff
    down: MatmulFn  # ff -> C


def block_projections(layer: nn.Module) -> list[nn.Module]:
    """A decoder block's seven projections: q, k, v, o, gate, up, down."""
    attn, mlp = layer.self_attn, layer.mlp
    return [attn.q_proj, attn.k_proj, attn.v_proj, attn.o_proj, mlp.gate_proj, mlp.up_proj, mlp.down_proj]


def supports_fused_decoding(model: nn.Module) -> bool:
    """True when every block projection is a plain ``nn.Linear``, or every one an
    :class:`~minillm.int8_weights.Int8Linear`; adapter-wrapped or other quantized projections (LoRA, 4-bit) keep
    their own forward, so generation then steps through the modules instead."""
    kinds = {type(m) for layer in model.model.layers for m in block_projections(layer)}
    return kinds in ({nn.Linear}, {Int8Linear})


def int8_decode_matmul(modules: Sequence[Int8Linear]) -> MatmulFn:
    """One product for int8 ``modules`` that share an input, over their fused rows (see
    :func:`~minillm.int8_weights.quantize_int8`); a group whose rows are not one block runs module by module."""
    q = fused_rows([m.weight_int8 for m in modules])
    scales = fused_rows([m.scales for m in modules])
    has_bias = [m.bias is not None for m in modules]
    bias = fused_rows([m.bias for m in modules]) if all(has_bias) else None
    if q is None or scales is None or (any(has_bias) and bias is None):
        return lambda x: torch.cat([m(x) for m in modules], dim=-1)
    if bias is None:
        return lambda x: int8_matmul(x, q, scales)
    return lambda x: int8_matmul(x, q, scales) + bias


def head_matmul(head: nn.Module) -> MatmulFn | None:
    """The decoding product of an output head: a plain or int8 linear; None for anything else."""
    if type(head) is nn.Linear:
        return decode_matmul(head.weight.detach())
    if isinstance(head, Int8Linear):
        return int8_decode_matmul([head])
    return None


def prepare_decoding_weights(model: nn.Module) -> list[LayerWeights]:
    """Fuse each block's q/k/v and gate/up projections (once) and return the per-layer decoding products.

    ``model`` is a :class:`~minillm.decoder.DecoderOnlyModel`. Safe to call before every generation: fused
    modules are recognised from their storage, so only a model whose weights were replaced is fused again.
    """
    layers = []
    for layer in model.model.layers:
        attn, mlp = layer.self_attn, layer.mlp
        if isinstance(attn.q_proj, Int8Linear):
            layers.append(
                LayerWeights(
                    input_norm=layer.input_layernorm.weight.detach(),
                    qkv=int8_decode_matmul([attn.q_proj, attn.k_proj, attn.v_proj]),
                    out=int8_decode_matmul([attn.o_proj]),
                    post_norm=layer.post_attention_layernorm.weight.detach(),
                    gate_up=int8_decode_matmul([mlp.gate_proj, mlp.up_proj]),
                    down=int8_decode_matmul([mlp.down_proj]),
                )
            )
            continue
        layers.append(
            LayerWeights(
                input_norm=layer.input_layernorm.weight.detach(),
                qkv=decode_matmul(*fuse_linears([attn.q_proj, attn.k_proj, attn.v_proj])),
                out=decode_matmul(*fuse_linears([attn.o_proj])),  # a no-op unless the weight is strided
                post_norm=layer.post_attention_layernorm.weight.detach(),
                gate_up=decode_matmul(*fuse_linears([mlp.gate_proj, mlp.up_proj])),
                down=decode_matmul(*fuse_linears([mlp.down_proj])),
            )
        )
    return layers


def rotate_half_matrix(head_dim: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """P (hd, hd) with ``x @ P == rotate_half(x)``: column j takes -x[j + hd/2] (first half), x[j - hd/2] (second).

    >>> x = torch.tensor([[1.0, 2.0, 3.0, 4.0]])
    >>> x @ rotate_half_matrix(4, torch.float32, torch.device("cpu"))
    tensor([[-3., -4.,  1.,  2.]])
    """
    half = head_dim // 2
    matrix = torch.zeros(head_dim, head_dim, dtype=dtype, device=device)
    index = torch.arange(half, device=device)
    matrix[index + half, index] = -1
    matrix[index, index + half] = 1
    return matrix


def rotation_matrices(cos: torch.Tensor, sin: torch.Tensor, rotate_half: torch.Tensor) -> torch.Tensor:
    """R (B, hd, hd) with ``x @ R[b] == x * cos[b] + rotate_half(x) * sin[b]`` for cos, sin (B, hd)."""
    return torch.diag_embed(cos) + rotate_half * sin[:, None, :]  # (B, hd, hd)


def positions_and_padding_bias(
    cache: KVCache, attention_mask: torch.Tensor | None, kv_heads: int, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    """After the prompt: each row's next position (B,) (its count of real tokens) and the additive attention bias
    (B*n_kv, 1, max_len), ``-inf`` on the prompt's padding, 0 elsewhere."""
    batch, prompt_len, device = cache.keys[0].shape[0], cache.length, cache.keys[0].device
    if attention_mask is None:
        positions = torch.full((batch,), prompt_len, dtype=torch.long, device=device)
    else:
        positions = attention_mask.long().sum(-1)
    bias = torch.zeros(batch, kv_heads, 1, cache.max_len, dtype=dtype, device=device)
    if attention_mask is not None:
        padding = attention_mask[:, None, None, :prompt_len] == 0  # (B, 1, 1, T)
        bias[..., :prompt_len].masked_fill_(padding, float("-inf"))
    return positions, bias.view(batch * kv_heads, 1, cache.max_len)  # (B*n_kv, 1, max_len)


class DecodeStep:
    """Consumes one new token per row (B, 1) and returns the next-token logits (B, V), filling ``cache``.

    Built after the prompt has been run through the model with ``cache``; ``layers`` come from
    :func:`prepare_decoding_weights`. ``attention_mask`` (B, T) is the prompt's padding mask (None when nothing
    is padded); ``head`` maps final hidden states (B, C) to logits (B, V).
    """

    def __init__(
        self,
        model: nn.Module,
        layers: list[LayerWeights],
        cache: KVCache,
        attention_mask: torch.Tensor | None,
        head: MatmulFn,
    ) -> None:
        config = model.config
        self.model, self.layers, self.cache, self.head = model, layers, cache, head
        self.heads, self.kv_heads, self.head_dim = config.num_heads, config.num_kv_heads, config.head_dim
        self.ff, self.width, self.eps = config.d_ff, config.d_model, config.norm_eps
        self.window = config.sliding_window
        self.act = activation(config.hidden_act)
        self.scale = self.head_dim**-0.5
        embedding = model.model.embed_tokens.weight.detach()
        self.embedding, self.final_norm = embedding, model.model.norm.weight.detach()
        self.positions, self.bias = positions_and_padding_bias(cache, attention_mask, self.kv_heads, embedding.dtype)
        self.rotate_half = rotate_half_matrix(self.head_dim, embedding.dtype, embedding.device)

    @torch.inference_mode()
    def __call__(self, new_ids: torch.Tensor) -> torch.Tensor:
        """new_ids (B, 1) -> logits (B, V) of the next position; writes this position's keys into the cache."""
        B = new_ids.shape[0]
        nh, nkv, hd, ff = self.heads, self.kv_heads, self.head_dim, self.ff
        group = nh // nkv
        cache = self.cache
        index = cache.length
        end = index + 1
        start = max(0, end - self.window) if self.window else 0
        x = F.embedding(new_ids[:, 0], self.embedding)  # (B, C)
        cos, sin = self.model.model.rotary_emb(self.positions[:, None], x.dtype)  # (B, 1, hd)
        rotation = rotation_matrices(cos[:, 0], sin[:, 0], self.rotate_half)  # (B, hd, hd)
        bias = self.bias[:, :, start:end]  # (B*n_kv, 1, S)
        for i, w in enumerate(self.layers):
            h = F.rms_norm(x, (self.width,), w.input_norm, self.eps)
            qkv = w.qkv(h).reshape(B, nh + 2 * nkv, hd)  # heads: q..., k..., v...
            qk = torch.bmm(qkv[:, : nh + nkv], rotation)  # (B, nh+n_kv, hd), rotary applied
            keys, values = cache.keys[i], cache.values[i]  # (B, n_kv, max_len, hd)
            keys[:, :, index] = qk[:, nh:]
            values[:, :, index] = qkv[:, nh + nkv :]
            q = qk[:, :nh].reshape(B * nkv, group, hd)  # query heads of one kv group are adjacent
            k = keys[:, :, start:end].reshape(B * nkv, end - start, hd)  # a view: (B*n_kv, S, hd)
            v = values[:, :, start:end].reshape(B * nkv, end - start, hd)
            scores = torch.baddbmm(bias, q, k.transpose(1, 2), alpha=self.scale)  # (B*n_kv, g, S)
            y = torch.bmm(scores.softmax(dim=-1), v).view(B, nh * hd)  # (B, nh*hd)
            x = x + w.out(y)
            h = F.rms_norm(x, (self.width,), w.post_norm, self.eps)
            gate_up = w.gate_up(h)  # (B, 2*ff)
            x = x + w.down(self.act(gate_up[:, :ff]) * gate_up[:, ff:])
        cache.advance(1)
        self.positions += 1
        x = F.rms_norm(x, (self.width,), self.final_norm, self.eps)
        return self.head(x)  # (B, V)
