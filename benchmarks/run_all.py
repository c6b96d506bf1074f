"""Run every benchmark and publish the table: ``make bench`` (full) and ``make bench-quick``.

Each measurement is its own script (``bench_<part>.py``), run here as a child process that
writes ``<results>/<part>.json``; ``report.py`` turns the folder into benchmarks/README.md. A
measurement whose command does not exist in this checkout (``cnnspec train``, ``cnnspec codegen``)
or that fails is recorded as missing, with the reason, and the others still run.

    .venv/bin/python benchmarks/run_all.py            # full: tens of minutes, rewrites README.md
    .venv/bin/python benchmarks/run_all.py --quick    # a few minutes, prints the tables only
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import report
from _common import BENCH_DIR, CNNSPEC, PYTHON, ROOT, machine_info, run_child, write_json

FULL: dict[str, list[str]] = {
    "frontend": ["--repeats", "7"],
    "build": ["--repeats", "9"],
    "train": ["--epochs", "5", "--repeats", "3", "--train-images", "10000", "--test-images", "1000"],
    "pipeline": ["--epochs", "4", "--images", "2048"],
    "digits": ["--seeds", "1,2,3"],
    "codegen": ["--repeats", "5"],
}
QUICK: dict[str, list[str]] = {
    "frontend": ["--repeats", "3"],
    "build": ["--repeats", "3"],
    "train": ["--epochs", "3", "--repeats", "1", "--train-images", "2000", "--test-images", "200"],
    "pipeline": ["--epochs", "2", "--images", "512"],
    "digits": ["--seeds", "1"],
    "codegen": ["--repeats", "2"],
}
#: parts that need a cnnspec sub-command another part of the project provides
NEEDS = {"train": "train", "digits": "train", "codegen": "codegen"}


def load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def has_command(name: str) -> bool:
    return run_child([CNNSPEC, name, "--help"]).returncode == 0


def run_part(part: str, args: list[str], folder: Path) -> dict[str, Any]:
    """Run one ``bench_<part>.py``; its JSON, or ``{"error"/"available": ...}`` saying why not."""
    script = BENCH_DIR / f"bench_{part}.py"
    out = folder / f"{part}.json"
    if out.exists():
        out.unlink()
    if not script.is_file():
        return {"available": False, "reason": f"{script.name} is not in this checkout"}
    command = NEEDS.get(part)
    if command and not has_command(command):
        return {"available": False, "reason": f"this checkout has no `cnnspec {command}` command"}
    print(f"\n=== {part}: {script.name} {' '.join(args)}", flush=True)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONWARNINGS": "ignore"}
    start = time.perf_counter()
    status = subprocess.run([PYTHON, str(script), *args, "--json", str(out)], cwd=ROOT, env=env).returncode
    elapsed = time.perf_counter() - start
    if status != 0 or not out.is_file():
        return {"error": f"{script.name} failed with exit status {status}"}
    data = json.loads(out.read_text(encoding="utf-8"))
    data["elapsed_seconds"] = elapsed
    return data


def main(argv: list[str] | None = None) -> int:
    """Run the selected measurements, save their JSON and render the report."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="fewer repetitions and less data (a few minutes)"
    )
    parser.add_argument("--only", help=f"comma-separated subset of {', '.join(FULL)}")
    parser.add_argument(
        "--results", type=Path, help="folder for the JSON results (default build/bench[-quick])"
    )
    parser.add_argument(
        "--readme",
        type=Path,
        help="write the report here (default: benchmarks/README.md for a full run of every part; "
        "a quick or partial run only prints it)",
    )
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    parts = args.only.split(",") if args.only else list(plan)
    unknown = [p for p in parts if p not in plan]
    if unknown:
        parser.error(f"unknown part(s) {', '.join(unknown)}; choose from {', '.join(plan)}")
    folder = args.results or ROOT / "build" / ("bench-quick" if args.quick else "bench")
    folder.mkdir(parents=True, exist_ok=True)

    meta = {**machine_info(), "quick": args.quick, "load_average": {"before": load_average()}}
    start = time.perf_counter()
    results: dict[str, Any] = {}
    for part in parts:
        results[part] = run_part(part, plan[part], folder)
        write_json(folder / f"{part}.json", results[part])
    meta["load_average"]["after"] = load_average()
    meta["elapsed_seconds"] = time.perf_counter() - start
    threads = (results.get("build") or {}).get("threads")
    if threads is None:
        first = next(iter((results.get("train") or {}).get("pairs", {}).values()), None)
        threads = first["hand_written"]["runs"][0].get("threads") if first else None
    meta["threads"] = threads
    results["meta"] = meta
    write_json(folder / "meta.json", meta)

    readme = args.readme
    if readme is None and not args.quick and not args.only:
        readme = ROOT / "benchmarks" / "README.md"
    text = report.render(results, report.existing_notes(readme) if readme else "")
    print("\n" + "\n".join(report.headline(results)))
    if readme is not None:
        report.write_readme(results, readme)
        print(f"wrote {readme}")
    else:
        from cnnspec.fileio import write_atomic

        write_atomic(folder / "README.md", text)
        print(f"report (not published): {folder / 'README.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
