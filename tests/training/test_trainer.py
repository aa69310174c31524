"""Trainer behaviour on a 2-layer toy decoder: early stopping, restore best, schedule, accumulation, errors."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch.utils.data import DataLoader

from training import Trainer, find_latest_checkpoint
from training.errors import TrainingError

FAST = {"device": "cpu", "progress_bar": False, "tensorboard": False, "plot": False}


def test_early_stopping_triggers_and_restores_best(toy, tmp_path):
    train, val = toy.loaders()  # random tokens: the model memorises train and validation loss rises
    model = toy.tiny_model()
    trainer = Trainer(model=model, train_dataloader=train, val_dataloader=val, learning_rate=1e-2,
                      checkpoint_dir=tmp_path, early_stopping_patience=2, **FAST)
    result = trainer.train(epochs=20)
    assert result["early_stopped"] and result["restored_best"] and result["stop_reason"] == "early_stopping"
    assert result["epochs_completed"] < 20
    val_losses = [h["val_loss"] for h in result["history"]]
    assert result["best_val_loss"] == min(val_losses)
    assert len(val_losses) == result["epochs_completed"]  # evaluated at the end of every epoch
    best = toy.trainable(tmp_path / "best")
    last = toy.trainable(tmp_path / f"checkpoint-{result['global_step']}")
    now = toy.weights(trainer.model)
    assert all(torch.equal(now[k], best[k]) for k in best)
    assert not all(torch.equal(now[k], last[k]) for k in last)
    assert trainer.evaluate() == pytest.approx(result["best_val_loss"], rel=1e-6)
    assert json.loads((tmp_path / "best/trainer_state/state.json").read_text())["global_step"] == result["best_step"]
    # default keeps the last 3 checkpoints, plus best/ and final/
    steps = sorted(int(p.name.split("-")[1]) for p in tmp_path.glob("checkpoint-*"))
    assert steps == [8 * e for e in range(result["epochs_completed"] - 2, result["epochs_completed"] + 1)]
    assert find_latest_checkpoint(tmp_path).name == f"checkpoint-{result['global_step']}"
    lines = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [x["val_loss"] for x in lines if x.get("event") == "eval"] == val_losses


def test_learnable_data_improves_and_monitors_train_loss_without_val(toy, tmp_path):
    train, _ = toy.loaders(data=toy.Pattern)
    trainer = Trainer(model=toy.tiny_model(), train_dataloader=train, learning_rate=3e-3, checkpoint_dir=tmp_path,
                      early_stopping_patience=None, **FAST)
    result = trainer.train(epochs=4)
    losses = [h["train_loss"] for h in result["history"]]
    assert result["epochs_completed"] == 4 and not result["early_stopped"]
    assert losses[-1] < losses[0] - 0.3 and result["best_val_loss"] == min(losses)
    assert (tmp_path / "final/config.json").is_file() and (tmp_path / "final/trainer_state/COMPLETE").is_file()


def test_lr_schedule_applied_per_update(toy, tmp_path):
    train, _ = toy.loaders(n_train=48)
    trainer = Trainer(model=toy.tiny_model(), train_dataloader=train, learning_rate=1e-3, checkpoint_dir=tmp_path,
                      warmup_steps=2, lr_scheduler="cosine", max_steps=6, log_every=1, **FAST)
    result = trainer.train(epochs=1)
    assert result["global_step"] == 6 and result["stop_reason"] == "max_steps" and result["epochs_completed"] == 1
    lrs = [x["lr"] for x in map(json.loads, (tmp_path / "metrics.jsonl").read_text().splitlines()) if "loss" in x]
    assert lrs == pytest.approx([5e-4, 1e-3, 1e-3, 8.535534e-4, 5e-4, 1.464466e-4])


def test_gradient_accumulation_equals_large_batch(toy, tmp_path):
    data = toy.RandomTokens(32, seed=3)
    results, losses = [], []
    for batch_size, accumulation in ((8, 1), (4, 2), (2, 4)):
        model = toy.tiny_model()
        result = Trainer(model=model, train_dataloader=DataLoader(data, batch_size=batch_size), learning_rate=1e-3,
                         checkpoint_dir=tmp_path / str(batch_size), gradient_accumulation_steps=accumulation,
                         early_stopping_patience=None, **FAST).train(epochs=2)
        assert result["global_step"] == 8
        results.append(toy.weights(model))
        losses.append([h["train_loss"] for h in result["history"]])
    start = toy.weights(toy.tiny_model())
    for other, other_losses in zip(results[1:], losses[1:]):
        assert other_losses == pytest.approx(losses[0], rel=1e-5)
        for k in start:  # Adam amplifies summation-order noise of near-zero gradients a little
            torch.testing.assert_close(other[k], results[0][k], rtol=1e-3, atol=5e-5)
    assert (results[0]["model.embed_tokens.weight"] - start["model.embed_tokens.weight"]).abs().max() > 1e-3


def test_weight_decay_only_on_matrices(toy, tmp_path):
    train, _ = toy.loaders()
    trainer = Trainer(model=toy.tiny_model(), train_dataloader=train, checkpoint_dir=tmp_path, weight_decay=0.1, **FAST)
    groups = trainer.optimizer.param_groups
    assert [g["weight_decay"] for g in groups] == [0.1, 0.0]
    assert all(p.dim() >= 2 for p in groups[0]["params"]) and all(p.dim() < 2 for p in groups[1]["params"])


def test_frozen_parameters_stay_out_of_the_optimizer(toy, tmp_path):
    model = toy.tiny_model()
    for name, p in model.named_parameters():
        p.requires_grad_("layers.1" in name)
    before = toy.weights(model)
    train, _ = toy.loaders()
    trainer = Trainer(model=model, train_dataloader=train, checkpoint_dir=tmp_path, learning_rate=1e-2, **FAST)
    trainer.train(epochs=1)
    after = toy.weights(model)
    saved = toy.trainable(tmp_path / "final")
    assert set(saved) == {n for n, p in model.named_parameters() if p.requires_grad}
    assert all(torch.equal(before[n], after[n]) for n in before if "layers.1" not in n)
    assert any(not torch.equal(before[n], after[n]) for n in saved)


def test_empty_dataloader_is_rejected(toy, tmp_path):
    empty = DataLoader(toy.RandomTokens(0), batch_size=4)
    with pytest.raises(ValueError, match="empty"):
        Trainer(model=toy.tiny_model(), train_dataloader=empty, checkpoint_dir=tmp_path, **FAST)


def test_empty_validation_plain_module_and_missing_dir_are_rejected(toy, tmp_path):
    train, _ = toy.loaders()
    with pytest.raises(ValueError, match="val_dataloader is empty"):
        Trainer(model=toy.tiny_model(), train_dataloader=train, val_dataloader=[], checkpoint_dir=tmp_path, **FAST)
    with pytest.raises(ValueError, match="save_pretrained"):
        Trainer(model=torch.nn.Linear(2, 2), train_dataloader=train, checkpoint_dir=tmp_path, **FAST)
    with pytest.raises(ValueError, match="checkpoint_dir"):
        Trainer(model=toy.tiny_model(), train_dataloader=train, checkpoint_dir=None, **FAST)


def test_nan_loss_stops_with_the_step(toy, tmp_path):
    rows = toy.RandomTokens(12).ids
    batches = [{"input_ids": rows[i : i + 4], "labels": rows[i : i + 4]} for i in (0, 4, 8)]
    model = toy.tiny_model()
    forward, calls = model.forward, []

    def poisoned(**batch):  # the third forward's loss is NaN (e.g. a diverged run)
        out = forward(**batch)
        calls.append(1)
        if len(calls) == 3:
            out.loss = out.loss * float("nan")
        return out

    model.forward = poisoned
    trainer = Trainer(model=model, train_dataloader=batches, checkpoint_dir=tmp_path, **FAST)
    with pytest.raises(TrainingError, match=r"loss is nan at step 3"):
        trainer.train(epochs=1)
    assert issubclass(TrainingError, RuntimeError)
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_batches_without_label_tokens_are_skipped(toy, tmp_path):
    """A micro-batch with every label -100 (an MLM batch where nothing was masked) has a 0/0 loss: it is counted
    but not trained on, a window of only such batches makes no step, and evaluate leaves it out."""
    rows = toy.RandomTokens(12).ids
    labelled = [{"input_ids": rows[i : i + 4], "labels": rows[i : i + 4]} for i in (0, 4)]
    empty = {"input_ids": rows[8:12], "labels": torch.full_like(rows[:4], -100)}

    def run(batches, name, accumulation=1, val=None):
        trainer = Trainer(model=toy.tiny_model(), train_dataloader=batches, val_dataloader=val,
                          checkpoint_dir=tmp_path / name, gradient_accumulation_steps=accumulation, **FAST)
        return trainer, trainer.train(epochs=1)

    plain, result = run(labelled, "plain")
    mixed, mixed_result = run([labelled[0], empty, labelled[1]], "mixed")
    assert mixed_result["global_step"] == result["global_step"] == 2  # the empty window made no update
    assert mixed.state["batches_done"] == 0 and mixed_result["epochs_completed"] == 1
    assert all(torch.equal(a, b) for a, b in zip(plain.model.parameters(), mixed.model.parameters(), strict=True))
    accumulated, acc_result = run([labelled[0], empty, empty, labelled[1]], "accumulated", accumulation=2)
    assert acc_result["global_step"] == 2
    assert all(torch.equal(a, b) for a, b in zip(plain.model.parameters(), accumulated.model.parameters(), strict=True))
    assert math.isfinite(acc_result["history"][-1]["train_loss"])
    # validation: a batch without labels neither poisons nor dilutes the token-weighted mean
    plain.val_dataloader = labelled
    want = plain.evaluate()
    plain.val_dataloader = [empty, *labelled, empty]
    assert plain.evaluate() == pytest.approx(want, rel=1e-6)
    plain.val_dataloader = [empty]
    with pytest.raises(ValueError, match="no label tokens"):
        plain.evaluate()


def test_fresh_run_refuses_a_directory_with_checkpoints(toy, tmp_path):
    train, _ = toy.loaders(n_train=16)
    Trainer(model=toy.tiny_model(), train_dataloader=train, checkpoint_dir=tmp_path, **FAST).train(epochs=2)
    assert find_latest_checkpoint(tmp_path).name == "checkpoint-4"
    again = Trainer(model=toy.tiny_model(), train_dataloader=train, checkpoint_dir=tmp_path, **FAST)
    with pytest.raises(ValueError, match=r"already holds checkpoints.*checkpoint-4.*resume_from_checkpoint=True"):
        again.train(epochs=1)
    over = Trainer(model=toy.tiny_model(), train_dataloader=train, checkpoint_dir=tmp_path, overwrite_output_dir=True,
                   **FAST)
    assert over.train(epochs=1)["global_step"] == 2
    assert sorted(p.name for p in tmp_path.glob("checkpoint-*")) == ["checkpoint-2"]  # the old run's are gone
    assert find_latest_checkpoint(tmp_path).name == "checkpoint-2"


def test_unwritable_checkpoint_dir(toy, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    train, _ = toy.loaders()
    with pytest.raises(ValueError, match="not writable"):
        Trainer(model=toy.tiny_model(), train_dataloader=train, checkpoint_dir=blocker / "run", **FAST)


def test_unknown_option_and_bad_values(toy, tmp_path):
    train, _ = toy.loaders()
    with pytest.raises(ValueError, match="warmup_step"):
        Trainer(model=toy.tiny_model(), train_dataloader=train, checkpoint_dir=tmp_path, warmup_step=3, **FAST)
    with pytest.raises(ValueError, match="learning_rate"):
        Trainer(model=toy.tiny_model(), train_dataloader=train, checkpoint_dir=tmp_path, learning_rate=-1, **FAST)
    with pytest.raises(ValueError, match="fp16"):
        Trainer(model=toy.tiny_model(), train_dataloader=train, checkpoint_dir=tmp_path, mixed_precision="fp16", **FAST)
    trainer = Trainer(model=toy.tiny_model(), train_dataloader=[(1, 2)], checkpoint_dir=tmp_path, **FAST)
    with pytest.raises(ValueError, match="dicts"):
        trainer.train(epochs=1)


def test_bf16_autocast_on_cpu_trains(toy, tmp_path):
    train, val = toy.loaders(n_train=16)
    trainer = Trainer(model=toy.tiny_model(), train_dataloader=train, val_dataloader=val, checkpoint_dir=tmp_path,
                      mixed_precision="bf16", learning_rate=1e-2, **FAST)
    result = trainer.train(epochs=1)
    assert next(trainer.model.parameters()).dtype == torch.float32  # master weights stay fp32
    assert result["history"][0]["val_loss"] < 4.3  # ln(64) = 4.16 at init; a broken run would diverge


def test_metrics_log_plot_and_tensorboard(tmp_path):
    from training.metrics_log import MetricsLog

    pytest.importorskip("matplotlib")
    log = MetricsLog(tmp_path, tensorboard=True)
    history = [{"step": s, "train_loss": 4.0 - s / 10, "val_loss": 4.1 - s / 20} for s in (1, 2, 3)]
    for record in history:
        log.write(record)
    path = log.plot(history)
    log.close()
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [json.loads(x)["step"] for x in (tmp_path / "metrics.jsonl").read_text().splitlines()] == [1, 2, 3]
    log.truncate_after(2)
    assert len((tmp_path / "metrics.jsonl").read_text().splitlines()) == 2
    try:
        import torch.utils.tensorboard  # noqa: F401
    except ImportError:
        return  # optional extra not installed: no event files expected
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))


def test_step_schedules_and_gradient_checkpointing(toy, tmp_path):
    data = toy.RandomTokens(24, seed=4)
    runs = []
    for checkpointing in (False, True):
        model = toy.tiny_model()
        trainer = Trainer(model=model, train_dataloader=DataLoader(data, batch_size=4), val_dataloader=[{"input_ids": data.ids[:4], "labels": data.ids[:4]}],
                          checkpoint_dir=tmp_path / str(checkpointing), learning_rate=1e-3, eval_every=4, save_every=5,
                          save_total_limit=None, gradient_checkpointing=checkpointing, early_stopping_patience=None,
                          **FAST)
        result = trainer.train(epochs=2)  # 12 updates
        runs.append((result, toy.weights(model)))
    assert [h["step"] for h in runs[0][0]["history"]] == [4, 8, 12]
    assert sorted(p.name for p in (tmp_path / "False").glob("checkpoint-*")) == ["checkpoint-10", "checkpoint-5"]
    assert runs[1][0]["history"] == runs[0][0]["history"]  # recomputation changes nothing
    assert all(torch.equal(runs[0][1][k], runs[1][1][k]) for k in runs[0][1])


def test_evaluate_is_token_weighted(toy, tmp_path):
    rows = toy.RandomTokens(6, seed=5).ids
    short = {"input_ids": rows[:2], "labels": rows[:2].clone()}
    short["labels"][:, 4:] = -100  # 4 label tokens per row
    full = {"input_ids": rows[2:6], "labels": rows[2:6]}  # 16 per row
    model = toy.tiny_model()
    trainer = Trainer(model=model, train_dataloader=[full], val_dataloader=[short, full], checkpoint_dir=tmp_path,
                      **FAST)
    with torch.no_grad():
        a, b = model(**short).loss.item(), model(**full).loss.item()
    assert trainer.evaluate() == pytest.approx((a * 8 + b * 64) / 72, rel=1e-6)
    assert trainer.evaluate() != pytest.approx((a + b) / 2, rel=1e-4)
