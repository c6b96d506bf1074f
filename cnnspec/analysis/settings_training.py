"""The ``training`` section's parts as typed settings: loss, metrics, optimizer and its
learning-rate schedule, callbacks, fine-tuning phases (freeze patterns and layer-wise rates),
mixing (mixup, cutmix) and the distribution strategy, each checked against the model and the
data before TensorFlow is imported.
"""

from __future__ import annotations

import importlib.util
import re
from typing import TYPE_CHECKING, Any

from cnnspec.analysis import phase_checks
from cnnspec.analysis.settings_reader import POISONED, SectionReader
from cnnspec.analysis.settings_types import (
    _PROBABILITY_ACTIVATIONS,
    BINARY_LOSSES,
    DEFAULT_EPOCHS,
    DEFAULT_LEARNING_RATE,
    FLOAT32_RANGE,
    ONE_HOT_LOSSES,
    CallbackConfig,
    LossConfig,
    MetricConfig,
    Mixer,
    MixingConfig,
    OptimizerConfig,
    PhaseConfig,
    Schedule,
    TrainConfig,
    outputs_logits,
)
from cnnspec.errors import (
    COMMAND_LINE_PREFIX,
    Loc,
    Note,
    SpecPath,
    command_line_option,
    did_you_mean,
    format_path,
)

if TYPE_CHECKING:
    from cnnspec.analysis import freezing
    from cnnspec.analysis.compiled import CompiledSpec
    from cnnspec.analysis.tasks import OutputTask
    from cnnspec.ir import ModelIR


def name_and_settings(value: Any) -> tuple[str, dict[str, Any]]:
    """A ``name`` or ``{name: settings}`` value (a loss, an optimizer, a metric …) as its name
    and settings (``""`` for a value of neither form; no settings where they are no mapping)."""
    if isinstance(value, str):
        return value, {}
    if isinstance(value, dict) and len(value) == 1:
        name, settings = next(iter(value.items()))
        return str(name), dict(settings) if isinstance(settings, dict) else {}
    return "", {}


def loss_settings(loss: LossConfig) -> dict[str, Any]:
    """Every setting the kind of ``loss`` takes but ``from_logits`` (as ``training.loss`` names
    them: ``delta`` of huber, a focal loss's ``gamma`` and ``alpha`` …) with its value, defaults
    included: an export's record keeps them all, so that a plain name there means a record
    written before they were kept. Empty for a loss that takes none (mse, dice …)."""
    from cnnspec.spec.sections import LOSS_SCHEMA

    keys = [key for key in _settings_schema(LOSS_SCHEMA, loss.name) if key != "from_logits"]
    return {key: getattr(loss, key) for key in keys}


def loss_record(loss: LossConfig) -> str | dict[str, dict[str, Any]]:
    """``loss`` as a spec writes ``training.loss``, for a record of the loss a run compiled
    (lock.json's ``tasks[].loss``): its name alone where every setting it takes has its default
    (Keras', ``from_logits`` false), else ``{name: settings}`` with those that do not
    (``from_logits`` as the Keras loss is built with: :attr:`LossConfig.keras_from_logits`)."""
    from cnnspec.spec.sections import FOCAL_ALPHA, FOCAL_GAMMA, LOSS_SCHEMA

    defaults = {
        "from_logits": False,
        "label_smoothing": 0.0,
        "delta": 1.0,
        "gamma": FOCAL_GAMMA,
        "alpha": FOCAL_ALPHA,
        "apply_class_balancing": False,
    }
    values = {**{key: getattr(loss, key) for key in defaults}, "from_logits": loss.keras_from_logits}
    settings = {
        key: values[key]
        for key in _settings_schema(LOSS_SCHEMA, loss.name)
        if key in values and values[key] != defaults[key]
    }
    return {loss.name: settings} if settings else loss.name


def loss_from_setting(value: Any, from_logits: bool) -> LossConfig:
    """The :class:`LossConfig` of a ``name`` or ``{name: settings}`` value (:func:`loss_settings`'
    as an export's record keeps it); a setting it does not name has its default."""
    name, settings = name_and_settings(value)
    return _loss_config(name, settings, from_logits)


def _loss_config(
    name: str, settings: dict[str, Any], from_logits: bool, compiled_from_logits: bool | None = None
) -> LossConfig:
    """The :class:`LossConfig` of loss ``name`` with its ``settings``; one it does not name has
    its default (the spec's, an export record's)."""
    from cnnspec.spec.sections import FOCAL_ALPHA, FOCAL_GAMMA

    return LossConfig(
        name,
        from_logits,
        _number_or(settings.get("label_smoothing"), 0.0),
        _number_or(settings.get("delta"), 1.0),
        _number_or(settings.get("gamma"), FOCAL_GAMMA),
        _number_or(settings.get("alpha"), FOCAL_ALPHA),
        settings.get("apply_class_balancing") is True,
        compiled_from_logits,
    )


def _settings_schema(schema: dict[str, Any], name: str) -> dict[str, Any]:
    """The schemas of the settings of ``name`` in a ``{name: {settings}}`` schema of
    :mod:`cnnspec.spec.sections` (looked for through its ``anyOf`` alternatives); empty when
    it has none."""
    for option in schema.get("anyOf", [schema]):
        options = option.get("properties", {}) if option.get("maxProperties") == 1 else {}
        if name in options:
            return dict(options[name].get("properties", {}))
        found = _settings_schema(option, name) if "anyOf" in option else {}
        if found:
            return found
    return {}


def _number_bounds(schema: dict[str, Any]) -> dict[str, Any] | None:
    """A number setting's bounds as :meth:`SectionReader.number` takes them, read from its JSON
    Schema (``None``: not a number setting)."""
    for option in schema.get("anyOf", [schema]):
        if option.get("type") in ("number", "integer"):
            return {
                "integer": option["type"] == "integer",
                "minimum": option.get("minimum"),
                "above": option.get("exclusiveMinimum"),
                "maximum": option.get("maximum"),
                "below": option.get("exclusiveMaximum"),
            }
    return None


def _check_numbers(
    reader: SectionReader, settings: dict[str, Any], path: SpecPath, schemas: dict[str, Any]
) -> None:
    """Hold each number setting to the bounds its JSON Schema states: the schema checks a
    written number, but a ``${…}`` expression passes it as text, and Keras would refuse (or
    misuse) the value only once the run has started. An invalid value is a located error; a
    whole number from an expression (``${e * 2.0}``) is stored as an int where one is needed."""
    for key, value in list(settings.items()):
        bounds = _number_bounds(schemas.get(key, {}))
        if bounds is None or value is None:
            continue
        checked = reader.number((*path, key), None, **bounds)
        if checked is not None and bounds["integer"]:
            settings[key] = checked


def _schedule(reader: SectionReader, value: dict[str, Any], path: SpecPath) -> Schedule:
    from cnnspec.spec.optimizers import OPTIMIZER_SCHEMA

    kind, settings = name_and_settings(value)
    # every optimizer's learning_rate takes the same schedules
    rate_schema = _settings_schema(OPTIMIZER_SCHEMA, "adam")["learning_rate"]
    _check_numbers(reader, settings, (*path, kind), _settings_schema(rate_schema, kind))
    warmup = settings.pop("warmup_steps", 0)
    warmup = 0 if warmup is None or warmup is POISONED else int(warmup)
    if kind == "piecewise_constant" and not reader.poisoned_within((*path, kind)):
        # (with a failed boundary or value the counts and the order are unknown: not compared)
        boundaries, values = settings.get("boundaries", []), settings.get("values", [])
        if len(values) != len(boundaries) + 1:
            reader.error(
                f"expected {len(boundaries) + 1} values for {len(boundaries)} boundaries; "
                f"received {len(values)}",
                (*path, kind, "values"),
                "piecewise_constant needs one more value than boundaries",
            )
        if list(boundaries) != sorted(set(boundaries)):
            reader.error(
                f"expected increasing boundaries; received {boundaries}", (*path, kind, "boundaries")
            )
    else:
        settings.setdefault("initial_learning_rate", DEFAULT_LEARNING_RATE)
    return Schedule(kind, settings, warmup, path)


def _optimizer(
    reader: SectionReader,
    path: SpecPath = ("training", "optimizer"),
    default: Any = "adam",
    ir: ModelIR | None = None,
) -> OptimizerConfig:
    """The optimizer written at ``path`` (``ir``: the model, whose layers ``exclude_layers``
    patterns must match)."""
    name, settings = name_and_settings(reader.value(path, default))
    lr_value = settings.pop("learning_rate", DEFAULT_LEARNING_RATE)
    learning_rate: float | Schedule
    if lr_value is POISONED:  # its expression failed, reported where it is written
        learning_rate = DEFAULT_LEARNING_RATE
    elif isinstance(lr_value, dict):
        learning_rate = _schedule(reader, lr_value, (*path, name, "learning_rate"))
    elif isinstance(lr_value, (int, float)) and not isinstance(lr_value, bool) and lr_value > 0:
        learning_rate = float(lr_value)
    else:
        reader.error(f"expected a learning rate > 0; received {lr_value!r}", (*path, name, "learning_rate"))
        learning_rate = DEFAULT_LEARNING_RATE
    from cnnspec.spec.optimizers import OPTIMIZER_SCHEMA

    schemas = _settings_schema(OPTIMIZER_SCHEMA, name)
    for key, value in settings.items():
        if key in schemas and _number_bounds(schemas[key]) is not None:
            continue  # (checked with its bounds below)
        if value is POISONED:
            continue  # (its failed expression is reported)
        if schemas.get(key, {}).get("type") == "array":
            _layer_patterns(reader, value, (*path, name, key), ir)
        elif not isinstance(value, bool) and not isinstance(value, (int, float)):
            reader.error(f"expected a number; received {value!r}", (*path, name, key))
    _check_numbers(reader, settings, (*path, name), schemas)
    from cnnspec.spec.optimizers import setting_problems

    for key, problem, hint in setting_problems(settings):
        reader.error(problem, (*path, name, key), hint)
    return OptimizerConfig(name or "adam", learning_rate, settings)


def _layer_patterns(reader: SectionReader, value: Any, path: SpecPath, ir: ModelIR | None) -> None:
    """Muon's ``exclude_layers``: each a regular expression that Keras searches the weights'
    paths (``LAYER/kernel``) with, and each matching a layer of the model, since a typo would
    leave the layer it meant to Muon's steps without a word."""
    if not isinstance(value, list):
        reader.error(f"expected a list of regular expressions; received {value!r}", path)
        return
    names = [node.name for node in ir.nodes] if ir is not None else None
    for index, pattern in enumerate(value):
        where = (*path, index)
        if not isinstance(pattern, str):
            reader.error(f"expected a regular expression; received {pattern!r}", where)
            continue
        try:
            compiled = re.compile(pattern)
        except re.error as exc:
            reader.error(f"expected a regular expression; {pattern!r} is not one ({exc})", where)
            continue
        if names is not None and not any(compiled.search(f"{name}/kernel") for name in names):
            hint = did_you_mean(pattern, names) or f"layers: {', '.join(names[:12])}"
            reader.error(
                f"expected a pattern that matches a layer of the model; {pattern!r} matches none of "
                f"its {len(names)} layers' weights (searched in LAYER/kernel)",
                where,
                hint,
            )


def _loss(
    reader: SectionReader,
    path: SpecPath,
    units: int,
    activation: str | None,
    default: str,
    task: str = "classification",
) -> LossConfig:
    name, settings = name_and_settings(reader.value(path, default))
    from cnnspec.spec.sections import LOSS_SCHEMA

    # (a ``${…}`` passes the schema as text: its value is held to the literal's bounds here)
    _check_numbers(reader, settings, (*path, name), _settings_schema(LOSS_SCHEMA, name))
    from_logits = settings.get("from_logits")
    if from_logits is POISONED:
        from_logits = None  # its failed expression is reported: the default stands in
    if from_logits is None:
        # Keras' default (probabilities) is right after softmax/sigmoid; a bare linear head
        # produces logits, and treating them as probabilities trains badly without a word.
        from_logits = activation is not None and activation not in _PROBABILITY_ACTIVATIONS
        if activation is None:
            from_logits = True
    elif isinstance(from_logits, bool) and name in CROSSENTROPY_LOSSES:
        _warn_logits_mismatch(reader, (*path, name, "from_logits"), name, from_logits, activation)
    binary = name in BINARY_LOSSES
    if task == "classification" and binary and units not in (1, 0):
        reader.error(
            f"expected a model with 1 output unit for {name}; it outputs {units}",
            path,
            "use sparse_categorical_crossentropy (or categorical_focal_crossentropy) for several "
            "classes, or end the model with dense: {units: 1, activation: sigmoid}",
        )
    if task == "classification" and not binary and units == 1:
        reader.error(
            f"expected a model with one output unit per class for {name}; it outputs 1",
            path,
            "a single sigmoid output goes with binary_crossentropy (or binary_focal_crossentropy)",
        )
    balancing = settings.get("apply_class_balancing")
    if name == "binary_focal_crossentropy" and "alpha" in settings and balancing is not True:
        # Keras weighs by alpha only with class balancing: a typo'd or forgotten flag would
        # leave the weight the user chose unused without a word
        reader.warning(
            f"{name}'s alpha has no effect without apply_class_balancing: true",
            (*path, name, "alpha"),
            "add apply_class_balancing: true to weigh positives by alpha and negatives by 1 - alpha, "
            "or remove alpha",
            code="unused-setting",
            key=True,
        )
    logits = outputs_logits(activation, bool(from_logits))
    # (the Keras loss keeps what the spec says: the same loss, and the same run, as before)
    return _loss_config(name, settings, logits, None if logits == bool(from_logits) else bool(from_logits))


#: The losses that read the output as logits or as probabilities (``from_logits``).
CROSSENTROPY_LOSSES = (*BINARY_LOSSES, *ONE_HOT_LOSSES, "sparse_categorical_crossentropy")


def _warn_logits_mismatch(
    reader: SectionReader, path: SpecPath, name: str, from_logits: bool, activation: str | None
) -> None:
    """A located warning where a written ``from_logits`` says the opposite of the output's
    activation, saying what happens: ``true`` after a softmax or sigmoid changes nothing for a
    plain crossentropy (Keras reads the values before the activation, and cnnspec reads the
    output as the probabilities it is), while a focal loss squashes the probabilities a second
    time and trains badly (Keras only warns at run time); ``false`` after a linear output reads
    logits as probabilities. Not an error: an override is the user's to make."""
    if from_logits and activation in _PROBABILITY_ACTIVATIONS:
        from cnnspec.spec.sections import FOCAL_LOSSES

        if name in FOCAL_LOSSES:
            message = (
                f"from_logits: true looks wrong; the output ends with {activation}: its values are "
                f"probabilities, and {name} would apply a {activation} again"
            )
        else:
            message = (
                f"from_logits: true changes nothing; the output ends with {activation}: {name} reads "
                f"the values before the {activation} (as Keras does) and the metrics, the test report "
                "and predict read them as probabilities"
            )
        hint = "remove from_logits (cnnspec reads it from the output's activation)"
    elif not from_logits and activation is None:
        message = (
            "from_logits: false looks wrong; the output has no activation: its values are logits, "
            f"which {name} would read as probabilities"
        )
        hint = "drop from_logits (cnnspec reads it from the output's activation)"
    else:
        return
    reader.warning(message, path, hint, code="logits-mismatch")


def _number_or(value: Any, default: float) -> float:
    """``value`` as a float, or ``default`` where it is absent, or its expression failed or gave
    something other than a number (each reported where it is written). Not ``value or
    default``: a valid 0 (``label_smoothing: 0``) is kept, not swapped for the default."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return default


def _metrics(
    reader: SectionReader,
    path: SpecPath = ("training", "metrics"),
    task: str = "classification",
    binary: bool = False,
    default: tuple[str, ...] = ("accuracy",),
    head: tuple[int, LossConfig] | None = None,
) -> tuple[MetricConfig, ...]:
    """The metrics at ``path`` (``head``: the output's units and loss, where known)."""
    from cnnspec.spec.sections import METRIC_SCHEMA

    raw = reader.value(path, list(default)) or []
    metrics: list[MetricConfig] = []
    seen: set[str] = set()
    for index, item in enumerate(raw):
        name, settings = name_and_settings(item)
        # a k from a ``${…}`` passes the schema as text: held to the literal's "integer ≥ 1"
        # here (0 would log a top_0_accuracy that is always 0); a whole float (``${2.0}``)
        # becomes the int Keras needs
        _check_numbers(reader, settings, (*path, index, name), _settings_schema(METRIC_SCHEMA, name))
        k = settings.get("k")
        k_valid = isinstance(k, int) and not isinstance(k, bool) and k >= 1
        metric = MetricConfig(name, k if k_valid else 5)
        if name == "top_k_accuracy" and binary and task == "classification":
            reader.error("expected a multi-class output for top_k_accuracy", (*path, index))
        elif task == "classification" and head is not None and (k_valid or "k" not in settings):
            # (a k whose expression failed or that was refused above is unknown: the default 5
            # stands in, unchecked, rather than a second error about a k nobody wrote)
            _check_classifier_metric(reader, metric, (*path, index), "k" in settings, head)
        if metric.log_name in seen:
            reader.error(f"metric {metric.log_name!r} is listed twice", (*path, index))
        seen.add(metric.log_name)
        metrics.append(metric)
    return tuple(metrics)


def _check_classifier_metric(
    reader: SectionReader, metric: MetricConfig, path: SpecPath, k_written: bool, head: tuple[int, LossConfig]
) -> None:
    """A metric that would report a meaningless figure for this classifier output is refused."""
    units, loss = head
    if metric.name == "top_k_accuracy" and units > 1 and metric.k >= units:
        # the true class is always among the top k of k ≥ N classes: 1.0 whatever the model
        reader.error(
            f"k must be below the output's {units} classes; received {metric.k}"
            + ("" if k_written else " (the default)"),
            (*path, "top_k_accuracy", "k") if k_written else path,
            # (2 classes: the only k below is 1, top-1 accuracy, which is the accuracy metric)
            "top-k accuracy needs more than 2 classes (top-1 of 2 is the accuracy): list accuracy instead"
            if units == 2
            else f"top-{metric.k} accuracy of {units} classes is always 1.0: choose a k below {units}"
            + ("" if k_written else f", e.g. {{top_k_accuracy: {{k: {units - 1}}}}}"),
        )
    if metric.name in ("precision", "recall", "auc") and units > 1 and loss.from_logits:
        # Keras' Precision/Recall threshold each class's score at 0.5 and AUC turns each logit
        # into a probability on its own (a sigmoid, not the classes' softmax): a logit is no
        # probability, and the generated script builds the same metrics, so they are refused
        reader.error(
            f"expected probabilities for {metric.name} of a multi-class output; this output's "
            "loss reads it as logits (from_logits)",
            path,
            "end the model with activation: softmax (and leave from_logits out), or drop the metric",
        )


def _callbacks(reader: SectionReader, config: TrainConfig, validation: bool) -> tuple[CallbackConfig, ...]:
    from cnnspec.spec.sections import CALLBACK_SCHEMA

    path: SpecPath = ("training", "callbacks")
    raw = reader.value(path, []) or []
    out: list[CallbackConfig] = []
    logged = config.logged_names(validation)
    for index, item in enumerate(raw):
        name, settings = name_and_settings(item)
        item_path: SpecPath = (*path, index, name) if isinstance(item, dict) else (*path, index)
        _check_numbers(reader, settings, item_path, _settings_schema(CALLBACK_SCHEMA, name))
        if any(c.name == name for c in out):
            reader.error(f"callback {name!r} is listed twice", item_path)
        monitor = settings.get("monitor")
        if name in ("early_stopping", "reduce_lr_on_plateau", "model_checkpoint") and monitor is not POISONED:
            if monitor is None:
                monitor = "val_loss" if validation else "loss"
                settings["monitor"] = monitor
                if not validation:
                    # (said: the documented default is val_loss, and the best epoch, the stop or
                    # the rate's cut would otherwise be chosen on the training loss without a word)
                    reader.warning(
                        f"{name} monitors the training loss (loss): there is no validation split "
                        "(data.validation_split: 0), so its default val_loss is not logged",
                        item_path,
                        "set data.validation_split above 0 to watch val_loss, or write monitor: loss "
                        "to keep the training loss",
                        code="monitor-fallback",
                        key=isinstance(item, dict),  # (at the callback's name, not its settings)
                    )
            if monitor not in logged:
                hint = did_you_mean(monitor, logged) or f"logged values: {', '.join(logged)}"
                if monitor.startswith("val_") and not validation:
                    hint = "validation values need data.validation_split > 0"
                reader.error(
                    f"expected a logged value to monitor; received {monitor!r}",
                    (*item_path, "monitor") if "monitor" in (item.get(name) or {}) else item_path,
                    hint,
                )
        if name == "tensorboard" and importlib.util.find_spec("tensorboard") is None:
            reader.error(
                "expected TensorBoard to be installed for the tensorboard callback; it is not",
                item_path,
                "pip install tensorboard (into cnnspec's environment), or remove the callback",
            )
        if name == "reduce_lr_on_plateau":
            # Keras cannot set the learning rate of an optimizer made with a schedule: the
            # callback would crash the run at its first reduction, in whichever phase
            for source, kind in _schedule_sources(reader, config):
                if source is None:
                    reader.error(
                        "expected a constant learning rate with reduce_lr_on_plateau; "
                        "the optimizer has a schedule",
                        item_path,
                        "use either a learning-rate schedule or reduce_lr_on_plateau, not both",
                    )
                else:
                    reader.error(
                        f"expected a constant learning rate in phase {source[2] + 1} with "
                        f"reduce_lr_on_plateau; received a schedule ({kind})",
                        source,
                        "use either a learning-rate schedule or reduce_lr_on_plateau "
                        f"({format_path(item_path)}), not both",
                    )
        out.append(CallbackConfig(name, settings, item_path))
    _check_best_weights(reader, out)
    return tuple(out)


def _check_best_weights(reader: SectionReader, callbacks: list[CallbackConfig]) -> None:
    """A warning where early stopping restores the best epoch of one value and
    model_checkpoint keeps the best of another: the run loads best.keras after the fit, over
    what early stopping restored (training/finish.py), so its restore is lost without a word."""
    found = {c.name: c for c in callbacks}
    early, checkpoint = found.get("early_stopping"), found.get("model_checkpoint")
    if early is None or checkpoint is None or early.settings.get("restore_best_weights") is not True:
        return
    if checkpoint.settings.get("save_best_only", True) is not True:
        return  # (last.keras: the final weights are early stopping's)
    watched, kept = early.settings.get("monitor"), checkpoint.settings.get("monitor")
    if not isinstance(watched, str) or not isinstance(kept, str) or watched == kept:
        return
    reader.warning(
        f"early_stopping restores the weights of the best {watched} epoch, and model_checkpoint's "
        f"best.keras (the best {kept} epoch) replaces them when training ends: the run ends with "
        f"the best {kept} epoch's weights",
        (*early.path, "restore_best_weights"),
        f"monitor {kept} in early_stopping too, or leave out its restore_best_weights "
        "(model_checkpoint decides the weights the run ends with)",
        code="best-weights",
        key=True,
    )


def _schedule_sources(reader: SectionReader, config: TrainConfig) -> list[tuple[SpecPath | None, str]]:
    """Where the learning-rate schedules that some phase trains with are written: the path of a
    phase's ``learning_rate`` (or of its optimizer's), ``None`` for ``training.optimizer``'s
    (which phases without a rate or optimizer of their own keep, as the later phases keep an
    earlier phase's), each once in phase order, with the schedule's kind."""
    training = reader.doc.data.get("training")
    raw = training.get("phases") if isinstance(training, dict) else None
    items = raw if isinstance(raw, list) and config.phased else []
    sources: list[tuple[SpecPath | None, str]] = []
    for index, phase in enumerate(config.phases):
        rate = phase.optimizer.learning_rate
        if not isinstance(rate, Schedule):
            continue
        source: SpecPath | None = None
        for back in range(min(index, len(items) - 1), -1, -1):
            item = items[back] if isinstance(items[back], dict) else {}
            path: SpecPath = ("training", "phases", back)
            if "learning_rate" in item:
                source = (*path, "learning_rate")
                break
            if "optimizer" in item:
                name, _ = name_and_settings(item["optimizer"])
                source = (*path, "optimizer", name, "learning_rate")
                break
        if all(source != seen for seen, _ in sources):
            sources.append((source, rate.kind))
    return sources


def _learning_rate(reader: SectionReader, value: Any, path: SpecPath) -> float | Schedule | None:
    """A ``learning_rate`` value: a number > 0 or a schedule (``None`` after a reported error,
    or for an expression that failed, reported where it is written)."""
    if value is POISONED:
        return None
    if isinstance(value, dict):
        return _schedule(reader, value, path)
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        if not FLOAT32_RANGE[0] <= value <= FLOAT32_RANGE[1]:  # (1e39 trained to NaN, 1e-50 not at all)
            reader.error(
                f"expected a learning rate a float32 holds, {FLOAT32_RANGE[0]:g} to {FLOAT32_RANGE[1]:g} "
                f"(the optimizer keeps it as one); received {value!r}",
                path,
            )
            return None
        return float(value)
    reader.error(f"expected a learning rate > 0; received {value!r}", path)
    return None


def _phases(
    reader: SectionReader, compiled: CompiledSpec, optimizer: OptimizerConfig
) -> tuple[PhaseConfig, ...]:
    """``training.phases`` (or the one implicit phase), with the layers each one freezes."""
    from dataclasses import replace

    from cnnspec.analysis import freezing
    from cnnspec.spec.sections import RATE_SCALE

    ir = compiled.ir
    patterns = freezing.Patterns(ir)
    written = {key: reader.value(("training", key), []) or [] for key in ("freeze", "unfreeze")}
    frozen = freezing.apply(
        freezing.initially_frozen(ir),
        patterns,
        written["freeze"],
        written["unfreeze"],
        ("training",),
        reader.error,
    )
    phase_checks.warn_idle_patterns(reader, patterns, ir, ("training",), written)
    source: SpecPath = ("training", RATE_SCALE)  # the learning_rate_scale in force
    scale = _rate_scale(reader, patterns, source, compiled.ir)
    raw = reader.value(("training", "phases"), None)
    epochs = reader.number(("training", "epochs"), DEFAULT_EPOCHS, integer=True, minimum=1)
    optimizer_at: SpecPath = ("training", "optimizer")  # where the optimizer in force is written
    if not raw:
        phase = PhaseConfig(epochs, tuple(freezing.ordered(ir, frozen)), optimizer, 0, scale)
        phase_checks.warn_idle_scales(reader, patterns, ir, [(phase, source)])
        phase_checks.warn_frozen_phases(reader, ir, [(phase, ("training", "freeze"))])
        _refuse_ftrl_warmup(reader, optimizer, optimizer_at, set())
        return (phase,)
    if "epochs" in (compiled.doc.data.get("training") or {}):
        epochs_at = compiled.doc.key_loc(("training", "epochs"))
        phases_at = compiled.doc.key_loc(("training", "phases"))
        reader.error(
            "expected the epochs in each phase; received training.epochs beside training.phases",
            ("training", "epochs"),
            _phased_epochs_hint(compiled.doc.loc(("training", "epochs")), compiled.doc.data),
            key=True,
            # the two written apart (a --set of the phases): the error's line shows one of them
            notes=(Note(f"training.phases comes from {phases_at}", phases_at, "training.phases"),)
            if phases_at is not None and epochs_at is not None and phases_at.file != epochs_at.file
            else (),
        )
    phases: list[PhaseConfig] = []
    sources: list[SpecPath] = []
    refused: set[SpecPath] = set()
    first = 0
    for index, item in enumerate(raw):
        path: SpecPath = ("training", "phases", index)
        if not isinstance(item, dict):  # POISONED (its expression failed): nothing of its own
            item = {}
        count = reader.number((*path, "epochs"), 1, integer=True, minimum=1)
        written = {key: item.get(key) or [] for key in ("freeze", "unfreeze")}
        frozen = freezing.apply(frozen, patterns, written["freeze"], written["unfreeze"], path, reader.error)
        phase_checks.warn_idle_patterns(reader, patterns, ir, path, written)
        if "optimizer" in item:
            optimizer_at = (*path, "optimizer")
            optimizer = _optimizer(reader, optimizer_at, ir=compiled.ir)
        if "learning_rate" in item:
            _refuse_two_rates(reader, item, path)
            rate = _learning_rate(reader, item["learning_rate"], (*path, "learning_rate"))
            if rate is not None:
                optimizer = replace(optimizer, learning_rate=rate)
        rate_at = (*path, "learning_rate") if "learning_rate" in item else optimizer_at
        _refuse_ftrl_warmup(reader, optimizer, rate_at, refused)
        if RATE_SCALE in item:
            source = (*path, RATE_SCALE)
            scale = _rate_scale(reader, patterns, source, compiled.ir)
        phases.append(PhaseConfig(count, tuple(freezing.ordered(ir, frozen)), optimizer, first, scale))
        sources.append(source)
        first += count
    phase_checks.warn_idle_scales(reader, patterns, ir, list(zip(phases, sources, strict=True)))
    phase_checks.warn_frozen_phases(
        reader, ir, [(phase, ("training", "phases", i)) for i, phase in enumerate(phases)]
    )
    return tuple(phases)


def _refuse_two_rates(reader: SectionReader, item: dict[str, Any], path: SpecPath) -> None:
    """A phase that writes a ``learning_rate`` beside its optimizer's own: the phase's would
    replace the optimizer's without a word (it is there to change the rate of an optimizer the
    phase keeps). Refused, as ``training`` refuses a ``learning_rate`` beside its optimizer."""
    from cnnspec.spec.schema import optimizer_with_rate

    name, settings = name_and_settings(item.get("optimizer"))
    if "learning_rate" not in settings:
        return
    written = optimizer_with_rate(item, "learning_rate")  # (the phase's rate, in the optimizer)
    reader.error(
        f"expected one learning rate in phase {path[-1] + 1}; received learning_rate beside "
        f"optimizer.{name}.learning_rate",
        (*path, "learning_rate"),
        f"the phase's learning_rate would replace the optimizer's{_shown_rate(settings['learning_rate'])}: "
        + (f"write {written}, or " if written is not None else "")
        + "remove one of them",
        key=True,
    )


def _shown_rate(rate: Any) -> str:
    """`` 0.5`` for a rate that is a number, to follow "the optimizer's"; nothing for a schedule
    (its mapping is on the line above)."""
    return f" {rate!r}" if isinstance(rate, (int, float)) and not isinstance(rate, bool) else ""


def _refuse_ftrl_warmup(
    reader: SectionReader, optimizer: OptimizerConfig, path: SpecPath, seen: set[SpecPath]
) -> None:
    """FTRL divides by the learning rate, and a warm-up starts the rate at 0: its first step
    made every weight NaN (a run that ended with exit 0). Reported once where it is written
    (``seen``: where it was already)."""
    rate = optimizer.learning_rate
    if optimizer.name == "ftrl" and isinstance(rate, Schedule) and rate.warmup_steps and path not in seen:
        seen.add(path)
        reader.error(
            "expected no warm-up with ftrl: FTRL divides by the learning rate, which a warm-up "
            "starts at 0 (the first step makes every weight NaN)",
            path,
            "drop warmup_steps, or take another optimizer",
        )


def _rate_scale(
    reader: SectionReader, patterns: freezing.Patterns, path: SpecPath, ir: ModelIR
) -> tuple[tuple[str, float], ...]:
    """The ``learning_rate_scale`` at ``path``, ``{pattern: factor}``, resolved to each layer's
    factor: patterns in the order written, a later one overriding an earlier one where both
    match a layer (``{"*": 0.1, head: 1}``: everything at a tenth but the head). Layers without
    weights and factors of 1 are left out. A pattern that matches nothing is a located error at
    its key, as freeze's patterns are."""
    from cnnspec.analysis import freezing

    written = reader.value(path, {})
    if not isinstance(written, dict):  # an expression that failed, or what the schema refuses
        return ()
    factors: dict[str, float] = {}
    for pattern in written:
        at: SpecPath = (*path, pattern)
        # (1e39 trained to NaN weights, 1e-50 froze the layer: factor × rate is a float32)
        factor = reader.number(at, None, above=0, minimum=FLOAT32_RANGE[0], maximum=FLOAT32_RANGE[1])
        layers = patterns.match(str(pattern))
        if not layers:
            reader.error(
                f"expected a pattern that matches a layer; {str(pattern)!r} matches none",
                at,
                patterns.near_hint(str(pattern)),
                key=True,
            )
        if factor is not None:
            factors.update(dict.fromkeys(layers, factor))
    return tuple((name, factors[name]) for name in freezing.ordered(ir, factors) if factors[name] != 1.0)


def _class_weight(reader: SectionReader) -> str | dict[str, float] | None:
    value = reader.known(("training", "class_weight"), None)
    if value is None or value == "balanced":
        return value
    # (a weight whose expression failed is left out: its error is reported)
    return {str(k): float(v) for k, v in value.items() if v is not POISONED}


def mixing_keys(reader: SectionReader) -> list[str]:
    """The label-mixing keys the spec turns on (``training.mixup``, ``training.cutmix``), in
    :data:`~cnnspec.spec.sections.MIXING` order: written, and not ``false`` (nothing, ``true`` or
    a mapping is on). One whose expression failed counts as on: its error is reported, and the
    checks that depend on it (the default loss) go on as the user meant."""
    from cnnspec.spec.sections import MIXING

    training = reader.doc.data.get("training")
    if not isinstance(training, dict):
        return []
    return [key for key in MIXING if key in training and reader.value(("training", key)) is not False]


def _mixing(reader: SectionReader, tasks: tuple[OutputTask, ...]) -> MixingConfig | None:
    """``training.mixup`` and/or ``training.cutmix`` (``None``: off), and ``training.mix_switch``
    where both are on. Mixing makes soft targets by blending two images' labels, so it needs
    labels that blend: one classification output (one-hot) or one multilabel output
    (multi-hot); a located error otherwise. ``mix_switch`` without both on is an error too: it
    would be accepted and never used."""
    from cnnspec.spec.sections import MIX_SWITCH, MIX_SWITCH_DEFAULT, MIX_SWITCH_SCHEMA, MIXING

    keys = mixing_keys(reader)
    switch_path: SpecPath = ("training", MIX_SWITCH)
    training = reader.doc.data.get("training")
    # a mixer written off (false) is one turned off on purpose (a spec that extends one with
    # both, a --set, a search choice): the switch is then unused, as it has nothing to choose;
    # one never written beside a switch is a forgotten one, or a typo
    unwritten = [key for key in MIXING if not (isinstance(training, dict) and key in training)]
    switched = isinstance(training, dict) and reader.value(switch_path) is not None
    if switched and len(keys) < 2 and unwritten:
        reader.error(
            f"expected training.mixup and training.cutmix both on for training.{MIX_SWITCH}; "
            + (f"only training.{keys[0]} is" if keys else "neither is"),
            switch_path,
            f"{MIX_SWITCH} chooses between the two for each batch: turn both on, or remove it "
            f"({MIX_SWITCH}: null where a spec it extends sets it)",
            key=True,
        )
    if not keys:
        return None
    mixers = []
    for kind in keys:
        entry = MIXING[kind]
        amount = entry.default
        if isinstance(reader.value(("training", kind)), dict):
            # (a ``${…}`` passes the schema as text: held to the literal's bounds here, as Keras
            # takes any number, and Beta(0, 0) gives NaN labels)
            bounds = _number_bounds(entry.schema) or {}
            amount = reader.number(("training", kind, entry.setting), amount, **bounds)
        mixers.append(Mixer(kind, float(amount)))
    switch = None
    if len(keys) > 1:
        bounds = _number_bounds(MIX_SWITCH_SCHEMA) or {}
        switch = float(reader.number(switch_path, MIX_SWITCH_DEFAULT, **bounds))
    kind = keys[0]
    if len(tasks) > 1:
        reader.error(
            f"expected a model with one output for training.{kind}; this one has {len(tasks)} "
            f"({', '.join(t.name for t in tasks)})",
            ("training", kind),
            "mixing blends the labels of one classification or multilabel output: remove "
            f"training.{kind}, or train a single-output model",
            key=True,
        )
    elif tasks and tasks[0].task not in ("classification", "multilabel"):
        reader.error(
            f"expected a classification or multilabel output for training.{kind}; this model's "
            f"output is for {tasks[0].task}",
            ("training", kind),
            "mixing blends two images' labels by a share, which class probabilities and label sets "
            f"take and {tasks[0].task} targets do not: remove training.{kind}",
            key=True,
        )
    return MixingConfig(tuple(mixers), switch)


def _distribute(reader: SectionReader) -> tuple[str, float]:
    """``runtime.distribute`` (a strategy name, or ``{strategy, startup_timeout}``)."""
    value = reader.known(("runtime", "distribute"), "default")
    if isinstance(value, dict):
        timeout = reader.number(("runtime", "distribute", "startup_timeout"), 300.0, minimum=1)
        strategy_path: SpecPath = ("runtime", "distribute", "strategy")
        strategy = str(reader.known(strategy_path, "default"))
        if "startup_timeout" in value and strategy != "multi_worker" and not reader.poisoned(strategy_path):
            # only multi_worker waits for a cluster to form: elsewhere the value would be
            # accepted and never used (an error, like test_split beside a source's own test set;
            # silent where the timeout's own expression failed, or the strategy's)
            reader.error(
                f"expected no startup_timeout with strategy {strategy}; it applies to multi_worker only",
                ("runtime", "distribute", "startup_timeout"),
                "startup_timeout is how long multi_worker waits for every worker to join: drop it, "
                f"or write runtime.distribute: {strategy}",
                key=True,
            )
        return strategy, float(timeout)
    return str(value), 300.0


def _phased_epochs_hint(loc: Loc | None, data: dict[str, Any]) -> str:
    """How to fix ``training.epochs`` beside ``training.phases``. On the command line it was
    ``--epochs N`` (``train``'s shorthand) or ``--set training.epochs=N``: say both, and what a
    phased spec takes instead; where the spec's search draws the phases (``data``'s
    ``search.space``), their epochs are its choices' (a ``--set`` of a phase's epochs is
    refused there too, as any --set of what the search draws)."""
    space = (data.get("search") or {}).get("space") if isinstance(data.get("search"), dict) else None
    if isinstance(space, dict) and any(str(key).startswith("training.phases") for key in space):
        return "the search draws the phases: set the epochs in its choices of them (search.space)"
    if loc is not None and loc.file.startswith(COMMAND_LINE_PREFIX):
        typed = "--epochs N" if command_line_option(loc.file) == "--epochs" else "--set training.epochs=N"
        return (
            f"the run trains the sum of the phases' epochs: instead of {typed}, set a phase's "
            "epochs (--set training.phases[0].epochs=N)"
        )
    return "remove training.epochs: the run trains the sum of the phases' epochs"
