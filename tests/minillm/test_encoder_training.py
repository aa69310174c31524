"""A tiny EncoderOnlyModel learns a masked-LM toy task (alternating tokens) in a short AdamW run."""

from __future__ import annotations

import time

import pytest
import torch

from minillm import EncoderOnlyModel
from minillm.collators import MaskedLMCollator

PAD, CLS, SEP, MASK = 0, 1, 2, 3
FIRST, VOCAB = 4, 24
STEPS = 300


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models train fastest on one thread (and do not fight over shared cores)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _sequences(n: int, g: torch.Generator) -> list[list[int]]:
    """[CLS] a b a b ... [SEP]: two random tokens alternating, so every masked token follows from the others."""
    out = []
    for _ in range(n):
        a, b = torch.randint(FIRST, VOCAB, (2,), generator=g).tolist()
        length = int(torch.randint(6, 12, (1,), generator=g))
        out.append([CLS] + [a if i % 2 == 0 else b for i in range(length)] + [SEP])
    return out


@pytest.mark.slow
def test_mlm_toy_task_learns():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    model = EncoderOnlyModel({"model_type": "encoder_only", "vocab_size": VOCAB, "d_model": 32, "num_heads": 4,
                                  "num_layers": 2, "d_ff": 64, "max_seq_len": 32, "dropout": 0.0})
    collate = MaskedLMCollator(MASK, VOCAB, PAD, special_token_ids=[CLS, SEP], mlm_probability=0.25, seed=0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-3, weight_decay=0.01)
    losses = []
    started = time.perf_counter()
    model.train()
    for _ in range(STEPS):
        batch = collate(_sequences(32, g))
        loss = model(**batch).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    first, last = sum(losses[:10]) / 10, sum(losses[-10:]) / 10
    print(f"\nMLM toy: loss {first:.3f} -> {last:.3f} in {time.perf_counter() - started:.1f}s")
    assert last < 0.3 * first
    model.eval()
    batch = collate(_sequences(64, g))
    with torch.no_grad():
        logits = model.predict_mlm(batch["input_ids"], batch["attention_mask"])
    chosen = batch["labels"] != -100
    accuracy = (logits.argmax(-1)[chosen] == batch["labels"][chosen]).float().mean().item()
    assert accuracy > 0.8
