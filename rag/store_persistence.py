"""Saving and loading a :class:`~rag.document_store.SimpleDocumentStore` (a mixin of it), pickle-free.

A saved store is a directory, written atomically (a temporary sibling renamed into place)::

    store.json        {"format": "minillm-document-store", "version": 1, "embedder": {spec}, "retriever",
                       "rrf_k", "count", "next_id"}
    documents.jsonl   one {"id", "text", "metadata"} object per line, in store order
    vectors/          the rag.vector_index.VectorIndex of the embedded documents (ids = doc ids; .npy)
    embedder/         the embedder's arrays (the hashed IDF counts, hashed_df.npy), when it has any
    bm25/             the BM25 index (JSON + .npz) when one was built; rebuilt from the texts otherwise

:meth:`SimpleDocumentStore.load` rebuilds the embedder from its spec (or takes ``embedder=...``). Nothing is ever
unpickled: ``.npy`` files are read with ``allow_pickle=False`` and a pickle file (the original store format) is
refused, unopened, with a one-line error.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Self

import numpy as np

from minillm.atomic import atomic_directory
from minillm.errors import InputError

from .bm25 import BM25
from .embedders import Embedder, embedder_from_spec, embedder_spec, save_embedder_state
from .store_files import FORMAT, VERSION, read_documents, read_meta, refuse_file
from .vector_index import VectorIndex

logger = logging.getLogger("rag.document_store")  # one logger for the store, whichever file logs


class StorePersistence:
    """save() and load() for the document store."""

    def save(self, path: str | os.PathLike) -> Path:
        """Write the store as a directory at ``path`` (atomically; see the module doc for the layout)."""
        path = Path(path).expanduser()
        if path.is_file():
            refuse_file(path, "save to")
        spec = embedder_spec(self.embedder)
        with atomic_directory(path) as tmp:
            lines = (json.dumps({"id": doc, "text": text, "metadata": meta}, ensure_ascii=False) + "\n"
                     for doc, text, meta in zip(self._ids, self._texts, self._meta, strict=True))
            with open(tmp / "documents.jsonl", "w", encoding="utf-8") as handle:
                handle.writelines(lines)
            self._index.save(tmp / "vectors")
            save_embedder_state(self.embedder, tmp / "embedder")
            if self._bm25 is not None and len(self._bm25) == len(self._ids):
                self._bm25.save(tmp / "bm25")
            meta = {"format": FORMAT, "version": VERSION, "embedder": spec, "retriever": self.retriever,
                    "rrf_k": self.rrf_k, "count": len(self._ids), "next_id": self._next_id}
            (tmp / "store.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        logger.info("saved %d documents (%d embedded) to %s", len(self), len(self._embedded), path)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike, embedder: Embedder | None = None, mmap: bool = True
             ) -> Self:
        """Open a store written by :meth:`save`; its embedder is rebuilt from the saved spec unless given."""
        path = Path(path).expanduser()
        if not path.exists():
            raise FileNotFoundError(f"no document store at {str(path)!r}")
        if path.is_file():
            refuse_file(path, "load from")
        meta = read_meta(path)
        spec = meta["embedder"]
        if embedder is None:
            embedder = embedder_from_spec(spec, path / "embedder")
        elif getattr(embedder, "dim", None) != spec.get("dim"):
            raise InputError(f"the embedder given has dim {getattr(embedder, 'dim', None)!r}, but the store at "
                             f"{str(path)!r} holds {spec.get('dim')!r}-dim embeddings ({spec.get('name')!r})")
        store = cls(embedder=embedder, retriever=meta["retriever"], rrf_k=meta["rrf_k"])
        store._ids, store._texts, store._meta = read_documents(path / "documents.jsonl", meta["count"])
        store._next_id = max(int(meta["next_id"]), max(store._ids, default=-1) + 1)
        index = VectorIndex.load(path / "vectors", mmap=mmap)
        if index.dim != store.embedding_dim:
            raise InputError(f"{str(path / 'vectors')!r} holds {index.dim}-dim vectors; the store's embedder "
                             f"gives {store.embedding_dim}")
        stray = np.setdiff1d(index.ids, np.asarray(store._ids, dtype=np.int64))
        if len(stray):
            raise InputError(f"{str(path / 'vectors')!r} holds id {int(stray[0])}, which documents.jsonl lacks; "
                             "the store is corrupt")
        store._index, store._embedded = index, set(index.ids.tolist())
        if (path / "bm25").is_dir():
            store._bm25 = BM25.load(path / "bm25")
        return store
