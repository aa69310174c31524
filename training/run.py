"""A training run from flat settings (what ``main.py train`` parses): tokenizer, data, model, Trainer.

The run directory holds ``run_config.json`` (the settings), ``tokenizer/`` (trained or copied at the start) and
the Trainer's ``checkpoint-STEP/``, ``best/``, ``final/`` and ``metrics.jsonl``. ``--resume`` reads the first two
back, so a resumed run rebuilds exactly the same tokenizer, data order and model before loading its checkpoint.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from minillm.atomic import atomic_directory, atomic_write_text
from minillm.errors import InputError

logger = logging.getLogger(__name__)
RUN_CONFIG = "run_config.json"
TOKENIZER_DIR = "tokenizer"
MODEL_KEYS = ("d_model", "num_layers", "num_heads", "d_ff")
ENCODER_SPECIALS = ("<|endoftext|>", "<pad>", "<mask>", "<cls>", "<sep>")


@dataclass
class Run:
    """Everything a training run needs, built from its settings."""

    settings: dict[str, Any]
    tokenizer: Any
    model: Any
    trainer: Any

    def describe(self) -> str:
        params = sum(p.numel() for p in self.model.parameters())
        c = self.model.config
        return (f"{c.model_type} {params / 1e6:.2f}M parameters (d_model {c.d_model}, {c.num_layers} layers, "
                f"{c.num_heads} heads, vocab {c.vocab_size}, max_seq_len {c.max_seq_len})")


def prepare_run(settings: dict[str, Any], fresh: bool) -> Run:
    """Build tokenizer, dataloaders, model and Trainer. ``fresh`` starts a new run in ``checkpoint_dir``."""
    import torch

    from minillm import ModelConfig
    from minillm.checkpoint import FAMILIES

    from . import Trainer, create_dataloaders, load_and_split_data

    root = Path(settings["checkpoint_dir"])
    if fresh:  # run_config.json first: a start that fails later leaves a run dir the next start may replace
        _claim_run_dir(root, bool(settings.get("overwrite")))
        atomic_write_text(root / RUN_CONFIG, json.dumps(settings, indent=2) + "\n")
    split_options = {"encoding_errors": settings["encoding_errors"]}
    train, val, _ = load_and_split_data(settings["data_path"], split_method=settings["split_method"],
                                        val_split=settings["val_split"], seed=settings["seed"], **split_options)
    if settings["val_split"] > 0 and not val:
        raise InputError(f"val_split={settings['val_split']} leaves no validation data from {len(train)} pieces; "
                         "add data or use --val_split 0")
    tokenizer = _tokenizer(settings, root, train, fresh)
    overrides = {k: settings[k] for k in MODEL_KEYS if settings.get(k) is not None}
    config = ModelConfig.from_preset(
        settings["preset"], model_type=settings["model_type"], vocab_size=tokenizer.vocab_size,
        max_seq_len=settings["max_seq_len"], dropout=settings["dropout"], bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, **overrides,
    )
    if config.model_type == "encoder_decoder":
        config.decoder_start_token_id = tokenizer.pad_token_id
    train_loader, val_loader = create_dataloaders(
        train, val, tokenizer, batch_size=settings["batch_size"], max_length=settings["max_seq_len"],
        model_type=settings["model_type"], seed=settings["seed"],
    )
    torch.manual_seed(settings["seed"])  # the same --seed gives the same initial weights
    model = FAMILIES[config.model_type](config)
    eval_every = settings["eval_steps"] or None
    trainer = Trainer(
        model=model, train_dataloader=train_loader, val_dataloader=val_loader, learning_rate=settings["lr"],
        checkpoint_dir=root, device=settings["device"], early_stopping_patience=settings["early_stopping_patience"],
        early_stopping_min_delta=settings["early_stopping_min_delta"], tokenizer=tokenizer,
        weight_decay=settings["weight_decay"], warmup_steps=settings["warmup_steps"], seed=settings["seed"],
        max_steps=settings["max_steps"], eval_every=eval_every, save_every=settings["save_steps"] or eval_every,
        gradient_accumulation_steps=settings["gradient_accumulation_steps"],
        mixed_precision=settings["mixed_precision"], max_minutes=settings["max_minutes"],
    )
    return Run(settings, tokenizer, model, trainer)


def resume_settings(resume: Any, checkpoint_dir: str | None) -> tuple[dict[str, Any], Path | None]:
    """The saved settings of the run to resume and its newest complete checkpoint (None: run finished).

    ``resume`` is True (the run in ``checkpoint_dir``, else the newest run under ``checkpoints/``) or a path
    to a run directory or to one ``checkpoint-STEP`` inside it.
    """
    from . import find_latest_checkpoint

    if resume is True:
        root = Path(checkpoint_dir) if checkpoint_dir else newest_run(Path("checkpoints"))
        if root is None:
            raise InputError("--resume found no run under checkpoints/; pass --checkpoint_dir or a run path")
        checkpoint = None
    else:
        path = Path(resume)
        root, checkpoint = (path.parent, path) if path.name.startswith("checkpoint-") else (path, None)
    if not (root / RUN_CONFIG).is_file():
        raise InputError(f"--resume: {str(root)!r} is not a run directory (no {RUN_CONFIG}); nothing to resume")
    settings = json.loads((root / RUN_CONFIG).read_text())
    settings["checkpoint_dir"] = str(root)
    if checkpoint is None:
        if (root / "final").is_dir():
            return settings, None
        checkpoint = find_latest_checkpoint(root)
        if checkpoint is None:
            raise InputError(f"--resume: {str(root)!r} has no complete checkpoint yet; start the run again instead")
    return settings, checkpoint


def newest_run(root: Path, with_model: bool = False) -> Path | None:
    """The most recently modified run directory (one holding run_config.json) under ``root``; with
    ``with_model``, only runs that saved a model (a checkpoint, best/ or final/), not failed starts."""
    runs = [p for p in root.glob(f"*/{RUN_CONFIG}")] if root.is_dir() else []
    if with_model:
        runs = [p for p in runs if _has_saved_model(p.parent)]
    return max(runs, key=lambda p: p.stat().st_mtime).parent if runs else None


def _claim_run_dir(root: Path, overwrite: bool) -> None:
    """Make ``root`` an empty directory for a new run.

    An empty or missing folder is used as it is. A previous run (it holds ``run_config.json``) that never saved
    a checkpoint (its start failed) is replaced; one with checkpoints only with ``overwrite``. Any other non-empty
    folder is refused even with ``overwrite``: it is not ours to delete.
    """
    if root.exists() and not root.is_dir():
        raise InputError(f"checkpoint_dir {str(root)!r} is a file; pass a directory")
    if root.is_dir() and any(root.iterdir()):
        if not (root / RUN_CONFIG).is_file():
            raise InputError(f"checkpoint_dir {str(root)!r} is not empty and holds no {RUN_CONFIG} (not a previous "
                             "run), so it is not replaced even with --overwrite; pass a new or empty directory")
        if _has_saved_model(root) and not overwrite:
            raise InputError(f"checkpoint_dir {str(root)!r} already holds a run; pass --resume to continue it "
                             "or --overwrite to start over")
        logger.info("replacing the previous run in %s", root)
        shutil.rmtree(root)
    root.mkdir(parents=True, exist_ok=True)


def _has_saved_model(root: Path) -> bool:
    """Whether a run directory holds any trained model (a checkpoint, best/ or final/)."""
    from .checkpoints import list_checkpoints

    return bool(list_checkpoints(root)) or any((root / name).is_dir() for name in ("best", "final"))


def _tokenizer(settings: dict[str, Any], root: Path, train: list[Any], fresh: bool) -> Any:
    from tokenizers_bpe import DEFAULT_SPECIAL_TOKENS, BPETokenizer

    from .data.span_corruption import sentinel_tokens
    from .tokenizer_loading import load_tokenizer

    saved = root / TOKENIZER_DIR
    if not fresh and saved.is_dir():
        return load_tokenizer(saved)  # a --tokenizer_path run saved an HF tokenizer here
    if settings.get("tokenizer_path"):
        tokenizer = load_tokenizer(settings["tokenizer_path"])
    else:
        specials = DEFAULT_SPECIAL_TOKENS if settings["model_type"] == "decoder_only" else ENCODER_SPECIALS
        if settings["model_type"] == "encoder_decoder":  # T5 span corruption replaces spans by sentinels
            specials = ENCODER_SPECIALS + sentinel_tokens()
        pad = "<|endoftext|>" if settings["model_type"] == "decoder_only" else "<pad>"
        tokenizer = BPETokenizer(vocab_size=settings["vocab_size"], special_tokens=specials, pad_token=pad)
        tokenizer.train(_sample(train, settings["tokenizer_sample_bytes"]))
    with atomic_directory(saved) as tmp:
        tokenizer.save(tmp)
    return tokenizer


def _sample(items: list[Any], budget: int):
    """Texts of the training items up to ``budget`` UTF-8 bytes (the tokenizer's training sample).

    >>> list(_sample(["éé", "b", "c"], 4))
    ['éé']
    """
    used = 0
    for item in items:
        text = item if isinstance(item, str) else " ".join(_strings(item))
        if used >= budget:
            return
        used += len(text.encode("utf-8"))
        yield text


def _strings(value: Any):
    """Every string inside a JSON item (the text of chat and instruction records)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for inner in value.values():
            yield from _strings(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _strings(inner)
