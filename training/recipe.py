"""The budget-aware recipe of ``main.py train``: model size, vocabulary, context, batch, learning rate and schedule
for a time budget and a corpus size.

It applies when a decoder is trained from scratch with a time budget (``--max_minutes``, or the default run's 8
minutes) and no model-size flag (``--preset``, ``--d_model``, ``--num_layers``, ``--num_heads``, ``--d_ff``); any
other flag the user types still wins over the recipe's value. The table comes from measured runs: the sweep in
``bench/sweep_recipe.py`` (Tiny Shakespeare, 2 CPU cores, held-out bits per character; its table and plot are in
the README). Each row is the best configuration found for budgets up to its ``minutes``.

Two rules adapt a row to the machine and the data:

* **compute**: the budget is scaled by the CPU threads torch uses over the 2 the table was measured with (a CUDA
  device counts as the largest row), so a faster machine gets the row it can afford;
* **corpus size**: a corpus too small to train the row's vocabulary on gets a smaller one (at least
  :data:`BYTES_PER_VOCAB_ENTRY` bytes of text per entry), and a run that would pass over its data more than twice
  as often as the measured run did gets at least 0.2 dropout (it overfits otherwise: see the train vs validation
  figures in the sweep).

>>> pick = choose_recipe(minutes=8, corpus_bytes=1_000_000, threads=2)
>>> pick.row.minutes >= 8 or pick.row is RECIPES[-1]
True
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

MODEL_SIZE_FLAGS = ("preset", "d_model", "num_layers", "num_heads", "d_ff")
MEASURED_THREADS = 2
BYTES_PER_VOCAB_ENTRY = 200
MEASURED_CORPUS_BYTES = 1_003_854  # the first 90% of Tiny Shakespeare, which the table was measured on
MIN_VOCAB = 512  # 256 byte tokens, the special tokens and some merges


@dataclass(frozen=True)
class RecipeRow:
    """One measured configuration, for budgets up to ``minutes`` (on 2 CPU cores)."""

    minutes: float  # budgets up to this many minutes get this row (the last row: any longer budget)
    d_model: int
    num_layers: int
    num_heads: int
    vocab_size: int
    max_seq_len: int
    batch_size: int
    lr: float
    warmup_steps: int
    dropout: float
    optimizer: str  # "muon" (training/muon.py) or "adamw"
    muon_lr: float
    tokens_per_second: float  # measured training speed of this row on 2 cores (bf16), for the epochs estimate
    evidence: str  # the sweep runs that chose it


RECIPES: tuple[RecipeRow, ...] = (
    # Short budgets are compute-bound: a small model making many small updates wins (d128 beat d192 at 3 minutes,
    # batch 8 beat 32 and 4, lr 3e-3 beat 1e-3, vocab 4096 beat 2048 and 1024).
    RecipeRow(4, 128, 4, 4, 4096, 128, 8, 3e-3, 50, 0.0, "muon", 0.02, 11000,
              "sweep d128L4-v4096-b8-chunk@3: 2.251 bits/char against 2.358 for d192, 2.408 at batch 4, 3.10 for the "
              "old default"),
    # At 8 minutes d128 still beat d192 (2.180 against 2.257) but overfit (train 1.58 against val 2.18), hence
    # dropout 0.1 and the epoch-shifted windows.
    RecipeRow(12, 128, 4, 4, 4096, 128, 8, 3e-3, 50, 0.1, "muon", 0.02, 11000,
              "sweep d128L4-v4096-b8-chunk@8: 2.180 bits/char without dropout against 2.257 for d192"),
    # 30 minutes give d192 the ~5,800 updates d128 had at 8 minutes; ~20 passes over a 1 MB corpus need dropout 0.2.
    RecipeRow(30, 192, 4, 6, 4096, 128, 8, 3e-3, 100, 0.2, "muon", 0.02, 8000,
              "extrapolated from the 8-minute sweep rows; measured as recipe@30 in bench/quality_tinyshakespeare.py"),
)


@dataclass(frozen=True)
class Recipe:
    """The chosen row, adapted to the corpus, and why."""

    row: RecipeRow
    budget_minutes: float
    effective_minutes: float
    estimated_epochs: float
    estimated_steps: int
    plain_text: bool = True

    def settings(self) -> dict[str, Any]:
        """The ``train`` settings the recipe sets (a typed flag still overrides each).

        Plain text is cut into contiguous 1,000-character chunks (``split_method="chunk"``) rather than
        paragraphs: a training row then spans paragraph breaks, as held-out text does (the sweep measured 2.26
        against 2.33 bits/char at 3 minutes). About 8 evaluations per run (each costs a pass over the validation
        split); the time budget, not ``epochs``, ends the run.
        """
        row = asdict(self.row)
        keys = ("d_model", "num_layers", "num_heads", "vocab_size", "max_seq_len", "batch_size", "lr",
                "warmup_steps", "dropout", "optimizer", "muon_lr")
        chosen = {key: row[key] for key in keys}
        chosen.update(epochs=1000, lr_scheduler="cosine", eval_steps=max(50, self.estimated_steps // 8))
        if self.plain_text:
            chosen["split_method"] = "chunk"
        return chosen

    def describe(self) -> str:
        r = self.row
        return (f"recipe for a {self.budget_minutes:g}-minute budget (training/recipe.py): d_model {r.d_model}, "
                f"{r.num_layers} layers, vocab {r.vocab_size}, context {r.max_seq_len}, batch {r.batch_size}, "
                f"{self._optimizer()}, dropout {r.dropout:g}, about {self.estimated_epochs:.1f} passes over the data; "
                "flags you type override it")


    def _optimizer(self) -> str:
        r = self.row
        return f"Muon lr {r.muon_lr:g} + AdamW lr {r.lr:g}" if r.optimizer == "muon" else f"AdamW lr {r.lr:g}"


def recipe_applies(settings: dict[str, Any], typed: set[str]) -> bool:
    """Whether ``train`` uses the recipe: a decoder from scratch, a time budget, no model-size flag typed."""
    return (settings.get("model_type") == "decoder_only" and not settings.get("model")
            and settings.get("max_minutes") is not None and not typed & set(MODEL_SIZE_FLAGS))


def choose_recipe(minutes: float, corpus_bytes: int, threads: int | None = None, cuda: bool = False,
                  plain_text: bool = True) -> Recipe:
    """The recipe for a budget of ``minutes`` on a corpus of ``corpus_bytes`` bytes (``plain_text``: .txt/.md,
    not JSONL records)."""
    if not RECIPES:
        raise RuntimeError("the recipe table is empty")
    threads = threads or _threads()
    effective = math.inf if cuda else minutes * max(1.0, threads / MEASURED_THREADS)
    row = next((r for r in RECIPES if effective <= r.minutes), RECIPES[-1])
    compute_minutes = row.minutes if cuda else effective  # a GPU: at least what the row was measured with
    vocab = row.vocab_size
    while vocab > MIN_VOCAB and corpus_bytes < vocab * BYTES_PER_VOCAB_ENTRY:
        vocab //= 2
    chars_per_token = 2.44 + 0.40 * math.log2(vocab / 1024)  # measured on Tiny Shakespeare: 2.44, 2.81, 3.25
    data_tokens = max(1.0, corpus_bytes / chars_per_token)
    tokens = row.tokens_per_second * compute_minutes * 60
    epochs = tokens / data_tokens
    measured_epochs = tokens / (MEASURED_CORPUS_BYTES / chars_per_token)
    dropout = row.dropout if epochs <= 2 * measured_epochs else max(row.dropout, 0.2)
    steps = int(tokens / (row.batch_size * row.max_seq_len))
    return Recipe(replace(row, vocab_size=vocab, dropout=dropout), minutes, effective, epochs, steps, plain_text)


def corpus_bytes(data_path: str | os.PathLike) -> int:
    """Bytes of training text under ``data_path`` (a file, or the .txt/.md/.jsonl files of a folder)."""
    path = Path(data_path)
    if path.is_file():
        return path.stat().st_size
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and p.suffix.lower() in
                   (".txt", ".md", ".jsonl", ".json"))
    return 0


def _threads() -> int:
    import torch

    return torch.get_num_threads()
