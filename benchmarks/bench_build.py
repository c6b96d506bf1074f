"""Build overhead (measurement 3 of benchmarks/README.md): cnnspec against hand-written Keras.

In one process, after TensorFlow is imported and warmed up, each pair builds the same model:

- ``cnnspec.build_model("specs/resnet50.yaml")`` vs ``keras.applications.ResNet50(weights=None)``
  (25,636,712 parameters; random initialisation, nothing downloaded);
- ``cnnspec.build_model("specs/basic_cnn.yaml")`` vs the seed document's ``create_basic_cnn``
  (benchmarks/reference/seed_basic_cnn.py);
- ``cnnspec.build_model("specs/resnet.yaml")`` vs the seed's ``create_resnet_model``.

Runs alternate between the variants (``keras.backend.clear_session()`` before each build) so
drift affects both alike; medians are compared. cnnspec's time is from the YAML file (front end
+ Keras builder); the split into front end (``compile_spec``) and back end (``build_model`` on the
compiled spec) is reported too. Each build is timed in wall-clock seconds and in CPU seconds of
the process (``time.process_time``): building is single-threaded Python, so CPU time is the same
work but does not count time the process waited for a core that another process held; on a busy
machine it is the steadier figure. Target: cnnspec / hand-written ≤ 1.05. Run by hand:

    .venv/bin/python benchmarks/bench_build.py [--repeats 9] [--json out.json]
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent / "reference"))
from _common import ROOT, alternate, fmt_stat, quiet_tensorflow, ratio, summary, write_json


def _timed(fn: Callable[[], Any]) -> Callable[[], tuple[float, float]]:
    """A sampler returning (wall seconds, CPU seconds of this process) for one call of ``fn``."""

    def run() -> tuple[float, float]:
        gc.collect()
        start, cpu = time.perf_counter(), time.process_time()
        fn()
        return time.perf_counter() - start, time.process_time() - cpu

    return run


def pairs() -> dict[str, tuple[Path, str, Callable[[], Any]]]:
    """name → (spec file, description of the hand-written code, function building it)."""
    import keras
    from seed_basic_cnn import create_basic_cnn
    from seed_resnet import create_resnet_model

    return {
        "resnet50": (
            ROOT / "specs" / "resnet50.yaml",
            "keras.applications.ResNet50(weights=None)",
            lambda: keras.applications.ResNet50(weights=None),
        ),
        "basic_cnn": (
            ROOT / "specs" / "basic_cnn.yaml",
            "seed create_basic_cnn((32, 32, 3), 10)",
            lambda: create_basic_cnn((32, 32, 3), 10),
        ),
        "resnet": (
            ROOT / "specs" / "resnet.yaml",
            "seed create_resnet_model((32, 32, 3), 10)",
            lambda: create_resnet_model((32, 32, 3), 10),
        ),
    }


def measure(names: list[str], repeats: int) -> dict[str, Any]:
    """Time every pair; returns per-pair summaries and ratios."""
    quiet_tensorflow()
    warnings.filterwarnings("ignore", category=UserWarning)
    import keras

    import cnnspec
    from cnnspec.api import compile_spec

    results: dict[str, Any] = {}
    for name, (spec, description, hand_written) in pairs().items():
        if name not in names:
            continue
        compiled = compile_spec(spec)

        def reference(build: Callable[[], Any] = hand_written) -> Any:
            keras.backend.clear_session()
            return build()

        def from_file(path: Path = spec) -> Any:
            keras.backend.clear_session()
            return cnnspec.build_model(path)

        def back_end(c: Any = compiled) -> Any:
            keras.backend.clear_session()
            return cnnspec.build_model(c)

        def front_end(path: Path = spec) -> Any:
            return compile_spec(path)

        # warm-up: the first calls pay for lazy imports and TensorFlow's one-off initialisation
        theirs, ours = reference(), from_file()
        if theirs.count_params() != ours.count_params():
            raise RuntimeError(
                f"{name}: parameter counts differ: {theirs.count_params():,} vs {ours.count_params():,}"
            )
        samples = alternate(
            {
                "hand_written": _timed(reference),
                "cnnspec": _timed(from_file),
                "front_end": _timed(front_end),
                "back_end": _timed(back_end),
            },
            repeats,
        )
        stats = {k: summary([wall for wall, _ in v]) for k, v in samples.items()}
        cpu = {k: summary([c for _, c in v]) for k, v in samples.items()}
        results[name] = {
            "spec": str(spec.relative_to(ROOT)),
            "hand_written_code": description,
            "parameters": ours.count_params(),
            "layers": len(ours.layers),
            **stats,
            "cpu": cpu,
            "ratio": ratio(stats["cnnspec"], stats["hand_written"]),
            "cpu_ratio": ratio(cpu["cnnspec"], cpu["hand_written"]),
            "min_ratio": stats["cnnspec"]["min"] / stats["hand_written"]["min"],
            "back_end_ratio": ratio(stats["back_end"], stats["hand_written"]),
            "target": 1.05,
        }
    return results


def report(results: dict[str, Any]) -> None:
    """Print the results for a person."""
    for name, r in results.items():
        print(f"{r['spec']}: {r['parameters']:,} parameters, {r['layers']} layers")
        print(f"  hand-written  {fmt_stat(r['hand_written'], 1000, 1, 'ms')}   ({r['hand_written_code']})")
        print(f"  cnnspec       {fmt_stat(r['cnnspec'], 1000, 1, 'ms')}   (build_model from the file)")
        print(f"    front end   {fmt_stat(r['front_end'], 1000, 1, 'ms')}")
        print(f"    back end    {fmt_stat(r['back_end'], 1000, 1, 'ms')}")
        print(
            f"  ratio cnnspec / hand-written: wall {r['ratio']:.3f}, CPU {r['cpu_ratio']:.3f}, "
            f"of minima {r['min_ratio']:.3f} (target ≤ {r['target']}) [{name}]"
        )


def main(argv: list[str] | None = None) -> int:
    """Run measurement 3 and print (and optionally save) the results."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=9, help="timed builds of each variant (default 9)")
    parser.add_argument(
        "--models",
        default="resnet50,basic_cnn,resnet",
        help="comma-separated subset of resnet50, basic_cnn, resnet",
    )
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)
    results = measure(args.models.split(","), args.repeats)
    report(results)
    from _common import tf_thread_settings

    write_json(args.json, {"repeats": args.repeats, "threads": tf_thread_settings(), "pairs": results})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
