"""The Trainer's optimizer update: forward and backward over a window of micro-batches (token-weighted, with
autocast, the loss scaler and DDP/FSDP gradient sync on the last one), clipping, the learning-rate plan, and the
step. A mixin of :class:`training.trainer.Trainer`, kept apart so the loop reads on one screen.
"""

from __future__ import annotations

import contextlib
import logging
import math
from typing import Any

import torch

from .batch_ops import count_tokens, loss_of, loss_weight, to_device, zero_loss
from .distributed import all_reduce_sums, no_sync
from .errors import TrainingError
from .schedules import lr_factor, set_learning_rate
from .stop_rules import TimeBudget

logger = logging.getLogger(__name__)


class UpdateMixin:
    """_update() and the learning-rate schedule for the Trainer."""

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
        """The schedule at update ``step``; a time budget plans it for the updates the budget holds."""
        o, total, warmup = self.options, self.state["total_steps"], self.options.warmup_steps
        if self._budget is not None and self.state["planned_steps"] is not None:
            total = self.state["planned_steps"]
            warmup = TimeBudget.warmup(warmup, total)
        return lr_factor(step, o.lr_scheduler, warmup, total, o.min_lr_ratio)
