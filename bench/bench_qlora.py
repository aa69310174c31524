"""QLoRA training speed and memory: our Trainer against transformers' ``Trainer`` on the same peft model.

CPU part (always): SmolLM2-135M-Instruct through the product path, ``load_model_and_tokenizer("smollm2-135m",
use_qlora=True, lora_r=16, lora_alpha=32, lora_dropout=0.05, device="cpu")`` (NF4 projections, peft LoRA on the
seven projections, gradient checkpointing on as ``prepare_model_for_kbit_training`` leaves it), batch 4,
sequence 256. Each side runs in its own subprocess (peak RSS is process-wide), re-creates the model from the same
seed (equal LoRA init), and trains on the same rows: 256-token windows of PubMedQA abstracts (``../shared``;
random ids with a fixed seed when absent), labels = inputs, no padding. Both at their defaults for the same
recipe: AdamW lr 2e-4, weight decay 0.01, clipping at 1.0, constant schedule, full precision (the 4-bit layers
compute in the product path's compute dtype), progress bar on, logging every 10 steps; transformers' Trainer keeps
its own default optimizer implementation (fused AdamW), ours torch's AdamW. Sides alternate over ``--repeats``.

Per-step cost is the time between the starts of consecutive forward passes (a forward pre-hook on the peft
model): one whole optimizer step with data loading and the trainer's bookkeeping, not start-up or the final save.
``--warmup`` steps are dropped, then ``--steps`` are timed on each side; medians over all repeats. Wall time and
this process's CPU time are both reported (the machine is shared: CPU time is the steadier figure). Peak RSS:
the side's process's high-water mark (``VmHWM``): over the whole run (our Trainer writes its final checkpoint,
``best/`` and ``final/`` at the end; transformers' is told to save nothing), up to the end of the timed steps, and
after the model was loaded. The results file keeps a short summary of every earlier run (``previous_runs``): on
a shared machine one run's ratio is not the whole story.

GPU part (when ``torch.cuda.is_available()``; else a "no GPU: skipped" line): QLoRA on a Mistral-7B-shaped model
(``MistralConfig()`` defaults) with random weights and no download. The model is built on the meta device
(``accelerate.init_empty_weights``), then each of the seven projections of every layer is replaced by a
``bnb.nn.Linear4bit`` whose weight is drawn on the GPU (bf16, normal(0, 0.02)) and quantized to NF4 with double
quantization there, one matrix at a time (never 14 GB of bf16 at once); embeddings, norms and the LM head are
drawn in bf16 on the GPU; ``is_loaded_in_4bit`` is set as transformers' bitsandbytes loader does. Ours wraps it
with the bridge's ``minillm.hf.loading.add_lora`` (peft's ``prepare_model_for_kbit_training`` with gradient
checkpointing, then ``get_peft_model``), theirs with those two peft calls directly; sequence 2048, batch 1.
Reported: peak ``torch.cuda.max_memory_allocated`` (target <= 6 GB) and tokens/s, each side in its subprocess.
``--tiny_gpu_on_cpu`` runs that code path on the CPU with a 2-layer Mistral, to check it without a GPU.

Usage: nice -n 10 .venv/bin/python bench/bench_qlora.py --threads 1 [--steps 6] [--warmup 2] [--repeats 2]
[--profile] [--bare]. About 7 min on 2 shared x86 cores with those (four side runs of ~10 s load + 9 steps of
~10 s); ``--repeats 4`` about 14 min; ``--profile`` (each side once more under cProfile, printing where the time
goes) and ``--bare`` (a plain PyTorch loop on the same model) add ~2 min per side run. On a shared machine
``--threads 1`` keeps the steps steady (two threads wait on each other whenever one is descheduled).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "pubmedqa" / "pqal_dev500.json"
OUT = ROOT / "bench" / "results" / "bench_qlora.json"
SEVEN = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
LR, SEED = 2e-4, 0


class Rows(Dataset):
    """Fixed-length causal-LM rows (no padding): ``input_ids``, ``attention_mask``, ``labels`` = inputs."""

    def __init__(self, ids: torch.Tensor) -> None:
        self.ids = ids

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"input_ids": self.ids[i], "attention_mask": torch.ones_like(self.ids[i]), "labels": self.ids[i]}


def pubmedqa_rows(tokenizer, seq: int, n: int) -> tuple[torch.Tensor, str]:
    """``n`` windows of ``seq`` tokens of PubMedQA abstracts (random ids when the shared data is absent)."""
    if DATA.is_file() and tokenizer is not None:
        data = json.loads(DATA.read_text())
        ids: list[int] = []
        for key in sorted(data):
            ids += tokenizer.encode(" ".join(data[key]["CONTEXTS"]), add_special_tokens=False) + [tokenizer.eos_token_id]
            if len(ids) >= seq * n:
                return torch.tensor(ids[: seq * n]).view(n, seq), "PubMedQA abstracts (sorted PMIDs), 256-token windows"
    vocab = tokenizer.vocab_size if tokenizer is not None else 32000
    return torch.randint(0, vocab, (n, seq), generator=torch.Generator().manual_seed(SEED)), "random ids (seed 0)"


def peak_rss_bytes() -> int:
    """This process's peak resident set size: ``VmHWM`` (Linux; ``ru_maxrss`` there survives exec and so may hold
    the parent's size), else ``ru_maxrss``."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    scale = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


class StepClock:
    """Forward pre-hook recording when each forward pass starts (wall and this process's CPU time)."""

    def __init__(self, model: torch.nn.Module, cuda: bool) -> None:
        self.starts: list[tuple[float, float]] = []
        self.rss: list[int] = []  # peak RSS so far at each forward start
        self.cuda = cuda
        model.register_forward_pre_hook(lambda *_: self.mark())

    def mark(self) -> None:
        if self.cuda:
            torch.cuda.synchronize()
        self.starts.append((time.perf_counter(), time.process_time()))
        self.rss.append(peak_rss_bytes())

    def durations(self, warmup: int, steps: int) -> list[tuple[float, float]]:
        pairs = [(b[0] - a[0], b[1] - a[1]) for a, b in zip(self.starts, self.starts[1:])]
        return pairs[warmup : warmup + steps]


# --------------------------------------------------------------------------- models
def smollm2_qlora() -> tuple[torch.nn.Module, object]:
    from training import load_model_and_tokenizer

    torch.manual_seed(SEED)  # the LoRA A matrices: equal on both sides
    return load_model_and_tokenizer("smollm2-135m", use_qlora=True, lora_r=16, lora_alpha=32, lora_dropout=0.05,
                                    device="cpu")


def mistral_config(tiny: bool):
    from transformers import MistralConfig

    if tiny:
        config = MistralConfig(hidden_size=256, intermediate_size=768, num_hidden_layers=2, num_attention_heads=8,
                               num_key_value_heads=2, vocab_size=2048, max_position_embeddings=4096)
    else:
        config = MistralConfig()  # Mistral-7B-v0.1's shape: 32 layers, d 4096, ff 14336, GQA 32/8, vocab 32000
    config._attn_implementation = "sdpa"
    config.use_cache = False
    return config


def random_4bit_mistral(device: torch.device, tiny: bool) -> torch.nn.Module:
    """A Mistral-shaped causal LM with random weights, its seven projections NF4 (see the module docstring)."""
    import bitsandbytes as bnb
    from accelerate import init_empty_weights
    from accelerate.utils import set_module_tensor_to_device
    from transformers import MistralForCausalLM

    config = mistral_config(tiny)
    compute = torch.bfloat16  # what minillm.hf.quantization.compute_dtype picks on a bf16-capable GPU
    with init_empty_weights():
        model = MistralForCausalLM(config)  # every parameter on the meta device, nothing allocated
    gen = torch.Generator(device=device).manual_seed(SEED)
    std = config.initializer_range
    for _, parent in list(model.named_modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, torch.nn.Linear) and name in SEVEN:
                layer = bnb.nn.Linear4bit(child.in_features, child.out_features, bias=False, compute_dtype=compute,
                                          compress_statistics=True, quant_type="nf4", device="meta")
                weight = torch.empty(child.out_features, child.in_features, dtype=torch.bfloat16, device=device)
                weight.normal_(0.0, std, generator=gen)
                layer.weight = bnb.nn.Params4bit(weight, requires_grad=False, compress_statistics=True,
                                                 quant_type="nf4").to(device)  # quantized here, on `device`
                setattr(parent, name, layer)
                del weight
    for name, param in list(model.named_parameters()):
        if param.device.type == "meta":
            value = torch.empty(param.shape, dtype=torch.bfloat16, device=device)
            if param.dim() == 1:
                value.fill_(1.0)  # RMSNorm weights
            else:
                value.normal_(0.0, std, generator=gen)  # embeddings, LM head
            set_module_tensor_to_device(model, name, device, value=value)
    for name, buffer in list(model.named_buffers()):
        set_module_tensor_to_device(model, name, device, value=buffer.to(device))
    model.is_loaded_in_4bit = True  # what transformers' bitsandbytes loader sets; peft reads it
    return model


def wrap_ours(model: torch.nn.Module) -> torch.nn.Module:
    from minillm.hf.loading import LoraOptions, add_lora

    torch.manual_seed(SEED)
    return add_lora(model, LoraOptions(use_qlora=True, lora_r=16, lora_alpha=32, lora_dropout=0.05), quantized=True)


def wrap_theirs(model: torch.nn.Module) -> torch.nn.Module:
    import peft

    model = peft.prepare_model_for_kbit_training(model, use_gradient_checkpointing=True)
    torch.manual_seed(SEED)
    config = peft.LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05, target_modules=list(SEVEN), bias="none",
                             task_type="CAUSAL_LM")
    return peft.get_peft_model(model, config)


# --------------------------------------------------------------------------- one side (in a subprocess)
def train_ours(model, rows: Rows, batch: int, total_steps: int, device: str) -> None:
    from training import Trainer

    loader = DataLoader(rows, batch_size=batch, shuffle=True, generator=torch.Generator().manual_seed(SEED))
    with tempfile.TemporaryDirectory() as tmp:
        Trainer(model=model, train_dataloader=loader, learning_rate=LR, checkpoint_dir=tmp, device=device,
                max_steps=total_steps, early_stopping_patience=None, progress_bar=True, tensorboard=False,
                plot=False, seed=SEED, save_total_limit=1).train(epochs=1)


def train_theirs(model, rows: Rows, batch: int, total_steps: int, device: str) -> None:
    from transformers import Trainer, TrainingArguments

    with tempfile.TemporaryDirectory() as tmp:
        args = TrainingArguments(output_dir=tmp, per_device_train_batch_size=batch, max_steps=total_steps,
                                 learning_rate=LR, weight_decay=0.01, max_grad_norm=1.0, lr_scheduler_type="constant",
                                 use_cpu=device == "cpu", save_strategy="no", eval_strategy="no", logging_steps=10,
                                 report_to="none", disable_tqdm=False, dataloader_pin_memory=False, seed=SEED,
                                 remove_unused_columns=False, label_names=["labels"])
        Trainer(model=model, args=args, train_dataset=rows).train()


def train_bare(model, rows: Rows, batch: int, total_steps: int, device: str) -> None:
    """Reference floor: forward, backward, clip, AdamW step, zero_grad, loss.item(); no trainer at all."""
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=LR, weight_decay=0.01)
    loader = DataLoader(rows, batch_size=batch, shuffle=True, generator=torch.Generator().manual_seed(SEED))
    model.train()
    done = 0
    while done < total_steps:
        for b in loader:
            loss = model(**{k: v.to(device) for k, v in b.items()}).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            loss.item()
            done += 1
            if done == total_steps:
                break


TRAINERS = {"ours": train_ours, "transformers": train_theirs, "bare": train_bare}


def run_side(args: argparse.Namespace) -> dict:
    """Build the model for ``args.child``, train warmup + steps + 1 updates, return timings and memory."""
    part_gpu = args.part == "gpu"
    device = torch.device("cuda" if part_gpu and not args.tiny_gpu_on_cpu else "cpu")
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    if part_gpu:
        base = random_4bit_mistral(device, args.tiny_gpu_on_cpu)
        model = wrap_theirs(base) if args.child == "transformers" else wrap_ours(base)
        vocab = base.config.vocab_size
        ids = torch.randint(0, vocab, (args.gpu_batch * (args.gpu_warmup + args.gpu_steps + 2), args.gpu_seq),
                            generator=torch.Generator().manual_seed(SEED))
        rows, source, batch = Rows(ids), "random ids (seed 0)", args.gpu_batch
        warmup, steps = args.gpu_warmup, args.gpu_steps
    else:
        model, tokenizer = smollm2_qlora()
        ids, source = pubmedqa_rows(tokenizer, args.seq, args.batch * (args.warmup + args.steps + 2))
        rows, batch, warmup, steps = Rows(ids), args.batch, args.warmup, args.steps
    load_seconds = time.perf_counter() - start
    rss_loaded = peak_rss_bytes()
    gpu_loaded = torch.cuda.max_memory_allocated() if device.type == "cuda" else None
    clock = StepClock(model, device.type == "cuda")
    profiler = None
    if args.profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    TRAINERS[args.child](model, rows, batch, warmup + steps + 1, device.type)
    if profiler is not None:
        profiler.disable()
    base_model = model.get_base_model() if hasattr(model, "get_base_model") else model
    result = {
        "side": args.child, "part": args.part, "device": str(device), "data": source, "batch": batch,
        "seq": ids.shape[1], "load_seconds": round(load_seconds, 1), "steps": clock.durations(warmup, steps),
        "forward_calls": len(clock.starts),
        "gradient_checkpointing": bool(getattr(base_model, "is_gradient_checkpointing", False)),
        "trainable_parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "peak_rss_bytes": peak_rss_bytes(),
        "peak_rss_timed_bytes": clock.rss[min(warmup + steps, len(clock.rss) - 1)],
        "peak_rss_after_load_bytes": rss_loaded,
    }
    if device.type == "cuda":
        result["peak_gpu_bytes"] = torch.cuda.max_memory_allocated()
        result["peak_gpu_reserved_bytes"] = torch.cuda.max_memory_reserved()
        result["peak_gpu_after_build_bytes"] = gpu_loaded
        result["gpu_name"] = torch.cuda.get_device_name()
    if profiler is not None:
        import io
        import pstats

        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(25)
        result["profile_tottime_top25"] = text.getvalue()
    return result


# --------------------------------------------------------------------------- parent
def spawn(side: str, part: str, args: argparse.Namespace, profile: bool = False) -> dict:
    command = [sys.executable, __file__, "--child", side, "--part", part]
    for name in ("steps", "warmup", "batch", "seq", "gpu_steps", "gpu_warmup", "gpu_batch", "gpu_seq", "threads"):
        if getattr(args, name) is not None:
            command += [f"--{name}", str(getattr(args, name))]
    if args.tiny_gpu_on_cpu:
        command.append("--tiny_gpu_on_cpu")
    if profile:
        command.append("--profile")
    done = subprocess.run(command, check=False, capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        sys.stderr.write(done.stderr[-6000:])
        raise SystemExit(f"the {side} {part} run failed (exit {done.returncode}); its stderr is above")
    return json.loads(lines[-1][len("RESULT ") :])


def summarise(runs: list[dict]) -> dict:
    wall = [s[0] for r in runs for s in r["steps"]]
    cpu = [s[1] for r in runs for s in r["steps"]]
    tokens = runs[0]["batch"] * runs[0]["seq"]
    out = {
        "timed_steps": len(wall), "median_wall_s_per_step": round(statistics.median(wall), 3),
        "median_cpu_s_per_step": round(statistics.median(cpu), 3),
        "tokens_per_s_wall": round(tokens / statistics.median(wall), 1),
        "tokens_per_s_cpu": round(tokens / statistics.median(cpu), 1),
        "wall_s_per_step_all": [round(w, 2) for w in wall],
        "peak_rss_mib": round(max(r["peak_rss_bytes"] for r in runs) / 2**20),
        "peak_rss_after_load_mib": round(max(r["peak_rss_after_load_bytes"] for r in runs) / 2**20),
        "peak_rss_timed_mib": round(max(r["peak_rss_timed_bytes"] for r in runs) / 2**20),
        "peak_rss_mib_per_run": [round(r["peak_rss_bytes"] / 2**20) for r in runs],
        "peak_rss_timed_mib_per_run": [round(r["peak_rss_timed_bytes"] / 2**20) for r in runs],
        "rss_after_load_mib_per_run": [round(r["peak_rss_after_load_bytes"] / 2**20) for r in runs],
        "gradient_checkpointing": runs[0]["gradient_checkpointing"],
        "trainable_parameters": runs[0]["trainable_parameters"], "load_seconds": runs[0]["load_seconds"],
    }
    if "peak_gpu_bytes" in runs[0]:
        out["peak_gpu_gib"] = round(max(r["peak_gpu_bytes"] for r in runs) / 2**30, 2)
        out["peak_gpu_reserved_gib"] = round(max(r["peak_gpu_reserved_bytes"] for r in runs) / 2**30, 2)
        out["peak_gpu_after_build_gib"] = round(max(r["peak_gpu_after_build_bytes"] for r in runs) / 2**30, 2)
        out["gpu_name"] = runs[0]["gpu_name"]
    return out


def compare(part: str, args: argparse.Namespace, repeats: int) -> dict:
    sides = ["ours", "transformers"] + (["bare"] if args.bare else [])
    runs: dict[str, list[dict]] = {s: [] for s in sides}
    for r in range(repeats):  # alternate the order so background load hits both alike
        for side in sides if r % 2 == 0 else sides[::-1]:
            t = time.perf_counter()
            runs[side].append(spawn(side, part, args))
            print(f"  {part} repeat {r + 1}/{repeats} {side}: {time.perf_counter() - t:.0f}s, wall s/step "
                  f"{[round(s[0], 1) for s in runs[side][-1]['steps']]}", flush=True)
    first = runs["ours"][0]
    table = {s: summarise(v) for s, v in runs.items()}
    ours, theirs = table["ours"], table["transformers"]
    return {
        "data": first["data"], "batch": first["batch"], "seq": first["seq"], "repeats": repeats,
        "sides": table,
        "ratio_tokens_per_s_wall": round(ours["tokens_per_s_wall"] / theirs["tokens_per_s_wall"], 3),
        "ratio_tokens_per_s_cpu": round(ours["tokens_per_s_cpu"] / theirs["tokens_per_s_cpu"], 3),
    }


def print_table(title: str, block: dict) -> None:
    sides = block["sides"]
    print(f"\n{title} (batch {block['batch']}, seq {block['seq']}, {block['data']}; medians of "
          f"{sides['ours']['timed_steps']} timed steps per side)")
    print(f"{'':28}{'ours':>14}{'transformers':>14}{'ratio':>8}" + (f"{'bare loop':>12}" if "bare" in sides else ""))
    keys = [("tokens/s (wall)", "tokens_per_s_wall", True), ("tokens/s (CPU time)", "tokens_per_s_cpu", True),
            ("s/step (wall)", "median_wall_s_per_step", False),
            ("peak RSS MiB, whole run", "peak_rss_mib", False),
            ("peak RSS MiB, timed steps", "peak_rss_timed_mib", False),
            ("peak RSS MiB after load", "peak_rss_after_load_mib", False)]
    if "peak_gpu_gib" in sides["ours"]:
        keys += [("peak GPU GiB (allocated)", "peak_gpu_gib", False), ("peak GPU GiB (reserved)",
                 "peak_gpu_reserved_gib", False), ("GPU GiB after build", "peak_gpu_after_build_gib", False)]
    for label, key, higher in keys:
        a, b = sides["ours"][key], sides["transformers"][key]
        ratio = (a / b if higher else b / a) if a and b else float("nan")
        extra = f"{sides['bare'][key]:12g}" if "bare" in sides else ""
        print(f"{label:28}{a:14g}{b:14g}{ratio:7.2f}x{extra}")
    print("(ratio: ours/theirs for tokens/s, theirs/ours for time and memory; > 1 = ours better)")


def previous_runs(path: Path) -> list[dict]:
    """The earlier runs recorded in ``path``, each as a one-line summary (its own history carried on)."""
    if not path.is_file():
        return []
    old = json.loads(path.read_text())
    runs = old.get("previous_runs", [])
    cpu = old.get("cpu")
    if cpu:
        sides = cpu["sides"]
        runs.append({
            "written": old.get("written"), "machine": old.get("machine"), "timed_steps": sides["ours"]["timed_steps"],
            "tokens_per_s_wall": {s: v["tokens_per_s_wall"] for s, v in sides.items()},
            "tokens_per_s_cpu": {s: v["tokens_per_s_cpu"] for s, v in sides.items()},
            "ratio_tokens_per_s_wall": cpu["ratio_tokens_per_s_wall"],
            "ratio_tokens_per_s_cpu": cpu["ratio_tokens_per_s_cpu"],
            "peak_rss_mib": {s: v["peak_rss_mib"] for s, v in sides.items()},
        })
    return runs


def machine() -> str:
    import bitsandbytes
    import peft
    import transformers

    return (f"torch {torch.__version__}, transformers {transformers.__version__}, peft {peft.__version__}, "
            f"bitsandbytes {bitsandbytes.__version__}, python {platform.python_version()}, {platform.machine()}, "
            f"{os.cpu_count()} cores, {torch.get_num_threads()} threads")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=6, help="timed optimizer steps per side and repeat (CPU)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--seq", type=int, default=256)
    parser.add_argument("--gpu_steps", type=int, default=10)
    parser.add_argument("--gpu_warmup", type=int, default=3)
    parser.add_argument("--gpu_batch", type=int, default=1)
    parser.add_argument("--gpu_seq", type=int, default=2048)
    parser.add_argument("--gpu_repeats", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--bare", action="store_true", help="also time a bare PyTorch loop on the same model")
    parser.add_argument("--profile", action="store_true", help="then profile one run per side with cProfile")
    parser.add_argument("--skip_cpu", action="store_true")
    parser.add_argument("--tiny_gpu_on_cpu", action="store_true", help="check the GPU code path on the CPU")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--child", choices=sorted(TRAINERS), help=argparse.SUPPRESS)
    parser.add_argument("--part", choices=["cpu", "gpu"], default="cpu", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    if args.child:
        print("RESULT " + json.dumps(run_side(args)), flush=True)
        return

    results: dict = {"machine": machine(), "written": time.strftime("%Y-%m-%d %H:%M")}
    if not args.skip_cpu:
        results["cpu"] = compare("cpu", args, args.repeats)
        print_table("CPU: QLoRA SmolLM2-135M", results["cpu"])
        if args.profile:
            results["cpu_profiles"] = {}
            for side in ("ours", "transformers"):
                run = spawn(side, "cpu", args, profile=True)
                results["cpu_profiles"][side] = run["profile_tottime_top25"]
                print(f"\ncProfile, {side} (whole training call, sorted by own time):\n{run['profile_tottime_top25']}")
    if torch.cuda.is_available() or args.tiny_gpu_on_cpu:
        title = "tiny Mistral on CPU (code-path check)" if args.tiny_gpu_on_cpu else "GPU: QLoRA Mistral-7B shape"
        results["gpu"] = compare("gpu", args, args.gpu_repeats)
        print_table(title, results["gpu"])
        if not args.tiny_gpu_on_cpu:
            peak = results["gpu"]["sides"]["ours"]["peak_gpu_gib"]
            print(f"peak GPU memory, ours: {peak} GiB (target <= 6 GB = {6e9 / 2**30:.2f} GiB): "
                  f"{'met' if peak * 2**30 <= 6e9 else 'NOT met'}")
    else:
        results["gpu"] = {"skipped": "no GPU: skipped (torch.cuda.is_available() is False)"}
        print("\nGPU part (Mistral-7B shape, seq 2048): no GPU: skipped")
    if args.tiny_gpu_on_cpu:
        print("(--tiny_gpu_on_cpu: results not written)")
        return
    if "cpu_profiles" not in results and args.out.is_file():  # keep the latest profiles, saying from when
        old = json.loads(args.out.read_text())
        if "cpu_profiles" in old:
            results["cpu_profiles"] = old["cpu_profiles"]
            results["cpu_profiles_from_run"] = old.get("cpu_profiles_from_run", old.get("written"))
    results["previous_runs"] = previous_runs(args.out)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
