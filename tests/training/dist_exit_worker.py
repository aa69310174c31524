"""Subprocess entry for the exit test: ``torchrun ... dist_exit_worker.py OUT_DIR {global,local}``.

Trains the toy decoder for one epoch under DDP, then, at interpreter exit, writes ``threads-RANK.json`` with the
number of OS threads of this process before the Trainer existed and after every other atexit handler ran (the
Trainer's process-group teardown among them). gloo's worker threads still alive at that point are what aborts
an exiting rank ("terminate called without an active exception") when one is still freeing the last
collective's tensors; the count makes that state visible on every run, not only on the unlucky ones.

``global`` keeps the Trainer in a module global (alive at exit, as in a plain training script); ``local``
drops it before exit.
"""

from __future__ import annotations

import atexit
import json
import os
import sys
from pathlib import Path

import torch
import toy
from torch.utils.data import DataLoader

from training import Trainer


def _threads() -> int:
    return len(os.listdir("/proc/self/task"))


def _build(checkpoint_dir: Path) -> Trainer:
    train = DataLoader(toy.RandomTokens(16, seed=1), batch_size=2)
    val = DataLoader(toy.RandomTokens(8, seed=2), batch_size=8)
    return Trainer(model=toy.tiny_model(dropout=0.0), train_dataloader=train, val_dataloader=val,
                   learning_rate=3e-3, checkpoint_dir=checkpoint_dir, device="cpu", early_stopping_patience=None,
                   save_every=100, progress_bar=False, tensorboard=False, plot=False)


def _train_locally(checkpoint_dir: Path) -> None:
    _build(checkpoint_dir).train(epochs=1)


out, mode = Path(sys.argv[1]), sys.argv[2]
torch.set_num_threads(1)
start = _threads()
report = out / f"threads-{os.environ['RANK']}.json"
# registered before the Trainer registers its teardown, so it runs after it (atexit runs last-in, first-out)
atexit.register(lambda: report.write_text(json.dumps({"start": start, "exit": _threads()})))
if mode == "global":
    trainer = _build(out / "ck")
    trainer.train(epochs=1)
else:
    _train_locally(out / "ck")
