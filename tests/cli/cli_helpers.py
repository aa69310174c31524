"""Helpers for CLI tests: a small corpus and the flags of a model small enough to train in seconds."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TINY_MODEL = ["--vocab_size", "300", "--d_model", "32", "--num_layers", "1", "--num_heads", "2",
              "--max_seq_len", "32", "--batch_size", "4", "--warmup_steps", "0", "--lr", "3e-3"]


def write_corpus(path: Path, paragraphs: int = 120) -> Path:
    """A few KB of varied English-like paragraphs."""
    words = ["the", "king", "and", "queen", "of", "the", "castle", "spoke", "to", "the", "people", "about", "bread", "wine", "and", "war", "while", "the", "river", "ran", "past", "the", "old", "mill", "under", "a", "grey", "sky"]
    lines = []
    for i in range(paragraphs):
        sentence = " ".join(words[(i * 7 + j * 3) % len(words)] for j in range(12 + i % 9))
        lines.append(f"{sentence.capitalize()}. Paragraph {i} ends here.")
    path.write_text("\n\n".join(lines) + "\n")
    return path


def run_cli(*args: str, cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    """Run ``python main.py ARGS`` in ``cwd`` (so default checkpoints/ land there), capturing output."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, str(REPO / "main.py"), *args], check=False, cwd=cwd, env=env,
                          capture_output=True,
                          text=True, timeout=timeout)
