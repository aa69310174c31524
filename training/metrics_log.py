"""Where training metrics go: ``metrics.jsonl``, TensorBoard (when installed) and a loss-curve PNG.

Only rank 0 of a distributed run writes (the Trainer passes ``enabled=False`` elsewhere).
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

from minillm.atomic import atomic_write_text

logger = logging.getLogger(__name__)

METRICS_FILE = "metrics.jsonl"
PLOT_FILE = "loss_curve.png"


class MetricsLog:
    """Append-only JSON-lines log of metric records, mirrored to TensorBoard when it is importable."""

    def __init__(self, directory: Path, enabled: bool = True, tensorboard: bool = True) -> None:
        self.directory = Path(directory)
        self.enabled = enabled
        self.path = self.directory / METRICS_FILE
        self._writer = None
        if enabled and tensorboard:
            self._writer = _tensorboard_writer(self.directory / "tensorboard")

    def truncate_after(self, step: int) -> None:
        """Drop records past ``step`` (a resumed run rewrites what the killed run logged after its checkpoint)."""
        if not self.enabled or not self.path.is_file():
            return
        kept = []
        for line in self.path.read_text().splitlines():
            try:
                if json.loads(line).get("step", 0) <= step:
                    kept.append(line)
            except json.JSONDecodeError:
                continue  # a line cut short by a kill
        atomic_write_text(self.path, "".join(k + "\n" for k in kept))  # a kill mid-write keeps the old file

    def write(self, record: dict[str, Any]) -> None:
        """Append one record (``step`` is required; numbers go to TensorBoard under their key)."""
        if not self.enabled:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as handle:
            handle.write(json.dumps(record) + "\n")
        if self._writer is not None:
            for key, value in record.items():
                if key != "step" and isinstance(value, (int, float)) and not isinstance(value, bool):
                    self._writer.add_scalar(key, value, record["step"])

    def close(self) -> None:
        """Flush and close TensorBoard."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def plot(self, history: list[dict[str, Any]]) -> Path | None:
        """Save train / validation loss against step to ``loss_curve.png``; None without matplotlib."""
        if not self.enabled or not history:
            return None
        try:
            from matplotlib.backends.backend_agg import FigureCanvasAgg
            from matplotlib.figure import Figure
        except ImportError:
            logger.info("matplotlib is not installed; no loss curve")
            return None
        figure = Figure(figsize=(6, 4))
        FigureCanvasAgg(figure)
        axes = figure.add_subplot()
        for key, label in (("train_loss", "train"), ("val_loss", "validation")):
            points = [(h["step"], h[key]) for h in history if h.get(key) is not None and math.isfinite(h[key])]
            if points:
                axes.plot(*zip(*points), marker="o", label=label)
        axes.set_xlabel("optimizer step")
        axes.set_ylabel("loss")
        axes.legend()
        axes.grid(alpha=0.3)
        figure.tight_layout()
        path = self.directory / PLOT_FILE
        figure.savefig(path, dpi=100)
        return path


def _tensorboard_writer(directory: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is an optional extra
        return None
    return SummaryWriter(log_dir=str(directory))
