"""Checks shared by the eager and the compiled decoding tests: every step's logits against the uncached forward."""

from __future__ import annotations

import torch
from torch.testing import assert_close

from minillm.generation import GenerationSettings


def padded_prompt(generator: torch.Generator, vocab: int = 128) -> tuple[torch.Tensor, torch.Tensor]:
    """Three prompts of 7 tokens (B=3, T=7), the second left-padded by 3 and the third by 1, and their mask."""
    ids = torch.randint(3, vocab, (3, 7), generator=generator)
    mask = torch.ones_like(ids)
    mask[1, :3] = 0
    mask[2, :1] = 0
    return ids, mask


def steps_match_forward(model, ids: torch.Tensor, mask: torch.Tensor | None, steps: int, atol: float,
                        generator: torch.Generator, compile: bool = False) -> None:
    """Feed ``steps`` arbitrary tokens through the generation step; each step's logits must equal the uncached
    forward over the whole sequence so far (within ``atol``, compared in float32)."""
    step, first, _ = model.prepare_generation(ids, mask, GenerationSettings(max_new_tokens=steps, compile=compile))
    seq, full_mask, current = ids, mask, first
    with torch.inference_mode():
        for _ in range(steps):
            logits = step(current)
            expected = model(input_ids=seq, attention_mask=full_mask).logits[:, -1]
            assert_close(logits.float(), expected.float(), atol=atol, rtol=atol)
            current = torch.randint(3, model.config.vocab_size, (ids.shape[0], 1), generator=generator)
            seq = torch.cat([seq, current], dim=1)
            if full_mask is not None:
                full_mask = torch.cat([full_mask, torch.ones_like(current)], dim=1)
