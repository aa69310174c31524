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

import contextlib
import logging
import math
import os
import random
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from minillm.devices import bf16_is_fast
from minillm.errors import InputError

from . import trainer_state as ts
from .batch_ops import count_tokens, loss_of, loss_weight, to_device, zero_loss
from .checkpoints import (
    claim_for_fresh_run,
    find_latest_checkpoint,
    gather_for_save,
    load_optimizer_state,
    load_weights,
    recover_interrupted,
    rotate_checkpoints,
    save_checkpoint,
)
from .distributed import (
    all_reduce_sums,
    barrier,
    init_distributed,
    no_sync,
    resolve_device,
    shard_loader,
    wrap_model,
)
from .early_stopping import EarlyStopping
from .epoch_order import epoch_batches, isolated_rng
from .errors import TrainingError
from .metrics_log import MetricsLog
from .options import TrainerOptions, validate_inputs
from .progress import Progress, progress_total
from .schedules import lr_factor, set_learning_rate

logger = logging.getLogger(__name__)


class Trainer:
    """Train ``model`` on dict batches with AdamW, early stopping, exact resume and optional DDP.

    Args:
        model: any ``torch.nn.Module`` whose ``model(**batch)`` returns an output with ``.loss`` and that has
            ``save_pretrained(dir)``.
        train_dataloader / val_dataloader: iterables of dict batches (DataLoaders or lists); no validation set
            means early stopping watches the training loss.
        learning_rate: peak AdamW learning rate.
        checkpoint_dir: where checkpoints, ``best/``, ``final/`` and ``metrics.jsonl`` go (created, must be writable).
        device: "cuda", "mps", "cpu" or "auto".
        early_stopping_patience / early_stopping_min_delta: see :class:`EarlyStopping` (patience None: never stop).
        tokenizer: saved into every checkpoint when given.
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
            _check_writable(self.checkpoint_dir)
        self.model = model
        if any(p.device != self.device for p in model.parameters()):
            model.to(self.device)
        if opts.gradient_checkpointing:
            enable = getattr(model, "gradient_checkpointing_enable", None)
            if enable is None:
                raise InputError(f"gradient_checkpointing=True but {type(model).__name__} has no gradient_checkpointing_enable()")
            enable()
        self.train_dataloader = shard_loader(train_dataloader, self.dist, opts.seed)
        self.val_dataloader = shard_loader(val_dataloader, self.dist, opts.seed)
        self.tokenizer = tokenizer
        self.learning_rate = float(learning_rate)
        self._engine = wrap_model(model, self.device, self.dist, opts.fsdp)  # FSDP shards in place: before AdamW
        self._fsdp = opts.fsdp and self.dist.enabled
        self.optimizer = self._build_optimizer()
        self.base_lrs = [g["lr"] for g in self.optimizer.param_groups]
        self._autocast_dtype, self.scaler = self._mixed_precision()
        self.metrics = MetricsLog(self.checkpoint_dir, enabled=self.dist.is_main, tensorboard=opts.tensorboard)
        self.state: dict[str, Any] = {
            "global_step": 0, "epoch": 0, "batches_done": 0, "epochs_completed": 0, "total_steps": None,
            "history": [], "since_eval": [0.0, 0.0], "tokens_seen": 0, "last_eval_step": None,
            "stop_reason": None, "seed": opts.seed,
        }

    # ------------------------------------------------------------------ setup
    def _build_optimizer(self) -> torch.optim.Optimizer:
        named = [(n, p) for n, p in self.model.named_parameters() if p.requires_grad]
        if not named:
            raise InputError(f"{type(self.model).__name__} has no parameter with requires_grad=True; nothing to train")
        decay = [p for _, p in named if p.dim() >= 2]
        no_decay = [p for _, p in named if p.dim() < 2]
        groups = [{"params": decay, "weight_decay": self.options.weight_decay},
                  {"params": no_decay, "weight_decay": 0.0}]
        groups = [g for g in groups if g["params"]]
        return torch.optim.AdamW(groups, lr=self.learning_rate, betas=tuple(self.options.adam_betas),
                                 eps=self.options.adam_eps)

    def _mixed_precision(self) -> tuple[torch.dtype | None, Any]:
        mode, kind = self.options.mixed_precision, self.device.type
        if mode == "auto":
            mode = "bf16" if bf16_is_fast(self.device) else None
        if mode is None:
            return None, None
        if mode == "fp16":
            if kind != "cuda":
                raise InputError(f"mixed_precision='fp16' needs CUDA (device is {kind}); use 'bf16' or None")
            return torch.float16, torch.amp.GradScaler("cuda")
        if kind == "cuda" and not torch.cuda.is_bf16_supported():
            raise InputError("mixed_precision='bf16' but this GPU has no bf16 support; use 'fp16'")
        return torch.bfloat16, None

    def _autocast(self) -> Any:
        if self._autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self._autocast_dtype)

    # ------------------------------------------------------------------ public API
    def train(self, epochs: int = 1, resume_from_checkpoint: str | os.PathLike | bool | None = None) -> dict[str, Any]:
        """Train for ``epochs`` (or ``max_steps`` updates); return a summary dict.

        ``resume_from_checkpoint``: a ``checkpoint-STEP`` directory, or True for the latest complete one under
        ``checkpoint_dir`` (a fresh start when there is none). The result holds ``early_stopped``,
        ``epochs_completed``, ``global_step``, ``best_val_loss`` (the best monitored value), ``history`` (one
        entry per evaluation), ``restored_best``, ``stop_reason``, ``best_checkpoint`` and ``final_checkpoint``.
        """
        if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 1:
            raise InputError(f"epochs must be a positive int, got {epochs!r}")
        opts, state = self.options, self.state
        if self.dist.is_main:
            recover_interrupted(self.checkpoint_dir)
        barrier(self.dist)
        if resume_from_checkpoint:
            self._resume(resume_from_checkpoint)
        elif state["global_step"] == 0:
            self._claim_fresh_start()
            _seed_everything(opts.seed)
            self.metrics.truncate_after(0)
        if state["stop_reason"] in ("epochs", "max_steps", "max_time"):
            state["stop_reason"] = None  # a later call may train further; early stopping stays final
        if state["total_steps"] is None:
            state["total_steps"] = self._total_steps(epochs)
        total = progress_total(opts.max_steps, state["total_steps"], self.train_dataloader, epochs,
                               opts.gradient_accumulation_steps)
        self.progress = Progress(self.metrics, opts.log_every, self.dist.world_size,
                                 opts.progress_bar and self.dist.is_main, total, state["global_step"],
                                 state["tokens_seen"])
        self.model.train()
        if opts.max_steps is not None and state["global_step"] >= opts.max_steps and state["stop_reason"] is None:
            state["stop_reason"] = "max_steps"  # resumed from the last step: nothing more to train
        stop = state["stop_reason"] is not None
        self._started = time.perf_counter()
        while not stop and (opts.max_steps is not None or state["epoch"] < epochs):
            epoch = state["epoch"]
            batches = epoch_batches(self.train_dataloader, epoch, opts.seed, state["batches_done"], self.device)
            window: list[Any] = []
            trained_any = state["batches_done"] > 0
            for batch in batches:
                window.append(batch)
                if len(window) < opts.gradient_accumulation_steps:
                    continue
                stop = self._update_and_events(window)
                window, trained_any = [], True
                if stop:
                    break
            if not stop and window:
                stop = self._update_and_events(window)
                trained_any = True
            if not trained_any:
                raise InputError(f"train_dataloader yielded no batches in epoch {epoch}; check the dataset")
            if stop and hasattr(self.train_dataloader, "__len__") and state["batches_done"] >= len(self.train_dataloader):
                state.update(epoch=epoch + 1, batches_done=0, epochs_completed=epoch + 1)  # stopped on its last batch
            if stop:
                if state["stop_reason"] in ("max_steps", "max_time"):
                    if state["last_eval_step"] != state["global_step"]:
                        self._evaluate_and_track()
                    self._save_step_checkpoint()
                break
            state.update(epoch=epoch + 1, batches_done=0, epochs_completed=epoch + 1)
            if opts.eval_every is None and state["last_eval_step"] != state["global_step"]:
                stop = self._evaluate_and_track() or stop
            if opts.save_every is None or stop:
                self._save_step_checkpoint()
        self.progress.flush(state["global_step"], state["epoch"], self._lr(), state["tokens_seen"])
        self.progress.close()
        return self._finish()

    @torch.no_grad()
    def evaluate(self) -> float:
        """Token-weighted mean validation loss (averaged over all ranks under torchrun)."""
        if self.val_dataloader is None:
            raise InputError("evaluate() needs a val_dataloader")
        was_training = self.model.training
        self.model.eval()
        total = weight = 0.0
        try:
            with isolated_rng(self.device):
                for batch in self.val_dataloader:
                    w = loss_weight(batch)
                    if w == 0 and not self._fsdp:  # no label tokens: its loss is 0/0 (FSDP ranks must all run forward)
                        continue
                    batch = to_device(batch, self.device)
                    with self._autocast():
                        loss = loss_of(self.model(**batch), self.state["global_step"])
                    if w:
                        total += float(loss.float().item()) * w
                        weight += w
        finally:
            self.model.train(was_training)
        total, weight = all_reduce_sums([total, weight], self.device, self.dist)
        if weight == 0:
            raise InputError("val_dataloader yielded no batches (or no label tokens); check the validation data")
        return total / weight

    # ------------------------------------------------------------------ one update
    def _update_and_events(self, window: list[Any]) -> bool:
        """One optimizer update over ``window`` micro-batches, then eval / save / stop checks. True = stop."""
        opts, state = self.options, self.state
        loss = self._update(window)
        if loss is None:  # no label token in the whole window: no update, no events (the batches still count)
            return False
        state["since_eval"][0] += loss
        state["since_eval"][1] += 1
        step = state["global_step"]
        stop = opts.max_steps is not None and step >= opts.max_steps
        if stop:
            state["stop_reason"] = "max_steps"
        elif opts.max_minutes is not None and self._out_of_time():
            stop, state["stop_reason"] = True, "max_time"
        self.progress.update(loss, step, state["epoch"], self._lr(), state["tokens_seen"], force=stop)
        if opts.eval_every is not None and (step % opts.eval_every == 0 or stop):
            stop = self._evaluate_and_track() or stop
        if opts.save_every is not None and step % opts.save_every == 0 and not stop:
            self._save_step_checkpoint()
        return stop

    def _out_of_time(self) -> bool:
        """True once ``max_minutes`` of training have passed (on any rank, so all ranks stop together)."""
        over = (time.perf_counter() - self._started) / 60 >= self.options.max_minutes
        return all_reduce_sums([float(over)], self.device, self.dist)[0] > 0

    def _update(self, window: list[Any]) -> float | None:
        """Forward/backward over ``window`` and one optimizer step; the window's mean loss (token-weighted).

        Micro-batches without a label token (all ``-100``, e.g. an MLM batch where nothing was masked) have a 0/0
        loss: they are counted as done but not trained on. A window with no label token at all (on every rank)
        makes no optimizer step and returns None.
        """
        state = self.state
        step = state["global_step"] + 1
        weights = [loss_weight(b) for b in window]
        total_weight = sum(weights)
        if self.dist.enabled:  # every rank must agree whether this window makes a step
            any_labels = all_reduce_sums([float(total_weight > 0)], self.device, self.dist)[0] > 0
        else:
            any_labels = total_weight > 0
        loss_sum = torch.zeros((), device=self.device)
        for i, (batch, w) in enumerate(zip(window, weights, strict=True)):
            state["tokens_seen"] += count_tokens(batch)
            state["batches_done"] += 1
            if w == 0 and not (self.dist.enabled and any_labels):
                continue  # one process: nothing to learn here (under DDP/FSDP every rank must run the same passes)
            share = (w / total_weight if len(window) > 1 else 1.0) if w else 0.0
            sync = i == len(window) - 1
            with contextlib.nullcontext() if sync else no_sync(self._engine, self.dist, self._fsdp):
                with self._autocast():
                    output = self._engine(**to_device(batch, self.device))
                    loss = loss_of(output, step)
                if w:
                    scaled = loss.float() * share
                else:  # a zero that still reaches every parameter, so the gradient all-reduce runs on this rank
                    scaled = zero_loss(output, loss)
                (self.scaler.scale(scaled) if self.scaler is not None else scaled).backward()
            loss_sum += scaled.detach()
        if not any_labels:
            self.optimizer.zero_grad(set_to_none=True)
            logger.warning("step %d: the %d micro-batch(es) before it hold no label token; no update made",
                           step, len(window))
            return None
        value = float(loss_sum.item())
        if not math.isfinite(value):
            raise TrainingError(
                f"loss is {value} at step {step} (epoch {state['epoch']}, batch {state['batches_done']}); training "
                f"stopped before the update. Lower the learning rate, enable max_grad_norm, or check the data"
            )
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)
        if self.options.max_grad_norm:
            torch.nn.utils.clip_grad_norm_(
                [p for g in self.optimizer.param_groups for p in g["params"]], self.options.max_grad_norm
            )
        set_learning_rate(self.optimizer, self.base_lrs, self._lr_factor(step - 1))
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        state["global_step"] = step
        return value

    def _lr(self) -> float:
        return self.optimizer.param_groups[0]["lr"]

    def _lr_factor(self, step: int) -> float:
        o = self.options
        return lr_factor(step, o.lr_scheduler, o.warmup_steps, self.state["total_steps"], o.min_lr_ratio)

    def _total_steps(self, epochs: int) -> int | None:
        if self.options.max_steps is not None:
            return self.options.max_steps
        if self.options.lr_scheduler == "constant":
            return None
        if not hasattr(self.train_dataloader, "__len__"):
            raise InputError(f"lr_scheduler={self.options.lr_scheduler!r} with an unsized dataloader needs max_steps")
        return epochs * math.ceil(len(self.train_dataloader) / self.options.gradient_accumulation_steps)

    # ------------------------------------------------------------------ eval, early stopping, checkpoints
    def _evaluate_and_track(self) -> bool:
        """Evaluate (or average the training loss), update early stopping, save best/. True = stop."""
        state = self.state
        since_sum, since_n = all_reduce_sums(state["since_eval"], self.device, self.dist)
        train_loss = since_sum / since_n if since_n else None
        val_loss = self.evaluate() if self.val_dataloader is not None else None
        monitored = val_loss if val_loss is not None else train_loss
        step = state["global_step"]
        improved = monitored is not None and self.early_stopping.step(monitored, step)
        record = {"step": step, "epoch": state["epochs_completed"], "train_loss": train_loss, "val_loss": val_loss,
                  "lr": self.optimizer.param_groups[0]["lr"], "improved": improved}
        state["history"].append(record)
        state["since_eval"] = [0.0, 0.0]
        state["last_eval_step"] = step
        self.metrics.write({**record, "event": "eval"})
        logger.info("step %d: train_loss %s val_loss %s%s", step, _fmt(train_loss), _fmt(val_loss),
                    " (best)" if improved else "")
        if improved:
            self._save(self.checkpoint_dir / "best")
        if self.early_stopping.should_stop:
            state["stop_reason"] = "early_stopping"
            logger.info("early stopping at step %d: no improvement in %d evaluations", step, self.early_stopping.patience)
            return True
        return False

    def _checkpoint_state(self) -> dict[str, Any]:
        return {**self.state, "early_stopping": self.early_stopping.state_dict(), "format_version": 1,
                "scaler": self.scaler.state_dict() if self.scaler is not None else None}

    def _save(self, path: Path) -> None:
        if self.dist.enabled:  # rank 0's state is saved for all: make the running train-loss sum the same on every rank
            total, count = all_reduce_sums(self.state["since_eval"], self.device, self.dist)
            self.state["since_eval"] = [total / self.dist.world_size, count / self.dist.world_size]
        gathered = gather_for_save(self.model, self.optimizer) if self._fsdp else None  # collective
        if self.dist.is_main:
            save_checkpoint(path, self.model, self.optimizer, self._checkpoint_state(), self.tokenizer, gathered)
        barrier(self.dist)

    def _save_step_checkpoint(self) -> None:
        self._save(self.checkpoint_dir / f"checkpoint-{self.state['global_step']}")
        if self.dist.is_main:
            rotate_checkpoints(self.checkpoint_dir, self.options.save_total_limit)

    def _claim_fresh_start(self) -> None:
        """Rank 0 checks (and with overwrite_output_dir clears) checkpoint_dir; every rank raises if it refuses."""
        error = None
        if self.dist.is_main:
            try:
                claim_for_fresh_run(self.checkpoint_dir, self.options.overwrite_output_dir)
            except ValueError as exc:
                error = exc
        if all_reduce_sums([float(error is not None)], self.device, self.dist)[0] > 0:  # also the barrier
            raise error or InputError(f"checkpoint_dir {str(self.checkpoint_dir)!r} already holds checkpoints "
                                      "of another run (see rank 0's error)")

    def _resume(self, source: str | os.PathLike | bool) -> None:
        path = find_latest_checkpoint(self.checkpoint_dir) if source is True else Path(source)
        if path is None:
            logger.info("no complete checkpoint under %s; starting fresh", self.checkpoint_dir)
            _seed_everything(self.options.seed)
            return
        saved = ts.read_state(path)
        load_weights(self.model, path, self._fsdp)
        load_optimizer_state(self.model, self.optimizer, path, saved["optimizer"], self._fsdp)
        if self.scaler is not None and saved.get("scaler"):
            self.scaler.load_state_dict(saved["scaler"])
        self.early_stopping.load_state_dict(saved["early_stopping"])
        for key in self.state:
            if key in saved:
                self.state[key] = saved[key]
        ts.restore_rng(ts.read_tensors(path, ts.RNG), saved["rng"])
        self.metrics.truncate_after(self.state["global_step"])
        best, source_best = self.checkpoint_dir / "best", path.parent / "best"
        if self.dist.is_main and not best.exists() and source_best.is_dir() and ts.is_complete(source_best):
            shutil.copytree(source_best, best)  # resuming into a new directory: bring the best model along
        logger.info("resumed from %s at step %d (epoch %d, batch %d)", path, self.state["global_step"],
                    self.state["epoch"], self.state["batches_done"])

    def _finish(self) -> dict[str, Any]:
        state, es = self.state, self.early_stopping
        if state["stop_reason"] is None:
            state["stop_reason"] = "epochs"
        if state["last_eval_step"] != state["global_step"]:
            self._evaluate_and_track()
        early = state["stop_reason"] == "early_stopping"
        best_dir = self.checkpoint_dir / "best"
        restored = False
        if early and self.options.restore_best and es.best_step is not None:
            if not ts.is_complete(best_dir):
                raise TrainingError(f"early stopping wants to restore the best model but {best_dir} is missing or incomplete")
            best_step = ts.read_state(best_dir)["global_step"]
            if best_step != es.best_step:
                raise TrainingError(f"{best_dir} holds step {best_step} but the best evaluation was at step {es.best_step}")
            load_weights(self.model, best_dir, self._fsdp)
            restored = True
            logger.info("restored the best weights (step %d, %s %.6f)", es.best_step, "monitored", es.best)
        self._save(self.checkpoint_dir / "final")
        if self.dist.is_main:
            if self.options.plot:
                self.metrics.plot(state["history"])
            self.metrics.close()
        return {
            "early_stopped": early, "epochs_completed": state["epochs_completed"], "global_step": state["global_step"],
            "best_val_loss": es.best, "best_step": es.best_step, "history": list(state["history"]),
            "restored_best": restored, "stop_reason": state["stop_reason"], "tokens_seen": state["tokens_seen"],
            "best_checkpoint": str(best_dir) if es.best_step is not None else None,
            "final_checkpoint": str(self.checkpoint_dir / "final"),
        }


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _check_writable(directory: Path) -> None:
    try:
        directory.mkdir(parents=True, exist_ok=True)
        probe = directory / f".write-test-{os.getpid()}"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise InputError(f"checkpoint_dir {str(directory)!r} is not writable ({exc}); pass a writable directory") from exc


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"

