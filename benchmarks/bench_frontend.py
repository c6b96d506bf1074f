"""Front-end speed (measurements 1 and 2 of benchmarks/README.md).

1. One cold ``cnnspec validate specs/*.yaml`` process against one cold
   ``python -c "import tensorflow"`` process: what a CI job pays for checking the whole library
   versus what any TensorFlow-based check pays before doing anything. Target: ratio < 0.1.
2. In-process front end (load + schema validation + resolve with shape/parameter/FLOP inference)
   per spec, warm (after one call), with a stage breakdown for the two largest specs,
   resnet50.yaml and densenet121.yaml (target < 50 ms each), and specs per second over the library.

A and B alternate within each repetition. Run by hand:

    .venv/bin/python benchmarks/bench_frontend.py [--repeats 7] [--json out.json]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import CNNSPEC, PYTHON, ROOT, alternate, fmt_stat, ratio, run_child, summary, write_json

STAGE_SPECS = ("resnet50.yaml", "densenet121.yaml")


def cold_validate_vs_import(specs: list[Path], repeats: int, baseline: bool = True) -> dict[str, Any]:
    """Measurement 1: wall time of each cold process, alternating."""
    names = [str(p.relative_to(ROOT)) for p in specs]

    def validate() -> tuple[float, float]:
        child = run_child([CNNSPEC, "validate", *names]).check("cnnspec validate")
        return child.seconds, child.cpu_seconds

    def import_tf() -> tuple[float, float]:
        child = run_child([PYTHON, "-c", "import tensorflow"]).check("import tensorflow")
        return child.seconds, child.cpu_seconds

    variants = {"validate": validate, "import_tensorflow": import_tf} if baseline else {"validate": validate}
    samples = alternate(variants, repeats)
    samples.setdefault("import_tensorflow", [])
    wall = {k: summary([w for w, _ in v]) for k, v in samples.items()}
    cpu = {k: summary([c for _, c in v]) for k, v in samples.items()}
    return {
        "specs": len(specs),
        **wall,
        "cpu": cpu,
        "ratio": ratio(wall["validate"], wall["import_tensorflow"]),
        "cpu_ratio": ratio(cpu["validate"], cpu["import_tensorflow"]),
        "target": 0.1,
    }


def _timed(fn: Any) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def in_process(specs: list[Path], repeats: int) -> dict[str, Any]:
    """Measurement 2: warm in-process front-end time per spec and per stage."""
    from cnnspec import api

    per_spec: dict[str, Any] = {}
    for path in specs:
        compiled = api.compile_spec(path)  # warm-up: schema validator, lazy imports
        samples = [_timed(lambda p=path: api.compile_spec(p)) for _ in range(repeats)]
        entry: dict[str, Any] = {
            "layers": len(compiled.ir.nodes),
            "parameters": compiled.summary()["total_params"],
            "compile": summary(samples),
        }
        if path.name in STAGE_SPECS:
            stages: dict[str, list[float]] = {"load": [], "validate": [], "resolve_infer": []}
            for _ in range(repeats):
                start = time.perf_counter()
                doc = api.load(path)
                t1 = time.perf_counter()
                api.validate(doc)
                t2 = time.perf_counter()
                api.resolve(doc)
                t3 = time.perf_counter()
                stages["load"].append(t1 - start)
                stages["validate"].append(t2 - t1)
                stages["resolve_infer"].append(t3 - t2)
            entry["stages"] = {k: summary(v) for k, v in stages.items()}
        per_spec[path.name] = entry

    # the whole library in one loop, as `cnnspec validate specs/*.yaml` does in process
    library = [_timed(lambda: [api.compile_spec(p) for p in specs]) for _ in range(repeats)]
    lib = summary(library)
    return {
        "per_spec": per_spec,
        "library": lib,
        "specs_per_second": len(specs) / lib["median"] if lib["median"] else None,
        "target_ms": 50.0,
    }


def report(results: dict[str, Any]) -> None:
    """Print the results for a person."""
    cold = results["cold"]
    print(f"cold `cnnspec validate` of {cold['specs']} specs: {fmt_stat(cold['validate'], unit='s')}")
    print(f"cold `python -c 'import tensorflow'`:      {fmt_stat(cold['import_tensorflow'], unit='s')}")
    if cold["ratio"] is not None:
        print(
            f"ratio validate / import tensorflow: {cold['ratio']:.3f} (CPU time: {cold['cpu_ratio']:.3f}; "
            f"target < {cold['target']})"
        )
    warm = results["in_process"]
    print("\nin-process compile_spec (load + validate + resolve + infer), warm:")
    for name, entry in warm["per_spec"].items():
        print(f"  {name:22s} {entry['layers']:4d} layers  {fmt_stat(entry['compile'], 1000, 1, 'ms')}")
        for stage, stat in entry.get("stages", {}).items():
            print(f"      {stage:16s} {fmt_stat(stat, 1000, 1, 'ms')}")
    print(
        f"library ({len(warm['per_spec'])} specs) in one loop: {fmt_stat(warm['library'], 1000, 1, 'ms')}"
        f" → {warm['specs_per_second']:.1f} specs/s"
    )


def main(argv: list[str] | None = None) -> int:
    """Run measurements 1 and 2 and print (and optionally save) the results."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=7, help="repetitions of each variant (default 7)")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument(
        "--no-baseline", action="store_true", help="skip the `import tensorflow` processes (smoke tests)"
    )
    args = parser.parse_args(argv)

    specs = sorted((ROOT / "specs").glob("*.yaml"))
    results = {
        "repeats": args.repeats,
        "cold": cold_validate_vs_import(specs, args.repeats, not args.no_baseline),
        "in_process": in_process(specs, args.repeats),
    }
    report(results)
    write_json(args.json, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
