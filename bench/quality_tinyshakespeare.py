"""Quality: validation bits per character of a ~10M-parameter decoder trained on Tiny Shakespeare on CPU.

The first 90% of the text trains (a BPE tokenizer and the model), the last 10% validates. Bits per character =
total validation nats / validation characters / ln 2, which compares across tokenizers: nanoGPT's character-level
model reaches 1.47 nats/char = 2.12 bits/char at 10.7M parameters on a GPU. Every validation token is scored with
at least half a window of context (windows of ``max_seq_len`` with a stride of half of it).

Usage: python bench/quality_tinyshakespeare.py [--minutes 28] [--out bench/results/quality.json]
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import time
from pathlib import Path

import torch

from minillm import DecoderOnlyModel, ModelConfig
from tokenizers_bpe import BPETokenizer
from training import Trainer, create_dataloaders

SAMPLE = Path(__file__).resolve().parent.parent / "training" / "sample_data" / "tinyshakespeare.txt"


@torch.no_grad()
def bits_per_char(model, ids: list[int], chars: int, window: int) -> tuple[float, float]:
    """(bits per char, nats per token) over ``ids`` with half-window-overlapping windows."""
    model.eval()
    stride = window // 2
    total_nats, scored = 0.0, 0
    for start in range(0, len(ids) - 1, stride):
        chunk = torch.tensor([ids[start : start + window]])
        if chunk.shape[1] < 2:
            break
        logits = model(input_ids=chunk).logits[0, :-1].float()  # (T-1, V)
        targets = chunk[0, 1:]
        nats = torch.nn.functional.cross_entropy(logits, targets, reduction="none")
        first = 0 if start == 0 else window - stride - 1  # score only tokens no earlier window scored
        total_nats += float(nats[first:].sum())
        scored += int(nats[first:].numel())
        if start + window >= len(ids):
            break
    return total_nats / chars / math.log(2), total_nats / scored


def planned_steps(model, loader, minutes: float, bf16: bool) -> int:
    """Optimizer steps that fit the budget (timed on a copy), so the cosine schedule ends when time does."""
    import copy

    probe = copy.deepcopy(model).train()
    optimizer = torch.optim.AdamW(probe.parameters(), lr=1e-4)
    batches = iter(loader)
    times = []
    for _ in range(4):
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = probe(**next(batches)).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - start)
    per_step = sorted(times[1:])[1]
    return max(10, int(minutes * 60 * 0.85 / per_step))  # 15% for evaluations and checkpoints


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=28.0, help="training budget")
    parser.add_argument("--vocab_size", type=int, default=2048)
    parser.add_argument("--d_model", type=int, default=384)
    parser.add_argument("--num_layers", type=int, default=6)
    parser.add_argument("--num_heads", type=int, default=6)
    parser.add_argument("--max_seq_len", type=int, default=256)
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--dropout", type=float, default=0.2)
    parser.add_argument("--eval_every", type=int, default=100)
    parser.add_argument("--mixed_precision", default=None, choices=["bf16"], help="bf16 autocast (CPU: ~1.8x faster)")
    parser.add_argument("--checkpoint_dir", default="/tmp/minillm-quality")
    parser.add_argument("--out", default=None, help="write the figures as JSON here")
    args = parser.parse_args()

    text = SAMPLE.read_text()
    cut = int(len(text) * 0.9)
    train_text, val_text = text[:cut], text[cut:]
    tokenizer = BPETokenizer(vocab_size=args.vocab_size, show_progress=False)
    tokenizer.train(train_text.split("\n\n"))
    val_ids = tokenizer.encode(val_text, add_special_tokens=False)
    train_pieces = [p for p in train_text.split("\n\n") if p.strip()]
    window_texts = [val_text[i : i + 2000] for i in range(0, len(val_text), 2000)]
    train_loader, val_loader = create_dataloaders(train_pieces, window_texts, tokenizer, args.batch_size,
                                                  args.max_seq_len, seed=0)
    config = ModelConfig(vocab_size=tokenizer.vocab_size, d_model=args.d_model, num_layers=args.num_layers,
                         num_heads=args.num_heads, max_seq_len=args.max_seq_len, dropout=args.dropout,
                         eos_token_id=tokenizer.eos_token_id)
    torch.manual_seed(0)
    model = DecoderOnlyModel(config)
    params = sum(p.numel() for p in model.parameters())
    steps = planned_steps(model, train_loader, args.minutes, args.mixed_precision == "bf16")
    trainer = Trainer(model=model, train_dataloader=train_loader, val_dataloader=val_loader, learning_rate=args.lr,
                      checkpoint_dir=args.checkpoint_dir, device="cpu", early_stopping_patience=4,
                      weight_decay=0.1, warmup_steps=min(100, steps // 10), lr_scheduler="cosine",
                      min_lr_ratio=0.1, max_steps=steps, eval_every=args.eval_every, save_every=args.eval_every,
                      max_minutes=args.minutes, save_total_limit=1, plot=True, tokenizer=tokenizer,
                      mixed_precision=args.mixed_precision)
    start = time.perf_counter()
    result = trainer.train(epochs=1000)
    minutes = (time.perf_counter() - start) / 60
    best = DecoderOnlyModel.from_pretrained(Path(args.checkpoint_dir) / "best")
    bpc, nats_per_token = bits_per_char(best, val_ids, len(val_text), args.max_seq_len)
    figures = {
        "parameters": params, "vocab_size": tokenizer.vocab_size, "train_minutes": round(minutes, 1),
        "steps": result["global_step"], "early_stopped": result["early_stopped"],
        "best_val_loss_per_token": round(result["best_val_loss"], 4), "val_nats_per_token": round(nats_per_token, 4),
        "val_chars_per_token": round(len(val_text) / len(val_ids), 3), "val_bits_per_char": round(bpc, 4),
        "mixed_precision": args.mixed_precision or "fp32",
        "machine": f"{platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}",
    }
    sample = best.generate(torch.tensor([tokenizer.encode("ROMEO:", add_special_tokens=False)]),
                           max_new_tokens=80, do_sample=True, temperature=0.8, top_k=50, seed=0, eos_token_id=[])
    figures["sample"] = tokenizer.decode(sample[0].tolist(), skip_special_tokens=True)
    print(json.dumps(figures, indent=2))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
