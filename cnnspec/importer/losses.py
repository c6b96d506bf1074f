"""The loss a compiled source was saved with, as a note: the spec keeps no training settings.

A ``.keras`` file of a compiled model records its loss (``compile_config``). The imported spec
has no ``training:`` section, and without one the task rules read a linear head as a
classifier's logits; the saved loss is what tells a regression apart (``cnnspec predict`` of the
file itself reads it so, :func:`cnnspec.reporting.stand_in.model_tasks`). So a regression loss in
the source gets a note saying what to add before training the spec. A model with several
outputs: each loss is said of its output's id in the spec (the setting is then
``training.outputs.ID``). A classification loss other than crossentropy (a focal loss, label
smoothing: :func:`classification_loss_note`) gets its note too, with the setting that trains
the spec as the source was trained; a regression loss's settings (a Huber loss's ``delta``)
are in its note's setting, or, where the file does not record them, the note says so. TF-free.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cnnspec.analysis.settings_training import name_and_settings
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


#: The settings cnnspec's regression losses take (``training.loss.huber.delta``), each with
#: its default (Keras' too): a saved loss's setting away from it is written into the note's
#: setting, so that the spec trains with the source's loss, not the default one.
_REGRESSION_SETTINGS: dict[str, dict[str, float]] = {"huber": {"delta": 1.0}}


def _saved_settings(value: Any) -> dict[str, Any] | None:
    """The settings a serialized Keras loss object records (its ``config``), or ``None`` for a
    loss given by name or as a function, which takes Keras' defaults."""
    if not isinstance(value, dict) or not isinstance(value.get("config"), dict):
        return None
    return value["config"]


def _regression_loss(value: Any) -> str | None:
    """The ``training.loss`` setting (flow YAML) of a saved regression loss: its name
    (:func:`~cnnspec.analysis.tasks.keras_regression_loss`), or ``{huber: {delta: 2.0}}``
    where the saved loss object holds a setting other than its default; ``None`` for a loss
    that is no regression's."""
    name = keras_regression_loss(value)
    if name is None:
        return None
    config = _saved_settings(value) or {}
    changed = {
        key: float(setting)
        for key, default in _REGRESSION_SETTINGS.get(name, {}).items()
        if isinstance(setting := config.get(key), int | float)
        and not isinstance(setting, bool)
        and float(setting) != default
    }
    if not changed:
        return name
    return f"{{{name}: {{{', '.join(f'{key}: {v}' for key, v in changed.items())}}}}}"


def _unrecorded_settings(value: Any) -> str | None:
    """The settings of a saved regression loss object that its file does not record, as
    ``LOSS.SETTING`` (``huber.delta``; several joined by a space), or ``None``. Keras 3 saves
    ``keras.losses.Huber`` without its ``delta`` (its ``get_config`` keeps the name and the
    reduction only), so a file of a model compiled with ``Huber(delta=2.0)`` reads as delta 1,
    as Keras' own ``load_model`` reads it too: the note says so, rather than state a delta
    the file does not hold (a file that records it, tf.keras', gets it in the setting)."""
    name, config = keras_regression_loss(value), _saved_settings(value)
    if name is None or config is None:
        return None
    missing = [key for key in _REGRESSION_SETTINGS.get(name, {}) if key not in config]
    return " ".join(f"{name}.{key}" for key in missing) or None


def regression_loss_note(
    config: dict[str, Any], graph: Graph | None = None, ids: list[str] | None = None
) -> str | None:
    """The note for a source compiled with a regression loss (one loss, or one per output by
    name or in order), or ``None``. ``graph`` and ``ids`` (the spec's ``outputs:``, for a model
    with several): each loss is then said of its output's id. A loss's settings
    (:func:`_regression_loss`: a Huber loss's ``delta``) are in the note's setting."""
    named = _per_output(config, graph, ids, _regression_loss)
    if not named:
        return None
    if list(named) == [""]:
        what, setting = (
            f"the regression loss {_described(named[''])}",
            f"training: {{task: regression, loss: {named['']}}}",
        )
    elif ids and set(named) <= set(ids):
        listed = ", ".join(f"{name}: {_described(value)}" for name, value in named.items())
        settings = ", ".join(f"{name}: {{task: regression, loss: {value}}}" for name, value in named.items())
        what, setting = f"regression losses ({listed})", f"training: {{outputs: {{{settings}}}}}"
    else:
        listed = ", ".join(f"{name}: {_described(value)}" for name, value in named.items())
        what, setting = f"regression losses ({listed})", "training.outputs.NAME: {task: regression, loss: …}"
    note = (
        f"the source was compiled with {what}; the spec keeps no training settings, and without "
        f"them a linear output is read as a classifier's logits: add {setting} before training it"
    )
    found = _per_output(config, graph, ids, _unrecorded_settings).values()
    for unrecorded in sorted({each for settings in found for each in settings.split()}):
        name, _, key = unrecorded.partition(".")  # (a setting the file lacks: said, not guessed)
        note += (
            f"; the file does not record the {name} loss's {key} (Keras does not save it), so the setting "
            f"takes its default {_REGRESSION_SETTINGS[name][key]:g}: if the source was trained "
            f"with another, write loss: {{{name}: {{{key}: …}}}}"
        )
    return note


__all__ = ["classification_loss_note", "regression_loss_note"]
