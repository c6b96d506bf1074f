"""The training program of a model that is not a single classifier (``templates/train_task.py.j2``).

Multilabel, regression, segmentation and multi-output models train in the generated script as
``cnnspec train`` trains them (:mod:`cnnspec.training.task_metrics`): the same Keras loss,
loss weights and metrics for each output, the same target preparation (one-hot masks for Dice,
float multi-hot rows, ``(n, units)`` values), masks moved with their images by the geometric
augmentation, and ``metrics.json`` with the same ``test_*`` keys (one set per output under
``outputs`` for several outputs). The data are the ``shapes`` generator (every target), an
``.npz`` file, or image files with their targets (a masks folder, a labels or values table),
read by ``templates/_task_files.j2`` as :mod:`cnnspec.training.targets` reads them; other
sources are a located error.
"""

from __future__ import annotations

import ast
from typing import TYPE_CHECKING, Any

from cnnspec.analysis.datafit import MSLE_HINT, mask_names_said
from cnnspec.analysis.settings_data import default_target
from cnnspec.analysis.tasks import KERAS_LOSS_OF
from cnnspec.backends.codegen_values import help_string, py_literal, py_string, relative_note, unparse
from cnnspec.errors import SpecError
from cnnspec.layers import REGISTRY

if TYPE_CHECKING:
    from cnnspec.analysis.compiled import CompiledSpec
    from cnnspec.analysis.settings_types import MetricConfig, TrainConfig
    from cnnspec.analysis.tasks import OutputTask
    from cnnspec.backends.codegen_vars import VarExpressions
    from cnnspec.errors import SpecPath

#: The image-file sources of the task script and what their ``load_data`` reads.
FILE_SOURCES = {
    "image_masks": "Images of a folder with a mask each (the same file name) in a second folder",
    "image_labels": "Images named by a table of labels (multi-hot rows)",
    "image_values": "Images named by a table of values",
}
#: The one target kind each image-file source gives (:mod:`cnnspec.training.targets`).
FILE_TARGETS = {"image_masks": "mask", "image_labels": "multilabel", "image_values": "regression"}
#: The sources the task script reads (the others: train with ``cnnspec train``).
TASK_SOURCES = ("shapes", "npz", *FILE_SOURCES)


def _name(*parts: str) -> ast.expr:
    node: ast.expr = ast.Name(parts[0], ast.Load())
    for part in parts[1:]:
        node = ast.Attribute(node, part, ast.Load())
    return node


def _call(cls: str, group: str = "metrics", **kwargs: Any) -> str:
    """``keras.<group>.<cls>(…)``: the keywords' values as literals, or as they are (an
    :mod:`ast` expression: a setting written as the spec's expression of vars)."""
    from cnnspec.backends.codegen_values import literal_node

    keywords = [ast.keyword(k, v if isinstance(v, ast.expr) else literal_node(v)) for k, v in kwargs.items()]
    return unparse(ast.Call(_name("keras", group, cls), [], keywords))


def loss_source(out: OutputTask, exprs: VarExpressions | None = None, base: SpecPath | None = None) -> str:
    """The Keras loss of one output (as :func:`cnnspec.training.task_metrics.loss`); its numbers
    written as the spec's expressions of vars where ``exprs`` finds them under ``base``'s
    ``loss`` (the output's settings: ``training.outputs.NAME``, or ``training``)."""
    from cnnspec.backends.codegen_script import loss_settings

    spec = out.loss
    written = loss_settings(exprs if base is not None else None, (*(base or ()), "loss"))
    focal = spec.keras_focal()
    if focal is not None:
        return _call(focal[0], "losses", **written(focal[1]))
    if spec.name == "binary_crossentropy":
        return _call(
            "BinaryCrossentropy",
            "losses",
            from_logits=spec.keras_from_logits,
            **written({"label_smoothing": spec.label_smoothing}),
        )
    if spec.name == "categorical_crossentropy" or (
        spec.name == "sparse_categorical_crossentropy" and out.one_hot
    ):
        return _call(
            "CategoricalCrossentropy",
            "losses",
            from_logits=spec.keras_from_logits,
            **written({"label_smoothing": spec.label_smoothing}),
        )
    if spec.name == "sparse_categorical_crossentropy":
        return _call("SparseCategoricalCrossentropy", "losses", from_logits=spec.keras_from_logits)
    if spec.name == "dice":
        return _call("Dice", "losses")
    if spec.name == "mae":
        return _call("MeanAbsoluteError", "losses")
    if spec.name == "huber":
        return _call("Huber", "losses", **written({"delta": float(spec.delta)}))
    if spec.name in KERAS_LOSS_OF:
        return _call(KERAS_LOSS_OF[spec.name], "losses")
    return _call("MeanSquaredError", "losses")


def output_bases(spec: CompiledSpec, config: TrainConfig) -> dict[str, SpecPath]:
    """Where each output's settings are written, by output name: the key of
    ``training.outputs`` that names it (its id, or another name of it), else ``training`` for
    the one output of a model (as :func:`cnnspec.analysis.tasks.output_tasks` reads them); an
    output of several that none names has none."""
    from cnnspec.analysis.output_ids import output_ids

    training = spec.doc.data.get("training")
    stated = training.get("outputs") if isinstance(training, dict) else None
    ids = output_ids(spec)
    bases: dict[str, SpecPath] = {}
    for key in stated if isinstance(stated, dict) else ():
        name = ids.get(key) if isinstance(key, str) else None
        if name is not None and name not in bases:
            bases[name] = ("training", "outputs", key)
    if len(config.tasks) == 1:
        bases.setdefault(config.tasks[0].name, ("training",))
    return bases


def loss_weights_source(
    tasks: list[OutputTask], exprs: VarExpressions | None, bases: dict[str, SpecPath]
) -> str:
    """The outputs' loss weights, ``{name: weight}``: each the spec's expression of vars where
    it writes one (``training.outputs.NAME.loss_weight``), else its value."""
    from cnnspec.backends.codegen_values import literal_node

    keys: list[ast.expr | None] = []
    values: list[ast.expr] = []
    for out in tasks:
        weight = float(out.loss_weight)
        base = bases.get(out.name)
        node = exprs.node((*base, "loss_weight"), weight) if exprs is not None and base is not None else None
        keys.append(literal_node(out.name))
        values.append(node or literal_node(weight))
    return unparse(ast.Dict(keys, values))


def threshold_node(out: OutputTask, exprs: VarExpressions | None, base: SpecPath | None) -> ast.expr | None:
    """A multilabel output's ``threshold`` as the spec's expression of vars where it writes one
    (``training.outputs.NAME.threshold``, or ``training.threshold``), else ``None``."""
    if exprs is None or base is None or out.task != "multilabel":
        return None
    return exprs.node((*base, "threshold"), out.threshold)


def metric_source(out: OutputTask, item: MetricConfig, written: ast.expr | None = None) -> str:
    """One Keras metric of one output (as :func:`cnnspec.training.task_metrics.metric`);
    ``written``: its threshold as an expression of vars (:func:`threshold_node`), which a
    metric reads where the output's values are probabilities (logits are decided at 0)."""
    threshold: Any = out.decision_threshold
    if written is not None and not out.loss.from_logits:
        threshold = written
    name = item.log_name
    if out.task == "classification":
        from cnnspec.backends.codegen_script import metric_nodes

        # all of the output's metrics decide one-hot targets (precision, recall, auc), and so
        # each metric's class (CategoricalAccuracy then), as in cnnspec train
        return unparse(metric_nodes(out.classifier_config())[out.metrics.index(item)])
    if out.task == "multilabel":
        if item.name == "accuracy":
            return _call("BinaryAccuracy", name=name, threshold=threshold)
        if item.name == "f1":
            return _call("F1Score", average="macro", threshold=written or out.threshold, name=name)
        if item.name in ("precision", "recall"):
            return _call(item.name.capitalize(), name=name, thresholds=threshold)
        return _call(
            "AUC", name=name, multi_label=True, num_labels=out.units, from_logits=out.loss.from_logits
        )
    if out.task == "regression":
        table = {"mae": "MeanAbsoluteError", "mse": "MeanSquaredError", "rmse": "RootMeanSquaredError"}
        if item.name in table:
            return _call(table[item.name], name=name)
        return f"nan_once_diverged({_call('R2Score', name=name)})"  # (the script defines it)
    if item.name == "accuracy":  # segmentation: pixel accuracy
        if out.binary:
            return _call("BinaryAccuracy", name=name, threshold=threshold)
        return _call("CategoricalAccuracy" if out.one_hot else "SparseCategoricalAccuracy", name=name)
    if out.binary:
        return _call("BinaryIoU", target_class_ids=[0, 1], threshold=threshold, name=name)
    return _call(
        "MeanIoU", num_classes=out.classes, sparse_y_true=not out.one_hot, sparse_y_pred=False, name=name
    )


def mixed_metric_source(
    config: TrainConfig, out: OutputTask, item: MetricConfig, written: ast.expr | None = None
) -> str:
    """:func:`metric_source`, wrapped in the script's ``on_rounded_labels`` where a mixed
    multilabel output's metric scores the rounded label (a classifier's: its own table's)."""
    source = metric_source(out, item, written)
    if config.mixing is None or out.task != "multilabel":
        return source
    from cnnspec.backends.codegen_script import on_rounded_labels

    return unparse(on_rounded_labels(ast.parse(source, mode="eval").body))


def prepare_source(out: OutputTask, labels: str) -> str:
    """One output's batch targets as its loss expects them (as
    :func:`cnnspec.training.task_metrics.prepare_target`)."""
    if out.task == "classification":
        if out.binary:
            return f"tf.cast(tf.reshape({labels}, (-1, 1)), tf.float32)"
        return f"tf.one_hot({labels}, {out.classes})" if out.one_hot else labels
    if out.task == "multilabel":
        return f"tf.cast({labels}, tf.float32)"
    if out.task == "regression":
        return f"tf.reshape(tf.cast({labels}, tf.float32), (-1, {out.units}))"
    if out.binary:  # a 1-channel sigmoid mask
        return f"tf.cast({labels}[..., None], tf.float32)"
    if out.one_hot:
        return f"tf.one_hot(tf.cast({labels}, tf.int32), {out.classes})"
    return f"tf.cast({labels}, tf.int32)"


def summary_source(out: OutputTask, written: ast.expr | None = None) -> str:
    """The call that computes one output's ``metrics.json`` entries from ``y_true``,
    ``outputs`` and ``names`` (``written``: a multilabel output's threshold as an expression of
    vars, :func:`threshold_node`)."""
    if out.task == "multilabel":
        threshold = py_literal(float(out.decision_threshold))
        if written is not None and not out.loss.from_logits:
            threshold = unparse(written)
        # the output's name when it lists Keras' auc, whose labels without both positives and
        # negatives it notes (cnnspec.training.task_metrics.auc_notes)
        listed = any(m.name == "auc" for m in out.metrics)
        auc_of = f", {py_string(out.name)}" if listed else ""
        return f"multilabel_summary(y_true, outputs, names, {threshold}{auc_of})"
    if out.task == "regression":
        return "regression_summary(y_true, outputs, names)"
    if out.task == "segmentation":
        threshold = py_literal(float(out.decision_threshold))
        return f"segmentation_summary(y_true, outputs, names, {out.classes}, {threshold})"
    threshold = py_literal(0.0 if out.loss.from_logits else 0.5)
    return f"classification_summary(y_true, outputs, names, {out.classes}, {threshold})"


def check_supported(spec: CompiledSpec, config: TrainConfig) -> None:
    """A located error for a source the task script does not read (rather than a script that
    would silently train differently from ``cnnspec train``)."""
    data = config.data
    if data.kind not in TASK_SOURCES:
        _refuse_source(
            spec,
            f"expected a shapes, npz or image-file source for the training script of a "
            f"{_describe(config)}; a {data.kind} source is not supported yet",
            "train it with `cnnspec train`; generate the model alone (without --script)",
        )
    given = FILE_TARGETS.get(data.kind)
    wanted = [out.target for out in config.tasks]
    if given is not None and wanted != [given]:
        _refuse_source(
            spec,
            f"expected one output that takes {given} targets from a {data.kind} source (one {given} "
            f"target per image); the outputs need {', '.join(wanted)}",
            "give an .npz with y_train_NAME/y_test_NAME per output, or the source of the output's task",
        )


def _refuse_source(spec: CompiledSpec, message: str, hint: str) -> None:
    """Raise the located error of a data source the task script can't read."""
    raise SpecError.single(
        message,
        spec.doc.loc(("data", "source")) or spec.doc.key_loc(("data",)),
        "data.source",
        code="codegen-script",
        hint=hint,
    )


def _describe(config: TrainConfig) -> str:
    if len(config.tasks) > 1:
        return "model with several outputs"
    return f"{config.tasks[0].task} model"


def task_context(
    spec: CompiledSpec, config: TrainConfig, exprs: VarExpressions | None = None
) -> dict[str, Any]:
    """The template values that differ from the classifier's (``outputs``, ``several``,
    ``task_kinds``, the mask outputs and the shapes targets); the outputs' loss settings and
    weights written as the spec's expressions of vars where ``exprs`` finds them."""
    from cnnspec.analysis.datafit import two_classes_hint, two_labelled_hint

    tasks = list(config.tasks)
    several = len(tasks) > 1
    bases = output_bases(spec, config)
    outputs = []
    for out in tasks:
        labels = f"labels[{py_string(out.name)}]" if several else "labels"
        threshold = threshold_node(out, exprs, bases.get(out.name))
        outputs.append(
            {
                "name_literal": py_string(out.name),
                "loss": loss_source(out, exprs, bases.get(out.name)),
                "metrics": [mixed_metric_source(config, out, item, threshold) for item in out.metrics],
                "prepare": prepare_source(out, labels),
                "summary": summary_source(out, threshold),
            }
        )
    masks = [out.name for out in tasks if out.task == "segmentation"]
    mask_outputs: list[str] | None = (masks if several else []) if masks else None
    data = config.data
    default = default_target(spec)
    shapes_targets: dict[str, str] = {}
    if data.kind == "shapes":
        target = data.target
        shapes_targets = dict(target) if isinstance(target, dict) else {tasks[0].name: str(target)}
    what = ", ".join(f"{name}: {target}" for name, target in shapes_targets.items())
    prepare_doc = "; ".join(
        f"{out.name}: one-hot masks" for out in tasks if out.task == "segmentation" and out.one_hot
    )
    return {
        "outputs": outputs,
        "outputs_literal": py_literal({out.name: out.task for out in tasks}),
        "several": several,
        "task_kinds": sorted({out.task for out in tasks}),
        "uses_r2": any(
            out.task == "regression" and item.name == "r2" for out in tasks for item in out.metrics
        ),
        "loss_weights": loss_weights_source(tasks, exprs, bases),
        "mask_outputs": mask_outputs,
        "class_count": py_literal({out.name: out.classes for out in tasks if out.task == "classification"}),
        # a classifier output of one class in an npz is refused, as train refuses it
        "one_class_hints": py_literal(
            {out.name: two_classes_hint(config, out.name) for out in tasks if out.task == "classification"}
        ),
        "one_labelled_hints": py_literal(
            # (reached past the check of 2 classes at least: the data has 2 or more)
            {
                out.name: two_labelled_hint(config, out.name, classes=2)
                for out in tasks
                if out.task == "classification"
            }
        ),
        # regression outputs trained with msle: negative targets are refused, as train refuses them
        "msle_outputs": [out.name for out in tasks if out.task == "regression" and out.loss.name == "msle"],
        "msle_hint": py_literal(MSLE_HINT),
        "mask_class_count": py_literal(
            {out.name: out.classes for out in tasks if out.task == "segmentation"}
        ),
        "mask_channels": py_literal({out.name: out.units for out in tasks if out.task == "segmentation"}),
        # where each segmentation output's mask class names come from, as train's messages say it
        # (the script's load_data tells an npz file's class_names_<output> from its class_names)
        "mask_names_said_by_output": py_literal(
            {out.name: mask_names_said(data.kind) for out in tasks if out.task == "segmentation"}
        ),
        "mask_size": py_literal(
            {out.name: tuple(int(d) for d in out.shape[:2]) for out in tasks if out.task == "segmentation"}
        ),
        # one output of a unit per label or value, which train checks the targets' width against
        "vector_output": not several and len(tasks[0].shape) == 1,
        "task_units": py_literal(
            {out.name: out.units for out in tasks if out.task in ("multilabel", "regression")}
        ),
        # an npz file of one target for several outputs: what train reads it as (data.py's _npz_kind)
        "npz_target": py_literal(data.target if isinstance(data.target, str) else None),
        "default_target": py_literal(default),
        "mask_outputs_literal": py_literal(tuple(mask_outputs or ())),
        "geometric": py_literal(tuple(bool(REGISTRY[node.kind].geometric) for node in spec.ir.augmentation)),
        "shapes_targets": py_literal(shapes_targets),
        "shapes_what": f"the targets {what}" if several else f"the {what.split(': ')[-1]} target",
        "prepare_doc": prepare_doc,
    }


def files_context(config: TrainConfig, targets: tuple[str, bool] | None) -> dict[str, Any]:
    """The template values of the image-file sources (``templates/_task_files.j2``):
    ``targets`` is the masks folder or table as the script names it, and whether that path is
    relative to the script's folder; ``None`` for the other sources."""
    data = config.data
    if targets is None or data.kind not in FILE_SOURCES:
        return {"targets_path": "None", "data_args": "path" if data.path is not None else ""}
    classes = data.options.get("classes")
    if isinstance(classes, dict):
        doc = "class name → mask colour [r, g, b], in class-index order"
        literal = py_literal({str(k): tuple(int(c) for c in v) for k, v in classes.items()})
    elif classes:
        doc = "the class names, in class-index order"
        literal = py_literal([str(c) for c in classes])
    else:
        doc = "none given: the classes are numbered 0 to the largest index in the masks"
        literal = "None"
    what = {"image_masks": "masks folder", "image_labels": "labels table", "image_values": "values table"}
    assert data.labels_path is not None and data.image_size is not None
    path, relative_to_script = targets
    return {
        "targets_path": py_string(path),
        "targets_help": help_string(
            f"the {what[data.kind]} (default: {path}{relative_note(relative_to_script)})"
        ),
        "data_args": "path, targets",
        "files_doc": FILE_SOURCES[data.kind],
        "mask_classes": literal,
        "mask_classes_doc": doc,
        "colour_masks": isinstance(classes, dict),
        "channels_read": 1 if data.color_mode == "grayscale" else 3,  # (the modes data.source allows)
    }
