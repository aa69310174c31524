"""Trainer: one training loop for every model that speaks ``model(**batch).loss`` and ``save_pretrained(dir)``.

It does not look at what kind of model it trains: our toy decoder, a transformers model, a 4-bit PEFT model
all go through the same code. The optimizer sees only parameters with ``requires_grad``; checkpoints store
those parameters (plus the model's own ``save_pretrained`` directory), so resume and "restore best" put them
back without touching which parameters are trainable.

>>> trainer = Trainer(model=model, train_dataloader=train, val_dataloader=val, learning_rate=3e-4,
...                   checkpoint_dir="checkpoints/run1", device="auto", early_stopping_patience=3)
>>> result = trainer.train(epochs=10)                        # doctest: +SKIP
>>> result["early_stopped"], result["best_val_loss"]         # doctest: +SKIP

Defaults: evaluate and checkpoint at the end of every epoch (the last one included), keep the last 3
``checkpoint-STEP`` directories, best weights in ``best/``, the final model in ``final/``, constant learning rate
after warmup (see :mod:`training.schedules`), gradient clipping at 1.0. Options: :class:`TrainerOptions`.
"""

from __future__ import annotations

import logging
import math
import os
import time
from pathlib import Path
from typing import Any

import torch

from minillm.errors import InputError
from minillm.losses import free_loss_buffers

from .batch_ops import (
    check_batch_keys,
    prepare_batch,
)
from .checkpoints import recover_interrupted
from .distributed import (
    all_reduce_sums,
    barrier,
    init_distributed,
    resolve_device,
    shard_loader,
    wrap_model,
)
from .early_stopping import EarlyStopping
from .epoch_order import epoch_batches, seed_everything
from .metrics_log import MetricsLog
from .optimizers import build_optimizer
from .options import TrainerOptions, check_writable, validate_inputs
from .precision import autocast, precision_policy
from .progress import Progress, progress_total
from .stop_rules import TimeBudget
from .trainer_checkpointing import CheckpointingMixin
from .trainer_evaluation import EvaluationMixin
from .trainer_update import UpdateMixin

logger = logging.getLogger(__name__)


class Trainer(CheckpointingMixin, EvaluationMixin, UpdateMixin):
    """Train ``model`` on dict batches with AdamW, early stopping, exact resume and optional DDP.

    Args:
        model: any ``torch.nn.Module`` whose ``model(**batch)`` returns an output with ``.loss`` and that has
            ``save_pretrained(dir)``. A model may define ``prepare_batch(batch, generator=, tokenizer=)``: the
            Trainer calls it on every batch first (the encoder turns plain-text batches into masked-LM ones
            there), with a generator whose state is part of every checkpoint.
        train_dataloader / val_dataloader: iterables of dict batches (DataLoaders or lists); no validation set
            means early stopping watches the training loss.
        learning_rate: peak AdamW learning rate.
        checkpoint_dir: where checkpoints, ``best/``, ``final/`` and ``metrics.jsonl`` go (created, must be writable).
        device: "cuda", "mps", "cpu" or "auto".
        early_stopping_patience / early_stopping_min_delta: see :class:`EarlyStopping` (patience None: never stop).
        tokenizer: saved into every checkpoint; default: the ``tokenizer`` attribute ``create_dataloaders`` sets
            on its loaders.
        **options: :class:`TrainerOptions` fields; an unknown name raises ValueError.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        train_dataloader: Any,
        val_dataloader: Any = None,
        learning_rate: float = 3e-4,
        checkpoint_dir: str | os.PathLike = "checkpoints",
        device: str | torch.device = "auto",
        early_stopping_patience: int | None = 3,
        early_stopping_min_delta: float = 0.0,
        tokenizer: Any = None,
        **options: Any,
    ) -> None:
        self.options = opts = TrainerOptions.from_kwargs(options)
        validate_inputs(model, train_dataloader, val_dataloader, learning_rate, checkpoint_dir)
        self.early_stopping = EarlyStopping(early_stopping_patience, early_stopping_min_delta, opts.early_stopping_mode)
        self.dist = init_distributed(str(device).split(":")[0] if str(device) != "auto" else
                                     ("cuda" if torch.cuda.is_available() else "cpu"))
        self.device = resolve_device(device, self.dist)
        self.checkpoint_dir = Path(checkpoint_dir)
        if self.dist.is_main:
            check_writable(self.checkpoint_dir)
        self.model = model
        if any(p.device != self.device for p in model.parameters()):
            model.to(self.device)
        if opts.gradient_checkpointing:
            enable = getattr(model, "gradient_checkpointing_enable", None)
            if enable is None:
                raise InputError(f"gradient_checkpointing=True but {type(model).__name__} has no gradient_checkpointing_enable()")
            enable()
        self.tokenizer = tokenizer if tokenizer is not None else getattr(train_dataloader, "tokenizer", None)
        self.train_dataloader = shard_loader(train_dataloader, self.dist, opts.seed)
        self.val_dataloader = shard_loader(val_dataloader, self.dist, opts.seed)
        self.learning_rate = float(learning_rate)
        self._engine = wrap_model(model, self.device, self.dist, opts.fsdp)  # FSDP shards in place: before AdamW
        if opts.compile:  # compiles the Trainer's calls only; self.model (saved, evaluated) stays the plain module
            self._engine = torch.compile(self._engine)
        self._fsdp = opts.fsdp and self.dist.enabled
        self.optimizer = build_optimizer(model, self.learning_rate, opts.weight_decay, opts.adam_betas, opts.adam_eps,
                                         opts.optimizer_factory, opts.optimizer, opts.muon_lr)
        self.base_lrs = [g["lr"] for g in self.optimizer.param_groups]
        self._autocast_dtype, self.scaler = precision_policy(opts.mixed_precision, self.device)
        self._batch_generator = torch.Generator().manual_seed(opts.seed)  # the batch hook's (masking) randomness
        self._budget: TimeBudget | None = None
        self._keys_checked = False  # the first batch's keys are checked against the model's forward
        self.metrics = MetricsLog(self.checkpoint_dir, enabled=self.dist.is_main, tensorboard=opts.tensorboard)
        self.state: dict[str, Any] = {
            "global_step": 0, "epoch": 0, "batches_done": 0, "epochs_completed": 0, "total_steps": None,
            "history": [], "since_eval": [0.0, 0.0], "tokens_seen": 0, "last_eval_step": None,
            "stop_reason": None, "seed": opts.seed, "planned_steps": None,
        }

    def _generators(self) -> dict[str, torch.Generator]:
        """The Trainer's own generators, saved with (and restored from) every checkpoint."""
        return {"batch_hook": self._batch_generator}

    def _autocast(self) -> Any:
        return autocast(self.device, self._autocast_dtype)

    # ------------------------------------------------------------------ public API
    def train(self, epochs: int = 1, resume_from_checkpoint: str | os.PathLike | bool | None = None) -> dict[str, Any]:
        """Train for ``epochs`` (or ``max_steps`` updates, or ``max_minutes``); return a summary dict.

        ``resume_from_checkpoint``: a ``checkpoint-STEP`` directory, or True for the latest complete one under
        ``checkpoint_dir`` (a fresh start when there is none). The result holds ``early_stopped``,
        ``epochs_completed``, ``global_step``, ``best_val_loss`` (the best monitored value), ``history`` (one
        entry per evaluation), ``restored_best``, ``stop_reason`` (``"epochs"``, ``"max_steps"``, ``"max_time"``
        or ``"early_stopping"``), ``best_checkpoint`` and ``final_checkpoint``.
        """
        if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 1:
            raise InputError(f"epochs must be a positive int, got {epochs!r}")
        opts, state = self.options, self.state
        if self.dist.is_main:
            recover_interrupted(self.checkpoint_dir)
        barrier(self.dist)
        if resume_from_checkpoint:
            if not self._resume(resume_from_checkpoint):
                seed_everything(opts.seed + self.dist.rank)
        elif state["global_step"] == 0:
            self._claim_fresh_start()
            seed_everything(opts.seed + self.dist.rank)  # each rank its own dropout masks (rank 0: the seed)
            self.metrics.truncate_after(0)
        if state["stop_reason"] in ("epochs", "max_steps", "max_time"):
            state["stop_reason"] = None  # a later call may train further; early stopping stays final
        if state["total_steps"] is None:
            state["total_steps"] = self._total_steps(epochs)
        planned = progress_total(opts.max_steps, state["total_steps"], self.train_dataloader, epochs,
                                 opts.gradient_accumulation_steps)
        if opts.max_minutes is not None:  # a fresh budget for this call, resumed or not
            self._budget = TimeBudget(opts.max_minutes, state["global_step"], planned)
            state["planned_steps"] = planned
        self.progress = Progress(self.metrics, opts.log_every, self.dist.world_size,
                                 opts.progress_bar and self.dist.is_main, planned, state["global_step"],
                                 state["tokens_seen"])
        self.model.train()
        if opts.max_steps is not None and state["global_step"] >= opts.max_steps and state["stop_reason"] is None:
            state["stop_reason"] = "max_steps"  # resumed from the last step: nothing more to train
        stop = state["stop_reason"] is not None
        self._started = time.perf_counter()
        while not stop and (opts.max_steps is not None or state["epoch"] < epochs):
            stop = self._train_epoch(state["epoch"])
        self.progress.flush(state["global_step"], state["epoch"], self._lr(), state["tokens_seen"])
        self.progress.close()
        return self._finish()

    def _train_epoch(self, epoch: int) -> bool:
        """One epoch (or the rest of a resumed one), then its end-of-epoch evaluation and checkpoint. True = stop."""
        opts, state = self.options, self.state
        batches = epoch_batches(self.train_dataloader, epoch, opts.seed, state["batches_done"], self.device)
        window: list[Any] = []
        trained_any, stop = state["batches_done"] > 0, False
        for batch in batches:
            window.append(batch)
            if len(window) == opts.gradient_accumulation_steps:
                stop, window, trained_any = self._update_and_events(window), [], True
                if stop:
                    break
        if not stop and window:
            stop, trained_any = self._update_and_events(window), True
        if not trained_any:
            raise InputError(f"train_dataloader yielded no batches in epoch {epoch}; check the dataset")
        finished = not stop or (hasattr(self.train_dataloader, "__len__")
                                and state["batches_done"] >= len(self.train_dataloader))  # stopped on its last batch
        if finished:
            state.update(epoch=epoch + 1, batches_done=0, epochs_completed=epoch + 1)
        if stop:
            if state["stop_reason"] in ("max_steps", "max_time"):
                if state["last_eval_step"] != state["global_step"]:
                    self._evaluate_and_track()
                self._save_step_checkpoint()
            return True
        if opts.eval_every is None and state["last_eval_step"] != state["global_step"]:
            stop = self._evaluate_and_track()
        if opts.save_every is None or stop:
            self._save_step_checkpoint()
        return stop

    # ------------------------------------------------------------------ one update
    def _update_and_events(self, window: list[Any]) -> bool:
        """One optimizer update over ``window`` micro-batches, then eval / save / stop checks. True = stop."""
        opts, state = self.options, self.state
        window = [prepare_batch(self.model, b, self._batch_generator, self.tokenizer) for b in window]
        if not self._keys_checked:
            check_batch_keys(self.model, window[0])
            self._keys_checked = True
        loss = self._update(window)
        if loss is None:  # no label token in the whole window: no update, no events (the batches still count)
            return False
        state["since_eval"][0] += loss
        state["since_eval"][1] += 1
        step = state["global_step"]
        stop = opts.max_steps is not None and step >= opts.max_steps
        if stop:
            state["stop_reason"] = "max_steps"
        elif self._budget is not None:
            elapsed = all_reduce_sums([time.perf_counter() - self._started], self.device, self.dist)[0]
            elapsed /= self.dist.world_size  # every rank gets the same number, so all plan and stop together
            state["planned_steps"] = self._budget.plan(step, elapsed)
            self.progress.set_total(state["planned_steps"])
            if self._budget.out_of_time(elapsed):
                stop, state["stop_reason"] = True, "max_time"
        self.progress.update(loss, step, state["epoch"], self._lr(), state["tokens_seen"], force=stop)
        if opts.eval_every is not None and (step % opts.eval_every == 0 or stop):
            stop = self._evaluate_and_track() or stop
        if opts.save_every is not None and step % opts.save_every == 0 and not stop:
            self._save_step_checkpoint()
        return stop

    def _total_steps(self, epochs: int) -> int | None:
        if self.options.max_steps is not None:
            return self.options.max_steps
        if self.options.lr_scheduler == "constant":
            return None
        if not hasattr(self.train_dataloader, "__len__"):
            raise InputError(f"lr_scheduler={self.options.lr_scheduler!r} with an unsized dataloader needs max_steps")
        return epochs * math.ceil(len(self.train_dataloader) / self.options.gradient_accumulation_steps)

    def _finish(self) -> dict[str, Any]:
        state, es = self.state, self.early_stopping
        if state["stop_reason"] is None:
            state["stop_reason"] = "epochs"
        if state["last_eval_step"] != state["global_step"]:
            self._evaluate_and_track()
        early = state["stop_reason"] == "early_stopping"
        restored = early and self._restore_best()
        self._save(self.checkpoint_dir / "final", slim=True)
        if self.dist.is_main:
            if self.options.plot:
                self.metrics.plot(state["history"])
            self.metrics.close()
        free_loss_buffers()  # the loss's kept gradient buffer is as large as a batch's logits
        return {
            "early_stopped": early, "epochs_completed": state["epochs_completed"], "global_step": state["global_step"],
            "best_val_loss": es.best, "best_step": es.best_step, "history": list(state["history"]),
            "restored_best": restored, "stop_reason": state["stop_reason"], "tokens_seen": state["tokens_seen"],
            "best_checkpoint": str(self.checkpoint_dir / "best") if es.best_step is not None else None,
            "final_checkpoint": str(self.checkpoint_dir / "final"),
        }
