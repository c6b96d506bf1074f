"""``data.classes`` and ``data.per_class``: the subsets few-shot fine-tuning needs (NumPy only).

``data.classes`` keeps the listed classes, in the listed order: their labels become 0, 1, …
and their names are kept (a class is named as the source names it, or given by its label
index; an entry that is a class's name is that class, so ``[1, 2]`` of folders ``1``, ``2``,
``3`` keeps the folders ``1`` and ``2``). ``data.per_class: N`` keeps at most N training
images of each class, a seeded random choice in the original order, so the same seed gives
the same images. Both apply to every source alike, after it is loaded (the generated training
script does the same).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from typing import Any

import numpy as np

from cnnspec.errors import did_you_mean


class UnknownClass(ValueError):
    """An entry of ``data.classes`` the source does not have, or a class listed twice
    (``index``: its position)."""

    def __init__(self, index: int, message: str, hint: str) -> None:
        super().__init__(message)
        self.index = index
        self.message = message
        self.hint = hint


def name_key(name: str) -> str:
    """A class name as names are compared: Unicode NFC, so ``ému`` typed in a spec (composed)
    is the folder ``ému`` macOS wrote (decomposed); the data's own spelling is kept as its
    class name."""
    return unicodedata.normalize("NFC", name)


def find_name(text: str, names: Sequence[str]) -> int | None:
    """The index of the class named ``text`` (compared by :func:`name_key`), or ``None``."""
    key = name_key(text)
    return next((i for i, name in enumerate(names) if name_key(str(name)) == key), None)


def class_indices(wanted: Sequence[Any], names: Sequence[str], n_classes: int) -> list[int]:
    """The source's label of each entry of ``data.classes``: a class name, or a label index.

    An entry is first compared, as text, with the class names, so ``1`` is the folder ``1``
    (whatever its index); an entry that names no class and is a number (``7`` or ``"7"``, as
    YAML users write both) is a label index. Two entries naming the same class (``3`` and
    ``"3"``, or a name and its index) are refused at the second one: the relabelling needs each
    class once."""
    out: list[int] = []
    for position, entry in enumerate(wanted):
        label = _label(entry, names, n_classes)
        if label is None:
            text = str(entry)
            known = list(names) or [str(i) for i in range(n_classes)]
            raise UnknownClass(
                position,
                f"expected a class of the data; received {entry!r}",
                did_you_mean(text, known)
                or f"the data's classes: {', '.join(known[:20])}{' …' if len(known) > 20 else ''}",
            )
        if label in out:
            first = out.index(label)
            name = names[label] if label < len(names) else str(label)
            raise UnknownClass(
                position,
                f"expected each class once in data.classes; received {entry!r}, the same class "
                f"({name!r}) as {wanted[first]!r} at data.classes[{first}]",
                f"remove one of {wanted[first]!r} and {entry!r}",
            )
        out.append(label)
    return out


def _label(entry: Any, names: Sequence[str], n_classes: int) -> int | None:
    """The label an entry selects: the class it names (an int compared as its text, since
    folders and CSV labels named ``1``, ``2``, … are names), else the label index it is;
    ``None`` for neither."""
    if isinstance(entry, bool):  # YAML's true/false: neither a name nor an index
        return None
    text = str(entry)
    found = find_name(text, names)
    if found is not None:
        return found
    if text.isdigit() and int(text) < n_classes:
        return int(text)
    return None


def class_notes(wanted: Sequence[Any], names: Sequence[str], n_classes: int) -> list[str]:
    """What to tell the user about ``data.classes`` entries read as a name where they are also
    another class's label index (``1`` of the folders ``1``, ``2``, ``3``: the folder ``1``,
    whose label is 0, not the class at index 1), which the spec alone does not show."""
    notes = []
    for position, entry in enumerate(wanted):
        text = str(entry)
        label = _label(entry, names, n_classes)
        if label is None or not text.isdigit() or find_name(text, names) is None:
            continue
        if int(text) < n_classes and int(text) != label:
            other = names[int(text)] if int(text) < len(names) else text
            notes.append(
                f"data.classes[{position}]: {entry!r} is the class named {text!r} (label {label}), "
                f"not the class at label index {text} ({other!r})"
            )
    return notes


def select(x: np.ndarray, y: np.ndarray, labels: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """The images whose label is in ``labels`` (each once), relabelled by position in ``labels``."""
    if len(set(labels)) != len(labels):
        raise ValueError(f"expected distinct labels; received {list(labels)}")
    mapping = np.full(max(int(y.max(initial=0)), *labels) + 1, -1, dtype="int64")
    mapping[list(labels)] = np.arange(len(labels))
    keep = mapping[y] >= 0
    return x[keep], mapping[y[keep]]


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
