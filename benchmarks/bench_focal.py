"""Imbalanced classes on the embedded digits: what a focal loss and class weights do.

The digits, made imbalanced in training only: classes 0–4 keep every training image, classes
5–9 keep one in ``--keep`` (10 % by default: about 14 images each against about 140). The test
images are all kept (balanced), so the figures say how well each class is recognised, not how
common it was in training. The model is ``specs/digits_cnn.yaml``'s layers (batch norm, dropout,
random translation), trained ``--epochs`` epochs (40) from an ``.npz`` the script writes.

Four setups, each over ``--seeds``:

- **crossentropy**: ``sparse_categorical_crossentropy``, what a user writes first;
- **class weights**: the same with ``class_weight: balanced``;
- **focal**: ``categorical_focal_crossentropy`` at Keras' defaults (``gamma: 2, alpha: 0.25``);
- **focal + class weights**: both.

For each: ``cnnspec train … --set training.seed=S`` then ``cnnspec evaluate RUN -f json``; the
test accuracy, macro F1, and the mean recall of the five rare classes (how many of their test
images are found). Every step is one cold process, the command a user types. Run by hand:

    .venv/bin/python benchmarks/bench_focal.py [--seeds 1,2,3] [--keep 10] [--epochs 40]
        [--work DIR] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import CNNSPEC, machine_info, run_child, write_json

SPEC = """\
cnnspec: 1
name: digits_imbalanced
input: {shape: [8, 8, 1]}
model:
  - conv2d: {filters: 32, kernel_size: 3, padding: same, use_bias: false}
  - batch_norm: {momentum: 0.9}
  - activation: relu
  - conv2d: {filters: 64, kernel_size: 3, padding: same, use_bias: false}
  - batch_norm: {momentum: 0.9}
  - activation: relu
  - max_pool2d: 2
  - conv2d: {filters: 64, kernel_size: 3, padding: same, use_bias: false}
  - batch_norm: {momentum: 0.9}
  - activation: relu
  - global_avg_pool2d
  - dropout: 0.3
  - dense: {units: 10, activation: softmax}
augmentation:
  - random_translation: {height_factor: 0.1, width_factor: 0.1, fill_mode: constant}
data: {source: {npz: digits_imbalanced.npz}, validation_split: 0.1}
training:
  epochs: 40
  batch_size: 32
  optimizer: {adam: {learning_rate: 0.003}}
  metrics: [accuracy]
  seed: 1
"""
#: The setups: the lines added to the spec's ``training:`` section.
SETUPS = {
    "crossentropy": "  loss: sparse_categorical_crossentropy\n",
    "class weights": "  loss: sparse_categorical_crossentropy\n  class_weight: balanced\n",
    "focal": "  loss: categorical_focal_crossentropy\n",
    "focal + class weights": "  loss: categorical_focal_crossentropy\n  class_weight: balanced\n",
}
RARE = (5, 6, 7, 8, 9)


def write_data(path: Path, keep: int) -> dict[str, int]:
    """The digits as an ``.npz``: a seeded fifth of each class is the (balanced) test split; of
    the rest, the rare classes keep one training image in ``keep``. Returns the training counts."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = (digits.images * (255 / 16)).round().astype("uint8")[..., None]
    labels = digits.target.astype("int64")
    rng = np.random.default_rng(0)
    train, test = [], []
    for label in range(10):
        where = rng.permutation(np.flatnonzero(labels == label))
        cut = len(where) // 5
        test.extend(where[:cut])
        rest = where[cut:]
        train.extend(rest[::keep] if label in RARE else rest)
    train_idx, test_idx = np.array(sorted(train)), np.array(sorted(test))
    np.savez(
        path,
        x_train=images[train_idx],
        y_train=labels[train_idx],
        x_test=images[test_idx],
        y_test=labels[test_idx],
    )
    return {str(c): int((labels[train_idx] == c).sum()) for c in range(10)}


def _json(args: list[str]) -> dict[str, Any]:
    result = run_child(args)
    if result.returncode != 0:
        raise SystemExit(f"failed ({result.returncode}): {' '.join(args)}\n{result.stdout[-2000:]}")
    text = result.stdout
    return json.loads(text[text.index("{") :])


def one_run(spec: Path, seed: int, epochs: int, work: Path) -> dict[str, Any]:
    run = work / f"{spec.stem}-{seed}"
    args = [CNNSPEC, "train", str(spec), "--out", str(run), "--quiet"]
    args += ["--set", f"training.seed={seed}", "--set", f"training.epochs={epochs}"]
    trained = run_child(args)
    if trained.returncode != 0:
        raise SystemExit(f"training failed: {trained.stdout[-2000:]}")
    document = _json([CNNSPEC, "evaluate", str(run), "-f", "json"])
    per_class = document["per_class"]  # (by class name: the digits' names are "0" … "9")
    return {
        "seed": seed,
        "accuracy": document["accuracy"],
        "macro_f1": document["macro_avg"]["f1"],
        "rare_recall": statistics.mean(per_class[str(c)]["recall"] for c in RARE),
        "train_seconds": round(trained.seconds, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--keep", type=int, default=10, help="the rare classes keep one image in KEEP")
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None)
    options = parser.parse_args()
    seeds = [int(s) for s in options.seeds.split(",")]
    work = options.work or Path(tempfile.mkdtemp(prefix="bench-focal-"))
    work.mkdir(parents=True, exist_ok=True)
    counts = write_data(work / "digits_imbalanced.npz", options.keep)
    results: dict[str, Any] = {"machine": machine_info(), "train_counts": counts, "setups": {}}
    print(f"training images per class: {counts}")
    print("| setup | test accuracy | macro F1 | recall of the rare classes 5–9 | train s |")
    print("| --- | --- | --- | --- | --- |")
    for name, lines in SETUPS.items():
        spec = work / f"{name.replace(' + ', '_').replace(' ', '_')}.yaml"
        spec.write_text(SPEC + lines, encoding="utf-8")
        rows = [one_run(spec, seed, options.epochs, work) for seed in seeds]
        results["setups"][name] = rows

        def mean(key: str, rows: list[dict[str, Any]] = rows) -> float:
            return statistics.mean(row[key] for row in rows)

        print(
            f"| {name} | {mean('accuracy'):.4f} | {mean('macro_f1'):.4f} | {mean('rare_recall'):.4f} | "
            f"{mean('train_seconds'):.1f} |",
            flush=True,
        )
    if options.json:
        write_json(options.json, results)


if __name__ == "__main__":
    main()
