"""Reading the sources that are arrays: the embedded ``digits``, the Keras datasets (from Keras'
cache; offline, a located error that names the file and the folder), ``{npz: …}`` files (checked
before they are loaded: their names, sizes and array headers), and a folder's listing.
"""

from __future__ import annotations

import functools
import math
import os
import socket
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.lib.npyio import NpzFile

from cnnspec.analysis.settings_types import DataConfig
from cnnspec.errors import SpecError, SpecPath, human_bytes
from cnnspec.fileio import ZIP_FAULTS, ZIP_MAGIC
from cnnspec.training import subsets
from cnnspec.training.dataset import DOWNLOAD_TIMEOUT_S, SOURCE, source_error

if TYPE_CHECKING:
    from cnnspec.analysis.compiled import CompiledSpec
    from cnnspec.training.filelist import Listing


#: The file of the location ``evaluate``/``visualize``/``report`` give a ``--data`` source
#: (:data:`cnnspec.reporting.data_option.DATA_LOC` is made of it).
DATA_OPTION_FILE = "<--data>"


def _digits() -> tuple[np.ndarray, np.ndarray, list[str]]:
    """scikit-learn's digits as a run takes them: pixels 0 to 1, each caller its own arrays."""
    images, target, names = _digits_as_shipped()
    return (images.astype("float32") / 16.0)[..., None], target.astype("int64"), list(names)


@functools.cache
def _digits_as_shipped() -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """``load_digits()``'s images, labels and class names, read once a process: each read parses
    its compressed CSV again (about 30 ms), for every trial of a search and every command a
    process runs. Read-only: :func:`_digits` hands out converted copies (``astype`` copies)."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images, target = bunch.images, bunch.target
    images.setflags(write=False)
    target.setflags(write=False)
    return images, target, tuple(str(n) for n in bunch.target_names)


def keras_cache_dir() -> Path:
    """The folder Keras keeps downloaded datasets in (``$KERAS_HOME/datasets``)."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(home) / "datasets"


_KERAS_BASE = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
#: Where Keras looks for each dataset's files before downloading (its ``get_file`` names).
KERAS_FILES: dict[str, list[tuple[str, str]]] = {
    "mnist": [(_KERAS_BASE + "mnist.npz", "mnist.npz")],
    "fashion_mnist": [
        (_KERAS_BASE + f, f"fashion-mnist/{f}")
        for f in (
            "train-labels-idx1-ubyte.gz",
            "train-images-idx3-ubyte.gz",
            "t10k-labels-idx1-ubyte.gz",
            "t10k-images-idx3-ubyte.gz",
        )
    ],
    "cifar10": [
        ("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz", "cifar-10-batches-py-target_archive")
    ],
    "cifar100": [
        ("https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz", "cifar-100-python-target_archive")
    ],
}


def offline_instructions(name: str) -> str:
    """Which file(s) to download on another machine and where to put them for Keras."""
    folder = keras_cache_dir()
    steps = [f"{url} → {folder / target}" for url, target in KERAS_FILES[name]]
    return "download on a machine with network access and place: " + "; ".join(steps)


def _keras_dataset(name: str, compiled: CompiledSpec) -> tuple[np.ndarray, ...]:
    from cnnspec.training.runtime import import_keras

    keras = import_keras()
    loader = getattr(keras.datasets, name)  # name comes from a closed enum (KERAS_DATASETS)
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)  # a black-holed network fails, not hangs
    try:
        (x_train, y_train), (x_test, y_test) = loader.load_data()
    except Exception as exc:
        text = str(exc)
        reason = text.split(" on http")[0].strip() or type(exc).__name__
        if " -- " in text:
            reason += f" ({text.split(' -- ', 1)[1].strip()})"
        raise source_error(
            f"expected the {name} dataset to be downloadable or cached; the download failed: {reason}",
            compiled,
            hint=f"{offline_instructions(name)}; or save the arrays as an .npz file (x_train, y_train, "
            "x_test, y_test) and use `source: {npz: path/to/file.npz}`",
        ) from None
    finally:
        socket.setdefaulttimeout(previous)
    return x_train, y_train, x_test, y_test


#: What reading a damaged or unusual .npz can raise: what a damaged zip archive raises
#: (:data:`cnnspec.fileio.ZIP_FAULTS`), and an array too large to allocate.
NPZ_FAULTS: tuple[type[BaseException], ...] = (*ZIP_FAULTS, MemoryError)

#: The first bytes of a zip archive (an .npz file); an empty archive starts with the end record.
_ZIP_PREFIXES = (ZIP_MAGIC, b"PK\x05\x06")


def _unreadable(
    path: Path, detail: str, compiled: CompiledSpec, where: SpecPath, hint: str | None = None
) -> SpecError:
    return source_error(f"expected a readable .npz file; {path.name}: {detail}", compiled, where, hint)


def _open_npz(path: Path, compiled: CompiledSpec, where: SpecPath) -> NpzFile:
    """The open archive (use it as a context manager).

    A file that is no zip archive is refused before NumPy sees it: ``np.load`` would read a
    ``.npy`` file whole (whatever size its header claims) and hand back an array, not an archive.
    """
    if not path.is_file():
        from cnnspec.training.filelist import not_found

        raise source_error(f"expected an .npz file; {not_found(path, folder=False)}", compiled, where)
    try:
        with path.open("rb") as handle:
            prefix = handle.read(4)
        if prefix not in _ZIP_PREFIXES:
            raise _unreadable(
                path,
                "not a zip archive",
                compiled,
                where,
                "save the arrays with numpy.savez or numpy.savez_compressed",
            )
        return np.load(path, allow_pickle=False)
    except SpecError:
        raise
    except NPZ_FAULTS as exc:
        raise _unreadable(path, str(exc) or type(exc).__name__, compiled, where) from None


def _promised_bytes(archive: NpzFile, key: str) -> tuple[int, int] | None:
    """What the ``.npy`` header of ``key`` promises (shape × item size) and what its member
    holds after the header (the zip's uncompressed size); ``None`` for a member that is no
    ``.npy`` array or holds objects (``np.load`` refuses those itself: no pickles)."""
    from numpy.lib import format as npy

    names = archive.zip.namelist()
    name = f"{key}.npy" if f"{key}.npy" in names else key
    info = archive.zip.getinfo(name)
    with archive.zip.open(info) as member:
        if member.read(len(npy.MAGIC_PREFIX)) != npy.MAGIC_PREFIX:
            return None  # np.load returns such a member's raw bytes; the shape checks refuse them
        member.seek(0)
        version = npy.read_magic(member)
        # version 3.0 differs from 2.0 only in UTF-8 field names, which do not change the sizes
        read_header = npy.read_array_header_1_0 if version == (1, 0) else npy.read_array_header_2_0
        shape, _, dtype = read_header(member)
        header_end = member.tell()
    if dtype.hasobject:
        return None
    return math.prod(int(d) for d in shape) * dtype.itemsize, info.file_size - header_end


def _npz_array(archive: NpzFile, key: str, path: Path, compiled: CompiledSpec, where: SpecPath) -> np.ndarray:
    """One array of an open .npz, its header checked against its member's size before NumPy
    allocates what the header claims (a forged shape would ask for terabytes)."""
    try:
        sizes = _promised_bytes(archive, key)
        if sizes is not None and sizes[0] != sizes[1]:
            promised, held = sizes
            raise _unreadable(
                path,
                f"the header of {key} promises {human_bytes(promised)} ({promised} bytes), "
                f"the member holds {held} bytes",
                compiled,
                where,
                "the file is damaged or was not written by numpy.savez; save the arrays again",
            )
        return np.asarray(archive[key])
    except SpecError:
        raise
    except MemoryError as exc:
        raise _unreadable(
            path,
            f"{key} does not fit in memory ({exc})",
            compiled,
            where,
            "use fewer images, or an image folder ({directory: …}), which is read batch by batch",
        ) from None
    except NPZ_FAULTS as exc:
        kind = type(exc)
        name = kind.__name__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__name__}"
        raise _unreadable(path, f"cannot read {key} ({name}: {exc})", compiled, where) from None


def _npz_names(
    archive: NpzFile, path: Path, compiled: CompiledSpec, where: SpecPath, key: str = "class_names"
) -> list[str]:
    """The ``class_names`` array (or another ``key``), as text (none: an empty list); a name
    given twice is a located error (:func:`_check_unique_names`)."""
    if key not in archive.files:
        return []
    # names saved as bytes (numpy's S dtype) are their text, not "b'cat'"
    names = [
        n.decode("utf-8", "backslashreplace") if isinstance(n, bytes) else str(n)
        for n in np.ravel(_npz_array(archive, key, path, compiled, where))
    ]
    _check_unique_names(names, f"the {key} of {path.name}", key, compiled, where)
    return names


def _repeated_name(names: list[str]) -> tuple[int, int] | None:
    """The positions of the first name given twice (compared as :func:`subsets.name_key`
    compares them: ``ému`` composed and decomposed are one name), or ``None``."""
    first: dict[str, int] = {}
    for index, name in enumerate(names):
        earlier = first.setdefault(subsets.name_key(str(name)), index)
        if earlier != index:
            return earlier, index
    return None


def _check_unique_names(
    names: list[str], what: str, key: str, compiled: CompiledSpec, where: SpecPath, *, columns: bool = False
) -> None:
    """Every class (label, value) name of a source given once: a located error naming the
    repeated name and both its positions otherwise, worded as ``data.classes`` refuses a class
    listed twice (:func:`cnnspec.analysis.classes.class_indices`). Two classes of one name
    were one class wherever results are keyed by name (metrics.json's ``per_class``, the
    report's table), which silently dropped the other one's figures. ``columns``: ``names``
    are the value columns of a table's header, after its file column: named as such, each at
    its column of the file, counted from 1 as a spreadsheet shows it (they were "class names"
    at ``column[0]``, their place among the value columns)."""
    repeated = _repeated_name(names)
    if repeated is None:
        return
    first, second = repeated
    counts = Counter(subsets.name_key(str(name)) for name in names)
    twice = [name for name, count in counts.items() if count > 1]  # in order of first appearance
    listed = ", ".join(repr(name) for name in twice[:10]) + (" …" if len(twice) > 10 else "")
    noun, results = ("value column", "value") if columns else ("class", "class")

    def at(index: int) -> str:
        return f"column {index + 2}" if columns else f"{key}[{index}]"

    raise source_error(
        f"expected each {noun} name once in {what}; received {names[second]!r} at {at(second)}, "
        f"the same name as {names[first]!r} at {at(first)} (repeated: {listed})",
        compiled,
        where,
        f"give each {noun} a distinct name: results are keyed by {results} name, so two {noun}s of "
        "one name would be reported as one",
    )


def _npz(
    path: Path, compiled: CompiledSpec, test_only: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """The four arrays of an ``.npz`` source and its class names. ``test_only`` (``--data`` of
    evaluate or visualize, which score the test arrays alone): a file of ``x_test`` and
    ``y_test`` only is read too, its test arrays standing for the training ones, which decide
    nothing the test arrays do not (the target kind, the pixel range) and are not scored
    (calibrate ``--data`` fits on the same test arrays)."""
    where: SpecPath = (*SOURCE, "npz")
    required = ("x_train", "y_train", "x_test", "y_test")
    with _open_npz(path, compiled, where) as archive:
        missing = [k for k in required if k not in archive.files]
        if test_only and {"x_train", "y_train"} <= set(missing):  # the test arrays are what is read
            needed = [k for k in ("x_test", "y_test") if k not in archive.files]
            if needed:
                raise source_error(
                    f"expected arrays x_test and y_test in {path.name}; missing {', '.join(needed)}",
                    compiled,
                    where,
                    hint=f"the file has: {', '.join(archive.files) or 'nothing'}",
                )
            test = [_npz_array(archive, k, path, compiled, where) for k in ("x_test", "y_test")]
            return test[0], test[1], test[0], test[1], _npz_names(archive, path, compiled, where)
        if missing:
            raise source_error(
                f"expected arrays {', '.join(required)} in {path.name}; missing {', '.join(missing)}",
                compiled,
                where,
                hint=f"the file has: {', '.join(archive.files) or 'nothing'}"
                + ("; evaluate, visualize and calibrate --data read a file of x_test and y_test alone"
                   if missing == ["x_train", "y_train"] else ""),
            )  # fmt: skip
        arrays = [_npz_array(archive, k, path, compiled, where) for k in required]
        names = _npz_names(archive, path, compiled, where)
    return arrays[0], arrays[1], arrays[2], arrays[3], names


def _listing(
    path: Path,
    config: DataConfig,
    class_names: list[str] | None,
    compiled: CompiledSpec,
    where: SpecPath,
    required: list[str] | None = None,
) -> Listing:
    """The file list of a folder or CSV (a located error when it can't be listed); a test or
    validation folder is labelled by the training ``class_names`` and needs a folder for each
    class of ``required`` (default: all). With ``data.classes``, only the folders of the
    classes it selects are walked (:func:`_selected_names`)."""
    from cnnspec.training.filelist import ListingError, index_folder, read_csv

    try:
        if config.kind == "csv":
            # a --data CSV is read with the run's column names, which its command cannot set
            hint = (
                f"rename the header's columns to {config.image_column!r} and {config.label_column!r}: "
                "--data is read with the run's column names (data.source.image_column and label_column)"
                if _evaluation_source(compiled)
                else None
            )
            return read_csv(path, config.image_column, config.label_column, class_names, hint)
        select = (
            None if config.classes is None else functools.partial(_selected_names, config.classes, compiled)
        )
        return index_folder(path, class_names, required, select)
    except ListingError as exc:
        raise source_error(str(exc), compiled, where, hint=exc.hint) from None


def _selected_names(entries: Sequence[Any], compiled: CompiledSpec, names: list[str]) -> list[str]:
    """The class names ``data.classes`` (``entries``) selects among ``names``; an entry that
    names no class is refused here, located at the entry: read as "all of them", every folder
    was walked, and an empty one that the selection never named was reported instead."""
    try:
        return [names[label] for label in subsets.class_indices(entries, names, len(names))]
    except subsets.UnknownClass as exc:
        raise source_error(exc.message, compiled, ("data", "classes", exc.index), exc.hint) from None


def _evaluation_source(compiled: CompiledSpec) -> bool:
    """Whether ``data.source`` is a ``--data`` folder or CSV that ``evaluate``, ``visualize`` or
    ``report`` put in place of the run's (``{directory: X, test_directory: X}``): every image of
    it is a test image, and nothing is trained on its training part, so it may list them twice."""
    loc = compiled.doc.locs.get(SOURCE)
    return loc is not None and loc.file == DATA_OPTION_FILE
