"""rag: splitting documents, vector search, embedders, a safe document store, and retrieval-augmented generation.

The encoder embedder and RAGModel are imported on first use (they load the model code).
"""

from __future__ import annotations

import importlib
from typing import Any

from .bm25 import BM25
from .chunking import Chunk
from .document_store import SearchResult, SimpleDocumentStore
from .embedders import Embedder, HashedEmbedder, register_embedder
from .faiss_index import FaissIndex
from .hybrid import reciprocal_rank_fusion
from .splitters import DocumentProcessor
from .vector_index import VectorIndex, create_index, open_index

_LAZY = {"EncoderEmbedder": "encoder_embedder", "RAGModel": "rag_model", "RAGAnswer": "answers",
         "Source": "answers"}

__all__ = ["BM25", "Chunk", "DocumentProcessor", "Embedder", "EncoderEmbedder", "FaissIndex", "HashedEmbedder",
           "RAGAnswer", "RAGModel", "SearchResult", "SimpleDocumentStore", "Source", "VectorIndex", "create_index",
           "open_index", "reciprocal_rank_fusion", "register_embedder"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'rag' has no attribute {name!r}")
