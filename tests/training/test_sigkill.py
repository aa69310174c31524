"""A run killed with SIGKILL at a random moment resumes from its last complete checkpoint to the same end."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from training import find_latest_checkpoint

WORKER = Path(__file__).with_name("worker_train.py")
REPO = Path(__file__).resolve().parents[2]  # the repo root, wherever pytest is started from


def _worker(directory: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, str(WORKER), str(directory), *extra], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _finish(proc: subprocess.Popen) -> None:
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out


@pytest.mark.slow
def test_sigkill_then_resume_matches_uninterrupted(toy, tmp_path):
    reference = _worker(tmp_path / "reference")
    victim = _worker(tmp_path / "victim")
    deadline = time.monotonic() + 120
    # 36 updates, a checkpoint every 3: wait for checkpoint-6, then kill a moment later (30 updates and 10
    # checkpoint writes remain, so the kill lands mid-run, often mid-write, even on a fast machine)
    while (latest := find_latest_checkpoint(tmp_path / "victim")) is None or latest.name == "checkpoint-3":
        assert victim.poll() is None and time.monotonic() < deadline, "worker ended before checkpoint-6"
        time.sleep(0.005)
    time.sleep(random.Random(os.getpid()).uniform(0.0, 0.1))
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert victim.returncode == -signal.SIGKILL
    assert not (tmp_path / "victim" / "result.json").exists(), "the run finished before it was killed"
    killed_at = find_latest_checkpoint(tmp_path / "victim")
    _finish(_worker(tmp_path / "victim", "--resume"))
    _finish(reference)
    ref = json.loads((tmp_path / "reference" / "result.json").read_text())
    got = json.loads((tmp_path / "victim" / "result.json").read_text())
    assert got == ref, f"resumed from {killed_at.name}"
    want, have = toy.trainable(tmp_path / "reference" / "final"), toy.trainable(tmp_path / "victim" / "final")
    assert all(torch.equal(want[k], have[k]) for k in want)
    assert not [p.name for p in (tmp_path / "victim").iterdir() if ".tmp-" in p.name or ".old-" in p.name]
