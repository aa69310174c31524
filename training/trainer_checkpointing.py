"""The Trainer's checkpoint side: save (every rank's part), resume, refuse a fresh start over another run,
and load the best weights back. A mixin of :class:`training.trainer.Trainer`, kept apart so the loop reads on
one screen; it uses the Trainer's ``model``, ``optimizer``, ``scaler``, ``early_stopping``, ``state``,
``dist``, ``device`` and ``checkpoint_dir``.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import Any

from minillm.errors import InputError

from . import trainer_state as ts
from .checkpoints import (
    claim_for_fresh_run,
    find_latest_checkpoint,
    gather_for_save,
    load_optimizer_state,
    load_weights,
    rotate_checkpoints,
    save_checkpoint,
)
from .distributed import all_reduce_sums, barrier
from .errors import TrainingError

logger = logging.getLogger(__name__)
RNG_STAGING = ".rng-staging"  # where ranks > 0 leave their RNG file for rank 0 to put into the checkpoint


class CheckpointingMixin:
    """save / resume / restore-best for the Trainer (see the module docstring)."""

    def _checkpoint_state(self) -> dict[str, Any]:
        return {**self.state, "early_stopping": self.early_stopping.state_dict(), "format_version": 2,
                "world_size": self.dist.world_size,
                "scaler": self.scaler.state_dict() if self.scaler is not None else None}

    def _save(self, path: Path, slim: bool = False) -> None:
        """Write a complete checkpoint at ``path`` (collective under torchrun: every rank calls it).

        ``slim`` (``best/``, ``final/``): an adapter model writes its adapter, tokenizer and step only (no
        optimizer state, no RNG, no second copy of the weights); other models write a full checkpoint.
        """
        slim = slim and self._adapter_model
        staging = self.checkpoint_dir / RNG_STAGING
        if self.dist.enabled and not self.dist.is_main:  # written before the all-reduce below, which waits for it
            staging.mkdir(parents=True, exist_ok=True)
            ts.write_rank_rng(staging / ts.rank_rng_name(self.dist.rank), self._generators())
        if self.dist.enabled:  # rank 0's state is saved for all: make the running train-loss sum the same on every rank
            total, count = all_reduce_sums(self.state["since_eval"], self.device, self.dist)
            self.state["since_eval"] = [total / self.dist.world_size, count / self.dist.world_size]
        gathered = gather_for_save(self.model, self.optimizer) if self._fsdp else None  # collective
        if self.dist.is_main:
            ranks = [staging / ts.rank_rng_name(r) for r in range(1, self.dist.world_size)]
            save_checkpoint(path, self.model, self.optimizer, self._checkpoint_state(), self.tokenizer, gathered,
                            extra_rng=self._generators(), rank_rng_files=ranks, slim=slim)
            shutil.rmtree(staging, ignore_errors=True)
        barrier(self.dist)

    @property
    def _adapter_model(self) -> bool:
        """Whether the model is a peft model (it saves its adapter alone; ``peft_config`` is peft's mark)."""
        return hasattr(self.model, "peft_config")

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

    def _resume(self, source: str | os.PathLike | bool) -> bool:
        """Load a checkpoint (True: the latest under checkpoint_dir); False when there is none to load."""
        path = find_latest_checkpoint(self.checkpoint_dir) if source is True else Path(source)
        if path is None:
            logger.info("no complete checkpoint under %s; starting fresh", self.checkpoint_dir)
            return False
        saved = ts.read_state(path)
        load_weights(self.model, path, self._fsdp)
        load_optimizer_state(self.model, self.optimizer, path, saved["optimizer"], self._fsdp)
        if self.scaler is not None and saved.get("scaler"):
            self.scaler.load_state_dict(saved["scaler"])
        self.early_stopping.load_state_dict(saved["early_stopping"])
        for key in self.state:
            if key in saved:
                self.state[key] = saved[key]
        self._restore_rng(path, saved)
        self.metrics.truncate_after(self.state["global_step"])
        best, source_best = self.checkpoint_dir / "best", path.parent / "best"
        if self.dist.is_main and not best.exists() and source_best.is_dir() and ts.is_complete(source_best):
            shutil.copytree(source_best, best)  # resuming into a new directory: bring the best model along
        logger.info("resumed from %s at step %d (epoch %d, batch %d)", path, self.state["global_step"],
                    self.state["epoch"], self.state["batches_done"])
        return True

    def _restore_rng(self, path: Path, saved: dict[str, Any]) -> None:
        """This rank's generators: its own file under torchrun, rank 0's otherwise (and for older checkpoints)."""
        own = ts.read_rank_rng(path, self.dist.rank)
        if own is None and self.dist.rank > 0:
            logger.warning("%s holds no RNG state for rank %d (saved with world size %s); using rank 0's", path,
                           self.dist.rank, saved.get("world_size", "unknown"))
        tensors, meta = own if own is not None else (ts.read_tensors(path, ts.RNG), saved["rng"])
        ts.restore_rng(tensors, meta, self._generators())

    def _restore_best(self) -> bool:
        """After early stopping, load ``best/`` back (checking it is the best evaluation's). True when loaded."""
        es, best_dir = self.early_stopping, self.checkpoint_dir / "best"
        if not (self.options.restore_best and es.best_step is not None):
            return False
        if not ts.is_complete(best_dir):
            raise TrainingError(f"early stopping wants to restore the best model but {best_dir} is missing or incomplete")
        best_step = ts.read_state(best_dir)["global_step"]
        if best_step != es.best_step:
            raise TrainingError(f"{best_dir} holds step {best_step} but the best evaluation was at step {es.best_step}")
        load_weights(self.model, best_dir, self._fsdp)
        logger.info("restored the best weights (step %d, monitored %.6f)", es.best_step, es.best)
        return True
