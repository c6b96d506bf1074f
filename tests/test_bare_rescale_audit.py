"""Bare model files and the model's own rescaling (audit of import and bare models).

Whether a model rescales its own pixels (``data.rescale: auto`` then leaves them as stored): a
``rescaling`` before the first layer with weights, after any number of random augmentation
layers and inside nested models, in a spec and in a bare model file alike. Only the first
three layers (four of a file, top level only) were looked at: the pixels were divided by 255
twice. And a bare model's confusion matrix is drawn only from its own evaluation."""

from __future__ import annotations

from pathlib import Path

import pytest

from cnnspec.analysis.pixel_scaling import model_scales_input
from cnnspec.api import compile_text

HEAD = "cnnspec: 1\nname: m\ninput: {shape: [16, 16, 3]}\nmodel:\n"
TAIL = (
    "  - conv2d: {filters: 4, kernel_size: 3}\n  - global_avg_pool2d\n"
    "  - dense: {units: 3, activation: softmax}\n"
)
AUGMENT = (
    "  - random_flip: horizontal\n  - random_rotation: 0.1\n  - random_zoom: 0.1\n  - random_contrast: 0.1\n"
)


@pytest.mark.parametrize(
    ("layers", "scales"),
    [
        ("  - rescaling: 0.00392156862745098\n", True),
        (AUGMENT + "  - rescaling: 0.00392156862745098\n", True),  # was False: the fifth layer
        ("", False),
        # after the first convolution it scales features, not pixels
        ("  - conv2d: {filters: 3, kernel_size: 1}\n  - rescaling: 0.00392156862745098\n", False),
    ],
)
def test_a_spec_scales_its_pixels_when_a_rescaling_comes_before_any_weights(layers, scales):
    assert model_scales_input(compile_text(HEAD + layers + TAIL).ir) is scales


@pytest.mark.slow
def test_a_bare_model_file_rescales_itself_with_a_rescaling_nested_or_after_augmentation(tmp_path: Path):
    import keras
    from keras import layers as L

    from cnnspec.reporting.model_graph import rescales_itself

    def head(x):
        x = L.Conv2D(4, 3, activation="relu")(x)
        return L.Dense(3, activation="softmax")(L.GlobalAveragePooling2D()(x))

    inputs = keras.Input((16, 16, 3))
    augmented = inputs
    for layer in (L.RandomFlip(), L.RandomRotation(0.1), L.RandomZoom(0.1), L.RandomContrast(0.1)):
        augmented = layer(augmented)
    nested = keras.Sequential([L.Rescaling(1 / 255)], name="pre")
    models = {
        "after_augmentation": keras.Model(inputs, head(L.Rescaling(1 / 255)(augmented))),
        "nested": keras.Model(inputs, head(nested(inputs))),
        "none": keras.Model(inputs, head(inputs)),
    }
    found = {}
    for name, model in models.items():
        model.save(tmp_path / f"{name}.keras")
        found[name] = rescales_itself(keras.saving.load_model(tmp_path / f"{name}.keras", safe_mode=True))
    assert found == {"after_augmentation": True, "nested": True, "none": False}


def test_a_bare_models_confusion_is_never_drawn_from_another_models_evaluation(tmp_path: Path):
    """`evaluate` writes evaluation.json into a bare model's folder: a second model file there
    drew the first one's matrix under its own name (a regression model got a 3×3 matrix)."""
    import json

    from cnnspec.errors import UsageError
    from cnnspec.reporting.run import Run
    from cnnspec.reporting.views import confusion_source

    evaluation = {
        "model": "elsewhere/first.keras",  # the path as that evaluate was given it
        "confusion_matrix": [[1, 0], [0, 1]],
        "class_names": ["a", "b"],
    }
    (tmp_path / "evaluation.json").write_text(json.dumps(evaluation), encoding="utf-8")
    matrix, names, _ = confusion_source(Run(tmp_path / "first.keras"))
    assert matrix == [[1, 0], [0, 1]] and names == ["a", "b"]
    with pytest.raises(UsageError):
        confusion_source(Run(tmp_path / "second.keras"))


@pytest.mark.parametrize(
    ("loss", "said"),
    [
        ("mse", "training: {task: regression, loss: mse}"),
        ({"class_name": "MeanAbsoluteError", "config": {"name": "mean_absolute_error"}}, "loss: mae"),
        ({"count": "huber", "labels": "binary_crossentropy"}, "(count: huber)"),
        ("sparse_categorical_crossentropy", None),
        (None, None),
    ],
)
def test_import_notes_a_regression_loss_the_spec_does_not_keep(loss, said):
    """`predict` of the file reads its regression head by the saved loss; the imported spec has
    no training section, so `train` would read it as a classifier: the note says what to add."""
    from cnnspec.importer.losses import regression_loss_note

    note = regression_loss_note({"compile_config": {"loss": loss}} if loss is not None else {})
    assert (note is None) if said is None else (said in note and "keeps no training settings" in note)


@pytest.mark.slow
def test_import_of_a_model_compiled_with_mse_writes_the_note_into_the_spec(tmp_path: Path):
    import keras

    from cnnspec.importer import import_source

    inputs = keras.Input((8, 8, 1))
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Flatten()(inputs)))
    model.compile(optimizer="adam", loss="mse")
    model.save(tmp_path / "reg.keras")
    imported = import_source(str(tmp_path / "reg.keras"))
    assert any("regression loss mse" in note for note in imported.notes)
    assert "# Note: the source was compiled with the regression loss mse" in imported.text


@pytest.mark.parametrize(
    ("source", "dtype", "factor"),
    [
        ("digits", "float32", 1 / 255),
        ("digits", None, None),  # (an older run: not known)
        ("{npz: f.npz}", "float32", None),  # floats of 0-255, what a 1/255 rescaling is for
        ("{npz: f.npz}", "uint8", None),
    ],
)
def test_a_file_for_a_float_trained_model_with_its_own_rescaling_is_scaled_as_its_training_images(
    tmp_path: Path, source, dtype, factor
):
    """A digits run (float images in [0, 1]) whose model starts with a rescaling: image files'
    0–255 pixels went to it raw, and every answer was wrong (0.35 accuracy against 0.95). A
    float npz may hold 0–255: its files stay as they are (the first fix scaled them too)."""
    from cnnspec.reporting.pixel_ranges import file_rescale
    from cnnspec.reporting.run import Run

    compiled = compile_text(
        "cnnspec: 1\nname: r\ninput: {shape: [8, 8, 1]}\nmodel:\n"
        "  - rescaling: {scale: 2.0, offset: -1.0}\n  - flatten\n"
        "  - dense: {units: 10, activation: softmax}\n"
        f"data: {{source: {source}}}\n"
    )
    lock = {"data": {"dtype": dtype}} if dtype is not None else {}
    run = Run(model_path=tmp_path / "model.keras", run_dir=tmp_path, lock=lock, compiled=compiled)
    assert file_rescale(run, None, True) == factor
    assert file_rescale(run, None, False) is None  # a float array is taken as scaled already


@pytest.mark.slow
def test_evaluate_data_of_image_files_scales_them_as_predict_does_for_a_digits_run(tmp_path: Path):
    """`evaluate --data FOLDER` fed 0–255 pixels to a digits run whose model rescales (loss 35
    against its own 0.14); predict scaled the same files by 1/255."""
    import json

    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits
    from typer.testing import CliRunner

    from cnnspec.cli.app import app
    from tests.test_report_support import train_without_page

    spec = tmp_path / "d.yaml"
    spec.write_text(
        "cnnspec: 1\nname: d\ninput: {shape: [8, 8, 1]}\nmodel:\n  - rescaling: {scale: 1.0}\n"
        "  - flatten\n  - dense: {units: 10, activation: softmax}\n"
        "data: {source: digits}\ntraining: {epochs: 3, batch_size: 32, seed: 1}\n"
    )
    runner = CliRunner()
    train_without_page(spec, tmp_path / "run")  # (evaluate reads the model, lock.json and metrics.json)
    digits = load_digits()
    for index in range(60):
        folder = tmp_path / "files" / str(digits.target[index])
        folder.mkdir(parents=True, exist_ok=True)
        pixels = np.round(digits.images[index] * 255 / 16).astype("uint8")
        Image.fromarray(pixels, mode="L").save(folder / f"{index}.png")
    result = runner.invoke(
        app, ["evaluate", str(tmp_path / "run"), "--data", str(tmp_path / "files"), "-o", str(tmp_path / "e")]
    )
    assert result.exit_code == 0, result.output
    loss = json.loads((tmp_path / "e" / "evaluation.json").read_text())["loss"]
    own = json.loads((tmp_path / "run" / "metrics.json").read_text())["test_loss"]
    assert loss < 3 * own + 0.5, (loss, own)  # 0-255 pixels gave tens
