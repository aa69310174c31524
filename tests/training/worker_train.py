"""Subprocess entry for the SIGKILL and DDP tests: ``python worker_train.py CHECKPOINT_DIR [--resume]``.

Run it directly or under ``torchrun``; it trains the toy decoder and writes ``result.json`` (rank 0) next to the
checkpoints. Same model, data and options every time, so runs are comparable bit for bit.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import torch
import toy
from torch.utils.data import DataLoader

from training import Trainer


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("checkpoint_dir")
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--shuffle", type=int, default=1)
    parser.add_argument("--dropout", type=float, default=0.1)
    parser.add_argument("--save-every", type=int, default=3)
    parser.add_argument("--fsdp", action="store_true")
    parser.add_argument("--resume-from", default=None)
    parser.add_argument("--unlabelled", default="", help="comma-separated train rows whose labels are all -100")
    args = parser.parse_args()
    torch.set_num_threads(1)
    logging.basicConfig(level=logging.WARNING)
    model = toy.tiny_model(dropout=args.dropout)
    rows = toy.RandomTokens(48, seed=1)
    if args.unlabelled:
        rows = toy.Unlabelled(rows, {int(i) for i in args.unlabelled.split(",")})
    train = DataLoader(rows, batch_size=args.batch_size, shuffle=bool(args.shuffle))
    val = DataLoader(toy.RandomTokens(16, seed=2), batch_size=8)
    trainer = Trainer(model=model, train_dataloader=train, val_dataloader=val, learning_rate=3e-3,
                      checkpoint_dir=args.checkpoint_dir, device="cpu", early_stopping_patience=None,
                      save_every=args.save_every, save_total_limit=2, progress_bar=False, tensorboard=False,
                      plot=False, fsdp=args.fsdp)
    resume = args.resume_from or (True if args.resume else None)
    result = trainer.train(epochs=args.epochs, resume_from_checkpoint=resume)
    if trainer.dist.is_main:
        keep = {k: result[k] for k in ("global_step", "epochs_completed", "history", "best_val_loss")}
        (Path(args.checkpoint_dir) / "result.json").write_text(json.dumps(keep))


if __name__ == "__main__":
    main()
