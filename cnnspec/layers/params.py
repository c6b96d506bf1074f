"""Typed layer parameters: one declaration gives the JSON Schema piece, the checker used after
``${…}`` substitution, and the canonical value the back ends receive."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cnnspec.errors import closest, describe_value, did_you_mean, misspelt

REQUIRED: Any = object()

#: Other libraries' names for a layer parameter (Keras' ``units`` written on a convolution,
#: PyTorch's ``p``, ``out_channels``, ``stride``, ``kernel``) → the cnnspec names they may
#: mean, most likely first. Only hints read it: a spec has one spelling per parameter, so the
#: foreign name stays refused, but its error names the parameter meant and stands for the
#: "missing required parameter" that would otherwise follow it (one mistake, one error).
PARAM_SYNONYMS: dict[str, tuple[str, ...]] = {
    "units": ("filters",),
    "filters": ("units",),
    "out_channels": ("filters", "units"),
    "out_features": ("units", "filters"),
    "num_filters": ("filters",),
    "channels": ("filters", "units"),
    "features": ("units", "filters"),
    "p": ("rate",),
    "drop_rate": ("rate",),
    "dropout": ("rate",),
    "kernel": ("kernel_size",),
    "kernel_shape": ("kernel_size",),
    "ksize": ("kernel_size",),
    "size": ("kernel_size", "pool_size"),
    "stride": ("strides",),
    "dilation": ("dilation_rate",),
    "bias": ("use_bias",),
    "pool": ("pool_size",),
    "eps": ("epsilon",),
    "num_groups": ("groups",),
    "multiplier": ("depth_multiplier",),
    "scale_factor": ("size",),
    "shape": ("target_shape",),
}


def param_synonym(key: object, valid: Mapping[str, object], written: Iterable[object] = ()) -> str | None:
    """The parameter of ``valid`` that ``key``, another library's name for it, means; ``None``
    when ``key`` is no known synonym of any of them. A parameter among ``written`` (the keys
    beside ``key``) is not the one meant: it is there already."""
    if not isinstance(key, str):
        return None
    present = set(written)
    return next((name for name in PARAM_SYNONYMS.get(key, ()) if name in valid and name not in present), None)


def meant_parameters(keys: Iterable[object], valid: Mapping[str, object], missing: Iterable[str]) -> set[str]:
    """Which ``missing`` required parameters the unknown ``keys`` stand for: misspelt
    (:func:`~cnnspec.errors.misspelt`) or written with another library's name
    (:data:`PARAM_SYNONYMS`). The unknown key's error names them; none is also missing."""
    wanted = set(missing)
    unknown = [k for k in keys if isinstance(k, str) and k not in valid]
    meant = misspelt(unknown, valid, wanted)
    meant.update(m for m in (param_synonym(k, valid) for k in unknown) if m in wanted)
    return meant


def text_as_value(text: str) -> int | float | list[int | float] | None:
    """What ``text`` meant when it is a number in quotes (``"0.3"``) or a Python tuple of
    numbers (``(3, 3)``, which YAML reads as text); ``None`` for any other text."""
    body = text.strip()
    if body.startswith("(") and body.endswith(")"):
        items = [_number_text(item) for item in body[1:-1].split(",") if item.strip()]
        return None if not items or any(item is None for item in items) else items  # type: ignore[return-value]
    return _number_text(body)


def _number_text(text: str) -> int | float | None:
    """The finite int or float ``text`` spells (``"32"``, ``"1e-3"``), or ``None``."""
    text = text.strip()
    try:
        return int(text)
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def written_as_text_hint(text: str, meant: Any) -> str:
    """How to write ``meant``, which the spec wrote as the text ``text``."""
    shown = "[" + ", ".join(map(str, meant)) + "]" if isinstance(meant, list) else str(meant)
    if isinstance(meant, list):
        return f"write a list {shown}, not a tuple: YAML reads `{text.strip()}` as text"
    return f"remove the quotes: write {shown}, a number, not the text {text!r}"


#: Activation names accepted wherever an activation is a parameter (Keras' own names).
ACTIVATIONS = (
    "linear",
    "relu",
    "relu6",
    "leaky_relu",
    "elu",
    "selu",
    "gelu",
    "swish",
    "silu",
    "hard_swish",
    "hard_silu",
    "mish",
    "sigmoid",
    "hard_sigmoid",
    "tanh",
    "softmax",
    "softplus",
)
#: Activation names that are another name of one Keras function (``keras.activations.swish is
#: silu``): what a comparison of two models reads them as.
ACTIVATION_ALIASES = {"swish": "silu", "hard_swish": "hard_silu"}
INITIALIZERS = (
    "glorot_uniform",
    "glorot_normal",
    "he_uniform",
    "he_normal",
    "lecun_uniform",
    "lecun_normal",
    "orthogonal",
    "zeros",
    "ones",
    "random_normal",
    "random_uniform",
    "truncated_normal",
)
#: The configurable initializers a spec may write as a mapping, as keras.applications' EfficientNets
#: use them: ``{constant: {value: 0.0}}`` and ``{variance_scaling: {scale: 2.0, mode: fan_out,
#: distribution: truncated_normal}}``; VarianceScaling's keywords and the values each accepts
#: (``None``: a positive number).
VARIANCE_SCALING: dict[str, tuple[str, ...] | None] = {
    "scale": None,
    "mode": ("fan_in", "fan_out", "fan_avg"),
    "distribution": ("truncated_normal", "untruncated_normal", "uniform"),
}
MAX_SIZE = 2**31 - 1
#: The largest finite float32 (``numpy.finfo("float32").max``): the back ends compute in float32,
#: so a number parameter beyond it (``rescaling: 1.0e+39``) becomes inf in the first batch, or a
#: build-time crash for a constant (an initializer's value, normalization's mean).
FLOAT32_MAX = 3.4028234663852886e38

EXPRESSION_SCHEMA: dict[str, Any] = {"$ref": "#/$defs/expression"}
#: A string with ``${…}`` formatted into it: an alternative of the parameters that take strings.
TEMPLATE_SCHEMA: dict[str, Any] = {"$ref": "#/$defs/template"}


def _takes_strings(schema: Any) -> bool:
    """Whether a parameter's ``schema`` takes a string (its type, an enum's value, or an
    alternative's), so that a string made by formatting expressions into it may be one."""
    if not isinstance(schema, dict):
        return False
    kinds = schema.get("type")
    if kinds == "string" or (isinstance(kinds, list) and "string" in kinds):
        return True
    if any(isinstance(value, str) for value in schema.get("enum") or ()):
        return True
    if isinstance(schema.get("const"), str):
        return True
    return any(_takes_strings(part) for part in (schema.get("anyOf") or schema.get("oneOf") or ()))


def _items_may_be_expressions(schema: Any) -> Any:
    """``schema`` with a ``${…}`` alternative for every list item, at every depth: a spec may
    write ``kernel_size: ["${k}", "${k}"]`` (the resolver substitutes items one by one), and the
    editor's schema must not mark it."""
    if isinstance(schema, list):
        return [_items_may_be_expressions(part) for part in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: _items_may_be_expressions(value) for key, value in schema.items()}
    if isinstance(out.get("items"), dict):
        out["items"] = {"anyOf": [out["items"], EXPRESSION_SCHEMA]}
    return out


@dataclass(frozen=True)
class ItemProblem:
    """One bad element of a list parameter: where it is (an index per level of nesting), what
    was expected there, and the element itself, so that the message names it — "received a
    list of 2 items" does not say which, nor show a value an expression computed."""

    index: tuple[int | str, ...]
    expected: str
    value: Any
    #: How to say the value received, where :func:`describe_value` says too little ("a list of
    #: 2 items" for a ``[lower, upper]`` whose order is what is wrong); ``None``: as it says.
    received: str | None = None


def _first_bad_item(values: list[Any], check: Callable[[Any], str | None]) -> ItemProblem | None:
    for index, item in enumerate(values):
        problem = check(item)
        if problem is not None:
            return ItemProblem((index,), problem, item)
    return None


def _index_text(index: tuple[int | str, ...]) -> str:
    """``[1]`` for a list's element, ``.scale`` for a mapping's."""
    return "".join(f".{i}" if isinstance(i, str) else f"[{i}]" for i in index)


def _size_limit(value: int) -> str:
    """The bound an integer beyond the back ends' 32-bit sizes broke, said as such."""
    return f"at most {MAX_SIZE:,}" if value > 0 else f"at least {-MAX_SIZE:,}"


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    """A finite number float32 can hold (NaN and ±inf compare false)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and abs(value) <= FLOAT32_MAX


def _beyond_float32(value: Any) -> bool:
    """A number, but one float32 cannot hold (an infinity included; NaN is no number at all)."""
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and not (isinstance(value, float) and math.isnan(value))
        and not _is_number(value)
    )


def _float_limit(value: float) -> str:
    """The bound a number beyond float32's range broke, said as such (as :func:`_size_limit`)."""
    return f"at most {FLOAT32_MAX:.8g} (float32's largest)" if value > 0 else f"at least {-FLOAT32_MAX:.8g}"


def _received(value: Any) -> str:
    """:func:`describe_value`, saying an empty mapping is empty (not "with keys ")."""
    if isinstance(value, dict) and not value:
        return "an empty mapping"
    return describe_value(value)


@dataclass(frozen=True)
class Param:
    """One parameter of a layer kind.

    ``type`` selects a row of :data:`PARAM_TYPES`; ``minimum``/``maximum`` bound numbers (and
    every element of tuples), each exclusive when ``exclusive_minimum``/``exclusive_maximum``;
    ``choices`` lists allowed strings; ``length`` is the tuple length of ``ints``/``numbers``
    parameters (an int stands for the same value repeated).
    ``keras`` is the keyword the Keras constructor takes (``None``: not passed to Keras).
    ``keras_one_sided``: a ``factor`` whose Keras layer reads a number f as (0, f) (its
    ``_set_factor`` with bounds (0, 1)) where the spec's f means both ways, 1 − f to 1 + f: Keras
    is given (f, f), and the importer reads Keras' saved number f as [0, f].
    """

    name: str
    type: str
    default: Any = REQUIRED
    doc: str = ""
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    choices: tuple[str, ...] = ()
    length: int = 2
    nullable: bool = False
    keras: str | None = field(default="")
    exclusive_maximum: bool = False
    keras_one_sided: bool = False

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    @property
    def keras_name(self) -> str | None:
        return self.name if self.keras == "" else self.keras

    # -- checking --------------------------------------------------------------------------
    def check(self, value: Any) -> str | None:
        """An "expected …; received …" message when ``value`` is invalid, else ``None``; a bad
        element of a list is named in it (``kernel_size[1]: expected …``)."""
        found = self.problem(value)
        if found is None:
            return None
        message, index = found
        return f"{self.name}{_index_text(index)}: {message}" if index else message

    def problem(self, value: Any) -> tuple[str, tuple[int | str, ...]] | None:
        """What :meth:`check` finds, as ``(message, index)``: ``index`` leads from ``value`` to
        the bad element (``(1,)`` for ``kernel_size[1]``; ``()`` when the whole value is
        wrong), so that a caller can point at the element itself where the spec wrote it out."""
        if value is None:
            return None if self.nullable else (f"expected {self.describe()}; received null", ())
        problem = PARAM_TYPES[self.type].check(self, value)
        if problem is None:
            return None
        if isinstance(problem, ItemProblem):
            received = problem.received or _received(problem.value)
            return f"expected {problem.expected}; received {received}", problem.index
        return f"expected {problem}; received {_received(value)}", ()

    def hint(self, value: Any) -> str | None:
        """A hint for a refused ``value``: the name it was probably meant to be (``he_unifrom`` →
        ``he_uniform``, among :attr:`choices` or the type's own names), or how to write it."""
        if isinstance(value, str):
            # a number in quotes or a Python tuple reads as text: say how to write what was
            # meant, when that form is one this parameter takes
            meant = text_as_value(value)
            if meant is not None and self.problem(meant) is None:
                return written_as_text_hint(value, meant)
        if isinstance(value, str) and self.choices:
            return did_you_mean(value, self.choices)
        rule = PARAM_TYPES[self.type].hint
        return rule(self, value) if rule is not None else None

    def normalize(self, value: Any) -> Any:
        """The canonical form the back ends receive (tuples expanded, numbers typed)."""
        if value is None:
            return None
        return PARAM_TYPES[self.type].normalize(self, value)

    def describe(self) -> str:
        return PARAM_TYPES[self.type].describe(self)

    def json_schema(self) -> dict[str, Any]:
        schema = _items_may_be_expressions(PARAM_TYPES[self.type].schema(self))
        alternatives = [schema, EXPRESSION_SCHEMA]
        if _takes_strings(schema):  # (`activation: "${act}6"`; a number's stays a whole `${…}`)
            alternatives.append(TEMPLATE_SCHEMA)
        if self.nullable:
            alternatives.append({"type": "null"})
        result: dict[str, Any] = {"anyOf": alternatives}
        if self.doc:
            result["description"] = self.doc
        if not self.required and _json_safe(self.default):
            result["default"] = self.default
        return result

    # -- range helpers used by the type table ----------------------------------------------
    def in_range(self, value: float) -> bool:
        if self.minimum is not None:
            if self.exclusive_minimum and not value > self.minimum:
                return False
            if not self.exclusive_minimum and value < self.minimum:
                return False
        if self.maximum is None:
            return True
        return value < self.maximum if self.exclusive_maximum else value <= self.maximum

    def range_text(self) -> str:
        parts = []
        if self.minimum is not None:
            parts.append(f"{'>' if self.exclusive_minimum else '≥'} {_fmt(self.minimum)}")
        if self.maximum is not None:
            parts.append(f"{'<' if self.exclusive_maximum else '≤'} {_fmt(self.maximum)}")
        return " and ".join(parts)

    def number_bounds(self) -> dict[str, Any]:
        bounds: dict[str, Any] = {}
        if self.minimum is not None:
            key = "exclusiveMinimum" if self.exclusive_minimum else "minimum"
            bounds[key] = self.minimum
        if self.maximum is not None:
            bounds["exclusiveMaximum" if self.exclusive_maximum else "maximum"] = self.maximum
        return bounds


def _fmt(number: float) -> str:
    return str(int(number)) if float(number).is_integer() else str(number)


def _json_safe(value: Any) -> bool:
    return value is None or isinstance(value, (bool, int, float, str, list))


@dataclass(frozen=True)
class ParamType:
    """How one family of parameter values is checked, described, normalised and schematised."""

    check: Callable[[Param, Any], str | ItemProblem | None]
    describe: Callable[[Param], str]
    normalize: Callable[[Param, Any], Any]
    schema: Callable[[Param], dict[str, Any]]
    hint: Callable[[Param, Any], str | None] | None = None
    """A hint for a refused value (see :meth:`Param.hint`); ``None``: none."""


def _int_describe(p: Param) -> str:
    if p.minimum == 1 and p.maximum is None:
        return "a positive integer"
    if p.minimum == 0 and p.maximum is None:
        return "a non-negative integer"
    bounds = p.range_text()
    return f"an integer {bounds}" if bounds else "an integer"


def _int_check(p: Param, v: Any) -> str | None:
    if not _is_int(v) or not p.in_range(v):
        return _int_describe(p)
    if abs(v) > MAX_SIZE:
        return f"{_int_describe(p)} {_size_limit(v)}"
    return None


def _number_describe(p: Param) -> str:
    bounds = p.range_text()
    return f"a number {bounds}" if bounds else "a number"


def _number_check(p: Param, v: Any) -> str | None:
    if _beyond_float32(v) and p.in_range(v):
        return f"{_number_describe(p)} {_float_limit(v)}"  # the bound that failed, said
    return None if _is_number(v) and p.in_range(v) else _number_describe(p)


def _ints_describe(p: Param) -> str:
    return f"{_int_describe(p)} or a list of {p.length}"


def _ints_check(p: Param, v: Any) -> str | ItemProblem | None:
    if isinstance(v, list):
        if len(v) != p.length:
            return _ints_describe(p)
        return _first_bad_item(v, lambda item: _int_check(p, item))
    problem = _int_check(p, v)
    if problem is None:
        return None
    # Only the size limit is worth more than the usual description: it is what failed.
    return problem if _is_int(v) and p.in_range(v) else _ints_describe(p)


def _ints_normalize(p: Param, v: Any) -> tuple[int, ...]:
    return tuple(v) if isinstance(v, list) else (v,) * p.length


def _ints_schema(p: Param) -> dict[str, Any]:
    item = {"type": "integer", **p.number_bounds()}
    return {"anyOf": [item, {"type": "array", "items": item, "minItems": p.length, "maxItems": p.length}]}


def _factor_describe(p: Param) -> str:
    return f"{_number_describe(p)} or a list [lower, upper]"


def _factor_item_describe(p: Param) -> str:
    """What each value of a factor's ``[lower, upper]`` may be: its size is bounded as a single
    factor is, its sign is free (a negative lower turns the other way, zooms in, darkens)."""
    if p.maximum is not None and p.minimum in (None, 0) and not p.exclusive_minimum:
        return f"a number from {_fmt(-p.maximum)} to {_fmt(p.maximum)}"
    bounds = p.range_text()
    return f"a number whose size is {bounds}" if bounds else "a number"


def _range_problem(v: list[Any], item_ok: Callable[[Any], bool], item_expected: str) -> ItemProblem | None:
    """Which rule a ``[lower, upper]`` list breaks, said with its values (``None``: none): the
    first value out of range (named and located at the element), else an order that is not
    lower ≤ upper. Checked only for a list of two; another length is the type's own message."""
    bad = _first_bad_item(v, lambda x: None if _is_number(x) and item_ok(x) else item_expected)
    if bad is not None:
        return ItemProblem(bad.index, f"{item_expected} (each of [lower, upper])", bad.value)
    if v[0] > v[1]:
        shown = f"[{', '.join(_fmt(x) for x in v)}]"
        return ItemProblem(
            (),
            "a list [lower, upper] with lower ≤ upper",
            v,
            f"{shown} (lower {_fmt(v[0])} > upper {_fmt(v[1])})",
        )
    return None


def _factor_check(p: Param, v: Any) -> str | ItemProblem | None:
    if (found := _beyond_float32_item(p, v)) is not None:
        return found
    if isinstance(v, list):
        if len(v) != 2:
            return _factor_describe(p)
        # the rule the list breaks, with its values: "received a list of 2 items" says neither
        return _range_problem(v, lambda x: p.in_range(abs(x)), _factor_item_describe(p))
    return None if _is_number(v) and p.in_range(v) else _factor_describe(p)


def _zoom_describe(p: Param) -> str:
    return "a number from 0 to 1, or a list [lower, upper] with -1 < lower ≤ upper ≤ 1 (negative: zoom in)"


def _zoom_check(p: Param, v: Any) -> str | ItemProblem | None:
    """A factor that RandomZoom takes: every value in (-1, 1] (at -1 an image would vanish)."""
    if (found := _beyond_float32_item(p, v)) is not None:
        return found
    if isinstance(v, list) and len(v) == 2:  # which rule the list breaks, as for a factor
        return _range_problem(v, lambda x: -1 < x <= 1, "a number > -1 and ≤ 1")
    if _factor_check(p, v) is not None:
        return _zoom_describe(p)
    return None


def _factor_normalize(p: Param, v: Any) -> Any:
    if isinstance(v, list):
        return tuple(float(x) for x in v)
    # a number f as (f, f) for a Keras layer that reads a number as (0, f) only
    return (float(v), float(v)) if p.keras_one_sided else float(v)


def _pair_describe(p: Param) -> str:
    return "a list [lower, upper] of two numbers with lower < upper"


def _beyond_float32_item(p: Param, v: Any) -> str | ItemProblem | None:
    """A number (or a list item) that is right but for float32's range: the bound, said (a
    plain "expected a number" would not tell what is wrong with ``1.0e+39``)."""
    for index, x in enumerate(v if isinstance(v, list) else [v]):
        if _beyond_float32(x) and p.in_range(x):
            expected = f"a number {_float_limit(x)}"
            return ItemProblem((index,), expected, x) if isinstance(v, list) else expected
    return None


def _pair_check(p: Param, v: Any) -> str | ItemProblem | None:
    if not (isinstance(v, list) and len(v) == 2):
        return _pair_describe(p)
    if (found := _beyond_float32_item(p, v)) is not None:
        return found
    # the rule the list breaks, with its values: "received a list of 2 items" says neither
    bad = _first_bad_item(v, lambda x: None if _is_number(x) else "a number")
    if bad is not None:
        return ItemProblem(bad.index, "a number (each of [lower, upper])", bad.value)
    if v[0] >= v[1]:
        shown = f"[{', '.join(_fmt(x) for x in v)}]"
        relation = "=" if v[0] == v[1] else ">"
        return ItemProblem(
            (),
            "a list [lower, upper] with lower < upper",
            v,
            f"{shown} (lower {_fmt(v[0])} {relation} upper {_fmt(v[1])})",
        )
    return None


def _padding_describe(p: Param) -> str:
    return "a non-negative integer, [rows, cols], or [[top, bottom], [left, right]]"


def _padding_amount_check(x: Any) -> str | None:
    if not _is_int(x) or x < 0:
        return "a non-negative integer"
    return f"a non-negative integer {_size_limit(x)}" if x > MAX_SIZE else None


def _padding_check(p: Param, v: Any) -> str | ItemProblem | None:
    if not isinstance(v, list):
        problem = _padding_amount_check(v)
        if problem is None:
            return None
        return problem if _is_int(v) and v > MAX_SIZE else _padding_describe(p)
    if len(v) != 2:
        return _padding_describe(p)
    if not any(isinstance(x, list) for x in v):  # [rows, cols]
        return _first_bad_item(v, _padding_amount_check)
    if all(isinstance(x, list) and len(x) == 2 for x in v):  # [[top, bottom], [left, right]]
        for index, pair in enumerate(v):
            bad = _first_bad_item(pair, _padding_amount_check)
            if bad is not None:
                return ItemProblem((index, *bad.index), bad.expected, bad.value)
        return None
    return _padding_describe(p)


def _padding_normalize(p: Param, v: Any) -> tuple[tuple[int, int], tuple[int, int]]:
    if isinstance(v, int):
        return ((v, v), (v, v))
    if all(isinstance(x, int) for x in v):
        return ((v[0], v[0]), (v[1], v[1]))
    return ((v[0][0], v[0][1]), (v[1][0], v[1][1]))


def _padding_schema(p: Param) -> dict[str, Any]:
    item = {"type": "integer", "minimum": 0}
    pair = {"type": "array", "items": item, "minItems": 2, "maxItems": 2}
    return {"anyOf": [item, pair, {"type": "array", "items": pair, "minItems": 2, "maxItems": 2}]}


def _shape_describe(p: Param) -> str:
    return "a list of positive integers (at most one -1)"


def _shape_dimension_check(x: Any) -> str | None:
    if not _is_int(x) or not (x >= 1 or x == -1):
        return "a positive integer or -1"
    return f"a positive integer {_size_limit(x)}" if x > MAX_SIZE else None


def _shape_check(p: Param, v: Any) -> str | ItemProblem | None:
    if not isinstance(v, list) or not v:
        return _shape_describe(p)
    bad = _first_bad_item(v, _shape_dimension_check)
    if bad is not None:
        return bad
    return None if v.count(-1) <= 1 else _shape_describe(p)


def _floats_describe(p: Param) -> str:
    bounds = p.range_text()  # each number's bound, said: else "-1" reads as "a number"
    if bounds:
        return f"a number {bounds} or a non-empty list of numbers {bounds}"
    return "a number or a non-empty list of numbers"


def _floats_check(p: Param, v: Any) -> str | ItemProblem | None:
    if (found := _beyond_float32_item(p, v)) is not None:
        return found
    values = v if isinstance(v, list) else [v]
    ok = bool(values) and all(_is_number(x) and p.in_range(x) for x in values)
    return None if ok else _floats_describe(p)


def _floats_normalize(p: Param, v: Any) -> float | tuple[float, ...]:
    return tuple(float(x) for x in v) if isinstance(v, list) else float(v)


def _axis_item_check(x: Any) -> str | None:
    """One axis of the input, counted from 1 as Keras counts them (0 is the batch axis)."""
    if not _is_int(x) or x < 1:
        return "a positive integer (an axis, 1-based: 0 is the batch)"
    return f"a positive integer {_size_limit(x)}" if x > MAX_SIZE else None


def _axes_describe(p: Param) -> str:
    return "an axis (1-based) or a non-empty list of different axes"


def _axes_check(p: Param, v: Any) -> str | ItemProblem | None:
    """A positive axis or a list of distinct ones (PReLU's ``shared_axes``); that each is an axis
    of the input is the shape rule's to say, as only it knows the input's rank."""
    if not isinstance(v, list):
        problem = _axis_item_check(v)
        return None if problem is None else problem if _is_int(v) and v > MAX_SIZE else _axes_describe(p)
    if not v:
        return _axes_describe(p)
    bad = _first_bad_item(v, _axis_item_check)
    if bad is not None:
        return bad
    return _repeated_item(v, "an axis not listed before it")


def _repeated_item(v: list[Any], expected: str) -> ItemProblem | None:
    """The first element that repeats an earlier one, located at the repeat."""
    for index, item in enumerate(v):
        if item in v[:index]:
            return ItemProblem((index,), expected, item)
    return None


def _axes_normalize(p: Param, v: Any) -> tuple[int, ...]:
    # A tuple, as every list the back ends receive (hashable, written as a literal); Keras keeps
    # a list either way (``PReLU`` stores ``list(shared_axes)``, an int as ``[int]``).
    return tuple(int(x) for x in v) if isinstance(v, list) else (int(v),)


def _axes_schema(p: Param) -> dict[str, Any]:
    item = {"type": "integer", "minimum": 1}
    return {"anyOf": [item, {"type": "array", "items": item, "minItems": 1, "uniqueItems": True}]}


def _signed_axes_describe(p: Param) -> str:
    return "an axis (1: the first of the input, -1: the last) or a non-empty list of different axes"


def _signed_axis_check(x: Any) -> str | None:
    """One axis as Keras counts them, from either end: 1 the input's first, -1 its last (0, the
    batch axis, and the input's rank are the shape rule's to refuse)."""
    if not _is_int(x):
        return "an integer (an axis: 1 the first of the input, -1 the last)"
    return f"an integer {_size_limit(x)}" if abs(x) > MAX_SIZE else None


def _signed_axes_check(p: Param, v: Any) -> str | ItemProblem | None:
    """An axis or a list of distinct ones, either sign (UnitNormalization's ``axis``: Keras
    takes an int or a list/tuple of ints)."""
    if not isinstance(v, list):
        problem = _signed_axis_check(v)
        return None if problem is None else problem if _is_int(v) else _signed_axes_describe(p)
    if not v:
        return _signed_axes_describe(p)
    bad = _first_bad_item(v, _signed_axis_check)
    if bad is not None:
        return bad
    return _repeated_item(v, "an axis not listed before it")


def _signed_axes_normalize(p: Param, v: Any) -> int | tuple[int, ...]:
    # An int stays an int and a list becomes a tuple: Keras keeps an int as given and a
    # list/tuple as a list, so the two spellings stay apart in its configuration.
    return tuple(int(x) for x in v) if isinstance(v, (list, tuple)) else int(v)


def _signed_axes_schema(p: Param) -> dict[str, Any]:
    item = {"type": "integer"}
    return {"anyOf": [item, {"type": "array", "items": item, "minItems": 1, "uniqueItems": True}]}


def _permutation_describe(p: Param) -> str:
    return "a list ordering the axes 1 to n (1-based, the batch axis left out), each once, e.g. [2, 1, 3]"


def _permutation_check(p: Param, v: Any) -> str | ItemProblem | None:
    """A permutation of 1..n (Permute's ``dims``): Keras refuses anything else when it builds the
    layer; that n is the input's rank is the shape rule's to say."""
    if not isinstance(v, list) or not v:
        return _permutation_describe(p)
    bad = _first_bad_item(v, _axis_item_check)
    if bad is not None:
        return bad
    beyond = _first_bad_item(
        v, lambda x: None if x <= len(v) else f"an axis from 1 to {len(v)} (the list's length)"
    )
    if beyond is not None:
        return beyond
    return _repeated_item(v, "an axis not listed before it (a permutation names each axis once)")


def _noise_shape_describe(p: Param) -> str:
    return (
        "a list with one entry per axis, batch axis first (null or 1), then a positive integer or "
        "null (the input's size)"
    )


#: What a noise_shape's batch entry may be: null (the batch's size, whatever it is) or 1 (one mask
#: shared by the whole batch). A fixed size would build, then fail on every other batch size.
_NOISE_BATCH = (None, 1)


def _noise_shape_check(p: Param, v: Any) -> str | ItemProblem | None:
    ok = (
        isinstance(v, list)
        and len(v) >= 2
        and all(x is None or (_is_int(x) and 1 <= x <= MAX_SIZE) for x in v)
    )
    if not ok:
        return _noise_shape_describe(p)
    if v[0] not in _NOISE_BATCH:
        return ItemProblem((0,), "null or 1 for the batch axis (a fixed batch size fails on any other)", v[0])
    return None


def _noise_shape_hint(p: Param, v: Any) -> str | None:
    if isinstance(_noise_shape_check(p, v), ItemProblem):  # only the batch entry is wrong
        rest = ", ".join("null" if x is None else str(x) for x in v[1:])
        return f"write [null, {rest}] (one mask per sample), or [1, {rest}] (one mask for the whole batch)"
    return None


def _initializer_describe(p: Param) -> str:
    return (
        "one of " + ", ".join(INITIALIZERS) + ", {constant: {value: number}}, or {variance_scaling: "
        "{scale: number > 0, mode: fan_in|fan_out|fan_avg, distribution: truncated_normal|"
        "untruncated_normal|uniform}}"
    )


def _initializer_check(p: Param, v: Any) -> str | ItemProblem | None:
    if isinstance(v, str):
        return None if v in INITIALIZERS else _initializer_describe(p)
    if not (isinstance(v, dict) and len(v) == 1 and isinstance(next(iter(v.values())), dict)):
        return _initializer_describe(p)
    if "constant" in v:
        if list(v["constant"]) == ["value"] and _beyond_float32(v["constant"]["value"]):
            return f"{{constant: {{value: number}}}} with a value {_float_limit(v['constant']['value'])}"
        ok = list(v["constant"]) == ["value"] and _is_number(v["constant"]["value"])
        return None if ok else _initializer_describe(p)
    if "variance_scaling" not in v:
        return _initializer_describe(p)
    config = v["variance_scaling"]
    if not set(config) <= set(VARIANCE_SCALING):
        return _initializer_describe(p)
    for key, value in config.items():
        allowed = VARIANCE_SCALING[key]
        if not allowed and _beyond_float32(value) and value > 0:
            return f"{{variance_scaling: {{scale: number}}}} with a scale {_float_limit(value)}"
        ok = value in allowed if allowed else _is_number(value) and value > 0
        if not ok:  # said of the setting itself, where it is written
            expected = "one of " + ", ".join(allowed) if allowed else "a number > 0"
            return ItemProblem(("variance_scaling", key), expected, value)
    return None


def _initializer_hint(p: Param, v: Any) -> str | None:
    if isinstance(v, str):
        return did_you_mean(v, INITIALIZERS)
    if isinstance(v, dict) and len(v) == 1:
        (key,) = v
        if isinstance(key, str) and key not in _CONFIGURABLE_INITIALIZERS:
            return did_you_mean(key, _CONFIGURABLE_INITIALIZERS)
        settings = v.get("variance_scaling")
        for name, value in settings.items() if isinstance(settings, dict) else ():
            allowed = VARIANCE_SCALING.get(name)
            if allowed and isinstance(value, str) and value not in allowed:
                return did_you_mean(value, allowed)
    return None


#: The initializers a spec writes as a one-key mapping.
_CONFIGURABLE_INITIALIZERS = ("constant", "variance_scaling")


def _initializer_normalize(p: Param, v: Any) -> Any:
    if isinstance(v, str):
        return v
    from cnnspec.layers.registry import KerasCall  # the registry imports this module

    if "constant" in v:
        return KerasCall("Constant", (("value", float(v["constant"]["value"])),))
    config = {"scale": 1.0, "mode": "fan_in", "distribution": "truncated_normal", **v["variance_scaling"]}
    config["scale"] = float(config["scale"])
    return KerasCall("VarianceScaling", tuple(sorted(config.items())))


def _initializer_schema(p: Param) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    for key, allowed in VARIANCE_SCALING.items():
        properties[key] = {"enum": list(allowed)} if allowed else {"type": "number", "exclusiveMinimum": 0}
    scaling = {"type": "object", "properties": properties, "additionalProperties": False}
    return {
        "anyOf": [
            {"enum": list(INITIALIZERS)},
            {
                "type": "object",
                "properties": {
                    "constant": {
                        "type": "object",
                        "properties": {"value": {"type": "number"}},
                        "required": ["value"],
                        "additionalProperties": False,
                    }
                },
                "required": ["constant"],
                "additionalProperties": False,
            },
            {
                "type": "object",
                "properties": {"variance_scaling": scaling},
                "required": ["variance_scaling"],
                "additionalProperties": False,
            },
        ]
    }


def _choice_describe(p: Param) -> str:
    return "one of " + ", ".join(p.choices)


def _choice_check(p: Param, v: Any) -> str | None:
    return None if isinstance(v, str) and v in p.choices else _choice_describe(p)


def _regularizer_check(p: Param, v: Any) -> str | None:
    if isinstance(v, dict) and set(v) <= {"l1", "l2"}:
        beyond = [x for x in v.values() if _beyond_float32(x) and x >= 0]
        if beyond:
            return f"a mapping {{l1: number, l2: number}} with amounts {_float_limit(beyond[0])}"
    ok = (
        isinstance(v, dict)
        and v
        and set(v) <= {"l1", "l2"}
        and all(_is_number(x) and x >= 0 for x in v.values())
    )
    if not ok and isinstance(v, dict) and v and set(v) <= {"l1", "l2"} and all(map(_is_number, v.values())):
        return "a mapping {l1: number, l2: number} with amounts ≥ 0 (a penalty cannot reward weights)"
    return None if ok else "a mapping {l1: number, l2: number} (either or both)"


def _regularizer_hint(p: Param, v: Any) -> str | None:
    if isinstance(v, str):
        meant = closest(v, ("l1", "l2")) or "l2"
        return f"a regularizer is a mapping of amounts: `{{{meant}: 0.0001}}` (l1, l2 or both)"
    if isinstance(v, dict) and not v:
        return "give an amount, e.g. `{l2: 0.0001}`, or null for no penalty"
    if isinstance(v, dict):
        unknown = [k for k in v if k not in ("l1", "l2")]
        if unknown and isinstance(unknown[0], str):
            return did_you_mean(unknown[0], ("l1", "l2"))
    return None


def _regularizer_normalize(p: Param, v: Any) -> dict[str, float]:
    return {"l1": float(v.get("l1", 0.0)), "l2": float(v.get("l2", 0.0))}


def _identity(p: Param, v: Any) -> Any:
    return v


PARAM_TYPES: dict[str, ParamType] = {
    "int": ParamType(
        _int_check,
        _int_describe,
        lambda p, v: int(v),
        lambda p: {"type": "integer", **p.number_bounds()},
    ),
    "number": ParamType(
        _number_check,
        _number_describe,
        lambda p, v: float(v),
        lambda p: {"type": "number", **p.number_bounds()},
    ),
    "bool": ParamType(
        lambda p, v: None if isinstance(v, bool) else "true or false",
        lambda p: "true or false",
        _identity,
        lambda p: {"type": "boolean"},
    ),
    "str": ParamType(
        lambda p, v: None if isinstance(v, str) and v else "a non-empty string",
        lambda p: "a string",
        _identity,
        lambda p: {"type": "string", "minLength": 1},
    ),
    "choice": ParamType(
        _choice_check,
        _choice_describe,
        _identity,
        lambda p: {"enum": list(p.choices)},
    ),
    "ints": ParamType(_ints_check, _ints_describe, _ints_normalize, _ints_schema),
    "factor": ParamType(
        _factor_check,
        _factor_describe,
        _factor_normalize,
        lambda p: {
            "anyOf": [
                {"type": "number", **p.number_bounds()},
                {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2},
            ]
        },
    ),
    "zoom": ParamType(
        _zoom_check,
        _zoom_describe,
        _factor_normalize,
        lambda p: {
            "anyOf": [
                {"type": "number", "minimum": 0, "maximum": 1},
                {
                    "type": "array",
                    "items": {"type": "number", "exclusiveMinimum": -1, "maximum": 1},
                    "minItems": 2,
                    "maxItems": 2,
                },
            ]
        },
    ),
    "pair": ParamType(
        _pair_check,
        _pair_describe,
        lambda p, v: (float(v[0]), float(v[1])),
        lambda p: {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2},
    ),
    "padding": ParamType(_padding_check, _padding_describe, _padding_normalize, _padding_schema),
    "shape": ParamType(
        _shape_check,
        _shape_describe,
        lambda p, v: tuple(v),
        lambda p: {"type": "array", "items": {"type": "integer"}, "minItems": 1},
    ),
    "floats": ParamType(
        _floats_check,
        _floats_describe,
        _floats_normalize,
        lambda p: {
            "anyOf": [
                {"type": "number", **p.number_bounds()},
                {"type": "array", "items": {"type": "number", **p.number_bounds()}, "minItems": 1},
            ]
        },
    ),
    "axes": ParamType(_axes_check, _axes_describe, _axes_normalize, _axes_schema),
    "signed_axes": ParamType(
        _signed_axes_check, _signed_axes_describe, _signed_axes_normalize, _signed_axes_schema
    ),
    "permutation": ParamType(
        _permutation_check,
        _permutation_describe,
        lambda p, v: tuple(int(x) for x in v),
        lambda p: {
            "type": "array",
            "items": {"type": "integer", "minimum": 1},
            "minItems": 1,
            "uniqueItems": True,
        },
    ),
    "noise_shape": ParamType(
        _noise_shape_check,
        _noise_shape_describe,
        lambda p, v: tuple(v),
        lambda p: {
            "type": "array",
            "prefixItems": [{"anyOf": [{"const": 1}, {"type": "null"}, EXPRESSION_SCHEMA]}],
            "items": {"anyOf": [{"type": "integer", "minimum": 1}, {"type": "null"}]},
            "minItems": 2,
        },
        _noise_shape_hint,
    ),
    "initializer": ParamType(
        _initializer_check,
        _initializer_describe,
        _initializer_normalize,
        _initializer_schema,
        _initializer_hint,
    ),
    "regularizer": ParamType(
        _regularizer_check,
        lambda p: "a mapping {l1: number, l2: number}",
        _regularizer_normalize,
        lambda p: {
            "type": "object",
            "properties": {
                "l1": {"type": "number", "minimum": 0},
                "l2": {"type": "number", "minimum": 0},
            },
            "additionalProperties": False,
            "minProperties": 1,
        },
        _regularizer_hint,
    ),
}


# -- shorthand constructors used by the layer modules ----------------------------------------
def positive_int(name: str, default: Any = REQUIRED, doc: str = "", **kw: Any) -> Param:
    return Param(name, "int", default, doc, minimum=1, **kw)


def ints(name: str, default: Any = REQUIRED, doc: str = "", length: int = 2, **kw: Any) -> Param:
    return Param(name, "ints", default, doc, minimum=1, length=length, **kw)


def choice(name: str, choices: tuple[str, ...], default: Any = REQUIRED, doc: str = "", **kw: Any) -> Param:
    return Param(name, "choice", default, doc, choices=choices, **kw)


def initializer(name: str, default: str, doc: str = "") -> Param:
    return Param(name, "initializer", default, doc)


def flag(name: str, default: bool, doc: str = "", **kw: Any) -> Param:
    return Param(name, "bool", default, doc, **kw)


def number(name: str, default: Any = REQUIRED, doc: str = "", **kw: Any) -> Param:
    return Param(name, "number", default, doc, **kw)


def activation(name: str = "activation", default: Any = None, doc: str = "") -> Param:
    return Param(
        name,
        "choice",
        default,
        doc or "activation applied to the output",
        choices=ACTIVATIONS,
        nullable=True,
    )


def seed_param() -> Param:
    return Param("seed", "int", None, "seed of the layer's random generator", minimum=0, nullable=True)


def check_params(params: Mapping[str, Any], declared: Mapping[str, Param]) -> dict[str, str]:
    """Check every given value against its declaration; returns ``{name: message}``."""
    problems: dict[str, str] = {}
    for name, value in params.items():
        param = declared.get(name)
        if param is not None:
            problem = param.check(value)
            if problem:
                problems[name] = problem
    return problems
