"""Which layers are frozen, resolved statically from the spec (no TensorFlow).

Three things freeze or unfreeze layers, applied in this order:

1. the item flag ``trainable: false`` (on a layer, block call, repeat or backbone item), which
   the resolver stamps on every node it produces (:attr:`cnnspec.ir.Node.trainable`);
2. ``training.freeze`` then ``training.unfreeze``;
3. each phase's ``freeze`` then ``unfreeze`` (``training.phases``); a phase starts from the
   state the previous phase left, so staged unfreezing is a list of small steps.

A *pattern* is a layer name (an ``id`` at model level is the layer's name), a block-instance or
hierarchical name (``stem``, ``stage3.block2``, ``body.cb_1.c``: every layer inside it; one
iteration of a carrying repeat ``st`` is ``st[1]``, ``st[1].inner``, and ``st`` is all of them),
or a glob over those names (``conv4_*``, ``stage3.*``; ``*`` is every layer). ``/`` may stand for
``.``, so the groups ``cnnspec inspect`` shows (``st[0]/inner``) are patterns as they are. A
pattern that matches no layer is a located error listing the nearest names, since a typo would
otherwise train the wrong layers without a word.
"""

from __future__ import annotations

import difflib
import fnmatch
import re
from collections.abc import Callable, Iterable, Sequence

from cnnspec.errors import SpecPath, did_you_mean
from cnnspec.ir import ModelIR, Node

GLOB_CHARS = frozenset("*?[")

#: ``report(message, path, hint)``: how a pattern that matches nothing is reported.
Report = Callable[[str, SpecPath, str], None]


#: A group element of one iteration of a carrying repeat: ``st[1]`` (its layers: ``st_1_…``).
ITERATION = re.compile(r"(?P<id>.+)\[(?P<index>\d+)\]")


def name_prefix(element: str) -> str:
    """The layer-name prefix a group element adds: ``stem`` → ``stem_``, ``st[1]`` → ``st_1_``
    (the resolver names an iteration's layers ``st_1_…`` but groups them as ``st[1]``)."""
    found = ITERATION.fullmatch(element)
    return f"{found['id']}_{found['index']}_" if found else f"{element}_"


def hierarchical_names(node: Node) -> list[str]:
    """The names a layer answers to besides its own: each enclosing block instance or repeat
    (``body``, ``body.cb_1``; ``st`` and ``st[1]`` for an iteration of a carrying repeat) and
    its own dotted name (``body.cb_1.c``, ``st[1].inner.c``)."""
    names: list[str] = []
    for k, element in enumerate(node.group):
        found = ITERATION.fullmatch(element)
        if found:  # the repeat's own id covers every iteration; it is no group of its own
            names.append(".".join((*node.group[:k], found["id"])))
        names.append(".".join(node.group[: k + 1]))
    prefix = "".join(name_prefix(element) for element in node.group)
    if node.group and node.name.startswith(prefix) and len(node.name) > len(prefix):
        names.append(".".join(node.group) + "." + node.name[len(prefix) :])
    return names


class Patterns:
    """Resolves freeze/unfreeze patterns against the layers of a model."""

    def __init__(self, ir: ModelIR) -> None:
        self.layers = [node.name for node in ir.nodes]
        #: name → the layers it covers (a layer name covers itself).
        self.index: dict[str, list[str]] = {}
        for node in ir.nodes:
            for name in [node.name, *hierarchical_names(node)]:
                covered = self.index.setdefault(name, [])
                if node.name not in covered:
                    covered.append(node.name)

    def match(self, pattern: str) -> list[str]:
        """The layers a pattern covers, in model order (empty: none). A name of the index is
        taken as it is, before any glob: ``st[1]`` is an iteration, not ``st`` and a character
        class. A glob's ``[…]`` is a character class (``conv2d_[12]``); where that matches
        nothing, its brackets are read literally (``st[*].inner``: the block in each iteration)."""
        dotted = pattern.replace("/", ".")
        exact = self.index.get(pattern) or self.index.get(dotted)
        if exact:
            hits = set(exact)
        elif GLOB_CHARS & set(dotted):
            hits = self.glob(dotted)
            if not hits and "[" in dotted:
                hits = self.glob(literal_brackets(dotted))
        else:
            hits = set()
        return [layer for layer in self.layers if layer in hits]

    def glob(self, pattern: str) -> set[str]:
        """The layers of every name the fnmatch-style ``pattern`` matches."""
        return {
            layer
            for name, covered in self.index.items()
            if fnmatch.fnmatchcase(name, pattern)
            for layer in covered
        }

    def resolve(self, patterns: Sequence[str], path: SpecPath, report: Report) -> set[str]:
        """Every layer the patterns at ``path`` cover; each pattern that covers none is
        reported at its own item."""
        out: set[str] = set()
        for index, pattern in enumerate(patterns):
            found = self.match(str(pattern))
            if not found:
                report(
                    f"expected a pattern that matches a layer; {str(pattern)!r} matches none",
                    (*path, index),
                    self.near_hint(str(pattern)),
                )
            out.update(found)
        return out

    def near_hint(self, pattern: str) -> str:
        """Did you mean …, or the nearest names there are."""
        hint = did_you_mean(pattern, list(self.index))
        if hint is not None:
            return hint
        near = difflib.get_close_matches(pattern, list(self.index), n=5, cutoff=0.3) or self.layers[:5]
        return (
            f"near names: {', '.join(near)} (layer names, block-instance names like stage3.block2 "
            "or st[1].inner, "
            "or globs like conv4_*; `cnnspec inspect` lists the layers)"
        )


def literal_brackets(pattern: str) -> str:
    """``pattern`` with ``[`` and ``]`` matching themselves (``st[*]`` → every iteration of st)."""
    return re.sub(r"[\[\]]", lambda bracket: f"[{bracket.group()}]", pattern)


def initially_frozen(ir: ModelIR) -> set[str]:
    """The layers the item flag ``trainable: false`` freezes."""
    return {node.name for node in ir.nodes if not node.trainable}


def apply(
    frozen: Iterable[str],
    patterns: Patterns,
    freeze: Sequence[str],
    unfreeze: Sequence[str],
    path: SpecPath,
    report: Report,
) -> set[str]:
    """``frozen`` after freezing ``freeze`` and then unfreezing ``unfreeze`` (patterns at
    ``path + ("freeze",)`` and ``path + ("unfreeze",)``)."""
    state = set(frozen) | patterns.resolve(freeze, (*path, "freeze"), report)
    return state - patterns.resolve(unfreeze, (*path, "unfreeze"), report)


def ordered(ir: ModelIR, names: Iterable[str]) -> list[str]:
    """``names`` in model order, the layers with weights only (freezing a pooling layer does
    nothing): for lock.json, the generated script and reports."""
    wanted = set(names)
    return [node.name for node in ir.nodes if node.name in wanted and node.counts.params]
