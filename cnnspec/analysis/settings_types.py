"""The typed settings of the ``data``, ``training`` and ``runtime`` sections: the dataclasses
:func:`cnnspec.analysis.settings.training_config` returns (:class:`TrainConfig` and the
configurations it holds), the documented defaults, and the tables of what each data source,
loss and metric is.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cnnspec.errors import SpecPath

if TYPE_CHECKING:
    from cnnspec.analysis.tasks import OutputTask


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
    def test_fraction(self) -> float:
        """The fraction held out for testing where the source :attr:`splits_test`:
        ``data.test_split``, or its default."""
        return self.test_split if self.test_split is not None else DEFAULT_TEST_SPLIT

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


def rate_scale_text(scale: dict[str, Any], frozen: Iterable[Any] = ()) -> str:
    """``learning_rate_scale`` resolved (layer → factor) in words, for the console and the
    report: ``layer-wise rates: 3 layer(s) ×0.1, 1 layer(s) ×2`` (empty for none). The layers
    of ``frozen`` are not counted: they take no steps at any rate."""
    counts: dict[float, int] = {}
    still = {name for name in frozen if isinstance(name, str)}  # (a lock read back)
    for layer, factor in scale.items():
        if layer in still:
            continue
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
