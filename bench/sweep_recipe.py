"""The sweep behind ``train``'s budget-aware recipe (training/recipe.py): model size x vocabulary x optimizer x
budget on Tiny Shakespeare, each run through ``main.py train`` and scored on the held-out last 10% in bits per
character.

Two kinds of runs:

* **budget runs** (``RUNS``, the first sweep, AdamW): ``--max_minutes B``, serial, on the whole machine. The
  budget is wall-clock time, so a busy machine spoils them (the JSON keeps each run's load).
* **update runs** (``UPDATE_RUNS``, the Muon sweep): a fixed number of updates (``--max_steps``), one torch thread
  each, ``--parallel`` at a time. Their result does not depend on the machine's load. Each stands for the budget
  that many updates take on 2 quiet cores: ``minutes = updates / rate``, where ``rate`` is the configuration's
  update rate measured by ``--measure_rates`` (a 240-update run on 2 threads, alone, median of the logged
  tokens/s; each call adds one measurement per configuration and the rate is their median: this machine's speed
  drifts by tens of percent over an hour). The recipe's own time-budget runs (bench/quality_tinyshakespeare.py) check those minutes.

Each run is recorded in ``bench/results/recipe_sweep.json`` as soon as it ends (a rerun skips recorded runs, so an
interrupted sweep resumes), and ``bench/results/recipe_sweep.png`` plots bits/char against minutes.

Usage: python bench/sweep_recipe.py [--runs NAME ...] [--list] [--plot_only] [--parallel 2] [--measure_rates]
       [--work /tmp/minillm-sweep]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from tinyshakespeare_runs import ROOT, environment, split_corpus, train_and_score

RESULTS = Path(__file__).resolve().parent / "results"
OUT = RESULTS / "recipe_sweep.json"
RATES = RESULTS / "recipe_rates.json"
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


# The update runs: name@{updates}u -> (updates, flags); runs of one speed_key share a measured rate.
UPDATE_RUNS: dict[str, tuple[int, list[str]]] = {}
FIXED = ["--max_seq_len", "128", "--batch_size", "8", "--warmup_steps", "50", "--lr_scheduler", "cosine",
         "--split_method", "chunk", "--eval_steps", "1000", "--early_stopping_patience", "0", "--epochs", "1000"]
MUON = ["--optimizer", "muon", "--muon_lr", "0.02", "--lr", "3e-3"]


def add_updates(family: str, updates: int, flags: list[str]) -> None:
    UPDATE_RUNS[f"{family}@{updates}u"] = (updates, FIXED + flags)  # later flags win


D128, D192 = size(128, 4, 4), size(192, 4, 6)
V4096, V2048, V8192 = (["--vocab_size", str(v)] for v in (4096, 2048, 8192))
ADAMW = ["--optimizer", "adamw", "--lr", "3e-3"]


def regularized(dropout: float, weight_decay: float = 0.1) -> list[str]:
    return ["--dropout", str(dropout), "--weight_decay", str(weight_decay)]


# AdamW at the same updates, for the optimizer comparison (the first sweep's best AdamW configuration).
add_updates("adamw-d128L4-v4096", 1650, D128 + V4096 + regularized(0) + ADAMW)
add_updates("adamw-d128L4-v4096-drop0.1", 1650, D128 + V4096 + regularized(0.1) + ADAMW)
add_updates("adamw-d128L4-v4096-lr5e-3", 1650, D128 + V4096 + regularized(0) + ADAMW + ["--lr", "5e-3"])
add_updates("adamw-d192L4-v4096-drop0.1", 1320, D192 + V4096 + regularized(0.1) + ADAMW + ["--lr", "2e-3"])
# Muon: learning rates, vocabulary, depth, width, context, dropout and weight decay.
add_updates("muon-d128L4-v4096", 1650, D128 + V4096 + regularized(0) + MUON)
add_updates("muon-d128L4-v4096", 4400, D128 + V4096 + regularized(0) + MUON)
add_updates("muon-d128L4-v4096-mlr0.05", 1650, D128 + V4096 + regularized(0) + MUON + ["--muon_lr", "0.05"])
add_updates("muon-d128L4-v4096-lr6e-3", 1650, D128 + V4096 + regularized(0) + MUON + ["--lr", "6e-3"])
add_updates("muon-d128L4-v2048", 1650, D128 + V2048 + regularized(0) + MUON)
add_updates("muon-d128L4-v8192", 1650, D128 + V8192 + regularized(0) + MUON)
add_updates("muon-d128L6-v4096", 1250, size(128, 6, 4) + V4096 + regularized(0) + MUON)
add_updates("muon-d192L4-v4096", 1250, D192 + V4096 + regularized(0) + MUON)
add_updates("muon-d128L4-v4096-ctx256", 1650, D128 + V4096 + regularized(0) + MUON + ["--max_seq_len", "256",
                                                                                    "--batch_size", "4"])
add_updates("muon-d128L4-v4096-ctx512", 1650, D128 + V4096 + regularized(0) + MUON + ["--max_seq_len", "512",
                                                                                    "--batch_size", "2"])
add_updates("muon-d128L4-v4096-drop0.1", 4400, D128 + V4096 + regularized(0.1) + MUON)
add_updates("muon-d128L4-v4096-drop0.2", 4400, D128 + V4096 + regularized(0.2) + MUON)
add_updates("muon-d128L4-v4096-drop0.3", 4400, D128 + V4096 + regularized(0.3) + MUON)
add_updates("muon-d192L4-v4096-drop0.1", 3300, D192 + V4096 + regularized(0.1) + MUON)
add_updates("muon-d128L4-v4096-wd0.3", 1650, D128 + V4096 + regularized(0, 0.3) + MUON)
add_updates("muon-d128L4-v4096-wd0.6", 1650, D128 + V4096 + regularized(0, 0.6) + MUON)
add_updates("muon-d128L4-v4096-wd1.0", 1650, D128 + V4096 + regularized(0, 1.0) + MUON)
add_updates("muon-d128L4-v2048-wd0.3", 1650, D128 + V2048 + regularized(0, 0.3) + MUON)
add_updates("muon-d128L4-v2048-wd1.0", 1650, D128 + V2048 + regularized(0, 1.0) + MUON)
add_updates("muon-d128L4-v4096-drop0.1-wd0.3", 4400, D128 + V4096 + regularized(0.1, 0.3) + MUON)
add_updates("muon-d192L4-v4096-drop0.2-wd0.3", 3300, D192 + V4096 + regularized(0.2, 0.3) + MUON)
add_updates("muon-d192L4-v4096-drop0.2-wd0.6", 3300, D192 + V4096 + regularized(0.2, 0.6) + MUON)
add_updates("muon-d192L4-v2048-drop0.2-wd0.6", 6000, D192 + V2048 + regularized(0.2, 0.6) + MUON)
add_updates("muon-d256L4-v2048-drop0.3-wd0.6", 4000, size(256, 4, 8) + V2048 + regularized(0.3, 0.6) + MUON)
# Finer vocabularies at about the same passes as muon-d128L4-v2048-wd0.3@1650u (fewer characters per token).
add_updates("muon-d128L4-v1024-wd0.3", 1950, D128 + ["--vocab_size", "1024"] + regularized(0, 0.3) + MUON)
add_updates("muon-d128L4-v512-wd0.3", 2300, D128 + ["--vocab_size", "512"] + regularized(0, 0.3) + MUON)
SPEED_IRRELEVANT = ("--dropout", "--weight_decay", "--lr", "--muon_lr")


def speed_key(flags: list[str]) -> str:
    """The flags that set a run's speed (size, vocabulary, context, batch, optimizer), as one string: dropout,
    weight decay and learning rates are left out (their cost is within the machine's noise), so runs that differ
    only there share one measured rate."""
    kept, skip = [], False
    for flag in flags:
        if skip:
            skip = False
        elif flag in SPEED_IRRELEVANT:
            skip = True
        else:
            kept.append(flag)
    values = dict(zip(kept[::2], kept[1::2], strict=True))
    return " ".join(f"{k} {v}" for k, v in sorted(values.items()) if k not in ("--eval_steps", "--epochs"))


def speed_configurations() -> dict[str, list[str]]:
    """One run's flags for each speed key of the update runs."""
    return {speed_key(flags): flags for _, flags in UPDATE_RUNS.values()}


def measure_rates(work: Path, train_file: Path) -> dict[str, dict]:
    """Updates per second of every speed configuration on 2 threads (run alone: needs a quiet machine)."""
    from minillm.atomic import atomic_write_text

    rates = json.loads(RATES.read_text()) if RATES.is_file() else {}
    for index, (key, flags) in enumerate(speed_configurations().items()):
        run_dir = work / f"rate-{index}"
        command = [sys.executable, str(ROOT / "main.py"), "train", "--data_path", str(train_file), "--max_steps", "240",
                   "--checkpoint_dir", str(run_dir), "--overwrite", *flags]
        row = environment()
        subprocess.run(command, check=True, cwd=ROOT, capture_output=True, env={**os.environ, "OMP_NUM_THREADS": "2"})
        records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
        tokens = statistics.median(r["tokens_per_s"] for r in records if "tokens_per_s" in r and r["step"] > 40)
        batch, seq = (int(flags[len(flags) - 1 - flags[::-1].index(k) + 1]) for k in ("--batch_size", "--max_seq_len"))
        row.update(tokens_per_s=round(tokens), updates_per_s=round(tokens / (batch * seq), 3))
        measured = rates.get(key, {}).get("measurements", []) + [row]  # each call adds one; the rate is their median
        rates[key] = {"updates_per_s": round(statistics.median(m["updates_per_s"] for m in measured), 3),
                      "measurements": measured}
        print(f"rate {row['updates_per_s']:.2f} updates/s ({row['tokens_per_s']} tokens/s; median of "
              f"{len(measured)}: {rates[key]['updates_per_s']:.2f}): {key}", flush=True)
        atomic_write_text(RATES, json.dumps(rates, indent=2) + "\n")
    return rates


def with_minutes(results: dict[str, dict]) -> dict[str, dict]:
    """Update runs get ``minutes`` = updates / their measured rate (rows without a rate are left out)."""
    rates = json.loads(RATES.read_text()) if RATES.is_file() else {}
    shown = {}
    for name, row in results.items():
        if "updates" in row:
            rate = rates.get(speed_key(UPDATE_RUNS[name][1])) if name in UPDATE_RUNS else None
            if rate is None:
                continue
            row = {**row, "minutes": round(row["updates"] / rate["updates_per_s"] / 60, 2)}
        shown[name] = row
    return shown


def run_updates(names: list[str], parallel: int, work: Path, train_file: Path, val_text: str,
                results: dict[str, dict]) -> None:
    """Run update runs ``parallel`` at a time (each on ``2 // parallel`` threads), recording each as it ends."""
    threads = max(1, 2 // parallel)
    with ThreadPoolExecutor(parallel) as pool:
        futures = {}
        for name in names:
            updates, flags = UPDATE_RUNS[name]
            run_dir = work / name.replace("@", "-")
            futures[pool.submit(train_and_score, flags, None, run_dir, train_file, val_text, max_steps=updates,
                                threads=threads)] = name
        for future in as_completed(futures):
            name = futures[future]
            row = {**future.result(), "updates": UPDATE_RUNS[name][0], "threads": threads}
            results[name] = row
            save(results)
            print(f"  {name}: val {row['val_bits_per_char']} bits/char, train {row['train_bits_per_char']}",
                  flush=True)


def load() -> dict[str, dict]:
    return json.loads(OUT.read_text()) if OUT.is_file() else {}


def with_recipe_runs(results: dict[str, dict]) -> dict[str, dict]:
    """The sweep's runs and the quality bench's recipe runs (``recipe@MINUTES``)."""
    rows = json.loads(QUALITY.read_text()).get("rows", []) if QUALITY.is_file() else []
    return {**results, **{f"recipe@{row['minutes']:g}": row for row in rows}}


def save(results: dict[str, dict]) -> None:
    from minillm.atomic import atomic_write_text

    atomic_write_text(OUT, json.dumps(results, indent=2) + "\n")


PLOT_GROUPS = ("AdamW, time-budget runs (first sweep)", "AdamW, fixed updates", "Muon d128, fixed updates",
               "Muon d192/d256, fixed updates", "the recipe (its own time-budget runs)")
PLOT_STYLES = {
    PLOT_GROUPS[0]: {"linestyle": "none", "marker": "x", "color": "tab:gray", "alpha": 0.7},
    PLOT_GROUPS[1]: {"linestyle": "none", "marker": "x", "color": "tab:red"},
    PLOT_GROUPS[2]: {"linestyle": "none", "marker": "o", "color": "tab:blue", "alpha": 0.8},
    PLOT_GROUPS[3]: {"linestyle": "none", "marker": "s", "color": "tab:green", "alpha": 0.8},
    PLOT_GROUPS[4]: {"linewidth": 2.5, "color": "black", "zorder": 5, "marker": "o"},
}


def plot_group(name: str, row: dict) -> str:
    """Which of :data:`PLOT_GROUPS` a recorded run belongs to."""
    if name.startswith("recipe@"):
        return PLOT_GROUPS[4]
    if "updates" not in row:
        return PLOT_GROUPS[0]
    if name.startswith("adamw"):
        return PLOT_GROUPS[1]
    return PLOT_GROUPS[2] if name.startswith("muon-d128") else PLOT_GROUPS[3]


def plot(results: dict[str, dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups: dict[str, list[tuple[float, float, str]]] = {}
    for name, row in results.items():
        if "spoiled" in row.get("note", ""):
            continue
        groups.setdefault(plot_group(name, row), []).append((row["minutes"], row["val_bits_per_char"], name))
    fig, ax = plt.subplots(figsize=(10, 5.5))
    for group, points in sorted(groups.items(), key=lambda kv: PLOT_GROUPS.index(kv[0])):
        points.sort()
        style = PLOT_STYLES[group]
        ax.plot([p[0] for p in points], [p[1] for p in points], label=f"{group} ({len(points)})", **style)
    best = sorted((p for group, points in groups.items() if group != PLOT_GROUPS[4]
                   for p in points), key=lambda p: p[1])[:2]
    for minutes, bits, name in best:  # the best sweep runs, named
        ax.annotate(name, (minutes, bits), textcoords="offset points", xytext=(6, -10), fontsize=6.5)
    for level, label in ((2.20, "must @3 min"), (2.10, "must @8 min"), (2.05, "must @30 min"), (2.12, "nanoGPT GPU")):
        ax.axhline(level, linestyle=":", linewidth=0.8, color="gray")
        ax.text(0.01, level, label, fontsize=7, va="bottom", color="gray", transform=ax.get_yaxis_transform())
    ax.set_xscale("log")
    ticks = [1, 2, 3, 5, 8, 15, 30, 60]
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax.minorticks_off()
    ax.set_xlabel("training budget (minutes, 2 CPU cores)")
    ax.set_ylabel("held-out bits per character")
    ax.set_title("Tiny Shakespeare: held-out bits/char against the training budget")
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    fig.savefig(PLOT, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", nargs="*", default=None, help="names to run (default: every unrecorded run)")
    parser.add_argument("--list", action="store_true", help="list the runs and whether they are recorded")
    parser.add_argument("--plot_only", action="store_true")
    parser.add_argument("--redo", action="store_true", help="run the named runs again even if recorded")
    parser.add_argument("--parallel", type=int, default=2, help="update runs at once (each on 2 // N threads)")
    parser.add_argument("--measure_rates", action="store_true", help="measure each update-run family's rate first")
    parser.add_argument("--work", default="/tmp/minillm-sweep", help="where run directories go")
    args = parser.parse_args()
    results = load()
    every = {**{n: ("budget", m, f) for n, (m, f) in RUNS.items()}, **{n: ("updates", u, f) for n, (u, f) in UPDATE_RUNS.items()}}
    if args.list:
        for name, (kind, amount, flags) in every.items():
            row = results.get(name)
            print(f"{name:<28} {'done ' + str(row['val_bits_per_char']) if row else 'todo':<14} {kind} {amount:g} "
                  f"{' '.join(flags)}")
        return
    if not args.plot_only:
        work = Path(args.work)
        train_file, val_text = split_corpus(work)
        if args.measure_rates:
            measure_rates(work, train_file)
        names = args.runs if args.runs is not None else [n for n in every if n not in results]
        unknown = [n for n in names if n not in every]
        if unknown:
            raise SystemExit(f"unknown run(s) {unknown}; --list shows them")
        names = [n for n in names if args.redo or n not in results]
        for name in [n for n in names if n in RUNS]:
            minutes, flags = RUNS[name]
            print(f"run {name}: {minutes} min {' '.join(flags)}", flush=True)
            results[name] = train_and_score(flags, minutes, work / name.replace("@", "-"), train_file, val_text)
            save(results)
        run_updates([n for n in names if n in UPDATE_RUNS], args.parallel, work, train_file, val_text, results)
    results = with_recipe_runs(with_minutes(results))
    if results:
        plot(results)
        print(f"{'run':<28} {'min':>5} {'params':>8} {'vocab':>6} {'steps':>6} {'train':>7} {'val':>7}")
        for name, row in sorted(results.items(), key=lambda kv: (kv[1]["minutes"], kv[1]["val_bits_per_char"])):
            print(f"{name:<28} {row['minutes']:>5g} {row['parameters'] / 1e6:>7.2f}M {row['vocab_size']:>6} "
                  f"{row.get('steps', '?'):>6} {row['train_bits_per_char']:>7.3f} {row['val_bits_per_char']:>7.3f}"
                  f"{'  (' + row['note'].split(':')[0] + ')' if row.get('note') else ''}")


if __name__ == "__main__":
    main()
