"""``data.classes`` and ``data.per_class``: the subsets few-shot fine-tuning needs (NumPy only).

``data.classes`` keeps the listed classes, in the listed order: their labels become 0, 1, …
and their names are kept (a class is named as the source names it, or given by its label
index; an entry that is a class's name is that class, so ``[1, 2]`` of folders ``1``, ``2``,
``3`` keeps the folders ``1`` and ``2``). ``data.per_class: N`` keeps at most N training
images of each class, a seeded random choice in the original order, so the same seed gives
the same images. Both apply to every source alike, after it is loaded (the generated training
script does the same); the entries of ``data.classes`` for a built-in source with fixed classes
are checked by ``cnnspec validate`` already, by the same rule (:mod:`cnnspec.analysis.classes`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# How an entry names a class lives one layer down, so that ``cnnspec validate`` checks the
# entries of the built-in sources with the very rule (and message) ``cnnspec train`` applies
# here; re-exported for the callers of this module.
from cnnspec.analysis.classes import (
    LeftOutClass,
    UnknownClass,
    class_indices,
    class_notes,
    find_name,
    key_label,
    key_notes,
    name_key,
    repeated_key,
)

__all__ = [
    "LeftOutClass",
    "UnknownClass",
    "class_indices",
    "class_notes",
    "find_name",
    "key_label",
    "key_notes",
    "name_key",
    "per_class",
    "repeated_key",
    "select",
]


def select(x: np.ndarray, y: np.ndarray, labels: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """The images whose label is in ``labels`` (each once), relabelled by position in ``labels``."""
    if len(set(labels)) != len(labels):
        raise ValueError(f"expected distinct labels; received {list(labels)}")
    # looked up in the sorted labels, not through a table as long as the largest label: a label
    # of 10**12 would ask for terabytes
    wanted = np.asarray(labels, dtype="int64")
    order = np.argsort(wanted, kind="stable")
    ordered = wanted[order]
    y = np.asarray(y)
    if not len(ordered):
        return x[:0], np.zeros(0, dtype="int64")
    slot = np.minimum(np.searchsorted(ordered, y), len(ordered) - 1)
    keep = ordered[slot] == y
    return x[keep], order[slot[keep]].astype("int64")


def per_class(x: np.ndarray, y: np.ndarray, count: int | None, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """At most ``count`` images of each class: a seeded, stratified choice in the original order."""
    if count is None:
        return x, y
    rng = np.random.default_rng(seed)
    keep: list[np.ndarray] = []
    for label in np.unique(y):
        where = np.flatnonzero(y == label)
        keep.append(where if len(where) <= count else rng.choice(where, count, replace=False))
    order = np.sort(np.concatenate(keep)) if keep else np.zeros(0, dtype="int64")
    return x[order], y[order]
