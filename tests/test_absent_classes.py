"""Classes without test images (support 0: a ``--data`` of some of the run's classes): their
recall and F1 are undefined, not 0, and the macro averages are over the classes present, in
``cnnspec train``/``evaluate`` and in the generated scripts' copies alike."""

from __future__ import annotations

import json
import math

import numpy as np
from sklearn import metrics

from cnnspec.analysis.settings import training_config
from cnnspec.api import compile_spec
from cnnspec.training.metrics import classification_report_text, classification_summary
from cnnspec.training.task_results import task_metrics
from tests.conftest import SPECS_DIR
from tests.test_listing_edges import script_functions
from tests.test_task_audit2 import two_heads

NAMES = ["a", "b", "c", "d"]
# a and c are present (c never predicted right), b is predicted but absent, d neither
Y_TRUE = np.array([0, 0, 0, 2, 2])
Y_PRED = np.array([0, 0, 1, 2, 0])
NOTE = (
    "classes b, d have no test images (support 0): recall and F1 are undefined there (n/a), and "
    "the macro averages are over the 2 classes that have test images"
)


def test_macro_averages_are_over_the_classes_with_test_images():
    summary = classification_summary(Y_TRUE, Y_PRED, NAMES)
    present = metrics.classification_report(Y_TRUE, Y_PRED, labels=[0, 2], output_dict=True, zero_division=0)
    assert summary["macro_avg"] == {
        "precision": present["macro avg"]["precision"],
        "recall": present["macro avg"]["recall"],
        "f1": present["macro avg"]["f1-score"],
    }
    assert summary["macro_avg"]["f1"] == 2 / 3  # (it was averaged with two 0s: 0.3333)
    # a predicted absent class has a precision (0: all wrong); recall and F1 are undefined
    assert summary["per_class"]["b"] == {"precision": 0.0, "recall": None, "f1": None, "support": 0}
    assert summary["per_class"]["d"] == {"precision": None, "recall": None, "f1": None, "support": 0}
    assert summary["notes"] == [NOTE]
    text = classification_report_text(Y_TRUE, Y_PRED, NAMES)
    assert "           b    0.0000       n/a       n/a         0\n" in text
    assert "   macro avg    0.8333    0.5833    0.6667         5\n" in text
    assert text.endswith(f"note: {NOTE}\n")
    # every class present: no note, the averages over all of them
    full = classification_summary(np.array([0, 1]), np.array([0, 1]), ["a", "b"])
    assert "notes" not in full and full["macro_avg"]["f1"] == 1.0


def test_the_scripts_summaries_average_the_present_classes_as_train(tmp_path):
    """templates/train.py.j2's class_report and train_task.py.j2's classification_summary give
    cnnspec train's figures (they averaged the absent classes' 0s in, as sklearn's report of
    every label does)."""
    functions = script_functions(SPECS_DIR / "mnist_cnn.yaml")
    functions["precision_recall_fscore_support"] = metrics.precision_recall_fscore_support
    details, text = functions["class_report"](Y_TRUE, Y_PRED, NAMES)
    ours = classification_summary(Y_TRUE, Y_PRED, NAMES)
    for name in NAMES:
        row = {**details[name], "f1": details[name]["f1-score"]}
        del row["f1-score"]
        assert row == ours["per_class"][name]
    assert details["macro avg"]["f1-score"] == ours["macro_avg"]["f1"]
    assert details["weighted avg"]["f1-score"] == ours["weighted_avg"]["f1"]
    assert details["notes"] == [NOTE]
    assert text == classification_report_text(Y_TRUE, Y_PRED, NAMES)
    spec = two_heads(tmp_path)
    task = script_functions(spec)
    task["precision_recall_fscore_support"] = metrics.precision_recall_fscore_support
    kind, outputs = np.array([0, 0, 0]), np.array([[0.9, 0.1], [0.2, 0.8], [0.7, 0.3]])
    config = training_config(compile_spec(spec))
    tags, tags_out = np.zeros((3, 3)), np.full((3, 3), 0.1)
    mine = task_metrics(config, {"kind": kind, "tags": tags}, [outputs, tags_out], {})["outputs"]["kind"]
    theirs = task["output_summary"]("kind", kind, outputs, [])
    assert json.dumps(theirs, sort_keys=True) == json.dumps(mine, sort_keys=True)
    assert mine["macro_f1"] == 0.8 and mine["per_class"]["1"]["recall"] is None
    assert not math.isnan(mine["macro_f1"])


def test_class_names_with_control_characters_are_written_escaped_by_train_and_the_script():
    """A CSV's labels `cat\\x1b[32m` and `dog\\n2` were written raw into classification_report.txt:
    the line break broke the table and the ESC reached whoever read the file in a terminal (the
    console, report.html and metrics.json showed them escaped). train and the script alike."""
    names = ["cat\x1b[32m", "dog\n2", "bird", "fish"]
    text = classification_report_text(Y_TRUE, Y_PRED, names)
    assert "\x1b" not in text and "cat\\x1b[32m" in text and "dog\\x0a2" in text
    assert len(text.splitlines()[2]) == len(text.splitlines()[3])  # (one row each: the table holds)
    assert "note: classes dog\\x0a2, fish have no test images" in text  # (the note's names too)
    functions = script_functions(SPECS_DIR / "mnist_cnn.yaml")
    functions["precision_recall_fscore_support"] = metrics.precision_recall_fscore_support
    assert functions["class_report"](Y_TRUE, Y_PRED, names)[1] == text
