"""generate: stream text from one of our checkpoints, an HF directory, a .gguf file or an adapter, optionally
through named LoRA adapters (``--adapter``, see :mod:`minillm.hf.adapters`).

``--adapter`` takes ``PATH`` (a peft adapter directory, named after its folder), ``NAME=PATH``, or a bare ``NAME``
looked up as ``MODEL/adapters/NAME`` (beside the model), then ``CHECKPOINTS_ROOT/adapters/NAME``. It repeats:
every adapter is loaded (and checked against the base) and ``--use`` picks the one to generate with (default:
the last; ``--use base`` runs the base model). transformers and peft models stream through
:mod:`minillm.hf.streaming`, ours through their own ``stream``.
"""

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
  python main.py generate --model_path smollm2 --adapter adapters/eli5 --prompt "What is RAG?" --chat
  python main.py generate --model_path run/best --adapter eli5 --prompt "Why is the sky blue?"  # run/best/adapters/eli5
  python main.py generate --model_path smollm2 --adapter eli5=out/eli5 --adapter exec=out/executive --use exec \\
      --prompt "Summarise RAG" --chat      # several adapters on one base (--use base: the base model)
  python main.py generate --model_path out/eli5 --prompt "Hi"     # an adapter directory: its base + the adapter
  python main.py generate --model_path smollm2 --prompt "Hello" --compile   # compiled decoding step (CPU: faster)
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
    parser.add_argument("--adapter", action="append", default=None, metavar="NAME_OR_PATH",
                        help="LoRA adapter on the model (repeatable): PATH (a peft adapter directory), NAME=PATH, or "
                             "NAME found in MODEL/adapters/ or CHECKPOINTS_ROOT/adapters/")
    parser.add_argument("--use", default=None, metavar="NAME",
                        help="which --adapter to generate with (default: the last one; 'base': none)")
    parser.add_argument("--any_adapter_base", action="store_true",
                        help="load adapters even when their adapter_config.json names another base model")
    parser.add_argument("--quantize", choices=["int8"], default=None,
                        help="int8: weight-only int8 projections for our decoder (faster on CPU, see "
                             "minillm.int8_weights)")
    parser.add_argument("--compile", action="store_true",
                        help="our decoder: decode through one torch.compile graph over a static cache (the first "
                             "run compiles for tens of seconds, later tokens come faster; minillm.compiled_decoding)")
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
    from minillm import DecoderOnlyModel
    from minillm.devices import resolve_device
    from minillm.hf.streaming import can_generate, streaming_function
    from training.model_extraction import load_model_and_tokenizer
    from training.run import newest_run

    check_sampling(args)
    device = str(resolve_device(args.device))  # "auto" -> cuda/mps/cpu; a bad name: ValueError
    model_path = args.model_path
    if model_path is None:  # the run (train or continue) that saved a model last
        model_path = newest_run(Path(args.checkpoints_root), with_model=True) or "smollm2"
        print(f"[using {model_path}]", file=sys.stderr)
    adapters = adapter_specs(args, model_path)  # bad --adapter values fail before the model loads
    model, tokenizer = load_model_and_tokenizer(str(model_path), tokenizer_path=args.tokenizer_path, device=device)
    if tokenizer is None:
        raise InputError(f"{model_path} has no tokenizer.json; pass --tokenizer_path")
    if not can_generate(model):
        raise InputError(f"{model_path} holds a {type(model).__name__}, which does not generate text; "
                         "use a decoder checkpoint or a causal LM")
    if adapters or args.use is not None:
        model = with_adapters(model, model_path, adapters, args)
    if args.quantize == "int8":
        model = quantized(model, model_path)
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
    options = {}
    if args.compile:
        if not isinstance(model, DecoderOnlyModel):
            raise InputError(f"--compile works on our decoder; {model_path} loaded as {type(model).__name__} "
                             "(drop --compile, or --use base without adapters)")
        options["compile"] = True
        print("[--compile: after the first token the decoding step compiles, tens of seconds the first time "
              "(torch caches it on disk for later runs)]", file=sys.stderr)
    stream = streaming_function(model)(
        [ids], max_new_tokens=args.max_new_tokens, do_sample=sample, temperature=args.temperature if sample else 1.0,
        top_k=args.top_k if sample else None, top_p=args.top_p if sample else None,
        repetition_penalty=args.repetition_penalty, stop=args.stop, seed=args.seed, tokenizer=tokenizer, **options,
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


def quantized(model, model_path: str | Path):
    """``model`` with int8 weights (:func:`minillm.int8_weights.quantize_int8`); our decoder only."""
    from minillm import DecoderOnlyModel
    from minillm.int8_weights import quantize_int8

    if not isinstance(model, DecoderOnlyModel):
        raise InputError(f"--quantize int8 works on our decoder; {model_path} loaded as {type(model).__name__} "
                         "(use --use base without adapters, or drop --quantize)")
    return quantize_int8(model)


def adapter_specs(args: argparse.Namespace, model_path: str | Path) -> list[tuple[str, Path]]:
    """``(name, directory)`` of every ``--adapter``, in order; InputError for a bad one or a repeated name."""
    if not args.adapter:
        return []
    from minillm.hf.adapters import find_adapter
    from training.model_extraction import resolve_model_path

    folders = [Path(model_path) / "adapters"]
    try:
        resolved = resolve_model_path(model_path)
    except (FileNotFoundError, InputError):  # a hub alias: only the checkpoints root
        resolved = None
    if resolved is not None and resolved.is_dir() and resolved != Path(model_path):
        folders.append(resolved / "adapters")
    folders.append(Path(args.checkpoints_root) / "adapters")
    specs = [find_adapter(spec, folders) for spec in args.adapter]
    names = [name for name, _ in specs]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise InputError(f"--adapter names {', '.join(map(repr, repeated))} more than once; give each a name "
                         "with NAME=PATH")
    return specs


def adapter_base_name(model_path: str | Path) -> str | None:
    """The name adapters must name as their base: the resolved model directory (or alias, hub id); None for an
    adapter directory (its own adapter_config.json names the base)."""
    from minillm.hf.aliases import is_alias
    from minillm.hf.loading import is_adapter_dir
    from training.model_extraction import resolve_model_path

    if is_adapter_dir(model_path):
        return None
    if is_alias(str(model_path)) and not Path(model_path).exists():
        return str(model_path)
    try:
        return str(resolve_model_path(model_path))
    except FileNotFoundError:
        return str(model_path)


def with_adapters(model: object, model_path: str | Path, adapters: list[tuple[str, Path]],
                  args: argparse.Namespace) -> object:
    """``model`` with every adapter loaded and ``--use`` (default: the last adapter) switched on."""
    from minillm.hf.adapters import AdapterSet

    adapter_set = AdapterSet(model, base_name=adapter_base_name(model_path), check_base=not args.any_adapter_base)
    for name, directory in adapters:
        adapter_set.load(name, directory)
    chosen = args.use if args.use is not None else (adapters[-1][0] if adapters else adapter_set.active)
    adapter_set.use(chosen)
    if args.verbose:
        shown = chosen or "base"
        print(f"[adapters: {', '.join(adapter_set.names()) or 'none'}; using {shown}]", file=sys.stderr)
    return adapter_set.model
