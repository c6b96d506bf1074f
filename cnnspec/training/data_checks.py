"""Whether a loaded dataset fits the model (:func:`check_fit`): image size and channels, one target
per output of the right kind and size, mask values within the classes, and the class weights a
spec sets, each a located error or note before training starts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from cnnspec.analysis.datafit import output_loc, source_loc
from cnnspec.analysis.pixel_scaling import pipeline_scale
from cnnspec.analysis.settings_types import TrainConfig
from cnnspec.errors import SpecError, SpecPath, did_you_mean
from cnnspec.training import subsets
from cnnspec.training.dataset import SOURCE, Dataset, source_error

if TYPE_CHECKING:
    from cnnspec.analysis.compiled import CompiledSpec


def check_fit(
    dataset: Dataset, compiled: CompiledSpec, config: TrainConfig, *, test_only: bool = False
) -> None:
    """The data must fit the model: sample shape = ``input.shape``; labels < output units; a
    classifier's data of 2 classes at least, unless only its test images are used
    (``test_only``: evaluate's ``--data``, which may hold one class's images to score)."""
    from cnnspec.analysis.datafit import check_sample_shape

    check_sample_shape(dataset.sample_shape, compiled, config)
    from cnnspec.training.task_data import check_kinds

    # targets of another task are the data's mistake, not the model's shape (also for a
    # classifier, the task a vector output is given when nothing says otherwise)
    check_kinds(dataset, compiled, config)
    if dataset.target != "class":
        _check_target_fit(dataset, compiled, config)
        _check_mask_outputs(dataset, compiled, config)  # (a multi-output model's, before their counts)
    if config.task_path:  # every output has a target of its task's kind and shape (task_data.py)
        from cnnspec.analysis.datafit import check_two_classes
        from cnnspec.training.task_data import check_dataset

        check_dataset(dataset, compiled, config)
        several = isinstance(dataset.target, dict)
        for out in config.tasks:  # a classifier of one class: nothing to tell apart
            if out.task == "classification" and not test_only:
                names = dataset.target_names.get(out.name, []) if several else dataset.class_names
                check_two_classes(len(names), compiled, config, list(names), out.name if several else None)
                labels = dataset.y_train[out.name] if several else dataset.y_train
                _check_two_labelled(labels, list(names), compiled, config, out.name if several else None)
        return
    if dataset.target != "class":
        return
    from cnnspec.analysis.datafit import check_class_count, check_two_classes

    classes = dataset.num_classes
    if not test_only:
        check_two_classes(classes, compiled, config, list(dataset.class_names or []))
        _check_two_labelled(dataset.y_train, list(dataset.class_names or []), compiled, config)
    check_class_count(classes, compiled, config, list(dataset.class_names or []))
    # (not for a finished run's data, evaluated or reported: the weights only matter to training,
    # and a run trained before a key was refused stays usable; weight_key_refusals tells it then)
    if not compiled.finished_run:
        for key, message, hint in weight_key_refusals(config, dataset)[:1]:
            raise source_error(message, compiled, ("training", "class_weight", key), hint, key=True)


def weight_key_refusals(config: TrainConfig, dataset: Dataset) -> list[tuple[str, str, str | None]]:
    """Each ``training.class_weight`` key that weighs no class of the data, in key order, as
    (key, message, hint): a key that names no class nor is a label index, one naming a class
    ``data.classes`` left out, one weighing the class an earlier key weighs. ``train`` refuses
    the first (:func:`check_fit`); a finished run's commands note them all (the run may have been
    trained before cnnspec refused such a key: :func:`cnnspec.reporting.held_out.test_split`)."""
    if not isinstance(config.class_weight, dict) or dataset.target != "class":
        return []
    found: list[tuple[str, str, str | None]] = []
    weighed: dict[int, str] = {}  # label → the key that weighs it
    for key in config.class_weight:
        try:
            label = _key_label(key, config, dataset)
        except subsets.LeftOutClass as exc:
            found.append((key, exc.message, exc.hint))
            continue
        if label is None:
            message = f"expected a class index (0–{dataset.num_classes - 1}) or name; received {key!r}"
            found.append((key, message, did_you_mean(key, dataset.class_names)))
        elif label in weighed:  # (one of the two weights would be dropped)
            message, hint = subsets.repeated_key(key, weighed[label], dataset.class_names[label])
            found.append((key, message, hint))
        else:
            weighed[label] = key
    return found


def _key_label(key: str, config: TrainConfig, dataset: Dataset) -> int | None:
    """The label a ``training.class_weight`` key weighs (:func:`~cnnspec.analysis.classes.key_label`:
    ``LeftOutClass`` for a class ``data.classes`` left out)."""
    return subsets.key_label(key, dataset.class_names, dataset.source_class_names, config.data.classes)


def weight_key_notes(config: TrainConfig, dataset: Dataset) -> list[str]:
    """The notes on ``training.class_weight``'s numeric keys whose reading the spec alone does
    not show (:func:`~cnnspec.analysis.classes.key_notes`): said beside ``data.classes``'s."""
    if not isinstance(config.class_weight, dict) or dataset.target != "class":
        return []
    return subsets.key_notes(list(config.class_weight), dataset.class_names, dataset.source_class_names)


def _check_two_labelled(
    labels: Any, names: list[str], compiled: CompiledSpec, config: TrainConfig, output: str | None = None
) -> None:
    """A classifier's training split must hold images of 2 classes at least: an npz labelled 1
    throughout (classes 0 and 1 by its largest label), class names none of whose images are
    left, or a data.limit that kept one class's images trained a model that answers one class
    to everything. At the place :func:`check_two_classes` names, or at data.limit."""
    from cnnspec.analysis.datafit import two_classes_path, two_labelled_hint

    present = np.unique(np.asarray(labels, dtype="int64").reshape(-1))
    if len(present) != 1:  # (none: no training images, an error of its own)
        return
    label = int(present[0])
    name = names[label] if label < len(names) else str(label)
    whose = f"the classifier output {output}" if output else "a classifier"
    count = max(len(names), label + 1)
    message = (
        f"expected training images of at least 2 classes for {whose}; every training image is of "
        f"the class {name!r} (the data has {count} classes)"
    )
    path: SpecPath = ("data", "limit") if config.data.limit is not None else two_classes_path(config, output)
    raise source_error(message, compiled, path, two_labelled_hint(config, output, count))


#: The mask value that datasets such as Pascal VOC use for void/ignored pixels.
VOID_LABEL = 255


def void_hint(top: int, classes: int, otherwise: str) -> str | None:
    """The hint of a mask value beyond ``classes`` named classes where it is 255, far more often
    a void or ignored pixel than a class (the refusal of more mask classes than an output's
    channels, and of a mask value beyond the classes named); ``otherwise``: what to do if it is
    one. ``None`` for another value."""
    if top != VOID_LABEL:
        return None
    return (
        f"a mask value of {VOID_LABEL} usually marks void or ignored pixels, not a class: map it to "
        f"one of the classes 0-{classes - 1} in the mask files (or, if it is a class, {otherwise})"
    )


def mask_values(parts: Sequence[Any]) -> list[int]:
    """The values the masks of every split hold, in order (for a message: read only once the
    masks are known not to fit)."""
    found: set[int] = set()
    for part in parts:
        found.update(int(v) for v in np.unique(np.asarray(part)))
    return sorted(found)


def two_values_misfit(values: list[int], image_masks: bool, output: str | None = None) -> tuple[str, str]:
    """The message and hint for masks of two values other than 0 and 1 (0 and 255: a binary
    mask stored as black and white) for a one-channel output, which reads them as 0 and 1:
    counted as class indices they were "256 classes". A masks folder maps them with a
    ``classes`` table of colours (a gray value v is the colour [v, v, v]); other sources store
    them as 0 and 1. ``output``: the output of a multi-output model they are for (named in the
    message). Train's and the generated script's ``check_masks`` words."""
    from cnnspec.analysis.datafit import mask_output_said

    low, high = values
    problem = (
        f"expected masks of the class indices 0 and 1 for {mask_output_said(1, output)}; the masks "
        f"hold the two values {low} and {high}"
    )
    if image_masks:
        hint = (
            f"map them to the classes 0 and 1 with data.source.classes: {{background: [{low}, {low}, "
            f"{low}], foreground: [{high}, {high}, {high}]}} (a mask's gray value v is the colour "
            "[v, v, v]), or store the masks as 0 and 1"
        )
    else:
        hint = "store the masks as 0 and 1 (the classes a one-channel output's sigmoid tells apart)"
    return problem, hint


def mask_count_misfit(count: int, channels: int, output: str | None = None) -> tuple[str, str] | None:
    """The message and hint for masks of more classes (``count``: the largest mask value + 1, or
    the names where they name more) than a segmentation output of ``channels`` channels tells
    apart (2 for one sigmoid channel); ``None``: they fit. A largest value of 255 is far more often
    a void/ignore label than class 255: the hint says so. ``output``: the output of a multi-output
    model they are for (named in the message and hint). Train's single- and multi-output words,
    and the generated script's ``check_mask_count``."""
    from cnnspec.analysis.datafit import mask_output_said

    layer = "the last layer" if output is None else f"the output {output}"
    if channels == 1:
        if count <= 2:
            return None
        return (
            f"expected 2 mask classes for {mask_output_said(1, output)}; the data has {count}",
            f"give {layer} {count} filters and a softmax",
        )
    if count <= channels:
        return None
    whose = "the output's" if output is None else f"the output {output}'s"
    hint = f"give {layer} {count} filters"
    hint = void_hint(count - 1, channels, hint) or hint
    return (
        f"expected at most {channels} mask classes ({whose} channels); the data has {count} (its masks "
        f"hold values up to {count - 1})",
        hint,
    )


def _masks_at(kind: str) -> SpecPath:
    """Where a source of ``kind`` gives the mask values a data error is about: a masks folder's
    ``masks``, an npz file, else the source."""
    return (*SOURCE, "masks") if kind == "image_masks" else (*SOURCE, "npz") if kind == "npz" else SOURCE


def mask_misfit(
    parts: Sequence[Any], count: int, channels: int, kind: str, said: str, output: str | None = None
) -> tuple[str, str, SpecPath] | None:
    """The data's mistakes about the mask classes of a segmentation output of ``channels``
    channels, whose masks are ``parts`` (every split's) and whose classes are ``count`` (the
    names, or the largest mask value + 1): more names (in ``said``) than the channels tell apart
    (:func:`mask_names_misfit`), or two values other than 0 and 1 for one channel
    (:func:`two_values_misfit`). The message, hint and where the data (of a source of ``kind``)
    says it; ``None``: neither. ``output``: one of a multi-output model's, named in the message."""
    from cnnspec.analysis.datafit import mask_names_misfit

    top = max(int(np.max(np.asarray(y), initial=0)) for y in parts) + 1
    image_masks = kind == "image_masks"
    named = mask_names_misfit(channels, count, said, output) if count > top else None
    if named is not None:  # more names than channels, not more mask values
        return (*named, (*SOURCE, "classes") if image_masks else _masks_at(kind))
    if channels == 1 and count > 2 and len(values := mask_values(parts)) == 2:
        return (*two_values_misfit(values, image_masks, output), _masks_at(kind))
    return None


def _check_mask_outputs(dataset: Dataset, compiled: CompiledSpec, config: TrainConfig) -> None:
    """A multi-output model's segmentation outputs, each as :func:`_check_target_fit` checks a
    single one's masks (:func:`mask_misfit`, then :func:`mask_count_misfit`: the same words,
    naming the output), at the data as the other multi-output mask errors: more class names (its
    ``class_names_<output>`` or ``class_names``) than its channels were kept silently, a
    one-channel output's 0/255 masks were "class indices 0–1; found 255" with no word of the two
    values, and more mask classes than its channels were :func:`task_data.check_dataset`'s
    "class indices 0–N in the <split> targets", a split at a time, with no word of a void 255."""
    from cnnspec.analysis.datafit import mask_names_said

    if not isinstance(dataset.target, dict):
        return
    for out in config.tasks:
        if out.task != "segmentation" or dataset.target.get(out.name) != "mask":
            continue  # (a missing or other target: check_kinds and check_dataset say so)
        parts = [split[out.name] for split in (dataset.y_train, dataset.y_val, dataset.y_test)]
        names = dataset.target_names.get(out.name, [])
        said = dataset.mask_names_said.get(out.name) or mask_names_said(config.data.kind)
        misfit = mask_misfit(parts, len(names), out.units, config.data.kind, said, out.name)
        if misfit is not None:
            raise source_error(misfit[0], compiled, misfit[2], misfit[1])
        # the names number the classes: as many as the largest mask value + 1 where they name fewer
        counted = mask_count_misfit(len(names), out.units, out.name)
        if counted is not None:
            raise source_error(counted[0], compiled, _masks_at(config.data.kind), counted[1])


def _check_target_fit(dataset: Dataset, compiled: CompiledSpec, config: TrainConfig) -> None:
    """Multi-label, regression and mask targets fit a single output: as many units as labels
    or values; at least as many channels as mask classes (one channel: a sigmoid mask of two
    classes). Multi-output models are checked against their outputs by the task checks
    (their masks' names and values first: :func:`_check_mask_outputs`). More mask class names
    than channels are the names' mistake (:func:`mask_names_misfit`), two mask values other than
    0 and 1 for one channel a binary mask's (:func:`two_values_misfit`)."""
    from cnnspec.analysis.datafit import mask_names_said

    ir = compiled.ir
    if isinstance(dataset.target, dict) or len(ir.outputs) != 1 or not ir.nodes:
        return
    shape = ir.output_shapes[0]
    if shape is None:
        return
    node = ir.node(ir.outputs[0])
    units = int(shape[-1])
    count = len(dataset.class_names)
    problem = hint = None
    at_data: SpecPath | None = None  # where an error that is the data's, not the model's, is shown
    parts = (dataset.y_train, dataset.y_val, dataset.y_test)
    if dataset.target == "mask":
        said = mask_names_said(config.data.kind)
        if len(shape) != 3:
            problem = (
                "expected an output of shape [height, width, classes] for masks; the model outputs "
                f"{list(shape)}"
            )
            hint = f"end the model with conv2d: {{filters: {count}, kernel_size: 1, activation: softmax}}"
        elif (misfit := mask_misfit(parts, count, units, config.data.kind, said)) is not None:
            problem, hint, at_data = misfit
        elif (counted := mask_count_misfit(count, units)) is not None:
            problem, hint = counted  # (the model's channels: at its output)
    elif len(shape) == 1 and units != count:
        what = "labels" if dataset.target == "multilabel" else "target values"
        problem = f"expected {count} output units (one per {what[:-1]}); the model outputs {units}"
        hint = f"set the last dense layer to units: {count}"
    if problem is not None:
        if at_data is not None:  # the data's mistake, at the data
            raise source_error(problem, compiled, at_data, hint)
        loc = output_loc(compiled, node, units) or source_loc(compiled, SOURCE)
        raise SpecError.single(problem, loc, node.path, code="data", hint=hint)


def class_weights(config: TrainConfig, dataset: Dataset) -> dict[int, float] | None:
    """Keras' ``class_weight`` dict (class index → weight) from the spec's setting."""
    if config.class_weight is None:
        return None
    classes = dataset.num_classes
    if config.class_weight == "balanced":
        counts = np.bincount(dataset.y_train, minlength=classes).astype("float64")
        total = counts.sum()
        return {i: float(total / (classes * c)) if c else 0.0 for i, c in enumerate(counts)}
    weights = {i: 1.0 for i in range(classes)}
    assert isinstance(config.class_weight, dict)
    for key, value in config.class_weight.items():
        index = _key_label(key, config, dataset)  # (checked by check_fit: a class of the data's)
        assert index is not None
        weights[index] = float(value)
    return weights


def rescale_factor(config: TrainConfig, dataset: Dataset, compiled: CompiledSpec) -> float | None:
    """The pixel multiplier the pipeline applies (``None``: leave the values as they are)."""
    # reporting's stand-in for image files (reporting/pixel_ranges.py file_rescale) has only
    # integer_pixels: files decode to 8-bit pixels
    pixel_max = getattr(dataset, "pixel_max", 255.0)
    return pipeline_scale(config.data, compiled.ir, dataset.integer_pixels, pixel_max)
