"""Test-set reports for multilabel, regression and segmentation outputs (NumPy, no TensorFlow).

Each ``*_summary`` takes the targets and the model's raw outputs and returns JSON-ready
numbers; :func:`output_summary` adds the ``test_*`` keys ``metrics.json`` uses for the task
(``test_f1_macro``, ``test_mae``/``test_rmse``/``test_r2``, ``test_mean_iou``/
``test_pixel_accuracy``, ``test_accuracy``) and :func:`report_text` the readable report.
A multilabel output's per-label AUC is computed here from its outputs, since Keras' own ``auc``
counts a label without both positives and negatives as 0 (:func:`auc_notes` says so).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cnnspec.analysis.tasks import OutputTask
from cnnspec.training.metrics import (
    NO_PREDICTION,
    classification_summary,
    no_prediction_note,
    predicted_classes,
)


def predicted_labels(outputs: np.ndarray, threshold: float) -> np.ndarray:
    """Multilabel decisions: 1 where the output exceeds the threshold."""
    return (np.asarray(outputs) > threshold).astype("int64")


def multilabel_summary(
    y_true: np.ndarray, outputs: np.ndarray, names: list[str], threshold: float
) -> dict[str, Any]:
    """Per-label precision/recall/F1/support/AUC, macro and micro F1, macro AUC, exact-match
    accuracy. A label's AUC is ``None`` where the targets have only positives or only
    negatives of it (no ranking to score), and the macro AUC averages the other labels."""
    from sklearn.metrics import f1_score, precision_recall_fscore_support, roc_auc_score

    y_true = np.asarray(y_true).astype("int64")
    scores = np.asarray(outputs, dtype="float64")
    finite = np.isfinite(scores)
    # an output that is not a number decides nothing: it is a mistake whatever the target
    # (NaN > threshold is False, which made it a right "absent" for every negative target)
    y_pred = np.where(finite, predicted_labels(outputs, threshold), 1 - y_true)
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, average=None, zero_division=0
    )
    names = _names(names, y_true.shape[1])

    def label_auc(i: int) -> float | None:
        # (AUC ranks the outputs: probabilities and logits score alike; NaN ranks nothing)
        if len(np.unique(y_true[:, i])) != 2:
            return None
        return float(roc_auc_score(y_true[:, i], scores[:, i])) if finite[:, i].all() else float("nan")

    auc = [label_auc(i) for i in range(y_true.shape[1])]
    defined = [value for value in auc if value is not None]
    undecided = int((~finite).sum())
    nothing = bool(scores.size) and undecided == scores.size
    return {
        "threshold": threshold,
        "f1_macro": float("nan") if nothing else float(np.mean(f1)),
        "no_prediction": undecided,
        **({"notes": [no_prediction_note(undecided, int(scores.size), "test labels")]} if undecided else {}),
        "f1_micro": float(f1_score(y_true, y_pred, average="micro", zero_division=0)),
        "auc_macro": float(np.mean(defined)) if defined else None,
        "exact_match": float(np.mean(np.all(y_true == y_pred, axis=1))),
        "label_accuracy": float(np.mean(y_true == y_pred)),
        "per_label": {
            name: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
                "auc": auc[i],
            }
            for i, name in enumerate(names)
        },
    }


def auc_notes(out: OutputTask, summary: dict[str, Any]) -> list[str]:
    """The note of a multilabel output whose listed ``auc`` (Keras' ``AUC(multi_label=True)``)
    counts labels without both positives and negatives in the test set as 0 and averages them
    in, unlike the summary's ``auc_macro``; none when every label has both."""
    if not any(m.name == "auc" for m in out.metrics):
        return []
    undefined = [name for name, row in summary["per_label"].items() if row.get("auc") is None]
    if not undefined:
        return []
    them = ", ".join(repr(str(name)) for name in undefined)
    macro = summary.get("auc_macro")
    rest = (
        f"auc_macro ({macro:.4f}) averages the {len(summary['per_label']) - len(undefined)} other labels"
        if macro is not None
        else "no label has both, so auc_macro is null"
    )
    return [
        f"Keras' auc of output {out.name} counts the label(s) {them} as 0 and averages them in: the "
        f"test set has only positive or only negative examples of them; {rest}"
    ]


def regression_summary(y_true: np.ndarray, outputs: np.ndarray, names: list[str]) -> dict[str, Any]:
    """MAE, RMSE and R² over all targets, and per target when there are several."""
    y_true = np.asarray(y_true, dtype="float64").reshape(len(outputs), -1)
    y_pred = np.asarray(outputs, dtype="float64").reshape(len(outputs), -1)
    names = _names(names, y_true.shape[1])

    def scores(t: np.ndarray, p: np.ndarray) -> dict[str, float]:
        err = p - t
        total = float(np.sum((t - t.mean(axis=0)) ** 2))
        r2 = 1.0 - float(np.sum(err**2)) / total if total > 0 else 0.0
        return {"mae": float(np.mean(np.abs(err))), "rmse": float(np.sqrt(np.mean(err**2))), "r2": r2}

    out = scores(y_true, y_pred)
    # R² over several targets: the mean of each target's R² (scikit-learn's uniform average)
    per = {name: scores(y_true[:, i], y_pred[:, i]) for i, name in enumerate(names)}
    if len(per) > 1:
        out["r2"] = float(np.mean([v["r2"] for v in per.values()]))
    out["per_target"] = per
    return out


def segmentation_summary(
    y_true: np.ndarray, outputs: np.ndarray, names: list[str], out: OutputTask
) -> dict[str, Any]:
    """Pixel accuracy, IoU per class and their mean (over classes that occur in the targets or
    the predictions, as Keras' MeanIoU), and the pixel confusion matrix.

    A pixel whose outputs are not numbers (:data:`NO_PREDICTION`) is a miss of its true class
    (in the accuracy and that class's IoU) and in no class's predicted column; ``no_prediction``
    counts them. When no pixel has a prediction (a diverged model) the figures are NaN."""
    y_true = np.asarray(y_true).astype("int64").reshape(-1)
    y_pred = predicted_mask(outputs, out).reshape(-1)
    classes = out.classes
    decided = y_pred != NO_PREDICTION
    pairs = y_true[decided] * classes + y_pred[decided]
    matrix = np.bincount(pairs, minlength=classes * classes).reshape(classes, classes)
    inter = np.diag(matrix).astype("float64")
    # every pixel of a class counts in its union, the undecided ones too (they are its misses)
    union = matrix.sum(axis=0) + np.bincount(y_true, minlength=classes)[:classes] - inter
    iou = np.where(union > 0, inter / np.maximum(union, 1), np.nan)
    names = _names(names, classes)
    present = ~np.isnan(iou)
    undecided = int((~decided).sum())
    nothing = bool(len(y_pred)) and undecided == len(y_pred)
    return {
        "pixel_accuracy": float("nan") if nothing else float(inter.sum() / max(len(y_true), 1)),
        "mean_iou": float("nan") if nothing else (float(np.mean(iou[present])) if present.any() else 0.0),
        "per_class_iou": {name: (float(iou[i]) if present[i] else None) for i, name in enumerate(names)},
        "confusion_matrix": matrix.tolist(),
        "no_prediction": undecided,
        **({"notes": [no_prediction_note(undecided, len(y_pred), "test pixels")]} if undecided else {}),
    }


def predicted_mask(outputs: np.ndarray, out: OutputTask) -> np.ndarray:
    """Class index per pixel from a segmentation output (N, H, W, C); :data:`NO_PREDICTION`
    for a pixel with a NaN or infinite output."""
    outputs = np.asarray(outputs)
    if out.binary:
        first = outputs[..., 0]
        return np.where(np.isfinite(first), first > out.decision_threshold, NO_PREDICTION).astype("int64")
    finite = np.isfinite(outputs).all(axis=-1)
    return np.where(finite, outputs.argmax(axis=-1), NO_PREDICTION).astype("int64")


def output_summary(
    out: OutputTask, y_true: np.ndarray, outputs: np.ndarray, names: list[str]
) -> dict[str, Any]:
    """The test-set summary of one output, with its task's ``test_*`` keys."""
    if out.task == "multilabel":
        summary = multilabel_summary(y_true, outputs, names, out.decision_threshold)
        notes = [*summary.pop("notes", []), *auc_notes(out, summary)]
        return {
            "task": out.task,
            "test_f1_macro": summary["f1_macro"],
            **summary,
            **({"notes": notes} if notes else {}),
        }
    if out.task == "regression":
        summary = regression_summary(y_true, outputs, names)
        keys = {f"test_{k}": summary[k] for k in ("mae", "rmse", "r2")}
        return {"task": out.task, **keys, "per_target": summary["per_target"]}
    if out.task == "segmentation":
        summary = segmentation_summary(y_true, outputs, names, out)
        return {
            "task": out.task,
            "test_mean_iou": summary["mean_iou"],
            "test_pixel_accuracy": summary["pixel_accuracy"],
            "per_class_iou": summary["per_class_iou"],
            "confusion_matrix": summary["confusion_matrix"],
            "class_names": _names(names, out.classes),
            "no_prediction": summary["no_prediction"],
            **({"notes": summary["notes"]} if "notes" in summary else {}),
        }
    y_pred = predicted_classes(outputs, binary=out.binary, from_logits=out.loss.from_logits)
    summary = classification_summary(y_true, y_pred, _names(names, out.classes))
    return {
        "task": out.task,
        "test_accuracy": summary["accuracy"],
        "macro_f1": summary["macro_avg"]["f1"],
        "per_class": summary["per_class"],
        "confusion_matrix": summary["confusion_matrix"],
        "class_names": _names(names, out.classes),
        "no_prediction": summary["no_prediction"],
        **({"notes": summary["notes"]} if "notes" in summary else {}),
    }


def report_text(out: OutputTask, summary: dict[str, Any]) -> str:
    """A plain-text report of one output's summary (the task's headline numbers first)."""
    lines = [f"output {out.name} ({out.task})"]
    if out.task == "multilabel":
        lines.append(
            f"macro F1 {summary['f1_macro']:.4f}  micro F1 {summary['f1_micro']:.4f}  "
            f"exact match {summary['exact_match']:.4f}  threshold {summary['threshold']:g}"
        )
        macro = summary.get("auc_macro")
        if macro is not None:
            lines.append(f"macro AUC {macro:.4f} (over the labels with positive and negative examples)")
        lines += _per_row_table("label", summary["per_label"])
    elif out.task == "regression":
        lines.append(
            f"MAE {summary['test_mae']:.4f}  RMSE {summary['test_rmse']:.4f}  R² {summary['test_r2']:.4f}"
        )
        for name, row in summary["per_target"].items():
            lines.append(f"{name:>20} MAE {row['mae']:.4f}  RMSE {row['rmse']:.4f}  R² {row['r2']:.4f}")
    elif out.task == "segmentation":
        lines.append(
            f"mean IoU {summary['test_mean_iou']:.4f}  pixel accuracy {summary['test_pixel_accuracy']:.4f}"
        )
        for name, value in summary["per_class_iou"].items():
            lines.append(f"{name:>20} IoU {'—' if value is None else f'{value:.4f}'}")
    else:
        lines.append(f"accuracy {summary['test_accuracy']:.4f}  macro F1 {summary['macro_f1']:.4f}")
        lines += _per_row_table("class", summary["per_class"])
    lines += [f"note: {note}" for note in summary.get("notes") or []]
    return "\n".join(lines) + "\n"


def _per_row_table(what: str, rows: dict[str, dict[str, Any]]) -> list[str]:
    """The lines of a per-label or per-class table: precision, recall, F1, support (and the
    AUC of labels, ``—`` where it is undefined)."""
    auc = any("auc" in row for row in rows.values())
    lines = [
        f"{what:>20} {'precision':>10} {'recall':>10} {'f1':>10} {'support':>8}"
        + (f" {'auc':>8}" if auc else "")
    ]
    for name, row in rows.items():
        # (n/a: undefined, a class without test images has no recall or F1)
        figures = " ".join(
            f"{'n/a' if row[k] is None else format(row[k], '.4f'):>10}" for k in ("precision", "recall", "f1")
        )
        line = f"{name:>20} {figures} {row['support']:8d}"
        if auc:
            line += f" {'—' if row.get('auc') is None else format(row['auc'], '.4f'):>8}"
        lines.append(line)
    return lines


def _names(names: list[str], count: int) -> list[str]:
    return list(names[:count]) if len(names) >= count else [str(i) for i in range(count)]


#: The headline ``test_*`` keys of each task, with their labels, in display order.
HEADLINE_KEYS: dict[str, tuple[tuple[str, str], ...]] = {
    "classification": (("test_accuracy", "test accuracy"),),
    "multilabel": (("test_f1_macro", "test macro F1"),),
    "regression": (("test_mae", "test MAE"), ("test_r2", "test R²")),
    "segmentation": (("test_mean_iou", "test mean IoU"), ("test_pixel_accuracy", "test pixel accuracy")),
}


#: How a non-finite figure is stored in cnnspec's JSON files (JSON has no NaN or infinity).
_NON_FINITE_TEXT = ("nan", "inf", "-inf")


def headline(metrics: dict[str, Any]) -> list[tuple[str, float]]:
    """The task's headline figures from a ``metrics.json`` document (every output's, labelled
    with its name, for a multi-output model); today's classifiers give their test accuracy.

    A diverged run's figure, stored as the text ``"nan"`` (or ``"inf"``, ``"-inf"``), is one
    of them, as the float it stands for: leaving it out left a diverged regression or
    segmentation run with no score at all where a diverged classifier shows ``nan``."""
    if isinstance(metrics.get("outputs"), dict):
        rows: list[tuple[str, float]] = []
        for name, part in metrics["outputs"].items():
            rows += [(f"{name} {label.removeprefix('test ')}", value) for label, value in headline(part)]
        return rows
    keys = HEADLINE_KEYS.get(str(metrics.get("task", "classification")), HEADLINE_KEYS["classification"])
    return [(label, float(metrics[key])) for key, label in keys if _is_figure(metrics.get(key))]


def _is_figure(value: Any) -> bool:
    """Whether ``value`` is a figure as metrics.json stores one: a number (not a boolean, which
    Python counts as one), or a non-finite one's text."""
    if isinstance(value, str):
        return value in _NON_FINITE_TEXT
    return isinstance(value, (int, float)) and not isinstance(value, bool)
