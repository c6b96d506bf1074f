"""The embedded ``shapes`` dataset: circles, squares and triangles on a noisy background.

One generator serves every task: the dominant shape (classification), which shapes are present
(multi-label), how many shapes or how much of the image they cover (regression) and a class
index per pixel (segmentation; class 0 is the background). Nothing is downloaded and
TensorFlow is not imported.

**The same images on every machine.** All randomness is drawn from the *raw* 64-bit output of
NumPy's ``PCG64`` bit generator (an exactly specified algorithm), never through NumPy's
distribution methods, whose algorithms may change between NumPy versions. The raw words become
numbers with integer and IEEE-754 double arithmetic only (``+ - * //`` and ``floor``, each
correctly rounded everywhere; no ``sin``/``sqrt`` from the platform's maths library), noise
bytes are taken in little-endian order, and the geometry is integer arithmetic on pixel
centres. ``tests/test_shapes.py`` pins a golden hash of a small sample.

**Fast.** Every step is vectorised over all images at once: each of the ``max_shapes`` drawing
slots rasterises every image's shape of one kind in one NumPy expression, then a per-pixel
slot map is turned into masks and pixels by table look-ups (2,000 64×64 images: see
``benchmarks/bench_shapes.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: The shape kinds, in class order (classification and multi-label targets).
SHAPE_NAMES: tuple[str, ...] = ("circle", "square", "triangle")
#: The per-pixel classes of the ``mask`` target (0 is the background).
MASK_CLASSES: tuple[str, ...] = ("background", *SHAPE_NAMES)
#: What the generator can produce as the target of each image.
TARGETS: tuple[str, ...] = ("class", "multilabel", "count", "area", "mask")
#: A shape drawn over by later shapes until less than this fraction of it shows is removed, so
#: that every shape a label counts can be seen.
MIN_VISIBLE = 0.3
#: Shape colours are at least this bright in every channel, the background at most
#: ``BACKGROUND_MAX``: shapes stand out from the background before noise is added.
SHAPE_MIN, BACKGROUND_MAX = 120, 90
#: Half-size factors (× 1000) that give the three kinds about the same area for one size
#: draw: a square of half-side 0.886·r and a triangle of height 2·1.253·r cover about πr².
_SIZE_PER_MILLE = np.array([1000, 886, 1253], dtype=np.int64)


@dataclass(frozen=True)
class ShapesOptions:
    """The generator's settings (``data.source: {shapes: {...}}`` in a spec)."""

    images: int = 2000
    image_size: tuple[int, int] = (64, 64)
    channels: int = 3
    min_shapes: int = 1
    max_shapes: int = 3
    noise: float = 0.1
    """Amplitude of the uniform pixel noise as a fraction of the 0–255 range."""
    seed: int = 0


@dataclass(frozen=True)
class Shapes:
    """Generated images and everything the targets are computed from."""

    images: np.ndarray
    """uint8 (N, H, W, C)."""
    masks: np.ndarray
    """uint8 (N, H, W): 0 background, 1 + the kind's index in :data:`SHAPE_NAMES`."""
    kinds: np.ndarray
    """int8 (N, max_shapes): each drawing slot's kind index, -1 where no shape is left."""

    def target(self, name: str) -> tuple[np.ndarray, list[str]]:
        """The target array of every image and its names (classes, labels or value names).

        ``class``: int64 (N,) index of the shape that covers the most pixels; ``multilabel``:
        float32 (N, 3) 0/1 per shape kind; ``count``: float32 (N, 1) number of shapes;
        ``area``: float32 (N, 1) fraction of the image covered by shapes; ``mask``: uint8
        (N, H, W) per-pixel classes (:data:`MASK_CLASSES`).
        """
        n = len(self.masks)
        if name == "mask":
            return self.masks, list(MASK_CLASSES)
        present = np.zeros((n, len(SHAPE_NAMES)), dtype=bool)
        rows, slots = np.nonzero(self.kinds >= 0)
        present[rows, self.kinds[rows, slots]] = True
        if name == "multilabel":
            return present.astype("float32"), list(SHAPE_NAMES)
        if name == "count":
            return (self.kinds >= 0).sum(axis=1, dtype=np.int64).astype("float32")[:, None], ["count"]
        pixels = self.masks.reshape(n, -1)
        if name == "area":
            covered = np.count_nonzero(pixels, axis=1) / pixels.shape[1]
            return covered.astype("float32")[:, None], ["area"]
        if name == "class":
            per_kind = np.stack([np.count_nonzero(pixels == k + 1, axis=1) for k in range(len(SHAPE_NAMES))])
            return per_kind.argmax(axis=0).astype("int64"), list(SHAPE_NAMES)
        raise ValueError(f"unknown shapes target {name!r}; expected one of {', '.join(TARGETS)}")


class _Stream:
    """Uniform numbers from the raw words of one PCG64 stream (the same on every machine)."""

    def __init__(self, seed: int) -> None:
        self.bits = np.random.PCG64(seed)

    def uniform(self, shape: tuple[int, ...]) -> np.ndarray:
        """float64 in [0, 1): the top 53 bits of each word × 2⁻⁵³ (exact)."""
        words = self.bits.random_raw(int(np.prod(shape, dtype=np.int64)))
        return (words >> np.uint64(11)).astype(np.float64).reshape(shape) * 2.0**-53

    def integers(self, low: np.ndarray | int, high: np.ndarray | int, shape: tuple[int, ...]) -> np.ndarray:
        """int64 in [low, high] (inclusive; ``low``/``high`` broadcast to ``shape``)."""
        span = (np.asarray(high, dtype=np.int64) - np.asarray(low, dtype=np.int64) + 1).astype(np.float64)
        return np.asarray(low, dtype=np.int64) + np.floor(self.uniform(shape) * span).astype(np.int64)

    def bytes(self, count: int) -> np.ndarray:
        """``count`` uint8 values: the words' bytes in little-endian order."""
        words = self.bits.random_raw(-(-count // 8))
        return words.astype("<u8", copy=False).view(np.uint8)[:count]


def _inside(kind: int, dy: np.ndarray, dx: np.ndarray, r: np.ndarray, orient: np.ndarray) -> np.ndarray:
    """Which pixels lie in each shape (integer arithmetic): ``dy`` (k, H, 1) and ``dx``
    (k, 1, W) are the pixels' offsets from each shape's centre, ``r`` (k, 1, 1) its half-size,
    ``orient`` (k, 1, 1) where a triangle's apex points (0 up, 1 down, 2 left, 3 right; one
    group of triangles is all vertical or all horizontal). Work on the (k, H, W) grid is kept
    to one or two operations: everything else is computed on rows and columns."""
    if kind == 0:  # circle
        return dy * dy + dx * dx <= r * r
    if kind == 1:  # square
        return (np.abs(dy) <= r) & (np.abs(dx) <= r)
    # triangle: apex at -r along its axis, base at +r, half as wide as it is tall at each point
    sign = np.where(orient % 2 == 0, 1, -1).astype(dy.dtype)
    along, across = (dy * sign, np.abs(dx)) if bool(np.all(orient < 2)) else (dx * sign, np.abs(dy))
    return (along <= r) & (2 * across <= along + r)


#: Drawing groups: (kind, which orientations) — triangles are drawn vertical and horizontal apart
#: so that each group's apex axis is the same (see :func:`_inside`).
_GROUPS: tuple[tuple[int, tuple[int, ...]], ...] = (
    (0, (0, 1, 2, 3)),
    (1, (0, 1, 2, 3)),
    (2, (0, 1)),
    (2, (2, 3)),
)


def generate(options: ShapesOptions) -> Shapes:
    """Generate ``options.images`` images with their masks, deterministically for the seed."""
    n, (height, width), channels = options.images, options.image_size, options.channels
    slots = options.max_shapes
    stream = _Stream(options.seed)
    side = min(height, width)
    r_min = max(2, side // 10)
    r_max = max(r_min, side // 4)
    counts = stream.integers(options.min_shapes, slots, (n,))
    kinds = stream.integers(0, len(SHAPE_NAMES) - 1, (n, slots))
    size = stream.integers(r_min, r_max, (n, slots))
    half = (size * _SIZE_PER_MILLE[kinds] + 500) // 1000
    half = np.minimum(half, (side - 1) // 2)  # a shape always fits in the image
    cy = stream.integers(half, height - 1 - half, (n, slots))
    cx = stream.integers(half, width - 1 - half, (n, slots))
    orient = stream.integers(0, 3, (n, slots))
    colours = stream.integers(SHAPE_MIN, 255, (n, slots, channels))
    background = stream.integers(0, BACKGROUND_MAX, (n, 1, channels))

    # Draw the slots in order into one map of which slot covers each pixel (-1: background).
    slot_map = np.full((n, height, width), -1, dtype=np.int8)
    drawn = np.zeros((n, slots), dtype=np.int64)
    ys = np.arange(height, dtype=np.int32)[None, :, None]
    xs = np.arange(width, dtype=np.int32)[None, None, :]
    for slot in range(slots):
        for kind, orients in _GROUPS:
            group = (counts > slot) & (kinds[:, slot] == kind) & np.isin(orient[:, slot], orients)
            (idx,) = np.nonzero(group)
            if not len(idx):
                continue
            col = (idx, np.full_like(idx, slot))

            def around(values: np.ndarray, col: tuple[np.ndarray, np.ndarray] = col) -> np.ndarray:
                return values[col].astype(np.int32)[:, None, None]

            inside = _inside(kind, ys - around(cy), xs - around(cx), around(half), around(orient))
            part = slot_map[idx]
            part[inside] = slot
            slot_map[idx] = part
            drawn[idx, slot] = np.count_nonzero(inside, axis=(1, 2))

    # Remove shapes mostly hidden by later ones (they become background), then paint each
    # slot's pixels with its class and colour (per-image values broadcast; no gathers).
    shown = np.stack([np.count_nonzero(slot_map == s, axis=(1, 2)) for s in range(slots)], axis=1)
    kept = (counts[:, None] > np.arange(slots)) & (shown > 0) & (shown >= MIN_VISIBLE * drawn)
    final_kinds = np.where(kept, kinds, -1).astype(np.int8)
    masks = np.zeros((n, height, width), dtype=np.uint8)
    pixels = np.broadcast_to(background.astype(np.uint8)[:, None], (n, height, width, channels)).copy()
    for slot in range(slots):
        here = (slot_map == slot) & kept[:, slot, None, None]
        np.copyto(masks, (kinds[:, slot] + 1).astype(np.uint8)[:, None, None], where=here)
        np.copyto(pixels, colours[:, slot, None, None].astype(np.uint8), where=here[..., None])

    amplitude = int(options.noise * 255 + 0.5)
    if not amplitude:
        return Shapes(pixels, masks, final_kinds)
    # uniform integers in [-amplitude, amplitude] from noise bytes through a look-up table
    table = ((np.arange(256, dtype=np.int32) * (2 * amplitude + 1)) >> 8) - amplitude
    noisy = pixels.astype(np.int16)
    noisy += table.astype(np.int16)[stream.bytes(pixels.size).reshape(pixels.shape)]
    images = np.clip(noisy, 0, 255).astype(np.uint8)
    return Shapes(images, masks, final_kinds)
