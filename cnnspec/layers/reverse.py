"""The registry read backwards: a Keras layer's class and saved configuration → a kind and its
spec parameters (for ``cnnspec import``).

Every kind already says how its parameters become Keras keywords (``keras_args``). Reading a
configuration back decodes each keyword a parameter declares, then *re-encodes* the result with
the kind's own ``keras_args`` and compares it with the configuration, key by key. So a decoder
that loses information (a ``RandomNormal`` with a non-default deviation read as
``random_normal``) is caught by the comparison, and a kind added to the registry is importable
without any code here. Keywords no parameter declares must hold Keras' neutral value
(``data_format: channels_last``, no constraints, …), else the layer cannot be expressed; a
frozen layer (``trainable: false``) stays frozen, a mixed-precision policy is recorded (the
importer gives the spec ``runtime: {mixed_precision: true}``), and any other dtype policy than
float32 is refused.
Pure data in, data out: nothing is deserialized, no Keras import.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from cnnspec.layers.params import REQUIRED, Param
from cnnspec.layers.registry import KerasCall, LayerKind, kind_of_keras_class

#: The configuration a Keras initializer class has when built from its string name.
_INITIALIZER_DEFAULTS: dict[str, dict[str, Any]] = {
    "glorot_uniform": {"seed": None},
    "glorot_normal": {"seed": None},
    "he_uniform": {"seed": None},
    "he_normal": {"seed": None},
    "lecun_uniform": {"seed": None},
    "lecun_normal": {"seed": None},
    "orthogonal": {"gain": 1.0, "seed": None},
    "zeros": {},
    "ones": {},
    "random_normal": {"mean": 0.0, "stddev": 0.05, "seed": None},
    "random_uniform": {"minval": -0.05, "maxval": 0.05, "seed": None},
    "truncated_normal": {"mean": 0.0, "stddev": 0.05, "seed": None},
}


#: About how many characters of a user value an error message shows (:func:`shown`).
SHOWN_LIMIT = 200
#: The dtype policy every layer a spec builds has (Keras' default); mixed precision is the
#: spec's ``runtime: {mixed_precision: true}``, a training setting, not a layer's.
_STANDARD_DTYPE = "float32"
#: Keras 3's dtype policy classes (``FloatDTypePolicy`` before 3.4), saved as ``dtype``.
_DTYPE_POLICIES = ("DTypePolicy", "FloatDTypePolicy")
#: Policies that compute in half precision but keep float32 variables (Keras' mixed precision).
MIXED_POLICIES = ("mixed_float16", "mixed_bfloat16")

#: The modules Keras 3 saves its own nested objects under: ``serialize_keras_object`` writes a
#: built-in's public API path (``keras.initializers`` + ``GlorotUniform``) and
#: ``registered_name: null``. A registered custom class is saved under its own module (or none)
#: with ``registered_name: "package>Name"``, and loading the file builds *that* class, whatever
#: its ``class_name`` says: an object is Keras' own only by its module and registered name.
_INITIALIZER_MODULES = ("keras.initializers",)
_REGULARIZER_MODULES = ("keras.regularizers",)
_CONSTRAINT_MODULES = ("keras.constraints",)
#: DTypePolicy is exported as ``keras.DTypePolicy`` (what Keras 3 writes), and under
#: ``keras.dtype_policies`` and the legacy ``keras.mixed_precision``.
_DTYPE_MODULES = ("keras", "keras.dtype_policies", "keras.mixed_precision")
#: The modules a layer keyword's nested object must be saved under, by the keyword's ending.
_SLOT_MODULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("_initializer", _INITIALIZER_MODULES),
    ("_regularizer", _REGULARIZER_MODULES),
    ("_constraint", _CONSTRAINT_MODULES),
)


def shown(value: Any, spelling: Callable[[Any], str] = repr, limit: int = SHOWN_LIMIT) -> str:
    """A value from the source as an error message shows it: ``spelling(value)`` (its repr, or
    e.g. :func:`str`, :func:`json.dumps`) clipped to about ``limit`` characters, so a hostile
    5 MB value or name makes a short message, not a 5 MB line."""
    try:
        text = spelling(value)
    except (RecursionError, ValueError, TypeError):  # nested too deeply, or no such spelling
        text = f"<a {type(value).__name__} that cannot be shown>"
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text):,} characters)"


def _is_none(value: Any) -> bool:
    return value is None


#: Keras keywords no kind exposes, and the values that mean "the standard layer"
#: (``trainable`` and ``dtype`` are read by :func:`_trainable` and :func:`_check_dtype`).
_NEUTRAL: dict[str, Callable[[Any], bool]] = {
    "name": lambda v: True,
    "data_format": lambda v: v in (None, "channels_last"),
    "kernel_constraint": _is_none,
    "bias_constraint": _is_none,
    "depthwise_constraint": _is_none,
    "pointwise_constraint": _is_none,
    "beta_constraint": _is_none,
    "alpha_constraint": _is_none,  # PReLU's: no kind writes a constraint
    "gamma_constraint": _is_none,
    "activity_regularizer": _is_none,
    "beta_regularizer": _is_none,
    "gamma_regularizer": _is_none,
    "lora_rank": _is_none,
    "lora_alpha": _is_none,
    "quantization_config": _is_none,
    "synchronized": lambda v: v is False,
    "renorm": lambda v: v is False,
    "rms_scaling": lambda v: v is False,
    "pad_to_aspect_ratio": lambda v: v is False,
    "antialias": lambda v: v is False,
    "fill_mode": lambda v: v == "constant",  # Resizing's padding fill (unused without padding)
    "fill_value": lambda v: v in (0, 0.0),
    # RandomGaussianBlur's, which random_gaussian_blur keeps at Keras' default (a kind that
    # declares a kernel_size never reaches this table)
    "kernel_size": lambda v: v in (3, [3, 3], (3, 3)),
    "renorm_clipping": _is_none,
    "renorm_momentum": lambda v: True,  # unused without renorm
    "beta_initializer": lambda v: _same_initializer("zeros", v),
    "moving_mean_initializer": lambda v: _same_initializer("zeros", v),
    "gamma_initializer": lambda v: _same_initializer("ones", v),
    "moving_variance_initializer": lambda v: _same_initializer("ones", v),
}


@dataclass(frozen=True)
class Reversed:
    """A kind and the parameters that rebuild a layer: only those that differ from the defaults;
    ``trainable``: ``False`` for a layer the source froze (the spec item's ``trainable: false``);
    ``policy``: the dtype policy saved with the layer (``float32``, ``mixed_float16`` …; None:
    none saved, Keras' global one), which no spec item holds: the importer reads the model's."""

    kind: LayerKind
    params: dict[str, Any]
    trainable: bool = True
    policy: str | None = None


class NotExpressible(Exception):
    """The configuration cannot be written in the spec language; the message says why."""


def snake_case(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def keras_auto_name(class_name: str) -> str:
    """The name Keras gives a layer of ``class_name`` when none is passed, before its ``_N``
    count (Keras' own ``to_snake_case``): ``re_lu`` for ReLU, ``p_re_lu`` for PReLU, ``elu`` for
    ELU. :func:`snake_case` (one ``_`` before every capital, as the saved names of initializers
    and regularizers need) gives ``re_l_u``, which no automatic name is."""
    name = re.sub(r"\W+", "", class_name)
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def keras_own(value: Mapping[str, Any], modules: tuple[str, ...] | None = None) -> bool:
    """Is a saved nested object (``{module, class_name, config, registered_name}``) one of
    Keras' own, that loading the file builds from Keras? ``modules``: the modules its kind is
    saved under (None: any module of Keras itself). A registered name, even on a Keras module,
    makes Keras load the registered class instead (``_retrieve_class_or_fn`` looks it up first)."""
    module = value.get("module")
    if value.get("registered_name") is not None or not isinstance(module, str):
        return False
    if modules is not None:
        return module in modules
    return module == "keras" or module.startswith("keras.")


def _origin(value: Mapping[str, Any]) -> str:
    """How a message names a saved object's class: ``mypkg.L2 (registered as 'my>L2')``."""
    module, class_name = value.get("module"), value.get("class_name")
    origin = f"{module}.{class_name}" if isinstance(module, str) and module else str(class_name)
    registered = value.get("registered_name")
    return origin + (f" (registered as {registered!r})" if registered is not None else "")


#: ``serialize_keras_object``'s markers for plain values (``{"class_name": "__numpy__", "config":
#: {...}}``), saved without a module; ``__lambda__`` holds a lambda's bytecode.
_VALUE_MARKER = re.compile(r"^__[a-z_]+__$")
_LAMBDA_MARKER = "__lambda__"


def _slot_modules(key: str) -> tuple[str, ...] | None:
    """The modules the nested object of layer keyword ``key`` is saved under (None: any of
    Keras' own)."""
    if key == "dtype":
        return _DTYPE_MODULES
    return next((modules for ending, modules in _SLOT_MODULES if key.endswith(ending)), None)


def _check_nested_objects(config: Mapping[str, Any]) -> None:
    """Refuse a layer any of whose keyword values holds a nested object that is not Keras' own
    (a custom initializer, regularizer, constraint, dtype policy, activation function …): the
    registry would read it by its class name as Keras' built-in of that name, a different model.

    Walks iteratively: a hand-edited value nested thousands deep must not hit the recursion limit.
    """
    for key, top in config.items():
        stack: list[tuple[Any, tuple[str, ...] | None]] = [(top, _slot_modules(str(key)))]
        while stack:
            value, modules = stack.pop()
            if isinstance(value, Mapping):
                class_name = value.get("class_name")
                if class_name == _LAMBDA_MARKER:
                    raise NotExpressible(f"`{shown(key, str)}` is a Python lambda (code)")
                # Keras' value markers (__numpy__, __tensor__ …) are data, not classes: the
                # keyword's own check reads them
                marker = isinstance(class_name, str) and _VALUE_MARKER.match(class_name) is not None
                if class_name is not None and not marker and not keras_own(value, modules):
                    raise NotExpressible(
                        f"`{shown(key, str)}` is {shown(_origin(value), str)}, a custom class or function, "
                        "not Keras' own (import never runs the source's code; a spec writes Keras' built-ins)"
                    )
                # anything inside an object (its config) is the object's own: any Keras module
                stack.extend((v, None) for v in value.values())
            elif isinstance(value, (list, tuple)):
                stack.extend((v, modules) for v in value)


def _same_initializer(name: str, value: Any) -> bool:
    if isinstance(value, str):
        return snake_case(value) == name
    if not isinstance(value, Mapping) or not keras_own(value, _INITIALIZER_MODULES):
        return False  # a custom class of the same name is not Keras' initializer
    return snake_case(str(value.get("class_name", ""))) == name and _numbers_equal(
        _set_values(value.get("config")), _set_values(_INITIALIZER_DEFAULTS.get(name))
    )


def _set_values(config: Any) -> dict[str, Any]:
    """A saved configuration without its unset (null) entries, which newer Keras adds."""
    return {k: v for k, v in dict(config or {}).items() if v is not None}


def _numbers_equal(a: Any, b: Any) -> bool:
    """Equal as Keras means it: 6 and 6.0, (1, 1) and [1, 1]."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return float(a) == float(b)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_numbers_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return set(a) == set(b) and all(_numbers_equal(a[k], b[k]) for k in a)
    return bool(a == b)


def _decode_initializer(value: Any) -> Any:
    if isinstance(value, str):
        return snake_case(value)
    if not isinstance(value, Mapping):
        raise NotExpressible(f"unreadable initializer {shown(value)}")
    if not keras_own(value, _INITIALIZER_MODULES):
        raise NotExpressible(f"initializer {shown(_origin(value), str)} is a custom class, not Keras' own")
    name = snake_case(str(value.get("class_name", "")))
    config = dict(value.get("config") or {})
    if name == "constant":
        return {"constant": {"value": config.get("value")}}
    if name == "variance_scaling":
        if config.get("seed") is not None:
            raise NotExpressible("a seeded initializer")
        return {"variance_scaling": {k: config[k] for k in ("scale", "mode", "distribution") if k in config}}
    return name


def _decode_regularizer(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, Mapping) and not keras_own(value, _REGULARIZER_MODULES):
        raise NotExpressible(f"regularizer {shown(_origin(value), str)} is a custom class, not Keras' own")
    if isinstance(value, Mapping) and snake_case(str(value.get("class_name", ""))) in ("l1_l2", "l1", "l2"):
        config = dict(value.get("config") or {})
        amounts = {k: float(config[k]) for k in ("l1", "l2") if float(config.get(k) or 0.0)}
        if amounts:
            return amounts
        # All zero (`L2(0)`, `L1L2(0, 0)`): no penalty, but a regularizer the model has; keep an
        # explicit zero (the spec's `{l2: 0.0}`) so that building the spec gives the same layer.
        zeros = [k for k in ("l1", "l2") if config.get(k) is not None]
        return {zeros[-1] if zeros else "l2": 0.0}
    raise NotExpressible(
        f"regularizer {shown(value.get('class_name') if isinstance(value, Mapping) else value)}"
    )


def _decode(param: Param, value: Any) -> Any:
    """The spec's spelling of a saved Keras keyword value, in its shortest form."""
    if value is None:
        return None
    if param.type == "initializer":
        return _decode_initializer(value)
    if param.type == "regularizer":
        return _decode_regularizer(value)
    if param.type == "activation" or param.name == "activation":
        return value
    if param.type in ("ints", "floats") and isinstance(value, (list, tuple)):
        values = list(value)
        return values[0] if values and all(v == values[0] for v in values) else values
    if param.type == "padding" and isinstance(value, (list, tuple)):
        pairs = [list(v) if isinstance(v, (list, tuple)) else [v, v] for v in value]
        if all(a == b for a, b in pairs):
            rows, cols = pairs[0][0], pairs[1][0]
            return rows if rows == cols else [rows, cols]
        return pairs
    if isinstance(value, tuple):
        return list(value)
    return value


#: Keras' regularizer classes, as :func:`_factory` spells them: each is an L1L2 with one or both
#: amounts (``L2(1e-4)`` is ``L1L2(l2=1e-4)``, the spec's ``{l2: 0.0001}``).
_REGULARIZERS = ("l1", "l2", "l1l2")


def _factory(name: Any) -> str:
    """A Keras class or factory name compared by spelling: ``L1L2``, ``l1_l2`` → ``l1l2``."""
    return snake_case(str(name)).replace("l1_l2", "l1l2")


def _amounts(config: Mapping[str, Any]) -> dict[str, Any]:
    """A regularizer's configuration without its zero (absent) amounts."""
    return {k: v for k, v in _set_values(config).items() if not _numbers_equal(v, 0.0)}


def _encoded_equal(ours: Any, theirs: Any) -> bool:
    """Does a ``keras_args`` value (ours) equal a saved configuration value (theirs)?"""
    if isinstance(ours, KerasCall):
        if not isinstance(theirs, Mapping) or not isinstance(theirs.get("config") or {}, Mapping):
            return False
        theirs_class, ours_class = _factory(theirs.get("class_name", "")), _factory(ours.factory)
        modules = _REGULARIZER_MODULES if ours_class in _REGULARIZERS else _INITIALIZER_MODULES
        if not keras_own(theirs, modules):
            return False  # a custom class that shares Keras' class name is another object
        if theirs_class in _REGULARIZERS and ours_class in _REGULARIZERS:
            return _numbers_equal(_amounts(theirs.get("config") or {}), _amounts(dict(ours.kwargs)))
        if theirs_class != ours_class:
            return False
        return _numbers_equal(_set_values(theirs.get("config")), _set_values(dict(ours.kwargs)))
    if isinstance(ours, str) and isinstance(theirs, Mapping):
        return _same_initializer(ours, theirs)
    if ours is None and theirs == "linear":
        return True  # no activation, as Keras saves it
    return _numbers_equal(ours, theirs)


def _decode_axis(value: Any) -> Any:
    """Keras saves an axis as 3, [3] or [] (none): the spec's int or null."""
    if isinstance(value, (list, tuple)):
        if not value:
            return None
        return value[0] if len(value) == 1 else list(value)
    return value


def _check_axis(config: Mapping[str, Any]) -> bool:
    """A normalisation/concatenation axis is the channel axis: -1, or the last of the input."""
    axis = config.get("axis", -1)
    if isinstance(axis, (list, tuple)):
        if len(axis) != 1:
            return False
        axis = axis[0]
    shape = config.get("__input_shape__") or ()
    if not isinstance(shape, (list, tuple)):
        return False
    if shape and isinstance(shape[0], (list, tuple)):
        shape = shape[0]  # a merge layer's first input
    return axis == -1 or (bool(shape) and axis == len(shape) - 1)


def from_keras(class_name: str, config: Mapping[str, Any], input_shape: Any = None) -> Reversed:
    """The kind and non-default parameters of a Keras layer; :class:`NotExpressible` if none fits.

    ``input_shape`` (with the batch axis, as Keras saves it in ``build_config``) decides whether
    a saved ``axis`` such as 3 is the channel axis.
    """
    kind = kind_of_keras_class(class_name)
    if kind is None:
        raise NotExpressible(f"no layer kind builds Keras {shown(class_name, str)}")
    _check_nested_objects(config)
    config = _one_sided(kind, config)
    params: dict[str, Any] = {}
    declared: set[str] = set()
    for param in kind.params:
        key = param.keras_name
        if key is None:
            continue
        declared.add(key)
        if key in config:
            if param.name == "activation" and config[key] == "linear" and param.default is None:
                continue  # Keras saves "no activation" as linear
            if key == "axis":
                value = _decode_axis(config[key])
                if value == -1 or _check_axis({"axis": value, "__input_shape__": input_shape}):
                    continue  # the channel axis: the registry's default, -1
                params[param.name] = value
                continue
            params[param.name] = _decode(param, config[key])
        elif param.required:
            raise NotExpressible(f"the configuration has no {key!r}")
    if "axis" in config and "axis" not in declared:
        declared.add("axis")
        if not _check_axis({**config, "__input_shape__": input_shape}):
            raise NotExpressible(f"axis {shown(config['axis'])} is not the channel axis")
    trainable = _trainable(config)
    policy = _check_dtype(config)
    for key, value in config.items():
        if key in declared or key in ("trainable", "dtype"):
            continue
        if key not in _NEUTRAL:
            raise NotExpressible(f"`{shown(key, str)}: {shown(value)}` has no equivalent parameter")
        if not _NEUTRAL[key](value):
            raise NotExpressible(f"`{key}: {shown(value)}` differs from the standard layer")
    for name, value in params.items():
        problem = kind.param_index[name].check(value)
        if problem:
            raise NotExpressible(f"{name}: {shown(problem, str)}")
    full = {**kind.defaults(), **params}
    encoded = kind.keras_args(full)
    for key, ours in encoded.items():
        if key == "axis" and key in config:
            theirs = _decode_axis(config[key])
            same = _numbers_equal(_decode_axis(ours), theirs) or (
                _decode_axis(ours) == -1 and _check_axis({"axis": theirs, "__input_shape__": input_shape})
            )
            if not same:
                raise NotExpressible(f"`axis: {shown(config[key])}` cannot be written exactly")
            continue
        if key in config and not _encoded_equal(ours, config[key]):
            raise NotExpressible(f"`{key}: {shown(config[key])}` cannot be written exactly")
    shortest = {
        name: value
        for name, value in params.items()
        if kind.param_index[name].default is REQUIRED
        or not _numbers_equal(
            kind.param_index[name].normalize(value),
            kind.param_index[name].normalize(kind.param_index[name].default),
        )
    }
    return Reversed(kind, shortest, trainable, policy)


def _one_sided(kind: LayerKind, config: Mapping[str, Any]) -> Mapping[str, Any]:
    """``config`` with each number saved for a ``keras_one_sided`` factor as the range Keras
    reads it as, [0, f] (RandomColorJitter saves its contrast_factor as given): the spec's
    number f means both ways, so Keras' f is the spec's [0, f]."""
    sided = {
        p.keras_name: [0, config[p.keras_name]]
        for p in kind.params
        if p.keras_one_sided
        and p.keras_name in config
        and isinstance(config[p.keras_name], (int, float))
        and not isinstance(config[p.keras_name], bool)
    }
    return {**config, **sided} if sided else config


def _trainable(config: Mapping[str, Any]) -> bool:
    """The saved ``trainable`` (absent: trainable); a frozen layer imports frozen."""
    value = config.get("trainable", True)
    if not isinstance(value, bool):
        raise NotExpressible(f"`trainable: {shown(value)}` is not true or false")
    return value


def dtype_policy(value: Any) -> str | None:
    """The name of a saved ``dtype`` policy (a string, or a ``DTypePolicy`` object as Keras 3
    saves it); ``None`` when it is not one."""
    if value is None or isinstance(value, str):
        return value
    if (
        isinstance(value, Mapping)
        and value.get("class_name") in _DTYPE_POLICIES
        and keras_own(value, _DTYPE_MODULES)  # a custom policy class may compute anything
    ):
        config = value.get("config")
        name = config.get("name") if isinstance(config, Mapping) else None
        return name if isinstance(name, str) else None
    return None


def _check_dtype(config: Mapping[str, Any]) -> str | None:
    """The layer's saved dtype policy (None: none saved). A layer keeps float32 variables, as
    every layer a spec builds: float32 and the mixed policies (``mixed_float16``,
    ``mixed_bfloat16``: float32 variables, a training setting the spec's ``runtime:
    {mixed_precision: true}`` gives; the importer sets it from the policies returned here)
    import; any other policy (float16, bfloat16, a quantized one) is refused by name, never
    dropped."""
    if "dtype" not in config or config["dtype"] is None:
        return None
    policy = dtype_policy(config["dtype"])
    if policy == _STANDARD_DTYPE or policy in MIXED_POLICIES:
        return policy
    what = f"dtype policy {shown(policy)}" if policy is not None else f"`dtype: {shown(config['dtype'])}`"
    raise NotExpressible(
        f"{what}: a spec builds layers with {_STANDARD_DTYPE} weights (for mixed-precision training, "
        "set runtime: {mixed_precision: true})"
    )


#: The kind a combinator's ``activation:`` field adds after its merge.
COMBINATOR_ACTIVATION = "activation"


def merge_mode(layer: Reversed) -> str | None:
    """The combinator ``merge:`` word that makes exactly this layer, or None: a kind with the
    :attr:`~cnnspec.layers.registry.LayerKind.combines` trait, at its defaults (a combinator
    writes no merge parameters: a concat along another axis stays a layer with ids)."""
    if layer.kind.combines is not None and not layer.params:
        return layer.kind.name
    return None


def combinator_activation(layer: Reversed) -> str | None:
    """The combinator ``activation:`` value that makes exactly this layer, or None."""
    if layer.kind.name == COMBINATOR_ACTIVATION and set(layer.params) == {"activation"}:
        return layer.params["activation"]
    return None


def commutative(kind: LayerKind) -> bool:
    """Whether a many-input kind's inputs may come in any order (``x + f(x)`` is ``f(x) + x``):
    the element-wise merges of :attr:`~cnnspec.layers.registry.LayerKind.combines`."""
    return kind.combines == "elementwise"


# -- keras.applications' raw-op hard sigmoid ---------------------------------------------------
#: MobileNetV3 (keras.applications) computes its hard sigmoid as ``ReLU(6.)(x + 3.) * (1. / 6.)``:
#: raw operations on constants around a ReLU layer. The spec language writes the same function as
#: this one layer (the zoo's substitution, tests/test_zoo_parity.py).
HARD_SIGMOID_CLASS = "Activation"
HARD_SIGMOID_CONFIG: dict[str, Any] = {"activation": "hard_sigmoid"}


@dataclass(frozen=True)
class Step:
    """What the pattern needs to know of one saved graph node."""

    class_name: str
    operation: bool  # a raw operation (keras.src.ops), not a layer
    constants: tuple[Any, ...]
    config: Mapping[str, Any]


def _constant(step: Step, value: float) -> bool:
    import math

    return (
        len(step.constants) == 1
        and isinstance(step.constants[0], (int, float))
        and not isinstance(step.constants[0], bool)
        and math.isclose(step.constants[0], value, rel_tol=1e-6)
    )


def is_hard_sigmoid(add: Step, relu: Step, scale: Step) -> bool:
    """Whether three chained nodes are ``ReLU(6)(x + 3) * (1/6)``."""
    return (
        add.operation
        and add.class_name == "Add"
        and _constant(add, 3.0)
        and not relu.operation
        and relu.class_name == "ReLU"
        and relu.config.get("max_value") in (6, 6.0)
        and not relu.config.get("negative_slope")
        and not relu.config.get("threshold")
        and scale.operation
        and scale.class_name == "Multiply"
        and _constant(scale, 1 / 6)
    )
