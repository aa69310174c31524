"""The Trainer's contracts on a LoRA/QLoRA model: early stopping restores the best adapter from the slim best/
folder, a QLoRA run killed with SIGKILL and resumed ends with the uninterrupted run's adapter, and a QLoRA run under
torchrun (gloo, two CPU ranks, each with its own 4-bit base) ends with identical adapters on both ranks."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from training import Trainer, create_dataloaders, find_latest_checkpoint, load_model_and_tokenizer

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.cli.tiny_hf import instruction_records, make_tiny_llama, write_json

pytest.importorskip("peft")
REPO = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).with_name("worker_qlora.py")
FAST = {"device": "cpu", "progress_bar": False, "tensorboard": False, "plot": False}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return make_tiny_llama(tmp_path_factory.mktemp("tiny-llama") / "tiny")


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}


def test_early_stopping_restores_the_best_adapter_from_its_slim_folder(tiny, tmp_path):
    model, tokenizer = load_model_and_tokenizer(tiny, use_lora=True, lora_r=4, lora_alpha=8, device="cpu")
    train, val = create_dataloaders(instruction_records(32), instruction_records(8, seed=5), tokenizer,
                                    batch_size=4, max_length=48, packing=False)
    # an improvement must beat the best by 100 nats: the first evaluation is the best, the second stops the run
    result = Trainer(model=model, train_dataloader=train, val_dataloader=val, learning_rate=3e-3,
                     checkpoint_dir=tmp_path / "run", early_stopping_patience=1, early_stopping_min_delta=100.0,
                     eval_every=2, save_every=2, **FAST).train(epochs=3)
    assert result["early_stopped"] and result["restored_best"] and result["best_step"] == 2
    assert result["global_step"] == 4
    best = load_file(str(tmp_path / "run" / "best" / "adapter_model.safetensors"))
    final = load_file(str(tmp_path / "run" / "final" / "adapter_model.safetensors"))
    assert best.keys() == final.keys() and all(torch.equal(best[k], final[k]) for k in best)
    assert not (tmp_path / "run" / "best" / "trainer_state" / "trainable.safetensors").exists()
    step2 = load_file(str(tmp_path / "run" / "checkpoint-2" / "trainer_state" / "trainable.safetensors"))
    live = {n: p for n, p in model.named_parameters() if p.requires_grad}
    assert live.keys() == step2.keys() and all(torch.equal(live[n], step2[n]) for n in live)  # step 2's, not 4's


def _start(command: list[str], cwd: Path) -> subprocess.Popen:
    with (cwd / f"log-{len(list(cwd.glob('log-*')))}.txt").open("w") as log:
        return subprocess.Popen([sys.executable, str(REPO / "main.py"), *command], cwd=cwd, env=_env(), stdout=log,
                                stderr=subprocess.STDOUT)


@pytest.mark.slow
def test_qlora_run_killed_and_resumed_ends_with_the_uninterrupted_adapter(tiny, tmp_path):
    write_json(tmp_path / "train.json", instruction_records(64))
    write_json(tmp_path / "eval.json", instruction_records(8, seed=5))

    def command(out: str) -> list[str]:
        return ["train", "--model", str(tiny), "--qlora", "--lora_r", "4", "--train_data", "train.json", "--eval_data",
                "eval.json", "--max_steps", "12", "--save_steps", "2", "--eval_steps", "2", "--batch_size", "4",
                "--gradient_accumulation_steps", "1", "--lr", "3e-3", "--max_seq_len", "48", "--output_dir", out]

    victim, reference = _start(command("victim"), tmp_path), _start(command("reference"), tmp_path)
    deadline = time.monotonic() + 300
    while True:  # kill as soon as a checkpoint past the first exists: eight updates remain
        assert victim.poll() is None, "the victim finished or failed before it was killed"
        assert time.monotonic() < deadline, "no checkpoint-4 appeared"
        latest = find_latest_checkpoint(tmp_path / "victim")
        if latest is not None and latest.name != "checkpoint-2":
            break
        time.sleep(0.01)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert not (tmp_path / "victim" / "final").exists()
    resumed = subprocess.run([sys.executable, str(REPO / "main.py"), *command("victim"), "--resume", "victim"],
                             check=False, cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming from victim/checkpoint-" in resumed.stderr
    assert reference.wait(timeout=300) == 0
    want = load_file(str(tmp_path / "reference" / "final" / "adapter_model.safetensors"))
    have = load_file(str(tmp_path / "victim" / "final" / "adapter_model.safetensors"))
    assert want.keys() == have.keys() and all(torch.equal(want[k], have[k]) for k in want)
    assert any(k.endswith("lora_B.weight") and want[k].abs().max() > 0 for k in want)  # it trained


@pytest.mark.slow
def test_qlora_under_torchrun_gives_identical_adapters_on_both_ranks(tiny, tmp_path):
    out = tmp_path / "ddp"
    out.mkdir()
    run = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                          str(WORKER), str(tiny), str(out)], check=False, env=_env(), capture_output=True, text=True,
                         timeout=400)
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    rank0, rank1 = load_file(str(out / "rank0.safetensors")), load_file(str(out / "rank1.safetensors"))
    assert rank0.keys() == rank1.keys() and all("lora_" in k for k in rank0)
    assert all(torch.equal(rank0[k], rank1[k]) for k in rank0)
    assert any(k.endswith("lora_B.default.weight") and rank0[k].abs().max() > 0 for k in rank0)  # it trained
    result = json.loads((out / "result.json").read_text())
    assert result["global_step"] == 4
