"""prepare_dataset instructions and chat builders, trimming, and the resumable progress file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tokenizers_bpe import BPETokenizer
from training.datasets import BuildConfig, ResumableJsonl, Trimmer, build_keyed, count_tokens, read_documents


def write_papers(root: Path, n: int = 10) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (root / f"paper{i}.md").write_text(
            f"# Paper {i} on sparse models\n\n## Abstract\nWe show that sparse model {i} learns quickly and well.\n\n"
            f"## Methods\nWe trained model {i} on {i + 3} datasets with two optimizers for ten epochs each.\n\n"
            "## References\n[1] A reference that is long enough to be a section but should be skipped.\n")
    return root


@pytest.fixture
def tokenizer() -> BPETokenizer:
    corpus = [f"Paper {i} on sparse models. We trained model {i} on datasets." for i in range(50)]
    return BPETokenizer(vocab_size=320, show_progress=False).train(corpus)


def test_instructions_pairs_split_and_json_lists(tmp_path: Path):
    docs = read_documents(write_papers(tmp_path / "in"))
    out = tmp_path / "out"
    result = build_keyed(docs, BuildConfig(output_dir=out, builder="instructions", seed=0))
    train, val = json.loads((out / "train.json").read_text()), json.loads((out / "val.json").read_text())
    assert isinstance(train, list) and len(train) + len(val) == 20  # abstract + Methods per paper, no References
    assert result.records == {"train": 18, "val": 2} and result.val_documents == 1  # 90/10
    summary = next(r for r in train if r["input"].startswith("Summarize"))
    paper = summary["input"].split('"')[1].split()[1]
    assert summary["output"] == f"We show that sparse model {paper} learns quickly and well."
    assert all(set(r) == {"input", "output", "source"} for r in train + val)
    assert not {r["source"] for r in train} & {r["source"] for r in val}
    assert not any("reference" in r["output"].lower() for r in train + val)


def test_chat_records_have_three_roles_and_85_15_split(tmp_path: Path):
    docs = read_documents(write_papers(tmp_path / "in", n=20))
    out = tmp_path / "out"
    build_keyed(docs, BuildConfig(output_dir=out, builder="chat"))
    rows = [json.loads(line) for name in ("train", "val") for line in (out / f"{name}.jsonl").read_text().splitlines()]
    val_sources = {json.loads(line)["source"] for line in (out / "val.jsonl").read_text().splitlines()}
    assert len(val_sources) == 3  # 15% of 20 documents
    assert all([m["role"] for m in r["messages"]] == ["system", "user", "assistant"] for r in rows)


def test_rerun_keeps_what_it_has_and_max_samples_caps(tmp_path: Path):
    docs = read_documents(write_papers(tmp_path / "in"))
    out = tmp_path / "out"
    first = build_keyed(docs, BuildConfig(output_dir=out, builder="instructions", max_items=7))
    assert first.new_records == 7 and sum(first.records.values()) == 7
    second = build_keyed(docs, BuildConfig(output_dir=out, builder="instructions", max_samples=10))
    assert (second.new_records, second.resumed_records) == (13, 7)
    assert sum(second.records.values()) == 10
    keys = [json.loads(line)["key"] for line in (out / ".progress" / "instructions.jsonl").read_text().splitlines()]
    assert len(keys) == len(set(keys)) == 20


def test_trim_drop_and_truncate(tokenizer: BPETokenizer):
    short = {"input": "Paper 1?", "output": "We trained model 1."}
    long = {"input": "Paper 2?", "output": " ".join(["We trained model 2 on datasets."] * 20)}
    limit = count_tokens(tokenizer, short) + 5
    drop = Trimmer(tokenizer, limit, "drop")
    assert drop(short) is short and drop(long) is None and drop.dropped == 1
    cut = Trimmer(tokenizer, limit, "truncate")
    shortened = cut(long)
    assert shortened is not None and count_tokens(tokenizer, shortened) <= limit
    assert long["output"].startswith(shortened["output"]) and cut.truncated == 1
    chat = {"messages": [{"role": "user", "content": "Paper 3?"}, {"role": "assistant", "content": long["output"]}]}
    trimmed = Trimmer(tokenizer, 40, "truncate")(chat)
    assert count_tokens(tokenizer, trimmed) <= 40 and chat["messages"][1]["content"] == long["output"]
    assert "1 dropped, 0 truncated" in drop.summary()


def test_trim_applies_in_the_builder(tmp_path: Path, tokenizer: BPETokenizer):
    docs = read_documents(write_papers(tmp_path / "in"))
    trimmer = Trimmer(tokenizer, 30, "drop")
    result = build_keyed(docs, BuildConfig(output_dir=tmp_path / "out", builder="instructions"), trimmer=trimmer)
    assert trimmer.dropped > 0 and sum(result.records.values()) == 20 - trimmer.dropped
    assert result.tokens is not None and result.tokens <= 30 * sum(result.records.values())


def test_progress_file_drops_a_line_cut_off_by_a_kill(tmp_path: Path):
    path = tmp_path / "p.jsonl"
    store = ResumableJsonl(path)
    store.append({"key": "a#1", "text": "one"})
    store.append({"key": "a#2", "text": "two"})
    with path.open("a") as handle:
        handle.write('{"key": "a#3", "te')
    again = ResumableJsonl(path)
    assert list(again.records) == ["a#1", "a#2"] and "a#3" not in again
    again.append({"key": "a#3", "text": "three"})
    assert [json.loads(line)["key"] for line in path.read_text().splitlines()] == ["a#1", "a#2", "a#3"]
    with pytest.raises(ValueError, match="already"):
        again.append({"key": "a#1", "text": "again"})
