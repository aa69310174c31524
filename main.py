"""minillm command line: one parser, one table of modes -> scripts/<mode>.py main(args).

    python main.py MODE [options]        or        python main.py --mode MODE [options]

Only this file and scripts/ print or exit. Bad input (an ``InputError``, a missing path, an unknown flag or a bad
flag value) exits with code 2 and one line on stderr, no traceback; a training failure (``training.errors.TrainingError``, e.g. a NaN loss) exits with
code 1, also in one line; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import logging
import sys
from typing import Any, NoReturn

from minillm.errors import InputError, MissingDependencyError
from tokenizers_bpe.errors import TokenizerInputError

# What the CLI reports as bad input. A plain ValueError (from torch, numpy or a bug of ours) is not among them.
USER_ERRORS = (InputError, TokenizerInputError, MissingDependencyError, FileNotFoundError, NotADirectoryError,
               PermissionError)

# mode -> (module, one-line summary). Modules are imported only when their mode runs.
MODES: dict[str, tuple[str, str]] = {
    "train": ("scripts.train", "train from scratch (default: the shipped sample) or fine-tune (--model --qlora)"),
    "continue": ("scripts.continue_training", "continue training a checkpoint on new data"),
    "extract": ("scripts.extract", "write an HF directory or GGUF + Ollama Modelfile (adapters merged)"),
    "generate": ("scripts.generate", "generate text from a checkpoint, an HF directory or a .gguf file"),
    "quickstart": ("scripts.quickstart", "train the default model on the sample corpus, then generate from it"),
    "rag": ("scripts.rag", "index documents (build) and answer questions with numbered sources (ask)"),
    "extract_text": ("scripts.extract_text", "PDF and EPUB papers -> clean text or Markdown, resumable"),
    "download_papers": ("scripts.download_papers", "fetch papers and metadata from arXiv or PubMed, resumable"),
    "prepare_dataset": ("scripts.prepare_dataset", "text -> train/val datasets: chunks, instructions, chat, personas"),
    "evaluate": ("scripts.evaluate", "run a question bank through a model and score the answers"),
    "compare": ("scripts.compare", "compare evaluation results: Markdown table and PNG chart"),
    "pipeline": ("scripts.pipeline", "the paper workflow end to end: baseline, data, QLoRA, full, report"),
    "serve": ("scripts.serve", "serve a model over HTTP: /predict and an OpenAI-compatible API"),
}

EXAMPLES = """examples:
  python main.py train                                   # train the default decoder on the shipped sample
  python main.py --mode train --data_path ./data/train.txt --early_stopping_patience 5
  python main.py generate --prompt "To be, or not"       # newest checkpoint under checkpoints/
  python main.py generate --model_path SmolLM2 --prompt "What is RAG?" --chat
  python main.py continue --model_path checkpoints/run/best --data_path more.txt --epochs 2
  python main.py extract --model_path checkpoints/run/best --output_path exported/ --dtype bfloat16
  python main.py train --model smollm2-135m --qlora --train_data train.json --eval_data eval.json
  python main.py generate --model_path smollm2 --adapter checkpoints/RUN/best --prompt "Is it safe?" --chat
  python main.py extract --model_path checkpoints/RUN/best --output_path exported/model.gguf --dtype q8_0
  python main.py rag ask --index_path idx/ --query "What is RAG?"   # after: rag build --docs notes/ --index_path idx/
  python main.py MODE --help                             # every flag of one mode, with examples
"""


def _split_mode(argv: list[str]) -> tuple[str | None, list[str]]:
    """Find the mode in ``argv`` (``MODE ...`` or ``--mode MODE ...`` or ``--mode=MODE``); return it and the rest."""
    if argv and not argv[0].startswith("-"):
        return argv[0], argv[1:]
    for i, arg in enumerate(argv):
        if arg == "--mode":
            if i + 1 >= len(argv):
                return "", []
            return argv[i + 1], argv[:i] + argv[i + 2 :]
        if arg.startswith("--mode="):
            return arg.split("=", 1)[1], argv[:i] + argv[i + 1 :]
    return None, argv


class UsageError(Exception):
    """A command line argparse refused (unknown flag, bad choice or type, missing flag); the message is one line."""


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line naming the problem and what is valid, not the whole usage.

    ``error()`` raises :class:`UsageError` (``main`` prints it and returns 2) instead of printing the usage block
    and exiting; ``--help`` still prints everything.
    """

    def __init__(self, *args: Any, mode: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.mode = mode

    def error(self, message: str) -> NoReturn:
        hint = f"python main.py {self.mode} --help" if self.mode else "python main.py --help"
        raise UsageError(f"{self._explain(message)}; see: {hint}")

    def _explain(self, message: str) -> str:
        """argparse's message, with the closest valid flag named after an unknown one."""
        if message.startswith("unrecognized arguments: "):
            unknown = message.removeprefix("unrecognized arguments: ").split()
            flags = [s for action in self._actions for s in action.option_strings if s.startswith("--")]
            for arg in unknown:
                if arg.startswith("-"):
                    close = difflib.get_close_matches(arg.split("=", 1)[0], flags, n=1)
                    if close:
                        return f"{message} (did you mean {close[0]}?)"
            if not any(arg.startswith("-") for arg in unknown):
                return f"{message} (a value without a flag; flags take the form --name VALUE)"
            return f"{message} (valid flags: {', '.join(flags)})"
        return " ".join(message.split())  # never more than one line


def top_level_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="minillm",
        description="minillm: build, train, fine-tune and run transformers.\n\nmodes:\n"
        + "\n".join(f"  {name:<11} {summary}" for name, (_, summary) in MODES.items()),
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--mode", choices=list(MODES), help="the mode to run (or give it as the first word)")
    return parser


def accept_both_spellings(parser: argparse.ArgumentParser, argv: list[str]) -> list[str]:
    """``argv`` with every ``--foo-bar`` / ``--foo_bar`` spelled the way ``parser`` knows it (both are accepted).

    Only long flags the parser does not know as written are rewritten, and only when the other spelling is one it
    knows; values (``--out-dir my-dir``), ``--flag=value`` values and everything after ``--`` stay as they are.
    """
    known = {s for action in parser._actions for s in action.option_strings}
    fixed: list[str] = []
    for i, arg in enumerate(argv):
        if arg == "--":
            return fixed + argv[i:]
        if arg.startswith("--") and len(arg) > 2:
            name, eq, value = arg.partition("=")
            if name not in known:
                for other in (name[:2] + name[2:].replace("-", "_"), name[:2] + name[2:].replace("_", "-")):
                    if other in known:
                        arg = other + eq + value
                        break
        fixed.append(arg)
    return fixed


def run_as_script(mode: str) -> None:
    """``python scripts/MODE.py ...`` from the project root: the same as ``python main.py MODE ...``."""
    sys.exit(main([mode, *sys.argv[1:]]))


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    mode, rest = _split_mode(argv)
    if mode is None:
        if argv and not any(a in ("-h", "--help") for a in argv):  # flags but no mode: one line, not the help
            print(f"error: no mode given before {argv[0]!r}; choose one of: {', '.join(MODES)} "
                  "(python main.py MODE [options]); see: python main.py --help", file=sys.stderr)
            return 2
        top_level_parser().print_help()
        return 0 if argv else 2
    if mode not in MODES:
        print(f"error: unknown mode {mode!r}; choose one of: {', '.join(MODES)}", file=sys.stderr)
        return 2
    module = importlib.import_module(MODES[mode][0])
    parser = OneLineParser(
        mode=mode,
        prog=f"minillm {mode}",
        description=MODES[mode][1],
        epilog=getattr(module, "EXAMPLES", None),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    module.add_arguments(parser)
    try:
        args = parser.parse_args(accept_both_spellings(parser, rest))
    except UsageError as exc:  # one line, not the 20-line usage block
        print(f"error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO if getattr(args, "verbose", False) else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(module.main(args) or 0)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    except USER_ERRORS as exc:  # validated input: one line; any other exception is a bug and keeps its traceback
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # training failures (a NaN loss ...): one line, exit 1; anything else is a bug
        from training.errors import TrainingError

        if not isinstance(exc, TrainingError):
            raise
        print(f"training failed: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
