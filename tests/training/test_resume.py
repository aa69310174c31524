"""Exact resume: a fresh Trainer resumed from a run's own checkpoint ends bit-identical to the uninterrupted run."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from training import Trainer, find_latest_checkpoint

FAST = {"device": "cpu", "progress_bar": False, "tensorboard": False, "plot": False}
# Shuffling loader, dropout, accumulation, mid-epoch checkpoints, warmup + cosine: everything resume must carry.
OPTIONS = dict(learning_rate=3e-3, gradient_accumulation_steps=2, save_every=3, save_total_limit=None,
               warmup_steps=2, lr_scheduler="cosine", early_stopping_patience=None, **FAST)


def _run(toy, directory, resume=None):
    train, val = toy.loaders(n_train=40, batch_size=4)  # 10 batches, 5 updates per epoch
    model = toy.tiny_model(dropout=0.1)
    trainer = Trainer(model=model, train_dataloader=train, val_dataloader=val, checkpoint_dir=directory, **OPTIONS)
    return trainer.train(epochs=3, resume_from_checkpoint=resume), toy.weights(model)


@pytest.mark.parametrize("step", [3, 6, 12])  # mid-epoch (step 3, 6 mid epoch 2), and 12 = mid epoch 3
def test_resume_is_bit_exact_with_shuffle_and_dropout(toy, tmp_path, step):
    full, full_weights = _run(toy, tmp_path / "full")
    partial = tmp_path / "partial"
    shutil.copytree(tmp_path / "full", partial)
    for p in partial.iterdir():  # what a run interrupted right after checkpoint-STEP left behind
        if p.name == "final" or (p.name.startswith("checkpoint-") and int(p.name.split("-")[1]) > step):
            shutil.rmtree(p)
    assert find_latest_checkpoint(partial).name == f"checkpoint-{step}"
    resumed, resumed_weights = _run(toy, partial, resume=True)
    assert resumed["global_step"] == full["global_step"] == 15
    assert resumed["history"] == full["history"]  # losses identical, not just close
    for name, value in full_weights.items():
        assert torch.equal(resumed_weights[name], value), name
    logged = [json.loads(x) for x in (partial / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in logged if x.get("event") == "eval"] == [h["step"] for h in full["history"]]


def test_resume_from_other_directory_and_fresh_start_differs(toy, tmp_path):
    _full, full_weights = _run(toy, tmp_path / "full")
    _resumed, resumed_weights = _run(toy, tmp_path / "elsewhere", resume=tmp_path / "full" / "checkpoint-6")
    assert all(torch.equal(resumed_weights[k], v) for k, v in full_weights.items())
    assert (tmp_path / "elsewhere" / "best").is_dir()
    # control: another shuffle seed changes the result, so the equality above is not vacuous
    train, val = toy.loaders(n_train=40, batch_size=4)
    model = toy.tiny_model(dropout=0.1)
    Trainer(model=model, train_dataloader=train, val_dataloader=val, checkpoint_dir=tmp_path / "other",
            **{**OPTIONS, "seed": 7}).train(epochs=3)
    assert not all(torch.equal(p, full_weights[n]) for n, p in toy.weights(model).items())


def test_corrupt_and_incomplete_checkpoints_are_refused(toy, tmp_path):
    _run(toy, tmp_path / "full")
    ckpt = tmp_path / "full" / "checkpoint-12"
    (ckpt / "trainer_state" / "optimizer.safetensors").write_bytes(b"\x00" * 20)
    with pytest.raises(ValueError, match="corrupt"):
        _run(toy, tmp_path / "r1", resume=ckpt)
    (ckpt / "trainer_state" / "COMPLETE").unlink()
    with pytest.raises(ValueError, match="incomplete"):
        _run(toy, tmp_path / "r2", resume=ckpt)
    assert find_latest_checkpoint(tmp_path / "full").name == "checkpoint-15"
    shutil.rmtree(tmp_path / "full" / "checkpoint-15" / "trainer_state")
    assert find_latest_checkpoint(tmp_path / "full").name == "checkpoint-9"
    (tmp_path / "full" / "checkpoint-9" / "trainer_state" / "state.json").write_text("{not json")
    with pytest.raises(ValueError, match="corrupt"):
        _run(toy, tmp_path / "r3", resume=tmp_path / "full" / "checkpoint-9")
    with pytest.raises(FileNotFoundError):
        _run(toy, tmp_path / "r4", resume=tmp_path / "nowhere")


def test_resume_with_frozen_base_keeps_adapters_trainable(toy, tmp_path):
    """The PEFT case in miniature: only some parameters train; resume restores them and they stay trainable."""

    def run(directory, resume=None):
        model = toy.tiny_model()
        for name, p in model.named_parameters():
            p.requires_grad_("layers.1.mlp" in name)
        train, _ = toy.loaders(n_train=32, batch_size=4)
        result = Trainer(model=model, train_dataloader=train, checkpoint_dir=directory, learning_rate=1e-2,
                         save_every=3, early_stopping_patience=None, **FAST).train(epochs=2, resume_from_checkpoint=resume)
        return result, model

    full, full_model = run(tmp_path / "full")
    resumed, model = run(tmp_path / "resumed", resume=tmp_path / "full" / "checkpoint-9")  # mid epoch 2
    assert set(toy.trainable(tmp_path / "full" / "checkpoint-9")) == {
        n for n, p in model.named_parameters() if "layers.1.mlp" in n}
    assert [p.requires_grad for p in model.parameters()] == [p.requires_grad for p in full_model.parameters()]
    assert resumed["history"] == full["history"]
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), full_model.parameters()))
