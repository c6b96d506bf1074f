"""Exports of models that are not a single classifier: `predict` with an export used outside
its run folder answers in the model's task (from the export's record), every runtime names the
classes alike, and `cnnspec benchmark` scores each task by the run's own test figure.

Three tiny runs (multi-label, regression, segmentation; tests/test_task_training.py's, trained
once per session) are copied and exported to ONNX once for the module; the benchmark of a model
of several outputs takes a copy of that file's multi-output run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.test_report_support import ONNX_EXPORTS, flat, invoke
from tests.test_task_training import trained_task_run

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("export_tasks")]

TASKS = ("multilabel", "regression", "segmentation")
#: the benchmark's test figure of each task, and the metrics.json key training wrote it under
FIGURES = {"multilabel": ("macro F1", "test_f1_macro"), "regression": ("MAE", "test_mae"),
           "segmentation": ("mean IoU", "test_mean_iou")}  # fmt: skip
#: the runtime the multi-output run is benchmarked in, which counting its images and scoring its
#: outputs do not depend on: ONNX Runtime where the export extra is installed (its worker imports
#: no TensorFlow: a third of a Keras worker's time, the export included), else Keras
TIMED = "onnx" if ONNX_EXPORTS else "keras"


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """A trained run of each task with a verified ONNX export."""
    pytest.importorskip("tf2onnx")
    pytest.importorskip("onnxruntime")
    found = {}
    for task in TASKS:
        # (trained once per session with tests/test_task_training.py's test of the task)
        run = tmp_path_factory.mktemp(task) / "run"
        shutil.copytree(trained_task_run(tmp_path_factory, task), run)
        exported = invoke("export", run, "--format", "onnx")
        assert exported.exit_code == 0, exported.output
        found[task] = run
    return found


def _moved(run: Path, folder: Path) -> Path:
    """The model and its export copied out of the run folder (no spec, no lock.json)."""
    folder.mkdir()
    for path in (run / "model.keras", *sorted((run / "export").glob("model.onnx*"))):
        shutil.copy(path, folder / path.name)
    return folder / "model.keras"


def _predict(model: Path, inputs: Path, runtime: str, out: Path) -> dict:
    result = invoke("predict", model, inputs, "--runtime", runtime, "-o", out, "-f", "json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.mark.parametrize("task", ["multilabel", "segmentation"])
def test_an_export_outside_its_run_answers_in_the_models_task(runs, tmp_path, task):
    """Exit 0 with wrong answers: the multi-label model read as a 2-class binary classifier,
    the segmentation model as top-k over its flattened map."""
    record = json.loads((runs[task] / "export" / "model.onnx.json").read_text())
    assert record["output"]["binary"] is False  # a multi-label output is no binary classifier
    assert len(record["output"]["classes"]) == 3 and record["outputs"][0]["task"] == task
    inputs = tmp_path / "two.npy"
    np.save(inputs, np.random.default_rng(1).integers(0, 256, size=(2, 8, 8, 1)).astype("uint8"))
    moved = _moved(runs[task], tmp_path / "moved")
    want = _predict(runs[task], inputs, "keras", tmp_path / "want")
    for runtime in ("onnx", "keras"):  # (Keras, outside the run, reads the record beside it too)
        got = _predict(moved, inputs, runtime, tmp_path / runtime)
        assert got["runtime"] == runtime and got["classes"] == want["classes"], runtime
        for mine, theirs in zip(got["predictions"], want["predictions"]):
            ((name, entry),) = mine["outputs"].items()
            expected = theirs["outputs"][name]
            assert entry["task"] == expected["task"] == task, runtime
            if task == "multilabel":
                assert entry["labels"] == expected["labels"] and entry["threshold"] == expected["threshold"]
                assert list(entry["probabilities"]) == list(expected["probabilities"])
                got_p, want_p = entry["probabilities"].values(), expected["probabilities"].values()
                assert list(got_p) == pytest.approx(list(want_p), abs=1e-4), runtime
            else:
                assert entry["pixel_share"] == expected["pixel_share"], runtime
                assert Path(entry["mask"]).read_bytes() == Path(expected["mask"]).read_bytes()


@pytest.mark.parametrize("task", TASKS)
def test_every_runtime_names_a_task_models_classes_alike(runs, tmp_path, task):
    """`classes` was [] through an export and the run's names through Keras."""
    inputs = tmp_path / "one.npy"
    np.save(inputs, np.zeros((8, 8, 1), dtype="uint8"))
    documents = [_predict(runs[task], inputs, runtime, tmp_path / runtime) for runtime in ("keras", "onnx")]
    assert documents[0]["classes"] == documents[1]["classes"] != []


@pytest.mark.parametrize("task", TASKS)
def test_the_benchmark_scores_a_task_model_by_the_runs_own_figure(runs, tmp_path, task):
    """A multi-label run ended in an internal error (KeyError: 'runtime', exit 3); a regression
    run showed "accuracy 0.0000" (the argmax of one unit)."""
    run = tmp_path / "run"
    shutil.copytree(runs[task], run)
    args = ["benchmark", run, "--formats", "onnx", "--batch", "1", "--runs", "3", "--warmup", "0"]
    # The table titles its column alike for every task: the regression's is shown (one timing
    # each, its document read from the benchmark.json it writes), the others print JSON.
    table = task == "regression"
    result = invoke(*args) if table else invoke(*args, "-f", "json")
    assert result.exit_code == 0, result.output
    document = json.loads((run / "benchmark.json").read_text() if table else result.stdout)
    (row,) = document["results"]
    name, key = FIGURES[task]
    assert row["runtime"] == "onnx" and row["status"] == "ok", row
    assert row["metric"] == name and row["accuracy"] is None
    assert row["score"] == pytest.approx(json.loads((run / "metrics.json").read_text())[key], abs=1e-4)
    if table:
        assert name in flat(result) and "accuracy" not in flat(result)


def test_the_benchmark_of_a_multi_output_run_counts_its_test_images(tmp_path_factory, tmp_path):
    """The benchmark counted the test targets' outputs (a dict of 2) as its images: "2 test
    images" for 8. The run is tests/test_task_training.py's of two outputs (a mask and two
    statistics, 8 test images), trained once per session; the benchmark writes into a copy."""
    run = tmp_path / "run"
    shutil.copytree(trained_task_run(tmp_path_factory, "multi"), run)
    # one timing (TIMED's): its table, and its document as written
    args = ["benchmark", run, "--formats", TIMED, "--batch", "1", "--runs", "3", "--warmup", "0"]
    table = invoke(*args)
    assert table.exit_code == 0, table.output
    images = json.loads((run / "metrics.json").read_text())["test_images"]
    assert images == 8 and json.loads((run / "benchmark.json").read_text())["data"]["images"] == images
    assert "8 test images" in flat(table) and "2 test images" not in flat(table)
    # every output is scored, as evaluate scores it (the mask's mean IoU was never shown)
    metrics = json.loads((run / "metrics.json").read_text())["outputs"]
    (row,) = json.loads((run / "benchmark.json").read_text())["results"]
    mask, stats = row["outputs"]["mask"], row["outputs"]["stats"]
    assert (mask["metric"], stats["metric"]) == ("mean IoU", "MAE")
    assert mask["test_mean_iou"] == pytest.approx(metrics["mask"]["test_mean_iou"], abs=1e-4)
    assert mask["test_pixel_accuracy"] == pytest.approx(metrics["mask"]["test_pixel_accuracy"], abs=1e-4)
    assert stats["test_mae"] == pytest.approx(metrics["stats"]["test_mae"], abs=1e-4)
    figures = f"mean IoU {mask['test_mean_iou']:.4f}, pixel accuracy {mask['test_pixel_accuracy']:.4f}"
    assert "each output on the test split" in flat(table) and figures in flat(table)
