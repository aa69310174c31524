"""Put a saved adapter's weights back into a live peft model (the Trainer's "restore best" of a LoRA run)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from minillm.errors import InputError

ADAPTER_WEIGHTS = "adapter_model.safetensors"


def load_adapter_weights(model: Any, directory: Path) -> None:
    """Copy ``directory/adapter_model.safetensors`` into ``model``'s active adapter, in place.

    Every LoRA parameter the file should set must be present (peft reports the keys it could not place as
    ``unexpected_keys``): a mismatch raises InputError instead of leaving a half-restored model.
    """
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    file = Path(directory) / ADAPTER_WEIGHTS
    if not file.is_file():
        raise InputError(f"{file} is missing; the adapter folder is incomplete")
    peft_model = getattr(model, "module", model)  # DDP keeps the peft model in .module
    if not hasattr(peft_model, "peft_config"):
        raise InputError(f"{directory} holds an adapter but the model ({type(peft_model).__name__}) has none")
    with torch.no_grad():
        result = set_peft_model_state_dict(peft_model, load_file(str(file)))
    unexpected = list(getattr(result, "unexpected_keys", []) or [])
    if unexpected:
        raise InputError(f"{file} does not match the model's adapter: unexpected keys {unexpected[:3]}; load it "
                         "with the model and LoRA settings it was trained with")
