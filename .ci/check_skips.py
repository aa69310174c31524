"""Fail CI when a test was skipped for any reason but the absence of a CUDA GPU.

CI installs every optional test dependency and has ../shared, so any other skip (an ``importorskip``, a missing
weights package, a fixture that gave up) hides a failure. Reads pytest's JUnit XML report.

    python .ci/check_skips.py .pytest-report.xml
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET

ALLOWED = ("needs a CUDA GPU",)


def main(report: str) -> int:
    bad = []
    skipped = 0
    for case in ET.parse(report).getroot().iter("testcase"):
        for skip in case.findall("skipped"):
            skipped += 1
            reason = skip.get("message", "") or (skip.text or "")
            if not any(allowed in reason for allowed in ALLOWED):
                bad.append(f"{case.get('classname')}::{case.get('name')}: {reason.strip()[:200]}")
    for line in bad:
        print(f"skipped in CI (must run): {line}", file=sys.stderr)
    print(f"check_skips: {skipped} skipped, {len(bad)} not allowed (allowed only: {', '.join(ALLOWED)})")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else ".pytest-report.xml"))
