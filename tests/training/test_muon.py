"""optimizer="muon": Muon (torch.optim.Muon) on the hidden matrices, AdamW on the rest, with exact resume."""

from __future__ import annotations

import shutil

import pytest
import torch

from training import Trainer, find_latest_checkpoint
from training.muon import MuonAdamW, muon_and_adamw_groups

FAST = {"device": "cpu", "progress_bar": False, "tensorboard": False, "plot": False}
OPTIONS = dict(learning_rate=3e-3, optimizer="muon", muon_lr=0.02, save_every=3, save_total_limit=None,
               warmup_steps=2, lr_scheduler="cosine", early_stopping_patience=None, **FAST)


def _run(toy, directory, resume=None, epochs=2, **extra):
    train, val = toy.loaders(n_train=40, batch_size=4, data=toy.Pattern)  # 10 batches per epoch
    model = toy.tiny_model(dropout=0.1)
    trainer = Trainer(model=model, train_dataloader=train, val_dataloader=val, checkpoint_dir=directory,
                      **{**OPTIONS, **extra})
    return trainer, trainer.train(epochs=epochs, resume_from_checkpoint=resume), toy.weights(model)


def test_groups_put_only_block_matrices_under_muon(toy):
    model = toy.tiny_model()
    groups = muon_and_adamw_groups(model, weight_decay=0.1)
    muon = [n for g in groups if g["muon"] for n in g["param_names"]]
    adam = [n for g in groups if not g["muon"] for n in g["param_names"]]
    assert muon and all(".layers." in n and n.endswith("proj.weight") for n in muon)
    assert "model.embed_tokens.weight" in adam  # the (tied) embedding and head stay with AdamW
    assert all("norm" in n for n in adam if n != "model.embed_tokens.weight")
    assert len(muon) + len(adam) == len([p for p in model.parameters() if p.requires_grad])


def test_muon_trains_and_differs_from_adamw(toy, tmp_path):
    trainer, result, weights = _run(toy, tmp_path / "muon", epochs=4)
    assert isinstance(trainer.optimizer, MuonAdamW)
    first, last = result["history"][0]["val_loss"], result["history"][-1]["val_loss"]
    assert last < first - 0.4, (first, last)  # the pattern is learnable (measured: 3.68 -> 3.09)
    _, _, adam_weights = _run(toy, tmp_path / "adamw", epochs=4, optimizer="adamw")
    assert not torch.equal(weights["model.layers.0.mlp.up_proj.weight"], adam_weights["model.layers.0.mlp.up_proj.weight"])


def test_schedule_scales_both_optimizers(toy, tmp_path):
    trainer, _, _ = _run(toy, tmp_path / "run")
    muon_group = next(g for g in trainer.optimizer.param_groups if g["muon"])
    adam_group = next(g for g in trainer.optimizer.param_groups if not g["muon"])
    assert trainer.base_lrs[0] == pytest.approx(0.02)
    factor = muon_group["lr"] / 0.02
    assert 0 < factor < 0.05  # near the end of the cosine
    assert adam_group["lr"] / 3e-3 == pytest.approx(factor)
    assert trainer.optimizer._adamw.param_groups[0] is adam_group  # the inner AdamW reads the same dicts


@pytest.mark.parametrize("step", [3, 9])
def test_resume_is_bit_exact(toy, tmp_path, step):
    _, full, full_weights = _run(toy, tmp_path / "full")
    partial = tmp_path / "partial"
    shutil.copytree(tmp_path / "full", partial)
    for p in partial.iterdir():
        if p.name == "final" or (p.name.startswith("checkpoint-") and int(p.name.split("-")[1]) > step):
            shutil.rmtree(p)
    assert find_latest_checkpoint(partial).name == f"checkpoint-{step}"
    _, resumed, resumed_weights = _run(toy, partial, resume=True)
    assert resumed["history"] == full["history"]
    for name, value in full_weights.items():
        assert torch.equal(resumed_weights[name], value), name


def test_bad_settings_are_refused(toy, tmp_path):
    with pytest.raises(ValueError, match="optimizer 'sgd' is unknown"):
        _run(toy, tmp_path / "a", optimizer="sgd")
    with pytest.raises(ValueError, match="muon_lr must be a positive number"):
        _run(toy, tmp_path / "b", muon_lr=0)
    with pytest.raises(ValueError, match="exclude each other"):
        _run(toy, tmp_path / "c", optimizer_factory=lambda groups, lr: torch.optim.SGD(groups, lr=lr))


def test_batched_update_matches_torch_muon(toy):
    """Our same-shape batching against torch.optim.Muon on the same hidden matrices, three steps."""
    ours_model, ref_model = toy.tiny_model(), toy.tiny_model()
    groups = muon_and_adamw_groups(ours_model, weight_decay=0.1)
    ours = MuonAdamW(groups, lr=3e-3, muon_lr=0.02)
    hidden = [n for g in groups if g["muon"] for n in g["param_names"]]
    ref_params = dict(ref_model.named_parameters())
    muon = torch.optim.Muon([ref_params[n] for n in hidden], lr=0.02, weight_decay=0.1, momentum=0.95,
                            nesterov=True, adjust_lr_fn="original")
    adamw = torch.optim.AdamW([{"params": [ref_params[n] for n in g["param_names"]], "weight_decay": g["weight_decay"]}
                               for g in groups if not g["muon"]], lr=3e-3)
    ids = torch.randint(0, toy.VOCAB, (4, toy.SEQ), generator=torch.Generator().manual_seed(0))
    for _ in range(3):
        for model, optimizers in ((ours_model, [ours]), (ref_model, [muon, adamw])):
            model(input_ids=ids, labels=ids).loss.backward()
            for optimizer in optimizers:
                optimizer.step()
                optimizer.zero_grad()
    initial = toy.tiny_model().state_dict()
    with torch.no_grad():
        for name, param in ours_model.named_parameters():
            torch.testing.assert_close(param, ref_params[name], atol=2e-4, rtol=0)  # bf16 products, batched or not
        moved = max(float((ours_model.state_dict()[n] - initial[n]).abs().max()) for n in hidden)
    assert moved > 0.01  # the parameters did move, so the comparison means something
