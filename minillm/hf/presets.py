"""The seed's fine-tuning presets, and how flags, the environment and a ``.env`` file override them.

Precedence: a typed flag > the environment (or ``.env`` in the working directory) > the preset. The seed's
variables: ``MODEL_NAME``; ``QLORA_EPOCHS``, ``QLORA_BATCH_SIZE``, ``QLORA_LR`` for (Q)LoRA runs; ``FULL_EPOCHS``,
``FULL_BATCH_SIZE``, ``FULL_LR`` for full fine-tuning; ``MAX_SEQ_LENGTH``. A malformed value is an InputError
naming the variable, its value and where it came from.

``python -m minillm.hf.presets`` prints the presets as a table.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from minillm.errors import InputError

SEVEN_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass(frozen=True)
class FineTunePreset:
    """A named QLoRA recipe (every field can be overridden by a flag)."""

    name: str
    model: str
    lora_r: int
    max_seq_length: int
    description: str
    batch_size: int = 4
    gradient_accumulation_steps: int = 4
    learning_rate: float = 2e-4
    epochs: int = 3
    lora_dropout: float = 0.05
    target_modules: tuple[str, ...] = SEVEN_MODULES

    @property
    def lora_alpha(self) -> int:
        """alpha = 2r, as the seed sets it."""
        return 2 * self.lora_r

    def as_settings(self) -> dict[str, Any]:
        """The preset as flat training settings (the names ``main.py train`` uses)."""
        values = dataclasses.asdict(self)
        values.pop("name")
        values.pop("description")
        values["lora_alpha"] = self.lora_alpha
        values["target_modules"] = list(self.target_modules)
        return values


PRESETS: dict[str, FineTunePreset] = {p.name: p for p in (
    FineTunePreset("paper_understanding", "mistral-7b", 16, 2048, "question answering over papers"),
    FineTunePreset("code_retrieval", "llama-3-8b", 32, 4096, "long code contexts"),
    FineTunePreset("fast_prototype", "mistral-7b", 8, 1024, "a quick first adapter"),
    FineTunePreset("high_quality", "llama-3-8b", 64, 2048, "the largest adapter"),
)}

# variable -> (setting, type, which runs it applies to: "lora" (QLoRA and LoRA), "full" or "all")
ENV_SETTINGS: dict[str, tuple[str, type, str]] = {
    "MODEL_NAME": ("model", str, "all"),
    "QLORA_EPOCHS": ("epochs", int, "lora"),
    "QLORA_BATCH_SIZE": ("batch_size", int, "lora"),
    "QLORA_LR": ("learning_rate", float, "lora"),
    "FULL_EPOCHS": ("epochs", int, "full"),
    "FULL_BATCH_SIZE": ("batch_size", int, "full"),
    "FULL_LR": ("learning_rate", float, "full"),
    "MAX_SEQ_LENGTH": ("max_seq_length", int, "all"),
}


def get_preset(name: str) -> FineTunePreset:
    """The preset called ``name``; InputError listing the valid names otherwise."""
    if name not in PRESETS:
        raise InputError(f"unknown fine-tuning preset {name!r}; valid: {', '.join(PRESETS)}")
    return PRESETS[name]


def read_dotenv(path: str | os.PathLike) -> dict[str, str]:
    """``KEY=VALUE`` lines of a ``.env`` file (``#`` comments, blank lines, ``export`` and quotes allowed)."""
    values: dict[str, str] = {}
    file = Path(path)
    if not file.is_file():
        return values
    for number, raw in enumerate(file.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.removeprefix("export ").partition("=")
        if not sep or not key.strip().isidentifier():
            raise InputError(f"{file}:{number} is not KEY=VALUE: {raw!r}")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def env_overrides(kind: str, environ: Mapping[str, str] | None = None,
                  dotenv: str | os.PathLike | None = ".env") -> dict[str, Any]:
    """Settings the environment (over the ``.env`` file) sets for a run of ``kind`` ("lora" or "full")."""
    if kind not in ("lora", "full"):
        raise InputError(f"kind must be 'lora' or 'full', got {kind!r}")
    from_file = read_dotenv(dotenv) if dotenv is not None else {}
    environ = os.environ if environ is None else environ
    settings: dict[str, Any] = {}
    for variable, (setting, cast, applies) in ENV_SETTINGS.items():
        source = "the environment" if variable in environ else f"{dotenv}"
        value = environ.get(variable, from_file.get(variable))
        if value is None or applies not in ("all", kind):
            continue
        try:
            parsed = cast(value)
        except ValueError:
            raise InputError(f"{variable}={value!r} (from {source}) is not a valid {cast.__name__}") from None
        if cast is not str and not parsed > 0:
            raise InputError(f"{variable}={value!r} (from {source}) must be > 0")
        settings[setting] = parsed
    return settings


def resolve_settings(preset: str | None, kind: str, flags: Mapping[str, Any],
                     environ: Mapping[str, str] | None = None, dotenv: str | os.PathLike | None = ".env",
                     ) -> dict[str, Any]:
    """preset < environment < typed flags (only the flags given: None values are not typed)."""
    settings = get_preset(preset).as_settings() if preset else {}
    settings.update(env_overrides(kind, environ, dotenv))
    settings.update({k: v for k, v in flags.items() if v is not None})
    return settings


def table() -> str:
    """The presets as a Markdown table."""
    head = "| preset | model | r | alpha | context | batch x accum | lr | epochs | dropout | for |"
    rows = [head, "|" + "---|" * 10]
    for p in PRESETS.values():
        rows.append(f"| {p.name} | {p.model} | {p.lora_r} | {p.lora_alpha} | {p.max_seq_length} | "
                    f"{p.batch_size} x {p.gradient_accumulation_steps} | {p.learning_rate:g} | {p.epochs} | "
                    f"{p.lora_dropout:g} | {p.description} |")
    rows.append(f"\nLoRA targets (all presets): {', '.join(SEVEN_MODULES)}")
    return "\n".join(rows)


if __name__ == "__main__":
    sys.stdout.write(table() + "\n")
