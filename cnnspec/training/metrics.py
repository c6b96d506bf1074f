"""Classification reports from labels and predictions (NumPy + scikit-learn, no TensorFlow).

Shared by ``cnnspec train`` and any later command that evaluates a saved model.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: The predicted class of an image (or pixel) whose outputs are not all finite numbers (a
#: diverged model): no class at all, so it never equals a true class and lies in no class's
#: predicted column (``argmax`` of a NaN row is 0, which scored a diverged model as one that
#: predicts class 0 everywhere).
NO_PREDICTION = -1


def predicted_classes(outputs: np.ndarray, *, binary: bool, from_logits: bool) -> np.ndarray:
    """Class indices from model outputs (probabilities or logits); :data:`NO_PREDICTION`
    for a row with a NaN or infinite output."""
    outputs = np.asarray(outputs)
    if binary:
        threshold = 0.0 if from_logits else 0.5
        flat = outputs.reshape(-1)
        return np.where(np.isfinite(flat), flat > threshold, NO_PREDICTION).astype("int64")
    if outputs.ndim == 0 or outputs.shape[-1] == 0:
        return outputs.argmax(axis=-1).astype("int64")
    finite = np.isfinite(outputs).all(axis=-1)
    return np.where(finite, outputs.argmax(axis=-1), NO_PREDICTION).astype("int64")


def decided_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """The fraction of ``y_pred`` (classes, :data:`NO_PREDICTION` counted as a mistake) equal
    to ``y_true``: 0.0 without images, and NaN when no image has a prediction (a diverged
    model has no score, which ``cnnspec runs`` and report.html show as such, not 0 %)."""
    y_true, y_pred = np.asarray(y_true).reshape(-1), np.asarray(y_pred).reshape(-1)
    if not len(y_true):
        return 0.0
    if not (y_pred != NO_PREDICTION).any():
        return float("nan")
    return float(np.mean(y_true == y_pred))


#: What every note of decisions without a prediction says (:func:`no_prediction_note`).
NOT_NUMBERS = "the model's outputs are not numbers"


def no_prediction_note(count: int, total: int, what: str = "test images") -> str:
    """The note of ``count`` of ``total`` decisions without a prediction (outputs that are not
    numbers)."""
    if count == total:
        return (
            f"none of the {total} {what} has a prediction: {NOT_NUMBERS} (its "
            "training diverged), so its test scores are not numbers either"
        )
    # (a multi-label output's label is a yes/no decision: one without a prediction is a wrong one)
    counted = (
        "each is counted as a wrong decision"
        if what.endswith("labels")
        else "they are counted as mistakes and lie in no class's predicted column"
    )
    return f"{count} of {total} {what} have no prediction: {NOT_NUMBERS} (its training diverged?); {counted}"


def distinct_names(class_names: list[str]) -> list[str]:
    """The class names as results key them: each name once. The data sources refuse a name
    given twice (training/data.py), but a run trained before they did (its lock.json names the
    classes) can still have one: a repeated name gets its class index (``cat (class 1)``), so
    no class's figures replace another's in ``per_class`` (a dict keyed by name)."""
    counts: dict[str, int] = {}
    for name in class_names:
        counts[str(name)] = counts.get(str(name), 0) + 1
    out = [
        f"{name} (class {i})" if counts[str(name)] > 1 else str(name) for i, name in enumerate(class_names)
    ]
    return out if len(set(out)) == len(out) else [f"{name} (class {i})" for i, name in enumerate(class_names)]


def classification_summary(y_true: np.ndarray, y_pred: np.ndarray, class_names: list[str]) -> dict[str, Any]:
    """Accuracy, per-class precision/recall/F1/support, macro and weighted averages, confusion
    matrix. ``per_class`` has one entry per class, keyed by :func:`distinct_names`.

    A :data:`NO_PREDICTION` in ``y_pred`` is a miss of its true class (recall, accuracy) and
    in no class's predicted column (precision, the confusion matrix's columns); ``no_prediction``
    counts them, and ``notes`` says so when there are any."""
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    class_names = distinct_names(class_names)
    labels = list(range(len(class_names)))
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0
    )
    per_class = {
        name: {
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": int(support[i]),
        }
        for i, name in enumerate(class_names)
    }
    total = max(int(support.sum()), 1)
    undecided = int((np.asarray(y_pred) == NO_PREDICTION).sum())
    if undecided and undecided == len(y_pred):  # no prediction at all: no average to report
        precision = recall = f1 = np.full(len(labels), np.nan)
    return {
        "accuracy": decided_accuracy(y_true, y_pred),
        "no_prediction": undecided,
        **({"notes": [no_prediction_note(undecided, len(y_true))]} if undecided else {}),
        "per_class": per_class,
        "macro_avg": {
            "precision": float(precision.mean()),
            "recall": float(recall.mean()),
            "f1": float(f1.mean()),
        },
        "weighted_avg": {
            "precision": float((precision * support).sum() / total),
            "recall": float((recall * support).sum() / total),
            "f1": float((f1 * support).sum() / total),
        },
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
    }


def classification_report_text(y_true: np.ndarray, y_pred: np.ndarray, class_names: list[str]) -> str:
    """scikit-learn's text report (per-class precision, recall, F1, support)."""
    from sklearn.metrics import classification_report

    text = classification_report(
        y_true,
        y_pred,
        labels=list(range(len(class_names))),
        target_names=distinct_names(class_names),  # the names per_class has
        digits=4,
        zero_division=0,
    )
    undecided = int((np.asarray(y_pred) == NO_PREDICTION).sum())
    if undecided:  # (scikit-learn then shows a "micro avg" row instead of the accuracy)
        accuracy = decided_accuracy(y_true, y_pred)
        note = no_prediction_note(undecided, len(y_true))
        text = f"{text}\n{'accuracy':>12} {accuracy:.4f}\nnote: {note}\n"
    return str(text)
