"""``create_dataloaders``: items -> tokenized rows -> DataLoaders of dict batches for ``model(**batch)``.

Which rows each objective gets:

=========  =================================================  ==============================================
objective  plain text items                                   instruction / chat / pair items
=========  =================================================  ==============================================
clm        token store on disk (memmap, cached by hash);      tokenized in memory; whole examples packed into
           packed windows with ``segment_ids``, or one        rows with ``segment_ids`` (or one per row);
           row per document window without packing            labels only on answers / assistant turns
mlm        token store; one row per document window           (not supported)
seq2seq    token store; T5 span corruption of each document   ``input_ids`` = source, ``labels`` = target
           window (:mod:`~training.data.span_corruption`;
           the tokenizer needs ``<extra_id_0>``, ...)
=========  =================================================  ==============================================

The tokenizer must implement :class:`minillm.tokenizer_protocol.Tokenizer` (``BPETokenizer``, ``HFTokenizer``);
its attributes are read directly: ``eos_token_id`` separates documents, ``pad_token_id`` (else the eos id) pads,
``mask_token_id`` masks (mlm), ``token_to_id("<extra_id_0>")`` ... finds the sentinels (seq2seq).

Example::

    train, val, _ = load_and_split_data("corpus.txt")
    train_loader, val_loader = create_dataloaders(train, val, tokenizer, batch_size=8, max_length=256)
    for batch in train_loader:
        loss = model(**batch).loss
    train_loader.tokenizer is tokenizer  # what the Trainer saves with checkpoints when given no tokenizer
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

import torch
from torch.utils.data import DataLoader, Dataset

from minillm.errors import InputError
from minillm.tokenizer_protocol import Tokenizer, missing_members

from .collate import EpochSampler, collator_for
from .examples import IGNORE_INDEX, pack_examples, seq2seq_example, single_rows, supervised_example
from .formats import Item, item_kind, item_text
from .span_corruption import SpanCorruptionDataset, sentinel_ids
from .tokens import eos_id, store_for_texts
from .windows import TokenFileDataset, TokenWindowDataset, _cls_sep

logger = logging.getLogger(__name__)
OBJECTIVES = ("clm", "mlm", "seq2seq")
OBJECTIVE_BY_MODEL = {"decoder_only": "clm", "encoder_only": "mlm", "encoder_decoder": "seq2seq"}


class RowsDataset(Dataset):
    """Rows already tokenized in memory (lists of dicts)."""

    def __init__(self, rows: list[dict]):
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict:
        return self.rows[index]


def resolve_objective(objective: str, model_type: str | None) -> str:
    """The objective, taken from ``model_type`` when one is given.

    >>> resolve_objective("clm", "encoder_only")
    'mlm'
    """
    if model_type is not None:
        if model_type not in OBJECTIVE_BY_MODEL:
            raise InputError(f"model_type={model_type!r} is unknown; valid: {', '.join(OBJECTIVE_BY_MODEL)}")
        return OBJECTIVE_BY_MODEL[model_type]
    if objective not in OBJECTIVES:
        raise InputError(f"objective={objective!r} is unknown; valid: {', '.join(OBJECTIVES)}")
    return objective


def check_tokenizer(tokenizer: object, caller: str = "create_dataloaders") -> None:
    """An InputError naming every member of :class:`~minillm.tokenizer_protocol.Tokenizer` that ``tokenizer``
    lacks (nothing when it has them all)."""
    missing = missing_members(tokenizer)
    if missing:
        raise InputError(
            f"{caller} needs a tokenizer with the surface of minillm.tokenizer_protocol.Tokenizer; "
            f"{type(tokenizer).__name__} lacks {', '.join(missing)} (wrap HF tokenizers in "
            "minillm.hf.tokenizer.HFTokenizer)"
        )


def build_dataset(
    items: Sequence[Item],
    tokenizer: Tokenizer,
    max_length: int,
    objective: str = "clm",
    packing: bool = True,
    cache_dir: str | os.PathLike | None = None,
    name: str = "train",
    seed: int = 42,
) -> Dataset:
    """The Dataset of rows for ``items`` under ``objective`` (see the module table); ``seed`` seeds the
    span corruption of plain text under seq2seq."""
    kinds = [item_kind(item, f"{name} item {i}") for i, item in enumerate(items)]
    eos = eos_id(tokenizer)
    if all(kind == "text" for kind in kinds):
        if objective == "seq2seq":
            sentinel_ids(tokenizer)  # fail before tokenizing when the tokenizer has no <extra_id_0>
        store = store_for_texts(
            [item_text(item) for item in items], tokenizer, cache_dir, desc=f"tokenizing {name}"
        )
        if store.header["num_tokens"] <= store.header["num_docs"] + 1:
            raise InputError(f"the {name} texts give no tokens (all {len(items)} are empty)")
        if objective == "seq2seq":
            return SpanCorruptionDataset.from_store(store, tokenizer, max_length, seed)
        if objective == "mlm":
            return TokenWindowDataset(store, max_length, "mlm", wrap=_cls_sep(tokenizer))
        return TokenWindowDataset(store, max_length, "packed" if packing else "documents")
    if objective == "mlm":
        other = next(kind for kind in kinds if kind != "text")
        raise InputError(f"objective 'mlm' trains on plain text; the {name} data has {other} items")
    if objective == "seq2seq":
        bad = [(i, kind) for i, kind in enumerate(kinds) if kind not in ("seq2seq", "instruction")]
        if bad:
            raise InputError(
                f"objective 'seq2seq' needs plain text (span corruption) or {{'source','target'}} or "
                f"{{'input','output'}} items, not a mix; "
                f"{name} item {bad[0][0]} is {bad[0][1]}"
            )
        return RowsDataset(
            [seq2seq_example(tokenizer, item, kind, max_length, eos) for item, kind in zip(items, kinds)]
        )
    examples = [supervised_example(tokenizer, item, kind) for item, kind in zip(items, kinds)]
    rows, truncated = (pack_examples if packing else single_rows)(examples, max_length, eos)
    if truncated:
        logger.warning(
            "%d of %d %s examples were longer than max_length=%d and were truncated",
            truncated,
            len(examples),
            name,
            max_length,
        )
    if not any(label != IGNORE_INDEX for row in rows for label in row["labels"]):
        raise InputError(
            f"no {name} example has a token to learn (no assistant turn or answer survived "
            f"max_length={max_length})"
        )
    return RowsDataset(rows)


def _pad_or_eos(tokenizer: Tokenizer) -> int:
    """``pad_token_id``, else ``eos_token_id`` (collators pad with it; labels there are -100)."""
    pad = tokenizer.pad_token_id
    return eos_id(tokenizer) if pad is None else int(pad)


def train_dataloader(dataset: Dataset, batch_size: int, collate, seed: int, num_workers: int) -> DataLoader:
    """The training DataLoader: order from :class:`~training.data.collate.EpochSampler` (``seed + epoch``)."""
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=EpochSampler(len(dataset), seed),
        collate_fn=collate,
        num_workers=num_workers,
        generator=torch.Generator().manual_seed(seed),
    )


def create_dataloaders(
    train_texts: Sequence[Item],
    val_texts: Sequence[Item] | None,
    tokenizer: Tokenizer,
    batch_size: int,
    max_length: int,
    objective: str = "clm",
    model_type: str | None = None,
    seed: int = 42,
    packing: bool = True,
    num_workers: int = 0,
    cache_dir: str | os.PathLike | None = None,
) -> tuple[DataLoader, DataLoader | None]:
    """(train_loader, val_loader) of dict batches; ``val_loader`` is None when ``val_texts`` is empty.

    ``tokenizer`` must implement :class:`minillm.tokenizer_protocol.Tokenizer` (checked first: an InputError
    names what is missing). The train loader shuffles with :class:`~training.data.collate.EpochSampler`
    (``seed + epoch``, with ``set_epoch``); the validation loader keeps its order. Plain-text corpora are
    tokenized once into a token store under ``cache_dir`` (default ``$MINILLM_CACHE/tokens``) and reused by
    later calls. Each returned loader has an attribute ``tokenizer``, the tokenizer its batches were built
    with: the Trainer saves it with its checkpoints when it is given no tokenizer of its own.
    """
    check_tokenizer(tokenizer)
    objective = resolve_objective(objective, model_type)
    for label, value, low in (
        ("batch_size", batch_size, 1),
        ("max_length", max_length, 4),
        ("num_workers", num_workers, 0),
    ):
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise InputError(f"{label}={value!r} must be an int >= {low}")
    if not train_texts:
        raise InputError("train_texts is empty; there is nothing to train on")
    collate = collator_for(objective, tokenizer, _pad_or_eos(tokenizer), seed, int(tokenizer.vocab_size))
    train_set = build_dataset(
        train_texts, tokenizer, max_length, objective, packing, cache_dir, "train", seed
    )
    if len(train_set) < batch_size:
        raise InputError(
            f"the training data ({len(train_texts)} items) gives {len(train_set)} rows of up to max_length="
            f"{max_length} tokens, fewer than batch_size={batch_size}; add data or lower batch_size or max_length"
        )
    train_loader = train_dataloader(train_set, batch_size, collate, seed, num_workers)
    train_loader.tokenizer = tokenizer
    if not val_texts:
        return train_loader, None
    val_set = build_dataset(val_texts, tokenizer, max_length, objective, packing, cache_dir, "val", seed)
    val_loader = DataLoader(
        val_set, batch_size=batch_size, shuffle=False, collate_fn=collate, num_workers=num_workers
    )
    val_loader.tokenizer = tokenizer
    logger.info(
        "dataloaders: %d train rows, %d val rows (objective %s, max_length %d)",
        len(train_set),
        len(val_set),
        objective,
        max_length,
    )
    return train_loader, val_loader


def create_file_dataloaders(
    path: str | os.PathLike,
    tokenizer: Tokenizer,
    batch_size: int,
    max_length: int,
    val_split: float = 0.1,
    seed: int = 42,
    packing: bool = True,
    num_workers: int = 0,
    cache_dir: str | os.PathLike | None = None,
    encoding_errors: str = "strict",
    documents: str = "file",
) -> tuple[DataLoader, DataLoader | None]:
    """Causal-LM loaders straight from a large text file or folder, streamed into a token store
    (:class:`~training.data.windows.TokenFileDataset`); the last ``val_split`` of the rows is validation. As
    with :func:`create_dataloaders`, the tokenizer is checked first and each loader's ``tokenizer`` is it."""
    check_tokenizer(tokenizer, "create_file_dataloaders")
    dataset = TokenFileDataset(
        path,
        tokenizer,
        max_length,
        "packed" if packing else "documents",
        cache_dir,
        encoding_errors,
        documents,
    )
    train_set, val_set = dataset.split(val_split) if val_split > 0 else (dataset, None)
    if len(train_set) < batch_size:
        raise InputError(
            f"{str(path)!r} gives {len(train_set)} training rows of max_length={max_length}, "
            f"fewer than batch_size={batch_size}; lower batch_size or max_length"
        )
    collate = collator_for("clm", tokenizer, _pad_or_eos(tokenizer), seed, 0)
    train_loader = train_dataloader(train_set, batch_size, collate, seed, num_workers)
    val_loader = (
        None
        if val_set is None
        else DataLoader(val_set, batch_size=batch_size, collate_fn=collate, num_workers=num_workers)
    )
    for loader in (train_loader, val_loader):
        if loader is not None:
            loader.tokenizer = tokenizer
    return train_loader, val_loader
