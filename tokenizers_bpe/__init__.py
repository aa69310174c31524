"""tokenizers_bpe: a hand-written byte-level BPE that trains fast and encodes exactly like HF tokenizers.

It never imports transformers or tokenizers; tests and bench/bench_tokenizer.py compare against them.
"""

from .chat_template import CHATML_TEMPLATE
from .errors import TokenizerInputError, UnsupportedTokenizerError
from .pretokenize import GPT2_PATTERN, GPT4_PATTERN, LLAMA3_PATTERN
from .roles import ROLES
from .special_tokens import AddedToken
from .tokenizer import DEFAULT_SPECIAL_TOKENS, BPETokenizer

__all__ = [
    "CHATML_TEMPLATE",
    "DEFAULT_SPECIAL_TOKENS",
    "GPT2_PATTERN",
    "GPT4_PATTERN",
    "LLAMA3_PATTERN",
    "ROLES",
    "AddedToken",
    "BPETokenizer",
    "TokenizerInputError",
    "UnsupportedTokenizerError",
]
