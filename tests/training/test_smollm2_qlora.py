"""QLoRA on real weights: SmolLM2-135M from its package, 4-bit NF4 under peft's LoRA, trained by our Trainer.
Held-out loss falls, only LoRA parameters train, and the saved adapter reloads to identical logits."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from training import Trainer, create_dataloaders, load_model_and_tokenizer

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.cli.tiny_hf import instruction_records

bnb = pytest.importorskip("bitsandbytes")
pytestmark = pytest.mark.slow


def test_smollm2_qlora_learns_and_its_adapter_reloads_exactly(tmp_path):
    torch.manual_seed(0)
    model, tokenizer = load_model_and_tokenizer("smollm2-135m", use_qlora=True, lora_r=8, lora_alpha=16,
                                                device="cpu")
    quantized = [m for m in model.modules() if isinstance(m, bnb.nn.Linear4bit)]
    assert len(quantized) == 30 * 7  # the seven projections of all 30 layers
    trainable = {n: p.numel() for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    train, val = create_dataloaders(instruction_records(48), instruction_records(16, seed=5), tokenizer,
                                    batch_size=4, max_length=64, packing=False)
    trainer = Trainer(model=model, train_dataloader=train, val_dataloader=val, learning_rate=1e-3,
                      checkpoint_dir=tmp_path / "run", device="cpu", early_stopping_patience=None, max_steps=10,
                      eval_every=5, warmup_steps=0, progress_bar=False, tensorboard=False, plot=False)
    untrained = trainer.evaluate()
    losses = [h["val_loss"] for h in trainer.train(epochs=1)["history"]]
    assert len(losses) == 2 and losses[-1] < 0.8 * untrained, (untrained, losses)
    print(f"SmolLM2 QLoRA held-out loss: {untrained:.3f} before, {losses} after 5 / 10 steps")
    again, _ = load_model_and_tokenizer(tmp_path / "run" / "final", trainable=False, device="cpu")
    ids = torch.tensor([tokenizer.encode("Does the gene study show an effect?")])
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(again.eval()(input_ids=ids).logits, model(input_ids=ids).logits, rtol=0, atol=0)
