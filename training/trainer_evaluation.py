"""The Trainer's evaluation side: the validation loss, and what each evaluation decides (early stopping, a new
``best/``). A mixin of :class:`training.trainer.Trainer`, kept apart so the loop reads on one screen.
"""

from __future__ import annotations

import logging

import torch

from minillm.errors import InputError

from .batch_ops import loss_of, loss_weight, prepare_batch, to_device
from .distributed import all_reduce_sums
from .epoch_order import isolated_rng

logger = logging.getLogger(__name__)


class EvaluationMixin:
    """evaluate() and the per-evaluation bookkeeping for the Trainer."""

    @torch.no_grad()
    def evaluate(self) -> float:
        """Token-weighted mean validation loss (averaged over all ranks under torchrun).

        The batch hook draws from a generator seeded the same way at every evaluation, so evaluations compare.
        """
        if self.val_dataloader is None:
            raise InputError("evaluate() needs a val_dataloader")
        was_training = self.model.training
        self.model.eval()
        generator = torch.Generator().manual_seed(self.options.seed + 1)
        total = weight = 0.0
        try:
            with isolated_rng(self.device):
                for batch in self.val_dataloader:
                    batch = prepare_batch(self.model, batch, generator, self.tokenizer)
                    w = loss_weight(batch)
                    if w == 0 and not self._fsdp:  # no label tokens: its loss is 0/0 (FSDP ranks must all run forward)
                        continue
                    with self._autocast():
                        loss = loss_of(self.model(**to_device(batch, self.device)), self.state["global_step"])
                    if w:
                        total += float(loss.float().item()) * w
                        weight += w
        finally:
            self.model.train(was_training)
        total, weight = all_reduce_sums([total, weight], self.device, self.dist)
        if weight == 0:
            raise InputError("val_dataloader yielded no batches (or no label tokens); check the validation data")
        return total / weight

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
            self._save(self.checkpoint_dir / "best", slim=True)
        if self.early_stopping.should_stop:
            state["stop_reason"] = "early_stopping"
            logger.info("early stopping at step %d: no improvement in %d evaluations", step, self.early_stopping.patience)
            return True
        return False


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"

