"""Classification reports from labels and predictions (NumPy + scikit-learn, no TensorFlow).

Shared by ``cnnspec train`` and any later command that evaluates a saved model.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def predicted_classes(outputs: np.ndarray, *, binary: bool, from_logits: bool) -> np.ndarray:
    """Class indices from model outputs (probabilities or logits)."""
    outputs = np.asarray(outputs)
    if binary:
        threshold = 0.0 if from_logits else 0.5
        return (outputs.reshape(-1) > threshold).astype("int64")
    return outputs.argmax(axis=-1).astype("int64")


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
    matrix. ``per_class`` has one entry per class, keyed by :func:`distinct_names`."""
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
    return {
        "accuracy": float(np.mean(np.asarray(y_true) == np.asarray(y_pred))) if len(y_true) else 0.0,
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
    return str(text)
