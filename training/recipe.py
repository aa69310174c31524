"""The budget-aware recipe of ``main.py train``: model size, vocabulary, context, batch, optimizer, regularization
and schedule for a time budget and a corpus size.

It applies when a decoder is trained from scratch with a time budget (``--max_minutes``, or the default run's 8
minutes) and no model-size flag (``--preset``, ``--d_model``, ``--num_layers``, ``--num_heads``, ``--d_ff``); any
other flag the user types still wins over the recipe's value. The table comes from measured runs: the sweep in
``bench/sweep_recipe.py`` (Tiny Shakespeare, 2 CPU cores, held-out bits per character; its table and plot are in
the README). Each row is the best configuration found for budgets up to its ``minutes``.

What the sweep showed, and the rules that follow from it:

* **Muon** (training/muon.py) beat AdamW by about 0.1 bits/char at the same updates, at every size tried.
* **Passes, not minutes, end a good run on a small corpus.** Past a few passes over a 1 MB corpus a model learns
  its training text and gets worse on unseen text, so each row carries ``max_passes``, the most passes over the
  data its measured runs profited from: the run stops there (``max_steps``) even when the budget holds more, and
  a budget that affords more passes gets the next, larger and more regularized row (dropout, weight decay).
* **compute**: the budget is scaled by the CPU threads torch uses over the 2 the table was measured with (a CUDA
  device counts as the largest row), so a faster machine gets the row it can afford;
* **corpus size**: a corpus too small to train the row's vocabulary on gets a smaller one (at least
  :data:`BYTES_PER_VOCAB_ENTRY` bytes of text per entry), and the pass cap counts its tokens, so a small corpus
  ends sooner and a large one trains for the whole budget.

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
MIN_VOCAB = 512  # 256 byte tokens, the special tokens and some merges
MIN_UPDATES = 200  # the pass cap never stops a run before this many updates


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
    lr: float  # AdamW's (embeddings, norms; every parameter when optimizer is "adamw")
    warmup_steps: int
    dropout: float
    weight_decay: float
    optimizer: str  # "muon" (training/muon.py) or "adamw"
    muon_lr: float
    tokens_per_second: float  # measured training speed of this row on 2 cores (bf16), for the plan
    max_passes: float  # passes over the corpus (its tokens) after which the measured runs stopped gaining
    evidence: str  # the sweep runs that chose it


MUON = {"optimizer": "muon", "muon_lr": 0.02, "lr": 3e-3, "warmup_steps": 50, "max_seq_len": 128, "batch_size": 8,
        "num_layers": 4}
RECIPES: tuple[RecipeRow, ...] = (
    # Short budgets: a small model, no dropout, weight decay 0.3 (0.1: 2.081, 0.6: 2.082, 1.0: 2.112 at BPE 4096).
    # BPE 2048 beat 4096 and 8192 (2.074, 2.081, 2.115 at weight decay 0.1).
    RecipeRow(4, 128, num_heads=4, vocab_size=2048, dropout=0.0, weight_decay=0.3, tokens_per_second=23_000,
              max_passes=5.0, evidence="sweep muon-d128L4-v2048-wd0.3@1650u: 2.057 bits/char; AdamW at the same "
              "updates: 2.178", **MUON),
    # Longer: wider, with dropout 0.2 and weight decay 0.6, which kept unseen text improving for 17 passes (d128
    # without them peaked near 5 passes: 2.081 at 1,650 updates, 2.156 at 4,400).
    RecipeRow(12, 192, num_heads=6, vocab_size=2048, dropout=0.2, weight_decay=0.6, tokens_per_second=13_000,
              max_passes=17.0, evidence="sweep muon-d192L4-v2048-drop0.2-wd0.6@6000u: 2.051 bits/char, its "
              "validation loss still falling at the end", **MUON),
    # Long budgets: the 12-minute row for up to 2.4x its passes, with more dropout for them, and BPE 1024, which
    # overfits less (d128 at equal passes: 2.047 against 2.057 for 2048 and 2.072 for 512). Measured as recipe@30
    # (bench/quality_tinyshakespeare.py).
    RecipeRow(30, 192, num_heads=6, vocab_size=1024, dropout=0.25, weight_decay=0.6, tokens_per_second=13_000,
              max_passes=40.0, evidence="sweep muon-d128L4-v1024-wd0.3@1950u: 2.047 bits/char; the 12-minute row's "
              "runs; measured as recipe@30", **MUON),
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
    max_steps: int | None = None  # the pass cap, when the budget would go past it

    def settings(self) -> dict[str, Any]:
        """The ``train`` settings the recipe sets (a typed flag still overrides each).

        Plain text is cut into contiguous 1,000-character chunks (``split_method="chunk"``) rather than
        paragraphs: a training row then spans paragraph breaks, as held-out text does (the sweep measured 2.26
        against 2.33 bits/char at 3 minutes). About 8 evaluations per run (each costs a pass over the validation
        split); the time budget, not ``epochs``, ends the run.
        """
        row = asdict(self.row)
        keys = ("d_model", "num_layers", "num_heads", "vocab_size", "max_seq_len", "batch_size", "lr",
                "warmup_steps", "dropout", "weight_decay", "optimizer", "muon_lr")
        chosen = {key: row[key] for key in keys}
        steps = min(self.estimated_steps, self.max_steps or self.estimated_steps)
        chosen.update(epochs=1000, lr_scheduler="cosine", eval_steps=max(50, steps // 8))
        if self.max_steps is not None:
            chosen["max_steps"] = self.max_steps
        if self.plain_text:
            chosen["split_method"] = "chunk"
        return chosen

    def describe(self) -> str:
        r = self.row
        return (f"recipe for a {self.budget_minutes:g}-minute budget (training/recipe.py): d_model {r.d_model}, "
                f"{r.num_layers} layers, vocab {r.vocab_size}, context {r.max_seq_len}, batch {r.batch_size}, "
                f"{self._optimizer()}, dropout {r.dropout:g}, weight decay {r.weight_decay:g}, "
                f"{self._length()}; flags you type override it")

    def _length(self) -> str:
        if self.max_steps is not None:
            return (f"stopping after {self.max_steps} updates ({self.row.max_passes:g} passes over the data: more "
                    "would overfit) or at the budget")
        return f"about {self.estimated_epochs:.1f} passes over the data in the budget"

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
    tokens_per_update = row.batch_size * row.max_seq_len
    steps = int(tokens / tokens_per_update)
    cap = max(MIN_UPDATES, math.ceil(row.max_passes * data_tokens / tokens_per_update))
    return Recipe(replace(row, vocab_size=vocab), minutes, effective, epochs, steps, plain_text,
                  max_steps=cap if cap < steps else None)


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
