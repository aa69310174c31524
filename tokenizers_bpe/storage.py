"""Reading and writing tokenizer files: a folder as transformers lays it out, or one named ``.json`` file.

Layout (what :func:`write_files` writes and :func:`read_files` reads):

* a **folder** ``out/`` holds ``tokenizer.json``, ``tokenizer_config.json`` (special-token roles, chat template)
  and optionally ``chat_template.jinja`` (transformers 5 writes the template there; it wins over the config);
* a **file** ``data/NAME.json`` gets its config beside it as ``data/NAME_config.json``. For the HF name
  ``tokenizer.json`` that is ``tokenizer_config.json``, the folder layout above, so transformers opens the
  folder; any other name keeps its own config, so ``data/a.json`` and ``data/b.json`` never share or overwrite
  each other's roles. A tokenizer file name ending in ``_config.json`` is refused on save (it would be taken for
  another tokenizer's config). ``chat_template.jinja`` belongs to the folder's ``tokenizer.json`` only.

A bare ``tokenizer.json`` (no config beside it, e.g. from HF ``tokenizers``) loads with the default roles.
Every file is written through a temporary file and a rename, so a reader never sees a half-written file.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .errors import TokenizerInputError

logger = logging.getLogger(__name__)

TOKENIZER_FILE = "tokenizer.json"
CONFIG_FILE = "tokenizer_config.json"
TEMPLATE_FILE = "chat_template.jinja"
CONFIG_SUFFIX = "_config.json"


@dataclass
class StoredTokenizer:
    """What :func:`read_files` found: the tokenizer file, its parsed JSON, its config (None when there is
    none) and its chat template (None when there is none)."""

    file: Path
    data: object
    config: dict | None
    template: str | None


def _read_json(path: Path) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise TokenizerInputError(f"{path} is not valid JSON ({exc}); expected a tokenizer JSON file") from None


def tokenizer_file(path: str | Path) -> Path:
    """The tokenizer JSON file ``path`` means: ``path/tokenizer.json`` for a folder, else ``path`` itself.

    Example:
        >>> tokenizer_file("data/other.json").as_posix(), tokenizer_file("out").as_posix()
        ('data/other.json', 'out/tokenizer.json')
    """
    path = Path(path)
    return path if path.suffix == ".json" and not path.is_dir() else path / TOKENIZER_FILE


def config_file(file: str | Path) -> Path:
    """The config of tokenizer file ``file``: ``NAME.json`` -> ``NAME_config.json`` in the same folder.

    Example:
        >>> config_file("out/tokenizer.json").name, config_file("data/other.json").name
        ('tokenizer_config.json', 'other_config.json')
    """
    file = Path(file)
    return file.with_name(file.stem + CONFIG_SUFFIX)


def read_files(path: str | Path) -> StoredTokenizer:
    """Read a tokenizer folder, or one tokenizer JSON file with its own config (see the module docstring)."""
    path = Path(path)
    file = path / TOKENIZER_FILE if path.is_dir() else path
    if not file.is_file():
        raise FileNotFoundError(f"no tokenizer file at {file}; pass a tokenizer.json or a folder holding one")
    data = _read_json(file)
    config: dict | None = None
    template: str | None = None
    if config_file(file).is_file():
        loaded = _read_json(config_file(file))
        if not isinstance(loaded, dict):
            raise TokenizerInputError(
                f"{config_file(file)} holds a {type(loaded).__name__}; expected a JSON object of tokenizer settings"
            )
        config = loaded
        template = _pick_template(loaded.get("chat_template"))
    jinja = file.parent / TEMPLATE_FILE
    if file.name == TOKENIZER_FILE and jinja.is_file():
        template = jinja.read_text(encoding="utf-8")
    return StoredTokenizer(file, data, config, template)


def _pick_template(value: object) -> str | None:
    """A config's ``chat_template``: a string, or a list of named templates of which we take 'default'."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        named = {item.get("name"): item.get("template") for item in value if isinstance(item, dict)}
        return named.get("default") or next(iter(named.values()), None)
    return None


def token_text(value: object) -> str | None:
    """A special token as a config stores it: a string, or an AddedToken dict with ``content``.

    Example:
        >>> token_text({"content": "<s>", "__type": "AddedToken"}), token_text("</s>"), token_text(None)
        ('<s>', '</s>', None)
    """
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) else None


def write_files(path: str | Path, data: dict, config: dict) -> Path:
    """Write ``data`` as the tokenizer file and ``config`` beside it (see the module docstring).

    A path ending in ``.json`` is the file to write; anything else is a folder (created) that gets
    ``tokenizer.json``. Returns the path of the written tokenizer file.
    """
    file = tokenizer_file(path)
    if file.name.endswith(CONFIG_SUFFIX):
        raise TokenizerInputError(
            f"cannot save a tokenizer as {file}: a name ending in {CONFIG_SUFFIX!r} is read as the config of "
            f"{file.name[: -len(CONFIG_SUFFIX)]}.json; choose another file name or a folder"
        )
    file.parent.mkdir(parents=True, exist_ok=True)
    _write_atomic(file, json.dumps(data, ensure_ascii=False, indent=2))
    _write_atomic(config_file(file), json.dumps(config, ensure_ascii=False, indent=2))
    stale = file.parent / TEMPLATE_FILE
    if file.name == TOKENIZER_FILE and stale.is_file():  # it would override the template we just wrote
        stale.unlink()
        logger.info("removed %s: the chat template now lives in %s", stale, CONFIG_FILE)
    return file


def _write_atomic(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) through a temporary file in the same folder and a rename: never a half file."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        mask = os.umask(0)
        os.umask(mask)
        os.fchmod(fd, 0o666 & ~mask)  # mkstemp makes it owner-only
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
