"""main.py serve: started as a subprocess it prints the URL, the model names and a curl example, answers
/health, /v1/models and /predict on 127.0.0.1, and stops on SIGINT; a non-loopback --host without --api_key
warns (checked in-process, nothing is bound); bad flags are one line on stderr, exit 2."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import torch

import main as cli
import minillm
from tokenizers_bpe import BPETokenizer

from .cli_helpers import REPO, run_cli

LINES = ["The king and the queen spoke to the people about bread and wine.",
         "The river ran past the old mill under a grey sky."]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """One of our tiny decoders with its tokenizer (ChatML template), saved as a checkpoint directory."""
    directory = tmp_path_factory.mktemp("cli-serve") / "tiny-model"
    tokenizer = BPETokenizer(vocab_size=300, show_progress=False).train(LINES * 4)
    config = minillm.ModelConfig.from_preset("tiny", vocab_size=tokenizer.vocab_size, d_model=32, num_heads=2,
                                             num_layers=1, max_seq_len=128, eos_token_id=tokenizer.eos_token_id,
                                             pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(0)
    minillm.DecoderOnlyModel(config).save_pretrained(directory)
    tokenizer.save(directory)
    return directory


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_serve_subprocess_answers_and_stops(model_dir, tmp_path):
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen([sys.executable, str(REPO / "main.py"), "serve", "--model-path", str(model_dir),
                                "--port", str(port), "--log-level", "warning", "--device", "cpu"],
                               cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, process.communicate()[1]
            assert time.monotonic() < deadline, "the server did not come up"
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        assert [m["id"] for m in httpx.get(f"{url}/v1/models", timeout=10).json()["data"]] == ["tiny-model"]
        answer = httpx.post(f"{url}/predict", json={"question": "the king", "max_tokens": 4}, timeout=60)
        assert answer.status_code == 200 and isinstance(answer.json()["response"], str)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            out, err = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            out, err = process.communicate()
    assert process.returncode == 130 and "Traceback" not in err, err  # uvicorn shut down, then main's Ctrl-C exit
    assert f"serving tiny-model on {url}" in out and f"curl -s {url}/predict" in out
    assert "warning" not in err.lower()


def test_public_host_without_key_warns(model_dir, monkeypatch, capsys):
    import uvicorn

    bound = []
    monkeypatch.setattr(uvicorn.Server, "run", lambda self: bound.append(self.config.host))
    assert cli.main(["serve", "--model_path", str(model_dir), "--host", "0.0.0.0", "--device", "cpu"]) == 0
    captured = capsys.readouterr()
    assert bound == ["0.0.0.0"]
    assert "warning: --host 0.0.0.0" in captured.err and "--api_key" in captured.err
    assert cli.main(["serve", "--model_path", str(model_dir), "--host", "0.0.0.0", "--api_key", "k",
                     "--device", "cpu"]) == 0
    captured = capsys.readouterr()
    assert "warning" not in captured.err and "Authorization: Bearer k" in captured.out


@pytest.mark.parametrize("flags, needle", [
    (["--port", "70000"], "--port"),
    (["--model_path", "no/such/model"], "no/such/model"),
    (["--adapter", "missing_adapter_dir/"], "missing_adapter_dir"),
])
def test_bad_flags_are_one_line(flags, needle, tmp_path):
    result = run_cli("serve", *flags, cwd=tmp_path, timeout=120)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and needle in lines[0]
    assert "Traceback" not in result.stderr
