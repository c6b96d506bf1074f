"""The importer's own tree of spec items, before it is written as YAML.

Mirrors the spec language: a layer, a ``residual``, a ``parallel``, a block call and a
``repeat``. Values are plain spec values or :class:`Expr` (``${…}`` text).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Expr:
    """A ``${…}`` expression written in a block body (a block parameter or loop variable)."""

    text: str


@dataclass
class Layer:
    kind: str
    params: dict[str, Any]
    source: str  # the source layer's name
    id: str | None = None
    inputs: list[str] | None = None
    trainable: bool = True  # False: the source froze the layer (the item's `trainable: false`)


@dataclass
class Residual:
    body: list[Item]
    shortcut: list[Item] | None  # None: identity (the spec's default `auto`)
    merge: str = "add"
    activation: Any = None
    sources: list[str] = field(default_factory=list)  # merge and activation layer names
    id: str | None = None
    #: Write `shortcut: identity`, not the default `auto`: the source's shapes are not saved, and
    #: where the body's output differs from the entry (a broadcast) `auto` would project.
    identity: bool = False


@dataclass
class Parallel:
    branches: list[list[Item]]
    merge: str = "concat"
    activation: Any = None
    sources: list[str] = field(default_factory=list)
    id: str | None = None


@dataclass
class Call:
    block: str
    args: dict[str, Any]
    id: str | None = None
    sources: list[str] = field(default_factory=list)


@dataclass
class Repeat:
    times: Any
    layers: list[Item]
    var: str | None = None
    id: str | None = None
    sources: list[str] = field(default_factory=list)  # every iteration's source layers


Item = Layer | Residual | Parallel | Call | Repeat


@dataclass
class Block:
    name: str
    params: dict[str, str]  # name → type
    layers: list[Item]


def source_names(item: Item) -> list[str]:
    """Every source layer name an item stands for, in order."""
    if isinstance(item, Layer):
        return [item.source]
    if isinstance(item, Residual):
        inner = [n for i in item.body for n in source_names(i)]
        inner += [n for i in item.shortcut or [] for n in source_names(i)]
        return inner + item.sources
    if isinstance(item, Parallel):
        return [n for b in item.branches for i in b for n in source_names(i)] + item.sources
    if isinstance(item, Call):
        return list(item.sources)
    return list(item.sources) or [n for i in item.layers for n in source_names(i)]
