"""Fine-tuning runs: a pretrained model (an alias, HF directory, GGUF file or one of our checkpoints) trained with
QLoRA, LoRA or in full by the same :class:`training.Trainer` as a model trained from scratch.

Settings are the flat ones of ``main.py train`` plus ``model``, ``qlora``/``lora``, ``lora_r``, ``lora_alpha``,
``lora_dropout``, ``target_modules``, ``eval_data`` and ``dtype``. Precedence, lowest first: the fine-tuning
defaults below < a fine-tuning preset (``paper_understanding`` ...) < the seed's environment variables (or
``.env``) < a ``--config`` file < typed flags. A preset means QLoRA unless ``--lora`` says otherwise; ``--model``
alone means full fine-tuning. Batches are padded, not packed, for models whose forward takes no ``segment_ids``
(transformers models), so documents never attend to each other.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from minillm.errors import InputError

logger = logging.getLogger(__name__)

# What a fine-tuning run uses where neither a preset nor the environment nor a flag says otherwise.
FINETUNE_DEFAULTS: dict[str, Any] = {
    "lr": 2e-4, "batch_size": 4, "gradient_accumulation_steps": 4, "epochs": 3, "max_seq_len": None,
    "warmup_steps": 10, "weight_decay": 0.0, "eval_steps": 50, "lora_r": 16,
    "lora_dropout": 0.05, "val_split": 0.1,
}
DEFAULT_MAX_LEN = 512  # tokens per row when neither a flag nor a preset says (at most the model's context)
# the settings a fine-tuning run adds to a from-scratch one (their defaults when absent)
FINETUNE_SETTINGS: dict[str, Any] = {
    "model": None, "qlora": False, "lora": False, "lora_r": None, "lora_alpha": None, "lora_dropout": None,
    "target_modules": None, "eval_data": None, "dtype": None,
}
# settings that size a model trained from scratch: a pretrained model fixes them
SIZE_SETTINGS = ("model_type", "vocab_size", "d_model", "num_layers", "num_heads", "d_ff")
# the names of presets and environment variables (minillm.hf.presets) -> the names of ``main.py train``
RENAMED = {"learning_rate": "lr", "max_seq_length": "max_seq_len"}


def is_finetune(settings: dict[str, Any]) -> bool:
    """Whether the settings ask for fine-tuning (``--model``, ``--qlora``/``--lora``, or a fine-tuning preset)."""
    from minillm.hf.presets import PRESETS

    return bool(settings.get("model") or settings.get("qlora") or settings.get("lora")
                or settings.get("preset") in PRESETS)


def method(settings: dict[str, Any]) -> str:
    """``"qlora"``, ``"lora"`` or ``"full"``: a preset is a QLoRA recipe unless ``--lora`` is given."""
    from minillm.hf.presets import PRESETS

    if settings.get("qlora") and settings.get("lora"):
        raise InputError("--qlora and --lora exclude each other (QLoRA is LoRA on a 4-bit base); pick one")
    if settings.get("qlora") or (settings.get("preset") in PRESETS and not settings.get("lora")):
        return "qlora"
    return "lora" if settings.get("lora") else "full"


def finetune_layer(first: dict[str, Any], environ: Any = None, dotenv: str | None = ".env") -> dict[str, Any]:
    """The settings under the config file and the flags: defaults < preset < environment (see the docstring).

    ``first`` is what the flags and the config file say (it picks the preset and the method).
    """
    from minillm.hf.presets import PRESETS, resolve_settings

    preset = first.get("preset") if first.get("preset") in PRESETS else None
    kind = "full" if method(first) == "full" else "lora"
    layered = resolve_settings(preset, kind, {}, environ=environ, dotenv=dotenv)
    layer = {**FINETUNE_DEFAULTS, **{RENAMED.get(k, k): v for k, v in layered.items()}}
    layer["qlora"], layer["lora"] = method(first) == "qlora", method(first) == "lora"
    return layer


def check_finetune_settings(settings: dict[str, Any], typed: set[str]) -> dict[str, Any]:
    """Validate and complete fine-tuning settings; refuse from-scratch size flags in one line."""
    from minillm.hf.presets import PRESETS

    if settings.get("preset") and settings["preset"] not in PRESETS:
        raise InputError(f"--preset {settings['preset']!r} is not a fine-tuning preset (size presets are for training "
                         f"from scratch); fine-tuning presets: {', '.join(PRESETS)}")
    sized = sorted(k for k in SIZE_SETTINGS if k in typed)
    if sized:
        raise InputError(f"--{sized[0]} sets the size of a model trained from scratch; the base model "
                         f"{settings.get('model')!r} fixes it when fine-tuning (drop the flag)")
    if not settings.get("model"):
        raise InputError("fine-tuning needs the base model: --model ALIAS_OR_PATH (e.g. smollm2-135m), MODEL_NAME "
                         "in the environment or .env, or a fine-tuning --preset")
    if not settings.get("data_path"):
        raise InputError("fine-tuning needs data: --train_data FILE (.json list, .jsonl, .txt or a folder)")
    if settings.get("lora_alpha") is None:
        settings["lora_alpha"] = 2 * int(settings["lora_r"])  # alpha = 2r, as the seed sets it
    modules = settings.get("target_modules")
    if isinstance(modules, str):
        settings["target_modules"] = [m.strip() for m in modules.split(",") if m.strip()]
    settings["qlora"], settings["lora"] = method(settings) == "qlora", method(settings) == "lora"
    return settings


def load_options(settings: dict[str, Any]) -> dict[str, Any]:
    """The keyword options of :func:`training.load_model_and_tokenizer` a run's settings give."""
    adapts = settings["qlora"] or settings["lora"]
    options: dict[str, Any] = {"use_qlora": settings["qlora"], "use_lora": settings["lora"], "dtype": settings.get("dtype")}
    if adapts:
        options.update(lora_r=int(settings["lora_r"]), lora_alpha=int(settings["lora_alpha"]),
                       lora_dropout=float(settings["lora_dropout"]))
        if settings.get("target_modules"):
            options["target_modules"] = tuple(settings["target_modules"])
    return options


def build_finetune(settings: dict[str, Any], root: Path, train: list[Any], val: list[Any]) -> Any:
    """Model (with its adapter), tokenizer, dataloaders and Trainer of a fine-tuning run (a ``training.run.Run``)."""
    import torch

    from minillm.devices import resolve_device

    from . import Trainer, create_dataloaders
    from .model_extraction import load_model_and_tokenizer
    from .run import Run, scheduler_for

    device = str(resolve_device(settings["device"]))
    torch.manual_seed(settings["seed"])  # LoRA's A matrices start random: the same seed gives the same start
    model, tokenizer = load_model_and_tokenizer(settings["model"], tokenizer_path=settings.get("tokenizer_path"),
                                                device=device, **load_options(settings))
    if tokenizer is None:
        raise InputError(f"{settings['model']} has no tokenizer; pass --tokenizer_path")
    trainable, total = count_trainable(model, settings["model"])
    shape = loader_shape(model, settings["max_seq_len"], settings["model"])
    max_len, packing = shape["max_length"], shape["packing"]
    train_loader, val_loader = create_dataloaders(train, val, tokenizer, batch_size=settings["batch_size"],
                                                  seed=settings["seed"], **shape)
    eval_every = settings["eval_steps"] or None
    trainer = Trainer(
        model=model, train_dataloader=train_loader, val_dataloader=val_loader, learning_rate=settings["lr"],
        checkpoint_dir=root, device=device, early_stopping_patience=settings["early_stopping_patience"],
        early_stopping_min_delta=settings["early_stopping_min_delta"], tokenizer=tokenizer,
        weight_decay=settings["weight_decay"], warmup_steps=settings["warmup_steps"], seed=settings["seed"],
        lr_scheduler=scheduler_for(settings), max_steps=settings["max_steps"], eval_every=eval_every,
        save_every=settings["save_steps"] or eval_every,
        gradient_accumulation_steps=settings["gradient_accumulation_steps"],
        mixed_precision=settings["mixed_precision"], max_minutes=settings["max_minutes"],
    )
    description = (f"{settings['model']} ({type(innermost(model)).__name__}), {method(settings)}: "
                   f"{trainable / 1e6:.2f}M of {total / 1e6:.1f}M parameters trainable; "
                   f"{'packed' if packing else 'padded'} rows of up to {max_len} tokens")
    return Run(settings, tokenizer, model, trainer, description=description)


def loader_shape(model: Any, max_length: int | None, name: str) -> dict[str, Any]:
    """``create_dataloaders`` options that fit ``model``: its family, rows of at most its context (default
    :data:`DEFAULT_MAX_LEN`), and packing only when its forward takes ``segment_ids`` (ours; transformers models
    would let packed documents attend to each other, so their rows are padded)."""
    from .batch_ops import forward_parameters

    context = model_context(model)
    length = max_length or min(DEFAULT_MAX_LEN, context or DEFAULT_MAX_LEN)
    if context is not None and length > context:
        raise InputError(f"--max_seq_len {length} exceeds the context of {name} ({context} positions); pass at most "
                         f"{context}")
    family = getattr(getattr(innermost(model), "config", None), "model_type", None)
    ours = family in ("decoder_only", "encoder_only", "encoder_decoder")
    return {"max_length": length, "model_type": family if ours else "decoder_only",
            "packing": "segment_ids" in (forward_parameters(model) or set())}


def count_trainable(model: Any, name: str) -> tuple[int, int]:
    """``(trainable, total)`` parameters; InputError when nothing would train (e.g. an adapter loaded frozen)."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    if trainable == 0:
        raise InputError(f"{name} loaded with no trainable parameter, so training would change nothing; load an "
                         "adapter with trainable=True (the default), or pass --lora / --qlora to add one")
    return trainable, sum(p.numel() for p in model.parameters())


def innermost(model: Any) -> Any:
    """The model under peft's wrapper."""
    get_base = getattr(model, "get_base_model", None)
    return get_base() if callable(get_base) else model


def model_context(model: Any) -> int | None:
    """Positions the model was built for (``max_position_embeddings`` or our ``max_seq_len``), or None."""
    config = getattr(innermost(model), "config", None)
    for name in ("max_position_embeddings", "max_seq_len"):
        value = getattr(config, name, None)
        if isinstance(value, int):
            return value
    return None
