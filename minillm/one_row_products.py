"""The one-row products of a decoding step: ``x @ W.T`` for a few rows x, as fast as this CPU allows.

Decoding multiplies one row by every weight matrix, so it is bound by how fast the weights stream from memory.
Two ways compete on CPU in float32: ``F.linear`` (MKL's matrix-vector kernel) and :class:`RowBlockMatmul` (the
weight's row blocks (P, N/P, K) times the column ``x.T`` in one batched product, so MKL runs its matrix kernel
on every core). Which wins depends on the CPU and its BLAS build, so :func:`row_blocks_pay` times both once per
process and :func:`decode_matmul` returns the faster.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from minillm.errors import InputError

MatmulFn = Callable[[torch.Tensor], torch.Tensor]


class RowBlockMatmul:
    """``x @ weight.T + bias`` for a few rows x (B, K), as one batched product over row blocks of the weight.

    weight (N, K) is viewed as (P, N/P, K) (no copy) and multiplied by x.T expanded to (P, K, B); the last
    N % P rows, if any, go through ``F.linear``. P is ``parts`` (the thread count) clamped to [2, N]: a batch
    of one would fall back to the matrix-vector kernel this class avoids.
    """

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, parts: int) -> None:
        rows, self.width = weight.shape
        if rows < 2:
            raise InputError(f"RowBlockMatmul needs a weight of at least 2 rows, got shape {tuple(weight.shape)}")
        self.parts = max(2, min(parts, rows))
        block = rows // self.parts
        main = block * self.parts
        self.blocks = weight[:main].view(self.parts, block, self.width)  # (P, N/P, K)
        self.block_bias = None if bias is None else bias[:main].view(self.parts, block, 1)  # (P, N/P, 1)
        self.rest = weight[main:] if main < rows else None
        self.rest_bias = None if bias is None or self.rest is None else bias[main:]
        self.main = main

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, K) -> (B, N)."""
        B = x.shape[0]
        x = x.contiguous()
        # x.T as (K, B) with strides (1, K), spelled out: with B == 1 torch may report a (1, K) row with stride
        # (1, 1), and that reading of x.T sends bmm to a kernel 4x slower.
        column = x.as_strided((self.width, B), (1, self.width), x.storage_offset())
        column = column.expand(self.parts, self.width, B)  # (P, K, B)
        if self.block_bias is None:
            y = torch.bmm(self.blocks, column)  # (P, N/P, B)
        else:
            y = torch.baddbmm(self.block_bias, self.blocks, column)
        y = y.view(self.main, B).t()  # (B, N'); contiguous when B == 1
        if self.rest is not None:
            y = torch.cat([y, F.linear(x, self.rest, self.rest_bias)], dim=1)
        return y


@torch.library.custom_op("minillm::row_block_product", mutates_args=())
def row_block_product(x: torch.Tensor, weight: torch.Tensor, parts: int) -> torch.Tensor:
    """``x @ weight.T`` (B, N) by :class:`RowBlockMatmul`, as an operator that ``torch.compile`` calls as it is."""
    return RowBlockMatmul(weight, None, parts)(x).contiguous()


@row_block_product.register_fake
def _row_block_product_shape(x: torch.Tensor, weight: torch.Tensor, parts: int) -> torch.Tensor:
    return x.new_empty((x.shape[0], weight.shape[0]))


def decode_matmul(weight: torch.Tensor, bias: torch.Tensor | None = None) -> MatmulFn:
    """The fastest ``x -> x @ weight.T + bias`` for one decoding step on ``weight``'s device and dtype."""
    on_cpu = weight.device.type == "cpu" and weight.dtype == torch.float32
    if on_cpu and weight.shape[0] >= 2 and weight.is_contiguous() and row_blocks_pay(torch.get_num_threads()):
        return RowBlockMatmul(weight, bias, torch.get_num_threads())
    return lambda x: F.linear(x, weight, bias)


_ROW_BLOCKS_PAY: dict[int, bool] = {}


def row_blocks_pay(threads: int) -> bool:
    """Whether :class:`RowBlockMatmul` beats ``F.linear`` for one row on this CPU at ``threads`` threads.

    It depends on the CPU and its BLAS build: on one 2-core machine of this project's the row-block product
    streamed weights at 31-40 GB/s against 11-21 GB/s for ``F.linear``; on another (AMX, larger caches)
    ``F.linear`` reached 42-82 GB/s against 17-27. So each process times both once (about 10 ms, a
    2048 x 576 float32 weight, the best of 5 calls each) and keeps the answer per thread count.
    """
    if threads not in _ROW_BLOCKS_PAY:
        generator = torch.Generator().manual_seed(0)
        weight = torch.randn(2048, 576, generator=generator)
        x = torch.randn(1, 576, generator=generator)
        blocks = RowBlockMatmul(weight, None, threads)
        _ROW_BLOCKS_PAY[threads] = _best_time(lambda: blocks(x)) < _best_time(lambda: F.linear(x, weight))
    return _ROW_BLOCKS_PAY[threads]


def _best_time(fn: Callable[[], torch.Tensor], calls: int = 5) -> float:
    fn()  # warm-up
    best = float("inf")
    for _ in range(calls):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best
