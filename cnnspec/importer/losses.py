"""The loss a compiled source was saved with, as a note: the spec keeps no training settings.

A ``.keras`` file of a compiled model records its loss (``compile_config``). The imported spec
has no ``training:`` section, and without one the task rules read a linear head as a
classifier's logits; the saved loss is what tells a regression apart (``cnnspec predict`` of the
file itself reads it so, :func:`cnnspec.reporting.run.model_tasks`). So a regression loss in
the source gets a note saying what to add before training the spec. A model with several
outputs: each loss is said of its output's id in the spec (the setting is then
``training.outputs.ID``). A classification loss other than crossentropy (a focal loss, label
smoothing: :func:`classification_loss_note`) gets its note too, with the setting that trains
the spec as the source was trained. TF-free.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cnnspec.analysis.settings import name_and_settings
from cnnspec.analysis.tasks import (
    keras_classification_loss,
    keras_regression_loss,
    losses_by_name,
    saved_loss,
)
from cnnspec.importer.graph import Graph
from cnnspec.spec.sections import FOCAL_ALPHA, FOCAL_GAMMA, FOCAL_LOSSES


def _output_ids(graph: Graph | None, ids: list[str] | None) -> dict[str, str]:
    """Keras' name of each output (its dict key, else its layer's name) → its id in the spec."""
    if graph is None or not ids or len(ids) != len(graph.outputs):
        return {}
    keys = graph.output_keys or [None] * len(graph.outputs)
    found: dict[str, str] = {}
    for layer, key, ident in zip(graph.outputs, keys, ids, strict=True):
        found.setdefault(str(key) if key is not None else layer, ident)
    return found


def _per_output(
    config: dict[str, Any], graph: Graph | None, ids: list[str] | None, read: Callable[[Any], str | None]
) -> dict[str, str]:
    """``read`` of each output's saved loss, by the output's id (``""``: the one output of a
    model without ``outputs:``; ``output N`` where the id is unknown), where it says something."""
    loss = saved_loss(config)
    by_id = _output_ids(graph, ids)
    if losses_by_name(loss):
        found = {by_id.get(str(name), str(name)): read(value) for name, value in loss.items()}
    elif isinstance(loss, list):
        found = {
            (ids[index] if ids and index < len(ids) else f"output {index}"): read(value)
            for index, value in enumerate(loss)
        }
    elif ids:  # one loss for every output
        found = dict.fromkeys(ids, read(loss))
    else:
        found = {"": read(loss)}
    return {name: value for name, value in found.items() if value is not None}


#: The settings of cnnspec's classification losses whose default leaves them plain crossentropy
#: (Keras' defaults too): a setting at its default is not written into the note's setting.
_DEFAULTS: dict[str, Any] = {
    "label_smoothing": 0.0,
    "gamma": FOCAL_GAMMA,
    "alpha": FOCAL_ALPHA,
    "apply_class_balancing": False,
}


def _other_classification_loss(value: Any) -> str | None:
    """The ``training.loss`` setting (flow YAML) of a saved classification loss that trains
    otherwise than the crossentropy a spec without one gets: a focal loss, or label smoothing
    (:func:`~cnnspec.analysis.tasks.keras_classification_loss`); ``None`` for any other."""
    loss = keras_classification_loss(value)
    if loss is None:
        return None
    name, settings = name_and_settings(loss)
    changed = {key: setting for key, setting in settings.items() if setting != _DEFAULTS.get(key)}
    if name not in FOCAL_LOSSES and not changed:
        return None  # crossentropy, as the spec trains without a loss setting
    if not changed:
        return name
    written = ", ".join(
        f"{key}: {str(v).lower() if isinstance(v, bool) else v}" for key, v in changed.items()
    )
    return f"{{{name}: {{{written}}}}}"


def _described(setting: str) -> str:
    """A setting of :func:`_other_classification_loss` in words: ``{categorical_focal_crossentropy:
    {gamma: 3.0}}`` is ``categorical_focal_crossentropy (gamma 3.0)``."""
    if not setting.startswith("{"):
        return setting
    name, _, settings = setting[1:-2].partition(": {")
    return f"{name} ({settings.replace(': ', ' ')})"


def classification_loss_note(
    config: dict[str, Any], graph: Graph | None = None, ids: list[str] | None = None
) -> str | None:
    """The note for a source compiled with a classification loss other than crossentropy (a
    focal loss, label smoothing: :func:`_other_classification_loss`), with the ``training``
    setting that trains the spec with it, or ``None``; ``graph`` and ``ids`` as for
    :func:`regression_loss_note`."""
    named = _per_output(config, graph, ids, _other_classification_loss)
    if not named:
        return None
    if list(named) == [""]:
        what, setting = f"the loss {_described(named[''])}", f"training: {{loss: {named['']}}}"
    else:
        listed = ", ".join(f"{name}: {_described(value)}" for name, value in named.items())
        what = f"the losses ({listed})"
        if ids and set(named) <= set(ids):
            settings = ", ".join(f"{name}: {{loss: {value}}}" for name, value in named.items())
            setting = f"training: {{outputs: {{{settings}}}}}"
        else:
            setting = "training.outputs.NAME: {loss: …}"
    return (
        f"the source was compiled with {what}; the spec keeps no training settings, and without "
        f"them it trains with plain crossentropy: add {setting} to train it as the source was"
    )


def regression_loss_note(
    config: dict[str, Any], graph: Graph | None = None, ids: list[str] | None = None
) -> str | None:
    """The note for a source compiled with a regression loss (one loss, or one per output by
    name or in order), or ``None``. ``graph`` and ``ids`` (the spec's ``outputs:``, for a model
    with several): each loss is then said of its output's id."""
    named = _per_output(config, graph, ids, keras_regression_loss)
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


__all__ = ["classification_loss_note", "regression_loss_note"]
