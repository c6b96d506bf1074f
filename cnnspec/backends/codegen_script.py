"""The training program around the generated model (``cnnspec codegen --script``).

The ``data``, ``training`` and ``runtime`` sections are read with
:func:`cnnspec.analysis.settings.training_config` — the same defaults and located checks as
``cnnspec train`` — and turned into values for ``templates/train.py.j2``: Keras constructor
calls built as :mod:`ast` nodes and printed by :func:`~cnnspec.backends.codegen_values.unparse`,
literals by :func:`~cnnspec.backends.codegen_values.py_literal`. The program itself is written
independently of :mod:`cnnspec.training`; it needs TensorFlow, NumPy, scikit-learn and
matplotlib only.
"""

from __future__ import annotations

import ast
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cnnspec.analysis.classes import listed
from cnnspec.analysis.datafit import mask_names_said
from cnnspec.backends.codegen_values import (
    comment_text,
    description_string,
    help_string,
    literal_node,
    py_literal,
    py_string,
    relative_note,
    unparse,
)
from cnnspec.backends.codegen_vars import VarExpressions
from cnnspec.backends.keras_builder import adapted_layers
from cnnspec.errors import SpecError
from cnnspec.spec.optimizers import OPTIMIZER_KINDS, keras_settings
from cnnspec.spec.sections import RATE_SCALE

if TYPE_CHECKING:
    from collections.abc import Callable

    from cnnspec.analysis.compiled import CompiledSpec
    from cnnspec.analysis.settings_types import CallbackConfig, Mixer, OptimizerConfig, Schedule, TrainConfig
    from cnnspec.errors import SpecPath

CALLBACK_CLASSES = {
    "early_stopping": "EarlyStopping",
    "reduce_lr_on_plateau": "ReduceLROnPlateau",
    "model_checkpoint": "ModelCheckpoint",
    "tensorboard": "TensorBoard",
    "csv_logger": "CSVLogger",
    "terminate_on_nan": "TerminateOnNaN",
}


def _name(*parts: str) -> ast.expr:
    node: ast.expr = ast.Name(parts[0], ast.Load())
    for part in parts[1:]:
        node = ast.Attribute(node, part, ast.Load())
    return node


def _call(func: ast.expr, args: list[ast.expr] | None = None, **kwargs: Any) -> ast.Call:
    keywords = [ast.keyword(k, v if isinstance(v, ast.expr) else literal_node(v)) for k, v in kwargs.items()]
    return ast.Call(func, args or [], keywords)


def _out_path(*parts: str) -> ast.expr:
    """``str(out / "a" / "b")``."""
    node: ast.expr = ast.Name("out", ast.Load())
    for part in parts:
        node = ast.BinOp(node, ast.Div(), ast.Constant(part))
    return ast.Call(ast.Name("str", ast.Load()), [node], [])


def learning_rate_node(
    value: float | Schedule, exprs: VarExpressions | None = None, path: SpecPath | None = None
) -> tuple[ast.expr, bool]:
    """The learning rate (a float or a schedule built from ``total_steps``) and True when the
    template's ``WarmUp`` schedule class is needed. With ``exprs``, a float written at ``path``
    and a schedule's numbers (at its own path) are written as the spec's expressions of vars
    where it writes them; a schedule's ``warmup_steps`` is not: it decides whether the script
    warms up at all (the ``WarmUp`` class, the decay's steps after the warm-up)."""
    from cnnspec.analysis.settings_types import Schedule

    if not isinstance(value, Schedule):
        written = exprs.node(path, float(value)) if exprs is not None and path is not None else None
        return written or ast.Constant(float(value)), False
    schedules = ("keras", "optimizers", "schedules")
    settings = dict(value.settings)
    warmup = int(value.warmup_steps)

    def number(key: str, resolved: Any) -> ast.expr:
        """A schedule's setting: its expression of vars where the spec writes one, else its value."""
        written = (
            exprs.node((*value.at, value.kind, key), resolved) if exprs is not None and value.at else None
        )
        return written or literal_node(resolved)

    if value.kind == "cosine_decay":
        peak = number("initial_learning_rate", float(settings["initial_learning_rate"]))
        decay = settings.get("decay_steps")
        steps: ast.expr = (
            number("decay_steps", int(decay))
            if decay
            else _call(
                ast.Name("max", ast.Load()),
                [
                    ast.BinOp(ast.Name("total_steps", ast.Load()), ast.Sub(), ast.Constant(warmup)),
                    ast.Constant(1),
                ],
            )
            if warmup
            else _call(ast.Name("max", ast.Load()), [ast.Name("total_steps", ast.Load()), ast.Constant(1)])
        )
        alpha = number("alpha", float(settings.get("alpha", 0.0)))
        if warmup:
            return (
                _call(
                    _name(*schedules, "CosineDecay"),
                    [ast.Constant(0.0), steps],
                    alpha=alpha,
                    warmup_target=peak,
                    warmup_steps=warmup,
                ),
                False,
            )
        return _call(_name(*schedules, "CosineDecay"), [peak, steps], alpha=alpha), False
    if value.kind == "exponential_decay":
        inner = _call(
            _name(*schedules, "ExponentialDecay"),
            [
                number("initial_learning_rate", float(settings["initial_learning_rate"])),
                number("decay_steps", int(settings["decay_steps"])),
                number("decay_rate", float(settings["decay_rate"])),
            ],
            staircase=bool(settings.get("staircase", False)),
        )
    else:
        inner = _call(
            _name(*schedules, "PiecewiseConstantDecay"),
            [
                # (the spec cannot write these lists, or their items, as expressions of vars)
                literal_node([int(b) for b in settings["boundaries"]]),
                literal_node([float(v) for v in settings["values"]]),
            ],
        )
    if warmup:
        return _call(ast.Name("WarmUp", ast.Load()), [inner, ast.Constant(warmup)]), True
    return inner, False


def optimizer_node(
    config: TrainConfig,
    spec: OptimizerConfig | None = None,
    exprs: VarExpressions | None = None,
    rate_path: SpecPath | None = None,
    settings_path: SpecPath | None = None,
) -> tuple[ast.expr, bool]:
    """The optimizer's constructor call (``spec``: a phase's, whose learning rate is written at
    ``rate_path`` and its other settings under ``settings_path``; default ``training.optimizer``)
    and whether it uses the warm-up schedule class. Its learning rate (:func:`learning_rate_node`)
    and its other keywords (``momentum``, ``beta_1``, ``weight_decay``, ``nesterov``…) are written
    as the spec's expressions of vars where ``exprs`` finds them, but ``use_ema``: it decides
    whether the script averages the weights around its callbacks (``AverageIn``/``AverageOut``)."""
    if spec is None:
        rate_path = ("training", "optimizer", config.optimizer.name, "learning_rate")
        settings_path = ("training", "optimizer", config.optimizer.name)
    spec = spec or config.optimizer
    rate, warmup = learning_rate_node(spec.learning_rate, exprs, rate_path)
    kwargs: dict[str, Any] = {"learning_rate": rate}
    for key, value in keras_settings(spec.name, spec.settings).items():
        live = exprs is not None and settings_path is not None and key not in CODE_SETTINGS
        node = exprs.node((*settings_path, key), value) if live and exprs and settings_path else None
        kwargs[key] = value if node is None else node
    return _call(_name("keras", "optimizers", OPTIMIZER_KINDS[spec.name].keras_class), **kwargs), warmup


#: The optimizer's and callbacks' settings that decide which code a script has, not only a number
#: passed to Keras: written as their values (``use_ema``: the averaging callbacks;
#: ``save_best_only``: which checkpoint the script evaluates and saves; ``monitor`` and ``mode``:
#: checked, and the direction chosen, against the values the run logs when the code is generated).
CODE_SETTINGS = ("use_ema", "save_best_only", "monitor", "mode")


def phase_optimizer_paths(spec: CompiledSpec, config: TrainConfig) -> list[SpecPath]:
    """Where the optimizer of each of ``config.phases`` is written (``…optimizer.<name>``, its
    settings below): the last phase up to it that writes one, else ``training.optimizer``'s (as
    the settings reader carries it from phase to phase)."""
    from cnnspec.analysis.settings_training import name_and_settings

    training = spec.doc.data.get("training")
    raw = training.get("phases") if isinstance(training, dict) and config.phased else None
    items = raw if isinstance(raw, list) else []
    paths: list[SpecPath] = []
    current: SpecPath = ("training", "optimizer", config.optimizer.name)
    for index in range(len(config.phases)):
        item = items[index] if index < len(items) and isinstance(items[index], dict) else {}
        if "optimizer" in item:
            current = ("training", "phases", index, "optimizer", name_and_settings(item["optimizer"])[0])
        paths.append(current)
    return paths


def phase_rate_paths(spec: CompiledSpec, config: TrainConfig) -> list[SpecPath]:
    """Where the learning rate of each of ``config.phases`` is written: the phase's own
    ``learning_rate`` or its optimizer's, else the last earlier phase's that writes one, else
    ``training.optimizer``'s (as the settings reader carries them from phase to phase)."""
    from cnnspec.analysis.settings_training import name_and_settings

    training = spec.doc.data.get("training")
    raw = training.get("phases") if isinstance(training, dict) and config.phased else None
    items = raw if isinstance(raw, list) else []
    paths: list[SpecPath] = []
    current: SpecPath = ("training", "optimizer", config.optimizer.name, "learning_rate")
    for index in range(len(config.phases)):
        item = items[index] if index < len(items) and isinstance(items[index], dict) else {}
        where: SpecPath = ("training", "phases", index)
        if "learning_rate" in item:
            current = (*where, "learning_rate")
        elif "optimizer" in item:
            current = (*where, "optimizer", name_and_settings(item["optimizer"])[0], "learning_rate")
        paths.append(current)
    return paths


def loss_node(config: TrainConfig, exprs: VarExpressions | None = None) -> ast.expr:
    """The loss's constructor call; its numbers (``label_smoothing``, a focal loss's ``alpha``
    and ``gamma``) written as the spec's expressions of vars where ``exprs`` finds them
    (``training.loss.<name>.<setting>``: :func:`loss_settings`)."""
    spec = config.loss
    losses = ("keras", "losses")
    written = loss_settings(exprs, ("training", "loss"))
    focal = spec.keras_focal()
    if focal is not None:
        return _call(_name(*losses, focal[0]), **written(focal[1]))
    smoothing = written({"label_smoothing": spec.label_smoothing})
    if spec.name == "binary_crossentropy":
        return _call(_name(*losses, "BinaryCrossentropy"), from_logits=spec.keras_from_logits, **smoothing)
    if config.one_hot_labels:
        return _call(
            _name(*losses, "CategoricalCrossentropy"), from_logits=spec.keras_from_logits, **smoothing
        )
    return _call(_name(*losses, "SparseCategoricalCrossentropy"), from_logits=spec.keras_from_logits)


#: The numbers of a loss that the spec may write as expressions of vars, passed to Keras as they
#: are (``from_logits`` is not: the Keras loss may take another value than the one written).
LOSS_NUMBERS = ("label_smoothing", "delta", "alpha", "gamma")


def loss_settings(exprs: VarExpressions | None, path: SpecPath) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """A function that gives a loss's keywords (by name, their values) with those of
    :data:`LOSS_NUMBERS` that the spec writes as expressions of vars under the loss at ``path``
    (``training.loss`` or ``training.outputs.NAME.loss``: ``{<name>: {<setting>: "${…}"}}``)
    as those expressions; the others as they are."""
    data = exprs.data if exprs is not None else None
    for part in path:
        data = data.get(part) if isinstance(data, dict) else None
    name = next(iter(data)) if isinstance(data, dict) and len(data) == 1 else None

    def written(keywords: dict[str, Any]) -> dict[str, Any]:
        if exprs is None or not isinstance(name, str):
            return dict(keywords)
        out: dict[str, Any] = {}
        for key, value in keywords.items():
            node = exprs.node((*path, name, key), value) if key in LOSS_NUMBERS else None
            out[key] = value if node is None else node
        return out

    return written


def metric_nodes(config: TrainConfig) -> list[ast.expr]:
    m = ("keras", "metrics")
    logits, binary, one_hot = config.loss.from_logits, config.binary, config.one_hot_labels
    threshold = 0.0 if logits and binary else 0.5
    out: list[ast.expr] = []
    for item in config.metrics:
        if item.name == "accuracy":
            if binary:
                out.append(_call(_name(*m, "BinaryAccuracy"), name="accuracy", threshold=threshold))
            elif one_hot:
                out.append(_call(_name(*m, "CategoricalAccuracy"), name="accuracy"))
            else:
                out.append(_call(_name(*m, "SparseCategoricalAccuracy"), name="accuracy"))
        elif item.name == "top_k_accuracy":
            cls = "TopKCategoricalAccuracy" if one_hot else "SparseTopKCategoricalAccuracy"
            out.append(_call(_name(*m, cls), k=item.k, name=item.log_name))
        elif item.name in ("precision", "recall"):
            cls = "Precision" if item.name == "precision" else "Recall"
            out.append(_call(_name(*m, cls), name=item.name, thresholds=threshold))
        else:
            out.append(_call(_name(*m, "AUC"), name="auc", from_logits=logits, multi_label=False))
    return [on_rounded_labels(node) for node in out] if config.mixing is not None else out


#: cnnspec.training.mixing.ROUNDED_LABEL_METRICS: the metrics that score a mixed label rounded
ROUNDED_LABEL_METRICS = ("BinaryAccuracy", "Precision", "Recall", "AUC", "F1Score")


def on_rounded_labels(node: ast.expr) -> ast.expr:
    """``on_rounded_labels(node)`` (the script's, templates/_training_code.j2) where ``node``
    constructs one of :data:`ROUNDED_LABEL_METRICS`: under mixing it scores the mixed label
    rounded, as :func:`cnnspec.training.mixing.on_rounded_labels` has ``cnnspec train``'s."""
    func = node.func if isinstance(node, ast.Call) else None
    name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
    return _call(_name("on_rounded_labels"), [node]) if name in ROUNDED_LABEL_METRICS else node


def mixing_source(config: TrainConfig, seed_name: str = "SEED", exprs: VarExpressions | None = None) -> str:
    """The constructor of ``training.mixup``/``cutmix``'s Keras layer (``""``: no mixing), or
    with both on the script's ``switch_mixing`` of the two, seeded with the script's seed as
    ``cnnspec train`` seeds them with the run's (:func:`cnnspec.training.mixing.build_mixing`,
    float32 under mixed precision alike)."""
    mixing = config.mixing
    if mixing is None:
        return ""
    seed = ast.Name(seed_name, ast.Load())
    dtype: dict[str, Any] = {"dtype": "float32"} if config.mixed_precision else {}
    # (CutMix: the script's PixelCutMix, as cnnspec train builds its own; MixUp: Keras')
    layers = [
        _call(
            _name("PixelCutMix")
            if mixer.keras_class == "CutMix"
            else _name("keras", "layers", mixer.keras_class),
            **{mixer.setting: _mixing_amount(mixer, exprs), "seed": seed},
            **dtype,
        )
        for mixer in mixing.mixers
    ]
    if mixing.switch is None:
        return unparse(layers[0])
    return unparse(_call(_name("switch_mixing"), layers, cutmix_share=mixing.switch, seed=seed))


def _mixing_amount(mixer: Mixer, exprs: VarExpressions | None) -> Any:
    """A mixer's alpha or factor: the spec's expression of vars where it writes one
    (``training.mixup.alpha: "${f}"`` → ``F``), else its value."""
    if exprs is not None:
        for path in (("training", mixer.kind, mixer.setting), ("training", mixer.kind)):
            node = exprs.node(path, mixer.amount)
            if node is not None:
                return node
    return mixer.amount


def output_units_source(spec: CompiledSpec, units: int, exprs: VarExpressions) -> tuple[str, set[str]]:
    """The model's output units as the script writes them (the one-hot width, the class count
    it checks): the spec's expression of vars where the output layer is one of the model's
    own list that writes one (``units: "${n}"`` → ``N``, the model code's ``units=N``); else the
    number, with the vars whose other values change it (found by resolving the spec again):
    their constants would change the model and leave the number as it is."""
    node = spec.ir.node(spec.ir.outputs[0]) if len(spec.ir.outputs) == 1 else None
    path = _own_layer_path(spec, node.path) if node is not None else None
    if node is not None and path is not None:
        written = exprs.node((*path, node.kind, "units"), units)
        if written is not None:
            return unparse(written), set()
    from cnnspec.backends.codegen_probe import other_values, resolved_with

    changing: set[str] = set()
    allow_outside = "--allow-outside" in spec.options
    for name, value in exprs.values.items():
        if isinstance(value, bool) or not isinstance(value, int):
            continue  # (a width is a count: a float, text or list var gives none alone)
        for other in other_values(value):  # (the first value the spec takes tells)
            ir = resolved_with(spec, name, other, allow_outside)
            if ir is not None:
                if _output_units(ir) != units:
                    changing.add(name)
                break
    return str(units), changing


def _output_units(ir: Any) -> int | None:
    shapes = [node.shape for node in ir.nodes if node.name in ir.outputs]
    return shapes[0][-1] if len(shapes) == 1 and shapes[0] else None


def _own_layer_path(spec: CompiledSpec, path: str) -> tuple[str | int, ...] | None:
    """The spec path of a layer of the model's own list (``model[3].dense``) or of a block's
    list (``blocks.head.layers[2].dense``) whose parameters do not hide a var (there a
    ``${classes}`` reads the var); ``None`` for any other (a loop's, a backbone's)."""
    found = OWN_LAYER_PATH.fullmatch(path)
    if found is None:
        return None
    if found.group(1) is not None:
        return ("model", int(found.group(1)))
    block = (spec.doc.data.get("blocks") or {}).get(found.group(2))
    params = block.get("params") if isinstance(block, dict) else None
    variables = spec.doc.data.get("vars") or {}
    if not isinstance(block, dict) or (isinstance(params, dict) and set(params) & set(variables)):
        return None
    return ("blocks", found.group(2), "layers", int(found.group(3)))


#: The spec path of a layer of the model's own list or of a block's (:func:`_own_layer_path`).
OWN_LAYER_PATH = re.compile(
    r"(?:model\[(\d+)\]|blocks\.([A-Za-z_][A-Za-z0-9_]*)\.layers\[(\d+)\])\.[A-Za-z_][A-Za-z0-9_]*"
)

#: Callbacks that watch a monitored value in a direction (their ``mode``).
MONITORING = frozenset({"early_stopping", "reduce_lr_on_plateau", "model_checkpoint"})


def callback_node(
    callback: CallbackConfig, config: TrainConfig, exprs: VarExpressions | None = None
) -> ast.expr:
    """A callback's constructor call; its settings (``patience``, ``min_delta``, ``factor``,
    ``min_lr``…) written as the spec's expressions of vars where ``exprs`` finds them, but
    those of :data:`CODE_SETTINGS`."""
    cls = _name("keras", "callbacks", CALLBACK_CLASSES[callback.name])
    settings: dict[str, Any] = {}
    for key, value in callback.settings.items():
        node = exprs.node((*callback.path, key), value) if exprs and key not in CODE_SETTINGS else None
        settings[key] = value if node is None else node
    mode = config.monitor_mode(settings) if callback.name in MONITORING else "auto"
    if mode != "auto":
        # the direction `cnnspec train` uses (Keras' own auto cannot tell it for every name,
        # e.g. an output's `mask_mean_iou`), written out so the script reads it too
        settings["mode"] = mode
    if callback.name == "model_checkpoint":
        best = settings.pop("save_best_only", True)
        return _call(
            cls,
            [_out_path("checkpoints", "best.keras" if best else "last.keras")],
            save_best_only=bool(best),
            **settings,
        )
    if callback.name == "tensorboard":
        return _call(cls, log_dir=_out_path("tensorboard"), **settings)
    if callback.name == "csv_logger":  # (the template's own logger: cnnspec train's columns)
        return _call(_name("training_log"), [_out_path("training_log.csv")])
    return _call(cls, **settings)


def script_callbacks(config: TrainConfig, exprs: VarExpressions | None = None) -> list[str]:
    """The script's callbacks, as source: those of ``training.callbacks``; between an
    ``AverageIn`` and an ``AverageOut`` when an optimizer averages the weights (``use_ema``:
    they see the average at an epoch's end, as in cnnspec train, training/averaged.py). A
    streamed source's script stops, first, at a batch with a file that failed to decode (the
    template's ``StopOnBadReads``, as cnnspec train's ``BadReadCheck``)."""
    callbacks = [unparse(callback_node(c, config, exprs)) for c in config.callbacks]
    if config.averages_weights:
        callbacks = ["average_in", *callbacks, "average_out"]
    return ["StopOnBadReads()", *callbacks] if config.data.streamed else callbacks


def keeps_best_checkpoint(config: TrainConfig) -> bool:
    """Whether ``model_checkpoint`` keeps the best epoch (``save_best_only``, the default):
    ``cnnspec train`` then evaluates and saves that checkpoint's weights, and so does the script."""
    checkpoint = config.callback("model_checkpoint")
    return checkpoint is not None and bool(checkpoint.settings.get("save_best_only", True))


def _phase_epochs(exprs: VarExpressions, config: TrainConfig, index: int) -> ast.expr:
    """The epochs of phase ``index`` as PHASES writes them: the spec's expression of vars where
    it writes one (``training.phases[i].epochs``; ``training.epochs`` for the one phase of a
    spec that freezes without phases), else the number."""
    count = config.phases[index].epochs
    path: SpecPath = ("training", "phases", index, "epochs") if config.phased else ("training", "epochs")
    return exprs.node(path, count) or ast.Constant(count)


def _total_epochs(counts: list[ast.expr]) -> str:
    """``--epochs``' default for ``training.phases``: the sum of the phases' epochs, written as
    that sum of their expressions where one of them is not a number (an edited constant then
    changes both), else the number."""
    if all(isinstance(count, ast.Constant) for count in counts):
        return str(sum(count.value for count in counts if isinstance(count, ast.Constant)))
    total = counts[0]
    for count in counts[1:]:
        total = ast.BinOp(total, ast.Add(), count)
    return unparse(total)


def _rel_data_path(path: Path, output: Path | None) -> tuple[str, bool]:
    """A data path as the script names it: relative to the script's folder (when written to a
    file) or to the working directory; True when it is relative to the script."""
    if output is not None:
        base = output.resolve().parent
        try:
            return os.path.relpath(path.resolve(), base), True
        except ValueError:
            return str(path.resolve()), False
    try:
        return os.path.relpath(path.resolve(), Path.cwd()), False
    except ValueError:
        return str(path.resolve()), False


def _seed_context(spec: CompiledSpec, config: TrainConfig, exprs: VarExpressions) -> dict[str, Any]:
    """The script's ``SEED`` and the comment beside it: ``training.seed`` (the spec's
    expression of vars where it writes one: ``SEED`` then follows the vars' constants, which
    ``seed_after_constants`` says), else the split seed of the run folder the spec's
    ``weights:`` reads, where ``cnnspec train`` splits with it
    (:func:`cnnspec.analysis.weights_run.adopted_seed`: the same data source), so that the
    script and train split the same images; else ``None``."""
    from cnnspec.analysis.weights_run import adopted_seed, weights_run
    from cnnspec.spec.weights import spec_weights
    from cnnspec.spec.zoo import variants

    if config.seed is not None:
        seed = exprs.node(("training", "seed"), config.seed)
        return {
            "seed": py_literal(config.seed) if seed is None else unparse(seed),
            "seed_comment": "training.seed",
            "seed_after_constants": seed is not None,
        }
    variant = spec.doc.zoo_variant
    spec_dir = spec.path.parent if spec.path is not None else Path.cwd()
    whole = spec_weights(spec.doc, spec_dir, variant is not None and variant in variants(), on_disk=False)
    run = weights_run(whole, config.data, spec.path)
    seed = adopted_seed(config, run)
    if seed is None or run is None:
        return {
            "seed": "None",
            "seed_comment": "training.seed: none given, so every run differs",
            "seed_after_constants": False,
        }
    comment = (
        f"the split seed of {run.given}, trained on the same data (training.seed: none given): "
        "its test images are none those weights trained on, as in cnnspec train"
    )
    return {"seed": py_literal(seed), "seed_comment": comment_text(comment), "seed_after_constants": False}


def _weight_calls(spec: CompiledSpec, output: Path | None) -> list[str]:
    """The statements of the script's ``load_starting_weights``: each backbone's source, then
    the whole model's, as ``cnnspec train`` loads them (files by layer name, ``imagenet`` by
    position from keras.applications' model). A backbone's source goes into the backbone's own
    layers, listed by name as train lists them (a layer of the spec that shares the prefix,
    ``body_out`` beside the backbone ``body``, is not one of them). Paths are written as the
    data paths are (:func:`_rel_data_path`): relative to the script's folder when it is written
    to a file (``beside_script("../runs/a/model.keras")``, so that moving the project folder
    keeps them), else relative to the working directory. A statement of several lines carries
    the indentation of the function body."""
    from cnnspec.ir import Backbone, walk
    from cnnspec.spec.weights import IMAGENET, IMAGENET_VARIANCE_SCALE, spec_weights
    from cnnspec.spec.zoo import variants

    def call(scope: str, source: Any, keras_name: str, include_top: bool, shape: Any) -> str:
        strict = ", strict=True" if source.strict else ""
        chosen = ", layers=layers" if scope else ""
        chosen += ", loaded=loaded" if shared else ""
        if source.kind == IMAGENET:
            size = py_literal(tuple(shape or ()))
            reference = f"imagenet_model(keras.applications.{keras_name}, {include_top}, {size})"
            scale = IMAGENET_VARIANCE_SCALE.get(keras_name)
            folded = f", variance_scale={py_literal(scale)}" if scale is not None else ""
            return f"load_by_position(model, {py_string(scope)}, {reference}{strict}{chosen}{folded})"
        text, beside = _rel_data_path(source.file, output)
        where = f"beside_script({py_string(text)})" if beside else py_string(text)
        return f"load_by_name(model, {py_string(scope)}, {where}{strict}{chosen})"

    tree = spec.ir.tree
    backbones = [
        part
        for part in (walk(tree.body) if tree is not None else ())
        if isinstance(part, Backbone) and part.weights is not None
    ]
    variant = spec.doc.zoo_variant
    zoo = variant is not None and variant in variants()
    spec_dir = spec.path.parent if spec.path is not None else Path.cwd()
    whole = spec_weights(spec.doc, spec_dir, zoo, on_disk=False)
    # several sources share what they loaded: a tensor an earlier one loaded that the whole
    # model's lacks is not skipped (nor held against its strict), as in cnnspec train
    shared = len(backbones) + (whole is not None) > 1
    calls: list[str] = []
    if shared:
        calls.append("loaded = set()  # (layer, position) loaded so far")
    for part in backbones:
        shape = spec.ir.shape_of(part.entry)
        scope = part.prefix[:-1]
        statement = call(scope, part.weights, part.keras_name, part.include_top, shape)
        calls.append(f"{_layers_tuple(scope, part.names)}\n    {statement}")
    if whole is not None:
        from cnnspec.analysis.settings_reader import section_env

        keras_name = variants()[variant].keras_name if zoo and variant is not None else ""
        include_top = bool(section_env(spec).get("include_top", True))
        calls.append(call("", whole, keras_name, include_top, spec.ir.input_shape))
    return calls


def _layers_tuple(scope: str, names: tuple[str, ...]) -> str:
    """``layers = (...)``: the backbone's layer names, with a comment saying why they are listed;
    on one line when it fits, else one name per line (as ruff writes it). Lines after the first
    carry the indentation of ``load_starting_weights``' body."""
    from cnnspec.backends.python_emitter import INDENT, LINE_LENGTH

    comment = "# " + comment_text(
        f"the backbone `{scope}`'s layers: its source loads into these only, as in cnnspec train"
    )
    items = [py_string(name) for name in names]
    inline = f"layers = ({', '.join(items)}{',' if len(items) == 1 else ''})"
    if len(INDENT) + len(inline) > LINE_LENGTH:
        inline = "layers = (\n" + "".join(f"{INDENT * 2}{item},\n" for item in items) + f"{INDENT})"
    return f"{comment}\n{INDENT}{inline}"


def _located(error: SpecError, spec: CompiledSpec) -> SpecError:
    """The error with a location on every diagnostic (the section it is about, else the model)."""
    from dataclasses import replace

    fixed = []
    for diagnostic in error.diagnostics:
        if diagnostic.loc is None:
            section = (diagnostic.path or "model").split(".")[0].split("[")[0]
            loc = spec.doc.key_loc((section,)) or spec.doc.key_loc(("model",)) or spec.doc.loc(())
            diagnostic = replace(diagnostic, loc=loc)
        fixed.append(diagnostic)
    return SpecError(fixed)


def _shapes_context(spec: CompiledSpec, data: Any, *, any_target: bool = False) -> dict[str, Any]:
    """Template values of a ``shapes`` source: the generator's code (copied from
    :mod:`cnnspec.shapes`) and its arguments. For a classifier (``any_target`` false), sources
    it cannot read (image folders with masks, labels or values; shapes targets other than
    classes) are a located error rather than a script that would fail."""
    from cnnspec.shapes import generator_source

    where = ("data", "source")
    if not any_target and (
        data.kind in ("image_masks", "image_labels", "image_values")
        or (data.kind == "shapes" and data.target != "class")
    ):
        what = f"the {data.target} target of shapes" if data.kind == "shapes" else f"a {data.kind} source"
        raise SpecError.single(
            f"expected a classification source for a training script; {what} is not supported yet",
            spec.doc.loc(where) or spec.doc.key_loc(("data",)),
            "data.source",
            code="codegen-script",
            hint="train it with `cnnspec train`; generate the model alone (without --script)",
        )
    if data.kind != "shapes":
        return {"shapes_code": "", "shapes_args": "", "shapes_target": "", "shapes_target_literal": ""}
    options = data.options
    args = (
        options["images"],
        *options["image_size"],
        options["channels"],
        options["min_shapes"],
        options["max_shapes"],
        options["noise"],
        options["seed"],
        options["overlap"],
    )
    return {
        "shapes_code": generator_source().rstrip(),
        "shapes_args": ", ".join(py_literal(a) for a in args),
        "shapes_target": str(data.target),
        "shapes_target_literal": py_string(str(data.target)),
    }


def split_settings(spec: CompiledSpec, config: TrainConfig) -> str:
    """The split settings the spec's data section writes (``--set`` included), as the tuple of
    ``(key, split, value as shown)`` the script's ``check_split_settings`` refuses beside a
    folder with that split's own folder (as ``cnnspec train`` refuses them: a default applies
    to no such folder, so only a written key counts); ``"None"``: none written, or a source
    without that layout (a test folder named, a CSV)."""
    data = config.data
    if data.kind != "directory" or data.test_path is not None:
        return "None"
    written = spec.data
    settings = []
    for split, key in (("test", "test_split"), ("validation", "validation_split")):
        if key in written:
            value = data.test_split if key == "test_split" else data.validation_split
            shown = f"{value:g}" if isinstance(value, float) else repr(written[key])
            settings.append((key, split, shown))
    return py_literal(tuple(settings)) if settings else "None"


def runtime_notes(config: TrainConfig, unsupported: list[str] | None = None) -> list[str]:
    """The ``runtime`` settings the script does not reproduce, as notes (in the script's header
    and on the console): ``cnnspec train`` acts on them, the script trains without them, and
    it must not look as if it did. ``mixed_precision``, ``jit_compile: true``, the thread counts
    and ``deterministic`` the script does set. ``distribute`` is left to ``cnnspec train``
    (:mod:`cnnspec.training.distribute`): a strategy scope around the model, sharded datasets,
    a per-replica batch and, for ``multi_worker``, a cluster and a chief — more than a small
    script should carry."""
    notes = []
    if config.distribute != "default":
        notes.append(
            f"runtime.distribute is {config.distribute!r}; this script trains without a tf.distribute "
            "strategy (on one device): run `cnnspec train` for a distributed run, or build and compile "
            "the model inside a strategy's scope() here"
        )
    if config.jit_auto and (config.deterministic or unsupported):
        # `cnnspec train` picks false untimed here (distribute.choose_jit): no XLA to offer
        why = (
            "training.deterministic (op determinism has no XLA)"
            if config.deterministic
            else f"Keras cannot compile {', '.join(unsupported or [])} with XLA"
        )
        notes.append(
            f"runtime.jit_compile is 'auto'; this script compiles without XLA, as `cnnspec train` does "
            f"for this model: {why}"
        )
    elif config.jit_auto:
        notes.append(
            "runtime.jit_compile is 'auto'; this script compiles without XLA (`cnnspec train` times both "
            "and keeps the faster): set runtime.jit_compile: true for XLA here"
        )
    return notes


def _without_xla(spec: CompiledSpec) -> list[str]:
    """The model's layers Keras cannot compile with XLA (:func:`layers_without_xla`)."""
    from cnnspec.analysis.settings import layers_without_xla

    return layers_without_xla(spec.ir)


def _disjoint(*parts: dict[str, Any]) -> dict[str, Any]:
    """The template values of ``parts`` as one mapping; a name two parts give is a bug (the
    task script's mask class counts and a masks folder's class table were both
    ``mask_classes``: the later replaced the earlier, and the script crashed on its own check)."""
    merged: dict[str, Any] = {}
    for part in parts:
        clash = merged.keys() & part.keys()
        assert not clash, f"template values given twice: {sorted(clash)}"
        merged.update(part)
    return merged


def script_context(spec: CompiledSpec, *, output: Path | None = None) -> dict[str, Any]:
    """Values for ``templates/train.py.j2`` (raises a located SpecError for sections that
    cannot be trained, exactly like ``cnnspec train`` would)."""
    from cnnspec.analysis.pixel_scaling import model_scales_input
    from cnnspec.analysis.settings import training_config
    from cnnspec.analysis.settings_types import KERAS_CLASS_NAMES, KERAS_DATASETS

    ir = spec.ir
    try:
        config = training_config(spec)
    except SpecError as exc:
        raise _located(exc, spec) from None
    data = config.data
    data_path = test_path = None
    relative_to_script = False
    if data.path is not None:
        data_path, relative_to_script = _rel_data_path(data.path, output)
    if data.test_path is not None:
        test_path, _ = _rel_data_path(data.test_path, output)
    rescale = data.rescale
    if rescale is None:
        rescale_mode = "none"
    elif isinstance(rescale, float):
        rescale_mode = "factor"
    else:
        rescale_mode = "none" if model_scales_input(ir) else "auto"
    class_weight = config.class_weight
    input_shape = tuple(ir.input_shape)
    if len(input_shape) != 3:
        raise SpecError.single(
            f"expected an image input (height, width, channels) for a training script; input.shape is "
            f"{list(input_shape)}",
            spec.doc.loc(("input", "shape")),
            "input.shape",
            code="codegen-script",
        )
    from cnnspec.analysis.datafit import (
        KINDS_HINT,
        REPEATED_COLUMN_HINT,
        kinds_message,
        script_data_notes,
        two_classes_hint,
        two_labelled_hint,
    )
    from cnnspec.spec.sections import CACHED_SHUFFLE_BUFFER

    data_notes = script_data_notes(spec, config)  # labels train refuses are refused here too
    test_split = py_literal(float(data.test_fraction))
    # settings the spec writes as expressions of vars are written as those of their constants
    exprs = VarExpressions(spec)
    if data.test_split is not None:
        test_split = exprs.source(("data", "test_split"), data.test_split, test_split)
    validation_split = py_literal(float(data.validation_split))
    validation_split = exprs.source(("data", "validation_split"), data.validation_split, validation_split)
    batch_size = exprs.source(("training", "batch_size"), config.batch_size, str(config.batch_size))
    limit = "None" if data.limit is None else exprs.source(("data", "limit"), data.limit, str(data.limit))
    shuffle_buffer = py_literal(data.shuffle_buffer)
    if data.shuffle_buffer is not None:
        shuffle_buffer = exprs.source(("data", "shuffle_buffer"), data.shuffle_buffer, shuffle_buffer)
    steps_per_epoch = py_literal(config.steps_per_epoch)
    if config.steps_per_epoch is not None:
        where = ("training", "steps_per_epoch")
        steps_per_epoch = exprs.source(where, config.steps_per_epoch, steps_per_epoch)
    output_units, fixed_vars = output_units_source(spec, config.output_units, exprs)
    # phases: training.phases, or a training.freeze/unfreeze the model code does not do itself
    # (or layer-wise learning rates, which the script sets when it compiles a phase)
    phased = config.phased or any(k in spec.training for k in ("freeze", "unfreeze", RATE_SCALE))
    # (the main optimizer is written only where it is used: the phases write their own)
    optimizer, warmup = optimizer_node(config, exprs=None if phased else exprs)
    epochs = exprs.source(("training", "epochs"), config.epochs, str(config.epochs))
    phases, phase_epochs = [], []
    rate_paths = phase_rate_paths(spec, config) if phased else []
    optimizer_paths = phase_optimizer_paths(spec, config) if phased else []
    for index, phase in enumerate(config.phases if phased else ()):
        node, phase_warmup = optimizer_node(
            config, phase.optimizer, exprs, rate_paths[index], optimizer_paths[index]
        )
        warmup = warmup or phase_warmup
        phase_epochs.append(_phase_epochs(exprs, config, index))
        phases.append(
            {
                "epochs": unparse(phase_epochs[-1]),
                "frozen": py_literal(list(phase.frozen)),
                "rate_scale": py_literal(dict(phase.rate_scale)),
                "optimizer": unparse(node),
            }
        )
    weight_calls = _weight_calls(spec, output)
    task: dict[str, Any] = {"task_script": False}
    if config.task_path:  # multilabel, regression, segmentation, several outputs
        from cnnspec.backends.codegen_tasks import check_supported, files_context, task_context

        check_supported(spec, config)
        shapes = _shapes_context(spec, data, any_target=True)
        targets = _rel_data_path(data.labels_path, output) if data.labels_path is not None else None
        task = _disjoint(
            {"task_script": True}, task_context(spec, config, exprs), files_context(config, targets)
        )
    else:
        shapes = _shapes_context(spec, data)
    metrics = [unparse(m) for m in metric_nodes(config)]
    used = [*metrics, *(source for out in task.get("outputs", ()) for source in out["metrics"])]
    return {
        # the script's on_rounded_labels, where a mixed output's metric uses it
        "rounds_labels": any(source.startswith("on_rounded_labels(") for source in used),
        **_disjoint(task, shapes),
        "data_notes": data_notes,
        "runtime_notes": runtime_notes(config, _without_xla(spec)),
        "phases": phases,
        # PHASES reads the vars' constants: written after them
        "phases_after_constants": any(not isinstance(count, ast.Constant) for count in phase_epochs),
        "rate_scaled": any(phase.rate_scale for phase in config.phases if phased),
        "data_classes": py_literal(list(data.classes)) if data.classes is not None else "None",
        # data.classes as train's messages show it: [9, 5, 7]
        "data_classes_listed": py_string(listed(data.classes or ())),
        "per_class": py_literal(data.per_class),
        "adapt_layers": py_literal(tuple(adapted_layers(ir))),
        "weight_calls": weight_calls,
        **_seed_context(spec, config, exprs),
        "kind": data.kind,
        # where the source names its mask classes, as train's check_masks message says it
        "mask_names_said": mask_names_said(data.kind),
        "streamed": data.streamed,
        "on_bad_file": py_literal(data.on_bad_file),
        "split_settings": split_settings(spec, config),
        "image_column": py_string(data.image_column),
        "label_column": py_string(data.label_column),
        "repeated_column_hint": py_string(REPEATED_COLUMN_HINT),  # (train's words, not a copy)
        "keras_dataset": data.kind if data.kind in KERAS_DATASETS else "",
        "class_names": [py_string(n) for n in KERAS_CLASS_NAMES.get(data.kind, [])],
        "data_path": py_string(data_path) if data_path is not None else "None",
        "data_relative_to_script": relative_to_script,
        "test_path": py_string(test_path) if test_path is not None else "None",
        "image_size": py_literal(tuple(data.image_size)) if data.image_size else "None",
        "color_mode": py_string(data.color_mode or "rgb"),
        "validation_split": validation_split,
        "test_split": test_split,
        "limit": limit,
        "shuffle_buffer": shuffle_buffer,
        # a cached stream is shuffled after the cache, image by image (training.stream.make_stream)
        "cached": data.streamed and data.cache in ("memory", "disk"),
        "cache": data.cache,
        "cached_buffer": shuffle_buffer if data.shuffle_buffer else CACHED_SHUFFLE_BUFFER,
        "rescale_mode": rescale_mode,
        "rescale": py_literal(rescale) if rescale_mode == "factor" else "None",
        "height": input_shape[0],
        "width": input_shape[1],
        "channels": input_shape[2],
        "epochs": _total_epochs(phase_epochs) if config.phased else epochs,
        "batch_size": batch_size,
        "steps_per_epoch": steps_per_epoch,
        "optimizer": unparse(optimizer),
        "warmup": warmup,
        # (a task script writes each output's loss itself, with its values)
        # (a task script writes each output's loss itself: codegen_tasks.loss_source)
        "loss": unparse(loss_node(config, None if config.task_path else exprs)),
        "metrics": metrics,
        "callbacks": script_callbacks(config, exprs),
        "averaged": config.averages_weights,
        "csv_log": config.callback("csv_logger") is not None,
        # training.phases: the phase of each epoch in the history and training_log.csv, as in
        # cnnspec train (not for a freeze or learning_rate_scale alone, which the script also
        # trains as one phase of PHASES)
        "phase_column": config.phased,
        "best_checkpoint": keeps_best_checkpoint(config),
        "class_weight": "None" if class_weight is None else py_literal(class_weight),
        "balanced": class_weight == "balanced",
        "one_hot": config.one_hot_labels,
        "output_units": output_units,  # the one-hot width, as cnnspec train's (≥ the classes)
        # the same inside an f-string's text (an expression as its field)
        "output_units_text": output_units if output_units.isdigit() else f"{{{output_units}}}",
        # data whose class count is known only once read (or selected): checked as train checks it
        "counts_classes": data.kind == "npz" or data.streamed or data.classes is not None,
        # an npz file's (n, H, W) targets, read as masks where data.source names no target: train's
        # refusal of them for the classifier's output (it said "labels of shape (n,)" instead)
        "mask_kind_refusal": (
            py_string(kinds_message(out.target, out.task, out.name, "mask"))
            if data.kind == "npz" and data.target is None and (out := next(iter(config.tasks), None))
            else ""
        ),
        "kinds_hint": py_string(KINDS_HINT),
        "one_class_hint": py_string(two_classes_hint(config)),
        # training labels of one class: data read from files, or cut down by data.limit
        "checks_labelled": data.kind == "npz"
        or data.streamed
        or data.classes is not None
        or data.limit is not None,
        "one_labelled_hint": py_string(two_labelled_hint(config)),
        # the script knows the class count once it has read the data: 2 or more, the limit's
        # hint alone (as train's)
        "many_labelled_hint": py_string(two_labelled_hint(config, classes=2)),
        "mixing": mixing_source(config, exprs=exprs),
        # what the emitter checks the vars' constants against (codegen_vars.literal_places)
        "expressed": exprs.expressed,
        "fixed_vars": fixed_vars,
        "mixing_key": config.mixing.kinds if config.mixing is not None else "",
        "mixing_switch": config.mixing is not None and config.mixing.switch is not None,
        # CutMix with labels of the pixels pasted (cnnspec.training.mixing.pixel_cutmix_class)
        "pixel_cutmix": config.mixing is not None
        and any(mixer.keras_class == "CutMix" for mixer in config.mixing.mixers),
        "binary": config.binary,
        "threshold": 0.0 if config.loss.from_logits else 0.5,
        "jit_compile": config.jit_compile,
        "mixed_precision": config.mixed_precision,
        "deterministic": config.deterministic,
        "intra_op": config.intra_op_threads,
        "inter_op": config.inter_op_threads,
        "default_out": py_string(str(Path("runs") / ir.name)),
        "seed_name": "SEED",
        "parser_description": description_string(
            f"Train the {ir.name} model of {Path(str(spec.path or ir.name)).name}."
        ),
        "data_help": help_string(
            f"the {data.kind} data to read (default: {data_path}{relative_note(relative_to_script)})"
        ),
        "test_help": help_string(
            f"the test images (default: {test_path}{relative_note(relative_to_script)})"
        ),
        "script_doc": "",
    }
