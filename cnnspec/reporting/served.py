"""An exported file served by itself: ``cnnspec predict FILE.onnx IMAGE`` and ``cnnspec evaluate
FILE.onnx --data SOURCE`` read a ``.onnx`` or ``.tflite`` file copied away from its run and model,
with the record ``cnnspec export`` wrote beside it (``FILE.json``,
:func:`~cnnspec.export.runtimes.read_served`). The record is the model's description: its input,
each output's task and how to read it (a model of several: every one, in the model's order, as
the file answers them), its class names, the pixel factor. For ``evaluate``
it becomes a stand-in spec (:func:`served_run`), so that the data is loaded, checked, scaled
and scored as a run's is. TF-free.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from cnnspec.analysis.settings_training import CROSSENTROPY_LOSSES, loss_settings, name_and_settings
from cnnspec.analysis.settings_types import LossConfig
from cnnspec.errors import UsageError
from cnnspec.export.runtimes import ExportRecord
from cnnspec.reporting.pixel_ranges import range_of_record
from cnnspec.reporting.run import Run
from cnnspec.reporting.run_splits import record_unknown_split, split_of_record
from cnnspec.reporting.stand_in import STAND_IN_SOURCE, stand_in_name
from cnnspec.spec.scope import unique_id


def served_record(
    target: Path,
    runtime: str,
    spec: Path | None,
    ensemble: list[Path] | None,
    wanted: float | None,
    default: str = "auto",
) -> tuple[ExportRecord, float, list[str]]:
    """The record of an exported file served by itself (``predict model.onnx IMAGE``:
    :func:`~cnnspec.export.runtimes.read_served`), the temperature to answer with (``auto``: as
    the file answers, its folded temperature; a number: the rest of it applied to the file's
    answer), and the notes. Refuses what needs the model: another runtime than the file's,
    ``--spec``, ``--ensemble``, and a
    number for a file whose answer is a mean (an ensemble's, ``--tta``'s: a temperature applied
    after the mean is none of the models'; the one it was exported with is its answer).
    ``runtime``: the ``--runtime`` given, which may be ``default`` (the command's own default:
    ``evaluate``'s is ``keras``) or the file's."""
    from cnnspec.export.runtimes import engine, quantized_note, read_served, serves_temperature

    record = read_served(target)
    if runtime not in ("auto", default, record.runtime, engine(record.runtime)[0]):
        raise UsageError(
            f"expected --runtime {record.runtime} (or auto) for {target}; received {runtime}",
            "an exported file answers in its own runtime; pass the run folder for Keras",
        )
    for given, option in ((spec, "--spec"), (ensemble, "--ensemble")):
        if given:
            raise UsageError(
                f"expected a run folder or a .keras model with {option}; received the exported file {target}",
                f"drop {option}, or pass the run folder",
            )
    unknown = record.data["output"].get("task_unknown")
    if unknown is not None:  # (its record names no classes: any reading would be made up)
        raise UsageError(
            f"cannot serve the exported file {target} by itself: its record says the task of its "
            f"model's outputs could not be told when it was exported ({str(unknown)[:300]})",
            "pass its model (.keras) with --spec SPEC, a spec that describes the model, or the run folder",
        )
    mean = [key for key in ("ensemble", "tta") if key in record.data]
    notes = quantized_note(record)
    # auto: as the file answers, and by the run's temperature its head could not take (its
    # record keeps it: predict RUN applies it too); no file has both
    scale = record.temperature * record.unfolded_temperature if wanted is None else wanted
    if mean:
        exported = mean_temperatures(record)
        what = "models" if mean[0] == "ensemble" else "mirror images"
        if wanted is not None and not (
            len(exported) == 1 and math.isclose(wanted, exported[0], rel_tol=1e-5)
        ):
            said = ", ".join(f"{t:g}" for t in exported)
            raise UsageError(
                f"expected --temperature auto for {target}: it answers the mean of its {what}, each "
                f"scaled as it was exported (temperature {said}), which no temperature after the mean gives",
                "drop --temperature; another temperature needs another export (cnnspec export RUN "
                "--temperature N, with the same --tta or --ensemble)",
            )
        scale = record.temperature  # (the file's own answer: nothing more to apply)
        notes.append(f"{target.name} answers the mean of its {what} ({mean_described(record)})")
    if record.temperature != 1.0 and wanted is None:
        own = "" if mean else " (--temperature 1 gives the model's own probabilities)"
        notes.append(f"{target.name} answers with the temperature {record.temperature:.4g} folded in{own}")
    if record.unfolded_temperature != 1.0 and wanted is None and not mean:
        notes.append(
            f"temperature {record.unfolded_temperature:.4g} applied (fitted by cnnspec calibrate for "
            f"the model of {target.name}, kept by its record: the file answers the model's own "
            "probabilities); --temperature 1 for the model's own probabilities"
        )
    serves_temperature(record, scale, record.runtime, notes)
    return record, scale, notes


def mean_temperatures(record: ExportRecord) -> list[float]:
    """The distinct temperatures an ensemble's or ``--tta`` file's models were exported with, in
    order (each ensemble member's own; a ``--tta`` file's one model's)."""
    from cnnspec.export.runtimes import folded_temperature

    members = record.data.get("ensemble")
    found = [folded_temperature(record.data)]
    if isinstance(members, list):
        found = [
            float(m["temperature"])
            for m in members
            if isinstance(m, dict) and _positive(m.get("temperature"))
        ]
    return list(dict.fromkeys(found)) or [1.0]


def _positive(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value < math.inf


def mean_described(record: ExportRecord) -> str:
    """What a served file's mean is over, from its record: ``export --tta hflip``, ``export
    --ensemble of 3 models``."""
    parts = []
    members = record.data.get("ensemble")
    if isinstance(members, list):
        parts.append(f"--ensemble of {len(members)} models")
    views = record.data.get("tta")
    if isinstance(views, list):
        parts.append("--tta " + ",".join(map(str, views)))
    return "cnnspec export " + " ".join(parts)


def served_run(record: ExportRecord) -> Run:
    """A :class:`~cnnspec.reporting.run.Run` of an exported file served by itself: its stand-in
    spec (:func:`stand_in_text`: the record's input, a head for each of the record's outputs,
    their tasks, losses and pixel factor) and the record's class or label names (each output's).
    Its data is ``--data``'s."""
    from cnnspec.analysis.passes import compile_text
    from cnnspec.errors import SpecError

    try:
        compiled = compile_text(stand_in_text(record), f"<{record.path.name}>")
    except SpecError as exc:  # (a record read_served accepted describes a model a spec can)
        first = exc.diagnostics[0].message if exc.diagnostics else str(exc)
        raise UsageError(
            f"cannot read the exported file {record.path} without its model: its record "
            f"describes an output no spec has ({first})",
            "pass the run folder or its model.keras",
        ) from None
    tasks = record.tasks
    names = next(iter(record.output_names.values()), []) if tasks else record.classes
    # the split of the run it was exported from, as its record keeps it (an older record keeps
    # none: the run folder the file lies in is read for it, if any: split_origin); a record
    # without one says why (split_unknown), an older one nothing
    split = split_of_record(
        record.data.get("split"),
        "as its record says the run it was exported from drew it",
    )
    return Run(
        model_path=record.path,
        run_dir=None,
        compiled=compiled,
        class_names=list(names) or None,
        # each output's names, by its head's id (a model of several outputs: test.output_names)
        # (the ids as stand_in_text made them: served_ids of the record's names, in its order)
        spec_names={
            ident: record.output_names.get(task.name, [])
            for task, ident in zip(tasks or (), served_ids([task.name for task in tasks or ()]), strict=True)
        },
        split=split,
        unknown_split=record_unknown_split(record.data.get("split_unknown")) if split is None else None,
        recorded_range=range_of_record(record.data["input"].get("pixel_range")),
    )


def recorded_loss(output: dict[str, Any], default: str) -> tuple[str, dict[str, Any]]:
    """A classifier record's ``output.loss`` (the loss it trained with, as ``training.loss``
    writes it: a name, or ``{name: settings}``) as its name and settings; ``default`` with none
    for a record written before it was kept (or one that is not a loss's)."""
    name, settings = name_and_settings(output.get("loss"))
    if name not in CROSSENTROPY_LOSSES:
        return default, {}
    return name, {k: v for k, v in settings.items() if k != "from_logits"}


def _changed_settings(loss: Any) -> dict[str, Any]:
    """The settings of a served output's loss (a :class:`~cnnspec.analysis.settings_types.LossConfig`)
    that are not their defaults, as ``training.loss`` writes them."""
    default = loss_settings(LossConfig(loss.name))
    return {k: v for k, v in loss_settings(loss).items() if v != default[k]}


def inexact_loss_notes(record: ExportRecord) -> list[str]:
    """A note for each output whose record keeps only its loss's name where the loss takes
    settings (a record written before they were kept): the loss is reported with the defaults,
    which may not be the ones the run trained with."""
    from cnnspec.export.runtimes import inexact_loss

    notes = []
    for entry in record.data.get("outputs") or []:
        name = inexact_loss(entry)
        if name is not None:
            notes.append(
                f"loss of {entry['name']}: {name} with its default settings (the file's record keeps "
                "only the loss's name; the run folder's evaluate has the settings it trained with)"
            )
    return notes


def _ident(name: str) -> str:
    """A served output's name in a spec id's letters (ASCII: ``\\W`` kept ``é``, which no id
    takes): the plain id of its head in the stand-in spec, before :func:`served_ids` makes the
    ids unique."""
    ident = re.sub(r"[^A-Za-z0-9_]", "_", name) if name else "output"
    return ident if re.match(r"[A-Za-z]", ident) else f"output_{ident}"


def served_ids(names: list[str]) -> list[str]:
    """The ids of a served file's outputs' heads in the stand-in spec (:func:`stand_in_text`), in
    the record's order: each name in a spec id's letters (:func:`_ident`), unique and the same for
    the same names. Names that differ only in punctuation (``mask-a`` and ``mask_a``, ``a.b`` and
    ``a_b``) had one id: the stand-in spec repeated it (refused, or one output read as the other).
    A name that is an id already keeps it (so do its ``.npz`` targets, ``y_test_NAME``); the others
    take ``ID_2``, ``ID_3`` … where theirs is taken, as is ``input`` (the model input's).
    :func:`served_run` maps the ids back to the outputs' names (``spec_names``)."""
    from cnnspec.ir import INPUT

    plain = [_ident(name) for name in names]
    taken = {INPUT}
    ids: list[str | None] = [None] * len(names)
    # every name that is an id is reserved before another takes a suffixed id, so none takes one
    for position, (name, ident) in enumerate(zip(names, plain, strict=True)):
        if name == ident and ident not in taken:
            ids[position] = ident
            taken.add(ident)
    for position, ident in enumerate(plain):
        if ids[position] is None:
            made = unique_id(ident, taken)
            ids[position] = made
            taken.add(made)
    return [ident for ident in ids if ident is not None]


def _head(
    ident: str, kind: str, shape: tuple[int, ...], from_logits: bool, source: str | None, taken: set[str]
) -> list[Any]:
    """The stand-in spec's layers of one output: a 1×1 convolution for a map, a dense layer for a
    vector, with the activation its outputs say (none for logits); ``source``: the id of the
    layer it reads (``None``: the one before it). ``taken``: the ids in use (the heads'), to which
    a vector's flatten layer adds its own: ``ID_flat`` unless an output is named so."""
    activation = None
    if kind != "regression" and not from_logits:
        activation = "sigmoid" if kind == "multilabel" or shape[-1] == 1 else "softmax"
    params: dict[str, Any] = {"activation": activation} if activation else {}
    reads: dict[str, Any] = {"inputs": source} if source is not None else {}
    if len(shape) == 3:
        return [{"conv2d": {"filters": shape[-1], "kernel_size": 1, **params}, "id": ident, **reads}]
    flat = unique_id(f"{ident}_flat", taken)
    taken.add(flat)
    return [
        {"flatten": None, "id": flat, **reads},
        {"dense": {"units": shape[-1], **params}, "id": ident},
    ]


def _training(kind: str, shape: tuple[int, ...], from_logits: bool, loss: str, settings: dict[str, Any],
              threshold: float | None) -> dict[str, Any]:  # fmt: skip
    """One output's ``training`` settings in the stand-in spec: its task, loss and threshold."""
    training: dict[str, Any] = {"task": kind}
    # (the crossentropies take from_logits; a regression loss and dice are names alone)
    if loss in CROSSENTROPY_LOSSES:
        training["loss"] = {loss: {**settings, "from_logits": from_logits}}
    else:
        training["loss"] = {loss: settings} if settings else loss
    if threshold is not None and (kind == "multilabel" or shape[-1] == 1) and kind != "regression":
        training["threshold"] = float(threshold)
    return training


def stand_in_text(record: ExportRecord) -> str:
    """The spec of a served file's model as its record describes it: the record's input, a head
    of each output's shape (:func:`_head`; a model of several outputs: each head reads the input,
    and ``outputs`` lists them in the record's order, the file's) and ``training`` with each
    output's task, loss, threshold and loss weight, so the task rules read it as the run did. Its
    data source is :data:`~cnnspec.reporting.stand_in.STAND_IN_SOURCE`, which ``--data`` replaces."""
    from cnnspec.spec.dumping import dump_yaml

    output = record.data["output"]
    given = record.data["input"]
    tasks = record.tasks
    model: list[dict[str, Any]] = []
    training: dict[str, Any]
    listed: dict[str, Any] = {}  # (a model of several outputs: their ids, in the record's order)
    if tasks and len(tasks) > 1:
        by_output: dict[str, Any] = {}
        ids = served_ids([task.name for task in tasks])
        taken = set(ids)
        for task, ident in zip(tasks, ids, strict=True):
            shape = tuple(task.shape)
            model += _head(ident, task.task, shape, task.loss.from_logits, "input", taken)
            by_output[ident] = _training(
                task.task, shape, task.loss.from_logits, task.loss.name, _changed_settings(task.loss),
                task.threshold,
            )  # fmt: skip
            if task.loss_weight != 1.0:
                by_output[ident]["loss_weight"] = task.loss_weight
        training = {"outputs": by_output}
        listed = {"outputs": list(by_output)}
    else:
        if tasks:
            task = tasks[0]
            name, kind, shape = task.name, task.task, tuple(task.shape)
            from_logits, loss, threshold = task.loss.from_logits, task.loss.name, task.threshold
            settings = _changed_settings(task.loss)
        else:  # a single classifier's record: its classes, one sigmoid unit for two
            binary = bool(output["binary"])
            name, kind, shape = "output", "classification", (1 if binary else len(record.classes),)
            from_logits, threshold = bool(output["from_logits"]), None
            loss = "binary_crossentropy" if binary else "sparse_categorical_crossentropy"
            loss, settings = recorded_loss(output, loss)
        (ident,) = served_ids([name])
        model = _head(ident, kind, shape, from_logits, None, {ident})
        training = _training(kind, shape, from_logits, loss, settings, threshold)
    if given.get("rescale_by_depth") is True:
        rescale: Any = "auto"
    else:
        factor = given.get("rescale_integer")
        rescale = float(factor) if isinstance(factor, (int, float)) and not isinstance(factor, bool) else None
    document = {
        "cnnspec": 1,
        # an identifier whatever the file is called (``my-model.onnx`` kept its ``-``: refused)
        "name": stand_in_name(record.path.stem),
        "input": {"shape": [int(d) for d in record.sample_shape]},
        "model": model,
        **listed,
        "data": {"source": dict(STAND_IN_SOURCE), "rescale": rescale},
        "training": training,
    }
    return dump_yaml(document, sort_keys=False)
