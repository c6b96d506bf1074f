"""Time to generate the embedded ``shapes`` dataset (issue 18: 2,000 64×64 images in < 1 s).

Generates ``--images`` images of ``--size``×``--size`` pixels (3 channels, the defaults of
``data.source: shapes``) ``--repeats`` times in this process, after one warm-up, and reports
wall-clock and CPU time (user + system of this process: the measure that does not count time
spent waiting for a core another process held). Also reports the per-target cost of turning
the masks into each task's targets. No TensorFlow. Run by hand:

    .venv/bin/python benchmarks/bench_shapes.py [--images 2000] [--size 64] [--repeats 9] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import summary

from cnnspec.shapes import TARGETS, ShapesOptions, generate

TARGET_S = 1.0


def measure(options: ShapesOptions, repeats: int) -> dict[str, Any]:
    generate(options)  # warm-up: NumPy's first calls allocate and load code
    wall, cpu = [], []
    for _ in range(repeats):
        start_wall, start_cpu = time.perf_counter(), time.process_time()
        shapes = generate(options)
        cpu.append(time.process_time() - start_cpu)
        wall.append(time.perf_counter() - start_wall)
    targets = {}
    for name in TARGETS:
        start = time.perf_counter()
        shapes.target(name)
        targets[name] = time.perf_counter() - start
    return {"wall_s": summary(wall), "cpu_s": summary(cpu), "targets_s": targets}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    args = parser.parse_args(argv)
    options = ShapesOptions(images=args.images, image_size=(args.size, args.size))
    result = {
        "images": args.images,
        "size": args.size,
        "load_average": list(os.getloadavg()),
        **measure(options, args.repeats),
    }
    wall, cpu = result["wall_s"], result["cpu_s"]
    print(
        f"shapes: {args.images} images of {args.size}×{args.size}×3 (load {result['load_average'][0]:.1f}): "
        f"wall {wall['median']:.3f} s ({wall['min']:.3f}–{wall['max']:.3f}), "
        f"CPU {cpu['median']:.3f} s ({cpu['min']:.3f}–{cpu['max']:.3f}); target < {TARGET_S:g} s"
    )
    print(
        "targets from the masks: "
        + ", ".join(f"{k} {v * 1000:.1f} ms" for k, v in result["targets_s"].items())
    )
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
