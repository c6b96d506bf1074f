"""Pictures of a task's test results (matplotlib's object API on Agg, no pyplot):

- regression: predicted vs true values, one scatter per target, with the identity line;
- segmentation: rows of (image, true mask, predicted mask) for the first test images;
- multilabel: per-label precision/recall/F1 bars;
- classification (an output of a multi-output model): the confusion matrix, as the
  classifier's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from cnnspec.analysis.tasks import OutputTask
from cnnspec.errors import printable
from cnnspec.fileio import write_atomic
from cnnspec.training.plots import agg_figure, literal, png_bytes, titled_layout

OVERLAY_ROWS = 6


def plot_output(
    out: OutputTask,
    x: np.ndarray,
    y_true: np.ndarray,
    outputs: np.ndarray,
    target: Path,
    title: str,
    names: list[str] | None = None,
) -> Path | None:
    """The picture of one output's task, written to ``target``. ``names``: the output's class,
    label or value names (numbered where they don't fit)."""
    names = list(names or [])
    if out.task == "regression":
        return plot_regression(y_true, outputs, target, title, names)
    if out.task == "segmentation":
        from cnnspec.training.task_metrics import predicted_mask

        return plot_masks(x, y_true, predicted_mask(outputs, out), out.classes, target, title)
    if out.task == "multilabel":
        from cnnspec.training.task_metrics import multilabel_summary

        summary = multilabel_summary(y_true, outputs, names, out.decision_threshold)
        return plot_labels(summary["per_label"], target, title)
    if out.task == "classification":
        from cnnspec.training.plots import plot_confusion_matrix
        from cnnspec.training.task_metrics import output_summary

        summary = output_summary(out, y_true, outputs, names)
        heading = f"{out.name}: confusion matrix (test accuracy {summary['test_accuracy']:.4f})"
        return plot_confusion_matrix(
            summary["confusion_matrix"],
            summary["class_names"],
            target,
            f"{title}\n{heading}" if title else heading,
        )
    return None


def plot_regression(
    y_true: np.ndarray, y_pred: np.ndarray, target: Path, title: str = "", names: list[str] | None = None
) -> Path:
    """Predicted vs true, one panel per target (titled by its name from ``names``, else its
    index), with the line y = x."""
    t = np.asarray(y_true, dtype="float64").reshape(len(y_pred), -1)
    p = np.asarray(y_pred, dtype="float64").reshape(len(y_pred), -1)
    n = min(t.shape[1], 6)
    known = len(names or []) == t.shape[1]
    labels = [str(name) for name in names or []] if known else [f"target {i}" for i in range(t.shape[1])]
    figure = agg_figure(figsize=(4.2 * n, 4.2), dpi=100)
    for i in range(n):
        axes = figure.add_subplot(1, n, i + 1)
        axes.scatter(t[:, i], p[:, i], s=8, alpha=0.5)
        low, high = float(min(t[:, i].min(), p[:, i].min())), float(max(t[:, i].max(), p[:, i].max()))
        axes.plot([low, high], [low, high], color="grey", linestyle="--", linewidth=1)
        axes.set_xlabel("true")
        axes.set_ylabel("predicted")
        label = literal(printable(labels[i]))  # one line; its dollars drawn as written
        axes.set_title(label if n > 1 else f"{label}: predicted vs true" if known else "predicted vs true")
        axes.grid(True, alpha=0.3)
    titled_layout(figure, title)
    return write_atomic(target, png_bytes(figure))


def _show_image(axes: Any, image: np.ndarray) -> None:
    image = np.asarray(image, dtype="float64")
    low, high = float(image.min()), float(image.max())
    image = (image - low) / (high - low) if high > low else image * 0
    axes.imshow(
        image[..., 0] if image.shape[-1] == 1 else image[..., :3],
        cmap="gray" if image.shape[-1] == 1 else None,
    )
    axes.axis("off")


def plot_masks(
    x: np.ndarray, y_true: np.ndarray | None, y_pred: np.ndarray, classes: int, target: Path, title: str = ""
) -> Path:
    """(image, true mask, predicted mask) for the first few images, written to ``target``."""
    return write_atomic(target, masks_png(x, y_true, y_pred, classes, title))


def masks_png(
    x: np.ndarray,
    y_true: np.ndarray | None,
    y_pred: np.ndarray,
    classes: int,
    title: str = "",
    rows: int = OVERLAY_ROWS,
) -> bytes:
    """(image, true mask, predicted mask) for the first ``rows`` images (no true column
    without targets); the masks are drawn over the image, class 0 left clear."""
    rows = min(len(y_pred), rows)
    columns = 2 if y_true is None else 3
    figure = agg_figure(figsize=(2.4 * columns, 2.4 * rows), dpi=100)
    for r in range(rows):
        panels: list[tuple[str, Any]] = [("image", x[r])]
        if y_true is not None:
            panels.append(("true mask", y_true[r]))
        # a pixel without a prediction (NO_PREDICTION: its outputs are not numbers) is drawn black
        undecided = bool((np.asarray(y_pred[r]) < 0).any())
        panels.append(("predicted mask" + ("\n(black: no prediction)" if undecided else ""), y_pred[r]))
        for c, (label, data) in enumerate(panels):
            axes = figure.add_subplot(rows, columns, r * columns + c + 1)
            if label == "image":
                _show_image(axes, data)
            else:
                _show_image(axes, x[r])
                masked = np.ma.masked_equal(np.asarray(data), 0)  # class 0 (background) stays clear
                from matplotlib import colormaps

                cmap = colormaps["tab10"].with_extremes(under="black")
                axes.imshow(
                    masked, cmap=cmap, vmin=0, vmax=max(classes - 1, 1), alpha=0.6, interpolation="nearest"
                )
                axes.axis("off")
            if r == 0:
                axes.set_title(label)
    titled_layout(figure, title)
    return png_bytes(figure)


#: The width of one tile of :func:`captioned_png` (inches) and its captions' font size.
CAPTION_TILE_INCHES = 3.0
CAPTION_FONT = 8


def captioned_png(images: list[np.ndarray], captions: list[str], wrong: list[bool], title: str = "") -> bytes:
    """A grid of images, each with its caption (true vs predicted labels or values; red where
    the prediction is wrong)."""
    columns = min(4, max(len(images), 1))
    rows = -(-len(images) // columns)
    figure = agg_figure(figsize=(CAPTION_TILE_INCHES * columns, 3.3 * rows), dpi=100)
    for index, (image, caption, bad) in enumerate(zip(images, captions, wrong, strict=True)):
        axes = figure.add_subplot(rows, columns, index + 1)
        _show_image(axes, image)
        axes.set_title(literal(caption), fontsize=CAPTION_FONT, color="#c0392b" if bad else "black")
    titled_layout(figure, title)
    return png_bytes(figure)


def plot_labels(per_label: dict[str, dict[str, float]], target: Path, title: str = "") -> Path:
    """Per-label precision, recall and F1 as grouped bars."""
    names = list(per_label)
    positions = np.arange(len(names))
    figure = agg_figure(figsize=(max(5.0, 0.8 * len(names) + 2), 4), dpi=100)
    axes = figure.add_subplot(1, 1, 1)
    for offset, key in zip((-0.25, 0.0, 0.25), ("precision", "recall", "f1"), strict=True):
        axes.bar(positions + offset, [per_label[n][key] for n in names], width=0.25, label=key)
    axes.set_xticks(positions, labels=[literal(printable(str(n))) for n in names], rotation=45, ha="right")
    axes.set_ylim(0, 1.05)
    axes.legend()
    axes.grid(True, axis="y", alpha=0.3)
    titled_layout(figure, title)
    return write_atomic(target, png_bytes(figure))
