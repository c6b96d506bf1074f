"""cnnspec.training.prebuild: the optimizer's and the compiled metrics' variables are made
before ``fit``, so its train step is traced once (Keras 3.15 made them inside the first trace,
and TensorFlow traced the step again), and the training is the same, step for step. Slow:
TensorFlow."""

from __future__ import annotations

import numpy as np
import pytest

from cnnspec.training.prebuild import build_for_fit

pytestmark = pytest.mark.slow


def _fit(prebuilt: bool) -> tuple[int, list[np.ndarray], dict[str, list[float]]]:
    """Two epochs of a small model on a shuffled dataset with a partial last batch: how often
    its train step was traced, its weights (model and optimizer) and its history."""
    import keras
    import tensorflow as tf

    class Counting(keras.Sequential):
        traces = 0

        def train_step(self, data):  # (Python runs it only while TensorFlow traces it)
            type(self).traces += 1
            return super().train_step(data)

    keras.utils.set_random_seed(7)
    model = Counting(
        [
            keras.Input((6, 6, 1)),
            keras.layers.Conv2D(3, 3),
            keras.layers.Dropout(0.3),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(4, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    rng = np.random.default_rng(0)
    x, y = rng.random((50, 6, 6, 1), dtype="float32"), rng.integers(0, 4, 50)
    data = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(50, seed=1).batch(16)
    if prebuilt:
        build_for_fit(model, data)
        assert model.optimizer.built and model.optimizer.variables
    history = model.fit(data, epochs=2, shuffle=False, verbose=0).history
    weights = [np.asarray(v) for v in (*model.weights, *model.optimizer.variables)]
    return Counting.traces, weights, history


def test_a_prebuilt_fit_traces_its_step_once_and_trains_alike():
    lazy_traces, lazy_weights, lazy_history = _fit(prebuilt=False)
    traces, weights, history = _fit(prebuilt=True)
    assert traces == 1
    # (what build_for_fit is for: if a Keras release builds them before tracing itself, it
    # traces once here too, and build_for_fit can go)
    assert lazy_traces == 2
    assert history == lazy_history
    assert len(weights) == len(lazy_weights)
    assert all(np.array_equal(a, b) for a, b in zip(weights, lazy_weights, strict=True))
