"""A test image (or pixel, or label) whose outputs are not numbers has no prediction: it is a
mistake, in no class's predicted column, and a model with no prediction at all (a diverged run)
has a NaN score, in train's metrics.json, evaluate, benchmark and the generated script alike.

Most checks run without TensorFlow; one tiny diverged training (slow) runs `cnnspec train`
and `cnnspec runs`.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from sklearn import metrics

from cnnspec.analysis.settings import training_config
from cnnspec.api import compile_spec
from cnnspec.export.bench_worker import score
from cnnspec.training.metrics import (
    NO_PREDICTION,
    classification_report_text,
    classification_summary,
    predicted_classes,
)
from cnnspec.training.task_metrics import output_summary, segmentation_summary
from cnnspec.training.task_results import task_metrics
from tests.conftest import FIXTURES, SPECS_DIR
from tests.test_listing_edges import script_functions
from tests.test_report_support import flat, invoke
from tests.test_task_audit2 import two_heads

NAN = float("nan")
SOME = (
    "2 of 4 test images have no prediction: the model's outputs are not numbers (its training "
    "diverged?); they are counted as mistakes and lie in no class's predicted column"
)
NONE = (
    "none of the 4 test images has a prediction: the model's outputs are not numbers (its "
    "training diverged), so its test scores are not numbers either"
)


def test_a_row_that_is_not_numbers_predicts_no_class():
    softmax = np.array([[0.1, 0.9], [NAN, NAN], [0.8, 0.2], [NAN, 1.0]])
    assert predicted_classes(softmax, binary=False, from_logits=False).tolist() == [1, -1, 0, -1]
    sigmoid = np.array([[0.7], [NAN], [0.2], [np.inf]])
    assert predicted_classes(sigmoid, binary=True, from_logits=False).tolist() == [1, -1, 0, -1]
    assert NO_PREDICTION == -1


def test_images_without_a_prediction_are_mistakes_in_no_column():
    y_pred = predicted_classes(np.array([[0.1, 0.9], [NAN, NAN], [0.8, 0.2], [NAN, NAN]]), binary=False,
                               from_logits=False)  # fmt: skip
    summary = classification_summary(np.array([1, 0, 0, 1]), y_pred, ["a", "b"])
    assert summary["accuracy"] == 0.5
    assert summary["confusion_matrix"] == [[1, 0], [0, 1]]  # (not [[2, 0], [1, 1]]: class 0)
    assert summary["per_class"]["a"] == {"precision": 1.0, "recall": 0.5, "f1": pytest.approx(2 / 3),
                                         "support": 2}  # fmt: skip
    assert (summary["no_prediction"], summary["notes"]) == (2, [SOME])
    text = classification_report_text(np.array([1, 0, 0, 1]), y_pred, ["a", "b"])
    assert text.endswith(f"\n    accuracy 0.5000\nnote: {SOME}\n")


def test_a_model_with_no_prediction_at_all_has_no_score():
    y_pred = predicted_classes(np.full((4, 3), NAN), binary=False, from_logits=False)
    summary = classification_summary(np.array([0, 1, 2, 0]), y_pred, ["a", "b", "c"])
    assert math.isnan(summary["accuracy"]) and math.isnan(summary["macro_avg"]["f1"])
    assert summary["confusion_matrix"] == [[0, 0, 0]] * 3
    assert summary["notes"] == [NONE]
    # benchmark's worker scores it as train does (it said 0.5: two images of class 0)
    settings = {"binary": False, "from_logits": False}
    name, value = score(np.full((4, 3), NAN), np.array([0, 1, 2, 0]), settings)
    assert name == "accuracy" and math.isnan(value)
    assert score(np.eye(3)[[0, 1, 1, 0]], np.array([0, 1, 2, 0]), settings) == ("accuracy", 0.75)


def segmentation_output():
    """The output of the tiny 4-class segmentation fixture (no TensorFlow)."""
    return training_config(compile_spec(FIXTURES / "codegen" / "tiny_segmentation.yaml")).tasks[0]


def test_pixels_without_a_prediction_are_misses_of_their_class():
    out = segmentation_output()
    y = np.array([[[0, 0], [1, 1]]])
    outputs = np.zeros((1, 2, 2, 4))
    outputs[0, 0, 0, 0] = outputs[0, 1, 0, 1] = outputs[0, 1, 1, 1] = 1.0
    outputs[0, 0, 1] = NAN  # a background pixel with no prediction (argmax: background, right)
    summary = segmentation_summary(y, outputs, ["bg", "a", "b", "c"], out)
    assert summary["pixel_accuracy"] == 0.75
    assert summary["per_class_iou"] == {"bg": 0.5, "a": 1.0, "b": None, "c": None}
    assert summary["mean_iou"] == 0.75
    assert summary["confusion_matrix"][0] == [1, 0, 0, 0]
    assert summary["no_prediction"] == 1
    everything = segmentation_summary(y, np.full((1, 2, 2, 4), NAN), [], out)
    assert math.isnan(everything["mean_iou"]) and math.isnan(everything["pixel_accuracy"])
    assert everything["confusion_matrix"] == [[0] * 4] * 4
    assert everything["notes"] == [NONE.replace("images", "pixels")]


def test_the_scripts_summaries_score_outputs_that_are_not_numbers_as_train(tmp_path):
    """templates/train_task.py.j2's copies give train's figures, keys and notes (they took the
    argmax, 0, of a NaN row, and Keras' accuracy printed beside them does too)."""
    spec = two_heads(tmp_path)
    functions = script_functions(spec)
    for name in ("f1_score", "precision_recall_fscore_support", "roc_auc_score"):
        functions[name] = getattr(metrics, name)
    kind, tags = np.array([0, 1, 1, 0]), np.array([[1, 0, 0], [0, 1, 0], [1, 1, 0], [0, 0, 0]])
    config = training_config(compile_spec(spec))
    for rows in ([0, 1], [0, 1, 2, 3]):
        kind_out = np.array([[0.9, 0.1], [0.2, 0.8], [0.7, 0.3], [0.6, 0.4]])
        tags_out = np.array([[0.9, 0.2, 0.1], [0.4, 0.7, 0.3], [0.6, 0.4, 0.2], [0.3, 0.6, 0.4]])
        kind_out[rows], tags_out[rows] = NAN, NAN
        ours = task_metrics(config, {"kind": kind, "tags": tags}, [kind_out, tags_out], {})["outputs"]
        theirs = {"kind": functions["output_summary"]("kind", kind, kind_out, []),
                  "tags": functions["output_summary"]("tags", tags, tags_out, [])}  # fmt: skip
        assert json.dumps(theirs, sort_keys=True) == json.dumps(ours, sort_keys=True)
    assert math.isnan(ours["kind"]["test_accuracy"]) and math.isnan(ours["tags"]["test_f1_macro"])
    assert ours["kind"]["notes"] == [NONE]
    assert ours["tags"]["notes"][0] == (
        "none of the 12 test labels has a prediction: the model's outputs are not numbers (its "
        "training diverged), so its test scores are not numbers either"
    )
    segmentation = script_functions(FIXTURES / "codegen" / "tiny_segmentation.yaml")
    out = segmentation_output()
    masks, outputs = np.zeros((1, 2, 2)), np.full((1, 2, 2, 4), 0.25)
    outputs[0, 0] = NAN
    theirs = segmentation["output_summary"](out.name, masks, outputs, [])
    assert theirs == output_summary(out, masks, outputs, [])
    assert theirs["test_pixel_accuracy"] == 0.5


@pytest.mark.slow
def test_a_diverged_classifier_scores_nan_not_class_0(tmp_path: Path):
    spec = tmp_path / "div.yaml"
    spec.write_text(
        "cnnspec: 1\nname: div\ninput: {shape: [8, 8, 1]}\nmodel:\n"
        "  - conv2d: {filters: 4, kernel_size: 3, padding: same}\n  - flatten\n  - dense: {units: 10}\n"
        "  - activation: softmax\n"
        "data: {source: digits, validation_split: 0.1, test_split: 0.2, limit: 100}\n"
        "training:\n  epochs: 1\n  batch_size: 32\n  optimizer: {sgd: {learning_rate: 1.0e+12}}\n"
        "  metrics: [accuracy]\n  seed: 1\n",
        encoding="utf-8",
    )
    # (without its page: nothing here reads it)
    result = invoke("train", spec, "--no-report", "--out", tmp_path / "runs" / "div")
    assert result.exit_code == 0, result.output
    text = NONE.replace("4 test images", "100 test images")
    assert f"note: {text}" in flat(result)
    saved = json.loads((tmp_path / "runs" / "div" / "metrics.json").read_text(encoding="utf-8"))
    assert (saved["test_accuracy"], saved["no_prediction"], saved["notes"]) == ("nan", 100, [text])
    assert all(not any(row) for row in saved["confusion_matrix"])  # (all in column 0 before)
    listing = invoke("runs", tmp_path / "runs")
    assert listing.exit_code == 0, listing.output
    assert "│ div │ div " in listing.output and "│      nan │" in listing.output


@pytest.mark.slow
def test_a_diverged_multi_output_model_has_no_keras_class_0_accuracy(tmp_path: Path):
    """Keras' own accuracy of an output (``test_kind_accuracy``) is replaced by the figure of
    its predictions where they are not numbers."""
    spec = two_heads(tmp_path)
    text = spec.read_text(encoding="utf-8").replace(
        "  seed: 1\n", "  seed: 1\n  optimizer: {sgd: {learning_rate: 1.0e+30}}\n"
    )
    spec.write_text(text, encoding="utf-8")
    result = invoke("train", spec, "--no-report", "--out", tmp_path / "run")  # (its page unread)
    assert result.exit_code == 0, result.output
    assert f"note: output kind: {NONE.replace('4 test images', '16 test images')}" in flat(result)
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text(encoding="utf-8"))
    assert saved["test_kind_accuracy"] == saved["outputs"]["kind"]["test_accuracy"] == "nan"


DIVERGED = {"test_loss": NAN, "test_accuracy": np.float32("nan"), "history": {"loss": [2.0, math.inf]},
            "per_class": {"a": {"f1": -math.inf, "support": np.int64(3)}}}  # fmt: skip


def test_the_json_files_of_a_diverged_run_are_json_in_train_and_the_script(tmp_path: Path):
    """metrics.json, evaluation.json, benchmark.json, history.json… and the generated script's
    metrics.json write a number that is not finite as train does, as the text "nan"/"inf"
    (Python's bare NaN literal is no JSON: browsers and jq refuse the file)."""
    from cnnspec.jsontext import json_text

    ours = json_text(DIVERGED)
    theirs = script_functions(FIXTURES / "codegen" / "tiny_segmentation.yaml")["json_text"](DIVERGED)
    classifier = script_functions(SPECS_DIR / "digits_cnn.yaml")["json_text"](DIVERGED)
    assert ours == theirs == classifier
    assert json.loads(ours, parse_constant=lambda word: pytest.fail(f"bare {word} in {ours}")) == {
        "test_loss": "nan", "test_accuracy": "nan", "history": {"loss": [2.0, "inf"]},
        "per_class": {"a": {"f1": "-inf", "support": 3}},
    }  # fmt: skip
