"""Rewrites of raw-operation patterns into the layer the spec language writes for them.

keras.applications' MobileNetV3 computes its hard sigmoid as ``ReLU(6.)(x + 3.) * (1. / 6.)``:
two raw operations on constants (not layers) around a ReLU layer. The spec language writes the
same function as one ``activation: hard_sigmoid`` layer, as the zoo does
(``tests/test_zoo_parity.py``'s one substitution). The pattern becomes that layer, under the
ReLU's name; any other raw operation is left for the mapping to refuse by name.
"""

from __future__ import annotations

from cnnspec.importer.graph import Graph, Node
from cnnspec.layers.reverse import HARD_SIGMOID_CLASS, HARD_SIGMOID_CONFIG, Step, is_hard_sigmoid


def _step(node: Node) -> Step:
    return Step(node.class_name, node.is_operation, tuple(node.constants), node.config)


def hard_sigmoids(graph: Graph) -> tuple[Graph, dict[str, str]]:
    """The graph with every ``ReLU(6)(x + 3) * (1/6)`` as one hard-sigmoid ``Activation``;
    returns it and the dropped operations, each with the layer whose tensor stands for its
    output now (the ``+ 3``: its input; the ``* 1/6``: the new activation)."""
    replace: dict[str, Node] = {}  # relu name → its new node
    drop: set[str] = set()
    after: dict[str, str] = {}  # multiply name → relu name (its readers read the relu)
    scales: set[str] = set()
    for add in graph.nodes:
        if len(add.inputs) != 1 or len(graph.consumers[add.name]) != 1:
            continue
        relu = graph.node(graph.consumers[add.name][0])
        if len(graph.consumers[relu.name]) != 1:
            continue
        mul = graph.node(graph.consumers[relu.name][0])
        if not is_hard_sigmoid(_step(add), _step(relu), _step(mul)):
            continue
        if any(value is not None for op in (add, mul) for value in op.call_kwargs.values()):
            continue  # an operation called with a keyword is another computation: left to refuse
        # the ReLU's dtype policy stays with the layer that stands for it: a mixed-precision
        # model's policies are read from every layer (cnnspec.importer.precision)
        policy = {"dtype": relu.config["dtype"]} if "dtype" in relu.config else {}
        replace[relu.name] = Node(
            relu.name,
            HARD_SIGMOID_CLASS,
            {"name": relu.name, **policy, **HARD_SIGMOID_CONFIG},
            list(add.inputs),
            relu.path,
            relu.input_shape,
            "keras.layers",
            None,
            call_kwargs=relu.call_kwargs,  # still checked (mapping): a fixed argument is refused
        )
        drop |= {add.name, mul.name}
        scales.add(mul.name)
        after[mul.name] = relu.name
        after[add.name] = add.inputs[0]
    if not replace:
        return graph, {}
    nodes = []
    for node in graph.nodes:
        if node.name in drop:
            continue
        node = replace.get(node.name, node)
        node.inputs = [after[i] if i in scales else i for i in node.inputs]
        nodes.append(node)
    dropped_paths = tuple(graph.node(name).path + "." for name in drop)
    problems = [p for p in graph.problems if not (p.path + ".").startswith(dropped_paths)]
    return graph.rebuilt(nodes, problems, [after.get(output, output) for output in graph.outputs]), after
