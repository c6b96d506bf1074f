"""The ``data``, ``training`` and ``runtime`` sections as typed settings (no TensorFlow).

:func:`training_config` evaluates ``${…}`` expressions in these sections against the spec's
``vars``, fills in the documented defaults, and checks what the JSON Schema cannot (a monitored
value that is never logged, a learning-rate schedule combined with ``reduce_lr_on_plateau``,
``top_k_accuracy`` on a one-unit output, ...). Every problem is a located :class:`SpecError`,
raised before TensorFlow is imported or any data is read.

The parts, a module each: :mod:`~cnnspec.analysis.settings_types` (the dataclasses and the
defaults), :mod:`~cnnspec.analysis.settings_reader` (values read and evaluated, errors located),
:mod:`~cnnspec.analysis.settings_data` (the ``data`` section),
:mod:`~cnnspec.analysis.settings_training` (loss, metrics, optimizer, callbacks, phases, mixing,
distribution), :mod:`~cnnspec.analysis.output_activation` (what a model output ends in) and
:mod:`~cnnspec.analysis.pixel_scaling` (who scales the pixels).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cnnspec.analysis.output_activation import output_info
from cnnspec.analysis.settings_data import LONG_WARMUP_HINT, _check_class_weight_keys, _data, long_warmups
from cnnspec.analysis.settings_reader import SectionReader, section_env
from cnnspec.analysis.settings_training import (
    _callbacks,
    _class_weight,
    _distribute,
    _loss,
    _metrics,
    _mixing,
    _optimizer,
    _phases,
    name_and_settings,
)
from cnnspec.analysis.settings_types import (
    DEFAULT_BATCH_SIZE,
    DataConfig,
    LossConfig,
    MetricConfig,
    TrainConfig,
)
from cnnspec.errors import Diagnostic, Diagnostics, SpecError, SpecPath
from cnnspec.layers import REGISTRY
from cnnspec.spec.sections import SEED_MAX

if TYPE_CHECKING:
    from cnnspec.analysis.compiled import CompiledSpec
    from cnnspec.ir import ModelIR


def layers_without_xla(ir: ModelIR) -> list[str]:
    """The model's layers Keras cannot compile with XLA (the registry's ``xla``, Keras'
    ``supports_jit``), by name: one is enough for Keras to run the whole model without XLA."""
    return [node.name for node in ir.nodes if node.kind in REGISTRY and not REGISTRY[node.kind].xla]


def training_config(compiled: CompiledSpec, warnings: list[Diagnostic] | None = None) -> TrainConfig:
    """The typed, defaulted and checked training settings of a compiled spec (``warnings``:
    where its warnings go, as compiling the spec collects them; dropped otherwise)."""
    diags = Diagnostics()
    reader = SectionReader(compiled, section_env(compiled), diags)
    data = _data(reader, compiled)
    units, _ = output_info(compiled)
    from cnnspec.analysis.tasks import output_tasks

    heads: dict[SpecPath, tuple[int, LossConfig]] = {}  # each output's units and loss, by its path

    def parse_loss(path: SpecPath, units: int, activation: str | None, default: str, task: str) -> LossConfig:
        heads[path[:-1]] = (units, loss := _loss(reader, path, units, activation, default, task))
        return loss

    tasks = output_tasks(
        reader,
        compiled,
        parse_loss,
        lambda path, task, binary, default: _metrics(
            reader, path, task, binary, default, heads.get(path[:-1])
        ),
    )
    first = tasks[0] if tasks else None
    loss = first.loss if first is not None else LossConfig("sparse_categorical_crossentropy")
    metrics = first.metrics if first is not None else (MetricConfig("accuracy"),)
    seed = reader.number(("training", "seed"), None, integer=True, minimum=0, maximum=SEED_MAX)
    runtime_jit = reader.known(("runtime", "jit_compile"), False)
    deterministic = bool(reader.known(("training", "deterministic"), False))
    if runtime_jit is True and deterministic:
        # Keras turns XLA off under op determinism with a bare warning: the run would not
        # compile what the spec (and lock.json) say
        reader.error(
            "expected runtime.jit_compile false or auto with training.deterministic: true; "
            "TensorFlow's op determinism has no XLA (Keras would turn it off)",
            ("runtime", "jit_compile"),
            "set runtime.jit_compile: false (auto picks false for a deterministic run), or drop "
            "training.deterministic",
        )
    elif runtime_jit is True and (unsupported := layers_without_xla(compiled.ir)):  # (one error)
        # Keras compiles such a model without XLA, with a bare warning: the run would not
        # compile what the spec (and lock.json) say, as with op determinism above
        reader.error(
            "expected runtime.jit_compile false or auto for this model; Keras cannot compile "
            f"{', '.join(unsupported)} with XLA and would train the whole model without it",
            ("runtime", "jit_compile"),
            "set runtime.jit_compile: auto (it picks false for this model) or false, or move the "
            "random_* layers into the augmentation: section, which runs them on the data, "
            "outside the model",
        )
    mixing = _mixing(reader, tasks)
    class_weight = _class_weight(reader)
    _check_class_weight_keys(reader, data, class_weight)
    strategy, startup_timeout = _distribute(reader)
    _refuse_replicated_accumulation(reader, strategy)
    optimizer = _optimizer(reader, ir=compiled.ir)
    phases = _phases(reader, compiled, optimizer)
    config = TrainConfig(
        data=data,
        epochs=sum(phase.epochs for phase in phases),
        phases=phases,
        phased=bool(reader.value(("training", "phases"), None)),
        batch_size=reader.number(("training", "batch_size"), DEFAULT_BATCH_SIZE, integer=True, minimum=1),
        steps_per_epoch=reader.number(("training", "steps_per_epoch"), None, integer=True, minimum=1),
        optimizer=optimizer,
        loss=loss,
        metrics=metrics,
        class_weight=class_weight,
        seed=seed,
        deterministic=deterministic,
        mixed_precision=bool(reader.known(("runtime", "mixed_precision"), False)),
        # "auto" is decided when the run starts (XLA is slower than plain TensorFlow for small
        # CNNs on CPU and faster for ResNets, see DESIGN.md); until then it counts as off.
        jit_compile=runtime_jit is True,
        jit_auto=runtime_jit == "auto",
        distribute=strategy,
        startup_timeout=startup_timeout,
        intra_op_threads=reader.number(("runtime", "threads", "intra_op"), 0, integer=True, minimum=0),
        inter_op_threads=reader.number(("runtime", "threads", "inter_op"), 0, integer=True, minimum=0),
        output_units=units,
        tasks=tasks,
        mixing=mixing,
    )
    callbacks = _callbacks(reader, config, data.validation_split > 0)
    if config.steps_per_epoch:  # the steps are known now (else once train has read the data)
        for path, message in long_warmups(config, config.steps_per_epoch):
            reader.warning(message, path, LONG_WARMUP_HINT, code="long-warmup")
    reader.check_substituted()  # (last: a reader's own error at a value is said, not the schema's too)
    diags.raise_if_errors()
    if warnings is not None:
        warnings.extend(diags.warnings)
    from dataclasses import replace

    return replace(config, callbacks=callbacks)


#: The strategies that train replicas in step (``merge_call`` across them), under which Keras'
#: gradient accumulation fails at the first step ("`merge_call` called while defining a new graph
#: or a tf.function": its apply sits in a ``cond``); ``one_device`` and ``default`` train it.
REPLICATED = ("mirrored", "multi_worker", "tpu")


def _refuse_replicated_accumulation(reader: SectionReader, strategy: str) -> None:
    """Refuse an optimizer's ``gradient_accumulation_steps`` (the spec's, or a phase's) under a
    strategy of :data:`REPLICATED`: ``train`` stopped with an internal error at the first batch."""
    if strategy not in REPLICATED:
        return
    phases = reader.value(("training", "phases"), None)
    places: list[SpecPath] = [("training", "optimizer")]
    places += [
        ("training", "phases", i, "optimizer") for i in range(len(phases) if isinstance(phases, list) else 0)
    ]
    for place in places:
        value = reader.value(place, None)
        name, settings = name_and_settings(value)
        if "gradient_accumulation_steps" in settings:
            reader.error(
                f"expected no gradient_accumulation_steps with runtime.distribute: {strategy}; Keras "
                "accumulates gradients on one device only (its update fails across replicas)",
                (*place, name, "gradient_accumulation_steps"),
                "drop gradient_accumulation_steps and raise training.batch_size instead (replicas "
                "share the batch), or train with runtime.distribute: default or one_device",
                key=True,
            )


def data_config(compiled: CompiledSpec, *, raise_errors: bool = False) -> DataConfig | None:
    """The ``data`` section as :class:`DataConfig`, or ``None`` when it has errors (those are
    reported by :func:`training_config`; callers that only lint skip the spec).
    ``raise_errors``: raise them instead (reading the data without the training settings)."""
    diags = Diagnostics()
    try:
        data = _data(SectionReader(compiled, section_env(compiled), diags), compiled)
    except SpecError:
        if raise_errors:
            raise
        return None
    if raise_errors:
        diags.raise_if_errors()
    return None if diags.errors else data
