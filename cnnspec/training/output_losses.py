"""Each output's loss of a model with several outputs (``NAME_loss``, ``val_NAME_loss``,
``test_NAME_loss``) as one pass over the data gives it: the mean over the images.

Keras 3 tracks each output's loss with a ``Mean`` it updates once a batch with the batch's mean
loss, weighted by the batch's static size, which is unknown inside a compiled step (the last
batch of a split may be smaller): the figure is then the plain mean of the batch means, off
whenever a split is not a whole number of batches (the total ``loss`` is weighted by each
batch's size, and is right). :class:`~OutputLossesCallback` reads the running figure after each
batch and, at the end of the pass, gives the figure weighted by batch size in its place. All
batches but the last hold ``batch_size`` images, so the last two running figures tell it
(:func:`weighted_loss`).

``codegen --script`` writes the same computation into the training script
(templates/train_task.py.j2, ``OutputLosses``), so both report the same figures.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def weighted_loss(running: Sequence[float], rows: int, batch_size: int) -> float | None:
    """The mean over ``rows`` images from the running means of batch means that Keras reports
    after each of the pass's batches (``running``; every batch ``batch_size`` images but the
    last, which holds the rest). ``None`` where the batches cannot be those (the figure is then
    left as Keras gives it)."""
    batches = len(running)
    last = rows - batch_size * (batches - 1)
    if batches == 0 or not 0 < last <= batch_size:
        return None
    if batches == 1:
        return float(running[0])
    before, after = float(running[-2]), float(running[-1])
    # the sum of the first batches' means is (batches - 1) × before; the last's is what the
    # running mean gained by it
    full = (batches - 1) * before
    return (batch_size * full + last * (batches * after - full)) / rows


def output_rows(outputs: Any) -> int:
    """The images a model's predictions are of (one array, or a list or dict of one per output)."""
    if isinstance(outputs, dict):
        outputs = list(outputs.values())
    return len(outputs[0] if isinstance(outputs, (list, tuple)) else outputs)


def is_output_loss(key: str) -> bool:
    """Whether Keras logs ``key`` as one output's loss (``NAME_loss``; not the total ``loss``)."""
    return key.endswith("_loss") and not key.startswith("val_")


def make_callback(batch_size: int, validation_rows: int | None = None, train_rows: int | None = None) -> Any:
    """A Keras callback that weighs each output's loss by batch size: after ``model.evaluate``
    read :meth:`OutputLossesCallback.evaluated`; during ``fit``, at the end of each epoch, it
    puts them into ``val_NAME_loss`` (``validation_rows`` images) and ``NAME_loss``
    (``train_rows`` images; ``None``: left as Keras gives it, as where the training data repeat
    and every batch is whole). Place it first, so that the callbacks after it see the figures.
    A model of one output logs no such figure: the callback then changes nothing."""
    import keras

    class OutputLossesCallback(keras.callbacks.Callback):
        """See :func:`make_callback`."""

        def __init__(self) -> None:
            super().__init__()
            self.test: dict[str, list[float]] = {}
            self.train: dict[str, list[float]] = {}

        def on_test_begin(self, logs: dict[str, Any] | None = None) -> None:
            self.test = {}

        def on_test_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
            _record(self.test, logs)

        def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            self.train = {}

        def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
            _record(self.train, logs)

        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            if logs is None:
                return
            if validation_rows:
                for key, value in self.evaluated(validation_rows).items():
                    if f"val_{key}" in logs:
                        logs[f"val_{key}"] = value
            if train_rows:
                for key, value in _weighted(self.train, train_rows, batch_size).items():
                    if key in logs:
                        logs[key] = value

        def evaluated(self, rows: int) -> dict[str, float]:
            """Each output's loss over the ``rows`` images of the last evaluation."""
            return _weighted(self.test, rows, batch_size)

    return OutputLossesCallback()


def _record(running: dict[str, list[float]], logs: dict[str, Any] | None) -> None:
    for key, value in (logs or {}).items():
        if is_output_loss(key):
            running.setdefault(key, []).append(float(value))


def _weighted(running: dict[str, list[float]], rows: int, batch_size: int) -> dict[str, float]:
    found = {key: weighted_loss(values, rows, batch_size) for key, values in running.items()}
    return {key: value for key, value in found.items() if value is not None}
