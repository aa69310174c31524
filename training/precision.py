"""Mixed-precision policy: which autocast dtype (if any) a run uses, and the grad scaler fp16 needs."""

from __future__ import annotations

import contextlib
from typing import Any

import torch

from minillm.devices import bf16_is_fast
from minillm.errors import InputError


def precision_policy(mode: str | None, device: torch.device) -> tuple[torch.dtype | None, Any]:
    """``(autocast dtype or None, GradScaler or None)`` for ``mixed_precision=mode`` on ``device``.

    ``"auto"`` is bf16 where the hardware runs it natively (CUDA with bf16, CPUs with AVX512-BF16/AMX), else full
    precision; ``"fp16"`` needs CUDA and brings a grad scaler; ``"bf16"`` works on CUDA with bf16, CPU and MPS.
    """
    kind = device.type
    if mode == "auto":
        mode = "bf16" if bf16_is_fast(device) else None
    if mode is None:
        return None, None
    if mode == "fp16":
        if kind != "cuda":
            raise InputError(f"mixed_precision='fp16' needs CUDA (device is {kind}); use 'bf16' or None")
        return torch.float16, torch.amp.GradScaler("cuda")
    if kind == "cuda" and not torch.cuda.is_bf16_supported():
        raise InputError("mixed_precision='bf16' but this GPU has no bf16 support; use 'fp16'")
    return torch.bfloat16, None


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """``torch.autocast`` for ``dtype`` on ``device``, or a no-op context when ``dtype`` is None."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)
