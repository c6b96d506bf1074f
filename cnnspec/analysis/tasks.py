"""What each model output learns: its task, loss, loss weight and metrics (no TensorFlow).

A task is ``classification``, ``multilabel``, ``regression`` or ``segmentation``. It is read
from ``training.task`` (one output) or ``training.outputs.NAME.task`` (several), and inferred
from the output where that is unambiguous:

- an output of shape ``[H, W, C]`` with the input's ``H × W`` is a segmentation map;
- a vector output with a sigmoid over more than one unit is multi-label (a softmax, or a single
  sigmoid unit, is a classifier);
- a vector output whose stated loss is ``mse``/``mae``/``huber`` is a regression;
- any other vector output is a classifier (today's behaviour, so every existing spec keeps
  training as before).

Then every output is checked against its task before any data is read, each mistake a located
:class:`~cnnspec.errors.SpecError`: the output's shape fits the task, the loss and every metric
fit the task, and the data source can provide the task's targets at all.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from cnnspec.analysis.datafit import kinds_message
from cnnspec.analysis.output_activation import output_activation
from cnnspec.analysis.output_ids import key_of, listed_ids, output_ids
from cnnspec.analysis.settings_training import loss_record, mixing_keys
from cnnspec.analysis.settings_types import KERAS_DATASETS, TASK_TARGETS, LossConfig, MetricConfig
from cnnspec.errors import SpecPath
from cnnspec.ir import ancestors

if TYPE_CHECKING:
    from cnnspec.analysis.compiled import CompiledSpec
    from cnnspec.analysis.settings_reader import SectionReader
    from cnnspec.analysis.settings_types import TrainConfig

TASKS = ("classification", "multilabel", "regression", "segmentation")
#: The kind of target a :class:`~cnnspec.training.dataset.Dataset` holds for each task.
TARGET_OF_TASK = TASK_TARGETS
#: mse, mae and huber, and the errors of logarithms (msle: for counts and sizes that span
#: magnitudes), of percentages (mape) and log-cosh (quadratic near zero, linear beyond).
REGRESSION_LOSSES = ("mse", "mae", "huber", "msle", "mape", "log_cosh")
#: The regression losses that are one Keras loss class without settings (its name in
#: ``keras.losses``), for the trainer and the generated script alike.
KERAS_LOSS_OF = {
    "msle": "MeanSquaredLogarithmicError",
    "mape": "MeanAbsolutePercentageError",
    "log_cosh": "LogCosh",
}
#: The losses and metrics that make sense for each task (the first loss is the default).
LOSSES_OF_TASK: dict[str, tuple[str, ...]] = {
    "classification": (
        "sparse_categorical_crossentropy",
        "categorical_crossentropy",
        "binary_crossentropy",
        "categorical_focal_crossentropy",
        "binary_focal_crossentropy",
    ),
    "multilabel": ("binary_crossentropy", "binary_focal_crossentropy"),
    "regression": REGRESSION_LOSSES,
    "segmentation": (
        "sparse_categorical_crossentropy",
        "dice",
        "binary_crossentropy",
        "categorical_focal_crossentropy",
        "binary_focal_crossentropy",
    ),
}
METRICS_OF_TASK: dict[str, tuple[str, ...]] = {
    "classification": ("accuracy", "top_k_accuracy", "precision", "recall", "auc"),
    "multilabel": ("accuracy", "f1", "precision", "recall", "auc"),
    "regression": ("mae", "mse", "rmse", "r2"),
    "segmentation": ("accuracy", "mean_iou"),
}
DEFAULT_METRICS: dict[str, tuple[str, ...]] = {
    "classification": ("accuracy",),
    "multilabel": ("f1",),
    "regression": ("mae", "r2"),
    "segmentation": ("accuracy", "mean_iou"),
}
#: Sources whose only targets are class labels (digits, the Keras datasets, class folders).
CLASS_ONLY_SOURCES = ("digits", "directory", *KERAS_DATASETS)
#: The target kind each ``shapes`` target gives, where it is not the target's own name.
SHAPES_TARGET_KINDS = {"count": "regression", "area": "regression"}
DEFAULT_THRESHOLD = 0.5
#: Keras' names of the regression losses a compiled model file records (its ``compile_config``:
#: a string as given to ``compile``, short or long, or a loss function's name) → cnnspec's
#: name of it (:data:`REGRESSION_LOSSES`): the loss that tells a regression from a linear
#: classifier head (the task rules' own test, :func:`infer_task`), for a model file without a
#: spec and for ``cnnspec import``, and the loss ``evaluate`` and an imported spec go on with.
KERAS_REGRESSION_LOSSES = {
    "mse": "mse",
    "mean_squared_error": "mse",
    "msle": "msle",
    "mean_squared_logarithmic_error": "msle",
    "mae": "mae",
    "mean_absolute_error": "mae",
    "mape": "mape",
    "mean_absolute_percentage_error": "mape",
    "huber": "huber",
    "huber_loss": "huber",
    "log_cosh": "log_cosh",
    "logcosh": "log_cosh",
}
#: Keras' names of the losses a model file may record for a classifier, a multi-label or a
#: segmentation output (the task rules tell these apart by the output's shape and activation):
#: a saved loss that is in neither table is no task's the rules know, and is not guessed.
KERAS_CLASSIFICATION_LOSSES = frozenset(
    {
        "sparse_categorical_crossentropy",
        "categorical_crossentropy",
        "binary_crossentropy",
        "bce",
        "binary_focal_crossentropy",
        "categorical_focal_crossentropy",
        "hinge",
        "squared_hinge",
        "categorical_hinge",
        "kl_divergence",
        "kld",
        "kullback_leibler_divergence",
        "dice",
        "tversky",
    }
)
#: Keras' loss classes (a serialized loss object's ``class_name``) → the function name that
#: stands for them in the tables above. Read before the object's ``config.name``, which is
#: the user's (``MeanSquaredError(name="my_mse")``) and says nothing of the loss.
KERAS_LOSS_CLASSES = {
    "MeanSquaredError": "mean_squared_error",
    "MeanAbsoluteError": "mean_absolute_error",
    "Huber": "huber",
    "MeanSquaredLogarithmicError": "mean_squared_logarithmic_error",
    "LogCosh": "log_cosh",
    "MeanAbsolutePercentageError": "mean_absolute_percentage_error",
    "SparseCategoricalCrossentropy": "sparse_categorical_crossentropy",
    "CategoricalCrossentropy": "categorical_crossentropy",
    "BinaryCrossentropy": "binary_crossentropy",
    "BinaryFocalCrossentropy": "binary_focal_crossentropy",
    "CategoricalFocalCrossentropy": "categorical_focal_crossentropy",
    "Hinge": "hinge",
    "SquaredHinge": "squared_hinge",
    "CategoricalHinge": "categorical_hinge",
    "KLDivergence": "kl_divergence",
    "Dice": "dice",
    "Tversky": "tversky",
}
#: The target kinds that hold a value per pixel, aligned with the image (a segmentation's mask):
#: whatever moves the image's pixels must move them too.
PER_PIXEL_TARGETS = ("mask",)


@dataclass(frozen=True)
class OutputTask:
    """One model output: what it learns and how it is scored."""

    name: str  # the output's layer name (the Keras output name; the id of the output item)
    task: str
    loss: LossConfig
    metrics: tuple[MetricConfig, ...]
    shape: tuple[int, ...]
    activation: str | None
    loss_weight: float = 1.0
    threshold: float = DEFAULT_THRESHOLD

    @property
    def units(self) -> int:
        return int(self.shape[-1]) if self.shape else 0

    @property
    def classes(self) -> int:
        """Classes of a classifier or a segmentation map (a 1-channel sigmoid map has 2)."""
        return 2 if self.units == 1 else self.units

    @property
    def one_hot(self) -> bool:
        """Targets go one-hot through the pipeline (Keras' Dice and categorical losses compare
        whole probability vectors; a classifier's by the single classifier's own rule, so that
        its precision, recall and AUC, which Keras scores on one-hot targets, get them too)."""
        if self.binary:
            return False
        if self.task == "classification":
            return self.classifier_config().one_hot_labels
        return self.loss.name == "dice" or self.loss.one_hot

    @property
    def compiled_loss(self) -> LossConfig:
        """The loss as training compiles it: a sparse crossentropy whose targets go one-hot
        (:attr:`one_hot`: precision, recall or AUC of a multi-class output) is the categorical
        crossentropy, with the same settings (the trainer's and the script's loss tables)."""
        if self.loss.name == "sparse_categorical_crossentropy" and self.one_hot:
            return replace(self.loss, name="categorical_crossentropy")
        return self.loss

    def classifier_config(self) -> TrainConfig:
        """A classification output's loss and metrics as a single classifier's settings: its
        metrics are built and its targets prepared by the classifier's rules (one set of rules
        for the classifier alone and the classification output of a multi-output model)."""
        from cnnspec.analysis.settings_types import DataConfig, TrainConfig

        return TrainConfig(data=DataConfig("npz"), loss=self.loss, metrics=self.metrics)

    @property
    def binary(self) -> bool:
        """One sigmoid unit (or channel): targets are 0/1 floats, not class indices."""
        return self.units == 1 and self.task in ("classification", "segmentation")

    @property
    def decision_threshold(self) -> float:
        """The threshold on the output's values (0 for logits, ``threshold`` for probabilities)."""
        return 0.0 if self.loss.from_logits else self.threshold

    @property
    def target(self) -> str:
        return TARGET_OF_TASK[self.task]

    def describe(self) -> dict[str, Any]:
        """JSON-ready (for lock.json and the report)."""
        return {
            "name": self.name,
            "task": self.task,
            # the loss compiled, as a spec writes it: a name, or {name: settings} (label
            # smoothing, from_logits, a focal loss's gamma …) where a setting is not its default
            "loss": loss_record(self.compiled_loss),
            "loss_weight": self.loss_weight,
            "metrics": [m.log_name for m in self.metrics],
            "shape": list(self.shape),
            "threshold": self.threshold,
        }


def _output_where(compiled: CompiledSpec, name: str) -> tuple[Any, str]:
    node = compiled.ir.node(name) if compiled.ir.nodes else None
    return (node.loc, node.path) if node is not None else (None, "model")


def infer_task(shape: tuple[int, ...], activation: str | None, loss: str | None) -> str:
    """The task an output of this shape, activation and stated loss is for (see module doc)."""
    if len(shape) == 3:
        return "segmentation"
    if loss in REGRESSION_LOSSES:
        return "regression"
    if activation == "sigmoid" and shape and shape[-1] > 1:
        return "multilabel"
    return "classification"


def _loss_name(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and len(value) == 1:
        return str(next(iter(value)))
    return None


def output_tasks(
    reader: SectionReader, compiled: CompiledSpec, parse_loss: Any, parse_metrics: Any
) -> tuple[OutputTask, ...]:
    """Every output's task, typed and checked (errors go to ``reader``'s diagnostics).

    ``parse_loss(path, units, activation, default, task)`` and ``parse_metrics(path, task,
    default)`` are the section reader's own parsers (settings.py), so one grammar reads
    ``training.loss`` and ``training.outputs.NAME.loss`` alike.
    """
    ir = compiled.ir
    per_output = reader.value(("training", "outputs"), None)
    multi = len(ir.outputs) > 1
    if multi:
        for key in ("task", "loss", "metrics", "threshold"):
            if reader.value(("training", key), None) is not None:
                reader.error(
                    f"expected training.outputs.NAME.{key} for a model with {len(ir.outputs)} outputs; "
                    f"received training.{key}",
                    ("training", key),
                    f"set it per output: training.outputs: {{{ir.outputs[0]}: {{{key}: ...}}}}",
                    key=True,
                )
    ids = output_ids(compiled)
    listed = dict(zip(ir.outputs, listed_ids(compiled), strict=True))  # output → its id in `outputs:`
    stated: dict[str, Any] = {}  # output → the key of training.outputs that states its settings
    if isinstance(per_output, dict):
        from cnnspec.errors import did_you_mean

        for key in per_output:
            name = ids.get(key) if isinstance(key, str) else None
            if name is None:
                reader.error(
                    f"expected the name of a model output; received {key!r}",
                    ("training", "outputs", key),
                    did_you_mean(str(key), list(listed.values()))
                    or f"the outputs: {', '.join(listed.values())}",
                    key=True,
                )
            elif name in stated:  # `th` and `th_b`: one output's settings in two places
                reader.error(
                    f"expected each output once; {key!r} names the output {stated[name]!r} names already",
                    ("training", "outputs", key),
                    f"merge its settings into training.outputs.{stated[name]}",
                    key=True,
                )
            else:
                stated[name] = key
    out: list[OutputTask] = []
    fitting: list[str] = []  # the outputs whose shape fits their task (the others are reported)
    # several outputs on a source of one target array: that one mistake, not each output's
    # task checked against a source that cannot feed the model anyway
    one_array = _one_target_array(reader) if multi else None
    for name in ir.outputs:
        base: SpecPath = ("training", "outputs", stated[name]) if name in stated else ("training",)
        if multi and base == ("training",):
            # nothing stated: every value inferred/defaulted (a message names the id to write)
            base = ("training", "outputs", listed[name])
        task, shape_ok = _one_output(
            reader, compiled, name, base, parse_loss, parse_metrics, check_source=one_array is None
        )
        out.append(task)
        if shape_ok:
            fitting.append(name)
    if one_array is not None:
        _refuse_one_target_array(reader, compiled, out, one_array)
    _check_moving_layers(
        reader, compiled, [o for o in out if o.name in fitting and o.target in PER_PIXEL_TARGETS]
    )
    if reader.value(("training", "class_weight"), None) is not None and (
        multi or any(o.task != "classification" for o in out)
    ):  # Keras weighs samples by one class index: there is none for masks, label sets, values
        received = (
            f"this model has {len(out)} outputs ({', '.join(f'{o.name}: {o.task}' for o in out)})"
            if multi
            else f"this one is for {out[0].task}"
        )
        reader.error(
            f"expected class_weight only for a single classification output; {received}",
            ("training", "class_weight"),
            key=True,
            hint="leave training.class_weight out: Keras weighs the samples of a model of one output only"
            if multi
            else None,
        )
    return tuple(out)


def _one_output(
    reader: SectionReader,
    compiled: CompiledSpec,
    name: str,
    base: SpecPath,
    parse_loss: Any,
    parse_metrics: Any,
    *,
    check_source: bool = True,
) -> tuple[OutputTask, bool]:
    """The output's task, and whether its shape fits that task (an output that does not is
    reported here, and checked no further: one mistake, no cascade). ``check_source``: whether
    the source is checked against the task (not where it is refused for the whole model)."""
    ir = compiled.ir
    shape = tuple(int(d) for d in (ir.shape_of(name) or ()))
    activation = output_activation(compiled, name)
    loc, where = _output_where(compiled, name)
    stated = reader.value((*base, "task"), None)
    task = (
        stated
        if stated in TASKS
        else infer_task(shape, activation, _loss_name(reader.value((*base, "loss"))))
    )
    flat_dense = _dense_on_map(compiled, name) if stated is None and len(shape) == 3 else None
    if (
        stated is None
        and task == "segmentation"
        and not _stated_per_pixel(reader, compiled, name, base)
        and _meant_classifier(reader, compiled, shape, flat_dense)
    ):
        # A per-pixel guess would send the user to upsample a classifier that only lacks a
        # flatten: the class-only source or the shrunken map says a classifier was meant.
        task = "classification"
    task_path: SpecPath = (*base, "task")
    shape_ok = _check_shape(
        reader, compiled, name, task, shape, activation, stated is not None, task_path, flat_dense
    )
    units = shape[-1] if shape else 0
    default_loss = LOSSES_OF_TASK[task][0]
    if task in ("classification", "segmentation") and units == 1:
        default_loss = "binary_crossentropy"
    mixing = mixing_keys(reader)
    if mixing and default_loss == "sparse_categorical_crossentropy" and task == "classification":
        # mixed labels are shares of two classes, which only the one-hot loss takes (the same
        # from_logits and label_smoothing apply to it)
        default_loss = "categorical_crossentropy"
    loss = parse_loss((*base, "loss"), units if shape_ok else 0, activation, default_loss, task)
    if mixing and task == "classification" and loss.name == "sparse_categorical_crossentropy":
        reader.error(
            f"expected categorical_crossentropy with training.{mixing[0]}; "
            "sparse_categorical_crossentropy takes one class index per image, and a mixed image's "
            "label is a share of two classes",
            (*base, "loss"),
            "write loss: categorical_crossentropy, or leave the loss out (with mixing it is the default)",
        )
    if loss.name not in LOSSES_OF_TASK[task]:
        reader.error(
            f"expected a {task} loss ({', '.join(LOSSES_OF_TASK[task])}); received {loss.name}",
            (*base, "loss"),
            None
            if stated is not None
            else f"the task was inferred from the output {where}; set training.task to say otherwise",
        )
    metrics = parse_metrics((*base, "metrics"), task, units == 1, DEFAULT_METRICS[task])
    for index, metric in enumerate(metrics):
        if metric.name not in METRICS_OF_TASK[task]:
            reader.error(
                f"expected a {task} metric ({', '.join(METRICS_OF_TASK[task])}); received {metric.name}",
                (*base, "metrics", index),
            )
    if task in ("segmentation",) and loss.binary and units not in (1, 0):
        reader.error(
            f"expected a 1-channel output for {loss.name}; {where} has {units} channels",
            (*base, "loss"),
            "use sparse_categorical_crossentropy, dice or categorical_focal_crossentropy for several classes",
        )
    if task == "segmentation" and loss.one_hot and units == 1:
        reader.error(
            f"expected a channel per class for {loss.name}; {where} has 1",
            (*base, "loss"),
            "a 1-channel sigmoid map goes with binary_crossentropy (or binary_focal_crossentropy)",
        )
    if loss.name == "dice" and loss.from_logits:
        reader.error(
            f"expected probabilities for the dice loss; {where} has no softmax or sigmoid",
            (*base, "loss"),
            "end the model with activation: softmax (or sigmoid for one class)",
        )
    weight = reader.number((*base, "loss_weight"), 1.0, minimum=0)
    threshold = reader.number((*base, "threshold"), DEFAULT_THRESHOLD, above=0, maximum=1)
    if threshold is not None and reader.value((*base, "threshold")) is not None and task != "multilabel":
        reader.error(
            f"expected threshold only for a multilabel output; this one is {task}",
            (*base, "threshold"),
            key=True,
        )
    if shape_ok and check_source:  # an output that fits no task is the one mistake to report (no cascade)
        _check_source(reader, compiled, name, task, task_path if stated is not None else None, loc, where)
    return OutputTask(name, task, loss, metrics, shape, activation, float(weight), float(threshold)), shape_ok


def _source_kind(reader: SectionReader) -> str:
    """The kind of ``data.source`` (``digits`` when none is written, as training reads it)."""
    source = reader.value(("data", "source"), "digits")
    return source if isinstance(source, str) else next(iter(source), "") if isinstance(source, dict) else ""


def _dense_on_map(compiled: CompiledSpec, name: str) -> Any:
    """The first dense layer (a ``per_position`` kind of the registry) feeding output ``name``
    whose input is a 3-D feature map (the telltale of a missing flatten: dense acts on the last
    axis only), with no ``spatial`` layer (convolution, pooling, upsampling) between it and the
    output, or ``None``."""
    from cnnspec.layers import REGISTRY

    ir = compiled.ir
    by_name = {node.name: node for node in ir.nodes}
    seen: set[str] = set()
    todo = [name]
    found = []
    while todo:  # every ancestor of the output, once (a graph may branch and merge)
        node = by_name.get(todo.pop())
        if node is None or node.name in seen:
            continue
        seen.add(node.name)
        kind = REGISTRY.get(node.kind)
        if kind is not None and kind.spatial:
            # what comes before a convolution, pooling or upsampling is turned back into a map:
            # a dense there is a per-pixel layer of a segmentation net, not a missing flatten
            continue
        if kind is not None and kind.per_position and node.input_shapes and len(node.input_shapes[0]) == 3:
            found.append(node)
        todo.extend(node.inputs)
    order = {node.name: index for index, node in enumerate(ir.nodes)}
    return min(found, key=lambda node: order[node.name]) if found else None


def _only_of_segmentation(table: dict[str, tuple[str, ...]]) -> set[str]:
    """The names ``table`` (losses or metrics by task) gives segmentation alone."""
    others = {name for task, names in table.items() if task != "segmentation" for name in names}
    return set(table["segmentation"]) - others


def _stated_per_pixel(reader: SectionReader, compiled: CompiledSpec, name: str, base: SpecPath) -> bool:
    """Whether the spec states that output ``name`` learns a per-pixel map: its stated target
    (``shapes``' target, one or the output's own; an npz ``target``; an image source's masks) is
    a mask, or its stated loss or a stated metric is one of segmentation's alone (dice,
    mean_iou). A segmentation net is then never guessed to be a classifier missing its flatten."""
    from cnnspec.analysis.settings_data import IMAGE_SOURCE_TARGETS
    from cnnspec.analysis.settings_types import IMAGE_TARGET_SOURCES

    source = reader.value(("data", "source"), None)
    if isinstance(source, dict):
        targets: list[Any] = [
            IMAGE_SOURCE_TARGETS.get(kind) for key, kind in IMAGE_TARGET_SOURCES.items() if key in source
        ]
        for settings in source.values():
            if not isinstance(settings, dict):
                continue
            target = settings.get("target")
            targets.append(target.get(key_of(compiled, target, name)) if isinstance(target, dict) else target)
        targets.append(source.get("target"))  # npz: {npz: FILE, target: …}
        if any(isinstance(t, str) and t in PER_PIXEL_TARGETS for t in targets):
            return True
    if _loss_name(reader.value((*base, "loss"), None)) in _only_of_segmentation(LOSSES_OF_TASK):
        return True
    metrics = reader.value((*base, "metrics"), None)
    stated = metrics if isinstance(metrics, list) else [metrics]
    return any(_loss_name(m) in _only_of_segmentation(METRICS_OF_TASK) for m in stated)


def _meant_classifier(
    reader: SectionReader, compiled: CompiledSpec, shape: tuple[int, ...], flat_dense: Any
) -> bool:
    """Whether an unstated 3-D output is a classifier missing its flatten rather than a
    segmentation map: its height and width are not the input's and the source has class
    labels only or a dense layer ran on a feature map, or both of the latter hold."""
    class_only = _source_kind(reader) in CLASS_ONLY_SOURCES
    resized = tuple(shape[:2]) != tuple(compiled.ir.input_shape[:2])
    return (resized and (class_only or flat_dense is not None)) or (class_only and flat_dense is not None)


def _check_shape(
    reader: SectionReader,
    compiled: CompiledSpec,
    name: str,
    task: str,
    shape: tuple[int, ...],
    activation: str | None,
    stated: bool,
    task_path: SpecPath,
    flat_dense: Any = None,
) -> bool:
    """The output's shape and activation fit the task (a located error on the output if not).
    ``flat_dense``: the first dense layer that ran on a feature map, named in the hint."""
    loc, where = _output_where(compiled, name)
    stated_note = f" (training task {task})" if stated else ""
    problem = hint = None
    if not shape:
        return False
    if task == "segmentation":
        image = tuple(compiled.ir.input_shape)
        size = image[:2]
        if len(image) != 3:  # (a vector input has no height and width to give a class per pixel of)
            problem = (
                f"expected an image input [height, width, channels] for a segmentation output"
                f"{stated_note}; the input's shape is {list(image)}"
            )
            hint = "a segmentation gives each pixel of an image a class: give input.shape as [h, w, channels]"
        elif len(shape) != 3 or tuple(shape[:2]) != size:
            problem = (
                f"expected a segmentation output of shape [{size[0]}, {size[1]}, classes] (the input's "
                f"height and width){stated_note}; {where} outputs {list(shape)}"
            )
            hint = (
                "upsample back to the input's size (conv2d_transpose or upsampling2d) and end with "
                "conv2d: {filters: CLASSES, kernel_size: 1, activation: softmax}"
            )
        elif activation == "softmax" and shape[-1] < 2:
            problem, hint = (
                "expected ≥ 2 channels for a softmax segmentation output; it has 1",
                "use sigmoid for one class",
            )
        elif activation == "sigmoid" and shape[-1] > 1:
            problem = (
                f"expected a softmax over the {shape[-1]} channels of a segmentation output; it has sigmoid"
            )
            hint = "use activation: softmax (one class per pixel)"
    elif len(shape) != 1:
        problem = f"expected a {task} output of shape [units]{stated_note}; {where} outputs {list(shape)}"
        hint = (
            "end the model with global_avg_pool2d (or flatten) and a dense layer, or set "
            "training.task: segmentation for a per-pixel output"
        )
        if flat_dense is not None and not stated:
            # the usual cause: a Keras habit of flattening implicitly; name the layer to fix
            problem += " (dense acts on the last axis only, keeping height and width)"
            hint = (
                f"add flatten or global_avg_pool2d before {flat_dense.path}, whose input is "
                f"{list(flat_dense.input_shapes[0])}"
            )
    elif task == "multilabel" and activation != "sigmoid":
        problem = f"expected a sigmoid output for multilabel; {where} has {activation or 'no activation'}"
        hint = "end with dense: {units: LABELS, activation: sigmoid} (one independent probability per label)"
    elif task == "regression" and activation in ("softmax",):
        problem = f"expected a linear output for regression; {where} has softmax"
        hint = "remove the activation of the last dense layer"
    if problem is None:
        return True
    if stated and loc is None:
        reader.error(problem, task_path, hint)
    else:
        reader.diags.error(problem, loc, where, code="training", hint=hint)
    return False


def _check_source(
    reader: SectionReader,
    compiled: CompiledSpec,
    name: str,
    task: str,
    task_path: SpecPath | None,
    loc: Any,
    where: str,
) -> None:
    """The source can give the task's targets: a stated shapes target is of the task's kind;
    sources that only have class labels can't feed the other tasks."""
    # (an output inferred to be a classifier is only the default guess for a vector head)
    _check_shapes_target(reader, compiled, name, task, guessed=task_path is None and task == "classification")
    _check_images_targets(reader, compiled, name, task)
    if task == "classification":
        return
    kind = _source_kind(reader)
    if kind in CLASS_ONLY_SOURCES:
        message = f"expected a data source with {task} targets; {kind} has class labels only"
        hint = "use data.source: shapes or {npz: FILE} with the targets as y_train/y_test"
        if isinstance(compiled.doc.data.get("data"), dict) and "source" in compiled.doc.data["data"]:
            reader.error(message, ("data", "source"), hint)
        elif task_path is not None:  # the default source (digits): point at the stated task
            reader.error(message + " (the default source)", task_path, hint)
        else:
            reader.diags.error(
                message + f" (the default source; the {task} task was inferred from {where})",
                loc,
                where,
                code="training",
                hint=hint,
            )


#: The task whose targets each target key of an ``images`` source gives.
_IMAGES_TARGET_TASKS = {"labels": "multilabel", "values": "regression", "masks": "segmentation"}
#: The head that takes each task's targets, for the hint of a refusal.
_HEAD_OF_TASK = {
    "multilabel": "a sigmoid unit per label",
    "regression": "a linear unit per value",
    "segmentation": "a map of the input's size with a channel per class",
}


def _check_images_targets(reader: SectionReader, compiled: CompiledSpec, name: str, task: str) -> None:
    """An ``{images: …, labels|values|masks: …}`` source gives one task's targets, fixed by its
    key: the model's only output of another task is refused at that key from ``validate`` on
    (``train`` refused it, with a hint about ``shapes``, once it had read every image)."""
    if len(compiled.ir.outputs) != 1 or reader.poisoned_within(("data", "source")):
        return  # (several outputs from one target array are refused as such)
    source = reader.value(("data", "source"), None)
    if not isinstance(source, dict) or "images" not in source:
        return
    key = next((key for key in _IMAGES_TARGET_TASKS if key in source), None)
    given = _IMAGES_TARGET_TASKS.get(key or "")
    if key is None or given is None or given == task:
        return
    reader.error(
        kinds_message(TARGET_OF_TASK[task], task, name, TARGET_OF_TASK[given]),
        ("data", "source", key),
        f"an images source's {key} give {given} targets: end the model with {_HEAD_OF_TASK[given]} "
        f"(training.task: {given}), or give the images the {task} output's targets",
        key=True,
    )


#: What the sources of one target array give (by ``data.source``'s name or key), for the message
#: that refuses them a model of several outputs.
_ONE_ARRAY_OF = {
    "digits": "class labels",
    **{name: "class labels" for name in KERAS_DATASETS},
    "directory": "class labels (one per class folder)",
    "csv": "class labels (its label column)",
    "masks": "masks",
    "labels": "label sets",
    "values": "values",
}
#: The ``shapes`` target that gives each task's targets, for a hint that writes one per output.
_SHAPES_TARGET_OF_TASK = {"classification": "class", "multilabel": "multilabel", "regression": "count"}


def _one_target_array(reader: SectionReader) -> tuple[str, str, SpecPath] | None:
    """Whether the spec alone says its source gives one target array, as ``cnnspec train``
    reads it (training/data.py ``load_dataset``): the source's name, what it gives and where
    that is said. The built-in datasets, class folders and CSVs give class labels, the
    ``images`` sources their masks, label sets or values, ``shapes`` one target (stated, or
    the model's default). ``None`` where it may give one per output (``shapes`` with a target
    per output; an ``npz`` file, whose arrays alone tell: checked once it is read), or where
    the source is unknown (its expression failed, or the schema refuses it)."""
    if reader.poisoned_within(("data", "source")):
        return None
    source = reader.value(("data", "source"), "digits")
    if source == "shapes" or (isinstance(source, dict) and "shapes" in source):
        settings = source.get("shapes") if isinstance(source, dict) else None
        target = settings.get("target") if isinstance(settings, dict) else None
        if isinstance(target, dict):
            return None
        if isinstance(target, str):
            return "shapes", f"one target ({target})", ("data", "source", "shapes", "target")
        return "shapes", "one target (the model's default)", ("data", "source")
    if isinstance(source, str):
        if source not in _ONE_ARRAY_OF:
            return None  # (a name the schema refuses)
        return source, f"one array of {_ONE_ARRAY_OF[source]}", ("data", "source")
    if not isinstance(source, dict):
        return None
    if "images" in source:
        key = next((k for k in ("masks", "labels", "values") if k in source), "masks")
        return "images", f"one array of {_ONE_ARRAY_OF[key]}", ("data", "source")
    kind = next((k for k in ("directory", "csv") if k in source), None)
    return (kind, f"one array of {_ONE_ARRAY_OF[kind]}", ("data", "source")) if kind is not None else None


def _refuse_one_target_array(
    reader: SectionReader,
    compiled: CompiledSpec,
    tasks: list[OutputTask],
    one_array: tuple[str, str, SpecPath],
) -> None:
    """Refuse a model of several outputs a source of one target array (:func:`_one_target_array`),
    which ``train`` refuses only after loading the data. Located where the one array is said
    (the source, or its ``shapes`` target), or at ``outputs`` for the default source."""
    kind, what, path = one_array
    names = ", ".join(task.name for task in tasks)
    per_output = ", ".join(f"{t.name}: {_SHAPES_TARGET_OF_TASK.get(t.task, 'mask')}" for t in tasks)
    message = f"expected a target per output ({names}); the {kind} source gives {what}"
    # the hint writes the target where it goes: the key `data.source.shapes.target`, which a
    # user told only `target: {…}` put at `data.target` (refused: "unknown key 'target'")
    nested = f"{{shapes: {{target: {{{per_output}}}}}}}"
    if kind == "shapes" and path[-1] == "target":
        hint = f"give each output its target: target: {{{per_output}}}"
    elif kind == "shapes":
        hint = f"give each output its target: source: {nested}"
    else:
        hint = (
            f"use source: {nested}, or {{npz: FILE}} with y_train_NAME and y_test_NAME for every output NAME"
        )
    data = compiled.doc.data.get("data")
    if not (isinstance(data, dict) and "source" in data):
        message += " (the default source)"
        path = ("outputs",)  # (a model of several outputs lists them)
    reader.error(message, path, hint, code="data")


def _check_shapes_target(
    reader: SectionReader, compiled: CompiledSpec, name: str, task: str, guessed: bool = False
) -> None:
    """A stated target (``data.source.shapes.target``: one, or the output's entry of one per
    output; an npz source's ``target``) gives the targets of the output's task: found here,
    from ``validate`` on, instead of by ``train`` after reading the data (where a mask target
    for a vector output read as a model that should end in a convolution). ``guessed``: a
    classifier by default (a linear head without a regression loss is one), which the message
    says, and whose hint names the task first."""
    from cnnspec.spec.sections import NPZ_TARGETS, SHAPES_TARGETS

    where: SpecPath = ("data", "source", "shapes", "target")
    stated = reader.value(where, None)
    if isinstance(stated, dict):
        key = key_of(compiled, stated, name)
        stated, where = stated.get(key), (*where, key if key is not None else name)
    if reader.value(("data", "source", "npz"), None) is not None:
        where = ("data", "source", "target")
        stated = reader.value(where, None)
    if not isinstance(stated, str) or stated not in {*SHAPES_TARGETS, *NPZ_TARGETS}:  # (schema's error)
        return
    given, wanted = SHAPES_TARGET_KINDS.get(stated, stated), TARGET_OF_TASK[task]
    # data.classes/per_class on these targets is refused already, naming them: one report
    refused = any(d.path in ("data.classes", "data.per_class") for d in reader.diags.errors)
    if given == wanted or refused:
        return
    targets = NPZ_TARGETS if where[-1] == "target" and where[-2] == "source" else SHAPES_TARGETS
    fitting = [t for t in targets if SHAPES_TARGET_KINDS.get(t, t) == wanted]
    their_task = next(t for t, kind in TARGET_OF_TASK.items() if kind == given)
    output_id = dict(zip(compiled.ir.outputs, listed_ids(compiled), strict=True))[name]
    task_key = "training.task" if len(compiled.ir.outputs) == 1 else f"training.outputs.{output_id}.task"
    how = " (inferred from its head: one without a regression loss is a classifier)" if guessed else ""
    reader.error(
        f"expected a {' or '.join(fitting)} target for the {task} output {name}{how}; "
        f"received {stated!r}, the targets of a {their_task} output",
        where,
        # the stated task is what the spec means: change the target first; an inferred one is
        # a guess, the task is what to say first
        (f"set {task_key}: {their_task}, or target: {' or '.join(fitting)} for this output")
        if guessed
        else (
            f"set target: {' or '.join(fitting)} for this output, or {task_key}: {their_task} for an "
            "output of that task's shape"
        ),
    )


def _check_moving_layers(reader: SectionReader, compiled: CompiledSpec, per_pixel: list[OutputTask]) -> None:
    """No layer of ``model:`` that moves pixels (a ``geometric`` kind of the registry: a random
    flip, rotation, zoom, translation or crop) lies on the path to an output with per-pixel
    targets (``per_pixel``). Inside the model it moves the image only: the mask the output is
    scored against stays where it was, and training runs on misaligned labels without a word.
    The ``augmentation:`` section moves masks with their images (joint augmentation), so that
    is where such a layer belongs. A moving layer that only feeds other outputs (the classifier
    head of a multi-output model) is fine: a class label does not move."""
    from cnnspec.analysis.calls import call_notes
    from cnnspec.layers import REGISTRY

    if not per_pixel:
        return
    ir = compiled.ir
    feeds = {output.name: ancestors(ir.nodes, [output.name]) for output in per_pixel}
    several = len(ir.outputs) > 1
    for node in ir.nodes:  # topological order: the errors come in the spec's order
        kind = REGISTRY.get(node.kind)
        fed = [output for output in per_pixel if node.name in feeds[output.name]]
        if not fed or kind is None or not kind.geometric:
            continue
        tasks = " or ".join(dict.fromkeys(output.task for output in fed))
        names = f" ({', '.join(output.name for output in fed)})" if several else ""
        reader.diags.error(
            f"expected no {node.kind} in the model on the path to a {tasks} output{names}; it moves the "
            "images but not their masks, so the model would train on misaligned labels",
            node.loc,
            node.path or "model",
            code="training",
            hint="move it into the augmentation: section, which moves the masks with the images",
            notes=call_notes(compiled, node.name),  # the block call or backbone that made it
        )


def needs_task_path(tasks: tuple[OutputTask, ...]) -> bool:
    """Anything but one classification output goes through the task-aware training path."""
    return len(tasks) != 1 or tasks[0].task != "classification"


def saved_loss(config: dict[str, Any]) -> Any:
    """The loss a model archive's ``config.json`` records (its ``compile_config``): one loss for
    every output, a dict by output name (:func:`losses_by_name`), a list in output order, or
    ``None`` for a model saved uncompiled."""
    compile_config = config.get("compile_config")
    return compile_config.get("loss") if isinstance(compile_config, dict) else None


def losses_by_name(loss: Any) -> bool:
    """Whether a :func:`saved_loss` is a dict by output name, not one serialized Keras loss
    (``{"class_name": …, "config": …}``)."""
    return isinstance(loss, dict) and not {"class_name", "config"} & set(loss)


def keras_loss_name(value: Any) -> str | None:
    """The Keras name of a saved ``compile_config`` loss entry, lower case (``None``: no loss).

    A string is the name given to ``compile`` (``"msle"``). A serialized loss is read by what
    it is before what it is called: a Keras loss class by its class (the ``config.name`` of
    ``MeanSquaredError(name="my_mse")`` is the user's), a loss function
    (``{"class_name": "function", "config": "mean_squared_error"}``) by its name, which is
    its string ``config``; any other object by its ``config.name``, else its class name. A
    string that is a Keras loss class's name (``compile(loss="SparseCategoricalCrossentropy")``,
    which ``keras.losses.get`` accepts and Keras saves as given) is that class."""
    if isinstance(value, str) and value in KERAS_LOSS_CLASSES:
        value = KERAS_LOSS_CLASSES[value]
    elif isinstance(value, dict):
        class_name, config = value.get("class_name"), value.get("config")
        if isinstance(class_name, str) and class_name in KERAS_LOSS_CLASSES:
            value = KERAS_LOSS_CLASSES[class_name]
        elif isinstance(config, str):  # a function: its name is the whole config
            value = config
        elif isinstance(config, dict) and isinstance(config.get("name"), str):
            value = config["name"]
        else:
            value = class_name
    return value.lower() if isinstance(value, str) else None


def keras_loss_task(value: Any) -> str | None:
    """What a saved ``compile_config`` loss entry says of its output's task: ``regression``
    (a loss of :data:`KERAS_REGRESSION_LOSSES`), ``classification`` (one of
    :data:`KERAS_CLASSIFICATION_LOSSES`: a classifier, a multi-label or a segmentation output,
    which shape and activation tell apart), ``unknown`` (a loss of neither, a custom one: no
    task may be guessed from it), or ``None`` where no loss is recorded."""
    name = keras_loss_name(value)
    if name is None:
        return None if value is None else "unknown"  # (an entry no loss reads: not guessed)
    if name in KERAS_REGRESSION_LOSSES:
        return "regression"
    return "classification" if name in KERAS_CLASSIFICATION_LOSSES else "unknown"


def keras_regression_loss(value: Any) -> str | None:
    """cnnspec's name of a regression loss from a saved ``compile_config`` loss entry (a
    string, or a serialized Keras loss: :func:`keras_loss_name`), else ``None``."""
    name = keras_loss_name(value)
    return KERAS_REGRESSION_LOSSES.get(name) if name is not None else None


#: The classification losses a model file may record that cnnspec builds as Keras does (a
#: stand-in spec's ``training.loss``: evaluate's loss is then the one the model trained on),
#: with the settings each takes from the saved loss object. ``from_logits`` is not taken: the
#: stand-in reads logits or probabilities from the output's activation, as a spec's loss does.
REBUILT_LOSS_SETTINGS: dict[str, tuple[str, ...]] = {
    "sparse_categorical_crossentropy": (),
    "categorical_crossentropy": ("label_smoothing",),
    "binary_crossentropy": ("label_smoothing",),
    "bce": ("label_smoothing",),
    "categorical_focal_crossentropy": ("label_smoothing", "gamma", "alpha"),
    "binary_focal_crossentropy": ("label_smoothing", "gamma", "alpha", "apply_class_balancing"),
}
#: Saved settings of a Keras loss that change what it computes, and the values that leave it
#: as cnnspec builds it (a loss summed over the batch, over another axis, or that ignores a
#: class is another figure than cnnspec's: it is not rebuilt).
_NEUTRAL_LOSS_SETTINGS: dict[str, tuple[Any, ...]] = {
    "reduction": (None, "sum_over_batch_size", "auto"),
    "axis": (None, -1),
    "ignore_class": (None,),
}


def keras_classification_loss(value: Any) -> str | dict[str, dict[str, Any]] | None:
    """cnnspec's ``training.loss`` for a saved ``compile_config`` classification loss entry
    that cnnspec builds as Keras does (:data:`REBUILT_LOSS_SETTINGS`): its name, or
    ``{name: settings}`` with the settings the saved object holds (``CategoricalFocalCrossentropy
    (gamma=3)`` gives ``{"categorical_focal_crossentropy": {"gamma": 3.0, …}}``). ``None`` for
    any other entry: no loss, a regression loss, one cnnspec has no equal of (``hinge``,
    ``kl_divergence``, a custom one), or a setting cnnspec's loss does not have."""
    name = keras_loss_name(value)
    if name not in REBUILT_LOSS_SETTINGS:
        return None
    config = value.get("config") if isinstance(value, dict) else None
    config = config if isinstance(config, dict) else {}
    for key, neutral in _NEUTRAL_LOSS_SETTINGS.items():
        if config.get(key) not in neutral:
            return None
    name = "binary_crossentropy" if name == "bce" else name
    settings: dict[str, Any] = {}
    for key in REBUILT_LOSS_SETTINGS[name]:
        setting = config.get(key)
        if key == "apply_class_balancing" and isinstance(setting, bool):
            settings[key] = setting
        elif isinstance(setting, int | float) and not isinstance(setting, bool):
            settings[key] = float(setting)  # (the spec's bounds are checked when it compiles)
    return {name: settings} if settings else name
