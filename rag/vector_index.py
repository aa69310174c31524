"""VectorIndex: exact nearest-neighbour search over numpy vectors, saved as ``.npy`` and opened memory-mapped.

Search multiplies the queries by blocks of stored rows (``np.matmul`` in float32, also for float16 storage,
converted one block at a time; one query is a matrix-vector product) and keeps a running top-k per query: it
starts from ``np.argpartition`` over the first scores, and every later score costs one comparison with its
query's current k-th best, only the few that beat it being merged in.

>>> index = VectorIndex(2, metric="ip")
>>> index.add(np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]])).tolist()
[0, 1, 2]
>>> scores, ids = index.search(np.array([1.0, 0.25]), k=2)
>>> ids.tolist(), scores.tolist()
([[0, 2]], [[1.0, 0.625]])

Metrics: ``"cosine"`` (stored vectors and queries are normalised; an all-zero vector is refused, since its
cosine is undefined), ``"ip"`` (inner product, larger is better) and ``"l2"`` (the score is the *squared*
distance, smaller is better, as in faiss). Ids are distinct int64 >= 0; ``add`` without ids numbers on from the
largest id ever stored. ``remove`` marks rows as gone (search skips them, ``save`` drops them) and returns how
many of the given ids were present; unknown ids are ignored. An index opened with ``load(mmap=True)`` reads its
rows from the file lazily (the OS pages them in); rows added later live in an in-memory tail until the next
``save``. Search on an empty index raises; ``k`` above the size warns and returns every vector.

Past ~10M vectors use the faiss backend (:mod:`rag.faiss_index`), same methods: ``create_index(dim,
backend="faiss-hnsw")``; :func:`open_index` opens either kind of saved directory.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from minillm.atomic import atomic_directory
from minillm.errors import InputError

from .id_table import Growable, IdTable
from .index_checks import (
    METRICS,
    VERSION,
    as_matrix,
    as_vectors,
    check_array,
    check_k,
    check_options,
    load_npy,
    read_meta,
)
from .running_top_k import merge_above, select_top_k

__all__ = ["BACKENDS", "FORMAT", "METRICS", "VectorIndex", "create_index", "open_index"]

logger = logging.getLogger(__name__)

FORMAT = "minillm-vector-index"
BACKENDS = ("exact", "faiss-hnsw", "faiss-ivf")
# block sizes, tuned with bench/bench_rag_speed.py (see VectorIndex._blocks)
SCORE_BUDGET = 1 << 21  # scores per block: 100 queries -> 20,971 rows; one query -> 2M rows (one product)
CONVERT_BUDGET = 1 << 24  # float16 storage: floats converted to float32 per block (64 MB)
MIN_BLOCK_ROWS = 256
FILL_ROWS = 256  # rows the running top-k is first selected from (then merged in chunks growing GROWTH-fold)
GROWTH = 8
SAVE_ROWS = ADD_ROWS = 65536  # rows copied per step by save; rows validated and converted per step by add


class VectorIndex:
    """Exact search over (n, dim) vectors with int64 ids; see the module docstring for metrics and persistence."""

    def __init__(self, dim: int, metric: str = "cosine", dtype: type = np.float32) -> None:
        self.dim, self.metric, self.dtype = check_options(dim, metric, dtype)
        self._base = np.empty((0, self.dim), dtype=self.dtype)  # rows from a loaded file (maybe a np.memmap)
        self._base_half_sq = np.empty(0, dtype=np.float32)  # l2 only: |x|^2 / 2 per row
        self._tail = Growable((self.dim,), self.dtype)  # rows added since (in memory)
        self._tail_half_sq = Growable((), np.float32)
        self._ids = IdTable()  # over base rows, then tail rows

    def __len__(self) -> int:
        return len(self._ids)

    def __repr__(self) -> str:
        return f"VectorIndex(dim={self.dim}, metric={self.metric!r}, dtype={np.dtype(self.dtype).name}, n={len(self)})"

    @property
    def ids(self) -> np.ndarray:
        """The ids of the stored vectors, in storage order (a copy)."""
        return self._ids.live

    @property
    def nbytes(self) -> int:
        """Bytes this index holds in memory: in-memory rows (with room to grow), norms, ids; memory-mapped rows
        are not counted (the OS pages them in and out)."""
        base = 0 if isinstance(self._base, np.memmap) else self._base.nbytes
        return (base + self._base_half_sq.nbytes + self._tail.data.nbytes + self._tail_half_sq.data.nbytes
                + self._ids.nbytes)

    def add(self, vectors: np.ndarray, ids: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
        """Store ``vectors`` (n, dim) under ``ids`` (default: the next consecutive ids); returns the ids.

        >>> index = VectorIndex(3)
        >>> index.add(np.eye(3)[:2], ids=[10, 20]).tolist(), index.add(np.eye(3)[2:]).tolist()
        ([10, 20], [21])
        """
        array = as_matrix(vectors, self.dim)
        ids = self._ids.new_ids(ids, len(array))
        mark = self._tail.n, self._tail_half_sq.n
        try:  # ADD_ROWS at a time, so the float32 / normalised temporaries stay small
            for start in range(0, len(array), ADD_ROWS):
                chunk = as_vectors(array[start : start + ADD_ROWS], self.dim, self.metric, first_row=start)
                if self.dtype == np.float16 and np.abs(chunk).max() > np.finfo(np.float16).max:
                    raise InputError(f"vectors hold {float(np.abs(chunk).max()):g}, beyond float16's range (65504);"
                                     " scale them or use dtype=np.float32")
                stored = chunk.astype(self.dtype, copy=False)
                if self.metric == "l2":
                    exact = stored.astype(np.float32, copy=False)
                    self._tail_half_sq.append(0.5 * np.einsum("ij,ij->i", exact, exact))
                self._tail.append(stored, total=self._tail.n + len(array) - start)
        except BaseException:  # nothing of a refused batch stays
            self._tail.n, self._tail_half_sq.n = mark
            raise
        self._ids.append(ids)
        return ids

    def remove(self, ids) -> int:
        """Drop the vectors stored under ``ids``; returns how many were present (unknown ids are ignored).

        >>> index = VectorIndex(2)
        >>> _ = index.add(np.eye(2))
        >>> index.remove([1, 7]), len(index)
        (1, 1)
        """
        return len(self._ids.remove(ids))

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` best stored vectors per query: (scores float32 (nq, k'), ids int64 (nq, k')), best first.

        ``queries`` is (nq, dim) or (dim,); ``k' = min(k, len(self))``. For ``"l2"`` the score is the squared
        distance (ascending), otherwise the similarity (descending).
        """
        queries = as_vectors(queries, self.dim, self.metric, what="queries")
        k = check_k(k, len(self))
        if not len(queries):
            return np.zeros((0, k), dtype=np.float32), np.zeros((0, k), dtype=np.int64)
        best, rows = self._top_k(queries, k)
        if self.metric == "l2":  # best = q.x - |x|^2 / 2, so |q - x|^2 = |q|^2 - 2 best
            best = np.maximum(np.einsum("ij,ij->i", queries, queries)[:, None] - 2.0 * best, 0.0)
        return best.astype(np.float32, copy=False), self._ids.at(rows)

    def _blocks(self, nq: int):
        """(start row, block as float32, |x|^2 / 2 or None, removed flags or None) over base then tail.

        A block holds about SCORE_BUDGET // nq rows (one query: the whole index in one matrix-vector product;
        for float32 storage a block is a view, no copy) and for float16 at most CONVERT_BUDGET converted floats.
        """
        step = max(SCORE_BUDGET // nq, MIN_BLOCK_ROWS)
        if self.dtype != np.float32:
            step = max(min(step, CONVERT_BUDGET // self.dim), MIN_BLOCK_ROWS)
        removed, offset = self._ids.removed, 0
        for rows, half_sq in ((self._base, self._base_half_sq), (self._tail.view, self._tail_half_sq.view)):
            for start in range(0, len(rows), step):
                stop = min(start + step, len(rows))
                gone = removed[offset + start : offset + stop] if removed is not None else None
                yield (offset + start, np.asarray(rows[start:stop], dtype=np.float32),
                       half_sq[start:stop] if self.metric == "l2" else None,
                       gone if gone is not None and gone.any() else None)
            offset += len(rows)

    def _top_k(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores (nq, k), row positions (nq, k)), larger score better, sorted best first."""
        nq = len(queries)
        best = np.full((nq, 0), -np.inf, dtype=np.float32)
        rows = np.zeros((nq, 0), dtype=np.int64)
        queries_t = np.ascontiguousarray(queries.T)  # (dim, nq): BLAS runs 10-30% faster than on the .T view
        buffer = None  # the score block, reused (a fresh 32 MB array per block costs page faults)
        seen = 0  # rows merged so far
        for start, block, half_sq, gone in self._blocks(nq):
            if buffer is None or len(buffer) < len(block):
                buffer = np.empty((len(block), nq), dtype=np.float32)
            scores = buffer[: len(block)]  # (b, nq): faster than (nq, b) = queries @ block.T here
            if nq == 1:
                np.matmul(block, queries[0], out=scores[:, 0])
            else:
                np.matmul(block, queries_t, out=scores)
            if half_sq is not None:
                scores -= half_sq[:, None]
            if gone is not None:
                scores[gone] = -np.inf
            done = 0
            if best.shape[1] < k:  # still filling: a selection over the first rows
                done = min(len(scores), max(FILL_ROWS, k - best.shape[1]))
                head = np.broadcast_to(np.arange(start, start + done), (nq, done))
                best, rows = select_top_k(np.concatenate([best, scores[:done].T], axis=1),
                                     np.concatenate([rows, head], axis=1), k)
                seen += done
            while done < len(scores):  # chunks growing GROWTH-fold, so the thresholds tighten early
                step = min(len(scores) - done, (GROWTH - 1) * seen)
                merge_above(best, rows, scores[done : done + step], start + done)
                done, seen = done + step, seen + step
        order = np.argsort(-best, axis=1, kind="stable")
        return np.take_along_axis(best, order, axis=1), np.take_along_axis(rows, order, axis=1)

    def save(self, directory: str | os.PathLike) -> None:
        """Write vectors.npy, ids.npy, index.json (and half_sq_norms.npy for l2) into ``directory`` atomically.

        Removed rows are left out; the vectors are copied SAVE_ROWS at a time, never all in memory at once.
        """
        removed = self._ids.removed
        with atomic_directory(directory) as tmp:
            n = len(self)
            out = np.lib.format.open_memmap(tmp / "vectors.npy", mode="w+", dtype=self.dtype, shape=(n, self.dim))
            written, offset = 0, 0
            for rows in (self._base, self._tail.view):
                for start in range(0, len(rows), SAVE_ROWS):
                    block = rows[start : start + SAVE_ROWS]
                    if removed is not None:
                        block = block[~removed[offset + start : offset + start + len(block)]]
                    out[written : written + len(block)] = block
                    written += len(block)
                offset += len(rows)
            out.flush()
            del out
            np.save(tmp / "ids.npy", self.ids)
            if self.metric == "l2":
                half_sq = np.concatenate([self._base_half_sq, self._tail_half_sq.view])
                np.save(tmp / "half_sq_norms.npy", half_sq[~removed] if removed is not None else half_sq)
            meta = {"format": FORMAT, "version": VERSION, "dim": self.dim, "metric": self.metric,
                    "dtype": np.dtype(self.dtype).name, "count": n, "next_id": self._ids.next_id}
            (tmp / "index.json").write_text(json.dumps(meta, indent=2) + "\n")
        logger.info("saved %d vectors (dim %d, %s) to %s", n, self.dim, self.metric, directory)

    @classmethod
    def load(cls, directory: str | os.PathLike, mmap: bool = True) -> VectorIndex:
        """Open an index written by :meth:`save`; with ``mmap`` the vectors stay on disk and are read lazily."""
        directory = Path(directory)
        meta = read_meta(directory, [FORMAT])
        try:
            index = cls(meta["dim"], meta["metric"], meta["dtype"])
            count, next_id = int(meta["count"]), int(meta["next_id"])
        except (KeyError, TypeError, ValueError) as error:  # InputError included
            raise InputError(f"{directory / 'index.json'} is corrupt: {error}") from None
        vectors = load_npy(directory / "vectors.npy", mmap)
        check_array(directory / "vectors.npy", vectors, (count, index.dim), index.dtype)
        ids = load_npy(directory / "ids.npy")
        check_array(directory / "ids.npy", ids, (count,), np.int64)
        try:
            index._ids = IdTable.from_rows(ids)
        except InputError as error:
            raise InputError(f"{directory / 'ids.npy'} is corrupt: {error}") from None
        index._ids.next_id = max(index._ids.next_id, next_id)
        if index.metric == "l2":
            index._base_half_sq = load_npy(directory / "half_sq_norms.npy")
            check_array(directory / "half_sq_norms.npy", index._base_half_sq, (count,), np.float32)
        index._base = vectors
        logger.info("loaded %d vectors from %s (mmap=%s)", count, directory, mmap)
        return index


def create_index(dim: int, metric: str = "cosine", dtype: type = np.float32, backend: str = "exact", **options):
    """A new index: ``"exact"`` (:class:`VectorIndex`) or ``"faiss-hnsw"`` / ``"faiss-ivf"`` (:class:`rag.faiss_index.
    FaissIndex`, ``options`` passed on), all with the same methods.

    >>> create_index(8, backend="exact")
    VectorIndex(dim=8, metric='cosine', dtype=float32, n=0)
    """
    if backend == "exact":
        if options:
            raise InputError(f"the exact backend takes no options; got {', '.join(sorted(options))}")
        return VectorIndex(dim, metric, dtype)
    if backend not in BACKENDS:
        raise InputError(f"backend {backend!r} is unknown; valid: {', '.join(BACKENDS)}")
    from .faiss_index import FaissIndex

    return FaissIndex(dim, metric, dtype, kind=backend.removeprefix("faiss-"), **options)


def open_index(directory: str | os.PathLike, mmap: bool = True):
    """Open a saved index of either backend (index.json names which)."""
    from .faiss_index import FORMAT as FAISS_FORMAT
    from .faiss_index import FaissIndex

    meta = read_meta(Path(directory), [FORMAT, FAISS_FORMAT])
    return VectorIndex.load(directory, mmap) if meta["format"] == FORMAT else FaissIndex.load(directory, mmap)
