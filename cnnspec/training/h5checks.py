"""Checks on HDF5 weights files from elsewhere, shared by the two readers of such files: the
transfer loader (:mod:`cnnspec.training.transfer_read`: ``weights:``, ``--weights``, ``imagenet``)
and ``cnnspec import --weights`` (:mod:`cnnspec.importer.output`).

A weights file must hold its data itself: HDF5 lets a file point elsewhere (external links to
another file, soft links that an external link may answer, datasets whose bytes are stored in
other files or mapped from them), and reading such a dataset copies a local file's bytes into
the model. A file may also *declare* a dataset far larger than itself (no data written, or
compressed chunks): reading it allocates what it declares. :func:`reaching_out` finds the
first; :func:`too_large` and :func:`not_numeric` let a reader bound (or refuse) a dataset
before one byte of it is read. h5py only: no TensorFlow. Here (in the training layer) rather
than in the importer, so that both readers import it without an upward import.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

#: The most elements one dataset of a weights file may have when the reader knows no bound of
#: its own (the model's largest weight tensor): 2**27 (134,217,728; VGG16's largest tensor,
#: ``fc1``, has 102,760,448). At 8 bytes a value, 1 GiB.
MAX_DATASET_ELEMENTS = 1 << 27
#: The numpy kinds a weight tensor may have (bool, signed, unsigned, float) and the widest item.
NUMERIC_KINDS = "biuf"
MAX_ITEM_BYTES = 8


def reaching_out(source: Path | Any) -> list[str]:
    """What in an HDF5 file refers to data outside it, each as ``/where: what``: external
    links (to another file), soft links (to a path, which an external link may answer), and
    datasets stored in other files or mapped from them (virtual). ``[]``: the file is
    self-contained, so reading or writing it touches no other file.

    ``source``: a path (opened read-only here) or an open ``h5py.File``/group. No link is
    followed: links are looked at with ``getlink=True``, and only hard-linked groups entered."""
    import h5py

    if isinstance(source, h5py.Group):
        return _links_out(source)
    with h5py.File(source, "r") as handle:
        return _links_out(handle)


def _links_out(root: Any) -> list[str]:
    """:func:`reaching_out` of an open file or group."""
    import h5py

    from cnnspec.backends.codegen_values import comment_text  # a hostile name, printable

    found: list[str] = []
    seen: set[Any] = set()  # group ids: a group hard-linked twice (or into itself) once
    groups: list[tuple[str, Any]] = [("", root)]
    while groups:  # a loop, not recursion: groups may nest deeper than Python's stack
        where, group = groups.pop()
        if group.id in seen:
            continue
        seen.add(group.id)
        for name in group:
            here = comment_text(f"{where}/{name}")
            link = group.get(name, getlink=True)
            if isinstance(link, h5py.ExternalLink):
                target = comment_text(f"{link.filename}:{link.path}")
                found.append(f"{here}: an external link to {target}")
            elif isinstance(link, h5py.SoftLink):  # (to anywhere: refused unfollowed all the same)
                found.append(f"{here}: a soft link to {comment_text(link.path)}")
            elif isinstance(item := group.get(name), h5py.Group):
                groups.append((f"{where}/{name}", item))
            elif isinstance(item, h5py.Dataset) and (item.external or item.is_virtual):
                found.append(f"{here}: a dataset stored in another file")
    return found


def shown(found: list[str], at_most: int = 3) -> str:
    """The first few of :func:`reaching_out`'s findings for a message."""
    more = len(found) - at_most
    return "; ".join(found[:at_most]) + (f"; and {more} more" if more > 0 else "")


def elements(dataset: Any) -> int:
    """How many values a dataset declares (its shape's product: 1 for a scalar, 0 for a null
    dataspace)."""
    shape = dataset.shape
    if shape is None:
        return 0
    count = 1
    for side in shape:
        count *= int(side)
    return count


def not_numeric(dataset: Any) -> str | None:
    """Why a dataset cannot be a weight tensor (``None``: it can): a weight is an array of
    booleans, integers or floats of at most 8 bytes each. Strings, compound or object types
    (whose items may be any size) and null dataspaces are not."""
    dtype = dataset.dtype
    if dataset.shape is None:
        return "holds no array (a null dataspace)"
    if dtype.kind not in NUMERIC_KINDS or dtype.itemsize > MAX_ITEM_BYTES:
        return f"holds values of type {dtype}, not numbers"
    return None


def kinds_differ(saved: Any, variable: Any) -> bool:
    """Whether a saved tensor of dtype ``saved`` (numpy's) holds another kind of number than a
    variable of dtype ``variable`` keeps: integers or booleans for a float weight, floats (or
    booleans) for an integer counter (normalization's ``count``). Keras' ``assign`` converts
    them without a word (1.7 saved for a counter becomes 1, a boolean kernel 0s and 1s); a file
    that holds them is no weights file of the layer. Floats of another width are the same kind:
    float64 and float16 are rounded or widened as Keras loads them. Read by both readers: the
    transfer loader skips such a tensor, ``import --weights`` refuses the file."""
    keeps = str(variable)
    if keeps.startswith(("float", "bfloat")):
        return saved.kind != "f"
    if keeps.startswith(("int", "uint")):
        return saved.kind not in "iu"
    return False


def too_large(dataset: Any, limit: int) -> bool:
    """Whether a dataset declares more than ``limit`` values: what reading it would allocate,
    decided from its header alone (no data read)."""
    return elements(dataset) > limit
