"""A compiled model's variables made before ``fit`` traces its train step.

Keras 3.15's TensorFlow trainer builds the optimizer (its slots: Adam's momentum and velocity)
and the compiled metrics (their totals and counts) lazily, inside the first trace of the train
step, unless a distribution strategy is set (``_maybe_symbolic_build`` returns early without
one, "for backwards compatibility"). A ``tf.function`` whose first trace creates variables is
traced a second time, without them, before it runs: every ``fit`` traced its train step twice,
about a quarter of a small model's fit (0.2-0.4 s of each run's start, and of each phase's,
whose fresh optimizer is built again).

:func:`build_for_fit` makes the same variables first, the way Keras itself does under a
strategy (``_symbolic_build``: the model called symbolically on the data's shapes, the metrics
updated symbolically, ``optimizer.build(trainable_variables)``), so the first trace is the only
one. The variables are the same ones, made in the same order with the same (zero) values, and
no random number is drawn: the training is the same, step for step. A resumed run already built
its optimizer before loading a snapshot (:mod:`cnnspec.training.state`).
"""

from __future__ import annotations

from typing import Any


def build_for_fit(model: Any, dataset: Any) -> None:
    """Create ``model``'s optimizer and compiled-metric variables (and any unbuilt layer's) for
    the batches of ``dataset`` (a ``tf.data.Dataset`` of ``(x, y)`` or ``(x, y, weights)``);
    nothing happens when all of them exist already, or under a distribution strategy, where
    Keras' fit makes them before tracing."""
    symbolic_build = getattr(model, "_symbolic_build", None)
    if symbolic_build is None or model.optimizer is None:  # (another Keras: fit builds them its way)
        return
    if getattr(model, "_distribute_strategy", None) is not None:  # (fit builds them first, from a
        return  # batch of the distributed data, as distribute.prepare_model has it for multi_worker)
    # The shapes are all the build reads: the dataset's spec, not a batch of it, so no
    # iterator is started (a shuffled dataset would draw its next order for it).
    symbolic_build(data_batch=dataset.element_spec)
