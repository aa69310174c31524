"""Run directories through main.main(): what --overwrite may delete, failed starts, resuming old runs,
--early_stopping_patience 0, training failures (exit 1) and generate's device / held-back text handling."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

import main as cli
from training.errors import TrainingError

from .cli_helpers import TINY_MODEL, write_corpus

STEPS = ["--max_steps", "4", "--eval_steps", "2", "--save_steps", "2"]


def run(argv, capsys):
    code = cli.main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err.strip()


@pytest.fixture
def corpus(tmp_path):
    return write_corpus(tmp_path / "d.txt")


def test_overwrite_never_deletes_a_folder_that_is_not_a_run(tmp_path, corpus, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("precious")
    code, _, err = run(["train", "--data_path", corpus, "--checkpoint_dir", mine, *TINY_MODEL, *STEPS, "--overwrite"],
                       capsys)
    assert code == 2 and "Traceback" not in err
    assert err.splitlines()[-1].startswith("error: ") and "not replaced even with --overwrite" in err
    assert (mine / "notes.txt").read_text() == "precious"


def test_failed_start_leaves_nothing_and_old_failed_starts_do_not_block_a_rerun(tmp_path, corpus, capsys):
    run_dir = tmp_path / "runs" / "run"
    # fails in create_dataloaders, after the tokenizer was trained and saved
    code, _, err = run(["train", "--data_path", corpus, "--checkpoint_dir", run_dir, *TINY_MODEL, *STEPS,
                        "--batch_size", "100000"], capsys)
    assert code == 2 and "fewer than batch_size" in err
    assert not (tmp_path / "runs").exists()  # nothing left behind, not even the parent folder it made
    code, _, err = run(["train", "--resume", "--checkpoint_dir", run_dir], capsys)
    assert code == 2 and "nothing to resume" in err
    run_dir.mkdir(parents=True)
    (run_dir / "run_config.json").write_text("{}")  # what a failed start of an earlier version left behind
    code, _, err = run(["train", "--data_path", corpus, "--checkpoint_dir", run_dir, *TINY_MODEL, *STEPS,
                        "--early_stopping_patience", "0"], capsys)  # same dir, no --overwrite needed; 0 = off
    assert code == 0, err
    saved = json.loads((run_dir / "run_config.json").read_text())
    assert saved["early_stopping_patience"] is None and saved["batch_size"] == 4
    # a finished run is only replaced with --overwrite, and a failed --overwrite start puts it back untouched
    code, _, err = run(["train", "--data_path", corpus, "--checkpoint_dir", run_dir, *TINY_MODEL, *STEPS], capsys)
    assert code == 2 and "already holds a run" in err
    before = sorted(str(p.relative_to(run_dir)) for p in run_dir.rglob("*"))
    code, _, err = run(["train", "--data_path", corpus, "--checkpoint_dir", run_dir, *TINY_MODEL, *STEPS,
                        "--overwrite", "--batch_size", "100000"], capsys)
    assert code == 2 and "fewer than batch_size" in err
    assert sorted(str(p.relative_to(run_dir)) for p in run_dir.rglob("*")) == before
    assert json.loads((run_dir / "run_config.json").read_text()) == saved
    assert sorted(p.name for p in run_dir.parent.iterdir()) == ["run"]  # no hidden backup left either
    # a run_config.json written before newer keys existed still resumes, and --config may set those keys
    for name in ("final", "best", "checkpoint-4"):
        shutil.rmtree(run_dir / name)
    for key in ("mixed_precision", "max_minutes", "overwrite", "encoding_errors"):
        saved.pop(key)
    (run_dir / "run_config.json").write_text(json.dumps(saved))
    config = tmp_path / "more.json"
    config.write_text(json.dumps({"max_minutes": 5}))
    code, _, err = run(["train", "--resume", "--checkpoint_dir", run_dir, "--config", config], capsys)
    assert code == 0, err
    assert "resuming from" in err and (run_dir / "final" / "model.safetensors").is_file()
    config.write_text(json.dumps({"d_model": 64}))
    shutil.rmtree(run_dir / "final")
    code, _, err = run(["train", "--resume", "--checkpoint_dir", run_dir, "--config", config], capsys)
    assert code == 2 and "'d_model' cannot change" in err


@pytest.mark.slow  # compiles a forward and backward
def test_train_compile_runs_the_compiled_step_and_saves_the_flag(tmp_path, corpus, capsys, monkeypatch):
    import training.trainer

    compiled = []
    original = training.trainer.torch.compile
    monkeypatch.setattr(training.trainer.torch, "compile", lambda model, **kw: compiled.append(model) or original(model, **kw))
    run_dir = tmp_path / "run"
    code, _, err = run(["train", "--data_path", corpus, "--checkpoint_dir", run_dir, *TINY_MODEL, *STEPS, "--compile"],
                       capsys)
    assert code == 0, err
    assert len(compiled) == 1 and (run_dir / "final" / "model.safetensors").is_file()
    assert json.loads((run_dir / "run_config.json").read_text())["compile"] is True


def test_training_errors_exit_1_in_one_line(monkeypatch, capsys):
    import scripts.train

    def boom(args):
        raise TrainingError("loss is nan at step 3")

    monkeypatch.setattr(scripts.train, "main", boom)
    code, _, err = run(["train"], capsys)
    assert code == 1 and err == "training failed: loss is nan at step 3"


class _ByteTokenizer:
    """Ids are UTF-8 bytes."""

    def encode(self, text, add_special_tokens=False):
        return list(text.encode())

    def decode(self, ids, skip_special_tokens=False):
        return bytes(ids).decode("utf-8", errors="replace")


class _Model:
    def __init__(self, tokens):
        self.tokens = tokens

    def stream(self, ids, **options):
        for token in self.tokens:
            yield torch.tensor([token])


def test_generate_prints_held_back_text_and_resolves_the_device(monkeypatch, capsys):
    import training.model_extraction

    seen = {}

    def fake_load(path, tokenizer_path=None, device=None):
        seen["device"] = device
        return _Model(list(b"hi") + [0xE2, 0x82]), _ByteTokenizer()  # stops inside "€"

    monkeypatch.setattr(training.model_extraction, "load_model_and_tokenizer", fake_load)
    code, out, err = run(["generate", "--model_path", "whatever", "--prompt", "> "], capsys)
    assert code == 0, err
    assert out == "> hi\ufffd\n"  # the incomplete character is shown once generation ends, not dropped
    assert seen["device"] in ("cpu", "mps") or seen["device"].startswith("cuda")  # --device auto by default
    code, _, err = run(["generate", "--model_path", "whatever", "--prompt", "x", "--device", "gpu0"], capsys)
    assert code == 2 and "Traceback" not in err and err.startswith("error: device 'gpu0'")
