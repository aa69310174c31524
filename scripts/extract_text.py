"""extract_text: PDF and EPUB papers -> one cleaned ``<stem>.txt`` (or ``.md``) each, resumable.

Reads every ``.pdf``/``.epub`` under the ``--input_dir`` folders (recursively) with :mod:`rag.readers` in a
worker process (a parser crash costs one file), writes ``OUTPUT_DIR/<stem>.txt`` (a second input with the same
stem gets ``<stem>-<8 hex of its path's sha1>``), keeps progress in ``OUTPUT_DIR/.resume.json`` after every file
and details in ``OUTPUT_DIR/extract.log``. A re-run skips finished files and retries a crashed one with the
fallback reader. Scanned PDFs (no text layer) are reported as needing OCR; encrypted, broken and non-EPUB files
are reported and skipped. Exit code 0 when any file was extracted, 1 when none was, 2 for bad input.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

EXAMPLES = """examples:
  python main.py extract_text --input_dir papers/ --output_dir texts/
  python main.py extract_text --input-dir papers/ books/ --output-dir texts/ --format md
  python main.py extract_text --input_dir papers/ --output_dir texts/ --min_length 500 --no_resume
  python scripts/extract_text.py --input_dir papers/ --output_dir texts/      # the same, run as a file
"""

REASONS = {"too_short": "too little text: needs OCR?", "needs_ocr": "no text layer: needs OCR",
           "encrypted": "encrypted", "broken": "broken or not a PDF/EPUB", "crashed": "the reader crashed",
           "timeout": "the reader timed out", "error": "the reader failed"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input_dir", nargs="+", action="extend", required=True, metavar="DIR",
                        help="folders of .pdf/.epub files (searched recursively); several may follow one flag")
    parser.add_argument("--output_dir", required=True, help="folder for the texts, .resume.json and extract.log")
    parser.add_argument("--format", choices=["txt", "md"], default="txt",
                        help="txt: PyMuPDF text, fast (~0.05 s a paper); md: pymupdf4llm Markdown, slower "
                             "(seconds a paper) but with tables and lists (default: txt)")
    parser.add_argument("--min_length", type=int, default=200,
                        help="outputs with fewer characters are reported (too little text: needs OCR?) and not "
                             "written (default: 200)")
    parser.add_argument("--no_resume", action="store_true",
                        help="read every file again, ignoring .resume.json (default: skip finished files)")
    parser.add_argument("--timeout", type=float, default=600.0,
                        help="seconds one file may take before its reader is stopped (default: 600)")
    parser.add_argument("--no_progress", action="store_true", help="no progress bar")
    parser.add_argument("--verbose", action="store_true")


def _names(outcomes: list) -> str:
    return ", ".join(Path(o.source).name for o in outcomes)


def print_summary(report: Any) -> None:
    """The outcome counts, the files behind each reason, and where the log is."""
    from rag.readers.extraction_run import summary_counts

    counts = summary_counts(report)
    written = counts.get("done", 0)
    earlier = counts.get("done earlier", 0)
    skipped = len(report.outcomes) - written - earlier
    earlier_note = f" (+{earlier} done by an earlier run)" if earlier else ""
    print(f"{written} written{earlier_note}, {skipped} skipped, {len(report.with_status('needs_ocr', 'too_short'))}"
          f" need OCR; output: {report.output_dir}")
    for status, reason in REASONS.items():
        outcomes = report.with_status(status)
        if outcomes:
            print(f"  {reason} ({len(outcomes)}): {_names(outcomes)}")
    if report.with_status("crashed", "timeout", "error"):
        print("  re-run the same command to retry those with the fallback reader")
    print(f"details: {report.output_dir / 'extract.log'}")


def main(args: argparse.Namespace) -> int:
    # imported here, not at the top: run as a file, scripts/ comes first on sys.path and scripts/rag.py would
    # shadow the rag package until run_as_script puts the project root in front
    from rag.readers.extraction_run import ExtractionConfig, run_extraction

    config = ExtractionConfig(input_dirs=[Path(d) for d in args.input_dir], output_dir=Path(args.output_dir),
                              fmt=args.format, min_length=args.min_length, resume=not args.no_resume,
                              timeout=args.timeout, progress=not args.no_progress)
    if args.timeout <= 0:
        from minillm.errors import InputError

        raise InputError(f"--timeout {args.timeout} must be a positive number of seconds")
    report = run_extraction(config)
    print_summary(report)
    return 0 if report.succeeded else 1


if __name__ == "__main__":  # python scripts/extract_text.py ..., from the project root
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from main import run_as_script

    run_as_script("extract_text")
