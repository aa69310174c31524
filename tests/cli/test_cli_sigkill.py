"""What a user does after a crash: `main.py train ...` killed with SIGKILL, then the very same command with
--resume added. It is accepted, finishes, and ends with the weights of an uninterrupted run of that command."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from training import find_latest_checkpoint

from .cli_helpers import REPO, TINY_MODEL, run_cli, write_corpus

pytestmark = pytest.mark.slow


def _start(command: list[str], cwd: Path) -> subprocess.Popen:
    cwd.mkdir()
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    with (cwd / "log.txt").open("w") as log:  # the child keeps its own copy of the descriptor
        return subprocess.Popen([sys.executable, str(REPO / "main.py"), *command], cwd=cwd, env=env, stdout=log,
                                stderr=subprocess.STDOUT)


def _only_run(work: Path) -> Path:
    runs = [p for p in (work / "checkpoints").iterdir() if not p.name.startswith(".")]
    assert len(runs) == 1, runs
    return runs[0]


def test_sigkill_then_the_same_command_with_resume_matches_an_uninterrupted_run(tmp_path):
    data = write_corpus(tmp_path / "train.txt")
    # no --checkpoint_dir: the run lands in checkpoints/train-<time> and --resume finds it as the newest run
    command = ["train", "--data_path", str(data), *TINY_MODEL, "--max_steps", "40", "--eval_steps", "4",
               "--save_steps", "4", "--early_stopping_patience", "0"]
    victim_dir, reference_dir = tmp_path / "victim", tmp_path / "reference"
    victim = _start(command, victim_dir)
    reference = _start(command, reference_dir)
    deadline = time.monotonic() + 240
    # wait for checkpoint-8, then kill at once: 32 updates and 8 checkpoint writes remain
    while True:
        assert victim.poll() is None, (victim_dir / "log.txt").read_text()[-2000:]
        assert time.monotonic() < deadline, "no checkpoint-8 appeared"
        runs = list((victim_dir / "checkpoints").glob("train-*")) if (victim_dir / "checkpoints").is_dir() else []
        latest = find_latest_checkpoint(runs[0]) if runs else None
        if latest is not None and latest.name != "checkpoint-4":
            break
        time.sleep(0.005)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert victim.returncode == -signal.SIGKILL
    run_dir = _only_run(victim_dir)
    assert not (run_dir / "final").exists(), "the run finished before it was killed"
    killed_at = find_latest_checkpoint(run_dir)

    resumed = run_cli(*command, "--resume", cwd=victim_dir)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"resuming from {run_dir.relative_to(victim_dir)}/checkpoint-" in resumed.stderr
    summary = json.loads(next(line for line in resumed.stdout.splitlines() if line.startswith("{")))
    assert summary["global_step"] == 40 and summary["stop_reason"] == "max_steps"
    assert "stopped: reached --max_steps 40" in resumed.stdout
    assert (run_dir / "final" / "model.safetensors").is_file()

    assert reference.wait(timeout=300) == 0, (reference_dir / "log.txt").read_text()[-2000:]
    want = load_file(str(_only_run(reference_dir) / "final" / "model.safetensors"))
    have = load_file(str(run_dir / "final" / "model.safetensors"))
    assert want.keys() == have.keys()
    assert all(torch.equal(want[k], have[k]) for k in want), f"resumed from {killed_at.name}"
