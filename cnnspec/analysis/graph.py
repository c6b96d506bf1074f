"""Text renderings of the layer graph (Graphviz DOT and Mermaid), no TensorFlow needed."""

from __future__ import annotations

import json

from cnnspec.ir import ModelIR


def _shape(shape: tuple[int, ...] | None) -> str:
    return "?" if shape is None else "×".join(map(str, shape))


def to_dot(ir: ModelIR) -> str:
    """A DOT digraph: one box per layer with its kind and output shape."""
    lines = [
        f"digraph {json.dumps(ir.name)} {{",
        "  rankdir=TB;",
        '  node [shape=box, fontname="Helvetica"];',
    ]
    lines.append(f"  {json.dumps(ir.input_name)} [label={json.dumps(f'input {_shape(ir.input_shape)}')}];")
    for node in ir.nodes:
        label = f"{node.name}\\n{node.kind} {_shape(node.shape)}"
        lines.append(f'  {json.dumps(node.name)} [label="{label}"];')
        for source in node.inputs:
            lines.append(f"  {json.dumps(source)} -> {json.dumps(node.name)};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def to_mermaid(ir: ModelIR) -> str:
    """A Mermaid flowchart of the same graph (renders on GitHub)."""
    ids = {ir.input_name: "n0"}
    lines = ["flowchart TD", f'  n0["input {_shape(ir.input_shape)}"]']
    for index, node in enumerate(ir.nodes, start=1):
        ids[node.name] = f"n{index}"
        lines.append(f'  n{index}["{node.name}<br/>{node.kind} {_shape(node.shape)}"]')
        for source in node.inputs:
            lines.append(f"  {ids[source]} --> n{index}")
    return "\n".join(lines) + "\n"
