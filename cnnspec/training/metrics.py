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


def classification_summary(y_true: np.ndarray, y_pred: np.ndarray, class_names: list[str]) -> dict[str, Any]:
    """Accuracy, per-class precision/recall/F1/support, macro and weighted averages, confusion matrix."""
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

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
        target_names=[str(n) for n in class_names],
        digits=4,
        zero_division=0,
    )
    return str(text)
