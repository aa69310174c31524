"""Retrieval quality of the rag retrievers, and MiniLM embedding throughput, ours against transformers (CPU).

(a) PubMedQA dev (../shared/data/pubmedqa/pqal_dev500.json): the 500 abstracts (contexts joined) are indexed,
    each of the 500 questions is asked, and recall@1/5/10 counts how often its own abstract is among the top k.
    Rows: MiniLM (all-MiniLM-L6-v2) through our EncoderOnlyModel (truncated at 256 tokens, the default; and
    chunked), transformers' BertModel on the same weights with mean pooling (the reference), the hashed TF-IDF
    default (dim 256), BM25 (ours; bm25s as its reference) and hybrid (RRF, k=60, of dense and BM25).
(b) SQuAD 2.0 dev half A (../shared/data/squad2-dev): the 294 paragraphs are indexed; for each answerable
    question, paragraph recall@1/5/10 of the paragraph it was asked on. The same rows (ours only).
(c) Embedding throughput of MiniLM: texts/s of ``EncoderEmbedder`` (tokenize, our encoder, mean pooling, normalise)
    against transformers (AutoTokenizer + BertModel + mean pooling, as sentence-transformers does), both sorting
    texts by length into batches of 32, truncating at 256 tokens; PubMedQA abstracts and questions. Passes
    alternate (ours, reference, reference, ours, ...); the figure is the median.

Every retriever runs through ``SimpleDocumentStore.search`` (one query at a time, as an application calls it),
except the two references. ``--threads`` defaults to 1: on a shared 2-core machine a second OpenMP thread that
waits for a core made small operations ~10x slower. Writes bench/results/bench_rag.json (``--out ''``: none).
Usage: python bench/bench_rag.py [--threads 1] [--repeats 3] [--throughput_docs 160] [--out PATH]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from importlib.metadata import version
from pathlib import Path

import numpy as np
import torch

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
PUBMEDQA = SHARED / "pubmedqa" / "pqal_dev500.json"
SQUAD = SHARED / "squad2-dev" / "squad2_dev_half_A.json"
KS = (1, 5, 10)
MAX_LENGTH = 256
NOTE = "recall rows run through SimpleDocumentStore.search one query at a time; 'seconds': indexing + all queries"


def machine() -> dict:
    versions = {name: version(name) for name in ("torch", "transformers", "numpy", "bm25s", "tokenizers")}
    return {"versions": versions, "python": platform.python_version(), "machine": platform.machine(),
            "processor": platform.processor(), "threads": torch.get_num_threads()}


def pubmedqa() -> tuple[list[str], list[str], list[int]]:
    data = json.loads(PUBMEDQA.read_text())
    docs = [" ".join(entry["CONTEXTS"]) for entry in data.values()]
    return docs, [entry["QUESTION"] for entry in data.values()], list(range(len(docs)))


def squad() -> tuple[list[str], list[str], list[int]]:
    paragraphs, questions, gold = [], [], []
    for article in json.loads(SQUAD.read_text())["data"]:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                if not qa["is_impossible"]:
                    questions.append(qa["question"])
                    gold.append(len(paragraphs))
            paragraphs.append(paragraph["context"])
    return paragraphs, questions, gold


def recall(ranked: list[list[int]], gold: list[int]) -> dict[str, float]:
    return {f"R@{k}": round(float(np.mean([g in r[:k] for r, g in zip(ranked, gold, strict=True)])), 4) for k in KS}


def store_rankings(store, queries: list[str], retriever: str) -> list[list[int]]:
    return [[hit.doc_id for hit in store.search(q, top_k=max(KS), retriever=retriever)] for q in queries]


class Reference:
    """transformers' BertModel on the MiniLM weights + mean pooling, length-sorted batches (sentence-transformers)."""

    def __init__(self, path: Path, batch: int = 32) -> None:
        from transformers import AutoModel, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = AutoModel.from_pretrained(path).eval()
        self.batch = batch

    @torch.inference_mode()
    def __call__(self, texts: list[str]) -> np.ndarray:
        order = np.argsort([-len(t) for t in texts], kind="stable")
        out = np.zeros((len(texts), self.model.config.hidden_size), dtype=np.float32)
        for start in range(0, len(texts), self.batch):
            rows = order[start:start + self.batch]
            batch = self.tokenizer([texts[i] for i in rows], padding=True, truncation=True, max_length=MAX_LENGTH,
                                   return_tensors="pt")
            hidden = self.model(**batch).last_hidden_state  # (B, T, C)
            mask = batch["attention_mask"][..., None].to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            out[rows] = torch.nn.functional.normalize(pooled, dim=-1).numpy()
        return out


def dense_rankings(docs: np.ndarray, queries: np.ndarray) -> list[list[int]]:
    scores = queries @ docs.T
    return np.argsort(-scores, axis=1, kind="stable")[:, :max(KS)].tolist()


def bm25s_rankings(docs: list[str], queries: list[str]) -> list[list[int]]:
    import bm25s

    retriever = bm25s.BM25()
    retriever.index(bm25s.tokenize(docs, stopwords="en", show_progress=False), show_progress=False)
    found, _ = retriever.retrieve(bm25s.tokenize(queries, stopwords="en", show_progress=False), k=max(KS),
                                  show_progress=False)
    return found.tolist()


def quality(name: str, docs: list[str], queries: list[str], gold: list[int], ours, reference) -> list[dict]:
    """Recall rows of one data set: every retriever through the store, plus the references on PubMedQA."""
    from rag.document_store import SimpleDocumentStore
    from rag.encoder_embedder import EncoderEmbedder

    rows = []

    def row(label: str, ranked: list[list[int]], seconds: float) -> None:
        rows.append({"data": name, "retriever": label, **recall(ranked, gold), "seconds": round(seconds, 1)})
        print(f"  {name:<9} {label:<44} " + " ".join(f"{k} {v:.3f}" for k, v in recall(ranked, gold).items()),
              flush=True)

    embedders = [("minilm-ours (truncate 256, default)", ours)]
    if reference is not None:  # PubMedQA: the truncate-vs-chunk measurement
        embedders.append(("minilm-ours (chunk 256)", EncoderEmbedder(ours.model, ours.tokenizer, long_texts="chunk")))
    for label, embedder in embedders:
        start = time.perf_counter()
        store = SimpleDocumentStore(embedder=embedder)
        store.add_documents(docs)
        store.compute_embeddings(show_progress=False)
        row(f"{label} dense", store_rankings(store, queries, "dense"), time.perf_counter() - start)
        if embedder is ours:
            start = time.perf_counter()
            row("hybrid (minilm-ours + bm25, RRF k=60)", store_rankings(store, queries, "hybrid"),
                time.perf_counter() - start)
    if reference is not None:
        start = time.perf_counter()
        row("minilm-transformers (reference) dense", dense_rankings(reference(docs), reference(queries)),
            time.perf_counter() - start)
    start = time.perf_counter()
    hashed = SimpleDocumentStore(embedding_dim=256)
    hashed.add_documents(docs)
    hashed.compute_embeddings(show_progress=False)
    row("hashed (dim 256) dense", store_rankings(hashed, queries, "dense"), time.perf_counter() - start)
    start = time.perf_counter()
    row("bm25 (ours)", store_rankings(hashed, queries, "bm25"), time.perf_counter() - start)
    start = time.perf_counter()
    row("hybrid (hashed + bm25, RRF k=60)", store_rankings(hashed, queries, "hybrid"), time.perf_counter() - start)
    if reference is not None:
        start = time.perf_counter()
        row("bm25s 0.3 (reference)", bm25s_rankings(docs, queries), time.perf_counter() - start)
    return rows


def throughput(ours, reference: Reference, texts: list[str], label: str, repeats: int) -> dict:
    ours(texts[:8]), reference(texts[:8])  # warm-up
    times: dict[str, list[float]] = {"ours": [], "ref": []}
    outputs = {}
    for repeat in range(repeats):
        sides = (("ours", ours), ("ref", reference))
        for side, embed in sides if repeat % 2 == 0 else sides[::-1]:
            start = time.perf_counter()
            outputs[side] = embed(texts)
            times[side].append(time.perf_counter() - start)
    a, b = (len(texts) / statistics.median(times[s]) for s in ("ours", "ref"))
    cosine = float(np.min(np.sum(outputs["ours"] * outputs["ref"], axis=1)))
    print(f"  {label:<40} {a:>9.1f} {b:>13.1f} {a / b:>6.2f}x   (min cosine {cosine:.6f})", flush=True)
    return {"benchmark": f"texts/s, {label}", "minillm": round(a, 2), "transformers": round(b, 2),
            "ratio": round(a / b, 3), "min_cosine": round(cosine, 6),
            "passes": {s: [round(len(texts) / t, 1) for t in times[s]] for s in times}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--throughput_docs", type=int, default=160, help="abstracts per throughput pass")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "bench_rag.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from minillm.assets import minilm_dir
    from rag.encoder_embedder import EncoderEmbedder

    ours = EncoderEmbedder.from_pretrained("minilm", device="cpu")
    reference = Reference(minilm_dir())
    print("retrieval recall (own abstract / own paragraph among the top k):")
    pubmed = pubmedqa()
    rows = quality("PubMedQA", *pubmed, ours, reference)
    rows += quality("SQuAD", *squad(), ours, None)
    print(f"\nMiniLM embedding throughput ({args.threads} thread(s), median of {args.repeats} passes):")
    print(f"  {'':<40} {'minillm':>9} {'transformers':>13} {'ratio':>7}")
    speed = [throughput(ours, reference, pubmed[0][:args.throughput_docs],
                        f"{args.throughput_docs} PubMedQA abstracts", args.repeats),
             throughput(ours, reference, pubmed[1], f"{len(pubmed[1])} PubMedQA questions", args.repeats)]
    if args.out:
        from minillm.atomic import atomic_write_text

        results = {"machine": machine(), "recall": rows, "throughput": speed,
                   "notes": [NOTE, f"max_length {MAX_LENGTH}, batch 32"]}
        atomic_write_text(args.out, json.dumps(results, indent=2) + "\n")
        print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
