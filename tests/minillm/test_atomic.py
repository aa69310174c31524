"""atomic_directory refuses to replace folders it did not write; outputs get the usual permissions."""

from __future__ import annotations

import os

import pytest

from minillm.atomic import atomic_directory, atomic_write_text


def _write(path, name="config.json"):
    with atomic_directory(path) as tmp:
        (tmp / name).write_text("{}")
    return path


def test_refuses_to_replace_a_folder_it_did_not_write(tmp_path):
    documents = tmp_path / "Documents"
    documents.mkdir()
    (documents / "thesis.txt").write_text("years of work")
    with pytest.raises(ValueError, match="exists and is not a model directory; choose an empty or new one"):
        _write(documents)
    assert (documents / "thesis.txt").read_text() == "years of work"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["Documents"]  # nothing left behind


def test_replaces_empty_folders_and_our_own(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert (_write(empty) / "config.json").is_file()
    _write(empty, "tokenizer.json")  # holds config.json: ours
    assert sorted(p.name for p in empty.iterdir()) == ["tokenizer.json"]
    _write(empty, "other.txt")  # holds tokenizer.json: ours
    checkpoint = tmp_path / "checkpoint-1"
    (checkpoint / "trainer_state").mkdir(parents=True)
    (checkpoint / "trainer_state" / "COMPLETE").write_text("1")
    _write(checkpoint)
    assert sorted(p.name for p in checkpoint.iterdir()) == ["config.json"]


def test_refuses_the_current_directory_and_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ValueError, match="current working directory"):
        _write(".")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="is not a directory"):
        _write(tmp_path / "file")


def test_outputs_get_usual_permissions(tmp_path):
    mask = os.umask(0o022)
    try:
        folder = _write(tmp_path / "m")
        atomic_write_text(tmp_path / "f.json", "{}")
    finally:
        os.umask(mask)
    assert folder.stat().st_mode & 0o777 == 0o755
    assert (tmp_path / "f.json").stat().st_mode & 0o777 == 0o644


def test_save_pretrained_refuses_a_run_folder(tmp_path):
    from minillm import DecoderOnlyModel

    model = DecoderOnlyModel({"model_type": "decoder_only", "vocab_size": 40, "d_model": 32, "num_heads": 2,
                              "num_layers": 1, "max_seq_len": 16})
    run = tmp_path / "run"
    model.save_pretrained(run / "best")
    (run / "metrics.jsonl").write_text("{}\n")
    with pytest.raises(ValueError, match="is not a model directory"):
        model.save_pretrained(run)  # e.g. extract --output_path pointing at the run folder itself
    assert (run / "best" / "config.json").is_file() and (run / "metrics.jsonl").is_file()
    model.save_pretrained(run / "best")  # replacing our own model directory still works
