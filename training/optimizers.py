"""The Trainer's optimizer: AdamW over the trainable parameters, decay on 2-D weights only, or any optimizer a
factory builds from the same parameter groups (QLoRA uses bitsandbytes' paged 8-bit AdamW this way).

>>> import bitsandbytes as bnb                                                  # doctest: +SKIP
>>> Trainer(..., optimizer_factory=lambda groups, lr: bnb.optim.PagedAdamW8bit(groups, lr=lr))  # doctest: +SKIP

Each group carries the names of its parameters (``param_names``), which checkpoints store so a resume can
refuse optimizer state that belongs to other parameters (see :mod:`training.trainer_state`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from minillm.errors import InputError

OptimizerFactory = Callable[[list[dict[str, Any]], float], torch.optim.Optimizer]


def parameter_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Trainable parameters in two groups: 2-D and larger weights decay, biases and norms do not.

    Each group is ``{"params": [...], "weight_decay": ..., "param_names": [...]}``; empty groups are dropped.
    """
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if not named:
        raise InputError(f"{type(model).__name__} has no parameter with requires_grad=True; nothing to train")
    groups = []
    for decays, decay in ((True, weight_decay), (False, 0.0)):
        chosen = [(n, p) for n, p in named if (p.dim() >= 2) == decays]
        if chosen:
            groups.append({"params": [p for _, p in chosen], "weight_decay": decay,
                           "param_names": [n for n, _ in chosen]})
    return groups


def build_optimizer(
    model: torch.nn.Module, learning_rate: float, weight_decay: float, betas: tuple[float, float], eps: float,
    factory: OptimizerFactory | None = None, name: str = "adamw", muon_lr: float = 0.02,
) -> torch.optim.Optimizer:
    """AdamW over :func:`parameter_groups`, ``factory(groups, learning_rate)`` when a factory is given, or with
    ``name="muon"`` :class:`training.muon.MuonAdamW` (Muon on the hidden matrices at ``muon_lr``)."""
    if name == "muon":
        from .muon import MuonAdamW, muon_and_adamw_groups

        return MuonAdamW(muon_and_adamw_groups(model, weight_decay), learning_rate, muon_lr, tuple(betas), eps)
    groups = parameter_groups(model, weight_decay)
    if factory is None:
        return torch.optim.AdamW(groups, lr=learning_rate, betas=tuple(betas), eps=eps)
    optimizer = factory(groups, learning_rate)
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise InputError(f"optimizer_factory returned {type(optimizer).__name__}, not a torch.optim.Optimizer")
    return optimizer

