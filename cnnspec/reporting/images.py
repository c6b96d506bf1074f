"""Image files and ``.npy`` arrays → samples in the model's input format.

Images are decoded, converted to the model's colour mode and resized by
:func:`cnnspec.training.imagefiles.load_image`, the function ``cnnspec train`` reads a
``directory`` source with (TensorFlow-free; it reproduces ``tf.io.decode_image`` and bilinear
``tf.image.resize`` for PNG files pixel for pixel). Scaling to the model's range happens
later, with the run's ``data.rescale`` (see :func:`cnnspec.reporting.pixel_ranges.file_rescale`).

``.npy`` arrays are taken as samples already in the training data's format; their shape must
match the model's input exactly (``(h, w)`` is accepted for one channel, and a leading batch
axis gives one prediction per row).

``predict`` reads its inputs a chunk at a time (:func:`read_chunks`), so a folder of any size
needs the memory of one chunk: every file's header is checked first (:func:`check_input_header`,
:func:`plan_inputs`: a file that cannot be an input is refused before anything is predicted),
and the labels of all inputs are known from the headers, before any pixel is decoded.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cnnspec.errors import UsageError
from cnnspec.fileio import ZIP_MAGIC, read_head
from cnnspec.paths import is_dir, refuse_unreadable

MAX_ARRAY_BYTES = 1 << 30
#: How much of a PNG :func:`png_text` reads: its text entries come before the pixels (IDAT),
#: after the header and at most a colour profile.
PNG_HEAD_BYTES = 16384


def png_text(path: str | Path) -> dict[str, str]:
    """The text entries (tEXt, zTXt, iTXt) of the PNG file at ``path`` that come before its
    pixels, read from the file's first :data:`PNG_HEAD_BYTES` without decoding anything else;
    ``{}`` for a file that can't be read, is not a PNG, or whose head is not one."""
    from PIL import Image

    head = read_head(path, PNG_HEAD_BYTES)
    if head is None:
        return {}
    try:
        with Image.open(io.BytesIO(head)) as image:  # (parses the chunks up to the first IDAT)
            if image.format != "PNG":
                return {}
            return {str(k): v for k, v in image.info.items() if isinstance(v, str)}
    # PIL's errors for a truncated or broken file: OSError (UnidentifiedImageError), the
    # SyntaxError, EOFError and ValueError of its chunk parser, DecompressionBombError
    except (OSError, SyntaxError, EOFError, ValueError, Image.DecompressionBombError):
        return {}


def is_cnnspec_png(path: str | Path) -> bool:
    """Whether the file at ``path`` is a PNG cnnspec drew: its ``Software`` text is
    ``cnnspec`` (every picture it draws, :data:`cnnspec.analysis.graph.PICTURE_MARK`) or
    starts with ``cnnspec `` (``cnnspec predict``'s masks)."""
    from cnnspec.analysis.graph import PICTURE_MARK

    key, mark = PICTURE_MARK
    value = png_text(path).get(key, "")
    return value == mark or value.startswith(mark + " ")


@dataclass
class Sample:
    """One input: a label (the file as the user named it, and the row of an array:
    ``a/x.npy[3]``), its pixels (h, w, c) in stored format, and what was done to it."""

    label: str
    pixels: np.ndarray
    notes: tuple[str, ...] = ()
    #: (height, width) of the image file when it was resized to the model's input: a
    #: segmentation mask is scaled back to it, so it lies over the image it was predicted for
    source_size: tuple[int, int] | None = None
    #: the file it was read from (``None``: the label without an array's row): inputs are
    #: scaled per file, and two files may share a name in other folders
    file: Path | None = None
    #: the lowest and highest value of the whole file in its dtype, for an array whose samples
    #: may be read and scaled in different chunks (``None``: the samples at hand are the file):
    #: its scale is decided by all its pixels, as when it was read at once (the depth of
    #: integers is told by their dtype and range only, :func:`~cnnspec.reporting.pixel_ranges.pixel_depth`)
    extent: np.ndarray | None = None

    @property
    def integer(self) -> bool:
        return bool(np.issubdtype(self.pixels.dtype, np.integer))


def _size(shape: tuple[int, ...]) -> str:
    return "×".join(str(d) for d in shape)


@dataclass(frozen=True)
class InputFile:
    """An input file as its header tells it, before any of its pixels is read."""

    path: Path
    #: its samples' labels: the file as the user named it, or ``a/x.npy[3]`` for each row of
    #: an array with a batch axis (known without the pixels: mask names are decided over every
    #: input before the first chunk is read)
    labels: tuple[str, ...]

    @property
    def is_array(self) -> bool:
        return self.path.suffix.lower() == ".npy"


def read_inputs(paths: list[Path], shape: tuple[int, ...]) -> list[Sample]:
    """Every file as samples for a model whose input is ``shape`` (h, w, c), all at once (one
    file, or a test's few: ``predict`` reads its inputs with :func:`read_chunks`)."""
    return [sample for file in plan_inputs(paths, shape) for sample in file_samples(file, shape)]


def check_input_header(path: Path) -> None:
    """A :class:`UsageError` unless ``path`` is a regular file whose header is that of an image
    cnnspec reads or of a numeric ``.npy`` array; nothing else of the file is read. Whether it
    fits the model is told later, with the model's input (:func:`plan_inputs`)."""
    from cnnspec.training.imagefiles import check_image_header

    check_input_file(path)
    if path.suffix.lower() == ".npy":
        _open_array(path)
    else:
        check_image_header(path, name=str(path))


def plan_inputs(paths: list[Path], shape: tuple[int, ...]) -> list[InputFile]:
    """Each file with its samples' labels for a model whose input is ``shape``, from the files'
    headers only: an array of another shape, an empty one, or an image for a model that takes
    no images is a :class:`UsageError` here, before anything is predicted."""
    files: list[InputFile] = []
    for path in paths:
        if path.suffix.lower() == ".npy":
            array, single = _fitted_array(path, shape)
            labels = (str(path),) if single else tuple(f"{path}[{i}]" for i in range(len(array)))
            del array  # (only the header was read: the memory map is let go)
        else:
            check_input_file(path)
            _check_takes_images(shape)
            labels = (str(path),)
        files.append(InputFile(path, labels))
    return files


def read_chunks(files: list[InputFile], shape: tuple[int, ...], size: int) -> Iterator[list[Sample]]:
    """The samples of ``files`` in order, ``size`` at a time (the last chunk: the rest): a
    chunk is decoded when the one before has been used, so predict holds one chunk's pixels
    whatever the number of inputs. An array's rows may fall in two chunks (each row is read
    when its chunk is; its scale is still decided by the whole file: :attr:`Sample.extent`)."""
    chunk: list[Sample] = []
    for file in files:
        for sample in file_samples(file, shape):
            chunk.append(sample)
            if len(chunk) == size:
                yield chunk
                chunk = []  # (the caller's chunk is its own to let go)
    if chunk:
        yield chunk


def file_samples(file: InputFile, shape: tuple[int, ...]) -> Iterator[Sample]:
    """The samples of one planned file (:func:`plan_inputs`), decoded one at a time."""
    if not file.is_array:
        from cnnspec.training.badfiles import INPUT_HINT, decode_error, decode_reason
        from cnnspec.training.imagefiles import UnreadableImage

        try:
            sample = read_image(file.path, shape)
        except UnreadableImage as exc:  # (its header passed plan_inputs: it failed to decode)
            raise decode_error([(file.path, decode_reason(exc))], INPUT_HINT) from None
        yield sample
        return
    array, _ = _fitted_array(file.path, shape)
    # one pass over the memory-mapped file (no copy): the range its scale is decided by, and a
    # NaN or infinity anywhere (min and max carry either) refuses the file before any of its rows
    # is predicted, as when the file was read at once
    low, high = array.min(), array.max()
    if np.issubdtype(array.dtype, np.floating) and not (np.isfinite(low) and np.isfinite(high)):
        raise UsageError(f"expected finite numbers in {file.path}; it contains NaN or infinity")
    extent = np.array([low, high], dtype=array.dtype)
    for label, row in zip(file.labels, array):
        # np.array: this row is read from the file now, and holds no reference to the map
        yield Sample(label, np.array(row), file=file.path, extent=extent)


def expand_inputs(paths: list[Path]) -> tuple[list[Path], list[str]]:
    """The files ``predict`` reads for ``paths``: a file as given; a folder as every image
    (PNG, JPEG, BMP, GIF) and ``.npy`` file in it and its subfolders (a test set's class
    folders), hidden ones left out, in the order of their sorted paths. Also notes on the other
    files a folder held (no images: ``labels.csv``, ``README.txt``), and on the PNGs cnnspec drew
    there (:func:`is_cnnspec_png`: predict's masks, a run's plots), left out too: never inputs,
    and a folder that holds ``--out`` holds the masks of the call before. A folder with none of those
    files, or with images in a format cnnspec does not read (``.webp``, ``.tif``, …), is a
    :class:`UsageError`: the second with training's message, as training refuses such a folder
    (passed over, they would go unanswered with a note easily missed among the predictions).
    Links to folders are followed, as training and ``evaluate --data`` follow them (they were
    passed over without a word), each folder read once (a link back up, a loop, is not walked
    again); links to files are read as the files."""
    from cnnspec.training.imagefiles import IMAGE_EXTENSIONS, is_other_image_name, unreadable_images_error

    readable = (*IMAGE_EXTENSIONS, ".npy")
    files: list[Path] = []
    notes: list[str] = []
    for path in paths:
        if not is_dir(path):
            files.append(path)  # (checked as a file: check_input_file)
            continue
        found: list[Path] = []
        other: list[Path] = []
        walked = {os.path.realpath(path)}
        for root, folders, names in os.walk(path, followlinks=True):
            kept = []
            for folder in sorted(f for f in folders if not f.startswith(".")):
                real = os.path.realpath(os.path.join(root, folder))
                if real not in walked:  # (a folder reached again: a loop, or a second link)
                    walked.add(real)
                    kept.append(folder)
            folders[:] = kept
            for name in sorted(n for n in names if not n.startswith(".")):
                file = Path(root) / name
                (found if file.suffix.lower() in readable else other).append(file)
        found.sort()  # (by their parts: a/0.png, b/1.png, c.npy; os.walk gives a folder's own first)
        other.sort()
        # masks an earlier predict wrote into the folder (`predict RUN .` writes ./predictions/),
        # a run's plots: read as inputs, the next call answered for its own masks, x_mask_mask.png
        drawn = [file for file in found if file.suffix.lower() == ".png" and is_cnnspec_png(file)]
        if drawn:
            left_out = set(drawn)
            found = [file for file in found if file not in left_out]
            notes.append(
                f"left out {len(drawn)} picture(s) of {path} that cnnspec drew (masks predict wrote, "
                f"plots; the first: {drawn[0].relative_to(path)})"
            )
        unread = [file.relative_to(path).as_posix() for file in other if is_other_image_name(file.name)]
        if unread:
            raise UsageError(*unreadable_images_error(path, unread))
        if not found:
            drew = f" but {len(drawn)} picture(s) cnnspec drew (masks, plots)" if drawn else ""
            raise UsageError(
                f"expected images or .npy files in the folder {path}; it holds none{drew}",
                "PNG, JPEG, BMP and GIF images and .npy arrays are read, also in its subfolders",
            )
        if other:
            notes.append(
                f"left out {len(other)} file(s) of {path} that are no image or .npy array "
                f"(the first: {other[0].relative_to(path)})"
            )
        files += found
    return files, notes


def check_input_file(path: Path) -> None:
    """A :class:`UsageError` unless ``path`` is an existing regular file (an image or .npy)."""
    refuse_unreadable(path, "an image or .npy file")  # (not an internal error: a user's path)
    if not path.exists() and path.is_symlink():
        raise UsageError(
            f"expected an image or .npy file; {path} is a link that leads nowhere (broken or a loop)"
        )
    if not path.exists():
        raise UsageError(f"expected an image or .npy file; {path} does not exist")
    if not path.is_file():
        raise UsageError(f"expected an image or .npy file; {path} is not a regular file")


def _check_takes_images(shape: tuple[int, ...]) -> None:
    """A :class:`UsageError` unless a model whose input is ``shape`` takes images."""
    if len(shape) != 3 or shape[-1] not in (1, 3, 4):
        raise UsageError(
            f"expected a model that takes images (height, width, 1, 3 or 4 channels); its input is "
            f"{list(shape)}",
            "pass the input as a .npy array of that shape instead",
        )


def read_image(path: Path, shape: tuple[int, ...]) -> Sample:
    """A PNG/JPEG/BMP/GIF file converted to the model's channels and size, exactly as training
    converts a folder's images (:func:`cnnspec.training.imagefiles.load_image`)."""
    from cnnspec.training.imagefiles import converted_image, fit_size

    check_input_file(path)
    _check_takes_images(shape)
    pixels, notes = converted_image(path, int(shape[-1]), name=str(path))
    source = (int(pixels.shape[0]), int(pixels.shape[1]))
    pixels = fit_size(pixels, (int(shape[0]), int(shape[1])), notes)
    resized = source if source != pixels.shape[:2] else None
    return Sample(str(path), pixels, tuple(notes), resized, file=path)


def read_array(path: Path, shape: tuple[int, ...]) -> list[Sample]:
    """A ``.npy`` array of one sample (h, w[, c]) or a batch (n, h, w[, c])."""
    (file,) = plan_inputs([path], shape)
    return list(file_samples(file, shape))


def _open_array(path: Path) -> np.ndarray:
    """The ``.npy`` file at ``path`` memory-mapped: its header is read and checked (a numeric
    array, its data all there), none of its numbers."""
    check_input_file(path)
    if path.stat().st_size > MAX_ARRAY_BYTES:
        raise UsageError(f"expected a .npy file under {MAX_ARRAY_BYTES >> 20} MB; {path} is larger")
    with open(path, "rb") as handle:
        magic = handle.read(6)
    if magic.startswith(ZIP_MAGIC):  # (np.savez's zip, named .npy)
        raise UsageError(
            f"expected a .npy array; {path} is an .npz archive (a zip of arrays)",
            "save one array with np.save, or pass the archive as evaluate's --data",
        )
    if magic != b"\x93NUMPY":  # (numpy's own message offers to unpickle the file)
        raise UsageError(f"expected a .npy array; {path} is not one (it has no NumPy header)")
    try:
        # mmap_mode: the header is parsed and the data mapped, not read (a file shorter than its
        # header says is refused here: the map would reach past its end)
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise UsageError(
            f"expected a .npy array (numbers, no pickled objects); cannot read {path}: "
            f"{str(exc).splitlines()[0][:200]}"
        ) from None
    if not isinstance(array, np.ndarray):  # an .npz archive (np.load opened it): let it go
        getattr(array, "close", lambda: None)()
    if not isinstance(array, np.ndarray) or not (
        np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)
    ):
        raise UsageError(f"expected a numeric array in {path}; received dtype {getattr(array, 'dtype', '?')}")
    return array


def _fitted_array(path: Path, shape: tuple[int, ...]) -> tuple[np.ndarray, bool]:
    """The ``.npy`` file at ``path`` memory-mapped as a batch ``(n, *shape)``, and whether it
    holds one sample without a batch axis (labelled by its file alone); a :class:`UsageError`
    for another shape or an empty batch. Reads the header only."""
    array = _open_array(path)
    expected = tuple(shape)
    if shape[-1] == 1 and array.shape[-2:] == expected[:2] and array.ndim in (2, 3):
        array = array[..., None]  # (h, w) or (n, h, w) for a one-channel model
    if array.shape == expected:
        return array[None], True
    if not (array.ndim == len(expected) + 1 and array.shape[1:] == expected):
        raise UsageError(
            f"expected an array of shape {_size(expected)} (the model's input) or n×{_size(expected)}; "
            f"{path.name} has shape {_size(array.shape) or 'scalar'}",
            "arrays are not resized; save them in the model's input shape",
        )
    if len(array) == 0:
        raise UsageError(
            f"expected at least one sample in {path}; it holds an empty batch of shape {_size(array.shape)}"
        )
    return array, False
