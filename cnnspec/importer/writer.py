"""Spec items → YAML text in the style of the hand-written specs: flow mappings for parameters,
the main parameter as a scalar, block-style lists for combinators."""

from __future__ import annotations

import json
import re
from typing import Any

from cnnspec.backends.codegen_values import comment_text
from cnnspec.importer.items import Block, Call, Expr, Item, Layer, Parallel, Repeat, Residual
from cnnspec.layers.registry import get_kind

_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")
_YAML_WORDS = {"yes", "no", "true", "false", "null", "on", "off", "y", "n", "~"}
#: A header comment line is cut here (a file name is at most 255 bytes; escapes lengthen it).
_COMMENT_LIMIT = 2000


def scalar(value: Any) -> str:
    """One value in flow style; floats always with a dot so YAML reads them as floats."""
    if isinstance(value, Expr):
        return json.dumps(f"${{{value.text}}}")
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        text = repr(value)
        if "e" in text and "." not in text.split("e")[0]:
            mantissa, exponent = text.split("e")
            text = f"{mantissa}.0e{exponent}"
        return text
    if isinstance(value, str):
        if _PLAIN.match(value) and value.lower() not in _YAML_WORDS:
            return value
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(scalar(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {scalar(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot write {value!r}")


def _head(key: str, params: dict[str, Any], main: str | None) -> str:
    if not params:
        return key
    if main is not None and list(params) == [main] and not isinstance(params[main], (list, dict)):
        return f"{key}: {scalar(params[main])}"
    return f"{key}: {scalar(params)}"


def _extras(item: Any, pad: str) -> list[str]:
    lines = []
    if getattr(item, "id", None) is not None:
        lines.append(f"{pad}  id: {scalar(item.id)}")
    inputs = getattr(item, "inputs", None)
    if inputs:
        lines.append(f"{pad}  inputs: {scalar(inputs[0]) if len(inputs) == 1 else scalar(inputs)}")
    if getattr(item, "trainable", True) is False:
        lines.append(f"{pad}  trainable: false")
    return lines


def item_lines(item: Item, indent: int) -> list[str]:
    """The YAML lines of one list item at ``indent`` spaces."""
    pad = " " * indent
    if isinstance(item, Layer):
        kind = get_kind(item.kind)
        head = _head(item.kind, item.params, kind.main if kind else None)
        extras = _extras(item, pad)
        if extras and ":" not in head:
            head += ":"
        return [f"{pad}- {head}", *extras]
    if isinstance(item, Call):
        head = _head(item.block, item.args, None)
        extras = _extras(item, pad)
        if extras and ":" not in head:
            head += ":"
        return [f"{pad}- {head}", *extras]
    if isinstance(item, Residual):
        lines = [f"{pad}- residual:", f"{pad}    body:"]
        lines += list_lines(item.body, indent + 6)
        if item.shortcut:
            lines += [f"{pad}    shortcut:", *list_lines(item.shortcut, indent + 6)]
        elif item.identity:
            lines.append(f"{pad}    shortcut: identity")
        if item.merge != "add":
            lines.append(f"{pad}    merge: {item.merge}")
        if item.activation is not None:
            lines.append(f"{pad}    activation: {scalar(item.activation)}")
        return lines + _extras(item, pad)
    if isinstance(item, Parallel):
        lines = [f"{pad}- parallel:", f"{pad}    branches:"]
        for branch in item.branches:
            first, *rest = list_lines(branch, indent + 8)
            lines.append(f"{pad}      - " + first.lstrip())
            lines += rest
        if item.merge != "concat":
            lines.append(f"{pad}    merge: {item.merge}")
        if item.activation is not None:
            lines.append(f"{pad}    activation: {scalar(item.activation)}")
        return lines + _extras(item, pad)
    if isinstance(item, Repeat):
        if (
            len(item.layers) == 1
            and isinstance(item.layers[0], (Layer, Call))
            and not _extras(item.layers[0], "")
        ):
            inner = item_lines(item.layers[0], 0)[0][2:]
            fields = f"times: {scalar(item.times)}" + (f", as: {item.var}" if item.var else "")
            return [f"{pad}- repeat: {{{fields}, layers: [{inner}]}}", *_extras(item, pad)]
        lines = [f"{pad}- repeat:", f"{pad}    times: {scalar(item.times)}"]
        if item.var:
            lines.append(f"{pad}    as: {item.var}")
        lines += [f"{pad}    layers:", *list_lines(item.layers, indent + 6)]
        return lines + _extras(item, pad)
    raise TypeError(f"unknown item {item!r}")


def list_lines(items: list[Item], indent: int) -> list[str]:
    return [line for item in items for line in item_lines(item, indent)]


def spec_text(
    name: str,
    input_shape: list[int],
    blocks: list[Block],
    model: list[Item],
    header: list[str],
    weights: str | None = None,
    mixed_precision: bool = False,
    outputs: list[str] | None = None,
) -> str:
    """The whole imported spec. ``header``: the comment lines above it, each kept on its line
    (a line break or other control character in them, say from the source's file name, is
    written as an escape such as ``\\n``: it would otherwise end the comment and start YAML).
    ``mixed_precision``: the source computes in a mixed policy (``runtime: {mixed_precision:
    true}`` after the model, where a spec's run settings go). ``outputs``: the ids of the
    items a model with several outputs returns, in order (its ``outputs:``; none: the last item)."""
    lines = [f"# {comment_text(line, _COMMENT_LIMIT)}" if line else "#" for line in header]
    lines += ["cnnspec: 1", f"name: {scalar(name)}", f"input: {{shape: {scalar(input_shape)}}}"]
    if weights is not None:
        lines.append(f"weights: {scalar(weights)}")
    if blocks:
        lines.append("")
        lines.append("blocks:")
        for block in blocks:
            lines.append(f"  {block.name}:")
            if block.params:
                lines.append(f"    params: {scalar(block.params)}")
            lines.append("    layers:")
            lines += list_lines(block.layers, 6)
    lines.append("")
    lines.append("model:")
    lines += list_lines(model, 2)
    if outputs:
        lines += [f"outputs: {scalar(outputs)}"]
    if mixed_precision:
        lines += ["", "runtime: {mixed_precision: true}"]
    return "\n".join(lines) + "\n"
