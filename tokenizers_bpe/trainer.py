"""The BPE training algorithm: word counting, then incremental merges.

The corpus is reduced to its unique pre-split words with counts (:func:`count_words`), so each merge touches
only the words that hold the merged pair (:func:`learn_merges`):

* ``pair_counts``: pair -> weighted number of occurrences, updated only where a merge happens;
* a max-heap (``heapq`` on negated counts) of ``(count, pair, words)`` entries with lazy deletion: a popped
  entry whose count is stale is pushed back with the current count instead of being searched for and
  removed; ``words`` is the index from the pair to the words that hold it;
* after merging pair (a, b) into c in a word, the neighbours' pairs (x, a) and (b, y) lose the word's count
  and (x, c), (c, y) gain it; every pair that gained gets a fresh heap entry with the words where it did.

Tie-break (the same as HF ``BpeTrainer``, checked by tests/tokenizers_bpe/test_training_agreement.py): the
highest count wins; between equal counts the pair with the smallest ids wins, compared first on the left
id, then the right id. Ids are given in creation order: special tokens, then the 256 byte characters sorted
by code point, then each merge's new token, so the rule favours older tokens, not smaller strings.
"""

from __future__ import annotations

import heapq
import logging
from collections import Counter
from collections.abc import Callable, Iterable

from tqdm.auto import tqdm

from .bytes_map import byte_alphabet, bytes_to_unicode
from .errors import TokenizerInputError

logger = logging.getLogger(__name__)

_SHIFT = 32  # a pair (a, b) is stored as the int a << 32 | b: faster to hash and compare than a tuple
_MASK = (1 << _SHIFT) - 1


def count_words(
    texts: Iterable[str],
    split: Callable[[str], list[str]],
    show_progress: bool = True,
) -> Counter[str]:
    """Count the pre-split words of every text, streaming: only the counts are kept, never the corpus.

    Example:
        >>> count_words(["a b a", "b"], str.split, show_progress=False)
        Counter({'a': 2, 'b': 2})
    """
    counts: Counter[str] = Counter()
    total = len(texts) if hasattr(texts, "__len__") else None
    for index, text in enumerate(tqdm(texts, total=total, desc="count words", disable=not show_progress)):
        if not isinstance(text, str):
            raise TokenizerInputError(
                f"training text #{index} is a {type(text).__name__}, not a str; pass strings"
            )
        counts.update(split(text))
    return counts


def initial_vocab(special_tokens: list[str]) -> list[str]:
    """Tokens before any merge, in id order: the special tokens, then the byte alphabet.

    Example:
        >>> vocab = initial_vocab(["<|endoftext|>"])
        >>> len(vocab), vocab[:3]
        (257, ['<|endoftext|>', '!', '"'])
    """
    tokens = list(dict.fromkeys(special_tokens))
    return tokens + [char for char in byte_alphabet() if char not in set(tokens)]


def learn_merges(
    word_counts: dict[str, int],
    vocab_size: int,
    special_tokens: list[str],
    min_frequency: int = 0,
    show_progress: bool = True,
) -> tuple[list[str], list[tuple[str, str]]]:
    """Learn merges until the vocabulary (specials + bytes + merges) holds ``vocab_size`` tokens.

    Returns ``(id_to_token, merges)``: tokens in id order and merges in rank order, as byte-level strings.
    Stops early when no pair occurs at least ``max(1, min_frequency)`` times.

    Example:
        >>> tokens, merges = learn_merges({"aaab": 3, "ab": 1}, 259, [], show_progress=False)
        >>> merges, tokens[256:]
        ([('a', 'a'), ('a', 'b'), ('aa', 'ab')], ['aa', 'ab', 'aaab'])
    """
    id_to_token = initial_vocab(special_tokens)
    token_to_id = {token: index for index, token in enumerate(id_to_token)}
    byte_ids = [token_to_id[char] for _, char in sorted(bytes_to_unicode().items())]
    words: list[list[int]] = []
    counts: list[int] = []
    for word, count in word_counts.items():
        words.append([byte_ids[byte] for byte in word.encode("utf-8")])
        counts.append(count)

    pair_counts: dict[int, int] = {}
    where: dict[int, set[int]] = {}
    for index, word in enumerate(words):
        count = counts[index]
        for pos in range(len(word) - 1):
            key = word[pos] << _SHIFT | word[pos + 1]
            pair_counts[key] = pair_counts.get(key, 0) + count
            if key in where:
                where[key].add(index)
            else:
                where[key] = {index}
    serial = 0  # keeps heap entries with equal (count, pair) comparable without comparing the sets
    heap = []
    for key, count in pair_counts.items():
        heap.append((-count, key, serial, where[key]))
        serial += 1
    heapq.heapify(heap)
    del where

    merges: list[tuple[int, int]] = []
    threshold = max(1, min_frequency)
    bar = tqdm(total=max(0, vocab_size - len(id_to_token)), desc="merges", disable=not show_progress)
    while len(id_to_token) < vocab_size and heap:
        neg_count, key, _, positions = heapq.heappop(heap)
        current = pair_counts[key]
        if -neg_count != current:  # stale entry: lazy deletion, push back with the true count
            if current > 0:
                heapq.heappush(heap, (-current, key, serial, positions))
                serial += 1
            continue
        if current < threshold:
            break
        left, right = key >> _SHIFT, key & _MASK
        token = id_to_token[left] + id_to_token[right]
        new_id = token_to_id.get(token)
        if new_id is None:
            new_id = len(id_to_token)
            id_to_token.append(token)
            token_to_id[token] = new_id
        merges.append((left, right))
        updated = _merge_words(words, counts, positions, left, right, new_id, pair_counts)
        for pair, holders in updated.items():
            count = pair_counts[pair]
            if count > 0:
                heapq.heappush(heap, (-count, pair, serial, holders))
                serial += 1
        bar.update(1)
    bar.close()
    if len(id_to_token) < vocab_size:
        logger.info(
            "training stopped at %d tokens (asked for %d): no pair left", len(id_to_token), vocab_size
        )
    return id_to_token, [(id_to_token[a], id_to_token[b]) for a, b in merges]


def _merge_words(
    words: list[list[int]],
    counts: list[int],
    positions: set[int],
    left: int,
    right: int,
    new_id: int,
    pair_counts: dict[int, int],
) -> dict[int, set[int]]:
    """Replace (left, right) by ``new_id`` in the given words, left to right without overlap.

    Updates ``pair_counts`` in place and returns, for each pair that gained occurrences, the words where.
    """
    updated: dict[int, set[int]] = {}
    for index in positions:
        word = words[index]
        count = counts[index]
        pos = -1
        while True:
            try:
                pos = word.index(left, pos + 1)
            except ValueError:
                break
            if pos + 1 >= len(word) or word[pos + 1] != right:
                continue
            if pos > 0:
                before = word[pos - 1]
                key = before << _SHIFT | left
                pair_counts[key] -= count
                key = before << _SHIFT | new_id
                pair_counts[key] = pair_counts.get(key, 0) + count
                if key in updated:
                    updated[key].add(index)
                else:
                    updated[key] = {index}
            word[pos] = new_id
            del word[pos + 1]
            if pos + 1 < len(word):
                after = word[pos + 1]
                key = right << _SHIFT | after
                pair_counts[key] -= count
                key = new_id << _SHIFT | after
                pair_counts[key] = pair_counts.get(key, 0) + count
                if key in updated:
                    updated[key].add(index)
                else:
                    updated[key] = {index}
    return updated
