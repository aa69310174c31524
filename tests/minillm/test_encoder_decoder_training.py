"""A tiny EncoderDecoderModel learns to copy short sequences in a short AdamW run."""

from __future__ import annotations

import time

import pytest
import torch

from minillm import EncoderDecoderModel
from minillm.collators import Seq2SeqCollator

PAD, EOS, FIRST, VOCAB = 0, 1, 2, 12
STEPS = 300


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models train fastest on one thread (and do not fight over shared cores)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _pairs(n: int, g: torch.Generator) -> list[tuple[list[int], list[int]]]:
    out = []
    for _ in range(n):
        length = int(torch.randint(2, 5, (1,), generator=g))
        source = torch.randint(FIRST, VOCAB, (length,), generator=g).tolist()
        out.append((source + [EOS], source + [EOS]))
    return out


@pytest.mark.slow
@pytest.mark.parametrize("ff", ["gated-gelu", "relu"])
def test_seq2seq_copy_task_learns(ff):
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    model = EncoderDecoderModel({"model_type": "encoder_decoder", "vocab_size": VOCAB, "d_model": 32, "num_heads": 4,
                                     "num_layers": 2, "d_ff": 64, "dropout": 0.0, "feed_forward_proj": ff,
                                     "pad_token_id": PAD, "eos_token_id": EOS, "decoder_start_token_id": PAD})
    collate = Seq2SeqCollator(pad_token_id=PAD, decoder_start_token_id=PAD)
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-3)
    losses = []
    started = time.perf_counter()
    model.train()
    for _ in range(STEPS):
        loss = model(**collate(_pairs(32, g))).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    first, last = sum(losses[:10]) / 10, sum(losses[-10:]) / 10
    print(f"\nseq2seq toy ({ff}): loss {first:.3f} -> {last:.3f} in {time.perf_counter() - started:.1f}s")
    assert last < 0.3 * first
    pairs = _pairs(16, g)
    batch = collate(pairs)
    out = model.generate(batch["input_ids"], batch["attention_mask"], max_new_tokens=7)
    correct = sum(out[i, 1 : 1 + len(t)].tolist() == t for i, (_, t) in enumerate(pairs))
    assert correct >= 8, out
