"""Atomic writes: build a directory in a temporary sibling, then rename it into place; files likewise.

Every directory :func:`atomic_directory` writes carries a small marker file, ``.minillm`` (``MARKER``), holding
``{"format": "minillm-directory", "version": 1}``. The marker is what makes a directory ours to replace later:
an existing target is replaced only when it is empty or carries the marker. Directories written by minillm
before the marker existed are still recognised where they are unmistakably ours: a training checkpoint
(``trainer_state/COMPLETE``) and a token store (its ``header.json`` names ``minillm-token-store``, or it holds
both ``tokens.bin`` and ``doc_starts.bin``). A folder that merely holds ``config.json`` (a downloaded model) is
never replaced.

Before the rename every file and folder of the new directory is fsynced and given the usual permissions
(``0o666 & ~umask`` for files, ``0o777 & ~umask`` for folders; safetensors and mkdtemp create owner-only ones).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from minillm.errors import InputError

MARKER = ".minillm"
MARKER_FORMAT = "minillm-directory"
MARKER_VERSION = 1
TOKEN_STORE_FORMAT = "minillm-token-store"
# directories written before the marker existed that are unmistakably ours (a bare config.json is not: HF models
# hold one too)
LEGACY_CHECKPOINT = "trainer_state/COMPLETE"
LEGACY_TOKEN_STORE = ("tokens.bin", "doc_starts.bin")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def has_marker(folder: Path) -> bool:
    """Whether ``folder`` carries the marker :func:`atomic_directory` writes into every directory it creates."""
    marker = Path(folder) / MARKER
    if not marker.is_file():
        return False
    with contextlib.suppress(OSError, ValueError, AttributeError):
        return json.loads(marker.read_text()).get("format") == MARKER_FORMAT
    return False


def write_marker(folder: Path) -> None:
    """Write the marker into ``folder`` (done by :func:`atomic_directory`; exposed for tests and tools)."""
    (Path(folder) / MARKER).write_text(json.dumps({"format": MARKER_FORMAT, "version": MARKER_VERSION}) + "\n")


def is_replaceable(folder: Path) -> bool:
    """Whether ``folder`` may be replaced wholesale: it is empty, carries our marker, or is a legacy directory of
    ours (a training checkpoint or a token store written before the marker existed)."""
    folder = Path(folder)
    if not any(folder.iterdir()) or has_marker(folder):
        return True
    if (folder / LEGACY_CHECKPOINT).is_file():
        return True
    if all((folder / name).is_file() for name in LEGACY_TOKEN_STORE):
        return True  # a token store, even with a damaged header
    header = folder / "header.json"
    if header.is_file():
        with contextlib.suppress(OSError, ValueError, AttributeError):
            return json.loads(header.read_text()).get("format") == TOKEN_STORE_FORMAT
    return False


def check_replaceable(final: str | os.PathLike) -> Path:
    """``final`` resolved, after refusing a target that is not ours to replace (raises ``InputError``)."""
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
            raise InputError(f"{final} exists and is not a model directory minillm wrote (no {MARKER} marker), so "
                             "it is not replaced; choose an empty or new one, or delete it yourself")
    return final


@contextlib.contextmanager
def atomic_directory(final: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary directory next to ``final``; on success it replaces ``final`` in one rename.

    If the body raises, the temporary directory is removed and ``final`` is left as it was. A reader never sees a
    half-written ``final``: either the old one, or the complete new one (marker written, every file fsynced and
    given the usual permissions). An existing ``final`` is replaced only when :func:`is_replaceable` says it is
    ours; anything else (a downloaded model, ``~/Documents``, the current directory) raises ``InputError`` before
    anything is written.
    """
    final = check_replaceable(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    try:
        yield tmp
        write_marker(tmp)
        _settle(tmp)
        if final.exists():
            check_replaceable(final)  # it may have changed while the body ran
            old = final.with_name(f".{final.name}.old-{os.getpid()}")
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
        _fsync(final.parent)
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


def usual_mode(mode: int, is_dir: bool, umask: int | None = None) -> int:
    """The permission bits a new file (``0o666 & ~umask``) or a folder or executable (``0o777 & ~umask``) gets.

    >>> oct(usual_mode(0o600, is_dir=False, umask=0o022)), oct(usual_mode(0o700, is_dir=True, umask=0o022))
    ('0o644', '0o755')
    """
    umask = _umask() if umask is None else umask
    return (0o777 if is_dir or mode & 0o111 else 0o666) & ~umask


def _settle(root: Path) -> None:
    """Give every file and folder under ``root`` the usual permissions and fsync it, files first, ``root`` last."""
    umask = _umask()
    for folder, _, files in os.walk(root, topdown=False):
        for name in files:
            path = os.path.join(folder, name)
            if os.path.islink(path):
                continue
            os.chmod(path, usual_mode(os.stat(path).st_mode, is_dir=False, umask=umask))
            _fsync(Path(path))
        os.chmod(folder, usual_mode(0, is_dir=True, umask=umask))
        _fsync(Path(folder))


def _fsync(path: Path) -> None:
    """fsync a file or a directory (directories: best effort, some filesystems refuse)."""
    is_dir = path.is_dir()
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        if is_dir:
            return
        raise
    try:
        os.fsync(fd)
    except OSError:
        if not is_dir:
            raise
    finally:
        os.close(fd)
