"""pipeline: the paper workflow end to end, offline, resumable.

The seed's eight steps, each one a mode of ``main.py`` run with the flags printed before it starts:

1. ``baseline``   evaluate the question bank with the pretrained model          -> WORK/results/baseline.json
2. ``papers``     papers to text: ``--papers DIR`` (PDF/EPUB, ``extract_text``), ``--download QUERY``
                  (``download_papers`` then ``extract_text``), or by default the shipped PubMedQA abstracts
                                                                                 -> WORK/text/
3. ``dataset``    instruction pairs from the text (``prepare_dataset instructions``) -> WORK/data/train.json, val.json
4. ``qlora``      QLoRA fine-tune (``train --model M --qlora``)                   -> WORK/qlora/ (adapter in best/)
5. ``qlora_test`` evaluate the bank with the adapter                             -> WORK/results/qlora.json
6. ``full``       full fine-tune (``train --model M``)                            -> WORK/full/
7. ``full_test``  evaluate the bank with the fully fine-tuned model              -> WORK/results/full.json
8. ``report``     perplexity of each on the held-out papers (WORK/data/val.json), then ``compare`` the three
                                                                                 -> WORK/report/comparison.md, .png

Progress is kept in ``WORK/pipeline.json`` after every step: a re-run skips the steps already done, and a training
step that was interrupted continues from its last checkpoint (``train --resume``). ``--fast`` sets small budgets
(fewer documents, a few minutes per training run, short answers) so the whole run fits in about 20 minutes on two
CPU cores; without it the training steps run their full presets.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from minillm.atomic import atomic_write_text
from minillm.errors import InputError

EXAMPLES = """examples:
  python main.py pipeline --fast                          # SmolLM2 on the shipped PubMedQA abstracts, ~20 min
  python main.py pipeline --papers ../papers/ --work_dir runs/papers --fast
  python main.py pipeline --papers ../papers/ --steps baseline,papers,dataset,qlora,qlora_test,report
  python main.py pipeline --download "retrieval augmented generation" --source arxiv --max_papers 20
  python main.py pipeline --fast --work_dir runs/p1        # again: skips what is done, resumes a cut training run
"""

STEPS = ("baseline", "papers", "dataset", "qlora", "qlora_test", "full", "full_test", "report")
SAMPLE = Path(__file__).resolve().parent.parent / "rag" / "sample_data" / "pubmedqa_dev.jsonl"
# (--fast, default) budgets
BUDGETS = {
    "documents": (200, None), "max_new_tokens": (64, 200), "train_minutes": (5.0, None), "max_seq_len": (256, 512),
    "max_samples": (200, None),
}


@dataclass
class Plan:
    """What the steps read: the parsed flags and the work folder's layout."""

    args: argparse.Namespace
    work: Path

    def budget(self, name: str) -> float | int | None:
        fast, full = BUDGETS[name]
        return fast if self.args.fast else full

    @property
    def text_dir(self) -> Path:
        """Where the papers' text is: PubMed downloads are already text (title + abstract per PMID)."""
        if self.args.download and self.args.source == "pubmed" and not self.args.papers:
            return self.work / "downloads"
        return self.work / "text"

    @property
    def data_dir(self) -> Path:
        return self.work / "data"

    def results(self, label: str) -> Path:
        return self.work / "results" / f"{label}.json"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--work_dir", default="checkpoints/pipeline", help="where every step writes [%(default)s]")
    parser.add_argument("--model", default="smollm2", help="the pretrained model (alias, HF directory, .gguf) "
                                                           "[%(default)s]")
    parser.add_argument("--papers", default=None, help="a folder of PDF/EPUB papers (default: the shipped PubMedQA "
                                                       "abstracts, so the run needs no files and no network)")
    parser.add_argument("--download", default=None, metavar="QUERY", help="download papers for this query first")
    parser.add_argument("--source", choices=("arxiv", "pubmed"), default="arxiv", help="where --download looks")
    parser.add_argument("--max_papers", type=int, default=20, help="most papers --download fetches [%(default)s]")
    parser.add_argument("--questions", default=None, help="the question bank (default: the shipped autoimmune bank)")
    parser.add_argument("--steps", default=",".join(STEPS), help=f"comma-separated steps to run [{','.join(STEPS)}]")
    parser.add_argument("--fast", action="store_true", help="small budgets: the whole run in about 20 minutes on CPU")
    parser.add_argument("--max_steps", type=int, default=None,
                        help="optimizer steps per training run (instead of --fast's 3 minutes or the full presets)")
    parser.add_argument("--redo", action="store_true", help="run the chosen steps again even when done")
    parser.add_argument("--verbose", action="store_true")


def _steps(text: str) -> list[str]:
    chosen = [s.strip() for s in text.split(",") if s.strip()]
    unknown = [s for s in chosen if s not in STEPS]
    if unknown or not chosen:
        raise InputError(f"--steps {text!r} names unknown steps {unknown}; valid: {','.join(STEPS)}")
    return [s for s in STEPS if s in chosen]  # always in workflow order


def _flag(name: str, value: object) -> list[str]:
    return [] if value is None else [f"--{name}", str(value)]


def _evaluate(plan: Plan, label: str, perplexity: bool = False) -> list[list[str]]:
    """Answer the bank as ``label`` (``perplexity``: also on the held-out papers; the answers already given are kept)."""
    model_path, adapter = EVALUATED[label](plan)
    held_out = plan.data_dir / "val.json" if perplexity else None
    return [["evaluate", "--model_path", model_path, "--label", label, "--output", str(plan.results(label)),
             "--max_new_tokens", str(plan.budget("max_new_tokens")), *_flag("questions", plan.args.questions),
             *_flag("adapter", adapter), *_flag("perplexity_data", held_out)]]


def _papers(plan: Plan) -> list[list[str]]:
    args = plan.args
    if args.papers or args.download:
        source = Path(args.papers) if args.papers else plan.work / "downloads"
        commands = []
        if args.download:
            commands.append(["download_papers", "--source", args.source, "--query", args.download, "--max_results",
                             str(args.max_papers), "--output_dir", str(source)])
        if plan.text_dir != source:
            commands.append(["extract_text", "--input_dir", str(source), "--output_dir", str(plan.text_dir)])
        return commands
    _write_sample_documents(plan.text_dir, plan.budget("documents"))
    return []


def _write_sample_documents(folder: Path, limit: int | None) -> None:
    """The shipped PubMedQA abstracts as one Markdown file each (title heading, then the abstract)."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = [line for line in SAMPLE.read_text(encoding="utf-8").split("\n") if line.strip()]  # not splitlines: U+2029
    for line in lines[:limit]:
        record = json.loads(line)
        atomic_write_text(folder / f"pubmed-{record['pmid']}.md", f"# {record['title']}\n\n{record['text']}\n")


def _dataset(plan: Plan) -> list[list[str]]:
    return [["prepare_dataset", "instructions", "--input_dir", str(plan.text_dir), "--output_dir",
             str(plan.data_dir), *_flag("max_samples", plan.budget("max_samples"))]]


def _train(plan: Plan, name: str, qlora: bool) -> list[list[str]]:
    run = plan.work / name
    if (run / "run_config.json").is_file() and not (run / "final").is_dir():  # cut short: continue it
        return [["train", "--resume", str(run)]]
    return [["train", "--model", plan.args.model, *(["--qlora"] if qlora else []), "--train_data",
             str(plan.data_dir / "train.json"), "--eval_data", str(plan.data_dir / "val.json"), "--output_dir",
             str(run), *(_flag("max_steps", plan.args.max_steps) if plan.args.max_steps else
                         _flag("max_minutes", plan.budget("train_minutes"))),
             *_flag("max_seq_len", plan.budget("max_seq_len")), "--overwrite"]]


def _report(plan: Plan) -> list[list[str]]:
    """Perplexity of every evaluated model on the held-out papers (the bank comes first, before any data), then
    ``compare``."""
    labels = [label for label in EVALUATED if plan.results(label).is_file()]
    if len(labels) < 2:
        raise InputError(f"the report compares two or more evaluations; {plan.work / 'results'} holds {labels}: "
                         "run the baseline and a test step first")
    held_out = plan.data_dir / "val.json"
    scored = [cmd for label in labels for cmd in _evaluate(plan, label, perplexity=True)] if held_out.is_file() else []
    return [*scored, ["compare", *(str(plan.results(label)) for label in labels), "--output_dir",
                      str(plan.work / "report")]]


# label -> (model path, adapter) of what it evaluates
EVALUATED: dict[str, Callable[[Plan], tuple[str, Path | None]]] = {
    "baseline": lambda plan: (plan.args.model, None),
    "qlora": lambda plan: (plan.args.model, plan.work / "qlora" / "best"),
    "full": lambda plan: (str(plan.work / "full" / "best"), None),
}


COMMANDS: dict[str, Callable[[Plan], list[list[str]]]] = {
    "baseline": lambda plan: _evaluate(plan, "baseline"),
    "papers": _papers,
    "dataset": _dataset,
    "qlora": lambda plan: _train(plan, "qlora", qlora=True),
    "qlora_test": lambda plan: _evaluate(plan, "qlora"),
    "full": lambda plan: _train(plan, "full", qlora=False),
    "full_test": lambda plan: _evaluate(plan, "full"),
    "report": _report,
}


def _load_progress(path: Path) -> dict:
    if not path.is_file():
        return {}
    try:
        progress = json.loads(path.read_text())
    except json.JSONDecodeError:
        raise InputError(f"{path} is not valid JSON; delete it to start the pipeline over") from None
    return progress if isinstance(progress, dict) else {}


def main(args: argparse.Namespace) -> int:
    from main import main as run_mode

    steps = _steps(args.steps)
    if args.max_steps is not None and args.max_steps < 1:
        raise InputError(f"--max_steps {args.max_steps} is out of range; it must be an integer >= 1")
    if args.papers and not Path(args.papers).is_dir():
        raise NotADirectoryError(f"--papers {args.papers!r} is not a folder of PDF/EPUB files")
    work = Path(args.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    plan = Plan(args, work)
    progress_file = work / "pipeline.json"
    progress = _load_progress(progress_file)
    started = time.perf_counter()
    for number, step in enumerate(steps, start=1):
        if progress.get(step, {}).get("done") and not args.redo:
            print(f"[{number}/{len(steps)}] {step}: done before ({progress[step]['seconds']:.0f} s), skipped")
            continue
        print(f"[{number}/{len(steps)}] {step}", flush=True)
        begun = time.perf_counter()
        commands = COMMANDS[step](plan)
        for argv in commands:
            print("  python main.py " + " ".join(argv), flush=True)
            code = run_mode(argv)
            if code != 0:
                print(f"error: step {step!r} failed (exit {code}); fix it and run the pipeline again: the steps "
                      "done are kept", file=sys.stderr)
                return code
        progress[step] = {"done": True, "seconds": round(time.perf_counter() - begun, 1), "commands": commands}
        atomic_write_text(progress_file, json.dumps(progress, indent=2) + "\n")
    total = time.perf_counter() - started
    print(f"pipeline finished in {total / 60:.1f} min; progress in {progress_file}")
    report = work / "report" / "comparison.md"
    if report.is_file():
        print(f"report: {report} (chart: {report.with_suffix('.png')})")
    return 0


if __name__ == "__main__":  # python scripts/pipeline.py ..., from the project root
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from main import run_as_script

    run_as_script("pipeline")
