"""Decoder speed, ours against transformers in one process (CPU).

(a) training step tokens/s (forward + backward + AdamW, fp32) for d_model 384, 6 layers, 6 heads, vocab 8192,
    sequence 256, batch 8, against LlamaForCausalLM of the identical config;
(b) SmolLM2-135M-Instruct greedy generation tokens/s, batch 1, 128 new tokens, against transformers' generate,
    both in fp32 (the headline: the same weights and precision on both sides) and both in bf16.

Runs alternate (ours, reference, ours, ...) so background load hits both alike; the figure is the median.
Writes the table to bench/results/bench_decoder.json (``--out`` to change, ``--out ''`` for none).
Usage: python bench/bench_decoder.py [--repeats 3] [--train_steps 4] [--new_tokens 128] [--dtypes float32 bfloat16]
       (``--dtypes`` with no value: the training row only)
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch


def machine() -> str:
    import transformers

    return (f"torch {torch.__version__}, transformers {transformers.__version__}, python {platform.python_version()}, "
            f"{platform.machine()}, {torch.get_num_threads()} threads")


def train_models():
    from transformers import LlamaConfig, LlamaForCausalLM

    from minillm import DecoderOnlyModel, ModelConfig

    torch.manual_seed(0)
    config = ModelConfig(vocab_size=8192, d_model=384, num_heads=6, num_layers=6, max_seq_len=256,
                         tie_word_embeddings=False)
    ours = DecoderOnlyModel(config)
    hf_config = LlamaConfig(vocab_size=8192, hidden_size=384, intermediate_size=ours.config.d_ff,
                            num_hidden_layers=6, num_attention_heads=6, num_key_value_heads=6,
                            max_position_embeddings=256, tie_word_embeddings=False)
    hf_config._attn_implementation = "sdpa"
    ref = LlamaForCausalLM(hf_config)
    ref.load_state_dict(ours.state_dict(), strict=False)
    return ours.train(), ref.train()


def time_train(model, batch, steps: int) -> float:
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    model(**batch).loss.backward()  # warm-up
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    start = time.perf_counter()
    for _ in range(steps):
        model(**batch).loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    elapsed = time.perf_counter() - start
    return steps * batch["input_ids"].numel() / elapsed


def time_generation(dtype: str, repeats: int, new_tokens: int) -> tuple[float, float, bool]:
    """Median greedy tokens/s of ours and of transformers' generate on SmolLM2 in ``dtype``; same tokens?"""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from minillm import DecoderOnlyModel
    from minillm.assets import smollm2_gguf_path
    from minillm.checkpoint import resolve_model_dir

    gguf = smollm2_gguf_path()
    ours = DecoderOnlyModel.from_pretrained(gguf, dtype=dtype)
    directory = resolve_model_dir(gguf)
    ref = AutoModelForCausalLM.from_pretrained(directory, dtype=getattr(torch, dtype)).eval()
    tokenizer = AutoTokenizer.from_pretrained(directory)
    prompt = torch.tensor([tokenizer.encode("<|im_start|>user\nTell me a story about a robot.<|im_end|>\n"
                                            "<|im_start|>assistant\n")])
    n = new_tokens
    ours_gen, ref_gen = [], []
    for i in range(repeats + 1):
        start = time.perf_counter()
        out = ours.generate(prompt, max_new_tokens=n, eos_token_id=[])
        t_ours = (out.shape[1] - prompt.shape[1]) / (time.perf_counter() - start)
        start = time.perf_counter()
        out_ref = ref.generate(prompt, max_new_tokens=n, min_new_tokens=n, do_sample=False)
        t_ref = (out_ref.shape[1] - prompt.shape[1]) / (time.perf_counter() - start)
        if i:  # the first round warms both up
            ours_gen.append(t_ours)
            ref_gen.append(t_ref)
    return statistics.median(ours_gen), statistics.median(ref_gen), torch.equal(out, out_ref)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--train_steps", type=int, default=4)
    parser.add_argument("--new_tokens", type=int, default=128)
    parser.add_argument("--dtypes", nargs="*", default=["float32", "bfloat16"], choices=["float32", "bfloat16"],
                        help="generation rows to run (none: the training row only)")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "bench_decoder.json"))
    args = parser.parse_args()
    rows, notes = [], []

    ours, ref = train_models()
    ids = torch.randint(0, 8192, (8, 256), generator=torch.Generator().manual_seed(0))
    batch = {"input_ids": ids, "labels": ids}
    ours_tps, ref_tps = [], []
    for i in range(args.repeats + 1):
        t_ours, t_ref = time_train(ours, batch, args.train_steps), time_train(ref, batch, args.train_steps)
        if i:  # the first round warms both up (the process's first large allocations page-fault in)
            ours_tps.append(t_ours)
            ref_tps.append(t_ref)
    rows.append(("train step tokens/s (d384 L6, B8 T256)", statistics.median(ours_tps), statistics.median(ref_tps)))
    del ours, ref

    for dtype in args.dtypes:
        ours_tps, ref_tps, same = time_generation(dtype, args.repeats, args.new_tokens)
        rows.append((f"SmolLM2 greedy tokens/s (B1, {args.new_tokens} new, {dtype})", ours_tps, ref_tps))
        notes.append(f"{dtype} greedy outputs identical: {same}")

    print(f"\n{machine()}")
    print(f"{'benchmark':<50} {'minillm':>10} {'transformers':>13} {'ratio':>7}")
    for name, a, b in rows:
        print(f"{name:<50} {a:>10.1f} {b:>13.1f} {a / b:>6.2f}x")
    for note in notes:
        print(note)
    if args.out:
        results = {"machine": machine(), "rows": [{"benchmark": n, "minillm": round(a, 2), "transformers": round(b, 2),
                                                   "ratio": round(a / b, 3)} for n, a, b in rows], "notes": notes}
        from minillm.atomic import atomic_write_text

        atomic_write_text(args.out, json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
