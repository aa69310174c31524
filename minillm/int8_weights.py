"""Weight-only int8 for the decoder: every block projection and the output head as int8 rows with one scale each.

``quantize_int8(model)`` replaces each ``nn.Linear`` of a :class:`~minillm.decoder.DecoderOnlyModel`'s blocks
(q/k/v/o, gate/up/down) and its ``lm_head`` by an :class:`Int8Linear`: weight (N, K) -> int8 ``q`` (N, K) and a
per-output-channel scale ``s`` (N,), ``w ~= q * s[:, None]`` with ``s = max|w_row| / 127`` (symmetric, no zero
point). The embedding and the norms stay in the model's dtype; a tied head gets its own int8 copy, so lookups
stay exact. Memory for the weights drops 4x against float32.

The product is ``torch.ops.aten._weight_int8pack_mm`` (the op gpt-fast uses; an ATen operator called through
``torch.ops``, underscore-named, so a torch upgrade may change it: tests/minillm/test_int8_weights.py would
show it). On CPU it is fast for bfloat16 inputs and slow for float32 ones (this project's 2-core AVX-512
machine, SmolLM2's 49152 x 576 head, one row, best of 60 calls on a busy machine: 3.1 ms in bfloat16, 36 ms in
float32, 9.8 ms for the float32 ``F.linear``), so activations enter it in bfloat16 and leave in the model's
dtype: the error against float32 is the int8 rounding plus one bfloat16 rounding of each projection's input. Off CPU the
weight is dequantized per call (correct, not fast).

q/k/v and gate/up are quantized as one fused matrix each, the modules holding row-block views of it, so the
decoding step (:mod:`minillm.decoding`) runs each group as one product, as it does in float32.
A quantized model is for inference: it neither trains nor saves in the HF format.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from minillm.errors import InputError

# The dtype activations enter the int8 product in, and that of the scales (the op wants them alike).
COMPUTE_DTYPE = torch.bfloat16


def quantize_rows(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric per-row int8: weight (N, K) -> (q int8 (N, K), scales (N,) in :data:`COMPUTE_DTYPE`).

    The scale is rounded to its stored dtype before dividing, so ``q * scales`` is exactly what the product uses.

    >>> q, s = quantize_rows(torch.tensor([[1.0, -0.5], [0.0, 0.0]]))
    >>> q.tolist(), s.float().tolist()
    ([[127, -64], [0, 0]], [0.00787353515625, 1.0])
    """
    weight = weight.detach().float()
    absmax = weight.abs().amax(dim=1)  # (N,)
    scales = torch.where(absmax > 0, absmax / 127.0, torch.ones_like(absmax)).to(COMPUTE_DTYPE)
    q = torch.round(weight / scales.float()[:, None]).clamp_(-127, 127).to(torch.int8)  # (N, K)
    return q.contiguous(), scales.contiguous()


def int8_matmul(x: torch.Tensor, q: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
    """``x @ (q * scales[:, None]).T`` for x (M, K), q int8 (N, K), scales (N,) -> (M, N) in x's dtype."""
    if x.device.type == "cpu":
        return torch.ops.aten._weight_int8pack_mm(x.to(scales.dtype).contiguous(), q, scales).to(x.dtype)
    return F.linear(x, (q.to(scales.dtype) * scales[:, None]).to(x.dtype))


class Int8Linear(nn.Module):
    """``nn.Linear`` with an int8 weight ``weight_int8`` (N, K) and per-row ``scales`` (N,) (buffers); the bias,
    if any, stays a float buffer. Build it with :meth:`from_linear` or :func:`quantize_int8`."""

    def __init__(self, weight_int8: torch.Tensor, scales: torch.Tensor, bias: torch.Tensor | None = None) -> None:
        super().__init__()
        if weight_int8.dtype != torch.int8 or weight_int8.dim() != 2 or scales.shape != weight_int8.shape[:1]:
            raise InputError(f"Int8Linear needs an int8 (N, K) weight and (N,) scales, got "
                             f"{weight_int8.dtype} {tuple(weight_int8.shape)} and {tuple(scales.shape)}")
        self.out_features, self.in_features = weight_int8.shape
        self.register_buffer("weight_int8", weight_int8)
        self.register_buffer("scales", scales)
        self.register_buffer("bias", None if bias is None else bias.detach())

    @classmethod
    def from_linear(cls, linear: nn.Linear) -> Int8Linear:
        """Quantize ``linear``'s weight per output row (the original module is left untouched)."""
        return cls(*quantize_rows(linear.weight), linear.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (..., K) -> (..., N)."""
        y = int8_matmul(x.reshape(-1, self.in_features), self.weight_int8, self.scales)  # (M, N)
        if self.bias is not None:
            y = y + self.bias.to(y.dtype)
        return y.reshape(*x.shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


def quantize_group(linears: Sequence[nn.Linear]) -> list[Int8Linear]:
    """Int8 modules for ``linears`` (which share one input) whose weights and scales are row blocks of one fused
    int8 matrix and one scale vector, so a decoding step can run the group as one product."""
    weight = torch.cat([linear.weight.detach() for linear in linears])  # (sum N, K)
    q, scales = quantize_rows(weight)
    biased = [linear.bias is not None for linear in linears]
    bias = torch.cat([linear.bias.detach() for linear in linears]) if all(biased) else None  # (sum N,)
    modules, start = [], 0
    for linear in linears:
        end = start + linear.weight.shape[0]
        own = bias[start:end] if bias is not None else linear.bias
        modules.append(Int8Linear(q[start:end], scales[start:end], own))
        start = end
    return modules


@torch.no_grad()
def quantize_int8(model: nn.Module) -> nn.Module:
    """Replace the block projections and the head of a :class:`~minillm.decoder.DecoderOnlyModel` by
    :class:`Int8Linear` modules, in place; return the model (now for inference: ``generate``, ``forward``).

    >>> model = quantize_int8(DecoderOnlyModel(config))            # doctest: +SKIP
    >>> model.generate(ids, max_new_tokens=32)                     # doctest: +SKIP
    """
    body = getattr(model, "model", None)
    if not hasattr(body, "layers") or not isinstance(getattr(model, "lm_head", None), (nn.Linear, Int8Linear)):
        raise InputError(f"quantize_int8 needs a DecoderOnlyModel (blocks in .model.layers, an lm_head), "
                         f"got {type(model).__name__}")
    for layer in body.layers:
        attn, mlp = layer.self_attn, layer.mlp
        groups = [(attn, ("q_proj", "k_proj", "v_proj")), (attn, ("o_proj",)), (mlp, ("gate_proj", "up_proj")),
                  (mlp, ("down_proj",))]
        for owner, names in groups:
            linears = [getattr(owner, name) for name in names]
            if all(isinstance(m, Int8Linear) for m in linears):
                continue  # quantized already
            if not all(type(m) is nn.Linear for m in linears):
                raise InputError(f"quantize_int8 handles plain nn.Linear projections; {names} are "
                                 f"{[type(m).__name__ for m in linears]} (merge adapters first)")
            for name, module in zip(names, quantize_group(linears), strict=True):
                setattr(owner, name, module)
    if type(model.lm_head) is nn.Linear:
        model.lm_head = Int8Linear.from_linear(model.lm_head)
    return model
