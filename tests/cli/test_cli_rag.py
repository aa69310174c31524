"""python main.py rag: build an index from .txt/.md/.jsonl, ask with --retrieve_only and with a tiny model, the
no-action default over the shipped PubMedQA sample, and bad input (exit 2, one line)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import main as cli
import minillm
from tokenizers_bpe import BPETokenizer

DOCS = {
    "notes/aspirin.txt": "Aspirin and the heart\n\nAspirin lowers the risk of a second heart attack. It thins the "
                         "blood.\n\nDoctors weigh the bleeding risk against the benefit.",
    "notes/sub/cells.md": "# Cell division\n\nCells divide when growth genes are switched on. Mitosis has four "
                          "phases.\n\n## Tumors\n\nTumors grow when division runs out of control.",
    "notes/papers.jsonl": "\n".join(json.dumps(r) for r in [
        {"text": "Vitamin D supplements did not reduce fractures in older adults in this trial.",
         "title": "Vitamin D and fractures", "pmid": "1"},
        {"text": "Regular exercise lowered blood pressure in patients with hypertension over a year.",
         "title": "Exercise and blood pressure", "pmid": "2"},
    ]) + "\n",
    "notes/figure.png": "not read: no reader for images",
}


@pytest.fixture()
def corpus(tmp_path) -> Path:
    for name, text in DOCS.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path / "notes"


@pytest.fixture(scope="module")
def index(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("rag-cli")
    for name, text in DOCS.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    code = cli.main(["rag", "build", "--docs", str(root / "notes"), "--index_path", str(root / "index"),
                     "--embedder", "hashed", "--min_chunk_length", "0"])
    assert code == 0
    return root / "index"


def run(argv: list[str], capsys) -> tuple[int, str, str]:
    code = cli.main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_line_error(argv: list[str], capsys) -> str:
    code, out, err = run(argv, capsys)
    assert code == 2, err
    assert out == "" and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    return err.strip()


def test_build_reads_text_markdown_and_jsonl_and_skips_what_it_cannot_read(corpus, tmp_path, capsys):
    code, _, err = run(["rag", "build", "--docs", str(corpus), "--index_path", str(tmp_path / "idx"),
                        "--embedder", "hashed", "--min_chunk_length", "0"], capsys)
    assert code == 0, err
    assert "indexed " in err and "from 4 document(s) in 3 file(s)" in err and "skipped 1 file(s)" in err
    from rag.document_store import SimpleDocumentStore

    store = SimpleDocumentStore.load(str(tmp_path / "idx"))
    hits = store.search("vitamin D fractures", top_k=1)
    assert hits[0].metadata["title"] == "Vitamin D and fractures" and hits[0].metadata["source"] == "papers.jsonl"
    assert hits[0].metadata["pmid"] == "1" and hits[0].metadata["line"] == 1
    heading = store.search("tumors division control", top_k=1)[0]
    assert heading.metadata["source"] == "sub/cells.md" and heading.metadata["title"] == "Cell division"
    assert heading.text.startswith("## Tumors")  # the semantic split cut at the Markdown heading


def test_ask_retrieve_only_prints_the_numbered_passages(index, capsys):
    code, out, err = run(["rag", "ask", "--index_path", str(index), "--query", "Does aspirin lower heart attack risk?",
                          "--retrieve_only", "--top_k", "2"], capsys)
    assert code == 0, err
    assert out.startswith("[1] ") and "\n[2] " in out and "[3] " not in out
    first = out.split("\n[2] ")[0]
    assert "aspirin.txt" in first and "Aspirin lowers the risk" in first and "(score " in first


def test_ask_with_a_tiny_model_prints_an_answer_and_its_sources(index, tmp_path, capsys):
    lines = [text for text in DOCS.values()] * 3
    tokenizer = BPETokenizer(vocab_size=500, show_progress=False)
    tokenizer.train(lines)
    config = minillm.ModelConfig.from_preset("tiny", vocab_size=tokenizer.vocab_size, d_model=32, num_heads=2,
                                             num_layers=1, max_seq_len=1024, eos_token_id=tokenizer.eos_token_id)
    torch.manual_seed(0)
    minillm.DecoderOnlyModel(config).save_pretrained(tmp_path / "model", tokenizer=tokenizer)
    code, out, err = run(["rag", "ask", "--index_path", str(index), "--query", "How do tumors grow?",
                          "--model_path", str(tmp_path / "model"), "--max_new_tokens", "6", "--temperature", "0",
                          "--device", "cpu"], capsys)
    assert code == 0, err
    _, sources = out.split("\nSources:\n")
    assert sources.startswith("[1] ") and "cells.md" in sources and "\n[3] " in sources


def test_no_action_indexes_the_shipped_sample_once_then_reuses_it(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("MINILLM_CACHE", str(tmp_path / "cache"))  # the sample index is cached here
    argv = ["rag", "--embedder", "hashed", "--retrieve_only", "--top_k", "1"]
    code, out, err = run(argv, capsys)
    assert code == 0, err
    assert "indexing the shipped PubMedQA dev abstracts once" in err and "indexed " in err
    assert out.startswith("Question: Can tailored interventions increase mammography use among HMO women?")
    assert "[1] Can tailored interventions increase mammography use among HMO women?" in out
    code, out_again, err = run(argv, capsys)
    assert code == 0 and "indexing" not in err and out_again == out


@pytest.mark.parametrize("argv, fragment", [
    (["rag", "ask", "--query", "x"], "rag ask needs --index_path"),
    (["rag", "ask", "--index_path", "idx"], "rag ask needs --query"),
    (["rag", "ask", "--index_path", "no/such/index", "--query", "x"], "no index at 'no/such/index'"),
    (["rag", "build", "--docs", "no/such/folder", "--index_path", "i"], "does not exist"),
    (["rag", "build", "--docs", "notes"], "rag build needs --index_path"),
    (["rag", "ask", "--index_path", "i", "--query", "x", "--top_k", "0"], "--top_k 0 is out of range"),
    (["rag", "ask", "--index_path", "i", "--query", " "], "--query is empty"),
    (["rag", "build", "--docs", "d", "--index_path", "i", "--overlap", "2000"], "--overlap 2000 is out of range"),
    (["rag", "search"], "invalid choice: 'search'"),
])
def test_bad_input_is_one_line_and_exit_2(argv, fragment, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert fragment in one_line_error(argv, capsys)


def test_unreadable_documents_are_one_line_errors(corpus, tmp_path, capsys):
    base = ["--index_path", str(tmp_path / "i"), "--embedder", "hashed"]
    err = one_line_error(["rag", "build", "--docs", str(corpus / "figure.png"), *base], capsys)
    assert "no reader for .png" in err and ".epub, .jsonl, .md, .pdf, .txt" in err
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "fine"}\n{"body": "no text field"}\n')
    err = one_line_error(["rag", "build", "--docs", str(bad), *base], capsys)
    assert "bad.jsonl:2 needs a string field 'text'" in err and "--text_field" in err
    bad.write_text("not json\n")
    assert "bad.jsonl:1 is not valid JSON" in one_line_error(["rag", "build", "--docs", str(bad), *base], capsys)
