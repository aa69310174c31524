"""Quality: held-out bits per character of ``main.py train`` with its budget-aware recipe on Tiny Shakespeare, for
the budgets users pick (3 minutes, the default run's 8 minutes, and 30 minutes) on this machine's CPU.

The first 90% of the text is the training file (``main.py train --data_path train90.txt --max_minutes B``, no
other flag: the recipe in training/recipe.py chooses the model); the last 10% is never seen and is scored as
total validation nats / validation characters / ln 2 (training/evaluation/bits_per_char.py), which compares
across tokenizers: nanoGPT's character-level model reaches 1.47 nats/char = 2.12 bits/char at 10.7M parameters on
a GPU. Every row records the run's train-text bits/char too (overfitting shows as a gap), the sample each model
writes for "ROMEO:", the date, versions and machine load. Runs are serial; the budget is wall-clock time, so run
it on a quiet machine.

Usage: python bench/quality_tinyshakespeare.py [--budgets 3 8 30] [--out bench/results/quality_tinyshakespeare.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tinyshakespeare_runs import split_corpus, train_and_score

MUSTS = {3.0: 2.20, 8.0: 2.10, 30.0: 2.05}
NANOGPT_GPU = 2.12


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budgets", type=float, nargs="+", default=[3.0, 8.0, 30.0], help="minutes per run")
    parser.add_argument("--work", default="/tmp/minillm-quality", help="where the run directories go")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "quality_tinyshakespeare.json"))
    args = parser.parse_args()
    work = Path(args.work)
    train_file, val_text = split_corpus(work)
    rows = []
    for minutes in args.budgets:
        print(f"training with the recipe for {minutes:g} minutes ...", flush=True)
        rows.append(train_and_score([], minutes, work / f"recipe-{minutes:g}", train_file, val_text))
        if args.out:
            _write(args.out, rows)  # after every run: an interrupted bench keeps what it measured
    print(f"\n{'budget':>7} {'model':<58} {'train':>7} {'val':>7} {'must':>6}")
    for row in rows:
        must = MUSTS.get(row["minutes"])
        print(f"{row['minutes']:>6g}m {row['model'][:58]:<58} {row['train_bits_per_char']:>7.3f} "
              f"{row['val_bits_per_char']:>7.3f} {must if must else '':>6}")
    print(f"(bits per character of the held-out last 10%; nanoGPT's character model on a GPU: {NANOGPT_GPU})")
    for row in rows:
        print(f"\n--- sample after {row['minutes']:g} minutes ---\n{row['sample']}")


def _write(out: str, rows: list[dict]) -> None:
    """Write ``rows`` to ``out``, keeping the rows already there for budgets this call did not run (so
    ``--budgets 30`` replaces only the 30-minute row)."""
    from minillm.atomic import atomic_write_text

    path = Path(out)
    fresh = {row["minutes"] for row in rows}
    kept = json.loads(path.read_text())["rows"] if path.exists() else []
    merged = sorted([row for row in kept if row["minutes"] not in fresh] + rows, key=lambda row: row["minutes"])
    atomic_write_text(out, json.dumps({"reference": {"nanoGPT_char_gpu_bits_per_char": NANOGPT_GPU},
                                       "musts": {f"{k:g}": v for k, v in MUSTS.items()}, "rows": merged},
                                      indent=2) + "\n")


if __name__ == "__main__":
    main()
