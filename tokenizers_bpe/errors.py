"""The tokenizer's input errors (tokenizers_bpe imports nothing of minillm, so it has its own classes)."""

from __future__ import annotations


class TokenizerInputError(ValueError):
    """A validated user error of the tokenizer (bad vocab_size, a corrupt tokenizer.json ...): one line, exit 2."""


class UnsupportedTokenizerError(TokenizerInputError):
    """A well-formed ``tokenizer.json`` of a kind this package does not run (WordPiece, Unigram, byte-fallback
    BPE, a Metaspace pre-tokenizer ...). Callers may hand such a file to transformers instead; a broken file
    (not JSON, no ``model``, malformed merges) raises the plain :class:`TokenizerInputError`."""
