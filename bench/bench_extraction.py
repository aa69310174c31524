"""Benchmark the PDF/EPUB readers on ../shared/data: status, size, word coverage and time per file.

    python bench/bench_extraction.py [--formats txt,md,fallback] [--data ../shared/data] [--out bench/results/extraction.json]

Coverage (:mod:`rag.readers.coverage`) is the multiset recall of the reference's words in our output: for a PDF
the reference is its own text layer (PyMuPDF's plain ``page.get_text()``), for an EPUB a conversion made
independently with the standard library (zipfile + OPF spine + html.parser). Readers: ``txt`` (PyMuPDF blocks
+ our clean-up, the default of ``extract_text``), ``md`` (pymupdf4llm's layout Markdown, ``--format md``),
``fallback`` (pypdf for PDFs, zipfile + html.parser for EPUBs, used after a crash). Every file is read in this
process, one after the other; times are wall seconds on this machine. Prints a table per reader and the median
and minimum coverage per kind; writes everything to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
import zipfile
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from rag.readers import DocumentError, read_with
from rag.readers.coverage import epub_reference_text, pdf_text_layer, recall, words

READERS = {"txt": ("primary", "txt"), "md": ("primary", "md"), "fallback": ("fallback", "txt")}
PACKAGES = ("pymupdf", "pymupdf4llm", "pypdf", "ebooklib", "beautifulsoup4", "lxml")


def inputs(data: Path) -> list[Path]:
    return sorted((data / "papers-pdf").glob("*.pdf")) + sorted((data / "epub").glob("*.epub"))


def reference(path: Path) -> str | None:
    """The reference text, or None when there is none (a broken EPUB)."""
    try:
        return pdf_text_layer(path) if path.suffix == ".pdf" else epub_reference_text(path)
    except (KeyError, OSError, ValueError, RuntimeError, StopIteration, zipfile.BadZipFile) as exc:
        print(f"  (no reference for {path.name}: {type(exc).__name__})", file=sys.stderr)
        return None


def measure(path: Path, reader: str, ref: str | None) -> dict:
    role, fmt = READERS[reader]
    start = time.perf_counter()
    try:
        text, status, message = read_with(path, role, fmt), "ok", ""
    except DocumentError as exc:
        text, status, message = "", type(exc).__name__, str(exc)
    seconds = time.perf_counter() - start
    row = {"file": path.name, "kind": path.suffix[1:], "reader": reader, "status": status, "message": message,
           "chars": len(text), "words": sum(words(text).values()), "seconds": round(seconds, 3)}
    if status == "ok" and ref is not None and words(ref):
        row["coverage"] = round(recall(ref, text), 4)
    return row


def summarise(rows: list[dict]) -> dict:
    summary: dict = {}
    for reader in sorted({r["reader"] for r in rows}):
        for kind in ("pdf", "epub"):
            picked = [r for r in rows if r["reader"] == reader and r["kind"] == kind]
            covered = [r["coverage"] for r in picked if "coverage" in r]
            if picked:
                summary[f"{reader}/{kind}"] = {
                    "files": len(picked), "ok": sum(r["status"] == "ok" for r in picked),
                    "median_coverage": round(statistics.median(covered), 4) if covered else None,
                    "min_coverage": min(covered) if covered else None,
                    "total_seconds": round(sum(r["seconds"] for r in picked), 2)}
    return summary


def print_table(rows: list[dict], summary: dict) -> None:
    for reader in sorted({r["reader"] for r in rows}):
        print(f"\nreader: {reader}")
        print(f"{'file':<58} {'status':<22} {'chars':>8} {'words':>7} {'coverage':>8} {'s':>7}")
        for r in (r for r in rows if r["reader"] == reader):
            cov = f"{r['coverage']:.3f}" if "coverage" in r else "-"
            print(f"{r['file'][:58]:<58} {r['status']:<22} {r['chars']:>8} {r['words']:>7} {cov:>8} "
                  f"{r['seconds']:>7.2f}")
    print()
    for key, s in summary.items():
        print(f"{key:<14} ok {s['ok']}/{s['files']}, median coverage {s['median_coverage']}, min "
              f"{s['min_coverage']}, {s['total_seconds']} s in all")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--formats", default="txt,md,fallback", help="comma-separated: txt, md, fallback")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "extraction.json")
    args = parser.parse_args()
    readers = [r for r in args.formats.split(",") if r]
    unknown = set(readers) - set(READERS)
    if unknown:
        parser.error(f"--formats: unknown {sorted(unknown)}; choose from {', '.join(READERS)}")
    files = inputs(args.data)
    if not files:
        parser.error(f"no PDFs or EPUBs under {args.data}/papers-pdf and {args.data}/epub")
    references = {path: reference(path) for path in files}
    rows = []
    for reader in readers:
        for path in files:
            rows.append(measure(path, reader, references[path]))
            print(f"  {reader:<8} {path.name[:50]:<50} {rows[-1]['status']:<20} {rows[-1]['seconds']:.2f} s",
                  file=sys.stderr)
    summary = summarise(rows)
    print_table(rows, summary)
    versions = {}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    result = {"machine": f"python {platform.python_version()}, {platform.machine()}, {platform.system()}",
              "versions": versions, "summary": summary, "rows": rows,
              "reference": {"pdf": "the file's own text layer: PyMuPDF page.get_text() of every page",
                            "epub": "zipfile + xml.etree OPF spine + html.parser tag stripping (stdlib only)"}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
