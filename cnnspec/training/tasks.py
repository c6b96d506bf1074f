"""Keras losses, metrics and target preparation for every task (multilabel, regression,
segmentation and multi-output models; see :mod:`cnnspec.analysis.tasks`).

Everything is a standard Keras class (``Dice``, ``Huber``, ``F1Score``, ``R2Score``,
``MeanIoU``, ``BinaryIoU`` …), picked from closed tables by the checked task settings, so a
saved ``model.keras`` loads without cnnspec. Importing this module does not import TensorFlow.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from cnnspec.analysis.settings_types import MetricConfig, TrainConfig
from cnnspec.analysis.tasks import KERAS_LOSS_OF, OutputTask
from cnnspec.training.runtime import import_keras


def loss(out: OutputTask) -> Any:
    """The Keras loss of one output."""
    keras = import_keras()
    losses = keras.losses
    spec = out.loss
    focal = spec.keras_focal()
    if focal is not None:  # (a closed table's class, never a name from the spec)
        cls, kwargs = focal
        return getattr(losses, cls)(**kwargs)
    if spec.name == "binary_crossentropy":
        return losses.BinaryCrossentropy(
            from_logits=spec.keras_from_logits, label_smoothing=spec.label_smoothing
        )
    if spec.name == "categorical_crossentropy" or (
        spec.name == "sparse_categorical_crossentropy" and out.one_hot
    ):
        return losses.CategoricalCrossentropy(
            from_logits=spec.keras_from_logits, label_smoothing=spec.label_smoothing
        )
    if spec.name == "sparse_categorical_crossentropy":
        return losses.SparseCategoricalCrossentropy(from_logits=spec.keras_from_logits)
    if spec.name == "dice":
        return losses.Dice()  # on one-hot (or 0/1) masks and probabilities: the pipeline sends one-hot
    if spec.name == "mae":
        return losses.MeanAbsoluteError()
    if spec.name == "huber":
        return losses.Huber(delta=spec.delta)
    if spec.name in KERAS_LOSS_OF:
        return getattr(losses, KERAS_LOSS_OF[spec.name])()
    return losses.MeanSquaredError()


def metric(out: OutputTask, item: MetricConfig) -> Any:
    """The Keras metric ``item`` of one output (logged under ``item.log_name``)."""
    keras = import_keras()
    m = keras.metrics
    threshold = out.decision_threshold
    name = item.log_name
    if out.task == "classification":
        # the classifier's own table, with this output's loss and metrics deciding binary/one-hot
        # as they decide its targets (OutputTask.one_hot)
        from cnnspec.training import builders

        return builders.metric(out.classifier_config(), item)
    if out.task == "multilabel":
        if item.name == "accuracy":
            return m.BinaryAccuracy(name=name, threshold=threshold)
        if item.name == "f1":
            return m.F1Score(average="macro", threshold=out.threshold, name=name)
        if item.name == "precision":
            return m.Precision(name=name, thresholds=threshold)
        if item.name == "recall":
            return m.Recall(name=name, thresholds=threshold)
        return m.AUC(name=name, multi_label=True, num_labels=out.units, from_logits=out.loss.from_logits)
    if out.task == "regression":
        table = {
            "mae": m.MeanAbsoluteError,
            "mse": m.MeanSquaredError,
            "rmse": m.RootMeanSquaredError,
            "r2": m.R2Score,
        }
        made = table[item.name](name=name)
        return _diverged_r2_is_nan(made) if item.name == "r2" else made
    # segmentation: accuracy is pixel accuracy; mean_iou is averaged over every class
    if item.name == "accuracy":
        if out.binary:
            return m.BinaryAccuracy(name=name, threshold=threshold)
        return m.CategoricalAccuracy(name=name) if out.one_hot else m.SparseCategoricalAccuracy(name=name)
    if out.binary:
        return m.BinaryIoU(target_class_ids=[0, 1], threshold=threshold, name=name)
    return m.MeanIoU(num_classes=out.classes, sparse_y_true=not out.one_hot, sparse_y_pred=False, name=name)


def losses(config: TrainConfig) -> Any:
    """The loss of a one-output model, or a dict of losses by output name."""
    if len(config.tasks) == 1:
        return loss(config.tasks[0])
    return {out.name: loss(out) for out in config.tasks}


def metrics(config: TrainConfig) -> Any:
    """The metrics of a one-output model, or a dict of metric lists by output name."""
    if len(config.tasks) == 1:
        return [metric(config.tasks[0], item) for item in config.tasks[0].metrics]
    return {out.name: [metric(out, item) for item in out.metrics] for out in config.tasks}


def loss_weights(config: TrainConfig) -> dict[str, float] | None:
    """Each output's share of the total loss (``None`` for one output)."""
    if len(config.tasks) == 1:
        return None
    return {out.name: out.loss_weight for out in config.tasks}


def compile_arguments(config: TrainConfig) -> dict[str, Any]:
    """``loss``, ``loss_weights`` and ``metrics`` for ``model.compile``."""
    return {"loss": losses(config), "loss_weights": loss_weights(config), "metrics": metrics(config)}


def prepare_target(out: OutputTask, labels: Any) -> Any:
    """One output's targets as the loss expects them (a tf function body, per batch)."""
    import tensorflow as tf

    if out.task == "classification":
        if out.binary:
            return tf.cast(tf.reshape(labels, (-1, 1)), tf.float32)
        return tf.one_hot(labels, out.classes) if out.one_hot else labels
    if out.task == "multilabel":
        return tf.cast(labels, tf.float32)
    if out.task == "regression":
        labels = tf.cast(labels, tf.float32)
        return tf.reshape(labels, (-1, 1)) if labels.shape.rank == 1 else labels
    if out.binary:  # a 1-channel sigmoid mask
        return tf.cast(labels[..., None], tf.float32)
    return tf.one_hot(tf.cast(labels, tf.int32), out.classes) if out.one_hot else labels


def target_preparer(config: TrainConfig) -> Any:
    """A function from a batch's targets (an array, or a dict by output name) to what the
    losses expect; the pipeline calls it in place of the classifier's own preparation."""
    tasks = config.tasks
    if len(tasks) == 1:
        out = tasks[0]
        return lambda labels: prepare_target(out, labels)
    return lambda labels: {out.name: prepare_target(out, labels[out.name]) for out in tasks}


def classifier_config(config: TrainConfig, out: OutputTask) -> TrainConfig:
    """``config`` as seen by one classification output (for the classifier's report code)."""
    return replace(config, loss=out.loss, metrics=out.metrics, output_units=out.units, tasks=(out,))


def _diverged_r2_is_nan(metric: Any) -> Any:
    """``metric`` (Keras' ``R2Score``) answering NaN once its squared error overflowed: Keras
    reads the −∞ that gives as 0.0, which beat every honest negative R² (a checkpoint, early
    stopping or search monitoring ``val_r2`` kept the epoch that blew up), whatever the loss
    (Huber and MAE stay finite there). The instance only: model.keras records a plain
    ``R2Score``, which Keras loads without cnnspec."""
    from keras import ops

    plain = metric.result

    def result() -> Any:
        return ops.where(ops.all(ops.isfinite(metric.total_mse)), plain(), float("nan"))

    metric.result = result
    return metric
