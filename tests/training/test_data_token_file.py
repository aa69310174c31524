"""TokenFileDataset: streaming a multi-MB file into a memmapped token store in bounded memory, and reusing it."""

from __future__ import annotations

import json
import random
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import torch

from training.data.windows import TokenFileDataset

from . import data_fixtures as F

byte_tok, bpe_tokenizer, cache = F.byte_tok, F.bpe_tokenizer, F.cache
EOS = 256
WORDS = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu".split()  # noqa: SIM905


def make_corpus(path: Path, megabytes: float, seed: int = 0) -> bytes:
    rng = random.Random(seed)
    paragraphs, size = [], 0
    while size < megabytes * 1e6:
        para = " ".join(rng.choices(WORDS, k=rng.randint(5, 60))) + "."
        paragraphs.append(para)
        size += len(para) + 2
    data = "\n\n".join(paragraphs).encode()
    path.write_bytes(data)
    return data


def test_multi_megabyte_file_streams_in_bounded_memory_and_is_reused(tmp_path, byte_tok, cache):
    file = tmp_path / "big.txt"
    data = make_corpus(file, 3)
    tracemalloc.start()
    try:
        dataset = TokenFileDataset(file, byte_tok, max_length=128, cache_dir=cache, chunk_bytes=1 << 16)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < len(data) / 5, f"peak {peak} bytes for a {len(data)}-byte file"
    store = next(cache.iterdir())
    header = json.loads((store / "header.json").read_text())
    assert header["dtype"] == "<u2" and header["num_tokens"] == len(data) + 2 and header["num_docs"] == 1
    assert isinstance(dataset.store.tokens, np.memmap)
    assert len(dataset) == (len(data) + 2 + 127) // 128
    first = dataset[0]["input_ids"].tolist()
    assert first == [EOS] + list(data[:127])
    middle = dataset[1000]["input_ids"]
    assert bytes(middle.tolist()) == data[1000 * 128 - 1 : 1001 * 128 - 1]
    assert dataset[len(dataset) - 1]["input_ids"].tolist()[-1] == EOS
    byte_tok.calls = 0
    again = TokenFileDataset(file, byte_tok, max_length=128, cache_dir=cache)
    assert byte_tok.calls == 1 and len(again) == len(dataset)  # only the fingerprint probe was encoded


def test_paragraph_documents_get_their_own_segments(tmp_path, byte_tok, cache):
    file = tmp_path / "p.txt"
    file.write_text("first para\nline two\n\n\nsecond para\n\nthird")
    dataset = TokenFileDataset(file, byte_tok, max_length=64, cache_dir=cache, documents="paragraph")
    (row,) = [dataset[i] for i in range(len(dataset))]
    assert byte_tok.decode(row["input_ids"].tolist()) == (
        "<|endoftext|>first para\nline two<|endoftext|>second para<|endoftext|>third<|endoftext|>"
    )
    assert row["segment_ids"].unique().tolist() == [0, 1, 2, 3]
    assert dataset.store.num_docs == 3


def test_folder_documents_and_round_trip_with_bpe(tmp_path, bpe_tokenizer, cache):
    (tmp_path / "d" / "sub").mkdir(parents=True)
    texts = {
        "d/a.txt": "Hello there, friend.\n\nA second paragraph, ünïcode 🙂.\n",
        "d/sub/b.md": "# Title\n\nMarkdown body text.",
    }
    for name, text in texts.items():
        (tmp_path / name).write_text(text)
    dataset = TokenFileDataset(tmp_path / "d", bpe_tokenizer, max_length=8, cache_dir=cache, chunk_bytes=16)
    ids = torch.cat([dataset[i]["input_ids"] for i in range(len(dataset))]).tolist()
    eos = bpe_tokenizer.decode([bpe_tokenizer.eos_token_id])
    assert bpe_tokenizer.decode(ids) == eos + texts["d/a.txt"] + eos + texts["d/sub/b.md"] + eos
    assert dataset.store.num_docs == 2


def test_split_gives_disjoint_row_ranges(tmp_path, byte_tok, cache):
    file = tmp_path / "s.txt"
    make_corpus(file, 0.02)
    dataset = TokenFileDataset(file, byte_tok, max_length=32, cache_dir=cache)
    train, val = dataset.split(0.1)
    assert len(train) + len(val) == len(dataset) and len(val) == int(len(dataset) * 0.1)
    assert torch.equal(val[0]["input_ids"], dataset[len(train)]["input_ids"])
    with pytest.raises(ValueError, match="val_fraction=1.5"):
        dataset.split(1.5)


def test_unpacked_and_mlm_modes(tmp_path, byte_tok, cache):
    file = tmp_path / "m.txt"
    file.write_text("abcdefghij" * 3 + "\n\nxyz")
    docs = TokenFileDataset(
        file, byte_tok, max_length=12, mode="documents", cache_dir=cache, documents="paragraph"
    )
    assert [byte_tok.decode(docs[i]["input_ids"].tolist()) for i in range(len(docs))] == [
        "abcdefghijab",
        "cdefghijabcd",
        "efghij<|endoftext|>",
        "xyz<|endoftext|>",
    ]
    mlm = TokenFileDataset(file, byte_tok, max_length=12, mode="mlm", cache_dir=cache, documents="paragraph")
    assert [len(mlm[i]["input_ids"]) for i in range(len(mlm))] == [12, 12, 6, 3]
    assert set(mlm[0]) == {"input_ids"}


def test_streamed_bad_bytes_and_empty_files(tmp_path, byte_tok, cache):
    file = tmp_path / "bad.txt"
    file.write_bytes(b"a" * 5000 + b"\xfe" + b"b" * 10)
    with pytest.raises(ValueError, match="byte offset 5000.*--encoding_errors replace"):
        TokenFileDataset(file, byte_tok, max_length=16, cache_dir=cache, chunk_bytes=1024)
    assert not list(cache.glob(".*"))  # the half-built store was removed
    dataset = TokenFileDataset(
        file, byte_tok, max_length=16, cache_dir=cache, chunk_bytes=1024, encoding_errors="replace"
    )
    assert "\ufffd" in byte_tok.decode(
        torch.cat([dataset[i]["input_ids"] for i in range(len(dataset))]).tolist()
    )
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(ValueError, match="is empty"):
        TokenFileDataset(tmp_path / "empty.txt", byte_tok, max_length=16, cache_dir=cache)
    (tmp_path / "blank.txt").write_text("\n\n  \n")
    with pytest.raises(ValueError, match="no text to train on"):
        TokenFileDataset(
            tmp_path / "blank.txt", byte_tok, max_length=16, cache_dir=cache, documents="paragraph"
        )
    with pytest.raises(FileNotFoundError, match="does not exist"):
        TokenFileDataset(tmp_path / "nope.txt", byte_tok, max_length=16, cache_dir=cache)


def test_workers_reopen_the_memmap_instead_of_copying_it(tmp_path, byte_tok, cache):
    import pickle

    from training.data.loaders import create_file_dataloaders

    file = tmp_path / "w.txt"
    data = make_corpus(file, 0.03)
    train, val = create_file_dataloaders(
        file, byte_tok, batch_size=4, max_length=64, cache_dir=cache, num_workers=1
    )
    assert len(pickle.dumps(train.dataset)) < len(data) / 20  # what a spawned worker would receive
    in_worker = [b["input_ids"] for b in train]
    train_main, _ = create_file_dataloaders(file, byte_tok, batch_size=4, max_length=64, cache_dir=cache)
    assert all(torch.equal(a, b["input_ids"]) for a, b in zip(in_worker, train_main, strict=True))
    assert set(next(iter(val))) == {"input_ids", "attention_mask", "labels", "segment_ids"}
