"""Code generation speed (measurement 6 of benchmarks/README.md).

One cold ``cnnspec codegen specs/resnet50.yaml`` process (front end + Python emitter, writing the
generated source to a temporary folder), alternating with a cold ``cnnspec validate`` of the same
spec (the front end alone: the difference is the emitter's cost), the same codegen with
``--no-format`` (without the ``ruff format`` pass, when the command has that option) and a cold
``python -c "import tensorflow"`` (what any tool that needs TensorFlow pays before starting).
Codegen never imports TensorFlow, so it should cost a fraction of that import. Run by hand:

    .venv/bin/python benchmarks/bench_codegen.py [--repeats 5] [--spec specs/resnet50.yaml] [--json out.json]
"""

from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import CNNSPEC, PYTHON, alternate, fmt_stat, ratio, run_child, summary, write_json


def codegen_available() -> tuple[bool, str]:
    """Whether this checkout has a ``cnnspec codegen`` command, and its help text."""
    child = run_child([CNNSPEC, "codegen", "--help"])
    return child.returncode == 0, child.stdout


def codegen_command(spec: str, help_text: str, out: Path, *extra: str) -> list[str]:
    """The codegen command line, writing ``out`` (a .py file) when the command takes ``--output``."""
    if "--output" in help_text:
        return [CNNSPEC, "codegen", spec, "--output", str(out), *extra]
    return [CNNSPEC, "codegen", spec, *extra]


def measure(spec: str, repeats: int, baseline: bool = True) -> dict[str, Any]:
    """Alternate cold codegen (with and without formatting), cold validate, cold import tensorflow."""
    available, help_text = codegen_available()
    if not available:
        return {"available": False, "spec": spec, "reason": "this checkout has no `cnnspec codegen` command"}
    counter = itertools.count(1)
    with tempfile.TemporaryDirectory(prefix="cnnspec-bench-codegen-") as tmp:

        def codegen(*extra: str) -> float:
            out = Path(tmp) / f"model_{next(counter)}.py"
            command = codegen_command(spec, help_text, out, *extra)
            return run_child(command).check(" ".join(["cnnspec", *command[1:]])).seconds

        def validate() -> float:
            return run_child([CNNSPEC, "validate", spec]).check("cnnspec validate").seconds

        def import_tf() -> float:
            return run_child([PYTHON, "-c", "import tensorflow"]).check("import tensorflow").seconds

        variants = {"codegen": codegen, "validate": validate}
        if baseline:
            variants["import_tensorflow"] = import_tf
        if "--no-format" in help_text:
            variants["codegen_no_format"] = lambda: codegen("--no-format")
        samples = alternate(variants, repeats)
    command = codegen_command(spec, help_text, Path("model.py"))
    stats = {k: summary(v) for k, v in samples.items()}
    return {
        "available": True,
        "spec": spec,
        "command": " ".join(["cnnspec", *command[1:]]),
        **stats,
        "emitter_seconds": stats["codegen"]["median"] - stats["validate"]["median"],
        "ratio_to_import_tensorflow": ratio(stats["codegen"], stats.get("import_tensorflow")),
    }


def main(argv: list[str] | None = None) -> int:
    """Run measurement 6 and print (and optionally save) the results."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=5, help="cold runs of each variant (default 5)")
    parser.add_argument("--spec", default="specs/resnet50.yaml", help="relative to the repository root")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument(
        "--no-baseline", action="store_true", help="skip the `import tensorflow` processes (smoke tests)"
    )
    args = parser.parse_args(argv)
    results = {"repeats": args.repeats, **measure(args.spec, args.repeats, not args.no_baseline)}
    if not results["available"]:
        print(f"skipped: {results['reason']}")
    else:
        print(f"cold `cnnspec codegen {args.spec}`: {fmt_stat(results['codegen'], unit='s')}")
        print(f"cold `cnnspec validate {args.spec}`: {fmt_stat(results['validate'], unit='s')}")
        print(f"cold `import tensorflow`: {fmt_stat(results.get('import_tensorflow'), unit='s')}")
        if "codegen_no_format" in results:
            print(f"cold codegen with --no-format: {fmt_stat(results['codegen_no_format'], unit='s')}")
        share = results["ratio_to_import_tensorflow"]
        print(
            f"emitter alone ≈ {results['emitter_seconds'] * 1000:.0f} ms"
            + (f"; codegen / import tensorflow = {share:.3f}" if share is not None else "")
        )
    write_json(args.json, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
