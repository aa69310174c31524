"""Datasets that read rows out of a token store (memory-mapped), never holding the corpus in RAM.

``TokenWindowDataset(store, max_length, mode)`` with mode

* ``"packed"`` (clm): row ``i`` is ``tokens[s + i*T : s + (i+1)*T]`` of the stream ``eos A eos B ... eos``,
  where the shift ``s`` is 0 in epoch 0 and moves by about 0.62 T each epoch (:meth:`set_epoch`), so a model
  trained for many epochs never sees the same windows twice in a row (the sweep in bench/sweep_recipe.py measured
  what fixed windows cost: they are memorized); ``segment_ids``
  number the documents inside the row (each ``eos`` opens the next document, like a BOS), so attention never
  crosses documents and positions restart per document. ``labels == input_ids``: the model's internal shift
  makes every token a target, predicted from its own document, except each separator ``eos``, which is
  predicted from the end of the previous document (meaning "that document ends here"). Long documents simply
  continue into the next row.
* ``"documents"`` (clm, no packing): one row per document, ``A + [eos]``, long ones cut into windows of T;
* ``"mlm"``: one row per document window of ``A`` (wrapped in CLS/SEP when the tokenizer has them).

``TokenFileDataset(path, tokenizer, max_length)`` builds (or reuses) the store of a text file or folder by
streaming it: it never reads a whole file into one string.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from minillm.errors import InputError
from minillm.tokenizer_protocol import Tokenizer

from .text import check_errors_mode, iter_paragraphs, list_text_files
from .tokens import FORMAT, VERSION, TokenStore, batched, build_store, encode_many, tokenizer_fingerprint

MODES = ("packed", "documents", "mlm")
SHIFT_FRACTION = 0.618034  # the golden ratio's fraction: epoch shifts spread evenly over a window


class TokenWindowDataset(Dataset):
    """Rows of at most ``max_length`` tokens from a :class:`TokenStore`; items are dicts of 1-D tensors."""

    def __init__(
        self,
        store: TokenStore,
        max_length: int,
        mode: str = "packed",
        wrap: tuple[int, int] | None = None,
        rows: slice | None = None,
    ):
        if mode not in MODES:
            raise InputError(f"mode={mode!r} is unknown; valid: {', '.join(MODES)}")
        if not isinstance(max_length, int) or max_length < 2 + 2 * (wrap is not None):
            raise InputError(f"max_length={max_length!r} is too small; need an int >= 2")
        self.store, self.max_length, self.mode, self.wrap = store, max_length, mode, wrap
        if mode == "packed":
            total = len(store.tokens)
            count = (total + max_length - 1) // max_length
            if count and total - (count - 1) * max_length < 2:  # a lone closing eos is no training row
                count -= 1
            self._starts = None
            self._count = count
            self._shift = 0
        else:
            self._starts, self._lengths = self._document_rows()
            self._count = len(self._starts)
        whole = range(self._count)
        self._rows = whole[rows] if rows is not None else whole

    def _document_rows(self) -> tuple[np.ndarray, np.ndarray]:
        starts = np.asarray(self.store.doc_starts, dtype=np.int64)
        begin = starts[:-1] + 1
        end = starts[1:] + (1 if self.mode == "documents" else 0)  # documents: keep the closing eos
        size = self.max_length - (2 if self.wrap else 0)
        length = end - begin
        windows = (length + size - 1) // size
        row_doc = np.repeat(np.arange(len(begin)), windows)
        first_row = np.cumsum(windows) - windows
        offset = (np.arange(len(row_doc)) - np.repeat(first_row, windows)) * size
        row_start = begin[row_doc] + offset
        row_len = np.minimum(size, end[row_doc] - row_start)
        return row_start, row_len

    def __len__(self) -> int:
        return len(self._rows)

    def set_epoch(self, epoch: int) -> None:
        """Shift packed windows for ``epoch`` (deterministic, so a resumed run reads the same rows).

        >>> [round(((e * 0.618034) % 1) * 100) for e in range(4)]   # shifts for T=100
        [0, 62, 24, 85]
        """
        if self._starts is None:
            self._shift = int(((epoch * SHIFT_FRACTION) % 1.0) * self.max_length)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        row = self._rows[index]
        if self._starts is None:
            # a shifted row never reads past this dataset's last row (a split's train rows stop where val begins)
            limit = min(len(self.store.tokens), (self._rows[-1] + 1) * self.max_length)
            start = row * self.max_length + self._shift
            if start + 2 > limit:  # the shifted last row would be (almost) empty: read it unshifted
                start = row * self.max_length
            ids = np.asarray(self.store.tokens[start : min(start + self.max_length, limit)], dtype=np.int64)
            positions = np.arange(start, start + len(ids))
            doc = np.searchsorted(self.store.doc_starts, positions, side="right") - 1
            input_ids = torch.from_numpy(ids)
            return {
                "input_ids": input_ids,
                "labels": input_ids.clone(),
                "segment_ids": torch.from_numpy(doc - doc[0]),
            }
        start, length = int(self._starts[row]), int(self._lengths[row])
        ids = np.asarray(self.store.tokens[start : start + length], dtype=np.int64)
        if self.wrap:
            ids = np.concatenate([[self.wrap[0]], ids, [self.wrap[1]]])
        input_ids = torch.from_numpy(ids)
        if self.mode == "mlm":
            return {"input_ids": input_ids}
        return {"input_ids": input_ids, "labels": input_ids.clone()}

    def split(self, val_fraction: float) -> tuple[TokenWindowDataset, TokenWindowDataset]:
        """(train, val): the last ``val_fraction`` of the rows is val (contiguous, so no text is in both)."""
        if not 0 < val_fraction < 1:
            raise InputError(f"val_fraction={val_fraction!r} must be in (0, 1)")
        n_val = int(len(self) * val_fraction)
        if n_val == 0 or n_val == len(self):
            raise InputError(
                f"{len(self)} rows of max_length={self.max_length} cannot be split with "
                f"val_fraction={val_fraction}; use more data or a smaller max_length"
            )
        cut = len(self) - n_val
        return self._subset(slice(0, cut)), self._subset(slice(cut, len(self)))

    def _subset(self, rows: slice) -> TokenWindowDataset:
        twin = object.__new__(type(self))
        twin.__dict__.update(self.__dict__)
        twin._rows = self._rows[rows]
        return twin


class TokenFileDataset(TokenWindowDataset):
    """A text file (or folder of .txt/.md files) tokenized once into a cached store, read by windows.

    ``documents="file"`` makes each file one document; ``"paragraph"`` makes each blank-line separated
    paragraph one (packed with ``segment_ids`` so they do not see each other). The file is read in
    ``chunk_bytes`` pieces and tokenized paragraph by paragraph; the cache key hashes the files' bytes.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        tokenizer: Tokenizer,
        max_length: int,
        mode: str = "packed",
        cache_dir: str | os.PathLike | None = None,
        encoding_errors: str = "strict",
        documents: str = "file",
        chunk_bytes: int = 1 << 20,
        batch_size: int = 64,
    ):
        from tqdm.auto import tqdm

        check_errors_mode(encoding_errors)
        if documents not in ("file", "paragraph"):
            raise InputError(f"documents={documents!r} is unknown; valid: file, paragraph")
        root = Path(path)
        files = list_text_files(root)
        key = _files_key(
            root, files, tokenizer_fingerprint(tokenizer), f"{documents}/{encoding_errors}", chunk_bytes
        )
        total = sum(f.stat().st_size for f in files)
        if total == 0:
            raise InputError(f"data path {str(root)!r} is empty (no text to train on)")

        def fill(writer) -> None:
            with tqdm(
                total=total,
                desc=f"tokenizing {root.name}",
                unit="B",
                unit_scale=True,
                disable=total < 1 << 24,
            ) as bar:
                for file in files:
                    if documents == "file":
                        writer.start_doc()
                    pieces = iter_paragraphs(file, encoding_errors, chunk_bytes)
                    for batch in batched(pieces, batch_size):
                        texts = [p.strip() for p in batch] if documents == "paragraph" else batch
                        for text, ids in zip(texts, encode_many(tokenizer, texts)):
                            if documents == "paragraph":
                                if not text:
                                    continue
                                writer.start_doc()
                            writer.add(ids)
                        bar.update(sum(len(p.encode("utf-8", "surrogatepass")) for p in batch))

        store = build_store(key, fill, tokenizer, cache_dir, source=str(root))
        if store.header["num_tokens"] <= store.header["num_docs"] + 1:
            raise InputError(f"data path {str(root)!r} has no text to train on (only whitespace)")
        wrap = _cls_sep(tokenizer) if mode == "mlm" else None
        super().__init__(store, max_length, mode, wrap)


def _cls_sep(tokenizer: Tokenizer) -> tuple[int, int] | None:
    """(CLS, SEP) ids that wrap each MLM row, for tokenizers that have both (HFTokenizer of a BERT vocabulary).

    They are optional extras beyond :class:`~minillm.tokenizer_protocol.Tokenizer` (our BPE has neither), so
    they are the one thing looked up with ``getattr``.
    """
    cls, sep = getattr(tokenizer, "cls_token_id", None), getattr(tokenizer, "sep_token_id", None)
    return (int(cls), int(sep)) if cls is not None and sep is not None else None


def _files_key(root: Path, files: list[Path], fingerprint: str, options: str, block: int = 1 << 20) -> str:
    digest = hashlib.sha256(f"{FORMAT}/{VERSION}/files/{fingerprint}/{options}".encode())
    for file in files:
        name = str(file.relative_to(root)) if file != root else file.name
        digest.update(name.encode() + b"\0")
        with file.open("rb") as handle:
            while data := handle.read(block):
                digest.update(data)
        digest.update(b"\0EOF\0")
    return digest.hexdigest()
