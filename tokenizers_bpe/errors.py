"""The tokenizer's input error (tokenizers_bpe imports nothing of minillm, so it has its own class)."""

from __future__ import annotations


class TokenizerInputError(ValueError):
    """A validated user error of the tokenizer (bad vocab_size, a corrupt tokenizer.json ...): one line, exit 2."""
