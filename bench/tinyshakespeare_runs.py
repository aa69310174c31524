"""One Tiny Shakespeare quality run through the real CLI, scored on held-out text (shared by the quality bench and
the recipe sweep).

The first 90% of the shipped text (by characters) is the training file given to ``main.py train --data_path``
(which holds out its own 10% for early stopping); the last 10% is never seen and is scored in bits per character
(:mod:`training.evaluation.bits_per_char`). The first 100,000 characters of the training file are scored too, so
train and validation figures show how much of the loss is overfitting.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "training" / "sample_data" / "tinyshakespeare.txt"
TRAIN_SCORE_CHARS = 100_000


def split_corpus(folder: Path) -> tuple[Path, str]:
    """Write the first 90% of Tiny Shakespeare to ``folder/train90.txt``; return it and the last 10%'s text."""
    text = SAMPLE.read_text()
    cut = int(len(text) * 0.9)
    folder.mkdir(parents=True, exist_ok=True)
    train_file = folder / "train90.txt"
    if not train_file.is_file() or train_file.read_text() != text[:cut]:
        train_file.write_text(text[:cut])
    return train_file, text[cut:]


def environment() -> dict[str, Any]:
    """Date, versions and machine load, recorded with every row."""
    import torch

    return {"date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "torch": torch.__version__, "python": platform.python_version(),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores",
            "load_before": [round(x, 2) for x in os.getloadavg()]}


def train_and_score(flags: list[str], minutes: float | None, run_dir: Path, train_file: Path, val_text: str,
                    sample_prompt: str | None = "ROMEO:", max_steps: int | None = None,
                    threads: int | None = None) -> dict[str, Any]:
    """``main.py train --data_path train_file --max_minutes minutes FLAGS`` into ``run_dir``, then score ``best/``.

    With ``max_steps`` the run is ``--max_steps max_steps`` instead (no time budget: a fixed amount of training
    whatever the machine's load), and ``threads`` sets the run's torch threads (OMP_NUM_THREADS).
    """
    import torch

    from minillm import DecoderOnlyModel
    from training.evaluation.bits_per_char import bits_per_char
    from training.tokenizer_loading import load_tokenizer

    row: dict[str, Any] = {"flags": " ".join(flags), "minutes": minutes, **environment()}
    limit = ["--max_steps", str(max_steps)] if max_steps else ["--max_minutes", str(minutes)]
    command = [sys.executable, str(ROOT / "main.py"), "train", "--data_path", str(train_file), *limit,
               "--checkpoint_dir", str(run_dir), "--overwrite", *flags]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)} if threads else None
    start = time.perf_counter()
    done = subprocess.run(command, check=False, cwd=ROOT, capture_output=True, text=True, env=env)
    row["wall_minutes"] = round((time.perf_counter() - start) / 60, 2)
    if done.returncode != 0:
        raise RuntimeError(f"training failed ({done.returncode}): {done.stderr[-2000:]}")
    row["load_after"] = [round(x, 2) for x in os.getloadavg()]
    model_line = next((line for line in done.stderr.splitlines() if line.startswith("model: ")), "")
    row["model"] = model_line.removeprefix("model: ")
    model = DecoderOnlyModel.from_pretrained(run_dir / "best")
    tokenizer = load_tokenizer(run_dir / "tokenizer")
    config = model.config
    row.update(parameters=sum(p.numel() for p in model.parameters()), vocab_size=config.vocab_size,
               d_model=config.d_model, num_layers=config.num_layers, max_seq_len=config.max_seq_len)
    row.update(_trainer_figures(run_dir))
    val = bits_per_char(model, tokenizer, val_text)
    train = bits_per_char(model, tokenizer, train_file.read_text()[:TRAIN_SCORE_CHARS])
    row.update(val_bits_per_char=round(val.bits_per_char, 4), train_bits_per_char=round(train.bits_per_char, 4),
               val_chars_per_token=round(val.chars_per_token, 3))
    if sample_prompt:
        prompt = torch.tensor([tokenizer.encode(sample_prompt, add_special_tokens=False)])
        out = model.generate(prompt, max_new_tokens=100, do_sample=True, temperature=0.8, top_k=50, seed=0,
                             eos_token_id=[])
        row["sample"] = tokenizer.decode(out[0].tolist(), skip_special_tokens=True)
    return row


def _trainer_figures(run_dir: Path) -> dict[str, Any]:
    """Steps, epochs and the stop reason from the run's ``metrics.jsonl`` and final trainer state."""
    figures: dict[str, Any] = {}
    metrics = run_dir / "metrics.jsonl"
    if metrics.is_file():
        records = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
        steps = [r.get("step") for r in records if isinstance(r.get("step"), int)]
        if steps:
            figures["steps"] = max(steps)
        epochs = [r.get("epoch") for r in records if isinstance(r.get("epoch"), (int, float))]
        if epochs:
            figures["epochs"] = round(max(epochs), 2)
    return figures
