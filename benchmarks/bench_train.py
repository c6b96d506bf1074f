"""Training throughput (measurement 4 of benchmarks/README.md): `cnnspec train` vs the seed's script.

For each model (specs/basic_cnn.yaml, specs/resnet.yaml) and each mode (``plain``: no
augmentation; ``augmented``: the seed's five augmentation layers), one cold ``cnnspec train``
process and one cold hand-written process (benchmarks/reference/seed_*.py: the seed document's
code) train on the same synthetic CIFAR-shaped data (benchmarks/synthetic.py), alternating,
``--repeats`` times. Both train on ``--train-images`` images and validate on ``--test-images``
every epoch, with the same optimizer, batch size (32) and callbacks.

Reported per run: steady-state images per second = training images / median epoch time with the
first epoch (graph tracing) excluded; an epoch is timed from ``on_epoch_begin`` to ``on_epoch_end``
of the last callback on both sides (cnnspec's ``history.json`` ``seconds``; the reference's own
timer), so it includes the validation pass. Also the whole process's wall time and peak resident
memory (``ru_maxrss`` from ``os.wait4``). Other load on the machine only ever slows an epoch down,
so the fastest steady epoch of all runs of a side is reported as well (``best_epoch``): its ratio
is the steadier comparison on a busy machine. Both processes inherit the same environment, so
TensorFlow's thread pools are the same (set TF_NUM_INTRAOP_THREADS / TF_NUM_INTEROP_THREADS to
change both). Targets: plain, cnnspec ≥ 0.98× the hand-written images/s; augmented, cnnspec's
batched augmentation ahead of the seed's per-sample ``map``. Run by hand:

    .venv/bin/python benchmarks/bench_train.py [--epochs 5] [--repeats 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import synthetic
from _common import (
    BENCH_DIR,
    CNNSPEC,
    PYTHON,
    ROOT,
    alternate,
    fmt_stat,
    ratio,
    run_child,
    run_child_marked,
    summary,
    write_json,
)

SEED_AUGMENTATION = (
    "augmentation=[{random_rotation: 0.1}, {random_zoom: 0.1}, {random_flip: horizontal}, "
    "{random_brightness: 0.2}, {random_contrast: 0.2}]"
)
MODELS = {
    "basic_cnn": ("specs/basic_cnn.yaml", "reference/seed_basic_cnn.py"),
    "resnet": ("specs/resnet.yaml", "reference/seed_resnet.py"),
}
MODES = ("plain", "augmented")
RUN_NUMBER = itertools.count(1)
EPOCH_LINE = re.compile(r"^epoch\s+\d+/\d+\s")  # cnnspec train's plain progress line, one per epoch
ENV = {"TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONWARNINGS": "ignore"}


def steady_rate(epoch_seconds: list[float], images: int) -> float | None:
    """Images per second from the median epoch, the first (tracing) epoch excluded."""
    steady = epoch_seconds[1:] if len(epoch_seconds) > 1 else epoch_seconds
    return images / statistics.median(steady) if steady else None


def best_rate(epoch_seconds: list[float], images: int) -> float | None:
    """Images per second of the fastest epoch after the first: the least disturbed by other load."""
    steady = epoch_seconds[1:] if len(epoch_seconds) > 1 else epoch_seconds
    return images / min(steady) if steady else None


def interval_rate(marks: list[float | None], images: int) -> float | None:
    """Images per second (or per CPU-second) from the clock at each epoch's end: the median of
    the intervals between consecutive epoch ends (so the first epoch is left out)."""
    values = [m for m in marks if m is not None]
    steps = [b - a for a, b in itertools.pairwise(values)]
    return images / statistics.median(steps) if steps and statistics.median(steps) > 0 else None


def run_cnnspec(
    model: str, mode: str, data: dict[str, Any], epochs: int, work: Path, index: int
) -> dict[str, Any]:
    """One cold `cnnspec train` process; its figures from the run folder it writes."""
    spec = MODELS[model][0]
    out = work / f"cnnspec-{model}-{mode}-{index}"
    args = [
        CNNSPEC,
        "train",
        spec,
        "--epochs",
        str(epochs),
        "--set",
        f"data.source={{npz: {data['cnnspec']}}}",
        "--set",
        f"data.validation_split={data['validation_split']!r}",
        "--set",
        SEED_AUGMENTATION if mode == "augmented" else "augmentation=[]",
        "--out",
        str(out),
    ]
    load = os.getloadavg()[0]
    child, marks = run_child_marked(args, EPOCH_LINE, env=ENV, log=work / f"{out.name}.log")
    child.check(" ".join(args[:3]))
    history = json.loads((out / "history.json").read_text(encoding="utf-8"))
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    seconds = [float(s) for s in history["seconds"]]
    images = int(metrics["train_images"])
    return {
        "epoch_seconds": seconds,
        "images_per_second": steady_rate(seconds, images),
        "best_epoch_images_per_second": best_rate(seconds, images),
        "epoch_end_wall": [wall for wall, _ in marks],
        "epoch_end_cpu": [cpu for _, cpu in marks],
        "end_to_end_images_per_second": interval_rate([wall for wall, _ in marks], images),
        "images_per_cpu_second": interval_rate([cpu for _, cpu in marks], images),
        "cpu_seconds": child.cpu_seconds,
        "train_images": metrics["train_images"],
        "validation_images": metrics["validation_images"],
        "epochs_run": len(seconds),
        "wall_seconds": child.seconds,
        "peak_rss": child.peak_rss,
        "final_val_accuracy": history.get("val_accuracy", [None])[-1],
        "load_average_before": load,
    }


def run_reference(
    model: str, mode: str, data: dict[str, Any], epochs: int, work: Path, index: int
) -> dict[str, Any]:
    """One cold hand-written (seed) process; its figures from the JSON it writes."""
    script = BENCH_DIR / MODELS[model][1]
    out = work / f"seed-{model}-{mode}-{index}.json"
    args = [PYTHON, str(script), "--npz", str(data["reference"]), "--epochs", str(epochs), "--json", str(out)]
    if mode == "plain":
        args.append("--no-augmentation")
    load = os.getloadavg()[0]
    child = run_child(args, env=ENV, log=work / f"{out.stem}.log").check(script.name)
    result = json.loads(out.read_text(encoding="utf-8"))
    seconds = [float(s) for s in result["epoch_seconds"]]
    images = int(result["train_images"])
    return {
        "epoch_seconds": seconds,
        "images_per_second": steady_rate(seconds, images),
        "best_epoch_images_per_second": best_rate(seconds, images),
        "epoch_end_wall": result["epoch_end_wall"],
        "epoch_end_cpu": result["epoch_end_cpu"],
        "end_to_end_images_per_second": interval_rate(result["epoch_end_wall"], images),
        "images_per_cpu_second": interval_rate(result["epoch_end_cpu"], images),
        "cpu_seconds": child.cpu_seconds,
        "train_images": result["train_images"],
        "validation_images": result["validation_images"],
        "epochs_run": len(seconds),
        "wall_seconds": child.seconds,
        "peak_rss": child.peak_rss,
        "final_val_accuracy": result["history"].get("val_accuracy", [None])[-1],
        "threads": result.get("threads"),
        "load_average_before": load,
    }


def measure(
    models: list[str], modes: list[str], epochs: int, repeats: int, n_train: int, n_test: int, work: Path
) -> dict[str, Any]:
    """Every (model, mode) pair, cnnspec and the reference alternating."""
    data = synthetic.write(work / "data", n_train, n_test)
    results: dict[str, Any] = {}
    for model in models:
        for mode in modes:

            def ours(m: str = model, o: str = mode) -> dict[str, Any]:
                return run_cnnspec(m, o, data, epochs, work, next(RUN_NUMBER))

            def theirs(m: str = model, o: str = mode) -> dict[str, Any]:
                return run_reference(m, o, data, epochs, work, next(RUN_NUMBER))

            runs = alternate({"cnnspec": ours, "hand_written": theirs}, repeats)
            entry: dict[str, Any] = {"spec": MODELS[model][0], "reference": MODELS[model][1], "mode": mode}
            for side, side_runs in runs.items():
                entry[side] = {
                    "images_per_second": summary([r["images_per_second"] for r in side_runs]),
                    "best_epoch_images_per_second": max(r["best_epoch_images_per_second"] for r in side_runs),
                    "end_to_end_images_per_second": summary(
                        [
                            r["end_to_end_images_per_second"]
                            for r in side_runs
                            if r["end_to_end_images_per_second"]
                        ]
                    ),
                    "images_per_cpu_second": summary(
                        [r["images_per_cpu_second"] for r in side_runs if r["images_per_cpu_second"]]
                    ),
                    "wall_seconds": summary([r["wall_seconds"] for r in side_runs]),
                    "peak_rss": summary([r["peak_rss"] for r in side_runs]),
                    "runs": side_runs,
                }
            ours_ips = entry["cnnspec"]["images_per_second"]
            theirs_ips = entry["hand_written"]["images_per_second"]
            entry["ratio"] = ratio(ours_ips, theirs_ips)
            entry["cpu_ratio"] = ratio(
                entry["cnnspec"]["images_per_cpu_second"], entry["hand_written"]["images_per_cpu_second"]
            )
            entry["end_to_end_ratio"] = ratio(
                entry["cnnspec"]["end_to_end_images_per_second"],
                entry["hand_written"]["end_to_end_images_per_second"],
            )
            entry["best_epoch_ratio"] = (
                entry["cnnspec"]["best_epoch_images_per_second"]
                / entry["hand_written"]["best_epoch_images_per_second"]
            )
            entry["memory_ratio"] = ratio(entry["cnnspec"]["peak_rss"], entry["hand_written"]["peak_rss"])
            entry["target"] = 0.98 if mode == "plain" else 1.0
            results[f"{model}/{mode}"] = entry
            print(
                f"{model:9s} {mode:9s} cnnspec {fmt_stat(ours_ips, digits=0)} img/s"
                f" | hand-written {fmt_stat(theirs_ips, digits=0)} img/s"
                f" | ratio {entry['ratio']:.3f} (target ≥ {entry['target']});"
                f" per CPU-second {entry['cpu_ratio'] or float('nan'):.3f},"
                f" best epochs {entry['best_epoch_ratio']:.3f}",
                flush=True,
            )
    return {
        "epochs": epochs,
        "repeats": repeats,
        "train_images": data["train_images"],
        "validation_images": data["validation_images"],
        "pairs": results,
    }


def main(argv: list[str] | None = None) -> int:
    """Run measurement 4 and print (and optionally save) the results."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--epochs", type=int, default=5, help="epochs per run (default 5)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each side per pair (default 3)")
    parser.add_argument("--train-images", type=int, default=10_000)
    parser.add_argument("--test-images", type=int, default=1_000)
    parser.add_argument("--models", default="basic_cnn,resnet", help="comma-separated: basic_cnn, resnet")
    parser.add_argument("--modes", default="plain,augmented", help="comma-separated: plain, augmented")
    parser.add_argument("--workdir", type=Path, help="keep data and runs here")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)
    if args.epochs < 2:
        parser.error("--epochs must be at least 2 (the first epoch is excluded)")

    with tempfile.TemporaryDirectory(prefix="cnnspec-bench-train-") as tmp:
        work = args.workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        results = measure(
            args.models.split(","),
            args.modes.split(","),
            args.epochs,
            args.repeats,
            args.train_images,
            args.test_images,
            work,
        )
    for entry in results["pairs"].values():
        for side in ("cnnspec", "hand_written"):
            stat = entry[side]
            print(
                f"  {entry['spec']:20s} {entry['mode']:9s} {side:12s}"
                f" wall {fmt_stat(stat['wall_seconds'], digits=1)} s,"
                f" peak RSS {fmt_stat(stat['peak_rss'], 1 / 2**20, 0)} MiB"
            )
    write_json(args.json, {**results, "root": str(ROOT)})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
