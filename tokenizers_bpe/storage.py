"""Reading and writing tokenizer files: a ``tokenizer.json`` alone, or a directory as transformers lays it out.

A directory holds ``tokenizer.json``, ``tokenizer_config.json`` (special-token roles, chat template) and
optionally ``chat_template.jinja`` (transformers 5 writes the template there; it wins over the config).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
from pathlib import Path

from .errors import TokenizerInputError

logger = logging.getLogger(__name__)

TOKENIZER_FILE = "tokenizer.json"
CONFIG_FILE = "tokenizer_config.json"
TEMPLATE_FILE = "chat_template.jinja"


def _read_json(path: Path) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise TokenizerInputError(f"{path} is not valid JSON ({exc}); expected a tokenizer JSON file") from None


def read_files(path: str | Path) -> tuple[object, dict, str | None]:
    """Return ``(tokenizer.json data, tokenizer_config.json data or {}, chat template or None)``.

    ``path`` is a ``tokenizer.json`` file (its directory's config is used when present) or a directory.
    """
    path = Path(path)
    if path.is_dir():
        folder, tokenizer_file = path, path / TOKENIZER_FILE
    else:
        folder, tokenizer_file = path.parent, path
    if not tokenizer_file.is_file():
        raise FileNotFoundError(
            f"no tokenizer file at {tokenizer_file}; pass a tokenizer.json or a folder holding one"
        )
    data = _read_json(tokenizer_file)
    config: dict = {}
    template: str | None = None
    if (folder / CONFIG_FILE).is_file():
        loaded = _read_json(folder / CONFIG_FILE)
        if isinstance(loaded, dict):
            config = loaded
            template = _pick_template(loaded.get("chat_template"))
    if (folder / TEMPLATE_FILE).is_file():
        template = (folder / TEMPLATE_FILE).read_text(encoding="utf-8")
    return data, config, template


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
    """Write ``data`` as ``tokenizer.json``; a directory also gets ``tokenizer_config.json``.

    A path ending in ``.json`` is taken as the file to write; anything else as a directory (created).
    Returns the path of the written ``tokenizer.json``.
    """
    path = Path(path)
    text = json.dumps(data, ensure_ascii=False, indent=2)
    if path.suffix == ".json":
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_atomic(path, text)
        return path
    path.mkdir(parents=True, exist_ok=True)
    _write_atomic(path / TOKENIZER_FILE, text)
    _write_atomic(path / CONFIG_FILE, json.dumps(config, ensure_ascii=False, indent=2))
    stale = path / TEMPLATE_FILE
    if stale.is_file():  # it would override the template we just wrote into the config
        stale.unlink()
        logger.info("removed %s: the chat template now lives in %s", stale, CONFIG_FILE)
    return path / TOKENIZER_FILE


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
