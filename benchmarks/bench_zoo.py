"""The model zoo (issue 15): validate time of the whole zoo and the table of every variant.

1. One cold ``cnnspec validate zoo:A zoo:B …`` process over every variant against one cold
   ``python -c "import tensorflow"`` process (alternating). Target: ratio < 0.1. The CPU-time
   ratio is printed too: on a loaded machine it is the steadier figure.
2. Cold ``cnnspec zoo`` (target < 1 s).
3. With ``--keras``: every variant built by keras.applications (``weights=None``) for its
   parameter and layer counts, beside the spec's static figures and its line count.

Run by hand:

    .venv/bin/python benchmarks/bench_zoo.py [--repeats 5] [--keras] [--json out.json]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import CNNSPEC, PYTHON, alternate, fmt_stat, ratio, run_child, summary, write_json

from cnnspec.analysis.zoo import catalog


def cold_validate_vs_import(names: list[str], repeats: int, baseline: bool = True) -> dict[str, Any]:
    """Measurement 1: wall and CPU time of each cold process, alternating."""

    def validate() -> tuple[float, float]:
        child = run_child([CNNSPEC, "validate", *(f"zoo:{n}" for n in names)]).check("cnnspec validate")
        return child.seconds, child.cpu_seconds

    def zoo() -> tuple[float, float]:
        child = run_child([CNNSPEC, "zoo"]).check("cnnspec zoo")
        return child.seconds, child.cpu_seconds

    def import_tf() -> tuple[float, float]:
        child = run_child([PYTHON, "-c", "import tensorflow"]).check("import tensorflow")
        return child.seconds, child.cpu_seconds

    variants = {"validate": validate, "zoo": zoo}
    if baseline:
        variants["import_tensorflow"] = import_tf
    samples = alternate(variants, repeats)
    samples.setdefault("import_tensorflow", [])
    wall = {k: summary([w for w, _ in v]) for k, v in samples.items()}
    cpu = {k: summary([c for _, c in v]) for k, v in samples.items()}
    return {
        "variants": len(names),
        **wall,
        "cpu": cpu,
        "ratio": ratio(wall["validate"], wall["import_tensorflow"]),
        "cpu_ratio": ratio(cpu["validate"], cpu["import_tensorflow"]),
        "target": 0.1,
    }


def variant_table(with_keras: bool) -> list[dict[str, Any]]:
    """Measurement 3: per variant, the spec's static figures and (optionally) Keras'."""
    rows = []
    for entry in catalog():
        row: dict[str, Any] = {
            "name": entry.name,
            "keras_name": entry.keras_name,
            "params": entry.params,
            "layers": entry.layers + 1,  # as len(model.layers) counts: the input layer too
            "spec_lines": len(entry.spec.read_text(encoding="utf-8").splitlines()),
        }
        if with_keras:
            import keras

            keras.backend.clear_session()
            model = getattr(keras.applications, entry.keras_name)(weights=None)
            row["keras_params"] = model.count_params()
            row["keras_layers"] = len(model.layers)
        rows.append(row)
    return rows


def report(results: dict[str, Any]) -> None:
    """Print the results for a person."""
    cold = results["cold"]
    validate, zoo = fmt_stat(cold["validate"], unit="s"), fmt_stat(cold["zoo"], unit="s")
    print(f"cold `cnnspec validate` of {cold['variants']} zoo variants: {validate}")
    print(f"  CPU: {fmt_stat(cold['cpu']['validate'], unit='s')}")
    print(f"cold `cnnspec zoo`: {zoo}; CPU {fmt_stat(cold['cpu']['zoo'], unit='s')}")
    if cold["ratio"] is not None:
        print(f"cold `python -c 'import tensorflow'`: {fmt_stat(cold['import_tensorflow'], unit='s')}")
        print(f"  CPU: {fmt_stat(cold['cpu']['import_tensorflow'], unit='s')}")
        print(
            f"ratio validate / import tensorflow: {cold['ratio']:.3f} (CPU time: {cold['cpu_ratio']:.3f}; "
            f"target < {cold['target']})"
        )
    print("\n| variant | keras.applications | params (ours / Keras) | layers (ours / Keras) | spec lines |")
    print("| --- | --- | ---: | ---: | ---: |")
    for row in results["variants"]:
        keras_params = f"{row['keras_params']:,}" if "keras_params" in row else "—"
        keras_layers = row.get("keras_layers", "—")
        print(
            f"| `zoo:{row['name']}` | `{row['keras_name']}` | {row['params']:,} / {keras_params} | "
            f"{row['layers']} / {keras_layers} | {row['spec_lines']} |"
        )


def main(argv: list[str] | None = None) -> int:
    """Run the measurements and print (and optionally save) the results."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=5, help="repetitions of each process (default 5)")
    parser.add_argument("--keras", action="store_true", help="build every keras.applications model too")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument(
        "--no-baseline", action="store_true", help="skip the `import tensorflow` processes (smoke tests)"
    )
    args = parser.parse_args(argv)
    names = [entry.name for entry in catalog()]
    results = {
        "repeats": args.repeats,
        "cold": cold_validate_vs_import(names, args.repeats, not args.no_baseline),
        "variants": variant_table(args.keras),
    }
    report(results)
    write_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
