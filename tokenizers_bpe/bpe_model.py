"""Applying learned merges to one pre-split word (the encode half of BPE), with a word cache."""

from __future__ import annotations

from itertools import pairwise

from .bytes_map import bytes_to_unicode, text_to_byte_chars
from .errors import TokenizerInputError

_NONE = (1 << 62, -1)  # (rank, id) of a pair that has no merge


def apply_merges(ids: list[int], ranks: dict[tuple[int, int], tuple[int, int]]) -> list[int]:
    """Merge ``ids`` in place: repeatedly the adjacent pair of lowest rank, leftmost first.

    ``ranks`` maps a pair to ``(rank, merged_id)``. This is HF's ``Word::merge_all`` order (a heap on
    (rank, position)); ``pair_ranks[j]`` holds the rank of ``(ids[j], ids[j + 1])``, so each step is one
    ``min`` and one ``index`` in C plus two lookups for the new neighbours.

    Example:
        >>> ranks = {(1, 1): (0, 3), (3, 2): (1, 4)}  # 1+1 -> 3, then 3+2 -> 4
        >>> apply_merges([1, 1, 1, 1, 2], ranks)
        [3, 4]
    """
    get = ranks.get
    none = _NONE
    pair_ranks = [get(pair, none)[0] for pair in pairwise(ids)]
    while pair_ranks:
        best = min(pair_ranks)
        if best == none[0]:
            break
        pos = pair_ranks.index(best)
        merged = get((ids[pos], ids[pos + 1]))[1]
        ids[pos] = merged
        del ids[pos + 1]
        del pair_ranks[pos]
        if pos < len(pair_ranks):
            pair_ranks[pos] = get((merged, ids[pos + 1]), none)[0]
        if pos > 0:
            pair_ranks[pos - 1] = get((ids[pos - 1], merged), none)[0]
    return ids


class BPEModel:
    """A byte-level BPE model: vocabulary, ranked merges and a cache from pre-split word to ids.

    ``vocab`` maps byte-level token strings to ids (normally all 256 byte characters among them); ``merges`` are
    pairs of token strings in rank order. With ``ignore_merges`` (Llama-3), a word that is itself a token
    is returned whole.
    """

    CACHE_SIZE = 200_000

    def __init__(self, vocab: dict[str, int], merges: list[tuple[str, str]], ignore_merges: bool = False):
        self.vocab = vocab
        self.merges = merges
        self.ignore_merges = ignore_merges
        # A byte missing from the vocabulary (SmolLM2 lacks the 21 bytes that rare or invalid UTF-8 needs) is
        # dropped, as HF's BPE does without an unk token; our own vocabularies always hold all 256.
        self.byte_ids = [vocab.get(char) for _, char in sorted(bytes_to_unicode().items())]
        self.complete = None not in self.byte_ids
        self.ranks: dict[tuple[int, int], tuple[int, int]] = {}
        for rank, (left, right) in enumerate(merges):
            ids = (vocab.get(left), vocab.get(right), vocab.get(left + right))
            if None in ids:
                raise TokenizerInputError(
                    f"merge #{rank} {left!r} + {right!r} uses or makes a token missing from the vocabulary; "
                    "every merge's parts and result must be in the vocab"
                )
            self.ranks.setdefault((ids[0], ids[1]), (rank, ids[2]))
        self.cache: dict[str, list[int]] = {}

    def encode_word(self, word: str) -> list[int]:
        """Ids of one pre-split word (cached).

        Example:
            >>> from tokenizers_bpe.bytes_map import byte_alphabet
            >>> vocab = {c: i for i, c in enumerate(byte_alphabet())}
            >>> vocab["Ġh"] = 256
            >>> BPEModel(vocab, [("Ġ", "h")]).encode_word(" hi")
            [256, 72]
        """
        ids = self.cache.get(word)
        if ids is None:
            ids = self._encode_uncached(word)
            if len(self.cache) >= self.CACHE_SIZE:
                self.cache.clear()
            self.cache[word] = ids
        return ids

    def _encode_uncached(self, word: str) -> list[int]:
        if self.ignore_merges:
            whole = self.vocab.get(text_to_byte_chars(word))
            if whole is not None:
                return [whole]
        byte_ids = self.byte_ids
        try:
            data = word.encode("utf-8")
        except UnicodeEncodeError:
            text_to_byte_chars(word)  # raises the ValueError that names the lone surrogate
            raise
        ids = [byte_ids[byte] for byte in data]
        if not self.complete:
            ids = [index for index in ids if index is not None]
        return apply_merges(ids, self.ranks)
