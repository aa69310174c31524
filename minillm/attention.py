"""One attention class for self- and cross-attention, causal or not, with GQA and a KV cache, on SDPA."""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torch import nn

from minillm.errors import InputError

from .layers import apply_rotary


class KVCache:
    """Preallocated keys and values for every layer, each (B, n_kv, max_len, hd).

    ``length`` counts the positions already stored; a forward pass writes its new keys at
    ``[length, length + T)`` in every layer and then calls :meth:`advance`. Cross-attention keys (computed once
    from the encoder output) live in ``static``.
    """

    def __init__(self, num_layers: int, max_len: int) -> None:
        self.num_layers = num_layers
        self.max_len = max_len
        self.length = 0
        self.keys: list[torch.Tensor | None] = [None] * num_layers
        self.values: list[torch.Tensor | None] = [None] * num_layers
        self.static: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store k, v (B, n_kv, T, hd) for ``layer``; return all keys/values so far (B, n_kv, length+T, hd)."""
        end = self.length + k.shape[2]
        if end > self.max_len:
            raise InputError(f"KV cache holds {self.max_len} positions; this step needs {end}")
        if self.keys[layer] is None:
            shape = (k.shape[0], k.shape[1], self.max_len, k.shape[3])
            self.keys[layer] = k.new_empty(shape)
            self.values[layer] = v.new_empty(shape)
        keys, values = self.keys[layer], self.values[layer]
        keys[:, :, self.length : end] = k
        values[:, :, self.length : end] = v
        return keys[:, :, :end], values[:, :, :end]

    def advance(self, steps: int) -> None:
        """Mark ``steps`` more positions as filled; the model calls it once per forward, after every layer."""
        self.length += steps


class Attention(nn.Module):
    """Multi-head attention with separate q/k/v/o projections (Llama names).

    - self-attention: ``forward(x)``; cross-attention: ``forward(x, source=encoder_states)``
    - grouped-query attention when ``num_kv_heads < num_heads``
    - rotary embeddings when ``rotary=(cos, sin)`` is passed; additive biases (T5) through ``attn_mask``
    - ``scale`` defaults to 1/sqrt(head_dim) (T5 uses 1.0)
    """

    def __init__(
        self,
        d_model: int,
        num_heads: int,
        num_kv_heads: int | None = None,
        head_dim: int | None = None,
        bias: bool = False,
        out_bias: bool | None = None,
        dropout: float = 0.0,
        scale: float | None = None,
    ) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.num_kv_heads = num_kv_heads or num_heads
        self.head_dim = head_dim or d_model // num_heads
        self.scale = scale
        self.dropout = dropout
        self.q_proj = nn.Linear(d_model, num_heads * self.head_dim, bias=bias)
        self.k_proj = nn.Linear(d_model, self.num_kv_heads * self.head_dim, bias=bias)
        self.v_proj = nn.Linear(d_model, self.num_kv_heads * self.head_dim, bias=bias)
        self.o_proj = nn.Linear(num_heads * self.head_dim, d_model, bias=bias if out_bias is None else out_bias)

    def _split(self, x: torch.Tensor, heads: int) -> torch.Tensor:
        B, T, _ = x.shape
        return x.view(B, T, heads, self.head_dim).transpose(1, 2)  # (B, nh, T, hd)

    def forward(
        self,
        x: torch.Tensor,
        source: torch.Tensor | None = None,
        attn_mask: torch.Tensor | None = None,
        is_causal: bool = False,
        rotary: tuple[torch.Tensor, torch.Tensor] | None = None,
        cache: KVCache | None = None,
        layer_idx: int = 0,
    ) -> torch.Tensor:
        """x (B, T, C) -> (B, T, C). ``attn_mask`` is bool (True = attend) or additive float, (B|1, nh|1, T, S)."""
        q = self._split(self.q_proj(x), self.num_heads)  # (B, nh, T, hd)
        if source is not None and cache is not None and layer_idx in cache.static:
            k, v = cache.static[layer_idx]  # cross-attention keys computed on the first step
        else:
            kv_input = x if source is None else source
            k = self._split(self.k_proj(kv_input), self.num_kv_heads)  # (B, n_kv, S, hd)
            v = self._split(self.v_proj(kv_input), self.num_kv_heads)
            if rotary is not None:
                cos, sin = rotary
                q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
            if cache is not None:
                if source is None:
                    k, v = cache.update(layer_idx, k, v)
                else:
                    cache.static[layer_idx] = (k, v)
        return self.o_proj(self.attend(q, k, v, attn_mask, is_causal))

    def attend(
        self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, attn_mask: torch.Tensor | None = None,
        is_causal: bool = False,
    ) -> torch.Tensor:
        """SDPA on split heads q (B, nh, T, hd), k/v (B, n_kv, S, hd) -> merged heads (B, T, nh*hd), pre-o_proj."""
        B, _, T, _ = q.shape
        causal_by_flag = is_causal and attn_mask is None and T > 1
        if T <= DECODE_MAX_QUERY and not self.training and not causal_by_flag:
            y = grouped_attention(q, k, v, attn_mask, self.scale)  # decode steps: a few small matmuls
        elif causal_by_flag and T <= BLOCKED_MAX_QUERY and blocked_attention_pays(q):
            dropout = self.dropout if self.training else 0.0
            y = causal_attention_in_row_blocks(q, k, v, self.scale, dropout)  # (B, nh, T, hd)
        else:
            # CPU autocast would run SDPA in bf16, whose backward is 3-5x slower than fp32's on CPU (measured:
            # 12.6 against 3.9 ms for (8, 4, 128, 32)); so attention runs in fp32 there, the projections around it
            # stay in bf16.
            fp32 = q.device.type == "cpu" and torch.is_grad_enabled() and torch.is_autocast_enabled("cpu")
            if fp32:
                q, k, v = q.float(), k.float(), v.float()
                if attn_mask is not None and attn_mask.dtype != torch.bool:
                    attn_mask = attn_mask.float()
            with torch.autocast("cpu", enabled=False) if fp32 else contextlib.nullcontext():
                y = F.scaled_dot_product_attention(
                    q,
                    k,
                    v,
                    attn_mask=attn_mask,
                    dropout_p=self.dropout if self.training else 0.0,
                    is_causal=is_causal and attn_mask is None,
                    scale=self.scale,
                    enable_gqa=self.num_kv_heads != self.num_heads,  # each kv head serves nh/n_kv query heads
                )  # (B, nh, T, hd)
        return y.transpose(1, 2).reshape(B, T, self.num_heads * self.head_dim)  # (B, T, nh*hd)


# Inference queries up to this length (token-by-token generation) use grouped_attention: on CPU, SDPA's fused
# kernel costs milliseconds per call there (measured: 6.5 ms against 0.03 ms for SmolLM2's 9x64 heads).
DECODE_MAX_QUERY = 8


# Compiled CPU training: causal attention as two batched products per block of query rows (each block sees only
# the keys up to its last row) with the mask and softmax between them, which Inductor fuses. Measured fwd+bwd per
# layer, (B*T 2048, 6 heads of 64), against SDPA's flash kernel: bf16 6.4 against 12.4 ms at T 256, 11.7 against
# 22.7 at T 512, 24.5 against 29.7 at T 1024; fp32 10.3 against 13.1 at T 256. It keeps (T, T)/2 scores per head
# for the backward, so longer queries stay on SDPA; eager mode stays on SDPA too (without fusion it is slower).
BLOCKED_ROWS = 128
BLOCKED_MAX_QUERY = 1024


def blocked_attention_pays(q: torch.Tensor) -> bool:
    """True where :func:`causal_attention_in_row_blocks` beats SDPA: a compiled CPU forward that builds a graph."""
    return q.device.type == "cpu" and torch.is_grad_enabled() and torch.compiler.is_compiling()


def causal_attention_in_row_blocks(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float | None, dropout: float = 0.0
) -> torch.Tensor:
    """Causal softmax attention over q (B, nh, T, hd), k/v (B, n_kv, T, hd) -> (B, nh, T, hd), by row blocks.

    Query rows ``[start, end)`` attend to keys ``[0, end)`` only, so the products skip most of the masked upper
    triangle. Under CPU autocast everything runs in the autocast dtype (bf16 products, softmax accumulated in fp32
    by the kernel).
    """
    nh, T, hd = q.shape[1:]
    dtype = torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else q.dtype
    group = nh // k.shape[1]
    if group > 1:  # each kv head serves ``group`` adjacent query heads
        k, v = k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1)  # (B, nh, T, hd)
    q = q.to(dtype) * (hd**-0.5 if scale is None else scale)
    k, v = k.to(dtype), v.to(dtype)
    blocks = []
    with torch.autocast("cpu", enabled=False):
        for start in range(0, T, BLOCKED_ROWS):
            end = min(start + BLOCKED_ROWS, T)
            scores = q[:, :, start:end] @ k[:, :, :end].transpose(-2, -1)  # (B, nh, rows, end)
            rows = torch.arange(start, end, device=q.device)[:, None]  # (rows, 1)
            future = torch.arange(end, device=q.device)[None, :] > rows  # (rows, end)
            probs = torch.softmax(scores.masked_fill(future, float("-inf")), dim=-1)
            if dropout:
                probs = F.dropout(probs, dropout)
            blocks.append(probs @ v[:, :, :end])  # (B, nh, rows, hd)
    return torch.cat(blocks, dim=2)  # (B, nh, T, hd)


def grouped_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None, scale: float | None
) -> torch.Tensor:
    """Plain softmax attention for short queries, each kv head shared by its group of query heads (GQA).

    q (B, nh, T, hd), k/v (B, n_kv, S, hd), mask bool (True = attend) or additive, (B|1, 1|nh, T, S).
    """
    B, nh, T, hd = q.shape
    n_kv, S = k.shape[1], k.shape[2]
    group = nh // n_kv
    scale = hd**-0.5 if scale is None else scale
    qg = q.reshape(B, n_kv, group * T, hd)  # query heads of one group are adjacent: (B, n_kv, g*T, hd)
    scores = (qg @ k.transpose(-1, -2)) * scale  # (B, n_kv, g*T, S)
    if mask is not None:
        scores = scores.view(B, n_kv, group, T, S)
        m = mask.view(mask.shape[0], n_kv, group, T, S) if mask.shape[1] == nh else mask.unsqueeze(2)
        scores = scores.masked_fill(~m, float("-inf")) if m.dtype == torch.bool else scores + m
        scores = scores.view(B, n_kv, group * T, S)
    probs = scores.softmax(dim=-1)
    return (probs @ v).view(B, nh, T, hd)  # (B, nh, T, hd)


def padding_and_causal_mask(
    attention_mask: torch.Tensor | None,
    query_len: int,
    past_len: int,
    causal: bool,
    sliding_window: int | None = None,
    segment_ids: torch.Tensor | None = None,
) -> torch.Tensor | None:
    """Boolean mask (B|1, 1, T, S), True where a query may attend, or None when SDPA's ``is_causal`` suffices.

    ``attention_mask`` is the usual (B, S) 0/1 padding mask over past + current positions; ``segment_ids`` (B, T)
    keeps packed documents from attending to each other. A query whose row would be empty (a left-pad position)
    attends to itself so no NaN leaks out.
    """
    key_len = past_len + query_len
    no_padding = attention_mask is None or bool(attention_mask.all())
    window_matters = sliding_window is not None and key_len > sliding_window
    if no_padding and segment_ids is None and not window_matters:
        if not causal or query_len == 1:
            return None
        if past_len == 0:
            return None  # is_causal=True handles it
    q_pos = torch.arange(past_len, key_len, device=_device(attention_mask, segment_ids))[:, None]  # (T, 1)
    k_pos = torch.arange(key_len, device=q_pos.device)[None, :]  # (1, S)
    mask = torch.ones(query_len, key_len, dtype=torch.bool, device=q_pos.device)
    if causal:
        mask = k_pos <= q_pos
    if sliding_window is not None:
        mask = mask & (q_pos - k_pos < sliding_window)
    mask = mask[None, None]  # (1, 1, T, S)
    if attention_mask is not None and not no_padding:
        mask = mask & attention_mask[:, None, None, :key_len].bool()  # (B, 1, T, S)
    if segment_ids is not None:
        if past_len:
            raise InputError("segment_ids (packed documents) cannot be combined with a KV cache")
        mask = mask & (segment_ids[:, None, :, None] == segment_ids[:, None, None, :])
    diagonal = (k_pos == q_pos)[None, None]  # (1, 1, T, S)
    return mask | diagonal


def _device(*tensors: torch.Tensor | None) -> torch.device:
    for t in tensors:
        if t is not None:
            return t.device
    return torch.device("cpu")
