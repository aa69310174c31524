"""tokenizers_bpe."""
