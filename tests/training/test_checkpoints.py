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
