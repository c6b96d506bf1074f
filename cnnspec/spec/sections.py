"""JSON Schema of the non-model sections: ``data``, ``training`` and ``runtime``.

These sections are validated by the front end; the training package gives them behaviour.
Each schema is closed (``additionalProperties: false``) so a misspelt key is an error with a
did-you-mean hint rather than a silently ignored setting.
"""

from __future__ import annotations

from typing import Any

EXPR: dict[str, Any] = {"$ref": "#/$defs/expression"}


def _num(
    minimum: float | None = None, maximum: float | None = None, exclusive: bool = False
) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "number"}
    if minimum is not None:
        schema["exclusiveMinimum" if exclusive else "minimum"] = minimum
    if maximum is not None:
        schema["maximum"] = maximum
    return {"anyOf": [schema, EXPR]}


def _int(minimum: int | None = None, maximum: int | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "integer"}
    if minimum is not None:
        schema["minimum"] = minimum
    if maximum is not None:
        schema["maximum"] = maximum
    return {"anyOf": [schema, EXPR]}


def _obj(properties: dict[str, Any], required: tuple[str, ...] = (), description: str = "") -> dict[str, Any]:
    schema: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
    }
    if required:
        schema["required"] = list(required)
    if description:
        schema["description"] = description
    return schema


def _one_key(options: dict[str, Any], description: str = "") -> dict[str, Any]:
    """A mapping with exactly one of ``options`` as its key (e.g. ``{adam: {...}}``)."""
    schema = {
        "type": "object",
        "properties": options,
        "additionalProperties": False,
        "minProperties": 1,
        "maxProperties": 1,
    }
    if description:
        schema["description"] = description
    return schema


BOOL = {"type": "boolean"}
STR = {"type": "string", "minLength": 1}
MONITOR = {"type": "string", "minLength": 1, "description": "metric to watch, e.g. val_loss"}
MODE = {"enum": ["auto", "min", "max"]}

DATASETS = ["digits", "mnist", "fashion_mnist", "cifar10", "cifar100"]

DATA_SCHEMA = _obj(
    {
        "source": {
            "description": "where the images come from",
            "anyOf": [
                {"enum": DATASETS},
                _obj({"npz": STR}, ("npz",), "a .npz file with x_train, y_train, x_test, y_test"),
                _obj(
                    {
                        "directory": STR,
                        "image_size": {
                            "type": "array",
                            "items": {"type": "integer", "minimum": 1},
                            "minItems": 2,
                            "maxItems": 2,
                        },
                        "color_mode": {"enum": ["rgb", "grayscale"]},
                        "test_directory": STR,
                    },
                    ("directory",),
                    "class sub-folders of PNG/JPEG images",
                ),
            ],
        },
        "validation_split": _num(0, 1),
        "test_split": _num(0, 1),
        "rescale": {
            "anyOf": [{"type": "number"}, {"enum": ["auto"]}, {"type": "null"}, EXPR],
            "description": "multiply pixels by this ('auto': 1/255 for 8-bit images, none for floats)",
        },
        "shuffle_buffer": _int(1),
        "cache": BOOL,
        "limit": _int(1),
    },
    description="the training data",
)

_LR_SCHEDULE = _one_key(
    {
        "cosine_decay": _obj(
            {"decay_steps": _int(1), "alpha": _num(0, 1), "warmup_steps": _int(0), "warmup_target": _num(0)},
        ),
        "exponential_decay": _obj(
            {
                "decay_steps": _int(1),
                "decay_rate": _num(0, exclusive=True),
                "staircase": BOOL,
                "warmup_steps": _int(0),
            },
            ("decay_steps", "decay_rate"),
        ),
        "piecewise_constant": _obj(
            {
                "boundaries": {"type": "array", "items": {"type": "integer", "minimum": 1}, "minItems": 1},
                "values": {
                    "type": "array",
                    "items": {"type": "number", "exclusiveMinimum": 0},
                    "minItems": 2,
                },
                "warmup_steps": _int(0),
            },
            ("boundaries", "values"),
        ),
    },
    "a learning-rate schedule",
)
_LR = {"anyOf": [{"type": "number", "exclusiveMinimum": 0}, EXPR, _LR_SCHEDULE]}
_OPT_COMMON = {"learning_rate": _LR, "weight_decay": _num(0), "clipnorm": _num(0, exclusive=True)}
OPTIMIZER_SCHEMA = {
    "anyOf": [
        {"enum": ["adam", "adamw", "sgd", "rmsprop"]},
        _one_key(
            {
                "adam": _obj({**_OPT_COMMON, "beta_1": _num(0, 1), "beta_2": _num(0, 1), "epsilon": _num(0)}),
                "adamw": _obj(
                    {**_OPT_COMMON, "beta_1": _num(0, 1), "beta_2": _num(0, 1), "epsilon": _num(0)}
                ),
                "sgd": _obj({**_OPT_COMMON, "momentum": _num(0, 1), "nesterov": BOOL}),
                "rmsprop": _obj(
                    {**_OPT_COMMON, "rho": _num(0, 1), "momentum": _num(0, 1), "epsilon": _num(0)}
                ),
            }
        ),
    ],
    "description": "optimizer name, or {name: {settings}}",
}
LOSSES = ["sparse_categorical_crossentropy", "categorical_crossentropy", "binary_crossentropy"]
LOSS_SCHEMA = {
    "anyOf": [
        {"enum": LOSSES},
        _one_key(
            {
                "sparse_categorical_crossentropy": _obj({"from_logits": BOOL}),
                "categorical_crossentropy": _obj({"from_logits": BOOL, "label_smoothing": _num(0, 1)}),
                "binary_crossentropy": _obj({"from_logits": BOOL, "label_smoothing": _num(0, 1)}),
            }
        ),
    ]
}
METRICS = ["accuracy", "top_k_accuracy", "precision", "recall", "auc"]
METRIC_SCHEMA = {
    "anyOf": [
        {"enum": METRICS},
        _one_key({"top_k_accuracy": _obj({"k": _int(1)})}),
    ]
}
CALLBACK_SCHEMA = _one_key(
    {
        "early_stopping": _obj(
            {
                "monitor": MONITOR,
                "patience": _int(0),
                "min_delta": _num(0),
                "mode": MODE,
                "restore_best_weights": BOOL,
                "start_from_epoch": _int(0),
            }
        ),
        "reduce_lr_on_plateau": _obj(
            {
                "monitor": MONITOR,
                "factor": _num(0, 1),
                "patience": _int(0),
                "min_lr": _num(0),
                "min_delta": _num(0),
                "mode": MODE,
                "cooldown": _int(0),
            }
        ),
        "model_checkpoint": _obj({"monitor": MONITOR, "save_best_only": BOOL, "mode": MODE}),
        "tensorboard": _obj({"histogram_freq": _int(0)}),
        "csv_logger": _obj({}),
        "terminate_on_nan": _obj({}),
    },
    "a callback: {name: {settings}}",
)
TRAINING_SCHEMA = _obj(
    {
        "epochs": _int(1, 100_000),
        "batch_size": _int(1, 1_000_000),
        "steps_per_epoch": _int(1),
        "optimizer": OPTIMIZER_SCHEMA,
        "loss": LOSS_SCHEMA,
        "metrics": {"type": "array", "items": METRIC_SCHEMA},
        "callbacks": {"type": "array", "items": CALLBACK_SCHEMA},
        "class_weight": {
            "anyOf": [
                {"enum": ["balanced"]},
                {"type": "object", "additionalProperties": {"type": "number", "minimum": 0}},
            ]
        },
        "seed": _int(0, 2**32 - 1),
        "deterministic": BOOL,
    },
    description="how to train",
)
RUNTIME_SCHEMA = _obj(
    {
        "mixed_precision": BOOL,
        "jit_compile": {"anyOf": [BOOL, {"enum": ["auto"]}]},
        "distribute": _obj(
            {
                "strategy": {"enum": ["default", "one_device", "mirrored", "multi_worker", "tpu"]},
                "device": STR,
            }
        ),
        "threads": _obj({"intra_op": _int(0), "inter_op": _int(0)}),
    },
    description="where and how the training runs",
)
