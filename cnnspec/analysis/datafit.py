"""Whether the images of the data fit the model's input: one check, one message, for
``cnnspec train`` (the shape of the data it loaded) and ``cnnspec codegen --script`` (the shape a
named dataset is known to have, before any data is read), so the generated script refuses what
``train`` refuses instead of resizing silently."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cnnspec.errors import COMMAND_LINE_PREFIX, Loc, SpecError, SpecPath, format_path

if TYPE_CHECKING:
    from cnnspec.analysis.compiled import CompiledSpec
    from cnnspec.analysis.settings_types import DataConfig, TrainConfig
    from cnnspec.ir import Node

#: The keys of ``data.source`` that name the files its data is read from, in the order an
#: error about the data prefers them (:func:`source_loc`).
_SOURCE_FILE_KEYS = ("npz", "images", "masks", "labels", "values", "directory", "csv")

#: (height, width, channels) of the images of each named dataset of a fixed size (``shapes`` is
#: drawn at the size its spec asks for).
DATASET_SHAPES: dict[str, tuple[int, int, int]] = {
    "digits": (8, 8, 1),
    "mnist": (28, 28, 1),
    "fashion_mnist": (28, 28, 1),
    "cifar10": (32, 32, 3),
    "cifar100": (32, 32, 3),
}

#: the hint of a refusal of targets of another kind than an output's task (:func:`kinds_message`)
KINDS_HINT = "ask the source for the task's targets (shapes: data.source.shapes.target), or set training.task"

#: the hint of a CSV source's header naming a column it reads twice (``file,label,label``):
#: cnnspec train's (filelist.read_csv) and a generated script's, word for word
REPEATED_COLUMN_HINT = (
    "give each column a distinct name: a column is read by its name, so of two columns of one "
    "name only the last was read, without a word"
)


def kinds_message(target: str, task: str, output: str, kind: str) -> str:
    """The refusal of ``kind`` targets for the ``task`` output ``output``, which takes ``target``
    targets: cnnspec train's (task_data.check_kinds) and a generated script's, word for word."""
    return f"expected {target} targets for the {task} output {output}; the data has {kind} targets"


#: Why a regression output trained with msle takes no negative target (train's hint, and the
#: generated script's): Keras clamps each target below its epsilon before the log.
MSLE_HINT = (
    "Keras' msle compares log(1 + max(y, 1e-7)): every target below 0 counts as 0, and the loss "
    "reads near 0 while the model learns nothing of them; shift the targets to 0 or above, or use "
    "mse, mae or huber"
)


def source_loc(compiled: CompiledSpec, path: SpecPath) -> Loc | None:
    """Where an error about the data at ``path`` is shown: the value's location, but for one
    about the whole ``data.source``, the location of the file it names where that came from
    the command line (``--set data.source.npz=other.npz``): the file there is what the error
    is about, not the spec's source line."""
    if tuple(path) == ("data", "source"):
        for key in _SOURCE_FILE_KEYS:
            loc = compiled.doc.locs.get((*path, key))
            if loc is not None and loc.file.startswith(COMMAND_LINE_PREFIX):
                return loc
    return compiled.doc.loc(path)


def output_loc(compiled: CompiledSpec, node: Node, width: int) -> Loc | None:
    """Where an error about the width of the output layer ``node`` (``width`` units or
    channels) is shown: at the command-line override of one of the layer's values that gave it
    that width (``--set 'model[1].dense.units=4'``), else at the layer's item (whose line may
    still say the width the override replaced)."""
    for key, loc in compiled.doc.locs.items():
        if not loc.file.startswith(COMMAND_LINE_PREFIX) or not node.path:
            continue
        if (
            format_path(key).startswith((f"{node.path}.", f"{node.path}["))
            and _value_at(compiled.doc.data, key) == width
        ):
            return loc
    return node.loc


def _value_at(data: Any, path: SpecPath) -> Any:
    """The value at ``path`` in the document ``data`` (``None`` where there is none)."""
    for part in path:
        listed = isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data)
        if not (listed or (isinstance(data, dict) and part in data)):
            return None
        data = data[part]
    return data


def check_sample_shape(shape: tuple[int, ...], compiled: CompiledSpec, config: TrainConfig) -> None:
    """Raise a located :class:`SpecError` when images of ``shape`` do not fit ``input.shape``:
    at ``data.source`` when the spec names it, else (the default, digits) at ``input.shape``."""
    from cnnspec.analysis.settings_data import channels_hint

    expected = tuple(compiled.ir.input_shape)
    shape = tuple(shape)
    if shape == expected:
        return
    hint = "set input.shape to the data's shape"
    if shape[:-1] == expected[:-1]:
        hint = f"the images have {shape[-1]} channel(s) and the model expects {expected[-1]}; " + (
            channels_hint(expected, shape[-1])
            if config.data.streamed or config.data.image_size is not None  # read from image files
            else f"set input.shape to {list(shape)}"  # arrays (npz, a dataset) are taken as they are
        )
    elif shape[-1] == expected[-1]:
        hint = (
            f"set input.shape to {list(shape)} and add `resizing: {{height: {expected[0]}, "
            f"width: {expected[1]}}}` as the first layer to keep the model's size"
        )
    path: tuple[str, ...] = ("data", "source")
    if not _names_source(compiled):  # no data section: the embedded digits are the default
        path = ("input", "shape")
        hint = (
            f"the spec has no data section, so the {config.data.kind} images are used: add "
            "`data: {source: …}` for your images, or " + hint
        )
    raise SpecError.single(
        f"expected data of shape {list(expected)} (input.shape); the {config.data.kind} images have "
        f"shape {list(shape)}",
        source_loc(compiled, path),
        format_path(path),
        code="data",
        hint=hint,
    )


def check_named_dataset_shape(compiled: CompiledSpec, config: TrainConfig) -> None:
    """``validate``'s part of :func:`check_sample_shape`: a dataset the spec names whose images
    are of a fixed size (:data:`DATASET_SHAPES`) must fit ``input.shape`` as they are, since
    train takes its arrays without resizing them or converting their channels (the error train
    gave once it had loaded them). The default digits of a spec without ``data.source`` are
    left to train: such a spec may be meant for a script pointed at one's own images."""
    shape = DATASET_SHAPES.get(config.data.kind)
    if shape is not None and _names_source(compiled):
        check_sample_shape(shape, compiled, config)


def name_list(names: list[str], shown: int = 8) -> str:
    """``('a', 'b', 'c', … 7 more)``: class names for a message, the first ``shown`` of them."""
    head = ", ".join(repr(str(n)) for n in names[:shown])
    return f"({head}{f', … {len(names) - shown} more' if len(names) > shown else ''})"


def _listed(names: list[str] | None) -> str:
    """`` ('a', 'b', 'c')``: the data's class names after its count, when known."""
    return f" {name_list(names)}" if names else ""


def check_class_count(
    classes: int, compiled: CompiledSpec, config: TrainConfig, names: list[str] | None = None
) -> None:
    """Raise a located :class:`SpecError` when ``classes`` labels do not fit the output: more
    than 2 for a binary loss, or more than the output's units. ``names``: the data's class
    names, listed in the message (a stray folder or label shows itself)."""
    units = config.output_units
    if config.binary:
        if classes > 2:
            raise SpecError.single(
                f"expected 2 classes for binary_crossentropy; the data has {classes}{_listed(names)}",
                compiled.doc.loc(("training", "loss")),
                "training.loss",
                code="data",
                hint="use sparse_categorical_crossentropy and one output unit per class",
            )
    elif units and classes > units:
        ir = compiled.ir
        out = ir.node(ir.outputs[0]) if ir.nodes else None
        raise SpecError.single(
            f"expected at most {units} classes (the model's output units); the data has "
            f"{classes}{_listed(names)}",
            (output_loc(compiled, out, units) if out is not None else None)
            or source_loc(compiled, ("data", "source")),
            out.path if out is not None else "model",
            code="data",
            hint=f"set the last dense layer to units: {classes}",
        )


def check_two_classes(
    classes: int,
    compiled: CompiledSpec,
    config: TrainConfig,
    names: list[str] | None = None,
    output: str | None = None,
) -> None:
    """Raise a located :class:`SpecError` when a classifier's data has fewer than 2 classes (its
    class list: folders, labels, class names, ``data.classes``): one class leaves nothing to
    tell apart, and every prediction scores right. ``output``: a multi-output model's classifier.
    At ``data.classes`` when the spec selects the classes, else at ``data.source``."""
    if classes >= 2:
        return
    whose = f"the classifier output {output}" if output else "a classifier"
    message = f"expected at least 2 classes for {whose}; the data has {classes}{_listed(names)}"
    path = two_classes_path(config, output)
    hint = two_classes_hint(config, output)
    raise SpecError.single(message, source_loc(compiled, path), format_path(path), code="data", hint=hint)


def two_classes_path(config: TrainConfig, output: str | None = None) -> tuple[str, str]:
    """Where a classifier's data of too few classes is located: ``data.classes`` when the spec
    selects the classes (of a single classifier), else ``data.source``."""
    return ("data", "classes") if config.data.classes is not None and output is None else ("data", "source")


#: Why a classifier needs 2 classes, as every two-class hint ends.
TWO_CLASSES_WHY = (
    ": a classifier learns to tell classes apart (to detect one kind of image, add a class of "
    "other images; for labels that may each be present or not, use a multi-label output)"
)


def two_classes_hint(config: TrainConfig, output: str | None = None) -> str:
    """The hint of :func:`check_two_classes` (the generated scripts' too): what gives the data a
    second class, by its source."""
    data = config.data
    if data.classes is not None and output is None:
        hint = "list at least 2 classes in data.classes"
    else:
        hint = {
            "directory": "give the folder a sub-folder of images per class, at least 2",
            "csv": "label the images of the CSV with at least 2 classes",
            "npz": "store labels of at least 2 classes"
            + (f" in y_train_{output} and y_test_{output}" if output else " in y_train and y_test"),
        }.get(data.kind, "use data of at least 2 classes")
    return hint + TWO_CLASSES_WHY


def two_labelled_hint(config: TrainConfig, output: str | None = None, classes: int | None = None) -> str:
    """The hint of a classifier whose training split holds one class's images (train's and the
    generated scripts'): :func:`two_classes_hint`, after raising ``data.limit`` where one is set;
    classes that data.classes selects have training images of one of them alone. ``classes``:
    how many the data has, where known; with 2 or more and a data.limit, the limit alone kept
    one class, so raising it is the hint (a folder that has its class folders already is not
    told to make them)."""
    if config.data.limit is not None and classes is not None and classes >= 2:
        return "raise data.limit, so that it keeps images of the other classes"
    if config.data.classes is not None and output is None:
        hint = "select classes in data.classes that have training images" + TWO_CLASSES_WHY
    else:
        hint = two_classes_hint(config, output)
    if config.data.limit is None:
        return hint
    return f"raise data.limit, so that it keeps images of other classes; or {hint}"


#: How many classes each named dataset of a fixed size has.
DATASET_CLASSES: dict[str, int] = {
    "digits": 10,
    "mnist": 10,
    "fashion_mnist": 10,
    "cifar10": 10,
    "cifar100": 100,
}


def script_data_notes(compiled: CompiledSpec, config: TrainConfig) -> list[str]:
    """For ``codegen --script`` of a named dataset of a known size (nothing read): what the
    script will meet in its data that ``cnnspec train`` refuses.

    A dataset the spec names whose labels the output cannot take is refused, as ``train`` does
    (the script would fail in its first batch). Without a data section (the default digits: a
    script to be pointed at the user's own data) that is a note, as is a size the script will
    resize where ``train`` refuses it (the script converts any image to the model's input)."""
    kind = config.data.kind
    if kind not in DATASET_SHAPES or config.task_path:
        return []
    notes: list[str] = []
    written = _names_source(compiled)
    classes = len(config.data.classes) if config.data.classes else DATASET_CLASSES[kind]
    try:
        check_two_classes(classes, compiled, config, _selected_names(config.data))
        check_class_count(classes, compiled, config)
    except SpecError as exc:
        if written:
            raise
        notes.append(
            f"the spec has no data section, so the script reads the {kind} images ({classes} classes), "
            f"which its output cannot take ({exc.diagnostics[0].message}): edit load_data for your own "
            "images, or add a data section"
        )
    shape, expected = DATASET_SHAPES[kind], tuple(compiled.ir.input_shape)
    if len(expected) == 3 and shape != expected:
        notes.append(
            f"the {kind} images are {'×'.join(map(str, shape))}; the script resizes them and converts "
            f"their channels to the input's {'×'.join(map(str, expected))}, where `cnnspec train` refuses "
            "them (give the spec a data section that fits, or edit load_data for your own images)"
        )
    return notes


@dataclass(frozen=True)
class KnownClasses:
    """The classes a classifier's data has, as the spec alone tells (:func:`known_classes`).
    ``exact``: ``count`` is the data's (a named dataset's classes, or those ``data.classes``
    selects of it); else ``data.classes`` of a source whose classes only the data names, whose
    entries the data may refuse or find to be one class twice (by name and by index)."""

    count: int
    names: list[str] | None
    exact: bool


def known_classes(compiled: CompiledSpec, data: DataConfig) -> KnownClasses | None:
    """How many classes a classifier's data has, and their names where known, when the spec
    alone tells (``None`` where only the data does): the classes ``data.classes`` lists, else
    those of a dataset the spec names (:data:`DATASET_CLASSES`, the generated shapes' three).
    The default digits of a spec without ``data.source`` are left out, as
    :func:`check_named_dataset_shape` leaves them."""
    from cnnspec.analysis.settings_data import spec_target
    from cnnspec.shapes import SHAPE_NAMES

    if spec_target(data) not in ("class", None):
        return None
    if data.classes:
        if data.kind not in DATASET_CLASSES:
            return KnownClasses(len(data.classes), [str(c) for c in data.classes], exact=False)
        # (a class the dataset has not, or one listed twice, by name and by index: train says it)
        named = _selected_names(data)
        unique = named is not None and len(set(named)) == len(named)
        return KnownClasses(len(named), named, exact=True) if named is not None and unique else None
    if not _names_source(compiled):
        return None
    if data.kind in DATASET_CLASSES:
        return KnownClasses(DATASET_CLASSES[data.kind], None, exact=True)
    if data.kind == "shapes":
        return KnownClasses(len(SHAPE_NAMES), list(SHAPE_NAMES), exact=True)
    return None


def check_known_classes(compiled: CompiledSpec, config: TrainConfig) -> None:
    """``validate``'s part of train's class checks where the classes are known without the
    data (:func:`known_classes`): fewer than 2 (:func:`check_two_classes`: one class listed
    stays one), and, where the count is exact, more than the output's units
    (:func:`check_class_count`). Train refused such a spec once it had loaded the data, where
    validate passed it (with a warning, or without a word for a named dataset's ten). Not for
    a finished run's resolved.yaml: a run trained before a check stays usable."""
    if config.task_path or compiled.finished_run:
        return
    known = known_classes(compiled, config.data)
    if known is None:
        return
    check_two_classes(known.count, compiled, config, known.names)
    if known.exact:
        check_class_count(known.count, compiled, config, known.names)


def _selected_names(data: DataConfig) -> list[str] | None:
    """The names of the classes ``data.classes`` selects from a named dataset, as train names
    them (``None``: nothing selected, or an entry the loader refuses in its own words)."""
    from cnnspec.analysis.classes import UnknownClass, class_indices
    from cnnspec.analysis.settings_types import KERAS_CLASS_NAMES

    wanted, kind = data.classes, data.kind
    if not wanted:
        return None
    names = KERAS_CLASS_NAMES.get(kind) or [str(i) for i in range(DATASET_CLASSES[kind])]
    try:
        return [names[label] for label in class_indices(wanted, names, len(names))]
    except UnknownClass:
        return None


def _names_source(compiled: CompiledSpec) -> bool:
    """Whether the spec writes ``data.source`` (else the embedded digits are the default)."""
    data = compiled.doc.data.get("data")
    return isinstance(data, dict) and "source" in data


def mask_names_said(kind: str, key: str = "class_names") -> str:
    """Where a source of ``kind`` names its mask classes, as messages say it (train's and the
    generated script's, which gets it from its template's context). ``key``: the npz array that
    names them (a multi-output model's ``class_names_<output>``, or ``class_names``)."""
    if kind == "image_masks":
        return "data.source.classes"
    return f"the npz file's {key}" if kind == "npz" else f"the {kind} source's class list"


def mask_output_said(channels: int, output: str | None = None) -> str:
    """A segmentation output of ``channels`` channels as the mask messages say it: the model's
    only output (``a 3-channel output``), or one of a multi-output model's, by its name (``the
    3-channel output seg``)."""
    width = "one-channel" if channels == 1 else f"{channels}-channel"
    return f"a {width} output" if output is None else f"the {width} output {output}"


def mask_names_misfit(
    channels: int, count: int, said: str, output: str | None = None
) -> tuple[str, str] | None:
    """The message and hint for more mask class names (``count``, in ``said``: where, as the
    message says it) than a segmentation output of ``channels`` channels tells apart (2 for one
    sigmoid channel): the names are the mistake, not mask values the masks need not hold.
    ``None``: they fit. ``output``: the output of a multi-output model they are for (named in the
    message). One text for ``validate`` (a masks folder's ``classes``), ``train`` (an npz's
    ``class_names`` or ``class_names_<output>`` too) and the generated script's ``check_masks``."""
    limit = 2 if channels == 1 else channels
    if count <= limit:
        return None
    what = mask_output_said(channels, output) + (" (a sigmoid: 2 classes)" if channels == 1 else "")
    layer = "the last layer" if output is None else f"the output {output}"
    return (
        f"expected at most {limit} mask class names for {what}; {said} has {count}",
        f"name one class per output channel, in index order (or give {layer} {count} filters"
        f"{' and a softmax' if channels == 1 else ''})",
    )


def mask_names_short(
    classes: int, names: list[Any], said: str, key: str, output: str | None = None
) -> tuple[str, str] | None:
    """The message and hint for fewer mask class names (``names``, in ``said``) than the
    segmentation output (``output``, or the model's only one) has classes: the classes past them
    were numbers everywhere (reports, metrics.json, evaluate, predict) while the export's record
    kept the names. ``None``: each class has one. ``key``: the setting that names them. One
    text for ``validate`` (a masks folder's ``classes``) and ``train`` (an npz's too)."""
    if len(names) >= classes:
        return None
    whose = "the output's" if output is None else f"the output {output}'s"
    shown = ", ".join(map(str, names[:5])) + (", …" if len(names) > 5 else "")
    return (
        f"expected a name for each of {whose} {classes} classes; {said} has {len(names)} ({shown})",
        f"name every class of the output in index order (or leave {key} out to number them), "
        "or give the output as many channels as there are classes",
    )


def check_mask_table(compiled: CompiledSpec, config: TrainConfig) -> None:
    """``validate``'s part of the mask class count: a masks folder's ``classes`` (names or a
    table of colours) naming more classes than the segmentation output's channels tell apart
    (train blamed mask values up to the last name's index, which no mask need hold), or fewer
    than its classes (train refused them once every image and mask was read), is known without
    reading a mask. Located at ``data.source.classes``."""
    table = config.data.options.get("classes") if config.data.kind == "image_masks" else None
    outputs = [task for task in config.tasks if task.task == "segmentation"]
    if not isinstance(table, (list, dict)) or not table or len(config.tasks) != 1 or len(outputs) != 1:
        return
    said = "data.source.classes"
    misfit = mask_names_misfit(outputs[0].units, len(table), said) or mask_names_short(
        outputs[0].classes, list(table), said, "classes"
    )
    if misfit is not None:
        path: SpecPath = ("data", "source", "classes")
        raise SpecError.single(
            misfit[0], source_loc(compiled, path), format_path(path), code="data", hint=misfit[1]
        )
