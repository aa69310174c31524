"""Atomic writes: build a directory in a temporary sibling, then rename it into place; files likewise."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from minillm.errors import InputError

# What a folder we wrote holds: a model (config.json), a tokenizer (tokenizer.json), a training checkpoint
# (trainer_state/COMPLETE). Token stores (training/data/tokens.py) hold tokens.bin, doc_starts.bin and a
# header.json naming their format.
OUR_MARKERS = ("config.json", "tokenizer.json", "trainer_state/COMPLETE")
TOKEN_STORE_FORMAT = "minillm-token-store"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def is_replaceable(folder: Path) -> bool:
    """Whether ``folder`` may be replaced wholesale: it is empty, or it looks like a directory we wrote."""
    if not any(folder.iterdir()):
        return True
    if any((folder / marker).is_file() for marker in OUR_MARKERS):
        return True
    if (folder / "tokens.bin").is_file() and (folder / "doc_starts.bin").is_file():
        return True  # a token store, even with a damaged header
    header = folder / "header.json"
    if header.is_file():
        with contextlib.suppress(OSError, ValueError):
            return json.loads(header.read_text()).get("format") == TOKEN_STORE_FORMAT
    return False


def check_replaceable(final: str | os.PathLike) -> Path:
    """``final`` resolved, after refusing a target that is not ours to replace (raises ``ValueError``)."""
    final = Path(final).expanduser().resolve()
    if final.parent == final:
        raise InputError(f"{final} is a filesystem root; choose an empty or new directory")
    if final.exists():
        if not final.is_dir():
            raise InputError(f"{final} exists and is not a directory; choose an empty or new one")
        cwd = Path.cwd().resolve()
        if cwd == final or final in cwd.parents:
            raise InputError(f"{final} holds the current working directory; choose an empty or new one")
        if not is_replaceable(final):
            raise InputError(f"{final} exists and is not a model directory; choose an empty or new one")
    return final


@contextlib.contextmanager
def atomic_directory(final: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary directory next to ``final``; on success it replaces ``final`` in one rename.

    If the body raises, the temporary directory is removed and ``final`` is left as it was. A reader never sees a
    half-written ``final``: either the old one, or the complete new one. An existing ``final`` is replaced only
    when it is empty or looks like one we wrote (``config.json``, ``tokenizer.json``, ``trainer_state/COMPLETE``
    or a token store's header); anything else (``~/Documents``, the current directory) raises ``ValueError``
    before anything is written.
    """
    final = check_replaceable(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    tmp.chmod(0o777 & ~_umask())  # mkdtemp makes it owner-only; give it the usual permissions
    try:
        yield tmp
        _fsync_dir(tmp)
        if final.exists():
            check_replaceable(final)  # it may have changed while the body ran
            old = final.with_name(f".{final.name}.old-{os.getpid()}")
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
        _fsync_dir(final.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename (usual permissions, not mkstemp's 0600)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
