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

**One copy.** The generator (between the ``GENERATOR`` markers: NumPy only, no cnnspec) is
copied verbatim into training scripts that ``cnnspec codegen --script`` writes for a
``shapes`` source, so the script trains on the same images.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: What the generator can produce as the target of each image.
TARGETS: tuple[str, ...] = ("class", "multilabel", "count", "area", "mask")

# -- GENERATOR START (NumPy only: copied verbatim into generated training scripts) --------------
#: The shape kinds, in class order (classification and multi-label targets).
SHAPE_NAMES = ("circle", "square", "triangle")
#: The per-pixel classes of the ``mask`` target (0 is the background).
MASK_CLASSES = ("background", "circle", "square", "triangle")
#: A shape drawn over by later shapes until less than this fraction of it shows is removed, so
#: that every shape a label counts can be seen.
MIN_VISIBLE = 0.3
#: With overlap, an image left with fewer than ``min_shapes`` visible shapes is drawn again at
#: most this many times (each time with fresh draws; about a quarter of 16×16 images with three
#: shapes need one): settings where that stays unlikely (many large shapes on a small image)
#: keep the draw that showed the most.
MAX_REDRAWS = 64
#: Shape colours are at least this bright in every channel, the background at most
#: ``BACKGROUND_MAX``: shapes stand out from the background before noise is added.
SHAPE_MIN, BACKGROUND_MAX = 120, 90
#: Half-size factors (× 1000) that give the three kinds about the same area for one size
#: draw: a square of half-side 0.886·r and a triangle of height 2·1.253·r cover about πr².
SIZE_PER_MILLE = (1000, 886, 1253)


def _uniform(bits: np.random.PCG64, shape: tuple[int, ...]) -> np.ndarray:
    """float64 in [0, 1) from the raw words of ``bits``: the top 53 bits × 2⁻⁵³ (exact)."""
    words = bits.random_raw(int(np.prod(shape, dtype=np.int64)))
    return (words >> np.uint64(11)).astype(np.float64).reshape(shape) * 2.0**-53


def _integers(
    bits: np.random.PCG64, low: np.ndarray | int, high: np.ndarray | int, shape: tuple[int, ...]
) -> np.ndarray:
    """int64 in [low, high] (inclusive; ``low``/``high`` broadcast to ``shape``)."""
    span = (np.asarray(high, dtype=np.int64) - np.asarray(low, dtype=np.int64) + 1).astype(np.float64)
    return np.asarray(low, dtype=np.int64) + np.floor(_uniform(bits, shape) * span).astype(np.int64)


def _bytes(bits: np.random.PCG64, count: int) -> np.ndarray:
    """``count`` uint8 values: the raw words' bytes in little-endian order."""
    words = bits.random_raw(-(-count // 8))
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
_GROUPS = (
    (0, (0, 1, 2, 3)),
    (1, (0, 1, 2, 3)),
    (2, (0, 1)),
    (2, (2, 3)),
)


def _layout(
    bits: np.random.PCG64,
    n: int,
    height: int,
    width: int,
    channels: int,
    min_shapes: int,
    slots: int,
    overlap: bool,
) -> tuple[np.ndarray, ...]:
    """Draw ``n`` images' shapes: how many (counts (n,)), and each slot's kind, half-size,
    centre (cy, cx), orientation and colour (n, slots[, channels]), in that order."""
    side = min(height, width)
    r_min = max(2, side // 10)
    r_max = max(r_min, side // 4)
    counts = _integers(bits, min_shapes, slots, (n,))
    kinds = _integers(bits, 0, len(SHAPE_NAMES) - 1, (n, slots))
    size = _integers(bits, r_min, r_max, (n, slots))
    half = (size * np.asarray(SIZE_PER_MILLE, dtype=np.int64)[kinds] + 500) // 1000
    if overlap:
        top = left = np.zeros((n, slots), dtype=np.int64)
        box_height, box_width = height, width
    else:  # distinct cells of a grid × grid layout, drawn as a random order of the cells
        grid = next(g for g in range(1, slots + 1) if g * g >= slots)
        cells = np.argsort(_uniform(bits, (n, grid * grid)), axis=1, kind="stable")[:, :slots]
        box_height, box_width = height // grid, width // grid
        top, left = (cells // grid) * box_height, (cells % grid) * box_width
    half = np.minimum(half, (min(box_height, box_width) - 1) // 2)  # a shape fits in its box
    cy = _integers(bits, top + half, top + box_height - 1 - half, (n, slots))
    cx = _integers(bits, left + half, left + box_width - 1 - half, (n, slots))
    orient = _integers(bits, 0, 3, (n, slots))
    colours = _integers(bits, SHAPE_MIN, 255, (n, slots, channels))
    return counts, kinds, half, cy, cx, orient, colours


def _paint(
    height: int,
    width: int,
    counts: np.ndarray,
    kinds: np.ndarray,
    half: np.ndarray,
    cy: np.ndarray,
    cx: np.ndarray,
    orient: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw the slots in order into one map of which slot covers each pixel (int8 (n, H, W),
    -1: background), and which slots' shapes are kept (bool (n, slots)): a shape mostly hidden
    by later ones (less than ``MIN_VISIBLE`` of it shows) is removed."""
    n, slots = kinds.shape
    slot_map = np.full((n, height, width), -1, dtype=np.int8)
    drawn = np.zeros((n, slots), dtype=np.int64)
    ys = np.arange(height, dtype=np.int32)[None, :, None]
    xs = np.arange(width, dtype=np.int32)[None, None, :]
    for slot in range(slots):
        for kind, orients in _GROUPS:
            group = (counts > slot) & (kinds[:, slot] == kind) & np.isin(orient[:, slot], orients)
            (idx,) = np.nonzero(group)
            if len(idx):
                place = (idx, np.full_like(idx, slot))
                centre_y, centre_x = cy[place].astype(np.int32), cx[place].astype(np.int32)
                inside = _inside(
                    kind,
                    ys - centre_y[:, None, None],
                    xs - centre_x[:, None, None],
                    half[place].astype(np.int32)[:, None, None],
                    orient[place][:, None, None],
                )
                part = slot_map[idx]
                part[inside] = slot
                slot_map[idx] = part
                drawn[idx, slot] = np.count_nonzero(inside, axis=(1, 2))
    shown = np.stack([np.count_nonzero(slot_map == s, axis=(1, 2)) for s in range(slots)], axis=1)
    kept = (counts[:, None] > np.arange(slots)) & (shown > 0) & (shown >= MIN_VISIBLE * drawn)
    return slot_map, kept


def draw_shapes(
    n: int,
    height: int,
    width: int,
    channels: int,
    min_shapes: int,
    max_shapes: int,
    noise: float,
    seed: int,
    overlap: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` images (uint8 (n, H, W, C)), their masks (uint8 (n, H, W): 0 background, 1 + the
    kind's index in ``SHAPE_NAMES``) and each drawing slot's kind (int8 (n, max_shapes), -1
    where no shape is left), deterministically for the seed.

    Without ``overlap`` each shape lies in its own cell of a grid (a random cell per shape, a
    random place in it), so every shape is whole and each pixel's class can be told from the
    shape it belongs to. With ``overlap`` shapes go anywhere and later ones cover earlier ones;
    an image left with fewer than ``min_shapes`` visible shapes is drawn again (up to
    ``MAX_REDRAWS`` times, keeping the draw that shows the most), so that ``min_shapes`` holds
    for what the targets count."""
    slots = max_shapes
    bits = np.random.PCG64(seed)  # only its raw words are used (see the module docstring)
    layout = _layout(bits, n, height, width, channels, min_shapes, slots, overlap)
    background = _integers(bits, 0, BACKGROUND_MAX, (n, 1, channels))
    slot_map, kept = _paint(height, width, *layout[:6])
    amplitude = int(noise * 255 + 0.5)
    # The noise bytes are drawn before any redraw, so that an image drawn again leaves every
    # other image's bytes as they were (and images without overlap never draw again).
    noise_bytes = _bytes(bits, n * height * width * channels) if amplitude else None
    for _ in range(MAX_REDRAWS if overlap else 0):
        (short,) = np.nonzero(kept.sum(axis=1) < min_shapes)
        if not len(short):
            break
        again = _layout(bits, len(short), height, width, channels, min_shapes, slots, overlap)
        map_again, kept_again = _paint(height, width, *again[:6])
        # a draw replaces the image's only where more shapes show: the best one is kept
        better = kept_again.sum(axis=1) > kept[short].sum(axis=1)
        slot_map[short[better]], kept[short[better]] = map_again[better], kept_again[better]
        for whole, part in zip(layout, again):
            whole[short[better]] = part[better]
    kinds, colours = layout[1], layout[6]

    # Removed shapes become background; each pixel's class and colour are looked up in
    # per-image tables (index 0: the background) with one ``take`` over int32 indices
    # (image × (slots + 1) + slot + 1).
    final_kinds = np.where(kept, kinds, -1).astype(np.int8)
    mask_table = np.zeros((n, slots + 1), dtype=np.uint8)
    mask_table[:, 1:] = np.where(kept, kinds + 1, 0)
    colour_table = np.empty((n, slots + 1, channels), dtype=np.uint8)
    colour_table[:, :1] = background
    colour_table[:, 1:] = np.where(kept[..., None], colours, background)
    index = (np.arange(n, dtype=np.int32) * (slots + 1))[:, None, None] + (slot_map + 1)
    masks = np.take(mask_table.reshape(-1), index)
    pixels = np.take(colour_table.reshape(-1, channels), index, axis=0)

    if noise_bytes is None:
        return pixels, masks, final_kinds
    # uniform integers in [-amplitude, amplitude] from noise bytes through a look-up table
    table = ((np.arange(256, dtype=np.int32) * (2 * amplitude + 1)) >> 8) - amplitude
    noisy = pixels.astype(np.int16)
    noisy += table.astype(np.int16)[noise_bytes.reshape(pixels.shape)]
    images = np.clip(noisy, 0, 255).astype(np.uint8)
    return images, masks, final_kinds


def shapes_target(masks: np.ndarray, kinds: np.ndarray, name: str) -> tuple[np.ndarray, list[str]]:
    """The target ``name`` of every image, and its names (classes, labels or value names).

    ``class``: int64 (N,) index of the shape that covers the most pixels; ``multilabel``:
    float32 (N, 3) 0/1 per shape kind; ``count``: float32 (N, 1) number of shapes; ``area``:
    float32 (N, 1) fraction of the image covered by shapes; ``mask``: uint8 (N, H, W)
    per-pixel classes (``MASK_CLASSES``).
    """
    n = len(masks)
    if name == "mask":
        return masks, list(MASK_CLASSES)
    present = np.zeros((n, len(SHAPE_NAMES)), dtype=bool)
    rows, slots = np.nonzero(kinds >= 0)
    present[rows, kinds[rows, slots]] = True
    if name == "multilabel":
        return present.astype("float32"), list(SHAPE_NAMES)
    if name == "count":
        return (kinds >= 0).sum(axis=1, dtype=np.int64).astype("float32")[:, None], ["count"]
    pixels = masks.reshape(n, -1)
    if name == "area":
        covered = np.count_nonzero(pixels, axis=1) / pixels.shape[1]
        return covered.astype("float32")[:, None], ["area"]
    # class (the names are checked by the caller)
    per_kind = np.stack([np.count_nonzero(pixels == k + 1, axis=1) for k in range(len(SHAPE_NAMES))])
    return per_kind.argmax(axis=0).astype("int64"), list(SHAPE_NAMES)


# -- GENERATOR END ------------------------------------------------------------------------------


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
    overlap: bool = False
    """Shapes may cover each other (else each has a cell of its own)."""


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
        """The target array of every image and its names (see :func:`shapes_target`)."""
        if name not in TARGETS:
            raise ValueError(f"unknown shapes target {name!r}; expected one of {', '.join(TARGETS)}")
        return shapes_target(self.masks, self.kinds, name)


def generate(options: ShapesOptions) -> Shapes:
    """Generate ``options.images`` images with their masks, deterministically for the seed."""
    height, width = options.image_size
    images, masks, kinds = draw_shapes(
        options.images,
        height,
        width,
        options.channels,
        options.min_shapes,
        options.max_shapes,
        options.noise,
        options.seed,
        options.overlap,
    )
    return Shapes(images, masks, kinds)


def generator_source() -> str:
    """The generator's source text (NumPy only), as generated training scripts embed it."""
    from pathlib import Path

    text = Path(__file__).read_text(encoding="utf-8")
    start = text.index("# -- GENERATOR START")
    end = text.index("# -- GENERATOR END")
    return text[text.index("\n", start) + 1 : end].rstrip() + "\n"
