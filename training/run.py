"""A training run from flat settings (what ``main.py train`` parses): tokenizer, data, model, Trainer.

The run directory holds ``run_config.json`` (the settings), ``tokenizer/`` (trained or copied at the start) and
the Trainer's ``checkpoint-STEP/``, ``best/``, ``final/`` and ``metrics.jsonl``. ``--resume`` reads the first two
back, so a resumed run rebuilds exactly the same tokenizer, data order and model before loading its checkpoint.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from minillm.atomic import atomic_write_text
from minillm.errors import InputError

from .run_tokenizer import run_tokenizer

logger = logging.getLogger(__name__)
RUN_CONFIG = "run_config.json"
MODEL_KEYS = ("d_model", "num_layers", "num_heads", "d_ff")


@dataclass
class Run:
    """Everything a training run needs, built from its settings."""

    settings: dict[str, Any]
    tokenizer: Any
    model: Any
    trainer: Any
    claim: _Claim | None = None  # the run directory a fresh start took (None when resumed)
    description: str | None = None  # a fine-tuning run describes its pretrained model itself

    def describe(self) -> str:
        if self.description is not None:
            return self.description
        params = sum(p.numel() for p in self.model.parameters())
        c = self.model.config
        return (f"{c.model_type} {params / 1e6:.2f}M parameters (d_model {c.d_model}, {c.num_layers} layers, "
                f"{c.num_heads} heads, vocab {c.vocab_size}, max_seq_len {c.max_seq_len})")


def prepare_run(settings: dict[str, Any], fresh: bool) -> Run:
    """Build tokenizer, dataloaders, model and Trainer. ``fresh`` starts a new run in ``checkpoint_dir``.

    A fresh start that fails (missing or empty data, a batch larger than the data ...) leaves nothing behind: the
    run directory is checked first, data is read and validated before anything is written, and once the
    directory is claimed (``run_config.json``, ``tokenizer/``) any failure removes what this start wrote and puts
    back a run it was replacing (``--overwrite``). See :func:`discard_failed_start` for failures after this.
    """
    root = Path(settings["checkpoint_dir"])
    if fresh:
        _check_run_dir(root, bool(settings.get("overwrite")))  # refuse before reading any data
    train, val = _read_data(settings)
    if not fresh:
        return _build(settings, root, train, val, fresh=False)
    claim = _Claim.take(root)
    try:
        atomic_write_text(root / RUN_CONFIG, json.dumps(settings, indent=2) + "\n")
        run = _build(settings, root, train, val, fresh=True)
    except BaseException:
        claim.undo()
        raise
    claim.commit()
    run.claim = claim
    return run


def discard_failed_start(run: Run) -> bool:
    """Remove the run directory of a fresh start whose training failed before it saved any model.

    For a validation error raised by ``trainer.train`` itself (a device that is absent ...); a run that saved a
    checkpoint, or a resumed run, is kept. Returns whether anything was removed.
    """
    if run.claim is None or _has_saved_model(Path(run.settings["checkpoint_dir"])):
        return False
    run.claim.undo()
    run.claim = None
    return True


def _read_data(settings: dict[str, Any]) -> tuple[list[Any], list[Any]]:
    """(train, val) items: ``eval_data`` is the validation set when given, else ``val_split`` of ``data_path``."""
    from . import load_and_split_data

    options = {"split_method": settings["split_method"], "seed": settings["seed"],
               "encoding_errors": settings["encoding_errors"]}
    if settings.get("eval_data"):
        train = load_and_split_data(settings["data_path"], val_split=0.0, **options)[0]
        return train, load_and_split_data(settings["eval_data"], val_split=0.0, **options)[0]
    train, val, _ = load_and_split_data(settings["data_path"], val_split=settings["val_split"], **options)
    if settings["val_split"] > 0 and not val:
        raise InputError(f"val_split={settings['val_split']} leaves no validation data from {len(train)} pieces; "
                         "add data or use --val_split 0")
    return train, val


def _build(settings: dict[str, Any], root: Path, train: list[Any], val: list[Any], fresh: bool) -> Run:
    """Tokenizer (trained and saved in ``root/tokenizer`` when fresh), model, dataloaders and Trainer; a
    fine-tuning run (``settings["model"]``) is built by :func:`training.finetune_run.build_finetune`."""
    import torch

    if settings.get("model"):
        from .finetune_run import build_finetune

        return build_finetune(settings, root, train, val)

    from minillm import ModelConfig
    from minillm.checkpoint import FAMILIES

    from . import Trainer, create_dataloaders

    tokenizer = run_tokenizer(settings, root, train, fresh)
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
        lr_scheduler=scheduler_for(settings),
        max_steps=settings["max_steps"], eval_every=eval_every, save_every=settings["save_steps"] or eval_every,
        gradient_accumulation_steps=settings["gradient_accumulation_steps"],
        mixed_precision=settings["mixed_precision"], max_minutes=settings["max_minutes"],
        optimizer=settings.get("optimizer", "adamw"), muon_lr=settings.get("muon_lr", 0.02),
        compile=bool(settings.get("compile", False)),
    )
    return Run(settings, tokenizer, model, trainer)


def resume_settings(resume: Any, checkpoint_dir: str | None) -> tuple[dict[str, Any], Path | None]:
    """The saved settings of the run to resume and its newest complete checkpoint (None: run finished).

    ``resume`` is True (the run in ``checkpoint_dir``, else the newest run under ``checkpoints/``) or a path
    to a run directory or to one ``checkpoint-STEP`` inside it.
    """
    from . import find_latest_checkpoint

    if resume is True:
        # the newest train run that saved a model; failing that, the newest train run (to say what it lacks)
        runs = Path("checkpoints")
        root = Path(checkpoint_dir) if checkpoint_dir else (newest_run(runs, with_model=True, train_only=True)
                                                            or newest_run(runs))
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


def newest_run(root: Path, with_model: bool = False, train_only: bool = False) -> Path | None:
    """The most recently written run directory under ``root``, or None.

    Without ``with_model``: the train run (one holding ``run_config.json``) written last. With ``with_model``:
    the run that saved a model (a checkpoint, best/ or final/) last, whichever mode made it (``continue`` runs
    hold no ``run_config.json``), never a failed start; ``train_only`` keeps only train runs. Hidden folders
    (temporary ones) are skipped.
    """
    found: list[tuple[float, Path]] = []
    for run in [p for p in root.iterdir() if p.is_dir() and p.name[0] != "."] if root.is_dir() else []:
        config = run / RUN_CONFIG
        if config.is_file() or (with_model and not train_only):
            times = [m.stat().st_mtime for m in _saved_models(run)] if with_model else [config.stat().st_mtime]
            if times:
                found.append((max(times), run))
    return max(found, key=lambda item: item[0])[1] if found else None


def _check_run_dir(root: Path, overwrite: bool) -> None:
    """Refuse a ``root`` a new run may not take (writes nothing).

    An empty or missing folder may be used. A previous run (it holds ``run_config.json``) that never saved a
    model (a start of an earlier version that failed) may be replaced; one with a saved model only with
    ``overwrite``. Any other non-empty folder is refused even with ``overwrite``: it is not ours to delete.
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


@dataclass
class _Claim:
    """The run directory a fresh start took. ``created``: the highest folder it created (``root`` or a missing
    parent such as ``checkpoints/``; None when ``root`` existed); ``backup``: the run it replaces, moved aside."""

    root: Path
    created: Path | None
    backup: Path | None

    @classmethod
    def take(cls, root: Path) -> _Claim:
        """Make ``root`` an empty directory (after :func:`_check_run_dir` allowed it)."""
        created = None
        for folder in (root, *root.parents):
            if folder.exists():
                break
            created = folder
        backup = None
        if root.is_dir() and any(root.iterdir()):
            logger.info("replacing the previous run in %s", root)
            backup = root.with_name(f".{root.name}.replaced-{os.getpid()}")
            os.replace(root, backup)
        root.mkdir(parents=True, exist_ok=True)
        return cls(root, created, backup)

    def commit(self) -> None:
        """The start succeeded: delete the replaced run."""
        if self.backup is not None:
            shutil.rmtree(self.backup, ignore_errors=True)
            self.backup = None

    def undo(self) -> None:
        """The start failed: remove what it wrote, leave ``root`` as it was (missing, empty, or the old run)."""
        if self.created is not None:
            shutil.rmtree(self.created, ignore_errors=True)
            return
        shutil.rmtree(self.root, ignore_errors=True)
        if self.backup is not None:
            os.replace(self.backup, self.root)
            self.backup = None
        else:
            self.root.mkdir()


def _has_saved_model(root: Path) -> bool:
    return bool(_saved_models(root))


def _saved_models(root: Path) -> list[Path]:
    """The model directories a run saved: complete ``checkpoint-STEP/`` and ``best/`` / ``final/``."""
    from .checkpoints import list_checkpoints

    return [path for _, path in list_checkpoints(root)] + [root / n for n in ("best", "final") if (root / n).is_dir()]


def scheduler_for(settings: dict[str, Any]) -> str:
    """``auto``: cosine decay when the run has an end to plan for (a time budget or a step limit), else constant.

    >>> scheduler_for({"lr_scheduler": "auto", "max_minutes": 8.0}), scheduler_for({"max_steps": None})
    ('cosine', 'constant')
    """
    chosen = settings.get("lr_scheduler", "auto")
    if chosen != "auto":
        return chosen
    return "cosine" if settings.get("max_minutes") or settings.get("max_steps") else "constant"

