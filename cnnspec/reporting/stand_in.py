"""A spec for a model that has none (a ``.keras`` file outside a run folder, an export served by
itself): its outputs' tasks read from their shapes, activations and the loss the archive
recorded (:func:`model_tasks`), written as a stand-in spec (:func:`stand_in_spec`) that the
commands compile as they compile a run's, and how its first output is read
(:func:`model_output_kind`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cnnspec.errors import UsageError
from cnnspec.reporting.data_option import with_source
from cnnspec.reporting.model_graph import (
    TASK_SPEC_HINT,
    ModelOutput,
    OutputKind,
    input_shape,
    model_outputs,
    rescales_itself,
)

if TYPE_CHECKING:
    from cnnspec.analysis.compiled import CompiledSpec
    from cnnspec.analysis.tasks import OutputTask


def model_output_kind(model: Any, name: str = "model", path: Path | None = None) -> OutputKind:
    """For a model without a spec: how to read its first output, as predict, evaluate and
    export read it (:func:`model_tasks`: each output's task from its shape, activation and the
    loss its file ``path`` records), not from the last layer (another output of a multi-output
    model, a ``Softmax`` layer without an ``activation`` key, a regression head's linear unit).
    A :class:`UsageError` asking for ``--spec`` where the task rules cannot tell."""
    first = model_tasks(model, name, path)[0]
    return OutputKind(binary=first.binary, from_logits=first.loss.from_logits)


def stand_in_ids(outputs: list[ModelOutput]) -> list[str]:
    """The ids of the outputs' heads in the stand-in spec (:func:`_stand_in_text`), in order:
    an output's Keras name where cnnspec's id rules take it, else a made-up ``out_N`` (``N``
    its position; ``out_N_2`` … where a Keras name holds that). A Keras name is no id when it
    is not an identifier (``my.out-1``), is ``input`` (the model input's) or repeats one (an
    output listed twice, ``keras.Model(i, [d, d])``): used as ids, such names made the model
    unreadable without ``--spec``. Names that are ids stay: a multi-output model's losses,
    metrics and ``.npz`` targets (``y_test_NAME``) are keyed by them, as the model's are.
    :func:`model_tasks` maps the ids back to the Keras names."""
    from cnnspec.ir import INPUT
    from cnnspec.spec.scope import IDENTIFIER, unique_id

    def usable(name: str) -> bool:
        return bool(IDENTIFIER.fullmatch(name)) and name.isascii() and name != INPUT

    # every usable name is reserved before any made-up id is chosen, so none takes one
    taken = {out.name for out in outputs if usable(out.name)}
    ids: list[str] = []
    for position, out in enumerate(outputs):
        if usable(out.name) and out.name not in ids:
            ids.append(out.name)
            continue
        # not an id, or a repeat (its first use keeps the name): a made-up id
        ids.append(unique_id(f"out_{position}", taken | set(ids)))
    return ids


#: The data source of a stand-in spec (:func:`_stand_in_text`): an ``.npz`` file without a
#: ``target``, the one source whose spec says nothing of the data (its targets, the images'
#: size and channels are the file's alone, checked when it is read), so that no source's
#: limits are put on the model's input: ``shapes`` (whose generator draws 1- or 3-channel
#: images of at least 8×8 pixels) refused an RGBA or 2-channel model, a 7×7 input and a
#: 16×1 segmentation map as "cannot tell the task". It is never read: the data of a model
#: without a spec is ``--data`` (:func:`spec_for_model` replaces it).
STAND_IN_SOURCE = {"npz": "<the model's data>.npz"}


def stand_in_name(name: str) -> str:
    """The spec name of a model file's stand-in spec, from its file name: a valid identifier
    (``[A-Za-z_][A-Za-z0-9_]*``) whatever the file is called. ``my-model.keras``,
    ``1model.keras`` and ``modèle.keras`` were refused ("cannot tell the task of the model's
    outputs without a spec (name: expected an identifier …)"): the clean-up kept ``-``, a
    letter outside ASCII and a leading digit."""
    cleaned = re.sub(r"[^A-Za-z0-9_]", "_", name)
    if not re.search(r"[A-Za-z0-9]", cleaned):  # nothing of the name is left: a plain one
        return "model"
    return f"_{cleaned}" if cleaned[0].isdigit() else cleaned


def _stand_in_text(
    name: str, sample: tuple[int, ...], outputs: list[ModelOutput], scales: bool, rebuild: bool = True
) -> str:
    """The stand-in spec of a model without one: a head per output with the output's id
    (:func:`stand_in_ids`), shape and activation (a 1×1 convolution for a map, a dense layer
    for a vector) and the loss its file records (a classification loss only with ``rebuild``,
    where cnnspec builds it: :attr:`ModelOutput.rebuilt_loss`), so the task rules
    (:func:`~cnnspec.analysis.tasks.infer_task` and the output checks) decide each output's
    task as they decide a spec's. A :class:`UsageError` naming an output (by its Keras name)
    whose shape is no task's."""
    from cnnspec.spec.dumping import dump_yaml

    ids = stand_in_ids(outputs)
    taken = set(ids)
    flat = next(
        f"cnnspec_flat{i or ''}" for i in range(len(taken) + 1) if f"cnnspec_flat{i or ''}" not in taken
    )
    model: list[Any] = []
    if any(len(out.shape) == 1 for out in outputs):
        model.append({"flatten": None, "id": flat, "inputs": "input"})
    losses: dict[str, Any] = {}
    for out, out_id in zip(outputs, ids):
        params: dict[str, Any] = {}
        if out.activation is not None:
            params["activation"] = out.activation
        if (
            any(d is None for d in out.shape)
            or len(out.shape) not in (1, 3)
            or (len(out.shape) == 3 and tuple(out.shape[:2]) != tuple(sample[:2]))
        ):  # a map of another size, or another rank: no task's output (README: tasks)
            raise UsageError(
                f"cannot tell the task of the model's output {out.name!r} (shape {list(out.shape)}) "
                "without a spec: it is neither a vector nor a map of the input's height and width",
                TASK_SPEC_HINT,
            )
        if out.unread_loss is not None:  # a guess would be a made-up task (predict's classes)
            raise UsageError(
                f"cannot tell the task of the model's output {out.name!r} without a spec: its file "
                f"records the loss {out.unread_loss!r}, which is neither a classification nor a "
                "regression loss cnnspec knows",
                TASK_SPEC_HINT,
            )
        if (
            tuple(out.shape) == (1,)
            and out.activation not in ("sigmoid", "softmax")
            and out.loss is None
            and out.classification_loss is None
        ):  # (the task rules would read a binary classifier on logits: a made-up task)
            raise UsageError(
                f"cannot tell the task of the model's output {out.name!r} without a spec: one "
                "unit without a sigmoid, saved without a loss, may be a binary classifier's logit "
                "or a regression's value",
                TASK_SPEC_HINT,
            )
        if len(out.shape) == 3:
            head = {"conv2d": {"filters": out.shape[-1], "kernel_size": 1, **params}, "inputs": "input"}
        else:
            head = {"dense": {"units": out.shape[0], **params}, "inputs": flat}
        model.append({**head, "id": out_id})
        if out.loss is not None:
            losses[out_id] = {"loss": out.loss}
        elif rebuild and out.rebuilt_loss is not None:
            losses[out_id] = {"loss": out.rebuilt_loss}
    training: dict[str, Any] = {}
    if len(outputs) > 1 and losses:
        training = {"outputs": losses}
    elif losses:
        training = dict(next(iter(losses.values())))
    document: dict[str, Any] = {
        "cnnspec": 1,
        "name": stand_in_name(name),
        "input": {"shape": list(sample)},
        "model": model,
        "outputs": ids,
        # STAND_IN_SOURCE: a source whose spec holds every task's targets and puts no limit on
        # the input, so only the model's outputs decide the tasks here
        "data": {"source": dict(STAND_IN_SOURCE), "rescale": None if scales else "auto"},
    }
    if training:
        document["training"] = training
    return dump_yaml(document, sort_keys=False)


def stand_in_spec(model: Any, name: str, path: Path | None = None) -> CompiledSpec:
    """The stand-in spec of a model without one (:func:`_stand_in_text`), compiled: its tasks
    are what the task rules infer from the model's outputs, the one reading of a model outside
    a run that evaluate and predict share. A :class:`UsageError` naming the output and asking
    for ``--spec`` where they cannot tell (the first of the rules' errors)."""
    return _compiled_stand_in(model, name, model_outputs(model, path))


def _compiled_stand_in(model: Any, name: str, outputs: list[ModelOutput]) -> CompiledSpec:
    """:func:`stand_in_spec` of the model's ``outputs`` (:func:`model_outputs`), read once by
    :func:`model_tasks`, which also maps the stand-in's ids back to their names."""
    from cnnspec.analysis.passes import compile_text
    from cnnspec.errors import SpecError

    sample, scales = input_shape(model), rescales_itself(model)
    if any(out.rebuilt_loss is not None for out in outputs):
        try:
            return compile_text(_stand_in_text(name, sample, outputs, scales), "<model>")
        except SpecError:
            # a recorded loss the output's task does not take (binary crossentropy on a softmax
            # of 10 units, which Keras trains without a word): crossentropy stands in for it, and
            # evaluate says so (loss_notes)
            pass
    text = _stand_in_text(name, sample, outputs, scales, rebuild=False)
    try:
        return compile_text(text, "<model>")
    except SpecError as exc:
        first = exc.diagnostics[0] if exc.diagnostics else None
        where = f" ({first.path}: {first.message})" if first is not None else ""
        raise UsageError(
            f"cannot tell the task of the model's outputs without a spec{where}", TASK_SPEC_HINT
        ) from None


def model_tasks(model: Any, name: str, path: Path | None = None) -> tuple[OutputTask, ...]:
    """Each output's task of a model without a spec, as evaluate reads such a model
    (:func:`stand_in_spec`), named by the model's output names (the stand-in's ids are made up
    where a name is no id: :func:`stand_in_ids`), so predict, export and visualize report the
    outputs the model has."""
    from cnnspec.analysis.settings import training_config

    outputs = model_outputs(model, path)
    keras_names = dict(zip(stand_in_ids(outputs), (out.name for out in outputs)))
    tasks = training_config(_compiled_stand_in(model, name, outputs)).tasks
    if len(set(keras_names.values())) < len(keras_names):
        # names repeat (one layer output listed twice, keras.Model(i, [d, d])): the ids stay, as
        # evaluate keeps them (_named_as_model); named alike, predict answered one of them
        return tasks
    return tuple(replace(task, name=keras_names.get(task.name, task.name)) for task in tasks)


def described_outputs(tasks: Sequence[Any]) -> str:
    """``mask (segmentation), area (regression)``: a model's outputs and their tasks, as the
    refusals of what a task does not allow name them."""
    return ", ".join(f"{task.name} ({task.task})" for task in tasks)


def spec_for_model(
    model: Any, name: str, source: str | dict[str, Any], path: Path | None = None
) -> CompiledSpec:
    """A stand-in spec for a model without one (:func:`stand_in_spec`: each output's shape,
    activation and recorded loss, so its task), with the data source, and the model's own
    scaling (``rescale: null`` when it has a Rescaling layer)."""
    return with_source(stand_in_spec(model, name, path), source)
