"""CUDA paths: fp16 with a grad scaler, bf16 autocast, exact resume on the GPU (skipped without CUDA)."""

from __future__ import annotations

import math

import pytest
import torch

from training import Trainer

pytestmark = pytest.mark.gpu


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_mixed_precision_on_cuda_trains_and_resumes(toy, tmp_path, precision):
    if precision == "bf16" and not torch.cuda.is_bf16_supported():
        pytest.skip("no bf16 on this GPU")

    def run(directory, resume=None):
        train, val = toy.loaders(n_train=32, batch_size=4)
        model = toy.tiny_model()
        trainer = Trainer(model=model, train_dataloader=train, val_dataloader=val, learning_rate=3e-3,
                          checkpoint_dir=directory, device="cuda", mixed_precision=precision, save_every=4,
                          early_stopping_patience=None, progress_bar=False, tensorboard=False, plot=False)
        return trainer.train(epochs=2, resume_from_checkpoint=resume), toy.weights(model)

    full, weights = run(tmp_path / "full")
    assert next(iter(weights.values())).device.type == "cuda"
    assert all(math.isfinite(h["val_loss"]) for h in full["history"])
    resumed, resumed_weights = run(tmp_path / "resumed", resume=tmp_path / "full" / "checkpoint-8")
    assert resumed["global_step"] == full["global_step"] == 16
    for name, value in weights.items():  # same kernels, same order: exact on one GPU with deterministic ops
        torch.testing.assert_close(resumed_weights[name], value, rtol=1e-5, atol=1e-6)
