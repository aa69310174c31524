"""Estimated training time: tokens in the dataset / tokens per second measured on the target model.

The throughput is measured over a few real optimizer steps (forward, backward, AdamW step) on a batch of windows
cut from the produced texts, after one warm-up step. The target is ``main.py train``'s default from-scratch
decoder (preset ``tiny``, vocabulary 4096, 128-token rows, batch 32) unless ``model`` names another (an alias such
as ``smollm2``, one of our checkpoints or an HF directory: anything
:func:`training.model_extraction.load_model_and_tokenizer` loads). The default decoder's BPE is not trained yet:
its tokens are counted with a BPE of the same size trained here on a sample of the texts (up to
``TOKENIZER_SAMPLE_CHARS``), which the summary says. Datasets larger than ``EXACT_COUNT_CHARS`` are counted on a
sample and scaled by characters.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from minillm.errors import InputError

logger = logging.getLogger(__name__)

DEFAULT_VOCAB = 4096
DEFAULT_SEQ_LEN = 128
DEFAULT_BATCH = {"default": 32, "pretrained": 4}
TOKENIZER_SAMPLE_CHARS = 1_000_000
EXACT_COUNT_CHARS = 5_000_000


@dataclass
class Estimate:
    """The estimate and how it was made."""

    tokens: int
    tokens_how: str
    tokens_per_second: float
    model: str

    @property
    def minutes_per_epoch(self) -> float:
        return self.tokens / self.tokens_per_second / 60.0

    def line(self) -> str:
        return (f"~{self.tokens:,} tokens ({self.tokens_how}), ~{self.tokens_per_second:,.0f} tokens/s measured on "
                f"{self.model} -> ~{self.minutes_per_epoch:.1f} min per epoch")


def _sample(texts: list[str], chars: int) -> list[str]:
    picked, used = [], 0
    for text in texts:
        if used >= chars:
            break
        picked.append(text)
        used += len(text)
    return picked


def default_target(texts: list[str], seed: int = 42) -> tuple[Any, Any, str]:
    """``main.py train``'s default decoder (untrained) and a same-size BPE trained on a sample of ``texts``."""
    import torch

    from minillm import DecoderOnlyModel, ModelConfig
    from tokenizers_bpe import BPETokenizer

    tokenizer = BPETokenizer(vocab_size=DEFAULT_VOCAB, show_progress=False).train(
        _sample(texts, TOKENIZER_SAMPLE_CHARS))
    config = ModelConfig.from_preset("tiny", vocab_size=tokenizer.vocab_size, max_seq_len=DEFAULT_SEQ_LEN,
                                     dropout=0.1, bos_token_id=tokenizer.bos_token_id,
                                     eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(seed)
    return DecoderOnlyModel(config), tokenizer, "the default decoder (preset tiny)"


def count_tokens(tokenizer: Any, texts: list[str]) -> tuple[int, str]:
    """The tokens of ``texts`` and how they were counted (exactly, or from a sample scaled by characters)."""
    total_chars = sum(len(t) for t in texts)
    if total_chars <= EXACT_COUNT_CHARS:
        return sum(len(tokenizer.encode(t)) for t in texts), "counted"
    sample = _sample(texts, EXACT_COUNT_CHARS // 5)
    sample_chars = sum(len(t) for t in sample)
    tokens = sum(len(tokenizer.encode(t)) for t in sample)
    return round(tokens * total_chars / sample_chars), f"estimated from a {sample_chars:,}-character sample"


def _batch(tokenizer: Any, texts: list[str], batch_size: int, seq_len: int) -> Any:
    """(batch_size, seq_len) token ids cut from the texts (repeated when they are short)."""
    import torch

    stream: list[int] = []
    need = batch_size * seq_len
    for text in texts:
        stream += tokenizer.encode(text)
        if len(stream) >= need:
            break
    if not stream:
        raise InputError("the texts encode to no tokens; nothing to measure the throughput on")
    while len(stream) < need:
        stream += stream
    return torch.tensor(stream[:need], dtype=torch.long).view(batch_size, seq_len)


def context_length(model: Any) -> int | None:
    config = getattr(model, "config", None)
    for key in ("max_seq_len", "max_position_embeddings"):
        value = getattr(config, key, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def measure_tokens_per_second(model: Any, tokenizer: Any, texts: list[str], batch_size: int, seq_len: int,
                              steps: int = 3, device: str = "cpu") -> float:
    """Tokens per second over ``steps`` optimizer steps (after one warm-up step) on a batch of ``texts``."""
    import torch

    if steps < 1:
        raise InputError(f"--estimate_steps {steps} must be >= 1")
    limit = context_length(model)
    seq_len = min(seq_len, limit) if limit else seq_len
    batch = _batch(tokenizer, texts, batch_size, seq_len).to(device)
    model.to(device).train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-5)

    def step() -> None:
        loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    step()  # warm-up: allocations, lazy optimizer state
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - start
    return steps * batch.numel() / max(elapsed, 1e-9)


def estimate_training_time(texts: list[str], model: str | None = None, tokenizer_path: str | None = None,
                           batch_size: int | None = None, seq_len: int = DEFAULT_SEQ_LEN, steps: int = 3,
                           device: str = "cpu", seed: int = 42) -> Estimate:
    """Count the tokens of ``texts`` and measure the target model's training throughput on them."""
    if not texts:
        raise InputError("no training records to estimate the training time for")
    if model is None:
        target, tokenizer, name = default_target(texts, seed)
        kind = "default"
    else:
        from training.model_extraction import load_model_and_tokenizer

        target, tokenizer = load_model_and_tokenizer(model, tokenizer_path=tokenizer_path, device=device)
        if tokenizer is None:
            raise InputError(f"--model {model} has no tokenizer; pass --tokenizer_path")
        name, kind = str(model), "pretrained"
    tokens, how = count_tokens(tokenizer, texts)
    if model is None:
        how += f" with a {tokenizer.vocab_size}-token BPE trained on a sample, as train would train one"
    speed = measure_tokens_per_second(target, tokenizer, texts, batch_size or DEFAULT_BATCH[kind], seq_len, steps,
                                      device)
    logger.info("throughput %.0f tokens/s on %s", speed, name)
    return Estimate(tokens=tokens, tokens_how=how, tokens_per_second=speed, model=name)
