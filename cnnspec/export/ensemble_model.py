"""Several trained models as one file: ``cnnspec export RUN --ensemble OTHER …``.

``cnnspec evaluate`` and ``predict --ensemble`` answer with the mean of several models'
probabilities (:mod:`cnnspec.reporting.ensemble`), in Keras. An ensemble export serves the same
answer from one ONNX, TFLite or SavedModel file: one Keras model that feeds its image to every
member (each a nested model of its own) and averages each output over them with Keras'
``Average`` layer (no ``Lambda``). Every member is checked against the target as the commands
check it (input, outputs, tasks, classes, pixel scale), and its temperature (``cnnspec
calibrate``) is folded into its own weights first (:mod:`cnnspec.export.folding`), so the file
averages the probabilities ``predict --ensemble`` averages.

The mean is of probabilities, as ``predict --ensemble`` takes it: the outputs of models that
answer in logits go through a ``Softmax`` (a sigmoid for multi-label and one-unit outputs)
before the mean, and the file answers in probabilities (its record says so: ``from_logits``
false, the thresholds on probabilities). The export's record lists the members (``ensemble``);
cnnspec's own readers refuse it as the run's export
(:func:`~cnnspec.export.runtimes.read_record`), and it must be written with ``-o``.

``cnnspec export RUN --tta hflip[,vflip] -o FILE`` (with ``--ensemble`` or without) makes the
same kind of model over the image and its mirror images: every member answers each, mirrored
inside the graph by :mod:`cnnspec.export.mirrors`, a segmentation's maps mirrored back, and
the file answers the mean ``--tta`` computes in NumPy (its record lists the views: ``tta``).

Keras is imported inside the functions (the exporter has imported it already).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cnnspec.errors import UsageError

#: How far the ensemble model's outputs may be from the mean of its members' (float32 sums),
#: times the output's largest absolute value where that is above 1.
TOLERANCE = 1e-5


def ensemble_for_export(
    model: Any,
    run: Any,
    paths: Sequence[Path],
    squash: Sequence[str | None],
    *,
    wanted: float | None,
    inputs: list[np.ndarray],
    float32: Callable[[Any], tuple[Any, str | None]],
    notes: list[str],
    views: tuple[str, ...] = (),
    back: Sequence[bool] = (),
) -> tuple[Any, list[dict[str, Any]]]:
    """``model`` (the target, its temperature folded in already) and the models at ``paths``
    (none: ``model`` alone, over ``views``) as one Keras model answering the mean of their
    outputs, and the record's ``ensemble`` entries of the members (their model files, SHA-256
    and the temperatures folded into them). ``squash``: per output, how its logits become
    probabilities (:func:`squashing` of the target: every member answers alike); ``wanted``:
    ``--temperature`` (``None``: each member's own ``temperature.json``); ``inputs``: the
    verification batch, on which the model is checked against the mean of its members;
    ``float32``: the exporter's float32 copy of a loaded model; ``views`` and ``back``:
    ``--tta``'s mirror images, which each member answers too (:func:`ensemble_model`)."""
    from cnnspec.export.artifact_runs import keras_outputs
    from cnnspec.export.folding import fold_for_export
    from cnnspec.export.serving_record import serving_meta
    from cnnspec.fileio import sha256_file
    from cnnspec.reporting.ensemble import check_members, load_members

    members = load_members(paths) if paths else []  # (--allow-outside as the command line set it)
    if members:
        # the record keeps the target's split, which `evaluate FILE --data SOURCE` scores: a member
        # that learnt its test images is refused as evaluate --ensemble refuses it (seen_images)
        test = _own_test_split(run, model)
        notes.extend(check_members(run, model, members, test, checks_split=test is not None))
    models, entries = [model], []
    for member in members:
        copy, policy = float32(member.model)
        said: list[str] = [f"trained with {policy}; exported as a float32 graph"] if policy else []
        digest = sha256_file(member.run.model_path)
        folded = fold_for_export(
            copy,
            wanted=wanted,
            run=member.run,
            reading=serving_meta(member.run, copy),
            model_sha256=digest,
            first_output=lambda copy=copy: keras_outputs(copy, inputs)[0],  # type: ignore[misc]
            notes=said,
            averaged=True,
        )
        notes.extend(f"--ensemble {member.label}: {note}" for note in said)
        models.append(copy)
        entries.append({"model": str(member.run.model_path), "model_sha256": digest, "temperature": folded})
    combined = ensemble_model(models, squash, views, back)
    _check_mean(combined, models, inputs, squash, views, back)
    notes.append(_described(len(models), squash, views))
    return combined, entries


def _own_test_split(run: Any, model: Any) -> Any | None:
    """The test split of the target ``run`` (a :class:`~cnnspec.reporting.predictions.TestData`) to check
    the members' training images against, as ``evaluate --ensemble`` does; ``None`` for a model
    file without a spec, which has no data of its own (its members are checked as predict's)."""
    if run.compiled is None:
        return None
    from cnnspec.reporting.held_out import load_test_data

    return load_test_data(run, model)


def _described(count: int, squash: Sequence[str | None], views: tuple[str, ...]) -> str:
    """The note of an ensemble or ``--tta`` export: what the file's answer is the mean of."""
    from cnnspec.reporting.tta import describe

    whose = "their" if count > 1 else "its"
    what = (
        f"{whose} probabilities ({whose} logits through a softmax or sigmoid)"
        if any(squash)
        else f"{whose} outputs"
    )
    heads = [f"an ensemble of {count} models"] if count > 1 else []
    if views:
        what += f" for each image and {describe(views)}"
        heads.append(f"test-time augmentation (--tta {','.join(views)})")
    return (
        f"{' with '.join(heads)}: the export answers with the mean of {what} (cnnspec evaluate and "
        "predict do not read it as the run's export)"
    )


def ensemble_model(
    models: Sequence[Any],
    squash: Sequence[str | None] | None = None,
    views: tuple[str, ...] = (),
    back: Sequence[bool] = (),
) -> Any:
    """One Keras model of ``models`` (one image input each, the same outputs): the image goes
    to every member, a nested model named ``member_N``, and each output is the ``Average`` of
    the members' (named after the target's output layer). ``squash``: per output, ``softmax``
    or ``sigmoid`` to apply to each member's logits before the mean (``None``: as they are).
    ``views``: mirror images of the image (``hflip``, ``vflip``: :mod:`cnnspec.export.mirrors`)
    that every member answers too, each answer in the mean; ``back``: per output, whether it is
    a map (a segmentation's) that is mirrored back first, so that each pixel is averaged with
    itself, as ``--tta`` does in NumPy."""
    import keras

    from cnnspec.export.mirrors import mirrored

    first = models[0]
    for model in models:
        if len(model.inputs) != 1:
            raise UsageError(
                f"expected models with one image input for an ensemble; one has {len(model.inputs)}"
            )
    image = keras.Input(tuple(first.inputs[0].shape[1:]), name="image")
    seen = [("", image), *((view, mirrored(image, view, f"image_{view}")) for view in views)]
    names = [_output_layer(first, k) for k in range(len(first.outputs))]
    squash = list(squash or [None] * len(names))
    back = list(back or [False] * len(names))
    parts: list[list[Any]] = [[] for _ in names]
    for index, model in enumerate(models):
        member = keras.Model(model.inputs, model.outputs, name=f"member_{index}")
        for view, images in seen:
            answer = member(images)
            answers = list(answer) if isinstance(answer, (list, tuple)) else [answer]
            for k, part in enumerate(answers):
                label = f"{names[k]}_{index}" + (f"_{view}" if view else "")
                if view and back[k]:
                    part = mirrored(part, view, f"{label}_map")
                parts[k].append(_squashed(part, squash[k], label))
    means = [keras.layers.Average(name=f"{name}_mean")(each) for name, each in zip(names, parts, strict=True)]
    return keras.Model(
        image, means if len(means) > 1 else means[0], name="ensemble" if len(models) > 1 else "tta"
    )


def _output_layer(model: Any, index: int) -> str:
    """The name of the layer that makes ``model``'s output ``index`` (``output_N`` if none is found)."""
    for layer in model.layers:
        try:
            made = layer.output
        except (AttributeError, ValueError):  # (a layer called more than once)
            continue
        if made is model.outputs[index]:
            return str(layer.name)
    return f"output_{index}"


def output_tasks(run: Any, model: Any) -> tuple[Any, ...]:
    """The task of each output of ``run``'s model: its spec's, else read from the model as
    ``predict`` reads a model file without one."""
    from cnnspec.reporting.stand_in import model_tasks

    config = run.config
    if config is not None and config.tasks:
        return tuple(config.tasks)
    return tuple(model_tasks(model, run.name, run.model_path))


def squashing(run: Any, model: Any) -> list[str | None]:
    """Per output of ``run``'s model: ``softmax`` or ``sigmoid`` where it answers in logits (the
    probabilities ``predict --ensemble`` averages), ``None`` where it answers in probabilities
    or values."""
    found: list[str | None] = []
    for task in output_tasks(run, model):
        if not task.loss.from_logits:
            found.append(None)
        else:
            found.append("sigmoid" if task.task == "multilabel" or task.binary else "softmax")
    return found


def _squashed(tensor: Any, squash: str | None, name: str) -> Any:
    """``tensor`` through a softmax over its last axis or a sigmoid (``squash``), or as it is."""
    import keras

    if squash == "softmax":
        return keras.layers.Softmax(axis=-1, name=f"{name}_softmax")(tensor)
    if squash == "sigmoid":
        return keras.layers.Activation("sigmoid", name=f"{name}_sigmoid")(tensor)
    return tensor


def as_probabilities(meta: dict[str, Any]) -> None:
    """Say in a record's ``meta`` (in place) that the outputs answer in probabilities: an
    ensemble of models that answer in logits averages their probabilities. Each output's
    threshold on its raw values becomes the one on probabilities."""
    meta["output"]["from_logits"] = False
    for entry in meta.get("outputs") or []:
        if entry.get("from_logits"):
            entry["from_logits"] = False
            if "probability_threshold" in entry:
                entry["threshold"] = entry["probability_threshold"]


def _check_mean(
    combined: Any,
    models: Sequence[Any],
    inputs: list[np.ndarray],
    squash: Sequence[str | None],
    views: tuple[str, ...] = (),
    back: Sequence[bool] = (),
) -> None:
    """The ensemble model answers with the mean of its members' outputs (their probabilities,
    where they answer in logits: ``squash``), over the image and its ``views`` mirrored in
    NumPy (the maps of outputs ``back`` mirrored back), on the verification batch."""
    from cnnspec.export.artifact_runs import keras_outputs
    from cnnspec.export.mirrors import AXES

    got = keras_outputs(combined, inputs)
    back = list(back or [False] * len(got))
    each = []
    for model in models:
        each.append(keras_outputs(model, inputs))
        for view in views:
            flipped = [np.ascontiguousarray(np.flip(x, axis=AXES[view])) for x in inputs]
            answers = keras_outputs(model, flipped)
            each.append([np.flip(a, axis=AXES[view]) if back[k] else a for k, a in enumerate(answers)])
    for index, part in enumerate(got):
        expected = np.mean([_numpy_squash(answers[index], squash[index]) for answers in each], axis=0)
        difference = float(np.max(np.abs(part - expected), initial=0.0))
        # relative to the output's magnitude beyond 1 (a regression's hundreds round in float32)
        if not difference <= TOLERANCE * max(1.0, float(np.max(np.abs(expected), initial=0.0))):
            raise UsageError(
                f"the ensemble model's output {index} is not the mean of its members' (max abs "
                f"difference {difference:.3g}); nothing was exported"
            )


def _numpy_squash(values: np.ndarray, squash: str | None) -> np.ndarray:
    """:func:`_squashed` in NumPy (float64)."""
    from cnnspec.reporting.predictions import label_probabilities, softmax

    if squash == "softmax":
        return softmax(values)
    return label_probabilities(values, from_logits=squash == "sigmoid")
