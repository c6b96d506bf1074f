"""A model file outside its run folder described by ``--spec`` (cnnspec/reporting/run.py
``locate`` and ``spec_names``): the class, label and mask-class names the spec fixes without
reading any data are the model's names; a folder's, a CSV's or an npz file's own names are not
read (only the data tells them), so their outputs stay numbered."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnnspec.reporting.run import locate
from tests.test_report_support import flat, invoke, train_without_page

HEAD = """\
cnnspec: 1
name: lone
input: {shape: [16, 16, 3]}
model:
  - conv2d: {filters: 4, kernel_size: 3, padding: same, activation: relu}
  - global_avg_pool2d
"""


def _located(tmp_path: Path, text: str) -> tuple[list[str] | None, dict[str, list[str]]]:
    """``(class_names, each output's names)`` of a model file alone read with the spec ``text``."""
    # the digits source with an input of its size (validate refuses a named dataset that does not fit)
    head = HEAD.replace("[16, 16, 3]", "[8, 8, 1]") if "source: digits" in text else HEAD
    (tmp_path / "spec.yaml").write_text(head + text, encoding="utf-8")
    (tmp_path / "dirdata" / "red").mkdir(parents=True, exist_ok=True)
    model = tmp_path / "lone" / "m.keras"
    model.parent.mkdir(exist_ok=True)
    _archive(model)
    run = locate(model, tmp_path / "spec.yaml")
    assert run.run_dir is None and run.lock is None
    return run.class_names, {task.name: run.output_names(task.name) for task in run.config.tasks}


def _archive(path: Path) -> None:
    """A zip archive under a .keras name: locate checks what the file is, and loads no model."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("config.json", "{}")


SHAPES = ["circle", "square", "triangle"]


@pytest.mark.parametrize(
    ("text", "names"),
    [
        # the shapes source: its shapes for a class or multi-label target, its mask classes
        (
            "  - dense: {units: 3, activation: sigmoid}\n"
            "data: {source: {shapes: {images: 40, target: multilabel}}}\ntraining: {task: multilabel}\n",
            SHAPES,
        ),
        ("  - dense: {units: 3, activation: softmax}\ndata: {source: shapes}\n", SHAPES),
        (
            "  - dense: {units: 2, activation: softmax}\n"
            "data: {source: shapes, classes: [triangle, circle]}\n",
            ["triangle", "circle"],
        ),
        # a built-in dataset's classes, picked by index or name
        (
            "  - dense: {units: 2, activation: softmax}\ndata: {source: digits, classes: [7, '3']}\n",
            ["7", "3"],
        ),
        # a folder's classes picked by name: the names, in data.classes' order
        (
            "  - dense: {units: 1, activation: sigmoid}\n"
            "data: {source: {directory: dirdata}, classes: [red, blue]}\n"
            "training: {loss: binary_crossentropy}\n",
            ["red", "blue"],
        ),
        # a folder's own classes, or picked by index: only its folders tell them
        ("  - dense: {units: 3, activation: softmax}\ndata: {source: {directory: dirdata}}\n", None),
        (
            "  - dense: {units: 2, activation: softmax}\n"
            "data: {source: {directory: dirdata}, classes: [red, 1]}\n",
            None,
        ),
    ],
)
def test_a_model_file_alone_takes_the_names_its_spec_fixes(tmp_path, text, names):
    class_names, by_output = _located(tmp_path, text)
    assert class_names == names
    assert list(by_output.values()) == [names or []]


def test_a_masks_folders_classes_table_names_the_mask_classes(tmp_path):
    (tmp_path / "dirdata" / "masks").mkdir(parents=True)
    text = (
        "  - conv2d: {filters: 3, kernel_size: 1, activation: softmax}\n"
        "data: {source: {images: dirdata, masks: dirdata/masks, classes: [sky, sea, sand]}}\n"
        "training: {task: segmentation}\n"
    )
    (tmp_path / "spec.yaml").write_text(HEAD.replace("  - global_avg_pool2d\n", "") + text, encoding="utf-8")
    model = tmp_path / "m.keras"
    _archive(model)
    run = locate(model, tmp_path / "spec.yaml")
    assert run.class_names == ["sky", "sea", "sand"]
    assert run.output_names(run.config.tasks[0].name) == ["sky", "sea", "sand"]


@pytest.mark.slow
def test_predict_a_model_file_alone_with_its_spec_shows_the_specs_names(tmp_path):
    """The tester's case: a multi-label shapes model copied out of its run answers with its
    shapes' names under --spec (it showed 0, 1, 2), as from the run folder."""
    spec = tmp_path / "ml.yaml"
    spec.write_text(
        HEAD.replace("[16, 16, 3]", "[32, 32, 3]") + "  - dense: {units: 3, activation: sigmoid}\n"
        "data: {source: {shapes: {images: 60, target: multilabel}}}\n"
        "training: {task: multilabel, epochs: 1, metrics: [f1]}\n",
        encoding="utf-8",
    )
    train_without_page(spec, tmp_path / "run")  # (predict reads the model and lock.json, no page)
    (tmp_path / "lone").mkdir()
    shutil.copy(tmp_path / "run" / "model.keras", tmp_path / "lone" / "ml.keras")
    image = tmp_path / "r0.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (32, 32, 3)).astype("uint8")).save(image)
    from_run = flat(invoke("predict", tmp_path / "run", image))
    alone = invoke("predict", tmp_path / "lone" / "ml.keras", image, "--spec", spec)
    assert alone.exit_code == 0, alone.output
    assert "circle 0." in flat(alone) and "triangle 0." in flat(alone)
    assert flat(alone).split("labels:")[1] == from_run.split("labels:")[1]


# -- the pixel factor of a model file alone -----------------------------------------------------
RESCALED = """\
cnnspec: 1
name: hundredths
input: {shape: [8, 8, 3]}
model:
  - conv2d: {filters: 4, kernel_size: 3, padding: same, activation: relu}
  - global_avg_pool2d
  - dense: {units: 3, activation: softmax}
data: {source: {npz: colors.npz}, rescale: 0.01, validation_split: 0.2}
training: {epochs: 2, batch_size: 16, seed: 3}
"""
ASSUMED = (
    "pixels multiplied by 1/255, assumed: model.keras comes with no run folder, spec or export record "
    "to say what its training did, nor a rescaling layer; --spec SPEC applies the spec's data.rescale"
)


def _top(result) -> list[float]:
    """The top probabilities predict answered for its one image (an npz spec's classes are
    numbered: only the data names them)."""
    assert result.exit_code == 0, result.output
    return [t["probability"] for t in json.loads(result.stdout)["predictions"][0]["top"]]


@pytest.mark.slow
def test_a_model_file_alone_says_its_pixel_factor_was_assumed(tmp_path):
    """A run trained with data.rescale 0.01, its model.keras copied out: predict multiplies a
    file's pixels by 1/255 as the likeliest factor, and says so; --spec, or the export record
    copied with it, gives the run's factor (the answers of the run folder), with no note."""
    from tests.test_report_support import write_data

    write_data(tmp_path)
    (tmp_path / "spec.yaml").write_text(RESCALED, encoding="utf-8")
    train_without_page(tmp_path / "spec.yaml", tmp_path / "run")  # (no command here reads its page)
    image = tmp_path / "red.png"
    Image.fromarray(np.full((8, 8, 3), (200, 30, 30), dtype="uint8")).save(image)
    own = _top(invoke("predict", tmp_path / "run", image, "-f", "json", "-r", "keras"))
    lone = tmp_path / "lone" / "model.keras"
    lone.parent.mkdir()
    shutil.copy(tmp_path / "run" / "model.keras", lone)

    assumed = invoke("predict", lone, image, "-f", "json")
    assert ASSUMED in flat(assumed) and _top(assumed) != pytest.approx(own)
    # evaluate --data of image files scales them alike, and says so as predict does (it said nothing)
    for name in ("red", "green", "blue"):  # (the run's classes, which its npz names)
        (tmp_path / "folder" / name).mkdir(parents=True)
        shutil.copy(image, tmp_path / "folder" / name / "red.png")
    scored = invoke("evaluate", lone, "--data", tmp_path / "folder", "-o", tmp_path / "scored")
    assert scored.exit_code == 0 and ASSUMED in flat(scored), scored.output
    assert ASSUMED in json.loads((tmp_path / "scored" / "evaluation.json").read_text("utf-8"))["notes"]
    in_run = invoke("evaluate", tmp_path / "run", "--data", tmp_path / "folder", "-o", tmp_path / "scored2")
    assert in_run.exit_code == 0 and "assumed" not in flat(in_run), in_run.output
    described = invoke("predict", lone, image, "-f", "json", "--spec", tmp_path / "spec.yaml")
    assert _top(described) == pytest.approx(own) and "assumed" not in flat(described)
    # its export's record, made in the run and copied with it, says the run's factor
    assert invoke("export", tmp_path / "run", "-f", "onnx").exit_code == 0
    for name in ("model.onnx", "model.onnx.json"):
        shutil.copy(tmp_path / "run" / "export" / name, lone.parent / name)
    for runtime in ("keras", "onnx"):
        recorded = invoke("predict", lone, image, "-f", "json", "-r", runtime)
        assert _top(recorded) == pytest.approx(own, abs=1e-5) and "assumed" not in flat(recorded)

    # exported alone, the record's factor is assumed, and the export says so; with --spec the
    # record keeps the spec's factor and class names
    for name in ("model.onnx", "model.onnx.json"):
        (lone.parent / name).unlink()
    exported = invoke("export", lone, "-f", "onnx")
    assert exported.exit_code == 0, exported.output
    assert (
        "note: the record says to multiply a file's pixels by 1/255, assumed: model.keras comes with no "
        "spec (a run folder's, or --spec) to say what its training did, nor a rescaling layer; --spec "
        "SPEC records the spec's data.rescale" in flat(exported)
    )
    assert _top(invoke("predict", lone, image, "-f", "json", "-r", "onnx")) != pytest.approx(own, abs=1e-5)
    described = invoke("export", lone, "-f", "onnx", "--spec", tmp_path / "spec.yaml")
    assert described.exit_code == 0 and "assumed" not in flat(described), described.output
    record = json.loads((lone.parent / "model.onnx.json").read_text("utf-8"))
    assert record["input"]["rescale_integer"] == pytest.approx(0.01)
    assert _top(invoke("predict", lone, image, "-f", "json", "-r", "onnx")) == pytest.approx(own, abs=1e-5)


@pytest.mark.slow
def test_export_of_a_model_file_alone_keeps_the_names_its_spec_fixes(tmp_path):
    """export --spec: the record of a model file alone has the spec's class names (it had
    0, 1, 2), which predict of the file or of the exported file alone shows."""
    import keras

    inputs = keras.Input((8, 8, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(2, 3, padding="same")(inputs))
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(pooled))
    model.save(tmp_path / "m.keras")
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        HEAD.replace("[16, 16, 3]", "[8, 8, 3]").replace("filters: 4", "filters: 2")
        + "  - dense: {units: 3, activation: softmax}\ndata: {source: shapes}\n",
        encoding="utf-8",
    )
    result = invoke("export", tmp_path / "m.keras", "-f", "onnx", "--spec", spec)
    assert result.exit_code == 0, result.output
    import json

    record = json.loads((tmp_path / "m.onnx.json").read_text("utf-8"))
    assert record["output"]["classes"] == SHAPES
    image = tmp_path / "a.png"
    Image.fromarray(np.full((8, 8, 3), 200, dtype="uint8")).save(image)
    for target in ("m.keras", "m.onnx"):
        answer = json.loads(invoke("predict", tmp_path / target, image, "-f", "json").stdout)
        assert sorted(t["class"] for t in answer["predictions"][0]["top"]) == sorted(SHAPES)
