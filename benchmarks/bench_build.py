"""Time ``cnnspec.build_model`` on specs/resnet50.yaml against ``keras.applications.ResNet50``.

Both build the same 25,636,712-parameter functional model (weights=None: random initialisation,
nothing downloaded) in one process, after TensorFlow is imported and warmed up. Runs alternate
between the two so drift affects both alike; the medians are compared. Run by hand:

    .venv/bin/python benchmarks/bench_build.py [--repeats 9] [--spec specs/resnet50.yaml]

Reported: the front end alone (``compile_spec``: load, validate, resolve, infer), the Keras back end
alone (``build_model`` on the compiled spec), and the whole path from the file, each against the
hand-written Keras code. The compiler's overhead target is under 5% of the hand-written build.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def _timed(fn: Callable[[], Any]) -> float:
    gc.collect()
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print a table of medians."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=9, help="timed runs of each variant (default 9)")
    parser.add_argument("--spec", type=Path, default=ROOT / "specs" / "resnet50.yaml")
    args = parser.parse_args(argv)

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    import cnnspec
    from cnnspec.api import compile_spec

    def hand_written() -> Any:
        keras.backend.clear_session()
        return keras.applications.ResNet50(weights=None)

    def from_file() -> Any:
        keras.backend.clear_session()
        return cnnspec.build_model(args.spec)

    compiled = compile_spec(args.spec)

    def back_end() -> Any:
        keras.backend.clear_session()
        return cnnspec.build_model(compiled)

    def front_end() -> Any:
        return compile_spec(args.spec)

    # warm-up: first calls pay for lazy imports and TensorFlow's one-off initialisation
    reference, ours = hand_written(), from_file()
    if reference.count_params() != ours.count_params():
        print(f"parameter counts differ: {reference.count_params():,} vs {ours.count_params():,}")
        return 1

    variants = {"keras.applications.ResNet50": hand_written, "cnnspec.build_model(file)": from_file}
    variants |= {"  front end: compile_spec": front_end, "  back end: build_model(compiled)": back_end}
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.repeats):
        for name, fn in variants.items():
            times[name].append(_timed(fn))

    base = statistics.median(times["keras.applications.ResNet50"])
    print(
        f"{args.spec.name}: {ours.count_params():,} parameters, {len(ours.layers)} layers; "
        f"median of {args.repeats} runs (python {sys.version.split()[0]}, keras {keras.__version__})"
    )
    print(f"{'variant':36} {'median s':>9} {'min s':>7} {'% of keras':>11}")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:36} {median:9.3f} {min(values):7.3f} {100 * median / base:10.1f}%")
    overhead = statistics.median(times["cnnspec.build_model(file)"]) / base - 1
    print(f"overhead of the compiler over hand-written Keras: {100 * overhead:+.1f}% (target < 5%)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
