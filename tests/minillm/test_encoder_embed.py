"""embed() is deterministic (no dropout) even when the model is in training mode, and keeps the mode."""

from __future__ import annotations

import torch

from minillm import EncoderOnlyModel


def test_embed_turns_dropout_off_and_restores_training_mode():
    torch.manual_seed(0)
    model = EncoderOnlyModel({"model_type": "encoder_only", "vocab_size": 50, "d_model": 32, "num_heads": 2,
                              "num_layers": 2, "max_seq_len": 16, "dropout": 0.5}).train()
    ids = torch.randint(0, 50, (2, 7))
    mask = torch.ones_like(ids)
    first, second = model.embed(ids, mask), model.embed(ids, mask)
    assert model.training
    torch.testing.assert_close(first, second)
    torch.testing.assert_close(first, model.eval().embed(ids, mask))
