"""How an entry of ``data.classes`` names a class of the data (no NumPy, no TensorFlow).

One rule for every reader of ``data.classes``: ``cnnspec validate`` checks the entries against
the built-in sources whose classes are fixed (:func:`cnnspec.analysis.settings.static_class_names`)
before any data is read, and ``cnnspec train`` (:mod:`cnnspec.training.subsets`, which
re-exports these names) against the classes of the data it loaded. Both call
:func:`class_indices`, so they accept the same entries and refuse the others with the same
message. It lives in the analysis layer because that layer may not import from ``training``.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Container, Sequence
from typing import Any

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


def class_indices(
    wanted: Sequence[Any], names: Sequence[str], n_classes: int, skip: Container[int] = ()
) -> list[int]:
    """The source's label of each entry of ``data.classes``: a class name, or a label index.

    An entry is first compared, as text, with the class names, so ``1`` is the folder ``1``
    (whatever its index); an entry that names no class and is a number (``7`` or ``"7"``, as
    YAML users write both) is a label index. Two entries naming the same class (``3`` and
    ``"3"``, or a name and its index) are refused at the second one: the relabelling needs each
    class once.

    ``skip``: positions whose value is unknown (a ``${…}`` that failed, already reported):
    neither checked nor compared with the others, so the failure is reported once, while the
    other entries are still checked (the result then lacks their labels: only for checking).
    """
    out: list[int] = []
    positions: list[int] = []  # the position of each label in ``out``, for the repeat message
    for position, entry in enumerate(wanted):
        if position in skip:
            continue
        label = _label(entry, names, n_classes)
        if label is None:
            text = str(entry)
            known = list(names) or [str(i) for i in range(n_classes)]
            listing = f"the data's classes: {', '.join(known[:20])}{' …' if len(known) > 20 else ''}"
            # a number is no misspelt name: 11 is not "probably 1", it is beyond the classes
            numeric = text.lstrip("-").isdecimal()
            raise UnknownClass(
                position,
                f"expected a class of the data; received {entry!r}",
                (None if numeric else did_you_mean(text, known)) or listing,
            )
        if label in out:
            first = positions[out.index(label)]
            name = names[label] if label < len(names) else str(label)
            raise UnknownClass(
                position,
                f"expected each class once in data.classes; received {entry!r}, the same class "
                f"({name!r}) as {wanted[first]!r} at data.classes[{first}]",
                f"remove one of {wanted[first]!r} and {entry!r}",
            )
        out.append(label)
        positions.append(position)
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
    if text.isdecimal() and int(text) < n_classes:  # (isdigit: `²` too, which int() refuses)
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
        if label is None or not text.isdecimal() or find_name(text, names) is None:
            continue
        if int(text) < n_classes and int(text) != label:
            other = names[int(text)] if int(text) < len(names) else text
            notes.append(
                f"data.classes[{position}]: {entry!r} is the class named {text!r} (label {label}), "
                f"not the class at label index {text} ({other!r})"
            )
    return notes
