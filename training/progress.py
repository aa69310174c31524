"""Progress of a run: the tqdm bar (loss, lr, tokens/s) and the periodic ``metrics.jsonl`` records."""

from __future__ import annotations

import time
from typing import Any

from .metrics_log import MetricsLog


class Progress:
    """Collect per-update losses; every ``log_every`` updates write a record and refresh the bar."""

    def __init__(self, metrics: MetricsLog, log_every: int, world_size: int, bar: bool, total: int | None,
                 step: int, tokens: int) -> None:
        self.metrics, self.log_every, self.world_size = metrics, log_every, world_size
        self.recent: list[float] = []
        self.last = (time.perf_counter(), tokens)
        self.bar = None
        if bar:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, initial=step, desc="train", dynamic_ncols=True)

    def set_total(self, total: int | None) -> None:
        """Count the bar to ``total`` updates (a time budget's plan changes as updates are timed)."""
        if self.bar is not None and total is not None and total != self.bar.total:
            self.bar.total = total
            self.bar.refresh()

    def update(self, loss: float, step: int, epoch: int, lr: float, tokens: int, force: bool = False) -> None:
        """Record the loss of update ``step``; log when due (or ``force``)."""
        self.recent.append(loss)
        if self.bar is not None:
            self.bar.update(1)
        if force or step % self.log_every == 0:
            self.flush(step, epoch, lr, tokens)

    def flush(self, step: int, epoch: int, lr: float, tokens: int) -> None:
        """Write the mean loss since the last record, the learning rate and tokens/s (all ranks' tokens)."""
        if not self.recent:
            return
        now = time.perf_counter()
        rate = (tokens - self.last[1]) * self.world_size / max(now - self.last[0], 1e-9)
        loss = sum(self.recent) / len(self.recent)
        self.recent.clear()
        self.last = (now, tokens)
        self.metrics.write({"step": step, "epoch": epoch, "loss": loss, "lr": lr, "tokens_per_s": rate})
        if self.bar is not None:
            self.bar.set_postfix(loss=f"{loss:.4f}", lr=f"{lr:.2e}", tok_s=f"{rate:,.0f}", refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def progress_total(max_steps: int | None, total_steps: int | None, loader: Any, epochs: int, accumulation: int) -> int | None:
    """Number of updates the bar counts to, when it can be known."""
    total = max_steps or total_steps
    if total is None and hasattr(loader, "__len__"):
        total = epochs * -(-len(loader) // accumulation)
    return total
