"""JSON Schema of the non-model sections: ``data``, ``training`` and ``runtime``.

These sections are validated by the front end; :mod:`cnnspec.training` gives them behaviour
(``cnnspec train``). Each schema is closed (``additionalProperties: false``) so a misspelt key
is an error with a did-you-mean hint rather than a silently ignored setting. The descriptions
document the defaults the trainer applies when a key is left out.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from cnnspec.spec.optimizers import LEARNING_RATE_SCHEMA, OPTIMIZER_SCHEMA
from cnnspec.spec.schema_parts import EXPR
from cnnspec.spec.schema_parts import boolean as _bool
from cnnspec.spec.schema_parts import closed_object as _obj
from cnnspec.spec.schema_parts import integer as _int
from cnnspec.spec.schema_parts import number as _num
from cnnspec.spec.schema_parts import one_key as _one_key

BOOL = {"type": "boolean"}
STR = {"type": "string", "minLength": 1}
MONITOR = {
    "type": "string",
    "minLength": 1,
    "description": "the logged value to watch: loss, val_loss, val_accuracy, ... (default val_loss; "
    "loss where data.validation_split is 0, with a warning)",
}
MODE = {
    "enum": ["auto", "min", "max"],
    "description": "min, max, or auto: max for a figure that is better higher (accuracy, AUC, "
    "precision, recall, F1, mean IoU, R²), min for a loss or an error",
}

#: Images shuffled at a time once a streamed source's decoded images are cached (its file
#: indices are shuffled otherwise), where ``data.shuffle_buffer`` does not say: here, with the
#: setting's description, below both the stream (cnnspec.training.stream) and the generated
#: script that reproduces it.
CACHED_SHUFFLE_BUFFER = 2048
#: The largest ``training.seed`` (NumPy's seeds are 32-bit); a recorded seed above it, or below
#: 0, is none this cnnspec drew (:func:`recorded_seed`).
SEED_MAX = 2**32 - 1


def recorded_seed(value: object) -> int | None:
    """A seed as a run's lock.json records it, where ``training.seed`` could hold it (an integer,
    not a bool, in 0…:data:`SEED_MAX`); ``None`` otherwise: no seed this cnnspec drew (a damaged
    lock.json: NumPy would refuse it)."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= SEED_MAX:
        return value
    return None


DATASETS = ["digits", "mnist", "fashion_mnist", "cifar10", "cifar100", "shapes"]
SHAPES_TARGETS = ["class", "multilabel", "count", "area", "mask"]
NPZ_TARGETS = ["class", "multilabel", "regression", "mask"]
_IMAGE_SIZE = {
    "type": "array",
    "items": {"type": "integer", "minimum": 1},
    "minItems": 2,
    "maxItems": 2,
    "description": "[height, width] the images are resized to: input.shape's (the default), "
    "which it must equal; a model that takes another size starts with a resizing layer",
}
_COLOR_MODE = {
    "enum": ["rgb", "grayscale"],
    "description": "default: grayscale for 1 input channel, rgb for 3",
}
SHAPES_SOURCE = _obj(
    {
        "shapes": {
            "anyOf": [
                {"type": "null"},
                _obj(
                    {
                        "images": _int(1, description="how many images to generate (default 2000)"),
                        "image_size": {
                            **_IMAGE_SIZE,
                            "description": "[height, width] (default: input.shape)",
                        },
                        "target": {
                            "anyOf": [
                                {"enum": SHAPES_TARGETS},
                                {
                                    "type": "object",
                                    "additionalProperties": {"enum": SHAPES_TARGETS},
                                    "description": "one target per model output (output id → target)",
                                },
                            ],
                            "description": "class: the dominant shape; multilabel: which shapes are present; "
                            "count / area: how many shapes / the fraction of the image they cover; mask: "
                            "a class per pixel (0 background, 1 circle, 2 square, 3 triangle). Default: "
                            "from training.task, else mask for an [H, W, C] output, else class",
                        },
                        "min_shapes": _int(1, description="fewest shapes per image (default 1)"),
                        "max_shapes": _int(1, 8, description="most shapes per image (default 3)"),
                        "noise": _num(
                            0, 0.5, description="pixel noise amplitude, a fraction of 0–255 (default 0.1)"
                        ),
                        "seed": _int(
                            0, description="the generator's seed: the same images everywhere (default 0)"
                        ),
                        "overlap": _bool(
                            "shapes may cover each other (default false: each has a grid cell of its own)"
                        ),
                    }
                ),
            ]
        }
    },
    ("shapes",),
    "the embedded shapes dataset: circles, squares and triangles on a noisy background, with masks",
)


def _image_table_source(key: str, description: str, what: str) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "images": {**STR, "description": "a folder of images (relative to the spec file)"},
        key: {**STR, "description": description},
        "image_size": _IMAGE_SIZE,
        "color_mode": _COLOR_MODE,
    }
    if key == "masks":
        properties["classes"] = {
            "anyOf": [
                {"type": "array", "items": STR, "minItems": 1},
                {
                    "type": "object",
                    "additionalProperties": {
                        "type": "array",
                        "items": {"type": "integer", "minimum": 0, "maximum": 255},
                        "minItems": 3,
                        "maxItems": 3,
                    },
                    "minProperties": 1,
                },
            ],
            "description": "class names in index order, or name: [r, g, b] for colour/palette masks",
        }
    return _obj(properties, ("images", key), what)


IMAGE_TARGET_SCHEMAS = [
    _image_table_source(
        "masks",
        "a folder of mask PNGs with the images' file names (class indices, or colours with classes)",
        "segmentation: images and masks",
    ),
    _image_table_source(
        "labels",
        "a CSV (file,labels with labels separated by spaces, commas, ';' or '|'; or file,<label>,... "
        "0/1 columns) "
        "or JSON ({file: [labels]}) table",
        "multi-label: images and a table of their labels",
    ),
    _image_table_source(
        "values",
        "a CSV (file,<value name>,...) or JSON ({file: number or [numbers]}) table",
        "regression: images and a table of their target values",
    ),
]

DATA_SCHEMA = _obj(
    {
        "source": {
            "description": "where the images come from (default digits: scikit-learn's embedded 8×8 digits)",
            "anyOf": [
                {"enum": DATASETS},
                SHAPES_SOURCE,
                *IMAGE_TARGET_SCHEMAS,
                _obj(
                    {
                        "npz": STR,
                        "target": {
                            "enum": NPZ_TARGETS,
                            "description": "what y_train/y_test hold (default: masks for (n, H, W) arrays, "
                            "else from training.task, else class indices)",
                        },
                    },
                    ("npz",),
                    "a .npz file with x_train, y_train, x_test, y_test (optional class_names); "
                    "a relative path is read from the folder of the spec file that names it",
                ),
                _obj(
                    {
                        "directory": {
                            **STR,
                            "description": "a folder with one sub-folder of images per class",
                        },
                        "image_size": _IMAGE_SIZE,
                        "color_mode": _COLOR_MODE,
                        "test_directory": {
                            **STR,
                            "description": "class sub-folders of test images (default: test_split)",
                        },
                    },
                    ("directory",),
                    "class sub-folders of PNG/JPEG/BMP/GIF images (or train/, validation/ and test/ "
                    "folders of class sub-folders, used as given), streamed from disk",
                ),
                _obj(
                    {
                        "csv": {
                            **STR,
                            "description": "a CSV file with a header; image paths are relative to its folder",
                        },
                        "image_column": {**STR, "description": "the column of image paths (default file)"},
                        "label_column": {**STR, "description": "the column of class labels (default label)"},
                        "image_size": _IMAGE_SIZE,
                        "color_mode": _COLOR_MODE,
                        "test_csv": {**STR, "description": "a CSV of test images (default: test_split)"},
                    },
                    ("csv",),
                    "images listed in a CSV with their class labels (class names: the label values, "
                    "sorted), streamed from disk",
                ),
            ],
        },
        "cache": {
            "enum": ["none", "memory", "disk"],
            "description": "streamed sources: keep decoded images after the first epoch, in memory or in "
            "a cache file in the run folder (default none: decode every epoch)",
        },
        "keep_cache": _bool("cache: disk: keep the cache file when the run ends (default false)"),
        "on_bad_file": {
            "enum": ["error", "skip"],
            "description": "streamed sources: a file that is not a readable image stops the run before "
            "training (error, default) or is left out and listed in bad_files.txt (skip)",
        },
        "validation_split": _num(
            0, 1, exclusive_max=True, description="fraction of the training part held out (default 0.1)"
        ),
        "test_split": _num(
            0,
            1,
            exclusive=True,
            exclusive_max=True,
            description="fraction held out for testing, for sources without a test set (default 0.2)",
        ),
        "rescale": {
            "anyOf": [{"type": "number", "exclusiveMinimum": 0}, {"enum": ["auto"]}, {"type": "null"}, EXPR],
            "description": "multiply pixels by this; 'auto' (default): 1/255 for 8-bit integer images "
            "(uint8, int8, or another integer type holding 0–255), 1/65535 for uint16, else an error, "
            "unless the model starts with a rescaling layer; float data unchanged; null: never rescale",
        },
        "shuffle_buffer": _int(
            1,
            description="tf.data shuffle buffer, in images; default: the whole training set, but "
            f"{CACHED_SHUFFLE_BUFFER} for a folder or CSV source with data.cache (its decoded images are "
            "shuffled, from one seeded order of the files)",
        ),
        "limit": _int(1, description="use at most this many images of each split (quick trials)"),
        "classes": {
            "type": "array",
            "items": {"anyOf": [{"type": "string", "minLength": 1}, {"type": "integer", "minimum": 0}]},
            "minItems": 1,
            "uniqueItems": True,
            "description": "keep only these classes (names or label indices), in this order: "
            "their labels become 0, 1, … and their names are kept",
        },
        "per_class": _int(
            1, description="at most this many training images per class (stratified, the same for a seed)"
        ),
    },
    description="the training data",
)

LOSSES = [
    "sparse_categorical_crossentropy",
    "categorical_crossentropy",
    "binary_crossentropy",
    "mse",
    "mae",
    "huber",
    "msle",
    "mape",
    "log_cosh",
    "dice",
    "categorical_focal_crossentropy",
    "binary_focal_crossentropy",
]
#: The focal losses (Lin et al., "Focal Loss for Dense Object Detection", 2017): crossentropy
#: weighted by (1 - p)^gamma, so that the examples the model already gets right count less and
#: the rare, hard ones more (imbalanced classes, a segmentation's few foreground pixels).
FOCAL_LOSSES = ("categorical_focal_crossentropy", "binary_focal_crossentropy")
#: Keras' defaults for their settings (RetinaNet's).
FOCAL_GAMMA, FOCAL_ALPHA = 2.0, 0.25
_GAMMA = _num(
    0,
    description="focusing: how much less an example counts as it gets easier, (1 - p)^gamma; 0 is "
    "plain crossentropy (default 2)",
)
_FROM_LOGITS = _bool("the output is not a softmax/sigmoid (default: inferred from the last layer)")
_LABEL_SMOOTHING = _num(0, 1, description="move each target this far towards uniform (default 0)")
LOSS_SCHEMA = {
    "anyOf": [
        {"enum": LOSSES},
        _one_key(
            {
                "sparse_categorical_crossentropy": _obj(
                    {"from_logits": _FROM_LOGITS}, description="integer class labels"
                ),
                "categorical_crossentropy": _obj(
                    {"from_logits": _FROM_LOGITS, "label_smoothing": _LABEL_SMOOTHING},
                    description="one-hot class labels",
                ),
                "binary_crossentropy": _obj(
                    {"from_logits": _FROM_LOGITS, "label_smoothing": _LABEL_SMOOTHING},
                    description="independent 0/1 targets (multi-label, a 1-unit or 1-channel output)",
                ),
                "categorical_focal_crossentropy": _obj(
                    {
                        "from_logits": _FROM_LOGITS,
                        "label_smoothing": _LABEL_SMOOTHING,
                        "gamma": _GAMMA,
                        "alpha": _num(
                            0, 1, exclusive=True, description="a weight on every class's term (default 0.25)"
                        ),
                    },
                    description="focal loss on one-hot class labels (classification, segmentation): "
                    "crossentropy weighted by alpha (1 - p)^gamma, for imbalanced classes",
                ),
                "binary_focal_crossentropy": _obj(
                    {
                        "from_logits": _FROM_LOGITS,
                        "label_smoothing": _LABEL_SMOOTHING,
                        "gamma": _GAMMA,
                        "alpha": _num(
                            0,
                            1,
                            exclusive=True,
                            exclusive_max=True,
                            description="with apply_class_balancing: the weight of the positive "
                            "targets, 1 - alpha the negatives' (default 0.25)",
                        ),
                        "apply_class_balancing": _bool("weigh positives by alpha and negatives by 1 - alpha"),
                    },
                    description="focal loss on independent 0/1 targets (multi-label, a 1-unit or "
                    "1-channel output): binary crossentropy weighted by (1 - p_t)^gamma",
                ),
                "huber": _obj(
                    {
                        "delta": _num(
                            0,
                            exclusive=True,
                            description="where the loss turns from squared to linear (default 1)",
                        )
                    },
                    description="squared error for small errors, absolute error beyond delta",
                ),
            }
        ),
    ],
    "description": "default by task: sparse_categorical_crossentropy (classification, segmentation; "
    "binary_crossentropy for a 1-unit output), binary_crossentropy (multilabel), mse (regression); "
    "dice for segmentation; mae, huber, msle, mape and log_cosh for regression; the focal losses "
    "for classification and segmentation (categorical_focal_crossentropy, binary_focal_crossentropy) "
    "and multilabel (binary_focal_crossentropy)",
}
METRICS = [
    "accuracy",
    "top_k_accuracy",
    "precision",
    "recall",
    "auc",
    "f1",
    "mae",
    "mse",
    "rmse",
    "r2",
    "mean_iou",
]
METRIC_SCHEMA = {
    "anyOf": [
        {"enum": METRICS},
        _one_key(
            {
                "top_k_accuracy": _obj(
                    {"k": _int(1, description="default 5")},
                    description="the true class is among the k highest outputs",
                )
            }
        ),
    ],
    "description": "a metric name, or {top_k_accuracy: {k}}; each output task accepts its own",
}
CALLBACKS = [
    "early_stopping",
    "reduce_lr_on_plateau",
    "model_checkpoint",
    "tensorboard",
    "csv_logger",
    "terminate_on_nan",
]
CALLBACK_SCHEMA = {
    "anyOf": [
        {"enum": CALLBACKS},
        _one_key(
            {
                "early_stopping": _obj(
                    {
                        "monitor": MONITOR,
                        "patience": _int(
                            0, description="epochs without improvement before stopping (default 0)"
                        ),
                        "min_delta": _num(
                            0, description="the least change that counts as improvement (default 0)"
                        ),
                        "mode": MODE,
                        "restore_best_weights": _bool(
                            "end with the best epoch's weights, not the last's (default false)"
                        ),
                        "start_from_epoch": _int(
                            0, description="epochs before any stop is considered (default 0)"
                        ),
                    },
                    description="stop when the monitored figure stops improving",
                ),
                "reduce_lr_on_plateau": _obj(
                    {
                        "monitor": MONITOR,
                        "factor": _num(
                            0,
                            1,
                            exclusive=True,
                            exclusive_max=True,
                            description="the rate is multiplied by this (default 0.1)",
                        ),
                        "patience": _int(
                            0, description="epochs without improvement before lowering (default 10)"
                        ),
                        "min_lr": _num(0, description="the rate never goes below this (default 0)"),
                        "min_delta": _num(
                            0, description="the least change that counts as improvement (default 1e-4)"
                        ),
                        "mode": MODE,
                        "cooldown": _int(
                            0, description="epochs to wait after lowering before watching again (default 0)"
                        ),
                    },
                    description="lower the learning rate when the monitored figure stops improving",
                ),
                "model_checkpoint": _obj(
                    {
                        "monitor": MONITOR,
                        "save_best_only": _bool("keep the best epoch's model (default true)"),
                        "mode": MODE,
                    },
                    description="save checkpoints/best.keras (or last.keras) in the run directory; "
                    "with save_best_only the final model.keras holds the best epoch's weights",
                ),
                "tensorboard": _obj(
                    {
                        "histogram_freq": _int(
                            0, description="epochs between weight histograms (default 0: none)"
                        )
                    },
                    description="logs in RUN/tensorboard",
                ),
                "csv_logger": _obj({}, description="per-epoch log in RUN/training_log.csv"),
                "terminate_on_nan": _obj(
                    {}, description="stop at the first batch whose loss is NaN or infinite"
                ),
            }
        ),
    ],
    "description": "a callback: name, or {name: {settings}}",
}
_PATTERNS = {
    "type": "array",
    "items": STR,
    "description": "layer ids, block-instance or hierarchical names (stage3.block2), or globs over "
    "layer names (conv4_*)",
}
#: ``learning_rate_scale``: layer-wise learning rates, ``{pattern: factor}``
#: (:mod:`cnnspec.training.rates`).
RATE_SCALE = "learning_rate_scale"
_RATE_SCALE = {
    "type": "object",
    "additionalProperties": _num(0, exclusive=True),
    "description": "layer-wise learning rates, {pattern: factor}: the weights of the layers a pattern "
    "matches (patterns as freeze's) take their steps at factor × the learning rate, their decoupled "
    "weight decay too; a later pattern overrides an earlier one; every other layer trains at the rate "
    "itself (mmengine's lr_mult)",
}
PHASE_SCHEMA = _obj(
    {
        "epochs": _int(1, 100_000, "the epochs of this phase"),
        "freeze": {**_PATTERNS, "description": "layers to freeze from this phase on (then unfreeze applies)"},
        "unfreeze": {**_PATTERNS, "description": "layers to train again from this phase on"},
        "optimizer": {**OPTIMIZER_SCHEMA, "description": "this phase's optimizer (default: the previous)"},
        "learning_rate": {
            **LEARNING_RATE_SCHEMA,
            "description": "this phase's learning rate, for the optimizer it keeps (default: the "
            "optimizer's; not beside this phase's optimizer with a learning_rate of its own)",
        },
        RATE_SCALE: {
            **_RATE_SCALE,
            "description": "this phase's layer-wise learning rates, {pattern: factor} (default: the "
            "previous phase's, the first phase training.learning_rate_scale; {} for none)",
        },
    },
    ("epochs",),
    "one stage of training: its epochs, what is frozen, its optimizer",
)


class MixingKind(NamedTuple):
    """One label-mixing regulariser of ``training:`` (:data:`MIXING`)."""

    setting: str  # its one setting: the argument Keras' layer takes
    keras_class: str  # the layer in keras.layers
    default: float  # Keras' default for the setting
    schema: dict[str, Any]  # the setting's JSON Schema (its bounds: what Keras reads right)
    description: str


#: The label-mixing regularisers of ``training:`` (Keras' MixUp and CutMix, applied to whole
#: training batches in the input pipeline), by key: the one registry the schema, the settings
#: (analysis/settings.py), the trainer and the generated script read. ``true`` or nothing
#: (``mixup:``) is on with Keras' default, ``false`` off (a spec that ``extends`` one with
#: mixing turns it off so: a merge cannot remove a key).
MIXING = {
    "mixup": MixingKind(
        "alpha",
        "MixUp",
        0.2,
        _num(
            0,
            exclusive=True,
            description="the Beta(alpha, alpha) distribution each image's share is drawn from: "
            "small values mix little (most shares near 0 or 1), 1 mixes uniformly (default 0.2)",
        ),
        "MixUp: blend each training image with another of its batch, and their labels by the same "
        "share (one-hot or multi-hot). true: alpha 0.2; false: off",
    ),
    "cutmix": MixingKind(
        "factor",
        "CutMix",
        1.0,
        _num(
            0,
            1,
            exclusive=True,
            description="Keras' CutMix factor: each batch draws alpha uniformly in (0, factor] and "
            "each image's share from Beta(alpha, alpha) (default 1)",
        ),
        "CutMix: paste a random box of another training image of the batch into each image, and "
        "mix their labels by the share of the pixels the box covers. true: factor 1; false: off",
    ),
}


def _mixing_schema(kind: MixingKind) -> dict[str, Any]:
    """The schema of one :data:`MIXING` key: a switch, nothing (on, defaults), or its setting."""
    return {
        "anyOf": [BOOL, {"type": "null"}, _obj({kind.setting: kind.schema})],
        "description": kind.description
        + " (classification and multilabel; beside the other, each batch is mixed by one of "
        "them: training.mix_switch)",
    }


#: ``training.mix_switch``: with ``mixup`` and ``cutmix`` both on, the share of training batches
#: CutMix mixes (the rest MixUp), drawn batch by batch: timm's ``switch_prob`` (the ImageNet
#: recipes of DeiT and ConvNeXt mix so).
MIX_SWITCH = "mix_switch"
#: Its default: timm's.
MIX_SWITCH_DEFAULT = 0.5
MIX_SWITCH_SCHEMA = _num(
    0,
    1,
    exclusive=True,
    exclusive_max=True,
    description="with training.mixup and training.cutmix both on: the chance that a training batch "
    "is mixed by CutMix rather than MixUp, drawn batch by batch (timm's switch_prob; default 0.5)",
)


TASKS = ["classification", "multilabel", "regression", "segmentation"]
_TASK = {
    "enum": TASKS,
    "description": "what the output learns (default: inferred from the output: [H, W, C] → "
    "segmentation, a sigmoid over several units → multilabel, a regression loss → regression, "
    "else classification)",
}
_THRESHOLD = _num(
    0,
    1,
    exclusive=True,  # (Keras' metrics refuse 0: a label of probability 0 would be predicted)
    description="multilabel: a label is predicted when its probability exceeds this (default 0.5)",
)
OUTPUT_SCHEMA = _obj(
    {
        "task": _TASK,
        "loss": LOSS_SCHEMA,
        "loss_weight": _num(0, description="this output's share of the total loss (default 1)"),
        "metrics": {"type": "array", "items": METRIC_SCHEMA},
        "threshold": _THRESHOLD,
    },
    description="one output of a multi-output model: its task, loss, loss weight and metrics",
)
TRAINING_SCHEMA = _obj(
    {
        "task": _TASK,
        "threshold": _THRESHOLD,
        "outputs": {
            "type": "object",
            "additionalProperties": OUTPUT_SCHEMA,
            "description": "per output (by its id as outputs: lists it, a block call's th or th.a too, "
            "or by its name in metrics.json): task, loss, loss_weight, metrics",
        },
        "freeze": {**_PATTERNS, "description": "layers whose weights training leaves as they are"},
        "unfreeze": {**_PATTERNS, "description": "layers to train even if frozen (applied after freeze)"},
        RATE_SCALE: _RATE_SCALE,
        "phases": {
            "type": "array",
            "items": PHASE_SCHEMA,
            "minItems": 1,
            "description": "fine-tuning stages, run in order; freezing carries over from one phase to "
            "the next, the model is recompiled with a fresh optimizer each time; they set the epochs "
            "(not beside training.epochs: a spec that extends one with epochs drops them)",
        },
        "epochs": _int(1, 100_000, "default 10; a spec that extends one with phases drops them"),
        "batch_size": _int(1, 1_000_000, "default 32"),
        "steps_per_epoch": _int(1, description="batches per epoch (default: one pass over the training set)"),
        "optimizer": OPTIMIZER_SCHEMA,
        "loss": LOSS_SCHEMA,
        "metrics": {"type": "array", "items": METRIC_SCHEMA, "description": "default [accuracy]"},
        "callbacks": {"type": "array", "items": CALLBACK_SCHEMA},
        "class_weight": {
            "anyOf": [
                {"enum": ["balanced"]},
                {"type": "object", "additionalProperties": {"type": "number", "minimum": 0}},
            ],
            "description": "'balanced', or {class index or name: weight} (unlisted classes weigh 1)",
        },
        **{key: _mixing_schema(kind) for key, kind in MIXING.items()},
        # null: unset (a spec that extends one with it, and turns a mixer off, clears it so)
        MIX_SWITCH: {
            "anyOf": [MIX_SWITCH_SCHEMA, {"type": "null"}],
            "description": MIX_SWITCH_SCHEMA["description"] + "; null: unset (clears an inherited one)",
        },
        "seed": _int(
            0,
            SEED_MAX,
            "seeds Python, NumPy, TensorFlow and the data pipeline (default: random, recorded in lock.json; "
            "a run starting from the weights of a run folder of the same data takes that run's)",
        ),
        "deterministic": _bool("TensorFlow op determinism: equal seeds give equal runs (slower)"),
    },
    description="how to train",
)
STRATEGIES = ["default", "one_device", "mirrored", "multi_worker", "tpu"]
_STRATEGY = {
    "enum": STRATEGIES,
    "description": "tf.distribute strategy: default (none), one_device, mirrored (local GPUs; CPU "
    "fallback), multi_worker (cluster from TF_CONFIG or --cluster/--task-index), tpu",
}
DISTRIBUTE_SCHEMA = {
    "anyOf": [
        _STRATEGY,
        _obj(
            {
                "strategy": _STRATEGY,
                "startup_timeout": _num(
                    1, description="multi_worker: seconds to wait for every worker to join (default 300)"
                ),
            },
            ("strategy",),
        ),
    ],
    "description": "how training is spread over devices and machines; training.batch_size is the "
    "global batch (split over replicas) and the learning rate is used as written",
}
RUNTIME_SCHEMA = _obj(
    {
        "mixed_precision": _bool(
            "mixed_float16 on a GPU, mixed_bfloat16 on a CPU/TPU; outputs stay float32 (default false)"
        ),
        "jit_compile": {
            "anyOf": [BOOL, {"enum": ["auto"]}],
            "description": "XLA compilation (default false); auto: time a few steps with and without "
            "XLA and keep the faster (recorded in lock.json)",
        },
        "distribute": DISTRIBUTE_SCHEMA,
        "threads": _obj(
            {
                "intra_op": _int(0, description="threads within one operation (a convolution)"),
                "inter_op": _int(0, description="operations run at the same time"),
            },
            description="TensorFlow thread pools (0: TensorFlow's choice, the fastest measured)",
        ),
    },
    description="where and how the training runs",
)
