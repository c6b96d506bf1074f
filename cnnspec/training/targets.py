"""Targets beyond class indices: masks, multi-hot labels and regression values (TF-free).

:mod:`cnnspec.training.data` reads every source; this module reads and checks what the
non-classification sources hold as targets:

- ``{images: DIR, masks: DIR}``: segmentation; each image has a mask PNG with the same file
  name (any image extension, in any case) holding a class index per pixel: a grayscale PNG of
  indices, a palette PNG whose palette indices are the classes, or colours mapped through a
  ``classes: {name: [r, g, b]}`` table;
- ``{images: DIR, labels: TABLE}``: multi-label; a CSV ``file,labels`` (labels separated by
  spaces, commas, ``;`` or ``|``), a CSV ``file,<label>,<label>,...`` of 0/1 columns, or a JSON
  ``{file: [labels]}``;
- ``{images: DIR, values: TABLE}``: regression; a CSV ``file,<name>,...`` of numbers or a JSON
  ``{file: number or [numbers]}``;
- arrays from ``npz`` files and the ``shapes`` generator, checked by :func:`check_target`.

Every mistake (a mask of another size than its image, a class index beyond ``classes``, a
missing mask, a target that is not a number, an image listed twice, a CSV table without its
header row, ...) is a located :class:`SpecError` naming the file and row, raised before
anything is written.
"""

from __future__ import annotations

import csv
import io
import json
import posixpath
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cnnspec.errors import SpecError, SpecPath, UsageError, format_path
from cnnspec.training.data_checks import void_hint
from cnnspec.training.filelist import ListingError, data_files, file_identity, name_order, not_found
from cnnspec.training.imagefiles import (
    IMAGE_EXTENSIONS,
    MAX_PIXELS,
    is_image_name,
    is_other_image_name,
    pillow,
    unreadable_images_error,
)
from cnnspec.training.subsets import name_key

if TYPE_CHECKING:
    from cnnspec.analysis.compiled import CompiledSpec
    from cnnspec.analysis.settings_types import DataConfig

#: The target kinds a :class:`~cnnspec.training.dataset.Dataset` holds, per output.
TARGET_KINDS = ("class", "multilabel", "regression", "mask")
#: What separates the labels of a ``file,labels`` cell. The comma too: a quoted ``"cat,dog"``
#: (or an unquoted row ``a.png,cat,dog``) means two labels, never one named ``cat,dog``.
_LABEL_SEPARATORS = re.compile(r"[,;|\s]+")
#: How many offending files an error lists.
_SHOWN = 3
#: The largest class index a class label or mask may hold (a million classes): a larger one is
#: no class index (an ID, a value, a wrapped integer) and is refused from its value alone,
#: before anything sized by it (class counts, class names, ``data.classes``' relabelling)
#: would ask for terabytes.
MAX_CLASS_INDEX = 999_999
#: The largest magnitude of a float32, what targets and pixels become in training: a larger
#: value would become infinity there (with NumPy's overflow warning).
FLOAT32_MAX = float(np.finfo(np.float32).max)


def data_error(message: str, compiled: CompiledSpec, path: SpecPath, hint: str | None = None) -> SpecError:
    """A located data error at ``path`` in the spec."""
    from cnnspec.analysis.datafit import source_loc

    return SpecError.single(message, source_loc(compiled, path), format_path(path), code="data", hint=hint)


def _listing(names: list[str]) -> str:
    more = f" and {len(names) - _SHOWN} more" if len(names) > _SHOWN else ""
    return ", ".join(names[:_SHOWN]) + more


# -- array targets (npz, shapes, and after reading files) ----------------------------------------
def check_target(
    y: Any,
    kind: str,
    what: str,
    compiled: CompiledSpec,
    where: SpecPath,
    *,
    image_shape: tuple[int, ...] | None = None,
    names: list[str] | None = None,
) -> np.ndarray:
    """``y`` as a target of ``kind`` in its canonical dtype and shape, or a located error.

    multilabel → float32 (n, K) of 0/1; regression → float32 (n, D) (a vector becomes (n, 1));
    mask → uint8 (or int32 beyond 255 classes) (n, H, W) with ``(H, W)`` the images'. Class
    targets are checked by :mod:`cnnspec.training.data` as before.
    """
    y = np.asarray(y)
    if y.dtype == object or not (np.issubdtype(y.dtype, np.number) or y.dtype == bool):
        raise data_error(
            f"expected numeric {kind} targets in {what}; received dtype {y.dtype}", compiled, where
        )
    if kind == "multilabel":
        if y.ndim != 2:
            raise data_error(
                f"expected {what} multi-label targets of shape (n, labels); received {tuple(y.shape)}",
                compiled,
                where,
                hint="store one 0/1 column per label (multi-hot rows)",
            )
        if y.size and not np.all((y == 0) | (y == 1)):
            raise data_error(
                f"expected 0/1 multi-label targets in {what}; found other values", compiled, where
            )
        return y.astype("float32")
    if kind == "regression":
        if y.ndim == 1:
            y = y[:, None]
        if y.ndim != 2:
            raise data_error(
                f"expected {what} regression targets of shape (n,) or (n, values); received {tuple(y.shape)}",
                compiled,
                where,
            )
        if y.size and not np.all(np.isfinite(y.astype("float64"))):
            raise data_error(
                f"expected finite regression targets in {what}; found {_not_finite(y)}", compiled, where
            )
        largest = float(np.max(np.abs(y.astype("float64")))) if y.size else 0.0
        if largest > FLOAT32_MAX:  # float32 would make it infinity, with a NumPy warning
            raise data_error(
                f"expected regression targets within float32's range (±{FLOAT32_MAX:.4g}) in {what}; "
                f"found {largest:g}",
                compiled,
                where,
                hint="targets are trained as float32: scale them down (and scale predictions back)",
            )
        return y.astype("float32")
    if kind != "mask":
        raise ValueError(f"unknown target kind {kind!r}")
    if y.ndim == 4 and y.shape[-1] == 1:
        y = y[..., 0]
    if y.ndim != 3:
        size = f"{image_shape[0]}, {image_shape[1]}" if image_shape is not None else "height, width"
        raise data_error(
            f"expected {what} masks of shape (n, {size}); received {tuple(y.shape)}",
            compiled,
            where,
            hint="store one class index per pixel",
        )
    if image_shape is not None and tuple(y.shape[1:3]) != tuple(image_shape[:2]):
        raise data_error(
            f"expected masks of the images' size {image_shape[0]}×{image_shape[1]} in {what}; "
            f"the masks are {y.shape[1]}×{y.shape[2]}",
            compiled,
            where,
        )
    if y.size and np.issubdtype(y.dtype, np.floating) and not np.all(np.isfinite(y)):
        raise data_error(  # before np.mod, which warns on them
            f"expected integer class indices in the {what} masks; found NaN or infinity", compiled, where
        )
    if y.size and not np.issubdtype(y.dtype, np.integer):
        if y.dtype == bool or np.all(np.mod(y, 1) == 0):
            y = y.astype("int64")
        else:
            raise data_error(
                f"expected integer class indices in the {what} masks; received {y.dtype}", compiled, where
            )
    if y.size and y.min() < 0:
        raise data_error(
            f"expected class indices ≥ 0 in the {what} masks; found {int(y.min())}", compiled, where
        )
    top = int(y.max()) if y.size else 0
    if top > MAX_CLASS_INDEX:  # before int32 wraps it, or the class names are counted up to it
        raise data_error(
            f"expected class indices of at most {MAX_CLASS_INDEX:,} in the {what} masks; found {top}",
            compiled,
            where,
            hint="store one class index (0, 1, …) per pixel",
        )
    if names and top >= len(names):
        raise data_error(
            f"expected class indices below {len(names)} (the classes) in the {what} masks; found {top}",
            compiled,
            where,
            hint=void_hint(top, len(names), "name every class up to it"),
        )
    return y.astype("uint8" if top < 256 else "int32")


def _not_finite(y: np.ndarray) -> str:
    """The first value of (n, values) targets that is not finite, as a refusal says it: ``NaN``,
    ``infinity`` or ``-infinity``, and its column where there are several (the file's column:
    the rows are a split's, not the file's)."""
    wide = y.astype("float64")
    row, column = (int(i) for i in np.argwhere(~np.isfinite(wide))[0])
    value = wide[row, column]
    said = "NaN" if np.isnan(value) else ("infinity" if value > 0 else "-infinity")
    return said + (f" in column {column + 1} of {wide.shape[1]}" if wide.shape[1] > 1 else "")


def default_names(kind: str, y: np.ndarray) -> list[str]:
    """Names when the source gives none: class indices, label indices, value indices."""
    if kind == "mask":
        count = int(y.max()) + 1 if y.size else 1
    elif kind in ("multilabel", "regression"):
        count = int(y.shape[1])
    else:
        count = int(y.max()) + 1 if y.size else 0
    return [str(i) for i in range(count)]


# -- image folders -------------------------------------------------------------------------------
def _image_files(folder: Path, compiled: CompiledSpec, where: SpecPath) -> list[Path]:
    """The images of ``folder`` (and its sub-folders, symlinked ones followed), sorted by
    relative path (in Unicode NFC first, :func:`~cnnspec.training.filelist.name_order`, so a
    macOS copy of the folder splits alike); hidden files and folders (``._x.png``,
    ``.ipynb_checkpoints/``) left out, as in class folders. Images in a format cnnspec does not
    read (WebP, TIFF, ...) are a located error at ``where``, as in class folders: they would
    otherwise be left out without a word."""
    try:
        found = data_files(folder)
    except ListingError as exc:
        raise data_error(str(exc), compiled, where, hint=exc.hint) from None
    other = sorted(p.relative_to(folder).as_posix() for p in found if is_other_image_name(p.name))
    if other:
        message, hint = unreadable_images_error(folder, other)
        raise data_error(message, compiled, where, hint=hint)
    return sorted(
        (p for p in found if is_image_name(p.name)),
        key=lambda p: name_order(p.relative_to(folder).as_posix()),
    )


def _read_images(
    files: list[Path], folder: Path, config: DataConfig, compiled: CompiledSpec
) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """uint8 (n, H, W, C) images resized to ``image_size``, and each file's own (h, w)."""
    Image = pillow()

    from cnnspec.training.imagefiles import channels_for, load_image

    assert config.image_size is not None
    channels = channels_for(config.color_mode or "rgb")
    images = np.empty((len(files), *config.image_size, channels), dtype="uint8")
    sizes: list[tuple[int, int]] = []
    for index, path in enumerate(files):
        try:
            images[index], _ = load_image(path, config.image_size, channels)
            with Image.open(path) as image:
                sizes.append((image.size[1], image.size[0]))
        except (UsageError, OSError) as exc:
            raise data_error(
                f"cannot read the image {_shown_in(path, folder)}: {exc}",
                compiled,
                ("data", "source", "images"),
                hint="remove or convert files that are not PNG/JPEG/BMP/GIF images",
            ) from None
    return images, sizes


def _shown_in(path: Path, folder: Path) -> str:
    """``a.png in FOLDER`` for a file of ``folder``; any other (a table's absolute path, a
    ``../x.png``) as the table gives it."""
    try:
        return f"{path.relative_to(folder).as_posix()} in {folder}"
    except ValueError:
        return str(path)


def _resize_nearest(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of a 2-D mask (pixel centres; class indices stay indices)."""
    height, width = mask.shape
    rows = np.minimum(((np.arange(size[0]) + 0.5) * height / size[0]).astype("int64"), height - 1)
    cols = np.minimum(((np.arange(size[1]) + 0.5) * width / size[1]).astype("int64"), width - 1)
    return mask[rows][:, cols]


def _mask_index(masks: Path, compiled: CompiledSpec) -> dict[str, list[Path]]:
    """The masks folder's image files by relative path without the extension (``sub/im0``), in
    Unicode NFC: each image's mask is found by its name, whatever the extension's case
    (``im0.PNG`` is the mask of ``im0.jpg``), and whichever form the name is in (masks copied
    from macOS, in decomposed form, beside images named on Linux, composed)."""
    try:
        found = data_files(masks)
    except ListingError as exc:
        raise data_error(str(exc), compiled, ("data", "source", "masks"), hint=exc.hint) from None
    index: dict[str, list[Path]] = {}
    for path in sorted(found, key=lambda p: p.relative_to(masks).as_posix()):
        if is_image_name(path.name):
            index.setdefault(name_key(path.relative_to(masks).with_suffix("").as_posix()), []).append(path)
    return index


def _mask_file(
    index: dict[str, list[Path]], masks: Path, relative: Path, compiled: CompiledSpec
) -> Path | None:
    """The mask of the image ``relative`` (the same name, any image extension in any case), or
    ``None``; two masks of one name (``im0.png`` and ``im0.jpg``) are a located error, not a
    silent pick."""
    candidates = index.get(name_key(relative.with_suffix("").as_posix()), [])
    if len(candidates) > 1:
        shown = ", ".join(p.relative_to(masks).as_posix() for p in candidates)
        raise data_error(
            f"expected one mask per image; {masks} holds {len(candidates)} for "
            f"{relative.as_posix()}: {shown}",
            compiled,
            ("data", "source", "masks"),
            hint="keep one mask file per image name (remove or rename the others)",
        )
    return candidates[0] if candidates else None


def _check_shared_masks(
    relatives: list[Path], mask_files: list[Path | None], folder: Path, masks: Path, compiled: CompiledSpec
) -> None:
    """A located error at ``data.source.images`` when two images of one name (``im0.png`` and
    ``im0.jpg``) would be paired with one mask, as two masks of one name are refused: one of
    them is not the mask's picture, or they are one picture in two formats, which could land in
    both the training and the test split."""
    sharing: dict[Path, list[str]] = {}
    for relative, mask in zip(relatives, mask_files, strict=True):
        if mask is not None:
            sharing.setdefault(mask, []).append(relative.as_posix())
    for mask, images in sharing.items():
        if len(images) > 1:
            raise data_error(
                f"expected one image per mask; {folder} holds {len(images)} for "
                f"{masks.name}/{mask.relative_to(masks).as_posix()}: {', '.join(images)}",
                compiled,
                ("data", "source", "images"),
                hint="keep one image file per name (remove or rename the others): each would be "
                "paired with that mask, and one picture in two formats could land in both the "
                "training and the test split",
            )


def _colour_table(classes: dict[str, list[int]]) -> tuple[np.ndarray, np.ndarray]:
    packed = np.array([(r << 16) | (g << 8) | b for r, g, b in classes.values()], dtype="int64")
    order = np.argsort(packed)
    return packed[order], order


def _decode_mask(
    path: Path, classes: list[str] | dict[str, list[int]] | None, name: str, compiled: CompiledSpec
) -> np.ndarray:
    """A mask file as class indices (h, w), int64."""
    Image = pillow()

    where: SpecPath = ("data", "source", "masks")
    too_large = f"expected an image of at most {MAX_PIXELS:,} pixels; {name} is"
    hint = "masks are read whole, as images are: resize the image and its mask"
    try:
        with Image.open(path) as image:
            mode = image.mode
            width, height = image.size
            if width * height > MAX_PIXELS:  # the limit images have, before any decoding
                raise data_error(
                    f"cannot read the mask {name}: {too_large} {width}×{height}", compiled, where, hint
                )
            if isinstance(classes, dict):
                rgb = np.asarray(image.convert("RGB"), dtype="int64")
                packed = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
                keys, order = _colour_table(classes)
                slot = np.clip(np.searchsorted(keys, packed), 0, len(keys) - 1)
                unknown = keys[slot] != packed
                if unknown.any():
                    colour = int(packed[unknown][0])
                    found = [colour >> 16, (colour >> 8) & 255, colour & 255]
                    raise data_error(
                        f"expected mask colours from the classes table; {name} has the colour {found}",
                        compiled,
                        (*where[:-1], "classes"),
                        hint="add it to classes as NAME: [r, g, b]",
                    )
                return order[slot]
            if mode in ("P", "L", "I", "I;16", "I;16B", "1"):
                return np.asarray(image).astype("int64")
            pixels = np.asarray(image.convert("RGB"), dtype="int64")
    except SpecError:
        raise
    except Image.DecompressionBombError:  # Pillow's own limit, met when the file is opened
        raise data_error(f"cannot read the mask {name}: {too_large} larger", compiled, where, hint) from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise data_error(f"cannot read the mask {name}: {exc}", compiled, where) from None
    if np.all(pixels[..., :1] == pixels):
        return pixels[..., 0]
    raise data_error(
        f"expected a mask of class indices (grayscale or palette PNG); {name} is a colour image",
        compiled,
        where,
        hint="give the classes as a table of colours: classes: {background: [0, 0, 0], NAME: [r, g, b]}",
    )


def read_image_masks(config: DataConfig, compiled: CompiledSpec) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """``{images: DIR, masks: DIR}``: images (n, H, W, C), masks (n, H, W), class names."""
    assert config.path is not None and config.labels_path is not None and config.image_size is not None
    folder, masks = config.path, config.labels_path
    files = _existing_images(config, compiled)
    if not masks.is_dir():
        raise data_error(
            f"expected a folder of masks; {not_found(masks, folder=True)}",
            compiled,
            ("data", "source", "masks"),
        )
    relatives = [p.relative_to(folder) for p in files]
    index = _mask_index(masks, compiled)
    mask_files = [_mask_file(index, masks, r, compiled) for r in relatives]
    missing = [r.as_posix() for r, m in zip(relatives, mask_files, strict=True) if m is None]
    if missing:
        raise data_error(
            f"expected a mask for every image; no mask in {masks} for {_listing(missing)}",
            compiled,
            ("data", "source", "masks"),
            hint="give each mask its image's file name (any image extension, in any case)",
        )
    # a mask whose image is gone (deleted, renamed, moved to another sub-folder) was passed over
    # without a word, where a table's row naming a missing image is refused
    chosen = set(mask_files)
    orphans = [p.relative_to(masks).as_posix() for found in index.values() for p in found if p not in chosen]
    if orphans:
        raise data_error(
            f"expected an image for every mask; no image in {folder} for the mask(s) {_listing(orphans)}",
            compiled,
            ("data", "source", "masks"),
            hint="put the images back, or remove their masks (a mask's image has its file name, in "
            "the same sub-folder)",
        )
    _check_shared_masks(relatives, mask_files, folder, masks, compiled)
    images, sizes = _read_images(files, folder, config, compiled)
    classes = config.options.get("classes")
    names = list(classes) if classes else None
    out = np.empty((len(files), *config.image_size), dtype="int64")
    for index, (relative, mask_path) in enumerate(zip(relatives, mask_files, strict=True)):
        assert mask_path is not None
        shown = f"{masks.name}/{mask_path.relative_to(masks).as_posix()}"
        mask = _decode_mask(mask_path, classes, shown, compiled)
        if mask.shape != sizes[index]:
            raise data_error(
                f"expected each mask to be the size of its image; {shown} is {mask.shape[1]}×{mask.shape[0]} "
                f"and {folder.name}/{relative.as_posix()} is {sizes[index][1]}×{sizes[index][0]}",
                compiled,
                ("data", "source", "masks"),
            )
        if names is not None and mask.size and int(mask.max()) >= len(names):
            raise data_error(
                f"expected class indices below {len(names)} (the classes table); {shown} has "
                f"{int(mask.max())}",
                compiled,
                ("data", "source", "classes"),
                hint=void_hint(int(mask.max()), len(names), "add the missing classes to the table")
                or "add the missing classes to the table",
            )
        out[index] = (
            mask if mask.shape == tuple(config.image_size) else _resize_nearest(mask, config.image_size)
        )
    y = check_target(out, "mask", "training", compiled, ("data", "source", "masks"))
    return images, y, names or default_names("mask", y)


def _existing_images(config: DataConfig, compiled: CompiledSpec) -> list[Path]:
    assert config.path is not None
    folder = config.path
    where: SpecPath = ("data", "source", "images")
    if not folder.is_dir():
        raise data_error(f"expected a folder of images; {not_found(folder, folder=True)}", compiled, where)
    files = _image_files(folder, compiled, where)
    if not files:
        raise data_error(
            f"expected images in {folder}; found no {'/'.join(IMAGE_EXTENSIONS)} files", compiled, where
        )
    first: dict[str, Path] = {}
    for path in files:  # a link to another image: one image that could land in two splits
        earlier = first.setdefault(file_identity(path), path)
        if earlier != path:
            shown = [p.relative_to(folder).as_posix() for p in (earlier, path)]
            raise data_error(
                f"expected each image once in {folder}; {shown[0]} and {shown[1]} are one file "
                "(a symbolic or hard link)",
                compiled,
                where,
                hint="remove the link (an image listed twice could land in both the training and "
                "the test split)",
            )
    return files


# -- tables of labels or values ------------------------------------------------------------------
def _read_table(path: Path, key: str, compiled: CompiledSpec) -> list[tuple[int, str, list[str] | Any]]:
    """Rows ``(line, file, cells)`` of a CSV (the header row first, line 1) or JSON table
    (``cells`` is the JSON value; line 0)."""
    where: SpecPath = ("data", "source", key)
    if not path.is_file():
        raise data_error(f"expected a CSV or JSON table; {not_found(path, folder=False)}", compiled, where)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise data_error(f"cannot read {path.name}: {exc}", compiled, where) from None
    if path.suffix.lower() == ".json":
        objects: list[list[tuple[str, Any]]] = []  # every object's pairs, the outermost last

        def pairs(found: list[tuple[str, Any]]) -> dict[str, Any]:
            objects.append(found)  # a dict would keep one of two equal keys, silently
            return dict(found)

        try:
            data = json.loads(text, object_pairs_hook=pairs)
        except json.JSONDecodeError as exc:
            raise data_error(f"expected JSON in {path.name}: {exc}", compiled, where) from None
        if not isinstance(data, dict) or not data:
            raise data_error(f"expected a JSON object file → {key} in {path.name}", compiled, where)
        return [(0, str(name), value) for name, value in objects[-1]]
    try:
        rows = [(line, row) for line, row in csv_lines(text) if any(cell.strip() for cell in row)]
    except csv.Error as exc:  # (a quote left open: the rest of the file is one cell, over the limit)
        raise data_error(f"expected a readable CSV table; {path.name}: {exc}", compiled, where) from None
    if len(rows) < 2 or len(rows[0][1]) < 2:
        raise data_error(
            f"expected a CSV header (file,{key if key == 'labels' else 'NAME'}, ...) and at least one row "
            f"in {path.name}",
            compiled,
            where,
        )
    return [(line, row[0].strip(), [cell.strip() for cell in row[1:]]) for line, row in rows]


def csv_lines(text: str) -> list[tuple[int, list[str]]]:
    """The rows of a CSV text, each with the line it starts on. Read from the whole text, not
    line by line: a quoted cell may hold a line break, and ``str.splitlines`` also breaks at
    U+2028, form feeds and other characters that are no line end to the csv module. A
    ``csv.Error`` (a cell over the module's limit) names the line its row starts on."""
    # (skipinitialspace: `a.png, "cat"` is the cell cat, not `"cat"` with its quotes)
    reader = csv.reader(io.StringIO(text, newline=""), skipinitialspace=True)
    rows, start = [], 1
    try:
        for row in reader:
            rows.append((start, row))
            start = reader.line_num + 1
    except csv.Error as exc:
        raise csv.Error(f"{exc} in the row that starts on line {start} (a quote left open?)") from None
    return rows


def _row_name(path: Path, line: int, file: str) -> str:
    return f"{path.name} row {line} ({file})" if line else f"{path.name} ({file})"


def is_number(text: str) -> bool:
    """Whether a table's cell reads as a number (``float`` takes it: ``1e3``, ``-2``, ``nan``)."""
    try:
        float(text)
    except ValueError:
        return False
    return True


def _data_rows(
    rows: list[tuple[int, str, Any]], table: Path, config: DataConfig, compiled: CompiledSpec, key: str
) -> tuple[list[str] | None, list[tuple[int, str, Any]]]:
    """The header's value cells (``None`` for JSON) and the rows of images, checked: a CSV's
    first row is a header, not data (a table without one lost its first image and named its
    columns after that image's values), and no image is listed twice (it could land in the
    training and the test split)."""
    header: list[str] | None = None
    if rows[0][0]:  # CSV: row 1 is the header
        (_, file, cells), rows = rows[0], rows[1:]
        assert config.path is not None
        if (config.path / file).is_file():
            why = f"{file} is an image in {config.path.name}"
        elif key == "values" and all(is_number(cell) for cell in cells):
            why = "its values are numbers"
        else:
            why = None
        if why is not None:
            columns = "labels (or file,LABEL,LABEL,… of 0/1 columns)" if key == "labels" else "NAME[,NAME…]"
            raise data_error(
                f"the first row of {table.name} looks like data, not a header: "
                f"{','.join([file, *cells])!r} ({why})",
                compiled,
                ("data", "source", key),
                hint=f"add a header row first: file,{columns}",
            )
        header = list(cells)
    _check_repeats(rows, table, compiled, key)
    return header, rows


def _spelling(file: str) -> str:
    """What makes two of a table's names one image by their spelling: a.png, ./a.png, b/../a.png."""
    return posixpath.normpath(file.replace("\\", "/"))


def _check_repeats(
    rows: list[tuple[int, str, Any]],
    table: Path,
    compiled: CompiledSpec,
    key: str,
    identity: Callable[[str], str] = _spelling,
) -> None:
    """Each image once: a located error naming the table and both rows of the first repeat.
    ``identity`` says which names are one image: their spelling, or (once the files are known
    to exist) :func:`~cnnspec.training.filelist.file_identity`, for links."""
    first: dict[str, tuple[int, str]] = {}
    for line, file, _ in rows:
        same = identity(file)
        if same not in first:
            first[same] = (line, file)
            continue
        earlier_line, earlier = first[same]
        linked = " (one file: a link)" if _spelling(file) != _spelling(earlier) else ""
        if line:
            where = f"rows {earlier_line} ({earlier}) and {line} ({file}){linked}"
        else:  # JSON: no rows to name
            where = f"{file} twice" if file == earlier else f"{earlier} and {file}, the same image{linked}"
        raise data_error(
            f"expected each image once in {table.name}; it lists {where}",
            compiled,
            ("data", "source", key),
            hint="keep one row per image (an image listed twice could land in both the training "
            "and the test split)",
        )


def _table_images(
    rows: list[tuple[int, str, Any]], table: Path, config: DataConfig, compiled: CompiledSpec, key: str
) -> tuple[np.ndarray, list[Path]]:
    assert config.path is not None
    folder = config.path
    where: SpecPath = ("data", "source", "images")
    if not folder.is_dir():
        raise data_error(f"expected a folder of images; {not_found(folder, folder=True)}", compiled, where)
    files = [folder / file for _, file, _ in rows]
    missing = [
        _row_name(table, line, file)
        for (line, file, _), p in zip(rows, files, strict=True)
        if not p.is_file()
    ]
    if missing:
        raise data_error(
            f"expected every file the table names in {folder}; missing {_listing(missing)}",
            compiled,
            ("data", "source", key),
        )
    _check_repeats(rows, table, compiled, key, lambda file: file_identity(folder / file))
    named = {p.resolve() for p in files}  # a.png, ./a.png and sub/../a.png are one file
    unlisted = [
        p.relative_to(folder).as_posix()
        for p in _image_files(folder, compiled, where)
        if p.resolve() not in named
    ]
    if unlisted:  # they would be left out of training without a word
        raise data_error(
            f"expected a row in {table.name} for every image in {folder}; {len(unlisted)} "
            f"image(s) have none: {_listing(unlisted)}",
            compiled,
            ("data", "source", key),
            hint=f"add a row for each to {table.name}, or move those images out of the folder "
            "(or hide them: a name starting with '.')",
        )
    images, _ = _read_images(files, folder, config, compiled)
    return images, files


#: Headers of a labels table's one column that name a list of labels (``file,labels``), not
#: one label of 0/1 cells (``file,cat``)
LIST_HEADERS = ("label", "labels", "tag", "tags", "class", "classes")


def flag(cell: str) -> float | None:
    """A multi-hot cell's value, 0.0 or 1.0: the cell is 0 or 1 as a whole number or a float
    (``1.0``, as pandas writes a column of floats); ``None`` for any other text."""
    try:
        value = float(cell)
    except ValueError:
        return None
    return float(value == 1.0) if value in (0.0, 1.0) else None


def _one_label_column(columns: list[str], rows: list[tuple[int, str, Any]]) -> bool:
    """``file,cat`` with 0/1 cells: one label's column (is it a cat?), not the labels ``0`` and
    ``1``; a header that names a list (:data:`LIST_HEADERS`) keeps its cells as labels."""
    return (
        len(columns) == 1
        and columns[0].strip().lower() not in LIST_HEADERS
        and all(len(cells) == 1 and flag(cells[0]) is not None for _, _, cells in rows)
    )


def read_image_labels(config: DataConfig, compiled: CompiledSpec) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """``{images: DIR, labels: TABLE}``: images, multi-hot float32 (n, K), label names."""
    assert config.labels_path is not None
    table = config.labels_path
    where: SpecPath = ("data", "source", "labels")
    header, rows = _data_rows(_read_table(table, "labels", compiled), table, config, compiled, "labels")
    if header is not None:  # CSV: the header says which layout
        columns = header
        if len(columns) > 1 or _one_label_column(columns, rows):  # one 0/1 column per label
            y = np.zeros((len(rows), len(columns)), dtype="float32")
            for index, (line, file, cells) in enumerate(rows):
                values = [flag(c) for c in cells]
                if len(cells) != len(columns) or None in values:
                    raise data_error(
                        f"expected {len(columns)} columns of 0 or 1 in {_row_name(table, line, file)}; "
                        f"received {','.join(cells)!r}",
                        compiled,
                        where,
                    )
                y[index] = values
            images, _ = _table_images(rows, table, config, compiled, "labels")
            return images, y, columns
        # the cells past the header's one column are labels too: a.png,cat,dog (unquoted)
        label_lists = [[t for t in _LABEL_SEPARATORS.split(",".join(cells)) if t] for _, _, cells in rows]
    else:
        label_lists = []
        for line, file, value in rows:
            if not isinstance(value, list) or not all(isinstance(v, (str, int)) for v in value):
                raise data_error(
                    f"expected a list of labels for {_row_name(table, line, file)}; received {value!r}",
                    compiled,
                    where,
                )
            # stripped as CSV cells are (" cat" is cat); an empty label is none
            label_lists.append([text for v in value if (text := str(v).strip())])
    names = sorted({label for labels in label_lists for label in labels})
    if not names:
        raise data_error(f"expected at least one label in {table.name}; every row is empty", compiled, where)
    column = {name: i for i, name in enumerate(names)}
    y = np.zeros((len(rows), len(names)), dtype="float32")
    for index, labels in enumerate(label_lists):
        y[index, [column[label] for label in labels]] = 1.0
    images, _ = _table_images(rows, table, config, compiled, "labels")
    return images, y, names


def _number(text: Any, where_text: str, compiled: CompiledSpec, where: SpecPath) -> float:
    overflow = False
    if isinstance(text, bool) or not isinstance(text, (str, int, float)):
        value = None
    else:
        try:
            value = float(text)
        except ValueError:
            value = None
        except OverflowError:  # a JSON integer of hundreds of digits has no float at all
            value, overflow = None, True
    if overflow or (value is not None and np.isfinite(value) and abs(value) > FLOAT32_MAX):
        # checked here, where the row is known: float32 would make it infinity
        raise data_error(
            f"expected a number within float32's range (±{FLOAT32_MAX:.4g}) in {where_text}; "
            f"received {text!r}",
            compiled,
            where,
            hint="targets are trained as float32: scale the values down (and scale predictions back)",
        )
    if value is None or not np.isfinite(value):
        raise data_error(
            f"expected a number in {where_text}; received {text!r}",
            compiled,
            where,
            hint="regression targets must be numbers (no units, no empty cells)",
        )
    return value


def read_image_values(config: DataConfig, compiled: CompiledSpec) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """``{images: DIR, values: TABLE}``: images, float32 (n, D) targets, value names."""
    assert config.labels_path is not None
    table = config.labels_path
    where: SpecPath = ("data", "source", "values")
    header, rows = _data_rows(_read_table(table, "values", compiled), table, config, compiled, "values")
    if header is not None:
        names = header
    else:
        first = rows[0][2]
        names = ["value"] if not isinstance(first, list) else [f"value{i}" for i in range(len(first))]
    y = np.zeros((len(rows), len(names)), dtype="float32")
    for index, (line, file, cells) in enumerate(rows):
        values = cells if isinstance(cells, list) else [cells]
        if len(values) != len(names):
            raise data_error(
                f"expected {len(names)} value(s) in {_row_name(table, line, file)}; received {len(values)}",
                compiled,
                where,
            )
        y[index] = [
            _number(v, f"{_row_name(table, line, file)}, {name}", compiled, where)
            for v, name in zip(values, names, strict=True)
        ]
    images, _ = _table_images(rows, table, config, compiled, "values")
    return images, y, names
