"""The names on a task model's results (multi-label labels, regression values, per output):
`train`, `evaluate`, `visualize` and the pictures name them alike, lock.json records them per
output (a run without them is read as before), and `visualize confusion` on a model without a
confusion matrix points at the views it has. One tiny two-output model on the shapes data,
trained once: its outputs are listed in another order than the data's targets."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from cnnspec.cli.app import app
from cnnspec.reporting.run import Run, locate
from cnnspec.reporting.views import confusion_source

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("task_names")]

LABELS = ["circle", "square", "triangle"]
#: outputs [count, labels]; the data's targets in the other order (the first target's names,
#: the labels', used to be put on the count, and the labels numbered)
SPEC = """\
cnnspec: 1
name: names
input: {shape: [16, 16, 3]}
model:
  - global_avg_pool2d:
    id: pool
  - dense: 1
    id: count
  - dense: {units: 3, activation: sigmoid}
    inputs: pool
    id: labels
outputs: [count, labels]
data:
  source: {shapes: {images: 40, target: {labels: multilabel, count: count}}}
  validation_split: 0.2
training:
  epochs: 1
  batch_size: 16
  seed: 0
  outputs:
    count: {task: regression}
"""


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """The run, trained in this process by the trainer `cnnspec train` calls, without the
    report.html it adds (a fifth of a training's time): no test here reads the page."""
    from tests.test_report_support import train_without_page

    folder = tmp_path_factory.mktemp("names")
    (folder / "spec.yaml").write_text(SPEC, encoding="utf-8")
    run = folder / "run"
    train_without_page(folder / "spec.yaml", run)
    return run


def named(summary: dict) -> dict[str, list[str]]:
    """The names a metrics or evaluation document reports each output's figures under."""
    outputs = summary["outputs"]
    return {"count": list(outputs["count"]["per_target"]), "labels": list(outputs["labels"]["per_label"])}


@pytest.fixture(scope="module")
def evaluated(run_dir, tmp_path_factory) -> tuple[Path, set[str]]:
    """`evaluate RUN --out FOLDER` of the trained run, once for the tests that read what it
    writes (none writes into FOLDER): the folder, and the titles and x tick labels of every
    figure its pictures were drawn from (task_plots.png_bytes watched while it runs)."""
    from typer.testing import CliRunner

    from cnnspec.training import task_plots

    out = tmp_path_factory.mktemp("evaluated")
    figures = []
    real = task_plots.png_bytes

    def spy(figure):
        figures.append(figure)
        return real(figure)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(task_plots, "png_bytes", spy)
        result = CliRunner().invoke(app, ["evaluate", str(run_dir), "--out", str(out)])
    assert result.exit_code == 0, result.output
    texts = {
        text
        for figure in figures
        for axes in figure.axes
        for text in [axes.get_title(), *(label.get_text() for label in axes.get_xticklabels())]
    }
    return out, texts


def test_evaluate_names_every_output_as_training_does(run_dir, evaluated):
    trained = json.loads((run_dir / "metrics.json").read_text())
    assert named(trained) == {"count": ["count"], "labels": LABELS}
    out, _ = evaluated
    assert named(json.loads((out / "evaluation.json").read_text())) == named(trained)
    assert (out / "task_report.txt").read_text() == (run_dir / "task_report.txt").read_text()


def test_lock_records_each_outputs_names(run_dir):
    lock = json.loads((run_dir / "lock.json").read_text())
    assert {t["name"]: t["names"] for t in lock["tasks"]} == {"count": ["count"], "labels": LABELS}
    run = locate(run_dir)
    assert run.output_names("labels") == LABELS and run.output_names("count") == ["count"]
    assert run.output_names("nothing") == []


def older_copy(run_dir: Path, folder: Path, names: object = None) -> Path:
    """The run as an older cnnspec wrote it (lock.json's tasks without names), or with
    ``names`` in place of the first output's names."""
    copy = folder / "old"
    shutil.copytree(run_dir, copy)
    lock = json.loads((copy / "lock.json").read_text())
    for task in lock["tasks"]:
        task.pop("names")
    if names is not None:
        lock["tasks"][0]["names"] = names
    (copy / "lock.json").write_text(json.dumps(lock))
    return copy


def test_a_run_without_recorded_names_is_read_as_before(runner, run_dir, tmp_path):
    old = older_copy(run_dir, tmp_path)
    run = locate(old)
    # data.classes names the data's first target (labels); the others have none recorded
    assert run.output_names("labels") == LABELS and run.output_names("count") == []
    result = runner.invoke(app, ["evaluate", str(old), "--out", str(tmp_path / "e")])
    assert result.exit_code == 0, result.output
    evaluated = json.loads((tmp_path / "e" / "evaluation.json").read_text())
    assert named(evaluated) == {"count": ["count"], "labels": LABELS}  # the data's names of each


def test_a_damaged_names_list_is_a_damaged_run_file(runner, run_dir, tmp_path):
    old = older_copy(run_dir, tmp_path, names={"a": 1})
    result = runner.invoke(app, ["evaluate", str(old), "--out", str(tmp_path / "e")])
    assert result.exit_code == 2, result.output
    assert "damaged run file" in result.output and "tasks[0].names" in result.output


def test_samples_captions_name_the_labels(runner, run_dir, tmp_path, monkeypatch):
    from cnnspec.training import task_plots

    captions: list[str] = []
    real = task_plots.captioned_png

    def spy(images, texts, wrong, title=""):
        captions.extend(texts)
        return real(images, texts, wrong, title)

    monkeypatch.setattr(task_plots, "captioned_png", spy)
    result = runner.invoke(app, ["visualize", str(run_dir), "samples", "-o", str(tmp_path / "s.png")])
    assert result.exit_code == 0, result.output
    assert captions and all("count: true " in c and "labels: true " in c for c in captions)
    # (each line of a multi-output model's caption names its output)
    said = {w for c in captions for w in re.findall(r"labels: true (.*)\nlabels: pred (.*)", c)[0]}
    assert {n for text in said for n in text.split(", ")} <= {*LABELS, "-"}


def test_pictures_show_the_names(evaluated):
    """The multi-label bars and the regression scatter of `evaluate` (as of `train`)."""
    out, texts = evaluated
    assert set(LABELS) <= texts and "count: predicted vs true" in texts
    assert (out / "multilabel_labels.png").is_file() and (out / "regression_count.png").is_file()


def test_confusion_of_a_model_without_one_points_at_its_views(runner, run_dir, tmp_path):
    result = runner.invoke(app, ["visualize", str(run_dir), "confusion", "-o", str(tmp_path / "c.png")])
    assert result.exit_code == 2, result.output
    flat = " ".join(result.output.split())
    assert "count (regression), labels (multilabel), which has none" in flat, flat
    assert f"visualize {run_dir} samples" in flat and "regression_count.png, multilabel_labels.png" in flat
    assert "evaluate" not in flat and "Traceback" not in flat


def test_confusion_of_one_output_among_several(tmp_path):
    """A model with a classification or segmentation output among others: that output's matrix."""
    (tmp_path / "metrics.json").write_text(
        json.dumps(
            {
                "task": "multi-output",
                "outputs": {
                    "count": {"task": "regression", "per_target": {"count": {}}},
                    "mask": {
                        "task": "segmentation",
                        "confusion_matrix": [[3, 1], [0, 2]],
                        "class_names": ["bg", "a"],
                    },
                },
            }
        )
    )
    run = Run(model_path=tmp_path / "model.keras", run_dir=tmp_path)
    assert confusion_source(run) == ([[3, 1], [0, 2]], ["bg", "a"], "training's test set, output mask")


def test_features_of_a_task_model(runner, run_dir, tmp_path):
    """Its test image has no one class to name in the caption (was an internal error)."""
    result = runner.invoke(
        app, ["visualize", str(run_dir), "features", "--layer", "pool", "-o", str(tmp_path / "f.png")]
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "f.png").read_bytes().startswith(b"\x89PNG")


def test_predict_names_every_output_as_training_does(runner, run_dir, tmp_path):
    """The labels output is the second: its labels are named (they were numbered), and the
    count's value is named after its target."""
    import numpy as np
    from PIL import Image

    image = tmp_path / "one.png"
    Image.fromarray(np.full((16, 16, 3), 90, dtype="uint8")).save(image)
    result = runner.invoke(app, ["predict", str(run_dir), str(image), "-r", "keras", "-f", "json"])
    assert result.exit_code == 0, result.output
    (prediction,) = json.loads(result.stdout)["predictions"]
    assert list(prediction["outputs"]["labels"]["probabilities"]) == LABELS
    assert prediction["outputs"]["count"]["names"] == ["count"]
    assert len(prediction["outputs"]["count"]["values"]) == 1


def test_evaluate_data_whose_npz_names_the_labels_in_another_order_is_read_by_name(runner, run_dir, tmp_path):
    """An npz of the same test images whose class_names_labels lists the labels in another order
    (its columns in that order) was scored by position under the run's names: now the same
    figures as the file in the run's order, with a note (names that are not the run's are refused:
    tests/test_data_audit3b.py)."""
    rng = np.random.default_rng(0)
    x = rng.random((12, 16, 16, 3)).astype("float32")
    hot = (rng.random((12, 3)) > 0.5).astype("int64")
    count = rng.integers(0, 4, 12).astype("float32")
    order = [2, 0, 1]
    files = {
        "same": (hot, LABELS),
        "perm": (hot[:, order], [LABELS[i] for i in order]),
    }
    for name, (labels, names) in files.items():
        np.savez(
            tmp_path / f"{name}.npz",
            x_test=x,
            y_test_labels=labels,
            y_test_count=count,
            class_names_labels=np.array(names),
        )
    found = {}
    for name in ("same", "perm"):
        out = tmp_path / name
        result = runner.invoke(
            app,
            ["evaluate", str(run_dir), "--data", str(tmp_path / f"{name}.npz"), "--out", str(out)],
            env={"COLUMNS": "400"},
        )
        assert result.exit_code == 0, result.output
        found[name] = json.loads((out / "evaluation.json").read_text())["outputs"]["labels"]["per_label"]
        said = (
            "--data names its labels of the output labels in another order than the run (3 ('triangle', "
            "'circle', 'square'); the run's: 3 ('circle', 'square', 'triangle')): they are matched to the "
            "run's by name"
        )
        assert (said in " ".join(result.output.split())) == (name == "perm")
    assert found["perm"] == found["same"] and list(found["perm"]) == LABELS
