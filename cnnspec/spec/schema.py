"""The JSON Schema of a spec, generated from the layer registry, and validation against it.

``json_schema()`` builds the full Draft 2020-12 schema that is committed as
``schemas/cnnspec.schema.json`` for editors (every layer kind with its parameters).
``validate_document()`` checks a loaded document with the same schema, except that layer
items are left to the resolver, which knows block names and reports registry-driven
messages with did-you-mean hints; running both would report each layer mistake twice.
"""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import yaml

from cnnspec.errors import (
    ALIASES,
    COMMAND_LINE_PREFIX,
    MAX_DIAGNOSTICS,
    Diagnostic,
    Diagnostics,
    Note,
    alias_hint,
    describe_value,
    did_you_mean,
    format_path,
    key_hint,
    misspelt,
)
from cnnspec.layers.params import ACTIVATIONS, text_as_value, written_as_text_hint
from cnnspec.layers.registry import REGISTRY, LayerKind, combinator_merges
from cnnspec.spec.dumping import dump_yaml
from cnnspec.spec.hiding import hidden_block_warnings
from cnnspec.spec.limits import MAX_INPUT_RANK
from cnnspec.spec.loader import SourceDoc, copy_tree
from cnnspec.spec.optimizers import OPTIMIZERS
from cnnspec.spec.sections import DATA_SCHEMA, RUNTIME_SCHEMA, TRAINING_SCHEMA
from cnnspec.spec.weights import WEIGHTS_SCHEMA

SCHEMA_ID = "https://cnnspec.dev/schemas/cnnspec.schema.json"
IDENTIFIER_PATTERN = "^[A-Za-z_][A-Za-z0-9_]*$"
#: The longest model name: the default files a name makes (runs/NAME-YYYYmmdd-HHMMSS, NAME.keras,
#: each first written under a temp name .NAME….XXXXXXXX.tmp) fit in a file system's 255 bytes a
#: name, and in eCryptfs' 143. A longer one failed only when training began (an internal error).
MAX_NAME = 100
#: What a var may hold (null: keras.applications' `pooling: null`).
VAR_TYPES = ["number", "string", "boolean", "array", "null"]
BLOCK_PARAM_TYPES = ["int", "float", "number", "bool", "str", "list", "any"]
TOP_LEVEL_KEYS = (
    "cnnspec",
    "name",
    "description",
    "extends",
    "use",
    "family",
    "variants",
    "input",
    "vars",
    "var_choices",
    "blocks",
    "defaults",
    "model",
    "outputs",
    "augmentation",
    "data",
    "training",
    "runtime",
    "search",
    "weights",
)


#: Where a spec may write ``${…}`` instead of a value (``$defs.expression``).
EXPRESSION_DEF: dict[str, Any] = {
    "type": "string",
    # the whole value, one expression: "x${w}" and "${a}x${b}" are strings, not numbers ("}" may
    # be inside one: "${'}' if a else b}")
    "pattern": r"^\$\{(?:(?!\$\{).)*\}$",
    "description": "a ${…} expression over vars, block parameters and loop indices",
}
#: A string parameter's value with expressions formatted into it (``activation: "${act}6"``),
#: which the resolver reads as the string it makes: the whole-value pattern refused it.
#: A residual's or parallel's ``activation``, applied after the merge (null: none, the default),
#: as the resolver checks it: one of the activations (it took any string, and refused null).
POST_ACTIVATION: dict[str, Any] = {
    "anyOf": [
        {"enum": list(ACTIVATIONS)},
        {"$ref": "#/$defs/expression"},
        {"$ref": "#/$defs/template"},
        {"type": "null"},
    ],
    "description": "an activation applied after the merge (default null: none)",
}
TEMPLATE_DEF: dict[str, Any] = {
    "type": "string",
    "pattern": r"\$\{",
    "description": "a string with ${…} expressions formatted into it",
}


def kind_schema(kind: LayerKind) -> dict[str, Any]:
    """Schema of one kind's value: null, its main parameter alone, or a parameter mapping.

    A parameter the kind requires is not required here: ``defaults:`` (the spec's, a block's,
    or a base's that this file ``extends``) may fill it, which a schema of the item alone cannot
    see. The resolver reports one that nothing fills, with the defaults in view."""
    properties = {p.name: p.json_schema() for p in kind.params}
    mapping: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
    }
    alternatives: list[dict[str, Any]] = [{"type": "null"}, mapping]
    if kind.main is not None:
        alternatives.append(kind.param_index[kind.main].json_schema())
    return {"description": kind.doc, "anyOf": alternatives}


def _layer_item_schema() -> dict[str, Any]:
    kinds = {name: {"$ref": f"#/$defs/kinds/{name}"} for name in REGISTRY}
    # the merge words are the registry's combining kinds: a new one needs no change here
    merges = list(combinator_merges())

    def merge() -> dict[str, Any]:
        # a fresh object per combinator: callers may edit one schema without touching the other
        return {"anyOf": [{"enum": list(merges)}, {"$ref": "#/$defs/expression"}]}

    combinators = {
        "residual": {
            "type": "object",
            "description": "body + shortcut (auto|identity|projection|none|layers) merged by "
            + "|".join(merges)
            + " (default add)",
            "properties": {
                "body": {"$ref": "#/$defs/layerList"},
                "shortcut": {
                    "anyOf": [
                        {"enum": ["auto", "identity", "projection", "none"]},
                        {"$ref": "#/$defs/layerList"},
                        {"$ref": "#/$defs/expression"},
                    ]
                },
                "merge": merge(),
                "activation": POST_ACTIVATION,
                "projection_bias": {
                    "description": "whether a projection shortcut's 1×1 convolution adds a bias",
                    "anyOf": [{"type": "boolean"}, {"$ref": "#/$defs/expression"}],
                    "default": True,
                },
            },
            "required": ["body"],
            "additionalProperties": False,
        },
        "parallel": {
            "type": "object",
            "description": "branches applied to the same input, merged by "
            + "|".join(merges)
            + " (default concat)",
            "properties": {
                "branches": {"type": "array", "items": {"$ref": "#/$defs/layerList"}, "minItems": 2},
                "merge": merge(),
                "activation": POST_ACTIVATION,
            },
            "required": ["branches"],
            "additionalProperties": False,
        },
        "repeat": {
            "type": "object",
            "description": "the layers `times` times; `as` names the 0-based loop index",
            "properties": {
                "times": {"anyOf": [{"type": "integer", "minimum": 0}, {"$ref": "#/$defs/expression"}]},
                "as": {"type": "string", "pattern": IDENTIFIER_PATTERN},
                "layers": {"$ref": "#/$defs/layerList"},
                "carry": {
                    "type": "object",
                    "description": "names carried from one iteration to the next"
                    "; each starts as an earlier id",
                    "propertyNames": {"pattern": IDENTIFIER_PATTERN},
                    "additionalProperties": {"type": "string"},
                    "minProperties": 1,
                },
                "next": {
                    "type": "object",
                    "description": "how the carried names advance: each gets an id of the iteration "
                    "(a name left out keeps its value)",
                    "propertyNames": {"pattern": IDENTIFIER_PATTERN},
                    "additionalProperties": {"type": "string"},
                },
            },
            "required": ["times", "layers"],
            "additionalProperties": False,
        },
    }
    combinators["backbone"] = {
        "type": "object",
        "description": "another spec's model (zoo:NAME or a file) up to the layer `until`, as one item",
        "properties": {
            "spec": {"type": "string", "description": "a zoo model (zoo:resnet50) or a spec file"},
            "until": {
                "type": "string",
                "description": "the id, hierarchical name or layer name whose output is the backbone's",
            },
            "vars": {
                "type": "object",
                "description": "values for vars the backbone spec declares",
                "propertyNames": {"pattern": IDENTIFIER_PATTERN},
            },
            "weights": WEIGHTS_SCHEMA,
        },
        "required": ["spec"],
        "additionalProperties": False,
    }
    extras = {
        "id": {
            "type": "string",
            # an identifier, whose parts may be ${…} expressions (id: "block${s + 1}${letters[j]}")
            "pattern": r"^([A-Za-z_]|\$\{[^}]*\})([A-Za-z0-9_]|\$\{[^}]*\})*$",
            "description": "name of this layer; other layers refer to it",
        },
        "inputs": {
            "description": "ids of earlier layers (or `input`) to take as inputs; a block call may "
            "bind its named inputs with a mapping",
            "anyOf": [
                {"type": "string"},
                {"type": "array", "items": {"type": "string"}, "minItems": 1},
                {"type": "object", "additionalProperties": {"type": "string"}, "minProperties": 1},
            ],
        },
        "when": {"anyOf": [{"type": "boolean"}, {"$ref": "#/$defs/expression"}]},
        "trainable": {
            "anyOf": [{"type": "boolean"}, {"$ref": "#/$defs/expression"}],
            "description": "false: training leaves the weights of this item's layers as they are "
            "(a frozen batch norm uses its moving statistics)",
        },
    }
    return {
        "anyOf": [
            {
                "type": "string",
                "pattern": IDENTIFIER_PATTERN,
                "description": "a layer kind with default parameters, or a block without arguments",
            },
            {
                "type": "object",
                "properties": {**extras, **kinds, **combinators},
                "propertyNames": {"pattern": IDENTIFIER_PATTERN},
                "additionalProperties": {"description": "a block call with its arguments"},
                "minProperties": 1,
            },
        ]
    }


def _block_schema() -> dict[str, Any]:
    param = {
        "anyOf": [
            {"enum": BLOCK_PARAM_TYPES},
            {
                "type": "object",
                "properties": {
                    "type": {"enum": BLOCK_PARAM_TYPES},
                    "default": {},
                    "doc": {"type": "string"},
                },
                "additionalProperties": False,
            },
        ]
    }
    return {
        "type": "object",
        "properties": {
            "description": {"type": "string"},
            "params": {
                "type": "object",
                "propertyNames": {"pattern": IDENTIFIER_PATTERN},
                "additionalProperties": param,
            },
            "inputs": {
                "description": "names of the block's inputs, visible as ids in its body"
                " (default: one, `input`)",
                "type": "array",
                "items": {"$ref": "#/$defs/identifier"},
                "minItems": 1,
            },
            "outputs": {
                "description": "ids the block returns, in order (default: its last item)",
                "anyOf": [
                    {"$ref": "#/$defs/identifier"},
                    {"type": "array", "items": {"$ref": "#/$defs/identifier"}, "minItems": 1},
                ],
            },
            "defaults": {"$ref": "#/$defs/defaults"},
            "layers": {"$ref": "#/$defs/layerList"},
        },
        "required": ["layers"],
        "additionalProperties": False,
    }


def json_schema(*, layers: bool = True, composed: bool = False) -> dict[str, Any]:
    """The spec's JSON Schema. With ``layers=False`` layer items are only required to be
    strings or mappings (the resolver checks them). A spec file that ``extends`` another is an
    overlay, which may leave out any required key its base sets (:func:`_extends_overlay`);
    with ``composed=True`` (a document after composition, whose ``extends`` is resolved) every
    required key is required."""
    # Imported here: a cold validate of a packaged zoo model builds no schema (issue 15).
    from cnnspec.spec.search import SEARCH_SCHEMA

    layer_item = _layer_item_schema() if layers else {"type": ["string", "object"]}
    layer_list = {"type": "array", "items": {"$ref": "#/$defs/layer"}}
    defs: dict[str, Any] = {
        "expression": EXPRESSION_DEF,
        "template": TEMPLATE_DEF,
        "identifier": {"type": "string", "pattern": IDENTIFIER_PATTERN},
        "layer": layer_item,
        "layerList": layer_list,
        "block": _block_schema(),
        "defaults": {
            "type": "object",
            "description": "per-kind parameter defaults ({batch_norm: {momentum: 0.99}}); "
            "a block's win over the spec's, a parameter written on a layer wins over both",
            "propertyNames": {"pattern": IDENTIFIER_PATTERN},
            "additionalProperties": {"type": "object"},
        },
    }
    if layers:
        defs["kinds"] = {name: kind_schema(kind) for name, kind in REGISTRY.items()}
    positive = {"anyOf": [{"type": "integer", "minimum": 1}, {"$ref": "#/$defs/expression"}]}
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "cnnspec model specification",
        "description": "A convolutional network and how to train it. Generated by `cnnspec schema`.",
        "type": "object",
        "properties": {
            "cnnspec": {"const": 1, "description": "spec language version"},
            "name": {
                "$ref": "#/$defs/identifier",
                "maxLength": MAX_NAME,
                "description": f"model name (at most {MAX_NAME} characters)",
            },
            "description": {"type": "string", "description": "what the model is, in a sentence"},
            "extends": {
                "type": "string",
                "description": "a base spec to deep-merge under this one: a path, `file.yaml#variant` "
                "or a zoo model (`zoo:resnet50`)",
            },
            "use": {
                "type": "array",
                "items": {"type": "string"},
                "description": "block library files to import (paths, or `zoo:blocks/NAME`)",
            },
            "family": {"type": "string", "description": "the model family a variants table belongs to"},
            "variants": {
                "type": "object",
                "description": "variant name → its keras.applications function and var overrides; "
                "the first is the default (`zoo:NAME`, `file.yaml#NAME`)",
                "propertyNames": {"pattern": IDENTIFIER_PATTERN},
                "minProperties": 1,
                "additionalProperties": {
                    "type": "object",
                    "properties": {
                        "keras_name": {"$ref": "#/$defs/identifier"},
                        "description": {"type": "string"},
                        "vars": {
                            "type": "object",
                            "propertyNames": {"pattern": IDENTIFIER_PATTERN},
                            "additionalProperties": {"type": VAR_TYPES},
                        },
                    },
                    "additionalProperties": False,
                },
            },
            "input": {
                "type": "object",
                "properties": {
                    "shape": {
                        "anyOf": [
                            {"type": "array", "items": positive, "minItems": 1, "maxItems": MAX_INPUT_RANK},
                            {"$ref": "#/$defs/expression"},
                        ],
                        "description": "one image's shape without the batch: [height, width, channels]",
                    },
                    "name": {
                        "$ref": "#/$defs/identifier",
                        "description": "the input layer's name (default input); `inputs:` may refer to it",
                    },
                },
                "required": ["shape"],
                "additionalProperties": False,
                "description": "the model's input",
            },
            "vars": {
                "type": "object",
                "propertyNames": {"pattern": IDENTIFIER_PATTERN},
                "additionalProperties": {"type": VAR_TYPES},
                "description": "named values the spec reads as `${name}` (set from the command line "
                "with --set vars.name=…)",
            },
            "var_choices": {
                "type": "object",
                "propertyNames": {"pattern": IDENTIFIER_PATTERN},
                "additionalProperties": {"type": "array", "items": {"type": VAR_TYPES}, "minItems": 1},
                "description": "var → the values it may take, e.g. {pooling: [null, avg, max]}; any "
                "other value is an error where it was set (--set, vars:, a backbone, a variant)",
            },
            "blocks": {
                "type": "object",
                "propertyNames": {"pattern": IDENTIFIER_PATTERN},
                "additionalProperties": {"$ref": "#/$defs/block"},
                "description": "reusable, parameterised layer lists, called by name in a layer list",
            },
            "defaults": {"$ref": "#/$defs/defaults"},
            "model": {
                **layer_list,
                "minItems": 1,
                "description": "the layers, from the input to the output(s)",
            },
            "outputs": {
                "type": "array",
                "items": {"type": "string"},
                "minItems": 1,
                "description": "the ids of the model's outputs (default: its last layer)",
            },
            "augmentation": {
                **layer_list,
                "description": (
                    "random layers applied to the training images only (built as one line); with "
                    "mask targets the geometric ones (flip, rotation, zoom, …) move each mask with "
                    "its image, and the mask pixels they uncover get the background class 0 (a "
                    "layer's fill_value fills the image only)"
                ),
            },
            "data": DATA_SCHEMA,
            "training": TRAINING_SCHEMA,
            "runtime": RUNTIME_SCHEMA,
            "search": SEARCH_SCHEMA,
            "weights": WEIGHTS_SCHEMA,
        },
        "additionalProperties": False,
        "$defs": defs,
    }
    every = ["cnnspec", "name", "input", "model"]
    if composed:
        return {**schema, "required": every}
    return _extends_overlay(schema, every)


def _extends_overlay(schema: dict[str, Any], every: list[str]) -> dict[str, Any]:
    """The schema of one spec file as written (what an editor checks), where a file that
    ``extends`` another is an overlay: ``extends`` deep-merges its mappings into the base's, key
    by key, so it may leave out any key a mapping requires (``input: {name: image}`` over a base
    that has the shape, ``search: {trials: 5}``, an optimizer schedule's ``decay_rate`` alone),
    and ``cnnspec`` and ``name`` too. Such a file was refused by the schema (red in an editor)
    while ``validate``, which checks the composed document, took it. The sections as given are
    the overlay's (:func:`_mergeable`); a file without ``extends`` is checked against each
    section as a whole spec has it too (``else``), so it is held to every required key as before.
    Lists are replaced whole by ``extends``, so a list's items keep theirs."""
    defs: dict[str, Any] = schema["$defs"]
    strict: dict[str, Any] = {}
    properties = {}
    for key, value in schema["properties"].items():
        relaxed = _mergeable(value, defs)
        properties[key] = relaxed
        if relaxed != value:
            defs[f"whole_{key}"] = value
            strict[key] = {"$ref": f"#/$defs/whole_{key}"}
    return {
        **schema,
        "properties": properties,
        "if": {"required": ["extends"]},
        "else": {"required": every, "properties": strict},
    }


#: The keywords whose values are subschemas of the same mapping, or of a mapping's values
#: (``extends`` merges into each); ``items`` is not among them (a list is replaced whole).
_MAPPING_SUBSCHEMAS = ("anyOf", "oneOf", "allOf")


def _mergeable(node: Any, defs: dict[str, Any]) -> Any:
    """``node`` (a schema) as an overlay's mapping may be: no ``required`` key in it or in the
    mappings below it that ``extends`` merges (a property's value, another name's value, each
    alternative), following a ``$ref`` into ``defs`` (as ``mergeable_NAME``, added once)."""
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/") and len(node) == 1:
        name = ref.removeprefix("#/$defs/")
        if name.startswith("mergeable_") or name not in defs:
            return node
        relaxed_name = f"mergeable_{name}"
        if relaxed_name not in defs:
            defs[relaxed_name] = node  # (a stand-in while it is made: a def that refers to itself)
            relaxed = _mergeable(defs[name], defs)
            if relaxed == defs[name]:
                del defs[relaxed_name]
                return node
            defs[relaxed_name] = relaxed
        return {"$ref": f"#/$defs/{relaxed_name}"}
    out = {key: value for key, value in node.items() if key != "required"}
    if isinstance(out.get("properties"), dict):
        out["properties"] = {key: _mergeable(value, defs) for key, value in out["properties"].items()}
    if isinstance(out.get("additionalProperties"), dict):
        out["additionalProperties"] = _mergeable(out["additionalProperties"], defs)
    for key in _MAPPING_SUBSCHEMAS:
        if isinstance(out.get(key), list):
            out[key] = [_mergeable(value, defs) for value in out[key]]
    return out


LIBRARY_SCHEMA_ID = "https://cnnspec.dev/schemas/cnnspec-blocks.schema.json"


def block_library_schema(*, layers: bool = True) -> dict[str, Any]:
    """Schema of a block library (a file imported with ``use:``): blocks and vars only."""
    schema = json_schema(layers=layers, composed=True)  # (a library extends nothing)
    keys = ("cnnspec", "description", "use", "vars", "var_choices", "blocks")
    schema["$id"] = LIBRARY_SCHEMA_ID
    schema["title"] = "cnnspec block library"
    schema["description"] = "Reusable blocks imported by specs with `use:`. Generated by `cnnspec schema`."
    schema["properties"] = {k: v for k, v in schema["properties"].items() if k in keys}
    schema["required"] = ["blocks"]
    schema.pop("if", None)
    schema.pop("else", None)
    return schema


@functools.cache
def section_names() -> tuple[str, ...]:
    """The top-level keys a spec may have (``model``, ``training``, …), in the schema's order."""
    return tuple(json_schema(layers=False)["properties"])


@functools.cache
def _validator(kind: str) -> Any:
    import jsonschema

    schema = (
        block_library_schema(layers=False) if kind == "library" else json_schema(layers=False, composed=True)
    )
    return jsonschema.Draft202012Validator(schema)


#: The documents of this process that passed the schema, by :func:`_frozen` key, most recent
#: last. Validation is a pure function of the data (the schema is built once per process, see
#: :func:`_validator`) and costs milliseconds (a third of compiling a small spec), while the same
#: document is checked again and again: `cnnspec validate` then `inspect`, the language server on
#: every save, a family's variants sharing their blocks. Only passing documents are kept: a
#: failing one is reported from its errors, each located in its own document. Bounded, as the
#: parse cache is (:data:`cnnspec.spec.loader.PARSE_CACHE_SIZE`), and by the values the keys
#: hold in all (each key is a copy of its document): the value is a key's number of values.
_VALID: OrderedDict[tuple[Any, ...], int] = OrderedDict()
#: Held while :data:`_VALID` is read or changed (the library may validate in threads; see
#: :data:`cnnspec.spec.loader._PARSED_LOCK`).
_VALID_LOCK = threading.Lock()
VALID_CACHE_SIZE = 64
#: The most values (mappings, lists and scalars) the keys hold in all: ~25 MB.
VALID_CACHE_VALUES = 200_000
#: The value types a key is made of, each exactly (a subclass or a NumPy integer, which a
#: document made in Python may hold, is validated every time: it may compare equal to a
#: builtin value and yet fail the schema's type check).
_SCALARS = frozenset({str, int, float, bool, type(None)})


def _frozen(value: Any) -> Any:
    """A hashable key equal only for equal documents of the same types throughout (each
    scalar with its type: ``1``, ``1.0`` and ``True`` are equal in Python, not in the schema),
    or ``None`` when the value holds anything else."""
    kind = type(value)
    if kind in _SCALARS:
        return (kind, value)
    if kind is dict:
        items = []
        for k, v in value.items():
            frozen_key, frozen_value = _frozen(k), _frozen(v)
            if frozen_key is None or frozen_value is None:
                return None
            items.append((frozen_key, frozen_value))
        return (dict, tuple(items))
    if kind is list or kind is tuple:
        inner = [_frozen(v) for v in value]
        return None if None in inner else (kind, tuple(inner))
    return None


def _count(value: Any) -> int:
    """How many values (mappings, lists and scalars, keys included) ``value`` holds."""
    if type(value) is dict:
        return 1 + sum(_count(k) + _count(v) for k, v in value.items())
    if type(value) is list or type(value) is tuple:
        return 1 + sum(_count(v) for v in value)
    return 1


def validate_document(doc: SourceDoc, diags: Diagnostics, *, library: bool = False) -> None:
    """Check a composed document against the schema, adding located diagnostics (a packaged
    zoo model as shipped, ``doc.schema_checked``, passed it when it was packaged)."""
    # An error in an `extends` base says where it is included (its `variants:` table's too).
    diags.includes.update(doc.includes)
    # Values that failed as they were read come first: what the schema (or the resolver)
    # then finds on them is their consequence, left out.
    if doc.value_errors:
        diags.failed_values(doc.value_errors)
    for warning in hidden_block_warnings(doc, library=library):  # (found while composing)
        diags.add(warning)
    if doc.schema_checked and not library:
        return
    validator = _validator("library" if library else "spec")
    data = doc.data
    blocks = data.get("blocks")
    if not library and doc.checked_blocks and isinstance(blocks, dict):
        # Blocks imported unchanged from libraries passed the same schema when they were loaded.
        data = {**data, "blocks": {k: v for k, v in blocks.items() if k not in doc.checked_blocks}}
    key = _frozen(("library" if library else "spec", data))
    if key is not None:
        with _VALID_LOCK:
            known = key in _VALID
            if known:
                _VALID.move_to_end(key)
        if known:
            return
    found = []
    for error in validator.iter_errors(data):
        found.append(error)
        if len(found) >= MAX_DIAGNOSTICS:  # a hostile file can hold ~100,000 mistakes
            break
    if not found and key is not None:
        count = _count(data)
        with _VALID_LOCK:
            _VALID[key] = count
            values = sum(_VALID.values())
            while len(_VALID) > 1 and (len(_VALID) > VALID_CACHE_SIZE or values > VALID_CACHE_VALUES):
                values -= _VALID.popitem(last=False)[1]
    covered: set[tuple[Any, ...]] = set()  # values whose one mistake has been reported whole
    for error in sorted(found, key=lambda e: list(map(str, e.absolute_path))):
        for leaf in _leaves(error):
            if diags.full:
                return
            path = tuple(leaf.absolute_path)
            if any(path[:n] in covered for n in range(len(path) + 1)):
                continue
            whole = _flat_optimizer(path, doc, diags)
            if whole is not None:
                covered.add(whole)
                continue
            if (
                leaf.validator == "type"
                and leaf.validator_value == "boolean"
                and diags.boolean_only(doc.loc(path))
            ):
                continue  # (a YAML 1.1 `no` where a boolean alone is taken: its error now says so)
            _report(leaf, doc, diags)


def substituted_errors(
    doc: SourceDoc, values: dict[tuple[Any, ...], Any]
) -> list[tuple[tuple[Any, ...], Diagnostic]]:
    """The schema's errors on what ``${…}`` expressions evaluated to (``values``, by the path of
    each expression), each with its path. The schema takes an expression in place of any value
    (``epochs: "${e}"``), so the bounds its result must keep (``≤ 100000``, ``at most 4 items``)
    were checked by no one where a reader checks less than the schema; here every constraint
    the schema puts on the value applies, as it does to a value written out."""
    if not values:
        return []
    # the sections that hold them only: the errors kept are inside them, and the model (a zoo
    # model's hundreds of items) is not validated again for them (the other keys' absence is
    # an error of the document's top level, never inside a value)
    data = {key: copy_tree(doc.data[key]) for key in dict.fromkeys(path[0] for path in values)}
    for path, value in values.items():
        node = data
        for part in path[:-1]:
            node = node[part]
        node[path[-1]] = value
    inside = tuple(values)
    substituted = replace(doc, data=data)
    found: list[tuple[tuple[Any, ...], Diagnostic]] = []
    for error in _validator("spec").iter_errors(data):
        for leaf in _leaves(error):
            path = tuple(leaf.absolute_path)
            if not any(path[: len(at)] == at for at in inside):
                continue
            scratch = Diagnostics()
            _report(leaf, substituted, scratch)
            found.extend((path, d) for d in scratch.errors)
        if len(found) >= MAX_DIAGNOSTICS:
            break
    return found


#: Keys that name the optimizer inside a flat mapping (``{name: adam, learning_rate: …}``, as
#: PyTorch-style configs write it) instead of being its key.
OPTIMIZER_NAME_KEYS = ("name", "type")


def _flat_optimizer(path: tuple[Any, ...], doc: SourceDoc, diags: Diagnostics) -> tuple[Any, ...] | None:
    """Report an ``optimizer`` written flat (``{name: adam, learning_rate: 0.003}``) on the
    way to ``path`` as one error with the nested form, where the schema finds three (two keys,
    two unknown keys); the optimizer's path, or ``None`` when there is none such."""
    value: Any = doc.data
    for depth, step in enumerate(path):
        if (isinstance(value, dict) and step in value) or (
            isinstance(value, list) and isinstance(step, int) and 0 <= step < len(value)
        ):
            value = value[step]
        else:
            return None
        if step != "optimizer" or not isinstance(value, dict):
            continue
        named = next((k for k in OPTIMIZER_NAME_KEYS if k in value), None)
        if named is None:
            return None
        name = value[named]
        if not isinstance(name, str) or name not in OPTIMIZERS:
            return None  # no optimizer to nest under: the schema's own errors say what is wrong
        # other libraries' keys under cnnspec's names (lr → learning_rate): the fix is whole
        settings = {ALIASES.get(k, k) if isinstance(k, str) else k: v for k, v in value.items() if k != named}
        written = flow_yaml({name: settings} if settings else name)
        if written is None:
            return None
        where = path[: depth + 1]
        diags.error(
            f"expected the optimizer's name as its key; received a mapping with keys "
            f"{', '.join(map(str, value))}",
            doc.loc(where),
            format_path(where),
            code="invalid",
            hint=f"write optimizer: {written}",
        )
        return where
    return None


def _value_hint(path: tuple[Any, ...], value: Any, schema: Any) -> str | None:
    """How to write a value of the wrong type where the usual mistake is known: a quoted
    number, the input's shape without its key, the model's layers as a mapping."""
    if path == ("input",) and isinstance(value, list):
        return f"the shape goes under its key: input: {{shape: {value}}}"
    if path == ("model",) and isinstance(value, dict) and value:
        first = next(iter(value))
        return f"write each layer as a list item starting with `- `: `- {first}: …`"
    if path == ("data", "classes") and not isinstance(value, list):
        if value is None:
            return "leave data.classes out to keep every class"
        one = flow_yaml([value]) if isinstance(value, (str, int)) and not isinstance(value, bool) else None
        return f"one class is a list of one: classes: {one}" if one else "e.g. classes: [cat, dog] or [3, 5]"
    if isinstance(value, str):
        meant = text_as_value(value)
        if isinstance(meant, (int, float)) and _accepts_number(schema, meant):
            return written_as_text_hint(value, meant)
        spelt = value.strip().lower()
        if spelt in ("true", "false") and _accepts_boolean(schema):
            return f"remove the quotes: write {spelt}, a boolean, not the text {value!r}"
    return None


def _accepts_boolean(schema: Any) -> bool:
    """Whether ``schema`` (or one of its ``anyOf`` alternatives) takes a boolean."""
    if not isinstance(schema, dict):
        return False
    kinds = schema.get("type")
    if kinds == "boolean" or (isinstance(kinds, list) and "boolean" in kinds):
        return True
    return any(_accepts_boolean(s) for s in schema.get("anyOf", ()))


def _accepts_number(schema: Any, number: float) -> bool:
    """Whether ``schema`` (or one of its ``anyOf`` alternatives) is of a number type that
    ``number`` has (an integer type for an integer only)."""
    if not isinstance(schema, dict):
        return False
    kinds = schema.get("type")
    kinds = kinds if isinstance(kinds, list) else [kinds]
    if "number" in kinds or ("integer" in kinds and isinstance(number, int)):
        # the number unquoted must be accepted, or removing the quotes is no fix
        low, high = schema.get("minimum"), schema.get("maximum")
        above, below = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
        return not (
            (low is not None and number < low)
            or (high is not None and number > high)
            or (above is not None and number <= above)
            or (below is not None and number >= below)
        )
    return any(_accepts_number(s, number) for s in schema.get("anyOf", ()))


def _leaves(error: Any) -> Iterator[Any]:
    """The most useful sub-error of an ``anyOf``: the alternative that got furthest."""
    if error.validator not in ("anyOf", "oneOf") or not error.context:
        yield error
        return
    # The ${…} alternative says "expected a string" of any other string ("abc" for an integer
    # setting): it is left out unless the value looks like an expression.
    meant = isinstance(error.instance, str) and "${" in error.instance
    relevant = [e for e in error.context if meant or not _is_expression(e)]
    relevant = [e for e in relevant if e.validator != "type" or e.validator_value != "null"] or relevant
    deepest = max(len(e.absolute_path) for e in relevant) if relevant else 0
    if deepest > len(error.absolute_path):
        # The alternative that got furthest, with each of its deepest errors: every bad item
        # of a list (`shape: [8, 0, -1]`) is its own mistake, not only the first.
        first = next(e for e in relevant if len(e.absolute_path) == deepest)
        branch = first.relative_schema_path[0] if first.relative_schema_path else None
        best = [
            e
            for e in relevant
            if len(e.absolute_path) == deepest
            and (e.relative_schema_path[0] if e.relative_schema_path else None) == branch
        ]
        for sub in best:
            yield from _leaves(sub)
        return
    # Every alternative fails on the value itself. When the value has the type of only one of
    # them, that one's errors say what is wrong (an empty list, an unknown key), where the
    # alternatives together would say "expected a list; received a list".
    fitting = _fitting_alternative(error.instance, relevant)
    if fitting and not _one_of_several(fitting, relevant):
        for sub in fitting:
            yield from _leaves(sub)
        return
    yield error


#: The types of a single value: beside a list of names, an alternative of one of these is
#: another way to write the same setting (``jit_compile: true`` or ``auto``).
_SCALARS = frozenset({"boolean", "number", "integer"})


def _one_of_several(fitting: list[Any], relevant: list[Any]) -> bool:
    """Whether the alternative a value's type fits failed only as a list of names (``auto``)
    beside alternatives of single values of other types (true or false): the value was meant
    as any of them (``"true"`` quoted, ``yes_please``), and all of them are said, not ``one of
    auto`` alone. (Beside a mapping, a name is what was meant: ``integer`` for ``int``.)"""
    if not all(sub.validator in ("enum", "const") for sub in fitting):
        return False
    others = [sub for sub in relevant if sub not in fitting]
    return bool(others) and all(sub.validator == "type" and sub.validator_value in _SCALARS for sub in others)


def _is_expression(error: Any) -> bool:
    """Whether ``error`` comes from the ``${…}`` expression alternative of an ``anyOf``."""
    path = str(list(error.schema_path))
    return error.schema in (EXPRESSION_DEF, TEMPLATE_DEF) or "expression" in path or "template" in path


def _fitting_alternative(value: Any, errors: list[Any]) -> list[Any]:
    """The errors of the one alternative of an ``anyOf`` whose type ``value`` has (``[]``
    when none or several have it)."""
    groups: dict[Any, list[Any]] = {}
    for sub in errors:
        if sub.relative_schema_path:
            groups.setdefault(sub.relative_schema_path[0], []).append(sub)
    fitting = [group for group in groups.values() if not any(_wrong_type(value, sub) for sub in group)]
    if len(fitting) > 1:
        # mappings told apart by a key each requires ({int: …} or {float: …} or {choice: …}):
        # the one whose key the value has says what else is wrong (`steps` for `step`)
        fitting = [group for group in fitting if not any(sub.validator == "required" for sub in group)]
    return fitting[0] if len(fitting) == 1 else []


def _wrong_type(value: Any, error: Any) -> bool:
    """Whether ``error`` says that ``value`` is of another type than its alternative wants."""
    if error.validator == "type":
        return True
    if error.validator in ("enum", "const"):
        allowed = error.validator_value if error.validator == "enum" else [error.validator_value]
        return not any(type(value) is type(option) for option in allowed)
    return False


def _alternative_keys(schema: dict[str, Any]) -> list[str]:
    """The required key of each alternative of an ``anyOf`` of mappings told apart by one key
    (a search space: ``float``, ``int``, ``choice``); none when the alternatives are otherwise."""
    keys = []
    for alternative in schema.get("anyOf", []):
        if not isinstance(alternative, dict) or alternative.get("type") != "object":
            return []
        required = alternative.get("required")
        if not isinstance(required, list) or len(required) != 1:
            return []
        keys.append(str(required[0]))
    return keys


def _expected(schema: Any) -> str:
    """A short description of what a schema accepts."""
    if not isinstance(schema, dict):
        return "a valid value"
    if "enum" in schema:
        return "one of " + ", ".join(map(str, schema["enum"]))
    if "const" in schema:
        return repr(schema["const"])
    if "anyOf" in schema:
        keys = _alternative_keys(schema)
        if keys:  # {float: …} | {int: …} | {choice: …}: the keys tell them apart
            return f"a mapping with one of the keys {', '.join(keys)}"
        parts = [_expected(s) for s in schema["anyOf"] if "$ref" not in s or "expression" not in s["$ref"]]
        return " or ".join(dict.fromkeys(parts))
    kind = schema.get("type")
    bounds = []
    if "minimum" in schema:
        bounds.append(f"≥ {schema['minimum']}")
    if "exclusiveMinimum" in schema:
        bounds.append(f"> {schema['exclusiveMinimum']}")
    if "maximum" in schema:
        bounds.append(f"≤ {schema['maximum']}")
    if "exclusiveMaximum" in schema:
        bounds.append(f"< {schema['exclusiveMaximum']}")
    names = {
        "integer": "an integer",
        "number": "a number",
        "string": "a string",
        "boolean": "true or false",
        "object": "a mapping",
        "array": "a list",
        "null": "null",
    }
    if isinstance(kind, list):
        return " or ".join(names.get(k, k) for k in kind)
    text = names.get(kind, "a valid value") if kind else "a valid value"
    return f"{text} {' and '.join(bounds)}".strip()


def flow_yaml(value: Any) -> str | None:
    """``value`` as one line of YAML (flow style: ``{sgd: {momentum: 0.9, nesterov: true}}``),
    as a hint shows what to write; ``None`` for a value YAML cannot write."""
    try:
        text = dump_yaml(value, default_flow_style=True, sort_keys=False, allow_unicode=True, width=10**9)
    except yaml.YAMLError:
        return None
    return text.removesuffix("\n").removesuffix("\n...").strip()


def _one_key_error(
    diags: Diagnostics,
    doc: SourceDoc,
    path: tuple[Any, ...],
    where: str,
    schema: dict[str, Any],
    keys: list[str],
) -> None:
    """A mapping that names one choice (``optimizer: {adam: …}``) with none or several: located
    at the second choice, the one to take out, naming the choices written (it said "received 2
    keys" at the first, as if that one were the mistake). Where the schema allows no other key,
    one that is no choice has its own "unknown key" error: with at most one choice beside it,
    that error is the only one."""
    options = list(schema["properties"])
    expected = f"expected exactly one of {', '.join(options)}"
    if not keys:
        diags.error(f"{expected}; received an empty mapping", doc.loc(path), where, code="invalid")
        return
    chosen = [key for key in keys if key in options]
    if len(chosen) < 2:
        if schema.get("additionalProperties") is False:
            return
        chosen = keys  # (no unknown-key error says it: the keys written, whatever they are)
    diags.error(
        f"{expected}; received {len(chosen)}: {', '.join(chosen)}",
        doc.key_loc((*path, chosen[1])),
        where,
        code="invalid",
        hint=f"keep one of {', '.join(chosen)}",
    )


def _learning_rate_hint(training: dict[Any, Any], key: str) -> str | None:
    """Where a learning rate written beside the optimizer belongs: inside it, under the
    optimizer's own name (the one written, else adam), with the settings already written."""
    shown = optimizer_with_rate(training, key)
    return None if shown is None else f"the learning rate is the optimizer's setting: {shown}"


def optimizer_with_rate(training: dict[Any, Any], key: str) -> str | None:
    """``optimizer: {NAME: {…, learning_rate: RATE}}``, one line of YAML: the optimizer written
    in ``training`` (a mapping with an ``optimizer``, else adam) with the rate at its ``key`` in
    its settings; ``None`` for a value YAML cannot write."""
    optimizer = training.get("optimizer")
    name: Any = "adam"
    settings: dict[Any, Any] = {}
    if isinstance(optimizer, str):
        name = optimizer
    elif isinstance(optimizer, dict) and optimizer:
        name, written = next(iter(optimizer.items()))
        settings = dict(written) if isinstance(written, dict) else {}
    settings["learning_rate"] = training[key]
    shown = flow_yaml({name: settings})
    return None if shown is None else f"optimizer: {shown}"


#: The settings sections whose keys are told apart: a key written in the wrong one is pointed
#: at the one that has it (``runtime.deterministic`` → ``training.deterministic``).
_SETTINGS_SECTIONS = ("data", "training", "runtime")


def _section_of(key: str, path: tuple[Any, ...]) -> str | None:
    """The other settings section that has the key ``key``, where ``path`` is a settings
    section itself (``None`` elsewhere, or where none has it)."""
    if len(path) != 1 or path[0] not in _SETTINGS_SECTIONS:
        return None
    schemas = {"data": DATA_SCHEMA, "training": TRAINING_SCHEMA, "runtime": RUNTIME_SCHEMA}
    found = [
        name for name, schema in schemas.items() if name != path[0] and key in schema.get("properties", {})
    ]
    return found[0] if len(found) == 1 else None


def _report(error: Any, doc: SourceDoc, diags: Diagnostics) -> None:
    path = tuple(error.absolute_path)
    where = format_path(path)
    value = error.instance
    validator = error.validator
    if validator == "additionalProperties":
        allowed = list(error.schema.get("properties", {}))
        extra = [k for k in value if k not in allowed] if isinstance(value, dict) else []
        for key in extra:
            if diags.full:
                return
            # the keys beside it, which a rename must not repeat (a key a `--set` option adds
            # is renamed in the option, where a path merges into the section it names: only
            # the keys the same option writes are beside it there)
            loc = doc.key_loc((*path, key))
            beside = (
                [k for k in value if getattr(doc.key_loc((*path, k)), "file", None) == loc.file]
                if loc is not None and loc.file.startswith(COMMAND_LINE_PREFIX)
                else value
            )
            hint = (
                alias_hint(key, allowed, beside)
                or key_hint(key, allowed, beside)
                or ("keys: " + ", ".join(allowed) if allowed else None)
            )
            if path == () and key == "layers":
                hint = "the layer list of a spec is called `model`"
            elsewhere = _section_of(key, path)
            if elsewhere is not None and not key_hint(key, allowed, beside):
                hint = f"`{key}` is a key of `{elsewhere}`: write it as {elsewhere}.{key}"
            if (
                key in ("learning_rate", "lr")
                and "optimizer" in allowed
                and "learning_rate" not in allowed  # (a phase has its own: the alias hint says it)
                and isinstance(value, dict)
            ):
                hint = _learning_rate_hint(value, key) or hint
            diags.error(
                f"unknown key {key!r}",
                doc.key_loc((*path, key)),
                format_path((*path, key)),
                code="unknown-key",
                hint=hint,
            )
        return
    if validator == "required":
        missing = [k for k in error.validator_value if isinstance(value, dict) and k not in value]
        if isinstance(value, dict):
            # A misspelt required key is one mistake: the unknown key's error and hint say it
            # (`layers:` for `model:` too).
            meant = misspelt(value, error.schema.get("properties", {}), missing)
            if path == () and "layers" in value:
                meant.add("model")
            missing = [k for k in missing if k not in meant]
        for key in missing:
            diags.error(f"missing required key `{key}`", doc.loc(path), where, code="missing-key")
        return
    if validator == "propertyNames":
        diags.error(
            f"expected names made of letters, digits and _; received {describe_value(error.instance)}",
            doc.loc(path),
            where,
            code="identifier",
        )
        return
    if validator in ("minProperties", "maxProperties") and isinstance(value, dict):
        options = list(error.schema.get("properties", {}))
        if options:  # a choice of keys (one kind of space)
            _one_key_error(diags, doc, path, where, error.schema, list(value))
            return
        if validator == "minProperties":  # a table of the user's own names (search.space, variants)
            count = error.validator_value
            message = (
                f"expected at least {count} {'entry' if count == 1 else 'entries'}; received an empty mapping"
            )
        else:
            message = f"expected at most {error.validator_value} entries; received {len(value)}"
        diags.error(message, doc.loc(path), where, code="invalid")
        return
    if validator == "minLength" and isinstance(value, str):
        diags.error(
            "expected a non-empty string; received an empty string"
            if error.validator_value == 1
            else f"expected at least {error.validator_value} characters; received {describe_value(value)}",
            doc.loc(path),
            where,
            code="invalid",
        )
        return
    if validator == "maxLength" and isinstance(value, str):
        diags.error(
            f"expected at most {error.validator_value} characters; received {len(value):,}",
            doc.loc(path),
            where,
            code="invalid",
            hint="a shorter name: the default files are named after it (runs/NAME-…, NAME.keras)"
            if path == ("name",)
            else None,
        )
        return
    if validator == "uniqueItems" and isinstance(value, list):
        seen: list[Any] = []
        for index, item in enumerate(value):
            if item in seen:  # (reported at the repeat, naming the first)
                first = seen.index(item)
                diags.error(
                    f"expected distinct items; received {describe_value(item)} at [{first}] and [{index}]",
                    doc.loc((*path, index)) or doc.loc(path),
                    format_path((*path, index)),
                    code="invalid",
                    hint="remove the repeat",
                )
                return
            seen.append(item)
    if validator in ("minItems", "maxItems"):
        count = len(value) if isinstance(value, list) else 0
        word = "at least" if validator == "minItems" else "at most"
        message = f"expected {word} {error.validator_value} item(s); received {count}"
        if validator == "minItems" and error.validator_value == 1 and count == 0:
            message = "expected a non-empty list; received an empty list"
        hint = "a spec needs at least one layer in `model`" if path == ("model",) else None
        if path[:2] == ("search", "space") and path[-1] == "choice" and validator == "minItems":
            from cnnspec.spec.search import ONE_CHOICE, ONE_CHOICE_HINT

            message = ONE_CHOICE if count == 1 else "expected at least two choices; received none"
            hint = ONE_CHOICE_HINT if count == 1 else "list the values to try: {choice: [16, 32]}"
        diags.error(message, doc.loc(path), where, code="invalid", hint=hint)
        return
    if validator == "const":
        diags.error(
            f"expected {error.validator_value!r}; received {describe_value(value)}",
            doc.loc(path),
            where,
            code="invalid",
            hint="this version of cnnspec reads `cnnspec: 1` specs" if path == ("cnnspec",) else None,
        )
        return
    if validator == "enum":
        choices = list(map(str, error.validator_value))
        hint = (
            (alias_hint(value, choices) or did_you_mean(value, choices)) if isinstance(value, str) else None
        )
        diags.error(
            f"expected one of {', '.join(map(str, error.validator_value))}; received {describe_value(value)}",
            doc.loc(path),
            where,
            code="invalid",
            hint=hint,
        )
        return
    if validator == "pattern" and error.validator_value == IDENTIFIER_PATTERN:
        schema_path = list(error.relative_schema_path)
        loc = doc.loc(path)
        if len(schema_path) >= 2 and schema_path[-2] == "propertyNames" and isinstance(value, str):
            # A key that is no identifier: jsonschema reports it at the mapping; name the key.
            path = (*path, value)
            loc, where = doc.key_loc(path) or loc, format_path(path)
        diags.error(
            f"expected an identifier ([A-Za-z_][A-Za-z0-9_]*); received {describe_value(value)}",
            loc,
            where,
            code="identifier",
        )
        return
    if validator == "pattern" and error.schema == EXPRESSION_DEF:
        diags.error(
            f"expected a ${{…}} expression; received {describe_value(value)}",
            doc.loc(path),
            where,
            code="expression",
            hint="an expression is written ${…}, closed with `}`, e.g. ${width * 2}",
        )
        return
    hint = None
    if isinstance(value, str):
        words = [
            w
            for s in error.schema.get("anyOf", [error.schema])
            if isinstance(s, dict)
            for w in s.get("enum", [])
        ]
        hint = (alias_hint(value, map(str, words)) or did_you_mean(value, map(str, words))) if words else None
    if isinstance(value, dict) and isinstance(error.schema, dict):
        keys = _alternative_keys(error.schema)
        unknown = [str(k) for k in value if k not in keys]
        hint = next(filter(None, (key_hint(k, keys, value) for k in unknown)), None)
    hint = hint or _value_hint(path, value, error.schema)
    if path == ("input",) and isinstance(value, list) and any(isinstance(item, dict) for item in value):
        # several inputs listed: no shape to move under a key, and no model of several inputs
        first = next(item for item in value if isinstance(item, dict))
        written = flow_yaml(first)
        diags.error(
            f"expected one input (a mapping); received a list of {len(value)} inputs: a spec has "
            "exactly one input (models with several inputs are not supported)",
            doc.loc(path),
            where,
            code="invalid",
            hint=f"keep the input the model reads: input: {written}" if written else None,
        )
        return
    diags.error(
        f"expected {_EXPECTED_AT.get(path) or _expected(error.schema)}; received {describe_value(value)}",
        doc.loc(path),
        where,
        code="invalid",
        hint=hint,
        notes=_merged_keys(doc, path, value),
    )


#: What a value of the wrong type at these paths should be, where the schema's own words ("a
#: list") leave out what the list holds.
_EXPECTED_AT: dict[tuple[Any, ...], str] = {("data", "classes"): "a list of class names or label indices"}


def _merged_keys(doc: SourceDoc, path: tuple[Any, ...], value: Any) -> tuple[Note, ...]:
    """Notes on the keys of the mapping ``value`` at ``path`` written in another file than the
    mapping itself: a base's (``extends:`` merges a child's mapping into its base's, key by
    key), which the error's line does not show (``float`` of the base beside the child's
    ``int``)."""
    here = doc.loc(path)
    if not isinstance(value, dict) or here is None:
        return ()
    notes = []
    for key in value:
        loc = doc.key_loc((*path, key))
        if loc is not None and loc.file != here.file:
            notes.append(
                Note(
                    f"{key} comes from {loc}: extends merges a mapping into the base's key by "
                    "key, so a key the base sets stays (change it in the base)",
                    loc,
                    format_path((*path, key)),
                )
            )
    return tuple(notes)
