"""compare: two or more ``evaluate`` results files of one question bank -> a Markdown report and a PNG chart.

Writes ``comparison.md`` (one row per model: label, model, adapter, n, accuracy, ROUGE-L, keyword coverage,
perplexity, mean and total seconds, the best in bold; then every question with each model's response, trimmed)
and ``comparison.png`` (scores, perplexity and mean seconds per answer, per model) into ``--output_dir`` (default:
the folder of the first file), and prints the table. Files from different banks, or files ``evaluate`` did not
write, are refused in one line. See :mod:`training.evaluation.report` and :mod:`training.evaluation.chart`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

EXAMPLES = """examples:
  python main.py compare results/baseline.json results/qlora.json results/full.json
  python main.py compare results/*.json --output_dir report/
  python scripts/compare.py results/baseline.json results/full.json --output-dir report/
"""

REPORT_NAME = "comparison.md"
CHART_NAME = "comparison.png"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("results", nargs="+", metavar="RESULTS.json",
                        help="results files written by evaluate (two or more, of one question bank)")
    parser.add_argument("--output_dir", default=None,
                        help="where comparison.md and comparison.png go (default: the first file's folder)")
    parser.add_argument("--verbose", action="store_true")


def main(args: argparse.Namespace) -> int:
    from minillm.atomic import atomic_write_text
    from training.evaluation.chart import write_chart
    from training.evaluation.comparison import load_runs
    from training.evaluation.report import markdown_report, summary_table

    runs = load_runs(args.results)
    output_dir = Path(args.output_dir) if args.output_dir else Path(args.results[0]).resolve().parent
    if output_dir.exists() and not output_dir.is_dir():
        raise NotADirectoryError(f"--output_dir {str(output_dir)!r} is a file; pass a folder")
    output_dir.mkdir(parents=True, exist_ok=True)
    report = output_dir / REPORT_NAME
    chart = write_chart(runs, output_dir / CHART_NAME)
    atomic_write_text(report, markdown_report(runs, chart_name=CHART_NAME))
    print(summary_table(runs))
    print(f"\n[compare] {len(runs)} runs, {len(runs[0].items)} questions -> {report}, {chart}")
    return 0


if __name__ == "__main__":  # python scripts/compare.py ..., from the project root
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from main import run_as_script

    run_as_script("compare")
