"""The intermediate representation: a resolved, typed layer graph.

Resolution expands blocks, ``repeat``, ``residual`` and ``parallel`` into plain layer
:class:`Node` objects in topological order; every node already carries its output shape and
counts, computed from the registry's rules, and the location of the spec item it came from.
Both back ends (the Keras builder and the Python emitter) read only this.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cnnspec.errors import Loc
from cnnspec.layers.registry import Counts, Shape

INPUT = "input"


@dataclass
class Node:
    """One layer of the resolved model."""

    name: str
    kind: str
    params: dict[str, Any]
    inputs: tuple[str, ...]
    shape: Shape | None
    counts: Counts
    loc: Loc | None = None
    path: str = ""
    group: tuple[str, ...] = ()
    input_shapes: tuple[Shape, ...] = ()


@dataclass
class ModelIR:
    """A resolved model: its input, layers, outputs and the training sections as written."""

    name: str
    description: str
    input_name: str
    input_shape: Shape
    nodes: list[Node]
    outputs: tuple[str, ...]
    augmentation: list[Node] = field(default_factory=list)
    sections: dict[str, Any] = field(default_factory=dict)

    def node(self, name: str) -> Node:
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(name)

    def shape_of(self, name: str) -> Shape | None:
        if name == self.input_name:
            return self.input_shape
        return self.node(name).shape

    @property
    def output_shapes(self) -> list[Shape | None]:
        return [self.shape_of(name) for name in self.outputs]

    @property
    def totals(self) -> Counts:
        total = Counts()
        for node in self.nodes:
            total = total + node.counts
        return total
