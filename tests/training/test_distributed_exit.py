"""Leaving a torchrun job: the process group is torn down before interpreter exit (no gloo thread left behind)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

WORKER = Path(__file__).with_name("dist_exit_worker.py")
REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="counts threads through /proc (Linux)")
@pytest.mark.parametrize("mode", ["global", "local"])
def test_ranks_exit_without_backend_threads(tmp_path, mode):
    """Each rank reaches interpreter teardown with the threads it had before the Trainer: gloo's worker threads
    joined by the Trainer's teardown, whether the Trainer is still referenced (``global``) or not. Left alive,
    one still freeing the last collective's tensors aborts the process under load (SIGABRT, "terminate called
    without an active exception")."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(WORKER),
         str(tmp_path), mode], env=env, capture_output=True, text=True, timeout=300, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "terminate called" not in out, out
    for rank in (0, 1):
        counts = json.loads((tmp_path / f"threads-{rank}.json").read_text())
        assert counts["exit"] == counts["start"], (rank, counts)


def test_shutdown_distributed_outside_torchrun_is_a_no_op():
    """No process group (one process): nothing to tear down, and calling it twice is fine."""
    import torch.distributed as dist

    from training.distributed import shutdown_distributed

    shutdown_distributed()
    shutdown_distributed()
    assert not (dist.is_available() and dist.is_initialized())
