"""Shared by the evaluate/visualize/predict/report tests: one tiny trained run per test process.

The run trains a two-convolution model for a few steps on a synthetic ``.npz`` of 8×8 RGB
images whose class is their dominant colour (red, green, blue), through `cnnspec train`. The
tests that use it are grouped on one xdist worker (``xdist_group("reporting")``), so the model
is trained once per test session.
"""

from __future__ import annotations

import fcntl
import importlib.util
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner, Result

from cnnspec.cli.app import app

CLASSES = ["red", "green", "blue"]
SPEC = """\
cnnspec: 1
name: tiny_colors
description: "A <i>tiny</i> & quick colour classifier"
input: {shape: [8, 8, 3]}
model:
  - conv2d: {filters: 4, kernel_size: 3, padding: same, activation: relu}
  - max_pool2d: 2
  - conv2d: {filters: 6, kernel_size: 3, padding: same, activation: relu}
  - global_avg_pool2d
  - dense: {units: 3, activation: softmax}
data: {source: {npz: colors.npz}, validation_split: 0.2}
training:
  epochs: 3
  batch_size: 16
  optimizer: {adam: {learning_rate: 0.02}}
  seed: 3
"""

_RUNS: dict[str, Path] = {}

#: Whether the ``export`` extra (tf2onnx to write ONNX, ONNX Runtime to run it) is installed: the
#: tests whose point is not the format export ONNX then (a third of a TFLite conversion, and its
#: runtime imports no TensorFlow), and another format without it, so that they never skip.
ONNX_EXPORTS = all(importlib.util.find_spec(module) for module in ("tf2onnx", "onnxruntime"))


def colour_images(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """uint8 (n, 8, 8, 3) images whose label is the channel that is bright."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = rng.integers(0, 70, (n, 8, 8, 3)).astype("uint8")
    x[np.arange(n), :, :, y] += 150
    return x, y.astype("int64")


def write_data(folder: Path) -> Path:
    x_train, y_train = colour_images(120, 1)
    x_test, y_test = colour_images(30, 2)
    path = folder / "colors.npz"
    np.savez(
        path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test, class_names=np.array(CLASSES)
    )
    return path


def invoke(*args: object) -> Result:
    """Run the CLI with a wide terminal (Rich wraps long paths at 80 columns otherwise)."""
    return CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "400"})


def flat(result: Result) -> str:
    """The command's output with line breaks and runs of spaces collapsed."""
    return " ".join(result.output.split())


def train_without_page(spec: Path, out: Path) -> None:
    """``spec``'s run folder at ``out``, trained in this process by the trainer `cnnspec train`
    calls, without the report.html `cnnspec train` adds (a fifth to a third of a tiny training's
    CPU): for tests that read a run's model, lock.json, metrics and test split, never its page
    nor what `cnnspec train` prints."""
    from cnnspec.api import compile_spec
    from cnnspec.training.trainer import train

    train(compile_spec(spec), out=out)


def made_once(factory: pytest.TempPathFactory, name: str, make: Callable[[Path], None]) -> Path:
    """The folder ``name`` in the session's shared temporary folder, filled by ``make`` once per
    test session. Under pytest-xdist every worker may ask for it; the first makes it while the
    others wait on a file lock (xdist's ``loadgroup`` does not keep a group's tests on one worker
    with pytest 9.2: pytest-dev/pytest-xdist#1386). A folder a failed ``make`` left is made again."""
    root = factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent
    folder = root / name
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (folder / "done").is_file():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            make(folder)
            (folder / "done").write_text("made\n")
    return folder


def trained_run(factory: pytest.TempPathFactory) -> Path:
    """The run folder of the tiny model, trained once per test session (:func:`made_once`)."""
    if "run" in _RUNS:
        return _RUNS["run"]

    def train(folder: Path) -> None:
        write_data(folder)
        spec = folder / "spec.yaml"
        spec.write_text(SPEC, encoding="utf-8")
        result = invoke("train", spec, "--out", folder / "run", "--quiet")
        assert result.exit_code == 0, result.output

    _RUNS["run"] = made_once(factory, "reporting-run", train) / "run"
    return _RUNS["run"]


def wide_run(factory) -> Path:
    """Another run of :data:`SPEC` beside :func:`trained_run`'s, with twice the filters and
    another seed (an ensemble's second member), trained once per test session as it is, in
    this process without its page (:func:`train_without_page`: its readers, the ensemble
    tests, read its model, lock.json and test split)."""
    if "wide" in _RUNS:
        return _RUNS["wide"]
    folder = trained_run(factory).parent
    with open(folder.parent / "reporting-wide.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (folder / "wide-done").is_file():
            shutil.rmtree(folder / "wide", ignore_errors=True)
            (folder / "wide.yaml").write_text(
                SPEC.replace("filters: 4", "filters: 8").replace("seed: 3", "seed: 5"), encoding="utf-8"
            )
            train_without_page(folder / "wide.yaml", folder / "wide")
            (folder / "wide-done").write_text("trained\n")
    _RUNS["wide"] = folder / "wide"
    return _RUNS["wide"]


def bare_model(folder: Path, *, lam: bool = False) -> Path:
    """A small .keras model outside any run folder (with a Lambda layer when asked)."""
    import keras

    inputs = keras.Input((8, 8, 3))
    x = inputs
    if lam:
        x = keras.layers.Lambda(lambda t: t * 2.0)(x)
    x = keras.layers.Conv2D(2, 3, name="conv")(x)
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(3, activation="softmax")(x)
    path = folder / ("lambda.keras" if lam else "bare.keras")
    keras.Model(inputs, outputs).save(path)
    return path
