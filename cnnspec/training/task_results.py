"""The test-set results of a model that is not a single classifier: ``metrics.json`` keys,
``task_report.txt`` and the task's pictures (no TensorFlow; the outputs are NumPy arrays).

One output: its task's keys at the top level of ``metrics.json`` (``test_mean_iou``,
``test_f1_macro``, ``test_mae``/``test_r2``, ``test_accuracy``). Several outputs: the same
keys per output under ``outputs: {NAME: {...}}``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cnnspec.analysis.settings_types import TrainConfig
from cnnspec.analysis.tasks import OutputTask
from cnnspec.fileio import write_atomic
from cnnspec.training.task_metrics import output_summary, report_text


def outputs_by_name(tasks: Sequence[OutputTask], outputs: Any) -> dict[str, np.ndarray]:
    """A model's raw outputs (``model.predict``'s, or an export's: a list, a dict or one array)
    as a dict by the name of each of ``tasks``, the model's outputs in order."""
    names = [out.name for out in tasks]
    if isinstance(outputs, dict):
        if all(n in outputs for n in names):
            return {n: np.asarray(outputs[n]) for n in names}
        if len(outputs) == len(names):
            # a model built with dict outputs (`keras.Model(i, {"zeta": …, "alpha": …})`) answers
            # by its keys, while its outputs are named by their layers: Keras flattens a dict in
            # sorted key order, which is the order of model.outputs (and so of ``tasks``)
            return {n: np.asarray(outputs[k]) for n, k in zip(names, sorted(outputs), strict=True)}
        return {n: np.asarray(outputs[n]) for n in names}  # (the KeyError names the missing one)
    if isinstance(outputs, (list, tuple)):
        return {n: np.asarray(o) for n, o in zip(names, outputs, strict=True)}
    return {names[0]: np.asarray(outputs)}


def targets_by_name(config: TrainConfig, y: Any) -> dict[str, np.ndarray]:
    """Targets as a dict by output name."""
    if isinstance(y, dict):
        return {out.name: np.asarray(y[out.name]) for out in config.tasks}
    return {config.tasks[0].name: np.asarray(y)}


def task_metrics(
    config: TrainConfig, y_test: Any, outputs: Any, names: list[str] | dict[str, list[str]]
) -> dict[str, Any]:
    """The ``metrics.json`` entries of every output's task (``names``: the class, label or
    value names; a dict by output name for several outputs, else the first output's)."""
    preds = outputs_by_name(config.tasks, outputs)
    truths = targets_by_name(config, y_test)
    per = {
        out.name: output_summary(
            out,
            truths[out.name],
            preds[out.name],
            names.get(out.name, []) if isinstance(names, dict) else (names if i == 0 else []),
        )
        for i, out in enumerate(config.tasks)
    }
    if len(config.tasks) == 1:
        first = per[config.tasks[0].name]
        listed = names if isinstance(names, list) else names.get(config.tasks[0].name, [])
        return {**first, "output": config.tasks[0].name, "class_names": first.get("class_names", listed)}
    return {"task": "multi-output", "outputs": per}


def task_report(config: TrainConfig, metrics: dict[str, Any], title: str) -> str:
    """Readable text of every output's summary."""
    parts = [title, ""]
    for out in config.tasks:
        summary = metrics["outputs"][out.name] if "outputs" in metrics else metrics
        parts.append(report_text(out, summary))
    return "\n".join(parts)


def write_task_files(
    config: TrainConfig,
    run_dir: Path,
    metrics: dict[str, Any],
    y_test: Any,
    outputs: Any,
    x_test: np.ndarray,
    title: str,
) -> dict[str, Path]:
    """``task_report.txt`` and the pictures of each output's task (scatter plot for regression,
    overlays for segmentation, bars for multi-label, the confusion matrix of a classification
    output), each with the class, label or value names ``metrics`` reports its figures under;
    returns the files written by role."""
    from cnnspec.training.task_plots import plot_output

    files = {"task_report": write_atomic(run_dir / "task_report.txt", task_report(config, metrics, title))}
    preds = outputs_by_name(config.tasks, outputs)
    truths = targets_by_name(config, y_test)
    for out in config.tasks:
        name = picture_name(config, out)
        if name is None:
            continue
        summary = metrics["outputs"][out.name] if "outputs" in metrics else metrics
        names = summary_names(summary)
        path = plot_output(out, x_test, truths[out.name], preds[out.name], run_dir / name, title, names)
        if path is not None:
            files[f"{Path(name).stem}_png"] = path
    return files


def picture_name(config: TrainConfig, out: OutputTask) -> str:
    """The file name of ``out``'s task picture (see :func:`picture_file`)."""
    return picture_file(out.task, out.name, len(config.tasks) > 1)


def picture_file(task: str, name: str, several: bool) -> str:
    """The file name of the task picture of the output ``name``: ``regression.png``
    (``regression_NAME.png`` for one of several outputs); a classification output's is its
    confusion matrix, ``confusion_matrix_NAME.png`` (a classifier alone trains on the
    classifier's path, which writes ``confusion_matrix.png``)."""
    stem = "confusion_matrix" if task == "classification" else task
    return f"{stem}_{name}.png" if several else f"{stem}.png"


def summary_names(summary: dict[str, Any]) -> list[str]:
    """The label, value or class names an output's summary reports its figures under."""
    for key in ("per_label", "per_target"):
        if isinstance(summary.get(key), dict):
            return [str(name) for name in summary[key]]
    return [str(name) for name in summary.get("class_names") or []]
