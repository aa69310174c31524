"""The ``tokens`` method: windows measured in a tokenizer's tokens, so each chunk fits a model's or embedder's window.

Any tokenizer with ``encode(text, add_special_tokens=False)`` works: our ``BPETokenizer``, ``HFTokenizer``, or a
transformers tokenizer itself. Counts leave out the special tokens a tokenizer adds around a text (BERT's
``[CLS]``/``[SEP]``), so leave room for them in ``max_length``.

Words (runs of non-space characters) are the units, each counted with the whitespace before it (as byte-level
BPE and SentencePiece see it); a word longer than the whole window is cut into pieces that fit. A window takes words while their counted tokens fit; when text remains, it ends at the last sentence end in
its second half, if there is one. Word counts are added up as an estimate, and every chunk is then encoded
exactly and shortened until it fits, so ``max_length`` is a hard limit whatever the tokenizer merges across words.
With ``overlap``, the next window starts at the last word from which at least ``overlap`` tokens of the previous
chunk are repeated (or as many as still let the window move forward).
"""

from __future__ import annotations

import re
from typing import Any

from minillm.errors import InputError

from .sentences import Span, sentence_spans

_WORDS = re.compile(r"\S+")


class TokenCounter:
    """Token counts of strings under one tokenizer, with a cache for the (short, repeated) word counts."""

    def __init__(self, tokenizer: Any) -> None:
        if isinstance(tokenizer, (str, bytes)) or not callable(getattr(tokenizer, "encode", None)):
            raise InputError(
                f"method='tokens' needs tokenizer=... with an encode(text) method (a BPETokenizer, HFTokenizer or "
                f"transformers tokenizer); got {type(tokenizer).__name__}"
            )
        self.tokenizer = tokenizer
        self._cache: dict[str, int] = {}

    def __call__(self, text: str) -> int:
        """Tokens of ``text`` without the tokenizer's added special tokens."""
        return len(self.tokenizer.encode(text, add_special_tokens=False))

    def word(self, word: str) -> int:
        """Cached count of one word (with the whitespace before it)."""
        count = self._cache.get(word)
        if count is None:
            count = self._cache[word] = self(word)
        return count


def _units(text: str, count: TokenCounter, max_tokens: int) -> list[tuple[int, int, int]]:
    """``(start, end, estimated tokens)`` of every word; a word over ``max_tokens`` is cut into fitting pieces."""
    units, previous_end = [], 0
    for match in _WORDS.finditer(text):
        start, end = match.span()
        tokens = count.word(text[previous_end:end] if previous_end else match.group())  # with its leading space
        previous_end = end
        while tokens > max_tokens:
            low, high = 1, end - start - 1  # the longest prefix that fits, by bisection
            while low < high:
                mid = (low + high + 1) // 2
                low, high = (mid, high) if count(text[start:start + mid]) <= max_tokens else (low, mid - 1)
            piece = count(text[start:start + low])
            if piece > max_tokens:
                raise InputError(
                    f"max_length={max_tokens} tokens cannot hold even one character of {text[start:start + 1]!r} "
                    f"({piece} tokens); use a larger max_length"
                )
            units.append((start, start + low, piece))
            start += low
            tokens = count(text[start:end])
        units.append((start, end, tokens))
    return units


def token_spans(
    text: str, tokenizer: Any, max_tokens: int, min_tokens: int = 0, overlap: int = 0
) -> list[tuple[Span, int]]:
    """``((start, end), tokens)`` of every chunk, in order; see the module docstring.

    >>> class Chars:  # one token per character
    ...     def encode(self, text, add_special_tokens=True): return list(text)
    >>> t = "One two. Three four five. Six."
    >>> [t[a:b] for (a, b), n in token_spans(t, Chars(), 20)]
    ['One two.', 'Three four five.', 'Six.']
    >>> [t[a:b] for (a, b), n in token_spans(t, Chars(), 20, overlap=4)]
    ['One two.', 'two. Three four', 'four five. Six.']
    """
    count = TokenCounter(tokenizer)
    units = _units(text, count, max_tokens)
    if not units:
        return []
    estimate = sum(u[2] for u in units)
    if min_tokens and estimate < 2 * min_tokens and count(text[units[0][0]:units[-1][1]]) < min_tokens:
        return []
    sentence_ends = {end for _, end in sentence_spans(text)}
    n, chunks = len(units), []

    def window(i: int, floor: int) -> tuple[int, int]:
        """End index (exclusive) and exact tokens of the window starting at unit ``i``; it ends past ``floor``."""
        j, total = i, 0
        while j < n and total + units[j][2] <= max_tokens:
            total += units[j][2]
            j += 1
        j = max(j, i + 1)
        if j < n:
            for k in range(j, max(i + (j - i + 1) // 2, floor + 1) - 1, -1):
                if units[k - 1][1] in sentence_ends:
                    j = k
                    break
        exact = count(text[units[i][0]:units[j - 1][1]])
        while exact > max_tokens and j > i + 1:
            j -= 1
            exact = count(text[units[i][0]:units[j - 1][1]])
        return j, exact

    i, (j, exact) = 0, window(0, 0)
    while True:
        chunks.append(((units[i][0], units[j - 1][1]), exact))
        if j >= n:
            break
        nxt, shared = j, 0
        while overlap and nxt - 1 > i and shared < overlap:
            nxt -= 1
            shared += units[nxt][2]
        following = window(nxt, j)
        while following[0] <= j:  # the next window must reach past this one
            nxt += 1
            following = window(nxt, j)
        i, (j, exact) = nxt, following
    if len(chunks) > 1 and chunks[-1][1] < min_tokens:
        (start, _), (_, stop) = chunks[-2][0], chunks[-1][0]
        merged = count(text[start:stop])
        if merged <= max_tokens:
            chunks[-2:] = [((start, stop), merged)]
    return chunks
