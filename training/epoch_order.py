"""Reproducible batch order: the shuffle of epoch ``e`` depends only on ``seed + e``, and a resumed epoch skips
the batches already done, so an interrupted run sees exactly the batches the uninterrupted one did.

Creating a DataLoader iterator draws a seed from torch's global generator (and a ``RandomSampler`` without a
generator draws another when it starts); both would make the global stream (dropout masks) depend on where a
run was resumed. Here the iterator is created with the global generator forked and reseeded, and samplers with
a ``generator`` attribute get their own ``torch.Generator`` seeded per epoch; samplers with ``set_epoch``
(``DistributedSampler``) are told the epoch.
"""

from __future__ import annotations

import contextlib
import itertools
import random
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import torch

from minillm.errors import InputError


@contextlib.contextmanager
def isolated_rng(device: torch.device | None = None, seed: int | None = None) -> Iterator[None]:
    """Run the body without touching torch's global CPU (and this CUDA device's) generator state."""
    devices = [device.index or 0] if device is not None and device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices, device_type="cuda" if devices else "cpu"):
        if seed is not None:
            torch.manual_seed(seed)
        yield


def set_epoch(loader: Any, epoch: int, seed: int) -> None:
    """Seed the loader's sampler(s) for ``epoch`` (no-op for plain lists), and tell its dataset the epoch when it
    varies by epoch (packed token windows shift their boundaries: :class:`training.data.windows.TokenWindowDataset`)."""
    dataset = getattr(loader, "dataset", None)
    if hasattr(dataset, "set_epoch"):
        dataset.set_epoch(epoch)
    samplers = [getattr(loader, "sampler", None), getattr(getattr(loader, "batch_sampler", None), "sampler", None)]
    for sampler in {id(s): s for s in samplers if s is not None}.values():
        if hasattr(sampler, "set_epoch"):
            sampler.set_epoch(epoch)
        elif hasattr(sampler, "generator"):
            sampler.generator = torch.Generator().manual_seed(seed + epoch)


def epoch_batches(loader: Iterable, epoch: int, seed: int, skip: int, device: torch.device | None) -> Iterator[Any]:
    """Batches of ``epoch`` after the first ``skip`` (skipped batches are loaded but never trained on)."""
    set_epoch(loader, epoch, seed)
    with isolated_rng(device, seed + epoch):
        iterator = iter(loader)
        if skip:
            consumed = sum(1 for _ in itertools.islice(iterator, skip))
            if consumed < skip:
                raise InputError(
                    f"the checkpoint is {skip} batches into epoch {epoch} but the train dataloader has only "
                    f"{consumed}; resume with the same data and batch size"
                )
    return iterator


def seed_everything(seed: int) -> None:
    """Seed python's, numpy's and torch's global generators (a fresh run's start)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
