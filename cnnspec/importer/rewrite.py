"""Rewrites of raw-operation patterns into the layer the spec language writes for them.

keras.applications' MobileNetV3 computes its hard sigmoid as ``ReLU(6.)(x + 3.) * (1. / 6.)``:
two raw operations on constants (not layers) around a ReLU layer. The spec language writes the
same function as one ``activation: hard_sigmoid`` layer, as the zoo does
(``tests/test_zoo_parity.py``'s one substitution). The pattern becomes that layer, under the
ReLU's name; any other raw operation is left for the mapping to refuse by name.
"""

from __future__ import annotations

import math
from typing import Any

from cnnspec.importer.graph import Graph, Node


def _close(values: list[Any], want: float) -> bool:
    return (
        len(values) == 1
        and isinstance(values[0], (int, float))
        and not isinstance(values[0], bool)
        and math.isclose(values[0], want, rel_tol=1e-6)
    )


def _relu6(node: Node) -> bool:
    config = node.config
    return (
        node.class_name == "ReLU"
        and not node.is_operation
        and config.get("max_value") in (6, 6.0)
        and not config.get("negative_slope")
        and not config.get("threshold")
    )


def hard_sigmoids(graph: Graph) -> tuple[Graph, dict[str, str]]:
    """The graph with every ``ReLU(6)(x + 3) * (1/6)`` as one hard-sigmoid ``Activation``;
    returns it and the dropped operations, each with the layer whose tensor stands for its
    output now (the ``+ 3``: its input; the ``* 1/6``: the new activation)."""
    replace: dict[str, Node] = {}  # relu name → its new node
    drop: set[str] = set()
    after: dict[str, str] = {}  # multiply name → relu name (its readers read the relu)
    for add in graph.nodes:
        if not (add.is_operation and add.class_name == "Add" and len(add.inputs) == 1):
            continue
        if not _close(add.constants, 3.0) or len(graph.consumers[add.name]) != 1:
            continue
        relu = graph.node(graph.consumers[add.name][0])
        if not _relu6(relu) or len(graph.consumers[relu.name]) != 1:
            continue
        mul = graph.node(graph.consumers[relu.name][0])
        if not (mul.is_operation and mul.class_name == "Multiply" and _close(mul.constants, 1 / 6)):
            continue
        replace[relu.name] = Node(
            relu.name,
            "Activation",
            {"name": relu.name, "activation": "hard_sigmoid"},
            list(add.inputs),
            relu.path,
            relu.input_shape,
            "keras.layers",
            None,
        )
        drop |= {add.name, mul.name}
        after[mul.name] = relu.name
        after[add.name] = add.inputs[0]
    if not replace:
        return graph, {}
    nodes = []
    for node in graph.nodes:
        if node.name in drop:
            continue
        node = replace.get(node.name, node)
        node.inputs = [
            after.get(i, i) if i in drop and graph.node(i).class_name == "Multiply" else i
            for i in node.inputs
        ]
        nodes.append(node)
    dropped_paths = tuple(graph.node(name).path + "." for name in drop)
    problems = [p for p in graph.problems if not (p.path + ".").startswith(dropped_paths)]
    output = after.get(graph.output, graph.output)
    rebuilt = Graph(graph.name, nodes, graph.input_name, graph.input_shape, output, problems)
    return rebuilt, after
