"""The loss a compiled source was saved with, as a note: the spec keeps no training settings.

A ``.keras`` file of a compiled model records its loss (``compile_config``). The imported spec
has no ``training:`` section, and without one the task rules read a linear head as a
classifier's logits; the saved loss is what tells a regression apart (``cnnspec predict`` of the
file itself reads it so, :func:`cnnspec.reporting.run.model_tasks`). So a regression loss in
the source gets a note saying what to add before training the spec. TF-free.
"""

from __future__ import annotations

from typing import Any

from cnnspec.analysis.tasks import keras_regression_loss, losses_by_name, saved_loss


def regression_loss_note(config: dict[str, Any]) -> str | None:
    """The note for a source compiled with a regression loss (one loss, or one per output by
    name or in order), or ``None``."""
    loss = saved_loss(config)
    if losses_by_name(loss):
        found = {str(name): keras_regression_loss(value) for name, value in loss.items()}
    elif isinstance(loss, list):
        found = {f"output {index}": keras_regression_loss(value) for index, value in enumerate(loss)}
    else:
        found = {"": keras_regression_loss(loss)}
    named = {name: value for name, value in found.items() if value is not None}
    if not named:
        return None
    if list(named) == [""]:
        what, setting = (
            f"the regression loss {named['']}",
            f"training: {{task: regression, loss: {named['']}}}",
        )
    else:
        listed = ", ".join(f"{name}: {value}" for name, value in named.items())
        what, setting = f"regression losses ({listed})", "training.outputs.NAME: {task: regression, loss: …}"
    return (
        f"the source was compiled with {what}; the spec keeps no training settings, and without "
        f"them a linear output is read as a classifier's logits: add {setting} before training it"
    )


__all__ = ["regression_loss_note"]
