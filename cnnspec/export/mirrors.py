"""Mirror images inside an exported graph, for ``cnnspec export --tta hflip|vflip``.

``evaluate --tta`` and ``predict --tta`` flip their batches in NumPy (:mod:`cnnspec.reporting.tta`).
A file that answers with the mean over those views must flip inside its own graph, with layers
every converter (ONNX, TFLite, SavedModel) and every runtime runs alike, and no ``Lambda``
(nothing executable is serialised). Keras has no deterministic flip layer (``RandomFlip`` is
random by design), so a mirror is made of standard layers: the axis to reverse is moved last
(``Permute``), multiplied by the exchange matrix (a frozen ``Dense`` without bias whose kernel
is the identity read backwards: output ``j`` is input ``size - 1 - j``), and moved back.

The product is exact for finite numbers: each output is one input times 1 plus zeros. It costs
``height × width × channels × size`` multiply-adds per image (a 224×224×3 image mirrored left to
right: 34 M, under 1 % of a ResNet-50).

Keras is imported inside the functions (the exporter has imported it already).
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: The axis of a batch (images, height, width, channels) each view reverses (as reporting/tta.py).
AXES = {"hflip": 2, "vflip": 1}
#: The ``Permute`` (of the axes after the batch) that moves each view's axis last; it is its own
#: inverse, so the same layer moves it back.
_PERMUTATIONS = {"hflip": (1, 3, 2), "vflip": (3, 2, 1)}


def exchange_matrix(size: int) -> np.ndarray:
    """The ``size × size`` matrix that reverses a vector: 1 where ``i + j = size - 1``."""
    return np.eye(size, dtype="float32")[::-1].copy()


def mirrored(tensor: Any, view: str, name: str) -> Any:
    """``tensor`` (batch, height, width, channels), of a fixed height and width, mirrored by
    ``view`` (``hflip``: left to right; ``vflip``: top to bottom) with standard Keras layers
    named after ``name``."""
    import keras

    size = tensor.shape[AXES[view]]
    if size is None:
        raise ValueError(f"expected a fixed size on the axis {view} mirrors; received {tensor.shape}")
    permute = _PERMUTATIONS[view]
    height, width, channels = tensor.shape[1:]
    if view == "hflip" and channels == 1:
        # moving the width past a single channel moves no number: a reshape says so. As a
        # Permute, tf2onnx's optimiser rewrote that transpose into a reshape to the wrong shape
        # ([h, 1, 1, w] for [h, 1, w]) and the ONNX export of a 1-channel map failed
        moved = keras.layers.Reshape((height, 1, width), name=f"{name}_to_last")(tensor)
        back: Any = keras.layers.Reshape((height, width, 1), name=f"{name}_back")
    else:
        moved = keras.layers.Permute(permute, name=f"{name}_to_last")(tensor)
        back = keras.layers.Permute(permute, name=f"{name}_back")
    reverse = keras.layers.Dense(size, use_bias=False, trainable=False, name=f"{name}_reverse")
    reversed_ = reverse(moved)
    reverse.set_weights([exchange_matrix(size)])
    return back(reversed_)
