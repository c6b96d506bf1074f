"""Is the input pipeline the bottleneck? Pipeline-alone images/s vs training images/s.

For each case (a spec and its data), with cnnspec's own pipeline (``cnnspec.training.pipeline``:
seeded shuffle → batch → scale → augmentation on whole batches → prefetch):

- ``pipeline``: iterate the training pipeline alone (no model), images per second;
- ``pipeline_per_sample``: the same augmentation mapped per image before batching, as the seed
  document writes it (``ds.map(augment)`` then ``batch``), for comparison;
- ``pipeline_plain``: no augmentation;
- ``training``: ``model.fit`` on the batched pipeline (no validation), images per second.

Every figure is steady state: the median over epochs 2..N (epoch 1 traces graphs). ``headroom`` =
pipeline / training: above 1 the model, not the pipeline, sets the pace. Cases: ``digits``
(specs/digits_cnn.yaml on the embedded digits, 8×8×1, one augmentation layer) and ``resnet``
(specs/resnet.yaml with its five augmentation layers on random CIFAR-shaped uint8 images; no
download). Run by hand (≈2 minutes on 2 cores):

    .venv/bin/python benchmarks/bench_pipeline.py [--epochs 4] [--images 2048] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def steady(seconds: list[float], images: int) -> float:
    """Images per second from per-epoch times, the first (tracing) epoch left out."""
    rest = seconds[1:] or seconds
    return images / statistics.median(rest)


def time_epochs(dataset: Any, epochs: int) -> list[float]:
    times = []
    for _ in range(epochs):
        start = time.perf_counter()
        for _batch in dataset:
            pass
        times.append(time.perf_counter() - start)
    return times


def case(name: str, spec: Path, x: np.ndarray, y: np.ndarray, epochs: int, batch: int) -> dict[str, Any]:
    from cnnspec.training.runtime import import_keras

    keras = import_keras()  # quiet TensorFlow start-up
    import tensorflow as tf

    from cnnspec.api import build_augmentation, build_model, compile_spec
    from cnnspec.training.pipeline import PipelineSettings, make_dataset

    compiled = compile_spec(spec)
    keras.utils.set_random_seed(0)
    augmentation = build_augmentation(compiled)
    rescale = 1 / 255 if x.dtype == np.uint8 else None
    settings = PipelineSettings(batch_size=batch, rescale=rescale)
    n = len(y)

    batched = make_dataset(x, y, settings, training=True, seed=0, augmentation=augmentation)
    plain = make_dataset(x, y, settings, training=True, seed=0)

    def per_sample_dataset() -> Any:  # the seed document's way: augment each image, then batch
        ds = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(n, seed=0)
        ds = ds.map(
            lambda a, b: (tf.cast(a, tf.float32) * (rescale or 1.0), b), num_parallel_calls=tf.data.AUTOTUNE
        )
        ds = ds.map(
            lambda a, b: (augmentation(a[None], training=True)[0], b), num_parallel_calls=tf.data.AUTOTUNE
        )
        return ds.batch(batch).prefetch(tf.data.AUTOTUNE)

    result: dict[str, Any] = {"spec": str(spec.relative_to(ROOT)), "images": n, "shape": list(x.shape[1:])}
    result["augmentation_layers"] = len(augmentation.layers) if augmentation is not None else 0
    result["pipeline"] = steady(time_epochs(batched, epochs), n)
    result["pipeline_plain"] = steady(time_epochs(plain, epochs), n)
    if augmentation is not None:
        result["pipeline_per_sample"] = steady(time_epochs(per_sample_dataset(), epochs), n)

    model = build_model(compiled)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    seconds: list[float] = []

    class Timer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            seconds.append(time.perf_counter() - self.start)

    model.fit(batched, epochs=epochs, callbacks=[Timer()], shuffle=False, verbose=0)
    result["training"] = steady(seconds, n)
    result["headroom"] = result["pipeline"] / result["training"]
    if "pipeline_per_sample" in result:
        result["batched_vs_per_sample"] = result["pipeline"] / result["pipeline_per_sample"]
    print(
        f"{name:7s} pipeline {result['pipeline']:>9,.0f} img/s   plain {result['pipeline_plain']:>9,.0f}   "
        f"per-sample {result.get('pipeline_per_sample', float('nan')):>9,.0f}   "
        f"training {result['training']:>7,.0f} img/s   headroom {result['headroom']:.1f}×",
        flush=True,
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--images", type=int, default=2048, help="synthetic images for the resnet case")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--cases", default="digits,resnet")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    results: dict[str, Any] = {
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
        },
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "cases": {},
    }
    wanted = args.cases.split(",")
    if "digits" in wanted:
        from sklearn.datasets import load_digits

        digits = load_digits()
        x = (digits.images.astype("float32") / 16.0)[..., None]
        results["cases"]["digits"] = case(
            "digits",
            ROOT / "specs/digits_cnn.yaml",
            x,
            digits.target.astype("int64"),
            args.epochs,
            args.batch_size,
        )
    if "resnet" in wanted:
        rng = np.random.default_rng(0)
        x = rng.integers(0, 256, size=(args.images, 32, 32, 3)).astype("uint8")
        y = rng.integers(0, 10, size=args.images).astype("int64")
        results["cases"]["resnet"] = case(
            "resnet", ROOT / "specs/resnet.yaml", x, y, args.epochs, args.batch_size
        )
    if args.json:
        from cnnspec.fileio import write_atomic

        write_atomic(args.json, json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
