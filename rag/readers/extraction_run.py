"""The resumable text-extraction run over folders of PDFs and EPUBs (``main.py extract_text``).

Every ``.pdf``/``.epub`` under the input folders (recursively; hidden files skipped) is read in a worker process
(:mod:`.extraction_worker`: a native parser crash costs one file) and written to ``OUT/<name>.txt`` (or ``.md``;
names: :mod:`.extraction_state`). After every file ``OUT/.resume.json`` is rewritten, so a re-run skips the
finished files and retries a file whose reader crashed, hung or failed with the fallback reader (pypdf for PDFs,
zipfile + html.parser for EPUBs). Details go to ``OUT/extract.log``.

Outcomes: ``done`` (written), ``too_short`` (fewer than ``min_length`` characters: too little text, needs OCR?;
not written), ``needs_ocr`` (no text layer), ``encrypted``, ``broken`` (damaged or not what its suffix says),
``crashed``, ``timeout``, ``error``. None of them stops the run.
"""

from __future__ import annotations

import importlib.util
import logging
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from minillm.atomic import atomic_write_text
from minillm.errors import InputError, MissingDependencyError

from . import FORMATS, READERS, reader_names
from .errors import PAPERS_EXTRA
from .extraction_state import ResumeState, assign_names
from .extraction_worker import ReaderWorker

LOG_FILE = "extract.log"
TOO_SHORT = "too little text: needs OCR?"
#: suffix -> (format -> modules its primary reader needs)
NEEDED = {".pdf": {"txt": ("pymupdf",), "md": ("pymupdf", "pymupdf4llm")},
          ".epub": {"txt": ("ebooklib", "bs4"), "md": ("ebooklib", "bs4")}}


@dataclass
class ExtractionConfig:
    """What to read, where to write, and how."""

    input_dirs: list[Path]
    output_dir: Path
    fmt: str = "txt"
    min_length: int = 200
    resume: bool = True
    timeout: float = 600.0  # seconds one file may take
    progress: bool = True


@dataclass
class FileOutcome:
    """What became of one input."""

    source: str
    status: str
    output: str | None = None
    reader: str = ""
    chars: int = 0
    seconds: float = 0.0
    message: str = ""
    resumed: bool = False  # finished by an earlier run and skipped


@dataclass
class ExtractionReport:
    """Every input's outcome, in input order."""

    output_dir: Path
    outcomes: list[FileOutcome] = field(default_factory=list)

    def with_status(self, *statuses: str) -> list[FileOutcome]:
        return [o for o in self.outcomes if o.status in statuses]

    @property
    def succeeded(self) -> bool:
        """Whether any file was written (now or by an earlier run)."""
        return bool(self.with_status("done"))


def find_inputs(input_dirs: list[Path]) -> list[Path]:
    """The PDFs and EPUBs under each folder (sorted per folder, each file once), or a one-line error."""
    if not input_dirs:
        raise InputError("--input_dir needs at least one folder of PDF/EPUB files")
    files: list[Path] = []
    seen: set[Path] = set()
    for folder in map(Path, input_dirs):
        folder = folder.expanduser()
        if not folder.exists():
            raise FileNotFoundError(f"--input_dir {str(folder)!r} does not exist; give a folder of PDF/EPUB files")
        if not folder.is_dir():
            raise NotADirectoryError(f"--input_dir {str(folder)!r} is a file, not a folder; give its folder")
        found = sorted(p for p in folder.rglob("*") if p.suffix.lower() in READERS and p.is_file()
                       and not any(part.startswith(".") for part in p.relative_to(folder).parts))
        if not found:
            raise InputError(f"--input_dir {str(folder)!r} holds no {'/'.join(READERS)} files (searched "
                             "recursively); point it at a folder of papers")
        for file in found:
            if file.resolve() not in seen:
                seen.add(file.resolve())
                files.append(file)
    return files


def prepare_output_dir(output_dir: Path) -> Path:
    """Create ``output_dir`` and prove it writable, or a one-line error naming it."""
    output_dir = Path(output_dir).expanduser()
    if output_dir.exists() and not output_dir.is_dir():
        raise NotADirectoryError(f"--output_dir {str(output_dir)!r} is a file; give a folder (new or existing)")
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=output_dir, prefix=".write-test-"):
            pass
    except OSError as exc:
        raise PermissionError(f"--output_dir {str(output_dir)!r} cannot be created or written "
                              f"({exc.strerror or exc}); choose a folder you can write to") from None
    return output_dir


def check_dependencies(files: list[Path], fmt: str) -> None:
    """A MissingDependencyError (before any work) when a reader's package is not installed."""
    suffixes = {f.suffix.lower() for f in files}
    missing = sorted({m for s in suffixes for m in NEEDED[s][fmt] if importlib.util.find_spec(m) is None})
    if missing:
        raise MissingDependencyError(f"reading these files needs {', '.join(missing)}; install: {PAPERS_EXTRA}")


def _file_logger(output_dir: Path) -> tuple[logging.Logger, logging.Handler]:
    log = logging.getLogger("rag.readers.extract_log")
    log.propagate = False  # the details go to OUT/extract.log, the terminal gets the summary
    log.setLevel(logging.INFO)
    handler = logging.FileHandler(output_dir / LOG_FILE, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    return log, handler


def _extract_one(file: Path, name: str, config: ExtractionConfig, state: ResumeState, worker: ReaderWorker,
                 log: logging.Logger) -> FileOutcome:
    role = state.role_for(file)
    reader = reader_names(file)[role]
    start = time.perf_counter()
    attempt = worker.read(file, role, config.fmt)
    seconds = round(time.perf_counter() - start, 3)
    for line in attempt.log:
        log.info("%s: %s", file, line)
    if attempt.status == "missing_dependency":
        raise MissingDependencyError(attempt.message)
    outcome = FileOutcome(str(file), attempt.status, reader=reader, seconds=seconds, message=attempt.message)
    if attempt.status == "ok":
        text = attempt.text or ""
        outcome.chars = len(text.strip())
        if outcome.chars < config.min_length:
            outcome.status = "too_short"
            outcome.message = f"{file.name}: {TOO_SHORT} ({outcome.chars} characters < --min_length " \
                              f"{config.min_length})"
        else:
            outcome.status, outcome.output = "done", name + FORMATS[config.fmt]
            atomic_write_text(config.output_dir / outcome.output, text)
    state.record(file, status=outcome.status, output=outcome.output, reader=reader, role=role, fmt=config.fmt,
                 min_length=config.min_length, chars=outcome.chars, seconds=seconds, message=outcome.message)
    level = logging.INFO if outcome.status == "done" else logging.WARNING
    log.log(level, "%s: %s with %s (%s), %d chars, %.2f s%s", file, outcome.status, reader, role, outcome.chars,
            seconds, f": {outcome.message}" if outcome.message else "")
    return outcome


def run_extraction(config: ExtractionConfig) -> ExtractionReport:
    """Extract every input (see the module docstring); bad input raises before any file is read."""
    if config.fmt not in FORMATS:
        raise InputError(f"--format {config.fmt!r} is not one of {', '.join(FORMATS)}")
    if config.min_length < 0:
        raise InputError(f"--min_length {config.min_length} is negative; give 0 or more characters")
    files = find_inputs(config.input_dirs)
    config.output_dir = prepare_output_dir(config.output_dir)
    check_dependencies(files, config.fmt)
    state = ResumeState.load(config.output_dir, config.resume)
    names = assign_names(files, state)
    settings = {"fmt": config.fmt, "min_length": config.min_length}
    report = ExtractionReport(config.output_dir)
    log, handler = _file_logger(config.output_dir)
    log.info("run: %d file(s) from %s -> %s (format %s, min length %d, resume %s)", len(files),
             ", ".join(map(str, config.input_dirs)), config.output_dir, config.fmt, config.min_length,
             config.resume)
    iterator: Any = files
    if config.progress:
        from tqdm import tqdm

        iterator = tqdm(files, desc="extracting", unit="file", disable=len(files) < 2)
    try:
        with ReaderWorker(timeout=config.timeout) as worker:
            for file in iterator:
                done = state.finished(file, settings)
                if done is not None:
                    report.outcomes.append(FileOutcome(str(file), done["status"], done.get("output"),
                                                       done.get("reader", ""), done.get("chars", 0),
                                                       done.get("seconds", 0.0), done.get("message", ""), True))
                    log.info("%s: %s earlier; skipped", file, done["status"])
                    continue
                report.outcomes.append(_extract_one(file, names[file], config, state, worker, log))
    finally:
        state.save()
        log.removeHandler(handler)
        handler.close()
    return report


def summary_counts(report: ExtractionReport) -> dict[str, int]:
    """Outcome -> number of files (``done`` split into ``written`` now and ``done earlier``)."""
    counts: dict[str, int] = {}
    for outcome in report.outcomes:
        key = "done earlier" if outcome.resumed and outcome.status == "done" else outcome.status
        counts[key] = counts.get(key, 0) + 1
    return counts


__all__ = ["ExtractionConfig", "ExtractionReport", "FileOutcome", "find_inputs", "prepare_output_dir",
           "run_extraction", "summary_counts"]
