"""Typed reader errors (all :class:`minillm.errors.InputError`, so the CLI prints them as one line) and the
import of optional packages with an install hint."""

from __future__ import annotations

import importlib
from types import ModuleType

from minillm.errors import InputError, MissingDependencyError

PAPERS_EXTRA = 'pip install -e ".[papers]"'


class DocumentError(InputError):
    """A document that cannot be turned into text; ``reason`` is the short label a run report groups by."""

    reason = "unreadable"


class NeedsOCRError(DocumentError):
    """A PDF with no text layer (scanned pages): only OCR could read it."""

    reason = "needs OCR"


class EncryptedDocumentError(DocumentError):
    """A PDF that needs a password to open."""

    reason = "encrypted"


class BrokenDocumentError(DocumentError):
    """A file that is damaged or not what its suffix says (e.g. a ``.epub`` that is not an EPUB)."""

    reason = "broken"


def optional_import(module: str, package: str | None = None) -> ModuleType:
    """``import module``, or a :class:`MissingDependencyError` naming the package and the papers extra."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(f"reading papers needs the {package or module} package ({exc}); "
                                     f"install it with: {PAPERS_EXTRA}") from None
