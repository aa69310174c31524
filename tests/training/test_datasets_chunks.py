"""prepare_dataset chunks: reading documents, chunk sizes and overlap, splits by document, the estimate."""

from __future__ import annotations

import json
from itertools import pairwise
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from minillm import DecoderOnlyModel
from minillm.errors import InputError
from tokenizers_bpe import BPETokenizer
from training.datasets import (
    BuildConfig,
    build_chunks,
    cap_samples,
    chunk_spans,
    chunk_text,
    estimate_training_time,
    read_documents,
    split_documents,
)

PAPER = """# Attention in small models

## Abstract
We study attention in small transformer models and find that two heads suffice for copying tasks.

## Methods
We trained forty models on synthetic copying data. Each model had two layers. Training ran for one hour.

## References
[1] Someone. A paper. 2020.
"""


def write_docs(root: Path, n: int = 6) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        body = "\n\n".join(f"Paragraph {j} of document {i} talks about topic {i * j} at some length, so that "
                           "chunks need several paragraphs." for j in range(12))
        (root / f"doc{i}.md").write_text(f"# Document {i}\n\n{body}\n")
    return root


words = st.text(alphabet=st.sampled_from("abcdefgh"), min_size=1, max_size=12)
sentence = st.lists(words, min_size=1, max_size=12).map(lambda w: " ".join(w) + ".")
paragraph = st.lists(sentence, min_size=1, max_size=6).map(" ".join)
texts = st.lists(paragraph, min_size=1, max_size=8).map("\n\n".join)


@settings(max_examples=120, deadline=None)
@given(text=texts, size=st.integers(20, 200), overlap_share=st.floats(0, 0.5))
def test_no_chunk_longer_than_chunk_size_and_all_text_covered(text: str, size: int, overlap_share: float):
    overlap = int(size * overlap_share)
    spans = chunk_spans(text, size, overlap)
    assert spans and all(0 < b - a <= size for a, b in spans)
    assert chunk_text(text, size, overlap) == [text[a:b] for a, b in spans]
    assert not text[: spans[0][0]].strip() and not text[spans[-1][1]:].strip()
    for (a0, b0), (a1, b1) in pairwise(spans):  # in order, and together they cover the text
        assert a0 < a1 and b0 < b1
        assert a1 <= b0 or not text[b0:a1].strip()


def test_overlap_repeats_the_end_of_the_previous_chunk():
    text = "\n\n".join(f"Sentence number {i} is here." for i in range(60))
    chunks = chunk_text(text, 200, 50)
    assert len(chunks) > 3
    for before, after in pairwise(chunks):
        shared = max(k for k in range(len(after) + 1) if before.endswith(after[:k]))
        assert shared >= 50


def test_bad_sizes_are_refused():
    with pytest.raises(InputError, match="--overlap"):
        chunk_text("some text", 100, 100)
    with pytest.raises(InputError, match="--chunk_size"):
        chunk_text("some text", 0, 0)


def test_read_documents_markdown_and_jsonl(tmp_path: Path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "paper.md").write_text(PAPER)
    (tmp_path / "qa.jsonl").write_text(json.dumps({"title": "Is it safe?", "text": "Background: Why.\n\n"
                                                   "Methods: How we did it."}) + "\n\n")
    (tmp_path / "empty.txt").write_text("   \n")
    docs = {d.source: d for d in read_documents(tmp_path)}
    assert set(docs) == {"qa.jsonl:1", "sub/paper.md"}
    paper = docs["sub/paper.md"]
    assert paper.title == "Attention in small models"
    assert paper.abstract.startswith("We study attention")
    assert [s.heading for s in paper.sections] == ["Abstract", "Methods", "References"]
    assert docs["qa.jsonl:1"].title == "Is it safe?"
    assert [s.heading for s in docs["qa.jsonl:1"].sections] == ["Background", "Methods"]


def test_no_usable_documents_is_an_input_error(tmp_path: Path):
    (tmp_path / "notes.pdf").write_bytes(b"%PDF")
    (tmp_path / "blank.md").write_text("\n")
    with pytest.raises(InputError, match="no usable documents"):
        read_documents(tmp_path)


def test_split_by_document_is_deterministic_and_never_empty():
    sources = [f"d{i}" for i in range(40)]
    train, val = split_documents(sources, 0.1, seed=3)
    assert len(val) == 4 and not train & val and train | val == set(sources)
    assert split_documents(sources, 0.1, seed=3) == (train, val)
    assert split_documents(sources, 0.1, seed=4) != (train, val)
    assert len(split_documents(["a", "b"], 0.01, seed=0)[1]) == 1  # two documents: one held out
    assert split_documents(["a"], 0.5, seed=0) == ({"a"}, set())


def test_max_samples_caps_proportionally():
    train, val = cap_samples(list(range(95)), list(range(5)), 40)
    assert (len(train), len(val)) == (38, 2)
    assert cap_samples([1, 2], [3], None) == ([1, 2], [3])


def test_build_chunks_splits_by_document(tmp_path: Path):
    docs = read_documents(write_docs(tmp_path / "in", n=6))
    out = tmp_path / "out"
    out.mkdir()
    result = build_chunks(docs, BuildConfig(output_dir=out, chunk_size=300, overlap=60, val_ratio=0.3, seed=1))
    train = [json.loads(line) for line in (out / "train.jsonl").read_text().splitlines()]
    val = [json.loads(line) for line in (out / "val.jsonl").read_text().splitlines()]
    assert result.records == {"train": len(train), "val": len(val)} and val and train
    assert all(set(r) == {"text"} and len(r["text"]) <= 300 for r in train + val)
    doc_of = lambda r: r["text"].split("document ")[1].split(" ")[0]
    assert not {doc_of(r) for r in train} & {doc_of(r) for r in val}
    assert result.val_documents == 2


def test_estimate_measures_a_tiny_model(tmp_path: Path):
    texts = [f"Sentence {i} about small models and data." for i in range(200)]
    tokenizer = BPETokenizer(vocab_size=300, show_progress=False).train(texts)
    torch.manual_seed(0)
    model = DecoderOnlyModel({"vocab_size": tokenizer.vocab_size, "d_model": 32, "num_heads": 2, "num_layers": 1,
                              "max_seq_len": 32})
    model.save_pretrained(tmp_path / "tiny")
    tokenizer.save(tmp_path / "tiny")
    estimate = estimate_training_time(texts, model=str(tmp_path / "tiny"), batch_size=2, seq_len=64, steps=2)
    assert estimate.tokens == sum(len(tokenizer.encode(t)) for t in texts)
    assert estimate.tokens_per_second > 0
    assert estimate.minutes_per_epoch == pytest.approx(estimate.tokens / estimate.tokens_per_second / 60)
    assert "tokens/s measured" in estimate.line() and "min per epoch" in estimate.line()


@pytest.mark.parametrize("module", ["chunk_dataset", "documents", "instructions", "splits"])
def test_docstring_examples(module: str):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(f"training.datasets.{module}"))
    assert result.attempted > 0 and result.failed == 0
