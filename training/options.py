"""TrainerOptions: every keyword option of :class:`training.Trainer`, validated in one place."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from minillm.errors import InputError

from .schedules import validate_schedule

MIXED_PRECISION = (None, "no", "auto", "bf16", "fp16")
OPTIMIZERS = ("adamw", "muon")


@dataclass
class TrainerOptions:
    """Keyword options of the Trainer (defaults in brackets).

    - ``weight_decay`` [0.01] AdamW decay, applied to parameters with 2 or more dimensions only.
    - ``adam_betas`` [(0.9, 0.999)], ``adam_eps`` [1e-8].
    - ``warmup_steps`` [0] linear warmup in optimizer updates; ``lr_scheduler`` ["constant"] | "cosine" | "linear";
      ``min_lr_ratio`` [0.0] floor of the decaying schedules (see :mod:`training.schedules`).
    - ``gradient_accumulation_steps`` [1] micro-batches per optimizer update.
    - ``max_grad_norm`` [1.0] gradient clipping; None or 0 turns it off.
    - ``mixed_precision`` [None] "bf16" (CUDA with bf16 support, CPU, MPS), "fp16" (CUDA, with a grad scaler) or
      "auto" (bf16 where the hardware runs it natively, else full precision).
    - ``gradient_checkpointing`` [False] calls ``model.gradient_checkpointing_enable()``.
    - ``compile`` [False] runs the training forward (and so its backward) through ``torch.compile``. Only the
      Trainer's own call is compiled: ``model`` itself is left as it is, so checkpoints keep their plain key names
      (no ``_orig_mod.`` prefix), evaluation and generation run eagerly, and resume works as without it. The
      first updates pay the compilation (tens of seconds on a CPU); a batch of a new shape (a short last batch)
      compiles once more.
    - ``eval_every`` / ``save_every`` [None = at the end of every epoch] in optimizer updates;
      ``log_every`` [10] updates between metric records and progress-bar refreshes.
    - ``save_total_limit`` [3] how many ``checkpoint-STEP`` directories to keep (None keeps all).
    - ``seed`` [42] seeds python/numpy/torch at the start of a fresh run and the per-epoch shuffle.
    - ``max_steps`` [None] stop after this many updates; when given it overrides ``epochs``.
    - ``max_minutes`` [None] stop after this much wall-clock training time (evaluated and saved like max_steps;
      a resumed run gets a fresh budget).
    - ``early_stopping_mode`` ["min"] for the monitored metric (validation loss, else training loss).
    - ``restore_best`` [True] load the best weights back when early stopping triggers.
    - ``progress_bar`` [True], ``tensorboard`` [True] (when importable), ``plot`` [True] (when matplotlib is).
    - ``fsdp`` [False] under torchrun, shard the model with FSDP2 instead of DDP (see :mod:`training.fsdp`).
    - ``overwrite_output_dir`` [False] a fresh (not resumed) run in a ``checkpoint_dir`` that already holds
      ``checkpoint-STEP/`` directories removes them (and ``best/``, ``final/``) instead of refusing to start.
    - ``optimizer`` ["adamw"] or "muon": Muon on the hidden 2-D weights at ``muon_lr`` [0.02], AdamW on the rest
      (see :mod:`training.muon`).
    - ``optimizer_factory`` [None = AdamW] ``factory(param_groups, learning_rate) -> Optimizer``, e.g. bitsandbytes'
      paged 8-bit AdamW for QLoRA (see :mod:`training.optimizers`).
    - ``max_minutes`` also plans the run: the schedule and the progress bar follow the updates the budget holds
      (see :mod:`training.stop_rules`).
    """

    weight_decay: float = 0.01
    adam_betas: tuple[float, float] = (0.9, 0.999)
    adam_eps: float = 1e-8
    warmup_steps: int = 0
    lr_scheduler: str = "constant"
    min_lr_ratio: float = 0.0
    gradient_accumulation_steps: int = 1
    max_grad_norm: float | None = 1.0
    mixed_precision: str | None = None
    gradient_checkpointing: bool = False
    compile: bool = False
    eval_every: int | None = None
    save_every: int | None = None
    log_every: int = 10
    save_total_limit: int | None = 3
    seed: int = 42
    max_steps: int | None = None
    max_minutes: float | None = None
    early_stopping_mode: str = "min"
    restore_best: bool = True
    progress_bar: bool = True
    tensorboard: bool = True
    plot: bool = True
    fsdp: bool = False
    overwrite_output_dir: bool = False
    optimizer: str = "adamw"
    muon_lr: float = 0.02
    optimizer_factory: Any = None

    def __post_init__(self) -> None:
        validate_schedule(self.lr_scheduler, self.warmup_steps, self.min_lr_ratio)
        for name in ("gradient_accumulation_steps", "log_every"):
            _positive_int(name, getattr(self, name))
        for name in ("eval_every", "save_every", "max_steps"):
            if getattr(self, name) is not None:
                _positive_int(name, getattr(self, name))
        if self.save_total_limit is not None and (not isinstance(self.save_total_limit, int) or self.save_total_limit < 1):
            raise InputError(f"save_total_limit must be an int >= 1 or None, got {self.save_total_limit!r}")
        if self.max_minutes is not None and not self.max_minutes > 0:
            raise InputError(f"max_minutes must be > 0 or None, got {self.max_minutes!r}")
        if self.weight_decay < 0:
            raise InputError(f"weight_decay must be >= 0, got {self.weight_decay!r}")
        if self.max_grad_norm is not None and self.max_grad_norm < 0:
            raise InputError(f"max_grad_norm must be >= 0 or None, got {self.max_grad_norm!r}")
        if not isinstance(self.compile, bool):
            raise InputError(f"compile must be True or False, got {self.compile!r}")
        if self.mixed_precision not in MIXED_PRECISION:
            raise InputError(f"mixed_precision {self.mixed_precision!r} is unknown; use None, 'auto', 'bf16' or 'fp16'")
        if self.optimizer_factory is not None and not callable(self.optimizer_factory):
            raise InputError(f"optimizer_factory must be callable(param_groups, lr), got {self.optimizer_factory!r}")
        if self.optimizer not in OPTIMIZERS:
            raise InputError(f"optimizer {self.optimizer!r} is unknown; use one of {', '.join(OPTIMIZERS)}")
        if not (isinstance(self.muon_lr, (int, float)) and self.muon_lr > 0):
            raise InputError(f"muon_lr must be a positive number, got {self.muon_lr!r}")
        if self.optimizer_factory is not None and self.optimizer != "adamw":
            raise InputError("optimizer_factory and optimizer='muon' exclude each other; pass one of them")
        if self.mixed_precision == "no":
            self.mixed_precision = None

    @classmethod
    def from_kwargs(cls, options: dict[str, Any]) -> TrainerOptions:
        """Build from keyword options; unknown names raise ValueError listing them and the valid ones."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise InputError(f"unknown Trainer option(s) {unknown}; valid options: {', '.join(sorted(known))}")
        return cls(**options)


def validate_inputs(model: Any, train_dataloader: Any, val_dataloader: Any, learning_rate: Any, checkpoint_dir: Any) -> None:
    """The Trainer's positional inputs, with one clear ValueError for each mistake."""
    if not isinstance(learning_rate, (int, float)) or not learning_rate > 0:
        raise InputError(f"learning_rate must be a positive number, got {learning_rate!r}")
    if train_dataloader is None:
        raise InputError("train_dataloader is required")
    if hasattr(train_dataloader, "__len__") and len(train_dataloader) == 0:
        raise InputError("train_dataloader is empty (0 batches); check the dataset size and batch_size")
    if val_dataloader is not None and hasattr(val_dataloader, "__len__") and len(val_dataloader) == 0:
        raise InputError("val_dataloader is empty (0 batches); pass None to monitor the training loss instead")
    if checkpoint_dir is None:
        raise InputError("checkpoint_dir is required (checkpoints, best/ and final/ are written there)")
    if not callable(getattr(model, "save_pretrained", None)):
        raise InputError(
            f"{type(model).__name__} has no save_pretrained(dir); the Trainer saves checkpoints with it"
        )


def _positive_int(name: str, value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InputError(f"{name} must be a positive int, got {value!r}")


def check_writable(directory: Path) -> None:
    """Create ``directory`` and check a file can be written there (one clear error otherwise)."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        probe = directory / f".write-test-{os.getpid()}"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise InputError(f"checkpoint_dir {str(directory)!r} is not writable ({exc}); pass a writable directory") from exc
