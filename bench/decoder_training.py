"""Training-step rows of bench_decoder.py: ours against LlamaForCausalLM, eager and torch.compile, fp32 and bf16.

transformers runs twice, with each of its attention implementations that suits a CPU (``sdpa``, its default,
and ``eager``: plain products and softmax, which Inductor can fuse), so "transformers at its best" is the faster
of the two. All models start from the same weights (d_model 384, 6 layers, 6 heads, vocab 8192), take the same
batches (B 8, T 256) and the same optimizer (AdamW, ``fused=True``, lr 1e-3, no clipping), so their loss curves
should coincide; the largest |difference| from ours over the run is reported with each row. The batches come
from a fixed random bigram chain (each token has 4 possible successors), so the loss falls and the curves mean
something.

Per mode: 2 warm-up steps each (they compile, in the compile modes), then blocks of ``block`` steps alternate
ours / transformers sdpa / transformers eager; tokens/s is the median over blocks.
"""

from __future__ import annotations

import contextlib
import copy
import statistics
import time
from collections.abc import Callable

import torch

VOCAB, BATCH, SEQ = 8192, 8, 256
MODES = ("eager-fp32", "eager-bf16", "compile-fp32", "compile-bf16")
REFERENCES = ("sdpa", "eager")  # transformers' attention implementations
WARMUP = 2


def train_models() -> tuple[torch.nn.Module, dict[str, torch.nn.Module]]:
    """(ours, {attention implementation: transformers' model}), identical weights, in train mode."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from minillm import DecoderOnlyModel, ModelConfig

    torch.manual_seed(0)
    config = ModelConfig(vocab_size=VOCAB, d_model=384, num_heads=6, num_layers=6, max_seq_len=SEQ,
                         tie_word_embeddings=False)
    ours = DecoderOnlyModel(config)
    hf_config = LlamaConfig(vocab_size=VOCAB, hidden_size=384, intermediate_size=ours.config.d_ff,
                            num_hidden_layers=6, num_attention_heads=6, num_key_value_heads=6,
                            max_position_embeddings=SEQ, tie_word_embeddings=False)
    refs = {}
    for implementation in REFERENCES:
        hf_config._attn_implementation = implementation
        refs[implementation] = ref = LlamaForCausalLM(copy.deepcopy(hf_config)).train()
        missing, unexpected = ref.load_state_dict(ours.state_dict(), strict=False)
        if unexpected or any("rotary" not in name for name in missing):
            raise RuntimeError(f"weights did not map one to one: missing {missing}, unexpected {unexpected}")
    return ours.train(), refs


def bigram_batches(steps: int, seed: int = 0) -> list[dict[str, torch.Tensor]]:
    """``steps`` batches (B, T) of a fixed random bigram chain; labels = inputs (the models shift)."""
    g = torch.Generator().manual_seed(seed)
    successors = torch.randint(0, VOCAB, (VOCAB, 4), generator=g)  # (V, 4)
    batches = []
    for _ in range(steps):
        ids = torch.empty(BATCH, SEQ, dtype=torch.long)
        ids[:, 0] = torch.randint(0, VOCAB, (BATCH,), generator=g)
        choice = torch.randint(0, 4, (BATCH, SEQ), generator=g)
        for t in range(1, SEQ):
            ids[:, t] = successors[ids[:, t - 1], choice[:, t]]
        batches.append({"input_ids": ids, "labels": ids})
    return batches


def step_function(model: torch.nn.Module, mode: str) -> Callable[[dict[str, torch.Tensor]], float]:
    """One optimizer update on a batch, returning the loss; ``mode`` is one of :data:`MODES`."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=True)
    forward = torch.compile(model) if mode.startswith("compile") else model  # what Trainer(compile=True) does
    bf16 = mode.endswith("bf16")

    def step(batch: dict[str, torch.Tensor]) -> float:
        with torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext():
            loss = forward(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return float(loss.detach())

    return step


def run_mode(mode: str, steps: int, block: int) -> dict[str, object]:
    """Tokens/s (median over blocks) of ours and each transformers model in ``mode``, losses, largest gaps.

    Returns ``{"ours": tokens/s, "refs": {implementation: tokens/s}, "max_loss_diff": {implementation: gap},
    "first_loss", "last_loss", "warmup_s"}``.
    """
    if (steps - WARMUP) < block or (steps - WARMUP) % block:
        raise ValueError(f"steps - {WARMUP} must be a positive multiple of block={block}, got steps={steps}")
    torch._dynamo.reset()
    ours, refs = train_models()
    batches = bigram_batches(steps)
    steppers = {"ours": step_function(ours, mode)} | {name: step_function(m, mode) for name, m in refs.items()}
    losses: dict[str, list[float]] = {name: [] for name in steppers}
    speed: dict[str, list[float]] = {name: [] for name in steppers}
    warm_s = {}
    for name, step in steppers.items():
        start = time.perf_counter()
        losses[name] += [step(b) for b in batches[:WARMUP]]
        warm_s[name] = time.perf_counter() - start
    for first in range(WARMUP, steps, block):
        for name, step in steppers.items():
            start = time.perf_counter()
            losses[name] += [step(b) for b in batches[first : first + block]]
            speed[name].append(block * BATCH * SEQ / (time.perf_counter() - start))
    gaps = {name: max(abs(a - b) for a, b in zip(losses["ours"], losses[name], strict=True)) for name in refs}
    return {"ours": statistics.median(speed["ours"]), "refs": {name: statistics.median(speed[name]) for name in refs},
            "max_loss_diff": gaps, "first_loss": losses["ours"][0], "last_loss": losses["ours"][-1],
            "warmup_s": {k: round(v, 1) for k, v in warm_s.items()}}
