"""WordPiece (BERT) tokenizers: the one HF tokenizer wrapper, :class:`minillm.hf.tokenizer.HFTokenizer`.

Kept so ``from minillm.hf.wordpiece import WordPieceTokenizer`` keeps working.
"""

from __future__ import annotations

from .tokenizer import HFTokenizer, WordPieceTokenizer

__all__ = ["HFTokenizer", "WordPieceTokenizer"]
