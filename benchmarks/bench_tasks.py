"""The library's task specs on the embedded shapes data (measurement 8 of benchmarks/README.md).

One cold ``cnnspec train SPEC`` process per spec: the task's headline test figures from
metrics.json (segmentation: mean IoU, target ≥ 0.90; multi-label: macro F1; regression: MAE
and R²), the wall time, the training time (the epochs only) and the process's CPU seconds
(user + system: the figure that does not depend on how busy a shared machine is). Run by hand:

    .venv/bin/python benchmarks/bench_tasks.py [--specs unet_shapes,shapes_multilabel,shapes_count]
        [--epochs N] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import CNNSPEC, ROOT, machine_info, run_child, write_json

SPECS = ("unet_shapes", "shapes_multilabel", "shapes_count")
ENV = {"TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONWARNINGS": "ignore"}
#: metrics.json keys worth reporting, by task
KEYS = {
    "segmentation": ("test_mean_iou", "test_pixel_accuracy", "per_class_iou"),
    "multilabel": ("test_f1_macro", "f1_micro", "exact_match", "per_label"),
    "regression": ("test_mae", "test_rmse", "test_r2"),
    "classification": ("test_accuracy",),
}


def train(spec: str, work: Path, epochs: int | None) -> dict[str, Any]:
    out = work / spec
    args = [CNNSPEC, "train", str(ROOT / "specs" / f"{spec}.yaml"), "--out", str(out), "--quiet"]
    if epochs:
        args += ["--epochs", str(epochs)]
    child = run_child(args, env=ENV, log=work / f"{spec}.log").check(f"cnnspec train {spec}")
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    task = str(metrics.get("task", "classification"))
    return {
        "task": task,
        **{key: metrics.get(key) for key in KEYS.get(task, ())},
        "epochs": metrics["epochs_run"],
        "train_seconds": metrics["train_seconds"],
        "wall_seconds": round(child.seconds, 1),
        "cpu_seconds": round(child.cpu_seconds, 1),
        "peak_rss_mb": round(child.peak_rss / 2**20),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--specs", default=",".join(SPECS))
    parser.add_argument("--epochs", type=int, default=None, help="override training.epochs (quick checks)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    results: dict[str, Any] = {"machine": machine_info(), "runs": {}}
    with tempfile.TemporaryDirectory(prefix="cnnspec-tasks-") as tmp:
        for spec in args.specs.split(","):
            results["runs"][spec] = run = train(spec, Path(tmp), args.epochs)
            headline = {k: v for k, v in run.items() if k.startswith("test_")}
            print(f"{spec}: {run['task']} {headline} — train {run['train_seconds']:.1f}s, "
                  f"wall {run['wall_seconds']:.1f}s, CPU {run['cpu_seconds']:.1f}s")  # fmt: skip
    write_json(args.json, results)


if __name__ == "__main__":
    main()
