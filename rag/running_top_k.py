"""The running top-k of :class:`~rag.vector_index.VectorIndex` search: a first selection, then merges of the
few later scores that beat a query's current k-th best.

>>> scores = np.array([[0.1, 0.9, 0.5]], dtype=np.float32)
>>> best, rows = select_top_k(scores, np.array([[0, 1, 2]]), 2)
>>> sorted(rows[0].tolist())
[1, 2]
>>> merge_above(best, rows, np.array([[0.7], [0.2]], dtype=np.float32), start=3)  # rows 3 and 4, one query
>>> sorted(rows[0].tolist())
[1, 3]
"""

from __future__ import annotations

import numpy as np


def select_top_k(scores: np.ndarray, rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` largest ``scores`` per row (unordered) with their ``rows``."""
    if scores.shape[1] <= k:
        return scores.copy(), rows.copy()
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    return np.take_along_axis(scores, part, axis=1), np.take_along_axis(rows, part, axis=1)


def merge_above(best: np.ndarray, rows: np.ndarray, scores: np.ndarray, start: int) -> None:
    """Merge into the running top-k (``best``, ``rows``: (nq, k), in place) the ``scores`` (b, nq) of rows
    ``start ..`` that beat their query's current k-th best: one comparison per score, then a small sort.

    The scores are first compared with the lowest threshold of all queries (one number, a contiguous pass),
    then the few hits with their own query's; ``np.flatnonzero`` on the flat mask, not ``np.nonzero`` on the
    2-D one (40x faster here).
    """
    nq, k = best.shape
    threshold = best.min(axis=1)  # (nq,) each query's k-th best
    mask = scores > threshold.min()  # against one number: 4x faster than the per-query broadcast
    if np.count_nonzero(mask) > len(scores):  # too loose (the queries' thresholds differ a lot)
        np.greater(scores, threshold, out=mask)
    hits = np.flatnonzero(mask)
    if len(hits) == 0:
        return
    row, q = np.divmod(hits, nq)
    values = scores.reshape(-1)[hits]
    keep = values > threshold[q]
    row, q, values = row[keep], q[keep], values[keep]
    if len(q) == 0:
        return
    touched = np.unique(q)
    # candidates: the touched queries' current top-k plus their new scores, grouped by query, best first
    cand_q = np.concatenate([np.repeat(touched, k), q])
    cand_s = np.concatenate([best[touched].reshape(-1), values])
    cand_r = np.concatenate([rows[touched].reshape(-1), row + start])
    order = np.lexsort((-cand_s, cand_q))
    take = order[(np.searchsorted(cand_q[order], touched)[:, None] + np.arange(k)).reshape(-1)]
    best[touched] = cand_s[take].reshape(-1, k)
    rows[touched] = cand_r[take].reshape(-1, k)
