"""Fixtures for the server tests: a tiny decoder of ours with a BPE tokenizer (ChatML template), a tiny
transformers Llama with two LoRA adapters, and servers on 127.0.0.1 with a free port, always stopped."""

from __future__ import annotations

import contextlib
import dataclasses
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import peft
import pytest
import torch
import transformers
import uvicorn

import minillm
from scripts.serving.app import create_app
from scripts.serving.engine import Engine
from scripts.serving.served_models import ServedModel, serve_model
from tests.cli.tiny_hf import make_tiny_llama
from tokenizers_bpe import BPETokenizer

TEXTS = ["the king and the queen of the castle spoke to the people about bread and wine",
         "a grey sky over the old mill while the river ran past", "Question: what is the answer? Answer: yes",
         "Cells divide when genes that control growth express more protein."]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def running_server(app: Any) -> Iterator[str]:
    """Serve ``app`` in a background thread on 127.0.0.1; yields its base URL; always stops it."""
    config = uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning", lifespan="on",
                            timeout_keep_alive=5)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{config.port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def tiny_tokenizer() -> BPETokenizer:
    tokenizer = BPETokenizer(vocab_size=400, show_progress=False)
    tokenizer.train(TEXTS * 6)
    return tokenizer


def tiny_decoder(tokenizer: BPETokenizer, max_seq_len: int = 256) -> minillm.DecoderOnlyModel:
    """A random 2-layer decoder whose greedy text varies (weights far from the tiny init)."""
    config = minillm.ModelConfig.from_preset(
        "tiny", vocab_size=tokenizer.vocab_size, d_model=64, num_heads=4, num_layers=2, max_seq_len=max_seq_len,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id)
    torch.manual_seed(0)
    model = minillm.DecoderOnlyModel(config)
    with torch.no_grad():
        for param in model.parameters():
            if param.dim() == 2:
                param.normal_(std=0.3)
    return model.eval()


@pytest.fixture(scope="session")
def ours() -> ServedModel:
    tokenizer = tiny_tokenizer()
    return serve_model(tiny_decoder(tokenizer), tokenizer, "tiny")


@pytest.fixture(scope="session")
def ours_engine(ours) -> Engine:
    return Engine(ours, max_batch_size=8)


@pytest.fixture(scope="module")
def ours_url(ours_engine) -> Iterator[str]:
    with running_server(create_app(ours_engine, max_tokens_default=16)) as url:
        yield url


@pytest.fixture(scope="session")
def hf_with_adapters(tmp_path_factory) -> dict[str, Any]:
    """A tiny transformers Llama and two LoRA adapters on it (random lora_B, so each changes the output)."""
    root = tmp_path_factory.mktemp("serve-hf")
    base_dir = make_tiny_llama(root / "base")
    for seed, name in enumerate(("eli5", "terse")):
        base = transformers.AutoModelForCausalLM.from_pretrained(base_dir)
        model = peft.get_peft_model(base, peft.LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, task_type="CAUSAL_LM",
                                                          target_modules=["q_proj", "v_proj", "o_proj"]))
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for key, param in model.named_parameters():
                if "lora_B" in key:
                    param.copy_(torch.randn(param.shape, generator=generator) * 0.8)
        model.save_pretrained(root / name)
    return {"base": base_dir, "adapters": [("eli5", root / "eli5"), ("terse", root / "terse")]}


def load_hf_served(made: dict[str, Any], adapters: bool = True) -> ServedModel:
    from training.model_extraction import load_model_and_tokenizer

    model, tokenizer = load_model_and_tokenizer(str(made["base"]), device="cpu")
    return serve_model(model, tokenizer, Path(made["base"]).name, made["adapters"] if adapters else (),
                       base_name=str(Path(made["base"]).resolve()))


def slow_copy(served: ServedModel, seconds_per_token: float) -> ServedModel:
    """``served`` without EOS (so it generates to max_tokens), each step delayed: a stand-in for a big model."""
    slow = dataclasses.replace(served, eos_token_ids=[])
    make_stream = served.stream_function

    def stream_function():
        stream = make_stream()

        def delayed(*args, **kwargs):
            steps = stream(*args, **kwargs)
            try:
                for step in steps:
                    time.sleep(seconds_per_token)
                    yield step
            finally:
                steps.close()

        return delayed

    slow.stream_function = stream_function  # type: ignore[method-assign]
    return slow
