"""Keras objects from the typed training settings: optimizer (with schedule), loss, metrics.

Every name comes from a closed table below, never from ``getattr`` on user text.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cnnspec.analysis.settings_data import LONG_WARMUP_HINT, long_warmups
from cnnspec.analysis.settings_types import MetricConfig, OptimizerConfig, Schedule, TrainConfig
from cnnspec.errors import Diagnostic, format_path
from cnnspec.spec.optimizers import OPTIMIZER_KINDS, keras_settings
from cnnspec.training.runtime import import_keras

if TYPE_CHECKING:
    from cnnspec.analysis.compiled import CompiledSpec

_warmup_class: Any = None


def warmup_class() -> Any:
    """``LinearWarmup``: linear ramp from 0 to a schedule's first value, then the schedule.

    The ramp is Keras' own (``CosineDecay``'s ``warmup_target``, which cosine_decay uses): the
    rate is ``first * step / warmup_steps`` before step ``warmup_steps`` (exactly 0 at step 0)
    and the schedule's first value at step ``warmup_steps``, from where the schedule runs on.
    One meaning of ``warmup_steps`` for every schedule, in ``cnnspec train`` and in the
    generated script (whose ``WarmUp``, templates/_training_code.j2, computes the same).

    Registered as ``cnnspec>LinearWarmup`` so a saved ``model.keras`` whose optimizer uses it
    loads again once this is called (:func:`cnnspec.training.modelfile.load_model` does).
    """
    global _warmup_class
    if _warmup_class is not None:
        return _warmup_class
    keras = import_keras()
    ops = keras.ops

    @keras.saving.register_keras_serializable(package="cnnspec")
    class LinearWarmup(keras.optimizers.schedules.LearningRateSchedule):
        def __init__(self, schedule: Any, warmup_steps: int) -> None:
            self.schedule = schedule
            self.warmup_steps = int(warmup_steps)

        def __call__(self, step: Any) -> Any:
            step = ops.cast(step, "float32")
            warm = float(self.warmup_steps)
            target = ops.cast(self.schedule(0), "float32")
            # (``step / warm`` first, as Keras computes its warm-up: the same float32 rates)
            ramp = target * (step / warm)
            after = ops.cast(self.schedule(ops.maximum(step - warm, 0.0)), "float32")
            return ops.where(step < warm, ramp, after)

        def get_config(self) -> dict[str, Any]:
            return {
                "schedule": keras.saving.serialize_keras_object(self.schedule),
                "warmup_steps": self.warmup_steps,
            }

        @classmethod
        def from_config(cls, config: dict[str, Any]) -> Any:
            schedule = keras.saving.deserialize_keras_object(config["schedule"])
            return cls(schedule, config["warmup_steps"])

    _warmup_class = LinearWarmup
    return LinearWarmup


def learning_rate(value: float | Schedule, total_steps: int) -> Any:
    """A float, or a Keras ``LearningRateSchedule`` (``total_steps``: the whole run's steps)."""
    if not isinstance(value, Schedule):
        return value
    keras = import_keras()
    schedules = keras.optimizers.schedules
    settings = dict(value.settings)
    warmup = value.warmup_steps
    if value.kind == "cosine_decay":
        peak = float(settings["initial_learning_rate"])
        decay_steps = int(settings.get("decay_steps") or max(total_steps - warmup, 1))
        alpha = float(settings.get("alpha", 0.0))
        if warmup:
            return schedules.CosineDecay(
                0.0, decay_steps, alpha=alpha, warmup_target=peak, warmup_steps=warmup
            )
        return schedules.CosineDecay(peak, decay_steps, alpha=alpha)
    if value.kind == "exponential_decay":
        inner = schedules.ExponentialDecay(
            float(settings["initial_learning_rate"]),
            int(settings["decay_steps"]),
            float(settings["decay_rate"]),
            staircase=bool(settings.get("staircase", False)),
        )
    else:
        inner = schedules.PiecewiseConstantDecay(
            [int(b) for b in settings["boundaries"]], [float(v) for v in settings["values"]]
        )
    return warmup_class()(inner, warmup) if warmup else inner


def long_warmup_warnings(compiled: CompiledSpec, config: TrainConfig, steps: int) -> list[str]:
    """The located warnings (their headlines) of :func:`cnnspec.analysis.settings_data.long_warmups`,
    once the data has set the ``steps`` of an epoch (with ``training.steps_per_epoch``
    ``cnnspec validate`` knows them, and the spec's warnings said it already)."""
    if config.steps_per_epoch:
        return []
    return [
        Diagnostic(
            f"{message}; {LONG_WARMUP_HINT}",
            compiled.doc.loc(path),
            format_path(path),
            code="long-warmup",
            severity="warning",
        ).headline()
        for path, message in long_warmups(config, steps)
    ]


def optimizer(config: TrainConfig, total_steps: int, spec: OptimizerConfig | None = None) -> Any:
    """A fresh optimizer (``spec``: a phase's settings, default ``training.optimizer``;
    ``total_steps``: the steps a schedule spans), of the class and settings
    :data:`~cnnspec.spec.optimizers.OPTIMIZER_KINDS` gives its name."""
    keras = import_keras()
    spec = spec or config.optimizer
    kwargs = keras_settings(spec.name, spec.settings)
    # (a class name of the table, not spec text)
    cls = getattr(keras.optimizers, OPTIMIZER_KINDS[spec.name].keras_class)
    return cls(learning_rate=learning_rate(spec.learning_rate, total_steps), **kwargs)


def loss(config: TrainConfig) -> Any:
    """The Keras loss (a dict by output name for several outputs; other tasks than
    classification: :mod:`cnnspec.training.tasks`)."""
    if config.task_path:
        from cnnspec.training import tasks

        return tasks.losses(config)
    keras = import_keras()
    spec = config.loss
    focal = spec.keras_focal()
    if focal is not None:  # (a closed table's class, never a name from the spec)
        cls, kwargs = focal
        return getattr(keras.losses, cls)(**kwargs)
    if spec.name == "binary_crossentropy":
        return keras.losses.BinaryCrossentropy(
            from_logits=spec.keras_from_logits, label_smoothing=spec.label_smoothing
        )
    if config.one_hot_labels:
        # sparse labels made one-hot for precision/recall/AUC: the same loss, on one-hot targets
        return keras.losses.CategoricalCrossentropy(
            from_logits=spec.keras_from_logits, label_smoothing=spec.label_smoothing
        )
    return keras.losses.SparseCategoricalCrossentropy(from_logits=spec.keras_from_logits)


def metric(config: TrainConfig, item: MetricConfig) -> Any:
    keras = import_keras()
    m = keras.metrics
    logits = config.loss.from_logits
    binary, one_hot = config.binary, config.one_hot_labels
    threshold = 0.0 if logits and binary else 0.5
    if item.name == "accuracy":
        if binary:
            return m.BinaryAccuracy(name="accuracy", threshold=threshold)
        if one_hot:
            return m.CategoricalAccuracy(name="accuracy")
        return m.SparseCategoricalAccuracy(name="accuracy")
    if item.name == "top_k_accuracy":
        cls = m.TopKCategoricalAccuracy if one_hot else m.SparseTopKCategoricalAccuracy
        return cls(k=item.k, name=item.log_name)
    if item.name == "precision":
        return m.Precision(name="precision", thresholds=threshold)
    if item.name == "recall":
        return m.Recall(name="recall", thresholds=threshold)
    return m.AUC(name="auc", from_logits=logits, multi_label=False)


def metrics(config: TrainConfig) -> Any:
    """The Keras metrics (a dict of lists by output name for several outputs). Under
    ``training.mixup``/``cutmix`` (one output) the 0/1 metrics score the mixed label rounded
    (:func:`~cnnspec.training.mixing.on_rounded_labels`)."""
    if config.task_path:
        from cnnspec.training import tasks

        made = tasks.metrics(config)
    else:
        made = [metric(config, item) for item in config.metrics]
    if config.mixing is not None and isinstance(made, list):
        from cnnspec.training.mixing import on_rounded_labels

        return on_rounded_labels(made)
    return made


def loss_weights(config: TrainConfig) -> dict[str, float] | None:
    """Each output's share of the total loss, for a model with several outputs."""
    from cnnspec.training import tasks

    return tasks.loss_weights(config) if config.task_path else None
