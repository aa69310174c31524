"""Checks shared by both index backends: vectors, ids, k and options going in; index.json and .npy files coming
off disk. Every refusal is one :class:`minillm.errors.InputError` line naming the value and what is valid.

>>> as_vectors([[3, 4]], dim=2, metric="cosine").tolist()
[[0.6000000238418579, 0.800000011920929]]
>>> check_options(8, "l2", "float16")
(8, 'l2', <class 'numpy.float16'>)
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from minillm.errors import InputError

__all__ = ["DTYPES", "METRICS", "VERSION", "as_integers", "as_matrix", "as_vectors", "check_array", "check_k",
           "check_options", "load_npy", "read_meta"]

VERSION = 1  # of the saved-directory formats (index.json "version")
METRICS = ("cosine", "ip", "l2")
DTYPES = {"float32": np.float32, "float16": np.float16}


# ---- what goes in ----
def as_matrix(vectors, dim: int, what: str = "vectors") -> np.ndarray:
    """``vectors`` as a numeric (n, dim) array, not converted (no copy for an array); (dim,) becomes (1, dim)."""
    try:
        array = np.asarray(vectors)
    except (TypeError, ValueError) as error:
        raise InputError(f"{what} must be numbers of shape (n, {dim}); got {type(vectors).__name__}: {error}") from None
    if array.dtype.kind not in "iuf":
        raise InputError(f"{what} must be numbers of shape (n, {dim}); got dtype {array.dtype}")
    array = array[None, :] if array.ndim == 1 else array
    if array.ndim != 2 or array.shape[1] != dim:
        raise InputError(f"{what} have shape {tuple(np.shape(vectors))}; this index holds dim {dim}, so (n, {dim}) "
                         f"or ({dim},) is valid")
    return array


def as_vectors(vectors, dim: int, metric: str = "ip", what: str = "vectors", first_row: int = 0) -> np.ndarray:
    """``vectors`` as a finite float32 (n, dim) array, normalised for ``"cosine"``; (dim,) becomes (1, dim).

    ``first_row`` numbers the rows in error messages (for chunks of a larger array).

    >>> as_vectors([3, 4], dim=2, metric="cosine").tolist()
    [[0.6000000238418579, 0.800000011920929]]
    """
    array = as_matrix(vectors, dim, what).astype(np.float32, copy=False)
    finite = np.isfinite(array).all(axis=1)
    if not finite.all():
        raise InputError(f"row {first_row + int(np.flatnonzero(~finite)[0])} of {what} holds NaN or infinity; only "
                         "finite values are valid")
    if metric == "cosine" and len(array):
        norms = np.linalg.norm(array, axis=1)
        if (norms == 0).any():
            raise InputError(f"row {first_row + int(np.flatnonzero(norms == 0)[0])} of {what} is all zeros; its "
                             "cosine is undefined (metric 'ip' or 'l2' accepts it)")
        array = array / norms[:, None]
    return array


def as_integers(ids, what: str = "ids") -> np.ndarray:
    """``ids`` as a 1-D int64 array, refusing floats, booleans and strings (an empty list is fine)."""
    array = np.asarray(ids)
    if array.dtype.kind not in "iu" and array.size:
        raise InputError(f"{what} must be integers; got dtype {array.dtype}")
    return array.astype(np.int64).reshape(-1)


def check_options(dim, metric: str, dtype) -> tuple[int, str, type]:
    """Validated (dim, metric, dtype as a numpy scalar type)."""
    if isinstance(dim, bool) or not isinstance(dim, int | np.integer) or dim < 1:
        raise InputError(f"dim must be a positive integer; got {dim!r}")
    if metric not in METRICS:
        raise InputError(f"metric {metric!r} is unknown; valid: {', '.join(METRICS)}")
    try:
        name = np.dtype(dtype).name
    except TypeError:
        name = repr(dtype)
    if name not in DTYPES:
        raise InputError(f"dtype {name} is not supported; valid: np.float32, np.float16")
    return int(dim), metric, DTYPES[name]


def check_k(k, size: int) -> int:
    """``k`` capped at ``size`` (with a warning when it is larger); refuses a non-positive k or an empty index."""
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise InputError(f"k must be a positive integer; got {k!r}")
    if size == 0:
        raise InputError("the index is empty (0 vectors); add vectors before searching")
    if k > size:
        warnings.warn(f"k={k} is larger than the index ({size} vectors); returning {size} per query", stacklevel=3)
    return min(int(k), size)


# ---- what comes off disk ----
def read_meta(directory: Path, kinds: Sequence[str]) -> dict:
    """index.json of ``directory``, refusing a missing, unreadable or foreign one (``kinds``: accepted formats)."""
    meta_file = Path(directory) / "index.json"
    if not Path(directory).is_dir():
        raise InputError(f"{directory} is not a directory; a saved index is a directory holding index.json")
    try:
        meta = json.loads(meta_file.read_text())
    except FileNotFoundError:
        raise InputError(f"{directory} holds no index.json, so it is not a saved index") from None
    except (OSError, ValueError) as error:
        raise InputError(f"{meta_file} is not readable JSON ({error}); the index is corrupt") from None
    found = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
    if found not in kinds:
        raise InputError(f"{meta_file} has format {found!r}, not an index minillm wrote; expected {', '.join(kinds)}")
    if meta.get("version") != VERSION:
        raise InputError(f"{meta_file} has format version {meta.get('version')!r}; this minillm reads {VERSION}")
    return meta


def load_npy(path: Path, mmap: bool = False) -> np.ndarray:
    """``np.load`` without pickles (memory-mapped read-only with ``mmap``), failures as one-line InputErrors."""
    try:
        return np.load(path, allow_pickle=False, mmap_mode="r" if mmap else None)
    except FileNotFoundError:
        raise InputError(f"{path} is missing; the index is incomplete") from None
    except (OSError, ValueError, EOFError) as error:
        raise InputError(f"{path} is not a readable .npy array ({str(error).splitlines()[0]}); "
                         "the index is corrupt") from None


def check_array(path: Path, array: np.ndarray, shape: tuple[int, ...], dtype) -> None:
    """Refuse an array read from ``path`` whose shape or dtype differ from what index.json says."""
    if array.shape != shape or array.dtype != dtype:
        raise InputError(f"{path} holds {array.dtype} {array.shape}; index.json says {np.dtype(dtype).name} "
                         f"{shape}; the index is corrupt")
