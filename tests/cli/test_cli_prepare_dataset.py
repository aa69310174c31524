"""main.py prepare_dataset: files written, the measured estimate, and one-line errors for bad input."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

from minillm import DecoderOnlyModel
from tokenizers_bpe import BPETokenizer

from .cli_helpers import REPO, run_cli, write_corpus

pytestmark = pytest.mark.slow


def _docs(tmp_path: Path) -> Path:
    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(4):
        write_corpus(docs / f"d{i}.md", paragraphs=30 + i)
    return docs


def _one_line_error(result) -> str:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in result.stderr
    return lines[0]


def test_chunks_with_a_measured_estimate_on_a_tiny_model(tmp_path: Path):
    docs = _docs(tmp_path)
    texts = [p.read_text() for p in docs.iterdir()]
    tokenizer = BPETokenizer(vocab_size=300, show_progress=False).train(texts)
    torch.manual_seed(0)
    DecoderOnlyModel({"vocab_size": tokenizer.vocab_size, "d_model": 32, "num_heads": 2, "num_layers": 1,
                      "max_seq_len": 64}).save_pretrained(tmp_path / "tiny")
    tokenizer.save(tmp_path / "tiny")
    result = run_cli("prepare_dataset", "--input-dir", str(docs), "--output-dir", "out", "--chunk-size", "400",
                     "--overlap", "50", "--val-ratio", "0.25", "--seed", "1", "--model", str(tmp_path / "tiny"),
                     "--estimate_batch_size", "2", "--estimate_steps", "1", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    train = [json.loads(x) for x in (tmp_path / "out" / "train.jsonl").read_text().splitlines()]
    val = [json.loads(x) for x in (tmp_path / "out" / "val.jsonl").read_text().splitlines()]
    assert train and val and all(len(r["text"]) <= 400 for r in train + val)
    assert "documents: 4 (3 train, 1 val)" in result.stdout
    assert f"records: {len(train)} train, {len(val)} val" in result.stdout
    assert "tokens/s measured" in result.stdout and "min per epoch" in result.stdout


def test_script_file_instructions_with_trim(tmp_path: Path):
    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(3):
        (docs / f"p{i}.md").write_text(f"# Paper {i}\n\n## Abstract\nShort abstract number {i} about models.\n\n"
                                       f"## Methods\n{'We trained a model on the data. ' * (5 + 40 * i)}\n")
    tokenizer = BPETokenizer(vocab_size=300, show_progress=False).train([p.read_text() for p in docs.iterdir()])
    tokenizer.save(tmp_path / "tok")
    import subprocess

    result = subprocess.run([sys.executable, str(REPO / "scripts" / "prepare_dataset.py"), "instructions",
                             "--input_dir", str(docs), "--output_dir", str(tmp_path / "out"), "--trim_tokens", "200",
                             "--tokenizer_path", str(tmp_path / "tok")], cwd=REPO, capture_output=True, text=True,
                            check=False, timeout=300)
    assert result.returncode == 0, result.stderr
    rows = json.loads((tmp_path / "out" / "train.json").read_text()) + json.loads(
        (tmp_path / "out" / "val.json").read_text())
    assert "trim to 200 tokens (drop): 2 dropped" in result.stdout and len(rows) == 4


def test_bad_input_is_one_line(tmp_path: Path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "image.png").write_bytes(b"\x89PNG")
    assert "no usable documents" in _one_line_error(
        run_cli("prepare_dataset", "--input_dir", str(empty), "--output_dir", "out", cwd=tmp_path))
    docs = _docs(tmp_path)
    (tmp_path / "a_file").write_text("x")
    assert "is a file" in _one_line_error(run_cli("prepare_dataset", "--input_dir", str(docs), "--output_dir",
                                                  str(tmp_path / "a_file"), "--no_estimate", cwd=tmp_path))
    assert "--overlap" in _one_line_error(run_cli("prepare_dataset", "--input_dir", str(docs), "--output_dir", "o",
                                                  "--chunk_size", "100", "--overlap", "100", cwd=tmp_path))
    assert "unknown" in _one_line_error(run_cli("prepare_dataset", "personas", "--input_dir", str(docs),
                                                "--output_dir", "o", "--styles", "pirate", cwd=tmp_path))
