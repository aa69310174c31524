"""Starts, resumes and ends of runs through main.main(): a failed start leaves nothing, generate finds the newest
run of any mode, the very same command with --resume is accepted, and the summary says why training stopped."""

from __future__ import annotations

import json
import os
import shutil

import pytest
import torch
from safetensors.torch import load_file

import main as cli
from minillm.errors import InputError
from scripts.summary import stop_sentence

from .cli_helpers import TINY_MODEL, write_corpus

STEPS = ["--max_steps", "4", "--eval_steps", "2", "--save_steps", "2"]


def run(argv, capsys):
    code = cli.main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err.strip()


def summary_of(out: str) -> dict:
    return json.loads(next(line for line in out.splitlines() if line.startswith("{")))


@pytest.fixture
def corpus(tmp_path):
    return write_corpus(tmp_path / "d.txt")


def test_a_failed_start_leaves_no_new_directory_under_checkpoints(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "checkpoints" / "older-run").mkdir(parents=True)
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "blank.txt").write_text("\n\n   \n")
    for data in ("empty.txt", "blank.txt", "missing.txt"):
        code, _, err = run(["train", "--data_path", data, *TINY_MODEL], capsys)
        assert code == 2 and err.splitlines()[-1].startswith("error: "), err
        assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == ["older-run"], data
    code, _, err = run(["train", "--resume"], capsys)  # nothing a later --resume could pick
    assert code == 2 and "found no run under checkpoints/" in err


def test_a_start_refused_by_the_trainer_before_it_saved_anything_is_removed(tmp_path, corpus, monkeypatch, capsys):
    from training import Trainer

    def refuse(self, epochs=1, resume_from_checkpoint=None):
        raise InputError("device 'cuda' is not available")

    monkeypatch.setattr(Trainer, "train", refuse)
    code, _, err = run(["train", "--data_path", corpus, "--checkpoint_dir", tmp_path / "runs" / "r", *TINY_MODEL],
                       capsys)
    assert code == 2 and err.endswith("device 'cuda' is not available")
    assert not (tmp_path / "runs").exists()


def _set_mtime(run_dir, seconds):
    for path in [run_dir, *run_dir.iterdir()]:
        os.utime(path, (seconds, seconds))


def test_generate_uses_the_newest_run_whichever_mode_made_it(tmp_path, corpus, capsys):
    runs = tmp_path / "checkpoints"
    code, _, err = run(["train", "--data_path", corpus, "--checkpoint_dir", runs / "trained", *TINY_MODEL, *STEPS],
                       capsys)
    assert code == 0, err
    code, _, err = run(["continue", "--model_path", runs / "trained" / "best", "--data_path", corpus,
                        "--checkpoint_dir", runs / "continued", "--max_steps", "2", "--batch_size", "4",
                        "--max_seq_len", "32"], capsys)
    assert code == 0, err
    assert not (runs / "continued" / "run_config.json").exists()  # continue runs hold none
    (runs / "failed-start").mkdir()
    (runs / "failed-start" / "run_config.json").write_text("{}")  # left by an earlier version: no model
    generate = ["generate", "--checkpoints_root", runs, "--prompt", "The king", "--max_new_tokens", "3",
                "--device", "cpu", "--seed", "0"]
    _set_mtime(runs / "trained", 1_000_000)
    _set_mtime(runs / "continued", 2_000_000)
    _set_mtime(runs / "failed-start", 3_000_000)
    code, out, err = run(generate, capsys)
    assert code == 0, err
    assert f"[using {runs / 'continued'}]" in err and out.startswith("The king")
    _set_mtime(runs / "trained", 4_000_000)
    code, _, err = run(generate, capsys)
    assert code == 0 and f"[using {runs / 'trained'}]" in err


def test_resume_accepts_the_very_same_command(tmp_path, corpus, capsys):
    run_dir = tmp_path / "run"
    command = ["train", "--data_path", corpus, "--checkpoint_dir", run_dir, *TINY_MODEL, *STEPS, "--d_ff", "64",
               "--model_type", "decoder_only", "--preset", "tiny", "--seed", "42"]
    code, _, err = run(command, capsys)
    assert code == 0, err
    expected = load_file(str(run_dir / "final" / "model.safetensors"))
    for name in ("final", "best", "checkpoint-4"):  # as if killed after checkpoint-2
        shutil.rmtree(run_dir / name)
    code, out, err = run([*command, "--resume"], capsys)
    assert code == 0, err
    assert f"resuming from {run_dir / 'checkpoint-2'}" in err and summary_of(out)["global_step"] == 4
    got = load_file(str(run_dir / "final" / "model.safetensors"))
    assert all(torch.equal(expected[k], got[k]) for k in expected)
    shutil.rmtree(run_dir / "final")
    code, _, err = run([*command, "--resume", "--d_ff", "128"], capsys)  # a changed value is still refused
    assert code == 2 and "d_ff is 64, so --d_ff 128 cannot change it" in err


def test_the_summary_says_why_training_stopped(tmp_path, corpus, monkeypatch, capsys):
    code, out, err = run(["train", "--data_path", corpus, "--checkpoint_dir", tmp_path / "a", *TINY_MODEL, *STEPS],
                         capsys)
    assert code == 0, err
    assert summary_of(out)["stop_reason"] == "max_steps"
    assert "stopped: reached --max_steps 4 within the first epoch" in out
    from training.stop_rules import TimeBudget

    monkeypatch.setattr(TimeBudget, "out_of_time", lambda self, elapsed: True)  # the budget is gone at once
    code, out, err = run(["train", "--data_path", corpus, "--checkpoint_dir", tmp_path / "b", *TINY_MODEL,
                          "--max_minutes", "8"], capsys)
    assert code == 0, err
    summary = summary_of(out)
    assert summary["stop_reason"] == "max_time"
    assert f"stopped: the 8-minute budget ran out after {summary['global_step']} step" in out
    code, out, err = run(["continue", "--model_path", tmp_path / "a", "--data_path", corpus, "--checkpoint_dir",
                          tmp_path / "c", "--max_minutes", "0.5", "--batch_size", "4", "--max_seq_len", "32"], capsys)
    assert code == 0, err
    assert summary_of(out)["stop_reason"] == "max_time" and "the 0.5-minute budget ran out after" in out


def test_stop_sentences():
    assert stop_sentence({"stop_reason": "epochs", "global_step": 40}, 2, None, None, 3) == \
        "finished: all 2 epochs ran (40 steps)"
    assert stop_sentence({"stop_reason": "max_steps", "global_step": 9, "epochs_completed": 1}, 5, 9, None, 3) == \
        "stopped: reached --max_steps 9 after 1 epoch"
    early = {"stop_reason": "early_stopping", "global_step": 90, "best_val_loss": 2.0, "best_step": 60,
             "restored_best": False}
    assert stop_sentence(early, 10, None, None, 3).startswith("early stopping: no improvement in 3 evaluations")
    assert stop_sentence({"stop_reason": "max_time", "global_step": 412}, 10, None, 8.0, 3).startswith(
        "stopped: the 8-minute budget ran out after 412 steps")
