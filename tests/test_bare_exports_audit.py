"""A ``.keras`` file outside its run folder (no lock.json) is read by ``export``, ``visualize``
and :meth:`~cnnspec.reporting.run.Run.output_kind` as ``predict`` and ``evaluate`` read it:
each output's task from its shape, activation and saved loss
(:func:`~cnnspec.reporting.run.model_tasks`), never from the model's last layer alone.

- ``export``: the record of a model that is not a single classifier lists its ``outputs`` as a
  run's record does, so ``predict -r onnx`` answers per task as ``-r keras`` does; a model
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
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cnnspec.cli.app import app
from tests.test_bare_tasks_audit import SHAPE, _save, bare_models

pytestmark = pytest.mark.slow


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


def test_predict_bare_multi_output_model_through_an_export_is_refused_as_a_runs(
    models: dict[str, Path], tmp_path: Path
) -> None:
    # an export serves one output: its record now says there are several, so predict answers
    # as for a run (refused for an explicit runtime, Keras under auto with a note); before,
    # the record named no tasks and the refusal asked for a record that says them
    result = _predict(models, "multi", "onnx", tmp_path)
    assert result.exit_code == 2, result.output
    assert "expected a single-output model for --runtime onnx" in result.output
    result = _predict(models, "multi", "auto", tmp_path / "auto")
    assert result.exit_code == 0, result.output
    assert "skipped onnx: the model has several outputs" in result.output


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
    from cnnspec.reporting.run import OutputKind, locate
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
