"""A layer item's shape in a spec's list: its one kind key (``conv2d``, a block's name, a
combinator) beside the keys that may stand next to it (:data:`ITEM_EXTRAS`). The loader's hints,
the resolver and the language server all read an item's kind with :func:`item_kind`.
"""

from __future__ import annotations

from typing import Any

#: The keys that stand beside a layer's kind in a list item (``- conv2d: {…}`` with an ``id``, its
#: ``inputs``, a ``when`` condition, ``trainable``): the one list the loader's hints, the resolver
#: and the language server read an item's kind key by.
ITEM_EXTRAS = ("id", "inputs", "when", "trainable")


def item_kind(item: Any) -> tuple[Any, Any]:
    """A layer item's kind key and its value (``None, None`` for an item with no one kind):
    a plain string, or the one key of a mapping besides :data:`ITEM_EXTRAS`."""
    if isinstance(item, str):
        return item, None
    if isinstance(item, dict):
        keys = [k for k in item if k not in ITEM_EXTRAS]
        if len(keys) == 1:
            return keys[0], item[keys[0]]
    return None, None


def beside_hint(kind: object, key: str) -> str:
    """The hint for an item key (:data:`ITEM_EXTRAS`: ``id``, ``trainable`` …) written inside a
    kind's mapping, among its parameters (a layer's, a backbone's, a combinator's keys)."""
    return (
        f"`{key}` stands beside the kind, not among its parameters: "
        f"`- {kind}: {{…}}` then `  {key}: …` on the next line"
    )
