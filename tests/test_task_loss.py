"""A task's loss from an output's raw values (reporting/evaluation.py ``task_loss``), for the
runtimes and the temperature that Keras' own ``evaluate`` does not see: every regression loss
cnnspec trains with is the number Keras' loss gives for the same outputs and targets. (The
multi-label and segmentation losses: tests/test_focal_loss.py.)"""

from __future__ import annotations

import numpy as np
import pytest


@pytest.mark.slow  # (Keras' losses)
@pytest.mark.parametrize(
    ("loss", "keras_name", "settings"),
    [
        ("mse", "MeanSquaredError", {}),
        ("mae", "MeanAbsoluteError", {}),
        ("huber", "Huber", {"delta": 0.5}),
        ("msle", "MeanSquaredLogarithmicError", {}),
        ("mape", "MeanAbsolutePercentageError", {}),
        ("log_cosh", "LogCosh", {}),
    ],
)
def test_a_regression_loss_from_outputs_is_keras_own(loss, keras_name, settings):
    import keras

    from cnnspec.analysis.settings_types import LossConfig
    from cnnspec.analysis.tasks import OutputTask
    from cnnspec.reporting.evaluation import task_loss

    task = OutputTask("value", "regression", LossConfig(loss, **settings), (), (2,), None)
    rng = np.random.default_rng(4)
    outputs = rng.normal(size=(16, 2)) * 3 + 1
    targets = rng.normal(size=(16, 2)) * 3 + 1.5
    expected = float(
        getattr(keras.losses, keras_name)(**settings)(targets.astype("float32"), outputs.astype("float32"))
    )
    assert task_loss(outputs, targets, task) == pytest.approx(expected, rel=1e-5)
