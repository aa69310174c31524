"""T5 span corruption: the seq2seq objective on plain text (what ``objective="seq2seq"`` does with text items).

Each row of up to ``max_length - 1`` tokens of one document loses about ``noise_density`` (15%) of its tokens in
spans of mean length ``mean_span`` (3). The input keeps the rest, with one sentinel token (``<extra_id_0>``,
``<extra_id_1>``, ...) in place of each dropped span; the target lists each sentinel followed by the span it
replaced. Both end with ``eos``. Span lengths follow T5's ``random_spans_noise_mask``: the noise tokens and the
kept tokens are each cut into ``num_spans`` non-empty pieces at random, the row alternates kept, noise, kept,
noise, and (``random_roll``, as T5 offers) the whole mask is rotated by a random offset so short rows are not
always masked at their end.

Worked example (20 tokens, ``noise_density=0.3``: 6 noise tokens in 2 spans; sentinels 900 and 901)::

    ids     = 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29
    inputs  = 10 11 900 15 16 17 18 19 20 21 901 25 26 27 28 29
    targets = 900 12 13 14 901 22 23 24

    >>> import numpy as np
    >>> ids = list(range(10, 30))
    >>> inputs, targets = corrupt_spans(ids, np.random.default_rng(1), 0.3, sentinel_ids=[900, 901])
    >>> inputs
    [10, 11, 900, 15, 16, 17, 18, 19, 20, 21, 901, 25, 26, 27, 28, 29]
    >>> targets
    [900, 12, 13, 14, 901, 22, 23, 24]
    >>> restore_spans(inputs, targets, [900, 901]) == ids
    True

:class:`SpanCorruptionDataset` reads the rows out of the token store the other plain-text objectives use and
corrupts each on ``__getitem__`` with a generator seeded by ``(seed, index)``, so a row's corruption does not
depend on worker count or the order rows are read; the same row gets the same corruption every epoch.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from minillm.errors import InputError
from minillm.tokenizer_protocol import Tokenizer

from .tokens import TokenStore, eos_id
from .windows import TokenWindowDataset

SENTINEL_FORMAT = "<extra_id_{}>"
DEFAULT_SENTINELS = 32


def sentinel_tokens(count: int = DEFAULT_SENTINELS) -> tuple[str, ...]:
    """The sentinel token texts ``<extra_id_0>`` ... ``<extra_id_{count-1}>`` (T5's names).

    >>> sentinel_tokens(2)
    ('<extra_id_0>', '<extra_id_1>')
    """
    return tuple(SENTINEL_FORMAT.format(i) for i in range(count))


def sentinel_ids(tokenizer: Tokenizer) -> list[int]:
    """Ids of ``<extra_id_0>``, ``<extra_id_1>``, ... in order (``tokenizer.token_to_id``), up to the first one
    the tokenizer lacks; an InputError naming ``<extra_id_0>`` when it has none."""
    found: list[int] = []
    while (index := tokenizer.token_to_id(SENTINEL_FORMAT.format(len(found)))) is not None:
        found.append(int(index))
    if not found:
        raise InputError(
            f"objective 'seq2seq' on plain text (T5 span corruption) needs sentinel tokens "
            f"{SENTINEL_FORMAT.format(0)!r}, {SENTINEL_FORMAT.format(1)!r}, ... in the tokenizer; "
            f"{type(tokenizer).__name__} has no {SENTINEL_FORMAT.format(0)!r}: add them as special tokens, "
            "or train on {'source','target'} items"
        )
    return found


def _partition(num_items: int, num_segments: int, rng: np.random.Generator) -> list[int]:
    """Random lengths (each >= 1) of ``num_segments`` consecutive pieces of ``num_items`` items."""
    if num_segments == 1:
        return [num_items]
    cuts = np.sort(rng.choice(np.arange(1, num_items), num_segments - 1, replace=False))
    return np.diff(np.concatenate([[0], cuts, [num_items]])).tolist()


def corrupt_spans(
    ids: Sequence[int],
    rng: np.random.Generator,
    noise_density: float = 0.15,
    mean_span: float = 3.0,
    *,
    sentinel_ids: Sequence[int],
    random_roll: bool = True,
) -> tuple[list[int], list[int]]:
    """(inputs, targets) of T5 span corruption of ``ids`` (no eos added; see the module docstring).

    ``round(len(ids) * noise_density)`` tokens (at least 1, at most all but one) are noise, in
    ``round(noise / mean_span)`` spans (at least 1, at most ``len(sentinel_ids)``: with fewer sentinels than
    spans, the spans get longer). ``random_roll`` (T5's option of that name) rotates the noise mask by a random
    offset: without it a row short enough for one span always loses its last tokens, and every row starts with
    kept tokens. Rows of fewer than 2 tokens are returned as they are with an empty target.
    """
    if not 0.0 < noise_density < 1.0:
        raise InputError(f"noise_density={noise_density!r} must be in (0, 1)")
    if not mean_span >= 1.0:
        raise InputError(f"mean_span={mean_span!r} must be >= 1")
    if not sentinel_ids:
        raise InputError("sentinel_ids is empty; span corruption needs at least one sentinel token id")
    ids = list(ids)
    length = len(ids)
    if length < 2:
        return ids, []
    num_noise = min(max(round(length * noise_density), 1), length - 1)
    num_spans = max(1, min(round(num_noise / mean_span), len(sentinel_ids), length - num_noise))
    noise_lengths = _partition(num_noise, num_spans, rng)
    keep_lengths = _partition(length - num_noise, num_spans, rng)
    mask = np.zeros(length, dtype=bool)  # (T,) True on noise: keep, noise, keep, noise, ...
    pos = 0
    for keep, noise in zip(keep_lengths, noise_lengths):
        mask[pos + keep : pos + keep + noise] = True
        pos += keep + noise
    if random_roll:
        rolled = np.roll(mask, int(rng.integers(length)))
        opens = int(rolled[0]) + int(np.count_nonzero(rolled[1:] & ~rolled[:-1]))
        if opens <= len(sentinel_ids):  # a span cut in two by the wrap needs one sentinel more
            mask = rolled
    inputs: list[int] = []
    targets: list[int] = []
    span, previous = 0, False
    for token, noisy in zip(ids, mask.tolist()):
        if noisy and not previous:
            inputs.append(int(sentinel_ids[span]))
            targets.append(int(sentinel_ids[span]))
            span += 1
        (targets if noisy else inputs).append(token)
        previous = noisy
    return inputs, targets


def restore_spans(inputs: Sequence[int], targets: Sequence[int], sentinel_ids: Sequence[int]) -> list[int]:
    """The original ids: each sentinel in ``inputs`` replaced by the tokens after it in ``targets``."""
    sentinels = {int(s) for s in sentinel_ids}
    spans: dict[int, list[int]] = {}
    current: list[int] | None = None
    for token in targets:
        if token in sentinels:
            current = spans.setdefault(int(token), [])
        elif current is not None:
            current.append(int(token))
    out: list[int] = []
    for token in inputs:
        out += spans.get(int(token), []) if token in sentinels else [int(token)]
    return out


class SpanCorruptionDataset(Dataset):
    """Rows ``{"input_ids", "labels"}`` (lists of ints) of span-corrupted document windows of a token store.

    ``windows`` yields ``{"input_ids"}`` rows of at most ``max_length - 1`` tokens (see :meth:`from_store`);
    row ``i`` is corrupted with ``np.random.default_rng([seed, i])``, ``eos`` is appended to the input and the
    target, and both are cut to ``max_length`` (the input never needs it: each span of >= 1 tokens becomes one
    sentinel).
    """

    def __init__(
        self,
        windows: Dataset,
        sentinel_ids: Sequence[int],
        eos_token_id: int,
        max_length: int,
        seed: int = 42,
        noise_density: float = 0.15,
        mean_span: float = 3.0,
    ):
        if not sentinel_ids:
            raise InputError("sentinel_ids is empty; span corruption needs at least one sentinel token id")
        # checks noise_density and mean_span now rather than on the first row
        corrupt_spans([0, 1], np.random.default_rng(0), noise_density, mean_span, sentinel_ids=[0])
        self.windows, self.sentinel_ids = windows, [int(s) for s in sentinel_ids]
        self.eos, self.max_length, self.seed = int(eos_token_id), int(max_length), int(seed) % 2**63
        self.noise_density, self.mean_span = noise_density, mean_span

    @classmethod
    def from_store(
        cls, store: TokenStore, tokenizer: Tokenizer, max_length: int, seed: int = 42, **options: float
    ) -> SpanCorruptionDataset:
        """One row per document window of ``max_length - 1`` tokens (room for the eos), the tokenizer's
        sentinels (ValueError naming ``<extra_id_0>`` when it has none) and eos."""
        sentinels = sentinel_ids(tokenizer)
        windows = TokenWindowDataset(store, max_length - 1, "mlm")
        return cls(windows, sentinels, eos_id(tokenizer), max_length, seed, **options)

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, index: int) -> dict[str, list[int]]:
        ids = self.windows[index]["input_ids"]
        ids = ids.tolist() if torch.is_tensor(ids) else list(ids)
        rng = np.random.default_rng([self.seed, int(index)])
        inputs, targets = corrupt_spans(
            ids, rng, self.noise_density, self.mean_span, sentinel_ids=self.sentinel_ids
        )
        return {
            "input_ids": (inputs + [self.eos])[: self.max_length],
            "labels": (targets + [self.eos])[: self.max_length],
        }
