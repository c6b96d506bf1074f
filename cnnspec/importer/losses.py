"""The loss a compiled source was saved with, as a note: the spec keeps no training settings.

A ``.keras`` file of a compiled model records its loss (``compile_config``). The imported spec
has no ``training:`` section, and without one the task rules read a linear head as a
classifier's logits; the saved loss is what tells a regression apart (``cnnspec predict`` of the
file itself reads it so, :func:`cnnspec.reporting.run.model_tasks`). So a regression loss in
the source gets a note saying what to add before training the spec. A model with several
outputs: each loss is said of its output's id in the spec (the setting is then
``training.outputs.ID``). TF-free.
"""

from __future__ import annotations

from typing import Any

from cnnspec.analysis.tasks import keras_regression_loss, losses_by_name, saved_loss
from cnnspec.importer.graph import Graph


def _output_ids(graph: Graph | None, ids: list[str] | None) -> dict[str, str]:
    """Keras' name of each output (its dict key, else its layer's name) → its id in the spec."""
    if graph is None or not ids or len(ids) != len(graph.outputs):
        return {}
    keys = graph.output_keys or [None] * len(graph.outputs)
    found: dict[str, str] = {}
    for layer, key, ident in zip(graph.outputs, keys, ids, strict=True):
        found.setdefault(str(key) if key is not None else layer, ident)
    return found


def regression_loss_note(
    config: dict[str, Any], graph: Graph | None = None, ids: list[str] | None = None
) -> str | None:
    """The note for a source compiled with a regression loss (one loss, or one per output by
    name or in order), or ``None``. ``graph`` and ``ids`` (the spec's ``outputs:``, for a model
    with several): each loss is then said of its output's id."""
    loss = saved_loss(config)
    by_id = _output_ids(graph, ids)
    if losses_by_name(loss):
        found = {
            by_id.get(str(name), str(name)): keras_regression_loss(value) for name, value in loss.items()
        }
    elif isinstance(loss, list):
        found = {
            (ids[index] if ids and index < len(ids) else f"output {index}"): keras_regression_loss(value)
            for index, value in enumerate(loss)
        }
    elif ids:  # one loss for every output
        found = dict.fromkeys(ids, keras_regression_loss(loss))
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
    elif ids and set(named) <= set(ids):
        listed = ", ".join(f"{name}: {value}" for name, value in named.items())
        settings = ", ".join(f"{name}: {{task: regression, loss: {value}}}" for name, value in named.items())
        what, setting = f"regression losses ({listed})", f"training: {{outputs: {{{settings}}}}}"
    else:
        listed = ", ".join(f"{name}: {value}" for name, value in named.items())
        what, setting = f"regression losses ({listed})", "training.outputs.NAME: {task: regression, loss: …}"
    return (
        f"the source was compiled with {what}; the spec keeps no training settings, and without "
        f"them a linear output is read as a classifier's logits: add {setting} before training it"
    )


__all__ = ["regression_loss_note"]
