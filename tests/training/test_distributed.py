"""DDP and FSDP: two CPU processes under torchrun (gloo) match one process with the same global batch."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

WORKER = Path(__file__).with_name("worker_train.py")
REPO = Path(__file__).resolve().parents[2]  # the repo root, wherever pytest is started from
COMMON = ["--shuffle", "0", "--dropout", "0", "--epochs", "2", "--save-every", "100"]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
            "OMP_NUM_THREADS": "1"}


@pytest.mark.slow
def test_two_process_ddp_matches_single_process(toy, tmp_path):
    ddp = subprocess.Popen(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(WORKER),
         str(tmp_path / "ddp"), "--batch-size", "2", *COMMON],
        env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    single = subprocess.run([sys.executable, str(WORKER), str(tmp_path / "single"), "--batch-size", "4", *COMMON], check=False,
                            env=_env(), capture_output=True, text=True, timeout=300)
    out, _ = ddp.communicate(timeout=300)
    assert single.returncode == 0, single.stdout + single.stderr
    assert ddp.returncode == 0, out
    one = json.loads((tmp_path / "single" / "result.json").read_text())
    two = json.loads((tmp_path / "ddp" / "result.json").read_text())
    assert two["global_step"] == one["global_step"] == 24  # 48 rows / global batch 4, two epochs
    for a, b in zip(one["history"], two["history"], strict=True):
        assert b["val_loss"] == pytest.approx(a["val_loss"], rel=1e-5)
        assert b["train_loss"] == pytest.approx(a["train_loss"], rel=1e-5)
    want, have = toy.trainable(tmp_path / "single" / "final"), toy.trainable(tmp_path / "ddp" / "final")
    start = toy.weights(toy.tiny_model())
    for k in want:
        torch.testing.assert_close(have[k], want[k], rtol=1e-4, atol=2e-5)
    assert (want["model.embed_tokens.weight"] - start["model.embed_tokens.weight"]).abs().max() > 1e-3
    # only rank 0 wrote: one metrics file, no duplicate records
    records = [json.loads(x) for x in (tmp_path / "ddp" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if r.get("event") == "eval"] == [12, 24]
    assert [r["step"] for r in records if "loss" in r] == [10, 20, 24]


@pytest.mark.slow
def test_ddp_with_batches_without_label_tokens(tmp_path):
    """Rank 1's first micro-batch has no label token (it still joins the gradient all-reduce, with zero), and in
    the second step no rank has one (no rank steps): no hang, no NaN, one step fewer per epoch."""
    proc = _torchrun(tmp_path / "ddp", "--batch-size", "2", *COMMON, "--unlabelled", "1,3,4,5,6,7")
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    result = json.loads((tmp_path / "ddp" / "result.json").read_text())
    assert result["global_step"] == 22  # 12 windows per epoch, one without labels anywhere
    assert all(math.isfinite(h["train_loss"]) and math.isfinite(h["val_loss"]) for h in result["history"])


def _torchrun(directory: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(WORKER),
         str(directory), *args], env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _wait(proc: subprocess.Popen) -> None:
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out


@pytest.mark.slow
def test_fsdp_matches_single_process_and_resumes_exactly(toy, tmp_path):
    args = ["--batch-size", "2", "--fsdp", "--shuffle", "0", "--dropout", "0", "--epochs", "2", "--save-every", "5"]
    full = _torchrun(tmp_path / "fsdp", *args)
    single = subprocess.Popen([sys.executable, str(WORKER), str(tmp_path / "single"), "--batch-size", "4", *COMMON],
                              env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    _wait(full)
    resumed = _torchrun(tmp_path / "resumed", *args, "--resume-from", str(tmp_path / "fsdp" / "checkpoint-15"))
    _wait(single)
    _wait(resumed)
    ref, got = (json.loads((tmp_path / d / "result.json").read_text()) for d in ("fsdp", "resumed"))
    assert got == ref and ref["global_step"] == 24
    want, have = toy.trainable(tmp_path / "fsdp" / "final"), toy.trainable(tmp_path / "resumed" / "final")
    assert all(torch.equal(want[k], have[k]) for k in want)  # bit-exact resume under FSDP
    # the gathered final/ is a complete model directory that loads as one piece
    from minillm import load_pretrained

    loaded = dict(load_pretrained(tmp_path / "fsdp" / "final").named_parameters())
    assert all(torch.equal(loaded[k], want[k]) for k in want)
    # sharded training computes what one process with the global batch computes
    one = toy.trainable(tmp_path / "single" / "final")
    for k in one:
        torch.testing.assert_close(want[k], one[k], rtol=1e-4, atol=2e-5)



def test_sharded_create_dataloaders_loader_shuffles_per_epoch_and_splits_ranks(tmp_path):
    """Under torchrun the EpochSampler loader of create_dataloaders becomes a shuffling DistributedSampler
    (reseeded per epoch), not a fixed order; no processes needed: the sharding takes the rank as data."""
    import importlib.util

    from torch.utils.data import DistributedSampler

    from training import create_dataloaders
    from training.distributed import DistributedContext, shard_loader
    from training.epoch_order import epoch_batches

    spec = importlib.util.spec_from_file_location("_fixtures_for_sharding", Path(__file__).with_name("data_fixtures.py"))
    fixtures = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fixtures)
    docs = [f"document number {i} " + "abcdefgh"[: 1 + i % 8] * 6 for i in range(64)]
    train, _ = create_dataloaders(docs, None, fixtures.ByteTokenizer(), batch_size=2, max_length=16, packing=False,
                                  cache_dir=tmp_path)

    def shard(rank: int):
        loader = shard_loader(train, DistributedContext(world_size=2, rank=rank), seed=42)
        assert isinstance(loader.sampler, DistributedSampler) and loader.sampler.shuffle
        return loader

    def order(rank: int, epoch: int) -> list[list[int]]:
        return [b["input_ids"].tolist() for b in epoch_batches(shard(rank), epoch, 42, 0, None)]

    first, again, second = order(0, 0), order(0, 0), order(0, 1)
    assert first == again  # the same epoch gives the same order (exact resume)
    assert first != second  # a new order every epoch
    zero, one = shard(0), shard(1)
    zero.sampler.set_epoch(3)
    one.sampler.set_epoch(3)
    indices = list(zero.sampler), list(one.sampler)
    assert not set(indices[0]) & set(indices[1]) and len(indices[0]) == len(indices[1]) == len(train.dataset) // 2
    assert indices[0] != sorted(indices[0])
