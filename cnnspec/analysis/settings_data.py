"""The ``data`` section as :class:`~cnnspec.analysis.settings_types.DataConfig`: the source and its
options, the image size and channels against the model's input, the targets a task reads, the
class selection and names, class weights and the cache, each checked before any data is read.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from cnnspec.analysis.output_activation import output_activation
from cnnspec.analysis.settings_reader import POISONED, SectionReader, _source_path
from cnnspec.analysis.settings_types import (
    DEFAULT_VALIDATION_SPLIT,
    FIXED_CLASS_NAMES,
    IMAGE_TARGET_SOURCES,
    KERAS_DATASETS,
    TASK_TARGETS,
    DataConfig,
    Schedule,
    TrainConfig,
)
from cnnspec.errors import SpecPath, did_you_mean, short_value

if TYPE_CHECKING:
    from cnnspec.analysis.compiled import CompiledSpec


def _image_reading(
    reader: SectionReader, compiled: CompiledSpec, source: dict[str, Any]
) -> tuple[tuple[int, int], str]:
    """``image_size`` and ``color_mode`` of a source that reads image files (defaults from
    ``input.shape``)."""
    shape = compiled.ir.input_shape
    size = source.get("image_size")
    color_mode = source.get("color_mode")
    if reader.poisoned_within(("data", "source", "image_size")):
        size = None  # (its failed expression is reported: the input's size stands in, unchecked)
    if color_mode is POISONED:
        color_mode = None
    if len(shape) != 3:
        # image files are [height, width, channels] whatever image_size and color_mode say:
        # train refuses another input after loading the data, so validate says so first
        reader.error(
            f"expected an image input [height, width, 1 or 3] to read the images for; "
            f"input.shape is {list(shape)}",
            ("input", "shape"),
            "set input.shape to [height, width, 1 or 3], the shape the image files are read with "
            "(a flatten layer after it gives a flat input to what follows)",
        )
        return (0, 0), "rgb"
    image_size = (int(size[0]), int(size[1])) if size else (int(shape[0]), int(shape[1]))
    if size:
        check_image_size(reader, shape, image_size, ("data", "source", "image_size"))
    if color_mode is None:
        channels = shape[-1]
        if channels not in (1, 3):
            # (no color_mode gives 4 or 2 channels: the hint names what can be done, the shape)
            reader.error(
                f"expected 1 or 3 input channels for an image folder; input.shape is {list(shape)}",
                ("data", "source"),
                channels_hint(shape),
            )
        color_mode = "grayscale" if channels == 1 else "rgb"
    elif (
        len(shape) == 3
        and isinstance(color_mode, str)  # (another value is the schema's error)
        and _MODE_CHANNELS.get(color_mode, shape[-1]) != shape[-1]
    ):
        # the images are read with the mode's channels and must be the input's: train refuses
        # them after loading the data, so validate says so first
        reader.error(
            f"expected a color_mode giving the input's {shape[-1]} channel(s) "
            f"(input.shape is {list(shape)}); color_mode {color_mode} reads "
            f"{_MODE_CHANNELS[color_mode]}",
            ("data", "source", "color_mode"),
            channels_hint(shape, _MODE_CHANNELS[color_mode]),
        )
    return image_size, color_mode


def check_image_size(
    reader: SectionReader, shape: tuple[int, ...], size: Sequence[int], where: SpecPath
) -> None:
    """A located error at ``where`` when an ``image_size`` the spec sets is not the height and
    width of an image input (``shape``): the images are made that size and must be the input's,
    which train checks only after loading the data (and the script resized them to the input,
    the setting ignored), so validate says so first."""
    if len(shape) != 3 or tuple(size) == tuple(shape[:2]):
        return
    height, width = int(size[0]), int(size[1])
    reader.error(
        f"expected an image_size of the input's height and width, {list(shape[:2])} (input.shape is "
        f"{list(shape)}); received {[height, width]}",
        where,
        f"remove image_size (it defaults to input.shape's size), or set input.shape to "
        f"[{height}, {width}, {shape[-1]}] and add `resizing: {{height: {shape[0]}, width: {shape[1]}}}` "
        "as the first layer to keep the model's size",
    )


#: Channels of the images each ``data.source.color_mode`` reads (the modes the schema allows).
_MODE_CHANNELS = {"grayscale": 1, "rgb": 3}


def channels_hint(shape: tuple[int, ...], read: int | None = None) -> str:
    """How to make image files fit an input of ``shape`` ([height, width, channels]): the
    color_mode for 1 or 3 channels (or the input of the ``read`` channels the stated color_mode
    gives, or the files were read with), else an input of 1 or 3, the only counts files are
    read with. ``validate`` and, after loading, train (:mod:`cnnspec.analysis.datafit`) give it."""
    height, width = shape[0], shape[1]
    other = f", or input.shape to [{height}, {width}, {read}]" if read else ""
    if shape[-1] == 1:
        return f"set data.source.color_mode to grayscale (or leave it out){other}"
    if shape[-1] == 3:
        return f"set data.source.color_mode to rgb (or leave it out){other}"
    return (
        "image files are read with 1 channel (color_mode: grayscale) or 3 (color_mode: rgb; an "
        f"alpha channel is dropped): set input.shape to [{height}, {width}, 3] or "
        f"[{height}, {width}, 1]"
    )


def default_target(compiled: CompiledSpec) -> str:
    """The target kind the model asks for when the data does not say: ``training.task`` when
    the spec states one, else the task inferred from the (first) output the way
    :func:`cnnspec.analysis.tasks.infer_task` does ([H, W, C] → mask, several sigmoid units →
    multilabel, a regression loss → regression, else class)."""
    from cnnspec.analysis.tasks import infer_task

    training = compiled.doc.data.get("training")
    task = training.get("task") if isinstance(training, dict) else None
    if isinstance(task, str) and task in TASK_TARGETS:
        return TASK_TARGETS[task]
    ir = compiled.ir
    shape = ir.output_shapes[0] if ir.outputs and ir.output_shapes else None
    if shape is None:
        return "class"
    loss = training.get("loss") if isinstance(training, dict) else None
    loss_name = loss if isinstance(loss, str) else next(iter(loss), None) if isinstance(loss, dict) else None
    activation = output_activation(compiled, ir.outputs[0])
    return TASK_TARGETS[infer_task(tuple(int(d) for d in shape), activation, loss_name)]


def _shapes_options(
    reader: SectionReader, compiled: CompiledSpec, settings: dict[str, Any]
) -> dict[str, Any]:
    """The ``shapes`` generator's settings, defaulted from ``input.shape``."""
    where: SpecPath = ("data", "source", "shapes")
    shape = compiled.ir.input_shape
    size = settings.get("image_size")
    image = len(shape) == 3  # the generator draws [height, width, channels] images
    channels = int(shape[-1]) if image else 3
    if channels not in (1, 3) or not image:
        reader.error(
            f"expected an input of [height, width, 1 or 3] for the shapes data; input.shape is {list(shape)}",
            ("input", "shape"),
        )
    default_size = [int(shape[0]), int(shape[1])] if image else None
    size_failed = reader.poisoned_within((*where, "image_size"))
    if size_failed:
        size = None  # (its failed expression is reported: the input's size stands in, unchecked)
    options = {
        "images": reader.number((*where, "images"), 2000, integer=True, minimum=1),
        "image_size": [int(size[0]), int(size[1])] if size else default_size,
        "channels": channels if channels in (1, 3) else 3,
        "min_shapes": reader.number((*where, "min_shapes"), 1, integer=True, minimum=1),
        "max_shapes": reader.number((*where, "max_shapes"), 3, integer=True, minimum=1, maximum=8),
        "noise": reader.number((*where, "noise"), 0.1, minimum=0, maximum=0.5),
        "seed": reader.number((*where, "seed"), 0, integer=True, minimum=0, maximum=2**63 - 1),
        "overlap": bool(reader.known((*where, "overlap"), False)),
    }
    if options["image_size"] is not None and min(options["image_size"]) < 8 and not size_failed:
        reader.error(
            f"expected shapes images of at least 8×8 pixels; received {options['image_size']}",
            (*where, "image_size") if size else ("input", "shape"),
        )
    elif size and image:
        check_image_size(reader, shape, options["image_size"], (*where, "image_size"))
    counts_failed = any(reader.poisoned((*where, key)) for key in ("min_shapes", "max_shapes"))
    if options["min_shapes"] > options["max_shapes"] and not counts_failed:
        # (a count whose expression failed is a default here: comparing it would blame the other)
        reader.error(
            f"expected min_shapes ≤ max_shapes; received {options['min_shapes']} > {options['max_shapes']}",
            (*where, "min_shapes"),
        )
    return options


def _shapes_target(reader: SectionReader, compiled: CompiledSpec, value: Any) -> str | dict[str, str]:
    """``shapes``' target: as given (one kind, or one per model output: keyed by the ids
    ``outputs:`` writes, or the outputs' names, and returned by the outputs' names, which the
    data's arrays take), else the model's."""
    from cnnspec.analysis.output_ids import listed_ids, output_ids

    where: SpecPath = ("data", "source", "shapes", "target")
    outputs = list(compiled.ir.outputs)
    if isinstance(value, dict):
        ids, listed = output_ids(compiled), listed_ids(compiled)
        unknown = [key for key in value if not (isinstance(key, str) and key in ids)]
        for key in unknown:
            reader.error(
                f"expected a model output; received {key!r}",
                (*where, key),
                did_you_mean(str(key), listed) or f"the outputs are {', '.join(listed)}",
                key=True,
            )
        targets: dict[str, str] = {}
        said: dict[str, str] = {}  # output → the key that gave its target
        for key, kind in value.items():
            if key in unknown:
                continue
            name = ids[key]
            if name in said:  # `th` and `th_b`: two targets for one output
                reader.error(
                    f"expected one target per output; {key!r} names the output {said[name]!r} names already",
                    (*where, key),
                    "keep one of them",
                    key=True,
                )
            said.setdefault(name, key)
            targets.setdefault(name, str(kind))
        by_id = dict(zip(outputs, listed, strict=True))
        missing = [by_id[name] for name in outputs if name not in said]
        if missing and not unknown:  # a misspelt output is one mistake, reported once
            reader.error(f"expected a target for every output; missing {', '.join(missing)}", where)
        return targets
    if isinstance(value, str):
        return value
    wanted = default_target(compiled)
    return {"regression": "count"}.get(wanted, wanted)


#: The targets of the image sources with a second file or folder (what ``cnnspec train`` reads).
IMAGE_SOURCE_TARGETS = {"image_masks": "mask", "image_labels": "multilabel", "image_values": "regression"}


def spec_target(data: DataConfig) -> str | dict[str, str] | None:
    """The targets ``data``'s source gives, where the spec alone tells: ``None`` where only the
    data does (an npz file without ``target``)."""
    if data.kind in IMAGE_SOURCE_TARGETS:
        return IMAGE_SOURCE_TARGETS[data.kind]
    if data.kind in ("shapes", "npz"):
        return data.target
    return "class"  # named datasets, image folders and CSVs have class labels


def _check_class_selection(reader: SectionReader, data: DataConfig) -> None:
    """``data.classes`` and ``data.per_class`` select classification labels: refused where the
    spec says the source's targets are something else, before anything is loaded (else
    ``codegen --script`` would drop them without a word and ``train`` refuse only after loading;
    training/data.py checks again, for the sources whose data alone tells)."""
    from cnnspec.analysis.classes import not_class_targets

    target = spec_target(data)
    if target is None or target == "class":
        return
    for key, value in (("classes", data.classes), ("per_class", data.per_class)):
        if value is not None:
            message, hint = not_class_targets(target, data.kind)
            reader.error(message, ("data", key), hint)


def fixed_class_names(data: DataConfig) -> list[str] | None:
    """The class names of ``data``'s source, in label order, where the spec alone tells them:
    the built-in datasets and ``shapes`` with class targets; ``None`` for the sources whose
    classes are only known once their files are read (folders, CSVs, npz files)."""
    if data.kind == "shapes":
        if data.target != "class":
            return None
        # imported here: it brings NumPy, which validate needs only for this
        from cnnspec.shapes import SHAPE_NAMES

        return list(SHAPE_NAMES)
    return FIXED_CLASS_NAMES.get(data.kind)


def _check_class_entries(reader: SectionReader, data: DataConfig) -> None:
    """A whole float in ``data.classes`` (``4.0``) is refused as the schema refuses ``4.5``:
    JSON Schema counts it an integer, but it is neither a class name (those are strings) nor a
    label index, and "expected a class of the data" with the data's classes listed (4 among
    them) did not say what is wrong with it."""
    for index, entry in enumerate(data.classes or ()):
        if isinstance(entry, float):
            whole = f"{entry:.0f} for the label index {entry:.0f}, or " if entry.is_integer() else ""
            reader.error(
                f"expected a string or an integer ≥ 0; received number {entry!r}",
                ("data", "classes", index),
                f"write {whole}'{entry!r}' in quotes for a class of that name",
            )


def _check_fixed_classes(reader: SectionReader, data: DataConfig) -> None:
    """Each entry of ``data.classes`` names a class of a source whose classes are fixed
    (:func:`fixed_class_names`): an entry that does not (``11`` or ``cat`` for the digits), or
    a class listed twice, is the located error ``cnnspec train`` would give only after loading
    the data, with its very message (one rule: :func:`cnnspec.analysis.classes.class_indices`)."""
    from cnnspec.analysis.classes import UnknownClass, class_indices

    if data.classes is None or reader.poisoned(("data", "classes")):
        return
    # a source or shapes target whose expression failed is unknown: so are its classes
    if reader.poisoned(("data", "source")) or reader.poisoned_within(("data", "source", "shapes", "target")):
        return
    names = fixed_class_names(data)
    if names is None:
        return
    # (a float was refused by _check_class_entries: no class of the data either)
    skipped = {i for i, entry in enumerate(data.classes) if entry is POISONED or isinstance(entry, float)}
    while True:  # every entry in error, each once (each pass sets one more aside)
        try:
            class_indices(data.classes, names, len(names), skip=skipped)
            return
        except UnknownClass as exc:
            # code "data", as cnnspec train reports it (training/data.py)
            reader.error(exc.message, ("data", "classes", exc.index), exc.hint, code="data")
            skipped.add(exc.index)


LONG_WARMUP_HINT = "lower warmup_steps (a tenth of the steps is usual), or train longer"


def long_warmups(config: TrainConfig, steps: int) -> list[tuple[SpecPath, str]]:
    """Where a schedule's ``warmup_steps`` are not fewer than the steps it spans (``steps`` per
    epoch × its phase's epochs: each phase compiles a fresh optimizer, whose schedule starts
    again), and what that does: the rate ramps up for the whole run (or phase) and never reaches
    the schedule's first value (and cosine_decay decays over one step). Each place a schedule
    is written once. ``cnnspec validate`` warns where ``training.steps_per_epoch`` gives the
    steps; ``cnnspec train`` once the data does (:func:`cnnspec.training.builders.learning_rate`)."""
    found: dict[SpecPath, str] = {}
    for index, phase in enumerate(config.phases):
        rate, total = phase.optimizer.learning_rate, steps * phase.epochs
        if not isinstance(rate, Schedule) or rate.warmup_steps < total or not rate.at:
            continue
        path: SpecPath = (*rate.at, rate.kind, "warmup_steps")
        span = f"phase {index + 1}" if config.phased else "the run"
        first = (
            rate.settings["values"][0]
            if rate.kind == "piecewise_constant"
            else rate.settings["initial_learning_rate"]
        )
        if not isinstance(first, (int, float)) or isinstance(first, bool):
            continue  # (a value whose expression failed: its error is said, this would only repeat it)
        found.setdefault(
            path,
            f"warmup_steps {rate.warmup_steps} is not below the {total} steps of {span} ({steps} per "
            f"epoch × {phase.epochs} epoch(s)): the learning rate rises all along and never reaches "
            f"{float(first):g}",
        )
    return list(found.items())


def _check_class_weight_keys(
    reader: SectionReader, data: DataConfig, weights: str | dict[str, float] | None
) -> None:
    """Each key of a ``training.class_weight`` mapping names a class, or is a class index,
    of a source whose classes are fixed (:func:`fixed_class_names`, as ``data.classes``
    selects and renumbers them): a key that does not (``99`` for the digits), or that names a
    class ``data.classes`` left out (``2`` of the digits with ``data.classes: [9, 5, 7]``: as an
    index, it would weigh '7'), is the located error ``cnnspec train`` gives once it has loaded
    the data, in its words (training/data.py ``check_fit``; one rule:
    :func:`cnnspec.analysis.classes.key_label`). Other sources' keys are checked once their
    classes are read: by train, and by the generated script. Not for a finished run's spec
    (:attr:`~cnnspec.analysis.compiled.CompiledSpec.finished_run`): the weights only matter to
    training, and a run trained before a key was refused is still evaluated, reported …"""
    if reader.compiled.finished_run:
        return
    from cnnspec.analysis.classes import LeftOutClass, UnknownClass, class_indices, key_label, repeated_key

    if not isinstance(weights, dict) or reader.poisoned(("data", "source")):
        return
    names = fixed_class_names(data)
    if names is None or reader.poisoned(("data", "classes")):
        return
    source_names: list[str] | None = None
    if data.classes:
        try:
            labels = class_indices(data.classes, names, len(names))
        except UnknownClass:  # (reported at data.classes)
            return
        source_names, names = names, [names[label] for label in labels]
    weighed: dict[int, str] = {}  # label → the key that weighs it
    for key in weights:
        try:
            label = key_label(key, names, source_names, data.classes)
        except LeftOutClass as exc:  # a class data.classes left out: not the label it would index
            reader.error(exc.message, ("training", "class_weight", key), exc.hint, key=True, code="data")
            continue
        if label is not None and label in weighed:  # (one of the two weights would be dropped)
            message, hint = repeated_key(key, weighed[label], names[label])
            reader.error(message, ("training", "class_weight", key), hint, key=True, code="data")
        elif label is not None:
            weighed[label] = key
        else:
            # code "data", as cnnspec train reports it
            reader.error(
                f"expected a class index (0–{len(names) - 1}) or name; received {key!r}",
                ("training", "class_weight", key),
                did_you_mean(key, names),
                key=True,
                code="data",
            )


#: The key of each streamed source's own test set (without it, test_split splits one off).
TEST_KEYS = {"directory": "test_directory", "csv": "test_csv"}


def split_sources_hint() -> str:
    """The hint naming the sources ``test_split`` applies to: those with no test set of their
    own (:attr:`DataConfig.splits_test`), from the tables that define them."""
    from cnnspec.spec.sections import DATASETS

    named = [name for name in DATASETS if name not in KERAS_DATASETS]
    streamed = [f"{kind} without {key}" for kind, key in TEST_KEYS.items()]
    images = "/".join(IMAGE_TARGET_SOURCES)
    return f"test_split applies to {', '.join([*named, *streamed])} and images: with {images}"


def _data(reader: SectionReader, compiled: CompiledSpec) -> DataConfig:
    source = reader.value(("data", "source"), "digits")
    kind = "digits"
    path = test_path = labels_path = None
    image_column, label_column = "file", "label"
    image_size: tuple[int, int] | None = None
    color_mode: str | None = None
    target: str | dict[str, str] | None = None
    options: dict[str, Any] = {}
    if source == "shapes" or (isinstance(source, dict) and "shapes" in source):
        kind = "shapes"
        settings = source.get("shapes") if isinstance(source, dict) else None
        settings = settings if isinstance(settings, dict) else {}
        options = _shapes_options(reader, compiled, settings)
        target = _shapes_target(reader, compiled, settings.get("target"))
    elif isinstance(source, str):
        kind = source
    elif isinstance(source, dict) and "npz" in source:
        kind = "npz"
        path = _source_path(reader, source, "npz", compiled)
        target = source.get("target")
        target = None if target is POISONED else target
    elif isinstance(source, dict) and "images" in source:
        key = next((k for k in IMAGE_TARGET_SOURCES if k in source), "masks")
        kind = IMAGE_TARGET_SOURCES[key]
        path = _source_path(reader, source, "images", compiled)
        if key in source:
            labels_path = _source_path(reader, source, key, compiled)
        image_size, color_mode = _image_reading(reader, compiled, source)
        if source.get("classes") is not None and not reader.poisoned_within(("data", "source", "classes")):
            options = {"classes": source["classes"]}
    elif isinstance(source, dict) and ("directory" in source or "csv" in source):
        kind = "directory" if "directory" in source else "csv"
        path = _source_path(reader, source, kind, compiled)
        test_key = TEST_KEYS[kind]
        if source.get(test_key):  # (falsy when its expression failed: POISONED)
            test_path = _source_path(reader, source, test_key, compiled)
        image_column = str(reader.known(("data", "source", "image_column"), "file"))
        label_column = str(reader.known(("data", "source", "label_column"), "label"))
        image_size, color_mode = _image_reading(reader, compiled, source)
    validation_split = reader.number(
        ("data", "validation_split"), DEFAULT_VALIDATION_SPLIT, minimum=0, below=1
    )
    test_split = reader.number(("data", "test_split"), None, minimum=0, below=1)
    if test_split is not None and (kind in KERAS_DATASETS or kind == "npz" or test_path is not None):
        reader.error(
            f"expected no test_split for a source with its own test set ({kind}); received {test_split}",
            ("data", "test_split"),
            split_sources_hint(),
            key=True,
        )
    if test_split is not None and test_split <= 0:
        reader.error(f"expected a test_split > 0; received {test_split}", ("data", "test_split"))
    rescale = reader.known(("data", "rescale"), "auto")
    if not (rescale is None or rescale == "auto" or isinstance(rescale, (int, float))):
        reader.error(f"expected a number, auto or null; received {rescale!r}", ("data", "rescale"))
        rescale = "auto"
    elif isinstance(rescale, (int, float)) and not isinstance(rescale, bool):
        rescale = float(rescale)
        if not (math.isfinite(rescale) and rescale > 0):
            # (a value from an expression: the schema refuses a written one) 0 trains on black
            # images, a negative one inverts them
            reader.error(
                f"expected a finite number > 0, auto or null; received {rescale}",
                ("data", "rescale"),
                "e.g. rescale: 0.00392156862745098 (1/255) for 8-bit pixels, or auto",
            )
            rescale = "auto"
    data = DataConfig(
        kind=kind,
        path=path,
        test_path=test_path,
        image_size=image_size,
        color_mode=color_mode,
        validation_split=float(validation_split),
        test_split=test_split,
        rescale=rescale,
        shuffle_buffer=reader.number(("data", "shuffle_buffer"), None, integer=True, minimum=1),
        limit=reader.number(("data", "limit"), None, integer=True, minimum=1),
        classes=tuple(classes) if (classes := reader.value(("data", "classes"), None)) else None,
        per_class=reader.number(("data", "per_class"), None, integer=True, minimum=1),
        target=target,
        labels_path=labels_path,
        options=options,
        image_column=image_column,
        label_column=label_column,
        cache=str(reader.known(("data", "cache"), "none")),
        keep_cache=bool(reader.known(("data", "keep_cache"), False)),
        on_bad_file=str(reader.known(("data", "on_bad_file"), "error")),
    )
    _check_class_selection(reader, data)
    _check_class_entries(reader, data)
    _check_fixed_classes(reader, data)
    _check_cache(reader, data)
    return data


#: The image sources of a table or masks as a spec writes them (their loader's names otherwise).
SOURCE_WRITTEN = {
    "image_masks": "{images, masks}",
    "image_labels": "{images, labels}",
    "image_values": "{images, values}",
}


def _check_cache(reader: SectionReader, data: DataConfig) -> None:
    """A located warning for ``data.cache`` / ``data.keep_cache`` / ``data.on_bad_file: skip``
    where they do nothing, as for other settings that would be accepted and never used: a source
    held in memory whole (digits, an ``.npz``, ``{images, masks}`` …) has no decoded images to
    cache, nor files its stream leaves out (its images are read before training: an unreadable
    one stops train and the generated script alike, skip or not), and ``keep_cache`` keeps only
    a ``cache: disk`` file."""
    # (written as the default, none and false, they ask for nothing: no warning)
    said = {"cache": data.cache != "none", "keep_cache": data.keep_cache}
    # the source as the spec writes it (`{images, masks}`, not the loader's `image_masks`); the
    # message follows the setting's path (`data.cache: disk has no effect`), said once
    source = SOURCE_WRITTEN.get(data.kind, data.kind)
    if not data.streamed:
        for key in (key for key, value in said.items() if value and reader.value(("data", key)) is not None):
            value = reader.value(("data", key))
            written = short_value(value) if isinstance(value, bool) else value  # (`true`, `disk`)
            reader.warning(
                f"{written} has no effect: the {source} source is held in memory whole (a cache "
                "keeps the decoded images of a folder or CSV source)",
                ("data", key),
                f"remove data.{key}",
                code="unused-setting",
                key=True,
            )
        if data.on_bad_file == "skip":  # (error, the default, asks for nothing)
            files = data.kind in IMAGE_SOURCE_TARGETS  # ({images, masks|labels|values}: image files)
            held = (
                "is read whole before training: an image that cannot be read stops the run"
                if files
                else "holds no image files to leave out"
            )
            reader.warning(
                f"skip has no effect: the {source} source {held} (skip leaves out "
                "the bad files of a folder or CSV of classes, which are read batch by batch)",
                ("data", "on_bad_file"),
                "remove data.on_bad_file"
                + (
                    ", and remove or replace the images that cannot be read (with their masks or rows)"
                    if files
                    else ""
                ),
                code="unused-setting",
                key=True,
            )
    elif data.keep_cache and data.cache != "disk":
        reader.warning(
            f"true has no effect: the cache is {data.cache} (keep_cache keeps the file "
            "of a cache: disk when the run ends)",
            ("data", "keep_cache"),
            "set data.cache: disk to keep a cache file, or remove keep_cache",
            code="unused-setting",
            key=True,
        )
