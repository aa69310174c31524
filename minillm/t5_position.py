"""T5's relative position bias: distances binned into log-spaced buckets, one learned scalar per bucket and head.

The bias is added to the attention scores (T5 does not scale q.k), computed once per stack by its first layer and
shared by every layer of that stack, as in transformers' ``T5Attention.compute_bias``.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def relative_position_bucket(
    relative_position: torch.Tensor, bidirectional: bool = True, num_buckets: int = 32, max_distance: int = 128
) -> torch.Tensor:
    """Bucket index for ``memory_position - query_position``.

    Half the buckets (of each direction when ``bidirectional``) hold exact distances 0..n/2-1, the rest grow
    logarithmically up to ``max_distance``; farther distances share the last bucket. Causal (not bidirectional)
    attention maps every future position to bucket 0. Example, bidirectional with 32 buckets: -1 -> 1, +1 -> 17,
    -200 -> 15.
    """
    buckets = torch.zeros_like(relative_position)
    if bidirectional:
        num_buckets //= 2
        buckets = buckets + (relative_position > 0).long() * num_buckets
        distance = relative_position.abs()
    else:
        distance = -torch.clamp(relative_position, max=0)
    max_exact = num_buckets // 2
    is_small = distance < max_exact
    large = max_exact + (
        torch.log(distance.float() / max_exact) / math.log(max_distance / max_exact) * (num_buckets - max_exact)
    ).long()
    large = torch.clamp(large, max=num_buckets - 1)
    return buckets + torch.where(is_small, distance, large)


class RelativePositionBias(nn.Module):
    """Learned bias (1, nh, T, S) for queries at ``past .. past+T`` over keys ``0 .. S``."""

    def __init__(self, num_buckets: int, num_heads: int, max_distance: int, bidirectional: bool) -> None:
        super().__init__()
        self.num_buckets = num_buckets
        self.max_distance = max_distance
        self.bidirectional = bidirectional
        self.embedding = nn.Embedding(num_buckets, num_heads)

    def forward(self, query_len: int, key_len: int, past: int = 0) -> torch.Tensor:
        device = self.embedding.weight.device
        query_pos = torch.arange(past, past + query_len, device=device)[:, None]  # (T, 1)
        key_pos = torch.arange(key_len, device=device)[None, :]  # (1, S)
        buckets = relative_position_bucket(
            key_pos - query_pos, self.bidirectional, self.num_buckets, self.max_distance
        )  # (T, S)
        values = self.embedding(buckets)  # (T, S, nh)
        return values.permute(2, 0, 1).unsqueeze(0)  # (1, nh, T, S)
