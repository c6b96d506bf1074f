"""Keras imported through cnnspec (backends/keras_import.py) prints none of TensorFlow's chatter.

A real process, as a user's terminal sees it: ``evaluate --ensemble`` predicted with each model
in turn, and TensorFlow warned on stderr that the predict function was "retraced", with advice
to move a ``@tf.function`` out of a loop, code the user does not own.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow

CHILD = """
import numpy as np
from cnnspec.backends.keras_import import import_keras

keras = import_keras()
batch = np.zeros((2, 4), dtype="float32")
for units in range(1, 8):  # a new model each time, as an ensemble's members are
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(units)])
    model.predict(batch, verbose=0)
print("done")
"""


def test_predicting_with_several_models_prints_no_tensorflow_warnings() -> None:
    run = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "done"
    assert "retracing" not in run.stderr and "WARNING:tensorflow" not in run.stderr, run.stderr
