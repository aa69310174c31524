"""prepare_dataset personas: styles and prompts, a tiny local model through its chat template, an
OpenAI-compatible endpoint served here, splits and resume without duplicates."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
import torch

from minillm import DecoderOnlyModel
from minillm.errors import InputError
from tokenizers_bpe import BPETokenizer
from training.datasets import (
    STYLES,
    BuildConfig,
    GenerationSettings,
    LocalGenerator,
    OpenAIGenerator,
    build_keyed,
    read_documents,
    resolve_styles,
)


def write_papers(root: Path, n: int = 4) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (root / f"p{i}.md").write_text(f"# Study {i}\n\n## Abstract\nWe measured effect {i} in a trial of mice.\n")
    return root


def read_rows(out: Path) -> list[dict]:
    return [json.loads(line) for name in ("train", "val") for line in (out / f"{name}.jsonl").read_text().splitlines()]


def test_styles_have_their_prompts():
    assert list(STYLES) == ["eli5", "intuitive", "executive"]
    assert "10-year-old" in STYLES["eli5"].system_prompt and "jargon" in STYLES["eli5"].system_prompt
    assert "analog" in STYLES["intuitive"].system_prompt
    assert "Bottom line first" in STYLES["executive"].system_prompt and "3 bullet" in STYLES["executive"].system_prompt
    assert [s.name for s in resolve_styles(["executive", "eli5"])] == ["executive", "eli5"]
    with pytest.raises(InputError, match="unknown"):
        resolve_styles(["pirate"])


def test_local_tiny_model_with_chat_template_and_resume(tmp_path: Path):
    corpus = [f"We measured effect {i} in a trial of mice. Explain this research." for i in range(40)]
    tokenizer = BPETokenizer(vocab_size=320, show_progress=False).train(corpus)
    assert "<|im_start|>" in tokenizer.apply_chat_template([{"role": "user", "content": "hi"}],
                                                           add_generation_prompt=True)
    torch.manual_seed(0)
    model = DecoderOnlyModel({"vocab_size": tokenizer.vocab_size, "d_model": 32, "num_heads": 2, "num_layers": 1,
                              "max_seq_len": 512}).eval()
    generator = LocalGenerator(model, tokenizer, GenerationSettings(max_new_tokens=6, temperature=1.0, seed=1))
    docs = read_documents(write_papers(tmp_path / "in"))
    out = tmp_path / "out"
    config = {"output_dir": out, "builder": "personas", "styles": resolve_styles(None), "seed": 0}
    first = build_keyed(docs, BuildConfig(**config, max_items=5), generator)  # "killed" after 5 items
    assert (first.new_records, first.empty_replies) == (5, 0)
    before = {r["source"] + r["style"]: r for r in read_rows(out)}
    second = build_keyed(docs, BuildConfig(**config), generator)
    assert second.resumed_records == first.new_records and generator.calls == 12
    rows = read_rows(out)
    assert len(rows) == len({(r["source"], r["style"]) for r in rows}) == 12 - first.empty_replies - second.empty_replies
    assert all(before[k] == r for r in rows if (k := r["source"] + r["style"]) in before)  # earlier items unchanged
    for row in rows:
        system, user, assistant = row["messages"]
        assert system["content"] == STYLES[row["style"]].system_prompt
        assert "We measured effect" in user["content"] and assistant["role"] == "assistant"
    val_sources = {json.loads(line)["source"] for line in (out / "val.jsonl").read_text().splitlines()}
    train_sources = {json.loads(line)["source"] for line in (out / "train.jsonl").read_text().splitlines()}
    assert len(val_sources) == 1 and not val_sources & train_sources  # 15% of 4 documents, at least one


class _ChatServer(BaseHTTPRequestHandler):
    requests: ClassVar[list[dict]] = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append({"path": self.path, "body": body})
        style = next(n for n, s in STYLES.items() if s.system_prompt == body["messages"][0]["content"])
        reply = {"id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": body["model"],
                 "choices": [{"index": 0, "finish_reason": "stop",
                              "message": {"role": "assistant", "content": f"A {style} answer."}}],
                 "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}
        data = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def test_openai_compatible_endpoint(tmp_path: Path):
    _ChatServer.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ChatServer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}/v1"
        generator = OpenAIGenerator(base, "local-model", None, GenerationSettings(max_new_tokens=20))
        docs = read_documents(write_papers(tmp_path / "in", n=3))
        out = tmp_path / "out"
        styles = resolve_styles(["eli5", "executive"])
        build_keyed(docs, BuildConfig(output_dir=out, builder="personas", styles=styles, max_items=4), generator)
        result = build_keyed(docs, BuildConfig(output_dir=out, builder="personas", styles=styles), generator)
    finally:
        server.shutdown()
        server.server_close()
    assert len(_ChatServer.requests) == 6 and result.resumed_records == 4  # nothing asked twice
    first = _ChatServer.requests[0]
    assert first["path"] == "/v1/chat/completions" and first["body"]["model"] == "local-model"
    assert first["body"]["messages"][0] == {"role": "system", "content": STYLES["eli5"].system_prompt}
    assert first["body"]["max_tokens"] == 20
    rows = read_rows(out)
    assert sorted(r["messages"][2]["content"] for r in rows) == ["A eli5 answer."] * 3 + ["A executive answer."] * 3


def test_unreachable_endpoint_is_one_input_error(tmp_path: Path):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ChatServer)
    port = server.server_address[1]
    server.server_close()  # nothing listens there now
    generator = OpenAIGenerator(f"http://127.0.0.1:{port}/v1", "m", None)
    generator.client = generator.client.with_options(max_retries=0, timeout=5)
    with pytest.raises(InputError, match="request failed"):
        generator.reply([{"role": "user", "content": "hi"}])
