"""Subprocess entry for the DDP QLoRA test: ``torchrun --nproc_per_node=2 worker_qlora.py MODEL_DIR OUT_DIR``.

Each rank loads its own 4-bit base with a LoRA adapter (as ``main.py train --qlora`` does), the Trainer runs DDP
over gloo, and every rank writes the adapter weights it ends with to ``OUT_DIR/rank{r}.safetensors``.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root, for tests.cli.tiny_hf

from tests.cli.tiny_hf import instruction_records
from training import Trainer, create_dataloaders, load_model_and_tokenizer
from training.trainer_state import trainable_state


def main() -> None:
    model_dir, out = Path(sys.argv[1]), Path(sys.argv[2])
    torch.set_num_threads(1)
    logging.basicConfig(level=logging.WARNING)
    torch.manual_seed(0)  # the same LoRA start on every rank (DDP also broadcasts rank 0's)
    model, tokenizer = load_model_and_tokenizer(model_dir, device="cpu", use_qlora=True, lora_r=4, lora_alpha=8,
                                                dtype="float32")
    train, val = create_dataloaders(instruction_records(32), instruction_records(8, seed=5), tokenizer,
                                    batch_size=2, max_length=48, packing=False)
    trainer = Trainer(model=model, train_dataloader=train, val_dataloader=val, learning_rate=3e-3,
                      checkpoint_dir=out / "run", device="cpu", early_stopping_patience=None, max_steps=4,
                      progress_bar=False, tensorboard=False, plot=False)
    result = trainer.train(epochs=1)
    save_file(trainable_state(model), str(out / f"rank{trainer.dist.rank}.safetensors"))
    if trainer.dist.is_main:
        (out / "result.json").write_text(json.dumps({k: result[k] for k in ("global_step", "history")}))


if __name__ == "__main__":
    main()
