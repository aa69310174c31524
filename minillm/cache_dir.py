"""Where converted weights are cached: $MINILLM_CACHE, else ~/.cache/minillm."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """The cache root (created on demand). Override with the MINILLM_CACHE environment variable."""
    root = os.environ.get("MINILLM_CACHE") or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "minillm"
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path
