"""A ``.keras`` file outside its run folder (no lock.json, no export record) is read by
``predict`` and ``evaluate`` as the task rules read a spec's outputs (a map of the input's size
is a segmentation, a regression loss saved in the file a regression, several outputs each
their own), never as a classifier by default; an output no rule reads is refused with a hint
to pass ``--spec``. ``evaluate --data`` whose masks do not fit the trained model blames
``--data``, not the model's last layer.

The models are built (untrained) with the Keras API and saved compiled, as ``cnnspec train``
saves them: built once for the module.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from cnnspec.cli.app import app

# (one worker runs the module, so its module fixtures are made once, not once per xdist worker)
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("bare_tasks_models")]

SHAPE = (16, 16, 3)


def _save(model: Any, loss: Any, path: Path) -> Path:
    """``model`` compiled with ``loss`` (recorded in the file, as training records it) at ``path``."""
    model.compile(optimizer="adam", loss=loss)
    model.save(path)
    return path


def bare_models(folder: Path) -> dict[str, Path]:
    """Small untrained bare model files by kind (``seg``, ``reg``, ``multi``, ``half``) and an
    image ``im0.png``, saved in ``folder`` (tests/test_bare_exports_audit.py builds on them)."""
    import keras
    from PIL import Image

    keras.utils.set_random_seed(0)
    inputs = keras.Input(SHAPE)
    features = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inputs)
    pooled = keras.layers.GlobalAveragePooling2D()(features)
    files = {
        "seg": _save(
            keras.Model(inputs, keras.layers.Conv2D(4, 1, activation="softmax")(features)),
            "sparse_categorical_crossentropy",
            folder / "seg.keras",
        ),
        "reg": _save(keras.Model(inputs, keras.layers.Dense(1)(pooled)), "mae", folder / "reg.keras"),
        "multi": _save(
            keras.Model(
                inputs,
                [
                    keras.layers.Conv2D(4, 1, activation="softmax", name="mask")(features),
                    keras.layers.Dense(3, activation="sigmoid", name="labels")(pooled),
                    keras.layers.Dense(1, name="count")(pooled),
                ],
            ),
            {"mask": "sparse_categorical_crossentropy", "labels": "binary_crossentropy", "count": "mse"},
            folder / "multi.keras",
        ),
        # an 8×8 map of a 16×16 input: no task's output (not the input's size, not a vector)
        "half": _save(
            keras.Model(
                inputs,
                keras.layers.Conv2D(4, 1, activation="softmax")(keras.layers.MaxPooling2D()(features)),
            ),
            "sparse_categorical_crossentropy",
            folder / "half.keras",
        ),
    }
    image = folder / "im0.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, SHAPE, dtype="uint8")).save(image)
    files["image"] = image
    return files


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The bare model files by kind, an image and two mask ``.npz`` files (classes 0–3, and
    values up to 8), in one folder."""
    folder = tmp_path_factory.mktemp("bare")
    files = bare_models(folder)
    rng = np.random.default_rng(0)
    rng.integers(0, 256, SHAPE, dtype="uint8")  # (the image's draw: the arrays below as before)
    x = rng.integers(0, 256, (5, *SHAPE), dtype="uint8")
    masks = rng.integers(0, 4, (5, 16, 16)).astype("int64")
    for name, test_masks in (("ok", masks), ("big", np.where(masks == 3, 8, masks))):
        files[name] = folder / f"{name}.npz"
        np.savez(files[name], x_train=x, y_train=masks, x_test=x, y_test=test_masks)
    return files


def _predict(models: dict[str, Path], kind: str, out: Path) -> Any:
    """``predict MODEL im0.png -f json -r keras -o out`` (the result; its JSON on success)."""
    result = CliRunner().invoke(
        app,
        ["predict", str(models[kind]), str(models["image"]), "-f", "json", "-r", "keras", "-o", str(out)],
    )
    return result


def test_predict_bare_segmentation_model_writes_a_mask(models: dict[str, Path], tmp_path: Path) -> None:
    # before: the [16, 16, 4] map flattened into 1024 "classes" (top-k like `1019 69.16%`)
    result = _predict(models, "seg", tmp_path / "masks")
    assert result.exit_code == 0, result.output
    entry = json.loads(result.stdout)["predictions"][0]
    (output,) = entry["outputs"].values()
    assert output["task"] == "segmentation"
    assert Path(output["mask"]).is_file() and output["mask_size"] == [16, 16]
    assert "top" not in entry


def test_predict_bare_regression_model_gives_values(models: dict[str, Path], tmp_path: Path) -> None:
    # before: one linear unit read as a binary classifier on logits (`1 51.07% / 0 48.93%`);
    # the file's saved mae loss says it is a regression, as `loss: mae` says it in a spec
    result = _predict(models, "reg", tmp_path)
    assert result.exit_code == 0, result.output
    (output,) = json.loads(result.stdout)["predictions"][0]["outputs"].values()
    assert output["task"] == "regression" and len(output["values"]) == 1


def test_predict_bare_multi_output_model_answers_per_output(models: dict[str, Path], tmp_path: Path) -> None:
    # before: only the first output, flattened, as classes
    result = _predict(models, "multi", tmp_path / "masks")
    assert result.exit_code == 0, result.output
    outputs = json.loads(result.stdout)["predictions"][0]["outputs"]
    assert {name: entry["task"] for name, entry in outputs.items()} == {
        "mask": "segmentation",
        "labels": "multilabel",
        "count": "regression",
    }
    assert set(outputs["labels"]["probabilities"]) == {"0", "1", "2"}


def test_predict_bare_model_of_no_task_is_refused_with_spec_hint(
    models: dict[str, Path], tmp_path: Path
) -> None:
    # before: exit 0 with made-up probabilities over the flattened 8×8×4 map
    result = _predict(models, "half", tmp_path)
    assert result.exit_code == 2, result.output
    assert "--spec" in result.output and "[8, 8, 4]" in result.output


def test_an_uncompiled_bare_linear_unit_is_refused_and_its_export_says_so(
    models: dict[str, Path], tmp_path: Path
) -> None:
    """One linear unit saved without a loss: a binary classifier's logit or a regression's
    value. predict answered it as a binary classifier (`0 63.59% / 1 36.41%`), and its export's
    record said `task: classification` beside an agreement basis saying no spec told its task.
    predict and evaluate refuse it asking for --spec; its export's record says the task is
    unknown (no classes), and the exported file served alone is refused too."""
    pytest.importorskip("tf2onnx")
    import keras

    pixels = keras.Input(SHAPE)
    pooled = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3, activation="relu")(pixels))
    linear = tmp_path / "lin1.keras"
    keras.Model(pixels, keras.layers.Dense(1)(pooled)).save(linear)  # (uncompiled: no loss)
    runner = CliRunner()
    commands = (
        ["predict", str(linear), str(models["image"]), "-o", str(tmp_path / "p")],
        ["evaluate", str(linear), "--data", str(models["ok"]), "-o", str(tmp_path / "e")],
    )
    for command in commands:
        result = runner.invoke(app, command)
        assert result.exit_code == 2, result.output
        said = " ".join(result.output.split())
        assert "cannot tell the task of the model's output" in said, said
        assert "may be a binary classifier's logit or a regression's value" in said
        assert "--spec SPEC" in said and "Traceback" not in said
    result = runner.invoke(app, ["export", str(linear), "-f", "onnx", "--json"])
    assert result.exit_code == 0, result.output
    assert "no spec says its task" in json.loads(result.stdout)["agreement_basis"]
    record = json.loads((tmp_path / "lin1.onnx.json").read_text())
    assert "task" not in record["output"] and record["output"]["classes"] == []
    assert "a regression's value" in record["output"]["task_unknown"]
    result = runner.invoke(app, ["predict", str(tmp_path / "lin1.onnx"), str(models["image"])])
    assert result.exit_code == 2, result.output
    assert "cannot serve the exported file" in " ".join(result.output.split())
    assert not (tmp_path / "predictions.csv").exists()


def test_evaluate_bare_segmentation_model_scores_masks(models: dict[str, Path], tmp_path: Path) -> None:
    # before: "expected class targets for the classification output dense_1" (a stand-in
    # classifier with a layer the model does not have)
    result = CliRunner().invoke(
        app, ["evaluate", str(models["seg"]), "--data", str(models["ok"]), "-o", str(tmp_path), "-f", "json"]
    )
    assert result.exit_code == 0, result.output
    assert "mean_iou" in (tmp_path / "evaluation.json").read_text(encoding="utf-8")


def test_evaluate_data_with_masks_beyond_the_model_blames_data(
    models: dict[str, Path], tmp_path: Path
) -> None:
    # before: located in the model ("give the last layer 9 filters"): the model is trained,
    # it is --data that does not fit
    result = CliRunner().invoke(
        app, ["evaluate", str(models["seg"]), "--data", str(models["big"]), "-o", str(tmp_path)]
    )
    assert result.exit_code == 2, result.output
    assert "expected --data that fits the trained model" in result.output
    assert "give the last layer" not in result.output


def test_evaluate_data_of_class_folders_for_a_bare_multi_output_model_asks_for_an_npz(
    models: dict[str, Path], tmp_path: Path
) -> None:
    # before: "expected a data source with segmentation targets; directory has class labels
    # only", hinted at `data.source: shapes`, a spec key the command line has no place for
    from PIL import Image

    (tmp_path / "pics" / "a").mkdir(parents=True)
    Image.open(models["image"]).save(tmp_path / "pics" / "a" / "a0.png")
    result = CliRunner().invoke(app, ["evaluate", str(models["multi"]), "--data", str(tmp_path / "pics")])
    assert result.exit_code == 2, result.output
    assert (
        "expected --data to be an .npz file of test images and targets for the segmentation output "
        "mask; received the folder pics, which holds class labels only" in result.output
    )
    assert "as y_test_<output id> for each output (segmentation: integer masks (n, H, W))" in result.output


# -- Keras output names that are no spec ids; dict outputs; a nested model as the output -------
@pytest.fixture(scope="module")
def odd_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Bare model files whose outputs the stand-in spec once misread: output names that are no
    spec ids (``my.out-1``, ``input``, one layer output listed twice), dict outputs compiled
    with a dict loss (keyed by the dict's keys, not the layers' names), a nested
    ``Sequential`` ending in softmax as the output; an image and an ``.npz`` for the first."""
    import keras
    from PIL import Image

    folder = tmp_path_factory.mktemp("odd")
    keras.utils.set_random_seed(0)
    inputs = keras.Input(SHAPE)
    features = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inputs)
    pooled = keras.layers.GlobalAveragePooling2D()(features)
    count = keras.layers.Dense(1, name="count")(pooled)
    nested = keras.Sequential(
        [keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(3, activation="softmax")], name="head"
    )
    files = {
        "odd": _save(
            keras.Model(
                inputs,
                [
                    keras.layers.Conv2D(4, 1, activation="softmax", name="my.out-1")(features),
                    keras.layers.Dense(1, name="input")(pooled),
                ],
            ),
            ["sparse_categorical_crossentropy", "mse"],
            folder / "odd.keras",
        ),
        "twice": _save(keras.Model(inputs, [count, count]), ["mse", "mse"], folder / "twice.keras"),
        "dict": _save(
            keras.Model(
                inputs,
                {
                    "zeta": keras.layers.Dense(2, activation="softmax", name="zz")(pooled),
                    "alpha": keras.layers.Dense(1, name="aa")(pooled),
                },
            ),
            {"zeta": "sparse_categorical_crossentropy", "alpha": "mse"},
            folder / "dict.keras",
        ),
        "nested": _save(
            keras.Model(inputs, nested(features)), "sparse_categorical_crossentropy", folder / "nested.keras"
        ),
    }
    rng = np.random.default_rng(0)
    image = folder / "im0.png"
    Image.fromarray(rng.integers(0, 256, SHAPE, dtype="uint8")).save(image)
    files["image"] = image
    x = rng.integers(0, 256, (6, *SHAPE), dtype="uint8")
    masks = rng.integers(0, 4, (6, 16, 16)).astype("int64")
    values = rng.random((6, 1)).astype("float32")
    # the outputs' targets by the stand-in's ids: `my.out-1` and `input` are no ids (out_0, out_1)
    files["odd_data"] = folder / "odd.npz"
    np.savez(
        files["odd_data"],
        x_train=x,
        y_train_out_0=masks,
        y_train_out_1=values,
        x_test=x,
        y_test_out_0=masks,
        y_test_out_1=values,
    )
    labels = rng.integers(0, 2, 6).astype("int64")
    files["dict_data"] = folder / "dict.npz"  # targets by the outputs' (layers') names
    np.savez(
        files["dict_data"],
        x_train=x,
        y_train_aa=values,
        y_train_zz=labels,
        x_test=x,
        y_test_aa=values,
        y_test_zz=labels,
    )
    return files


def _tasks_of(path: Path) -> dict[str, tuple[str, bool]]:
    """Each output's (task, from_logits) of the bare model file ``path``, by output name."""
    from cnnspec.reporting.run import load_model
    from cnnspec.reporting.stand_in import model_tasks

    return {out.name: (out.task, out.loss.from_logits) for out in model_tasks(load_model(path), "m", path)}


def test_predict_bare_model_with_output_names_that_are_no_ids(
    odd_models: dict[str, Path], tmp_path: Path
) -> None:
    # before: "expected an identifier" (my.out-1) and "the id 'input' is reserved", exit 2:
    # the stand-in spec used the Keras output names as ids
    result = _predict(odd_models, "odd", tmp_path / "masks")
    assert result.exit_code == 0, result.output
    outputs = json.loads(result.stdout)["predictions"][0]["outputs"]
    assert {name: entry["task"] for name, entry in outputs.items()} == {
        "my.out-1": "segmentation",
        "input": "regression",
    }


def test_predict_bare_model_with_one_output_twice(odd_models: dict[str, Path], tmp_path: Path) -> None:
    # before: "duplicate id 'count'", exit 2 (keras.Model(i, [d, d]) names both outputs count);
    # then one answer for both (both stand-in ids named count): the second keeps its id, out_1
    result = _predict(odd_models, "twice", tmp_path)
    assert result.exit_code == 0, result.output
    outputs = json.loads(result.stdout)["predictions"][0]["outputs"]
    assert {name: entry["task"] for name, entry in outputs.items()} == {
        "count": "regression",
        "out_1": "regression",
    }


def test_evaluate_bare_model_with_output_names_that_are_no_ids(
    odd_models: dict[str, Path], tmp_path: Path
) -> None:
    # before: refused as predict refused it; the report names the model's outputs, not the ids
    result = CliRunner().invoke(
        app,
        [
            "evaluate",
            str(odd_models["odd"]),
            "--data",
            str(odd_models["odd_data"]),
            "-o",
            str(tmp_path),
            "-f",
            "json",
        ],
    )
    assert result.exit_code == 0, result.output
    document = json.loads((tmp_path / "evaluation.json").read_text(encoding="utf-8"))
    assert set(document["outputs"]) == {"my.out-1", "input"}


def test_bare_dict_outputs_read_their_dict_loss(odd_models: dict[str, Path]) -> None:
    # before: aa (Dense(1), compiled with mse under the dict key `alpha`) read as a binary
    # classifier on logits: the saved loss is keyed by the dict's keys, not the layers' names
    tasks = _tasks_of(odd_models["dict"])
    assert {name: task for name, (task, _) in tasks.items()} == {"aa": "regression", "zz": "classification"}


def test_bare_nested_model_output_keeps_its_softmax(odd_models: dict[str, Path]) -> None:
    # before: ("classification", True): the nested Sequential has no `activation`, so its
    # softmax was read as logits and applied a second time
    assert _tasks_of(odd_models["nested"]) == {"head": ("classification", False)}


def test_predict_and_evaluate_a_bare_model_with_dict_outputs(
    odd_models: dict[str, Path], tmp_path: Path
) -> None:
    """It answers by its dict keys (alpha, zeta), its outputs are named by their layers (aa, zz):
    predict ended in an internal error (KeyError 'aa'), evaluate too (the loss keyed by 'aa')."""
    result = _predict(odd_models, "dict", tmp_path / "masks")
    assert result.exit_code == 0, result.output
    outputs = json.loads(result.stdout)["predictions"][0]["outputs"]
    assert {name: entry["task"] for name, entry in outputs.items()} == {
        "aa": "regression",
        "zz": "classification",
    }
    result = CliRunner().invoke(
        app,
        [
            "evaluate",
            str(odd_models["dict"]),
            "--data",
            str(odd_models["dict_data"]),
            "-o",
            str(tmp_path / "ev"),
        ],
    )
    assert result.exit_code == 0, result.output
    document = json.loads((tmp_path / "ev" / "evaluation.json").read_text(encoding="utf-8"))
    assert set(document["outputs"]) == {"aa", "zz"}
