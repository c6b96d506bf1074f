"""Print how the tests of the given markers' modules ended, from a pytest JUnit XML report.

``python tools/required_tests.py REPORT browser`` prints e.g. ``browser tests: 3 passed`` and
exits 1 when none passed or any did not pass: `.ci/run` uses it so CI shows that the tests
needing a real browser ran there. A marker maps to its test modules through MODULES.
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ElementTree

#: The test modules whose every test needs the marker's component.
MODULES = {"browser": ("tests.test_report_browser",), "postgres": ("tests.test_search_postgres",)}


def outcomes(report: str, modules: tuple[str, ...]) -> dict[str, int]:
    counts = {"passed": 0, "failed": 0, "skipped": 0}
    for case in ElementTree.parse(report).iter("testcase"):
        if not case.get("classname", "").startswith(modules):
            continue
        if case.find("failure") is not None or case.find("error") is not None:
            counts["failed"] += 1
        elif case.find("skipped") is not None:
            counts["skipped"] += 1
        else:
            counts["passed"] += 1
    return counts


def main(argv: list[str]) -> int:
    report, markers = argv[1], argv[2:]
    ok = True
    for marker in markers:
        counts = outcomes(report, MODULES[marker])
        shown = [f"{n} {what}" for what, n in counts.items() if n or what == "passed"]
        print(f"{marker} tests: {', '.join(shown)}")
        ok = ok and counts["passed"] > 0 and counts["failed"] == counts["skipped"] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
