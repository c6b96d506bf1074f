"""Training, evaluating and predicting every task through the CLI, on tiny .npz data: the
task's metrics.json keys, its report and picture, `evaluate` agreeing with training, `predict`
answering per task, and data that don't fit an output refused (located, nothing written)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from cnnspec.cli.app import app
from tests.test_report_support import made_once

pytestmark = pytest.mark.slow

HEAD = "cnnspec: 1\nname: {name}\ninput: {{shape: [8, 8, 1]}}\n"
TRAINING = (
    "data: {source: {npz: d.npz}, validation_split: 0.25}\n"
    "training:\n  epochs: 1\n  batch_size: 16\n  seed: 1\n"
)
#: a linear head is a classifier (logits) unless the spec says regression
STATED = {"regression": "  task: regression\n", "multi": "  outputs: {stats: {task: regression}}\n"}
SPECS = {
    "segmentation": "model:\n  - conv2d: {filters: 3, kernel_size: 3, padding: same, activation: softmax}\n",
    "multilabel": "model: [flatten, {dense: {units: 3, activation: sigmoid}}]\n",
    "regression": "model: [flatten, {dense: 2}]\n",
    "multi": """\
model:
  - conv2d: {filters: 4, kernel_size: 3, padding: same, activation: relu}
    id: features
  - conv2d: {filters: 3, kernel_size: 1, activation: softmax}
    id: mask
  - global_avg_pool2d:
    inputs: features
  - dense: 2
    id: stats
outputs: [mask, stats]
""",
}
#: the headline keys metrics.json has for each task (per output for the multi-output model)
KEYS = {
    "segmentation": {"test_mean_iou", "test_pixel_accuracy", "per_class_iou"},
    "multilabel": {"test_f1_macro", "per_label"},
    "regression": {"test_mae", "test_rmse", "test_r2", "per_target"},
}
KEYS_FIRST = {"segmentation": "test_mean_iou", "multilabel": "test_f1_macro", "regression": "test_mae"}
#: the export format each task's test run checks (each format once or more)
EXPORT_FORMAT = {
    "segmentation": "tflite",
    "multilabel": "savedmodel",
    "regression": "tflite",
    "multi": "onnx",
}
PICTURE = {"segmentation": "segmentation.png", "multilabel": "multilabel.png", "regression": "regression.png"}


def targets(x: np.ndarray) -> dict[str, np.ndarray]:
    bright = x[..., 0]
    return {
        "segmentation": (bright > 85).astype("int64") + (bright > 170),
        "multilabel": np.stack(
            [bright.mean((1, 2)) > 127, bright[:, :4].mean((1, 2)) > 127, bright[:, 0, 0] > 127], 1
        ).astype("float32"),
        "regression": np.stack([bright.mean((1, 2)) / 255, bright.std((1, 2)) / 255], 1),
    }


def write_data(folder, task: str, **replace) -> None:
    x = np.random.default_rng(0).integers(0, 256, size=(40, 8, 8, 1)).astype("uint8")
    y = targets(x)
    arrays = {"x_train": x[:32], "x_test": x[32:]}
    if task == "multi":
        for name, kind in (("mask", "segmentation"), ("stats", "regression")):
            arrays[f"y_train_{name}"], arrays[f"y_test_{name}"] = y[kind][:32], y[kind][32:]
    else:
        arrays["y_train"], arrays["y_test"] = y[task][:32], y[task][32:]
    arrays.update(replace)
    np.savez(folder / "d.npz", **arrays)


def trained_task_run(factory: pytest.TempPathFactory, task: str) -> Path:
    """The run folder of ``task``'s tiny model (:data:`SPECS`, :func:`write_data`), trained by
    `cnnspec train` once per test session (:func:`tests.test_report_support.made_once`): this
    module's tests and tests/test_export_tasks.py's take copies (shutil.copytree), never writing
    into it."""

    def train(folder: Path) -> None:
        write_data(folder, task)
        spec = folder / "spec.yaml"
        text = HEAD.format(name=task) + SPECS[task] + TRAINING + STATED.get(task, "")
        spec.write_text(text, encoding="utf-8")
        result = CliRunner().invoke(app, ["train", str(spec), "--out", str(folder / "run"), "--quiet"])
        assert result.exit_code == 0, result.output

    return made_once(factory, f"task-run-{task}", train) / "run"


@pytest.mark.parametrize("task", list(SPECS))
def test_train_evaluate_predict_every_task(runner, tmp_path, tmp_path_factory, task, monkeypatch):
    # trained once per session (the export tests use the same runs): this test's own copy
    run = tmp_path / "run"
    shutil.copytree(trained_task_run(tmp_path_factory, task), run)
    metrics = json.loads((run / "metrics.json").read_text())
    parts = metrics["outputs"] if task == "multi" else {task: metrics}
    kinds = {"mask": "segmentation", "stats": "regression"} if task == "multi" else {task: task}
    for name, kind in kinds.items():
        assert parts[name]["task"] == kind and KEYS[kind] <= set(parts[name])
        picture = PICTURE[kind] if task != "multi" else PICTURE[kind].replace(".png", f"_{name}.png")
        assert (run / picture).read_bytes().startswith(b"\x89PNG")
    assert "test_accuracy" not in metrics and not (run / "confusion_matrix.png").exists()
    assert "output" in (run / "task_report.txt").read_text()
    assert 'id="task"' in (run / "report.html").read_text()

    # evaluate recomputes the same figures from the saved model
    evaluated = runner.invoke(app, ["evaluate", str(run), "--format", "json"])
    assert evaluated.exit_code == 0, evaluated.output
    document = json.loads(evaluated.stdout)
    again = document["outputs"] if task == "multi" else {task: document}
    for name, kind in kinds.items():
        for key in KEYS[kind] - {"per_class_iou", "per_label", "per_target"}:
            assert again[name][key] == pytest.approx(parts[name][key], abs=1e-5), key

    # cnnspec runs lists the task's headline figure where a classifier has its accuracy
    listed = runner.invoke(app, ["runs", str(tmp_path), "--format", "json"])
    (row,) = json.loads(listed.stdout)
    assert row["test_accuracy"] is None and row["headline"][0][1] == pytest.approx(
        next(iter(parts.values()))[KEYS_FIRST[next(iter(kinds.values()))]]
    )

    # visualize samples draws masks, or true vs predicted labels/values
    drawn = runner.invoke(app, ["visualize", str(run), "samples", "-o", str(tmp_path / "samples.png")])
    assert drawn.exit_code == 0, drawn.output
    assert (tmp_path / "samples.png").read_bytes().startswith(b"\x89PNG")
    # a temperature scales a single multi-label output's decisions there, as evaluate's does; a
    # regression takes none (refused, exit 2); a reliability diagram it has not, and says which
    # evaluate reports its results (the run folder's, not its model.keras)
    if task in ("multilabel", "regression"):
        args = ["visualize", str(run), "samples", "--temperature", "2", "-o", str(tmp_path / "t.png")]
        tempered = runner.invoke(app, args)
        said = " ".join(tempered.output.split())
        if task == "multilabel":
            assert tempered.exit_code == 0, said
            assert "--temperature 2: each logit is divided by 2 before the softmax or sigmoid" in said
        else:
            assert (
                tempered.exit_code == 2
                and (
                    "expected a classifier, a multi-label or a segmentation model (one output) for a "
                    "temperature; this model's outputs are dense_1 (regression)"
                )
                in said
            )
    if task == "multi":
        refused = runner.invoke(app, ["visualize", str(run), "calibration", "-o", str(tmp_path / "c.png")])
        said = " ".join(refused.output.split())
        assert refused.exit_code == 2 and f"`cnnspec evaluate {run}` reports the test results" in said, said

    # predict answers in the task's terms
    np.save(
        tmp_path / "two.npy", np.random.default_rng(1).integers(0, 256, size=(2, 8, 8, 1)).astype("uint8")
    )
    masks = tmp_path / "masks"
    predicted = runner.invoke(
        app, ["predict", str(run), str(tmp_path / "two.npy"), "-o", str(masks), "--format", "json"]
    )
    assert predicted.exit_code == 0, predicted.output
    first = json.loads(predicted.stdout)["predictions"][0]["outputs"]
    for name, kind in kinds.items():
        entry = first[name] if task == "multi" else next(iter(first.values()))
        if kind == "segmentation":
            from PIL import Image

            mask = np.asarray(Image.open(entry["mask"]))
            assert mask.shape == (8, 8) and mask.max() < 3
        elif kind == "multilabel":
            assert set(entry["probabilities"]) == {"0", "1", "2"}
            assert entry["labels"] == [k for k, p in entry["probabilities"].items() if p > 0.5]
        else:
            assert len(entry["values"]) == 2

    # two image files of one name and another size than the model's: each gets its own mask,
    # scaled back over its image; a task without masks makes no ./predictions folder
    from PIL import Image

    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        Image.fromarray(np.full((10, 12), 90, "uint8")).save(tmp_path / sub / "x.png")
    monkeypatch.chdir(tmp_path)
    predicted = runner.invoke(app, ["predict", str(run), "a/x.png", "b/x.png", "--format", "json"])
    assert predicted.exit_code == 0, predicted.output
    entries = [e for p in json.loads(predicted.stdout)["predictions"] for e in p["outputs"].values()]
    written = [Path(e["mask"]) for e in entries if "mask" in e]
    assert len(set(written)) == len(written) == (2 if "segmentation" in kinds.values() else 0)
    for path in written:
        assert path.parent.name == "predictions" and np.asarray(Image.open(path)).shape == (10, 12)
    assert (tmp_path / "predictions").exists() == bool(written)

    # export verifies the task's model in its runtime (one format per task: every format and
    # every task are covered) and records how to read each output, in the model's order
    fmt = EXPORT_FORMAT[task]
    if fmt == "onnx":
        pytest.importorskip("tf2onnx")
        pytest.importorskip("onnxruntime")
    exported = runner.invoke(app, ["export", str(run), "--format", fmt])
    assert exported.exit_code == 0 and "verified" in exported.output, exported.output
    if fmt != "savedmodel":
        (record,) = (run / "export").glob(f"*.{fmt}.json")
        outputs = json.loads(record.read_text())["outputs"]
        assert [o["task"] for o in outputs] == list(kinds.values())
        if task == "multi":
            assert [o["name"] for o in outputs] == list(kinds)
    if task == "segmentation":  # the exported model predicts the masks Keras predicts
        np.save(
            tmp_path / "one.npy", np.random.default_rng(2).integers(0, 256, size=(1, 8, 8, 1)).astype("uint8")
        )
        masks = {}
        for runtime in ("keras", fmt):
            folder = tmp_path / runtime
            result = runner.invoke(
                app, ["predict", str(run), str(tmp_path / "one.npy"), "-r", runtime, "-o", str(folder)]
            )
            assert result.exit_code == 0, result.output
            masks[runtime] = (folder / "one_0_mask.png").read_bytes()
        assert masks["keras"] == masks[fmt]


@pytest.mark.parametrize(
    ("task", "replace", "message"),
    [
        # targets that don't fit the output they are for (single outputs: the loader's checks)
        ("segmentation", {"y_test": np.full((8, 8, 8), 3)}, "expected at most 3 mask classes"),
        # 255: void pixels (Pascal VOC), not class 255 (the hint says to remap it)
        (
            "segmentation",
            {"y_test": np.pad(np.zeros((8, 8, 7), "uint8"), ((0, 0), (0, 0), (0, 1)), constant_values=255)},
            "a mask value of 255 usually marks void or ignored pixels",
        ),
        ("multilabel", {"y_train": np.zeros((32, 4), "float32")}, "expected 4 output units"),
        # several outputs: each output's target against its task
        (
            "multi",
            {"y_train_stats": np.zeros((32, 3), "float32")},
            "expected 2 regression value(s) per image",
        ),
        (
            "multi",
            {"y_test_mask": np.full((8, 8, 8), 5)},
            "expected at most 3 mask classes (the output mask's channels); the data has 6",
        ),
        ("multi", {"y_train_stats": None}, "missing y_train_stats"),
    ],
)
def test_targets_that_do_not_fit_an_output_are_refused(runner, tmp_path, task, replace, message):
    write_data(tmp_path, task)
    if any(value is None for value in replace.values()):
        with np.load(tmp_path / "d.npz") as archive:
            kept = {k: archive[k] for k in archive.files if k != "y_train_stats"}
        np.savez(tmp_path / "d.npz", **kept)
    else:
        write_data(tmp_path, task, **replace)
    spec = tmp_path / "spec.yaml"
    spec.write_text(HEAD.format(name=task) + SPECS[task] + TRAINING + STATED.get(task, ""), encoding="utf-8")
    run = tmp_path / "run"
    result = runner.invoke(app, ["train", str(spec), "--out", str(run), "--quiet"])
    assert result.exit_code == 1, result.output
    assert "spec.yaml:" in result.output and message in result.output, result.output
    assert not run.exists()


def test_a_metric_keras_refuses_leaves_no_run_folder(runner, tmp_path, monkeypatch):
    """Keras checks a metric's settings only when it is made (a threshold of 0 did it): made
    after lock.json, spec.yaml and resolved.yaml were written, the refusal left a half-made run
    folder a rerun refused. They are made before the folder is written now."""
    from cnnspec.training import builders

    def refused(config):
        raise ValueError("Invalid threshold value received: 0")

    monkeypatch.setattr(builders, "metrics", refused)
    write_data(tmp_path, "multilabel")
    spec = tmp_path / "spec.yaml"
    spec.write_text(HEAD.format(name="ml") + SPECS["multilabel"] + TRAINING, encoding="utf-8")
    run = tmp_path / "out" / "run"
    result = runner.invoke(app, ["train", str(spec), "--out", str(run), "--quiet"])
    assert result.exit_code == 3, result.output
    assert "Invalid threshold value received: 0" in result.output
    assert not (tmp_path / "out").exists()
