"""Freeze/unfreeze patterns in the editor: where they are written, which names they may be, and
what declares each name.

A pattern (:mod:`cnnspec.analysis.freezing`) is written in ``training.freeze``,
``training.unfreeze`` and each ``training.phases[i].freeze``/``.unfreeze``, and as a key of
``training.learning_rate_scale`` and of each phase's (``{pattern: factor}``). The names it may be
are those of :class:`cnnspec.analysis.freezing.Patterns` (its own index, never re-derived here):
the layers' names, the block-instance and hierarchical group names (``stem``, ``conv4.bottleneck_2``,
``st``, ``st[1]``) and one dotted name per layer inside a group (``stem.conv2d_1``). The
resolved model (:class:`cnnspec.ir.ModelIR`) also says what declares each name: a layer's
location, a group's block call, backbone or the item whose id starts it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from cnnspec.analysis.freezing import GLOB_CHARS, ITERATION, Patterns, hierarchical_names, name_prefix
from cnnspec.errors import Loc, SpecError, SpecPath
from cnnspec.ir import Backbone, BlockCall, Layer, ModelIR, Node, walk
from cnnspec.lsp.locate import kind_of, value_at
from cnnspec.spec.loader import SourceDoc
from cnnspec.spec.sections import RATE_SCALE

#: The keys whose values are lists of patterns.
PATTERN_KEYS = ("freeze", "unfreeze")
#: The keys whose values are mappings keyed by patterns.
PATTERN_MAPS = (RATE_SCALE,)


def _in_training(head: SpecPath, keys: tuple[str, ...]) -> bool:
    """``head`` is ``training.KEY`` or ``training.phases[i].KEY`` for one of ``keys``."""
    if len(head) == 2:
        return head[0] == "training" and head[1] in keys
    return (
        len(head) == 4 and head[:2] == ("training", "phases") and isinstance(head[2], int) and head[3] in keys
    )


def pattern_list(path: SpecPath) -> SpecPath | None:
    """The freeze/unfreeze list ``path`` is (or is an element of): ``training.freeze``,
    ``training.phases[2].unfreeze``; ``None`` elsewhere."""
    for end in (len(path), len(path) - 1):
        if _in_training(path[:end], PATTERN_KEYS):
            return path[:end]
    return None


def pattern_at(doc: SourceDoc, path: SpecPath, on_key: bool = False) -> str | None:
    """The pattern written at ``path``: an element of a freeze/unfreeze list, or (``on_key``:
    the cursor is on the key of ``path``) a key of a ``learning_rate_scale``; else ``None``."""
    if on_key:
        found = len(path) >= 3 and isinstance(path[-1], str) and _in_training(path[:-1], PATTERN_MAPS)
        return str(path[-1]) if found and doc.key_locs.get(path) is not None else None
    if len(path) < 3 or not isinstance(path[-1], int) or pattern_list(path) != path[:-1]:
        return None
    value = value_at(doc, path)
    return value if isinstance(value, str) else None


def written_patterns(doc: SourceDoc) -> Iterator[tuple[SpecPath, str, Loc]]:
    """Every pattern written in the document: its path, its text and its place (a key's, for
    a pattern that keys a mapping)."""
    heads: list[SpecPath] = [("training",)]
    phases = value_at(doc, ("training", "phases"))
    count = len(phases) if isinstance(phases, list) else 0
    heads += [("training", "phases", index) for index in range(count)]
    for head in heads:
        for key in PATTERN_KEYS:
            items = value_at(doc, (*head, key))
            for index, pattern in enumerate(items if isinstance(items, list) else ()):
                loc = doc.loc((*head, key, index))
                if isinstance(pattern, str) and loc is not None:
                    yield (*head, key, index), pattern, loc
        for key in PATTERN_MAPS:
            mapping = value_at(doc, (*head, key))
            for pattern in mapping if isinstance(mapping, dict) else ():
                loc = doc.key_locs.get((*head, key, pattern))
                if isinstance(pattern, str) and loc is not None:
                    yield (*head, key, pattern), pattern, loc


def is_glob(pattern: str) -> bool:
    """Whether ``pattern`` has glob characters (as :meth:`Patterns.match` reads them)."""
    return bool(GLOB_CHARS & set(pattern))


@dataclass(frozen=True)
class Candidate:
    """A name a pattern may be: what it is (``layer`` or ``group``), a detail line, the layers
    it covers, and its rank (0: the model's own items, 1: a layer inside a group, 2: a layer's
    dotted name, which says what its plain name says)."""

    name: str
    what: str
    detail: str
    layers: int
    rank: int


class PatternNames:
    """The names the patterns of a model may be, each with what it is and what declares it."""

    def __init__(self, ir: ModelIR) -> None:
        self.ir = ir
        self.patterns = Patterns(ir)
        self.nodes = {node.name: node for node in ir.nodes}
        #: The dotted name of one layer inside a group (``stem.conv2d_1``) → that layer.
        self.aliases: dict[str, str] = {}
        #: A group's name → its elements (``st[1].inner`` → (``st[1]``, ``inner``)).
        self.groups: dict[str, tuple[str, ...]] = {}
        #: The ids of carrying repeats, whose own name covers every iteration (``st``).
        self.repeats: set[str] = set()
        for node in ir.nodes:
            names = hierarchical_names(node)
            dotted = ".".join(node.group)
            if names and names[-1] != dotted:  # freezing appends the layer's own dotted name last
                self.aliases[names.pop()] = node.name
            for k, element in enumerate(node.group):
                self.groups.setdefault(".".join(node.group[: k + 1]), node.group[: k + 1])
                found = ITERATION.fullmatch(element)
                if found:
                    self.repeats.add(".".join((*node.group[:k], found["id"])))
        #: The block calls and backbones of the tree by the name prefix of their layers.
        self.containers: dict[str, BlockCall | Backbone] = {}
        #: Each layer's spec path (its kind key's, in the file that writes it).
        self.layer_paths: dict[str, SpecPath] = {}
        tree = ir.tree
        for element in walk([*tree.body, *tree.augmentation]) if tree is not None else ():
            if isinstance(element, (BlockCall, Backbone)) and element.prefix:
                self.containers.setdefault(element.prefix, element)
            elif isinstance(element, Layer):
                self.layer_paths.setdefault(element.node.name, element.path)

    def candidates(self) -> list[Candidate]:
        """Every name of the index, in model order, each with what it is."""
        return [self.candidate(name, covered) for name, covered in self.patterns.index.items()]

    def candidate(self, name: str, covered: list[str]) -> Candidate:
        """What ``name`` (covering the layers ``covered``) is, as a completion shows it."""
        node = self.layer(name)
        if node is not None:
            where = f" in {'.'.join(node.group)}" if node.group else ""
            if name == node.name:
                return Candidate(name, "layer", f"{node.kind} layer{where}", 1, 1 if node.group else 0)
            return Candidate(name, "layer", f"{node.kind} layer {node.name}", 1, 2)
        count = f"{len(covered)} layer{'s' if len(covered) != 1 else ''}"
        rank = 0 if "." not in name and "[" not in name else 1
        return Candidate(name, "group", f"{self.group_kind(name)}, {count}", len(covered), rank)

    def layer(self, name: str) -> Node | None:
        """The layer ``name`` names: its own name or its dotted one (``/`` for ``.`` too)."""
        dotted = name.replace("/", ".")
        layer = self.nodes.get(name) or self.nodes.get(self.aliases.get(name) or self.aliases.get(dotted, ""))
        return layer if layer is not None and name not in self.groups else None

    def group_kind(self, name: str) -> str:
        """What the group ``name`` is: a block call, a backbone, a repeat or one iteration of it,
        or another item with an id (a residual, a parallel, a plain repeat)."""
        if name in self.repeats:
            return "repeat (every iteration)"
        elements = self.groups.get(name, ())
        found = ITERATION.fullmatch(elements[-1]) if elements else None
        if found:
            return f"iteration {found['index']} of repeat {found['id']}"
        container = self.container(name)
        if isinstance(container, BlockCall):
            return f"call of block {container.block}"
        if isinstance(container, Backbone):
            return f"backbone {container.spec}"
        return "item"

    def container(self, name: str) -> BlockCall | Backbone | None:
        """The block call or backbone whose layers the group ``name`` is."""
        elements = self.groups.get(name)
        if not elements:
            return None
        return self.containers.get("".join(name_prefix(element) for element in elements))

    def match(self, pattern: str) -> list[str]:
        """The layers ``pattern`` covers (:meth:`Patterns.match`)."""
        return self.patterns.match(pattern)

    def declarations(self, doc: SourceDoc, pattern: str) -> list[Loc]:
        """Where what ``pattern`` names is declared: a layer's place (its ``id:``, else its
        kind), a group's call, backbone or item (:meth:`group_loc`); for a glob, the model
        item (or layer) of each layer it covers, once each, in model order."""
        dotted = pattern.replace("/", ".")
        if not is_glob(pattern) or pattern in self.patterns.index or dotted in self.patterns.index:
            node = self.layer(pattern)
            if node is not None:
                loc = self.layer_loc(doc, node)
                return [loc] if loc is not None else []
            name = pattern if pattern in self.groups else dotted
            loc = self.group_loc(doc, name) if name in self.groups or name in self.repeats else None
            return [loc] if loc is not None else []
        found: list[Loc] = []
        for layer in self.match(pattern):
            node = self.nodes[layer]
            loc = self.group_loc(doc, node.group[0]) if node.group else self.layer_loc(doc, node)
            if loc is not None and loc not in found:
                found.append(loc)
        return found

    def layer_loc(self, doc: SourceDoc, node: Node) -> Loc | None:
        """Where the layer ``node`` is declared: its item's ``id:`` when it has one (the name
        a pattern gives it), else where the resolver located it (its kind's value)."""
        path = self.layer_paths.get(node.name)
        if path is not None and len(path) >= 2 and doc.locs.get(path) == node.loc:
            # (a path of this document: a backbone's layers have paths of the backbone's spec)
            written = value_at(doc, (*path[:-1], "id"))
            if isinstance(written, str):
                return doc.locs.get((*path[:-1], "id"), node.loc)
        return node.loc

    def group_loc(self, doc: SourceDoc, name: str) -> Loc | None:
        """Where the group ``name`` is declared: its block call or backbone item (the item's
        ``id:`` when it is written in ``doc``, else its kind key; a call in another file, a
        block library's or a backbone's: the call there), else the item whose id its name
        follows (:func:`cnnspec.lsp.navigation.find_reference`: a repeat, a residual, …)."""
        container = self.container(name)
        if container is not None and len(container.path) >= 2:
            item, kind = container.path[:-1], container.path[-1]
            # A call's path is in the file that writes it: this document's only where its
            # location is this document's (a backbone's calls are paths of the backbone's spec).
            own = isinstance(container, Backbone) or container.loc in (None, doc.locs.get(container.path))
            if own and kind_of(doc, item) == kind:
                written = value_at(doc, (*item, "id"))
                loc = doc.loc((*item, "id")) if isinstance(written, str) else doc.key_loc((*item, kind))
                if loc is not None:
                    return loc
            if isinstance(container, BlockCall) and container.loc is not None:
                return container.loc
        from cnnspec.lsp.navigation import find_reference  # (navigation imports this module)

        return find_reference(doc, ("outputs",), name)


#: The last document resolved for its names, and its model (``None``: it did not resolve).
_LAST: list[tuple[SourceDoc, ModelIR | None]] = []


def model_ir(doc: SourceDoc | None, compiled: ModelIR | None = None) -> ModelIR | None:
    """The model of ``doc``: ``compiled`` when given (the compiled spec of that text), else
    ``doc`` resolved (TF-free, milliseconds; a spec whose training section is wrong, a pattern
    that matches nothing while it is typed, still has its model). ``None`` when it does not
    resolve. The last document's model is kept: completion asks once per keystroke."""
    if compiled is not None or doc is None:
        return compiled
    if _LAST and _LAST[0][0] is doc:
        return _LAST[0][1]
    from cnnspec.spec.resolve import resolve

    try:
        ir: ModelIR | None = resolve(doc)
    except SpecError:
        ir = None
    _LAST[:] = [(doc, ir)]
    return ir
