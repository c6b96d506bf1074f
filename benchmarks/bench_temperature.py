"""Temperature scaling on the embedded digits: what `cnnspec calibrate` does to the test split.

Two small-data setups, each trained on 15 images per class (``data.per_class``), so that the
model's confidence is off in a way a user would see:

- **digits_cnn**: ``specs/digits_cnn.yaml`` as it is (dropout and random translation: a model
  that tends to be less sure than right), 60 epochs;
- **no regularisation**: the same layers without dropout, augmentation or batch norm, 100
  epochs at a fixed rate (a model that learns its 150 images by heart and tends to be surer
  than right).

For each seed: ``cnnspec train … --set training.seed=S``, ``cnnspec evaluate RUN --temperature 1
-f json`` (the model's own probabilities), ``cnnspec calibrate RUN -f json --force`` (fitted
on the run's validation images; a fit at an end of the range is kept, with its note), then
``cnnspec evaluate RUN -f json`` (the temperature applied). The test figures before and after:
ECE, the loss (the mean negative log-likelihood), the Brier score, and the accuracy (which a
temperature never changes). Then ``cnnspec export RUN -f onnx`` (the temperature folded into
the file) and ``cnnspec evaluate RUN --runtime onnx -f json``: the ONNX file's own answers,
which must score as the scaled Keras model does. Every step is one cold process, the command a
user types. Run by hand:

    .venv/bin/python benchmarks/bench_temperature.py [--seeds 1,2,3,4,5] [--work DIR] [--json out.json]
        [--epochs N]   (every setup trained N epochs: the smoke test's 2)
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import CNNSPEC, ROOT, machine_info, run_child, write_json

UNREGULARISED = """\
cnnspec: 1
name: digits_unregularised
input: {shape: [8, 8, 1]}
model:
  - conv2d: {filters: 32, kernel_size: 3, padding: same, activation: relu}
  - conv2d: {filters: 64, kernel_size: 3, padding: same, activation: relu}
  - max_pool2d: 2
  - conv2d: {filters: 64, kernel_size: 3, padding: same, activation: relu}
  - global_avg_pool2d
  - dense: {units: 10, activation: softmax}
data: {source: digits, validation_split: 0.1, test_split: 0.2}
training:
  epochs: 100
  batch_size: 32
  optimizer: {adam: {learning_rate: 0.003}}
  loss: sparse_categorical_crossentropy
  metrics: [accuracy]
  seed: 42
"""


def _json(args: list[str]) -> dict[str, Any]:
    result = run_child(args)
    if result.returncode != 0:
        raise SystemExit(f"failed ({result.returncode}): {' '.join(args)}\n{result.stdout[-2000:]}")
    text = result.stdout
    return json.loads(text[text.index("{") :])


def _figures(document: dict[str, Any]) -> dict[str, float]:
    calibration = document["calibration"]
    return {
        "accuracy": document["accuracy"],
        "ece": calibration["ece"],
        "nll": document["loss"],
        "brier": calibration["brier"],
    }


def one_seed(spec: Path, seed: int, epochs: int, work: Path) -> dict[str, Any]:
    run = work / f"{spec.stem}-{seed}"
    args = [CNNSPEC, "train", str(spec), "--out", str(run), "--quiet", "--set", f"training.seed={seed}"]
    args += ["--set", "data.per_class=15", "--set", f"training.epochs={epochs}"]
    trained = run_child(args)
    if trained.returncode != 0:
        raise SystemExit(f"training failed: {trained.stdout[-2000:]}")
    before = _json([CNNSPEC, "evaluate", str(run), "--temperature", "1", "-f", "json"])
    # (--force: a fit at an end of the range is reported too, with its note, not refused)
    fitted = _json([CNNSPEC, "calibrate", str(run), "-f", "json", "--force"])
    after = _json([CNNSPEC, "evaluate", str(run), "-f", "json"])
    exported = run_child([CNNSPEC, "export", str(run), "-f", "onnx"])
    if exported.returncode != 0:
        raise SystemExit(f"export failed: {exported.stdout[-2000:]}")
    # (the file answers with the run's temperature folded in: evaluate applies nothing more)
    onnx = _json([CNNSPEC, "evaluate", str(run), "--runtime", "onnx", "-f", "json", "-o", str(run / "onnx")])
    return {
        "seed": seed,
        "temperature": fitted["temperature"],
        "validation_images": fitted["images"],
        "notes": fitted["notes"],
        "before": _figures(before),
        "after": _figures(after),
        "onnx_file": _figures(onnx),
        "train_seconds": round(trained.seconds, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", default="1,2,3,4,5")
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--epochs", type=int, default=None, help="every setup's epochs (default: 60 and 100)")
    options = parser.parse_args()
    seeds = [int(s) for s in options.seeds.split(",")]
    work = options.work or Path(tempfile.mkdtemp(prefix="bench-temperature-"))
    work.mkdir(parents=True, exist_ok=True)
    plain = work / "digits_unregularised.yaml"
    plain.write_text(UNREGULARISED, encoding="utf-8")
    setups = {
        "digits_cnn": (ROOT / "specs" / "digits_cnn.yaml", options.epochs or 60),
        "no regularisation": (plain, options.epochs or 100),
    }
    results: dict[str, Any] = {"machine": machine_info(), "setups": {}}
    columns = ["setup", "T (seeds)", "test ECE before → after", "test NLL before → after"]
    columns += ["Brier before → after", "accuracy", "the ONNX file's ECE, NLL"]
    print("| " + " | ".join(columns) + " |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, (spec, epochs) in setups.items():
        rows = [one_seed(spec, seed, epochs, work) for seed in seeds]
        results["setups"][name] = rows

        def mean(part: str, key: str, rows: list[dict[str, Any]] = rows) -> float:
            return statistics.mean(row[part][key] for row in rows)

        temperatures = " ".join(f"{row['temperature']:.2f}" for row in rows)
        print(
            f"| {name} | {temperatures} | {mean('before', 'ece'):.2%} → {mean('after', 'ece'):.2%} | "
            f"{mean('before', 'nll'):.4f} → {mean('after', 'nll'):.4f} | "
            f"{mean('before', 'brier'):.4f} → {mean('after', 'brier'):.4f} | "
            f"{mean('before', 'accuracy'):.4f} = {mean('after', 'accuracy'):.4f} | "
            f"{mean('onnx_file', 'ece'):.2%}, {mean('onnx_file', 'nll'):.4f} |",
            flush=True,
        )
    if options.json:
        write_json(options.json, results)


if __name__ == "__main__":
    main()
