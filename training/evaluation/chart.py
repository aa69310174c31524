"""The comparison chart: a PNG of three panels, always ``SIZE`` pixels (matplotlib, Agg backend).

1. scores: grouped bars, one group per score (accuracy, ROUGE-L, keyword coverage: those any run has), one bar
   per model, on a 0-1 axis;
2. perplexity per model (lower is better), or a note when no run measured it;
3. mean seconds per answer per model.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from .comparison import RunResults

SIZE = (1200, 450)  # pixels (width, height)
DPI = 100
SCORES = (("accuracy", "accuracy"), ("rouge_l", "ROUGE-L"), ("keyword_coverage", "keyword coverage"))


def write_chart(runs: Sequence[RunResults], path: str | os.PathLike) -> Path:
    """Draw the chart of ``runs`` into ``path`` (PNG, written atomically); returns ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [run.label for run in runs]
    colours = [plt.get_cmap("tab10")(i % 10) for i in range(len(runs))]
    figure, (scores, perplexity, seconds) = plt.subplots(
        1, 3, figsize=(SIZE[0] / DPI, SIZE[1] / DPI), dpi=DPI, gridspec_kw={"width_ratios": [2, 1, 1]})
    _score_bars(scores, runs, colours)
    values = [run.summary.get("perplexity") for run in runs]
    if any(v is not None for v in values):
        _bars(perplexity, labels, [v if v is not None else 0.0 for v in values], colours, "{:.2f}")
        perplexity.set_title("perplexity (lower is better)")
    else:
        perplexity.set_axis_off()
        perplexity.text(0.5, 0.5, "no perplexity measured\n(evaluate --perplexity_data)", ha="center",
                        va="center", transform=perplexity.transAxes)
    _bars(seconds, labels, [run.summary.get("mean_seconds") or 0.0 for run in runs], colours, "{:.2f}")
    seconds.set_title("mean seconds per answer")
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    figure.savefig(temporary, format="png", dpi=DPI)
    plt.close(figure)
    os.replace(temporary, path)
    return path


def _score_bars(axis, runs: Sequence[RunResults], colours: list) -> None:
    present = [(key, title) for key, title in SCORES if any(run.summary.get(key) is not None for run in runs)]
    axis.set_title("scores (higher is better)")
    if not present:
        axis.set_axis_off()
        axis.text(0.5, 0.5, "no scores: the bank has no answers or keywords", ha="center", va="center",
                  transform=axis.transAxes)
        return
    width = 0.8 / len(runs)
    for index, (run, colour) in enumerate(zip(runs, colours, strict=True)):
        xs = [group + (index - (len(runs) - 1) / 2) * width for group in range(len(present))]
        heights = [run.summary.get(key) or 0.0 for key, _ in present]
        bars = axis.bar(xs, heights, width=width, color=colour, label=run.label)
        axis.bar_label(bars, labels=[f"{h:.2f}" for h in heights], fontsize=7)
    axis.set_xticks(range(len(present)), [title for _, title in present])
    axis.set_ylim(0, 1.1)
    axis.legend(fontsize=8, loc="upper right")


def _bars(axis, labels: list[str], values: list[float], colours: list, fmt: str) -> None:
    bars = axis.bar(range(len(labels)), values, color=colours)
    axis.bar_label(bars, labels=[fmt.format(v) for v in values], fontsize=7)
    axis.set_xticks(range(len(labels)), labels, rotation=20, ha="right", fontsize=8)
