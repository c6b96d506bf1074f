"""The optimizers a spec names: one table (:data:`OPTIMIZER_KINDS`) drives their JSON Schema
(``training.optimizer`` and each phase's), the optimizer ``cnnspec train`` builds
(:func:`cnnspec.training.builders.optimizer`) and the one the generated script writes
(:func:`cnnspec.backends.codegen_script.optimizer_node`): a Keras class and its own settings,
beside the settings every optimizer takes (:data:`COMMON_SETTINGS`). The learning rate's
schedules are here too: each optimizer's ``learning_rate`` takes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cnnspec.spec.schema_parts import EXPR
from cnnspec.spec.schema_parts import boolean as _bool
from cnnspec.spec.schema_parts import closed_object as _obj
from cnnspec.spec.schema_parts import integer as _int
from cnnspec.spec.schema_parts import number as _num
from cnnspec.spec.schema_parts import one_key as _one_key

_WARMUP = _int(0, description="linear warm-up from 0 to the schedule's first value over this many steps")
_LR_SCHEDULE = _one_key(
    {
        "cosine_decay": _obj(
            {
                "initial_learning_rate": _num(0, exclusive=True, description="peak rate (default 0.001)"),
                "decay_steps": _int(1, description="default: every step of the run after the warm-up"),
                "alpha": _num(0, 1, description="final rate as a fraction of the peak (default 0)"),
                "warmup_steps": _WARMUP,
            },
            description="the rate follows half a cosine from its peak down to alpha × peak",
        ),
        "exponential_decay": _obj(
            {
                "initial_learning_rate": _num(0, exclusive=True, description="default 0.001"),
                "decay_steps": _int(
                    1, description="steps over which the rate is multiplied by decay_rate once"
                ),
                "decay_rate": _num(
                    0,
                    exclusive=True,
                    description="rate = initial_learning_rate × decay_rate^(step / decay_steps)",
                ),
                "staircase": _bool("decay in whole steps of decay_steps (default false: smoothly)"),
                "warmup_steps": _WARMUP,
            },
            ("decay_steps", "decay_rate"),
            description="the rate falls by a factor decay_rate every decay_steps steps",
        ),
        "piecewise_constant": _obj(
            {
                "boundaries": {
                    "type": "array",
                    "items": {"type": "integer", "minimum": 1},
                    "minItems": 1,
                    "description": "the last step of each rate but the last, increasing (Keras' rule, "
                    "step ≤ boundary): values[0] for steps 0 to boundaries[0] inclusive, the next value "
                    "from step boundaries[0] + 1 (steps count from 0, after warmup_steps)",
                },
                "values": {
                    "type": "array",
                    "items": {"type": "number", "exclusiveMinimum": 0},
                    "minItems": 2,
                    "description": "the rate up to and including the first boundary, after each "
                    "boundary up to and including the next, and after the last (one more than "
                    "boundaries)",
                },
                "warmup_steps": _WARMUP,
            },
            ("boundaries", "values"),
            description="a constant rate between step boundaries (Keras' PiecewiseConstantDecay: "
            "a boundary's own step still runs the rate before it)",
        ),
    },
    "a learning-rate schedule (steps are optimizer steps, i.e. batches)",
)
LEARNING_RATE_SCHEMA: dict[str, Any] = {
    "anyOf": [{"type": "number", "exclusiveMinimum": 0}, EXPR, _LR_SCHEDULE],
    "description": "a constant rate (default 0.001), or a schedule",
}
#: What Keras clips gradients by; an optimizer takes at most one of them (Keras refuses two).
CLIPPING = ("clipnorm", "clipvalue", "global_clipnorm")
#: The settings every optimizer takes; all but the learning rate are passed to Keras as floats.
COMMON_SETTINGS: dict[str, Any] = {
    "learning_rate": LEARNING_RATE_SCHEMA,
    "weight_decay": _num(
        0, description="decoupled weight decay (default none; adamw and muon: Keras' 0.004)"
    ),
    "clipnorm": _num(
        0, exclusive=True, description="clip each weight's gradient to this norm (default none)"
    ),
    "clipvalue": _num(
        0, exclusive=True, description="clip each gradient value to [-clipvalue, clipvalue] (default none)"
    ),
    "global_clipnorm": _num(
        0,
        exclusive=True,
        description="clip all gradients together to this global norm (default none; at most one of "
        "clipnorm, clipvalue and global_clipnorm)",
    ),
    "use_ema": _bool(
        "keep an exponential moving average of the weights, and end each fit (each phase) with it, "
        "as Keras does: the saved model holds the average, and validation, early stopping and the "
        "best checkpoint see it (default false)"
    ),
    "ema_momentum": _num(
        0, 1, description="with use_ema: the old average's share at each step (default 0.99)"
    ),
    "ema_overwrite_frequency": _int(
        1, description="with use_ema: also set the weights to the average every this many steps"
    ),
    "gradient_accumulation_steps": _int(
        2,
        description="change the weights once every this many batches, with the mean of their "
        "gradients (a batch this many times larger; learning-rate schedules still count batches)",
    ),
}
#: The common settings passed to Keras as floats: those the schema types as numbers (a whole
#: number written for one, ``weight_decay: 0``, is still a float to Keras).
FLOAT_SETTINGS = tuple(
    key
    for key, schema in COMMON_SETTINGS.items()
    if key != "learning_rate" and schema.get("anyOf", [{}])[0].get("type") == "number"
)
#: The common settings passed to Keras as written (a flag, whole numbers).
PLAIN_SETTINGS = tuple(key for key in COMMON_SETTINGS if key not in ("learning_rate", *FLOAT_SETTINGS))
#: The settings that only mean something with ``use_ema: true`` (Keras ignores them without).
EMA_SETTINGS = ("ema_momentum", "ema_overwrite_frequency")


def _beta_1(default: float = 0.9) -> dict[str, Any]:
    return _num(0, 1, description=f"decay of the gradients' running mean (default {default:g})")


def _beta_2(default: float = 0.999) -> dict[str, Any]:
    return _num(0, 1, description=f"decay of the squared gradients' running mean (default {default:g})")


_EPSILON = _num(0, description="added to the denominator for stability (default 1e-7)")
_ADAM_LIKE = {"beta_1": _beta_1(), "beta_2": _beta_2(), "epsilon": _EPSILON}
_AMSGRAD = {
    "amsgrad": _bool("AMSGrad: divide by the largest squared-gradient average so far (default false)")
}


@dataclass(frozen=True)
class OptimizerKind:
    """An optimizer a spec can name: ``keras.optimizers.<keras_class>``, what it is, and its
    own settings (name → JSON Schema), passed to Keras as written."""

    keras_class: str
    description: str
    settings: dict[str, Any]


OPTIMIZER_KINDS: dict[str, OptimizerKind] = {
    "adam": OptimizerKind("Adam", "Adam (keras.optimizers.Adam)", {**_ADAM_LIKE, **_AMSGRAD}),
    "adamw": OptimizerKind(
        "AdamW", "Adam with decoupled weight decay (keras.optimizers.AdamW)", {**_ADAM_LIKE, **_AMSGRAD}
    ),
    "sgd": OptimizerKind(
        "SGD",
        "stochastic gradient descent (keras.optimizers.SGD)",
        {
            "momentum": _num(0, 1, description="default 0 (plain gradient descent)"),
            "nesterov": _bool("Nesterov momentum (default false)"),
        },
    ),
    "rmsprop": OptimizerKind(
        "RMSprop",
        "RMSprop (keras.optimizers.RMSprop)",
        {
            "rho": _num(0, 1, description="decay of the squared gradients' running mean (default 0.9)"),
            "momentum": _num(0, 1, description="default 0"),
            "epsilon": _EPSILON,
            "centered": _bool("divide by the gradients' variance, not their mean square (default false)"),
        },
    ),
    "nadam": OptimizerKind("Nadam", "Adam with Nesterov momentum (keras.optimizers.Nadam)", _ADAM_LIKE),
    "adamax": OptimizerKind("Adamax", "Adam on the infinity norm (keras.optimizers.Adamax)", _ADAM_LIKE),
    "adagrad": OptimizerKind(
        "Adagrad",
        "per-parameter rates from the sum of squared gradients (keras.optimizers.Adagrad)",
        {
            "initial_accumulator_value": _num(
                0, description="the sum of squared gradients starts here (default 0.1)"
            ),
            "epsilon": _EPSILON,
        },
    ),
    "lion": OptimizerKind(
        "Lion",
        "the sign of an interpolated momentum (keras.optimizers.Lion; usually 3-10x lower rates than Adam's)",
        {"beta_1": _beta_1(), "beta_2": _beta_2(0.99)},
    ),
    "adadelta": OptimizerKind(
        "Adadelta",
        "per-parameter steps from running averages of squared gradients and updates "
        "(keras.optimizers.Adadelta; its rate is usually 1.0)",
        {
            "rho": _num(0, 1, description="decay of the running averages (default 0.95)"),
            "epsilon": _EPSILON,
        },
    ),
    "lamb": OptimizerKind(
        "Lamb", "Adam with layer-wise trust ratios, for large batches (keras.optimizers.Lamb)", _ADAM_LIKE
    ),
    "adafactor": OptimizerKind(
        "Adafactor",
        "Adam-like steps from factored (row and column) second moments: little optimizer memory "
        "(keras.optimizers.Adafactor)",
        {
            "beta_2_decay": _num(
                maximum=0,
                exclusive_max=True,
                description="the squared gradients' decay is 1 - step^beta_2_decay (default -0.8)",
            ),
            "epsilon_1": _num(
                0, exclusive=True, description="added to the squared gradients (default 1e-30)"
            ),
            "epsilon_2": _num(
                0,
                exclusive=True,
                description="the smallest scale of a step, relative to the weights (default 0.001)",
            ),
            "clip_threshold": _num(
                0, exclusive=True, description="clip each update's RMS to this (default 1)"
            ),
            "relative_step": _bool(
                "with a constant rate, use at most 1/sqrt(step) of it (default true, as Keras)"
            ),
        },
    ),
    "ftrl": OptimizerKind(
        "Ftrl",
        "Follow The Regularized Leader, with L1/L2 regularization in the step (keras.optimizers.Ftrl)",
        {
            "learning_rate_power": _num(
                maximum=0, description="how the rate falls as the accumulator grows (default -0.5)"
            ),
            "initial_accumulator_value": _num(0, description="the accumulator starts here (default 0.1)"),
            "l1_regularization_strength": _num(0, description="default 0"),
            "l2_regularization_strength": _num(0, description="default 0"),
            "l2_shrinkage_regularization_strength": _num(
                0, description="an L2 penalty on the weights in the gradient (default 0)"
            ),
            "beta": _num(0, description="FTRL's beta (default 0)"),
        },
    ),
    "muon": OptimizerKind(
        "Muon",
        "momentum orthogonalized by Newton-Schulz steps (keras.optimizers.Muon). Keras applies it "
        "to 2-D kernels only (dense layers); convolution kernels, biases and normalization "
        "weights take AdamW steps (the adam_* settings), and so do the layers exclude_layers names",
        {
            "exclude_layers": {
                "type": "array",
                "items": {"type": "string", "minLength": 1},
                "description": "regular expressions over the weights' paths (LAYER/kernel): the "
                "layers they match take AdamW steps too; Keras advises the output layer's name "
                "(each must match a layer of the model)",
            },
            "momentum": _num(0, 1, description="Muon's momentum (default 0.95)"),
            "nesterov": _bool("Nesterov momentum (default true)"),
            "ns_steps": _int(1, description="Newton-Schulz iterations per step (default 5)"),
            "rms_rate": _num(0, description="scale of Muon's steps, to match AdamW's (default 0.2)"),
            "adam_beta_1": _num(0, 1, description="AdamW's beta_1 for the other weights (default 0.9)"),
            "adam_beta_2": _num(0, 1, description="AdamW's beta_2 for the other weights (default 0.999)"),
            "adam_weight_decay": _num(
                0, description="AdamW's weight decay for the other weights (default 0.004)"
            ),
            "adam_lr_ratio": _num(
                0, exclusive=True, description="AdamW's rate as a fraction of the rate (default 1)"
            ),
            "epsilon": _EPSILON,
        },
    ),
}
OPTIMIZERS = list(OPTIMIZER_KINDS)
OPTIMIZER_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {"enum": OPTIMIZERS},
        _one_key(
            {
                name: _obj({**COMMON_SETTINGS, **kind.settings}, description=kind.description)
                for name, kind in OPTIMIZER_KINDS.items()
            }
        ),
    ],
    "description": "optimizer name, or {name: {settings}} (default adam, learning rate 0.001)",
}


def keras_settings(name: str, settings: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments, besides the learning rate, that the optimizer ``name`` is built
    with from its written ``settings``: its own as written, the common ones as floats (the same
    for ``cnnspec train`` and the generated script)."""
    kind = OPTIMIZER_KINDS[name]
    found = {key: settings[key] for key in kind.settings if key in settings}
    found.update({key: float(settings[key]) for key in FLOAT_SETTINGS if key in settings})
    found.update({key: settings[key] for key in PLAIN_SETTINGS if key in settings})
    return found


def setting_problems(settings: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(setting, problem, hint) for settings Keras takes and would quietly ignore or misread."""
    problems = []
    if settings.get("use_ema") is not True:
        for key in EMA_SETTINGS:
            if key in settings:
                problems.append(
                    (key, f"{key} has no effect without use_ema: true", "add use_ema: true, or remove it")
                )
    clipping = [key for key in CLIPPING if key in settings]
    if len(clipping) > 1:  # Keras refuses the optimizer, at its construction
        problems.append(
            (
                clipping[1],
                f"expected at most one of {', '.join(CLIPPING)}; received {' and '.join(clipping)}",
                "gradients are clipped one way: keep one of them",
            )
        )
    return problems
