"""A ``.keras`` file outside its run folder (no lock.json) is read by ``export``, ``visualize``
and :meth:`~cnnspec.reporting.run.Run.output_kind` as ``predict`` and ``evaluate`` read it:
each output's task from its shape, activation and saved loss
(:func:`~cnnspec.reporting.stand_in.model_tasks`), never from the model's last layer alone.

- ``export``: the record of a model that is not a single classifier lists its ``outputs`` as a
  run's record does (each with the file's name of it), so ``predict -r onnx`` answers per task
  as ``-r keras`` does, and ``evaluate`` scores every output of a model of several; a model
  whose tasks cannot be told says so in its record (``task_unknown``, no classes) and an
  explicit runtime is refused for it.
- ``Run.output_kind``: the first output's reading (a ``Softmax`` layer gives probabilities; a
  multi-output model's last layer is another output).
- ``visualize confusion``: a bare regression model has no confusion matrix to make, and is
  told so instead of being sent to ``evaluate``.

The models are built (untrained) with the Keras API and saved compiled, as ``cnnspec train``
saves them: built and exported once for the module.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cnnspec.cli.app import app
from tests.test_bare_tasks_audit import SHAPE, _save, bare_models

# (one worker runs the module, so the models are built and exported once, not once per xdist worker)
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("bare_exports_models")]


def _invoke(*args: Any) -> Any:
    """The CLI run on ``args`` (paths as text)."""
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The bare model files by kind and an image, in one folder; each model but ``softmax``
    exported to ONNX beside it (``cnnspec export MODEL --format onnx``)."""
    pytest.importorskip("tf2onnx")
    pytest.importorskip("onnxruntime")
    import keras

    folder = tmp_path_factory.mktemp("bare_exports")
    files = bare_models(folder)
    inputs = keras.Input(SHAPE)
    pooled = keras.layers.GlobalAveragePooling2D()(inputs)
    # a classifier whose probabilities come from a Softmax layer (no "activation" key)
    files["softmax"] = _save(
        keras.Model(inputs, keras.layers.Softmax()(keras.layers.Dense(3)(pooled))),
        "sparse_categorical_crossentropy",
        folder / "softmax.keras",
    )
    for kind in ("seg", "reg", "multi", "half"):
        result = _invoke("export", files[kind], "--format", "onnx")
        assert result.exit_code == 0, (kind, result.output)
    return files


def _record(models: dict[str, Path], kind: str) -> dict[str, Any]:
    """The ONNX export record of the model ``kind``."""
    return dict(json.loads(models[kind].with_suffix(".onnx.json").read_text(encoding="utf-8")))


def _predict(models: dict[str, Path], kind: str, runtime: str, out: Path) -> Any:
    """``predict MODEL im0.png -f json -r RUNTIME -o out``."""
    return _invoke("predict", models[kind], models["image"], "-f", "json", "-r", runtime, "-o", out)


def _answers(result: Any) -> list[Any]:
    """A prediction's answers without where they came from (runtime, export, mask paths), the
    values rounded below the verified export's tolerance (1e-4)."""

    def rounded(value: Any) -> Any:
        if isinstance(value, float):
            return round(value, 4)
        if isinstance(value, dict):
            return {k: rounded(v) for k, v in value.items() if k != "mask"}
        if isinstance(value, list):
            return [rounded(v) for v in value]
        return value

    document = json.loads(result.stdout)  # (the document: notes go to stderr)
    return [document["classes"], rounded(document["predictions"])]


def test_export_record_of_a_bare_multi_output_model_lists_its_outputs(models: dict[str, Path]) -> None:
    # before: no outputs, and "output" read from the last layer (count: linear) as logits over
    # the first output's 4 mask classes
    record = _record(models, "multi")
    tasks = {entry["name"]: entry["task"] for entry in record.get("outputs") or []}
    assert tasks == {"mask": "segmentation", "labels": "multilabel", "count": "regression"}
    assert record["output"]["from_logits"] is False  # the mask's softmax: probabilities


def test_predict_bare_segmentation_and_regression_through_onnx_answer_as_keras(
    models: dict[str, Path], tmp_path: Path
) -> None:
    # before: refused ("its record reads the first output as a classifier"), the record
    # naming no task
    for kind, task in (("seg", "segmentation"), ("reg", "regression")):
        onnx = _predict(models, kind, "onnx", tmp_path / f"{kind}_onnx")
        keras = _predict(models, kind, "keras", tmp_path / f"{kind}_keras")
        assert onnx.exit_code == 0 and keras.exit_code == 0, (kind, onnx.output, keras.output)
        assert json.loads(onnx.stdout)["runtime"] == "onnx"
        assert _answers(onnx) == _answers(keras), kind
        (output,) = json.loads(onnx.stdout)["predictions"][0]["outputs"].values()
        if task == "regression":  # (-o names where masks go: said to go unused)
            assert "this model writes no mask files" in " ".join(onnx.stderr.split())
        assert output["task"] == task
    masks = [next((tmp_path / f"seg_{runtime}").glob("*.png")).read_bytes() for runtime in ("onnx", "keras")]
    assert masks[0] == masks[1]


def _numbers_apart(text: str) -> tuple[str, list[float]]:
    """``text`` with each number replaced by ``#``, and the numbers: a layout compared exactly,
    its figures within the verified export's tolerance."""
    pattern = r"-?\d+(?:\.\d+)?(?:e[-+]?\d+)?"
    return re.sub(pattern, "#", text), [float(n) for n in re.findall(pattern, text)]


def _printed(model: Path, image: Path, form: str, runtime: str, out: Path) -> tuple[str, list[float]]:
    """``predict MODEL IMAGE -f FORM -r RUNTIME -o OUT``'s output, apart (:func:`_numbers_apart`)."""
    result = _invoke("predict", model, image, "-f", form, "-r", runtime, "-o", out)
    assert result.exit_code == 0, result.output
    return _numbers_apart(result.stdout.replace(str(out), "OUT"))


def test_a_multi_output_model_is_answered_through_its_export_as_by_keras(
    models: dict[str, Path], tmp_path: Path
) -> None:
    # before: `-r onnx` was refused ("predict serves an exported file of one output only"),
    # `auto` went to Keras, the file alone and `evaluate -r onnx` were refused; now every output
    # is answered through the file, as Keras answers it
    import numpy as np
    import onnxruntime

    record = _record(models, "multi")
    onnx_file = models["multi"].with_suffix(".onnx")
    names = [out.name for out in onnxruntime.InferenceSession(str(onnx_file)).get_outputs()]
    # the record says which of the file's outputs is which model output (the session's order)
    assert [(e["name"], e["file_output"]) for e in record["outputs"]] == list(
        zip(["mask", "labels", "count"], names, strict=True)
    )
    keras = _predict(models, "multi", "keras", tmp_path / "keras")
    assert keras.exit_code == 0, keras.output
    served = tmp_path / "served"  # the file alone, with its record
    served.mkdir()
    for path in (onnx_file, onnx_file.with_name(onnx_file.name + ".json")):
        shutil.copy(path, served / path.name)
    image = models["image"]
    printed = {
        form: _printed(models["multi"], image, form, "keras", tmp_path / form) for form in ("csv", "text")
    }
    for runtime, model in (
        ("onnx", models["multi"]),
        ("auto", models["multi"]),
        ("auto", served / onnx_file.name),
    ):
        out = tmp_path / f"{runtime}-{model.suffix[1:]}"
        got = _invoke("predict", model, image, "-f", "json", "-r", runtime, "-o", out)
        assert got.exit_code == 0, (runtime, model, got.output)
        assert json.loads(got.stdout)["runtime"] == "onnx", got.output
        assert _answers(got) == _answers(keras), (runtime, model)
        assert list(json.loads(got.stdout)["predictions"][0]["outputs"]) == ["mask", "labels", "count"]
        masks = sorted(p.name for p in out.glob("*.png"))
        assert masks == ["im0_mask_mask.png"] == sorted(p.name for p in (tmp_path / "keras").glob("*.png"))
        assert (out / masks[0]).read_bytes() == (tmp_path / "keras" / masks[0]).read_bytes()
        for form in ("csv", "text") if model.suffix == ".onnx" else ():  # Keras' layout and figures
            layout, figures = _printed(model, image, form, runtime, tmp_path / f"{form}-{out.name}")
            want_layout, want = printed[form]
            assert layout == want_layout and figures == pytest.approx(want, abs=1e-3), (form, layout)
    # evaluate: every output scored from the file, as Keras scores it
    rng = np.random.default_rng(2)
    data = tmp_path / "multi.npz"
    x = rng.integers(0, 256, (12, *SHAPE), dtype="uint8")
    np.savez(
        data, x_train=x, x_test=x, y_train_mask=rng.integers(0, 4, (12, 16, 16)),
        y_test_mask=rng.integers(0, 4, (12, 16, 16)), y_train_labels=rng.integers(0, 2, (12, 3)),
        y_test_labels=rng.integers(0, 2, (12, 3)), y_train_count=rng.random(12), y_test_count=rng.random(12),
    )  # fmt: skip
    documents = {}
    for runtime, model in (
        ("keras", models["multi"]),
        ("onnx", models["multi"]),
        ("auto", served / onnx_file.name),
    ):
        out = tmp_path / f"evaluate-{runtime}"
        result = _invoke("evaluate", model, "--data", data, "-r", runtime, "-o", out, "-f", "json")
        assert result.exit_code == 0, (runtime, result.output)
        documents[runtime] = json.loads(result.stdout)
    keras_document = documents.pop("keras")
    for runtime, document in documents.items():
        assert document["runtime"] == "onnx", runtime
        assert list(document["outputs"]) == list(keras_document["outputs"]) == ["mask", "labels", "count"]
        assert flat_figures(document["outputs"]) == pytest.approx(
            flat_figures(keras_document["outputs"]), abs=1e-4
        )
        for key in ("loss", "mask_loss", "labels_loss", "count_loss"):
            assert document["metrics"][key] == pytest.approx(keras_document["metrics"][key], abs=1e-4), key


def flat_figures(value: Any, where: str = "") -> dict[str, Any]:
    """Every figure of an evaluation's ``outputs``, by its key path (numbers, names, lists)."""
    if isinstance(value, dict):
        found: dict[str, Any] = {}
        for key, item in value.items():
            found.update(flat_figures(item, f"{where}.{key}"))
        return found
    if isinstance(value, list):
        found = {}
        for index, item in enumerate(value):
            found.update(flat_figures(item, f"{where}[{index}]"))
        return found
    return {where: value}


def test_export_record_of_a_bare_model_of_no_task_says_so(models: dict[str, Path], tmp_path: Path) -> None:
    # before: a classifier on probabilities over the map's 4 channels, made up from the last layer
    output = _record(models, "half")["output"]
    assert output["classes"] == [] and "[8, 8, 4]" in output["task_unknown"]
    result = _predict(models, "half", "onnx", tmp_path)
    assert result.exit_code == 2, result.output
    assert "--runtime keras" in result.output or "--spec" in result.output


def test_output_kind_of_a_bare_model_reads_its_first_output(models: dict[str, Path]) -> None:
    # before: the last layer: a Softmax layer has no "activation" key (read as logits, so
    # visualize samples applied softmax twice), and multi.keras's last layer is its count head
    from cnnspec.reporting.model_graph import OutputKind
    from cnnspec.reporting.run import locate
    from cnnspec.training.modelfile import load_model

    for kind in ("softmax", "multi"):
        run = locate(models[kind])
        got = run.output_kind(load_model(models[kind], one_input=False))
        assert got == OutputKind(binary=False, from_logits=False), kind


def test_visualize_confusion_of_a_bare_regression_model_says_it_has_none(
    models: dict[str, Path], tmp_path: Path
) -> None:
    # before: "run `cnnspec evaluate TARGET` first", which writes no confusion matrix for it
    result = _invoke("visualize", models["reg"], "confusion", "--out", tmp_path)
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert "regression" in text and "has none" in text
    assert "run `cnnspec evaluate" not in text
