"""Test-set evaluation of a saved model: the ``evaluation.json`` document.

``evaluation.json`` keys (``format`` 1):

- ``model``, ``run_dir`` (or null), ``name`` — what was evaluated; ``runtime`` (keras, onnx or
  tflite) and, for an export, ``export`` (its path);
- ``data`` — ``source`` (as in lock.json), ``split`` ("test"), ``images``, ``content_hash``,
  ``matches_run`` (true/false when compared with the run's lock.json, else null), ``of_run``
  (true: the test split of the run's own data source; false: ``--data``, another source);
- ``accuracy``, ``loss`` and ``metrics`` (every metric of the spec's ``training.metrics``, by
  its logged name, as ``model.evaluate`` computes it; for an export, loss and accuracy
  computed from its outputs);
- ``class_names``, ``per_class`` (precision, recall, f1, support per class), ``macro_avg``,
  ``weighted_avg``, ``confusion_matrix`` (true class in rows); ``calibration``: how far the
  top-class confidence can be trusted (ECE, MCE, Brier score, the reliability bins:
  :mod:`cnnspec.reporting.calibration`);
- ``temperature``: the temperature the class probabilities were scaled by (1: the model's
  own; with ``--ensemble``, one per model, the target's first:
  :mod:`cnnspec.reporting.temperature`);
- ``seconds`` (evaluation and prediction passes), ``images_per_second`` (of the prediction
  pass, first-call tracing included); ``notes``.

Where the files go (:func:`evaluation_folder`): ``--out``, else the run folder; but an
evaluation of another source (``--data``) never replaces the run's own files of its test set
(``confusion_matrix.png``, ``evaluation.json``, a task's ``task_report.txt`` and picture, which
``report`` and ``visualize`` read as the run's): aimed at the run folder, it goes to
``evaluations/<source>/`` in it instead (the same file again, changed or not, to the same
folder; another file of that name to ``evaluations/<source>-<hash>/``).

A model that is not a single classifier (multilabel, regression, segmentation, several
outputs) gets, instead of the classification keys, ``task`` and the keys ``metrics.json`` has
for its task (``test_mean_iou``, ``test_f1_macro``, ``test_mae``/``test_r2`` …; one set per
output under ``outputs`` for several outputs), and ``task_report.txt`` plus the task's picture
beside ``evaluation.json``. A single multi-label output keeps the calibration of its label
decisions, a single segmentation output that of its pixels (``calibration``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cnnspec.errors import UsageError
from cnnspec.jsontext import json_safe, json_text
from cnnspec.reporting.held_out import load_test_data
from cnnspec.reporting.model_graph import OutputKind
from cnnspec.reporting.predictions import TestData
from cnnspec.reporting.run import Run

FORMAT = 1


@dataclass
class Evaluation:
    """An evaluation's document, its text report, and the test data it used."""

    document: dict[str, Any]
    report_text: str
    data: TestData
    outputs: Any = None  # the model's raw outputs (kept for the pictures of other tasks)


def evaluate(
    run: Run,
    model: Any,
    data: str | None = None,
    views: tuple[str, ...] = (),
    members: Sequence[Any] = (),
    temperature: float = 1.0,
) -> Evaluation:
    """Evaluate ``model`` on the run's test split (or ``data``) with the spec's loss and metrics
    (``views``: ``--tta``'s; ``members``: ``--ensemble``'s other models, checked against it:
    :func:`tta_evaluation`; ``temperature``: the target's, a classifier's (or a multi-label
    output's) probabilities scaled by it, each member's by its own:
    :mod:`cnnspec.reporting.temperature`)."""
    from cnnspec.reporting.temperature import refuse_tasks, scaled_answer
    from cnnspec.training import builders
    from cnnspec.training.filelist import ImageFiles
    from cnnspec.training.output_losses import make_callback, output_rows
    from cnnspec.training.pipeline import make_dataset

    model = listed_outputs(model)
    test = load_test_data(run, model, data)
    if len(test.x) == 0:
        raise UsageError("expected a test split with images; it is empty", "check data.limit and the source")
    config = test.config
    kind = _kind(config)
    tasks = config.tasks if config.task_path else None
    temperatures = [temperature, *(member.temperature for member in members)]
    for value in temperatures:
        refuse_tasks(tasks, value)
    if members:
        from cnnspec.reporting.ensemble import check_members

        test.notes += check_members(run, model, members, test, checks_split=data is None)
    if views or members:

        def keras_outputs(keras_model: Any, scale: float) -> Callable[[np.ndarray], Any]:
            def outputs(batch: np.ndarray) -> Any:
                return scaled_answer(keras_model.predict(batch, batch_size=64, verbose=0), tasks, kind, scale)

            return outputs

        keras_models = [model, *(member.model for member in members)]
        models = [keras_outputs(m, t) for m, t in zip(keras_models, temperatures, strict=True)]
        evaluation = tta_evaluation(run, test, views, models, "keras", members)
        return _of_run(_with_temperature(evaluation, temperatures), data)
    model.compile(
        loss=builders.loss(config),
        loss_weights=builders.loss_weights(config),
        metrics=builders.metrics(config),
    )
    dataset = make_dataset(test.x, test.y, test.settings)
    start = time.perf_counter()
    losses = make_callback(test.settings.batch_size)  # (Keras' NAME_loss: a mean of batch means)
    results = model.evaluate(dataset, verbose=0, return_dict=True, callbacks=[losses])
    middle = time.perf_counter()
    outputs = model.predict(dataset, verbose=0)
    end = time.perf_counter()
    results.update(losses.evaluated(output_rows(outputs)))
    seconds, predict_seconds = end - start, end - middle
    if isinstance(test.x, ImageFiles):  # a streamed source: images that failed to decode were dropped
        from cnnspec.training.stream import settle

        before = len(test.y)
        # (files of --data that failed to decode carry --data's hint: load_test_data set it)
        test.x, test.y = settle(test.x, test.y)
        if len(test.y) < before:
            test.notes.append(f"left out {before - len(test.y)} image file(s) that failed to decode")
    metrics = {k: json_safe(float(v)) for k, v in results.items() if k != "compile_metrics"}
    if config.task_path:
        if temperature != 1.0:  # (one multi-label or segmentation output: refuse_tasks let no other)
            outputs = scaled_answer(outputs, tasks, kind, temperature)
            scaled = task_loss(outputs, test.y, tasks[0]) if tasks else None
            if scaled is not None:  # the loss of the probabilities reported, as a classifier's
                metrics["loss"] = json_safe(scaled)
            test.notes.append(
                f"{'the loss and ' if scaled is None else ''}the spec's metrics: of the model's own "
                "probabilities (Keras computes them before the temperature); "
                f"{'the loss, ' if scaled is not None else ''}the task's figures and calibration "
                "are of the scaled ones"
            )
        evaluation = _task_evaluation(run, test, outputs, metrics, seconds, predict_seconds, "keras")
        return _of_run(_with_temperature(evaluation, [temperature]), data)
    if isinstance(outputs, list):
        outputs = outputs[0]
    if temperature != 1.0:  # the loss of the probabilities reported; Keras' was of the model's own
        outputs = scaled_answer(outputs, None, kind, temperature)
        metrics["loss"] = json_safe(_loss(outputs, test.y, config))
        others = [name for name in metrics if name not in ("loss", "accuracy")]
        if others:
            test.notes.append(
                f"{', '.join(others)}: of the model's own probabilities (Keras computes them "
                "before the temperature); the loss, calibration and confidences are of the scaled ones"
            )
    evaluation = _evaluation(run, test, outputs, metrics, seconds, predict_seconds, "keras")
    return _of_run(_with_temperature(evaluation, [temperature]), data)


def _kind(config: Any) -> OutputKind:
    """How a classifier of ``config`` answers: one sigmoid unit or classes, logits or not."""
    return OutputKind(binary=config.binary, from_logits=config.loss.from_logits)


def _with_temperature(evaluation: Evaluation, temperatures: Sequence[float]) -> Evaluation:
    """The document of a classifier, a multi-label or a segmentation model with the
    ``temperature`` its probabilities were scaled by (a list, the target's first, for an
    ensemble)."""
    doc = evaluation.document
    if doc.get("task", "classification") in ("classification", "multilabel", "segmentation"):
        doc["temperature"] = temperatures[0] if len(temperatures) == 1 else list(temperatures)
        if (doc.get("tta") or doc.get("ensemble")) and any(t != 1.0 for t in temperatures):
            doc["notes"] = [*doc.get("notes", []), MEAN_OF_SCALED]
    return evaluation


#: Said where a temperature scales what ``--tta`` or ``--ensemble`` averages: each view's (each
#: member's) probabilities are scaled before the mean, as the file ``export --tta`` writes
#: answers (its temperature folded into the weights). One view's top class never changes with
#: a temperature; the mean's may (a hunt measured accuracy 0.7242 → 0.7521 under --tta hflip).
MEAN_OF_SCALED = (
    "the temperature scales each view's and each model's probabilities before the mean: unlike "
    "one view's, the top class of the mean may change with it, and so may the accuracy "
    "(--temperature none: the mean of the models' own probabilities)"
)


def listed_outputs(model: Any) -> Any:
    """``model`` with its outputs as a list, named by their layers as its tasks are: a model
    built with dict outputs (``keras.Model(i, {"zeta": …, "alpha": …})``) is compiled and
    answers by its dict keys, which are not its outputs' names. The same layers and weights,
    in Keras' own order of the dict's outputs (model.outputs)."""
    import keras

    try:
        structured = model.output
    except (AttributeError, ValueError):  # a model never called: nothing to restructure
        return model
    if not isinstance(structured, dict):
        return model
    return keras.Model(model.inputs, model.outputs, name=model.name)


def _of_run(evaluation: Evaluation, data: str | None) -> Evaluation:
    """``evaluation`` with ``data.of_run`` set: whether it is of the run's own test split
    (no ``--data``), which decides where its files may go (:func:`evaluation_folder`)."""
    evaluation.document["data"]["of_run"] = data is None
    return evaluation


def evaluate_export(
    run: Run,
    record: Any,
    session: Any,
    data: str | None = None,
    model: Any = None,
    views: tuple[str, ...] = (),
    temperature: float = 1.0,
    keras: str = "use --runtime keras for them",
) -> Evaluation:
    """Evaluate a verified export (``record``, run by ``session``) on the run's test split, with
    the report :func:`evaluate` gives. Loss and accuracy are computed from the export's outputs
    in NumPy; other metrics of the spec need ``--runtime keras``. A model of several outputs is
    scored on every output the file answers (in the model's order), each as Keras' evaluate scores
    it, with each output's loss (:func:`export_task_losses`).

    ``model``: the Keras model, needed only to describe data for a model without a spec.
    ``views``: ``--tta``'s (:func:`tta_evaluation`). ``temperature``: a classifier's
    probabilities scaled by it (:mod:`cnnspec.reporting.temperature`). ``keras``: where the
    notes send for what Keras alone computes (a served file has no Keras model of its own).
    """
    from cnnspec.export.runtimes import predict_all_batches, predict_batches
    from cnnspec.reporting.temperature import refuse_tasks, scaled_answer
    from cnnspec.training.imagefiles import scale_batch

    test = load_test_data(run, model if model is not None else record, data)
    if len(test.x) == 0:
        raise UsageError("expected a test split with images; it is empty", "check data.limit and the source")
    config = test.config
    tasks = config.tasks if config.task_path else None
    refuse_tasks(tasks, temperature)
    further = record.remaining(temperature)  # (an export may answer scaled already)
    batch = test.settings.batch_size or 64
    several = len(config.tasks) > 1
    # a model of several outputs: every one the file answers, in the model's order (a list, as
    # Keras' predict gives them); one output: its array alone
    predicted = predict_all_batches if several else predict_batches
    if views:

        def export_outputs(images: np.ndarray) -> Any:
            return scaled_answer(predicted(session, images, batch), tasks, _kind(config), further)

        evaluation = tta_evaluation(run, test, views, [export_outputs], record.runtime)
        evaluation.document["export"] = str(record.path)
        return _of_run(_with_temperature(evaluation, [temperature]), data)
    if config.task_path:  # the task's figures from the export's outputs (each output's)
        start = time.perf_counter()
        chunks = [
            predicted(session, scale_batch(test.x[i : i + batch], test.settings.rescale), batch)
            for i in range(0, len(test.x), batch)
        ]
        outputs: Any = (
            [np.concatenate(parts) for parts in zip(*chunks, strict=True)]
            if several
            else np.concatenate(chunks)
        )
        seconds = time.perf_counter() - start
        outputs = scaled_answer(outputs, tasks, OutputKind(), further)  # (tasks say how to read)
        # the loss from the outputs, as Keras computes it (task_loss; dice has no equal here);
        # the spec's metric objects are Keras': said in a note, as a classifier's missing
        # metrics are, so that a "loss": null is not read as a figure that was lost
        found = export_task_losses(outputs, test.y, tasks or ())
        loss = found.get("loss")
        test.notes.append(
            f"{'loss and ' if loss is None else ''}the spec's metrics: computed by Keras only; {keras} "
            f"(the {record.runtime} report has the task's own figures, computed from its outputs)"
        )
        evaluation = _task_evaluation(run, test, outputs, found, seconds, seconds, record.runtime)
        evaluation.document["export"] = str(record.path)
        return _of_run(_with_temperature(evaluation, [temperature]), data)
    start = time.perf_counter()
    outputs = np.concatenate(
        [
            predict_batches(session, scale_batch(test.x[i : i + batch], test.settings.rescale), batch)
            for i in range(0, len(test.x), batch)
        ]
    )
    seconds = time.perf_counter() - start
    outputs = scaled_answer(outputs, None, _kind(config), further)
    metrics: dict[str, Any] = {"loss": json_safe(_loss(outputs, test.y, config))}
    others = [m.name for m in config.metrics if m.name != "accuracy"]
    if others:
        test.notes.append(
            f"{', '.join(others)}: computed by Keras only; {keras} "
            f"(the {record.runtime} report has loss, accuracy and the per-class figures)"
        )
    evaluation = _evaluation(run, test, outputs, metrics, seconds, seconds, record.runtime)
    evaluation.document["metrics"]["accuracy"] = evaluation.document["accuracy"]
    evaluation.document["export"] = str(record.path)
    return _of_run(_with_temperature(evaluation, [temperature]), data)


#: Images scaled and run at a time by :func:`tta_evaluation` (each view of them in turn).
TTA_CHUNK = 1024


def tta_evaluation(
    run: Run,
    test: TestData,
    views: tuple[str, ...],
    models: Sequence[Callable[[np.ndarray], Any]],
    runtime: str,
    members: Sequence[Any] = (),
) -> Evaluation:
    """``--tta`` and ``--ensemble``: the report of the outputs averaged over each test image and
    its ``views`` (reporting/tta.py) and over ``models``: the raw outputs of a scaled batch, by
    any runtime (a list in the model's order for several outputs), the target's first, then
    those of the ``members`` (reporting/ensemble.py). A classifier's loss and accuracy come from
    its averaged probabilities, as an export's do; another task's loss (one output:
    :func:`single_task_loss`) and figures from its averaged outputs. The spec's other metrics
    are Keras' own, of one view of one model: left out, with a note."""
    from cnnspec.reporting.tta import as_outputs, averaged, averaged_outputs, describe, refuse_tasks
    from cnnspec.training.imagefiles import scale_batch

    config = test.config
    if views:  # (--ensemble alone averages a regression's values: the same image to each member)
        refuse_tasks(config.tasks, "evaluate")
    kind = _kind(config)
    if config.task_path:
        mean = averaged_outputs(models, views, config.tasks)
    else:
        mean = averaged([_probabilities_of(outputs, kind) for outputs in models], views)
    start = time.perf_counter()
    chunks = [
        mean(scale_batch(test.x[i : i + TTA_CHUNK], test.settings.rescale))
        for i in range(0, len(test.x), TTA_CHUNK)
    ]
    seconds = time.perf_counter() - start
    options = ([f"--tta {','.join(views)}"] if views else []) + (["--ensemble"] if members else [])
    mean_of = "the mean" + (f" over it and {describe(views)}" if views else "")
    if members:
        from cnnspec.reporting.ensemble import describe as who

        mean_of += f" of {who(run, members)}"
    if config.task_path:
        several = isinstance(chunks[0], list)
        outputs = [np.concatenate(part) for part in zip(*chunks)] if several else np.concatenate(chunks)
        how = _averaged_as(config.tasks, views)
        # the loss of the averaged outputs, as an export of the same mean reports it
        loss = single_task_loss(outputs, test.y, config.tasks)
        test.notes.append(
            f"{' '.join(options)}: each test image's outputs are {mean_of} ({how})"
            f"; {'the loss and ' if loss is not None else ''}the task's figures are of that mean "
            f"({'' if loss is not None else 'loss and '}the spec's metrics: "
            f"evaluate without {' and '.join(options)})"
        )
        found = {"loss": json_safe(loss)} if loss is not None else {}
        evaluation = _task_evaluation(run, test, outputs, found, seconds, seconds, runtime)
    else:
        outputs = as_outputs(np.concatenate(chunks), kind)
        metrics: dict[str, Any] = {"loss": json_safe(_loss(outputs, test.y, config))}
        note = (
            f"{' '.join(options)}: each test image's class probabilities are {mean_of}; the loss, "
            "the accuracy and the per-class figures are of that mean"
        )
        others = [m.name for m in config.metrics if m.name != "accuracy"]
        if others:
            note += f" ({', '.join(others)}: evaluate without {' and '.join(options)})"
        test.notes.append(note)
        evaluation = _evaluation(run, test, outputs, metrics, seconds, seconds, runtime)
        evaluation.document["metrics"]["accuracy"] = evaluation.document["accuracy"]
    evaluation.document["tta"] = list(views)
    if members:
        evaluation.document["ensemble"] = [str(member.given) for member in members]
    return evaluation


def _averaged_as(tasks: Sequence[Any], views: tuple[str, ...]) -> str:
    """How :func:`~cnnspec.reporting.tta.averaged_outputs` averaged the outputs of ``tasks``:
    as probabilities (a mask's maps mirrored back where ``views`` are given), a regression's
    values as they are (``--ensemble`` only: ``--tta`` refuses a regression)."""
    said = []
    if any(task.task != "regression" for task in tasks):
        said.append("as probabilities" + ("; a mask's maps mirrored back" if views else ""))
    if any(task.task == "regression" for task in tasks):
        said.append("a regression's values as they are")
    return "; ".join(said)


def _probabilities_of(outputs: Callable[[np.ndarray], Any], kind: Any) -> Callable[[np.ndarray], np.ndarray]:
    from cnnspec.reporting.predictions import probabilities

    return lambda batch: probabilities(outputs(batch), kind)


def _loss(outputs: np.ndarray, y: np.ndarray, config: Any) -> float | None:
    """The spec's crossentropy loss from raw outputs, as Keras computes it (probabilities
    clipped to [1e-7, 1 - 1e-7]; label smoothing on one-hot and binary targets); a focal loss
    weighs each term as Keras' ``CategoricalFocalCrossentropy`` (``alpha (1 - p)^gamma``) and
    ``BinaryFocalCrossentropy`` (``(1 - p_t)^gamma``, with class balancing ``alpha`` on the
    positives and ``1 - alpha`` on the negatives) do."""
    from cnnspec.reporting.predictions import probabilities

    spec = config.loss
    probs = probabilities(outputs, _kind(config))
    smoothing = spec.label_smoothing if (config.binary or config.one_hot_labels) else 0.0
    if config.binary:
        return _binary_loss(probs[:, 1], y, spec, smoothing)
    return _categorical_loss(probs, y, spec, smoothing)


def task_loss(outputs: np.ndarray, y: np.ndarray, task: Any) -> float | None:
    """The loss of one multi-label, segmentation or regression output (``task``: its
    :class:`~cnnspec.analysis.tasks.OutputTask`) from its raw values, as Keras computes it:
    every label, pixel or value a term of the mean (a map's classes as a classifier's, a
    1-channel map's and a label's as a binary one's). ``None`` for a loss without an equal here
    (dice)."""
    from cnnspec.analysis.settings_training import CROSSENTROPY_LOSSES
    from cnnspec.reporting.tta import as_probabilities

    spec = task.loss
    if task.task == "regression":
        return _regression_loss(np.asarray(outputs), np.asarray(y), spec)
    if spec.name not in CROSSENTROPY_LOSSES:
        return None
    probs = np.asarray(as_probabilities(np.asarray(outputs), task), dtype="float64")
    smoothing = spec.label_smoothing if (spec.binary or spec.one_hot) else 0.0
    if spec.binary:
        return _binary_loss(probs.reshape(-1), np.asarray(y).reshape(-1), spec, smoothing)
    rows = probs.reshape(-1, probs.shape[-1])
    return _categorical_loss(rows, np.asarray(y).reshape(-1).astype("int64"), spec, smoothing)


def single_task_loss(outputs: Any, y: Any, tasks: Sequence[Any]) -> float | None:
    """The loss of a one-output multi-label, segmentation or regression model computed from its
    outputs, not by Keras (:func:`task_loss`): an export's, or the averaged ones of ``--tta`` and
    ``--ensemble`` (read back as the model's raw values), alike. ``None`` for several outputs
    (Keras weighs their losses into one; not reproduced here) or a loss without an equal (dice)."""
    return task_loss(outputs, y, tasks[0]) if len(tasks) == 1 else None


def export_task_losses(outputs: Any, y: Any, tasks: Sequence[Any]) -> dict[str, Any]:
    """The losses of a multi-label, segmentation, regression or multi-output model computed from
    its outputs (an export's: :func:`task_loss`), under the keys Keras' evaluate gives them:
    ``loss`` for one output; for several (``outputs`` a list and ``y`` a dict, by output, in the
    model's order) each output's ``NAME_loss`` and ``loss``, their sum weighted by each output's
    ``loss_weight`` as Keras weighs them (where each has an equal here: not dice's). A loss
    without an equal is left out."""
    if len(tasks) == 1:
        loss = single_task_loss(outputs, y, tasks)
        return {"loss": json_safe(loss)} if loss is not None else {}
    each = {out.name: task_loss(part, y[out.name], out) for out, part in zip(tasks, outputs, strict=True)}
    found = {f"{name}_loss": json_safe(value) for name, value in each.items() if value is not None}
    if all(value is not None for value in each.values()):
        total = sum(out.loss_weight * float(each[out.name] or 0.0) for out in tasks)
        found = {"loss": json_safe(total), **found}
    return found


def _regression_loss(outputs: np.ndarray, y: np.ndarray, spec: Any) -> float | None:
    """A regression loss of ``outputs`` for targets ``y`` as Keras' function of that name
    computes it (``None``: a loss not known here)."""
    p = np.asarray(outputs, dtype="float64").reshape(len(outputs), -1)
    t = np.asarray(y, dtype="float64").reshape(len(outputs), -1)
    error = p - t
    epsilon = 1e-7  # (Keras' backend epsilon, where its losses clip)
    if spec.name == "mse":
        terms = error**2
    elif spec.name == "mae":
        terms = np.abs(error)
    elif spec.name == "huber":
        size = np.abs(error)
        terms = np.where(size <= spec.delta, 0.5 * error**2, spec.delta * size - 0.5 * spec.delta**2)
    elif spec.name == "msle":
        terms = (np.log(np.maximum(p, epsilon) + 1.0) - np.log(np.maximum(t, epsilon) + 1.0)) ** 2
    elif spec.name == "mape":
        terms = 100.0 * np.abs(error) / np.maximum(np.abs(t), epsilon)
    elif spec.name == "log_cosh":
        terms = error + np.logaddexp(0.0, -2.0 * error) - np.log(2.0)
    else:
        return None
    return float(np.mean(terms))


def _binary_loss(p: np.ndarray, y: np.ndarray, spec: Any, smoothing: float) -> float:
    """The mean binary crossentropy (focal: Keras' ``BinaryFocalCrossentropy``) of positive-class
    probabilities ``p`` for 0/1 targets ``y``."""
    p = np.clip(np.asarray(p, dtype="float64"), 1e-7, 1 - 1e-7)
    t = np.asarray(y, dtype="float64") * (1 - smoothing) + smoothing / 2  # (the positive's)
    terms = -(t * np.log(p) + (1 - t) * np.log(1 - p))
    if spec.focal:
        terms = terms * (1 - (t * p + (1 - t) * (1 - p))) ** spec.gamma
        if spec.apply_class_balancing:
            terms = terms * (t * spec.alpha + (1 - t) * (1 - spec.alpha))
    return float(np.mean(terms))


def _categorical_loss(probs: np.ndarray, y: np.ndarray, spec: Any, smoothing: float) -> float:
    """The mean crossentropy (focal: Keras' ``CategoricalFocalCrossentropy``) of class
    probability rows ``probs`` for true classes ``y``."""
    probs = np.clip(np.asarray(probs, dtype="float64"), 1e-7, 1 - 1e-7)
    classes = probs.shape[1]
    target = np.eye(classes)[np.clip(y, 0, classes - 1)] * (1 - smoothing) + smoothing / classes
    probs = probs / probs.sum(axis=1, keepdims=True)
    per_class = -(target * np.log(probs))
    if spec.focal:
        per_class = per_class * spec.alpha * (1 - probs) ** spec.gamma
    return float(np.mean(per_class.sum(axis=1)))


def _evaluation(
    run: Run,
    test: TestData,
    outputs: Any,
    metrics: dict[str, Any],
    seconds: float,
    predict_seconds: float,
    runtime: str,
) -> Evaluation:
    """The evaluation document of a model's outputs on the test split (any runtime)."""
    from cnnspec.reporting.calibration import of_probabilities
    from cnnspec.reporting.predictions import probabilities
    from cnnspec.training.metrics import classification_report_text, classification_summary, predicted_classes

    config = test.config
    y_pred = predicted_classes(outputs, binary=config.binary, from_logits=config.loss.from_logits)
    names = test.class_names
    if int(y_pred.max(initial=0)) >= len(names) or int(test.y.max(initial=0)) >= len(names):
        names = [str(i) for i in range(max(int(y_pred.max()), int(test.y.max())) + 1)]
    summary = classification_summary(test.y, y_pred, names)
    document: dict[str, Any] = {
        "format": FORMAT,
        "name": test.compiled.name if run.compiled is not None else run.name,
        "model": str(run.model_path),
        "runtime": runtime,
        "run_dir": str(run.run_dir) if run.run_dir else None,
        "model_sha256": _model_hash(run),
        "data": {
            "source": test.source,
            "split": "test",
            "images": len(test.y),
            "content_hash": test.content_hash,
            "matches_run": test.matches_run,
        },
        "accuracy": summary["accuracy"],
        "loss": metrics.get("loss"),
        "metrics": metrics,
        "class_names": names,
        "per_class": summary["per_class"],
        "macro_avg": summary["macro_avg"],
        "weighted_avg": summary["weighted_avg"],
        "confusion_matrix": summary["confusion_matrix"],
        "calibration": of_probabilities(
            probabilities(outputs, _kind(config)),
            test.y,
        ).describe(),
        "seconds": round(seconds, 3),
        "images_per_second": round(len(test.y) / predict_seconds, 1) if predict_seconds > 0 else None,
        "no_prediction": summary["no_prediction"],  # images whose outputs are not numbers
        "notes": [*test.notes, *summary.get("notes", [])],
    }
    return Evaluation(document, classification_report_text(test.y, y_pred, names), test)


def _task_evaluation(
    run: Run,
    test: TestData,
    outputs: Any,
    metrics: dict[str, Any],
    seconds: float,
    predict_seconds: float,
    runtime: str,
) -> Evaluation:
    """The evaluation document of a model that is not a single classifier (a single
    multi-label output's with the calibration of its labels)."""
    from cnnspec.training.task_results import task_metrics, task_report

    config = test.config
    part = task_metrics(config, test.y, outputs, test.output_names or test.class_names)
    calibration = _label_calibration(config, test.y, outputs)
    if calibration is not None:
        part["calibration"] = calibration.describe()
    document: dict[str, Any] = {
        "format": FORMAT,
        "name": test.compiled.name if run.compiled is not None else run.name,
        "model": str(run.model_path),
        "runtime": runtime,
        "run_dir": str(run.run_dir) if run.run_dir else None,
        "model_sha256": _model_hash(run),
        "data": {
            "source": test.source,
            "split": "test",
            "images": len(test.x),
            "content_hash": test.content_hash,
            "matches_run": test.matches_run,
        },
        "loss": metrics.get("loss"),
        "metrics": metrics,
        **part,
        "seconds": round(seconds, 3),
        "images_per_second": round(len(test.x) / predict_seconds, 1) if predict_seconds > 0 else None,
        # the data's notes and the task's own (one output: at the top level of `part`)
        "notes": [*test.notes, *part.get("notes", [])],
    }
    title = f"{document['name']}: test set ({len(test.x)} images)"
    text = task_report(config, part, title)
    if calibration is not None:
        from cnnspec.reporting.calibration import LABELS, PIXELS

        text += calibration.line(PIXELS if config.tasks[0].task == "segmentation" else LABELS) + "\n"
    evaluation = Evaluation(document, text, test)
    evaluation.outputs = outputs
    return evaluation


def _label_calibration(config: Any, y: Any, outputs: Any) -> Any:
    """The calibration of a single multi-label output's labels
    (:func:`~cnnspec.reporting.calibration.of_labels`) or of a single segmentation output's
    pixels (:func:`~cnnspec.reporting.calibration.of_pixels`); ``None`` for any other model."""
    if len(config.tasks) != 1 or config.tasks[0].task not in ("multilabel", "segmentation"):
        return None
    from cnnspec.reporting.calibration import of_labels, of_pixels
    from cnnspec.reporting.predictions import label_probabilities
    from cnnspec.reporting.tta import as_probabilities
    from cnnspec.training.task_results import outputs_by_name, targets_by_name

    task = config.tasks[0]
    raw = outputs_by_name(config.tasks, outputs)[task.name]
    truth = targets_by_name(config, y)[task.name]
    if task.task == "segmentation":
        return of_pixels(as_probabilities(np.asarray(raw, dtype="float64"), task), truth)
    return of_labels(label_probabilities(raw, task.loss.from_logits), truth)


#: The folder of a run that holds its evaluations of other data sources (``--data``).
OTHER_SOURCES = "evaluations"


#: The keys of a data source's record that its files' contents decide, not which source it is:
#: an ``.npz``'s SHA-256, the pixel factor read from its values, a folder's split layout.
CONTENT_KEYS = frozenset({"file_sha256", "rescale", "layout", "content_hash", "hash"})
#: The keys of a data source's record that name a file or folder.
PATH_KEYS = ("path", "test_path", "labels_path")


def evaluation_folder(document: dict[str, Any], out: Path) -> Path:
    """Where :func:`write_evaluation` puts an evaluation's files: ``out``, except for an
    evaluation of another source than the run's (``data.of_run`` false) aimed at the run
    folder itself, whose own files (the training's confusion_matrix.png, task_report.txt and
    pictures, the evaluation.json of its test split) it would replace: that goes to
    ``out/evaluations/<source>/`` (``<source>``: the file or folder name, or the dataset's).

    The same source (:func:`same_source`: the same file, whatever its contents now) goes to
    the same folder, replacing its older evaluation there; another source of that name
    (a/test.npz, then b/test.npz) to ``<source>-<hash>/``, a folder of its own."""
    data = document.get("data") or {}
    run_dir = document.get("run_dir")
    if data.get("of_run") is not False or not run_dir:
        return out
    try:
        aimed_at_run = out.resolve() == Path(run_dir).resolve()
    except OSError:
        aimed_at_run = False
    if not aimed_at_run:
        return out
    source = data.get("source") or {}
    folder = out / OTHER_SOURCES / _source_name(source)
    there = _evaluated_source(folder)
    if there is not None and not same_source(there, source):
        # (the source's identity, not its contents: the same b/test.npz, changed, comes back here)
        identity = json.dumps(_source_identity(source), sort_keys=True, default=str)
        folder = folder.with_name(f"{folder.name}-{hashlib.sha256(identity.encode()).hexdigest()[:8]}")
    return folder


def _source_identity(source: dict[str, Any]) -> dict[str, Any]:
    """Which source a data source's record names: the record without what its contents decide
    (:data:`CONTENT_KEYS`), each path as the file it names (``other.npz``, ``./other.npz`` and a
    link to it are one)."""
    identity = {key: value for key, value in source.items() if key not in CONTENT_KEYS}
    for key in PATH_KEYS:
        if isinstance(identity.get(key), str):
            identity[key] = os.path.realpath(identity[key])
    return identity


def same_source(recorded: Any, source: dict[str, Any]) -> bool:
    """Whether the data source an earlier evaluation recorded (``recorded``: its
    ``data.source``) is ``source``: the same files and settings, whatever their contents now
    (an ``.npz`` updated at its path is the same source, evaluated again)."""
    from cnnspec.jsontext import utf8_safe

    # (compared as written: a path that is no UTF-8 is recorded escaped, utf8_safe)
    return isinstance(recorded, dict) and (
        utf8_safe(_source_identity(recorded))[0] == utf8_safe(_source_identity(source))[0]
    )


def replaced_note(document: dict[str, Any], folder: Path) -> str | None:
    """The note of an evaluation of another source (``--data``) that replaces one of the same
    file in ``folder`` (:func:`evaluation_folder`) whose contents have changed since: its
    SHA-256 then and now. ``None`` for any other evaluation (the run's, one into a new folder,
    the same contents evaluated again, or a source without a file hash: a folder, a dataset)."""
    data = document.get("data") or {}
    source = data.get("source") or {}
    if data.get("of_run") is not False or not isinstance(source, dict):
        return None
    there = _evaluated_source(folder)
    if not same_source(there, source):
        return None
    before, now = there.get("file_sha256"), source.get("file_sha256")
    if not isinstance(before, str) or not isinstance(now, str) or before == now:
        return None
    name = Path(str(source.get("path"))).name
    return (
        f"{name} has changed since its evaluation in {folder} (SHA-256 {before[:12]}… then, "
        f"{now[:12]}… now): that evaluation is replaced by this one"
    )


def _evaluated_source(folder: Path) -> Any:
    """The data source of the evaluation.json in ``folder``; None where there is none (or it
    cannot be read: written over, as any evaluation of its source would)."""
    try:
        document = json.loads((folder / "evaluation.json").read_text(encoding="utf-8"))
        return document["data"]["source"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def read_evaluation(path: Path) -> dict[str, Any] | None:
    """The ``evaluation.json`` at ``path`` that cnnspec wrote, as read; None where there is
    none, or it is no evaluation or cannot be read."""
    if not is_evaluation(path):
        return None
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return document if isinstance(document, dict) else None


def _source_name(source: dict[str, Any]) -> str:
    """A folder name for a data source: its file's or folder's name without the suffix
    (``other.npz``: ``other``), else its kind (``mnist``); characters other than letters,
    digits, ``.``, ``_`` and ``-`` become ``_``."""
    path = source.get("path")
    name = Path(str(path)).stem if path else str(source.get("kind") or "data")
    cleaned = "".join(c if c.isalnum() or c in "._-" else "_" for c in name).strip(".")
    return cleaned or "data"


#: How an evaluation.json cnnspec wrote begins (:func:`is_evaluation`): ``json.dumps`` keeps
#: the document's order, ``format``, ``name`` and ``model`` first.
_EVALUATION_HEAD = re.compile(rb'\A\{\n  "format": \d+,\n  "name": "(?:[^"\\]|\\.)*",\n  "model": "')
#: How a task_report.txt that evaluate or train wrote begins: its title, then a blank line.
_TASK_REPORT_HEAD = re.compile(rb"\A[^\n]*: test set \([\d,]+ images\)\n\n")


def is_evaluation(path: str | Path) -> bool:
    """Whether the file at ``path`` is one :func:`write_evaluation` (or training, for
    task_report.txt) wrote: an ``evaluation.json`` or a ``task_report.txt``, told by how its
    first bytes read (the JSON has no room for a mark, and a text report shows none). Read from
    the head only (:func:`~cnnspec.fileio.read_head`), before any work. ``False`` for any other
    file and for one that can't be read."""
    from cnnspec.fileio import read_head

    head = read_head(path)
    if head is None:
        return False
    pattern = _TASK_REPORT_HEAD if Path(path).name == "task_report.txt" else _EVALUATION_HEAD
    return pattern.match(head) is not None


def evaluation_files(evaluation: Evaluation, out: Path) -> list[Path]:
    """The files :func:`write_evaluation` writes for ``evaluation`` aimed at ``out``: in the
    folder :func:`evaluation_folder` chooses, ``evaluation.json`` and ``confusion_matrix.png``,
    or for another task than classification ``task_report.txt`` and each output's picture."""
    doc = evaluation.document
    folder = evaluation_folder(doc, out)
    if doc.get("task", "classification") == "classification":
        return [folder / "evaluation.json", folder / "confusion_matrix.png"]
    from cnnspec.training.task_results import picture_name

    config = evaluation.data.config
    pictures = [name for task in config.tasks if (name := picture_name(config, task))]
    return [folder / "evaluation.json", folder / "task_report.txt", *(folder / name for name in pictures)]


def _model_hash(run: Run) -> str | None:
    """The SHA-256 of the model file evaluated: what tells this run's evaluation from another's
    written into its folder (paths as given to ``evaluate`` say it only from where it ran)."""
    from cnnspec.fileio import sha256_file

    try:
        return sha256_file(run.model_path)
    except OSError:  # (an export evaluated with its model gone: nothing to tell it by)
        return None


def write_evaluation(
    evaluation: Evaluation,
    out: Path,
    title: str,
    check: Callable[[list[Path]], None] | None = None,
) -> dict[str, Path]:
    """``evaluation.json`` and ``confusion_matrix.png`` in ``out`` (atomically), or in the
    folder :func:`evaluation_folder` chooses for another data source; for another task than
    classification, ``task_report.txt`` and the task's picture instead of the matrix.

    ``check``: called with every file about to be written (:func:`evaluation_files`) before
    the first is, to refuse replacing one (the command's refusal of a file it did not write).
    The files replace the previous evaluation's together or not at all
    (:func:`~cnnspec.fileio.write_together`): a picture that cannot be drawn or written, or
    ``evaluation.json``'s failed rename, leaves the previous evaluation whole (before, the new
    picture stayed beside the previous evaluation.json). ``evaluation.json``, the record the
    other commands read, is renamed last."""
    from cnnspec.fileio import write_atomic, write_together
    from cnnspec.training.plots import confusion_png

    doc = evaluation.document
    if check is not None:
        check(evaluation_files(evaluation, out))
    out = evaluation_folder(doc, out)
    if (note := replaced_note(doc, out)) is not None:  # (kept in evaluation.json, printed by evaluate)
        doc["notes"] = [*doc.get("notes", []), note]
    from cnnspec.jsontext import UNDECODABLE_NOTE, utf8_safe

    if utf8_safe(doc)[1]:  # a path of a file name that is no UTF-8 (--data caf\xe9/): written escaped
        doc["notes"] = [*doc.get("notes", []), UNDECODABLE_NOTE]
    text = json_text(utf8_safe(doc)[0])  # (serialised before anything is drawn or written)
    if doc.get("task", "classification") != "classification":
        from cnnspec.training.task_results import write_task_files

        test = evaluation.data
        # titled as training titles its task files, so the two task_report.txt compare line by line
        heading = f"{title}: test set ({doc['data']['images']} images)"
        with write_together():
            files = write_task_files(test.config, out, doc, test.y, evaluation.outputs, test.x, heading)
            return {"evaluation": write_atomic(out / "evaluation.json", text), **files}
    picture = confusion_png(
        doc["confusion_matrix"],
        doc["class_names"],
        f"{title}: confusion matrix, {_data_title(doc)} (accuracy {doc['accuracy']:.4f})",
    )
    with write_together():
        matrix = write_atomic(out / "confusion_matrix.png", picture)
        return {"evaluation": write_atomic(out / "evaluation.json", text), "confusion_matrix": matrix}


def _data_title(document: dict[str, Any]) -> str:
    """Which data an evaluation's matrix is of, for its title: ``test set`` (the run's), or
    ``other.npz test set`` (``--data``); and how it was answered where that is not the model
    alone (``with --tta hflip``, ``of an ensemble of 3 models``), as the README promises and
    ``visualize confusion`` titles the same matrix."""
    from cnnspec.errors import printable

    data = document.get("data") or {}
    source = data.get("source") or {}
    path = source.get("path")
    title = (
        "test set"
        if data.get("of_run") is not False
        else f"{Path(str(path)).name if path else source.get('kind', 'data')} test set"
    )
    views, members = document.get("tta"), document.get("ensemble")
    if isinstance(views, list) and views:
        title += f" with --tta {','.join(printable(str(v)) for v in views)}"
    if isinstance(members, list) and members:
        title += f" of an ensemble of {len(members) + 1} models"
    return title
