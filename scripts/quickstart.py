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
    parser = argparse.ArgumentParser()
    generate.add_arguments(parser)  # every generate flag at its default, so new flags need no change here
    gen_args = parser.parse_args(["--model_path", str(run_dir / "best"), "--prompt", args.prompt,
                                  "--max_new_tokens", "120", "--seed", "0", "--device", "cpu"])
    return generate.main(gen_args)
