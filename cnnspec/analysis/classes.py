"""How an entry of ``data.classes`` names a class of the data (no NumPy, no TensorFlow).

One rule for every reader of ``data.classes``: ``cnnspec validate`` checks the entries against
the built-in sources whose classes are fixed (:func:`cnnspec.analysis.settings.static_class_names`)
before any data is read, and ``cnnspec train`` (:mod:`cnnspec.training.subsets`, which
re-exports these names) against the classes of the data it loaded. Both call
:func:`class_indices`, so they accept the same entries and refuse the others with the same
message. It lives in the analysis layer because that layer may not import from ``training``.

The keys of ``training.class_weight`` name classes by the same rule (:func:`key_label`), among
the classes ``data.classes`` keeps; a key naming a class it left out is refused rather than read
as a label index of the renumbered classes (validate for the fixed sources, train, the script).
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


def not_class_targets(target: Any, kind: str) -> tuple[str, str]:
    """The message and hint for ``data.classes`` or ``data.per_class`` beside a source whose
    ``target`` (one name, or one per output) is not class labels: they select classes, so the
    spec asks for what the data cannot give."""
    shown = f"shapes with target {target!r}" if kind == "shapes" else f"a source whose targets are {target!r}"
    hint = "leave it out, or use a source with class labels"
    if kind == "shapes":
        hint += " (shapes with target: class)"
    return f"expected a source of class labels to select from; received {shown}", hint


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


class LeftOutClass(ValueError):
    """A key of ``training.class_weight`` that names a class of the data ``data.classes`` left
    out (``2`` of the digits with ``data.classes: [9, 5, 7]``): read as the label index 2, it
    would weigh another class ('7') than the one it names."""

    def __init__(self, message: str, hint: str, name: str, classes: str, kept: str) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.name = name  # the class's name, as the data spells it
        self.classes = classes  # data.classes, as messages show it: [9, 5, 7]
        self.kept = kept  # the names of the classes it keeps, quoted: '9', '5' or '7'


def listed(entries: Sequence[Any]) -> str:
    """``data.classes`` as a message shows it: ``[9, 5, 7]``, ``[cat, dog]``."""
    return "[" + ", ".join(str(entry) for entry in entries) + "]"


def key_label(
    key: str,
    names: Sequence[str],
    source_names: Sequence[str] | None = None,
    wanted: Sequence[Any] | None = None,
) -> int | None:
    """The label a key of ``training.class_weight`` weighs, by the rule ``data.classes`` entries
    follow: the class of that name among ``names`` (the classes training has, in their label
    order: ``data.classes``'s order where it is set), else the label index it is; ``None`` for
    neither.

    ``source_names`` (the data's classes before ``data.classes`` selected ``wanted`` of them): a
    key naming one of the classes left out raises :class:`LeftOutClass`, a number too. As an
    index it would weigh the class now at that label, not the one it names (``2`` of the digits
    with ``data.classes: [9, 5, 7]`` is '7'), which nothing would show."""
    found = find_name(key, names)
    if found is not None:
        return found
    if source_names is not None and wanted is not None:
        dropped = find_name(key, source_names)
        if dropped is not None:
            quoted = [repr(str(name)) for name in names[:20]] + (["…"] if len(names) > 20 else [])
            kept = quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]
            name = str(source_names[dropped])
            raise LeftOutClass(
                f"expected a class that data.classes keeps; received {key!r}: class "
                f"{name!r} is not among data.classes {listed(wanted)}",
                f"use the name of a class data.classes keeps ({kept}), or drop the key (a number that "
                "names a class of the data is that class, not a label index)",
                name,
                listed(wanted),
                kept,
            )
    if key.isdecimal() and int(key) < len(names):  # (isdigit: `²` too, which int() refuses)
        return int(key)
    return None


def repeated_key(key: str, first: str, name: str) -> tuple[str, str]:
    """The message and hint refusing a ``training.class_weight`` key that weighs the class
    ``name`` an earlier key (``first``) weighs already (``dog`` and ``1`` where 'dog' is label
    1): one of the two weights was dropped without a word."""
    return (
        f"expected each class once in training.class_weight; received {key!r}, the same class "
        f"({name!r}) as {first!r}",
        f"remove one of {first!r} and {key!r}",
    )


def key_notes(
    keys: Sequence[str],
    names: Sequence[str],
    source_names: Sequence[str] | None = None,
) -> list[str]:
    """What to tell the user about keys of ``training.class_weight`` whose number the spec alone
    does not show how it is read: a number read as a class's name where it is also another
    class's label index (``1`` of the folders ``1``, ``2``, ``3``: the folder ``1``, label 0), and
    a number read as a label index once ``data.classes`` renumbered the labels
    (``source_names``: the data's classes before it), where the data's class at that index is
    another one. Keys :func:`key_label` refuses are left to its error."""
    notes = []
    for key in keys:
        if not key.isdecimal():
            continue
        index, found = int(key), find_name(key, names)
        if found is not None:
            if index < len(names) and index != found:
                notes.append(
                    f"training.class_weight: {key!r} is the class named {key!r} (label {found}), not the "
                    f"class at label index {key} ({str(names[index])!r})"
                )
        elif (
            source_names is not None
            and find_name(key, source_names) is None
            and index < len(names)
            and index < len(source_names)
            and name_key(str(source_names[index])) != name_key(str(names[index]))
        ):
            notes.append(
                f"training.class_weight: {key!r} is the label index {key} after data.classes "
                f"({str(names[index])!r}), not the data's class at label index {key} "
                f"({str(source_names[index])!r})"
            )
    return notes
