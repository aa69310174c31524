"""Running the same Trainer under ``torchrun``: process group, device per rank, data shards, reductions.

``torchrun --nproc_per_node=2 train.py`` sets ``WORLD_SIZE``/``RANK``/``LOCAL_RANK``; the Trainer then joins the
process group (``nccl`` on CUDA, ``gloo`` on CPU), wraps the model in ``DistributedDataParallel``, re-creates
each DataLoader over a ``DistributedSampler`` (same batch size per rank, so the global batch is
``world_size * batch_size``), averages losses across ranks, and lets only rank 0 write checkpoints and logs.

Models that do not fit on one GPU: ``Trainer(..., fsdp=True)`` shards them with PyTorch FSDP2 instead of
replicating them (see :mod:`training.fsdp`); checkpoints keep the same format (full weights gathered to rank 0).

Leaving: the process group that :func:`init_distributed` creates is destroyed by :func:`shutdown_distributed`
(registered with :mod:`atexit`), so gloo's worker threads are joined while the interpreter still runs. Left to
interpreter teardown, a gloo thread that is still releasing the last collective's tensors needs the GIL, is
stopped by the finalizing interpreter and aborts the process ("terminate called without an active exception").
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import logging
import os
import sys
import weakref
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, DistributedSampler, SequentialSampler

from minillm.devices import resolve_device as resolve_user_device
from minillm.errors import InputError

logger = logging.getLogger(__name__)

# DDP wrappers made by wrap_model: the ones still alive when the group is destroyed let go of it (their
# reducer, logger and process_group attributes hold it, which would keep the backend's threads running)
_WRAPPED: weakref.WeakSet[torch.nn.Module] = weakref.WeakSet()


@dataclass
class DistributedContext:
    """Where this process sits in the job (``world_size == 1`` outside torchrun)."""

    world_size: int = 1
    rank: int = 0
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device_kind: str) -> DistributedContext:
    """Join the process group when launched by torchrun (``WORLD_SIZE`` > 1); otherwise a single-process context."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistributedContext()
    if not dist.is_initialized():
        backend = "nccl" if device_kind == "cuda" else "gloo"
        # imported before the group exists: its functions take ``group=group.WORLD`` as a default argument,
        # evaluated at import, and DistributedDataParallel imports it (through torch._dynamo) later; imported
        # after init_process_group it would hold the group forever and destroy_process_group could not free it
        import torch.distributed.nn.functional  # noqa: F401

        dist.init_process_group(backend=backend)
        atexit.register(_shutdown_at_exit)
        logger.info("joined process group (%s), rank %d of %d", backend, dist.get_rank(), world)
    return DistributedContext(dist.get_world_size(), dist.get_rank(), int(os.environ.get("LOCAL_RANK", "0")))


def shutdown_distributed() -> None:
    """Destroy the default process group, joining the backend's worker threads now (no-op when there is none).

    Call it on every rank once the last collective has returned (the Trainer's ``train()`` ends with a
    barrier); it communicates with no other rank. DDP wrappers made by :func:`wrap_model` let go of the group
    (and cannot train any more); the process group is not used again in this process.
    """
    if not (dist.is_available() and dist.is_initialized()):
        return
    gc.collect()  # an unreachable DDP wrapper (reference cycles) still holds the group through its reducer
    for wrapper in list(_WRAPPED):  # still referenced (a Trainer in a module global): unusable from here on
        for name in ("logger", "reducer", "process_group"):
            wrapper.__dict__.pop(name, None)
    _WRAPPED.clear()
    # the last reference goes with the Python ProcessGroup, whose destructor releases the GIL before joining the
    # worker threads (a thread freeing a tensor of the last collective may need the GIL)
    dist.destroy_process_group()
    logger.debug("process group destroyed")


def _shutdown_at_exit() -> None:
    """atexit: :func:`shutdown_distributed`, except on an uncaught exception (a collective may still be in
    flight there, and joining its thread could wait for the backend timeout instead of failing fast)."""
    if getattr(sys, "last_value", None) is not None:
        return
    shutdown_distributed()


def resolve_device(device: str | torch.device, ctx: DistributedContext) -> torch.device:
    """:func:`minillm.devices.resolve_device` (``"auto"``, validation), then under torchrun a bare ``"cuda"``
    means this rank's GPU."""
    resolved = resolve_user_device(device)
    if resolved.type == "cuda":
        if resolved.index is None:  # "cuda" -> "cuda:N", so it compares equal to the parameters' device
            index = ctx.local_rank if ctx.enabled else torch.cuda.current_device()
            resolved = torch.device("cuda", index)
        torch.cuda.set_device(resolved)
    return resolved


def shard_loader(loader: Any, ctx: DistributedContext, seed: int) -> Any:
    """This rank's share of ``loader``: a DataLoader over a DistributedSampler (kept as is if it has one)."""
    if not ctx.enabled or loader is None:
        return loader
    if isinstance(loader, DataLoader):
        if isinstance(loader.sampler, DistributedSampler):
            return loader
        if loader.batch_size is None:
            raise InputError(
                "under torchrun the Trainer shards DataLoaders built with batch_size=; this one uses a custom "
                "batch_sampler, so give it a DistributedSampler yourself"
            )
        sampler = DistributedSampler(
            loader.dataset, num_replicas=ctx.world_size, rank=ctx.rank,
            # any order but the given one (RandomSampler, our EpochSampler ...) becomes DistributedSampler's
            # seeded shuffle, which set_epoch reseeds every epoch (seed + epoch)
            shuffle=not isinstance(loader.sampler, SequentialSampler), seed=seed, drop_last=loader.drop_last,
        )
        return DataLoader(
            loader.dataset, batch_size=loader.batch_size, sampler=sampler, collate_fn=loader.collate_fn,
            num_workers=loader.num_workers, pin_memory=loader.pin_memory, drop_last=loader.drop_last,
            worker_init_fn=loader.worker_init_fn, persistent_workers=loader.persistent_workers,
        )
    if isinstance(loader, (list, tuple)):
        return list(loader[ctx.rank :: ctx.world_size])
    raise InputError(
        f"cannot shard a {type(loader).__name__} across {ctx.world_size} processes; pass a DataLoader or a list"
    )


def all_reduce_sums(values: list[float], device: torch.device, ctx: DistributedContext) -> list[float]:
    """Element-wise sum of ``values`` over all ranks (identity in one process)."""
    if not ctx.enabled:
        return values
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor.tolist()


def barrier(ctx: DistributedContext) -> None:
    """Wait for every rank (no-op in one process)."""
    if ctx.enabled:
        dist.barrier()


def wrap_model(model: torch.nn.Module, device: torch.device, ctx: DistributedContext, fsdp: bool) -> torch.nn.Module:
    """Under torchrun: FSDP2 sharding in place (``fsdp=True``) or DistributedDataParallel around ``model``.

    In one process the model is returned as it is (``fsdp=True`` is then ignored, with a log line).
    """
    if not ctx.enabled:
        if fsdp:
            logger.info("fsdp=True in a single process: nothing to shard, training unsharded")
        return model
    if fsdp:
        from .fsdp import shard_model

        return shard_model(model)
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index] if device.type == "cuda" else None
    wrapper = DistributedDataParallel(model, device_ids=ids)
    _WRAPPED.add(wrapper)
    return wrapper


def no_sync(engine: torch.nn.Module, ctx: DistributedContext, fsdp: bool):
    """Context that skips the gradient all-reduce (micro-batches before the last of an accumulation window)."""
    if not ctx.enabled:
        return contextlib.nullcontext()
    if fsdp:
        from .fsdp import gradient_sync_off

        return gradient_sync_off(engine)
    return engine.no_sync()
