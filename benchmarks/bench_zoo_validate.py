"""Cold ``cnnspec validate`` over the whole zoo, every variant, against one cold ``import tensorflow``
(issue 15's limit: < 0.1×), and where the validate process spends its time.

1. Cold processes, alternating: ``cnnspec validate zoo:A zoo:B …`` (every variant the zoo lists,
   one command: by default it forks one worker per CPU core, see ``cnnspec.cli.forked``; its
   CPU time includes the workers'), the same with ``-j 1`` (one process), ``cnnspec validate``
   of one tiny spec (the floor: interpreter, Typer, Rich, jsonschema, the registry), and
   ``python -c "import tensorflow"``. Wall and CPU time (user + system) of each; the ratios of
   the medians. On a loaded machine CPU time is the steadier figure.
2. In one process, the front end's passes over every variant, timed per pass (CPU time): what
   the figure is made of.

``--pythonpath DIR`` runs the cnnspec processes against another checkout's ``cnnspec`` package
(``git archive REV cnnspec schemas templates | tar -x -C DIR``) with this venv, for before/after.
The children may write bytecode (``PYTHONDONTWRITEBYTECODE`` is dropped) and a warm-up process
runs first: a cold start of an installed package reads ``.pyc`` files, it does not compile.

Run by hand:

    .venv/bin/python benchmarks/bench_zoo_validate.py [--repeats 5] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import PYTHON, alternate, fmt_stat, ratio, run_child, summary, write_json

TINY = "cnnspec: 1\nname: tiny\ninput: {shape: [8, 8, 1]}\nmodel: [flatten, {dense: 3}]\n"

#: Run in a child so the per-pass figures are a fresh process's too (caches start empty).
PASS_TIMER = """
import json, sys, time
from cnnspec.analysis import passes
from cnnspec.spec.zoo import variants
spent = {step.__name__: 0.0 for step in passes.PASSES}
def timed(step):
    def run(value, context):
        start = time.process_time()
        try:
            return step(value, context)
        finally:
            spent[step.__name__] += time.process_time() - start
    run.__name__ = step.__name__
    return run
passes.PASSES = tuple(timed(step) for step in passes.PASSES)
layers = 0
for name in variants():
    compiled = passes.run_passes(passes.Source(path=f"zoo:{name}"), passes.Context(), passes.PASSES)
    layers += len(compiled.ir.nodes)
print(json.dumps({"variants": len(variants()), "layers": layers, "passes": spent}))
"""


def cold(names: list[str], repeats: int, baseline: bool, pythonpath: str | None) -> dict[str, Any]:
    """Measurement 1: wall and CPU seconds of each cold process, alternating."""
    env = {"PYTHONPATH": pythonpath} if pythonpath else None
    cnnspec = [PYTHON, "-c", "import sys; from cnnspec.cli.app import main; sys.argv[0] = 'cnnspec'; main()"]
    with tempfile.TemporaryDirectory(prefix="cnnspec-bench-") as tmp:
        tiny = Path(tmp) / "tiny.yaml"
        tiny.write_text(TINY, encoding="utf-8")

        def validate_zoo(*options: str) -> tuple[float, float]:
            command = [*cnnspec, "validate", *options, *(f"zoo:{n}" for n in names)]
            child = run_child(command, env=env, cwd=Path(tmp)).check("cnnspec validate (zoo)")
            return child.seconds, child.cpu_seconds  # with its forked workers' CPU (wait4)

        def validate_tiny() -> tuple[float, float]:
            child = run_child([*cnnspec, "validate", str(tiny)], env=env, cwd=Path(tmp)).check("validate")
            return child.seconds, child.cpu_seconds

        def import_tf() -> tuple[float, float]:
            child = run_child([PYTHON, "-c", "import tensorflow"]).check("import tensorflow")
            return child.seconds, child.cpu_seconds

        variants = {"validate_zoo": validate_zoo, "validate_tiny": validate_tiny}
        if not pythonpath:  # an older checkout may have no -j
            variants["validate_zoo_serial"] = lambda: validate_zoo("-j", "1")
        if baseline:
            variants["import_tensorflow"] = import_tf
        validate_zoo()  # warm-up: writes cnnspec's bytecode, as installing a wheel does
        samples = alternate(variants, repeats)
    samples.setdefault("import_tensorflow", [])
    wall = {k: summary([w for w, _ in v]) for k, v in samples.items()}
    cpu = {k: summary([c for _, c in v]) for k, v in samples.items()}
    return {
        "variants": len(names),
        "wall": wall,
        "cpu": cpu,
        "ratio": ratio(wall["validate_zoo"], wall["import_tensorflow"]),
        "cpu_ratio": ratio(cpu["validate_zoo"], cpu["import_tensorflow"]),
        "serial_ratio": ratio(wall.get("validate_zoo_serial"), wall["import_tensorflow"]),
        "serial_cpu_ratio": ratio(cpu.get("validate_zoo_serial"), cpu["import_tensorflow"]),
        "target": 0.1,
    }


def per_pass(pythonpath: str | None) -> dict[str, Any]:
    """Measurement 2: CPU seconds per front-end pass over every variant, in a fresh process."""
    env = {"PYTHONPATH": pythonpath} if pythonpath else None
    # not from the repository root: `python -c` puts the working folder first on sys.path
    child = run_child([PYTHON, "-c", PASS_TIMER], env=env, cwd=Path(tempfile.gettempdir()))
    child.check("per-pass timing")
    return json.loads(child.stdout.strip().splitlines()[-1])


def report(results: dict[str, Any]) -> None:
    """Print the results for a person."""
    c = results["cold"]
    print(f"cold processes ({results['repeats']} each), wall | CPU:")
    labels = {
        "validate_zoo": f"cnnspec validate, {c['variants']} zoo variants",
        "validate_zoo_serial": "  the same with -j 1 (one process)",
        "validate_tiny": "cnnspec validate, one tiny spec",
        "import_tensorflow": "python -c 'import tensorflow'",
    }
    for key, label in labels.items():
        if key not in c["wall"]:
            continue
        print(f"  {label}: {fmt_stat(c['wall'][key], unit='s')} | {fmt_stat(c['cpu'][key], unit='s')}")
    if c["ratio"] is not None:
        print(f"ratio validate / import tensorflow: wall {c['ratio']:.3f}, CPU {c['cpu_ratio']:.3f}")
        if c.get("serial_ratio") is not None:
            print(f"  with -j 1: wall {c['serial_ratio']:.3f}, CPU {c['serial_cpu_ratio']:.3f}")
        print(f"  (target < {c['target']})")
    p = results["passes"]
    total = sum(p["passes"].values())
    print(f"in one process, {p['variants']} variants, {p['layers']:,} layers: {total:.3f} s CPU")
    for name, seconds in p["passes"].items():
        print(f"  {name:15} {seconds:.3f} s ({100 * seconds / total:.0f}%)")


def main(argv: list[str] | None = None) -> int:
    """Run the measurements and print (and optionally save) the results."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=5, help="repetitions of each process (default 5)")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--pythonpath", help="run cnnspec from this folder's cnnspec package instead")
    parser.add_argument(
        "--no-baseline", action="store_true", help="skip the `import tensorflow` processes (smoke tests)"
    )
    args = parser.parse_args(argv)
    # A cold process of an installed cnnspec reads compiled bytecode (pip writes it at install
    # time); with PYTHONDONTWRITEBYTECODE every child would compile cnnspec's sources again.
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    from cnnspec.spec.zoo import variants

    names = list(variants())
    results = {
        "repeats": args.repeats,
        "pythonpath": args.pythonpath,
        "cold": cold(names, args.repeats, not args.no_baseline, args.pythonpath),
        "passes": per_pass(args.pythonpath),
    }
    report(results)
    write_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
