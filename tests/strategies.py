"""Hypothesis strategies for fuzzing the front end.

Three families, all built from the project's own tables so they follow the language as it grows:

* :func:`registry_specs` — specs whose layers come from the layer registry (every kind, its real
  parameters with mostly valid and sometimes hostile values), with vars, ``${…}`` expressions,
  ids/inputs and the combinators ``residual``, ``parallel`` and ``repeat``. Valid-ish: a good
  share compiles, so the success paths (shapes, counts, code generation) are exercised too.
* :func:`schema_values` — values generated from the committed JSON Schema (a small generator for
  the subset of Draft 2020-12 the schema uses; hypothesis-jsonschema is not needed), used for
  whole specs and for the ``data``/``training``/``runtime`` sections.
* :func:`mutated_specs` — the shipped specs in ``specs/`` with structural mutations (delete,
  duplicate, retype, swap, rename keys; edge numbers 0, −1, 2**63, 1e309, NaN; huge strings;
  unicode) and text mutations (duplicated, deleted or swapped lines, inserted YAML tokens).

Plus byte-level inputs for the loader: random bytes, truncated spec files and random YAML
token soup. Every strategy returns spec *text* (or bytes), ready for the loader.
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import yaml
from hypothesis import strategies as st

from cnnspec.layers.params import INITIALIZERS, Param
from cnnspec.layers.registry import REGISTRY, LayerKind
from cnnspec.spec.loader import load_text

ROOT = Path(__file__).resolve().parent.parent
SCHEMA: dict[str, Any] = json.loads((ROOT / "schemas" / "cnnspec.schema.json").read_text(encoding="utf-8"))

# -- raw YAML tokens that a Python value cannot express (1e309 stays text until the loader) ----
RAW_TOKENS = {
    "RAW_1E309_TOKEN": "1e309",
    "RAW_NEG_1E999_TOKEN": "-1e999",
    "RAW_NAN_TOKEN": ".nan",
    "RAW_INF_TOKEN": ".inf",
    "RAW_YES_TOKEN": "yes",
    "RAW_OFF_TOKEN": "off",
    "RAW_OCTAL_TOKEN": "010",
    "RAW_SEXAGESIMAL_TOKEN": "1:20",
    "RAW_HEX_TOKEN": "0x7FFFFFFFFFFFFFFFFF",
    "RAW_BIGINT_TOKEN": "9" * 400,
    "RAW_TAG_TOKEN": "!!python/object/apply:os.system ['true']",
    "RAW_ALIAS_TOKEN": "*undefined_anchor",
    "RAW_NULL_TOKEN": "~",
}


_Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
_PARSED: dict[str, Any] = {}


def dump(data: Any) -> str:
    """YAML text of plain data, with :data:`RAW_TOKENS` placeholders put back as raw text."""
    text = yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=4096)
    for placeholder, raw in RAW_TOKENS.items():
        text = text.replace(placeholder, raw)
    return text


# -- small building blocks -------------------------------------------------------------------
identifiers = st.from_regex(r"\A[a-z_][a-z0-9_]{0,11}\Z")
VAR_NAMES = ("w", "k", "s", "flag", "drop")

EDGE_NUMBERS: list[Any] = [
    0,
    -1,
    1,
    2,
    2**31 - 1,
    2**31,
    2**63 - 1,
    2**63,
    -(2**63),
    10**30,
    1e308,
    -0.0,
    0.5,
]
EDGE_VALUES: list[Any] = [
    *EDGE_NUMBERS,
    float("nan"),
    float("inf"),
    "RAW_1E309_TOKEN",
    "RAW_NAN_TOKEN",
    "RAW_YES_TOKEN",
    "RAW_OCTAL_TOKEN",
    "RAW_SEXAGESIMAL_TOKEN",
    "RAW_BIGINT_TOKEN",
    "RAW_TAG_TOKEN",
    "RAW_ALIAS_TOKEN",
    True,
    False,
    None,
    "",
    "8",
    [],
    {},
    [1, 2, 3],
    {"a": 1},
    "x" * 100_000,
    "\u202e\u0000\x1b[31m",
    "名前🚀",
    "${1/0}",
    "${undefined_name}",
    "${__import__('os')}",
    "${" + "(" * 300 + ")" * 300 + "}",
    "${9**9**9}",
]
#: Copied on every draw: mutations write into containers, and a shared ``{}`` would carry parts
#: of one example into the next (cycles, and results that change between replays).
edge_values = st.sampled_from(EDGE_VALUES).map(copy.deepcopy)
unicode_text = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=0, max_size=30
)

GOOD_EXPRESSIONS = [
    "${w}",
    "${w * 2}",
    "${max(1, w // 2)}",
    "${k}",
    "${w if flag else 4}",
    "${in_channels}",
    "${min(w, 8) + 1}",
    "${int(w * 1.5)}",
    "${drop}",
]
BAD_EXPRESSIONS = [
    "${w +}",
    "${nope}",
    "${w / 0}",
    "${w ** 99}",
    "${[w] * 3}",
    "${'a' + w}",
    "${w.__class__}",
    "${${w}}",
    "${w",
    "prefix ${w} suffix",
    "${in_shape[9]}",
    "${lambda: 1}",
]


def mostly(valid: st.SearchStrategy[Any], hostile: st.SearchStrategy[Any], weight: int = 6) -> Any:
    """``valid`` about ``weight`` times out of ``weight + 1``, else ``hostile``."""
    return st.one_of(*([valid] * weight), hostile)


# -- registry-driven values ----------------------------------------------------------------------
def _int_range(param: Param, top: int = 8) -> st.SearchStrategy[int]:
    low = int(param.minimum) if param.minimum is not None else 0
    if param.exclusive_minimum:
        low += 1
    high = int(param.maximum) if param.maximum is not None else low + top
    return st.integers(low, max(low, min(high, low + top)))


def _number_range(param: Param) -> st.SearchStrategy[float]:
    low = float(param.minimum) if param.minimum is not None else 0.0
    high = float(param.maximum) if param.maximum is not None else low + 2.0
    strategy = st.floats(
        low, high, allow_nan=False, allow_infinity=False, exclude_max=param.exclusive_maximum
    )
    if param.exclusive_minimum:
        strategy = strategy.filter(lambda v: v > low)
    return strategy


def valid_param_value(param: Param, clean: bool = False) -> st.SearchStrategy[Any]:
    """Values the parameter's type accepts (shape rules may still refuse them). ``clean``
    keeps sizes small so that more generated models fit their input."""
    kind = param.type
    if kind == "int":
        return _int_range(param, 8 if clean else 16)
    if kind == "number":
        return _number_range(param)
    if kind == "bool":
        return st.booleans()
    if kind == "str":
        return st.text(min_size=1, max_size=8)
    if kind == "choice":
        return st.sampled_from(param.choices)
    if kind == "ints":
        one = _int_range(param, 2 if clean else 4)
        return st.one_of(one, st.lists(one, min_size=param.length, max_size=param.length))
    if kind == "zoom":  # each value in (-1, 1]; a single number from 0 to 1
        value = st.floats(0.0, 1.0, allow_nan=False)
        signed = st.floats(-0.99, 1.0, allow_nan=False)
        return st.one_of(value, st.tuples(signed, signed).map(lambda p: sorted(p)))
    if kind == "factor":
        low = float(param.minimum or 0.0)
        high = float(param.maximum) if param.maximum is not None else 1.0
        value = st.floats(low, high, allow_nan=False)
        return st.one_of(value, st.tuples(value, value).map(lambda p: sorted(p)))
    if kind == "pair":
        return st.tuples(st.integers(0, 10), st.integers(1, 10)).map(lambda p: [p[0], p[0] + p[1]])
    if kind == "padding":
        small = st.integers(0, 2 if clean else 3)
        return st.one_of(small, st.lists(small, min_size=2, max_size=2))
    if kind == "shape":
        return st.lists(st.integers(1, 8), min_size=1, max_size=3)
    if kind == "initializer":
        return st.sampled_from(INITIALIZERS)
    if kind == "floats":
        value = st.floats(0.01, 4.0, allow_nan=False)
        return st.one_of(value, st.lists(value, min_size=1, max_size=3))
    if kind == "noise_shape":
        return st.lists(st.one_of(st.none(), st.just(1)), min_size=2, max_size=4)
    if kind == "permutation":  # the axes 1..n in some order (n 2 to 3: a map or a sequence)
        return st.integers(2, 3).flatmap(lambda n: st.permutations(list(range(1, n + 1))))
    if kind == "axes":  # an axis, or a few different ones
        axis = st.integers(1, 3)
        return st.one_of(axis, st.lists(axis, min_size=1, max_size=2, unique=True))
    if kind == "signed_axes":  # an axis from either end, or a few different ones (last axes)
        axis = st.sampled_from([-1, -2, 1])
        return st.one_of(axis, st.lists(axis, min_size=1, max_size=2, unique=True))
    if kind == "regularizer":
        amount = st.floats(0, 0.1, allow_nan=False)
        return st.fixed_dictionaries({}, optional={"l1": amount, "l2": amount}).filter(bool)
    return edge_values


def param_value(param: Param, clean: bool = False) -> st.SearchStrategy[Any]:
    """Mostly valid values, sometimes a ``${…}`` expression over the generated vars, and
    (unless ``clean``) sometimes an edge value, a broken expression or random unicode."""
    valid = valid_param_value(param, clean)
    numeric = param.type in ("int", "ints", "number")
    expressions = st.sampled_from(GOOD_EXPRESSIONS[:4]) if numeric else st.nothing()
    if clean:
        return st.one_of(*([valid] * 8), expressions)
    hostile = st.one_of(edge_values, st.sampled_from(BAD_EXPRESSIONS), unicode_text)
    return st.one_of(*([valid] * 12), expressions, st.sampled_from(GOOD_EXPRESSIONS), hostile)


@st.composite
def layer_item(draw: st.DrawFn, kind: LayerKind, ids: list[str], clean: bool = False) -> Any:
    """One layer item of ``kind``: bare name, main scalar, or parameter mapping (+ id/inputs)."""
    required = [p for p in kind.params if p.required]
    optional = [p for p in kind.params if not p.required]
    forms = ["mapping"]
    if not required:
        forms += ["bare", "null"]
    if kind.main is not None and len(required) <= 1:
        forms.append("main")
    form = draw(st.sampled_from(forms))
    if form == "bare" and kind.arity == "one" and draw(st.integers(0, 9)) > 0:
        return kind.name
    if form == "main":
        body: Any = draw(param_value(kind.param_index[kind.main], clean))
    elif form == "null":
        body = None
    else:
        chosen = (
            draw(st.lists(st.sampled_from(optional), unique_by=lambda p: p.name, max_size=3))
            if optional
            else []
        )
        body = {p.name: draw(param_value(p, clean)) for p in [*required, *chosen]}
        if not clean and draw(st.integers(0, 30)) == 0:
            body[draw(identifiers)] = draw(edge_values)  # an unknown parameter
        if not clean and draw(st.integers(0, 40)) == 0 and required:
            body.pop(required[0].name)  # a missing one
    item: dict[str, Any] = {kind.name: body}
    if kind.arity == "many":
        item["inputs"] = draw(st.lists(st.sampled_from([*ids, "input"]), min_size=1, max_size=3))
    elif ids and not clean and draw(st.integers(0, 6)) == 0:
        item["inputs"] = draw(st.sampled_from([*ids, "input", "nowhere"]))
    if draw(st.integers(0, 3)) == 0:
        new_id = f"x{len(ids)}"
        bad = not clean and draw(st.integers(0, 20)) == 0
        item["id"] = draw(st.sampled_from([*ids, "input", "1bad"])) if bad else new_id
        ids.append(new_id)
    if draw(st.integers(0, 25)) == 0:
        conditions = ["${flag}", "${w > 4}", True, False]
        item["when"] = draw(st.sampled_from(conditions if clean else [*conditions, "${nope}", 3]))
    return item


def _keeps_images(kind: LayerKind) -> bool:
    """Whether ``kind`` takes a rank-3 image and gives one: a kind that needs certain ranks
    lists them (``ranks``); the normalisations and dense take any rank (no ``ranks``, as the
    kinds that flatten or reshape) and act on the last axis."""
    if kind.ranks is not None:
        return 3 in kind.ranks
    return kind.family == "norm" or kind.per_position


#: Kinds that keep a rank-3 image a rank-3 image: most of a valid CNN.
IMAGE_KINDS = sorted(
    name
    for name, kind in REGISTRY.items()
    if _keeps_images(kind) and kind.arity == "one" and not kind.augmentation
)
ALL_KINDS = sorted(name for name, kind in REGISTRY.items() if not kind.augmentation)
AUGMENT_KINDS = sorted(name for name, kind in REGISTRY.items() if kind.augmentation)
#: Image kinds that rarely shrink or reshape the image (the bulk of a "clean" model).
GENTLE_KINDS = [
    k
    for k in IMAGE_KINDS
    if k not in ("cropping2d", "resizing", "upsampling2d", "conv2d_transpose", "global_avg_pool2d")
    and not k.startswith("global")
]


@st.composite
def layer_list(
    draw: st.DrawFn, depth: int = 2, ids: list[str] | None = None, head: bool = True, clean: bool = False
) -> list[Any]:
    ids = [] if ids is None else ids
    items: list[Any] = []
    for _ in range(draw(st.integers(1, 4 if clean else 5))):
        choice = draw(st.integers(0, 9))
        if choice <= 5:
            kind = REGISTRY[draw(st.sampled_from(GENTLE_KINDS if clean else IMAGE_KINDS))]
        elif choice <= 7 or depth <= 0:
            kind = REGISTRY[draw(st.sampled_from(IMAGE_KINDS if clean else ALL_KINDS))]
        else:
            items.append(draw(combinator(depth - 1, ids, clean)))
            continue
        items.append(draw(layer_item(kind, ids, clean)))
    if head and (clean or draw(st.booleans())):
        items += [
            "global_avg_pool2d",
            {"dense": {"units": draw(st.integers(1, 12)), "activation": "softmax"}},
        ]
    return items


@st.composite
def combinator(draw: st.DrawFn, depth: int, ids: list[str], clean: bool = False) -> dict[str, Any]:
    which = draw(st.sampled_from(["residual", "parallel", "repeat"]))
    if which == "residual":
        body: dict[str, Any] = {"body": draw(layer_list(depth, ids, head=False, clean=clean))}
        if draw(st.booleans()):
            shortcuts = ["auto", "identity", "projection", "none"] + ([] if clean else ["sideways"])
            body["shortcut"] = draw(
                st.one_of(st.sampled_from(shortcuts), layer_list(depth, ids, head=False, clean=clean))
            )
        if draw(st.booleans()):
            merges = ["add", "concat"] + ([] if clean else ["multiply", "${'add'}"])
            body["merge"] = draw(st.sampled_from(merges))
        if draw(st.integers(0, 3)) == 0:
            body["activation"] = draw(st.sampled_from(["relu", "gelu"] + ([] if clean else ["nope"])))
        return {"residual": body}
    if which == "parallel":
        branches = draw(
            st.lists(layer_list(depth, ids, head=False, clean=clean), min_size=2 if clean else 1, max_size=3)
        )
        body = {"branches": branches}
        if draw(st.booleans()):
            body["merge"] = draw(st.sampled_from(["concat", "add"]))
        return {"parallel": body}
    hostile_times = st.sampled_from([-1, 10_001, "${w}", "${k}", 2.5])
    body = {
        "times": draw(st.integers(0, 2) if clean else st.one_of(st.integers(0, 3), hostile_times)),
        "layers": draw(layer_list(depth, ids, head=False, clean=clean)),
    }
    if draw(st.booleans()):
        body["as"] = draw(st.sampled_from(["i", "j"] if clean else ["i", "j", "1x", "w"]))
    return {"repeat": body}


@st.composite
def registry_specs(draw: st.DrawFn) -> str:
    """A spec text from the registry: input, vars, model, sometimes blocks, augmentation and
    schema-generated training sections. Half are "clean" (no hostile values, small kernels,
    a classifier head) so that a good share compiles and the success paths run too."""
    clean = draw(st.booleans())
    rank = 3 if clean else draw(st.sampled_from([3, 3, 3, 3, 1, 2, 4]))
    dims = st.integers(12, 40) if clean else st.integers(1, 40)
    shape = [draw(dims) for _ in range(rank - 1)] + [draw(st.integers(1, 4))]
    spec: dict[str, Any] = {"cnnspec": 1, "name": "fuzz", "input": {"shape": shape}}
    if clean or draw(st.booleans()):
        spec["vars"] = {
            "w": draw(st.integers(1, 16)),
            "k": draw(st.sampled_from([1, 3])),
            "s": draw(st.sampled_from([1, 2])),
            "flag": draw(st.booleans()),
            "drop": draw(st.floats(0, 1)),
        }
    if draw(st.integers(0, 4)) == 0:
        spec["blocks"] = {
            "unit": {
                "params": {"f": "int", "stride": {"type": "int", "default": 1}},
                "layers": [
                    {
                        "conv2d": {
                            "filters": "${f}",
                            "kernel_size": 3,
                            "strides": "${stride}",
                            "padding": "same",
                        }
                    },
                    "batch_norm",
                    {"activation": "relu"},
                ],
            }
        }
    model = draw(layer_list(2, clean=clean))
    if "blocks" in spec and (clean or draw(st.booleans())):
        calls = [st.builds(dict, f=st.just(4)), st.builds(dict, f=st.just(4), stride=st.just(2)), st.just(8)]
        call = {"unit": draw(st.one_of(*calls) if clean else st.one_of(*calls, edge_values))}
        model.insert(draw(st.integers(0, len(model))), call)
    spec["model"] = model
    if draw(st.integers(0, 3)) == 0:
        kinds = draw(st.lists(st.sampled_from(AUGMENT_KINDS), max_size=3))
        spec["augmentation"] = [draw(layer_item(REGISTRY[k], [], clean)) for k in kinds]
    for section in ("data", "training", "runtime"):
        if draw(st.integers(0, 4)) == 0:
            spec[section] = draw(schema_values(SCHEMA["properties"][section]))
    if not clean and draw(st.integers(0, 10)) == 0:
        spec[draw(st.sampled_from(["description", "outputs", "layers", "cnnspec"]))] = draw(edge_values)
    return dump(spec)


# -- JSON-Schema-driven values ---------------------------------------------------------------------
_SCHEMA_CACHE: dict[int, st.SearchStrategy[Any]] = {}


def _resolve(ref: str) -> dict[str, Any]:
    node: Any = SCHEMA
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


def schema_values(schema: dict[str, Any] | bool, depth: int = 0) -> st.SearchStrategy[Any]:
    """Values for a (sub)schema of the committed spec schema, mostly valid.

    Supports the keywords the schema uses: $ref (#/$defs/...), const, enum, anyOf/oneOf, type
    (one or a list), properties/required/additionalProperties/propertyNames/min- and
    maxProperties, items/min- and maxItems, minimum/maximum/exclusiveMinimum, pattern (for
    identifiers and expressions) and minLength. Depth is bounded so recursive layer lists end.
    """
    if schema is True or schema == {}:
        return st.one_of(st.integers(-3, 3), st.booleans(), st.none(), st.text(max_size=5))
    if schema is False:
        return st.nothing()
    assert isinstance(schema, dict)
    key = id(schema) * 100 + min(depth, 99)
    if key in _SCHEMA_CACHE:
        return _SCHEMA_CACHE[key]
    strategy = st.deferred(lambda: _schema_strategy(schema, depth))
    _SCHEMA_CACHE[key] = strategy
    return strategy


def _schema_strategy(schema: dict[str, Any], depth: int) -> st.SearchStrategy[Any]:
    if schema.get("$ref") == "#/$defs/layer":
        return _schema_layer(depth + 1)
    if "$ref" in schema:
        return schema_values(_resolve(schema["$ref"]), depth + 1)
    if "const" in schema:
        return st.just(schema["const"]).map(copy.deepcopy)
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    for keyword in ("anyOf", "oneOf"):
        if keyword in schema:
            options = schema[keyword]
            if depth > 8:
                simple = [o for o in options if "$ref" not in o and o.get("type") != "array"] or options[:1]
                options = simple
            return st.one_of([schema_values(option, depth + 1) for option in options])
    kind = schema.get("type")
    if isinstance(kind, list):
        return st.one_of([_schema_strategy({**schema, "type": k}, depth) for k in kind])
    if kind == "object" or "properties" in schema:
        return _object(schema, depth)
    if kind == "array":
        items = schema.get("items", True)
        low = schema.get("minItems", 0)
        high = min(schema.get("maxItems", low + 3), low + 3)
        if depth > 10:
            high = low
        return st.lists(schema_values(items, depth + 1), min_size=low, max_size=max(low, high))
    if kind == "string":
        pattern = schema.get("pattern", "")
        if "\\$\\{" in pattern:
            return st.sampled_from(GOOD_EXPRESSIONS + BAD_EXPRESSIONS[:3])
        if pattern:
            return identifiers
        return st.text(min_size=schema.get("minLength", 0), max_size=10)
    if kind == "integer":
        low = schema.get(
            "minimum", schema.get("exclusiveMinimum", -5) + 1 if "exclusiveMinimum" in schema else -5
        )
        high = schema.get("maximum", low + 20)
        return st.integers(math.ceil(low), int(high))
    if kind == "number":
        low = schema.get("minimum", schema.get("exclusiveMinimum", -5.0))
        high = schema.get("maximum", schema.get("exclusiveMaximum", low + 10.0))
        strategy = st.floats(
            low, high, allow_nan=False, allow_infinity=False, exclude_max="exclusiveMaximum" in schema
        )
        if "exclusiveMinimum" in schema:
            strategy = strategy.filter(lambda v: v > schema["exclusiveMinimum"])
        return strategy
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    return schema_values(True)


def _object(schema: dict[str, Any], depth: int) -> st.SearchStrategy[dict[str, Any]]:
    properties: dict[str, Any] = schema.get("properties", {})
    required = [k for k in schema.get("required", []) if k in properties]
    extra = schema.get("additionalProperties", True)
    if schema.get("maxProperties") == 1 and properties:
        names = sorted(properties)
        return st.sampled_from(names).flatmap(
            lambda name: schema_values(properties[name], depth + 1).map(lambda value: {name: value})
        )
    optional = {k: schema_values(v, depth + 1) for k, v in properties.items() if k not in required}
    if depth > 10:
        optional = {}
    base = st.fixed_dictionaries(
        {k: schema_values(properties[k], depth + 1) for k in required}, optional=optional
    )
    if isinstance(extra, dict) and depth <= 10:
        more = st.dictionaries(identifiers, schema_values(extra, depth + 1), max_size=2)
        return st.tuples(base, more).map(lambda pair: {**pair[1], **pair[0]})
    return base


def schema_specs() -> st.SearchStrategy[str]:
    """Whole specs generated from the JSON Schema (mostly schema-valid; shapes are random)."""
    return schema_values(SCHEMA).map(dump)


# -- mutations of the shipped specs ---------------------------------------------------------------
def _paths(tree: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(tree, dict):
        for key, value in tree.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(tree, list):
        for index, value in enumerate(tree):
            found += _paths(value, (*prefix, index))
    return found


def _get(tree: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        tree = tree[part]
    return tree


def _retype(value: Any) -> list[Any]:
    return [
        str(value)[:50],
        [value],
        {"value": value},
        None,
        True,
        0,
        -1,
        1.5,
        len(str(value)),
    ]


MUTATIONS = ("delete", "retype", "swap", "edge", "rename", "duplicate_item", "expression", "unicode", "huge")
TEXT_MUTATIONS = ("duplicate_line", "delete_line", "swap_lines", "insert_token", "truncate", "indent")
YAML_TOKENS = [
    "{",
    "}",
    "[",
    "]",
    ": ",
    ":",
    ", ",
    "- ",
    "? ",
    "&a ",
    "*a",
    "!!python/object/apply:os.system ['true'] ",
    "!tag ",
    "!!str ",
    "'",
    '"',
    "|\n",
    ">-\n",
    "# c\n",
    "\n",
    "  ",
    "\t",
    "---\n",
    "...\n",
    "%YAML 1.1\n",
    "%TAG ! tag:x,2000:\n",
    "~",
    "null",
    "yes",
    "no",
    "on",
    "010",
    "0o17",
    "0x1F",
    "1:20",
    "1_000",
    "1e309",
    ".nan",
    "-.inf",
    "12",
    "-3",
    "0.5",
    "key",
    "cnnspec",
    "name",
    "model",
    "input",
    "shape",
    "conv2d",
    "filters",
    "repeat",
    "times",
    "${",
    "${w}",
    "<<",
    "\ufeff",
    "\x00",
    "\x1b[2J",
    "\u2028",
    "é",
    "🚀",
    "\\",
    "@",
    "`",
    "%",
]


@st.composite
def mutated_specs(draw: st.DrawFn, sources: dict[str, str]) -> tuple[str, str]:
    """``(name, text)``: one of ``sources`` (name → spec text) after 1–3 mutations."""
    name = draw(st.sampled_from(sorted(sources)))
    if name not in _PARSED:
        _PARSED[name] = json.dumps(load_text(sources[name]).data)
    tree = json.loads(_PARSED[name])
    for _ in range(draw(st.integers(1, 3))):
        tree = _mutate_tree(draw, tree)
    text = dump(tree)
    if draw(st.integers(0, 2)) == 0:
        text = _mutate_text(draw, text)
    return name, text


def _mutate_tree(draw: st.DrawFn, tree: Any) -> Any:
    paths = _paths(tree)
    path = draw(st.sampled_from(paths))
    operation = draw(st.sampled_from(MUTATIONS))
    if not path:
        return draw(st.sampled_from([tree, [tree], None, "text", 1]))
    parent, last = _get(tree, path[:-1]), path[-1]
    value = parent[last]
    if operation == "delete":
        del parent[last]
    elif operation == "retype":
        parent[last] = draw(st.sampled_from(_retype(value)))
    elif operation == "swap":
        other = draw(st.sampled_from(paths))
        if other and other[: len(path)] != path and path[: len(other)] != other:
            other_parent = _get(tree, other[:-1])
            parent[last], other_parent[other[-1]] = other_parent[other[-1]], value
    elif operation == "edge":
        parent[last] = draw(edge_values)
    elif operation == "rename" and isinstance(parent, dict):
        new_key = draw(
            st.one_of(identifiers, unicode_text, st.sampled_from(["id", "inputs", "when", "<<", ""]))
        )
        parent[new_key] = parent.pop(last)
    elif operation == "duplicate_item" and isinstance(parent, list):
        parent.insert(last, json.loads(json.dumps(value, allow_nan=True)))
    elif operation == "expression":
        parent[last] = draw(st.sampled_from(GOOD_EXPRESSIONS + BAD_EXPRESSIONS))
    elif operation == "unicode":
        parent[last] = draw(unicode_text)
    elif operation == "huge":
        parent[last] = draw(
            st.sampled_from(["x" * 200_000, list(range(3000)), {f"k{i}": i for i in range(2000)}])
        )
    return tree


def _mutate_text(draw: st.DrawFn, text: str) -> str:
    lines = text.splitlines(keepends=True)
    operation = draw(st.sampled_from(TEXT_MUTATIONS))
    if not lines:
        return text
    i = draw(st.integers(0, len(lines) - 1))
    if operation == "duplicate_line":  # duplicate keys, usually
        lines.insert(i, lines[i])
    elif operation == "delete_line":
        del lines[i]
    elif operation == "swap_lines":
        j = draw(st.integers(0, len(lines) - 1))
        lines[i], lines[j] = lines[j], lines[i]
    elif operation == "insert_token":
        column = draw(st.integers(0, len(lines[i])))
        token = draw(st.sampled_from(YAML_TOKENS))
        lines[i] = lines[i][:column] + token + lines[i][column:]
    elif operation == "truncate":
        return text[: draw(st.integers(0, len(text)))]
    elif operation == "indent":
        lines[i] = draw(st.sampled_from([" ", "  ", "\t", "- "])) + lines[i]
    return "".join(lines)


# -- byte-level inputs for the loader -------------------------------------------------------------
def token_soup() -> st.SearchStrategy[str]:
    return st.lists(st.sampled_from(YAML_TOKENS), max_size=80).map("".join)


def truncated(sources: dict[str, bytes]) -> st.SearchStrategy[bytes]:
    return st.sampled_from(sorted(sources)).flatmap(
        lambda name: st.integers(0, len(sources[name])).map(lambda n: sources[name][:n])
    )


@st.composite
def corrupted(draw: st.DrawFn, sources: dict[str, bytes]) -> bytes:
    """A spec file with a few bytes flipped, inserted or deleted."""
    data = bytearray(sources[draw(st.sampled_from(sorted(sources)))])
    for _ in range(draw(st.integers(1, 4))):
        if not data:
            break
        position = draw(st.integers(0, len(data) - 1))
        operation = draw(st.integers(0, 2))
        if operation == 0:
            data[position] = draw(st.integers(0, 255))
        elif operation == 1:
            data[position:position] = draw(st.binary(min_size=1, max_size=4))
        else:
            del data[position : position + draw(st.integers(1, 8))]
    return bytes(data)


def raw_bytes() -> st.SearchStrategy[bytes]:
    prefixes = st.sampled_from([b"", b"\xef\xbb\xbf", b"\xff\xfe", b"cnnspec: 1\n", b"a: "])
    return st.tuples(prefixes, st.binary(max_size=600)).map(lambda pair: pair[0] + pair[1])


def _schema_layer(depth: int) -> st.SearchStrategy[Any]:
    """A layer item as the schema describes it, with one kind key (the schema allows any
    number, which would make nearly every generated item an "exactly one kind" error)."""
    item = _resolve("#/$defs/layer")["anyOf"][1]
    properties = item["properties"]
    kinds = sorted(k for k in properties if k not in ("id", "inputs", "when"))
    if depth > 8:
        kinds = [k for k in kinds if k not in ("residual", "parallel", "repeat")]
    bare = st.sampled_from(sorted(REGISTRY))
    one = st.sampled_from(kinds).flatmap(
        lambda kind: st.tuples(
            schema_values(properties[kind], depth + 1),
            st.fixed_dictionaries({}, optional={"id": identifiers, "inputs": st.just("input")}),
        ).map(lambda pair: {kind: pair[0], **pair[1]})
    )
    return st.one_of(bare, one, one, one)
