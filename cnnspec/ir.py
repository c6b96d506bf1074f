"""The intermediate representation: a structured tree and the flat layer graph it lowers to.

Resolution expands blocks, ``repeat``, ``residual`` and ``parallel`` into plain layer
:class:`Node` objects in topological order; every node already carries its name, output shape
and counts, computed from the registry's rules, and the location of the spec item it came
from. The flat :class:`ModelIR` is what static analysis and the Keras builder read.

While it resolves, the resolver also records a :class:`ModelTree` that keeps the user's
structure: block calls with their bound arguments (values and the text as written), repeat
loops with their variable and every iteration, residual and parallel nodes, conditional
items, and plain :class:`Layer` leaves that point at the :class:`Node` they produced, so names
and shapes are decided once, in the node. :func:`lower` flattens the tree into the same
:class:`ModelIR`; the Python emitter reads the tree.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import Any, Union

from cnnspec.errors import Loc, SpecPath
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
    #: ``False``: the item's ``trainable: false`` (or an enclosing item's) freezes this layer.
    trainable: bool = True

    @property
    def frozen_params(self) -> int:
        """Parameters that training leaves fixed: a frozen layer's trainable ones (its
        non-trainable ones, e.g. batch norm statistics, are not counted as frozen)."""
        return 0 if self.trainable else self.counts.trainable


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
    #: The structured tree this graph was lowered from (set by the resolver; not compared):
    #: read it as ``tree``, which first runs ``pending_tree``.
    built_tree: ModelTree | None = field(default=None, compare=False, repr=False)
    #: What completes ``built_tree`` on its first read: the resolver copies replayed block
    #: calls' subtrees only when the tree is read (``cnnspec validate`` never reads it).
    pending_tree: Callable[[], None] | None = field(default=None, compare=False, repr=False)
    #: Per-kind ``defaults:`` the resolver applied: the spec path of each layer item's kind
    #: (``("model", 3, "batch_norm")``) → the parameters it took from them, as written there
    #: (what ``resolved.yaml`` writes into the item; see ``CompiledSpec.resolved``).
    defaulted: dict[SpecPath, dict[str, Any]] = field(default_factory=dict, compare=False, repr=False)
    #: ``defaulted`` of each backbone spec the graph holds layers of, by its file (a
    #: backbone's paths are its file's: its ``model[2]`` is not the model's), and the layers
    #: each backbone made, by name → its file: what ``cnnspec inspect`` counts a layer by.
    backbone_defaulted: dict[str, dict[SpecPath, dict[str, Any]]] = field(
        default_factory=dict, compare=False, repr=False
    )
    backbone_layers: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    @property
    def tree(self) -> ModelTree | None:
        """The structured tree, complete."""
        complete = self.pending_tree
        if complete is not None:
            complete()  # pops what it copies: running it twice copies nothing twice
            self.pending_tree = None
        return self.built_tree

    @tree.setter
    def tree(self, value: ModelTree | None) -> None:
        self.built_tree = value

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
        """The parameters and MACs of the model as built: as Keras counts them, the weights of
        the layers an item's ``trainable: false`` freezes are non-trainable."""
        return self.totals_with({node.name for node in self.nodes if not node.trainable})

    def totals_with(self, frozen: AbstractSet[str]) -> Counts:
        """The totals with every weight of the layers named in ``frozen`` non-trainable (the
        layers frozen when training starts, say: ``training.freeze`` and the first phase's)."""
        return counted(self.nodes, frozen)


def counted(nodes: Iterable[Node], frozen: AbstractSet[str]) -> Counts:
    """The counts of ``nodes`` summed, every weight of a node named in ``frozen`` non-trainable
    (as Keras counts a layer set ``trainable = False``)."""
    trainable = non_trainable = macs = 0  # three sums, not one Counts per node
    for node in nodes:
        counts = node.counts
        if node.name in frozen:
            non_trainable += counts.params
        else:
            trainable += counts.trainable
            non_trainable += counts.non_trainable
        macs += counts.macs
    return Counts(trainable, non_trainable, macs)


# -- the structured tree ----------------------------------------------------------------------
#: What a plain layer leaf is for: a layer item of the spec, or a layer a combinator made.
LAYER_ROLES = ("layer", "merge", "activation", "projection")


@dataclass
class Layer:
    """A layer the resolver emitted. Its name, parameters and shape are on :attr:`node`;
    ``raw`` keeps the item's parameters as written (``${…}`` text), ``None`` for layers a
    combinator made (``role`` says which: a merge, a post-activation, a projection)."""

    node: Node
    raw: dict[str, Any] | None = None
    role: str = "layer"
    path: SpecPath = ()
    extras: dict[str, Any] = field(default_factory=dict)
    live: bool = True  # False: pruned from the graph (it leads to no output)

    def children(self) -> Iterator[Item]:
        return iter(())


@dataclass
class BlockCall:
    """A call of a block: its bound arguments and the layers of this call."""

    block: str
    #: Every parameter's value for this call (passed or default), in declaration order.
    args: dict[str, Any] = field(default_factory=dict)
    #: The arguments as written at the call site (``${…}`` text kept); defaults are absent.
    raw_args: dict[str, Any] = field(default_factory=dict)
    #: The prefix of the names of the layers inside (``stage1_``, ``model_bottleneck_2_``).
    prefix: str = ""
    entry: str = ""
    output: str = ""
    body: list[Item] = field(default_factory=list)
    path: SpecPath = ()
    extras: dict[str, Any] = field(default_factory=dict)
    loc: Loc | None = None
    #: The tensors bound to the block's inputs, in its declared order (``entry`` is the first).
    inputs: tuple[str, ...] = ()
    #: The tensors the call returns, in the block's ``outputs`` order (``output`` is the first).
    outputs: tuple[str, ...] = ()

    def open(self, path: SpecPath) -> list[Item]:
        return self.body

    def children(self) -> Iterator[Item]:
        return iter(self.body)


@dataclass
class Repeat:
    """A ``repeat`` loop: its variable, count and every iteration's items."""

    var: str | None = None
    times: int = 0
    raw_times: Any = None
    #: ``carry`` and ``next`` as written (name → id reference); empty for a plain repeat.
    carry: dict[str, Any] = field(default_factory=dict)
    next: dict[str, Any] = field(default_factory=dict)
    item_id: str | None = None
    #: The tensor each carried name holds after the loop.
    results: dict[str, str] = field(default_factory=dict)
    entry: str = ""
    output: str = ""
    iterations: list[list[Item]] = field(default_factory=list)
    path: SpecPath = ()
    extras: dict[str, Any] = field(default_factory=dict)

    def open(self, path: SpecPath) -> list[Item]:
        self.iterations.append([])
        return self.iterations[-1]

    def children(self) -> Iterator[Item]:
        for iteration in self.iterations:
            yield from iteration


@dataclass
class Residual:
    """A ``residual``: body, shortcut (the list as written, or the projection the resolver
    made), merge and post-activation layers. ``mode`` is the evaluated ``shortcut`` field
    (``list`` for a list of layers); ``merge_mode`` the ``merge`` field as the resolver read it
    (``auto`` keeps the entry as the shortcut of a ``concat`` merge, whatever the shapes)."""

    raw: dict[str, Any] = field(default_factory=dict)
    mode: str | None = None
    merge_mode: Any = None
    #: Whether a projection shortcut's 1×1 convolution has a bias (the ``projection_bias`` field).
    projection_bias: bool = True
    entry: str = ""
    output: str = ""
    body: list[Item] = field(default_factory=list)
    shortcut: list[Item] = field(default_factory=list)
    merge: Layer | None = None
    activation: Layer | None = None
    path: SpecPath = ()
    extras: dict[str, Any] = field(default_factory=dict)

    def open(self, path: SpecPath) -> list[Item]:
        return self.body if path and path[-1] == "body" else self.shortcut

    def add(self, layer: Layer) -> None:
        if layer.role == "merge":
            self.merge = layer
        elif layer.role == "activation":
            self.activation = layer
        else:
            self.shortcut.append(layer)

    def children(self) -> Iterator[Item]:
        yield from self.body
        yield from self.shortcut
        if self.merge is not None:
            yield self.merge
        if self.activation is not None:
            yield self.activation


@dataclass
class Parallel:
    """A ``parallel``: its branches, merge and post-activation layers."""

    raw: dict[str, Any] = field(default_factory=dict)
    entry: str = ""
    output: str = ""
    branches: list[list[Item]] = field(default_factory=list)
    merge: Layer | None = None
    activation: Layer | None = None
    path: SpecPath = ()
    extras: dict[str, Any] = field(default_factory=dict)

    def open(self, path: SpecPath) -> list[Item]:
        self.branches.append([])
        return self.branches[-1]

    def add(self, layer: Layer) -> None:
        if layer.role == "merge":
            self.merge = layer
        else:
            self.activation = layer

    def children(self) -> Iterator[Item]:
        for branch in self.branches:
            yield from branch
        if self.merge is not None:
            yield self.merge
        if self.activation is not None:
            yield self.activation


@dataclass
class Conditional:
    """An item with ``when``: the condition as written, its value, and the item when true."""

    condition: Any
    value: bool
    item: Item | None = None
    path: SpecPath = ()
    kind: str = ""  # the item's kind as written (a layer kind, block or combinator)
    extras: dict[str, Any] = field(default_factory=dict)

    def children(self) -> Iterator[Item]:
        return iter(() if self.item is None else (self.item,))


@dataclass
class Backbone:
    """A ``backbone`` item: another spec's model (up to the cut point ``until``) as one item.

    Its layers are named with ``prefix`` (``body_conv1``); ``names`` lists those the model
    keeps (the cut drops the rest); ``tree`` is the backbone spec's own tree (its vars, blocks
    and defaults, which its items refer to); ``weights`` its checked weights source, if any
    (a :class:`cnnspec.spec.weights.WeightsSource`)."""

    spec: str = ""
    until: str | None = None
    raw_vars: dict[str, Any] = field(default_factory=dict)
    prefix: str = ""
    entry: str = ""
    output: str = ""
    body: list[Item] = field(default_factory=list)
    names: tuple[str, ...] = ()
    tree: ModelTree | None = None
    weights: Any = None
    keras_name: str = ""
    include_top: bool = True
    doc: Any = None  # the backbone spec's composed SourceDoc (the emitter names its vars)
    path: SpecPath = ()
    extras: dict[str, Any] = field(default_factory=dict)

    def open(self, path: SpecPath) -> list[Item]:
        return self.body

    def children(self) -> Iterator[Item]:
        return iter(self.body)


Item = Union[Layer, BlockCall, Repeat, Residual, Parallel, Conditional, Backbone]  # noqa: UP007 (a runtime alias)
Container = Union[BlockCall, Repeat, Residual, Parallel, Backbone]  # noqa: UP007


@dataclass
class Var:
    """A ``vars`` entry: as written and its value (the tree lists them in evaluation order)."""

    name: str
    raw: Any
    value: Any
    loc: Loc | None = None


@dataclass
class BlockDef:
    """A block the model calls: its declared parameters, description and location."""

    name: str
    params: dict[str, Any]  # name → the resolver's BlockParam (type, default, required)
    description: str = ""
    loc: Loc | None = None
    #: Declared input names (``()``: one input, ``input``) and returned ids (``()``: the last item).
    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()


@dataclass
class ModelTree:
    """The resolved model as the user structured it; :func:`lower` gives the flat graph."""

    name: str = "model"
    description: str = ""
    input_name: str = INPUT
    input_shape: Shape = ()
    body: list[Item] = field(default_factory=list)
    outputs: tuple[str, ...] = ()
    augmentation: list[Item] = field(default_factory=list)
    sections: dict[str, Any] = field(default_factory=dict)
    vars: list[Var] = field(default_factory=list)
    blocks: dict[str, BlockDef] = field(default_factory=dict)
    #: Spec-level per-kind defaults (kind → parameter → value): the emitter writes them once.
    defaults: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: The model's ``outputs`` as written (``c0.x``, ``cells[3].h``), beside the names they resolved to.
    output_refs: tuple[str, ...] = ()

    def open(self, path: SpecPath) -> list[Item]:
        return self.augmentation if path and path[0] == "augmentation" else self.body

    def children(self) -> Iterator[Item]:
        return iter(self.body)


def ancestors(nodes: Sequence[Node], outputs: Iterable[str]) -> set[str]:
    """The names of what leads to ``outputs`` among ``nodes`` (in graph order, each after its
    inputs), ``outputs`` included: every layer on a path to one, and the input names they read."""
    needed = set(outputs)
    for node in reversed(nodes):
        if node.name in needed:
            needed.update(node.inputs)
    return needed


def walk(items: list[Item]) -> Iterator[Item]:
    """Every item of a list and of what it contains, in resolution (pre-)order."""
    stack: list[Iterator[Item]] = [iter(items)]
    while stack:
        item = next(stack[-1], None)
        if item is None:
            stack.pop()
            continue
        yield item
        stack.append(item.children())


def layers_of(items: list[Item]) -> Iterator[Layer]:
    """The layer leaves of a list, in the order the resolver emitted their nodes."""
    return (item for item in walk(items) if isinstance(item, Layer))


def lower(tree: ModelTree) -> ModelIR:
    """The flat graph of a structured tree: its live layers in order (what the Keras builder,
    static analysis and reports read)."""
    lowered = ModelIR(
        name=tree.name,
        description=tree.description,
        input_name=tree.input_name,
        input_shape=tree.input_shape,
        nodes=[leaf.node for leaf in layers_of(tree.body) if leaf.live],
        outputs=tree.outputs,
        augmentation=[leaf.node for leaf in layers_of(tree.augmentation)],
        sections=tree.sections,
    )
    lowered.tree = tree
    return lowered


class TreeRecorder:
    """Builds a :class:`ModelTree` as the resolver walks the spec.

    The resolver opens a container for each combinator or block call, a list for each layer
    list it walks, and hands over each node it emits. An item's ``id``/``inputs`` text and its
    ``when`` condition are stamped on the element it produces. After an error the tree may be
    incomplete; it is only read when resolution succeeded.
    """

    def __init__(self, tree: ModelTree) -> None:
        self.tree = tree
        self.stack: list[Any] = [tree]  # containers and lists, innermost last
        self.item: tuple[int, SpecPath, dict[str, Any]] | None = None
        self.pending: tuple[int, Conditional] | None = None

    def begin_item(self, path: SpecPath, extras: dict[str, Any]) -> None:
        """A spec item starts: the next element of the current list comes from it."""
        self.item = (len(self.stack), path, extras)
        self.pending = None

    def condition(self, raw: Any, value: bool, path: SpecPath, kind: str = "") -> None:
        """The current item has ``when``: record it; when true, the item goes inside."""
        extras = self.item[2] if self.item is not None else {}
        cond = Conditional(raw, value, None, path, kind, extras)
        self._append(cond)
        if value:
            self.pending = (len(self.stack), cond)

    def layer(self, node: Node, raw: dict[str, Any] | None, role: str, path: SpecPath) -> Layer:
        leaf = Layer(node, raw, role, path)
        top = self.stack[-1]
        if isinstance(top, list) or role == "layer":
            self._append(leaf)
        else:
            top.add(leaf)
        return leaf

    def container(self, element: Container) -> Container:
        """Append a block call or combinator and make it current (close with :meth:`close`)."""
        self._append(element)
        self.stack.append(element)
        return element

    def close(self, element: Container, output: str) -> None:
        while self.stack and self.stack[-1] is not element:
            self.stack.pop()  # lists an error left open
        if self.stack:
            self.stack.pop()
        element.output = output

    def open_list(self, path: SpecPath) -> int:
        """A layer list starts (inside the current container); returns the depth to close."""
        depth = len(self.stack)
        top = self.stack[-1]
        self.stack.append(top if isinstance(top, list) else top.open(path))
        return depth

    def close_list(self, depth: int) -> None:
        del self.stack[depth:]

    def sink(self, items: list[Item]) -> int:
        """Record into ``items`` until :meth:`close_list` (augmentation layers)."""
        depth = len(self.stack)
        self.stack.append(items)
        return depth

    def _append(self, element: Item) -> None:
        depth = len(self.stack)
        if self.item is not None and self.item[0] == depth:
            _, path, extras = self.item
            if not isinstance(element, Conditional):
                if not element.path:
                    element.path = path
                element.extras = extras
                self.item = None
        if self.pending is not None and self.pending[0] == depth and not isinstance(element, Conditional):
            self.pending[1].item = element
            self.pending = None
            return
        top = self.stack[-1]
        if isinstance(top, list):  # else an error left no list open: the tree is not read
            top.append(element)

    def note(self, **fields: Any) -> None:
        """Set fields of the innermost open container (what its handler decided)."""
        for element in reversed(self.stack):
            if not isinstance(element, list):
                for key, value in fields.items():
                    setattr(element, key, value)
                return
