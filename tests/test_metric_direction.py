"""Which way is better for every value a run logs (``HIGHER_IS_BETTER`` in analysis/settings.py):
one table behind the callbacks' ``mode: auto`` and the search objective's default direction,
checked for every metric name a task can produce (``val_`` and output-name prefixes included)
and held to the directions of the Keras metrics cnnspec compiles."""

from __future__ import annotations

import pytest

from cnnspec.analysis.settings import training_config
from cnnspec.analysis.settings_types import HIGHER_IS_BETTER
from cnnspec.analysis.tasks import METRICS_OF_TASK
from cnnspec.api import compile_text
from tests.test_tasks import HEAD, MULTI, NPZ, SEGMENT  # the same small specs

UP, DOWN = True, False

#: spec (after HEAD) → every key of its per-epoch logs without ``val_`` → larger is better
CASES = {
    "classifier": (
        "model: [flatten, {dense: {units: 3, activation: softmax}}]\n"
        "training: {metrics: [accuracy, {top_k_accuracy: {k: 2}}, precision, recall, auc]}\n",
        {"loss": DOWN, "accuracy": UP, "top_2_accuracy": UP, "precision": UP, "recall": UP, "auc": UP},
    ),
    "binary": (
        "model: [flatten, {dense: {units: 1, activation: sigmoid}}]\n"
        "training: {metrics: [accuracy, precision, recall, auc]}\n",
        {"loss": DOWN, "accuracy": UP, "precision": UP, "recall": UP, "auc": UP},
    ),
    "multilabel": (
        "model: [flatten, {dense: {units: 4, activation: sigmoid}}]\n"
        + NPZ
        + "training: {metrics: [accuracy, f1, precision, recall, auc]}\n",
        {"loss": DOWN, "accuracy": UP, "f1": UP, "precision": UP, "recall": UP, "auc": UP},
    ),
    "regression": (
        "model: [flatten, {dense: 2}]\n"
        + NPZ
        + "training: {task: regression, metrics: [mae, mse, rmse, r2]}\n",
        {"loss": DOWN, "mae": DOWN, "mse": DOWN, "rmse": DOWN, "r2": UP},
    ),
    "segmentation": (
        SEGMENT + NPZ + "training: {metrics: [accuracy, mean_iou]}\n",
        {"loss": DOWN, "accuracy": UP, "mean_iou": UP},
    ),
    "binary_segmentation": (
        "model:\n  - conv2d: {filters: 1, kernel_size: 1, activation: sigmoid}\n" + NPZ,
        {"loss": DOWN, "accuracy": UP, "mean_iou": UP},
    ),
    "two_outputs": (
        MULTI
        + NPZ
        + "training:\n  outputs:\n    mask: {loss: dice}\n"
        + "    size: {task: regression, metrics: [mae, mse, rmse, r2]}\n",
        {
            "loss": DOWN,
            "mask_loss": DOWN,
            "mask_accuracy": UP,
            "mask_mean_iou": UP,
            "size_loss": DOWN,
            "size_mae": DOWN,
            "size_mse": DOWN,
            "size_rmse": DOWN,
            "size_r2": UP,
        },
    ),
}


def config_of(case: str):
    return training_config(compile_text(HEAD + CASES[case][0], "spec.yaml"))


def expected(case: str) -> dict[str, bool]:
    base = CASES[case][1]
    return {**base, **{f"val_{name}": up for name, up in base.items()}}


def test_every_metric_a_task_can_configure_has_a_direction():
    assert {m for metrics in METRICS_OF_TASK.values() for m in metrics} | {"loss"} == set(HIGHER_IS_BETTER)


@pytest.mark.parametrize("case", CASES)
def test_every_logged_value_has_its_direction(case):
    config = config_of(case)
    assert set(config.logged_names(True)) == set(expected(case))
    assert {name: config.higher_is_better(name) for name in config.logged_names(True)} == expected(case)


def test_a_value_the_run_does_not_log_has_no_direction():
    config = config_of("segmentation")
    assert config.higher_is_better("val_dice") is None and config.higher_is_better("mean_iou_val") is None


@pytest.mark.parametrize(
    ("case", "objective", "direction"),
    [
        ("regression", "val_r2", "maximize"),
        ("regression", "val_rmse", "minimize"),
        ("segmentation", "val_mean_iou", "maximize"),
        ("two_outputs", "val_mask_mean_iou", "maximize"),
        ("two_outputs", "val_size_r2", "maximize"),
        ("two_outputs", "val_size_loss", "minimize"),
        ("multilabel", "val_f1", "maximize"),
    ],
)
def test_the_search_direction_comes_from_the_same_table(case, objective, direction):
    search = f"search:\n  objective: {objective}\n  space:\n    training.batch_size: {{choice: [8, 16]}}\n"
    text = HEAD + CASES[case][0] + search
    space = compile_text(text, "spec.yaml").search
    assert (space.objective, space.direction) == (objective, direction)
    stated = text.replace(
        f"objective: {objective}", f"objective: {{metric: {objective}, direction: minimize}}"
    )
    assert compile_text(stated, "spec.yaml").search.direction == "minimize"  # stated: kept


# -- the callbacks and Keras (TensorFlow) ----------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES)
def test_callbacks_auto_mode_follows_the_table(case, tmp_path):
    """``val_mean_iou``, ``val_f1``, ``val_r2``, ``mask_mean_iou`` … are better higher: early
    stopping, the plateau and the best checkpoint keep the best epoch, not the worst."""
    from dataclasses import replace

    from cnnspec.analysis.settings_types import CallbackConfig
    from cnnspec.training.callbacks import spec_callbacks

    config = config_of(case)
    for name, up in expected(case).items():
        callbacks = tuple(
            CallbackConfig(kind, {"monitor": name}, ("training", "callbacks", index))
            for index, kind in enumerate(("early_stopping", "reduce_lr_on_plateau", "model_checkpoint"))
        )
        made = spec_callbacks(replace(config, callbacks=callbacks), tmp_path)
        assert {kind: cb.mode for kind, cb in made.items()} == dict.fromkeys(made, "max" if up else "min"), (
            name
        )
        stated = (CallbackConfig("early_stopping", {"monitor": name, "mode": "min"}, ("training",)),)
        assert spec_callbacks(replace(config, callbacks=stated), tmp_path)["early_stopping"].mode == "min"


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES)
def test_the_table_agrees_with_the_keras_metrics_cnnspec_compiles(case):
    """Each compiled Keras metric's own direction (``_direction``, what Keras' ``mode="auto"``
    reads) matches the table, under the name the logs carry."""
    from cnnspec.training import builders

    config = config_of(case)
    made = builders.metrics(config)
    by_output = made if isinstance(made, dict) else {"": made}
    seen = {}
    for output, metrics in by_output.items():
        for metric in metrics:
            seen[f"{output}_{metric.name}" if output else metric.name] = metric._direction == "up"
    assert seen == {k: v for k, v in CASES[case][1].items() if not k.endswith("loss")}


@pytest.mark.slow
def test_best_checkpoint_without_a_known_direction_uses_keras_rule(tmp_path):
    """A monitored value outside the table (a config made by hand) keeps ``auto``: the best
    checkpoint then asks the model's metric of that name, as Keras' callbacks do."""
    import keras

    from cnnspec.training.callbacks import BestCheckpoint, keras_auto_mode

    class Model:
        def __init__(self) -> None:
            self.metrics = [keras.metrics.R2Score(name="score"), keras.metrics.MeanAbsoluteError(name="err")]
            self.saved = 0

        def save(self, path: str) -> None:
            self.saved += 1
            open(path, "wb").close()

    assert keras_auto_mode(Model(), "val_score") == "max" and keras_auto_mode(Model(), "err") == "min"
    assert keras_auto_mode(Model(), "val_loss") == "min"
    with pytest.raises(ValueError, match="mode: max"):
        keras_auto_mode(Model(), "val_other")
    checkpoint = BestCheckpoint(tmp_path, "val_score", "auto", save_best_only=True)
    checkpoint.set_model(Model())
    for epoch, value in enumerate([0.2, 0.6, 0.4]):
        checkpoint.on_epoch_end(epoch, {"val_score": value})
    assert (checkpoint.mode, checkpoint.best, checkpoint.best_epoch) == ("max", 0.6, 1)
