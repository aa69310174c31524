"""The few HF normalizers a byte-level BPE uses: Unicode normal forms, lowercasing, and sequences of them."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable

from .errors import UnsupportedTokenizerError

_FORMS = ("NFC", "NFD", "NFKC", "NFKD")


def make_normalizer(spec: dict | None) -> Callable[[str], str] | None:
    """Build a function from a ``tokenizer.json`` ``normalizer`` entry (None: no normalizer).

    Example:
        >>> make_normalizer({"type": "Sequence", "normalizers": [{"type": "NFKC"}, {"type": "Lowercase"}]})("Ａb")
        'ab'
    """
    if spec is None:
        return None
    kind = spec.get("type") if isinstance(spec, dict) else None
    if kind in _FORMS:
        return lambda text: unicodedata.normalize(kind, text)
    if kind == "Lowercase":
        return str.lower
    if kind == "Sequence":
        funcs = [make_normalizer(inner) for inner in spec.get("normalizers", [])]
        steps = [func for func in funcs if func is not None]

        def sequence(text: str) -> str:
            for step in steps:
                text = step(text)
            return text

        return sequence
    raise UnsupportedTokenizerError(
        f"normalizer {spec!r} is not supported; expected null, one of {_FORMS}, Lowercase or a Sequence of them"
    )
