"""Fixtures for the training tests: the shared toy builders (tests/training/toy.py) as a module."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

HERE = Path(__file__).resolve().parent


def _load_toy():
    spec = importlib.util.spec_from_file_location("training_tests_toy", HERE / "toy.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


TOY = _load_toy()


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models run fastest (and most reproducibly) on one intra-op thread on a shared 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def toy():
    """Tiny model / dataset builders."""
    return TOY
