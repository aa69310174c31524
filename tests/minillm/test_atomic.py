"""atomic_directory replaces only folders it wrote (its .minillm marker, or a legacy checkpoint / token store),
fsyncs every file before the rename, and gives everything it writes the usual permissions."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from minillm import DecoderOnlyModel
from minillm.atomic import MARKER, atomic_directory, atomic_write_text

TINY = {"model_type": "decoder_only", "vocab_size": 40, "d_model": 32, "num_heads": 2, "num_layers": 1,
        "max_seq_len": 16}


def _write(path, name="config.json"):
    with atomic_directory(path) as tmp:
        (tmp / name).write_text("{}")
    return path


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.fixture
def umask_022():
    mask = os.umask(0o022)
    yield
    os.umask(mask)


def test_refuses_to_replace_a_folder_it_did_not_write(tmp_path):
    documents = tmp_path / "Documents"
    documents.mkdir()
    (documents / "thesis.txt").write_text("years of work")
    with pytest.raises(ValueError, match="is not a model directory minillm wrote .* choose an empty or new one"):
        _write(documents)
    assert (documents / "thesis.txt").read_text() == "years of work"
    assert _names(tmp_path) == ["Documents"]  # nothing left behind


def test_refuses_a_downloaded_model_folder(tmp_path):
    """A base model from the Hub holds config.json and tokenizer.json too: never replace it."""
    base = tmp_path / "Llama-base"
    base.mkdir()
    for name in ("config.json", "tokenizer.json", "model.safetensors"):
        (base / name).write_text("downloaded")
    with pytest.raises(ValueError, match=f"no {MARKER} marker"):
        _write(base)
    model = DecoderOnlyModel(TINY)
    with pytest.raises(ValueError, match="not a model directory minillm wrote"):
        model.save_pretrained(base)  # e.g. extract --output_path pointing at the downloaded model
    assert _names(base) == ["config.json", "model.safetensors", "tokenizer.json"]
    assert all((base / name).read_text() == "downloaded" for name in _names(base))
    assert _names(tmp_path) == ["Llama-base"]


def test_replaces_empty_folders_and_marked_ones(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert _names(_write(empty)) == [MARKER, "config.json"]
    assert json.loads((empty / MARKER).read_text())["format"] == "minillm-directory"
    _write(empty, "tokenizer.json")  # carries our marker
    assert _names(empty) == [MARKER, "tokenizer.json"]
    _write(empty, "other.txt")  # whatever it holds, the marker makes it ours
    assert _names(empty) == [MARKER, "other.txt"]


def test_directories_of_earlier_versions_stay_replaceable_when_clearly_ours(tmp_path):
    checkpoint = tmp_path / "checkpoint-1"  # a training checkpoint written before the marker existed
    (checkpoint / "trainer_state").mkdir(parents=True)
    (checkpoint / "trainer_state" / "COMPLETE").write_text("1")
    (checkpoint / "config.json").write_text("{}")
    assert _names(_write(checkpoint)) == [MARKER, "config.json"]
    store = tmp_path / "store"  # a token store, by its header
    store.mkdir()
    (store / "header.json").write_text(json.dumps({"format": "minillm-token-store"}))
    assert _names(_write(store, "header.json")) == [MARKER, "header.json"]
    damaged = tmp_path / "damaged-store"  # a token store whose header is gone
    damaged.mkdir()
    (damaged / "tokens.bin").write_bytes(b"\0")
    (damaged / "doc_starts.bin").write_bytes(b"\0")
    assert _names(_write(damaged)) == [MARKER, "config.json"]
    legacy_model = tmp_path / "legacy-model"  # a bare config.json: indistinguishable from a downloaded model
    legacy_model.mkdir()
    (legacy_model / "config.json").write_text("{}")
    with pytest.raises(ValueError, match="not a model directory minillm wrote"):
        _write(legacy_model)


def test_refuses_the_current_directory_and_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ValueError, match="current working directory"):
        _write(".")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="is not a directory"):
        _write(tmp_path / "file")


def test_every_file_is_fsynced_before_the_rename(tmp_path, monkeypatch):
    synced: set[int] = set()
    real_fsync = os.fsync

    def recording_fsync(fd):
        synced.add(os.fstat(fd).st_ino)
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    with atomic_directory(tmp_path / "out") as tmp:
        (tmp / "a.json").write_text("{}")
        (tmp / "sub" / "deeper").mkdir(parents=True)
        (tmp / "sub" / "deeper" / "b.bin").write_bytes(b"\1" * 100)
    written = [p for p in (tmp_path / "out").rglob("*")]  # a rename keeps inode numbers
    assert {p.name for p in written} == {"a.json", "sub", "deeper", "b.bin", MARKER}
    assert all(p.stat().st_ino in synced for p in written), [p.name for p in written if p.stat().st_ino not in synced]
    assert (tmp_path / "out").stat().st_ino in synced and tmp_path.stat().st_ino in synced


def _modes(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mode & 0o777 for p in [folder, *folder.rglob("*")]}


def _assert_usual_modes(folder: Path) -> None:
    modes = _modes(folder)
    wrong = {name: oct(mode) for name, mode in modes.items()
             if mode != (0o755 if (folder / name).is_dir() else 0o644)}
    assert not wrong, wrong


def test_outputs_get_usual_permissions(tmp_path, umask_022):
    with atomic_directory(tmp_path / "m") as tmp:
        fd = os.open(tmp / "owner-only.bin", os.O_WRONLY | os.O_CREAT, 0o600)  # what safetensors does
        os.close(fd)
        (tmp / "sub").mkdir(mode=0o700)
        (tmp / "run.sh").write_text("#!/bin/sh\n")
        (tmp / "run.sh").chmod(0o700)
    atomic_write_text(tmp_path / "f.json", "{}")
    modes = _modes(tmp_path / "m")
    assert modes == {".": 0o755, "owner-only.bin": 0o644, "sub": 0o755, "run.sh": 0o755, MARKER: 0o644}
    assert (tmp_path / "f.json").stat().st_mode & 0o777 == 0o644


def test_save_pretrained_files_get_usual_permissions(tmp_path, umask_022):
    from tokenizers_bpe import BPETokenizer

    tokenizer = BPETokenizer(vocab_size=270)
    tokenizer.train(["the king and the queen spoke to the people"] * 4)
    saved = DecoderOnlyModel(TINY).save_pretrained(tmp_path / "m", tokenizer=tokenizer)
    assert {"config.json", "model.safetensors", "generation_config.json", "tokenizer.json"} <= set(_names(saved))
    _assert_usual_modes(saved)


def test_trainer_checkpoint_files_get_usual_permissions(tmp_path, umask_022):
    from torch.utils.data import DataLoader

    from training import Trainer

    torch.manual_seed(0)
    ids = torch.randint(0, TINY["vocab_size"], (8, 8))
    rows = [{"input_ids": row, "labels": row} for row in ids]
    trainer = Trainer(model=DecoderOnlyModel(TINY), train_dataloader=DataLoader(rows, batch_size=4),
                      val_dataloader=DataLoader(rows, batch_size=4), learning_rate=1e-3,
                      checkpoint_dir=tmp_path / "run", device="cpu", max_steps=2, eval_every=1, save_every=1)
    trainer.train(epochs=1)
    run = tmp_path / "run"
    for name in ("checkpoint-2", "best", "final"):
        assert (run / name / "trainer_state" / "COMPLETE").is_file() and (run / name / MARKER).is_file()
        assert (run / name / "model.safetensors").is_file()
        _assert_usual_modes(run / name)


def test_save_pretrained_refuses_a_run_folder(tmp_path):
    model = DecoderOnlyModel(TINY)
    run = tmp_path / "run"
    model.save_pretrained(run / "best")
    (run / "metrics.jsonl").write_text("{}\n")
    with pytest.raises(ValueError, match="is not a model directory"):
        model.save_pretrained(run)  # e.g. extract --output_path pointing at the run folder itself
    assert (run / "best" / "config.json").is_file() and (run / "metrics.jsonl").is_file()
    model.save_pretrained(run / "best")  # replacing our own model directory still works
