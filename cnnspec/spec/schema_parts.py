"""The pieces the JSON Schemas of the spec's sections are written with: numbers and integers
that may also be a ``${…}`` expression, closed objects, one-key mappings, booleans. Each takes
the description the generated docs (docs/sections.md) and editors' hover show."""

from __future__ import annotations

from typing import Any

EXPR: dict[str, Any] = {"$ref": "#/$defs/expression"}


def number(
    minimum: float | None = None,
    maximum: float | None = None,
    exclusive: bool = False,
    description: str = "",
    exclusive_max: bool = False,
) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "number"}
    if minimum is not None:
        schema["exclusiveMinimum" if exclusive else "minimum"] = minimum
    if maximum is not None:
        schema["exclusiveMaximum" if exclusive_max else "maximum"] = maximum
    out: dict[str, Any] = {"anyOf": [schema, EXPR]}
    if description:
        out["description"] = description
    return out


def integer(minimum: int | None = None, maximum: int | None = None, description: str = "") -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "integer"}
    if minimum is not None:
        schema["minimum"] = minimum
    if maximum is not None:
        schema["maximum"] = maximum
    out: dict[str, Any] = {"anyOf": [schema, EXPR]}
    if description:
        out["description"] = description
    return out


def closed_object(
    properties: dict[str, Any], required: tuple[str, ...] = (), description: str = ""
) -> dict[str, Any]:
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


def one_key(options: dict[str, Any], description: str = "") -> dict[str, Any]:
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


def boolean(description: str = "") -> dict[str, Any]:
    return {"type": "boolean", "description": description} if description else {"type": "boolean"}
