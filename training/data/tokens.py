"""Token stores: a tokenized corpus as memory-mapped arrays on disk, cached by content hash.

A store is a folder ``<cache_dir>/<key>/`` holding

* ``tokens.bin``: every token id, little-endian ``uint16`` (vocabularies up to 65,536) or ``uint32``;
  each document is written as ``[eos] + ids`` and the stream ends with one more ``eos``, so it reads
  ``eos A eos B ... eos``;
* ``doc_starts.bin``: ``int64`` offsets of each document's leading ``eos`` (the last entry is the closing one);
* ``header.json``: format, version, dtype, counts, eos id, tokenizer fingerprint, and what was tokenized.

The folder is built under a temporary name and renamed into place, so a reader sees a whole store or none.
``key`` is the sha256 of the format version, the tokenizer fingerprint (:func:`tokenizer_fingerprint`) and the
input: every text with its length (lists), or every file's bytes (:class:`~training.data_windows.TokenFileDataset`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from minillm.atomic import atomic_directory
from minillm.errors import InputError
from minillm.tokenizer_protocol import Tokenizer

logger = logging.getLogger(__name__)
FORMAT, VERSION = "minillm-token-store", 1
_PROBE = "Hello, world! Ünïcödé 你好 🙂 <|endoftext|> 12345\n\n\ttabs  and   spaces."


def encode_plain(tokenizer, text: str) -> list[int]:
    """Ids of ``text`` without the tokenizer's own BOS/EOS (``add_special_tokens=False`` when supported)."""
    try:
        return list(tokenizer.encode(text, add_special_tokens=False))
    except TypeError:
        return list(tokenizer.encode(text))


def encode_many(tokenizer, texts: list[str]) -> list[list[int]]:
    """:func:`encode_plain` for a batch, through ``encode_batch`` when the tokenizer has one."""
    batch = getattr(tokenizer, "encode_batch", None)
    if batch is not None and texts:
        try:
            return [list(ids) for ids in batch(texts, add_special_tokens=False)]
        except TypeError:
            pass
    return [encode_plain(tokenizer, text) for text in texts]


def eos_id(tokenizer: Tokenizer) -> int:
    """``tokenizer.eos_token_id``, which separates documents (HFTokenizer gives [SEP]'s for BERT-style ones);
    an InputError when the tokenizer has none."""
    value = tokenizer.eos_token_id
    if value is None:
        raise InputError(
            f"the tokenizer ({type(tokenizer).__name__}) has eos_token_id None; documents need an end-of-text "
            "token to be separated: set an eos token"
        )
    return int(value)


def tokenizer_fingerprint(tokenizer: Tokenizer) -> str:
    """A short hash of what decides the ids: class, vocabulary size, special ids and a probe encoding."""
    parts = [
        type(tokenizer).__qualname__,
        int(tokenizer.vocab_size),
        eos_id(tokenizer),
        tokenizer.pad_token_id,
        tokenizer.bos_token_id,
        encode_plain(tokenizer, _PROBE),
    ]
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()[:16]


def texts_key(texts: Iterable[str], fingerprint: str, kind: str = "texts") -> str:
    """Cache key of a list of texts (lengths included, so ``["ab", "c"]`` and ``["a", "bc"]`` differ).

    >>> texts_key(["ab", "c"], "f") != texts_key(["a", "bc"], "f")
    True
    """
    digest = hashlib.sha256(f"{FORMAT}/{VERSION}/{kind}/{fingerprint}".encode())
    for text in texts:
        data = text.encode("utf-8", "surrogatepass")
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)
    return digest.hexdigest()


def default_cache_dir() -> Path:
    """``$MINILLM_CACHE/tokens``, else ``~/.cache/minillm/tokens``."""
    from minillm.cache_dir import cache_dir

    return cache_dir() / "tokens"


@dataclass
class TokenStore:
    """A read-only view of a store folder: ``tokens`` and ``doc_starts`` are numpy memmaps."""

    path: Path
    tokens: np.ndarray
    doc_starts: np.ndarray
    header: dict

    @property
    def eos_token_id(self) -> int:
        return int(self.header["eos_token_id"])

    @property
    def num_docs(self) -> int:
        """Documents in the store (the closing eos is not one)."""
        return len(self.doc_starts) - 1

    def __reduce__(self):
        # DataLoader workers started by spawn/forkserver get the path and reopen the memmaps (a pickled memmap
        # would be copied into memory whole).
        return (TokenStore.open, (str(self.path),))

    @classmethod
    def open(cls, path: str | os.PathLike) -> TokenStore:
        """Open a store; ValueError when its header or sizes do not match (a damaged or foreign folder)."""
        path = Path(path)
        try:
            header = json.loads((path / "header.json").read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise InputError(f"{str(path)!r} is not a token store ({exc})") from None
        if header.get("format") != FORMAT or header.get("version") != VERSION:
            raise InputError(
                f"{str(path)!r} has format {header.get('format')!r} v{header.get('version')}, "
                f"expected {FORMAT!r} v{VERSION}"
            )
        dtype = np.dtype(header["dtype"])
        sizes = {
            "tokens.bin": header["num_tokens"] * dtype.itemsize,
            "doc_starts.bin": (header["num_docs"] + 1) * 8,
        }
        for name, size in sizes.items():
            if not (path / name).is_file() or (path / name).stat().st_size != size:
                raise InputError(
                    f"{str(path / name)!r} is missing or not {size} bytes; delete the folder to rebuild"
                )
        tokens = np.memmap(path / "tokens.bin", dtype=dtype, mode="r")
        starts = np.memmap(path / "doc_starts.bin", dtype=np.int64, mode="r")
        return cls(path, tokens, starts, header)


class _Writer:
    """Appends documents to ``tokens.bin`` / ``doc_starts.bin`` in a folder, in bounded memory."""

    def __init__(self, folder: Path, eos: int, vocab_size: int):
        self.dtype = np.dtype("<u2" if vocab_size <= 1 << 16 else "<u4")
        self.limit = 1 << (8 * self.dtype.itemsize)
        self.eos = eos
        self.tokens = open(folder / "tokens.bin", "wb")  # noqa: SIM115 - closed in close()
        self.starts = open(folder / "doc_starts.bin", "wb")  # noqa: SIM115
        self.count = self.docs = 0

    def start_doc(self) -> None:
        np.asarray([self.count], dtype="<i8").tofile(self.starts)
        self.add([self.eos])
        self.docs += 1

    def add(self, ids: list[int]) -> None:
        if not ids:
            return
        array = np.asarray(ids, dtype=np.int64)
        if array.min() < 0 or array.max() >= self.limit:
            raise InputError(
                f"token id {int(array.max())} does not fit the store's {self.dtype.name}; "
                "the tokenizer's len() is smaller than its ids"
            )
        array.astype(self.dtype).tofile(self.tokens)
        self.count += len(array)

    def close(self) -> tuple[int, int]:
        np.asarray([self.count], dtype="<i8").tofile(self.starts)  # the closing eos
        self.add([self.eos])
        self.tokens.close()
        self.starts.close()
        return self.count, self.docs


def build_store(
    key: str,
    fill: Callable[[_Writer], None],
    tokenizer,
    cache_dir: str | os.PathLike | None = None,
    source: str = "",
) -> TokenStore:
    """The store for ``key``: reused when a valid one exists, else built by ``fill(writer)`` atomically."""
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    final = folder / key[:32]
    if final.exists():
        try:
            store = TokenStore.open(final)
            if store.header.get("key") == key:
                logger.info("reusing token store %s (%d tokens)", final, len(store.tokens))
                return store
        except ValueError as exc:
            logger.warning("rebuilding token store: %s", exc)
    eos, size = eos_id(tokenizer), int(tokenizer.vocab_size)
    with atomic_directory(final) as tmp:
        writer = _Writer(tmp, eos, size)
        try:
            fill(writer)
        finally:
            count, docs = writer.close()
        header = {
            "format": FORMAT,
            "version": VERSION,
            "key": key,
            "dtype": writer.dtype.str,
            "num_tokens": count,
            "num_docs": docs,
            "eos_token_id": eos,
            "vocab_size": size,
            "tokenizer": tokenizer_fingerprint(tokenizer),
            "source": source,
        }
        (tmp / "header.json").write_text(json.dumps(header, indent=1))
    logger.info("wrote token store %s (%d documents, %d tokens)", final, docs, count)
    return TokenStore.open(final)


def store_for_texts(
    texts: list[str],
    tokenizer,
    cache_dir: str | os.PathLike | None = None,
    batch_size: int = 256,
    desc: str = "tokenizing",
) -> TokenStore:
    """Tokenize ``texts`` (one document each) into a cached store; a second call with the same texts and
    tokenizer reads the store back without encoding anything but the fingerprint probe."""
    from tqdm.auto import tqdm

    key = texts_key(texts, tokenizer_fingerprint(tokenizer))

    def fill(writer: _Writer) -> None:
        with tqdm(total=len(texts), desc=desc, unit="doc", disable=len(texts) < 10_000) as bar:
            for begin in range(0, len(texts), batch_size):
                batch = texts[begin : begin + batch_size]
                for ids in encode_many(tokenizer, batch):
                    writer.start_doc()
                    writer.add(ids)
                bar.update(len(batch))

    return build_store(key, fill, tokenizer, cache_dir, source=f"{len(texts)} texts")


def batched(items: Iterable[str], size: int) -> Iterator[list[str]]:
    """Lists of up to ``size`` consecutive items.

    >>> list(batched("abcde", 2))
    [['a', 'b'], ['c', 'd'], ['e']]
    """
    batch: list[str] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
