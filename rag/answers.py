"""What RAGModel returns: numbered sources, the answer with its citations, and a stream of answer text."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from .prompting import FittedPrompt

__all__ = ["RAGAnswer", "RAGStream", "Source"]

_CITATION = re.compile(r"\[(\d+)\]")


@dataclass(frozen=True)
class Source:
    """A retrieved passage: its number in the prompt ([n]), text, metadata, retrieval score and store id."""

    number: int
    text: str
    metadata: dict[str, Any]
    score: float
    doc_id: Any = None
    truncated: bool = False  # only part of the passage fitted the context


@dataclass
class RAGAnswer:
    """The answer text and the sources the prompt held (``str(answer)`` is the text)."""

    text: str
    sources: list[Source]
    prompt: str = ""
    prompt_tokens: int = 0
    chat: bool = False

    @property
    def cited(self) -> list[int]:
        """The source numbers the answer cites, in order of first citation."""
        numbers = [int(n) for n in _CITATION.findall(self.text)]
        return list(dict.fromkeys(n for n in numbers if 1 <= n <= len(self.sources)))

    def __str__(self) -> str:
        return self.text


@dataclass
class RAGStream:
    """Text pieces of an answer as they are generated; ``sources`` are known before the first piece and
    ``answer`` (a :class:`RAGAnswer`) once the stream is exhausted."""

    sources: list[Source]
    prompt: FittedPrompt
    _pieces: Iterator[str]
    answer: RAGAnswer | None = field(default=None)

    def __iter__(self) -> Iterator[str]:
        return self._pieces
