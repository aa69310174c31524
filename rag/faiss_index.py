"""FaissIndex: approximate search (faiss HNSW or IVF) behind the same methods as :class:`rag.VectorIndex`.

For collections past ~10M vectors, where exact search reads every stored vector per query. faiss is an optional
extra (``pip install faiss-cpu``, or ``pip install minillm[rag]``), imported only when a FaissIndex is made.

- ``kind="hnsw"`` (``HNSW{m},Flat``, or ``,SQfp16`` for float16): no training, fast adds, the best
  recall/speed trade-off while the graph fits in memory (about ``4 * dim + 8 * m`` bytes per vector).
  ``ef_search`` sets recall against speed per query.
- ``kind="ivf"`` (``IVF{nlist},Flat`` / ``,SQfp16``): the first ``add`` trains ``nlist`` centroids on its
  vectors (give it a representative batch of at least ``39 * nlist``; default ``nlist = min(4 * sqrt(n), n / 39)``), then
  each query scans ``nprobe`` lists. Cheaper to build than HNSW; recall depends on ``nprobe / nlist``.

>>> import numpy as np
>>> index = FaissIndex(4, metric="l2", kind="hnsw")
>>> index.add(np.eye(4), ids=[5, 6, 7, 8]).tolist()
[5, 6, 7, 8]
>>> scores, ids = index.search(np.array([0.0, 1.0, 0.0, 0.0]), k=1)
>>> ids.tolist(), scores.tolist()
([[6]], [[0.0]])

Ids, metrics, warnings and errors are those of VectorIndex. ``remove`` hides rows from search through a faiss
ID selector (HNSW graphs cannot drop nodes; the rows stay in the file with id -1). An approximate search can
find fewer than ``k'`` hits for a query (IVF with small lists, a graph cut off by removals); the missing places
hold id -1 and score -inf (``+inf`` for l2), as in faiss. Saved as ``index.faiss`` (``faiss.write_index``),
``ids.npy`` (-1 for removed rows) and ``index.json``; ``load`` reads the whole index into memory.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from minillm.atomic import atomic_directory
from minillm.errors import InputError, MissingDependencyError

from .id_table import IdTable
from .index_checks import VERSION, as_vectors, check_array, check_k, check_options, load_npy, read_meta

__all__ = ["FORMAT", "KINDS", "FaissIndex"]

logger = logging.getLogger(__name__)

FORMAT = "minillm-faiss-index"
KINDS = ("hnsw", "ivf")
DEFAULTS = {"hnsw": {"m": 32, "ef_construction": 100, "ef_search": 128}, "ivf": {"nlist": None, "nprobe": 16}}


def import_faiss():
    """The faiss module, or a MissingDependencyError saying how to install it."""
    try:
        import faiss
    except ImportError as error:
        raise MissingDependencyError(f"the faiss backend needs faiss ({error}); pip install faiss-cpu") from None
    return faiss


class FaissIndex:
    """Approximate search with faiss (see the module docstring); the methods of :class:`rag.VectorIndex`."""

    def __init__(self, dim: int, metric: str = "cosine", dtype: type = np.float32, kind: str = "hnsw",
                 **options) -> None:
        self.dim, self.metric, self.dtype = check_options(dim, metric, dtype)
        if kind not in KINDS:
            raise InputError(f"kind {kind!r} is unknown; valid: {', '.join(KINDS)}")
        unknown = sorted(set(options) - set(DEFAULTS[kind]))
        if unknown:
            raise InputError(f"option {unknown[0]!r} does not apply to kind {kind!r}; valid: "
                             f"{', '.join(DEFAULTS[kind])}")
        self.kind, self.options = kind, {**DEFAULTS[kind], **options}
        for name, value in self.options.items():
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise InputError(f"option {name} must be a positive integer; got {value!r}")
        self._faiss = import_faiss()
        self._index = self._new_index(None) if kind == "hnsw" else None  # IVF: made (and trained) by the first add
        self._ids = IdTable()  # faiss's sequential row numbers -> our ids
        self._selector = None  # cached faiss selector excluding removed rows
        self._removed_rows = np.zeros(0, dtype=np.int64)  # the selector's rows (faiss keeps a pointer to them)

    def __len__(self) -> int:
        return len(self._ids)

    def __repr__(self) -> str:
        return (f"FaissIndex(dim={self.dim}, metric={self.metric!r}, dtype={np.dtype(self.dtype).name}, "
                f"kind={self.kind!r}, n={len(self)})")

    @property
    def ids(self) -> np.ndarray:
        """The ids of the stored vectors, in storage order (a copy)."""
        return self._ids.live

    def _new_index(self, n_train: int | None):
        faiss, o = self._faiss, self.options
        storage = "Flat" if self.dtype == np.float32 else "SQfp16"
        metric = faiss.METRIC_L2 if self.metric == "l2" else faiss.METRIC_INNER_PRODUCT
        if self.kind == "hnsw":
            index = faiss.index_factory(self.dim, f"HNSW{o['m']},{storage}", metric)
            index.hnsw.efConstruction = o["ef_construction"]
            return index
        nlist = o["nlist"] or max(1, min(65536, int(4 * math.sqrt(n_train)), n_train // 39))
        if n_train < nlist:
            raise InputError(f"the first add of an IVF index trains {nlist} lists, so it needs at least {nlist} "
                             f"vectors (39 * nlist is better); got {n_train}")
        self.options["nlist"] = nlist
        return faiss.index_factory(self.dim, f"IVF{nlist},{storage}", metric)

    def add(self, vectors: np.ndarray, ids: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
        """Store ``vectors`` (n, dim) under ``ids`` (default: the next consecutive ids); returns the ids."""
        vectors = np.ascontiguousarray(as_vectors(vectors, self.dim, self.metric))
        ids = self._ids.new_ids(ids, len(vectors))
        if not len(vectors):
            return ids
        if self._index is None:
            self._index = self._new_index(len(vectors))
        if not self._index.is_trained:  # IVF centroids, or the fp16 scalar quantizer's (trivial) training
            self._index.train(vectors)
        self._index.add(vectors)
        self._ids.append(ids)
        return ids

    def remove(self, ids) -> int:
        """Hide the vectors stored under ``ids`` from search; returns how many were present (unknown: ignored)."""
        rows = self._ids.remove(ids)
        if len(rows):
            self._selector = None
        return len(rows)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` best stored vectors per query: (scores float32 (nq, k'), ids int64 (nq, k')), best first.

        Approximate: missing hits are id -1 (see the module docstring).
        """
        queries = np.ascontiguousarray(as_vectors(queries, self.dim, self.metric, what="queries"))
        k = check_k(k, len(self))
        faiss, removed = self._faiss, self._ids.removed
        if removed is not None and self._selector is None:
            self._removed_rows = np.flatnonzero(removed).astype(np.int64)
            self._selector = faiss.IDSelectorNot(faiss.IDSelectorBatch(self._removed_rows))
        sel = self._selector if removed is not None else None
        if self.kind == "hnsw":
            params = faiss.SearchParametersHNSW(efSearch=max(self.options["ef_search"], k), sel=sel)
        else:
            params = faiss.SearchParametersIVF(nprobe=min(self.options["nprobe"], self.options["nlist"]), sel=sel)
        scores, rows = self._index.search(queries, k, params=params)
        ids = np.where(rows >= 0, self._ids.at(rows.clip(min=0)), -1)
        return scores.astype(np.float32, copy=False), ids.astype(np.int64, copy=False)

    def save(self, directory: str | os.PathLike) -> None:
        """Write index.faiss, ids.npy (-1: removed) and index.json into ``directory`` atomically."""
        row_ids = self._ids.by_row()
        with atomic_directory(directory) as tmp:
            if self._index is not None:
                self._faiss.write_index(self._index, str(tmp / "index.faiss"))
            np.save(tmp / "ids.npy", row_ids)
            meta = {"format": FORMAT, "version": VERSION, "dim": self.dim, "metric": self.metric,
                    "dtype": np.dtype(self.dtype).name, "kind": self.kind, "options": self.options,
                    "rows": len(row_ids), "next_id": self._ids.next_id}
            (tmp / "index.json").write_text(json.dumps(meta, indent=2) + "\n")
        logger.info("saved a faiss %s index of %d vectors to %s", self.kind, len(self), directory)

    @classmethod
    def load(cls, directory: str | os.PathLike, mmap: bool = True) -> FaissIndex:
        """Open an index written by :meth:`save` (``mmap`` is accepted for symmetry; faiss reads it all)."""
        directory = Path(directory)
        meta = read_meta(directory, [FORMAT])
        try:
            index = cls(meta["dim"], meta["metric"], meta["dtype"], kind=meta["kind"], **meta["options"])
            rows, next_id = int(meta["rows"]), int(meta["next_id"])
        except (KeyError, TypeError, ValueError) as error:  # InputError included
            raise InputError(f"{directory / 'index.json'} is corrupt: {error}") from None
        row_ids = load_npy(directory / "ids.npy")
        check_array(directory / "ids.npy", row_ids, (rows,), np.int64)
        path = directory / "index.faiss"
        if path.exists() or rows:
            try:
                index._index = index._faiss.read_index(str(path))
            except RuntimeError as error:
                raise InputError(f"{path} is not a readable faiss index ({str(error).strip().splitlines()[-1]}); "
                                 "the index is corrupt") from None
            if index._index.ntotal != rows or index._index.d != index.dim:
                raise InputError(f"{path} holds {index._index.ntotal} vectors of dim {index._index.d}; index.json "
                                 f"says {rows} of dim {index.dim}; the index is corrupt")
        try:
            index._ids = IdTable.from_rows(row_ids, allow_removed=True)
        except InputError as error:
            raise InputError(f"{directory / 'ids.npy'} is corrupt: {error}") from None
        index._ids.next_id = max(index._ids.next_id, next_id)
        logger.info("loaded a faiss %s index of %d vectors from %s", index.kind, len(index), directory)
        return index

