"""Data sources: ``digits``, ``shapes``, the Keras datasets, ``{npz: …}``, ``{directory: …}``,
``{csv: …}`` and ``{images: …, masks|labels|values: …}``.

Every source ends in one :class:`Dataset` (train/validation/test images with a channel axis,
targets of one kind, class names). The small sources are NumPy arrays; image folders and CSVs are
*streamed*: their splits are :class:`~cnnspec.training.filelist.ImageFiles` (file lists that
index like arrays) read batch by batch by :mod:`cnnspec.training.stream`, after a header check
of every file (:mod:`cnnspec.training.badfiles`). Splits are stratified and seeded, so the same
seed gives the same split (a folder's split is drawn from its file list, as it was from its
decoded images). Images keep their stored dtype (uint8 stays uint8, four times smaller
than float32); the pipeline scales them batch by batch (see ``data.rescale``).

Problems the user can fix (a missing file, a shape that does not fit ``input.shape``, labels
beyond the model's outputs, no network for a Keras dataset) are located :class:`SpecError`\\ s
raised before any training starts.
"""

from __future__ import annotations

import functools
import hashlib
import math
import os
import socket
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.lib.npyio import NpzFile

from cnnspec.analysis.datafit import output_loc, source_loc
from cnnspec.analysis.pixel_scaling import integer_pixel_max, model_scales_input, pipeline_scale
from cnnspec.analysis.settings_types import KERAS_CLASS_NAMES, KERAS_DATASETS, DataConfig, TrainConfig
from cnnspec.analysis.tasks import SHAPES_TARGET_KINDS
from cnnspec.errors import SpecError, SpecPath, did_you_mean, format_path, human_bytes
from cnnspec.fileio import ZIP_FAULTS, ZIP_MAGIC, sha256_file
from cnnspec.training import subsets

if TYPE_CHECKING:
    from cnnspec.analysis.compiled import CompiledSpec
    from cnnspec.training.filelist import Listing

SOURCE: SpecPath = ("data", "source")
DOWNLOAD_TIMEOUT_S = 20.0


@dataclass
class Dataset:
    """Images (N, H, W, C) and targets of each split, plus the names of the classes.

    The images keep their stored dtype. ``target`` says what ``y_*`` hold:

    - ``"class"``: int64 (N,) class indices (single-label classification);
    - ``"multilabel"``: float32 (N, K) 0/1, one column per label;
    - ``"regression"``: float32 (N, D), one column per value;
    - ``"mask"``: uint8 (N, H, W) class index per pixel (int32 beyond 255 classes; H, W the
      images'); for the ``shapes`` source class 0 is the background.

    ``class_names`` names the classes, labels, values or mask classes (K, D, or the mask's
    classes). A multi-output model's data has one target per output: ``target`` is then a
    dict output name → kind, each ``y_*`` a dict output name → array of that kind, and
    ``target_names`` holds each output's names (``class_names`` is then the first output's).

    The images are arrays, or :class:`~cnnspec.training.filelist.ImageFiles` for streamed
    sources (image folders and CSVs, class targets).
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: list[str]
    source: dict[str, Any] = field(default_factory=dict)
    target: str | dict[str, str] = "class"
    target_names: dict[str, list[str]] = field(default_factory=dict)
    #: streamed sources: files the header check left out (``data.on_bad_file: skip``)
    bad_files: list[tuple[Path, str]] = field(default_factory=list)
    #: streamed sources: hash the files' bytes, not their names, sizes and times (--hash-content)
    hash_content: bool = False
    #: things the user should know about the splits (a split without some of the data's
    #: classes); not part of the content hash
    notes: list[str] = field(default_factory=list)
    #: integer images: the value of a full-intensity pixel, which ``data.rescale: auto``
    #: divides by (255; 65535 for uint16 images: :func:`~cnnspec.analysis.pixel_scaling.integer_pixel_max`)
    pixel_max: float = 255.0
    #: a multi-output npz: where each output's mask class names come from, as messages say it
    #: (the npz file's class_names_<output>, or its class_names); not part of the content hash
    mask_names_said: dict[str, str] = field(default_factory=dict)
    #: with ``data.classes``: the data's classes before it selected some, in their label order,
    #: so a ``training.class_weight`` key naming a class it left out is refused, not read as a
    #: label index of the renumbered classes (:func:`class_weights`); not part of the content hash
    source_class_names: list[str] | None = None

    @property
    def streamed(self) -> bool:
        """The images are files read batch by batch (:class:`ImageFiles`), not arrays."""
        from cnnspec.training.filelist import ImageFiles

        return isinstance(self.x_train, ImageFiles)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.x_train.shape[1:])

    @property
    def integer_pixels(self) -> bool:
        return bool(np.issubdtype(self.x_train.dtype, np.integer))

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.x_train), "validation": len(self.x_val), "test": len(self.x_test)}

    def content_hash(self, moved: Sequence[tuple[str, str]] = ()) -> str:
        """SHA-256 over every split's dtype, shape and bytes, and the class names; for streamed
        files, over their names, sizes and modification times (or bytes: ``hash_content``) and
        the image size they are read at, so the pixels are never all read for it; their names
        and the class names in Unicode NFC, whichever form the file system wrote them in.
        ``moved``: folders the files were moved from since, as (now, before) pairs: the names
        are hashed as they were (:func:`~cnnspec.training.filelist.fingerprint`)."""
        digest = hashlib.sha256()
        if self.streamed:
            for files in (self.x_train, self.x_val, self.x_test):
                digest.update(f"{files.shape}".encode())
                digest.update(files.fingerprint(content=self.hash_content, moved=moved).encode())
            for labels in (self.y_train, self.y_val, self.y_test):
                digest.update(np.ascontiguousarray(labels, dtype="int64").tobytes())
            # in NFC, as the file names (a macOS copy of the folders is the same data)
            digest.update("\0".join(map(subsets.name_key, self.class_names)).encode())
            return digest.hexdigest()
        for part in (self.x_train, self.y_train, self.x_val, self.y_val, self.x_test, self.y_test):
            arrays = [part] if not isinstance(part, dict) else [part[k] for k in sorted(part)]
            for array in arrays:
                digest.update(f"{array.dtype.str}{array.shape}".encode())
                digest.update(np.ascontiguousarray(array).tobytes())
        digest.update("\0".join(self.class_names).encode())
        if self.target != "class":  # unchanged hashes for the classification data of older runs
            digest.update(repr(self.target).encode())
        return digest.hexdigest()


def _error(
    message: str,
    compiled: CompiledSpec,
    path: SpecPath = SOURCE,
    hint: str | None = None,
    *,
    key: bool = False,
) -> SpecError:
    # (an error about a mapping's key, not its value, is located at the key: `seven` of `{seven: 2}`)
    loc = compiled.doc.key_loc(path) if key else source_loc(compiled, path)
    return SpecError.single(message, loc, format_path(path), code="data", hint=hint)


# -- sources -------------------------------------------------------------------------------------
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
        raise _error(
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
    return _error(f"expected a readable .npz file; {path.name}: {detail}", compiled, where, hint)


def _open_npz(path: Path, compiled: CompiledSpec, where: SpecPath) -> NpzFile:
    """The open archive (use it as a context manager).

    A file that is no zip archive is refused before NumPy sees it: ``np.load`` would read a
    ``.npy`` file whole (whatever size its header claims) and hand back an array, not an archive.
    """
    if not path.is_file():
        from cnnspec.training.filelist import not_found

        raise _error(f"expected an .npz file; {not_found(path, folder=False)}", compiled, where)
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
    names: list[str], what: str, key: str, compiled: CompiledSpec, where: SpecPath
) -> None:
    """Every class (label, value) name of a source given once: a located error naming the
    repeated name and both its positions otherwise, worded as ``data.classes`` refuses a class
    listed twice (:func:`cnnspec.analysis.classes.class_indices`). Two classes of one name
    were one class wherever results are keyed by name (metrics.json's ``per_class``, the
    report's table), which silently dropped the other one's figures."""
    repeated = _repeated_name(names)
    if repeated is None:
        return
    first, second = repeated
    counts = Counter(subsets.name_key(str(name)) for name in names)
    twice = [name for name, count in counts.items() if count > 1]  # in order of first appearance
    listed = ", ".join(repr(name) for name in twice[:10]) + (" …" if len(twice) > 10 else "")
    raise _error(
        f"expected each class name once in {what}; received {names[second]!r} at {key}[{second}], "
        f"the same name as {names[first]!r} at {key}[{first}] (repeated: {listed})",
        compiled,
        where,
        "give each class a distinct name: results are keyed by class name, so two classes of one "
        "name would be reported as one",
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
                raise _error(
                    f"expected arrays x_test and y_test in {path.name}; missing {', '.join(needed)}",
                    compiled,
                    where,
                    hint=f"the file has: {', '.join(archive.files) or 'nothing'}",
                )
            test = [_npz_array(archive, k, path, compiled, where) for k in ("x_test", "y_test")]
            return test[0], test[1], test[0], test[1], _npz_names(archive, path, compiled, where)
        if missing:
            raise _error(
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
        select = None if config.classes is None else functools.partial(_selected_names, config.classes)
        return index_folder(path, class_names, required, select)
    except ListingError as exc:
        raise _error(str(exc), compiled, where, hint=exc.hint) from None


def _selected_names(entries: Sequence[Any], names: list[str]) -> list[str]:
    """The class names ``data.classes`` (``entries``) selects among ``names``; all of them when
    an entry names no class, which the selection itself then reports, located at the entry."""
    try:
        return [names[label] for label in subsets.class_indices(entries, names, len(names))]
    except subsets.UnknownClass:
        return names


# -- splitting -----------------------------------------------------------------------------------
Targets = Any  # an array, or a dict output name → array (multi-output)


def _take(y: Targets, index: np.ndarray) -> Targets:
    return {k: v[index] for k, v in y.items()} if isinstance(y, dict) else y[index]


class SplitTooLarge(ValueError):
    """A split that holds out so much that the part kept has fewer images than classes (or
    none): ``kept`` images for ``classes`` classes (1 for targets that are no classes)."""

    def __init__(self, n: int, held: int, classes: int) -> None:
        super().__init__(f"holding out {held} of {n} leaves {n - held} for {classes} classes")
        self.n, self.held, self.classes = n, held, classes

    @property
    def kept(self) -> int:
        return self.n - self.held


def _split_indices(
    n: int, stratify_by: np.ndarray | None, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded indices of the two parts, stratified by ``stratify_by`` (class indices) when
    every class has at least two examples. (scikit-learn's ``train_test_split`` on the indices
    picks the same examples as on the arrays themselves.)

    Raises :class:`SplitTooLarge` when the part kept would have fewer images than the classes
    present (class targets) or no image at all."""
    from sklearn.model_selection import train_test_split

    everything = np.arange(n)
    if fraction <= 0 or n < 2:
        return everything, everything[:0]
    n_test = max(1, round(n * fraction))
    stratify = None
    classes = 1
    if stratify_by is not None:
        # counted per label present, not by np.bincount, whose array is as long as the largest label
        _, counts = np.unique(stratify_by, return_counts=True)
        classes = len(counts)
        if counts.min() >= 2 and n_test >= classes:
            stratify = stratify_by
    if n - n_test < classes:
        raise SplitTooLarge(n, n_test, classes)
    part_a, part_b = train_test_split(everything, test_size=n_test, random_state=seed, stratify=stratify)
    return part_a, part_b


def _split(
    x: np.ndarray,
    y: Targets,
    fraction: float,
    seed: int,
    stratify: bool = True,
    *,
    compiled: CompiledSpec | None = None,
    key: str = "validation_split",
) -> tuple[np.ndarray, Targets, np.ndarray, Targets]:
    """A seeded split, stratified (class targets) when every class has at least two examples.
    A split that leaves fewer images than classes is a located error on ``data.<key>``."""
    n = len(x)
    try:
        part_a, part_b = _split_indices(
            n, y if stratify and not isinstance(y, dict) else None, fraction, seed
        )
    except SplitTooLarge as exc:
        if compiled is None:
            raise
        raise _split_error(exc, fraction, compiled, key) from None
    if not len(part_b):
        return x, y, x[:0], _take(y, part_b)
    return x[part_a], _take(y, part_a), x[part_b], _take(y, part_b)


def _split_error(exc: SplitTooLarge, fraction: float, compiled: CompiledSpec, key: str) -> SpecError:
    """``data.<key>`` holds out too much: the counts, and the largest fraction that would do."""
    path: SpecPath = ("data", key)
    given = "" if key in compiled.data else " (the default)"
    what = "training" if key == "validation_split" else "training and validation"
    kept = f"{exc.kept} {what} image{'' if exc.kept == 1 else 's'}"
    if exc.classes > 1:
        message = (
            f"expected a {key} that leaves at least one {what} image per class; {key}{given} "
            f"{fraction:g} of {exc.n} images holds out {exc.held} and leaves {kept} for "
            f"{exc.classes} classes"
        )
    else:
        message = (
            f"expected a {key} that leaves at least one {what} image; {key}{given} {fraction:g} "
            f"of {exc.n} images holds out all {exc.held}"
        )
    largest = math.floor((exc.n - exc.classes) / exc.n * 100) / 100
    hint = f"use a smaller {key}" + (f" (at most {largest:g} here)" if largest > 0 else "")
    hint += ", or more images" + (" per class" if exc.classes > 1 else "")
    return _error(message, compiled, path, hint)


def _missing_classes(names: list[str], splits: dict[str, np.ndarray], shown: int = 10) -> list[str]:
    """A note for each non-empty split without some of the classes the data has (its class
    list, ``names``: those of no split too, as a small data.limit leaves out): a tiny split (a
    large test_split or validation_split, a small data.limit) can lose classes."""
    given = np.concatenate([np.asarray(y, dtype="int64") for y in splits.values()])
    present = np.arange(max(len(names), int(given.max(initial=-1)) + 1))
    notes: list[str] = []
    for split, y in splits.items():
        if not len(y):
            continue
        missing = np.setdiff1d(present, np.asarray(y, dtype="int64"))
        if not len(missing):
            continue
        labels = [names[i] if i < len(names) else str(i) for i in missing.tolist()]
        listed = ", ".join(labels[:shown]) + (
            f", … ({len(labels) - shown} more)" if len(labels) > shown else ""
        )
        notes.append(
            f"the {split} split ({len(y)} image{'' if len(y) == 1 else 's'}) has no images of "
            f"{len(missing)} of the data's {len(present)} classes: {listed}"
        )
    return notes


def _limit(x: np.ndarray, y: Targets, limit: int | None, seed: int) -> tuple[np.ndarray, Targets]:
    if limit is None or len(x) <= limit:
        return x, y
    order = np.random.default_rng(seed).permutation(len(x))[:limit]
    order.sort()
    return x[order], _take(y, order)


def _labels(
    y: np.ndarray, compiled: CompiledSpec, what: str, config: TrainConfig | None = None
) -> np.ndarray:
    """Class labels as int64 (n,), or a located error; ``config``: the model's classes, which
    a label must fit (:func:`_check_largest_label`; ``None``: a multi-output model's)."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise _error(
            f"expected {what} labels of shape (n,) or (n, 1); received shape {tuple(y.shape)}",
            compiled,
            hint="store class indices, not one-hot rows",
        )
    if y.size and np.issubdtype(y.dtype, np.floating) and not np.all(np.isfinite(y)):
        raise _error(  # before np.mod, which warns on them
            f"expected integer class labels in {what}; found {_non_finite_name(y)}",
            compiled,
            hint="store a class index (0, 1, …) for every image",
        )
    whole_floats = np.issubdtype(y.dtype, np.floating) and bool(np.all(np.mod(y, 1) == 0))
    if y.size and not np.issubdtype(y.dtype, np.integer) and not whole_floats:
        # (whole floats are cast below, once their range is checked: 1e30 has no int64)
        raise _error(f"expected integer class labels in {what}; received dtype {y.dtype}", compiled)
    if y.size and y.min() < 0:
        raise _error(f"expected class labels ≥ 0 in {what}; received {int(y.min())}", compiled)
    if y.size:  # before astype, which wraps a uint64 beyond int64 (or a float) to another label
        _check_largest_label(int(y.max()), what, compiled, config)
    return y.astype("int64")


def _check_largest_label(top: int, what: str, compiled: CompiledSpec, config: TrainConfig | None) -> None:
    """A label beyond :data:`~cnnspec.training.targets.MAX_CLASS_INDEX` refused from its value,
    before anything is sized by it (the class counts of a split, the class names, the
    relabelling of ``data.classes``): as more classes than a classifier's outputs when the
    model says how many it takes (the error smaller labels get from :func:`check_fit`), else
    as no class index."""
    from cnnspec.training.targets import MAX_CLASS_INDEX

    if top <= MAX_CLASS_INDEX:
        return  # the model's fit is checked once the data is split (check_fit), names listed
    if config is not None and not config.task_path and config.data.classes is None:
        from dataclasses import replace

        from cnnspec.analysis.datafit import check_class_count

        try:  # no names listed: the data would have top + 1 of them
            check_class_count(top + 1, compiled, config)
        except SpecError as exc:  # its hint (that many output units) would not help here
            hint = f"the largest label, {top}, is no class index: store a class index (0, 1, …) per image"
            raise SpecError([replace(d, hint=hint) for d in exc.diagnostics]) from None
    raise _error(
        f"expected class labels of at most {MAX_CLASS_INDEX:,} in {what}; received {top}",
        compiled,
        hint="store a class index (0, 1, …) for every image, not an ID or a value",
    )


#: How many images one step of the NaN/infinity scan looks at (its mask is a quarter of a
#: float32 chunk, never of the whole array).
_FINITE_CHUNK = 1024


def _non_finite_name(values: np.ndarray) -> str:
    """What the first non-finite value of ``values`` is: ``NaN``, ``infinity`` or ``-infinity``."""
    value = float(values[~np.isfinite(values)].flat[0])
    return "NaN" if math.isnan(value) else ("infinity" if value > 0 else "-infinity")


def _first_non_finite(x: np.ndarray) -> tuple[int, ...] | None:
    """The index of the first NaN or ±infinity in float images ``x`` (``None``: none), or of
    the first value beyond float32's range in wider floats (the pipeline's float32 would make
    it infinity)."""
    from cnnspec.training.targets import FLOAT32_MAX

    wide = x.dtype.itemsize > 4
    for start in range(0, len(x), _FINITE_CHUNK):
        chunk = x[start : start + _FINITE_CHUNK]
        bad = ~np.isfinite(chunk)
        if wide:
            bad |= np.abs(chunk) > FLOAT32_MAX  # NaN compares False: no warning
        if not bad.any():
            continue
        first = [int(i) for i in np.argwhere(bad)[0]]
        return (start + first[0], *first[1:])
    return None


def _images(x: np.ndarray, compiled: CompiledSpec, what: str, origin: str = "") -> np.ndarray:
    """``x`` as (n, H, W, C) numeric images; ``origin`` says where they come from (`` of d.npz``)."""
    x = np.asarray(x)
    if x.ndim == 3:
        x = x[..., None]  # grayscale without a channel axis (MNIST layout)
    if x.ndim != 4:
        raise _error(
            f"expected {what} images shaped (n, height, width[, channels]); received {tuple(x.shape)}",
            compiled,
        )
    if not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)):
        raise _error(f"expected numeric images in {what}; received dtype {x.dtype}", compiled)
    if np.issubdtype(x.dtype, np.floating):  # a NaN pixel makes every loss NaN, silently
        bad = _first_non_finite(x)
        if bad is not None:
            image, row, column, channel = bad
            value = float(x[bad])
            if np.isfinite(x[bad]):  # finite in its dtype (a longdouble's 1e400 too), not in float32
                shown = f"{value:g}" if math.isfinite(value) else str(x[bad])  # (beyond a float too)
                raise _error(
                    f"expected pixel values within float32's range in the {what} images{origin}; "
                    f"image {image} has {shown} at row {row}, column {column}, channel {channel}",
                    compiled,
                    hint="images are trained as float32 (at most ±3.4e38): scale the pixels down, "
                    "or leave those images out",
                )
            raise _error(
                f"expected finite pixel values in the {what} images{origin}; image {image} has "
                f"{_non_finite_name(x[image])} at row {row}, column {column}, channel {channel}",
                compiled,
                hint="replace the NaN and infinite values (numpy.nan_to_num) or leave those images out",
            )
    return x


def pixel_range(x: np.ndarray) -> tuple[float, float] | None:
    """The lowest and highest finite pixel of the images ``x`` (``None``: it has none). Float
    images are read a chunk at a time: the mask of a whole large array's finite values, and its
    copy of them, would double the memory the images take."""
    if not x.size:
        return None
    if x.dtype.kind not in "fc":  # (integers are all finite)
        return float(x.min()), float(x.max())
    low, high = np.inf, -np.inf
    for start in range(0, len(x), 1024):
        part = x[start : start + 1024]
        finite = part[np.isfinite(part)]
        if finite.size:
            low, high = min(low, float(finite.min())), max(high, float(finite.max()))
    return (low, high) if low <= high else None


def _pixel_max(
    x_train: np.ndarray, x_test: np.ndarray, config: TrainConfig, compiled: CompiledSpec, origin: str
) -> float:
    """:attr:`Dataset.pixel_max` of integer images, from the training images' dtype (and their
    values, for dtypes that do not say the depth). A located error when ``data.rescale: auto``
    would divide by it and the depth is unknown, or the test images' depth differs (one factor
    scales every split)."""
    if config.data.rescale != "auto" or model_scales_input(compiled.ir):
        return 255.0  # not divided by: a number or null scales, or the model does
    if (x_train.dtype.kind in "iu") != (x_test.dtype.kind in "iu"):  # auto would divide one only
        raise _error(
            f"expected training and test images of one kind for data.rescale: auto, which divides "
            f"integer pixels and keeps float ones; the training images{origin} are "
            f"{x_train.dtype.name} and the test images {x_test.dtype.name}",
            compiled,
            _source_path(config.data),
            hint="store both splits in one dtype, at one scale",
        )
    if x_train.dtype.kind not in "iu":
        return 255.0  # float pixels are taken as they are
    depths: dict[str, float] = {}
    for what, x in (("training", x_train), ("test", x_test)):
        if x.dtype.kind not in "iu":
            continue
        low, high = pixel_range(x) or (0.0, 0.0)
        depth = integer_pixel_max(x.dtype.name, low, high)
        if depth is None:
            raise _rescale_error(
                f"expected 8-bit (0–255) or uint16 {what} images for data.rescale: auto; the {what} "
                f"images{origin} are {x.dtype.name} from {low:g} to {high:g}",
                high,
                config.data,
                compiled,
            )
        depths[what] = depth
    if depths.get("test", depths["training"]) != depths["training"]:
        raise _rescale_error(
            f"expected training and test images of one depth for data.rescale: auto; the training "
            f"images{origin} are {x_train.dtype.name} (0–{depths['training']:g}) and the test images "
            f"{x_test.dtype.name} (0–{depths['test']:g})",
            max(depths.values()),
            config.data,
            compiled,
        )
    return depths["training"]


def _source_path(data: DataConfig) -> SpecPath:
    """Where a fault of the source's arrays is reported: at its file for an npz source."""
    return (*SOURCE, "npz") if data.kind == "npz" else SOURCE


def _rescale_error(message: str, high: float, data: DataConfig, compiled: CompiledSpec) -> SpecError:
    """``data.rescale: auto`` cannot scale the integer images: a located error asking for an
    explicit ``data.rescale`` (at ``data.rescale`` when the spec writes it)."""
    path: SpecPath = ("data", "rescale") if "rescale" in compiled.data else _source_path(data)
    example = f" (rescale: {1 / high:.6g} maps 0–{high:g} to 0–1)" if high > 0 else ""
    return _error(
        message,
        compiled,
        path,
        f"set data.rescale to the factor that maps the pixels to [0, 1]{example}, or null to feed "
        "them as stored; or store them as uint8 or uint16",
    )


def _shapes(data: DataConfig) -> tuple[np.ndarray, Targets, Any, Any]:
    """The ``shapes`` source: images, targets (one array, or one per output), target kinds,
    names (:mod:`cnnspec.shapes`)."""
    from cnnspec.shapes import ShapesOptions, generate

    options = dict(data.options)
    options["image_size"] = tuple(options["image_size"])
    shapes = generate(ShapesOptions(**options))
    kinds = SHAPES_TARGET_KINDS
    if isinstance(data.target, dict):
        made = {name: shapes.target(wanted) for name, wanted in data.target.items()}
        y = {name: array for name, (array, _) in made.items()}
        names = {name: labels for name, (_, labels) in made.items()}
        return shapes.images, y, {n: kinds.get(t, t) for n, t in data.target.items()}, names
    wanted = data.target or "class"
    array, labels = shapes.target(wanted)
    return shapes.images, array, kinds.get(wanted, wanted), labels


def _infer_kind(y: np.ndarray) -> str:
    """A multi-output npz array's target kind, from its shape and dtype: (n, H, W) masks;
    integer (n,) or (n, 1) class indices; integer (n, K) of 0/1 multi-hot labels; floats:
    values."""
    if y.ndim >= 3:
        return "mask"
    integers = np.issubdtype(y.dtype, np.integer) or y.dtype == bool
    if integers and (y.ndim == 1 or (y.ndim == 2 and y.shape[1] == 1)):  # (n, 1): Keras' layout
        return "class"
    if y.ndim == 2 and y.shape[1] > 1 and integers and bool(np.all((y == 0) | (y == 1))):
        return "multilabel"
    return "regression"


def _npz_targets(
    path: Path, data: DataConfig, compiled: CompiledSpec, test_only: bool = False
) -> tuple[np.ndarray, Targets, np.ndarray, Targets, Any, dict[str, list[str]], dict[str, list[str]]] | None:
    """A multi-output npz (``y_train_<output>``, ``y_test_<output>`` for every output), or
    ``None`` when the file has the single-target layout. ``test_only`` (as :func:`_npz`): a file
    of ``x_test`` and ``y_test_<output>`` alone is read too, its test arrays standing for both."""
    outputs = list(compiled.ir.outputs)
    if len(outputs) < 2:
        return None
    where: SpecPath = (*SOURCE, "npz")
    with _open_npz(path, compiled, where) as archive:
        files = set(archive.files)
        if any(k.startswith("y_train_") for k in files):
            splits: tuple[str, ...] = ("train", "test")
        elif test_only and any(k.startswith("y_test_") for k in files):
            splits = ("test",)
        else:
            _refuse_one_target(files, outputs, path, compiled, test_only)
            return None
        wanted = [*[f"x_{s}" for s in splits], *[f"y_{s}_{o}" for o in outputs for s in splits]]
        missing = [k for k in wanted if k not in files]
        if missing:
            raise _error(
                f"expected a target for every model output in {path.name}; missing {', '.join(missing)}",
                compiled,
                where,
                hint=f"store {' and '.join(f'y_{s}_<output>' for s in splits)} for each output id",
            )
        arrays = {k: _npz_array(archive, k, path, compiled, where) for k in wanted}
        flat = _npz_names(archive, path, compiled, where)
        own = {o: _npz_names(archive, path, compiled, where, f"class_names_{o}") for o in outputs}
        keys = {f"class_names_{o}" for o in outputs}
        stray = sorted(k for k in files if k.startswith("class_names_") and k not in keys)
        if stray:  # (a misspelt output: its names were left out without a word)
            raise _error(
                f"expected class_names_<output> for outputs of the model; {path.name} has {stray[0]}, "
                f"and the model's outputs are {', '.join(outputs)}",
                compiled,
                where,
                hint=did_you_mean(stray[0], sorted(keys)) or "name it after an output id, or leave it out",
            )
    first = splits[0]  # (the test arrays stand for the training ones in a test-only file)
    y_train = {o: arrays[f"y_{first}_{o}"] for o in outputs}
    y_test = {o: arrays[f"y_test_{o}"] for o in outputs}
    kinds = {o: _infer_kind(y_train[o]) for o in outputs}
    # `class_names` names the classifiers' classes (a mask's, where no output is a classifier);
    # `class_names_<output>` one output's, whatever it is
    named = "class" if "class" in kinds.values() else "mask"
    names = {o: own[o] or (flat if kinds[o] == named else []) for o in outputs}
    return arrays[f"x_{first}"], y_train, arrays["x_test"], y_test, kinds, names, own


def _refuse_one_target(
    files: set[str], outputs: list[str], path: Path, compiled: CompiledSpec, test_only: bool
) -> None:
    """An npz of one target (``y_train``, ``y_test``: Keras' layout) for a model of several
    ``outputs``: a located error naming the arrays each output needs (its targets were checked
    as one output's, and refused as labels or masks of the wrong shape). A file with neither is
    left to :func:`_npz`, which names what is missing."""
    given = [key for key in ("y_train", "y_test") if key in files]
    if not given:
        return
    splits = ("test",) if test_only else ("train", "test")
    each = " and ".join(f"y_{split}_<output>" for split in splits)
    wanted = ", ".join(f"y_{split}_{output}" for output in outputs for split in splits)
    raise _error(
        f"expected {each} arrays for each of the model's {len(outputs)} outputs ({', '.join(outputs)}); "
        f"{path.name} has {' and '.join(given)}, one target",
        compiled,
        (*SOURCE, "npz"),
        f"a model of several outputs takes a target per output: store {wanted}",
    )


def _npz_kind(y_train: np.ndarray, data: DataConfig, compiled: CompiledSpec) -> str:
    """What a single-target npz holds: as stated, masks for (n, H, W) arrays, else the task's
    (masks for a segmentation model too: other arrays are refused as masks of the wrong shape,
    not as class labels)."""
    from cnnspec.analysis.settings_data import default_target

    if isinstance(data.target, str):
        return data.target
    if np.ndim(y_train) >= 3:
        return "mask"
    return default_target(compiled)


def _check_targets(
    y: Targets,
    kind: Any,
    what: str,
    compiled: CompiledSpec,
    x: np.ndarray,
    names: Any,
    config: TrainConfig | None = None,
) -> Targets:
    """Class indices as before; other kinds through :func:`targets.check_target`. ``config``:
    the model a single target's class labels must fit (:func:`_labels`)."""
    from cnnspec.training.targets import check_target

    if isinstance(y, dict):  # each output's classes are checked against it by task_data
        return {k: _check_targets(v, kind[k], what, compiled, x, names.get(k)) for k, v in y.items()}
    if kind == "class":
        return _labels(y, compiled, what, config)
    mask_names = names if kind == "mask" and names else None
    return check_target(y, kind, what, compiled, SOURCE, image_shape=x.shape[1:3], names=mask_names)


def _check_npz_names(
    names: list[str],
    kind: str,
    y_train: np.ndarray,
    y_test: np.ndarray,
    path: Path,
    compiled: CompiledSpec,
    key: str = "class_names",
    config: TrainConfig | None = None,
    output: str | None = None,
) -> None:
    """An npz's ``class_names`` name every class (at least the largest index + 1), label or value
    (exactly one per column): a located error naming both counts otherwise, where they used to
    be replaced by numbers silently. Masks are checked against them by :func:`check_target`,
    and they against the classes of the segmentation output they are for (``config``'s output
    ``output``, or its only one): :func:`check_mask_names`."""
    if not names:
        return
    if kind == "mask":
        check_mask_names(names, config, output, f"{key} of {path.name}", compiled, (*SOURCE, "npz"), key)
        return
    if kind == "class":
        count = int(max(y_train.max(initial=-1), y_test.max(initial=-1))) + 1
        labels = f"labels 0–{count - 1}" if count > 1 else "label 0"
        fits, what = len(names) >= count, f"{count} classes ({labels})"
    else:
        count = int(y_train.shape[1])
        fits, what = len(names) == count, f"{count} {'labels' if kind == 'multilabel' else 'values'}"
    if fits:
        return
    shown = ", ".join(names[:5]) + (", …" if len(names) > 5 else "")
    raise _error(
        f"expected a name for each of the {what} in {path.name}; its {key} has {len(names)} ({shown})",
        compiled,
        (*SOURCE, "npz"),
        "store one name per class (or label, or value column) in index order, or leave "
        f"{key} out to number them",
    )


def check_mask_names(
    names: list[str],
    config: TrainConfig | None,
    output: str | None,
    said: str,
    compiled: CompiledSpec,
    where: SpecPath,
    key: str,
) -> None:
    """Mask class names given (``said``: where, as the message says it) must name each class of
    the segmentation output the masks are for (``output``, or the model's only output): too few
    were replaced by numbers everywhere (reports, metrics.json, evaluate, predict) while the
    export's record kept them. A located error at ``where``, as a classifier's class names."""
    outs = [o for o in (config.tasks if config else ()) if output is None or o.name == output]
    if len(outs) != 1 or outs[0].task != "segmentation" or len(names) >= outs[0].classes:
        return
    classes = outs[0].classes
    whose = "the output's" if output is None else f"the output {output}'s"
    shown = ", ".join(map(str, names[:5])) + (", …" if len(names) > 5 else "")
    raise _error(
        f"expected a name for each of {whose} {classes} classes; {said} has {len(names)} ({shown})",
        compiled,
        where,
        f"name every class of the output in index order (or leave {key} out to number them), "
        "or give the output as many channels as there are classes",
    )


def _count(y: Targets) -> int:
    return len(next(iter(y.values()))) if isinstance(y, dict) else len(y)


def _check_output_counts(
    splits: dict[str, tuple[np.ndarray, dict[str, np.ndarray]]], compiled: CompiledSpec
) -> None:
    """A multi-output npz's targets: as many rows as images for every output, each output's
    training then test targets in turn (an output after the first with fewer rows stopped the
    split with an IndexError)."""
    outputs = next(iter(splits.values()))[1]
    for output in outputs:
        for what, (x, y) in splits.items():
            if len(y[output]) != len(x):
                raise _error(
                    f"expected as many {what} targets for output {output} as images ({len(x)}); "
                    f"received {len(y[output])}",
                    compiled,
                    (*SOURCE, "npz"),
                    hint=f"store one row of y_{'train' if what == 'training' else 'test'}_{output} per image "
                    f"of x_{'train' if what == 'training' else 'test'}, in the same order",
                )


def _names_for(kind: str, y: np.ndarray, names: list[str], *parts: np.ndarray) -> list[str]:
    """The names of a target: as given when they fit, else numbered."""
    from cnnspec.training.targets import default_names

    if kind == "class":
        n_classes = int(max(p.max(initial=0) for p in (y, *parts))) + 1
        return names if names and len(names) >= n_classes else [str(i) for i in range(n_classes)]
    if kind in ("multilabel", "regression"):
        return names if len(names) == y.shape[1] else default_names(kind, y)
    top = max(int(p.max(initial=0)) for p in (y, *parts)) + 1
    return names if names and len(names) >= top else [str(i) for i in range(top)]


def load_dataset(
    compiled: CompiledSpec, config: TrainConfig, seed: int, *, test_only: bool = False
) -> Dataset:
    """Load, split and check the spec's data (located errors for every user mistake).
    ``test_only``: only the test split is used (evaluate, visualize and calibrate ``--data``), so an
    ``.npz`` of test arrays alone is read (:func:`_npz`)."""
    from cnnspec.analysis.datafit import mask_names_said
    from cnnspec.training import targets

    data = config.data
    names: Any = []
    said_names: dict[str, str] = {}  # a multi-output npz: where each output's names come from
    target: Any = "class"
    test_fraction = data.test_split if data.test_split is not None else 0.2
    test_key: dict[str, Any] = {"compiled": compiled, "key": "test_split"}
    source = data.describe()
    readers = {
        "image_masks": (targets.read_image_masks, "mask"),
        "image_labels": (targets.read_image_labels, "multilabel"),
        "image_values": (targets.read_image_values, "regression"),
    }
    if data.kind == "digits":
        x, y, names = _digits()
        x_train, y_train, x_test, y_test = _split(x, y, test_fraction, seed, **test_key)
    elif data.kind == "shapes":
        x, y, target, names = _shapes(data)
        x_train, y_train, x_test, y_test = _split(
            x, y, test_fraction, seed, stratify=target == "class", **test_key
        )
    elif data.kind in readers:
        reader, target = readers[data.kind]
        table = data.options.get("classes")
        if isinstance(table, list):  # a masks' classes list (a table's keys are unique already)
            where: SpecPath = (*SOURCE, "classes")
            _check_unique_names([str(n) for n in table], "data.source.classes", "classes", compiled, where)
        x, y, names = reader(data, compiled)
        if target == "mask" and table:  # (a table of colours names each class once)
            said = "data.source.classes"
            check_mask_names(
                [str(n) for n in table], config, None, said, compiled, (*SOURCE, "classes"), "classes"
            )
        if target == "regression":  # a values table's header names its columns
            where = (*SOURCE, "values")
            _check_unique_names(list(names), "the header of the values table", "column", compiled, where)
        x_train, y_train, x_test, y_test = _split(x, y, test_fraction, seed, stratify=False, **test_key)
    elif data.kind in KERAS_DATASETS:
        x_train, y_train, x_test, y_test = _keras_dataset(data.kind, compiled)
        names = list(KERAS_CLASS_NAMES.get(data.kind, []))
    elif data.kind == "npz":
        assert data.path is not None
        several = _npz_targets(data.path, data, compiled, test_only)
        if several is not None:
            x_train, y_train, x_test, y_test, target, names, own_names = several
        else:
            x_train, y_train, x_test, y_test, names = _npz(data.path, compiled, test_only)
            target = _npz_kind(y_train, data, compiled)
        source["file_sha256"] = sha256_file(data.path)
    else:
        dataset = _streamed(compiled, data, seed, test_fraction, source)
        check_fit(dataset, compiled, config, test_only=test_only)
        return dataset
    origin = f" of {data.path.name}" if data.kind == "npz" and data.path is not None else ""
    # a --data file of test arrays alone: they stand for the training ones, and are called test
    train_what = "test" if x_train is x_test else "training"
    x_train = _images(x_train, compiled, train_what, origin)
    x_test = _images(x_test, compiled, "test", origin)
    if x_test.shape[1:] != x_train.shape[1:]:  # one model reads both: found here, not after training
        raise _error(
            f"expected test images of the training images' shape {list(x_train.shape[1:])}; the "
            f"test images{origin} have shape {list(x_test.shape[1:])}",
            compiled,
            _source_path(data),
            hint="store the test images at the training images' size and channels",
        )
    pixel_max = _pixel_max(x_train, x_test, config, compiled, origin)
    y_train = _check_targets(y_train, target, train_what, compiled, x_train, names, config)
    y_test = _check_targets(y_test, target, "test", compiled, x_test, names, config)
    if isinstance(y_train, dict):  # every output's targets, in the model's order (not the first's alone)
        _check_output_counts({"training": (x_train, y_train), "test": (x_test, y_test)}, compiled)
    elif len(x_train) != _count(y_train) or len(x_test) != _count(y_test):
        raise _error(
            f"expected as many labels as images; received {len(x_train)} training images with "
            f"{_count(y_train)} labels and {len(x_test)} test images with {_count(y_test)} labels",
            compiled,
        )
    if len(x_train) == 0 or len(x_test) == 0:
        which = "training" if len(x_train) == 0 else "test"
        raise _error(f"expected at least one {which} image; the source has none", compiled)
    if target != "class" and (data.classes is not None or data.per_class is not None):
        key = "classes" if data.classes is not None else "per_class"
        raise _error(
            f"data.{key} selects classification labels; this source's targets are {target!r}",
            compiled,
            ("data", key),
            "leave it out, or use a source with class labels",
        )
    if data.kind == "npz":
        assert data.path is not None
        if not isinstance(target, dict):
            _check_npz_names(names, target, y_train, y_test, data.path, compiled, config=config)
        else:  # each output's names: its class_names_<output>, or class_names given to it
            for output, kind in target.items():
                key = f"class_names_{output}" if own_names.get(output) else "class_names"
                said_names[output] = mask_names_said("npz", key)
                _check_npz_names(
                    names[output],
                    kind,
                    y_train[output],
                    y_test[output],
                    data.path,
                    compiled,
                    key,
                    config,
                    output,
                )
        # the factor is known only once the file is read: lock.json records it
        source["rescale"] = pipeline_scale(data, compiled.ir, x_train.dtype.kind in "iu", pixel_max)
    class_notes: list[str] = []
    source_names: list[str] | None = None
    if data.classes is not None:
        x_train, y_train, x_test, y_test, names, class_notes, source_names = _classes(
            x_train, y_train, x_test, y_test, names, data.classes, compiled, test_only=test_only
        )
    x_train, y_train, x_val, y_val = _split(
        x_train, y_train, data.validation_split, seed, target == "class", compiled=compiled
    )
    x_train, y_train = subsets.per_class(x_train, y_train, data.per_class, seed)
    x_train, y_train = _limit(x_train, y_train, data.limit, seed)
    x_val, y_val = _limit(x_val, y_val, data.limit, seed)
    x_test, y_test = _limit(x_test, y_test, data.limit, seed)
    target_names: dict[str, list[str]] = {}
    if isinstance(target, dict):
        target_names = {
            k: _names_for(kind, y_train[k], names.get(k) or [], y_val[k], y_test[k])
            for k, kind in target.items()
        }
        # class_names (part of content_hash, so kept for older runs) is the first *target's*,
        # not the model's first output's: each output's own names are target_names[output]
        names = next(iter(target_names.values()))
    else:
        names = _names_for(target, y_train, names, y_val, y_test)
    dataset = Dataset(x_train, y_train, x_val, y_val, x_test, y_test, names, source, target, target_names)
    dataset.pixel_max = pixel_max
    dataset.mask_names_said = said_names
    dataset.source_class_names = source_names
    if target == "class":
        dataset.notes = _missing_classes(names, {"training": y_train, "validation": y_val, "test": y_test})
    dataset.notes[:0] = class_notes
    check_fit(dataset, compiled, config, test_only=test_only)
    dataset.notes[len(class_notes) : len(class_notes)] = weight_key_notes(config, dataset)
    return dataset


def _classes(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    names: list[str],
    wanted: tuple[str | int, ...],
    compiled: CompiledSpec,
    *,
    test_only: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[str], list[str], list[str]]:
    """``data.classes``: the listed classes only, relabelled in the listed order, names kept;
    the notes on numbers read as class names (:func:`subsets.class_notes`); and the data's
    class names before the selection (:attr:`Dataset.source_class_names`).
    ``test_only`` (``--data`` of a run trained with ``data.classes``): every test image must
    be of a selected class; one of another is refused naming its class (the selection left
    it out silently, and the run was scored on part of ``--data``), as a class folder is."""
    count = int(max(y_train.max(initial=0), y_test.max(initial=0))) + 1
    names = names if len(names) >= count else [str(i) for i in range(count)]
    try:
        labels = subsets.class_indices(wanted, names, count)
    except subsets.UnknownClass as exc:
        raise _error(exc.message, compiled, ("data", "classes", exc.index), exc.hint) from None
    if test_only:
        _check_test_classes(y_test, names, labels, compiled)
    before = {"training": np.unique(y_train), "test": np.unique(y_test)}
    x_train, y_train = subsets.select(x_train, y_train, labels)
    x_test, y_test = subsets.select(x_test, y_test, labels)
    # (--data: its training arrays, if any, are not scored; a test-only file's stand for its test)
    selected = {"test": y_test} if test_only else {"training": y_train, "test": y_test}
    _check_selected(selected, before, names, labels, compiled)
    notes = subsets.class_notes(wanted, names, count)
    return x_train, y_train, x_test, y_test, [names[label] for label in labels], notes, list(names)


#: How the refusal of ``--data`` test images of classes the run does not have begins
#: (:func:`_check_test_classes`; reporting/run.py words it for ``--data``).
UNSELECTED_CLASSES = "expected --data test images of the run's classes only"


def _check_test_classes(
    y_test: np.ndarray, names: list[str], labels: list[int], compiled: CompiledSpec
) -> None:
    """A located error on ``data.classes`` when ``--data``'s test labels (``y_test``, labelled
    as the run's source before the selection) hold a class the selection does not pick."""
    found, counts = np.unique(y_test, return_counts=True)
    extra = [(int(label), int(n)) for label, n in zip(found, counts, strict=True) if int(label) not in labels]
    if not extra:
        return
    images = sum(n for _, n in extra)
    said = ", ".join(f"{names[label]!r} ({n} image{'s' if n != 1 else ''})" for label, n in extra[:10])
    more = f" and {len(extra) - 10} more" if len(extra) > 10 else ""
    raise _error(
        f"{UNSELECTED_CLASSES} ({', '.join(repr(names[label]) for label in labels)}); received "
        f"{images} of {len(y_test)} test images of classes the run does not have: {said}{more}",
        compiled,
        ("data", "classes"),
        hint="leave the images of those classes out of --data (they would be left out unscored)",
    )


def _check_selected(
    selected: dict[str, np.ndarray],
    before: dict[str, np.ndarray],
    names: list[str],
    labels: list[int],
    compiled: CompiledSpec,
) -> None:
    """A located error on ``data.classes`` when it leaves the training or the test images
    (``selected``) empty: the run would train on nothing, or train and then fail to evaluate
    (an empty test set). ``before``: the labels each split had before the selection."""
    for split, y in selected.items():
        if len(y):
            continue
        had = ", ".join(repr(names[label]) for label in before[split].tolist()) or "none"
        raise _error(
            f"expected {split} images of the classes data.classes selects; the source's {split} "
            f"images have none of {', '.join(repr(names[label]) for label in labels)}",
            compiled,
            ("data", "classes"),
            hint=f"select classes that have {split} images (the {split} images are of {had})",
        )


def _streamed(
    compiled: CompiledSpec, data: DataConfig, seed: int, test_fraction: float, source: dict[str, Any]
) -> Dataset:
    """A folder or CSV as :class:`ImageFiles` splits: listed, header-checked, split by seed from
    the file list (a ``train/``/``validation/``/``test/`` folder as given); nothing decoded."""
    from cnnspec.training.filelist import ImageFiles, presplit_folders
    from cnnspec.training.imagefiles import channels_for

    assert data.path is not None and data.image_size is not None
    where: SpecPath = (*SOURCE, data.kind)
    test_where: SpecPath = (*SOURCE, "test_directory" if data.kind == "directory" else "test_csv")
    given = presplit_folders(data.path) if data.kind == "directory" else None
    if given and data.test_path is not None:
        if not _evaluation_source(compiled):  # (--data X is X twice: its split layout is read before)
            _check_no_test_folder(given, data, compiled)
        given = None  # (evaluate's folder of classes named like splits: read as it is)
    if given:
        _check_split_settings(given, data, compiled)
    train = _listing(given["train"] if given else data.path, data, None, compiled, where)
    names = train.class_names
    chosen: list[int] | None = None
    if data.classes is not None:  # the listed classes only, relabelled in the listed order
        try:
            chosen = subsets.class_indices(data.classes, names, len(names))
        except subsets.UnknownClass as exc:
            raise _error(exc.message, compiled, ("data", "classes", exc.index), exc.hint) from None
    # validation and test folders are labelled as the training folder; with data.classes they
    # need folders of the selected classes only (a folder of any other training class is fine)
    required = None if chosen is None else [names[label] for label in chosen]
    val = test = None
    if given:
        source["layout"] = "/".join(given)
        if "validation" in given:
            val = _listing(given["validation"], data, names, compiled, where, required)
        if "test" in given:
            test = _listing(given["test"], data, names, compiled, where, required)
    elif data.test_path is not None:
        test = _listing(data.test_path, data, names, compiled, test_where, required)
    listings = [x for x in (train, val, test) if x is not None]
    roots = [data.path if given is None else given["train"]]
    roots += [given[split] for split in ("validation", "test") if given and split in given]
    if data.test_path is not None:
        roots.append(data.test_path)
    class_notes: list[str] = []
    source_names: list[str] | None = None
    if chosen is not None:  # before the checks: a class left out is not read, so not checked
        class_notes = subsets.class_notes(data.classes or (), names, len(names))
        source_names = list(names)
        for listing in listings:
            keep, listing.labels = subsets.select(np.arange(len(listing.paths)), listing.labels, chosen)
            listing.paths = [listing.paths[i] for i in keep]
            listing.class_names = [names[label] for label in chosen]  # (labels index these now)
        names = [names[label] for label in chosen]
    splits = {"training": train, "validation": val, "test": test}
    if not _evaluation_source(compiled):
        _check_disjoint(
            {split: listing for split, listing in splits.items() if listing is not None},
            compiled,
            test_where if data.test_path is not None else where,
        )
    bad = _check_files(listings, data, compiled, where, roots)
    index = np.arange(len(train.paths))
    if test is None:
        index, y_train, test_index, y_test = _split(
            index, train.labels, test_fraction, seed, compiled=compiled, key="test_split"
        )
        test_paths = [train.paths[i] for i in test_index]
    else:
        y_train, test_paths, y_test = train.labels, test.paths, test.labels
    if val is None:
        index, y_train, val_index, y_val = _split(
            index, y_train, data.validation_split, seed, compiled=compiled
        )
        val_paths = [train.paths[i] for i in val_index]
    else:
        val_paths, y_val = val.paths, val.labels
    index, y_train = subsets.per_class(index, y_train, data.per_class, seed)
    train_paths = [train.paths[i] for i in index]
    if test is None and len(y_test) == 0 and len(train.paths):  # (a split keeps one image whole)
        raise _error(
            f"expected at least one test image; the {len(train.paths)} image(s) of the source leave "
            "none to test on",
            compiled,
            where,
            hint="a test split needs at least 2 images: add images"
            + (", or select more classes with data.classes" if chosen is not None else ""),
        )
    if len(y_train) == 0 or len(y_test) == 0:
        which = "training" if len(y_train) == 0 else "test"
        raise _error(f"expected at least one {which} image; the source has none", compiled, where)

    def files(paths: list[Path], y: np.ndarray) -> tuple[ImageFiles, np.ndarray]:
        order, y = _limit(np.arange(len(paths)), y, data.limit, seed)
        chosen = ImageFiles(
            paths, data.image_size, channels_for(data.color_mode or "rgb"),  # type: ignore[arg-type]
            cache=data.cache, on_bad_file=data.on_bad_file,
        )  # fmt: skip
        return chosen.subset(order), y

    x_train, y_train = files(train_paths, y_train)
    x_val, y_val = files(val_paths, y_val)
    x_test, y_test = files(test_paths, y_test)
    dataset = Dataset(x_train, y_train, x_val, y_val, x_test, y_test, names, source)
    dataset.bad_files = bad
    dataset.source_class_names = source_names
    dataset.notes = class_notes + _missing_classes(
        names, {"training": y_train, "validation": y_val, "test": y_test}
    )
    return dataset


#: The file of the location ``evaluate``/``visualize``/``report`` give a ``--data`` source
#: (:data:`cnnspec.reporting.run.DATA_LOC` is made of it).
DATA_OPTION_FILE = "<--data>"


def _evaluation_source(compiled: CompiledSpec) -> bool:
    """Whether ``data.source`` is a ``--data`` folder or CSV that ``evaluate``, ``visualize`` or
    ``report`` put in place of the run's (``{directory: X, test_directory: X}``): every image of
    it is a test image, and nothing is trained on its training part, so it may list them twice."""
    loc = compiled.doc.locs.get(SOURCE)
    return loc is not None and loc.file == DATA_OPTION_FILE


def _check_disjoint(listings: dict[str, Listing], compiled: CompiledSpec, where: SpecPath) -> None:
    """A located error when one file is in two of the ``listings`` (``{"training": …,
    "validation": …, "test": …}``, the given ones): a ``test_directory`` naming the training
    folder, a ``test_csv`` naming the training CSV, a ``test/`` that links to ``train/``, or
    two CSVs naming one image would otherwise test (or validate) on images trained on, and the
    scores would say nothing. Paths are compared as files
    (:func:`~cnnspec.training.filelist.file_identity`), so a link, a second spelling of a path
    and a hard link (one file under two names, as ``cp -al`` or ``ln`` make splits) are the
    file they name."""
    from cnnspec.training.filelist import real_paths

    owner: dict[str, str] = {}  # real path → the first split that lists it
    shared: list[tuple[Path, str, str]] = []  # (path, first split, this split)
    for split, listing in listings.items():
        for path, real in zip(listing.paths, real_paths(listing.paths), strict=True):
            first = owner.setdefault(real, split)
            if first != split:
                shared.append((path, first, split))
    if not shared:
        return
    shown = "; ".join(f"{path} ({first} and {split})" for path, first, split in shared[:5])
    more = f" (and {len(shared) - 5} more)" if len(shared) > 5 else ""
    raise _error(
        "expected the training, validation and test images to be different files; "
        f"{len(shared)} file(s) are in two of them: {shown}{more}",
        compiled,
        where,
        hint="an image in two sets is validated or tested on after being trained on, so the "
        "scores would flatter the model: give each set images of its own (a folder or CSV of "
        "its own, not the training one or a link to it)",
    )


def _check_split_settings(given: dict[str, Path], data: DataConfig, compiled: CompiledSpec) -> None:
    """A folder already split into ``train/``, ``test/`` (and a validation folder) is used as
    given: a ``test_split`` or ``validation_split`` the spec sets for a split it has would be
    ignored without a word, so it is a located error (as ``test_split`` is beside a
    ``test_directory``). Only settings the spec writes: the defaults apply to no such folder."""
    from cnnspec.training.filelist import SPLIT_NAMED_CLASSES_HINT, loose_images

    folders = ", ".join(f"{path.name}/" for path in given.values())

    def holds_images(path: Path) -> bool:
        try:  # (a split link that leads nowhere is said missing where it is read)
            return path.is_dir() and bool(loose_images(path))
        except OSError:
            return False

    # split folders that hold images, not class folders, are likely classes named like splits
    named_like_splits = any(holds_images(path) for path in given.values())
    for split, key in (("test", "test_split"), ("validation", "validation_split")):
        if split not in given or key not in compiled.data:
            continue
        value = data.test_split if key == "test_split" else data.validation_split
        shown = f"{value:g}" if isinstance(value, float) else repr(compiled.data[key])
        raise _error(
            f"expected no {key} for a folder with its own {split} set ({folders} in {data.path}); "
            f"received {shown}",
            compiled,
            ("data", key),
            f"its {given[split].name}/ folder is the {split} set, used as given: remove {key}, or "
            f"name the folder of class folders itself ({given['train']}) to split it by {key}"
            + (f"; {SPLIT_NAMED_CLASSES_HINT}" if named_like_splits else ""),
        )


def _check_no_test_folder(given: dict[str, Path], data: DataConfig, compiled: CompiledSpec) -> None:
    """A located error on ``test_directory`` beside a ``directory`` laid out as ``train/``,
    ``validation/``, ``test/`` (``given``): read whole, its split folders would be taken for
    classes (a model trained on which split an image came from); its ``train/`` folder alone
    is not what the spec names. Split folders that hold images, not class folders, are likely
    classes named like splits, refused as they are without a ``test_directory``."""
    from cnnspec.training.filelist import SPLIT_NAMED_CLASSES_HINT, loose_images

    folders = ", ".join(f"{path.name}/" for path in given.values())

    def holds_images(path: Path) -> bool:
        try:  # (a split link that leads nowhere is no class folder of images)
            return path.is_dir() and bool(loose_images(path))
        except OSError:
            return False

    if any(holds_images(path) for path in given.values()):
        hint = SPLIT_NAMED_CLASSES_HINT
    else:
        train = f"or name {given['train']} as the directory to read its class folders alone"
        hint = (
            f"its {given['test'].name}/ folder is the test set: remove test_directory (to test on "
            f"{data.test_path}, move its class folders into {given['test']}), {train}"
            if "test" in given
            else f"put the test set's class folders in {data.path / 'test'} and remove test_directory, "
            + train
        )
    raise _error(
        f"expected a directory of class folders beside a test_directory; {data.path} is laid out "
        f"as {folders} (a split layout{', with its own test set' if 'test' in given else ''})",
        compiled,
        (*SOURCE, "test_directory"),
        hint,
    )


def _check_files(
    listings: list[Listing],
    data: DataConfig,
    compiled: CompiledSpec,
    where: SpecPath,
    roots: list[Path] | None = None,
) -> list[tuple[Path, str]]:
    """The header check of every listed file: an error naming the bad ones (``on_bad_file:
    error``), or the bad ones taken out of ``listings`` and returned (``skip``). A class whose
    files of a listing were all bad is an error then, as an empty class folder is (``roots``:
    each listing's folder or CSV, to name it)."""
    from cnnspec.training.badfiles import SPEC_HINT, BadFilesError, check_files, describe

    # each file once: a folder or CSV may be listed twice (--data's, as training and test set)
    files = list(dict.fromkeys(path for listing in listings for path in listing.paths))
    total = len(files)
    bad = check_files(files)
    if not bad:
        return []
    if data.on_bad_file == "error":
        # (its own class: evaluate --data tells these as bad input files, not spec errors)
        message = "expected every image file to be readable; " + describe(bad, total)
        raise BadFilesError(_error(message, compiled, where, hint=SPEC_HINT).diagnostics)
    dropped = dict(bad)
    for number, listing in enumerate(listings):
        keep = [i for i, path in enumerate(listing.paths) if path not in dropped]
        listed = [(path, int(label)) for path, label in zip(listing.paths, listing.labels, strict=True)]
        listing.paths = [listing.paths[i] for i in keep]
        listing.labels = listing.labels[keep]
        emptied = sorted({label for _, label in listed} - set(listing.labels.tolist()))
        if emptied:  # the class would stay, with no image to learn or to test it from
            label = emptied[0]
            files = [(path, dropped[path]) for path, of in listed if of == label]  # all dropped
            root = roots[number] if roots is not None and number < len(roots) else data.path
            raise _emptied_class_error(listing.class_names[label], files, root, compiled, where)
    return bad


def _emptied_class_error(
    name: str, files: list[tuple[Path, str]], root: Path | None, compiled: CompiledSpec, where: SpecPath
) -> SpecError:
    """The error of a class all of whose files in a folder or CSV (``root``) the header check
    found bad, which ``on_bad_file: skip`` would leave without images: the error an empty class
    folder gets, naming the files (the run stops before ``bad_files.txt`` is written)."""
    from cnnspec.training.badfiles import describe

    place = f" in {root}" if root is not None else ""
    return _error(
        f"expected images in every class; every image of the class {name!r}{place} is a bad file "
        "(data.on_bad_file: skip would leave the class with none): " + describe(files),
        compiled,
        where,
        hint="replace the bad files with readable images, or remove the class's images and folder or rows",
    )


def check_fit(
    dataset: Dataset, compiled: CompiledSpec, config: TrainConfig, *, test_only: bool = False
) -> None:
    """The data must fit the model: sample shape = ``input.shape``; labels < output units; a
    classifier's data of 2 classes at least, unless only its test images are used
    (``test_only``: evaluate's ``--data``, which may hold one class's images to score)."""
    from cnnspec.analysis.datafit import check_sample_shape

    check_sample_shape(dataset.sample_shape, compiled, config)
    from cnnspec.training.task_data import check_kinds

    # targets of another task are the data's mistake, not the model's shape (also for a
    # classifier, the task a vector output is given when nothing says otherwise)
    check_kinds(dataset, compiled, config)
    if dataset.target != "class":
        _check_target_fit(dataset, compiled, config)
        _check_mask_outputs(dataset, compiled, config)  # (a multi-output model's, before their counts)
    if config.task_path:  # every output has a target of its task's kind and shape (task_data.py)
        from cnnspec.analysis.datafit import check_two_classes
        from cnnspec.training.task_data import check_dataset

        check_dataset(dataset, compiled, config)
        several = isinstance(dataset.target, dict)
        for out in config.tasks:  # a classifier of one class: nothing to tell apart
            if out.task == "classification" and not test_only:
                names = dataset.target_names.get(out.name, []) if several else dataset.class_names
                check_two_classes(len(names), compiled, config, list(names), out.name if several else None)
                labels = dataset.y_train[out.name] if several else dataset.y_train
                _check_two_labelled(labels, list(names), compiled, config, out.name if several else None)
        return
    if dataset.target != "class":
        return
    from cnnspec.analysis.datafit import check_class_count, check_two_classes

    classes = dataset.num_classes
    if not test_only:
        check_two_classes(classes, compiled, config, list(dataset.class_names or []))
        _check_two_labelled(dataset.y_train, list(dataset.class_names or []), compiled, config)
    check_class_count(classes, compiled, config, list(dataset.class_names or []))
    # (not for a finished run's data, evaluated or reported: the weights only matter to training,
    # and a run trained before a key was refused stays usable; weight_key_refusals tells it then)
    if not compiled.finished_run:
        for key, message, hint in weight_key_refusals(config, dataset)[:1]:
            raise _error(message, compiled, ("training", "class_weight", key), hint, key=True)


def weight_key_refusals(config: TrainConfig, dataset: Dataset) -> list[tuple[str, str, str | None]]:
    """Each ``training.class_weight`` key that weighs no class of the data, in key order, as
    (key, message, hint): a key that names no class nor is a label index, one naming a class
    ``data.classes`` left out, one weighing the class an earlier key weighs. ``train`` refuses
    the first (:func:`check_fit`); a finished run's commands note them all (the run may have been
    trained before cnnspec refused such a key: :func:`cnnspec.reporting.run.test_split`)."""
    if not isinstance(config.class_weight, dict) or dataset.target != "class":
        return []
    found: list[tuple[str, str, str | None]] = []
    weighed: dict[int, str] = {}  # label → the key that weighs it
    for key in config.class_weight:
        try:
            label = _key_label(key, config, dataset)
        except subsets.LeftOutClass as exc:
            found.append((key, exc.message, exc.hint))
            continue
        if label is None:
            message = f"expected a class index (0–{dataset.num_classes - 1}) or name; received {key!r}"
            found.append((key, message, did_you_mean(key, dataset.class_names)))
        elif label in weighed:  # (one of the two weights would be dropped)
            message, hint = subsets.repeated_key(key, weighed[label], dataset.class_names[label])
            found.append((key, message, hint))
        else:
            weighed[label] = key
    return found


def _key_label(key: str, config: TrainConfig, dataset: Dataset) -> int | None:
    """The label a ``training.class_weight`` key weighs (:func:`~cnnspec.analysis.classes.key_label`:
    ``LeftOutClass`` for a class ``data.classes`` left out)."""
    return subsets.key_label(key, dataset.class_names, dataset.source_class_names, config.data.classes)


def weight_key_notes(config: TrainConfig, dataset: Dataset) -> list[str]:
    """The notes on ``training.class_weight``'s numeric keys whose reading the spec alone does
    not show (:func:`~cnnspec.analysis.classes.key_notes`): said beside ``data.classes``'s."""
    if not isinstance(config.class_weight, dict) or dataset.target != "class":
        return []
    return subsets.key_notes(list(config.class_weight), dataset.class_names, dataset.source_class_names)


def _check_two_labelled(
    labels: Any, names: list[str], compiled: CompiledSpec, config: TrainConfig, output: str | None = None
) -> None:
    """A classifier's training split must hold images of 2 classes at least: an npz labelled 1
    throughout (classes 0 and 1 by its largest label), class names none of whose images are
    left, or a data.limit that kept one class's images trained a model that answers one class
    to everything. At the place :func:`check_two_classes` names, or at data.limit."""
    from cnnspec.analysis.datafit import two_classes_path, two_labelled_hint

    present = np.unique(np.asarray(labels, dtype="int64").reshape(-1))
    if len(present) != 1:  # (none: no training images, an error of its own)
        return
    label = int(present[0])
    name = names[label] if label < len(names) else str(label)
    whose = f"the classifier output {output}" if output else "a classifier"
    count = max(len(names), label + 1)
    message = (
        f"expected training images of at least 2 classes for {whose}; every training image is of "
        f"the class {name!r} (the data has {count} classes)"
    )
    path: SpecPath = ("data", "limit") if config.data.limit is not None else two_classes_path(config, output)
    raise _error(message, compiled, path, two_labelled_hint(config, output, count))


#: The mask value that datasets such as Pascal VOC use for void/ignored pixels.
VOID_LABEL = 255


def mask_values(parts: Sequence[Any]) -> list[int]:
    """The values the masks of every split hold, in order (for a message: read only once the
    masks are known not to fit)."""
    found: set[int] = set()
    for part in parts:
        found.update(int(v) for v in np.unique(np.asarray(part)))
    return sorted(found)


def two_values_misfit(values: list[int], image_masks: bool, output: str | None = None) -> tuple[str, str]:
    """The message and hint for masks of two values other than 0 and 1 (0 and 255: a binary
    mask stored as black and white) for a one-channel output, which reads them as 0 and 1:
    counted as class indices they were "256 classes". A masks folder maps them with a
    ``classes`` table of colours (a gray value v is the colour [v, v, v]); other sources store
    them as 0 and 1. ``output``: the output of a multi-output model they are for (named in the
    message). Train's and the generated script's ``check_masks`` words."""
    from cnnspec.analysis.datafit import mask_output_said

    low, high = values
    problem = (
        f"expected masks of the class indices 0 and 1 for {mask_output_said(1, output)}; the masks "
        f"hold the two values {low} and {high}"
    )
    if image_masks:
        hint = (
            f"map them to the classes 0 and 1 with data.source.classes: {{background: [{low}, {low}, "
            f"{low}], foreground: [{high}, {high}, {high}]}} (a mask's gray value v is the colour "
            "[v, v, v]), or store the masks as 0 and 1"
        )
    else:
        hint = "store the masks as 0 and 1 (the classes a one-channel output's sigmoid tells apart)"
    return problem, hint


def mask_count_misfit(count: int, channels: int, output: str | None = None) -> tuple[str, str] | None:
    """The message and hint for masks of more classes (``count``: the largest mask value + 1, or
    the names where they name more) than a segmentation output of ``channels`` channels tells
    apart (2 for one sigmoid channel); ``None``: they fit. A largest value of 255 is far more often
    a void/ignore label than class 255: the hint says so. ``output``: the output of a multi-output
    model they are for (named in the message and hint). Train's single- and multi-output words,
    and the generated script's ``check_mask_count``."""
    from cnnspec.analysis.datafit import mask_output_said

    layer = "the last layer" if output is None else f"the output {output}"
    if channels == 1:
        if count <= 2:
            return None
        return (
            f"expected 2 mask classes for {mask_output_said(1, output)}; the data has {count}",
            f"give {layer} {count} filters and a softmax",
        )
    if count <= channels:
        return None
    whose = "the output's" if output is None else f"the output {output}'s"
    hint = f"give {layer} {count} filters"
    if count - 1 == VOID_LABEL:  # far more often a void/ignore label than class 255
        hint = (
            f"a mask value of {VOID_LABEL} usually marks void or ignored pixels, not a class: map it to "
            f"one of the classes 0-{channels - 1} in the mask files (or, if it is a class, {hint})"
        )
    return (
        f"expected at most {channels} mask classes ({whose} channels); the data has {count} (its masks "
        f"hold values up to {count - 1})",
        hint,
    )


def _masks_at(kind: str) -> SpecPath:
    """Where a source of ``kind`` gives the mask values a data error is about: a masks folder's
    ``masks``, an npz file, else the source."""
    return (*SOURCE, "masks") if kind == "image_masks" else (*SOURCE, "npz") if kind == "npz" else SOURCE


def mask_misfit(
    parts: Sequence[Any], count: int, channels: int, kind: str, said: str, output: str | None = None
) -> tuple[str, str, SpecPath] | None:
    """The data's mistakes about the mask classes of a segmentation output of ``channels``
    channels, whose masks are ``parts`` (every split's) and whose classes are ``count`` (the
    names, or the largest mask value + 1): more names (in ``said``) than the channels tell apart
    (:func:`mask_names_misfit`), or two values other than 0 and 1 for one channel
    (:func:`two_values_misfit`). The message, hint and where the data (of a source of ``kind``)
    says it; ``None``: neither. ``output``: one of a multi-output model's, named in the message."""
    from cnnspec.analysis.datafit import mask_names_misfit

    top = max(int(np.max(np.asarray(y), initial=0)) for y in parts) + 1
    image_masks = kind == "image_masks"
    named = mask_names_misfit(channels, count, said, output) if count > top else None
    if named is not None:  # more names than channels, not more mask values
        return (*named, (*SOURCE, "classes") if image_masks else _masks_at(kind))
    if channels == 1 and count > 2 and len(values := mask_values(parts)) == 2:
        return (*two_values_misfit(values, image_masks, output), _masks_at(kind))
    return None


def _check_mask_outputs(dataset: Dataset, compiled: CompiledSpec, config: TrainConfig) -> None:
    """A multi-output model's segmentation outputs, each as :func:`_check_target_fit` checks a
    single one's masks (:func:`mask_misfit`, then :func:`mask_count_misfit`: the same words,
    naming the output), at the data as the other multi-output mask errors: more class names (its
    ``class_names_<output>`` or ``class_names``) than its channels were kept silently, a
    one-channel output's 0/255 masks were "class indices 0–1; found 255" with no word of the two
    values, and more mask classes than its channels were :func:`task_data.check_dataset`'s
    "class indices 0–N in the <split> targets", a split at a time, with no word of a void 255."""
    from cnnspec.analysis.datafit import mask_names_said

    if not isinstance(dataset.target, dict):
        return
    for out in config.tasks:
        if out.task != "segmentation" or dataset.target.get(out.name) != "mask":
            continue  # (a missing or other target: check_kinds and check_dataset say so)
        parts = [split[out.name] for split in (dataset.y_train, dataset.y_val, dataset.y_test)]
        names = dataset.target_names.get(out.name, [])
        said = dataset.mask_names_said.get(out.name) or mask_names_said(config.data.kind)
        misfit = mask_misfit(parts, len(names), out.units, config.data.kind, said, out.name)
        if misfit is not None:
            raise _error(misfit[0], compiled, misfit[2], misfit[1])
        # the names number the classes: as many as the largest mask value + 1 where they name fewer
        counted = mask_count_misfit(len(names), out.units, out.name)
        if counted is not None:
            raise _error(counted[0], compiled, _masks_at(config.data.kind), counted[1])


def _check_target_fit(dataset: Dataset, compiled: CompiledSpec, config: TrainConfig) -> None:
    """Multi-label, regression and mask targets fit a single output: as many units as labels
    or values; at least as many channels as mask classes (one channel: a sigmoid mask of two
    classes). Multi-output models are checked against their outputs by the task checks
    (their masks' names and values first: :func:`_check_mask_outputs`). More mask class names
    than channels are the names' mistake (:func:`mask_names_misfit`), two mask values other than
    0 and 1 for one channel a binary mask's (:func:`two_values_misfit`)."""
    from cnnspec.analysis.datafit import mask_names_said

    ir = compiled.ir
    if isinstance(dataset.target, dict) or len(ir.outputs) != 1 or not ir.nodes:
        return
    shape = ir.output_shapes[0]
    if shape is None:
        return
    node = ir.node(ir.outputs[0])
    units = int(shape[-1])
    count = len(dataset.class_names)
    problem = hint = None
    at_data: SpecPath | None = None  # where an error that is the data's, not the model's, is shown
    parts = (dataset.y_train, dataset.y_val, dataset.y_test)
    if dataset.target == "mask":
        said = mask_names_said(config.data.kind)
        if len(shape) != 3:
            problem = (
                "expected an output of shape [height, width, classes] for masks; the model outputs "
                f"{list(shape)}"
            )
            hint = f"end the model with conv2d: {{filters: {count}, kernel_size: 1, activation: softmax}}"
        elif (misfit := mask_misfit(parts, count, units, config.data.kind, said)) is not None:
            problem, hint, at_data = misfit
        elif (counted := mask_count_misfit(count, units)) is not None:
            problem, hint = counted  # (the model's channels: at its output)
    elif len(shape) == 1 and units != count:
        what = "labels" if dataset.target == "multilabel" else "target values"
        problem = f"expected {count} output units (one per {what[:-1]}); the model outputs {units}"
        hint = f"set the last dense layer to units: {count}"
    if problem is not None:
        if at_data is not None:  # the data's mistake, at the data
            raise _error(problem, compiled, at_data, hint)
        loc = output_loc(compiled, node, units) or source_loc(compiled, SOURCE)
        raise SpecError.single(problem, loc, node.path, code="data", hint=hint)


def class_weights(config: TrainConfig, dataset: Dataset) -> dict[int, float] | None:
    """Keras' ``class_weight`` dict (class index → weight) from the spec's setting."""
    if config.class_weight is None:
        return None
    classes = dataset.num_classes
    if config.class_weight == "balanced":
        counts = np.bincount(dataset.y_train, minlength=classes).astype("float64")
        total = counts.sum()
        return {i: float(total / (classes * c)) if c else 0.0 for i, c in enumerate(counts)}
    weights = {i: 1.0 for i in range(classes)}
    assert isinstance(config.class_weight, dict)
    for key, value in config.class_weight.items():
        index = _key_label(key, config, dataset)  # (checked by check_fit: a class of the data's)
        assert index is not None
        weights[index] = float(value)
    return weights


def rescale_factor(config: TrainConfig, dataset: Dataset, compiled: CompiledSpec) -> float | None:
    """The pixel multiplier the pipeline applies (``None``: leave the values as they are)."""
    # reporting's stand-in for image files (reporting/run.py file_rescale) has only
    # integer_pixels: files decode to 8-bit pixels
    pixel_max = getattr(dataset, "pixel_max", 255.0)
    return pipeline_scale(config.data, compiled.ir, dataset.integer_pixels, pixel_max)
