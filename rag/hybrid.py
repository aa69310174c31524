"""Hybrid retrieval: reciprocal rank fusion (RRF) of ranked lists, e.g. dense (embeddings) and BM25 (words).

RRF (Cormack, Clarke & Buettcher, SIGIR 2009) scores a document by ``sum_i w_i / (k + rank_i)`` over the lists
that hold it (rank from 1), with ``k = 60``. It needs no score calibration between retrievers, which is why it
suits mixing cosine similarities with BM25 scores. :data:`CANDIDATES` is how deep the store reads each list
before fusing (``max(CANDIDATES, 4 * top_k)``).
"""

from __future__ import annotations

from collections.abc import Sequence

from minillm.errors import InputError

__all__ = ["CANDIDATES", "RRF_K", "reciprocal_rank_fusion"]

RRF_K = 60
CANDIDATES = 50


def reciprocal_rank_fusion(rankings: Sequence[Sequence[int]], k: int = RRF_K,
                           weights: Sequence[float] | None = None,
                           limit: int | None = None) -> list[tuple[int, float]]:
    """Fuse ranked lists of ids (best first) into ``[(id, score), ...]``, best first.

    An id repeated within one list counts at its best rank. Ties keep the order in which ids first appear
    (the first list first), so the result is deterministic.

    >>> reciprocal_rank_fusion([[7, 3, 5], [3, 9]], k=1)
    [(3, 0.8333333333333333), (7, 0.5), (9, 0.3333333333333333), (5, 0.25)]
    """
    if isinstance(k, bool) or not isinstance(k, int | float) or k < 0:
        raise InputError(f"RRF k must be a number >= 0, got {k!r}")
    if weights is None:
        weights = [1.0] * len(rankings)
    if len(weights) != len(rankings):
        raise InputError(f"got {len(weights)} weights for {len(rankings)} rankings; give one weight per ranking")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise InputError(f"limit must be an integer >= 0 or None, got {limit!r}")
    scores: dict[int, float] = {}
    for ranking, weight in zip(rankings, weights, strict=True):
        seen: set[int] = set()
        for rank, doc in enumerate(ranking, start=1):
            doc = int(doc)
            if doc in seen:
                continue
            seen.add(doc)
            scores[doc] = scores.get(doc, 0.0) + float(weight) / (k + rank)
    first = {doc: i for i, doc in enumerate(scores)}
    fused = sorted(scores.items(), key=lambda item: (-item[1], first[item[0]]))
    return fused if limit is None else fused[:limit]
