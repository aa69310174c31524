"""4-bit NF4 weights through bitsandbytes: the ``BitsAndBytesConfig`` QLoRA prescribes, and the same for our own
decoder (its projections swapped for ``bnb.nn.Linear4bit``), plus de-quantization for merging.

bitsandbytes is imported inside the functions; a missing install is a MissingDependencyError saying how to
install it.
"""

from __future__ import annotations

from typing import Any

import torch

from minillm.devices import bf16_is_fast
from minillm.errors import InputError, MissingDependencyError

INSTALL = "pip install 'minillm[qlora]' (bitsandbytes, peft, accelerate)"


def require_bitsandbytes() -> Any:
    """The ``bitsandbytes`` module, or a MissingDependencyError with the install command."""
    try:
        import bitsandbytes
    except ImportError as exc:
        raise MissingDependencyError(f"--qlora (4-bit weights) needs bitsandbytes: {INSTALL}") from exc
    return bitsandbytes


def compute_dtype(device: torch.device) -> torch.dtype:
    """bf16 where the hardware runs it natively (CUDA with bf16, AVX512-BF16/AMX CPUs), else float32."""
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
    return torch.bfloat16 if bf16_is_fast(device) else torch.float32


def bnb_config(device: torch.device, dtype: torch.dtype | None = None) -> Any:
    """``BitsAndBytesConfig(load_in_4bit, nf4, double quantization, compute dtype)`` as QLoRA prescribes."""
    require_bitsandbytes()
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                              bnb_4bit_compute_dtype=dtype or compute_dtype(device))


def quantize_linears(model: torch.nn.Module, names: tuple[str, ...], dtype: torch.dtype, device: torch.device) -> int:
    """Replace every ``nn.Linear`` whose name ends in one of ``names`` by a 4-bit NF4 ``bnb.nn.Linear4bit`` (double
    quantization) holding the same weights; returns how many were replaced. Used for our own decoder."""
    bnb = require_bitsandbytes()
    replaced = 0
    for parent_name, parent in list(model.named_modules()):
        for child_name, child in list(parent.named_children()):
            if not (isinstance(child, torch.nn.Linear) and child_name in names):
                continue
            quantized = bnb.nn.Linear4bit(child.in_features, child.out_features, bias=child.bias is not None,
                                          compute_dtype=dtype, compress_statistics=True, quant_type="nf4")
            quantized.weight = bnb.nn.Params4bit(child.weight.data.to("cpu", torch.float32).contiguous(),
                                                 requires_grad=False, compress_statistics=True, quant_type="nf4")
            if child.bias is not None:
                quantized.bias = torch.nn.Parameter(child.bias.data.clone(), requires_grad=False)
            setattr(parent, child_name, quantized.to(device))
            replaced += 1
    if not replaced:
        raise InputError(f"{type(model).__name__} has no nn.Linear named {', '.join(names)}; nothing to quantize")
    return replaced


def dequantize_weight(module: torch.nn.Module) -> torch.Tensor:
    """The full-precision weight a ``Linear4bit`` computes with (float32), or a plain Linear's weight."""
    weight = module.weight
    state = getattr(weight, "quant_state", None)
    if state is None:
        return weight.detach().float()
    bnb = require_bitsandbytes()
    return bnb.functional.dequantize_4bit(weight.data, state).float()


def is_quantized(model: torch.nn.Module) -> bool:
    """Whether any module holds 4-bit weights."""
    return any(getattr(getattr(m, "weight", None), "quant_state", None) is not None for m in model.modules())


def keep_training_layout(model: torch.nn.Module) -> int:
    """Stop bitsandbytes from repacking 4-bit weights for its CPU inference kernel; returns the layers touched.

    On CPUs with AVX512-BF16, ``Linear4bit`` repacks its weight the first time it runs in eval mode without
    gradients (an evaluation) and keeps the packed form for training afterwards, which computes slightly
    different products. A run's numbers would then depend on whether an evaluation came before a step, and a
    resumed run (fresh weights, no evaluation yet) would drift from the uninterrupted one, and a reloaded adapter
    would not reproduce the trained model's logits. Every 4-bit model the bridge loads keeps the one layout (CPU
    inference gives up that kernel's speed for reproducible numbers).
    """
    touched = 0
    for module in model.modules():
        if getattr(module, "support_avx512bf16_for_cpu", False):
            module.support_avx512bf16_for_cpu = False
            touched += 1
    return touched
