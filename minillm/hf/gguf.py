"""GGUF files -> a cached transformers-format directory our loaders (and transformers) open.

transformers' GGUF reader de-quantizes the weights (and undoes llama.cpp's q/k permutation); we save the result
once under ``cache_dir()/gguf/<key>/`` so the second load is a plain safetensors read.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

from safetensors.torch import save_file

from ..atomic import atomic_directory
from ..cache_dir import cache_dir
from ..errors import MissingDependencyError

logger = logging.getLogger(__name__)


def _cache_key(path: Path) -> str:
    stat = path.stat()
    ident = f"{path.resolve()}|{stat.st_size}|{int(stat.st_mtime)}"
    return f"{path.stem}-{hashlib.sha256(ident.encode()).hexdigest()[:16]}"


def gguf_to_directory(path: str | Path) -> Path:
    """Return the cached directory (config.json, model.safetensors, tokenizer files) for a .gguf file."""
    path = Path(path)
    target = cache_dir() / "gguf" / _cache_key(path)
    if (target / "config.json").is_file():
        return target
    try:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as exc:
        raise MissingDependencyError("reading GGUF files needs the HF extras: pip install 'minillm[hf]'") from exc
    logger.info("converting %s (first load only; cached in %s)", path.name, target)
    model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    # transformers refuses save_pretrained on a GGUF-loaded model, so we write the three files ourselves.
    config = model.config.to_dict()
    config.pop("quantization_config", None)
    config["architectures"] = [type(model).__name__]
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    if config.get("tie_word_embeddings"):
        state.pop("lm_head.weight", None)
    with atomic_directory(target) as tmp:
        (tmp / "config.json").write_text(json.dumps(config, indent=2) + "\n")
        (tmp / "generation_config.json").write_text(model.generation_config.to_json_string())
        save_file(state, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        tokenizer.save_pretrained(tmp)
    return target
