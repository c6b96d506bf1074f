"""Accuracy on the embedded digits (measurement 5 of benchmarks/README.md).

``cnnspec train specs/digits_cnn.yaml --set training.seed=S`` for each seed (one cold process
each): test accuracy (target ≥ 0.98 for every seed) and wall time. Beside it, scikit-learn's
``LogisticRegression`` and ``SVC`` (RBF kernel, defaults) on the same split: the seed decides
cnnspec's stratified train/validation/test split, and the split is taken from cnnspec's own
loader (``cnnspec.training.data.load_dataset``, no TensorFlow) so the classical models fit the
same training images (the flattened 8×8 pixels, scaled to [0, 1]) and are scored on the same
test images. Their BLAS runs on one thread: on a small, busy machine OpenBLAS's spinning worker
threads made the logistic regression up to 100× slower (12 s instead of 0.1 s). Run by hand:

    .venv/bin/python benchmarks/bench_digits.py [--seeds 1,2,3] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import CNNSPEC, ROOT, fmt_stat, run_child, summary, write_json

SPEC = ROOT / "specs" / "digits_cnn.yaml"
ENV = {"TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONWARNINGS": "ignore"}


def train_cnn(seed: int, work: Path, epochs: int | None) -> dict[str, Any]:
    """One cold `cnnspec train` process; test accuracy and times from its metrics.json."""
    out = work / f"digits-{seed}"
    args = [CNNSPEC, "train", str(SPEC), "--set", f"training.seed={seed}", "--out", str(out)]
    if epochs:
        args += ["--epochs", str(epochs)]
    child = run_child(args, env=ENV, log=work / f"digits-{seed}.log").check("cnnspec train digits_cnn")
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    return {
        "test_accuracy": metrics["test_accuracy"],
        "epochs_run": metrics["epochs_run"],
        "train_seconds": metrics["train_seconds"],
        "wall_seconds": child.seconds,
        "peak_rss": child.peak_rss,
        "test_images": metrics["test_images"],
        "train_images": metrics["train_images"],
    }


def classical(seed: int) -> dict[str, Any]:
    """LogisticRegression and SVC on cnnspec's split for ``seed``."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.svm import SVC
    from threadpoolctl import threadpool_limits

    from cnnspec.analysis.settings import training_config
    from cnnspec.api import compile_spec
    from cnnspec.training.data import load_dataset

    compiled = compile_spec(SPEC, [f"training.seed={seed}"])
    data = load_dataset(compiled, training_config(compiled), seed)
    x_train = data.x_train.reshape(len(data.x_train), -1)
    x_test = data.x_test.reshape(len(data.x_test), -1)
    out: dict[str, Any] = {"train_images": len(x_train), "test_images": len(x_test)}
    models = {
        "logistic_regression": LogisticRegression(max_iter=5000),
        "svc": SVC(),
    }
    for name, model in models.items():
        with warnings.catch_warnings(), threadpool_limits(limits=1):
            warnings.simplefilter("ignore")
            start = time.perf_counter()
            model.fit(x_train, data.y_train)
            accuracy = float((model.predict(x_test) == data.y_test).mean())
            seconds = time.perf_counter() - start
        out[name] = {"test_accuracy": accuracy, "seconds": seconds}
    return out


def main(argv: list[str] | None = None) -> int:
    """Run measurement 5 and print (and optionally save) the results."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", default="1,2,3", help="comma-separated training seeds (default 1,2,3)")
    parser.add_argument(
        "--epochs", type=int, help="override the spec's epochs (quick runs; default: the spec's)"
    )
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]

    runs: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="cnnspec-bench-digits-") as tmp:
        for seed in seeds:
            cnn = train_cnn(seed, Path(tmp), args.epochs)
            other = classical(seed)
            runs[str(seed)] = {"cnnspec": cnn, **other}
            print(
                f"seed {seed}: cnnspec digits_cnn {cnn['test_accuracy']:.4f} "
                f"({cnn['epochs_run']} epochs, {cnn['wall_seconds']:.1f} s wall,"
                f" {cnn['train_seconds']:.1f} s training)"
                f" | LogisticRegression {other['logistic_regression']['test_accuracy']:.4f}"
                f" ({other['logistic_regression']['seconds']:.2f} s)"
                f" | SVC {other['svc']['test_accuracy']:.4f} ({other['svc']['seconds']:.2f} s)"
                f" | {other['test_images']} test images",
                flush=True,
            )
    results = {
        "seeds": seeds,
        "epochs_override": args.epochs,
        "runs": runs,
        "cnnspec_accuracy": summary([r["cnnspec"]["test_accuracy"] for r in runs.values()]),
        "cnnspec_wall": summary([r["cnnspec"]["wall_seconds"] for r in runs.values()]),
        "cnnspec_train": summary([r["cnnspec"]["train_seconds"] for r in runs.values()]),
        "logistic_regression_accuracy": summary(
            [r["logistic_regression"]["test_accuracy"] for r in runs.values()]
        ),
        "logistic_regression_seconds": summary([r["logistic_regression"]["seconds"] for r in runs.values()]),
        "svc_accuracy": summary([r["svc"]["test_accuracy"] for r in runs.values()]),
        "svc_seconds": summary([r["svc"]["seconds"] for r in runs.values()]),
        "target": 0.98,
        "all_meet_target": all(r["cnnspec"]["test_accuracy"] >= 0.98 for r in runs.values()),
    }
    print(
        f"cnnspec accuracy {fmt_stat(results['cnnspec_accuracy'], digits=4)}; every seed ≥ 0.98: "
        f"{results['all_meet_target']}"
    )
    write_json(args.json, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
