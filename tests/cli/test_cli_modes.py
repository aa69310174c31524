"""Every mode through the CLI, in subprocesses: train -> generate / continue / extract / resume."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file

from .cli_helpers import TINY_MODEL, run_cli, write_corpus

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    work = tmp_path_factory.mktemp("cli")
    data = write_corpus(work / "train.txt")
    result = run_cli("--mode", "train", "--data_path", str(data), "--checkpoint_dir", "run", *TINY_MODEL,
                     "--max_steps", "8", "--eval_steps", "4", "--early_stopping_patience", "5", cwd=work)
    assert result.returncode == 0, result.stderr[-2000:]
    return work, result


def test_train_writes_the_run_layout(trained):
    work, result = trained
    run = work / "run"
    names = {p.name for p in run.iterdir()}
    assert {"best", "final", "checkpoint-4", "checkpoint-8", "metrics.jsonl", "run_config.json", "tokenizer"} <= names
    assert (run / "best" / "tokenizer.json").is_file() and (run / "best" / "model.safetensors").is_file()
    summary = json.loads(next(line for line in result.stdout.splitlines() if line.startswith("{")))
    assert summary["global_step"] == 8 and summary["best_val_loss"] < 6.0  # ln(300) = 5.7 at the start
    assert "python main.py generate --model_path" in result.stdout  # says what to run next


def test_generate_uses_the_newest_run(trained):
    work, _ = trained
    shutil.copytree(work / "run", work / "checkpoints" / "newest", dirs_exist_ok=True)
    result = run_cli("generate", "--prompt", "The king", "--max_new_tokens", "12", "--seed", "1", cwd=work)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("The king") and len(result.stdout.strip()) > len("The king")
    assert "checkpoints/newest" in result.stderr


def test_extract_opens_in_transformers(trained):
    transformers = pytest.importorskip("transformers")
    work, _ = trained
    result = run_cli("extract", "--model_path", "run", "--output_path", "slim", cwd=work)
    assert result.returncode == 0, result.stderr[-2000:]
    slim = work / "slim"
    assert not (slim / "trainer_state").exists() and (slim / "tokenizer.json").is_file()
    hf = transformers.AutoModelForCausalLM.from_pretrained(slim).eval()
    from minillm import load_pretrained

    ours = load_pretrained(slim)
    ids = torch.randint(0, 300, (1, 10))
    with torch.no_grad():
        torch.testing.assert_close(ours(input_ids=ids).logits, hf(input_ids=ids).logits, atol=1e-5, rtol=1e-5)


def test_continue_trains_from_the_saved_weights(trained):
    work, _ = trained
    more = write_corpus(work / "more.txt", paragraphs=80)
    result = run_cli("continue", "--model_path", "run/best", "--data_path", str(more), "--checkpoint_dir", "cont",
                     "--max_steps", "4", "--batch_size", "4", "--max_seq_len", "32", cwd=work)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (work / "cont" / "final" / "model.safetensors").is_file()


def test_resume_reaches_the_uninterrupted_weights_and_finished_runs_say_so(trained):
    work, _ = trained
    broken = work / "interrupted"
    shutil.copytree(work / "run", broken)
    for name in ("final", "best", "checkpoint-8"):  # as if killed after checkpoint-4
        shutil.rmtree(broken / name)
    result = run_cli("train", "--resume", "--checkpoint_dir", "interrupted", cwd=work)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "resuming from interrupted/checkpoint-4" in result.stderr
    expected = load_file(str(work / "run" / "final" / "model.safetensors"))
    got = load_file(str(broken / "final" / "model.safetensors"))
    assert expected.keys() == got.keys()
    assert all(torch.equal(expected[k], got[k]) for k in expected)
    again = run_cli("train", "--resume", "--checkpoint_dir", "interrupted", cwd=work)
    assert again.returncode == 0 and "already finished" in again.stdout


def test_quickstart_trains_on_the_shipped_sample_then_generates(tmp_path):
    result = run_cli("quickstart", "--max_minutes", "0.1", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    runs = list((tmp_path / "checkpoints").glob("quickstart-*"))
    assert len(runs) == 1 and (runs[0] / "best" / "model.safetensors").is_file()
    assert "tinyshakespeare.txt" in result.stderr  # the shipped sample was used
    assert "--- sample from" in result.stdout and result.stdout.rstrip().split("---")[-1].strip().startswith("ROMEO:")
