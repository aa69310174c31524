"""Checkpoint directory bookkeeping: latest complete, rotation, clean-up after a kill."""

from __future__ import annotations

from pathlib import Path

from training import find_latest_checkpoint
from training.checkpoints import recover_interrupted, rotate_checkpoints


def _fake(path: Path, complete: bool = True) -> Path:
    (path / "trainer_state").mkdir(parents=True)
    (path / "config.json").write_text("{}")
    if complete:
        (path / "trainer_state" / "COMPLETE").write_text("{}")
    return path


def test_latest_skips_incomplete_and_hidden(tmp_path):
    assert find_latest_checkpoint(tmp_path / "absent") is None
    _fake(tmp_path / "checkpoint-5")
    _fake(tmp_path / "checkpoint-40")  # numeric order, not text order
    _fake(tmp_path / "checkpoint-9")
    _fake(tmp_path / "checkpoint-50", complete=False)
    _fake(tmp_path / ".checkpoint-60.tmp-abc")
    assert find_latest_checkpoint(tmp_path).name == "checkpoint-40"


def test_rotation_keeps_newest_and_recover_cleans_up(tmp_path):
    for step in (3, 6, 9, 12):
        _fake(tmp_path / f"checkpoint-{step}")
    rotate_checkpoints(tmp_path, keep=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-12", "checkpoint-9"]
    _fake(tmp_path / ".best.old-77")  # killed between the two renames of replacing best/
    _fake(tmp_path / ".checkpoint-15.tmp-x", complete=False)
    _fake(tmp_path / ".checkpoint-3.deleting-1")
    recover_interrupted(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best", "checkpoint-12", "checkpoint-9"]
    assert (tmp_path / "best" / "trainer_state" / "COMPLETE").is_file()


def test_fsdp_optimizer_state_without_fsdp_is_a_clear_error():
    import pytest
    import torch

    from training.trainer_state import load_optimizer

    optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(2))])
    meta = {"param_groups": [], "scalars": {}, "keyed_by": "name"}
    with pytest.raises(ValueError, match="FSDP run .* fsdp=True"):
        load_optimizer(optimizer, {"state.model.layers.0.weight.exp_avg": torch.zeros(2)}, meta)


def test_cuda_rng_states_are_restored_in_device_order(monkeypatch):
    import torch

    from training import trainer_state as ts

    tensors, meta = ts.capture_rng()
    for i in range(12):  # saved on a 12-GPU machine, restored on one with 3
        tensors[f"torch_cuda_{i}"] = torch.full((4,), i, dtype=torch.uint8)
    calls = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 3)
    monkeypatch.setattr(torch.cuda, "set_rng_state", lambda state, device: calls.append((int(state[0]), device)))
    ts.restore_rng(tensors, meta)
    assert calls == [(0, 0), (1, 1), (2, 2)]  # not torch_cuda_10 for device 10 after torch_cuda_1


def test_metrics_truncation_is_atomic(tmp_path, monkeypatch):
    import pytest

    from training import metrics_log
    from training.metrics_log import MetricsLog

    log = MetricsLog(tmp_path, tensorboard=False)
    for step in (1, 2, 3):
        log.write({"step": step, "loss": 1.0})
    before = log.path.read_text()

    def killed(path, text):  # a crash while the new file is written
        raise OSError("disk full")

    monkeypatch.setattr(metrics_log, "atomic_write_text", killed)
    with pytest.raises(OSError):
        log.truncate_after(1)
    assert log.path.read_text() == before  # the old log is intact, not half rewritten
    monkeypatch.undo()
    log.truncate_after(2)
    assert [line.count('"step"') for line in log.path.read_text().splitlines()] == [1, 1]
