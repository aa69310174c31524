"""Row storage and id bookkeeping shared by both index backends.

:class:`Growable` is an array that grows in place (amortised appends); :class:`IdTable` maps row positions to
int64 ids, keeps removals as tombstones, and finds rows by id through a sorted copy built on demand.

>>> table = IdTable()
>>> table.append(table.new_ids(None, 3)); table.remove([1]).tolist(), table.live.tolist(), table.next_id
([1], [0, 2], 3)
"""

from __future__ import annotations

import numpy as np

from minillm.errors import InputError

from .index_checks import as_integers

__all__ = ["Growable", "IdTable"]


class Growable:
    """An array growing by half along axis 0, so many small appends cost amortised O(rows added)."""

    def __init__(self, tail_shape: tuple[int, ...], dtype) -> None:
        self.data = np.empty((0, *tail_shape), dtype=dtype)
        self.n = 0

    def append(self, rows: np.ndarray, total: int = 0) -> None:
        """Append ``rows``; ``total``: the size the array will reach soon (room is made for it at once)."""
        need = self.n + len(rows)
        if need > len(self.data):
            size = max(need, total, len(self.data) + len(self.data) // 2, 1024)
            grown = np.empty((size, *self.data.shape[1:]), dtype=self.data.dtype)
            grown[: self.n] = self.data[: self.n]
            self.data = grown
        self.data[self.n : need] = rows
        self.n = need

    @property
    def view(self) -> np.ndarray:
        """The rows appended so far (a view)."""
        return self.data[: self.n]


class IdTable:
    """Row position -> int64 id, removals as tombstones, and a sorted lookup (built on demand) for id -> row."""

    def __init__(self) -> None:
        self._ids = Growable((), np.int64)
        self._removed = Growable((), np.bool_)
        self.n_removed = 0
        self.next_id = 0
        self._sorted: tuple[np.ndarray, np.ndarray] | None = None  # (live ids sorted, their rows)

    def __len__(self) -> int:
        return self._ids.n - self.n_removed

    @property
    def nbytes(self) -> int:
        return self._ids.data.nbytes + self._removed.data.nbytes

    @property
    def removed(self) -> np.ndarray | None:
        """One flag per stored row (True: removed), or None when nothing was removed."""
        return self._removed.view if self.n_removed else None

    @property
    def live(self) -> np.ndarray:
        """The ids of the rows not removed, in row order (a copy)."""
        return self._ids.view[~self._removed.view] if self.n_removed else self._ids.view.copy()

    def at(self, rows: np.ndarray) -> np.ndarray:
        """The ids stored at ``rows``."""
        return self._ids.view[rows]

    def by_row(self) -> np.ndarray:
        """The id of every stored row, -1 for removed rows (a copy)."""
        return np.where(self._removed.view, -1, self._ids.view) if self.n_removed else self._ids.view.copy()

    @classmethod
    def from_rows(cls, row_ids: np.ndarray, allow_removed: bool = False) -> IdTable:
        """A table over saved row ids (with ``allow_removed``, -1 marks a removed row); refuses negative or
        repeated ids. One sort checks them and becomes the lookup, so opening a large index stays quick."""
        removed = row_ids == -1 if allow_removed else np.zeros(len(row_ids), dtype=bool)
        live_rows = np.flatnonzero(~removed)
        order = np.argsort(row_ids[live_rows], kind="stable")
        sorted_ids = row_ids[live_rows][order]
        if len(sorted_ids) and sorted_ids[0] < 0:
            raise InputError(f"id {int(sorted_ids[0])} is negative; ids must be >= 0")
        repeated = np.flatnonzero(sorted_ids[1:] == sorted_ids[:-1])
        if len(repeated):
            raise InputError(f"id {int(sorted_ids[repeated[0]])} appears more than once in ids; ids must be distinct")
        table = cls()
        table.append(row_ids)
        table._removed.view[removed] = True
        table.n_removed = int(removed.sum())
        table._sorted = (sorted_ids, live_rows[order])
        return table

    def find(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(mask of ``ids`` that are stored, the rows of those)."""
        if self._sorted is None:
            rows = np.flatnonzero(~self._removed.view) if self.n_removed else np.arange(self._ids.n)
            order = np.argsort(self._ids.view[rows], kind="stable")
            self._sorted = (self._ids.view[rows][order], rows[order])
        sorted_ids, rows = self._sorted
        if not len(sorted_ids):
            return np.zeros(len(ids), dtype=bool), rows
        where = np.searchsorted(sorted_ids, ids).clip(max=len(sorted_ids) - 1)
        found = sorted_ids[where] == ids
        return found, rows[where[found]]

    def new_ids(self, ids, n: int) -> np.ndarray:
        """Validated ids for ``n`` new rows: distinct int64 >= 0 not stored yet (default: the next n)."""
        if ids is None:
            return np.arange(self.next_id, self.next_id + n, dtype=np.int64)
        array = as_integers(ids)
        if np.ndim(ids) > 1 or len(array) != n:
            raise InputError(f"got ids of shape {np.shape(ids)} for {n} vectors; give one id per vector")
        if n and array.min() < 0:
            raise InputError(f"id {int(array.min())} is negative; ids must be >= 0")
        unique, counts = np.unique(array, return_counts=True)
        if len(unique) != n:
            raise InputError(f"id {int(unique[counts > 1][0])} appears more than once in ids; ids must be distinct")
        found, _ = self.find(array)
        if found.any():
            raise InputError(f"id {int(array[found][0])} is already in the index; remove it first or use new ids")
        return array

    def append(self, ids: np.ndarray) -> None:
        """Add rows holding ``ids`` (checked by :meth:`new_ids`); the sorted lookup, if built, is kept up to date
        in O(n) (an insert, not a new sort), so many small adds stay cheap."""
        first = self._ids.n
        self._ids.append(ids)
        self._removed.append(np.zeros(len(ids), dtype=bool))
        self.next_id = max(self.next_id, int(ids.max()) + 1 if len(ids) else 0)
        if self._sorted is not None and len(ids):
            order = np.argsort(ids, kind="stable")
            sorted_ids, rows = self._sorted
            at = np.searchsorted(sorted_ids, ids[order])
            self._sorted = (np.insert(sorted_ids, at, ids[order]), np.insert(rows, at, first + order))

    def remove(self, ids) -> np.ndarray:
        """Mark the rows of ``ids`` removed; returns those rows (unknown ids are ignored)."""
        ids = np.unique(as_integers(ids))
        found, rows = self.find(ids)
        self._removed.view[rows] = True
        self.n_removed += len(rows)
        if len(rows):
            sorted_ids, sorted_rows = self._sorted
            at = np.searchsorted(sorted_ids, ids[found])
            self._sorted = (np.delete(sorted_ids, at), np.delete(sorted_rows, at))
        return rows
