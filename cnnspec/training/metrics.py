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


#: What the note of classes without test images says (:func:`absent_classes_note`).
NO_TEST_IMAGES = "no test images"


def absent_classes_note(names: list[str], present: int) -> str:
    """The note of the classes ``names`` that have no test image (support 0), of which the
    ``present`` other classes are averaged."""
    shown = ", ".join(names[:10]) + (f", … ({len(names)} in all)" if len(names) > 10 else "")
    which = f"class {shown} has" if len(names) == 1 else f"classes {shown} have"
    return (
        f"{which} {NO_TEST_IMAGES} (support 0): recall and F1 are undefined there (n/a), and the "
        f"macro averages are over the {present} classes that have test images"
    )


def classification_summary(y_true: np.ndarray, y_pred: np.ndarray, class_names: list[str]) -> dict[str, Any]:
    """Accuracy, per-class precision/recall/F1/support, macro and weighted averages, confusion
    matrix. ``per_class`` has one entry per class, keyed by :func:`distinct_names`.

    A :data:`NO_PREDICTION` in ``y_pred`` is a miss of its true class (recall, accuracy) and
    in no class's predicted column (precision, the confusion matrix's columns); ``no_prediction``
    counts them, and ``notes`` says so when there are any.

    A class with no test image (support 0: a ``--data`` of some of the classes) has no recall
    or F1 (``None``, not 0), nor a precision unless it was predicted; the macro averages are
    over the classes that have test images, as scikit-learn's report of those labels has them
    (averaging the 0s of absent classes in made a model right on every present class score
    low), and ``notes`` names the absent ones."""
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    class_names = distinct_names(class_names)
    labels = list(range(len(class_names)))
    y_true, y_pred = np.asarray(y_true).reshape(-1), np.asarray(y_pred).reshape(-1)
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0
    )
    present = support > 0
    predicted = np.array([int((y_pred == i).sum()) for i in labels], dtype="int64")
    per_class = {
        name: {
            "precision": float(precision[i]) if present[i] or predicted[i] else None,
            "recall": float(recall[i]) if present[i] else None,
            "f1": float(f1[i]) if present[i] else None,
            "support": int(support[i]),
        }
        for i, name in enumerate(class_names)
    }
    total = max(int(support.sum()), 1)
    undecided = int((y_pred == NO_PREDICTION).sum())
    if undecided and undecided == len(y_pred):  # no prediction at all: no average to report
        precision = recall = f1 = np.full(len(labels), np.nan)
    notes = [no_prediction_note(undecided, len(y_true))] if undecided else []
    if present.any() and not present.all():
        absent = [class_names[i] for i in labels if not present[i]]
        notes.append(absent_classes_note(absent, int(present.sum())))
    # (no test image at all: nothing to average, 0 as before)
    averaged = present if present.any() else np.ones(len(labels), dtype=bool)
    return {
        "accuracy": decided_accuracy(y_true, y_pred),
        "no_prediction": undecided,
        **({"notes": notes} if notes else {}),
        "per_class": per_class,
        "macro_avg": {
            "precision": _mean(precision[averaged]),
            "recall": _mean(recall[averaged]),
            "f1": _mean(f1[averaged]),
        },
        "weighted_avg": {
            "precision": float((precision * support).sum() / total),
            "recall": float((recall * support).sum() / total),
            "f1": float((f1 * support).sum() / total),
        },
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
    }


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if len(values) else 0.0


def _figure(value: float | None, width: int) -> str:
    """A report's figure: ``n/a`` where it is undefined (a class without test images)."""
    return f"{'n/a' if value is None else format(value, '.4f'):>{width}}"


def classification_report_text(y_true: np.ndarray, y_pred: np.ndarray, class_names: list[str]) -> str:
    """A text report laid out as scikit-learn's (per-class precision, recall, F1, support; the
    accuracy; the macro and weighted averages), with ``n/a`` for the figures a class without
    test images has none of, and the summary's notes below."""
    from cnnspec.errors import printable

    summary = classification_summary(y_true, y_pred, class_names)
    rows = summary["per_class"]
    # the names as the console shows them: a class name's ESC or line break (a CSV's label)
    # reached whoever read the file raw, and broke its table
    shown = {name: printable(str(name)) for name in rows}
    width = max(12, *(len(name) for name in shown.values()))
    head = f"{'':>{width}} {'precision':>9} {'recall':>9} {'f1-score':>9} {'support':>9}"
    lines = [head, ""]
    for name, row in rows.items():
        figures = " ".join(_figure(row[key], 9) for key in ("precision", "recall", "f1"))
        lines.append(f"{shown[name]:>{width}} {figures} {row['support']:>9}")
    lines.append("")
    total = sum(row["support"] for row in rows.values())
    undecided = summary["no_prediction"]
    if not undecided:
        lines.append(f"{'accuracy':>{width}} {'':>9} {'':>9} {summary['accuracy']:>9.4f} {total:>9}")
    for key, label in (("macro_avg", "macro avg"), ("weighted_avg", "weighted avg")):
        figures = " ".join(_figure(summary[key][part], 9) for part in ("precision", "recall", "f1"))
        lines.append(f"{label:>{width}} {figures} {total:>9}")
    text = "\n".join(lines) + "\n"
    if undecided:  # the accuracy of the decided and undecided images alike, below
        text += f"\n{'accuracy':>12} {summary['accuracy']:.4f}\n"
    for note in summary.get("notes") or []:
        text += f"note: {printable(note)}\n"
    return text
