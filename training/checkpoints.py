"""Checkpoint directories of a run: write one atomically, find the latest complete one, keep the last K.

Layout of ``checkpoint_dir``::

    checkpoint-STEP/   intermediate checkpoints (the last ``save_total_limit`` are kept)
    best/              the best model so far (by the monitored metric)
    final/             the model at the end of training (the best one when early stopping restored it)
    metrics.jsonl      one JSON object per log / eval event
    loss_curve.png     written at the end when matplotlib is installed

Each checkpoint is the model's own ``save_pretrained`` directory (plus the tokenizer when one is given) and a
``trainer_state/`` folder (see :mod:`training.trainer_state`). It is built in a hidden temporary sibling and
renamed into place, and its completion marker is written last, so a run killed at any moment leaves either the
old checkpoint or the complete new one.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from minillm.atomic import atomic_directory
from minillm.errors import InputError

from .trainer_state import (
    OPTIMIZER,
    STATE_DIR,
    TRAINABLE,
    is_complete,
    load_optimizer,
    load_trainable_state,
    mark_complete,
    read_tensors,
    write_trainer_state,
)

logger = logging.getLogger(__name__)

CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")


@dataclass
class Gathered:
    """Full state collected from every rank of an FSDP run, written by rank 0."""

    model: dict[str, torch.Tensor]
    trainable: dict[str, torch.Tensor]
    optimizer: tuple[dict[str, torch.Tensor], dict[str, Any]]


def save_checkpoint(
    path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, state: dict[str, Any],
    tokenizer: Any = None, gathered: Gathered | None = None, extra_rng: dict[str, torch.Generator] | None = None,
    rank_rng_files: list[Path] | None = None, slim: bool = False,
) -> Path:
    """Write a complete checkpoint at ``path`` atomically and return it (``extra_rng``, ``rank_rng_files``,
    ``slim``: see :func:`training.trainer_state.write_trainer_state`).

    A model may carry ``save_notes``, a dict of file name -> text written beside its weights (the HF bridge
    records there how an adapter's base was loaded, see :func:`minillm.hf.loading.training_note`).
    """
    from .fsdp import state_dict_override

    with atomic_directory(path) as tmp:
        with state_dict_override(model, gathered.model if gathered else None):
            model.save_pretrained(str(tmp))
        for name, text in (getattr(model, "save_notes", None) or {}).items():
            (Path(tmp) / name).write_text(text)
        Path(tmp).chmod(0o755)  # mkdtemp makes it owner-only
        if tokenizer is not None:
            save_tokenizer(tokenizer, tmp)
        write_trainer_state(tmp, model, optimizer, state, gathered, extra_rng, rank_rng_files, slim)
        mark_complete(tmp, int(state["global_step"]))
    return Path(path)


def gather_for_save(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> Gathered:
    """Full weights, trainable weights and optimizer state of an FSDP-sharded model (collective: all ranks call)."""
    from . import fsdp

    full = fsdp.full_model_state(model)
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    return Gathered(full, {n: full[n] for n in names if n in full}, fsdp.full_optimizer_state(model, optimizer))


def load_weights(model: torch.nn.Module, checkpoint: Path, sharded: bool = False) -> None:
    """Put a checkpoint's trainable weights back into ``model`` (requires_grad flags untouched).

    A slim adapter folder (``best/`` of a LoRA run: no ``trainable.safetensors``) loads its adapter file.
    """
    if not (Path(checkpoint) / STATE_DIR / TRAINABLE).is_file() and is_adapter_checkpoint(checkpoint):
        from minillm.hf.adapter_weights import load_adapter_weights

        load_adapter_weights(model, Path(checkpoint))
        return
    if sharded:
        from . import fsdp

        fsdp.load_full_trainable(model, read_tensors(checkpoint, TRAINABLE))
    else:
        load_trainable_state(model, Path(checkpoint) / STATE_DIR / TRAINABLE)


def load_optimizer_state(
    model: torch.nn.Module, optimizer: torch.optim.Optimizer, checkpoint: Path, meta: dict[str, Any],
    sharded: bool = False,
) -> None:
    """Restore the optimizer from a checkpoint (``meta`` is ``state.json``'s "optimizer" entry)."""
    tensors = read_tensors(checkpoint, OPTIMIZER)
    if sharded:
        from . import fsdp

        fsdp.load_full_optimizer(model, optimizer, tensors, meta)
    else:
        load_optimizer(optimizer, tensors, meta)


def is_adapter_checkpoint(directory: str | os.PathLike) -> bool:
    """Whether ``directory`` holds a peft adapter (``adapter_config.json``) rather than full weights."""
    return (Path(directory) / "adapter_config.json").is_file()


def save_tokenizer(tokenizer: Any, directory: Path) -> None:
    """Our tokenizers have ``save(dir)``; transformers' have ``save_pretrained(dir)``."""
    save = getattr(tokenizer, "save_pretrained", None) or getattr(tokenizer, "save", None)
    if save is None:
        raise InputError(f"tokenizer of type {type(tokenizer).__name__} has neither save() nor save_pretrained()")
    save(str(directory))


def list_checkpoints(checkpoint_dir: str | os.PathLike) -> list[tuple[int, Path]]:
    """Complete ``checkpoint-STEP`` directories, oldest first."""
    root = Path(checkpoint_dir)
    if not root.is_dir():
        return []
    found = []
    for child in root.iterdir():
        match = CHECKPOINT_RE.match(child.name)
        if match and child.is_dir() and is_complete(child):
            found.append((int(match.group(1)), child))
    return sorted(found)


def find_latest_checkpoint(checkpoint_dir: str | os.PathLike) -> Path | None:
    """The complete ``checkpoint-STEP`` with the highest step under ``checkpoint_dir``, or None.

    Incomplete checkpoints (no completion marker, e.g. a run killed while writing) and hidden temporary
    directories are ignored.
    """
    found = list_checkpoints(checkpoint_dir)
    return found[-1][1] if found else None


def claim_for_fresh_run(checkpoint_dir: Path, overwrite: bool) -> None:
    """Refuse to start a new run over another run's checkpoints (rotation would delete the new ones and resume
    would pick the old ones); with ``overwrite`` the old ``checkpoint-STEP/``, ``best/`` and ``final/`` go."""
    old = list_checkpoints(checkpoint_dir)
    if not old:
        return
    if not overwrite:
        raise InputError(
            f"checkpoint_dir {str(checkpoint_dir)!r} already holds checkpoints of another run (up to {old[-1][1].name}); "
            "pass resume_from_checkpoint=True to continue it, another checkpoint_dir, or overwrite_output_dir=True "
            "to replace it"
        )
    for path in [p for _, p in old] + [Path(checkpoint_dir) / "best", Path(checkpoint_dir) / "final"]:
        if path.is_dir():
            logger.info("overwrite_output_dir: removing %s", path)
            shutil.rmtree(path)


def rotate_checkpoints(checkpoint_dir: Path, keep: int | None) -> None:
    """Delete all but the newest ``keep`` complete checkpoints (``best/`` and ``final/`` are separate)."""
    if keep is None or keep < 1:
        return
    for _, path in list_checkpoints(checkpoint_dir)[:-keep]:
        logger.info("removing old checkpoint %s", path)
        doomed = path.with_name(f".{path.name}.deleting-{os.getpid()}")
        os.replace(path, doomed)  # one rename: a kill mid-delete never leaves a half-deleted "complete" checkpoint
        shutil.rmtree(doomed, ignore_errors=True)


def recover_interrupted(checkpoint_dir: Path) -> None:
    """Clean up after a killed run: put back a ``best``/``final`` caught mid-swap, drop temporary directories."""
    root = Path(checkpoint_dir)
    if not root.is_dir():
        return
    for name in ("best", "final"):
        if not (root / name).exists():
            olds = sorted(root.glob(f".{name}.old-*"), key=lambda p: p.stat().st_mtime)
            if olds and is_complete(olds[-1]):
                os.replace(olds[-1], root / name)
                logger.warning("restored %s/ from an interrupted replacement", name)
    for child in root.iterdir():
        hidden_work = any(tag in child.name for tag in (".tmp-", ".old-", ".deleting-"))
        if child.name.startswith(".") and hidden_work and child.is_dir():
            shutil.rmtree(child, ignore_errors=True)
