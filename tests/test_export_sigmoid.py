"""A binary (one-sigmoid) classifier's exports under a temperature (cnnspec/export/runtimes.py,
``ExportRecord.inexact``): a float32 sigmoid keeps a probability only to about 6e-8 next to 1,
and ONNX Runtime's next to 0 as well, so an export whose answer would have to be softened much
is passed over by ``auto`` (the next export, else Keras) and said to be inexact when named."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.test_report_support import flat, invoke, train_without_page

pytestmark = pytest.mark.slow

SPEC = """\
cnnspec: 1
name: tiny_binary
input: {shape: [8, 8, 3]}
model:
  - conv2d: {filters: 4, kernel_size: 3, padding: same, activation: relu}
  - global_avg_pool2d
  - dense: {units: 1, activation: sigmoid}
data: {source: {npz: two.npz}, validation_split: 0.2}
training:
  epochs: 6
  batch_size: 16
  optimizer: {adam: {learning_rate: 0.02}}
  loss: binary_crossentropy
  seed: 0
"""


def _two_colours(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """uint8 (n, 8, 8, 3) images, red (0) or blue (1)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = rng.integers(0, 70, (n, 8, 8, 3)).astype("uint8")
    x[np.arange(n), :, :, 2 * y] += 150
    return x, y.astype("int64")


@pytest.fixture(scope="module")
def binary_run(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("sigmoid")
    (x, y), (xt, yt) = _two_colours(80, 1), _two_colours(20, 2)
    names = np.array(["red", "blue"])
    np.savez(folder / "two.npz", x_train=x, y_train=y, x_test=xt, y_test=yt, class_names=names)
    (folder / "spec.yaml").write_text(SPEC, encoding="utf-8")
    train_without_page(folder / "spec.yaml", folder / "run")
    for image in range(3):
        np.save(folder / f"{image}.npy", xt[image])
    return folder / "run"


def _predicted(run: Path, *options: str) -> tuple[str, list[float], str]:
    """``(runtime, each image's probability of blue, the notes)`` of predict on the 3 images."""
    images = [run.parent / f"{i}.npy" for i in range(3)]
    result = invoke("predict", run, *images, "-f", "json", "-k", "2", *options)
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    blue = [next(t["probability"] for t in p["top"] if t["class"] == "blue") for p in document["predictions"]]
    return document["runtime"], blue, flat(result)


def test_auto_passes_over_a_sigmoid_export_it_would_have_to_soften_much(binary_run):
    for fmt in ("onnx", "tflite"):
        result = invoke("export", binary_run, "-f", fmt, "--temperature", "0.3")
        assert result.exit_code == 0, result.output
    _, keras, _ = _predicted(binary_run, "-r", "keras")
    # the model's own probabilities from exports answering sigmoid(z / 0.3): neither can
    runtime, auto, said = _predicted(binary_run)
    assert runtime == "keras" and auto == pytest.approx(keras, abs=1e-7)
    assert (
        "auto: skipped onnx: it answers sigmoid probabilities with the temperature 0.3 folded in, from "
        "which a temperature of 1 can not be had exactly (its float32 sigmoid resolves a probability "
        "only to about 6e-8 next to 0 or 1: the most confident answers, which softening by 3.333 would "
        "bring out, are lost)" in said
    )
    assert "auto: skipped tflite: it answers sigmoid probabilities" in said and "next to 1:" in said
    # named, the export answers with a note; its own temperature it answers exactly
    named = _predicted(binary_run, "-r", "onnx")[2]
    assert "onnx: it answers sigmoid probabilities" in named and "--runtime keras answers exactly" in named
    runtime, own, said = _predicted(binary_run, "--temperature", "0.3")
    assert runtime == "onnx" and "skipped" not in said
    assert own == pytest.approx(_predicted(binary_run, "-r", "keras", "--temperature", "0.3")[1], abs=1e-5)

    # nothing folded, softened by 2: ONNX Runtime's sigmoid is cut off next to 0, LiteRT's
    # resolves as Keras's does, so auto takes the TFLite export next
    for fmt in ("onnx", "tflite"):
        assert invoke("export", binary_run, "-f", fmt, "--temperature", "1").exit_code == 0
    runtime, soft, said = _predicted(binary_run, "--temperature", "2")
    assert runtime == "tflite" and "auto: skipped onnx: it answers sigmoid probabilities, from" in said
    assert soft == pytest.approx(_predicted(binary_run, "-r", "keras", "--temperature", "2")[1], abs=1e-6)
    evaluated = invoke("evaluate", binary_run, "-r", "auto", "--temperature", "2", "-f", "json")
    assert evaluated.exit_code == 0, evaluated.output
    assert json.loads(evaluated.stdout)["runtime"] == "tflite"
    assert "auto: skipped onnx: it answers sigmoid probabilities" in flat(evaluated)
