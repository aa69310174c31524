"""Metadata filters of :meth:`rag.document_store.SimpleDocumentStore.search`: a dict (every key equal, or one of a
list's values) or a predicate over the metadata.

>>> matches_filter({"year": 2020, "kind": "paper"}, {"kind": ["paper", "book"]})
True
>>> matches_filter({"year": 2020}, {"kind": "paper"}), matches_filter({"year": 2020}, lambda m: m["year"] > 2000)
(False, True)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Filter = dict[str, Any] | Callable[[dict[str, Any]], bool]


def matches_filter(metadata: dict[str, Any], wanted: Filter) -> bool:
    """A dict filter: every key present and equal (a list/tuple/set value: any of them); else a predicate."""
    if callable(wanted):
        return bool(wanted(metadata))
    for key, value in wanted.items():
        if key not in metadata:
            return False
        if isinstance(value, list | tuple | set | frozenset):
            if metadata[key] not in value:
                return False
        elif metadata[key] != value:
            return False
    return True
