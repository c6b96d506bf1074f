"""A source's arrays made ready to split: the labels checked against the class names, the images
given a channel axis and checked for non-finite values, the pixel range and its scale, and the
stratified, seeded split into training, validation and test images.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from cnnspec.analysis.pixel_scaling import integer_pixel_max, model_scales_input
from cnnspec.analysis.settings_types import DataConfig, TrainConfig
from cnnspec.analysis.tasks import SHAPES_TARGET_KINDS
from cnnspec.errors import SpecError, SpecPath
from cnnspec.training.dataset import SOURCE, source_error

if TYPE_CHECKING:
    from cnnspec.analysis.compiled import CompiledSpec


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
    return source_error(message, compiled, path, hint)


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
        raise source_error(
            f"expected {what} labels of shape (n,) or (n, 1); received shape {tuple(y.shape)}",
            compiled,
            hint="store class indices, not one-hot rows",
        )
    if y.size and np.issubdtype(y.dtype, np.floating) and not np.all(np.isfinite(y)):
        raise source_error(  # before np.mod, which warns on them
            f"expected integer class labels in {what}; found {_non_finite_name(y)}",
            compiled,
            hint="store a class index (0, 1, …) for every image",
        )
    whole_floats = np.issubdtype(y.dtype, np.floating) and bool(np.all(np.mod(y, 1) == 0))
    if y.size and not np.issubdtype(y.dtype, np.integer) and not whole_floats:
        # (whole floats are cast below, once their range is checked: 1e30 has no int64)
        raise source_error(f"expected integer class labels in {what}; received dtype {y.dtype}", compiled)
    if y.size and y.min() < 0:
        raise source_error(f"expected class labels ≥ 0 in {what}; received {int(y.min())}", compiled)
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
    raise source_error(
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
        raise source_error(
            f"expected {what} images shaped (n, height, width[, channels]); received {tuple(x.shape)}",
            compiled,
        )
    if not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)):
        raise source_error(f"expected numeric images in {what}; received dtype {x.dtype}", compiled)
    if np.issubdtype(x.dtype, np.floating):  # a NaN pixel makes every loss NaN, silently
        bad = _first_non_finite(x)
        if bad is not None:
            image, row, column, channel = bad
            value = float(x[bad])
            if np.isfinite(x[bad]):  # finite in its dtype (a longdouble's 1e400 too), not in float32
                shown = f"{value:g}" if math.isfinite(value) else str(x[bad])  # (beyond a float too)
                raise source_error(
                    f"expected pixel values within float32's range in the {what} images{origin}; "
                    f"image {image} has {shown} at row {row}, column {column}, channel {channel}",
                    compiled,
                    hint="images are trained as float32 (at most ±3.4e38): scale the pixels down, "
                    "or leave those images out",
                )
            raise source_error(
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
        raise source_error(
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
    return source_error(
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
