"""A decoding step compiled once with ``torch.compile`` over a static KV cache: ``generate(..., compile=True)``.

The eager step (:class:`~minillm.decoding.DecodeStep`) calls some 20 small operators per layer besides its four
products, a few microseconds each, and on a CPU that is a sixth of a SmolLM2 token. Compiled, the norms,
rotary, softmax and residual adds fuse into a handful of kernels, and with ``cpp_wrapper`` on CPU the whole
step is one C++ call around the products. For that the step must keep one set of shapes from token to token:

- the cache is allocated for a multiple of :data:`CACHE_BLOCK` positions and every step attends over all of
  them, with ``-inf`` for the positions not yet written (zeros until then: a softmax weight of 0 times a stale
  NaN would still be NaN), the prompt's padding, and the positions outside a sliding window;
- this position's keys and values are written with ``index_copy_`` at a position held in a tensor;
- the positions of the rows (for rotary) are a tensor too, advanced in place after each step.

So one compiled graph serves every step of a generation, and of later generations of the same model and cache
length; a second cache length makes torch compile once more with that length symbolic, and then no more. The
first compile of SmolLM2 took 25-50 s on 2 cores here (torch caches it on disk; then a few seconds).
Logits match the eager step within float32 rounding (reduction order), not bit for bit.

The products stay ``F.linear``, or the row-block product where that is the faster on this CPU
(:func:`~minillm.one_row_products.row_blocks_pay`), called as the custom operator ``minillm::row_block_product``;
int8 models (:func:`~minillm.int8_weights.quantize_int8`) keep torch's weight-only int8 kernel. Where the products
are faster (int8), the small operators are a larger share of a token, and compiling pays more.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .attention import KVCache
from .decoding import (
    block_projections,
    fuse_linears,
    fused_rows,
    positions_and_padding_bias,
    rotate_half_matrix,
    rotation_matrices,
)
from .int8_weights import Int8Linear, int8_matmul
from .layers import activation
from .one_row_products import row_block_product, row_blocks_pay

CACHE_BLOCK = 128  # cache lengths are rounded up to a multiple of this, so most generations share one graph


def static_cache_length(needed: int) -> int:
    """The cache length a compiled generation allocates for ``needed`` positions (a multiple of CACHE_BLOCK).

    >>> static_cache_length(1), static_cache_length(128), static_cache_length(129)
    (128, 128, 256)
    """
    return -(-needed // CACHE_BLOCK) * CACHE_BLOCK


@dataclass(frozen=True)
class StepShape:
    """The constants of a compiled step (torch specialises the graph on them)."""

    heads: int
    kv_heads: int
    head_dim: int
    ff: int
    width: int
    eps: float
    window: int | None
    row_blocks: int  # 0: F.linear; else the number of row blocks of each product (the thread count)


Product = tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]
"""One product's tensors: weight (N, K) in float, or int8 with its per-row scales (N,) (else None); bias or None."""


@dataclass
class StepWeights:
    """Every tensor the step reads: views of the model's parameters (q/k/v and gate/up fused, see
    :func:`~minillm.decoding.fuse_linears`), no copies."""

    layers: list[tuple[torch.Tensor, Product, Product, torch.Tensor, Product, Product]]  # norm, qkv, out, norm, gu, down
    embedding: torch.Tensor
    final_norm: torch.Tensor
    head: Product
    rotate_half: torch.Tensor


def supports_compiled_decoding(model: nn.Module) -> bool:
    """True for a decoder whose block projections and output head are all plain ``nn.Linear``, or all
    :class:`~minillm.int8_weights.Int8Linear` (:func:`~minillm.int8_weights.quantize_int8`)."""
    modules = [m for layer in model.model.layers for m in block_projections(layer)] + [model.lm_head]
    return {type(m) for m in modules} in ({nn.Linear}, {Int8Linear})


def _one_matrix(tensors: list[torch.Tensor]) -> torch.Tensor:
    """The row blocks ``tensors`` as one matrix: a view when they already are one, else a copy."""
    fused = fused_rows(tensors)
    return fused if fused is not None else torch.cat(tensors)


def group_product(modules: list[nn.Module]) -> Product:
    """The tensors of one product over ``modules`` (which share their input): plain linears are fused in place,
    int8 ones (usually stored fused by ``quantize_int8``) are viewed, or copied when they are not one block."""
    if not isinstance(modules[0], Int8Linear):
        weight, bias = fuse_linears(modules)
        return weight, None, bias
    biases = [m.bias for m in modules]
    if all(b is None for b in biases):
        bias = None
    else:
        bias = _one_matrix([m.scales.new_zeros(m.out_features) if b is None else b for m, b in zip(modules, biases)])
    return _one_matrix([m.weight_int8 for m in modules]), _one_matrix([m.scales for m in modules]), bias


def step_weights(model: nn.Module) -> StepWeights:
    """Collect the step's tensors (fusing q/k/v and gate/up of plain linears once, in place)."""
    layers = []
    for layer in model.model.layers:
        q, k, v, o, gate, up, down = block_projections(layer)
        layers.append((
            layer.input_layernorm.weight.detach(), group_product([q, k, v]), group_product([o]),
            layer.post_attention_layernorm.weight.detach(), group_product([gate, up]), group_product([down]),
        ))
    embedding, head = model.model.embed_tokens.weight.detach(), model.lm_head
    if isinstance(head, Int8Linear):
        head_product = group_product([head])
    else:  # as it is: the weight may be the tied embedding, which fusing must not replace
        head_product = (head.weight.detach(), None, None if head.bias is None else head.bias.detach())
    return StepWeights(
        layers=layers, embedding=embedding, final_norm=model.model.norm.weight.detach(), head=head_product,
        rotate_half=rotate_half_matrix(model.config.head_dim, embedding.dtype, embedding.device),
    )


def _product(x: torch.Tensor, product: Product, row_blocks: int) -> torch.Tensor:
    """x (B, K) -> (B, N): int8 weights through :func:`~minillm.int8_weights.int8_matmul` (torch's weight-only
    int8 kernel on CPU), float ones through F.linear or the row-block operator."""
    weight, scales, bias = product
    if scales is not None:
        y = int8_matmul(x, weight, scales)
    elif row_blocks:
        y = row_block_product(x, weight, row_blocks)
    else:
        return F.linear(x, weight, bias)
    return y if bias is None else y + bias.to(y.dtype)


def _decode_step(
    w: StepWeights, rotary: nn.Module, act: Any, shape: StepShape, new_ids: torch.Tensor, positions: torch.Tensor,
    index: torch.Tensor, keys: list[torch.Tensor], values: list[torch.Tensor], padding_bias: torch.Tensor,
) -> torch.Tensor:
    """new_ids (B, 1) at cache position ``index`` (0-dim) -> next-token logits (B, V); writes keys and values."""
    B = new_ids.shape[0]
    nh, nkv, hd, ff, rb = shape.heads, shape.kv_heads, shape.head_dim, shape.ff, shape.row_blocks
    L = keys[0].shape[2]
    group = nh // nkv
    x = F.embedding(new_ids[:, 0], w.embedding)  # (B, C)
    cos, sin = rotary(positions[:, None], x.dtype)  # (B, 1, hd)
    rotation = rotation_matrices(cos[:, 0], sin[:, 0], w.rotate_half)  # (B, hd, hd)
    slots = torch.arange(L, device=x.device)
    hidden = slots > index  # not written yet
    if shape.window:
        hidden = hidden | (slots <= index - shape.window)
    bias = padding_bias.masked_fill(hidden, float("-inf"))  # (B*n_kv, 1, L)
    at = index.view(1)
    for i, (norm1, qkv_product, out_product, norm2, gate_up_product, down_product) in enumerate(w.layers):
        h = F.rms_norm(x, (shape.width,), norm1, shape.eps)
        qkv = _product(h, qkv_product, rb).reshape(B, nh + 2 * nkv, hd)  # heads: q..., k..., v...
        qk = torch.bmm(qkv[:, : nh + nkv], rotation)  # (B, nh+n_kv, hd), rotary applied
        keys[i].index_copy_(2, at, qk[:, nh:, None, :])  # (B, n_kv, 1, hd) into (B, n_kv, L, hd)
        values[i].index_copy_(2, at, qkv[:, nh + nkv :, None, :])
        q = qk[:, :nh].reshape(B * nkv, group, hd)  # query heads of one kv group are adjacent
        k = keys[i].view(B * nkv, L, hd)
        v = values[i].view(B * nkv, L, hd)
        scores = torch.baddbmm(bias, q, k.transpose(1, 2), alpha=hd**-0.5)  # (B*n_kv, g, L)
        y = torch.bmm(scores.softmax(dim=-1), v).reshape(B, nh * hd)  # (B, nh*hd)
        x = x + _product(y, out_product, rb)
        h = F.rms_norm(x, (shape.width,), norm2, shape.eps)
        gate_up = _product(h, gate_up_product, rb)  # (B, 2*ff)
        x = x + _product(act(gate_up[:, :ff]) * gate_up[:, ff:], down_product, rb)
    x = F.rms_norm(x, (shape.width,), w.final_norm, shape.eps)
    return _product(x, w.head, rb)  # (B, V)


_COMPILED: dict[str, Any] = {}


def compiled_step_function(device_type: str) -> Any:
    """The compiled :func:`_decode_step` for a device type (one per process; torch keeps a graph per shape).
    ``fullgraph=True``: the step is one graph or an error, never a silent mix of compiled and eager pieces."""
    if device_type not in _COMPILED:
        options = {"cpp_wrapper": True} if device_type == "cpu" else None
        _COMPILED[device_type] = torch.compile(_decode_step, fullgraph=True, options=options)
    return _COMPILED[device_type]


class CompiledDecodeStep:
    """Consumes one new token per row (B, 1) and returns the next-token logits (B, V), like
    :class:`~minillm.decoding.DecodeStep`, through one compiled graph.

    Built after the prompt has filled ``cache`` (allocated with :func:`static_cache_length` positions);
    ``attention_mask`` (B, T) is the prompt's padding mask or None.
    """

    def __init__(self, model: nn.Module, cache: KVCache, attention_mask: torch.Tensor | None) -> None:
        config = model.config
        self.cache, self.rotary = cache, model.model.rotary_emb
        self.weights = step_weights(model)
        self.act = activation(config.hidden_act)
        device, dtype = self.weights.embedding.device, self.weights.embedding.dtype
        threads = torch.get_num_threads()
        row_blocks = threads if device.type == "cpu" and dtype == torch.float32 and row_blocks_pay(threads) else 0
        self.shape = StepShape(config.num_heads, config.num_kv_heads, config.head_dim, config.d_ff, config.d_model,
                               config.norm_eps, config.sliding_window, row_blocks)
        for tensor in (*cache.keys, *cache.values):  # every step reads the whole cache: no stale NaN may hide there
            tensor[:, :, cache.length :].zero_()
        self.positions, self.padding_bias = positions_and_padding_bias(cache, attention_mask, config.num_kv_heads, dtype)
        self.index = torch.tensor(cache.length, device=device)  # the cache slot this step writes
        self.function = compiled_step_function(device.type)

    @torch.inference_mode()
    def __call__(self, new_ids: torch.Tensor) -> torch.Tensor:
        """new_ids (B, 1) -> logits (B, V) of the next position; writes this position's keys into the cache."""
        cache = self.cache
        logits = self.function(self.weights, self.rotary, self.act, self.shape, new_ids, self.positions, self.index,
                               cache.keys, cache.values, self.padding_bias)
        cache.advance(1)
        self.positions += 1
        self.index += 1
        return logits
