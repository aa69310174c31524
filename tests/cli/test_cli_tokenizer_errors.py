"""A corrupt or unreadable tokenizer file, named or inside a checkpoint: one stderr line naming it, exit 2."""

from __future__ import annotations

import json

import pytest

from .cli_helpers import TINY_MODEL, run_cli, write_corpus

CORRUPT = '{"model": {"type": "BPE", "vocab'  # a tokenizer.json cut off mid-write


def assert_one_line_naming(result, *fragments: str) -> None:
    err = result.stderr.strip()
    assert result.returncode == 2, err[-2000:]
    assert "Traceback" not in err and len(err.splitlines()) == 1, err[-2000:]
    assert err.startswith("error: ")
    for fragment in fragments:
        assert fragment in err, err


def test_train_with_a_corrupt_tokenizer_path(tmp_path):
    data = write_corpus(tmp_path / "d.txt", paragraphs=20)
    (tmp_path / "corrupt.json").write_text(CORRUPT, encoding="utf-8")
    result = run_cli("train", "--data_path", str(data), "--tokenizer_path", str(tmp_path / "corrupt.json"),
                     "--checkpoint_dir", str(tmp_path / "run"), *TINY_MODEL, "--max_steps", "1", cwd=tmp_path)
    assert_one_line_naming(result, "corrupt.json", "not valid JSON")


def test_train_with_a_valid_json_transformers_cannot_open(tmp_path):
    """Not a byte-level BPE, so it goes to transformers, which fails: still one line naming the file."""
    pytest.importorskip("transformers")
    data = write_corpus(tmp_path / "d.txt", paragraphs=20)
    (tmp_path / "odd.json").write_text(json.dumps({"model": {"type": "Unigram", "vocab": 3}}), encoding="utf-8")
    result = run_cli("train", "--data_path", str(data), "--tokenizer_path", str(tmp_path / "odd.json"),
                     "--checkpoint_dir", str(tmp_path / "run"), *TINY_MODEL, "--max_steps", "1", cwd=tmp_path)
    assert_one_line_naming(result, "odd.json", "transformers cannot open")


def test_generate_from_a_checkpoint_with_a_corrupt_tokenizer(tmp_path):
    from minillm import DecoderOnlyModel

    model = DecoderOnlyModel({"model_type": "decoder_only", "vocab_size": 300, "d_model": 16, "num_heads": 2,
                              "num_layers": 1, "max_seq_len": 16})
    folder = model.save_pretrained(tmp_path / "model")
    (folder / "tokenizer.json").write_text(CORRUPT, encoding="utf-8")
    result = run_cli("generate", "--model_path", str(folder), "--prompt", "hi", "--device", "cpu", cwd=tmp_path)
    assert_one_line_naming(result, str(folder / "tokenizer.json"), "not valid JSON")
