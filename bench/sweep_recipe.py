"""The sweep behind ``train``'s budget-aware recipe (training/recipe.py): model size x vocabulary x budget on Tiny
Shakespeare, each run through ``main.py train`` and scored on the held-out last 10% in bits per character.

Each run is recorded in ``bench/results/recipe_sweep.json`` as soon as it ends (a rerun skips recorded runs, so an
interrupted sweep resumes), and ``bench/results/recipe_sweep.png`` plots bits/char against minutes. Runs are
serial and need a quiet machine: the budget is wall-clock time.

Usage: python bench/sweep_recipe.py [--runs NAME ...] [--list] [--plot_only] [--work /tmp/minillm-sweep]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tinyshakespeare_runs import split_corpus, train_and_score

RESULTS = Path(__file__).resolve().parent / "results"
OUT = RESULTS / "recipe_sweep.json"
QUALITY = RESULTS / "quality_tinyshakespeare.json"
PLOT = RESULTS / "recipe_sweep.png"


def size(d_model: int, layers: int, heads: int) -> list[str]:
    return ["--d_model", str(d_model), "--num_layers", str(layers), "--num_heads", str(heads)]


# name -> (minutes, flags). Flags fix the model size, so the recipe does not apply; the recipe's own runs are
# bench/quality_tinyshakespeare.py's, drawn here as "recipe".
RUNS: dict[str, tuple[float, list[str]]] = {}


def add(name: str, minutes: float, flags: list[str]) -> None:
    RUNS[f"{name}@{minutes:g}"] = (minutes, flags)


add("d192L4-v4096", 3, size(192, 4, 6) + ["--vocab_size", "4096"])  # the old default
add("d192L4-v2048", 3, size(192, 4, 6) + ["--vocab_size", "2048"])
add("d192L4-v1024", 3, size(192, 4, 6) + ["--vocab_size", "1024"])
add("d192L4-v1024-lr3e-3", 3, size(192, 4, 6) + ["--vocab_size", "1024", "--lr", "3e-3"])
add("d128L4-v1024-lr3e-3", 3, size(128, 4, 4) + ["--vocab_size", "1024", "--lr", "3e-3"])
SMALL_STEPS = ["--batch_size", "8", "--dropout", "0", "--eval_steps", "150", "--warmup_steps", "50"]
add("d192L4-v1024-b8", 3, size(192, 4, 6) + ["--vocab_size", "1024", "--lr", "2e-3"] + SMALL_STEPS)
add("d128L4-v2048-b8", 3, size(128, 4, 4) + ["--vocab_size", "2048", "--lr", "3e-3"] + SMALL_STEPS)
add("d192L4-v4096-b8", 3, size(192, 4, 6) + ["--vocab_size", "4096", "--lr", "2e-3"] + SMALL_STEPS)
add("d192L4-v2048-b8", 3, size(192, 4, 6) + ["--vocab_size", "2048", "--lr", "2e-3"] + SMALL_STEPS)
add("d128L4-v2048-b8-chunk", 3, size(128, 4, 4) + ["--vocab_size", "2048", "--lr", "3e-3", "--split_method",
                                                    "chunk"] + SMALL_STEPS)
add("d128L4-v4096-b8", 3, size(128, 4, 4) + ["--vocab_size", "4096", "--lr", "3e-3"] + SMALL_STEPS)
add("d128L4-v2048-b4", 3, size(128, 4, 4) + ["--vocab_size", "2048", "--lr", "3e-3", "--batch_size", "4", "--dropout",
                                              "0", "--eval_steps", "300", "--warmup_steps", "50"])
CHUNK = ["--split_method", "chunk"]
add("d128L4-v4096-b8-chunk", 3, size(128, 4, 4) + ["--vocab_size", "4096", "--lr", "3e-3"] + CHUNK + SMALL_STEPS)
add("d128L4-v4096-b8-chunk", 8, size(128, 4, 4) + ["--vocab_size", "4096", "--lr", "3e-3"] + CHUNK + SMALL_STEPS)
add("d192L4-v4096-b8-chunk", 8, size(192, 4, 6) + ["--vocab_size", "4096", "--lr", "2e-3"] + CHUNK + SMALL_STEPS)
add("d256L4-v1024-b8", 3, size(256, 4, 4) + ["--vocab_size", "1024", "--lr", "2e-3"] + SMALL_STEPS)


def load() -> dict[str, dict]:
    return json.loads(OUT.read_text()) if OUT.is_file() else {}


def with_recipe_runs(results: dict[str, dict]) -> dict[str, dict]:
    """The sweep's runs and the quality bench's recipe runs (``recipe@MINUTES``)."""
    rows = json.loads(QUALITY.read_text()).get("rows", []) if QUALITY.is_file() else []
    return {**results, **{f"recipe@{row['minutes']:g}": row for row in rows}}


def save(results: dict[str, dict]) -> None:
    from minillm.atomic import atomic_write_text

    atomic_write_text(OUT, json.dumps(results, indent=2) + "\n")


def plot(results: dict[str, dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    families: dict[str, list[tuple[float, float]]] = {}
    for name, row in results.items():
        if "spoiled" in row.get("note", ""):
            continue
        family = name.split("@")[0]
        families.setdefault(family, []).append((row["minutes"], row["val_bits_per_char"]))
    fig, ax = plt.subplots(figsize=(9, 5))
    for family, points in sorted(families.items()):
        points.sort()
        style = {"linewidth": 2.5, "color": "black", "zorder": 5} if family == "recipe" else {"alpha": 0.8}
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=family, **style)
    for level, label in ((2.20, "must @3 min"), (2.10, "must @8 min"), (2.05, "must @30 min"), (2.12, "nanoGPT GPU")):
        ax.axhline(level, linestyle=":", linewidth=0.8, color="gray")
        ax.text(0.01, level, label, fontsize=7, va="bottom", color="gray", transform=ax.get_yaxis_transform())
    ax.set_xscale("log")
    ticks = sorted({row["minutes"] for row in results.values()})
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax.minorticks_off()
    ax.set_xlabel("training budget (minutes, 2 CPU cores)")
    ax.set_ylabel("held-out bits per character")
    ax.set_title("Tiny Shakespeare: held-out bits/char against the training budget")
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    fig.savefig(PLOT, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", nargs="*", default=None, help="names to run (default: every unrecorded run)")
    parser.add_argument("--list", action="store_true", help="list the runs and whether they are recorded")
    parser.add_argument("--plot_only", action="store_true")
    parser.add_argument("--redo", action="store_true", help="run the named runs again even if recorded")
    parser.add_argument("--work", default="/tmp/minillm-sweep", help="where run directories go")
    args = parser.parse_args()
    results = load()
    if args.list:
        for name, (minutes, flags) in RUNS.items():
            row = results.get(name)
            print(f"{name:<22} {'done ' + str(row['val_bits_per_char']) if row else 'todo':<14} {' '.join(flags)}")
        return
    if not args.plot_only:
        work = Path(args.work)
        train_file, val_text = split_corpus(work)
        names = args.runs if args.runs else [n for n in RUNS if n not in results]
        unknown = [n for n in names if n not in RUNS]
        if unknown:
            raise SystemExit(f"unknown run(s) {unknown}; --list shows them")
        for name in names:
            if name in results and not args.redo:
                continue
            minutes, flags = RUNS[name]
            print(f"run {name}: {minutes} min {' '.join(flags)}", flush=True)
            row = train_and_score(flags, minutes, work / name.replace("@", "-"), train_file, val_text)
            results[name] = row
            save(results)
            print(f"  val {row['val_bits_per_char']} bits/char, train {row['train_bits_per_char']}, "
                  f"{row.get('steps')} steps, {row['model']}", flush=True)
    results = with_recipe_runs(results)
    if results:
        plot(results)
        print(f"{'run':<22} {'min':>5} {'params':>8} {'vocab':>6} {'steps':>6} {'train':>7} {'val':>7}")
        for name, row in sorted(results.items(), key=lambda kv: (kv[1]["minutes"], kv[1]["val_bits_per_char"])):
            print(f"{name:<22} {row['minutes']:>5g} {row['parameters'] / 1e6:>7.2f}M {row['vocab_size']:>6} "
                  f"{row.get('steps', '?'):>6} {row['train_bits_per_char']:>7.3f} {row['val_bits_per_char']:>7.3f}"
                  f"{'  (' + row['note'].split(':')[0] + ')' if row.get('note') else ''}")


if __name__ == "__main__":
    main()
