"""FSDP for models that do not fit one GPU: ``Trainer(..., fsdp=True)`` under torchrun.

PyTorch's FSDP2 (``torch.distributed.fsdp.fully_shard``) shards every block of each ``nn.ModuleList`` (the
transformer layers, whatever the model calls them) and then the root, so each rank holds 1/world of the
parameters, gradients and optimizer state. Checkpoints keep the exact same format as a single-process run:
the full state dict and full optimizer state are gathered to rank 0 (``torch.distributed.checkpoint.state_dict``,
offloaded to CPU) and written there; resume and "restore best" give every rank the full tensors and let FSDP
keep its shard. One process (no torchrun) ignores the flag.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from minillm.errors import InputError


def shard_model(model: nn.Module) -> nn.Module:
    """Apply ``fully_shard`` to each block of every ModuleList, then to the root (in place)."""
    from torch.distributed.fsdp import fully_shard

    for module in list(model.modules()):
        if isinstance(module, nn.ModuleList):
            for block in module:
                fully_shard(block)
    fully_shard(model)
    return model


def _options(full: bool = True):
    from torch.distributed.checkpoint.state_dict import StateDictOptions

    return StateDictOptions(full_state_dict=full, cpu_offload=True)


def full_model_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The whole model's state dict on rank 0 (empty elsewhere). Collective: every rank must call it."""
    from torch.distributed.checkpoint.state_dict import get_model_state_dict

    return get_model_state_dict(model, options=_options())


def full_optimizer_state(model: nn.Module, optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """Optimizer state keyed by parameter name, split into tensors and JSON metadata. Collective."""
    from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict

    osd = get_optimizer_state_dict(model, optimizer, options=_options())
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for name, entry in osd.get("state", {}).items():
        for key, value in entry.items():
            if torch.is_tensor(value):
                tensors[f"state.{name}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars.setdefault(name, {})[key] = value
    groups = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()} for g in osd.get("param_groups", [])]
    return tensors, {"param_groups": groups, "scalars": scalars, "keyed_by": "name"}


def load_full_optimizer(model: nn.Module, optimizer: torch.optim.Optimizer, tensors: dict, meta: dict) -> None:
    """Give every rank the full optimizer state; FSDP keeps this rank's shard. Collective."""
    from torch.distributed.checkpoint.state_dict import set_optimizer_state_dict

    if meta.get("keyed_by") != "name":
        raise InputError("this checkpoint's optimizer state was not written by an fsdp=True run; resume it without fsdp")
    state: dict[str, dict[str, Any]] = {}
    for key, value in tensors.items():
        name, field = key[len("state.") :].rsplit(".", 1)
        state.setdefault(name, {})[field] = value
    for name, entry in meta["scalars"].items():
        state.setdefault(name, {}).update(entry)
    groups = [{**g, "betas": tuple(g["betas"])} if isinstance(g.get("betas"), list) else g for g in meta["param_groups"]]
    set_optimizer_state_dict(model, optimizer, {"state": state, "param_groups": groups},
                             options=_options())


def load_full_trainable(model: nn.Module, tensors: dict[str, torch.Tensor]) -> None:
    """Copy saved trainable parameters (full tensors) into the sharded model. Collective."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict

    set_model_state_dict(model, tensors, options=StateDictOptions(full_state_dict=True, strict=False))


@contextlib.contextmanager
def state_dict_override(model: nn.Module, state: dict[str, torch.Tensor] | None) -> Iterator[None]:
    """Make ``model.state_dict()`` return ``state`` for the duration (so ``save_pretrained`` writes full weights)."""
    if state is None:
        yield
        return
    model.state_dict = lambda *args, **kwargs: state  # instance attribute shadows the method
    try:
        yield
    finally:
        del model.state_dict


@contextlib.contextmanager
def gradient_sync_off(model: nn.Module) -> Iterator[None]:
    """FSDP2's ``no_sync``: accumulate gradients locally for the micro-batches before the last."""
    model.set_requires_gradient_sync(False)
    try:
        yield
    finally:
        model.set_requires_gradient_sync(True)
