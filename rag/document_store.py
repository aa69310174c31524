"""SimpleDocumentStore: texts with metadata, their embeddings in a VectorIndex, BM25, and pickle-free persistence.

The original docs' calls work as written::

    doc_store = SimpleDocumentStore(embedding_dim=256)      # the hashed TF-IDF embedder, nothing to install
    doc_store.add_documents(chunks)                          # -> their doc ids
    doc_store.compute_embeddings()                           # embeds only documents not embedded yet
    doc_store.search("query", top_k=3)                       # -> [SearchResult(text, score, metadata, doc_id)]
    doc_store.save("./data/document_store.pkl")              # a DIRECTORY of that name, never a pickle

``embedder`` is anything with ``__call__(texts) -> (n, dim) float32`` and ``.dim`` (see :mod:`rag.embedders`);
given one, its ``.dim`` wins and ``embedding_dim`` only sizes the default :class:`~rag.embedders.HashedEmbedder`.
Scores are cosine similarities (the store L2-normalises what the embedder returns; an all-zero row stays zero).
``retriever`` picks how :meth:`~SimpleDocumentStore.search` ranks: ``"dense"`` (embeddings, the default),
``"bm25"`` (:mod:`rag.bm25`, needs no embeddings) or ``"hybrid"`` (both fused by reciprocal rank fusion,
:mod:`rag.hybrid`, ``rrf_k=60``; the score is then the fused RRF score); ``search(..., retriever=...)`` overrides
it per query. A corpus-fitted embedder (the hashed one's IDF) is fitted on the documents at the first
``compute_embeddings`` and refitted, with every document re-embedded, whenever the store has grown past twice
the documents it was fitted on, so the total work stays linear.

A saved store is a directory, written atomically; :mod:`rag.store_persistence` gives its layout, and nothing is
ever unpickled.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from minillm.errors import InputError

from .bm25 import BM25
from .embedders import (
    Embedder,
    Fittable,
    HashedEmbedder,
    check_texts,
)
from .hybrid import CANDIDATES, RRF_K, reciprocal_rank_fusion
from .search_filters import Filter, matches_filter
from .store_persistence import StorePersistence
from .vector_index import VectorIndex

logger = logging.getLogger(__name__)

__all__ = ["RETRIEVERS", "SearchResult", "SimpleDocumentStore"]

RETRIEVERS = ("dense", "bm25", "hybrid")
REFIT_GROWTH = 2.0  # refit a corpus-fitted embedder when the store outgrows this many times its fitted size


@dataclass(frozen=True)
class SearchResult:
    """One retrieved document: its text, score (cosine, BM25 or RRF), metadata and id."""

    text: str
    score: float
    metadata: dict[str, Any] = field(default_factory=dict)
    doc_id: int = -1


def _check_retriever(retriever: Any) -> str:
    if retriever not in RETRIEVERS:
        raise InputError(f"retriever {retriever!r} is unknown; valid: {', '.join(RETRIEVERS)}")
    return retriever


def _positive(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise InputError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


class SimpleDocumentStore(StorePersistence):
    """Documents, embeddings and retrieval; see the module docstring for the API, modes and file layout."""

    def __init__(self, embedding_dim: int = 256, embedder: Embedder | None = None, retriever: str = "dense",
                 rrf_k: int = RRF_K) -> None:
        if embedder is None:
            embedder = HashedEmbedder(dim=embedding_dim)
        elif not callable(embedder) or isinstance(getattr(embedder, "dim", None), bool) or not isinstance(
                getattr(embedder, "dim", None), int | np.integer) or embedder.dim < 1:
            raise InputError(f"embedder must be callable with a positive int .dim (rag.embedders.Embedder); got "
                             f"{type(embedder).__name__} with dim {getattr(embedder, 'dim', None)!r}")
        self.embedder = embedder
        self.retriever = _check_retriever(retriever)
        if isinstance(rrf_k, bool) or not isinstance(rrf_k, int) or rrf_k < 0:
            raise InputError(f"rrf_k must be an integer >= 0, got {rrf_k!r}")
        self.rrf_k = rrf_k
        self._ids: list[int] = []
        self._texts: list[str] = []
        self._meta: list[dict[str, Any]] = []
        self._next_id = 0
        self._index = VectorIndex(self.embedding_dim, metric="ip")
        self._embedded: set[int] = set()
        self._bm25: BM25 | None = None
        self._rows: dict[int, int] | None = None  # doc id -> position, built on demand

    @property
    def embedding_dim(self) -> int:
        return int(self.embedder.dim)

    def __len__(self) -> int:
        return len(self._ids)

    def __repr__(self) -> str:
        return (f"SimpleDocumentStore({len(self)} documents, {len(self._embedded)} embedded, embedder="
                f"{self.embedder!r}, retriever={self.retriever!r})")

    @property
    def documents(self) -> list[str]:
        """The texts, in store order."""
        return list(self._texts)

    @property
    def metadata(self) -> list[dict[str, Any]]:
        """The metadata dicts, in store order (copies)."""
        return [dict(m) for m in self._meta]

    @property
    def doc_ids(self) -> list[int]:
        return list(self._ids)

    @property
    def pending(self) -> int:
        """How many documents have no embedding yet."""
        return len(self._ids) - len(self._embedded)

    # ----------------------------------------------------------------- adding and removing
    def add_documents(self, texts: Sequence[str], metadata: Sequence[dict[str, Any] | None] | None = None
                      ) -> list[int]:
        """Add texts (with one metadata dict each, JSON-serialisable); returns their new doc ids."""
        texts = check_texts(texts)
        if metadata is None:
            metadata = [None] * len(texts)
        elif isinstance(metadata, dict) or not isinstance(metadata, Sequence):
            raise InputError(f"metadata must be a list with one dict per text, got {type(metadata).__name__}")
        if len(metadata) != len(texts):
            raise InputError(f"metadata has {len(metadata)} entries for {len(texts)} texts; give one dict per text")
        clean = []
        for i, meta in enumerate(metadata):
            if meta is not None and not isinstance(meta, dict):
                raise InputError(f"metadata[{i}] is a {type(meta).__name__}; each entry must be a dict or None")
            try:
                clean.append(json.loads(json.dumps(meta or {})))
            except (TypeError, ValueError) as exc:
                raise InputError(f"metadata[{i}] is not JSON-serialisable ({exc}); use str/int/float/bool/None, "
                                 "lists and dicts") from exc
        ids = list(range(self._next_id, self._next_id + len(texts)))
        self._next_id += len(texts)
        self._ids += ids
        self._texts += texts
        self._meta += clean
        if texts:
            self._bm25 = self._rows = None
        return ids

    def remove(self, doc_ids: int | Iterable[int]) -> int:
        """Remove documents by id; returns how many were present (unknown ids are ignored)."""
        wanted = [doc_ids] if isinstance(doc_ids, int | np.integer) else list(doc_ids)
        for value in wanted:
            if isinstance(value, bool) or not isinstance(value, int | np.integer):
                raise InputError(f"doc id {value!r} is not an integer; remove() takes ids that add_documents "
                                 "returned")
        gone = {int(v) for v in wanted} & set(self._ids)
        if not gone:
            return 0
        keep = [i for i, doc in enumerate(self._ids) if doc not in gone]
        self._ids = [self._ids[i] for i in keep]
        self._texts = [self._texts[i] for i in keep]
        self._meta = [self._meta[i] for i in keep]
        self._index.remove(np.fromiter(gone & self._embedded, dtype=np.int64))
        self._embedded -= gone
        self._bm25 = self._rows = None
        return len(gone)

    # ----------------------------------------------------------------- embedding
    def _embed(self, texts: list[str], what: str) -> np.ndarray:
        """The embedder's rows for ``texts``, checked and L2-normalised (an all-zero row stays zero)."""
        try:
            vectors = np.asarray(self.embedder(texts), dtype=np.float32)
        except (TypeError, ValueError) as exc:
            raise InputError(f"the embedder returned something that is not a float array for {what} ({exc})") from exc
        expected = (len(texts), self.embedding_dim)
        if vectors.shape != expected:
            raise InputError(f"the embedder returned shape {vectors.shape} for {len(texts)} {what}; expected "
                             f"{expected} (its dim {self.embedding_dim})")
        if not np.isfinite(vectors).all():
            raise InputError(f"the embedder returned NaN or infinity for {what}; only finite values are valid")
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.where(norms == 0, 1.0, norms)

    def compute_embeddings(self, batch_size: int = 32, show_progress: bool = True) -> int:
        """Embed the documents that have no embedding yet (all of them after a refit); returns how many."""
        batch_size = _positive(batch_size, "batch_size")
        fitted = getattr(self.embedder, "fitted_docs", None)
        if isinstance(self.embedder, Fittable) and self._ids and (
                not fitted or len(self._ids) > REFIT_GROWTH * fitted):
            logger.info("fitting %r on %d documents (re-embedding all of them)", self.embedder, len(self._ids))
            self.embedder.fit(self._texts)
            self._index = VectorIndex(self.embedding_dim, metric="ip")
            self._embedded = set()
        rows = [r for r, doc in enumerate(self._ids) if doc not in self._embedded]
        if not rows:
            logger.info("compute_embeddings: nothing to embed (%d documents, all embedded)", len(self._ids))
            return 0
        with tqdm(total=len(rows), desc="embedding", unit="doc", disable=not show_progress) as bar:
            for start in range(0, len(rows), batch_size):
                batch = rows[start:start + batch_size]
                vectors = self._embed([self._texts[r] for r in batch], "documents")
                ids = [self._ids[r] for r in batch]
                self._index.add(vectors, ids=ids)
                self._embedded.update(ids)
                bar.update(len(batch))
        return len(rows)

    # ----------------------------------------------------------------- search
    def search(self, query: str, top_k: int = 5, filter: Filter | None = None, retriever: str | None = None
               ) -> list[SearchResult]:
        """The ``top_k`` best documents for ``query`` (fewer when fewer match ``filter``), best first.

        ``filter``: a dict (each key must be in the metadata and equal; a list/tuple/set value means any of them)
        or a function ``metadata -> bool``. An empty store gives ``[]`` (logged), as the original docs expect.
        """
        if not isinstance(query, str) or not query.strip():
            raise InputError(f"query must be a non-empty string, got {query!r}")
        top_k = _positive(top_k, "top_k")
        mode = _check_retriever(retriever if retriever is not None else self.retriever)
        if filter is not None and not (callable(filter) or isinstance(filter, dict)):
            raise InputError(f"filter must be a dict of metadata values or a function of the metadata, got "
                             f"{type(filter).__name__}")
        if not self._ids:
            logger.warning("search on an empty document store: add_documents() first; returning no results")
            return []
        if mode != "bm25" and self.pending:
            raise InputError(f"{self.pending} of the store's {len(self)} documents have no embeddings yet; call "
                             f"compute_embeddings() before a {mode} search (or search with retriever='bm25')")
        allowed = None if filter is None else np.array([matches_filter(m, filter) for m in self._meta], dtype=bool)
        depth = top_k if mode != "hybrid" else max(CANDIDATES, 4 * top_k)
        if mode == "dense":
            ranked = self._dense(query, depth, allowed)
        elif mode == "bm25":
            ranked = self._lexical(query, depth, allowed)
        else:
            lists = [[d for d, _ in self._dense(query, depth, allowed)],
                     [d for d, _ in self._lexical(query, depth, allowed)]]
            ranked = reciprocal_rank_fusion(lists, k=self.rrf_k, limit=top_k)
        if self._rows is None:
            self._rows = {doc: r for r, doc in enumerate(self._ids)}
        row = self._rows
        return [SearchResult(self._texts[row[doc]], float(score), dict(self._meta[row[doc]]), int(doc))
                for doc, score in ranked[:top_k]]

    def _dense(self, query: str, k: int, allowed: np.ndarray | None) -> list[tuple[int, float]]:
        """(doc id, cosine) of the ``k`` nearest allowed documents; reads deeper until enough pass the filter."""
        vector = self._embed([query], "the query")
        if not vector.any():
            logger.info("the query %r embeds to all zeros (no features); no dense results", query[:60])
            return []
        ok = None if allowed is None else {doc for doc, keep in zip(self._ids, allowed, strict=True) if keep}
        size = len(self._index)
        depth = min(size, k if ok is None else max(4 * k, 32))
        while True:
            scores, ids = self._index.search(vector, depth)
            found = [(int(d), float(s)) for d, s in zip(ids[0], scores[0], strict=True) if ok is None or d in ok]
            if len(found) >= k or depth == size:
                return found[:k]
            depth = min(size, depth * 4)

    def _lexical(self, query: str, k: int, allowed: np.ndarray | None) -> list[tuple[int, float]]:
        """(doc id, BM25 score) of the ``k`` best allowed documents sharing a word with the query."""
        if self._bm25 is None or len(self._bm25) != len(self._ids):
            self._bm25 = BM25().index(self._texts)
        scores = self._bm25.scores(query)
        if allowed is not None:
            scores = np.where(allowed, scores, 0.0)
        rows = np.flatnonzero(scores > 0)
        if len(rows) > k:  # keep the k best (and every tie with the k-th), then order them
            rows = rows[scores[rows] >= np.partition(scores[rows], len(rows) - k)[len(rows) - k]]
        top = rows[np.lexsort((rows, -scores[rows]))][:k]  # ties: the earlier document first
        return [(self._ids[r], float(scores[r])) for r in top]
