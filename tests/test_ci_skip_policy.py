"""CI's skip policy (.ci/check_skips.py): only "needs a CUDA GPU" may skip; any other skip fails the run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _report(tmp_path: Path, *reasons: str) -> Path:
    cases = "".join(f'<testcase classname="t" name="n{i}"><skipped message="{r}"/></testcase>'
                    for i, r in enumerate(reasons))
    file = tmp_path / "report.xml"
    file.write_text(f'<testsuites><testsuite name="pytest">{cases}<testcase classname="t" name="ok"/>'
                    "</testsuite></testsuites>")
    return file


def _check(report: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / ".ci" / "check_skips.py"), str(report)], capture_output=True,
                          text=True, check=False)


def test_gpu_skips_pass_and_any_other_skip_fails(tmp_path):
    assert _check(_report(tmp_path, "needs a CUDA GPU", "needs a CUDA GPU")).returncode == 0
    failed = _check(_report(tmp_path, "needs a CUDA GPU", "could not import 'transformers': No module named x"))
    assert failed.returncode == 1
    assert "transformers" in failed.stderr
    assert _check(_report(tmp_path, "../shared/data is absent (/x)")).returncode == 1
