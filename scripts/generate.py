"""generate: stream text from one of our checkpoints, an HF directory or a .gguf file."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from minillm.errors import InputError

EXAMPLES = """examples:
  python main.py generate --prompt "To be, or not to be"              # newest run under checkpoints/
  python main.py generate --model_path checkpoints/default/best --prompt "ROMEO:" --temperature 0.8 --top_k 50
  python main.py generate --model_path smollm2 --prompt "What is a transformer?" --chat
  python main.py --mode generate --model_path model.gguf --prompt "Hello" --max_new_tokens 64
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model_path", default=None,
                        help="checkpoint or run directory, HF directory, .gguf file, or 'smollm2' "
                             "(default: the newest run under --checkpoints_root, else SmolLM2)")
    parser.add_argument("--checkpoints_root", default="checkpoints", help="where to look for the newest run")
    parser.add_argument("--tokenizer_path", default=None, help="tokenizer.json or a directory holding one")
    parser.add_argument("--prompt", required=True, help="the prompt text")
    parser.add_argument("--max_new_tokens", type=int, default=128)
    parser.add_argument("--temperature", type=float, default=0.8, help="0 means greedy decoding")
    parser.add_argument("--top_k", type=int, default=50)
    parser.add_argument("--top_p", type=float, default=0.95)
    parser.add_argument("--repetition_penalty", type=float, default=1.0)
    parser.add_argument("--stop", action="append", default=None, help="stop string (repeatable)")
    parser.add_argument("--chat", action="store_true", help="wrap the prompt in the model's chat template")
    parser.add_argument("--system", default=None, help="system message for --chat")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--device", default="auto", help="auto (cuda, then mps, then cpu), cpu, cuda, cuda:N or mps")
    parser.add_argument("--verbose", action="store_true")


def check_sampling(args: argparse.Namespace) -> None:
    """Refuse sampling options outside their range (one ``InputError`` naming the flag, the value and the range)."""
    checks = [
        ("max_new_tokens", args.max_new_tokens >= 1, "an integer >= 1"),
        ("temperature", args.temperature >= 0, ">= 0 (0 means greedy decoding)"),
        ("top_k", args.top_k >= 0, "an integer >= 0 (0 keeps every token)"),
        ("top_p", 0 < args.top_p <= 1, "in (0, 1] (1 keeps every token)"),
        ("repetition_penalty", args.repetition_penalty > 0, "> 0 (1 means no penalty)"),
    ]
    for name, valid, expected in checks:
        if not valid:
            raise InputError(f"--{name} {getattr(args, name)!r} is out of range; it must be {expected}")


def main(args: argparse.Namespace) -> int:
    from minillm.devices import resolve_device
    from training.model_extraction import load_model_and_tokenizer
    from training.run import newest_run

    check_sampling(args)
    device = str(resolve_device(args.device))  # "auto" -> cuda/mps/cpu; a bad name: ValueError
    model_path = args.model_path
    if model_path is None:  # the run (train or continue) that saved a model last
        model_path = newest_run(Path(args.checkpoints_root), with_model=True) or "smollm2"
        print(f"[using {model_path}]", file=sys.stderr)
    model, tokenizer = load_model_and_tokenizer(str(model_path), tokenizer_path=args.tokenizer_path, device=device)
    if tokenizer is None:
        raise InputError(f"{model_path} has no tokenizer.json; pass --tokenizer_path")
    if not hasattr(model, "stream"):
        raise InputError(f"{model_path} holds a {type(model).__name__}, which does not generate text; "
                         "use a decoder checkpoint")
    prompt = args.prompt
    if args.chat:
        messages = ([{"role": "system", "content": args.system}] if args.system else []) + [
            {"role": "user", "content": prompt}
        ]
        prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    ids = tokenizer.encode(prompt, add_special_tokens=not args.chat)
    if not ids:
        raise InputError("the prompt encodes to no tokens; give a non-empty --prompt")
    sample = args.temperature > 0
    stream = model.stream(
        [ids], max_new_tokens=args.max_new_tokens, do_sample=sample, temperature=args.temperature if sample else 1.0,
        top_k=args.top_k if sample else None, top_p=args.top_p if sample else None,
        repetition_penalty=args.repetition_penalty, stop=args.stop, seed=args.seed, tokenizer=tokenizer,
    )
    if not args.chat:
        sys.stdout.write(args.prompt)
    new: list[int] = []
    shown = ""
    for token in stream:
        new.append(int(token[0]))
        text = tokenizer.decode(new, skip_special_tokens=True)  # the eos that ends a reply is not shown
        if text.endswith("\ufffd"):
            continue  # an incomplete UTF-8 character: wait for its next byte
        sys.stdout.write(text[len(shown):])
        sys.stdout.flush()
        shown = text
    if new:  # generation may stop on an incomplete character: print what was held back
        text = tokenizer.decode(new, skip_special_tokens=True)
        if text.startswith(shown):
            sys.stdout.write(text[len(shown):])
    sys.stdout.write("\n")
    return 0
