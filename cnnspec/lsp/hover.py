"""Hover: what the compiler decided about the thing under the cursor, as Markdown.

- a layer item: its kind, effective parameters (vars, defaults and block arguments
  substituted), output shape, parameters (trainable / non-trainable as training starts, as
  ``cnnspec inspect`` counts them) and MACs; a layer inside a block has one line per call;
- a block call or a block's definition: the signature, and the call's output and totals;
- ``repeat``/``residual``/``parallel``: output shape and totals;
- a backbone item (its kind key or fields): the spec, the cut point, output shape, its layers'
  parameters and whether they train;
- a var, block parameter or loop variable (in ``vars:`` or inside ``${…}``): its value and
  where it is set (through ``extends`` and ``use``).
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Set as AbstractSet

from cnnspec.analysis.compiled import CompiledSpec
from cnnspec.analysis.report import batched, human_count, shape_text
from cnnspec.errors import SpecPath
from cnnspec.ir import (
    Backbone,
    BlockCall,
    Item,
    Layer,
    Node,
    Parallel,
    Repeat,
    Residual,
    counted,
    layers_of,
    walk,
)
from cnnspec.layers.registry import REGISTRY, Counts
from cnnspec.lsp.locate import Cursor, TreeIndex, item_path, kind_of, value_at
from cnnspec.lsp.names import Name, names_at, signature
from cnnspec.lsp.text import in_expression, word_at
from cnnspec.spec import varchoices
from cnnspec.spec.loader import SourceDoc

#: Instances of a block-body layer listed in its hover (one per call); the rest are counted.
MAX_INSTANCES = 6


def hover_text(
    doc: SourceDoc,
    compiled: CompiledSpec | None,
    index: TreeIndex | None,
    cursor: Cursor,
    line_text: str,
    column: int,
) -> str | None:
    """Markdown for the cursor at 0-based code-point ``column`` of ``line_text``."""
    word = word_at(line_text, column)
    choices = varchoices.declared(doc.data)
    if word is not None and in_expression(line_text, column):
        name = names_at(doc, cursor.path).get(word[0])
        if name is not None:
            return name_text(name, compiled, index, choices.get(name.name) if name.what == "var" else None)
    path = cursor.path
    if len(path) >= 2 and path[0] in ("vars", varchoices.KEY) and isinstance(path[1], str):
        name = names_at(doc, ()).get(path[1])
        return name_text(name, compiled, index, choices.get(path[1])) if name is not None else None
    in_blocks = len(path) >= 2 and path[0] == "blocks" and isinstance(path[1], str)
    if in_blocks and (len(path) == 2 or (cursor.on_key and path[2] in ("params", "description"))):
        return block_text(doc, str(path[1]), index)
    if index is not None:
        found = index.at(doc, path)
        elements = _own(found[1], index) if found is not None else []
        if found is not None and elements:
            return element_text(found[0], elements, index)
    return _static_text(doc, path)


def output_text(doc: SourceDoc, index: TreeIndex | None, name: str, item: SpecPath | None) -> str:
    """A key naming a model output (``training.outputs.cnt``): the output's id, and the item
    declaring it as its own hover shows it (``item``: its path; ``None``: a block's output)."""
    found = index.at(doc, item) if index is not None and item is not None else None
    elements = _own(found[1], index) if found is not None and index is not None else []
    text = element_text(found[0], elements, index) if found is not None and elements and index else None
    return f"**output** `{name}`" + (f"\n\n{text}" if text else "")


def name_text(
    name: Name,
    compiled: CompiledSpec | None,
    index: TreeIndex | None = None,
    choices: list[object] | None = None,
) -> str:
    """A var's value (and the values its ``var_choices`` allow), a block parameter's
    declaration and the value of each call, a loop variable's range; and where each is set."""
    lines = [f"**{name.what}** `{name.name}`"]
    if name.what == "var" and compiled is not None and compiled.ir.tree is not None:
        value = next((v for v in compiled.ir.tree.vars if v.name == name.name), None)
        if value is not None:
            lines.append(f"value: `{_short(value.value)}`")
            if value.raw != value.value:
                lines.append(f"written: `{_short(value.raw)}`")
    else:
        lines.append(f"`{name.detail}`" if name.what != "implicit" else name.detail)
    if choices is not None:
        lines.append(f"one of: `{varchoices.listing(choices)}`")
    if name.what == "parameter" and index is not None and len(name.path) >= 2:
        calls = index.calls.get(str(name.path[1]), [])
        values = [f"`{call.prefix.rstrip('_')}`: {_short(call.args.get(name.name))}" for call in calls]
        if values:
            more = f", … and {len(values) - MAX_INSTANCES} more" if len(values) > MAX_INSTANCES else ""
            lines.append("in each call: " + ", ".join(values[:MAX_INSTANCES]) + more)
    if name.loc is not None:
        lines.append(f"set in {name.loc}")
    return "\n\n".join(lines)


def block_text(doc: SourceDoc, block: str, index: TreeIndex | None) -> str:
    """A block's signature and description, and each call's output and totals."""
    definition = value_at(doc, ("blocks", block))
    params = definition.get("params") if isinstance(definition, dict) else None
    lines = [f"```\n{signature(block, params)}\n```"]
    description = definition.get("description") if isinstance(definition, dict) else None
    if description:
        lines.append(str(description))
    where = doc.key_loc(("blocks", block))
    if where is not None:
        lines.append(f"defined in {where}")
    calls = index.calls.get(block, []) if index is not None else []
    if calls:
        lines.append(f"{len(calls)} call{'s' if len(calls) != 1 else ''}:")
        lines.extend(f"- {_call_line(call, index)}" for call in calls[:MAX_INSTANCES])  # type: ignore[arg-type]
        if len(calls) > MAX_INSTANCES:
            lines.append(f"- … and {len(calls) - MAX_INSTANCES} more")
    return "\n\n".join(lines)


def _call_line(call: BlockCall, index: TreeIndex) -> str:
    args = ", ".join(f"{k}={_short(v)}" for k, v in call.args.items())
    counts = _totals(call.body, index.frozen)
    return f"`{call.prefix.rstrip('_')}` ({args}) → {_shape(index, call.output)}, {_counts(counts)}"


def _own(elements: list[Item], index: TreeIndex) -> list[Item]:
    """``elements`` less those inside a backbone: their paths are in the backbone's own spec,
    so the index lists them under paths of this document that mean other text."""
    tree = index.ir.tree
    backbones = [e for e in walk(tree.body) if isinstance(e, Backbone)] if tree is not None else []
    if not backbones:
        return elements
    foreign = {id(inner) for backbone in backbones for inner in walk(backbone.body)}
    return [e for e in elements if id(e) not in foreign]


def backbone_text(backbone: Backbone, index: TreeIndex) -> str:
    """What a backbone item takes (spec, variant, cut point, vars), its output shape, its
    layers' parameters and whether they train, and where its weights come from."""
    head = f"**backbone** `{backbone.spec}`"
    if backbone.keras_name:
        head += f" ({backbone.keras_name})"
    head += f" up to `{backbone.until}`" if backbone.until else " (its whole model)"
    lines = [head]
    if backbone.raw_vars:
        lines.append("vars: " + ", ".join(f"{k}={_short(v)}" for k, v in backbone.raw_vars.items()))
    kept = [leaf for leaf in layers_of(backbone.body) if leaf.live]
    tally = _totals(backbone.body, index.frozen)
    lines.append(f"output {_shape(index, backbone.output)} · {_counts(tally)}")
    counts = tally[0]
    if not counts.params:
        state = "no parameters"
    elif not counts.trainable:
        state = "frozen when training starts"
    elif tally[1]:
        state = "partly frozen when training starts"
    elif counts.non_trainable and counts.trainable < counts.params:
        state = "trainable (its normalisation statistics are not)"
    else:
        state = "trainable"
    lines.append(f"{len(kept)} layers named `{backbone.prefix}…`, {state}")
    weights = backbone.weights
    lines.append(
        f"weights: {weights.describe() if hasattr(weights, 'describe') else weights}"
        if weights is not None
        else "weights: none (initialised at random)"
    )
    return "\n\n".join(lines)


def element_text(path: SpecPath, elements: list[Item], index: TreeIndex) -> str | None:
    first = elements[0]
    if isinstance(first, Backbone):
        return backbone_text(first, index)
    if isinstance(first, Layer):
        return layer_text([e.node for e in elements if isinstance(e, Layer)], first.raw, index.frozen)
    if isinstance(first, BlockCall):
        calls = [e for e in elements if isinstance(e, BlockCall)]
        head = block_text_for_calls(first.block, calls, index)
        return head
    if isinstance(first, (Repeat, Residual, Parallel)):
        kind = path[-1] if path and isinstance(path[-1], str) else type(first).__name__.lower()
        lines = [f"**{kind}**"]
        if isinstance(first, Repeat):
            lines[0] += f" ×{first.times}" + (f" (as `{first.var}`)" if first.var else "")
        # The merge layer a residual or parallel ends with is recorded at the combinator's own
        # path: one line per instance of the combinator, its merge said once.
        instances = [e for e in elements if isinstance(e, type(first))]
        merge = getattr(first, "merge", None)
        if isinstance(merge, Layer):
            lines[0] += f", merged by `{merge.node.kind}`"
        for element in instances[:MAX_INSTANCES]:
            output = getattr(element, "output", "")
            lines.append(f"- output {_shape(index, output)}, {_counts(_totals([element], index.frozen))}")
        if len(instances) > MAX_INSTANCES:
            lines.append(f"- … and {len(instances) - MAX_INSTANCES} more")
        return "\n\n".join(lines)
    return None


def block_text_for_calls(block: str, calls: list[BlockCall], index: TreeIndex) -> str:
    tree = index.ir.tree
    definition = tree.blocks.get(block) if tree is not None else None
    params = (
        {
            n: (p.type if p.required else {"type": p.type, "default": p.default})
            for n, p in definition.params.items()
        }
        if definition is not None
        else {}
    )
    lines = [f"**block call** `{block}`", f"```\n{signature(block, params)}\n```"]
    if definition is not None and definition.description:
        lines.append(definition.description)
    for call in calls[:MAX_INSTANCES]:
        lines.append(f"- {_call_line(call, index)}")
    if len(calls) > MAX_INSTANCES:
        lines.append(f"- … and {len(calls) - MAX_INSTANCES} more")
    if definition is not None and definition.loc is not None:
        lines.append(f"defined in {definition.loc}")
    return "\n\n".join(lines)


def layer_text(
    nodes: list[Node], raw: dict[str, object] | None = None, frozen: AbstractSet[str] = frozenset()
) -> str:
    """A layer's kind, effective parameters (those written first, then the defaults), shape and
    counts (those in ``frozen``, frozen when training starts: non-trainable); one line per
    instance when a block call or repeat made several."""
    node = nodes[0]
    kind = REGISTRY.get(node.kind)
    lines = [f"**{node.kind}** `{node.name}`" + (f" — {kind.doc}" if kind is not None and kind.doc else "")]
    written = [k for k in node.params if raw is not None and k in raw]
    params = "\n".join(f"{k}: {_short(node.params[k])}" for k in written)
    if params:
        lines.append(f"```yaml\n{params}\n```")
    defaults = ", ".join(f"{k}={_short(v)}" for k, v in node.params.items() if k not in written)
    if defaults:
        lines.append(f"defaults: {defaults}")
    lines.append(_node_line(node, frozen))
    if len(nodes) > 1:
        lines.append(f"{len(nodes)} instances (one per block call or repeat iteration):")
        for other in nodes[:MAX_INSTANCES]:
            changed = {k: v for k, v in other.params.items() if node.params.get(k) != v}
            extra = " (" + ", ".join(f"{k}={_short(v)}" for k, v in changed.items()) + ")" if changed else ""
            lines.append(f"- `{other.name}`{extra}: {_node_line(other, frozen)}")
        if len(nodes) > MAX_INSTANCES:
            lines.append(f"- … and {len(nodes) - MAX_INSTANCES} more")
    return "\n\n".join(lines)


def _node_line(node: Node, frozen: AbstractSet[str]) -> str:
    return f"output {shape_text(batched(node.shape))} · {_counts(_tally([node], frozen))}"


def _counts(tally: tuple[Counts, int]) -> str:
    """``(counts, frozen)`` of :func:`_tally` as text, in the words of ``cnnspec inspect``."""
    counts, frozen = tally
    text = f"{counts.params:,} params"
    if counts.params:
        text += f" ({counts.trainable:,} trainable, {counts.non_trainable:,} non-trainable"
        text += f", of which {frozen:,} frozen)" if frozen else ")"
    return f"{text} · {human_count(counts.macs)} MACs"


def _tally(nodes: Iterable[Node], frozen: AbstractSet[str]) -> tuple[Counts, int]:
    """The counts of ``nodes`` as training starts, as ``cnnspec inspect`` counts them: every
    weight of a layer in ``frozen`` non-trainable; and how many of those weights would train
    but for that."""
    listed = list(nodes)
    return counted(listed, frozen), sum(node.counts.trainable for node in listed if node.name in frozen)


def _totals(items: Iterable[Item], frozen: AbstractSet[str]) -> tuple[Counts, int]:
    return _tally((leaf.node for leaf in layers_of(list(items)) if leaf.live), frozen)


def _shape(index: TreeIndex, name: str) -> str:
    if name == index.ir.input_name:
        return shape_text(batched(index.ir.input_shape))
    node = index.nodes.get(name)
    return shape_text(batched(node.shape)) if node is not None else "?"


def _static_text(doc: SourceDoc, path: SpecPath) -> str | None:
    """Without a compiled tree (the spec has errors): the kind or block signature only."""
    item = item_path(path)
    kind = kind_of(doc, item) if item is not None else None
    if kind is None:
        return None
    blocks = doc.data.get("blocks")
    if isinstance(blocks, dict) and kind in blocks:
        return block_text(doc, kind, None)
    registered = REGISTRY.get(kind)
    if registered is not None:
        params = ", ".join(p.name for p in registered.params)
        return f"**{kind}** — {registered.doc}\n\nparameters: {params or 'none'}"
    return None


def _short(value: object) -> str:
    text = str(value)
    return text if len(text) <= 80 else text[:77] + "..."
