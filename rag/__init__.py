"""rag: document splitting (and, later, the document store, embedders and RAGModel)."""

from .splitters import DocumentProcessor

__all__ = ["DocumentProcessor"]
