"""How large a spec may grow as the resolver expands it: layers, repeat counts, steps of the
walk, nesting of block calls and combinators, and the size of a value an expression builds.
Each limit is a located error where it is passed, long before memory or Python's stack give
out (docs/graphs.md states the numbers).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from cnnspec.layers.registry import REGISTRY
from cnnspec.spec.expr import ExpressionError
from cnnspec.spec.items import item_kind
from cnnspec.spec.least_size import LeastSizes
from cnnspec.spec.scope import NOT_LAYERS

#: Layers in one model, block calls and repeats expanded.
MAX_NODES = 20_000
#: Axes of one input (``input.shape``, the batch's left out): a sequence, an image, a volume.
MAX_INPUT_RANK = 4
#: Iterations of one repeat (its ``times``).
MAX_REPEAT = 10_000
#: Layer items visited and repeat iterations made in one walk (nested repeats of empty lists
#: make no layer, yet take time).
MAX_STEPS = 100_000
#: Items that may nest inside one another along one path of the walk: block calls and the
#: combinators (repeat, residual, parallel). Each level is a few Python frames of recursion, so a
#: chain of a few hundred block calls would exhaust the interpreter's stack; a located error at
#: the item that goes deeper comes well before that (docs/graphs.md states the number; the
#: codegen tests generate code at this depth).
MAX_NESTING = 32


def least_sizes(blocks: Mapping[str, Any], bad_blocks: Collection[str] = ()) -> LeastSizes:
    """The least sizes of a spec's repeats and block calls (:mod:`cnnspec.spec.least_size`) as
    the resolver walks its items: a layer is made of a registered kind that is no combinator,
    backbone or refused block's name (``bad_blocks``, read as it grows), and a call is of a
    declared block (``blocks``) that no kind shadows."""
    return LeastSizes(
        blocks,
        lambda kind: kind in REGISTRY and kind not in NOT_LAYERS and kind not in bad_blocks,
        lambda kind: kind in blocks and kind not in REGISTRY and kind not in bad_blocks,
        item_kind,
        max_repeat=MAX_REPEAT,
        max_depth=MAX_NESTING + 1,
    )


#: Elements of one value an expression or a var builds (a list, a mapping, nested).
MAX_VALUE_NODES = 10_000
#: Levels of nesting of such a value.
MAX_VALUE_DEPTH = 100
#: The types of a value's elements that hold nothing inside them.
SCALAR_TYPES = frozenset({int, float, bool, str, type(None)})


def check_value_size(value: Any) -> None:
    """Refuse substituted values too big or too deep to print or walk: vars that nest each
    other (``l1: ["${l0}", "${l0}"]``, ``l2: ["${l1}", "${l1}"]``, …) share structure and
    would otherwise double at every step, hanging the first message that shows one."""
    if type(value) is list and len(value) < MAX_VALUE_NODES and all(type(v) in SCALAR_TYPES for v in value):
        return  # a short list of scalars (most values: shapes, strides, paddings)
    count = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        count += 1
        if count > MAX_VALUE_NODES or depth > MAX_VALUE_DEPTH:
            what = f"{MAX_VALUE_NODES:,} elements" if count > MAX_VALUE_NODES else f"{MAX_VALUE_DEPTH} levels"
            raise ExpressionError(
                f"expected a value of at most {what}; received a larger one",
                "vars that contain other vars multiply in size; write the value out instead",
            )
        if isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)
        elif isinstance(item, dict):
            stack.extend((child, depth + 1) for child in item.values())
