"""DocumentProcessor: split text into pieces by paragraph, sentence, fixed-size chunk, topic, regex or tokens.

``split_text`` returns the pieces' text, ``chunks`` the same pieces as :class:`rag.chunking.Chunk` with their
character offsets. The size rules every method obeys (``max_length`` hard, ``min_length`` best effort,
``overlap``) are in :mod:`rag.chunking`; boundaries in :mod:`rag.sentences`; the semantic method in
:mod:`rag.semantic`; token windows in :mod:`rag.token_chunks`.
"""

from __future__ import annotations

from collections.abc import Callable

from .chunking import Chunk, chunk_text, validate
from .semantic import semantic_spans
from .sentences import paragraph_spans, sentence_spans
from .sizing import chunk_spans, merge_short, split_long

__all__ = [
    "METHODS", "Chunk", "DocumentProcessor", "chunk_spans", "merge_short", "paragraph_spans", "semantic_spans",
    "sentence_spans", "split_long",
]

#: The methods that measure in characters and need no option (``rag.chunking.METHODS`` adds ``"tokens"``,
#: which needs ``tokenizer=...``).
METHODS = ("paragraph", "sentence", "chunk", "semantic", "regex")


class _HybridMethod:
    """Descriptor: ``DocumentProcessor.split_text(...)`` works on the class (with defaults) and on an instance."""

    def __init__(self, func: Callable):
        self.func = func
        self.__doc__ = func.__doc__

    def __get__(self, instance, owner):
        target = instance if instance is not None else owner()
        return self.func.__get__(target, owner)


class DocumentProcessor:
    """Split documents into pieces for retrieval or training.

    >>> DocumentProcessor().split_text("First part.\\n\\nSecond part.", method="paragraph", min_length=0)
    ['First part.', 'Second part.']
    >>> DocumentProcessor.split_text("A b c. D e f.", method="sentence", min_length=0)
    ['A b c.', 'D e f.']
    >>> [(c.start, c.end) for c in DocumentProcessor.chunks("A b c. D e f.", method="sentence", min_length=0)]
    [(0, 6), (7, 13)]

    ``overlap`` (default 0) works with every method: characters, or tokens for ``method="tokens"``. Options:
    ``chunk``: ``chunk_size`` (default ``max_length``); ``semantic``: ``threshold`` (0-1, default 0.1) and
    ``window`` (sentences, default 3); ``regex``: ``pattern``; ``tokens``: ``tokenizer`` (ours, ``HFTokenizer`` or
    a transformers tokenizer: ``max_length``, ``min_length`` and ``overlap`` then count its tokens).
    """

    def __init__(self, method: str = "paragraph", min_length: int = 50, max_length: int = 1000, **options):
        self.method, self.min_length, self.max_length, self.options = method, min_length, max_length, options
        validate(method, min_length, max_length, options.get("overlap", 0) if method != "chunk" else 0)

    @_HybridMethod
    def chunks(
        self,
        text: str,
        method: str | None = None,
        min_length: int | None = None,
        max_length: int | None = None,
        overlap: int | None = None,
        **options,
    ) -> list[Chunk]:
        """The pieces of ``text`` with their offsets (``text[c.start:c.end] == c.text``), in order."""
        options = {**self.options, **options}
        if overlap is None:
            overlap = options.pop("overlap", 0)
        options.pop("overlap", None)
        return chunk_text(
            text,
            self.method if method is None else method,
            self.min_length if min_length is None else min_length,
            self.max_length if max_length is None else max_length,
            overlap,
            **options,
        )

    @_HybridMethod
    def split_text(
        self,
        text: str,
        method: str | None = None,
        min_length: int | None = None,
        max_length: int | None = None,
        overlap: int | None = None,
        **options,
    ) -> list[str]:
        """Pieces of ``text`` (stripped, in order) split by ``method``; see :mod:`rag.chunking` for sizes."""
        found = self.chunks(text, method=method, min_length=min_length, max_length=max_length, overlap=overlap,
                            **options)
        return [chunk.text for chunk in found]
