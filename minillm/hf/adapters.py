"""Several named LoRA adapters on one base model: load, list, switch per call (peft's multi-adapter API).

    adapters = AdapterSet(base, base_name="checkpoints/default/best")
    adapters.load("eli5", "adapters/eli5")            # the first load wraps ``base`` (PeftModel.from_pretrained)
    adapters.load("executive", "adapters/executive")  # later ones: PeftModel.load_adapter
    adapters.names()                                 # ['eli5', 'executive']
    adapters.use("eli5")                             # set_adapter; adapters.model.generate(...) uses it
    adapters.use(None)                               # the base, bit for bit (adapter layers disabled)
    with adapters.using("executive"):                # a per-call switch, restored afterwards
        out = adapters.model.generate(ids, max_new_tokens=32)
    adapters.generate(ids, adapter="eli5", max_new_tokens=32)   # the same in one call

The base is a transformers causal LM or our :class:`~minillm.DecoderOnlyModel` (its module names are Llama's, so
an adapter trained on the transformers copy of the same weights fits it too). peft wraps the base in place, so
always call ``adapters.model``. Each adapter's ``base_model_name_or_path`` is checked against the loaded base
(:func:`same_model`: resolved paths, hub ids and aliases compare equal); an adapter naming no base is accepted.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from minillm.errors import InputError

from .aliases import HUB_ALIASES, SHIPPED_ALIASES
from .loading import ADAPTER_CONFIG, require_peft

logger = logging.getLogger(__name__)

BASE = "base"  # the name that means "no adapter" (``use("base")`` is ``use(None)``); no adapter may take it
SMOLLM2_HUB_ID = "huggingfacetb/smollm2-135m-instruct"  # what the shipped GGUF quantizes
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def adapter_directory(path: str | os.PathLike) -> Path:
    """``path`` as a peft adapter directory; one-line InputError when it is missing or has no adapter_config.json."""
    directory = Path(path).expanduser()
    if not directory.is_dir():
        raise InputError(f"adapter {str(directory)!r} does not exist; pass a peft adapter directory "
                         f"(the folder PeftModel.save_pretrained wrote, holding {ADAPTER_CONFIG})")
    if not (directory / ADAPTER_CONFIG).is_file():
        raise InputError(f"{str(directory)!r} holds no {ADAPTER_CONFIG}, so it is not a peft adapter; pass the "
                         "folder PeftModel.save_pretrained wrote")
    return directory


def find_adapter(spec: str, search: Sequence[str | os.PathLike] = ()) -> tuple[str, Path]:
    """``(name, directory)`` for ``PATH``, ``NAME=PATH`` or a bare ``NAME`` looked up as ``FOLDER/NAME`` in ``search``.

    A plain path is named after its folder (``adapters/eli5`` -> ``eli5``).
    """
    text = str(spec)
    name, sep, rest = text.partition("=")
    if sep and _NAME.fullmatch(name) and not Path(text).expanduser().exists():
        return check_name(name), adapter_directory(rest)
    path = Path(text).expanduser()
    if path.exists() or os.sep in text or "/" in text:
        directory = adapter_directory(path)
        return check_name(directory.resolve().name), directory
    found = [Path(folder) / text for folder in search if (Path(folder) / text).is_dir()]
    if not found:
        places = ", ".join(str(Path(folder) / text) for folder in search) or "no adapter folders"
        raise InputError(f"adapter {text!r} is neither a directory nor a named adapter (looked in {places}); "
                         "pass a path, NAME=PATH or the name of a folder there")
    return check_name(text), adapter_directory(found[0])


def check_name(name: str) -> str:
    """``name`` when it can name an adapter (letters, digits, ``_.-``; not ``base``), else InputError."""
    if not isinstance(name, str) or not _NAME.fullmatch(name) or name.lower() == BASE:
        raise InputError(f"adapter name {name!r} is invalid; use letters, digits, '_', '.' or '-' "
                         f"(and not {BASE!r}, which means the base model)")
    return name


def model_identities(name: str | os.PathLike) -> set[str]:
    """Every spelling of the model ``name`` designates: resolved path, hub id (also from a hub-cache snapshot
    path), alias; lower-case. ``mistral-7b`` and ``mistralai/Mistral-7B-v0.1`` share one."""
    text = str(name).strip()
    lower = text.lower().rstrip("/")
    keys = {lower}
    if lower in HUB_ALIASES:
        keys.add(HUB_ALIASES[lower].lower())
    if lower in SHIPPED_ALIASES or lower == SMOLLM2_HUB_ID:
        keys |= {SMOLLM2_HUB_ID, *SHIPPED_ALIASES}
    path = Path(text).expanduser()
    if not path.exists():
        return keys
    resolved = path.resolve()
    keys.add(str(resolved).lower())
    for part in resolved.parts:  # .../hub/models--org--name/snapshots/<hash>
        if part.startswith("models--"):
            keys.add(part.removeprefix("models--").replace("--", "/").lower())
    if _is_shipped_smollm2(resolved):
        keys |= {SMOLLM2_HUB_ID, *SHIPPED_ALIASES}
    return keys


def _is_shipped_smollm2(path: Path) -> bool:
    """The shipped SmolLM2 GGUF, or its converted copy in the cache (``gguf/<file stem>-<hash>/``)."""
    try:
        from minillm.assets import smollm2_gguf_path

        gguf = smollm2_gguf_path().resolve()
    except FileNotFoundError:
        return False
    return path == gguf or (path.parent.name == "gguf" and path.name.startswith(gguf.stem + "-"))


def same_model(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether the names ``a`` and ``b`` designate one model (see :func:`model_identities`)."""
    return bool(model_identities(a) & model_identities(b))


def _base_name_of(model: Any) -> str | None:
    """What a loaded model says it was loaded from (transformers' ``name_or_path``), else None."""
    for value in (getattr(model, "name_or_path", None), getattr(getattr(model, "config", None), "_name_or_path", None)):
        if isinstance(value, (str, os.PathLike)) and str(value):
            return str(value)
    return None


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"


class AdapterSet:
    """Named peft adapters over one base model; ``model`` is what to call (the PeftModel once one is loaded).

    ``base_name``: the path, hub id or alias the base was loaded from (default: the model's ``name_or_path``;
    for a PeftModel, its adapters' base). ``check_base=False`` loads adapters that name another base.
    """

    def __init__(self, model: Any, base_name: str | os.PathLike | None = None, check_base: bool = True) -> None:
        self._peft = require_peft()
        self.model = model
        self.check_base = check_base
        self._selected: str | None = None
        if base_name is None and self.is_peft:
            named = [c.base_model_name_or_path for c in model.peft_config.values() if c.base_model_name_or_path]
            base_name = named[0] if named else None
        self.base_name = str(base_name) if base_name else _base_name_of(model)
        if self.is_peft:
            self._selected = model.active_adapter  # a PeftModel comes with its adapter in use

    @property
    def is_peft(self) -> bool:
        """Whether ``model`` is a PeftModel yet (it becomes one with the first :meth:`load`)."""
        return isinstance(self.model, self._peft.PeftModel)

    def names(self) -> list[str]:
        """The loaded adapters' names, in load order."""
        return list(self.model.peft_config) if self.is_peft else []

    @property
    def active(self) -> str | None:
        """The adapter in use, or None for the base."""
        return self._selected

    def load(self, name: str, path: str | os.PathLike, check_base: bool | None = None) -> str:
        """Load the adapter in directory ``path`` under ``name``; returns ``name``. What runs does not change:
        the base (or the adapter in use) until :meth:`use` switches.

        InputError when the name is taken, the directory holds no adapter_config.json, the adapter names another
        base than the loaded one (both named), or its weights do not fit the model. A failed load may leave
        ``model`` half-wrapped: reload the base.
        """
        check_name(name)
        if name in self.names():
            raise InputError(f"an adapter named {name!r} is already loaded ({', '.join(self.names())}); pick another")
        directory = adapter_directory(path)
        config = self._read_config(directory)
        if self.check_base if check_base is None else check_base:
            self._check_base(config.base_model_name_or_path, directory)
        base = self.model.get_base_model() if self.is_peft else self.model
        if not hasattr(base, "prepare_inputs_for_generation"):
            config.task_type = None  # our decoder: plain PeftModel, which forwards generate/stream to it
        config.inference_mode = True
        device = next(base.parameters()).device
        try:
            if not self.is_peft:
                self.model = self._peft.PeftModel.from_pretrained(self.model, str(directory), adapter_name=name,
                                                                  config=config, torch_device=str(device))
                result = None
            else:
                self.model.add_adapter(name, config)
                result = self.model.load_adapter(str(directory), adapter_name=name, torch_device=str(device))
        except (ValueError, KeyError, RuntimeError) as exc:
            raise InputError(f"adapter {str(directory)!r} does not fit the base {self._shown_base()}: "
                             f"{_first_line(exc)}") from exc
        unexpected = list(getattr(result, "unexpected_keys", None) or [])
        if unexpected:
            self.model.delete_adapter(name)
            self.use(self._selected)
            raise InputError(f"adapter {str(directory)!r} has {len(unexpected)} weight(s) the base "
                             f"{self._shown_base()} lacks (e.g. {unexpected[0]}); it belongs to another model")
        self.use(self._selected)
        logger.info("loaded adapter %s from %s", name, directory)
        return name

    def use(self, name: str | None) -> None:
        """Make adapter ``name`` active for every later call; None (or ``"base"``) runs the base exactly."""
        if name is None or name == BASE:
            if self.is_peft:
                self.model.base_model.disable_adapter_layers()  # as peft's disable_adapter(), but kept
            self._selected = None
            return
        if name not in self.names():
            valid = ", ".join([*self.names(), BASE]) if self.names() else f"none loaded yet; only {BASE!r}"
            raise InputError(f"no adapter named {name!r}; loaded: {valid}")
        self.model.set_adapter(name, inference_mode=True)
        self.model.base_model.enable_adapter_layers()
        self._selected = name

    @contextlib.contextmanager
    def using(self, name: str | None) -> Iterator[Any]:
        """Run with adapter ``name`` (None: the base) inside the block, then switch back; yields ``model``."""
        before = self.active
        self.use(name)
        try:
            yield self.model
        finally:
            self.use(before)

    def generate(self, *args: Any, adapter: str | None = None, **kwargs: Any) -> Any:
        """``model.generate(*args, **kwargs)`` with adapter ``adapter`` (None: the base) for this call only."""
        with self.using(adapter) as model:
            return model.generate(*args, **kwargs)

    # ----------------------------------------------------------------- helpers
    def _read_config(self, directory: Path) -> Any:
        try:
            raw = json.loads((directory / ADAPTER_CONFIG).read_text())
            config = self._peft.PeftConfig.from_pretrained(str(directory))
        except (OSError, ValueError, TypeError, KeyError) as exc:
            raise InputError(f"{str(directory / ADAPTER_CONFIG)!r} is not a readable peft config "
                             f"({_first_line(exc)})") from exc
        if raw.get("peft_type") != "LORA":
            raise InputError(f"{str(directory)!r} holds a {raw.get('peft_type')!r} adapter; AdapterSet switches "
                             "LoRA adapters only (peft_type 'LORA')")
        return config

    def _check_base(self, named: str | None, directory: Path) -> None:
        if not named:
            logger.info("adapter %s names no base model; not checked against %s", directory, self.base_name)
            return
        if self.base_name is None:
            logger.info("the loaded base does not say its name; adapter %s (base %s) not checked", directory, named)
            return
        if not same_model(named, self.base_name):
            raise InputError(f"adapter {str(directory)!r} was trained on base {named!r}, but the loaded base is "
                             f"{self.base_name!r}; load it on its own base (or skip this check: check_base=False, "
                             "generate --any_adapter_base)")

    def _shown_base(self) -> str:
        return repr(self.base_name) if self.base_name else type(self.model).__name__
