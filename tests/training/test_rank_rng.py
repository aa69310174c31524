"""Under torchrun every rank draws its own dropout masks, so every rank's RNG is saved and restored."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

WORKER = Path(__file__).with_name("worker_train.py")
REPO = Path(__file__).resolve().parents[2]
ARGS = ["--batch-size", "2", "--shuffle", "1", "--dropout", "0.2", "--epochs", "2", "--save-every", "3"]


def _torchrun(directory: Path, *extra: str) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                           str(WORKER), str(directory), *ARGS, *extra], env=env, capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


@pytest.mark.slow
def test_ddp_resume_restores_each_ranks_rng(toy, tmp_path):
    _torchrun(tmp_path / "full")
    checkpoint = tmp_path / "full" / "checkpoint-21"
    assert (checkpoint / "trainer_state" / "rng-rank1.safetensors").is_file()
    rank0 = load_file(checkpoint / "trainer_state" / "rng.safetensors")["torch_cpu"]
    rank1 = load_file(checkpoint / "trainer_state" / "rng-rank1.safetensors")["torch_cpu"]
    assert not torch.equal(rank0, rank1)  # the ranks' streams differ, so one state cannot stand for both
    partial = tmp_path / "partial"
    shutil.copytree(tmp_path / "full", partial)
    shutil.rmtree(partial / "final")
    shutil.rmtree(partial / "checkpoint-24")
    _torchrun(partial, "--resume")
    want, have = toy.trainable(tmp_path / "full" / "final"), toy.trainable(partial / "final")
    for name, value in want.items():
        assert torch.equal(have[name], value), name
