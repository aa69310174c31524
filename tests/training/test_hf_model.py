"""The same Trainer on a transformers model (LlamaForCausalLM): trains, saves with its own save_pretrained,
resumes exactly. No code path knows which kind of model it holds."""

from __future__ import annotations

import pytest
import torch

from training import Trainer

transformers = pytest.importorskip("transformers")
FAST = {"device": "cpu", "progress_bar": False, "tensorboard": False, "plot": False}


def _llama():
    torch.manual_seed(0)
    config = transformers.LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                      num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=32)
    return transformers.LlamaForCausalLM(config)


def test_hf_llama_trains_saves_and_resumes_exactly(toy, tmp_path):
    def run(directory, resume=None):
        model = _llama()
        train, val = toy.loaders(n_train=32, batch_size=4)
        result = Trainer(model=model, train_dataloader=train, val_dataloader=val, learning_rate=3e-3,
                         checkpoint_dir=directory, save_every=3, early_stopping_patience=None,
                         **FAST).train(epochs=2, resume_from_checkpoint=resume)
        return result, model

    full, model = run(tmp_path / "full")
    assert full["history"][-1]["train_loss"] < full["history"][0]["train_loss"]
    reloaded = transformers.LlamaForCausalLM.from_pretrained(str(tmp_path / "full" / "final"))
    ids = torch.tensor([[1, 2, 3, 4]])
    with torch.no_grad():
        torch.testing.assert_close(reloaded(ids).logits, model.eval()(ids).logits)
    resumed, other = run(tmp_path / "resumed", resume=tmp_path / "full" / "checkpoint-12")
    assert resumed["history"] == full["history"]
    assert all(torch.equal(a, b) for a, b in zip(other.parameters(), model.parameters()))
