"""Front-end speed: cold `cnnspec validate specs/*.yaml` vs cold `import tensorflow`, and
in-process inference time per spec. Run by hand: `.venv/bin/python benchmarks/bench_frontend.py`.

A and B alternate within each repetition; medians and min–max are reported.
"""

from __future__ import annotations

import argparse
import glob
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def cold(args: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(args, check=True, capture_output=True, cwd=ROOT)
    return time.perf_counter() - start


def describe(samples: list[float], unit: str = "s", scale: float = 1.0) -> str:
    values = [s * scale for s in samples]
    return f"{statistics.median(values):.3f} {unit} (min {min(values):.3f}, max {max(values):.3f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    specs = sorted(glob.glob(str(ROOT / "specs" / "*.yaml")))
    cnnspec = str(Path(sys.executable).with_name("cnnspec"))
    validate_times: list[float] = []
    tf_times: list[float] = []
    for _ in range(args.repeat):
        validate_times.append(cold([cnnspec, "validate", *specs]))
        tf_times.append(cold([sys.executable, "-c", "import tensorflow"]))
    ratio = statistics.median(validate_times) / statistics.median(tf_times)
    print(f"cold validate of {len(specs)} specs: {describe(validate_times)}")
    print(f"cold import tensorflow:           {describe(tf_times)}")
    print(f"ratio validate / import tensorflow: {ratio:.3f} (target < 0.1)")

    from cnnspec.api import compile_spec

    print("\nin-process compile (load + validate + resolve + infer), median of repeats:")
    total = 0.0
    for spec in specs:
        compile_spec(spec)  # warm caches (schema validator)
        samples = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            compiled = compile_spec(spec)
            samples.append(time.perf_counter() - start)
        total += statistics.median(samples)
        print(f"  {Path(spec).name:22s} {len(compiled.ir.nodes):4d} layers  {describe(samples, 'ms', 1000)}")
    print(f"specs per second over the library: {len(specs) / total:.1f}")


if __name__ == "__main__":
    main()
