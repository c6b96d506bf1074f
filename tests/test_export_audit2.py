"""The export audit's second round: the run lock and the exported model's hash, NaN-aware
verification, predict's JSON with non-finite answers, the quantized export's decision
agreement per task, evaluate's note for task exports, the benchmark's converter failures.

Most are TensorFlow-free (the comparison functions on NumPy arrays, the CLI with its heavy
parts replaced); the two that export a real model are ``slow`` and use a tiny untrained one.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from cnnspec.cli.app import app
from cnnspec.export.exporter import ExportFailed
from cnnspec.export.verification import (
    Decision,
    ExportMismatch,
    agreement_basis,
    compare,
    decision_agreement,
    max_difference,
    output_decisions,
)


def _flat(text: str) -> str:
    """Output with Rich's line wrapping undone."""
    return " ".join(text.split())


# -- 2: NaN-aware verification ------------------------------------------------------------------


def test_an_all_nan_export_fails_verification() -> None:
    want = np.full((8, 10), 0.1, "float32")
    with pytest.raises(ExportMismatch, match="80 of 80 value"):
        compare([want], [np.full((8, 10), np.nan, "float32")])


def test_one_nan_does_not_hide_a_real_gap() -> None:
    want = np.full((8, 10), 0.1, "float32")
    got = want.copy()
    got[0, 0], got[1, 1] = np.nan, 5.0
    with pytest.raises(ExportMismatch, match=r"1 of 80 value.*\(0, 0\)"):
        compare([want], [got])
    got[0, 0] = 0.1  # without the NaN the gap is measured
    assert max_difference([want], [got]) == pytest.approx(4.9)


def test_non_finite_values_alike_in_both_are_equal_and_an_inf_mismatch_is_not() -> None:
    want = np.array([[np.nan, np.inf, 0.5]], "float32")
    assert max_difference([want], [np.array([[np.nan, np.inf, 0.25]], "float32")]) == pytest.approx(0.25)
    with pytest.raises(ExportMismatch):
        max_difference([want], [np.array([[np.nan, -np.inf, 0.5]], "float32")])
    with pytest.raises(ExportMismatch):  # a NaN in Keras only
        max_difference([want], [np.array([[0.0, np.inf, 0.5]], "float32")])


# -- 4: decision agreement per task -------------------------------------------------------------


def test_a_segmentation_agrees_per_pixel() -> None:
    want = np.zeros((8, 16, 16, 4), "float32")
    want[..., 0] = 1
    got = np.zeros_like(want)
    got[..., 1] = 1
    got[:4, ..., :] = want[:4]  # half the images' pixels the same
    assert compare([want], [got], [Decision("argmax")])[1] == pytest.approx(0.5)
    assert compare([want], [got])[1] == pytest.approx(0.5)  # (the default: argmax for any rank)


def test_binary_and_multilabel_outputs_agree_per_thresholded_unit() -> None:
    want = np.full((8, 1), 0.9, "float32")
    assert decision_agreement([want], [np.full((8, 1), 0.1, "float32")], [Decision("threshold", 0.5)]) == 0.0
    labels = np.array([[0.9, 0.2, 0.6], [0.1, 0.8, 0.3]], "float32")
    moved = np.array([[0.9, 0.7, 0.6], [0.1, 0.8, 0.3]], "float32")  # one label of six flips
    assert decision_agreement([labels], [moved], [Decision("threshold", 0.5)]) == pytest.approx(5 / 6)
    logits = np.array([[2.0], [-1.0]], "float32")  # a logits output: its threshold is 0
    assert decision_agreement([logits], [-logits], [Decision("threshold", 0.0)]) == 0.0


def test_a_regression_makes_no_decision() -> None:
    want = np.full((8, 3), 2.0, "float32")
    diff, agreement = compare([want], [want + 0.01], [None])
    assert diff == pytest.approx(0.01) and agreement is None
    assert agreement_basis([None]) is None


def test_several_outputs_report_the_lowest_agreement() -> None:
    first = np.eye(4, dtype="float32")
    second = np.full((4, 2), 0.9, "float32")
    agreement = decision_agreement(
        [first, second, second],
        [first, np.full((4, 2), 0.1, "float32"), second],
        [Decision("argmax"), Decision("threshold", 0.5), None],
    )
    assert agreement == 0.0


def _model(*outputs: tuple[int, ...]) -> Any:
    """A stand-in for a Keras model: only its outputs' shapes are read."""
    return SimpleNamespace(outputs=[SimpleNamespace(shape=(None, *shape)) for shape in outputs])


def test_the_decisions_come_from_the_records_tasks() -> None:
    meta = {
        "output": {"binary": False, "from_logits": False},
        "outputs": [
            {"name": "seg", "task": "segmentation", "shape": [8, 8, 3]},
            {"name": "tags", "task": "multilabel", "shape": [5], "threshold": 0.3},
            {"name": "mask", "task": "segmentation", "shape": [8, 8, 1], "threshold": 0.0},
            {"name": "age", "task": "regression", "shape": [1]},
        ],
    }
    decisions = output_decisions(meta, _model((8, 8, 3), (5,), (8, 8, 1), (1,)))
    assert decisions == [
        Decision("argmax"),
        Decision("threshold", 0.3),
        Decision("threshold", 0.0),
        None,
    ]
    assert "argmax" in (agreement_basis(decisions) or "") and "threshold 0.3" in (
        agreement_basis(decisions) or ""
    )


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ({"binary": True, "from_logits": False}, Decision("threshold", 0.5)),
        ({"binary": True, "from_logits": True}, Decision("threshold", 0.0)),
        ({"binary": False, "from_logits": True}, Decision("argmax")),
    ],
)
def test_a_single_classifiers_decision(output: dict[str, bool], expected: Decision) -> None:
    assert output_decisions({"output": output}, _model((1,))) == [expected]


# -- 1: the run lock; 6: the converter's failure in the benchmark -------------------------------


def test_an_export_into_a_run_another_process_holds_is_refused(tmp_path: Path) -> None:
    from cnnspec.training.runlock import acquire

    run = tmp_path / "run"
    run.mkdir()
    (run / "lock.json").write_text("{}", encoding="utf-8")
    (run / "model.keras").write_bytes(b"not read: the lock is refused first")
    with acquire(run, ["cnnspec", "train", "--resume", str(run)]):
        busy = CliRunner().invoke(app, ["export", str(run), "-f", "onnx"])
    assert busy.exit_code == 2, busy.output
    assert f"in use by process {os.getpid()}" in _flat(busy.output)
    assert "-o PATH" in _flat(busy.output)
    assert not (run / "export").exists()
    # a checkpoint is the run's too: its export's temp files lie in the run, where a --resume
    # removes them as leftovers (an export in flight lost its scratch folder)
    (run / "checkpoints").mkdir()
    (run / "checkpoints" / "best.keras").write_bytes(b"not read either")
    with acquire(run, ["cnnspec", "train", "--resume", str(run)]):
        checkpoint = CliRunner().invoke(
            app, ["export", str(run / "checkpoints" / "best.keras"), "-f", "onnx"]
        )
    assert checkpoint.exit_code == 2 and f"in use by process {os.getpid()}" in _flat(checkpoint.output)
    assert not (run / "checkpoints" / "export").exists()


def test_the_benchmark_says_a_converter_failed_without_the_temp_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cnnspec.errors import UsageError
    from cnnspec.export import benchmark, exporter

    target = tmp_path / "export" / "model.onnx"
    said = exporter._without_temp_names(f"could not save {tmp_path}/export/.model.onnx.qcg_7yd3.onnx", target)
    assert said == f"could not save {tmp_path}/export/model.onnx"
    saved = exporter._without_temp_names(
        "in .model_saved_model.ab12cd34/new/variables", Path("model_saved_model")
    )
    assert saved == "in model_saved_model/variables"
    now = exporter._without_temp_names("in .model_saved_model.ab12cd34.tmp/new/x", Path("model_saved_model"))
    assert now == "in model_saved_model/x"  # (the scratch folder's name since it ends in .tmp)

    def no_export(run_dir: Path, runtime: str) -> None:
        raise UsageError("there is none")

    def failing(
        run_dir: Path, runtime: str, quantize: str | None = None, temperature: float | None = 1.0
    ) -> None:
        raise ExportFailed(f"the {runtime} converter failed on m.keras (ValueError: op); nothing was written")

    monkeypatch.setattr(benchmark, "require", lambda runtime: None)
    monkeypatch.setattr(benchmark, "find_export", no_export)
    monkeypatch.setattr(exporter, "export_model", failing)
    status = benchmark.ensure_export(tmp_path, "onnx", [])
    assert status == "not timed: the onnx converter failed on m.keras (ValueError: op); nothing was written"


# -- 3: predict's JSON; 5: evaluate's note ------------------------------------------------------


def test_predict_refuses_a_nan_answer_naming_the_input_and_runtime(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cnnspec.cli import predict

    image = tmp_path / "cat.npy"
    np.save(image, np.zeros((8, 8, 1), "float32"))
    answer = [
        {"input": str(image), "notes": [], "top": [{"class": "cat", "index": 0, "probability": float("nan")}]}
    ]
    monkeypatch.setattr(
        predict, "_predict_keras", lambda *args: (answer, ["cat"], tmp_path / "m.keras", [1.0])
    )
    result = CliRunner().invoke(app, ["predict", str(tmp_path), str(image), "-r", "keras", "-f", "json"])
    assert result.exit_code == 2, result.output
    text = _flat(result.output)
    assert "NaN or infinite" in text and "cat.npy" in text and "keras runtime" in text
    assert "retrain" in text


def test_predict_checks_every_figure_of_a_task_answer() -> None:
    from cnnspec.cli.predict import _first_non_finite

    assert _first_non_finite({"outputs": {"age": {"values": [1.0, 2.5]}}}) is None
    assert _first_non_finite({"outputs": {"age": {"values": [1.0, float("inf")]}}}) == "outputs.age.values.1"
    with pytest.raises(ValueError):  # what predict prints is JSON or nothing
        json.dumps({"x": float("nan")}, allow_nan=False)


@pytest.mark.parametrize(("loss", "computed"), [("dice", False), ("sparse_categorical_crossentropy", True)])
def test_evaluating_a_task_export_notes_the_missing_loss_and_metrics(
    monkeypatch: pytest.MonkeyPatch, loss: str, computed: bool
) -> None:
    """An export's task figures come from its outputs; so does its loss where NumPy has Keras'
    (task_loss), else it is null and the note says so; the spec's metric objects are Keras'."""
    from cnnspec.analysis.settings_types import LossConfig
    from cnnspec.analysis.tasks import OutputTask
    from cnnspec.export import runtimes
    from cnnspec.reporting import evaluation

    task = OutputTask("seg", "segmentation", LossConfig(loss), (), (4, 4, 3), "softmax")
    test = SimpleNamespace(
        x=np.zeros((2, 4, 4, 1), "float32"),
        y=np.zeros((2, 4, 4), "int64"),
        settings=SimpleNamespace(batch_size=2, rescale=None),
        config=SimpleNamespace(task_path=True, tasks=[task]),
        notes=[],
    )
    given: dict = {}
    monkeypatch.setattr(evaluation, "load_test_data", lambda run, model, data: test)
    monkeypatch.setattr(
        runtimes, "predict_batches", lambda session, batch, size: np.full((len(batch), 4, 4, 3), 1 / 3)
    )

    def task_evaluation(run, test, outputs, metrics, *rest):
        given.update(metrics)
        return SimpleNamespace(document={"data": {}})

    monkeypatch.setattr(evaluation, "_task_evaluation", task_evaluation)
    record = SimpleNamespace(runtime="onnx", path=Path("model.onnx"), remaining=lambda t: t)
    evaluation.evaluate_export(SimpleNamespace(), record, None)
    (note,) = [note for note in test.notes if "use --runtime keras" in note]
    assert note.startswith("the spec's metrics" if computed else "loss and the spec's metrics"), note
    if computed:  # every pixel 1/3 on each class: the crossentropy is log 3
        assert given == {"loss": pytest.approx(np.log(3.0), rel=1e-6)}
    else:
        assert given == {}


# -- slow: a real (tiny, untrained) model --------------------------------------------------------


def _tiny_model(path: Path, *, nan: bool = False) -> Path:
    """A tiny softmax classifier saved at ``path`` (``nan``: its dense weights are NaN, as a
    diverged training leaves them)."""
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(2, 3),
            keras.layers.Flatten(),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    if nan:
        dense = model.layers[-1]
        dense.set_weights([np.full(w.shape, np.nan, "float32") for w in dense.get_weights()])
    model.save(str(path))
    return path


@pytest.mark.slow
def test_a_model_whose_keras_outputs_are_nan_is_not_exported(tmp_path: Path) -> None:
    model = _tiny_model(tmp_path / "broken.keras", nan=True)
    result = CliRunner().invoke(app, ["export", str(model), "-f", "tflite"])
    assert result.exit_code == 1, result.output
    text = _flat(result.output)
    assert "itself answers NaN or infinity" in text and "--no-verify" in text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.keras"]  # nothing published


@pytest.mark.slow
def test_a_model_replaced_during_its_export_is_not_published(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cnnspec.export import exporter

    model = _tiny_model(tmp_path / "m.keras")
    convert = exporter.tflite_bytes

    def convert_then_replace(keras_model: Any, *args: Any) -> bytes:
        data = convert(keras_model, *args)
        # as `train --resume` saves: a new file renamed onto model.keras while the export runs
        (tmp_path / "new.keras").write_bytes(model.read_bytes() + b"another model")
        os.replace(tmp_path / "new.keras", model)
        return data

    monkeypatch.setattr(exporter, "tflite_bytes", convert_then_replace)
    result = CliRunner().invoke(app, ["export", str(model), "-f", "tflite"])
    assert result.exit_code == 2, result.output
    assert "changed while it was exported" in _flat(result.output)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.keras"]  # no export, no record


@pytest.mark.slow
def test_an_onnx_export_of_gelu_says_why_the_converter_fails(tmp_path):
    """Keras computes gelu with erfc, which the converter passes on and ONNX has no operator for:
    the failure said only "InvalidGraph … Erfc", with no way out."""
    import keras

    inputs = keras.Input((8, 8, 1))
    hidden = keras.layers.Conv2D(4, 3, activation="gelu")(inputs)
    outputs = keras.layers.Dense(3, activation="softmax")(keras.layers.Flatten()(hidden))
    keras.Model(inputs, outputs).save(tmp_path / "gelu.keras")
    result = CliRunner().invoke(
        app, ["export", str(tmp_path / "gelu.keras"), "-f", "onnx", "-o", str(tmp_path / "g.onnx")]
    )
    text = _flat(result.output)
    assert result.exit_code == 1 and "the model's gelu" in text and "-f tflite exports it" in text, text
    assert not (tmp_path / "g.onnx").exists()
