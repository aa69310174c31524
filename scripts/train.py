"""train: train a model from scratch (tokenizer included), or fine-tune a pretrained one (QLoRA, LoRA or full),
with early stopping and resumable checkpoints."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from minillm.errors import InputError, MissingDependencyError
from tokenizers_bpe.errors import TokenizerInputError
from training.finetune_run import FINETUNE_SETTINGS, is_finetune

from .run_config import add_flag, merge_settings, read_config_file
from .summary import print_summary

SAMPLE_DATA = Path(__file__).resolve().parent.parent / "training" / "sample_data" / "tinyshakespeare.txt"
SAMPLE_BUDGET_MINUTES = 8.0  # the default run must finish within 10 minutes on 2 CPU cores
ARCHITECTURE = ("model_type", "preset", "vocab_size", "d_model", "num_layers", "num_heads", "d_ff", "max_seq_len",
                "dropout", "tokenizer_path")
# what --resume may not change: the model, and what fixes the data order the saved position counts in
FIXED_ON_RESUME = (*ARCHITECTURE, "data_path", "val_split", "split_method", "seed", "batch_size",
                   "gradient_accumulation_steps", "tokenizer_sample_bytes", "encoding_errors", "optimizer",
                   *FINETUNE_SETTINGS)
PATH_SETTINGS = ("data_path", "tokenizer_path", "eval_data")
# errors that mean "refused before training began": a fresh run's directory is then removed
VALIDATION_ERRORS = (InputError, TokenizerInputError, MissingDependencyError, FileNotFoundError, NotADirectoryError)

DEFAULTS: dict[str, Any] = {
    "data_path": None, "model_type": "decoder_only", "preset": None, "vocab_size": 4096, "d_model": None,
    "num_layers": None, "num_heads": None, "d_ff": None, "max_seq_len": 128, "dropout": 0.1, "batch_size": 32,
    "epochs": 10, "max_steps": None, "lr": 1e-3, "warmup_steps": 100, "weight_decay": 0.1, "save_steps": None,
    "eval_steps": 100, "seed": 42, "device": "auto", "checkpoint_dir": None, "early_stopping_patience": 3,
    "early_stopping_min_delta": 0.0, "val_split": 0.1, "split_method": "paragraph", "tokenizer_path": None,
    "tokenizer_sample_bytes": 20_000_000, "encoding_errors": "strict", "max_minutes": None, "lr_scheduler": "auto",
    "optimizer": "adamw", "muon_lr": 0.02, "gradient_accumulation_steps": 1, "mixed_precision": "auto",
    "compile": False, "overwrite": False, **FINETUNE_SETTINGS,
}
PRESET_FOR = {"decoder_only": "tiny", "encoder_only": "bert-tiny", "encoder_decoder": "t5-tiny"}

EXAMPLES = """examples:
  python main.py train                                       # the shipped sample (Tiny Shakespeare), ~10 min on 2 cores
  python main.py train --data_path notes.txt --max_minutes 30  # the recipe sizes the model for 30 minutes
  python main.py --mode train --data_path ./data/train.txt --early_stopping_patience 5
  python main.py train --data_path notes/ --preset small --max_seq_len 256 --epochs 20
  python main.py train --data_path notes/ --preset small --max_steps 5000 --compile   # torch.compile the step
  python main.py train --data_path chats.jsonl --tokenizer_path smollm2_tokenizer/ --lr 3e-4
  python main.py train --data_path corpus.txt --model_type encoder_only      # masked-LM (BERT family)
  python main.py train --config run.yaml                     # any flag below as a key
  python main.py train --resume                              # finish the newest interrupted run
fine-tuning a pretrained model (same Trainer, checkpoints and --resume):
  python main.py train --model smollm2-135m --qlora --train_data train.json --eval_data eval.json
  python main.py train --model smollm2-135m --lora --lora_r 8 --train-data chats.jsonl --max_steps 200
  python main.py train --preset paper_understanding --model ./Mistral-7B-v0.1 --train_data papers_qa.json
  python main.py train --model checkpoints/run/best --qlora --train_data more.txt   # our own decoder
  MODEL_NAME=smollm2-135m QLORA_EPOCHS=1 python main.py train --qlora --train_data train.json
  python -m minillm.hf.presets                               # the fine-tuning presets as a table
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_flag(parser, "data_path", "text file, folder of .txt/.md, or .jsonl (default: the shipped Tiny Shakespeare)")
    parser.add_argument("--train_data", "--train-data", dest="data_path", default=argparse.SUPPRESS,
                        help="the same as --data_path (the seed's spelling)")
    add_flag(parser, "eval_data", "validation file (instead of holding out --val_split of the training data)")
    parser.add_argument("--eval-data", dest="eval_data", default=argparse.SUPPRESS, help="the same as --eval_data")
    add_flag(parser, "model", "fine-tune this pretrained model: an alias (smollm2-135m, mistral-7b, "
             "mistral-7b-instruct, llama-3-8b, llama-3-8b-instruct), an HF directory, a .gguf file or our checkpoint")
    add_flag(parser, "qlora", "fine-tune a LoRA adapter on the 4-bit (NF4) base (bitsandbytes + peft)",
             action="store_true")
    add_flag(parser, "lora", "fine-tune a LoRA adapter on the full-precision base (peft)", action="store_true")
    add_flag(parser, "lora_r", "LoRA rank [16, or the preset's]", type=int)
    add_flag(parser, "lora_alpha", "LoRA alpha [2 x lora_r]", type=int)
    add_flag(parser, "lora_dropout", "LoRA dropout [0.05]", type=float)
    add_flag(parser, "target_modules", "comma-separated module names LoRA adapts [q_proj,k_proj,v_proj,o_proj,"
             "gate_proj,up_proj,down_proj]")
    add_flag(parser, "dtype", "weights dtype of the loaded base (float32, bfloat16, float16) [float32; the 4-bit "
             "compute dtype: bf16 where fast]")
    add_flag(parser, "model_type", "model family", choices=["decoder_only", "encoder_only", "encoder_decoder"])
    add_flag(parser, "preset", "a size for training from scratch (tiny, small, base, bert-tiny, t5-tiny; default "
             "per family) or a fine-tuning preset (paper_understanding, code_retrieval, fast_prototype, high_quality)")
    add_flag(parser, "vocab_size", "BPE vocabulary size when a tokenizer is trained [4096]", type=int)
    for name in ("d_model", "num_layers", "num_heads", "d_ff"):
        add_flag(parser, name, f"override the preset's {name}", type=int)
    add_flag(parser, "max_seq_len", "tokens per training row [128]", type=int)
    add_flag(parser, "dropout", "dropout rate [0.1]", type=float)
    add_flag(parser, "batch_size", "rows per batch [32]", type=int)
    add_flag(parser, "epochs", "maximum epochs [10]", type=int)
    add_flag(parser, "max_steps", "stop after this many optimizer steps", type=int)
    add_flag(parser, "max_minutes", "stop (and save) after this many minutes; without a model-size flag the "
             "budget-aware recipe (training/recipe.py) then picks model, vocabulary, context, batch and schedule",
             type=float)
    add_flag(parser, "lr", "peak learning rate [1e-3]", type=float)
    add_flag(parser, "warmup_steps", "linear warm-up steps [100] (with --max_minutes: at most a tenth of the plan)",
             type=int)
    add_flag(parser, "lr_scheduler", "auto (cosine to the end of --max_minutes / --max_steps, else constant), "
             "constant, cosine or linear [auto]", choices=["auto", "constant", "cosine", "linear"])
    add_flag(parser, "weight_decay", "AdamW weight decay on 2-D weights [0.1]", type=float)
    add_flag(parser, "optimizer", "adamw, or muon (Muon on the blocks' matrices, AdamW on the rest) [adamw]",
             choices=["adamw", "muon"])
    add_flag(parser, "muon_lr", "Muon's peak learning rate (--optimizer muon; --lr stays AdamW's) [0.02]", type=float)
    add_flag(parser, "gradient_accumulation_steps", "micro-batches per step [1]", type=int)
    add_flag(parser, "mixed_precision", "auto (bf16 where the hardware runs it natively), bf16, fp16 or no [auto]",
             choices=["auto", "bf16", "fp16", "no"])
    add_flag(parser, "compile", "run the training forward and backward through torch.compile (compiles for tens of "
             "seconds first; then, for our decoder on CPU in bf16, about 1.7x the eager step)", action="store_true")
    add_flag(parser, "save_steps", "save a checkpoint every N steps (default: at each evaluation)", type=int)
    add_flag(parser, "eval_steps", "evaluate every N steps [100]; 0 = once per epoch", type=int)
    add_flag(parser, "seed", "random seed [42]", type=int)
    add_flag(parser, "device", "auto, cpu, cuda or mps [auto]")
    add_flag(parser, "checkpoint_dir", "run directory (default: checkpoints/<data>-<time>)")
    parser.add_argument("--output_dir", "--output-dir", dest="checkpoint_dir", default=argparse.SUPPRESS,
                        help="the same as --checkpoint_dir (the seed's spelling)")
    add_flag(parser, "early_stopping_patience", "evaluations without improvement before stopping [3]; 0 = never stop early",
             type=int)
    add_flag(parser, "early_stopping_min_delta", "smallest improvement that counts [0]", type=float)
    add_flag(parser, "val_split", "fraction held out for validation [0.1]", type=float)
    add_flag(parser, "split_method", "paragraph, sentence, chunk, semantic or regex [paragraph]")
    add_flag(parser, "tokenizer_path", "use this tokenizer instead of training a BPE one")
    add_flag(parser, "tokenizer_sample_bytes", "bytes of data to train the BPE tokenizer on [20 MB]", type=int)
    add_flag(parser, "encoding_errors", "strict or replace, for data that is not clean UTF-8 [strict]",
             choices=["strict", "replace"])
    add_flag(parser, "overwrite", "start over in a --checkpoint_dir that already holds a run", action="store_true")
    parser.add_argument("--resume", nargs="?", const=True, default=None,
                        help="resume the newest run (or the run / checkpoint given) from its last complete checkpoint")
    parser.add_argument("--config", default=None, help="JSON or YAML file of flag values")
    parser.add_argument("--verbose", action="store_true")


def main(args: argparse.Namespace) -> int:
    from training.run import prepare_run

    resume = args.resume
    del args.resume, args.verbose
    if resume is not None:
        return _resume(args, resume)
    settings = _normalize(merge_settings(args, DEFAULTS))
    if is_finetune(settings):
        return _finetune(args, settings)
    if not settings["data_path"]:
        settings["data_path"] = str(SAMPLE_DATA)
        if settings["max_minutes"] is None:
            settings["max_minutes"] = SAMPLE_BUDGET_MINUTES
        print(f"data: the shipped sample {SAMPLE_DATA.name} (training budget {settings['max_minutes']} min; "
              "--data_path for your own, --max_minutes to change)", file=sys.stderr)
    _apply_recipe(args, settings)
    settings["preset"] = settings["preset"] or PRESET_FOR[settings["model_type"]]
    if not settings["checkpoint_dir"]:
        stem = Path(settings["data_path"]).stem or "run"
        settings["checkpoint_dir"] = str(Path("checkpoints") / f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}")
    run = prepare_run(settings, fresh=True)  # a start that fails validation leaves nothing behind
    return _train(run, resume_from=None)


def _apply_recipe(args: argparse.Namespace, settings: dict[str, Any]) -> None:
    """With a time budget and no model-size flag, let the budget-aware recipe (training/recipe.py) choose the model,
    vocabulary, context, batch and schedule; every flag typed or set by --config keeps its value."""
    from training.recipe import choose_recipe, corpus_bytes, recipe_applies

    typed = set(vars(args)) - {"config"}
    if getattr(args, "config", None):
        typed |= set(read_config_file(args.config))
    if not recipe_applies(settings, typed):
        return
    plain_text = Path(settings["data_path"]).suffix.lower() not in (".jsonl", ".json")
    recipe = choose_recipe(settings["max_minutes"], corpus_bytes(settings["data_path"]), plain_text=plain_text)
    for key, value in recipe.settings().items():
        if key not in typed:
            settings[key] = value
    print(recipe.describe(), file=sys.stderr)


def _finetune(args: argparse.Namespace, first: dict[str, Any]) -> int:
    """A fine-tuning run: defaults < preset < environment < --config < flags (see training.finetune_run)."""
    from training.finetune_run import check_finetune_settings, finetune_layer, method
    from training.run import prepare_run

    typed = set(vars(args)) - {"config"}
    if getattr(args, "config", None):
        typed |= set(read_config_file(args.config))
    settings = _normalize(merge_settings(args, DEFAULTS, saved=finetune_layer(first)))
    settings = check_finetune_settings(settings, typed)
    if settings.get("compile"):
        raise InputError("--compile applies to training our models from scratch, not to fine-tuning "
                         f"{settings['model']}; drop --compile")
    if not settings["checkpoint_dir"]:
        stem = Path(str(settings["model"]).rstrip("/")).stem or "model"
        name = f"{stem}-{method(settings)}-{time.strftime('%Y%m%d-%H%M%S')}"
        settings["checkpoint_dir"] = str(Path("checkpoints") / name)
    run = prepare_run(settings, fresh=True)  # a start that fails validation leaves nothing behind
    return _train(run, resume_from=None)


def _resume(args: argparse.Namespace, resume: Any) -> int:
    """Continue a saved run; flags repeated from the original command are fine, a changed value is refused."""
    from training.run import prepare_run, resume_settings

    saved, checkpoint = resume_settings(resume, getattr(args, "checkpoint_dir", None))
    # DEFAULTS under the saved settings: a run_config.json from before a key existed still resumes, and --config
    # keys are checked against every known flag
    saved = _normalize({**DEFAULTS, **saved})
    settings = _normalize(merge_settings(args, saved))
    typed = set(vars(args)) - {"config"}
    for key in FIXED_ON_RESUME:
        if not _same(key, settings.get(key), saved.get(key)):
            run = saved["checkpoint_dir"]
            if key in typed:
                raise InputError(f"conflicting flags: --resume continues the saved run {run}, whose {key} is "
                                 f"{saved.get(key)!r}, so --{key} {settings[key]!r} cannot change it; drop the flag "
                                 "or give the saved value (or start a new run without --resume)")
            raise InputError(f"conflicting settings: --resume continues the saved run {run}, so {key!r} cannot change "
                             f"(saved {saved.get(key)!r}, the --config file sets {settings[key]!r}); drop it (or "
                             "start a new run without --resume)")
    if checkpoint is None:
        print(f"run {saved['checkpoint_dir']} already finished (final/ exists); nothing to resume.")
        return 0
    run = prepare_run(settings, fresh=False)
    return _train(run, resume_from=checkpoint)


def _same(key: str, given: Any, saved: Any) -> bool:
    """Whether a flag value equals the saved one (paths compare by the file they name)."""
    if key in PATH_SETTINGS and given is not None and saved is not None:
        return Path(str(given)).expanduser().resolve() == Path(str(saved)).expanduser().resolve()
    return given == saved


def _normalize(settings: dict[str, Any]) -> dict[str, Any]:
    """Flag values with a CLI-only meaning: ``--early_stopping_patience 0`` turns early stopping off."""
    if settings.get("early_stopping_patience") == 0:
        settings["early_stopping_patience"] = None
    return settings


def _train(run: Any, resume_from: Path | None) -> int:
    from training.run import discard_failed_start

    settings = run.settings
    print(f"model: {run.describe()}", file=sys.stderr)
    if resume_from:
        print(f"resuming from {resume_from}", file=sys.stderr)
    try:
        result = run.trainer.train(epochs=settings["epochs"], resume_from_checkpoint=resume_from)
    except VALIDATION_ERRORS:
        discard_failed_start(run)  # refused before anything was saved (a fresh start only): leave nothing behind
        raise
    best = Path(settings["checkpoint_dir"]) / "best"
    print_summary(result, settings["epochs"], settings["max_steps"], settings["max_minutes"],
                  settings["early_stopping_patience"])
    print(f"\ncheckpoints: {settings['checkpoint_dir']}  (best model: {best})")
    print("next:")
    if settings.get("model"):
        print(f"  python main.py generate --model_path {best} --prompt \"Your question\" --chat")
    elif settings["model_type"] == "decoder_only":
        print(f"  python main.py generate --model_path {best} --prompt \"ROMEO:\"")
    print(f"  python main.py continue --model_path {best} --data_path MORE.txt --epochs 2")
    print(f"  python main.py extract --model_path {best} --output_path exported/")
    return 0
