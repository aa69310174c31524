"""quickstart: train the default decoder on the shipped sample corpus, then generate from it."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

EXAMPLES = """examples:
  python main.py quickstart            # what `make run` does: about 10 minutes on 2 CPU cores
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--prompt", default="ROMEO:", help="prompt for the sample generation")
    parser.add_argument("--max_minutes", type=float, default=None, help="training budget (default: the train default)")


def main(args: argparse.Namespace) -> int:
    from . import generate, train

    run_dir = Path("checkpoints") / f"quickstart-{time.strftime('%Y%m%d-%H%M%S')}"
    train_args = argparse.Namespace(checkpoint_dir=str(run_dir), resume=None, verbose=False, config=None)
    if args.max_minutes is not None:
        train_args.max_minutes = args.max_minutes
    code = train.main(train_args)
    if code:
        return code
    print(f"\n--- sample from {run_dir / 'best'} ---")
    gen_args = argparse.Namespace(model_path=str(run_dir / "best"), checkpoints_root="checkpoints",
                                  tokenizer_path=None, prompt=args.prompt, max_new_tokens=120, temperature=0.8,
                                  top_k=50, top_p=0.95, repetition_penalty=1.0, stop=None, chat=False, system=None,
                                  seed=0, device="cpu", verbose=False)
    return generate.main(gen_args)
