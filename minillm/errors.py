"""Errors that mean "the input is wrong": the command line prints them as one line and exits with code 2.

Every deliberate check in our packages raises :class:`InputError` (a ``ValueError``, so callers that catch
``ValueError`` keep working). A plain ``ValueError`` from deeper down (torch, numpy, a bug of ours) is not
input validation: ``main.py`` lets it through with its traceback.
"""

from __future__ import annotations


class InputError(ValueError):
    """A validated user error; the message names what is wrong, the value seen and what would be valid."""


class MissingDependencyError(ImportError):
    """An optional package is needed for what was asked; the message says how to install it."""
