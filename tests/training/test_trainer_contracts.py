"""Trainer contracts from the hardening work: optimizer state by name, the time budget's plan, the batch hook's
exact resume, the optimizer factory, and the tokenizer taken from the loaders."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from torch.utils.data import DataLoader

import training.trainer as trainer_module
from minillm import EncoderOnlyModel
from minillm.errors import InputError
from training import Trainer, find_latest_checkpoint

FAST = {"device": "cpu", "progress_bar": False, "tensorboard": False, "plot": False}


class _Adapters(torch.nn.Module):
    """Two named adapters on a frozen decoder: the order of their parameters is the order of the names."""

    def __init__(self, toy, order: tuple[str, str]) -> None:
        super().__init__()
        self.base = toy.tiny_model()
        self.base.requires_grad_(False)
        for name in order:
            self.register_parameter(name, torch.nn.Parameter(torch.zeros(toy.VOCAB)))
        self.order = order

    def forward(self, input_ids, labels=None, attention_mask=None):
        output = self.base(input_ids=input_ids, labels=None)
        logits = output.logits + self.alpha + 2 * self.beta
        loss = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1))
        return type(output)(loss=loss, logits=logits)

    def save_pretrained(self, directory):
        self.base.save_pretrained(directory)


def test_resume_refuses_optimizer_state_of_other_parameters(toy, tmp_path):
    train, val = toy.loaders(n_train=16, batch_size=4)
    first = _Adapters(toy, ("alpha", "beta"))
    Trainer(model=first, train_dataloader=train, val_dataloader=val, checkpoint_dir=tmp_path,
            early_stopping_patience=None, **FAST).train(epochs=1)
    swapped = _Adapters(toy, ("beta", "alpha"))  # same sizes, other order: AdamW moments would be swapped
    trainer = Trainer(model=swapped, train_dataloader=train, val_dataloader=val, checkpoint_dir=tmp_path,
                      early_stopping_patience=None, **FAST)
    with pytest.raises(InputError, match=r"'alpha' in the checkpoint but 'beta' now"):
        trainer.train(epochs=2, resume_from_checkpoint=True)
    same = _Adapters(toy, ("alpha", "beta"))
    Trainer(model=same, train_dataloader=train, val_dataloader=val, checkpoint_dir=tmp_path,
            early_stopping_patience=None, **FAST).train(epochs=2, resume_from_checkpoint=True)


class _Clock:
    """A perf_counter that advances one second per call: each update "takes" one second."""

    def __init__(self) -> None:
        self.now = 0.0

    def perf_counter(self) -> float:
        self.now += 1.0
        return self.now


def test_time_budget_plans_schedule_bar_and_stop_reason(toy, tmp_path, monkeypatch):
    monkeypatch.setattr(trainer_module, "time", _Clock())
    train, _ = toy.loaders(n_train=40, batch_size=4)  # 10 updates an epoch, 1000 planned for 100 epochs
    trainer = Trainer(model=toy.tiny_model(), train_dataloader=train, checkpoint_dir=tmp_path, learning_rate=1e-3,
                      lr_scheduler="cosine", warmup_steps=100, max_minutes=1.0, early_stopping_patience=None,
                      log_every=1, **FAST)
    result = trainer.train(epochs=100)
    assert result["stop_reason"] == "max_time"
    steps = result["global_step"]
    assert 50 <= steps <= 62  # one second per update (and the eval's clock calls) within one minute
    assert trainer.state["planned_steps"] == steps  # the plan converged on what the budget held
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    lrs = {r["step"]: r["lr"] for r in records if "loss" in r and "lr" in r}
    assert max(lrs.values()) == pytest.approx(1e-3, rel=0.05)  # warm-up (capped to a tenth of the plan) ended
    assert lrs[steps] < 0.05 * 1e-3  # the cosine reached its end when the time did, not after 1000 updates
    assert (tmp_path / f"checkpoint-{steps}").is_dir()


def test_optimizer_factory_builds_the_optimizer_from_named_groups(toy, tmp_path):
    seen = {}

    def sgd(groups, lr):
        seen["names"] = [g["param_names"] for g in groups]
        return torch.optim.SGD(groups, lr=lr)

    train, _ = toy.loaders(n_train=8, batch_size=4)
    trainer = Trainer(model=toy.tiny_model(), train_dataloader=train, checkpoint_dir=tmp_path,
                      optimizer_factory=sgd, early_stopping_patience=None, **FAST)
    assert isinstance(trainer.optimizer, torch.optim.SGD)
    assert "model.embed_tokens.weight" in seen["names"][0] and seen["names"][1]  # decay, then no-decay group
    trainer.train(epochs=1)
    with pytest.raises(InputError, match="optimizer_factory"):
        Trainer(model=toy.tiny_model(), train_dataloader=train, checkpoint_dir=tmp_path / "x",
                optimizer_factory=lambda groups, lr: "adam", **FAST)


class _Plain:
    """The tokenizer surface the encoder's hook reads: a mask id and the special ids."""

    mask_token_id = 3
    all_special_ids = (0, 1, 2, 3)


def _plain_text_batches(n: int = 12) -> list[dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(4, 60, (n, 4, 16), generator=g)
    return [{"input_ids": x, "attention_mask": torch.ones_like(x), "labels": x.clone(),
             "segment_ids": torch.zeros_like(x)} for x in ids]


def _encoder() -> EncoderOnlyModel:
    torch.manual_seed(0)
    return EncoderOnlyModel({"model_type": "encoder_only", "vocab_size": 60, "d_model": 32, "num_heads": 2,
                             "num_layers": 1, "d_ff": 64, "max_seq_len": 16, "dropout": 0.0})


def test_encoder_hook_masks_plain_text_and_resume_is_exact(tmp_path):
    batches = _plain_text_batches()
    model = _encoder()
    masked = model.prepare_batch(batches[0], generator=torch.Generator().manual_seed(1), tokenizer=_Plain())
    assert "segment_ids" not in masked and (masked["labels"] != -100).any()
    assert (masked["input_ids"] == 3).any()  # <mask> inserted
    assert model.prepare_batch(masked, generator=torch.Generator(), tokenizer=_Plain()) is masked  # MLM passes
    with pytest.raises(InputError, match="mask token"):
        model.prepare_batch(batches[0], generator=torch.Generator(), tokenizer=None)

    def run(directory, resume=None):
        model = _encoder()
        trainer = Trainer(model=model, train_dataloader=batches, val_dataloader=batches[:2],
                          checkpoint_dir=directory, tokenizer=_TokenizerStub(), learning_rate=3e-3, save_every=3,
                          save_total_limit=None, early_stopping_patience=None, **FAST)
        return trainer.train(epochs=2, resume_from_checkpoint=resume), model.state_dict()

    full, weights = run(tmp_path / "full")
    assert full["history"][-1]["val_loss"] < full["history"][0]["val_loss"] + 1.0
    partial = tmp_path / "partial"
    shutil.copytree(tmp_path / "full", partial)
    for path in partial.iterdir():
        if path.name == "final" or (path.name.startswith("checkpoint-") and int(path.name.split("-")[1]) > 9):
            shutil.rmtree(path)
    assert find_latest_checkpoint(partial).name == "checkpoint-9"
    resumed, resumed_weights = run(partial, resume=True)
    assert resumed["history"] == full["history"]
    assert all(torch.equal(resumed_weights[k], v) for k, v in weights.items())


class _TokenizerStub(_Plain):
    """_Plain that checkpoints can save."""

    def save(self, directory) -> None:
        pass


def test_trainer_takes_the_tokenizer_the_loaders_were_built_with(toy, tmp_path):
    train, _ = toy.loaders(n_train=8, batch_size=4)
    stub = _TokenizerStub()
    train.tokenizer = stub
    trainer = Trainer(model=toy.tiny_model(), train_dataloader=train, checkpoint_dir=tmp_path, **FAST)
    assert trainer.tokenizer is stub
    assert isinstance(train, DataLoader)
