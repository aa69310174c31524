"""save_pretrained / from_pretrained: one directory format, the one transformers reads and writes.

A directory holds ``config.json`` (transformers' fields for the family), ``model.safetensors`` (or shards with
``model.safetensors.index.json``), ``generation_config.json`` and, when saved with one, ``tokenizer.json``.
Each family registers the transformers ``model_type`` values it reads, so :func:`load_pretrained` picks the class.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from minillm.errors import InputError

from .atomic import atomic_directory
from .devices import resolve_device

logger = logging.getLogger(__name__)

FAMILIES: dict[str, type] = {}
WEIGHTS_NAME = "model.safetensors"
INDEX_NAME = "model.safetensors.index.json"


def register_family(*model_types: str):
    """Class decorator: ``load_pretrained`` opens directories whose config ``model_type`` is one of these."""

    def decorate(cls: type) -> type:
        for name in model_types:
            FAMILIES[name] = cls
        return cls

    return decorate


def read_config(path: str | os.PathLike) -> dict[str, Any]:
    """config.json of a model directory, with a clear error when it is missing or unreadable."""
    path = Path(path)
    file = path / "config.json"
    if not path.exists():
        raise FileNotFoundError(f"model path {str(path)!r} does not exist")
    if not file.is_file():
        raise FileNotFoundError(f"{str(path)!r} has no config.json; pass a model directory or a .gguf file")
    try:
        return json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{file} is not valid JSON ({exc}); the checkpoint is corrupt") from exc


def read_weights(path: Path) -> dict[str, torch.Tensor]:
    """All tensors of a directory: one safetensors file, safetensors shards, or a weights-only torch .bin."""
    if (path / WEIGHTS_NAME).is_file():
        return _load_safetensors(path / WEIGHTS_NAME)
    if (path / INDEX_NAME).is_file():
        index = json.loads((path / INDEX_NAME).read_text())
        state: dict[str, torch.Tensor] = {}
        for shard in sorted(set(index["weight_map"].values())):
            state.update(_load_safetensors(path / shard))
        return state
    if (path / "pytorch_model.bin").is_file():
        return torch.load(path / "pytorch_model.bin", map_location="cpu", weights_only=True)
    raise FileNotFoundError(f"{str(path)!r} has no {WEIGHTS_NAME}, {INDEX_NAME} or pytorch_model.bin")


def _load_safetensors(file: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(file))
    except Exception as exc:  # safetensors raises its own error types
        raise InputError(f"cannot read {file}: {exc}; the checkpoint is corrupt or incomplete") from exc


def resolve_model_dir(path: str | os.PathLike) -> Path:
    """A directory to read from: the path itself, or the cached conversion of a ``.gguf`` file."""
    path = Path(path).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise FileNotFoundError(f"GGUF file {str(path)!r} does not exist")
        from .hf.gguf import gguf_to_directory

        return gguf_to_directory(path)
    return path


def load_pretrained(path: str | os.PathLike, device: str | torch.device | None = None, dtype=None):
    """Open any of our or transformers' model directories (or a .gguf file) with the right family class."""
    directory = resolve_model_dir(path)
    model_type = read_config(directory).get("model_type")
    if model_type not in FAMILIES:
        raise InputError(
            f"{str(path)!r} holds model_type {model_type!r}; supported: {', '.join(sorted(FAMILIES))}"
        )
    return FAMILIES[model_type].from_pretrained(directory, device=device, dtype=dtype)


class PretrainedMixin:
    """Adds ``save_pretrained`` / ``from_pretrained`` to a family. The class sets ``converter``, a module with
    ``config_from_hf``, ``config_to_hf``, ``state_dict_from_hf`` and ``state_dict_to_hf``."""

    converter: Any = None
    config: Any

    def _init_weights(self, module: torch.nn.Module) -> None:
        """transformers' default initialisation: normal(0, initializer_range) weights, zero biases."""
        if isinstance(module, (torch.nn.Linear, torch.nn.Embedding)):
            torch.nn.init.normal_(module.weight, mean=0.0, std=self.config.initializer_range)
        if isinstance(module, torch.nn.Linear) and module.bias is not None:
            torch.nn.init.zeros_(module.bias)

    def save_pretrained(self, save_directory: str | os.PathLike, tokenizer: Any = None) -> Path:
        """Write config.json, model.safetensors and generation_config.json atomically (temp dir, rename).

        The directory carries minillm's ``.minillm`` marker (so a later save may replace it) and every file gets
        the usual ``0o666 & ~umask`` permissions (safetensors' ``save_file`` alone creates ``model.safetensors``
        owner-only): both done by :func:`minillm.atomic.atomic_directory`.
        """
        state = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}
        dtype = _weights_dtype(state.values())
        state = self.converter.state_dict_to_hf(state, self.config)
        config = self.converter.config_to_hf(self.config, dtype=dtype)
        with atomic_directory(save_directory) as tmp:
            (tmp / "config.json").write_text(json.dumps(config, indent=2) + "\n")
            save_file(state, str(tmp / WEIGHTS_NAME), metadata={"format": "pt"})
            generation = {
                "bos_token_id": self.config.bos_token_id,
                "eos_token_id": self.config.eos_token_id,
                "pad_token_id": self.config.pad_token_id,
                **self.generation_config,
            }
            if self.config.model_type == "encoder_decoder":
                generation["decoder_start_token_id"] = self.config.decoder_start_token_id
            (tmp / "generation_config.json").write_text(json.dumps(generation, indent=2) + "\n")
            if tokenizer is not None:
                tokenizer.save(str(tmp))
        return Path(save_directory)

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, device: str | torch.device | None = None, dtype=None):
        """Load our directory, a transformers directory of this family (sharded too), or a .gguf file."""
        target = resolve_device(device) if device is not None else None
        directory = resolve_model_dir(path)
        raw = read_config(directory)
        owner = FAMILIES.get(raw.get("model_type"))
        if owner is not None and owner is not cls:
            raise InputError(
                f"{str(path)!r} holds a {raw.get('model_type')} model; open it with {owner.__name__}.from_pretrained"
            )
        config = cls.converter.config_from_hf(raw)
        state = cls.converter.state_dict_from_hf(read_weights(directory), config)
        with torch.device("meta"):
            model = cls(config)
        _check_shapes(state, model.state_dict(), path)
        _, unexpected = model.load_state_dict(state, strict=False, assign=True)
        model.tie_weights()
        missing = [name for name, param in model.named_parameters() if param.is_meta]  # not loaded, not tied
        if missing or unexpected:
            raise InputError(
                f"{str(path)!r} does not match its config: missing weights {missing}, unexpected weights {unexpected}"
            )
        _materialize_buffers(model)
        if dtype is not None:
            model = model.to(dtype=_as_dtype(dtype))
        else:
            model = model.float()
        if target is not None:
            model = model.to(target)
        generation_file = directory / "generation_config.json"
        if generation_file.is_file():
            generation = json.loads(generation_file.read_text())
            model.generation_config = {
                k: generation[k]
                for k in ("eos_token_id", "pad_token_id", "bos_token_id", "decoder_start_token_id")
                if k in generation
            }
        model.eval()
        logger.info("loaded %s from %s", cls.__name__, path)
        return model


def _check_shapes(state: dict[str, torch.Tensor], expected: dict[str, torch.Tensor], path: Any) -> None:
    """Raise ValueError listing every weight whose shape differs from what the config builds."""
    wrong = [
        f"{name}: checkpoint {tuple(tensor.shape)} vs config {tuple(expected[name].shape)}"
        for name, tensor in state.items()
        if name in expected and tuple(tensor.shape) != tuple(expected[name].shape)
    ]
    if wrong:
        shown = "; ".join(wrong[:12]) + ("; ..." if len(wrong) > 12 else "")
        raise InputError(
            f"{str(path)!r}: {len(wrong)} weight shape(s) do not match config.json ({shown}); "
            "the config was edited or belongs to another model"
        )


def _weights_dtype(tensors: Any) -> str:
    """The dtype name ("float32", "bfloat16", ...) of the first floating-point tensor; float32 when none."""
    for tensor in tensors:
        if tensor.is_floating_point():
            return str(tensor.dtype).removeprefix("torch.")
    return "float32"


def _materialize_buffers(model: torch.nn.Module) -> None:
    """Recreate non-persistent buffers (rotary frequencies) that stayed on the meta device."""
    for name, buffer in list(model.named_buffers()):
        if buffer.is_meta:
            module = model.get_submodule(name.rpartition(".")[0])
            rebuild = getattr(module, "rebuild_buffers", None)
            if rebuild is None:
                raise InputError(f"buffer {name} was not restored and {type(module).__name__} cannot rebuild it")
            rebuild()


def _as_dtype(dtype: str | torch.dtype) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    names = {"float32": torch.float32, "fp32": torch.float32, "float16": torch.float16, "fp16": torch.float16,
             "bfloat16": torch.bfloat16, "bf16": torch.bfloat16}
    if dtype not in names:
        raise InputError(f"dtype {dtype!r} is unknown; use one of {', '.join(names)}")
    return names[dtype]
