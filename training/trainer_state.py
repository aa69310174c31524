"""The ``trainer_state/`` folder of a checkpoint: everything besides the weights that exact resume needs.

Files (no pickle anywhere):

- ``trainable.safetensors``  the parameters that require grad, under the model's own names (what resume and
  "restore best" load back, so a 4-bit PEFT model only stores its adapters here and they stay trainable);
- ``optimizer.safetensors``  every tensor of the optimizer state (``state.<param index>.<key>``);
- ``rng.safetensors``        torch CPU / CUDA / MPS generator states, numpy's MT19937 key and the Trainer's own
  generators (the batch hook's); under torchrun each other rank's in ``rng-rank{r}.safetensors``;
- ``state.json``             step, epoch, data position, early-stopping state, metric history, schedule,
  optimizer param groups (with the parameter names they cover), grad-scaler state, python/numpy RNG scalars;
- ``COMPLETE``               written last; a checkpoint without it is never used.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from minillm.errors import InputError

STATE_DIR = "trainer_state"
MARKER = "COMPLETE"
TRAINABLE = "trainable.safetensors"
OPTIMIZER = "optimizer.safetensors"
RNG = "rng.safetensors"
STATE_JSON = "state.json"


# ----------------------------------------------------------------------------- weights
def trainable_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Parameters that require grad, detached on CPU (tied parameters appear once)."""
    return {n: p.detach().cpu().contiguous() for n, p in model.named_parameters() if p.requires_grad}


def load_trainable_state(model: torch.nn.Module, file: Path) -> None:
    """Copy saved trainable parameters into ``model`` in place (requires_grad flags are left untouched)."""
    saved = _read_safetensors(file)
    params = {n: p for n, p in model.named_parameters() if p.requires_grad}
    missing, extra = sorted(set(params) - set(saved)), sorted(set(saved) - set(params))
    if missing or extra:
        raise InputError(
            f"{file} does not match the model's trainable parameters: missing {missing[:5]}, unexpected "
            f"{extra[:5]}; resume with the same model and the same trainable parameters"
        )
    with torch.no_grad():
        for name, param in params.items():
            if saved[name].shape != param.shape:
                raise InputError(f"{file}: {name} has shape {tuple(saved[name].shape)}, model {tuple(param.shape)}")
            param.copy_(saved[name].to(param.device, param.dtype))


# ----------------------------------------------------------------------------- optimizer
def optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split ``optimizer.state_dict()`` into safetensors tensors and JSON metadata."""
    sd = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for index, entry in sd["state"].items():
        for key, value in entry.items():
            if torch.is_tensor(value):
                tensors[f"state.{index}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(index), {})[key] = value
    groups = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()} for g in sd["param_groups"]]
    return tensors, {"param_groups": groups, "scalars": scalars}


def load_optimizer(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    """Inverse of :func:`optimizer_tensors`."""
    if meta.get("keyed_by") == "name":
        raise InputError(
            "this checkpoint was written by an FSDP run (optimizer state keyed by parameter name); resume it under "
            "torchrun with fsdp=True, or load only its weights (e.g. continue_training) to go on without FSDP"
        )
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        _, index, name = key.split(".", 2)
        state.setdefault(int(index), {})[name] = value
    for index, entry in meta["scalars"].items():
        state.setdefault(int(index), {}).update(entry)
    groups = []
    for group in meta["param_groups"]:
        group = dict(group)
        if isinstance(group.get("betas"), list):
            group["betas"] = tuple(group["betas"])
        groups.append(group)
    current = optimizer.state_dict()["param_groups"]
    if [len(g["params"]) for g in current] != [len(g["params"]) for g in groups]:
        raise InputError(
            f"optimizer state has groups of {[len(g['params']) for g in groups]} parameters, the current optimizer "
            f"{[len(g['params']) for g in current]}; resume with the same model and trainable parameters"
        )
    check_parameter_names(groups, current)
    optimizer.load_state_dict({"state": state, "param_groups": groups})


def check_parameter_names(saved: list[dict[str, Any]], current: list[dict[str, Any]]) -> None:
    """Refuse optimizer state saved for other parameters: moments are restored by position, so two adapters in
    another order would get each other's. Checkpoints from before names were stored pass on sizes alone."""
    for index, (old, new) in enumerate(zip(saved, current, strict=True)):
        old_names, new_names = old.get("param_names"), new.get("param_names")
        if old_names is None or new_names is None or list(old_names) == list(new_names):
            continue
        at = next(i for i, (a, b) in enumerate(zip(old_names, new_names, strict=True)) if a != b)
        raise InputError(
            f"optimizer state does not belong to these parameters: group {index}, position {at} holds "
            f"{old_names[at]!r} in the checkpoint but {new_names[at]!r} now; resume with the same model and the "
            "same trainable parameters, in the same order"
        )


# ----------------------------------------------------------------------------- RNG
EXTRA_PREFIX = "extra."  # generators of the Trainer's own (the batch hook's), saved beside the global ones


def capture_rng(extra: dict[str, torch.Generator] | None = None) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """States of python, numpy and torch (CPU, every CUDA device, MPS) generators, and of ``extra`` ones."""
    tensors = {"torch_cpu": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"torch_cuda_{i}"] = s
    if torch.backends.mps.is_available():
        tensors["torch_mps"] = torch.mps.get_rng_state()
    for name, generator in (extra or {}).items():
        tensors[EXTRA_PREFIX + name] = generator.get_state()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    tensors["numpy_keys"] = torch.from_numpy(keys.astype(np.int64))
    version, internal, gauss_next = random.getstate()
    meta = {
        "python": [version, list(internal), gauss_next],
        "numpy": {"kind": kind, "pos": int(pos), "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
    }
    return tensors, meta


def restore_rng(tensors: dict[str, torch.Tensor], meta: dict[str, Any],
                extra: dict[str, torch.Generator] | None = None) -> None:
    """Inverse of :func:`capture_rng` (device states that do not exist here are skipped; an ``extra`` generator
    the checkpoint does not hold keeps its state)."""
    torch.set_rng_state(tensors["torch_cpu"])
    cuda = sorted((k for k in tensors if k.startswith("torch_cuda_")), key=lambda k: int(k.rsplit("_", 1)[1]))
    if cuda and torch.cuda.is_available():
        for key in cuda[: torch.cuda.device_count()]:
            torch.cuda.set_rng_state(tensors[key], int(key.rsplit("_", 1)[1]))
    if "torch_mps" in tensors and torch.backends.mps.is_available():
        torch.mps.set_rng_state(tensors["torch_mps"])
    for name, generator in (extra or {}).items():
        if EXTRA_PREFIX + name in tensors:
            generator.set_state(tensors[EXTRA_PREFIX + name])
    n = meta["numpy"]
    keys = tensors["numpy_keys"].numpy().astype(np.uint32)
    np.random.set_state((n["kind"], keys, n["pos"], n["has_gauss"], n["cached_gaussian"]))
    version, internal, gauss_next = meta["python"]
    random.setstate((version, tuple(internal), gauss_next))


def rank_rng_name(rank: int) -> str:
    """The RNG file of a distributed rank: rank 0's is ``rng.safetensors`` (its metadata in state.json), rank r's
    ``rng-rank{r}.safetensors`` (its metadata inside the file)."""
    return RNG if rank == 0 else f"rng-rank{rank}.safetensors"


def write_rank_rng(file: Path, extra: dict[str, torch.Generator] | None = None) -> None:
    """This process's RNG states as one self-contained safetensors file (written through a rename)."""
    tensors, meta = capture_rng(extra)
    tmp = file.with_name(f".{file.name}.tmp")
    save_file(tensors, str(tmp), metadata={"rng": json.dumps(meta)})
    os.replace(tmp, file)


def read_rank_rng(directory: Path, rank: int) -> tuple[dict[str, torch.Tensor], dict[str, Any]] | None:
    """Rank ``rank``'s RNG states from a checkpoint, or None when it holds none for that rank."""
    file = Path(directory) / STATE_DIR / rank_rng_name(rank)
    if rank == 0 or not file.is_file():
        return None
    with safe_open(str(file), framework="pt") as handle:
        meta = json.loads(handle.metadata()["rng"])
    return _read_safetensors(file), meta


# ----------------------------------------------------------------------------- folder
def write_trainer_state(
    directory: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, state: dict[str, Any],
    gathered: Any = None, extra_rng: dict[str, torch.Generator] | None = None,
    rank_rng_files: list[Path] | None = None, slim: bool = False,
) -> None:
    """Write ``directory/trainer_state/`` (the caller writes into a temporary directory and renames it).

    ``gathered`` (FSDP) carries the trainable weights and optimizer state already gathered from all ranks;
    ``extra_rng`` the Trainer's own generators; ``rank_rng_files`` the RNG files the other ranks wrote (each
    rank's generators differ: dropout masks are drawn per rank). ``slim`` (an adapter's ``best/`` and
    ``final/``): only ``state.json``, no weights, optimizer or RNG: the adapter file beside it holds the
    trainable weights, and nothing resumes from these folders.
    """
    folder = Path(directory) / STATE_DIR
    folder.mkdir(parents=True, exist_ok=True)
    if slim:
        (folder / STATE_JSON).write_text(json.dumps({**state, "slim": True}, indent=1, allow_nan=True) + "\n")
        return
    save_file(gathered.trainable if gathered else trainable_state(model), str(folder / TRAINABLE))
    opt_tensors, opt_meta = gathered.optimizer if gathered else optimizer_tensors(optimizer)
    save_file(opt_tensors, str(folder / OPTIMIZER))
    rng_tensors, rng_meta = capture_rng(extra_rng)
    save_file(rng_tensors, str(folder / RNG))
    for file in rank_rng_files or ():
        shutil.copyfile(file, folder / file.name)
    full = {**state, "optimizer": opt_meta, "rng": rng_meta}
    (folder / STATE_JSON).write_text(json.dumps(full, indent=1, allow_nan=True) + "\n")


def mark_complete(directory: Path, step: int) -> None:
    """Write the completion marker; call it after everything else of the checkpoint is on disk."""
    (Path(directory) / STATE_DIR / MARKER).write_text(json.dumps({"global_step": step}) + "\n")


def is_complete(directory: Path) -> bool:
    """Whether ``directory`` holds a finished checkpoint."""
    return (Path(directory) / STATE_DIR / MARKER).is_file()


def read_state(directory: Path) -> dict[str, Any]:
    """``state.json`` of a complete checkpoint, with a clear error for an incomplete or corrupt one."""
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"checkpoint {str(directory)!r} does not exist")
    if not is_complete(directory):
        raise InputError(
            f"checkpoint {str(directory)!r} is incomplete (no {STATE_DIR}/{MARKER}); it was interrupted while being "
            f"written or is not a training checkpoint; use find_latest_checkpoint() to pick a complete one"
        )
    file = directory / STATE_DIR / STATE_JSON
    try:
        return json.loads(file.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{file} is unreadable ({exc}); the checkpoint is corrupt") from exc


def read_tensors(directory: Path, name: str) -> dict[str, torch.Tensor]:
    """One safetensors file of ``trainer_state/``."""
    return _read_safetensors(Path(directory) / STATE_DIR / name)


def _read_safetensors(file: Path) -> dict[str, torch.Tensor]:
    if not file.is_file():
        raise InputError(f"{file} is missing; the checkpoint is corrupt")
    try:
        return load_file(str(file))
    except Exception as exc:  # safetensors raises its own error types
        raise InputError(f"cannot read {file} ({exc}); the checkpoint is corrupt") from exc
