"""``use_ema``: validation and the callbacks of an epoch's end see the averaged weights.

An optimizer with ``use_ema`` keeps a moving average of the trainable weights, and Keras' fit
sets the weights to it when the fit ends: the average is the model a run ends with. So it is
what validation scores, what early stopping keeps as the best weights, what ``model_checkpoint``
saves and what ``reduce_lr_on_plateau`` watches; otherwise the best epoch would be chosen on
weights the run never returns, and the last epoch's ``val_*`` would not be the final model's.

Keras' ``SwapEMAWeights`` does this by swapping in place with float32 additions and
subtractions (``a + b - b``), which round: the weights training goes on from change in their
last bits at every swap. Here the trained weights are copied aside and put back as they were,
so a run trains exactly as it would without the swaps, and a resumed run is the uninterrupted
one. The average goes in through the optimizer's own ``finalize_variable_values``, what fit
does at its end. The generated training script has a copy (``templates/_training_code.j2``).
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

#: (variable, its trained value) pairs, while the average is in the model
Kept = list[tuple[Any, np.ndarray]]


def put_average(model: Any, kept: Kept) -> None:
    """Copy ``model``'s trained weights into ``kept`` and set them to their moving average.
    Nothing when the average is in already, or when the optimizer has none (no ``use_ema``,
    or no step trained yet)."""
    optimizer = model.optimizer
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):  # mixed precision
        optimizer = optimizer.inner_optimizer
    if kept or not optimizer.use_ema or not optimizer.built:
        return
    kept.extend((v, np.array(keras.ops.convert_to_numpy(v))) for v in model.trainable_variables)
    optimizer.finalize_variable_values(model.trainable_variables)


def put_back(kept: Kept) -> None:
    """Put the trained weights ``kept`` holds back, as they were."""
    for variable, value in kept:
        variable.assign(value)
    kept.clear()


class AverageIn(keras.callbacks.Callback):
    """Validation, and the callbacks after this one up to its :class:`AverageOut`, see the
    averaged weights. Put the Recorder after ``AverageOut``: a snapshot holds the weights
    training goes on from (the average is among the optimizer variables it saves)."""

    def __init__(self, kept: Kept) -> None:
        super().__init__()
        self.kept = kept

    def on_test_begin(self, logs: dict[str, Any] | None = None) -> None:
        put_average(self.model, self.kept)

    def on_test_end(self, logs: dict[str, Any] | None = None) -> None:
        put_back(self.kept)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        put_average(self.model, self.kept)


class AverageOut(keras.callbacks.Callback):
    """Puts the trained weights back at an epoch's end (see :class:`AverageIn`)."""

    def __init__(self, kept: Kept) -> None:
        super().__init__()
        self.kept = kept

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        put_back(self.kept)


def around(callbacks: list[Any]) -> list[Any]:
    """``callbacks`` between an :class:`AverageIn` and its :class:`AverageOut`."""
    kept: Kept = []
    return [AverageIn(kept), *callbacks, AverageOut(kept)]
