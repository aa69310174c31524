"""A reader process that survives what kills it: the folder run reads every file in a worker process, so a native
crash of a parser (a segfault in MuPDF, an abort in lxml) or a hang costs that one file, not the run.

:class:`ReaderWorker` keeps one worker process and starts a fresh one after a crash or a timeout. The worker
is forked where the platform can (Linux: it starts in milliseconds, and the parent holds no parser state, it
only reads the results), else spawned (a fresh interpreter, which imports the project again: seconds). Each
request returns an :class:`Attempt`: the text, or the reason a reader gave (its
:class:`~rag.readers.errors.DocumentError` kind), or ``crashed``/``timeout``/``error``.

Test hook: when the environment variable ``MINILLM_TEST_CRASH_ON`` holds a file name, the worker calls
``os.abort()`` when asked to read that file with its primary reader (the CLI tests simulate a native crash so).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

CRASH_HOOK = "MINILLM_TEST_CRASH_ON"
#: DocumentError subclass name -> run status
ERROR_STATUS = {"NeedsOCRError": "needs_ocr", "EncryptedDocumentError": "encrypted",
                "BrokenDocumentError": "broken", "DocumentError": "broken"}


@dataclass
class Attempt:
    """What one read gave: ``status`` "ok" (with ``text``) or why not (``message``), and the reader's log lines."""

    status: str
    text: str | None = None
    message: str = ""
    log: list[str] = field(default_factory=list)


class _ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.levelname} {record.name}: {record.getMessage()}")


def read_once(path: str, role: str, fmt: str) -> Attempt:
    """Read ``path`` in this process (the worker's job), turning reader errors into an :class:`Attempt`."""
    from minillm.errors import MissingDependencyError

    from . import read_with
    from .errors import DocumentError

    if role == "primary" and os.environ.get(CRASH_HOOK) == Path(path).name:
        os.abort()  # test hook: a native crash of the parser
    handler = _ListHandler()
    package_logger = logging.getLogger("rag.readers")
    package_logger.addHandler(handler)
    previous = package_logger.level, package_logger.propagate
    package_logger.setLevel(logging.INFO)
    package_logger.propagate = False  # the lines go back to the run's log file, not to the terminal
    try:
        return Attempt("ok", text=read_with(path, role, fmt), log=handler.lines)
    except DocumentError as exc:
        return Attempt(ERROR_STATUS.get(type(exc).__name__, "broken"), message=str(exc), log=handler.lines)
    except MissingDependencyError as exc:
        return Attempt("missing_dependency", message=str(exc), log=handler.lines)
    except Exception as exc:  # noqa: BLE001 - a parser's failure on a strange file: report it, keep the run going
        return Attempt("error", message=f"{type(exc).__name__}: {exc}",
                       log=[*handler.lines, traceback.format_exc()])
    finally:
        package_logger.removeHandler(handler)
        package_logger.setLevel(previous[0])
        package_logger.propagate = previous[1]


def worker_main(connection: Any) -> None:
    """The worker's loop: ``(path, role, fmt)`` requests in, :class:`Attempt` fields out; ``None`` stops it."""
    while True:
        try:
            request = connection.recv()
        except EOFError:
            return
        if request is None:
            return
        attempt = read_once(*request)
        connection.send((attempt.status, attempt.text, attempt.message, attempt.log))


def _death(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            return f"killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exited with code {exitcode}"


class ReaderWorker:
    """One reader process, restarted after it dies; use as a context manager."""

    def __init__(self, timeout: float = 600.0) -> None:
        self.timeout = timeout
        methods = multiprocessing.get_all_start_methods()
        self._context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
        self._process: Any = None
        self._connection: Any = None
        self.starts = 0

    def __enter__(self) -> Self:
        self._start()  # before the caller starts threads (a progress bar's monitor)
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _start(self) -> None:
        parent, child = self._context.Pipe()
        self._process = self._context.Process(target=worker_main, args=(child,), daemon=True,
                                              name="minillm-reader")
        self._process.start()
        child.close()
        self._connection = parent
        self.starts += 1

    def read(self, path: str | os.PathLike, role: str = "primary", fmt: str = "txt") -> Attempt:
        """Read ``path`` in the worker; a crash or a timeout is an Attempt too (and the next read restarts it)."""
        if self._process is None or not self._process.is_alive():
            self._start()
        self._connection.send((str(path), role, fmt))
        if self._connection.poll(self.timeout):
            try:
                status, text, message, log = self._connection.recv()
                return Attempt(status, text, message, log)
            except (EOFError, ConnectionError):
                self._process.join(5)
                attempt = Attempt("crashed", message=f"the reader process {_death(self._process.exitcode)}")
        else:
            self._process.kill()
            self._process.join(5)
            attempt = Attempt("timeout", message=f"no result after {self.timeout:g} s; the reader was stopped")
        self._discard()
        return attempt

    def _discard(self) -> None:
        if self._connection is not None:
            self._connection.close()
        self._process = self._connection = None

    def close(self) -> None:
        """Stop the worker (politely, then by force)."""
        if self._process is None:
            return
        try:
            self._connection.send(None)
            self._process.join(5)
        except (BrokenPipeError, OSError):
            pass
        if self._process.is_alive():
            self._process.kill()
            self._process.join(5)
        self._discard()
