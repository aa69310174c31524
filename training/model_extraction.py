"""Load a trained model for use or more training, and slim a training checkpoint down for inference.

``model_path`` may be one of our checkpoint directories (``best/``, ``final/``, ``checkpoint-STEP/``), a whole
run directory (then ``best/``, else ``final/``, else the latest complete ``checkpoint-STEP/`` is used), a
transformers model directory, a ``.gguf`` file, or an alias from :data:`MODEL_ALIASES` (``smollm2``);
:func:`minillm.load_pretrained` picks the model family.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import minillm
from minillm.atomic import atomic_directory, has_marker
from minillm.checkpoint import resolve_model_dir
from minillm.errors import InputError

from .checkpoints import find_latest_checkpoint, save_tokenizer
from .tokenizer_loading import has_tokenizer, load_tokenizer

logger = logging.getLogger(__name__)

# Options load_model_and_tokenizer understands (the LoRA ones go to minillm.hf.loading.LoraOptions).
LOAD_OPTIONS = {"dtype", "use_qlora", "use_lora", "lora_r", "lora_alpha", "lora_dropout", "target_modules",
                "preset", "device_map", "trainable"}


def _smollm2() -> Path:
    from minillm.assets import smollm2_gguf_path

    return Path(smollm2_gguf_path())


# Short names every mode accepts as --model_path (lower-case) -> a function giving the local file.
MODEL_ALIASES: dict[str, Callable[[], Path]] = {"smollm2": _smollm2, "smollm2-135m-instruct": _smollm2}


# The original Mini LLM docs load ``./checkpoints/best_model``; the Trainer writes ``best/`` (and ``final/``).
LEGACY_DIR_NAMES = {"best_model": "best", "final_model": "final"}


def resolve_model_path(model_path: str | os.PathLike) -> Path:
    """The model directory (or .gguf file) that ``model_path`` designates; see the module docstring.

    An alias (``smollm2``) names a shipped model unless a file or folder of that name exists here;
    ``RUN/best_model`` (the original docs' name) is ``RUN/best`` unless a folder ``best_model`` exists.
    """
    path = Path(model_path).expanduser()
    alias = MODEL_ALIASES.get(str(model_path).lower())
    if alias is not None and not path.exists():
        path = alias()
    legacy = LEGACY_DIR_NAMES.get(path.name)
    if legacy is not None and not path.exists() and (path.parent / legacy).exists():
        logger.info("%s: the original docs' name of %s/", path, legacy)
        path = path.parent / legacy
    if path.suffix == ".gguf":
        if not path.is_file():
            raise FileNotFoundError(f"GGUF file {str(path)!r} does not exist")
        return path
    if not path.exists():
        raise FileNotFoundError(f"model path {str(path)!r} does not exist")
    if (path / "config.json").is_file():
        return path
    for name in ("best", "final"):
        if (path / name / "config.json").is_file():
            return path / name
    latest = find_latest_checkpoint(path)
    if latest is not None:
        return latest
    raise FileNotFoundError(
        f"{str(path)!r} holds no model: expected config.json, a .gguf file, or a run directory with best/, final/ "
        f"or checkpoint-STEP/"
    )


def load_model_and_tokenizer(
    model_path: str | os.PathLike, tokenizer_path: str | os.PathLike | None = None, device: str | None = None,
    **options: Any,
) -> tuple[Any, Any]:
    """Return ``(model, tokenizer)``; the tokenizer is None when neither path holds one (the model also carries
    it as ``model.tokenizer``).

    Options: ``dtype`` ("float32", "bfloat16", ...); ``use_qlora`` / ``use_lora`` with ``lora_r`` (16),
    ``lora_alpha`` (32), ``lora_dropout`` (0.05), ``target_modules`` (the seven projections), ``preset`` (a
    fine-tuning preset's LoRA settings), ``device_map``; ``trainable`` (True: an adapter directory loads
    trainable). A hub alias (``mistral-7b`` ...), an adapter directory, or ``use_qlora``/``use_lora`` on anything
    but one of our checkpoints loads through transformers (:mod:`minillm.hf.loading`); ``use_qlora``/``use_lora``
    on our checkpoint wraps our model with peft. An unknown option raises InputError naming it.
    """
    unknown = sorted(set(options) - LOAD_OPTIONS)
    if unknown:
        raise InputError(f"unknown option(s) {unknown} for load_model_and_tokenizer; supported: {sorted(LOAD_OPTIONS)}")
    trainable = options.pop("trainable", True)
    lora = _lora_options(options)
    if _goes_through_transformers(model_path, lora):
        from minillm.hf.loading import LoraOptions, load_hf_model, tokenizer_directory

        lora = lora if lora is not None else LoraOptions(dtype=options.get("dtype"))
        model = load_hf_model(model_path, lora, device=device, trainable=trainable)
        source = Path(tokenizer_path) if tokenizer_path is not None else tokenizer_directory(model_path)
        tokenizer = load_tokenizer(source) if tokenizer_path is not None or has_tokenizer(source) else None
        return _carry(model, tokenizer), tokenizer
    path = resolve_model_path(model_path)
    model = minillm.load_pretrained(path, device=device, dtype=options.get("dtype"))
    if lora is not None and lora.adapts:
        from minillm.hf.loading import add_lora, name_base, qlora_compute_dtype, quantize_ours

        if not isinstance(model, minillm.DecoderOnlyModel):
            flag = "--qlora" if lora.use_qlora else "--lora"
            raise InputError(f"{flag} needs a decoder (Llama-family) model; {str(path)!r} holds a "
                             f"{model.config.model_type} model, which has no LoRA/4-bit path here (train or "
                             "continue it in full instead)")

        if lora.use_qlora:
            model = quantize_ours(model, lora, device)
        model = name_base(add_lora(model, lora, quantized=False), str(path.resolve()), resolve_model_dir(path),
                          lora.use_qlora, qlora_compute_dtype(lora, device))
    if tokenizer_path is not None:
        tokenizer = load_tokenizer(tokenizer_path)
    else:
        source = resolve_model_dir(path)  # a .gguf file's converted directory holds its tokenizer
        tokenizer = load_tokenizer(source) if has_tokenizer(source) else None
    logger.info("loaded %s from %s (tokenizer: %s)", type(model).__name__, path, type(tokenizer).__name__)
    return _carry(model, tokenizer), tokenizer


def _carry(model: Any, tokenizer: Any) -> Any:
    """The model with ``model.tokenizer`` set: what ``RAGModel(store, model)`` (the original docs' call, which
    passes no tokenizer) tokenizes with."""
    if tokenizer is not None:
        model.tokenizer = tokenizer
    return model


def _lora_options(options: dict[str, Any]) -> Any:
    """The LoRA/QLoRA options as :class:`minillm.hf.loading.LoraOptions`, or None when none is given."""
    lora_keys = LOAD_OPTIONS - {"dtype"}
    if not any(options.get(k) not in (None, False) for k in lora_keys):
        return None
    from minillm.hf.loading import LoraOptions
    from minillm.hf.presets import get_preset

    values = {k: v for k, v in options.items() if v is not None}
    preset = values.pop("preset", None)
    if preset is not None:
        settings = get_preset(preset).as_settings()
        for key in ("lora_r", "lora_alpha", "lora_dropout", "target_modules"):
            values.setdefault(key, settings[key])
    return LoraOptions(**values)


def _goes_through_transformers(model_path: str | os.PathLike, lora: Any) -> bool:
    """Hub aliases and adapters always; GGUF files, aliases and HF directories when LoRA/QLoRA is asked for."""
    from minillm.hf.aliases import HUB_ALIASES

    path = Path(model_path).expanduser()
    if str(model_path).lower() in HUB_ALIASES and not path.exists():
        return True
    if (path / "adapter_config.json").is_file():
        return True
    if lora is None or not lora.adapts:
        return False
    return not _is_ours(path)


def _is_ours(path: Path) -> bool:
    """A model directory minillm wrote (its marker, or a training checkpoint), or a run directory holding one."""
    if not path.is_dir():
        return False
    return has_marker(path) or (path / "trainer_state").is_dir() or any(
        has_marker(path / name) for name in ("best", "final"))


def embedding_rows(model: Any) -> int | None:
    """Rows of the model's input embedding, or None when it does not say."""
    get = getattr(model, "get_input_embeddings", None)
    embedding = get() if get is not None else None
    return getattr(embedding, "num_embeddings", None)


def check_vocabulary(model: Any, tokenizer: Any) -> None:
    """Refuse a tokenizer whose vocabulary size differs from the model's embedding rows."""
    rows, size = embedding_rows(model), getattr(tokenizer, "vocab_size", None)
    if rows is not None and size is not None and rows != size:
        raise InputError(
            f"tokenizer vocabulary size {size} does not match the model's embedding size {rows}; use the "
            f"tokenizer the model was trained with"
        )


def continue_training(
    model_path: str | os.PathLike, train_dataloader: Any, val_dataloader: Any = None, learning_rate: float = 1e-4,
    epochs: int = 1, checkpoint_dir: str | os.PathLike | None = None, early_stopping_patience: int | None = 3,
    tokenizer: Any = None, device: str = "auto", load_options: dict[str, Any] | None = None, model: Any = None,
    **trainer_options: Any,
) -> dict[str, Any]:
    """Load weights from ``model_path`` and train them further with a new optimizer.

    ``load_options`` go to :func:`load_model_and_tokenizer` (e.g. ``{"dtype": "bfloat16"}``); other keyword
    options go to the :class:`Trainer`. ``model``: an already loaded model to train instead of loading
    ``model_path`` again. ``checkpoint_dir`` defaults to a new ``checkpoints/continued-<time>``, so two calls never
    write into one run. Returns the Trainer's result dict plus ``model`` and ``tokenizer``.
    """
    from .trainer import Trainer

    if model is None:
        model, stored = load_model_and_tokenizer(model_path, **(load_options or {}))
    else:
        stored = None if tokenizer is not None else _stored_tokenizer(model_path)
    tokenizer = tokenizer if tokenizer is not None else stored
    from .finetune_run import count_trainable

    count_trainable(model, str(model_path))  # an adapter reloaded frozen would train nothing: refuse
    if checkpoint_dir is None:
        checkpoint_dir = unique_run_dir(Path("checkpoints"), "continued")
    if tokenizer is not None:
        check_vocabulary(model, tokenizer)
    model.train()
    trainer = Trainer(model=model, train_dataloader=train_dataloader, val_dataloader=val_dataloader,
                      learning_rate=learning_rate, checkpoint_dir=checkpoint_dir, device=device,
                      early_stopping_patience=early_stopping_patience, tokenizer=tokenizer, **trainer_options)
    result = trainer.train(epochs=epochs)
    return {**result, "model": trainer.model, "tokenizer": tokenizer}


def _stored_tokenizer(model_path: str | os.PathLike) -> Any:
    """The tokenizer saved with ``model_path`` (an adapter's own, else its base's), or None."""
    if (Path(model_path).expanduser() / "adapter_config.json").is_file():
        from minillm.hf.loading import tokenizer_directory

        source = tokenizer_directory(model_path)
    else:
        source = resolve_model_dir(resolve_model_path(model_path))
    return load_tokenizer(source) if has_tokenizer(source) else None


def unique_run_dir(root: Path, stem: str) -> Path:
    """``root/stem-YYYYmmdd-HHMMSS`` (with ``-2``, ``-3`` ... appended when that already exists)."""
    base = root / f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return path


def extract_model_for_inference(
    model_path: str | os.PathLike, output_path: str | os.PathLike, device: str = "cpu", dtype: Any = None
) -> Path:
    """Write a slim inference directory (config, weights, generation config, tokenizer; no trainer_state).

    The result opens with :func:`minillm.load_pretrained` and, for the decoder, with transformers'
    ``AutoModelForCausalLM.from_pretrained``.
    """
    if (Path(model_path).expanduser() / "adapter_config.json").is_file():
        return _extract_merged(model_path, output_path, device, dtype)
    model, tokenizer = load_model_and_tokenizer(model_path, device=device, dtype=dtype)
    output = Path(output_path)
    with atomic_directory(output) as tmp:
        model.save_pretrained(str(tmp))
        if tokenizer is not None:
            save_tokenizer(tokenizer, tmp)  # save_pretrained writes no trainer_state/: nothing to strip
    logger.info("extracted %s to %s", model_path, output)
    return output


def _extract_merged(adapter_dir: str | os.PathLike, output_path: str | os.PathLike, device: str, dtype: Any) -> Path:
    """An adapter checkpoint merged into its full-precision base (see :mod:`minillm.hf.merge`), as an HF directory
    with the tokenizer (the checkpoint's, else the base's)."""
    from minillm.hf.loading import tokenizer_directory
    from minillm.hf.merge import merge_adapter

    merged, difference = merge_adapter(adapter_dir, dtype=str(dtype or "float32"), device=device)
    logger.warning("merged %s: largest logits difference against the adapter model %.3g", adapter_dir, difference)
    source = tokenizer_directory(adapter_dir)
    tokenizer = load_tokenizer(source) if has_tokenizer(source) else None
    output = Path(output_path)
    with atomic_directory(output) as tmp:
        merged.save_pretrained(str(tmp))
        if tokenizer is not None:
            save_tokenizer(tokenizer, tmp)
    return output

