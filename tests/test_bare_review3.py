"""A ``.keras`` file outside its run folder (review 3 of bare models): each output's task is read
from its shape, activation and saved loss (:func:`~cnnspec.reporting.stand_in.model_tasks`), by the
same rules a spec's outputs are read by.

- a regression loss saved as a function, a named loss object or a short name (msle, log_cosh,
  mape) reads as a regression, and a loss no rule knows is refused (``--spec``), never guessed
  to be a binary classifier's;
- a softmax followed by a flatten, dropout or reshape gives probabilities (predict applied
  softmax a second time);
- the stand-in spec puts no data source's limits on the model's input (an RGBA, a 2-channel,
  a 7×7 model, a 16×1 segmentation map were "cannot tell the task");
- export writes the task it read into a bare classifier's record, and predict trusts it
  (``--runtime tflite|onnx`` refused a softmax ``Activation`` head);
- dict outputs whose keys are other outputs' layer names are neither answered nor scored
  crossed;
- whether a model scales its own pixels is read from its graph, the same for a spec and the
  file built from it (a branch convolving the raw input sees unscaled pixels);
- an output listed twice is answered twice.

The models are tiny and untrained, built with the Keras API in ``tmp_path``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from cnnspec.cli.app import app

SHAPE = (8, 8, 1)


def _invoke(*args: Any) -> Any:
    """The CLI run on ``args`` (paths as text)."""
    return CliRunner().invoke(app, [str(a) for a in args])


def _save(model: Any, path: Path, loss: Any = None) -> Path:
    """``model`` saved at ``path``, compiled with ``loss`` first where one is given (the file
    then records it, as training records it)."""
    if loss is not None:
        model.compile(optimizer="adam", loss=loss)
    model.save(path)
    return path


def _tasks(path: Path) -> dict[str, tuple[str, bool]]:
    """Each output's (task, from_logits) of the bare model file ``path``, by output name."""
    from cnnspec.reporting.run import load_model
    from cnnspec.reporting.stand_in import model_tasks

    return {out.name: (out.task, out.loss.from_logits) for out in model_tasks(load_model(path), "m", path)}


def _image(folder: Path, shape: tuple[int, ...] = SHAPE) -> Path:
    """A random 8-bit image of ``shape`` (grayscale, or RGBA for 4 channels) in ``folder``."""
    from PIL import Image

    pixels = np.random.default_rng(0).integers(0, 256, shape, dtype="uint8")
    path = folder / f"im{shape[-1]}.png"
    Image.fromarray(pixels[..., 0] if shape[-1] == 1 else pixels, "L" if shape[-1] == 1 else "RGBA").save(
        path
    )
    return path


def _flat_head(shape: tuple[int, ...] = SHAPE) -> tuple[Any, Any]:
    """A model input of ``shape`` and its flattened features."""
    import keras

    inputs = keras.Input(shape)
    return inputs, keras.layers.Flatten()(inputs)


def test_saved_loss_names_read_by_what_the_loss_is() -> None:
    """TF-free: a loss object by its class (not the user's ``name``), a function by its string
    config, short and long names; a loss of no known task is ``unknown``, none is ``None``."""
    from cnnspec.analysis.tasks import keras_loss_task, keras_regression_loss

    function = {"module": "builtins", "class_name": "function", "config": "mean_squared_error"}
    named = {"module": "keras.losses", "class_name": "MeanSquaredError", "config": {"name": "my_mse"}}
    for entry, ours in (
        (function, "mse"), (named, "mse"), ("msle", "msle"), ("log_cosh", "log_cosh"),
        ("logcosh", "log_cosh"), ("mape", "mape"), ("mean_absolute_percentage_error", "mape"),
        ({"class_name": "MeanSquaredLogarithmicError", "config": {"name": "msle"}}, "msle"),
    ):  # fmt: skip
        assert keras_loss_task(entry) == "regression", entry
        assert keras_regression_loss(entry) == ours, entry  # the same loss, not the nearest
    bce = {"class_name": "BinaryCrossentropy", "config": {"name": "binary_crossentropy"}}
    for entry in ("sparse_categorical_crossentropy", "binary_crossentropy", bce):
        assert keras_loss_task(entry) == "classification", entry
    for entry in ("poisson", {"class_name": "MyLoss", "config": {"name": "my_loss"}}):
        assert keras_loss_task(entry) == "unknown", entry
    assert keras_loss_task(None) is None
    # a class name given as a string (keras.losses.get accepts it; Keras saves it as given)
    assert keras_loss_task("SparseCategoricalCrossentropy") == "classification"
    assert keras_loss_task("CategoricalCrossentropy") == "classification"
    assert keras_regression_loss("MeanSquaredError") == "mse"


def test_a_softmax_is_no_distribution_through_a_flatten_that_changes_its_axis() -> None:
    """TF-free, a spec: a softmax over 4 channels of a 4×4 map, flattened to 64 values, is no
    distribution over 64 classes (read as none: logits); flattened from 1×1, or reshaped with
    the last axis kept, it is."""
    from cnnspec.analysis.output_activation import output_activation
    from cnnspec.api import compile_text

    def ending(*items: str) -> str | None:
        model = "".join(f"  - {item}\n" for item in items)
        text = f"cnnspec: 1\nname: t\ninput: {{shape: [4, 4, 2]}}\nmodel:\n{model}"
        compiled = compile_text(text, "t.yaml")
        return output_activation(compiled, compiled.ir.outputs[0])

    conv = "conv2d: {filters: 4, kernel_size: 1, activation: softmax}"
    assert ending(conv, "flatten") is None  # before: softmax, a 64-class "distribution"
    assert ending(conv, "reshape: [16, 4]") == "softmax"
    assert ending("conv2d: {filters: 4, kernel_size: 4, activation: softmax}", "flatten") == "softmax"
    assert ending("flatten", "dense: {units: 3, activation: softmax}", "dropout: 0.1") == "softmax"
    assert ending(conv, "flatten", "dense: {units: 2, activation: sigmoid}") == "sigmoid"


@pytest.mark.slow
def test_regression_losses_saved_in_other_forms_read_as_regression(tmp_path: Path) -> None:
    # before: each of these read as a binary classifier on logits (predict: classes ["0", "1"])
    import keras

    from cnnspec.errors import UsageError

    losses: dict[str, Any] = {
        "function": keras.losses.mean_squared_error,
        "named": keras.losses.MeanSquaredError(name="my_mse"),
        "msle": "msle",
        "log_cosh": "log_cosh",
        "mape": "mape",
    }
    for key, loss in losses.items():
        inputs, flat = _flat_head()
        path = _save(
            keras.Model(inputs, keras.layers.Dense(1, name="value")(flat)), tmp_path / f"{key}.keras", loss
        )
        assert _tasks(path) == {"value": ("regression", True)}, key
    # the readings that were right stay so
    inputs, flat = _flat_head()
    binary = keras.layers.Dense(1, activation="sigmoid", name="yes")(flat)
    path = _save(keras.Model(inputs, binary), tmp_path / "binary.keras", keras.losses.BinaryCrossentropy())
    assert _tasks(path) == {"yes": ("classification", False)}
    # a loss no rule knows is no classifier's: refused, with the --spec hint
    inputs, flat = _flat_head()
    path = _save(
        keras.Model(inputs, keras.layers.Dense(1, name="rate")(flat)), tmp_path / "poisson.keras", "poisson"
    )
    with pytest.raises(UsageError) as caught:
        _tasks(path)
    assert "poisson" in str(caught.value) and "--spec" in (caught.value.hint or "")
    result = _invoke("predict", path, _image(tmp_path), "--format", "json")
    assert result.exit_code == 2, result.output


@pytest.mark.slow
def test_a_softmax_before_a_flatten_dropout_or_reshape_gives_probabilities(tmp_path: Path) -> None:
    # before: ("classification", True): the last layer has no activation, so predict applied
    # softmax to the probabilities a second time
    import keras
    from keras import layers as L

    inputs = keras.Input(SHAPE)
    flat = L.Flatten()(inputs)
    models = {
        "flatten": keras.Model(inputs, L.Flatten(name="out")(L.Conv2D(3, 8, activation="softmax")(inputs))),
        "dropout": keras.Model(inputs, L.Dropout(0.2, name="out")(L.Dense(3, activation="softmax")(flat))),
        "reshape": keras.Model(inputs, L.Reshape((3,), name="out")(L.Dense(3, activation="softmax")(flat))),
    }
    for key, model in models.items():
        path = _save(model, tmp_path / f"{key}.keras")
        assert _tasks(path) == {"out": ("classification", False)}, key
    # a softmax over the channels of a 2×2 map, flattened: no distribution over its 12 values
    spread = L.Flatten(name="out")(L.Conv2D(3, 7, activation="softmax")(inputs))
    path = _save(keras.Model(inputs, spread), tmp_path / "spread.keras")
    assert _tasks(path) == {"out": ("classification", True)}
    # a class name as the loss string
    inputs_, flat_ = _flat_head()
    named = keras.Model(inputs_, L.Dense(3, activation="softmax", name="out")(flat_))
    path = _save(named, tmp_path / "named.keras", "SparseCategoricalCrossentropy")
    assert _tasks(path) == {"out": ("classification", False)}
    image = _image(tmp_path)
    result = _invoke("predict", tmp_path / "flatten.keras", image, "--format", "json")
    assert result.exit_code == 0, result.output
    top = json.loads(result.stdout)["predictions"][0]["top"]
    pixels = np.asarray(keras.utils.load_img(image, color_mode="grayscale"), dtype="float32")
    expected = np.asarray(models["flatten"](pixels[None, :, :, None] / 255.0))[0]
    assert np.allclose(
        [entry["probability"] for entry in sorted(top, key=lambda e: e["index"])], expected, atol=1e-5
    )


@pytest.mark.slow
def test_the_stand_in_puts_no_data_sources_limits_on_the_input(tmp_path: Path) -> None:
    # before: "cannot tell the task … (input.shape: expected … for the shapes data …)": the
    # stand-in spec's shapes source drew 1- or 3-channel images of at least 8×8 pixels
    import keras
    from keras import layers as L

    from cnnspec.errors import UsageError

    for shape in ((32, 32, 4), (28, 28, 2), (7, 7, 1)):
        inputs, flat = _flat_head(shape)
        path = _save(
            keras.Model(inputs, L.Dense(3, activation="softmax", name="cls")(flat)),
            tmp_path / f"c{shape[-1]}_{shape[0]}.keras",
        )
        assert _tasks(path) == {"cls": ("classification", False)}, shape
    inputs = keras.Input((16, 1, 1))
    path = _save(
        keras.Model(inputs, L.Conv2D(3, 1, activation="softmax", name="map")(inputs)),
        tmp_path / "thin.keras",
        "sparse_categorical_crossentropy",
    )
    assert _tasks(path) == {"map": ("segmentation", False)}
    # where the task really cannot be told, the error still says why (the output, not the data)
    inputs, flat = _flat_head((32, 32, 4))
    path = _save(
        keras.Model(inputs, L.Dense(3, activation="softmax", name="soft")(flat)),
        tmp_path / "softreg.keras",
        "mse",
    )
    with pytest.raises(UsageError) as caught:
        _tasks(path)
    assert "expected a linear output for regression" in str(caught.value)
    assert "shapes" not in str(caught.value)
    # predict of the RGBA classifier reads it (before: exit 2)
    result = _invoke("predict", tmp_path / "c4_32.keras", _image(tmp_path, (32, 32, 4)), "--format", "json")
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)["predictions"][0]["top"]) == 3


@pytest.mark.slow
def test_predict_through_the_export_of_a_bare_softmax_activation_classifier(tmp_path: Path) -> None:
    # before: the record said classes without outputs, and predict -r onnx asked for a record
    # that says the tasks (auto fell back to Keras): the file's output is no Dense layer
    pytest.importorskip("tf2onnx")
    pytest.importorskip("onnxruntime")
    import keras
    from keras import layers as L

    inputs, flat = _flat_head()
    model = keras.Model(inputs, L.Activation("softmax")(L.Dense(3)(flat)))
    path = _save(model, tmp_path / "act.keras", "sparse_categorical_crossentropy")
    result = _invoke("export", path, "--format", "onnx")
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "act.onnx.json").read_text(encoding="utf-8"))
    assert record["output"]["task"] == "classification" and "outputs" not in record
    image = _image(tmp_path)
    answers = {}
    for runtime in ("onnx", "auto", "keras"):
        result = _invoke("predict", path, image, "--runtime", runtime, "--format", "json")
        assert result.exit_code == 0, (runtime, result.output)
        document = json.loads(result.stdout)
        assert document["runtime"] == ("keras" if runtime == "keras" else "onnx"), runtime
        answers[runtime] = [entry["class"] for entry in document["predictions"][0]["top"]]
    assert answers["onnx"] == answers["auto"] == answers["keras"]


@pytest.mark.slow
def test_dict_outputs_keyed_by_each_others_layer_names_are_not_crossed(tmp_path: Path) -> None:
    # {"b": Dense(1, name="a"), "a": Dense(3, softmax, name="b")}: Keras answers and scores by
    # the dict's keys. Before: predict gave each output the other's values, and the compiled
    # file was refused ("expected a linear output for regression": mse read for layer b)
    import keras
    from keras import layers as L

    def crossed() -> Any:
        inputs, flat = _flat_head()
        value = L.Dense(1, name="a")(flat)
        classes = L.Dense(3, activation="softmax", name="b")(flat)
        return keras.Model(inputs, {"b": value, "a": classes})

    model = crossed()
    # (compiled: uncompiled, layer a's one linear unit is no task cnnspec can tell, and is refused)
    path = _save(model, tmp_path / "crossed.keras", {"b": "mse", "a": "sparse_categorical_crossentropy"})
    image = _image(tmp_path)
    result = _invoke("predict", path, image, "--format", "json")
    assert result.exit_code == 0, result.output
    outputs = json.loads(result.stdout)["predictions"][0]["outputs"]
    pixels = np.asarray(keras.utils.load_img(image, color_mode="grayscale"), dtype="float32")
    own = model.predict(pixels[None, :, :, None] / 255.0, verbose=0)  # by key: "a" is layer b
    got = sorted(outputs["b"]["top"], key=lambda e: e["index"])
    assert np.allclose([entry["probability"] for entry in got], own["a"][0], atol=1e-5)
    assert outputs["a"]["task"] == "regression"  # layer a: the value Keras answers under key "b"
    assert outputs["a"]["values"] == pytest.approx([float(own["b"][0][0])], abs=1e-5)
    assert _tasks(path) == {"b": ("classification", False), "a": ("regression", True)}


BRANCH = """cnnspec: 1
name: branch
input: {shape: [8, 8, 1]}
model:
  - conv2d: {filters: 2, kernel_size: 3, padding: same}
    id: raw
    inputs: input
  - rescaling: {scale: 0.00392156862745098}
    id: scaled
    inputs: input
  - conv2d: {filters: 2, kernel_size: 3, padding: same}
    id: c2
    inputs: scaled
  - concat: {}
    inputs: [raw, c2]
  - flatten
  - dense: {units: 10, activation: softmax}
data: {source: digits}
"""
#: Both branches convolve the rescaled pixels: the model scales them itself.
BOTH_SCALED = """cnnspec: 1
name: both
input: {shape: [8, 8, 1]}
model:
  - rescaling: {scale: 0.00392156862745098}
    id: scaled
    inputs: input
  - conv2d: {filters: 2, kernel_size: 3, padding: same}
    id: c1
    inputs: scaled
  - conv2d: {filters: 2, kernel_size: 3, padding: same}
    id: c2
    inputs: scaled
  - concat: {}
    inputs: [c1, c2]
  - flatten
  - dense: {units: 10, activation: softmax}
data: {source: digits}
"""


@pytest.mark.slow
def test_a_spec_and_its_built_file_agree_on_scaling_by_the_graph(tmp_path: Path) -> None:
    # before: the spec said no (its raw branch comes first), the file built from it yes (Keras
    # lists the rescaling before the raw convolution): the node order decided
    from cnnspec.analysis.pixel_scaling import model_scales_input
    from cnnspec.api import build_model, compile_text
    from cnnspec.reporting.model_graph import rescales_itself
    from cnnspec.reporting.run import load_model

    found = {}
    for key, text in (("raw_branch", BRANCH), ("both_scaled", BOTH_SCALED)):
        compiled = compile_text(text)
        path = tmp_path / f"{key}.keras"
        build_model(compiled).save(path)
        found[key] = (model_scales_input(compiled.ir), rescales_itself(load_model(path)))
    assert found == {"raw_branch": (False, False), "both_scaled": (True, True)}


@pytest.mark.slow
def test_an_output_listed_twice_is_answered_twice(tmp_path: Path) -> None:
    # before: both stand-in ids mapped back to one Keras name, and predict answered only one
    import keras

    inputs, flat = _flat_head()
    head = keras.layers.Dense(2, activation="softmax", name="cls")(flat)
    path = _save(keras.Model(inputs, [head, head]), tmp_path / "twice.keras")
    assert list(_tasks(path)) == ["cls", "out_1"]
    result = _invoke("predict", path, _image(tmp_path), "--format", "json")
    assert result.exit_code == 0, result.output
    outputs = json.loads(result.stdout)["predictions"][0]["outputs"]
    assert list(outputs) == ["cls", "out_1"]
    assert outputs["cls"] == outputs["out_1"]
