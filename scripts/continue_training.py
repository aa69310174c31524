"""continue: train a saved model further on new data (new optimizer, same weights and tokenizer)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from minillm.errors import InputError

from .summary import print_summary

EXAMPLES = """examples:
  python main.py continue --model_path checkpoints/tinyshakespeare-20261123-170000 --data_path more.txt
  python main.py continue --model_path run/best --data_path chats.jsonl --lr 5e-5 --epochs 3 --checkpoint_dir run2
  python main.py continue --model_path checkpoints/smollm2-135m-qlora-20261202-010000/best --data_path more.json
      # an adapter: its 4-bit base is loaded again and the adapter comes back trainable
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model_path", required=True, help="checkpoint or run directory, HF directory or .gguf")
    parser.add_argument("--data_path", required=True, help="text file, folder of .txt/.md, .jsonl or .json list")
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--max_steps", type=int, default=None)
    parser.add_argument("--max_minutes", type=float, default=None, help="stop (and save) after this many minutes")
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--max_seq_len", type=int, default=None, help="default: the model's context (<= 512)")
    parser.add_argument("--eval_steps", type=int, default=0, help="evaluate every N steps; 0 = once per epoch")
    parser.add_argument("--early_stopping_patience", type=int, default=3,
                        help="evaluations without improvement before stopping [3]; 0 = never stop early")
    parser.add_argument("--val_split", type=float, default=0.1)
    parser.add_argument("--split_method", default="paragraph")
    parser.add_argument("--encoding_errors", default="strict", choices=["strict", "replace"])
    parser.add_argument("--checkpoint_dir", default=None, help="default: checkpoints/<model>-continued-<time>")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--verbose", action="store_true")


def main(args: argparse.Namespace) -> int:
    from training import continue_training, create_dataloaders, load_and_split_data, load_model_and_tokenizer
    from training.finetune_run import count_trainable, loader_shape

    model, tokenizer = load_model_and_tokenizer(args.model_path)
    if tokenizer is None:
        raise InputError(f"{args.model_path} has no tokenizer.json; it cannot tokenize new data")
    train, val, _ = load_and_split_data(args.data_path, split_method=args.split_method, val_split=args.val_split,
                                        seed=args.seed, encoding_errors=args.encoding_errors)
    if args.val_split > 0 and not val:
        raise InputError(f"val_split={args.val_split} leaves no validation data from {len(train)} pieces")
    trainable, total = count_trainable(model, args.model_path)  # an adapter comes back trainable, never frozen
    print(f"model: {type(model).__name__}, {trainable / 1e6:.2f}M of {total / 1e6:.1f}M parameters trainable",
          file=sys.stderr)
    shape = loader_shape(model, args.max_seq_len, args.model_path)  # padded rows for transformers models
    train_loader, val_loader = create_dataloaders(train, val, tokenizer, batch_size=args.batch_size, seed=args.seed,
                                                  **shape)
    name = Path(args.model_path).resolve().name
    out = args.checkpoint_dir or str(Path("checkpoints") / f"{name}-continued-{time.strftime('%Y%m%d-%H%M%S')}")
    result = continue_training(  # model=: the weights loaded above, not a second copy
        args.model_path, train_loader, val_loader, learning_rate=args.lr, epochs=args.epochs, checkpoint_dir=out,
        early_stopping_patience=args.early_stopping_patience or None, tokenizer=tokenizer, device=args.device,
        model=model, max_steps=args.max_steps, eval_every=args.eval_steps or None, seed=args.seed,
        max_minutes=args.max_minutes,
    )
    print_summary(result, args.epochs, args.max_steps, args.max_minutes, args.early_stopping_patience or None)
    print(f"\ncheckpoints: {out}  (best model: {Path(out) / 'best'})")
    return 0
