"""The snapshot weights (``state.weights_image``) with the attribute sets Keras' save skips kept
where Keras looks them up (``state.keep_skipsets``): the same bytes as Keras' own walk."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.slow  # (Keras models)


def small_model():
    import keras

    inputs = keras.Input((6, 6, 3))
    x = keras.layers.Conv2D(2, 3, name="conv")(inputs)
    x = keras.layers.Flatten(name="flat")(x)
    outputs = keras.layers.Dense(3, activation="softmax", name="dense")(x)
    model = keras.Model(inputs, outputs, name="small")
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(np.zeros((4, 6, 6, 3), "float32"), np.array([0, 1, 2, 0]), epochs=1, verbose=0)
    return model


def test_the_weights_image_is_the_same_with_the_skipsets_kept_as_without(monkeypatch):
    from keras.src.backend.common import global_state
    from keras.src.saving import saving_lib

    from cnnspec.training import state

    model = small_model()
    kept = state.weights_image(model)

    # each kind's set as Keras computes it afresh: the one kept is equal, not a stale other one
    # (in the names the walk reads it for: it passes over every ``__`` name first, and Python
    # gives a class its ``__annotations__`` only once they are asked for)
    def walked(names: set[str]) -> set[str]:
        return {name for name in names if not name.startswith("__")}

    for kind in state._WALKED_KINDS:
        found = global_state.get_global_attribute(f"saving_attr_skiplist_{kind}")
        if found is not None:
            monkeypatch.setattr(global_state.GLOBAL_STATE_TRACKER, f"saving_attr_skiplist_{kind}", None)
            assert walked(saving_lib.get_attr_skipset(kind)) == walked(found)
    monkeypatch.setattr(state, "keep_skipsets", lambda: None)  # Keras' own walk, every set made again
    for kind in state._WALKED_KINDS:
        monkeypatch.setattr(global_state.GLOBAL_STATE_TRACKER, f"saving_attr_skiplist_{kind}", None)
    assert state.weights_image(model) == kept
