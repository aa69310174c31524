"""The whole paper workflow offline, as a user runs it, on tiny budgets:

PDFs from ../shared -> text (``extract_text``) -> instruction pairs (``prepare_dataset``) -> a short QLoRA run on
SmolLM2 (``train``) -> baseline and fine-tuned evaluation and their report (``evaluate``, ``compare``) -> the
adapter merged into an HF directory and a GGUF file (``extract``) -> a RAG index of the same papers (``rag
build``) -> the GGUF served over the OpenAI API with cited sources (``serve``, the ``openai`` client).

What the engines users scale out with load is checked on the way: transformers opens the merged HF directory (the
one vLLM and TGI serve) and llama.cpp opens the GGUF (the one ``llama-server`` and Ollama serve), and the two agree
with each other on the greedy continuation of a prompt.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.cli.cli_helpers import REPO, run_cli

pytestmark = [pytest.mark.slow, pytest.mark.shared_data]

PAPERS = ("bitcoin.pdf", "paxos-made-simple.pdf")
BANK = [
    {"id": "q1", "category": "consensus", "difficulty": "easy", "question": "What problem does Paxos solve?",
     "answer": "Paxos lets a set of processes agree on a single value despite failures.",
     "keywords": ["consensus", "value", "agree"]},
    {"id": "q2", "category": "bitcoin", "difficulty": "easy",
     "question": "How does Bitcoin prevent double-spending?",
     "answer": "A peer-to-peer network timestamps transactions into a proof-of-work chain.",
     "keywords": ["proof-of-work", "timestamp", "chain"]},
]
GREEDY_TOKENS = 8


def _ok(result: subprocess.CompletedProcess, what: str) -> subprocess.CompletedProcess:
    assert result.returncode == 0, f"{what} failed ({result.returncode}):\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    return result


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_healthy(url: str, server: subprocess.Popen, seconds: float = 240) -> None:
    import httpx

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"the server exited with {server.returncode}: {server.stderr.read()[-3000:]}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"the server at {url} did not become healthy in {seconds} s")


def _transformers_greedy(model_dir: Path, ids: list[int]) -> list[int]:
    import torch
    import transformers

    model = transformers.AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    with torch.no_grad():
        out = model.generate(torch.tensor([ids]), max_new_tokens=GREEDY_TOKENS, min_new_tokens=GREEDY_TOKENS,
                             do_sample=False)
    return out[0, len(ids):].tolist()


def _llama_cpp_greedy(gguf: Path, ids: list[int]) -> list[int]:
    """Greedy tokens from llama.cpp (argmax of its logits; never stopping at eos), F32 KV cache."""
    import llama_cpp
    import numpy as np

    llm = llama_cpp.Llama(model_path=str(gguf), n_ctx=256, verbose=False, n_threads=2,
                          type_k=llama_cpp.GGML_TYPE_F32, type_v=llama_cpp.GGML_TYPE_F32)
    llm.eval(ids)
    tokens: list[int] = []
    for _ in range(GREEDY_TOKENS):
        logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm.ctx, -1), shape=(llm.n_vocab(),))
        tokens.append(int(np.argmax(logits)))
        llm.eval([tokens[-1]])
    return tokens


def test_papers_to_served_answers(tmp_path, shared_data):
    papers = tmp_path / "papers"
    papers.mkdir()
    for name in PAPERS:
        shutil.copy(shared_data / "papers-pdf" / name, papers / name)
    started = time.perf_counter()

    _ok(run_cli("extract_text", "--input-dir", str(papers), "--output-dir", str(tmp_path / "text"), cwd=tmp_path),
        "extract_text")
    texts = sorted((tmp_path / "text").glob("*.txt"))
    assert [t.stem for t in texts] == sorted(Path(p).stem for p in PAPERS)
    assert "# Bitcoin: A Peer-to-Peer Electronic Cash System" in (tmp_path / "text" / "bitcoin.txt").read_text()

    _ok(run_cli("prepare_dataset", "instructions", "--input_dir", str(tmp_path / "text"), "--output_dir",
                str(tmp_path / "data"), cwd=tmp_path), "prepare_dataset")
    train = json.loads((tmp_path / "data" / "train.json").read_text())
    val = json.loads((tmp_path / "data" / "val.json").read_text())
    assert train and val and {"input", "output"} <= set(train[0])
    assert {r["source"] for r in train}.isdisjoint({r["source"] for r in val})  # split by paper

    run = tmp_path / "qlora"
    _ok(run_cli("train", "--model", "smollm2", "--qlora", "--train_data", str(tmp_path / "data" / "train.json"),
                "--eval_data", str(tmp_path / "data" / "val.json"), "--output_dir", str(run), "--max_steps", "2",
                "--max_seq_len", "128", "--batch_size", "2", "--gradient_accumulation_steps", "1", "--eval_steps",
                "1", cwd=tmp_path, timeout=900), "train --qlora")
    assert (run / "best" / "adapter_config.json").is_file()

    bank = tmp_path / "bank.json"
    bank.write_text(json.dumps(BANK))
    for label, extra in (("baseline", []), ("qlora", ["--adapter", str(run / "best")])):
        _ok(run_cli("evaluate", "--questions", str(bank), "--model_path", "smollm2", *extra, "--label", label,
                    "--output", str(tmp_path / "results" / f"{label}.json"), "--max_new_tokens", "12",
                    cwd=tmp_path), f"evaluate {label}")
    _ok(run_cli("compare", str(tmp_path / "results" / "baseline.json"), str(tmp_path / "results" / "qlora.json"),
                "--output_dir", str(tmp_path / "report"), cwd=tmp_path), "compare")
    report = (tmp_path / "report" / "comparison.md").read_text()
    assert "baseline" in report and "qlora" in report
    assert (tmp_path / "report" / "comparison.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    merged, gguf = tmp_path / "merged", tmp_path / "merged.gguf"
    _ok(run_cli("extract", "--model_path", str(run / "best"), "--output_path", str(merged), cwd=tmp_path),
        "extract hf")
    _ok(run_cli("extract", "--model_path", str(run / "best"), "--output_path", str(gguf), "--dtype", "f16",
                cwd=tmp_path), "extract gguf")
    assert (gguf.with_suffix(".Modelfile")).is_file()
    from minillm.hf.tokenizer import HFTokenizer

    ids = HFTokenizer.load(merged).encode("The Paxos algorithm")
    theirs, llama_cpp_tokens = _transformers_greedy(merged, ids), _llama_cpp_greedy(gguf, ids)
    agree = next((i for i, (a, b) in enumerate(zip(theirs, llama_cpp_tokens)) if a != b), GREEDY_TOKENS)
    assert agree >= GREEDY_TOKENS - 2, (theirs, llama_cpp_tokens)  # f16 weights: the last steps may round apart

    _ok(run_cli("rag", "build", "--docs", str(tmp_path / "text"), "--index_path", str(tmp_path / "index"),
                cwd=tmp_path), "rag build")

    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    server = subprocess.Popen([sys.executable, str(REPO / "main.py"), "serve", "--model_path", str(gguf),
                               "--index_path", str(tmp_path / "index"), "--port", str(port), "--log_level",
                               "warning"], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
    try:
        _wait_healthy(url, server)
        import openai

        client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused")
        names = [m.id for m in client.models.list().data]
        reply = client.chat.completions.create(model=names[0], max_tokens=24, temperature=0,
                                               messages=[{"role": "user", "content": "What problem does Paxos solve?"}])
        assert reply.choices[0].message.content.strip()
        assert reply.usage.completion_tokens >= 1
        sources = reply.model_extra["sources"]
        assert sources and {s["source"] for s in sources} <= {"bitcoin.txt", "paxos-made-simple.txt"}
        assert sources[0]["source"] == "paxos-made-simple.txt"  # the question is about Paxos
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    minutes = (time.perf_counter() - started) / 60
    print(f"end to end: {minutes:.1f} min")
