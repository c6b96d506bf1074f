"""The ``data``, ``training`` and ``runtime`` sections as typed settings (no TensorFlow).

:func:`training_config` evaluates ``${…}`` expressions in these sections against the spec's
``vars``, fills in the documented defaults, and checks what the JSON Schema cannot (a monitored
value that is never logged, a learning-rate schedule combined with ``reduce_lr_on_plateau``,
``top_k_accuracy`` on a one-unit output, ...). Every problem is a located :class:`SpecError`,
raised before TensorFlow is imported or any data is read.
"""

from __future__ import annotations

import importlib.util
import math
import re
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from cnnspec.errors import (
    COMMAND_LINE_PREFIX,
    Diagnostic,
    Diagnostics,
    Loc,
    Note,
    SpecError,
    SpecPath,
    command_line_option,
    did_you_mean,
    format_path,
)
from cnnspec.fileio import user_path
from cnnspec.layers import REGISTRY
from cnnspec.spec.expr import ExpressionError, is_expression, substitute
from cnnspec.spec.sections import CACHED_SHUFFLE_BUFFER as CACHED_SHUFFLE_BUFFER
from cnnspec.spec.sections import SEED_MAX

if TYPE_CHECKING:
    from cnnspec.analysis import freezing
    from cnnspec.analysis.compiled import CompiledSpec
    from cnnspec.analysis.tasks import OutputTask
    from cnnspec.ir import ModelIR
    from cnnspec.layers.registry import LayerKind

DEFAULT_EPOCHS = 10
DEFAULT_BATCH_SIZE = 32
DEFAULT_LEARNING_RATE = 0.001
DEFAULT_VALIDATION_SPLIT = 0.1
DEFAULT_TEST_SPLIT = 0.2
KERAS_DATASETS = ("mnist", "fashion_mnist", "cifar10", "cifar100")
#: Class names of the Keras datasets that have them, in label order (shared by ``cnnspec train``
#: and the generated training script; cifar100's labels stay numbered).
KERAS_CLASS_NAMES: dict[str, list[str]] = {
    "mnist": [str(i) for i in range(10)],
    "fashion_mnist": [
        "t-shirt",
        "trouser",
        "pullover",
        "dress",
        "coat",
        "sandal",
        "shirt",
        "sneaker",
        "bag",
        "ankle_boot",
    ],
    "cifar10": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"],
}
#: The classes of the built-in sources whose classes are fixed, in label order: the names
#: ``cnnspec train`` loads for them (digits: scikit-learn's ``target_names``, 0–9; cifar100's
#: 100 labels stay numbered, as its loader leaves them), known without reading any data. The
#: ``shapes`` source's are :data:`cnnspec.shapes.SHAPE_NAMES` (see :func:`fixed_class_names`).
FIXED_CLASS_NAMES: dict[str, list[str]] = {
    "digits": [str(i) for i in range(10)],
    **KERAS_CLASS_NAMES,
    "cifar100": [str(i) for i in range(100)],
}
#: The largest pixel value each source stores and whether it stores integers (the pipeline's
#: ``data.rescale: auto`` scales integer pixels only). ``npz`` is absent: its dtype and range
#: are only known once the file is read.
SOURCE_PIXELS: dict[str, tuple[float, bool]] = {
    "digits": (1.0, False),  # scikit-learn's 0–16 values divided by 16 when loaded
    **{name: (255.0, True) for name in KERAS_DATASETS},
    "directory": (255.0, True),  # decoded images as uint8
    "shapes": (255.0, True),  # generated as uint8
    **{name: (255.0, True) for name in ("image_masks", "image_labels", "image_values")},
    "csv": (255.0, True),
}
#: The image sources whose targets come from a second file or folder (``images:`` with
#: ``masks:``, ``labels:`` or ``values:``), by that key.
IMAGE_TARGET_SOURCES = {"masks": "image_masks", "labels": "image_labels", "values": "image_values"}
#: What a spec's ``training.task`` asks the data for (the target kinds of :class:`Dataset`).
TASK_TARGETS = {
    "classification": "class",
    "multilabel": "multilabel",
    "regression": "regression",
    "segmentation": "mask",
}
#: sources read from disk batch by batch (:mod:`cnnspec.training.stream`)
STREAMED_SOURCES = ("directory", "csv")
_PROBABILITY_ACTIVATIONS = ("softmax", "sigmoid")


def outputs_logits(activation: str | None, from_logits: bool) -> bool:
    """Whether an output that ends with ``activation`` gives logits, its loss told
    ``from_logits``: the one rule by which training's metrics, the test report, predict, the
    exports and the generated script read the output's values (:attr:`LossConfig.from_logits`).
    What the model outputs decides: after a softmax or sigmoid the values are probabilities
    whatever ``from_logits`` says (Keras' crossentropy then reads the values before the
    activation, so the loss agrees); anything else gives what ``from_logits`` says."""
    return False if activation in _PROBABILITY_ACTIVATIONS else from_logits


#: Whether a larger value is better, for every value cnnspec logs: the loss and each metric a
#: task may configure (by :attr:`MetricConfig.name`; analysis/tasks.py ``METRICS_OF_TASK``).
#: The one table behind a callback's ``mode: auto`` (training/callbacks.py) and the search
#: objective's default direction (analysis/search_check.py), through
#: :meth:`TrainConfig.higher_is_better`; a test holds it to each Keras metric's own direction.
HIGHER_IS_BETTER: dict[str, bool] = {
    "loss": False,
    "accuracy": True,
    "top_k_accuracy": True,
    "precision": True,
    "recall": True,
    "auc": True,
    "f1": True,
    "mean_iou": True,
    "r2": True,
    "mae": False,
    "mse": False,
    "rmse": False,
}


@dataclass(frozen=True)
class DataConfig:
    """Where the images come from and how they are split and scaled."""

    kind: str  # digits | mnist | … | npz | directory | csv | shapes | image_masks | image_labels | …
    path: Path | None = None
    test_path: Path | None = None
    image_size: tuple[int, int] | None = None
    color_mode: str | None = None
    validation_split: float = DEFAULT_VALIDATION_SPLIT
    test_split: float | None = None
    rescale: float | str | None = "auto"
    shuffle_buffer: int | None = None
    limit: int | None = None
    classes: tuple[str | int, ...] | None = None  # data.classes: subset and order of the labels
    per_class: int | None = None  # data.per_class: at most this many training images per class
    target: str | dict[str, str] | None = None
    """The target asked for (``shapes``: class | multilabel | count | area | mask, or one per
    output; ``npz``: class | multilabel | regression | mask); ``None``: the source's default."""
    labels_path: Path | None = None
    """``images`` sources: the masks folder, or the labels/values table (CSV or JSON)."""
    options: dict[str, Any] = field(default_factory=dict)
    """Source settings: the ``shapes`` generator's, or the ``classes`` table of a masks folder."""
    image_column: str = "file"  # csv: the column of image paths
    label_column: str = "label"  # csv: the column of class labels
    cache: str = "none"  # streamed sources: none | memory | disk
    keep_cache: bool = False  # disk: keep the cache file in the run folder
    on_bad_file: str = "error"  # streamed sources: error | skip

    @property
    def splits_test(self) -> bool:
        """The test set is a seeded split of the source (not a test set of its own)."""
        return self.kind not in (*KERAS_DATASETS, "npz") and self.test_path is None

    @property
    def streamed(self) -> bool:
        """Read from disk batch by batch (image folders and CSVs), not loaded whole."""
        return self.kind in STREAMED_SOURCES

    def describe(self) -> dict[str, Any]:
        """The source as JSON-ready data (for lock.json)."""
        out: dict[str, Any] = {"kind": self.kind}
        if self.labels_path is not None:
            out["labels_path"] = str(self.labels_path)
        if self.target is not None:
            out["target"] = self.target
        if self.options:
            out["options"] = self.options
        if self.path is not None:
            out["path"] = str(self.path)
        if self.test_path is not None:
            out["test_path"] = str(self.test_path)
        if self.image_size is not None:
            out["image_size"] = list(self.image_size)
        if self.color_mode is not None:
            out["color_mode"] = self.color_mode
        if self.classes is not None:
            out["classes_selected"] = list(self.classes)
        if self.per_class is not None:
            out["per_class"] = self.per_class
        if self.kind == "csv":
            out["image_column"], out["label_column"] = self.image_column, self.label_column
        return out


@dataclass(frozen=True)
class Schedule:
    """A learning-rate schedule with optional linear warm-up."""

    kind: str  # constant | cosine_decay | exponential_decay | piecewise_constant
    settings: dict[str, Any] = field(default_factory=dict)
    warmup_steps: int = 0
    #: where it is written (the ``learning_rate`` mapping's path; not compared: one schedule
    #: written in two places is the same schedule)
    at: SpecPath = field(default=(), compare=False)

    def describe(self) -> dict[str, Any]:
        """JSON-ready (lock.json): ``{kind: settings}`` as the spec writes it, ``warmup_steps``
        among the settings where there is a warm-up. (A resume compares the spec's hash and
        resolved.yaml, never this record: a lock written before it kept ``warmup_steps``
        resumes as well.)"""
        settings = (
            {**self.settings, "warmup_steps": self.warmup_steps} if self.warmup_steps else self.settings
        )
        return {self.kind: dict(settings)}


@dataclass(frozen=True)
class OptimizerConfig:
    name: str
    learning_rate: float | Schedule
    settings: dict[str, Any] = field(default_factory=dict)


#: The positive numbers a float32 holds as normal numbers, rounded inward: an optimizer keeps its
#: learning rate as one (a larger rate is infinite there, a smaller one 0 or imprecise).
FLOAT32_RANGE = (1.2e-38, 3.4e38)
#: The losses of independent 0/1 targets, and those of one-hot class labels.
BINARY_LOSSES = ("binary_crossentropy", "binary_focal_crossentropy")
ONE_HOT_LOSSES = ("categorical_crossentropy", "categorical_focal_crossentropy")


@dataclass(frozen=True)
class LossConfig:
    name: str
    from_logits: bool = False
    label_smoothing: float = 0.0
    delta: float = 1.0  # huber
    gamma: float = 2.0  # the focal losses' focusing (cnnspec.spec.sections.FOCAL_GAMMA)
    alpha: float = 0.25  # and their weight (FOCAL_ALPHA)
    apply_class_balancing: bool = False  # binary_focal_crossentropy: alpha on positives only
    #: ``from_logits`` as the Keras loss is built with, where it is not :attr:`from_logits` (the
    #: output's values: :func:`outputs_logits`): a ``from_logits: true`` written for an output
    #: that ends with a softmax or sigmoid. The plain crossentropies then read the values before
    #: the activation all the same; a focal loss squashes them again. Kept as written, so that a
    #: run trains as it did.
    compiled_from_logits: bool | None = None

    @property
    def keras_from_logits(self) -> bool:
        """``from_logits`` of the Keras loss (the trainer's and the generated script's)."""
        return self.from_logits if self.compiled_from_logits is None else self.compiled_from_logits

    @property
    def one_hot(self) -> bool:
        """A loss of one-hot class labels (categorical crossentropy, focal or not)."""
        return self.name in ONE_HOT_LOSSES

    @property
    def binary(self) -> bool:
        """A loss of independent 0/1 targets (binary crossentropy, focal or not)."""
        return self.name in BINARY_LOSSES

    @property
    def focal(self) -> bool:
        """A focal loss: crossentropy weighted by (1 - p)^gamma."""
        from cnnspec.spec.sections import FOCAL_LOSSES

        return self.name in FOCAL_LOSSES

    def keras_focal(self) -> tuple[str, dict[str, Any]] | None:
        """A focal loss's class in ``keras.losses`` and its keywords (``None``: no focal loss):
        the one table the trainer and the generated scripts build it from."""
        common = {
            "alpha": self.alpha,
            "gamma": self.gamma,
            "from_logits": self.keras_from_logits,
            "label_smoothing": self.label_smoothing,
        }
        if self.name == "categorical_focal_crossentropy":
            return "CategoricalFocalCrossentropy", common
        if self.name == "binary_focal_crossentropy":
            return "BinaryFocalCrossentropy", {"apply_class_balancing": self.apply_class_balancing, **common}
        return None


@dataclass(frozen=True)
class MetricConfig:
    name: str  # accuracy | top_k_accuracy | precision | recall | auc | f1 | mae | mse | rmse | r2 | mean_iou
    k: int = 5

    @property
    def log_name(self) -> str:
        """The key this metric has in the training logs."""
        return f"top_{self.k}_accuracy" if self.name == "top_k_accuracy" else self.name


@dataclass(frozen=True)
class CallbackConfig:
    name: str
    settings: dict[str, Any]
    path: SpecPath


@dataclass(frozen=True)
class Mixer:
    """``training.mixup`` or ``training.cutmix``: Keras' MixUp or CutMix with its one setting."""

    kind: str  # mixup | cutmix (a key of cnnspec.spec.sections.MIXING)
    amount: float  # MixUp's alpha, CutMix's factor

    @property
    def setting(self) -> str:
        """The name of Keras' argument (and of the spec's setting): ``alpha`` or ``factor``."""
        from cnnspec.spec.sections import MIXING

        return MIXING[self.kind].setting

    @property
    def keras_class(self) -> str:
        """The class in ``keras.layers``: ``MixUp`` or ``CutMix``."""
        from cnnspec.spec.sections import MIXING

        return MIXING[self.kind].keras_class


@dataclass(frozen=True)
class MixingConfig:
    """How training batches are mixed: by one of ``training.mixup`` and ``training.cutmix``, or,
    with both on, each batch by one of them, CutMix with probability ``switch``
    (``training.mix_switch``: timm's ``switch_prob``)."""

    mixers: tuple[Mixer, ...]  # one or two, in MIXING's order (mixup before cutmix)
    switch: float | None = None  # both on: the chance a batch goes to the second (CutMix)

    @property
    def kinds(self) -> str:
        """``mixup``, or ``mixup and cutmix``: the keys that are on, as a comment says them."""
        return " and ".join(mixer.kind for mixer in self.mixers)

    def describe(self) -> dict[str, Any]:
        """JSON-ready (lock.json): ``{kind: {setting: amount}}`` per mixer, and ``mix_switch``
        where both are on."""
        from cnnspec.spec.sections import MIX_SWITCH

        described: dict[str, Any] = {m.kind: {m.setting: m.amount} for m in self.mixers}
        if self.switch is not None:
            described[MIX_SWITCH] = self.switch
        return described


def rate_scale_text(scale: dict[str, Any]) -> str:
    """``learning_rate_scale`` resolved (layer → factor) in words, for the console and the
    report: ``layer-wise rates: 3 layer(s) ×0.1, 1 layer(s) ×2`` (empty for none)."""
    counts: dict[float, int] = {}
    for factor in scale.values():
        if isinstance(factor, (int, float)) and not isinstance(factor, bool):  # (a lock read back)
            counts[factor] = counts.get(factor, 0) + 1
    parts = [f"{count} layer(s) ×{factor:g}" for factor, count in counts.items()]
    return f"layer-wise rates: {', '.join(parts)}" if parts else ""


@dataclass(frozen=True)
class PhaseConfig:
    """One stage of training: its epochs, the layers frozen during it, its optimizer.

    A run without ``training.phases`` has one phase (``training.epochs``, the item flags and
    ``training.freeze``/``unfreeze``)."""

    epochs: int
    frozen: tuple[str, ...] = ()  # layer names, in model order
    optimizer: OptimizerConfig = field(default_factory=lambda: OptimizerConfig("adam", DEFAULT_LEARNING_RATE))
    first_epoch: int = 0  # the number of epochs before this phase
    #: ``learning_rate_scale`` resolved: (layer, factor) for each layer with weights whose
    #: steps are scaled, in model order (the other layers train at the rate itself).
    rate_scale: tuple[tuple[str, float], ...] = ()

    def describe(self) -> dict[str, Any]:
        """The phase as JSON-ready data (lock.json, history)."""
        rate = self.optimizer.learning_rate
        described = {
            "epochs": self.epochs,
            "first_epoch": self.first_epoch + 1,
            "last_epoch": self.first_epoch + self.epochs,
            "frozen": list(self.frozen),
            "optimizer": self.optimizer.name,
            "learning_rate": rate if isinstance(rate, float) else rate.describe(),
        }
        if self.rate_scale:  # (written only where there is one: earlier runs' locks stay as they are)
            described["learning_rate_scale"] = dict(self.rate_scale)
        return described


@dataclass(frozen=True)
class TrainConfig:
    """Everything ``cnnspec train`` needs besides the model: typed, defaulted, checked."""

    data: DataConfig
    epochs: int = DEFAULT_EPOCHS
    batch_size: int = DEFAULT_BATCH_SIZE
    steps_per_epoch: int | None = None
    optimizer: OptimizerConfig = field(default_factory=lambda: OptimizerConfig("adam", DEFAULT_LEARNING_RATE))
    loss: LossConfig = field(default_factory=lambda: LossConfig("sparse_categorical_crossentropy"))
    metrics: tuple[MetricConfig, ...] = (MetricConfig("accuracy"),)
    callbacks: tuple[CallbackConfig, ...] = ()
    class_weight: str | dict[str, float] | None = None
    seed: int | None = None
    deterministic: bool = False
    mixed_precision: bool = False
    jit_compile: bool = False
    jit_auto: bool = False  # runtime.jit_compile: auto — time both, keep the faster (distribute.py)
    distribute: str = "default"  # runtime.distribute.strategy
    startup_timeout: float = 300.0  # runtime.distribute.startup_timeout (multi_worker)
    intra_op_threads: int = 0
    inter_op_threads: int = 0
    output_units: int = 0
    #: The training stages in order (one when the spec has no ``training.phases``).
    phases: tuple[PhaseConfig, ...] = ()
    #: Whether the spec wrote ``training.phases`` (lock.json and reports mark the boundaries).
    phased: bool = False
    #: ``training.mixup`` / ``training.cutmix`` (``None``: training batches are not mixed)
    mixing: MixingConfig | None = None

    def phase_at(self, epoch: int) -> int:
        """The index of the phase that trains epoch ``epoch`` (0-based); the last one past the end."""
        for index, phase in enumerate(self.phases):
            if epoch < phase.first_epoch + phase.epochs:
                return index
        return max(0, len(self.phases) - 1)

    #: every output's task, loss and metrics (analysis/tasks.py), in the model's output order
    tasks: tuple[OutputTask, ...] = ()

    @property
    def task(self) -> str:
        """The first output's task (``classification`` for today's single-output classifiers)."""
        return self.tasks[0].task if self.tasks else "classification"

    @property
    def task_path(self) -> bool:
        """Anything but one classification output trains through the task-aware path."""
        # (no tasks: a config made by hand, without a model: the classifier's path, as before)
        return len(self.tasks) > 1 or (len(self.tasks) == 1 and self.tasks[0].task != "classification")

    @property
    def binary(self) -> bool:
        return self.loss.binary

    @property
    def averages_weights(self) -> bool:
        """Whether an optimizer of the run keeps a moving average of the weights (``use_ema``):
        validation and the epoch's-end callbacks then see the average (training/averaged.py)."""
        optimizers = [phase.optimizer for phase in self.phases] or [self.optimizer]
        return any(optimizer.settings.get("use_ema") is True for optimizer in optimizers)

    @property
    def one_hot_labels(self) -> bool:
        """Labels go one-hot through the pipeline (categorical loss, or precision/recall/AUC
        of a multi-class output, which Keras computes on one-hot targets)."""
        if self.binary:
            return False
        return self.loss.one_hot or any(m.name in ("precision", "recall", "auc") for m in self.metrics)

    def logged_names(self, validation: bool) -> list[str]:
        """Every key that appears in the per-epoch logs."""
        return list(self._logged(validation))

    def _logged(self, validation: bool) -> dict[str, bool | None]:
        """Every key of the per-epoch logs → whether a larger value is better (``None``: a
        metric outside :data:`HIGHER_IS_BETTER`, in a config made by hand)."""
        better = HIGHER_IS_BETTER.get
        base: dict[str, bool | None] = {"loss": False, **{m.log_name: better(m.name) for m in self.metrics}}
        if len(self.tasks) > 1:  # Keras logs each output's loss and metrics as NAME_KEY
            base = {"loss": False}
            for out in self.tasks:
                base[f"{out.name}_loss"] = False
                base.update({f"{out.name}_{m.log_name}": better(m.name) for m in out.metrics})
        return base | ({f"val_{n}": up for n, up in base.items()} if validation else {})

    def higher_is_better(self, name: str) -> bool | None:
        """Whether a larger value of the logged ``name`` (``val_accuracy``, ``mask_mean_iou``,
        ``val_r2``, …) is better; ``None`` for a name this run does not log."""
        return self._logged(True).get(name)

    def monitor_mode(self, settings: dict[str, Any]) -> str:
        """``min`` or ``max`` for a callback's monitored value: as its settings say, else
        (``mode: auto``) by :meth:`higher_is_better`, else ``auto`` (Keras' own rule: the
        direction of the model's metric of that name; ``loss`` is lower). ``cnnspec train`` and
        the generated training script pass the same mode."""
        mode = settings.get("mode", "auto")
        if mode != "auto":
            return str(mode)
        higher = self.higher_is_better(str(settings.get("monitor", "val_loss")))
        return "auto" if higher is None else "max" if higher else "min"

    def callback(self, name: str) -> CallbackConfig | None:
        return next((c for c in self.callbacks if c.name == name), None)


class _Poisoned:
    """The type of :data:`POISONED`."""

    def __repr__(self) -> str:
        return "<poisoned>"

    def __bool__(self) -> bool:
        # falsy, so that ``value or []``-style defaults treat it as absent: a reader that
        # forgets to test for it falls back to the default, never to a spurious error
        return False


#: The value of a ``${…}`` expression that failed to evaluate (its error is reported once,
#: where it was written). Distinct from ``None``, which a user may write (``${None}``): every
#: reader of a settings value stays silent for it, as rustc stays silent for a poisoned value.
POISONED: Any = _Poisoned()


class _Reader:
    """Reads one section with expression substitution and located errors.

    An expression that fails is reported once and becomes :data:`POISONED`; the reader
    remembers its path, and :meth:`error` drops any later error at or inside that path (the
    checks of a value that does not exist would only repeat the first error)."""

    def __init__(self, compiled: CompiledSpec, env: dict[str, Any], diags: Diagnostics) -> None:
        self.compiled = compiled
        self.doc = compiled.doc
        self.env = env
        self.diags = diags
        # an error in an `extends` base says where it is included, as the schema's and the
        # resolver's do (the file the user ran names no line of the base)
        diags.includes.update(compiled.doc.includes)
        #: the paths of the expressions that failed
        self.failed: set[SpecPath] = set()

    def poisoned(self, path: SpecPath) -> bool:
        """The value at ``path`` is unknown: its expression, or that of a value holding it, failed."""
        return any(path[: len(bad)] == bad for bad in self.failed)

    def poisoned_within(self, path: SpecPath) -> bool:
        """Part of the value at ``path`` is unknown (:meth:`poisoned`, or an item inside it
        failed): a check that compares its items with each other stays silent."""
        return self.poisoned(path) or any(bad[: len(path)] == path for bad in self.failed)

    def error(
        self,
        message: str,
        path: SpecPath,
        hint: str | None = None,
        *,
        key: bool = False,
        code: str = "training",
        notes: tuple[Note, ...] = (),
    ) -> None:
        """Report a located error at ``path``; silent where the value there was poisoned. An
        error on a ``${…}`` value notes where the vars it read were set, as a model error does
        (after ``notes``, the caller's)."""
        if self.poisoned(path):
            return
        from cnnspec.spec.resolve_origins import section_origins

        loc = self.doc.key_loc(path) if key else self.doc.loc(path)
        origins, fold = ((), ()) if key else section_origins(self.doc, self.env, path)
        self.diags.error(
            message, loc, format_path(path), code=code, hint=hint, notes=(*notes, *origins), origins=fold
        )

    def warning(self, message: str, path: SpecPath, hint: str, *, code: str, key: bool = False) -> None:
        """Report a located warning at ``path`` (``key``: at its key)."""
        loc = self.doc.key_loc(path) if key else self.doc.loc(path)
        self.diags.warning(message, loc, format_path(path), code=code, hint=hint)

    def value(self, path: SpecPath, default: Any = None) -> Any:
        """The value at ``path`` with every ``${…}`` substituted (``default`` when absent;
        :data:`POISONED` for an expression that failed, itself or as an item of the value)."""
        node: Any = self.doc.data
        for part in path:
            in_dict = isinstance(node, dict) and part in node
            if in_dict or (isinstance(node, list) and isinstance(part, int) and part < len(node)):
                node = node[part]
            else:
                return default
        return self.substitute(node, path)

    def known(self, path: SpecPath, default: Any = None) -> Any:
        """:meth:`value`, with ``default`` for a value whose expression failed (a setting that
        is read as it is, with no check of its own to silence: a flag, a name)."""
        value = self.value(path, default)
        return default if value is POISONED else value

    def substitute(self, value: Any, path: SpecPath) -> Any:
        """``value`` (at ``path``) with every ``${…}`` in it evaluated; one that fails is
        reported here, once, and is :data:`POISONED` (the reader may meet it again, when a
        section is read twice or a value is read by several checks: reported only once)."""
        if isinstance(value, dict):
            return {k: self.substitute(v, (*path, k)) for k, v in value.items()}
        if isinstance(value, list):
            return [self.substitute(v, (*path, i)) for i, v in enumerate(value)]
        if is_expression(value):
            if path in self.failed:
                return POISONED
            try:
                return substitute(value, self.env)
            except ExpressionError as exc:
                self.error(f"in {value!r}: {exc.message}", path, exc.hint)
                self.failed.add(path)
                return POISONED
        return value

    def number(
        self,
        path: SpecPath,
        default: Any,
        *,
        integer: bool = False,
        minimum: float | None = None,
        maximum: float | None = None,
        below: float | None = None,
        above: float | None = None,
    ) -> Any:
        """The number at ``path`` within the bounds (``above``/``below``: exclusive), or
        ``default`` after a located error."""
        value = self.value(path, default)
        if value is None or value is default or value is POISONED:
            # absent, or an expression that failed (reported once; errors raise at the end)
            return default
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if integer:
            ok = ok and float(value).is_integer()
        if ok and minimum is not None and value < minimum:
            ok = False
        if ok and maximum is not None and value > maximum:
            ok = False
        if ok and below is not None and value >= below:
            ok = False
        if ok and above is not None and value <= above:
            ok = False
        if not ok:
            want = "an integer" if integer else "a number"
            bounds = [f"> {above}"] if above is not None else []
            bounds += [f"≥ {minimum}"] if minimum is not None else []
            bounds += [f"≤ {maximum}"] if maximum is not None else []
            bounds += [f"< {below}"] if below is not None else []
            self.error(f"expected {want} {' and '.join(bounds)}; received {value!r}".strip(), path)
            return default
        return int(value) if integer else float(value)


def section_env(compiled: CompiledSpec) -> dict[str, Any]:
    """The spec's evaluated ``vars`` (the names ``${…}`` in data/training/runtime may use)."""
    from cnnspec.spec.resolve import Resolver

    return Resolver(compiled.doc, Diagnostics()).resolve_vars()


def _relative(reader: _Reader, path_text: str, compiled: CompiledSpec, at: SpecPath) -> Path:
    """A data path: relative paths are read from the folder of the file that wrote them."""
    from cnnspec.spec.compose import path_refusal

    refused = path_refusal(path_text)
    if refused is not None:  # the OS calls would raise ValueError on it
        reader.error(refused, at)
        path_text = path_text.replace("\0", "")
    path = user_path(path_text)
    if path.is_absolute():
        return path
    loc = compiled.doc.loc(at)
    if loc is not None and not loc.file.startswith("<"):
        return Path(loc.file).resolve().parent / path
    return Path.cwd() / path


def _source_path(reader: _Reader, source: dict[str, Any], key: str, compiled: CompiledSpec) -> Path | None:
    """The path ``data.source.KEY`` names, read from the folder of the file that wrote it;
    ``None`` where its expression failed (reported: no path to resolve)."""
    if source[key] is POISONED:
        return None
    return _relative(reader, str(source[key]), compiled, ("data", "source", key))


#: A layer of a model graph as the TF-free graph rules walk it (a spec's IR node or name, a
#: Keras layer or tensor): only handed back to the caller's functions (and hashed, by
#: :func:`scales_every_path`).
Step = TypeVar("Step", bound=Hashable)
Traced = TypeVar("Traced")
#: How far :func:`trace_activation` walks back (a real head has a few pass-through layers; the
#: bound only guards a cyclic oddity of a hand-made graph).
_TRACE_LIMIT = 256


def trace_activation(
    start: Traced | None,
    activation: Callable[[Traced], str | None],
    kind: Callable[[Traced], LayerKind | None],
    source: Callable[[Traced], Traced | None],
    last_axis: Callable[[Traced], int | None],
) -> str | None:
    """The activation an output ends with, by the one rule a spec and a model file share: the
    layer that computes it says (``activation(layer)``: its own activation, ``None`` for a
    linear one), and a layer whose registry kind ``passes_activation`` (dropout, flatten,
    reshape …: the values of its input, unchanged) says what its input's layer says
    (``source(layer)``: that layer, ``None`` where there is none). ``kind(layer)``: the
    registry's kind (``None``: one cnnspec does not know, which passes nothing on). A softmax
    followed by a flatten read as logits was applied a second time by predict.

    ``last_axis(layer)``: the size of the last axis of the layer's output (``None``: unknown).
    A softmax is a distribution over its last axis; through a flatten or reshape that changes
    that axis (``(4, 4, 3)`` flattened to 48 values) the output is no distribution over the
    classes, so it is read as none. Row-major reshapes that keep the last axis's size keep its
    groups (``(4, 4, 3)`` → ``(16, 3)``)."""
    layer = start
    end = last_axis(start) if start is not None else None
    for _ in range(_TRACE_LIMIT):
        if layer is None:
            return None
        found = activation(layer)
        if found == "softmax" and (end is None or last_axis(layer) != end):
            return None
        if found is not None:
            return found
        layer_kind = kind(layer)
        if layer_kind is None or not layer_kind.passes_activation:
            return None
        layer = source(layer)
    return None


def output_activation(compiled: CompiledSpec, name: str) -> str | None:
    """The activation that produced the output ``name``, looking through layers that pass
    their input's activation on (dropout, reshape, ...: :func:`trace_activation`, the rule a
    model file's outputs are read by too); ``None`` when there is none."""
    by_name = {n.name: n for n in compiled.ir.nodes}

    def own(node: Any) -> str | None:
        kind = REGISTRY.get(node.kind)
        if kind is not None:  # its activation setting, or the activation the layer is (softmax)
            return kind.output_activation(node.params, list(node.input_shapes))
        act = node.params.get("activation")
        return act if isinstance(act, str) and act not in ("linear", "identity") else None

    return trace_activation(
        by_name.get(name),
        own,
        lambda node: REGISTRY.get(node.kind),
        lambda node: by_name.get(node.inputs[0]) if node.inputs else None,
        lambda node: node.shape[-1] if node.shape else None,
    )


def output_info(compiled: CompiledSpec) -> tuple[int, str | None]:
    """Units of the model's (first) output and the activation that produced it, if known."""
    ir = compiled.ir
    if not ir.outputs or not ir.nodes:
        return 0, None
    shape = ir.shape_of(ir.outputs[0]) or ()
    units = int(shape[-1]) if shape else 0
    return units, output_activation(compiled, ir.outputs[0])


def _image_reading(
    reader: _Reader, compiled: CompiledSpec, source: dict[str, Any]
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


def check_image_size(reader: _Reader, shape: tuple[int, ...], size: Sequence[int], where: SpecPath) -> None:
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


def _shapes_options(reader: _Reader, compiled: CompiledSpec, settings: dict[str, Any]) -> dict[str, Any]:
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


def _shapes_target(reader: _Reader, compiled: CompiledSpec, value: Any) -> str | dict[str, str]:
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


def _check_class_selection(reader: _Reader, data: DataConfig) -> None:
    """``data.classes`` and ``data.per_class`` select classification labels: refused where the
    spec says the source's targets are something else, before anything is loaded (else
    ``codegen --script`` would drop them without a word and ``train`` refuse only after loading;
    training/data.py checks again, for the sources whose data alone tells)."""
    target = spec_target(data)
    if target is None or target == "class":
        return
    hint = "leave it out, or use a source with class labels"
    if data.kind == "shapes":
        hint += " (shapes with target: class)"
    for key, value in (("classes", data.classes), ("per_class", data.per_class)):
        if value is not None:
            reader.error(
                f"data.{key} selects classification labels; this source's targets are {target!r}",
                ("data", key),
                hint,
            )


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


def _check_fixed_classes(reader: _Reader, data: DataConfig) -> None:
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
    skipped = {index for index, entry in enumerate(data.classes) if entry is POISONED}
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
        found.setdefault(
            path,
            f"warmup_steps {rate.warmup_steps} is not below the {total} steps of {span} ({steps} per "
            f"epoch × {phase.epochs} epoch(s)): the learning rate rises all along and never reaches "
            f"{float(first):g}",
        )
    return list(found.items())


def _check_class_weight_keys(
    reader: _Reader, data: DataConfig, weights: str | dict[str, float] | None
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


def _data(reader: _Reader, compiled: CompiledSpec) -> DataConfig:
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
    _check_fixed_classes(reader, data)
    _check_cache(reader, data)
    return data


def _check_cache(reader: _Reader, data: DataConfig) -> None:
    """A located warning for ``data.cache`` / ``data.keep_cache`` / ``data.on_bad_file: skip``
    where they do nothing, as for other settings that would be accepted and never used: a source
    held in memory whole (digits, an ``.npz``, ``{images, masks}`` …) has no decoded images to
    cache, nor files its stream leaves out (its images are read before training: an unreadable
    one stops train and the generated script alike, skip or not), and ``keep_cache`` keeps only
    a ``cache: disk`` file."""
    # (written as the default, none and false, they ask for nothing: no warning)
    said = {"cache": data.cache != "none", "keep_cache": data.keep_cache}
    if not data.streamed:
        for key in (key for key, value in said.items() if value and reader.value(("data", key)) is not None):
            reader.warning(
                f"data.{key} has no effect: the {data.kind} source is held in memory whole (a cache "
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
                f"data.on_bad_file: skip has no effect: the {data.kind} source {held} (skip leaves out "
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
            f"data.keep_cache has no effect: the cache is {data.cache} (keep_cache keeps the file "
            "of a cache: disk when the run ends)",
            ("data", "keep_cache"),
            "set data.cache: disk to keep a cache file, or remove keep_cache",
            code="unused-setting",
            key=True,
        )


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
    from cnnspec.spec.sections import FOCAL_ALPHA, FOCAL_GAMMA

    name, settings = name_and_settings(value)
    return LossConfig(
        name,
        from_logits,
        _number_or(settings.get("label_smoothing"), 0.0),
        _number_or(settings.get("delta"), 1.0),
        _number_or(settings.get("gamma"), FOCAL_GAMMA),
        _number_or(settings.get("alpha"), FOCAL_ALPHA),
        settings.get("apply_class_balancing") is True,
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
    """A number setting's bounds as :meth:`_Reader.number` takes them, read from its JSON
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
    reader: _Reader, settings: dict[str, Any], path: SpecPath, schemas: dict[str, Any]
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


def _schedule(reader: _Reader, value: dict[str, Any], path: SpecPath) -> Schedule:
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
    reader: _Reader,
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


def _layer_patterns(reader: _Reader, value: Any, path: SpecPath, ir: ModelIR | None) -> None:
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
    reader: _Reader,
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
    from cnnspec.spec.sections import FOCAL_ALPHA, FOCAL_GAMMA

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
    return LossConfig(
        name,
        logits,
        _number_or(settings.get("label_smoothing"), 0.0),
        _number_or(settings.get("delta"), 1.0),
        _number_or(settings.get("gamma"), FOCAL_GAMMA),
        _number_or(settings.get("alpha"), FOCAL_ALPHA),
        balancing is True,
        # (the Keras loss keeps what the spec says: the same loss, and the same run, as before)
        None if logits == bool(from_logits) else bool(from_logits),
    )


#: The losses that read the output as logits or as probabilities (``from_logits``).
CROSSENTROPY_LOSSES = (*BINARY_LOSSES, *ONE_HOT_LOSSES, "sparse_categorical_crossentropy")


def _warn_logits_mismatch(
    reader: _Reader, path: SpecPath, name: str, from_logits: bool, activation: str | None
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
    reader: _Reader,
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
    reader: _Reader, metric: MetricConfig, path: SpecPath, k_written: bool, head: tuple[int, LossConfig]
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


def _callbacks(reader: _Reader, config: TrainConfig, validation: bool) -> tuple[CallbackConfig, ...]:
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
    return tuple(out)


def _schedule_sources(reader: _Reader, config: TrainConfig) -> list[tuple[SpecPath | None, str]]:
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


def _learning_rate(reader: _Reader, value: Any, path: SpecPath) -> float | Schedule | None:
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


def _phases(reader: _Reader, compiled: CompiledSpec, optimizer: OptimizerConfig) -> tuple[PhaseConfig, ...]:
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
    _warn_weightless_patterns(reader, patterns, ir, ("training",), written)
    source: SpecPath = ("training", RATE_SCALE)  # the learning_rate_scale in force
    scale = _rate_scale(reader, patterns, source, compiled.ir)
    raw = reader.value(("training", "phases"), None)
    epochs = reader.number(("training", "epochs"), DEFAULT_EPOCHS, integer=True, minimum=1)
    optimizer_at: SpecPath = ("training", "optimizer")  # where the optimizer in force is written
    if not raw:
        phase = PhaseConfig(epochs, tuple(freezing.ordered(ir, frozen)), optimizer, 0, scale)
        _warn_idle_scales(reader, patterns, ir, [(phase, source)])
        _warn_frozen_phases(reader, ir, [(phase, ("training", "freeze"))])
        _refuse_ftrl_warmup(reader, optimizer, optimizer_at, set())
        return (phase,)
    if "epochs" in (compiled.doc.data.get("training") or {}):
        epochs_at = compiled.doc.key_loc(("training", "epochs"))
        phases_at = compiled.doc.key_loc(("training", "phases"))
        reader.error(
            "expected the epochs in each phase; received training.epochs beside training.phases",
            ("training", "epochs"),
            _phased_epochs_hint(compiled.doc.loc(("training", "epochs"))),
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
        _warn_weightless_patterns(reader, patterns, ir, path, written)
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
    _warn_idle_scales(reader, patterns, ir, list(zip(phases, sources, strict=True)))
    _warn_frozen_phases(reader, ir, [(phase, ("training", "phases", i)) for i, phase in enumerate(phases)])
    return tuple(phases)


def _warn_frozen_phases(reader: _Reader, ir: ModelIR, phases: list[tuple[PhaseConfig, SpecPath]]) -> None:
    """A located warning for a phase (or the one training) that freezes every layer with
    trainable weights: its epochs change nothing (Keras said only "The model does not have
    any trainable weights", in its own words)."""
    trainable = {node.name for node in ir.nodes if node.counts.trainable}
    for index, (phase, path) in enumerate(phases):
        if trainable and trainable <= set(phase.frozen) and reader.value(path, None) is not None:
            phased = path[1] == "phases"
            reader.warning(
                f"{f'phase {index + 1}' if phased else 'the training'} trains nothing: every layer "
                "with trainable weights is frozen",
                path,
                "unfreeze the layers it should train (unfreeze: [head])"
                + (", or leave the phase out" if phased else ""),
                code="unused-setting",
                key=not phased,
            )


def _refuse_two_rates(reader: _Reader, item: dict[str, Any], path: SpecPath) -> None:
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
    reader: _Reader, optimizer: OptimizerConfig, path: SpecPath, seen: set[SpecPath]
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


def _warn_idle_scales(
    reader: _Reader, patterns: freezing.Patterns, ir: ModelIR, phases: list[tuple[PhaseConfig, SpecPath]]
) -> None:
    """A located warning for a ``learning_rate_scale`` that changes nothing, or less than it
    says: a pattern whose layers have no weights, whose every layer a later pattern sets, or
    whose layers (those it sets) are frozen in every phase it is in force (a frozen layer takes
    no steps); a mapping never in force (each phase writes its own); factors under Adafactor's
    cap (:func:`_warn_capped_scales`)."""
    from cnnspec.analysis import freezing
    from cnnspec.spec.sections import RATE_SCALE

    _warn_capped_scales(reader, phases)
    weighted = set(freezing.ordered(ir, patterns.layers))
    trained: dict[SpecPath, set[str]] = {}  # each mapping in force: the layers some phase trains
    for phase, source in phases:
        trained.setdefault(source, set()).update(weighted - set(phase.frozen))
    for source in dict.fromkeys((("training", RATE_SCALE), *trained)):
        written = reader.value(source, None)
        if not isinstance(written, dict) or not written:
            continue
        if source not in trained:
            reader.warning(
                f"{format_path(source)} has no effect: every phase sets its own learning_rate_scale",
                source,
                "move its factors into the phases that should keep them, or remove it",
                code="unused-setting",
                key=True,
            )
            continue
        matched = {pattern: set(patterns.match(str(pattern))) for pattern in written}
        last: dict[str, Any] = {}  # each layer's pattern: the last that matches it sets its factor
        for pattern, found in matched.items():
            last.update(dict.fromkeys(found & weighted, pattern))
        for pattern, found in matched.items():
            layers = {layer for layer, owner in last.items() if owner == pattern}
            if found & weighted and not layers:
                reader.warning(
                    f"the factor for {str(pattern)!r} has no effect: the patterns after it set the "
                    "factor of every layer it matches",
                    (*source, pattern),
                    "remove it, or write it after the patterns it should override",
                    code="unused-setting",
                    key=True,
                )
            elif found and not found & weighted:
                _warn_weightless(reader, f"the factor for {str(pattern)!r}", (*source, pattern), key=True)
            elif layers and not layers & trained[source]:
                reader.warning(
                    f"the factor for {str(pattern)!r} has no effect: its layers are frozen in every "
                    "phase it applies to",
                    (*source, pattern),
                    "set it in the phase that unfreezes them, or remove it",
                    code="unused-setting",
                    key=True,
                )


def _warn_weightless(reader: _Reader, subject: str, path: SpecPath, *, key: bool = False) -> None:
    """A located warning for a pattern (of ``learning_rate_scale``, ``freeze`` or ``unfreeze``)
    that matches layers, none of which has weights: it changes nothing (a pooling, activation
    or dropout layer has nothing to train or keep), where the user meant other layers."""
    reader.warning(
        f"{subject} has no effect: the layers it matches have no weights to train",
        path,
        "name layers with weights (`cnnspec inspect` shows their parameters), or remove it",
        code="unused-setting",
        key=key,
    )


def _warn_weightless_patterns(
    reader: _Reader, patterns: freezing.Patterns, ir: ModelIR, path: SpecPath, written: dict[str, Any]
) -> None:
    """:func:`_warn_weightless` for each pattern of ``path``'s ``freeze`` and ``unfreeze``
    (``written``: their lists) whose layers have no weights: training ran with nothing frozen,
    or nothing unfrozen, without a word. A pattern that matches nothing is an error already."""
    from cnnspec.analysis import freezing

    weighted = set(freezing.ordered(ir, patterns.layers))
    for key, items in written.items():
        for index, pattern in enumerate(items if isinstance(items, list) else []):
            found = patterns.match(str(pattern)) if isinstance(pattern, str) else []
            if found and not weighted.intersection(found):
                doing = {"freeze": "freezing", "unfreeze": "unfreezing"}[key]
                _warn_weightless(reader, f"{doing} {pattern!r}", (*path, key, index))


def _warn_capped_scales(reader: _Reader, phases: list[tuple[PhaseConfig, SpecPath]]) -> None:
    """Factors under Adafactor's ``relative_step`` (its default): keras.optimizers.Adafactor caps
    each step's rate at 1/√step after the factor, so once the cap binds the scaled layers train
    at the others' rate. Said once per mapping."""
    capped = {
        source
        for phase, source in phases
        if phase.rate_scale
        and phase.optimizer.name == "adafactor"
        and phase.optimizer.settings.get("relative_step") is not False
    }
    for source in sorted(capped):
        reader.warning(
            "adafactor with relative_step (its default) caps each step's rate at 1/√step after the "
            f"factors of {format_path(source)}: once the cap binds, the scaled layers train at the "
            "others' rate",
            source,
            "set the phase's adafactor relative_step: false, or take another optimizer",
            code="weak-setting",
            key=True,
        )


def _rate_scale(
    reader: _Reader, patterns: freezing.Patterns, path: SpecPath, ir: ModelIR
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


def _class_weight(reader: _Reader) -> str | dict[str, float] | None:
    value = reader.known(("training", "class_weight"), None)
    if value is None or value == "balanced":
        return value
    # (a weight whose expression failed is left out: its error is reported)
    return {str(k): float(v) for k, v in value.items() if v is not POISONED}


def mixing_keys(reader: _Reader) -> list[str]:
    """The label-mixing keys the spec turns on (``training.mixup``, ``training.cutmix``), in
    :data:`~cnnspec.spec.sections.MIXING` order: written, and not ``false`` (nothing, ``true`` or
    a mapping is on). One whose expression failed counts as on: its error is reported, and the
    checks that depend on it (the default loss) go on as the user meant."""
    from cnnspec.spec.sections import MIXING

    training = reader.doc.data.get("training")
    if not isinstance(training, dict):
        return []
    return [key for key in MIXING if key in training and reader.value(("training", key)) is not False]


def _mixing(reader: _Reader, tasks: tuple[OutputTask, ...]) -> MixingConfig | None:
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


def _distribute(reader: _Reader) -> tuple[str, float]:
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


def layers_without_xla(ir: ModelIR) -> list[str]:
    """The model's layers Keras cannot compile with XLA (the registry's ``xla``, Keras'
    ``supports_jit``), by name: one is enough for Keras to run the whole model without XLA."""
    return [node.name for node in ir.nodes if node.kind in REGISTRY and not REGISTRY[node.kind].xla]


def training_config(compiled: CompiledSpec, warnings: list[Diagnostic] | None = None) -> TrainConfig:
    """The typed, defaulted and checked training settings of a compiled spec (``warnings``:
    where its warnings go, as compiling the spec collects them; dropped otherwise)."""
    diags = Diagnostics()
    reader = _Reader(compiled, section_env(compiled), diags)
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
    diags.raise_if_errors()
    if warnings is not None:
        warnings.extend(diags.warnings)
    from dataclasses import replace

    return replace(config, callbacks=callbacks)


# -- pixel scaling (TF-free: shared by the pipeline, the generated script and the lint) ----------
#: A layer's part in :func:`scales_every_path`: the model's input, a layer that rescales values
#: (a registry kind whose ``value_range`` is ``affine``), one with weights, or one that does
#: neither (a random augmentation, a pooling, a merge …).
PixelRole = Literal["input", "scales", "weights", "passes"]


def scales_every_path(
    outputs: Iterable[Step], parents: Callable[[Step], Iterable[Step]], role: Callable[[Step], PixelRole]
) -> bool:
    """Whether a model graph scales its pixels itself, the one rule a spec
    (:func:`model_scales_input`) and a model file
    (:func:`cnnspec.reporting.run.rescales_itself`) are read by: every path from the input
    meets a rescaling before any layer with weights (or an output). A branch that convolves the
    raw input while another rescales it sees unscaled pixels: the list order of the layers,
    which differs between a spec and the file built from it, never decides.

    ``outputs``: the model's output layers; ``parents(layer)``: the layers feeding it;
    ``role(layer)``: its :data:`PixelRole`. Walked backwards from every output and every layer
    with weights (those the outputs reach), through the layers that only pass values on: the
    pixels are the model's to scale unless such a walk reaches the input."""
    seen: set[Step] = set()
    todo = list(outputs)
    ends = list(todo)
    while todo:  # every layer the outputs reach, once (a graph may branch and merge)
        layer = todo.pop()
        if layer in seen:
            continue
        seen.add(layer)
        if role(layer) == "weights":
            ends.append(layer)
        todo.extend(parents(layer))
    walked: set[Step] = set()
    scaled = False
    for end in ends:
        # an output is walked from itself (it may be a rescaling, or pass the input on);
        # a layer with weights from what feeds it
        todo = [end] if role(end) != "weights" else list(parents(end))
        while todo:
            layer = todo.pop()
            if layer in walked:
                continue
            walked.add(layer)
            part = role(layer)
            if part == "input":
                return False  # unscaled pixels reach weights, or an output
            if part == "scales":
                scaled = True
            elif part == "passes":
                todo.extend(parents(layer))
            # (a layer with weights is an end of its own: its inputs are walked from it)
    return scaled


def model_scales_input(ir: ModelIR) -> bool:
    """The model scales its own input: a layer that rescales values (``rescaling``) in the
    augmentation, or on every path from the input before any layer with weights
    (:func:`scales_every_path`: after any number of random augmentation layers written in
    ``model:``; a rescaling after a convolution scales features, not pixels, and a branch that
    convolves the raw input sees unscaled pixels). ``data.rescale: auto`` then leaves the
    pixels as stored. The same rule reads a bare model file
    (:func:`cnnspec.reporting.run.rescales_itself`)."""
    if any(
        (kind := REGISTRY.get(n.kind)) is not None and kind.value_range == "affine" for n in ir.augmentation
    ):
        return True
    by_name = {node.name: node for node in ir.nodes}

    def role(name: str) -> PixelRole:
        node = by_name.get(name)
        if node is None:  # the input (or a name no node has: unscaled, as the input is)
            return "input"
        kind = REGISTRY.get(node.kind)
        if kind is not None and kind.value_range == "affine":
            return "scales"
        return "weights" if node.counts.params else "passes"

    return scales_every_path(ir.outputs, lambda name: by_name[name].inputs if name in by_name else (), role)


#: ``data.rescale: auto``: the value of a full-intensity pixel, by the integer dtypes that say it.
PIXEL_MAX_OF_DTYPE: dict[str, float] = {"uint8": 255.0, "int8": 255.0, "uint16": 65535.0}


def integer_pixel_max(dtype: str, low: float, high: float) -> float | None:
    """The value of a full-intensity pixel in integer images of ``dtype`` (its name, as NumPy
    writes it) whose values lie in [``low``, ``high``]: what ``data.rescale: auto`` divides by.

    uint8 and int8 are 8-bit (255), uint16 16-bit (65535). Any other integer dtype (int16,
    int32, int64, uint32, …) says nothing of the depth, and 8-bit values are often stored so
    (NumPy's default integer is int64): 255 when every value lies in 0–255, else ``None`` (the
    caller asks for an explicit ``data.rescale``).
    """
    known = PIXEL_MAX_OF_DTYPE.get(dtype)
    if known is not None:
        return known
    return 255.0 if low >= 0 and high <= 255 else None


def pipeline_scale(
    data: DataConfig, ir: ModelIR, integer_pixels: bool, pixel_max: float = 255.0
) -> float | None:
    """The pixel multiplier the input pipeline applies (``None``: the values as stored).

    ``data.rescale``: a number is used as given, ``null`` never scales, ``auto`` maps integer
    pixels to [0, 1] (× 1/``pixel_max``: 255 for 8-bit images, 65535 for uint16, see
    :func:`integer_pixel_max`) unless the model scales its own input.
    """
    if data.rescale is None:
        return None
    if isinstance(data.rescale, float):
        return data.rescale
    if model_scales_input(ir):
        return None
    return 1.0 / pixel_max if integer_pixels else None


def data_config(compiled: CompiledSpec, *, raise_errors: bool = False) -> DataConfig | None:
    """The ``data`` section as :class:`DataConfig`, or ``None`` when it has errors (those are
    reported by :func:`training_config`; callers that only lint skip the spec).
    ``raise_errors``: raise them instead (reading the data without the training settings)."""
    diags = Diagnostics()
    try:
        data = _data(_Reader(compiled, section_env(compiled), diags), compiled)
    except SpecError:
        if raise_errors:
            raise
        return None
    if raise_errors:
        diags.raise_if_errors()
    return None if diags.errors else data


def fed_pixel_range(data: DataConfig, ir: ModelIR) -> tuple[float, float] | None:
    """The range of the pixel values the pipeline feeds the augmentation and the model, when it
    is known without reading the data (``None`` for ``npz`` files, except with an explicit
    ``data.rescale`` of 1/255, which states 8-bit pixels)."""
    known = SOURCE_PIXELS.get(data.kind)
    if known is None:
        if isinstance(data.rescale, float) and math.isclose(data.rescale, 1.0 / 255.0, rel_tol=1e-4):
            return (0.0, 1.0)
        return None
    top, integer = known
    scale = pipeline_scale(data, ir, integer)
    return (0.0, top * scale) if scale is not None else (0.0, top)


def _phased_epochs_hint(loc: Loc | None) -> str:
    """How to fix ``training.epochs`` beside ``training.phases``. On the command line it was
    ``--epochs N`` (``train``'s shorthand) or ``--set training.epochs=N``: say both, and what a
    phased spec takes instead."""
    if loc is not None and loc.file.startswith(COMMAND_LINE_PREFIX):
        typed = "--epochs N" if command_line_option(loc.file) == "--epochs" else "--set training.epochs=N"
        return (
            f"the run trains the sum of the phases' epochs: instead of {typed}, set a phase's "
            "epochs (--set training.phases[0].epochs=N)"
        )
    return "remove training.epochs: the run trains the sum of the phases' epochs"
