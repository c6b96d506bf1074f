"""The second task audit: a classification output of a multi-output model with precision, recall
or AUC (one-hot targets for its metrics, in `cnnspec train` and the script), its per-class rows
and confusion matrix (task_report.txt, the picture, report.html), a multilabel output's per-label
AUC with the labels Keras' auc counts as 0 noted, the script's metrics.json keys (train's
`test_*` keys at the top level) and the top-k hint of a 2-class output.

Most checks run without TensorFlow; one tiny two-output training (a classifier with precision
and AUC, a multilabel head with a label never present) runs `cnnspec train` and the script.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cnnspec.analysis.settings import training_config
from cnnspec.api import compile_spec, compile_text
from cnnspec.backends.codegen_tasks import loss_source, metric_source, prepare_source
from cnnspec.errors import SpecError
from cnnspec.training.task_metrics import multilabel_summary, output_summary, report_text

#: A two-output model: a 2-class softmax `kind` and a 3-label sigmoid `tags`; TRAINING is
#: replaced by each test's `training.outputs`.
SPEC = """\
cnnspec: 1
name: two_heads
input: {shape: [8, 8, 1]}
model:
  - conv2d: {filters: 4, kernel_size: 3, padding: same, activation: relu}
  - global_avg_pool2d:
    id: pooled
  - dense: {units: 2, activation: softmax}
    id: kind
  - dense: {units: 3, activation: sigmoid}
    inputs: pooled
    id: tags
outputs: [kind, tags]
data: {source: {npz: two.npz}, validation_split: 0.25}
training:
  epochs: 1
  batch_size: 8
  seed: 1
  outputs:
TRAINING"""
#: The classifier lists precision and AUC (one-hot targets), the multilabel head AUC.
WITH_AUC = """\
    kind: {metrics: [accuracy, precision, auc]}
    tags: {metrics: [f1, auc]}
"""


def two_heads(tmp_path: Path, training: str = WITH_AUC) -> Path:
    """The spec and its tiny .npz (label 2 of `tags` is never present)."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (40, 8, 8, 1)).astype("uint8")
    bright = x.mean(axis=(1, 2, 3))
    kind = (bright > np.median(bright)).astype("int64")
    tags = np.stack([kind, 1 - kind, np.zeros_like(kind)], axis=1).astype("uint8")
    np.savez(
        tmp_path / "two.npz",
        x_train=x[:24], x_test=x[24:],
        y_train_kind=kind[:24], y_test_kind=kind[24:],
        y_train_tags=tags[:24], y_test_tags=tags[24:],
    )  # fmt: skip
    spec = tmp_path / "two.yaml"
    spec.write_text(SPEC.replace("TRAINING", training), encoding="utf-8")
    return spec


# -- 1. a classification output with precision/recall/auc gets one-hot targets -----------------
@pytest.mark.parametrize("metric", ["precision", "recall", "auc"])
def test_a_classification_output_with_precision_recall_or_auc_gets_one_hot_targets(tmp_path, metric):
    """Keras' Precision/Recall/AUC (and then CategoricalAccuracy) score one-hot targets: the
    output's targets go one-hot, its loss is the categorical one, and the script builds each
    metric as the single classifier with these metrics builds it."""
    from cnnspec.backends.codegen_script import metric_nodes
    from cnnspec.backends.codegen_values import unparse

    training = f"    kind: {{metrics: [accuracy, {metric}]}}\n    tags: {{metrics: [f1]}}\n"
    kind = training_config(compile_spec(two_heads(tmp_path, training))).tasks[0]
    assert kind.one_hot and kind.classifier_config().one_hot_labels
    assert prepare_source(kind, "labels") == "tf.one_hot(labels, 2)"
    assert "CategoricalCrossentropy" in loss_source(kind)
    assert metric_source(kind, kind.metrics[0]) == 'keras.metrics.CategoricalAccuracy(name="accuracy")'
    alone = [unparse(node) for node in metric_nodes(kind.classifier_config())]
    assert [metric_source(kind, item) for item in kind.metrics] == alone


def test_a_classification_output_with_accuracy_only_keeps_sparse_targets(tmp_path):
    training = "    kind: {metrics: [accuracy]}\n    tags: {metrics: [f1]}\n"
    kind = training_config(compile_spec(two_heads(tmp_path, training))).tasks[0]
    assert not kind.one_hot and prepare_source(kind, "labels") == "labels"
    assert "SparseCategoricalAccuracy" in metric_source(kind, kind.metrics[0])


# -- 2. a classification output's per-class rows and confusion matrix ---------------------------
def _kind_summary(tmp_path: Path) -> tuple[object, dict]:
    config = training_config(compile_spec(two_heads(tmp_path)))
    outputs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    return config, output_summary(config.tasks[0], np.array([0, 1, 1, 1]), outputs, ["cat", "dog"])


def test_task_report_of_a_classification_output_has_its_per_class_rows(tmp_path):
    config, summary = _kind_summary(tmp_path)
    text = report_text(config.tasks[0], summary)
    assert "class  precision     recall         f1  support" in text
    assert "cat     0.5000     1.0000     0.6667        1" in text
    assert "dog     1.0000     0.6667     0.8000        3" in text


def test_a_classification_output_draws_its_confusion_matrix(tmp_path):
    """write_task_files draws the output's confusion matrix (confusion_matrix_NAME.png), which
    report.html shows beside the classifier's per-class table."""
    from cnnspec.reporting.html import _task_figures
    from cnnspec.reporting.run import Run
    from cnnspec.training.task_results import picture_name, task_metrics, write_task_files

    config, _ = _kind_summary(tmp_path)
    kind = config.tasks[0]
    assert picture_name(config, kind) == "confusion_matrix_kind.png"
    y = {"kind": np.array([0, 1, 1, 1]), "tags": np.array([[1, 0, 0], [0, 1, 0], [0, 1, 0], [1, 1, 0]])}
    outputs = [np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]]), np.full((4, 3), 0.6)]
    metrics = task_metrics(config, y, outputs, {"kind": ["cat", "dog"]})
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    files = write_task_files(config, run_dir, metrics, y, outputs, np.zeros((4, 8, 8, 1)), "two_heads")
    assert files["confusion_matrix_kind_png"].read_bytes().startswith(b"\x89PNG")
    assert "dog     1.0000     0.6667" in files["task_report"].read_text(encoding="utf-8")
    figures = {f["title"]: f for f in _task_figures(Run(run_dir / "model.keras", run_dir), metrics)}
    classifier = figures["kind (classification)"]
    assert classifier["png"] and classifier["png"].startswith("data:image/png")
    assert [row["name"] for row in classifier["report_rows"]] == ["cat", "dog"]
    assert figures["tags (multilabel)"]["report_rows"] == []


# -- 3. a multilabel output's per-label AUC ------------------------------------------------------
def test_multilabel_auc_per_label_is_null_without_both_classes_and_the_macro_skips_it():
    from sklearn.metrics import roc_auc_score

    y = np.array([[1, 0, 0], [0, 1, 0], [1, 1, 0], [0, 0, 0]])
    scores = np.array([[0.9, 0.2, 0.1], [0.4, 0.7, 0.3], [0.6, 0.4, 0.2], [0.3, 0.6, 0.4]])
    summary = multilabel_summary(y, scores, ["a", "b", "never"], 0.5)
    aucs = {name: row["auc"] for name, row in summary["per_label"].items()}
    assert aucs == {"a": 1.0, "b": pytest.approx(roc_auc_score(y[:, 1], scores[:, 1])), "never": None}
    assert summary["auc_macro"] == pytest.approx((1.0 + aucs["b"]) / 2)


def test_a_note_names_the_labels_keras_auc_counts_as_zero(tmp_path):
    config = training_config(compile_spec(two_heads(tmp_path)))
    tags = config.tasks[1]
    y = np.array([[1, 0, 0], [0, 1, 0], [1, 1, 0], [0, 0, 0]])
    summary = output_summary(tags, y, np.full((4, 3), 0.5), ["a", "b", "never"])
    (note,) = summary["notes"]
    assert "Keras' auc of output tags counts the label(s) 'never' as 0" in note
    assert "auc_macro (0.5000) averages the 2 other labels" in note
    assert f"note: {note}" in report_text(tags, summary)
    without = training_config(compile_spec(two_heads(tmp_path, "    kind: {}\n    tags: {metrics: [f1]}\n")))
    assert "notes" not in output_summary(without.tasks[1], y, np.full((4, 3), 0.5), ["a", "b", "never"])


def test_the_scripts_multilabel_summary_is_trains(tmp_path):
    """The script's own copy (templates/train_task.py.j2) gives the same per-label AUC, macro
    AUC and note as cnnspec's, run here without TensorFlow."""
    from sklearn import metrics

    from cnnspec.training.task_results import task_metrics
    from tests.test_listing_edges import script_functions

    spec = two_heads(tmp_path)
    functions = script_functions(spec)
    for name in ("f1_score", "precision_recall_fscore_support", "roc_auc_score"):
        functions[name] = getattr(metrics, name)
    y = np.array([[1, 0, 0], [0, 1, 0], [1, 1, 0], [0, 0, 0]])
    scores = np.array([[0.9, 0.2, 0.1], [0.4, 0.7, 0.3], [0.6, 0.4, 0.2], [0.3, 0.6, 0.4]])
    theirs = functions["output_summary"]("tags", y, scores, [])
    config = training_config(compile_spec(spec))
    ours = task_metrics(config, {"kind": np.zeros(4, "int64"), "tags": y}, [np.ones((4, 2)) / 2, scores], {})
    assert theirs == ours["outputs"]["tags"]


# -- 4. train (and the script) write the test_* keys (slow: trains) -----------------------------
def _two_heads_trained(tmp_path: Path) -> tuple[object, object, dict]:
    """The two-headed spec trained by `cnnspec train` with its report page: the compiled spec,
    the result and metrics.json, whose test_* keys sit at the top level (precision and AUC of
    the classifier output crashed with incompatible shapes), with the note of the multilabel
    label Keras' auc counts as 0."""
    from cnnspec.reporting.html import write_report
    from cnnspec.training.trainer import train

    compiled = compile_spec(two_heads(tmp_path))
    ours = train(compiled, out=tmp_path / "run", write_report=write_report)
    mine = json.loads((tmp_path / "run" / "metrics.json").read_text(encoding="utf-8"))
    keys = {k for k in mine if k.startswith("test")}
    assert {"test_loss", "test_kind_precision", "test_kind_auc", "test_tags_auc"} <= keys
    assert "'2' as 0" in mine["outputs"]["tags"]["notes"][0]
    return compiled, ours, mine


@pytest.mark.slow
def test_two_heads_train_with_precision_auc_and_per_class_results(tmp_path):
    """The classifier output with precision and AUC trains, with the test_* keys at the top
    level of metrics.json; the run has the classifier's confusion matrix and per-class table and
    the note of the multilabel label Keras' auc counts as 0, on its page too."""
    _, ours, _ = _two_heads_trained(tmp_path)
    run = tmp_path / "run"
    assert ours.files["confusion_matrix_kind_png"] == run / "confusion_matrix_kind.png"
    assert "class  precision" in (run / "task_report.txt").read_text(encoding="utf-8")
    page = (run / "report.html").read_text(encoding="utf-8")
    task_section = page[page.index('<section id="task">') :]
    assert "<th>class</th>" in task_section and 'alt="kind (classification)"' in task_section
    assert "Keras&#39; auc of output tags counts the label(s) &#39;2&#39; as 0" in page


@pytest.mark.slow
@pytest.mark.full
def test_two_heads_train_and_script_alike_with_precision_auc_and_per_class_results(tmp_path):
    """The script trains the two heads as `cnnspec train` does: the same test_* keys at the top
    level of metrics.json, with the same figures, outputs' keys and notes."""
    from cnnspec.backends.python_emitter import generate_code
    from tests.conftest import run_script

    compiled, _, mine = _two_heads_trained(tmp_path)
    script = tmp_path / "train.py"
    script.write_text(generate_code(compiled, script=True, output=script).text, encoding="utf-8")
    run_script(script, "--out", str(tmp_path / "script"))
    theirs = json.loads((tmp_path / "script" / "metrics.json").read_text(encoding="utf-8"))
    keys = {k for k in mine if k.startswith("test")}
    assert keys == {k for k in theirs if k.startswith("test")} and "test" not in theirs
    for key in keys:
        assert theirs[key] == pytest.approx(mine[key], abs=1e-5), key
    for name in ("kind", "tags"):
        assert set(theirs["outputs"][name]) == set(mine["outputs"][name]), name
    assert theirs["outputs"]["tags"]["notes"] == mine["outputs"]["tags"]["notes"]


# -- 5. hints ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("units", "metric", "hint"),
    [
        (2, "{top_k_accuracy: {k: 2}}", "top-k accuracy needs more than 2 classes"),
        (2, "top_k_accuracy", "top-k accuracy needs more than 2 classes"),
        (5, "top_k_accuracy", "choose a k below 5, e.g. {top_k_accuracy: {k: 4}}"),
    ],
)
def test_the_top_k_hint_suggests_a_k_that_is_accepted(units, metric, hint):
    text = (
        "cnnspec: 1\nname: t\ninput: {shape: [8, 8, 1]}\nmodel:\n  - flatten\n"
        f"  - dense: {{units: {units}, activation: softmax}}\ntraining: {{metrics: [{metric}]}}\n"
    )
    with pytest.raises(SpecError) as caught:
        training_config(compile_text(text, "spec.yaml"))
    assert hint in (caught.value.errors[0].hint or "")
    if units > 2:  # the suggested k is accepted
        training_config(
            compile_text(text.replace("[top_k_accuracy]", "[{top_k_accuracy: {k: 4}}]"), "s.yaml")
        )


@pytest.mark.slow
def test_evaluate_keeps_the_auc_note_of_a_one_output_multilabel_model(tmp_path, runner):
    """A one-output model's task notes sit at the top level of its summary: evaluation.json
    lists them beside the data's notes (the data's list replaced them)."""
    from cnnspec.cli.app import app
    from cnnspec.training.trainer import train

    spec = two_heads(tmp_path)
    with np.load(tmp_path / "two.npz") as arrays:
        np.savez(tmp_path / "two.npz", x_train=arrays["x_train"], x_test=arrays["x_test"],
                 y_train=arrays["y_train_tags"], y_test=arrays["y_test_tags"])  # fmt: skip
    text = spec.read_text(encoding="utf-8").split("  - dense: {units: 2")[0]
    text += "  - dense: {units: 3, activation: sigmoid}\n"
    text += "data: {source: {npz: two.npz}, validation_split: 0.25}\n"
    text += "training: {epochs: 1, batch_size: 8, seed: 1, metrics: [f1, auc]}\n"
    spec.write_text(text, encoding="utf-8")
    run = tmp_path / "run"
    # trained in this process by the trainer `cnnspec train` calls, without the report.html it
    # adds (a fifth of a training's time): evaluate reads the model, lock.json and the data
    train(compile_spec(spec), out=run)
    result = runner.invoke(app, ["evaluate", str(run), "--out", str(tmp_path / "eval")])
    assert result.exit_code == 0, result.output
    document = json.loads((tmp_path / "eval" / "evaluation.json").read_text(encoding="utf-8"))
    assert any("counts the label(s) '2' as 0" in note for note in document["notes"]), document["notes"]


# -- every regression loss: trained and scripted as the same Keras loss -------------------------
REGRESSOR = """\
cnnspec: 1
name: values
input: {shape: [8, 8, 1]}
model:
  - flatten
  - dense: 2
data: {source: shapes}
training: {task: regression, loss: LOSS}
"""


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mse", "mae", "huber", "msle", "mape", "log_cosh"])
def test_every_regression_loss_is_the_same_keras_loss_in_train_and_the_script(name):
    """msle, mape and log_cosh are trained as themselves (they were read as mse, mae and huber
    when an imported model or a model file named them), and the script builds the same class."""
    import keras

    from cnnspec.analysis.tasks import REGRESSION_LOSSES
    from cnnspec.training.tasks import loss

    assert name in REGRESSION_LOSSES
    (out,) = training_config(compile_text(REGRESSOR.replace("LOSS", name))).tasks
    assert out.task == "regression" and out.loss.name == name
    trained = loss(out)
    scripted = loss_source(out)
    assert scripted.startswith(f"keras.losses.{type(trained).__name__}(")
    assert isinstance(trained, getattr(keras.losses, type(trained).__name__))
    y_true, y_pred = np.array([[1.0, 4.0]]), np.array([[2.0, 3.0]])
    # by each loss's formula: errors 1 and -1, logs of 1 + y, percentages of 1 and of 4
    msle = ((np.log(2) - np.log(3)) ** 2 + (np.log(5) - np.log(4)) ** 2) / 2
    expected = {
        "mse": 1.0,
        "mae": 1.0,
        "huber": 0.5,
        "msle": msle,
        "mape": 62.5,
        "log_cosh": np.log(np.cosh(1)),
    }
    assert float(trained(y_true, y_pred)) == pytest.approx(expected[name], abs=1e-4)
