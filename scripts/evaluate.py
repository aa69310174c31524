"""evaluate: run a question bank through a model (ours, HF, HF + adapter, merged), score and time every answer.

The bank (``--questions``) is a JSON list of ``{"question", "id"?, "category"?, "difficulty"?, "answer"?,
"keywords"?}`` objects (default: the shipped autoimmune bank, training/sample_data/autoimmune_questions.json) or
``pubmedqa[:N]`` (the shipped PubMedQA dev items: abstract + question, answered yes/no/maybe). Results go to
``--output`` as the seed's JSON list (``id, category, difficulty, question, response, time_seconds, timestamp``
plus ``label, model, adapter, scores``), rewritten atomically after every answer; the run's settings, perplexity
(``--perplexity_data``) and means go to the sidecar ``NAME.meta.json``. Re-running with the same ``--output``
skips the questions already answered (same label, model and adapter); ``--no_resume`` starts over. ``--adapter``
loads a LoRA adapter over the model exactly as ``generate --adapter`` does. See :mod:`training.evaluation`.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from minillm.errors import InputError

EXAMPLES = """examples:
  python main.py evaluate --model_path smollm2 --label baseline --output results/baseline.json
  python main.py evaluate --model_path smollm2 --adapter checkpoints/qlora/best --label qlora \\
      --output results/qlora.json --perplexity_data data/val.jsonl
  python main.py evaluate --model_path checkpoints/full/best --label full --output results/full.json
  python main.py evaluate --questions pubmedqa:50 --model_path smollm2 --output results/pubmedqa.json --chat on
  python main.py compare results/baseline.json results/qlora.json results/full.json --output_dir report/
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--questions", default=None,
                        help="question bank: a JSON list of {question, id?, category?, difficulty?, answer?, "
                             "keywords?}, or pubmedqa[:N] (default: training/sample_data/autoimmune_questions.json)")
    parser.add_argument("--model_path", required=True,
                        help="checkpoint or run directory, HF directory, merged model, .gguf file, adapter "
                             "directory, or an alias (smollm2)")
    parser.add_argument("--tokenizer_path", default=None, help="tokenizer.json or a directory holding one")
    parser.add_argument("--adapter", default=None, metavar="NAME_OR_PATH",
                        help="a LoRA adapter over --model_path: PATH, NAME=PATH, or NAME in MODEL/adapters/ or "
                             "CHECKPOINTS_ROOT/adapters/ (as generate --adapter)")
    parser.add_argument("--any_adapter_base", action="store_true",
                        help="load the adapter even when its adapter_config.json names another base model")
    parser.add_argument("--checkpoints_root", default="checkpoints", help="where named adapters are looked up")
    parser.add_argument("--label", default=None,
                        help="the run's name in results and reports (default: from the model and adapter)")
    parser.add_argument("--output", default=None, help="results JSON file (default: results/LABEL.json)")
    parser.add_argument("--no_resume", action="store_true",
                        help="answer every question again, overwriting --output (default: skip answered ids)")
    generation = parser.add_argument_group("generation")
    generation.add_argument("--max_new_tokens", type=int, default=256)
    generation.add_argument("--temperature", type=float, default=0.0, help="0 (default) means greedy decoding")
    generation.add_argument("--top_k", type=int, default=50, help="with --temperature > 0")
    generation.add_argument("--top_p", type=float, default=0.95, help="with --temperature > 0")
    generation.add_argument("--seed", type=int, default=0, help="torch's seed before every question")
    generation.add_argument("--chat", choices=("auto", "on", "off"), default="auto",
                            help="wrap questions in the tokenizer's chat template (auto: when it has one)")
    generation.add_argument("--system", default=None, help="system message in chat mode")
    generation.add_argument("--device", default="auto", help="auto (cuda, then mps, then cpu), cpu, cuda, cuda:N, mps")
    generation.add_argument("--dtype", default=None, help="float32, bfloat16, float16 (default: the model's)")
    held_out = parser.add_argument_group("perplexity")
    held_out.add_argument("--perplexity_data", default=None,
                          help="held-out text for perplexity: .txt, or .jsonl/.json training items (val.jsonl)")
    held_out.add_argument("--perplexity_window", type=int, default=None,
                          help="tokens per window (default: the model's context, at most 1024)")
    held_out.add_argument("--perplexity_batch_size", type=int, default=4)
    held_out.add_argument("--perplexity_max_tokens", type=int, default=None,
                          help="score only the first N tokens of the held-out text")
    parser.add_argument("--no_progress", action="store_true", help="no progress bars")
    parser.add_argument("--verbose", action="store_true")


def check_model_path(model_path: str) -> None:
    """FileNotFoundError (one line) when ``model_path`` is neither an existing path nor a known alias."""
    from minillm.hf.aliases import all_aliases, is_alias

    if not Path(model_path).expanduser().exists() and not is_alias(model_path):
        raise FileNotFoundError(f"--model_path {model_path!r} does not exist; pass a checkpoint or run directory, "
                                f"an HF directory, a .gguf file, an adapter directory or an alias "
                                f"({', '.join(all_aliases())})")


def default_label(model_path: str, adapter_name: str | None) -> str:
    """``RUN-best`` for ``RUN/best`` (and ``final``, ``checkpoint-N``), else the last path part; ``+ADAPTER``."""
    path = Path(model_path)
    name = path.name or str(model_path)
    if (name in ("best", "final") or name.startswith("checkpoint-")) and path.parent.name:
        name = f"{path.parent.name}-{name}"
    return f"{name}+{adapter_name}" if adapter_name else name


def main(args: argparse.Namespace) -> int:
    from minillm.devices import resolve_device
    from minillm.hf.streaming import can_generate
    from scripts.generate import adapter_specs, with_adapters
    from training.evaluation.answering import GenerationOptions
    from training.evaluation.question_bank import load_bank
    from training.evaluation.results import RunIdentity
    from training.evaluation.runner import PerplexityRequest, evaluate_bank, previous_answers
    from training.model_extraction import load_model_and_tokenizer

    options = GenerationOptions(max_new_tokens=args.max_new_tokens, temperature=args.temperature, top_k=args.top_k,
                                top_p=args.top_p, seed=args.seed, chat=args.chat, system=args.system)
    for flag in ("perplexity_window", "perplexity_batch_size", "perplexity_max_tokens"):
        value = getattr(args, flag)
        if value is not None and value < (2 if flag == "perplexity_window" else 1):
            raise InputError(f"--{flag} {value} is out of range; it must be >= "
                             f"{2 if flag == 'perplexity_window' else 1}")
    bank = load_bank(args.questions)
    check_model_path(args.model_path)
    if args.perplexity_data is not None and not Path(args.perplexity_data).expanduser().is_file():
        raise FileNotFoundError(f"--perplexity_data {args.perplexity_data!r} does not exist; pass a .txt, .jsonl "
                                "or .json file of held-out text")
    adapter_args = argparse.Namespace(adapter=[args.adapter] if args.adapter else None, use=None,
                                      checkpoints_root=args.checkpoints_root, any_adapter_base=args.any_adapter_base,
                                      verbose=args.verbose)
    adapters = adapter_specs(adapter_args, args.model_path)  # a bad --adapter fails before the model loads
    label = args.label or default_label(args.model_path, adapters[0][0] if adapters else None)
    output = Path(args.output or Path("results") / f"{re.sub(r'[^A-Za-z0-9_.+-]', '_', label)}.json")
    run = RunIdentity(label=label, model=str(args.model_path), adapter=args.adapter)
    if not args.no_resume and output.exists():
        previous_answers(output, bank, run)  # another run's file fails before the model loads
    device = str(resolve_device(args.device))
    model, tokenizer = load_model_and_tokenizer(args.model_path, tokenizer_path=args.tokenizer_path, device=device,
                                                dtype=args.dtype)
    if tokenizer is None:
        raise InputError(f"{args.model_path} has no tokenizer.json; pass --tokenizer_path")
    if not can_generate(model):
        raise InputError(f"{args.model_path} holds a {type(model).__name__}, which does not generate text; "
                         "evaluate a decoder checkpoint or a causal LM")
    if adapters:
        model = with_adapters(model, args.model_path, adapters, adapter_args)
    request = None
    if args.perplexity_data is not None:
        request = PerplexityRequest(args.perplexity_data, window=args.perplexity_window,
                                    batch_size=args.perplexity_batch_size, max_tokens=args.perplexity_max_tokens)
    result = evaluate_bank(model, tokenizer, bank, output, run, options, resume=not args.no_resume,
                           perplexity_request=request, progress=not args.no_progress, extra_meta={"device": device})
    print(f"[evaluate] {label}: {len(result.items)} questions ({result.answered} answered, {result.kept} kept "
          f"from before; chat template: {'yes' if result.chat else 'no'}) -> {output}")
    print(summary_line(result.summary, result.perplexity))
    return 0


def summary_line(summary: dict, perplexity: dict | None) -> str:
    """The run's means in one line (``-`` for a score that does not apply)."""
    def shown(value: float | None, decimals: int = 3) -> str:
        return "-" if value is None else f"{value:.{decimals}f}"

    ppl = perplexity.get("perplexity") if perplexity else None
    return (f"accuracy {shown(summary['accuracy'])}, ROUGE-L {shown(summary['rouge_l'])}, keyword coverage "
            f"{shown(summary['keyword_coverage'])}, perplexity {shown(ppl, 2)}, mean {shown(summary['mean_seconds'], 2)}"
            f" s, total {shown(summary['total_seconds'], 2)} s")


if __name__ == "__main__":  # python scripts/evaluate.py ..., from the project root
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from main import run_as_script

    run_as_script("evaluate")
