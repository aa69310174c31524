"""Flag handling shared by the train and continue modes: defaults < --config file < command-line flags.

Flags are parsed with ``argparse.SUPPRESS`` so we know which ones the user typed; that is what lets a config
file fill the rest and lets ``--resume`` refuse flags that would change a saved run.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import yaml

from minillm.errors import InputError


def read_config_file(path: str) -> dict[str, Any]:
    """A flat mapping of flag names to values from a .json, .yaml or .yml file."""
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"--config file {path!r} does not exist")
    text = file.read_text()
    try:
        data = yaml.safe_load(text) if file.suffix in (".yaml", ".yml") else json.loads(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise InputError(f"--config file {path!r} is not valid {file.suffix[1:].upper()}: {exc}") from None
    if not isinstance(data, dict):
        raise InputError(f"--config file {path!r} must hold a mapping of flag names to values")
    return {key.lstrip("-").replace("-", "_"): value for key, value in data.items()}


def merge_settings(
    args: argparse.Namespace, defaults: dict[str, Any], saved: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Combine defaults, a saved run's settings, the --config file and the typed flags (later wins).

    Unknown keys in the config file raise ValueError naming them.
    """
    typed = {k: v for k, v in vars(args).items() if k != "config"}
    from_file: dict[str, Any] = {}
    if getattr(args, "config", None):
        from_file = read_config_file(args.config)
        unknown = sorted(set(from_file) - set(defaults))
        if unknown:
            raise InputError(
                f"--config {args.config!r} has unknown keys: {', '.join(unknown)} (valid: {', '.join(sorted(defaults))})"
            )
    return {**defaults, **(saved or {}), **from_file, **typed}


def add_flag(parser: argparse.ArgumentParser, name: str, help: str, **kwargs: Any) -> None:
    """Add ``--name`` whose absence leaves no attribute (so typed flags can be told from defaults)."""
    parser.add_argument(f"--{name}", default=argparse.SUPPRESS, help=help, **kwargs)
