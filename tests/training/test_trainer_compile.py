"""Trainer(compile=True): the same losses as eager, plain checkpoint keys, and resume as without it."""

from __future__ import annotations

import shutil

import pytest
import torch
from safetensors.torch import load_file

from training import Trainer, find_latest_checkpoint

FAST = {"device": "cpu", "progress_bar": False, "tensorboard": False, "plot": False}
OPTIONS = dict(learning_rate=3e-3, eval_every=1, save_every=2, save_total_limit=None, early_stopping_patience=None, max_steps=4,
               **FAST)


def _run(toy, directory, compile: bool, resume=None):
    train, _ = toy.loaders(n_train=32, batch_size=8, shuffle=True, data=toy.Pattern)  # 4 equal batches
    model = toy.tiny_model()
    trainer = Trainer(model=model, train_dataloader=train, checkpoint_dir=directory, compile=compile, **OPTIONS)
    return trainer.train(epochs=1, resume_from_checkpoint=resume), toy.weights(model)


@pytest.mark.slow  # compiling forward and backward takes tens of seconds on a CPU
def test_compiled_losses_equal_eager_and_checkpoints_keep_plain_keys(toy, tmp_path):
    eager, eager_weights = _run(toy, tmp_path / "eager", compile=False)
    compiled, compiled_weights = _run(toy, tmp_path / "compiled", compile=True)
    assert compiled["global_step"] == eager["global_step"] == 4
    losses = [h["train_loss"] for h in eager["history"]], [h["train_loss"] for h in compiled["history"]]
    assert len(losses[0]) == len(losses[1]) == 4  # one per update (eval_every=1, no validation set)
    for a, b in zip(*losses, strict=True):
        assert b == pytest.approx(a, rel=1e-4, abs=1e-5)
    for name, value in eager_weights.items():
        torch.testing.assert_close(compiled_weights[name], value, atol=1e-4, rtol=1e-4)
    saved = load_file(str(tmp_path / "compiled" / "final" / "model.safetensors"))
    assert saved and not any("_orig_mod" in key for key in saved)
    assert set(saved) == set(load_file(str(tmp_path / "eager" / "final" / "model.safetensors")))
    assert not any("_orig_mod" in key for key in toy.trainable(tmp_path / "compiled" / "checkpoint-2"))


@pytest.mark.slow
def test_compiled_run_resumes_to_the_uninterrupted_result(toy, tmp_path):
    full, full_weights = _run(toy, tmp_path / "full", compile=True)
    partial = tmp_path / "partial"
    shutil.copytree(tmp_path / "full", partial)
    for path in partial.iterdir():
        if path.name == "final" or path.name == "checkpoint-4":
            shutil.rmtree(path)
    assert find_latest_checkpoint(partial).name == "checkpoint-2"
    resumed, resumed_weights = _run(toy, partial, compile=True, resume=True)
    assert resumed["global_step"] == 4
    for a, b in zip(full["history"], resumed["history"], strict=True):
        assert b["train_loss"] == pytest.approx(a["train_loss"], rel=1e-5, abs=1e-6)
    for name, value in full_weights.items():
        torch.testing.assert_close(resumed_weights[name], value, atol=1e-5, rtol=1e-5)


def test_compile_must_be_a_bool(toy, tmp_path):
    train, _ = toy.loaders(n_train=8, batch_size=8)
    with pytest.raises(ValueError, match="compile must be True or False"):
        Trainer(model=toy.tiny_model(), train_dataloader=train, checkpoint_dir=tmp_path, compile="yes", **FAST)
