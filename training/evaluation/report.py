"""The comparison report in Markdown: one row per model, the best value of each column in bold, then every
question with each model's response (trimmed).

Scores are shown with 3 decimals, perplexity and seconds with 2; a run without a score shows ``-``. Higher is
better for accuracy, ROUGE-L and keyword coverage, lower for perplexity and time; the best is bolded only where
two or more runs have a value (ties: all of them).
"""

from __future__ import annotations

from collections.abc import Sequence

from .comparison import RunResults

# (summary key, column title, decimals, higher is better)
COLUMNS: tuple[tuple[str, str, int, bool], ...] = (
    ("accuracy", "accuracy", 3, True),
    ("rouge_l", "ROUGE-L", 3, True),
    ("keyword_coverage", "keyword coverage", 3, True),
    ("perplexity", "perplexity", 2, False),
    ("mean_seconds", "mean s", 2, False),
    ("total_seconds", "total s", 2, False),
)
RESPONSE_WIDTH = 120
NOTES = ("Accuracy: yes/no/maybe questions (the first of those words in the response); ROUGE-L: F-measure, "
         "stemmed, against the reference answer; keyword coverage: share of keywords found; perplexity: on the "
         "held-out text each run was given; seconds: per answer, generation and decoding.")


def format_value(value: float | None, decimals: int) -> str:
    """``value`` with ``decimals`` decimals, ``-`` for None."""
    return "-" if value is None else f"{value:.{decimals}f}"


def summary_table(runs: Sequence[RunResults]) -> str:
    """The per-model Markdown table (label, model, adapter, n, the scores, perplexity, mean and total seconds)."""
    header = ["label", "model", "adapter", "n", *(title for _, title, _, _ in COLUMNS)]
    best = {key: _best(runs, key, decimals, higher) for key, _, decimals, higher in COLUMNS}
    lines = [_row(header), _row(["---"] * len(header))]
    for run in runs:
        cells = [_cell(run.label), _cell(run.model), _cell(run.adapter or "-"), str(run.summary["n"])]
        for key, _, decimals, _ in COLUMNS:
            shown = format_value(run.summary.get(key), decimals)
            cells.append(f"**{shown}**" if shown != "-" and shown in best[key] else shown)
        lines.append(_row(cells))
    return "\n".join(lines)


def responses_table(runs: Sequence[RunResults], width: int = RESPONSE_WIDTH) -> str:
    """One row per question (in the first run's order): id, category, question, each run's response."""
    header = ["id", "category", "question", *(run.label for run in runs)]
    lines = [_row([_cell(h) for h in header]), _row(["---"] * len(header))]
    answers = [run.by_id() for run in runs]
    for item in runs[0].items:
        key = str(item["id"])
        cells = [_cell(str(item["id"])), _cell(item.get("category") or "-"), _cell(_trim(item["question"], width))]
        cells += [_cell(_trim(by_id[key]["response"], width)) or "(empty)" for by_id in answers]
        lines.append(_row(cells))
    return "\n".join(lines)


def markdown_report(runs: Sequence[RunResults], chart_name: str | None = "comparison.png") -> str:
    """The whole report: title, the files compared, the summary table, the chart, the responses."""
    sources = "\n".join(f"- `{run.label}`: {run.path}" for run in runs)
    parts = ["# Evaluation comparison", "", f"{len(runs[0].items)} questions, {len(runs)} runs:", "", sources, "",
             "## Scores", "", summary_table(runs), "",
             NOTES, ""]
    if chart_name:
        parts += [f"![scores and time per model]({chart_name})", ""]
    parts += ["## Responses", "", responses_table(runs), ""]
    return "\n".join(parts)


def _best(runs: Sequence[RunResults], key: str, decimals: int, higher: bool) -> set[str]:
    """The shown value(s) of the best run for ``key``; empty when fewer than two runs have one."""
    values = [run.summary.get(key) for run in runs if run.summary.get(key) is not None]
    if len(values) < 2:
        return set()
    best = max(values) if higher else min(values)
    return {format_value(best, decimals)}


def _trim(text: str, width: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _cell(text: str) -> str:
    """``text`` safe inside a Markdown table cell (one line, pipes escaped)."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"
