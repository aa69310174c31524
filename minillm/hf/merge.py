"""Merge a LoRA adapter into a full-precision base: never into 4-bit weights.

An adapter trained on a 4-bit base is merged into the base de-quantized from those same 4-bit weights, so the
merged model computes what the trained model computed (``merge_into="quantized"``, the default);
``merge_into="original"`` takes the original full-precision weights instead. The largest logits difference
between the merged model and the adapter model on a probe input is returned, so callers can show it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from minillm.errors import InputError

from .loading import (
    LoraOptions,
    load_causal_lm,
    load_hf_model,
    model_directory,
    read_adapter_base,
    require_peft,
    torch_dtype,
)
from .quantization import dequantize_weight

MERGE_INTO = ("quantized", "original")


def merge_adapter(adapter_dir: str | os.PathLike, base_model: str | None = None, merge_into: str = "quantized",
                  dtype: str = "float32", device: str = "cpu") -> tuple[Any, float]:
    """``(merged transformers model, largest |logits difference| against the adapter model)``."""
    if merge_into not in MERGE_INTO:
        raise InputError(f"merge_into must be one of {', '.join(MERGE_INTO)}, got {merge_into!r}")
    peft = require_peft()
    saved_base, quantized = read_adapter_base(Path(adapter_dir))
    base = base_model or saved_base
    options = LoraOptions(dtype=dtype)
    trained = load_hf_model(adapter_dir, options, device=device, trainable=False)
    full = load_causal_lm(model_directory(base), LoraOptions(dtype=dtype), device)
    if quantized and merge_into == "quantized":
        _copy_dequantized(trained.get_base_model(), full, torch_dtype(dtype))
    merged = peft.PeftModel.from_pretrained(full, str(adapter_dir)).merge_and_unload()
    merged.eval()
    trained.eval()
    probe = torch.arange(min(32, merged.config.vocab_size), device=merged.device)[None, :]  # (1, T)
    with torch.no_grad():
        difference = (merged(input_ids=probe).logits.float() - trained(input_ids=probe).logits.float()).abs().max()
    return merged, float(difference)


def _copy_dequantized(quantized_model: torch.nn.Module, full: torch.nn.Module, dtype: torch.dtype) -> None:
    """Put the de-quantized 4-bit weights of ``quantized_model`` into the same-named layers of ``full``."""
    copied = 0
    for name, module in quantized_model.named_modules():
        if getattr(getattr(module, "weight", None), "quant_state", None) is None:
            continue
        target = full.get_submodule(name.removesuffix(".base_layer"))
        with torch.no_grad():
            target.weight.copy_(dequantize_weight(module).to(dtype).reshape(target.weight.shape))
        copied += 1
    if not copied:
        raise InputError("the adapter's base was recorded as 4-bit but no 4-bit layer was loaded; pass merge_into='original'")
