"""``cnnspec import``: a saved Keras model → a readable spec.

source (read the configuration) → graph (check it) → nested (models inside it in line)
→ mapping (each layer → a registry kind)
→ structure (combinators) → fold (blocks and repeats) → writer (YAML). Only ``keras:NAME`` and
``--weights`` import Keras; the rest is JSON in, text out.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass, field
from typing import Any

from cnnspec.analysis.report import DEFAULT_MAX_PARAMS
from cnnspec.errors import Diagnostic, SpecError
from cnnspec.importer.backbones import Candidate, as_backbones, candidates, same_model
from cnnspec.importer.fold import fold
from cnnspec.importer.graph import UNNAMED, Graph, read_graph
from cnnspec.importer.items import Item, source_names
from cnnspec.importer.losses import classification_loss_note, regression_loss_note
from cnnspec.importer.mapping import map_layers
from cnnspec.importer.nested import inline_models, nested_models
from cnnspec.importer.precision import mixed_precision_note
from cnnspec.importer.rewrite import hard_sigmoids
from cnnspec.importer.source import Source, import_error, named, read_source, unwrapped
from cnnspec.importer.structure import Structurer, spec_id
from cnnspec.importer.verify import align
from cnnspec.importer.writer import spec_text
from cnnspec.layers.reverse import Reversed, shown
from cnnspec.spec.loader import NODE_BUDGET
from cnnspec.spec.schema import MAX_NAME


@dataclass
class Imported:
    """An imported spec and what the import found."""

    text: str
    name: str
    source: Source
    source_layers: int
    blocks: list[str] = field(default_factory=list)
    names: dict[str, str] = field(default_factory=dict)  # source layer → the spec model's layer
    #: where the weights file keeps a source layer (``base/conv1`` in a nested model, else its
    #: name) → the spec model's layer: what ``--weights`` relabels
    stored: dict[str, str] = field(default_factory=dict)
    rewritten: int = 0  # raw-op hard sigmoids written as one activation layer
    params: int = 0  # the spec model's parameters (trainable and not)
    weights_file: str | None = None  # what the spec's `weights:` names; None: no such key
    #: what of the source the spec does not keep or changes (an input dtype, a fixed batch size,
    #: dict inputs or outputs, mixed precision), each with its effect: the report's notes
    notes: list[str] = field(default_factory=list)
    mixed_precision: bool = False  # the spec has runtime: {mixed_precision: true}
    #: the spec compiled (what a backbone item's spec is checked against)
    compiled: Any = field(default=None, repr=False, compare=False)

    @property
    def lines(self) -> int:
        return len(self.text.splitlines())


def import_source(
    source: str | Source,
    *,
    weights_file: str | None = None,
    folding: bool = True,
    max_params: int = DEFAULT_MAX_PARAMS,
) -> Imported:
    """Import SOURCE (a ``.keras`` file, a JSON config or ``keras:NAME``) as spec text.

    The spec is compiled and checked layer by layer against the source before it is returned
    (:mod:`cnnspec.importer.verify`); should a folded spec not reproduce the source, the
    unfolded one is used. ``weights_file``: the name the spec's top-level ``weights:`` refers to
    (the caller writes it). ``folding``: find blocks and repeats. ``max_params``: a model with
    more parameters is refused (as ``validate --max-params``). A model without parameters has
    no weights to carry: its spec gets no ``weights:`` (``Imported.weights_file`` is None).
    """
    read = source if isinstance(source, Source) else read_source(source)
    try:
        return _import(read, weights_file, folding, max_params)
    except SpecError as exc:
        raise named(unwrapped(exc) if read.bare else exc, read.label) from None


def _import(read: Source, weights_file: str | None, folding: bool, max_params: int) -> Imported:
    try:
        graph = inline_models(read_graph(read.config))
    except RecursionError:
        raise import_error("the configuration is nested too deeply", "$.config.layers") from None
    layers = sum(not n.is_operation for n in graph.nodes)
    graph, aliases = hard_sigmoids(graph)
    mapped = map_layers(graph)
    name = _model_name(graph.name)
    precision = mixed_precision_note(graph, mapped)
    mixed = precision is not None
    extra = [precision] if precision is not None else []  # (notes of the model beside its graph's)
    notes = [*graph.notes, *extra]
    try:
        chosen = flat = _attempt(
            read, graph, mapped, name, weights_file, False, layers, max_params, mixed, notes
        )  # fmt: skip
    except RecursionError:
        # the structurer writes deep forks flat (MAX_COMBINATOR_DEPTH), so this is a last line:
        # a graph whose items still nest past Python's recursion limit is said, not crashed on
        raise import_error(
            "the model's layers nest too deeply to write as a spec",
            "$.config.layers",
            hint="the spec language nests items at most 100 levels deep",
        ) from None
    if folding:
        try:
            folded = _attempt(read, graph, mapped, name, weights_file, True, layers, max_params, mixed, notes)
        except (SpecError, RecursionError):
            folded = None  # a fold that does not reproduce the source (or nests too deep) is not written
        # folding that finds nothing worth naming makes a longer spec, not a more readable one
        if folded is not None and folded.lines < flat.lines:
            chosen = folded
        # (--no-fold writes every layer: a nested zoo model too)
        options = candidates(nested_models(read_graph(read.config)))
        if options:
            chosen = _with_backbones(
                read, options, chosen, graph, name, weights_file, layers, max_params, mixed, extra
            )
    chosen.rewritten = len(aliases) // 2
    chosen.mixed_precision = mixed
    for operation, layer in aliases.items():
        if layer in chosen.names:  # a dropped operation's output is that layer's now
            chosen.names[operation] = chosen.names[layer]
    return chosen


def _with_backbones(
    read: Source,
    options: dict[str, list[Candidate]],
    inline: Imported,
    graph: Graph,
    name: str,
    weights_file: str | None,
    layers: int,
    max_params: int,
    mixed: bool,
    extra_notes: list[str],
) -> Imported:
    """``inline`` with each nested model that is a zoo model written as a backbone item
    (:mod:`cnnspec.importer.backbones`): the first candidate of each whose spec compiles to
    ``inline``'s model; ``inline`` itself where none does. ``extra_notes``: the notes of the
    model beside its graph's (mixed precision)."""
    kept: dict[str, Candidate] = {}
    best = inline
    for model, tries in options.items():
        for candidate in tries:
            trial = {**kept, model: candidate}
            try:
                kept_graph, _ = hard_sigmoids(inline_models(read_graph(read.config), keep=trial))
                mapped = map_layers(kept_graph)
                attempt = _attempt(
                    read, kept_graph, mapped, name, weights_file, True, layers, max_params, mixed,
                    [*kept_graph.notes, *extra_notes], backbones=trial, reference=(inline, graph),
                )  # fmt: skip
            except (SpecError, RecursionError):
                continue  # not this zoo model (or not with these vars): the next, else in line
            kept, best = trial, attempt
            break
    return best if best.lines < inline.lines else inline


def _model_name(source_name: str) -> str:
    """The spec's ``name:``: the source model's as an id, at most :data:`MAX_NAME` characters
    (its start); a name of no ASCII letter or digit (``модель`` would be ``______``) is written
    as the graph names an unnamed model."""
    name = spec_id(source_name).lower()[:MAX_NAME]
    return name if re.search(r"[a-z0-9]", name) else UNNAMED


def _attempt(
    read: Source,
    graph: Graph,
    mapped: dict[str, Reversed],
    name: str,
    weights_file: str | None,
    folding: bool,
    layers: int,
    max_params: int,
    mixed: bool = False,
    notes: list[str] | None = None,
    backbones: dict[str, Candidate] | None = None,
    reference: tuple[Imported, Graph] | None = None,
) -> Imported:
    """One spec of the graph (``folding``: with blocks), compiled and checked against the
    source; with ``backbones``, those nested models written as zoo backbone items and the spec
    checked against ``reference`` instead (the in-line import and its graph)."""
    from cnnspec.analysis.passes import compile_text

    structurer = Structurer(graph, mapped)
    items = structurer.items()
    outputs = structurer.output_ids(items)  # (a model with several outputs; else none)
    blocks = fold(items, outputs) if folding else []
    if backbones:
        items, blocks = as_backbones(items, blocks, backbones)
    header = [
        f"Imported by `cnnspec import` from {read.path.name if read.path else read.label}: "
        f"{layers} Keras layers"
        + (f", {len(blocks)} block{'s' if len(blocks) > 1 else ''}." if blocks else "."),
    ]
    # the saved loss is said of the outputs by their ids (which folding may change)
    losses = [note(read.config, graph, outputs) for note in (regression_loss_note, classification_loss_note)]
    notes = [*(notes or []), *(loss for loss in losses if loss is not None)]
    # what the spec does not keep of the source, in the file too (the report is gone later)
    for note in notes:
        header += textwrap.wrap(f"Note: {note}", NOTE_WIDTH, subsequent_indent="  ")
    # checked without the weights key: the file it names is written after the check
    checked = spec_text(
        name, graph.input_shape, blocks, items, header, mixed_precision=mixed, outputs=outputs
    )
    try:
        # compiled from text no file holds: its errors are said of the source layers instead
        compiled = compile_text(checked, COMPILED_AS, max_params=max_params)
    except SpecError as exc:
        raise SpecError([_of_source(d, items, graph) for d in exc.errors or exc.diagnostics]) from None
    if reference is None:
        names = align(compiled, items, graph)
    else:  # the source's layers are the in-line import's: its graph knows where they are stored
        names = same_model(compiled, reference[0].compiled, reference[0].names)
        graph = reference[1]
    params = compiled.ir.totals.params
    # a weights file of a model without weights holds no layer the spec's model could load
    # (build refuses it): no weights to carry, no weights key
    carried = weights_file if params else None
    text = (
        spec_text(
            name, graph.input_shape, blocks, items, header, carried, mixed_precision=mixed, outputs=outputs
        )
        if carried
        else checked
    )
    blocks_found = [b.name for b in blocks]
    stored = {graph.node(source).stored or source: layer for source, layer in names.items()}
    return Imported(
        text,
        name,
        read,
        layers,
        blocks_found,
        names,
        stored,
        params=params,
        weights_file=carried,
        notes=notes,
        compiled=compiled,
    )


#: The width of a note's comment lines at the top of the imported spec.
NOTE_WIDTH = 96
#: The name the imported spec is compiled under (no such file: it is never in a message).
COMPILED_AS = "<imported spec>"
_TOP_ITEM = re.compile(r"^model\[(\d+)\]")


def _of_source(diagnostic: Diagnostic, items: list[Item], graph: Graph) -> Diagnostic:
    """A compile error in the imported spec, said of the source layer that produced the item
    (its JSON path), or of the configuration where no one layer did."""
    spec_path = diagnostic.path or "<root>"
    match = _TOP_ITEM.match(diagnostic.path)
    layers = source_names(items[int(match.group(1))]) if match and int(match.group(1)) < len(items) else []
    if layers:
        node = graph.node(layers[0])
        what = f"layer {shown(node.name)} ({shown(node.class_name, str)})"
        if len(layers) > 1:
            what = f"the item written for layers {shown(layers[0])} … {shown(layers[-1])}"
        where = node.path
    elif diagnostic.path.startswith("input"):
        node = graph.node(graph.input_name)
        what, where = f"the model input {shown(node.name)}", f"{node.path}.config.batch_shape"
    elif diagnostic.path.startswith("outputs"):  # (a model with several outputs)
        what, where = "the model's outputs", "$.config.output_layers"
    else:
        what, where = "the model", "$.config.layers"
    hint = diagnostic.hint
    if diagnostic.message.startswith(f"expected at most {NODE_BUDGET:,} YAML nodes"):
        # (the loader's hint is for a spec's author; the importer wrote this spec, a layer an item)
        hint = (
            "import writes one spec item per layer (a few YAML nodes each), and a spec holds at most "
            f"{NODE_BUDGET:,} YAML nodes; this model has {len(graph.nodes):,} layers"
        )
    return Diagnostic(
        f"{what} does not import as a valid spec item: {spec_path}: {diagnostic.message}",
        None,
        where,
        "import",
        hint,
    )


__all__ = ["Imported", "import_source"]
