"""Pictures of a trained model: feature maps, filters, sample predictions, class maps and the
reliability diagram.

Drawn like :mod:`cnnspec.training.plots` (matplotlib's object API on an Agg canvas: no pyplot,
no display) and returned as PNG bytes, so the commands can write them atomically and the HTML
report can inline them. Every text that names something (a class, a run, a model, a layer) is
fitted as it reads and then handed to matplotlib through :func:`~cnnspec.training.plots.literal`,
so a ``$`` in it is drawn as a dollar, never parsed as mathtext.
"""

from __future__ import annotations

import functools
import io
import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from cnnspec.errors import printable
from cnnspec.training.plots import agg_figure, cut_label, distinct_label, literal, png_bytes

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from cnnspec.layers.registry import KernelLayout
    from cnnspec.reporting.calibration import Calibration

MISTAKE = "#c62828"
CORRECT = "#2e7d32"
#: The title of a sample whose outputs are not finite numbers (a diverged run).
NO_PREDICTION_TITLE = "no prediction: not numbers"


@functools.lru_cache(maxsize=4096)
def text_width(text: str, fontsize: float, bold: bool = False) -> float:
    """How wide ``text`` is drawn in the default font at ``fontsize``, in points (measured on
    the glyphs: a count of characters misjudges "WWW" against "iii").

    Kept per text, size and weight (cnnspec draws in matplotlib's default font and never
    changes it): one measurement lays the glyphs out at 100 points and takes about a
    millisecond, and the pictures measure the same texts again and again (the binary searches
    of :func:`longest_fitting`, each tile's class names, a run's samples and mistakes)."""
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import text_to_path

    font = FontProperties(size=fontsize, weight="bold" if bold else "normal")
    width, _, _ = text_to_path.get_text_width_height_descent(text, font, ismath=False)
    return float(width)


def longest_fitting(
    most: int, make: Callable[[int], str], width: float, fontsize: float, bold: bool = False
) -> str:
    """``make(k)`` for the largest ``k`` in 1…``most`` whose text fits ``width`` points
    (``make(1)`` when none does): ``make`` shortens a text to ``k`` characters."""
    low, high = 1, max(1, most)
    while low < high:  # the widths grow with k: a binary search
        middle = (low + high + 1) // 2
        if text_width(make(middle), fontsize, bold) <= width:
            low = middle
        else:
            high = middle - 1
    return make(low)


def fit_caption(text: str, width: float, fontsize: float) -> str:
    """Each line of ``text`` cut in the middle to fit ``width`` points when wider (its end,
    such as a file name, stays visible): a title wider than its panel ran off the figure's
    edge. The text as it reads: pass it through :func:`~cnnspec.training.plots.literal` to
    draw it."""
    return "\n".join(_fit_line(line, width, fontsize) for line in text.split("\n"))


def wrapped(text: str, width: float, fontsize: float) -> str:
    """Each line of ``text`` broken at spaces into lines that fit ``width`` points (a word
    wider than that alone is cut by :func:`fit_caption`): a title of a narrow figure (samples
    ``--max 1``) ran off both its edges."""
    lines: list[str] = []
    for line in text.split("\n"):
        current = ""
        for word in line.split(" "):
            tried = f"{current} {word}" if current else word
            if current and text_width(printable(tried), fontsize) > width:
                lines.append(current)
                tried = word
            current = tried
        lines.append(current)
    return fit_caption("\n".join(lines), width, fontsize)


def _fit_line(text: str, width: float, fontsize: float) -> str:
    shown = printable(text)
    if text_width(shown, fontsize) <= width:
        return shown

    def cut(chars: int) -> str:
        head = (chars - 1) // 2
        return shown[:head] + "…" + shown[len(shown) - (chars - 1 - head) :]

    return longest_fitting(len(shown) - 1, cut, width, fontsize)


def display_image(pixels: np.ndarray) -> tuple[np.ndarray, str | None]:
    """An image (h, w, c) in any stored format → (array for ``imshow`` in [0, 1], colormap)."""
    x = np.asarray(pixels, dtype="float64")
    if np.issubdtype(np.asarray(pixels).dtype, np.integer):
        x = x / 255.0
    elif x.size and (x.min() < 0 or x.max() > 1):
        span = x.max() - x.min()
        x = (x - x.min()) / span if span else np.zeros_like(x)
    if x.ndim == 3 and x.shape[-1] == 1:
        return x[..., 0], "gray"
    if x.ndim == 3 and x.shape[-1] not in (3, 4):
        return x.mean(axis=-1), "gray"
    return np.clip(x, 0, 1), None


def image_png(pixels: np.ndarray, min_size: int = 96) -> bytes:
    """A small PNG of one image, enlarged by whole pixels to at least ``min_size`` wide."""
    from PIL import Image

    shown, _ = display_image(pixels)
    array = np.clip(np.round(shown * 255), 0, 255).astype("uint8")
    image = Image.fromarray(array)  # L, RGB or RGBA from the shape
    factor = max(1, math.ceil(min_size / max(image.width, 1)))
    if factor > 1:
        image = image.resize((image.width * factor, image.height * factor), Image.Resampling.NEAREST)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def _grid(count: int) -> tuple[int, int]:
    cols = max(1, math.ceil(math.sqrt(count)))
    return math.ceil(count / cols), cols


def _bare(axes: object) -> None:
    axes.set_xticks([])  # type: ignore[attr-defined]
    axes.set_yticks([])  # type: ignore[attr-defined]


def mosaic(
    tiles: np.ndarray, labels: Sequence[str], cols: int
) -> tuple[np.ndarray, list[tuple[float, float, str]]]:
    """Tiles (n, h, w[, 3]) laid out in one array with white gaps and a strip above each tile
    for its label: one ``imshow`` instead of one axes per tile (matplotlib takes ~25 ms per
    axes, so a 64-tile grid drawn as subplots costs seconds). Gaps are NaN (grayscale) or 1."""
    n, h, w = tiles.shape[:3]
    rows = max(1, math.ceil(n / cols))
    gap = max(1, round(w * 0.12))
    strip = max(1, round(h * 0.3))
    cell_h, cell_w = strip + h + gap, w + gap
    shape = (rows * cell_h - gap, cols * cell_w - gap, *tiles.shape[3:])
    canvas = np.full(shape, np.nan if tiles.ndim == 3 else 1.0)
    places = []
    for index in range(n):
        top, left = (index // cols) * cell_h + strip, (index % cols) * cell_w
        canvas[top : top + h, left : left + w] = tiles[index]
        places.append((left + (w - 1) / 2, top - 0.6, labels[index]))
    return canvas, places


def _label(axes: object, places: list[tuple[float, float, str]], fontsize: float) -> None:
    for x, y, text in places:
        shown = literal(text)  # a class name's control characters and dollars, escaped (as tick labels)
        axes.text(x, y, shown, ha="center", va="bottom", fontsize=fontsize, color="#333333")  # type: ignore[attr-defined]


def _scaled(tile: np.ndarray) -> np.ndarray:
    low, high = float(np.min(tile)), float(np.max(tile))
    return (tile - low) / (high - low) if high > low else np.zeros_like(tile)


def feature_maps_png(
    image: np.ndarray,
    activations: np.ndarray,
    layer: str,
    *,
    prefix: str = "",
    caption: str = "",
    max_maps: int = 16,
) -> bytes:
    """The input image beside a grid of a layer's feature maps (each scaled to its own range;
    the most active ones when there are more channels than ``max_maps``); a bar chart of the
    units for a flat layer output."""
    import matplotlib

    acts = np.asarray(activations, dtype="float64")
    shown, cmap = display_image(image)
    if acts.ndim == 1:
        figure = agg_figure(figsize=(11, 4), dpi=100)
        grid = figure.add_gridspec(1, 2, width_ratios=[1, 3])
        left = figure.add_subplot(grid[0, 0])
        left.imshow(shown, cmap=cmap, interpolation="nearest")
        # the left panel's share of the 11-inch width (ratios 1 : 3, less the margins), in points
        left.set_title(literal(fit_caption(caption or "input", 72 * 11 * 0.9 / 4, 10)), fontsize=10)
        _bare(left)
        right = figure.add_subplot(grid[0, 1])
        right.bar(range(len(acts)), acts, color="#1565c0")
        right.set_xlabel("unit")
        right.set_ylabel("activation")
        right.set_title(literal(f"{layer}: {len(acts)} units"))
        figure.suptitle(literal(f"{prefix}activations of {layer}"))
        figure.tight_layout()
        return png_bytes(figure)
    if acts.ndim != 3:
        raise ValueError(f"expected (height, width, channels) activations; received {acts.shape}")
    channels = acts.shape[-1]
    order = np.arange(channels)
    if channels > max_maps:
        strength = np.abs(acts).mean(axis=(0, 1))
        order = np.sort(np.argsort(-strength, kind="stable")[:max_maps])
    _, cols = _grid(len(order))
    tiles = np.stack([_scaled(acts[:, :, c]) for c in order])
    canvas, places = mosaic(tiles, [f"#{c}" for c in order], cols)
    width = min(13.0, max(8.0, 3.4 + cols * 1.5))
    panel = width * 0.96 * 2.6 / 3.68  # the mosaic's width in inches (ratios and wspace below)
    height = max(3.6, panel * canvas.shape[0] / canvas.shape[1] + 0.9)
    figure = agg_figure(figsize=(width, height), dpi=100)
    grid = figure.add_gridspec(1, 2, width_ratios=[1, 2.6], wspace=0.08)
    left = figure.add_subplot(grid[0, 0])
    left.imshow(shown, cmap=cmap, interpolation="nearest")
    # the left panel's share of the width (ratios 1 : 2.6 and the margins below), in points
    left.set_title(literal(fit_caption(caption or "input", 72 * width * 0.96 / 3.68, 10)), fontsize=10)
    _bare(left)
    right = figure.add_subplot(grid[0, 1])
    palette = matplotlib.colormaps["viridis"].with_extremes(bad="white")
    right.imshow(canvas, cmap=palette, vmin=0, vmax=1, interpolation="nearest")
    right.set_axis_off()
    _label(right, places, 8 if cols <= 6 else 7)
    which = f"{len(order)} most active of {channels}" if channels > len(order) else f"{channels}"
    size = f"{acts.shape[0]}×{acts.shape[1]}"
    heading = f"{prefix}feature maps of {layer}\n({which} channels, {size}; each scaled to its range)"
    figure.suptitle(literal(heading))
    figure.subplots_adjust(left=0.02, right=0.98, top=1 - 0.75 / height, bottom=0.02)
    return png_bytes(figure)


def kernel_tiles(kernel: np.ndarray, layout: KernelLayout) -> tuple[np.ndarray, str]:
    """A convolution's kernel as tiles (n, kh, kw[, 3]) and what one tile shows; ``layout`` is
    how Keras stores it (the kind's ``kernel_layout``: ``hwio``, ``hwoi`` or ``hwim``)."""
    k = np.asarray(kernel, dtype="float64")
    if layout == "hwoi":
        k = np.swapaxes(k, 2, 3)  # a transposed convolution's (kh, kw, out, in)
    kh, kw, cin, cout = k.shape
    if layout == "hwim":
        tiles = k.reshape(kh, kw, cin * cout).transpose(2, 0, 1)
        return tiles, "one depthwise kernel per tile"
    if cin == 3:
        return k.transpose(3, 0, 1, 2), "RGB kernel per tile (each scaled to its own range)"
    if cin == 1:
        return k[:, :, 0, :].transpose(2, 0, 1), "one kernel per tile"
    return k.mean(axis=2).transpose(2, 0, 1), f"kernel averaged over {cin} input channels per tile"


def filters_png(
    kernel: np.ndarray, layout: KernelLayout, layer: str, *, prefix: str = "", max_filters: int = 64
) -> bytes:
    """One tile per filter of a convolution: blue–red around zero, or RGB for a 3-channel input."""
    import matplotlib

    tiles, what = kernel_tiles(kernel, layout)
    total = len(tiles)
    tiles = tiles[:max_filters]
    if tiles.ndim == 4:  # RGB: each kernel scaled to its own range
        tiles = np.stack([_scaled(t) for t in tiles])
    _, cols = _grid(len(tiles))
    canvas, places = mosaic(tiles, [f"#{i}" for i in range(len(tiles))], cols)
    rows = math.ceil(len(tiles) / cols)
    figure = agg_figure(figsize=(min(12.0, 2.0 + cols * 1.0), min(12.0, 1.2 + rows * 1.05)), dpi=100)
    axes = figure.add_axes((0.03, 0.03, 0.82, 0.85))
    if tiles.ndim == 4:
        axes.imshow(canvas, interpolation="nearest")
    else:
        limit = float(np.abs(tiles).max()) or 1.0
        palette = matplotlib.colormaps["RdBu_r"].with_extremes(bad="white")
        image = axes.imshow(canvas, cmap=palette, vmin=-limit, vmax=limit, interpolation="nearest")
        bar = figure.colorbar(image, cax=figure.add_axes((0.88, 0.1, 0.025, 0.7)))
        bar.set_label("weight")
    axes.set_axis_off()
    _label(axes, places, 7)
    shown = f"first {len(tiles)} of {total}" if total > len(tiles) else f"{total}"
    size = f"{tiles.shape[1]}×{tiles.shape[2]}"
    figure.suptitle(literal(f"{prefix}filters of {layer}\n({shown} filters, {size}; {what})"), fontsize=11)
    return png_bytes(figure)


def samples_png(
    images: Sequence[np.ndarray],
    y_true: Sequence[int],
    y_pred: Sequence[int],
    confidence: Sequence[float],
    class_names: Sequence[str],
    *,
    title: str = "",
    scaled: str = "",
) -> bytes:
    """A grid of test images titled with the predicted and true class; mistakes in red
    (``scaled``: which temperature the confidences are of, a line under the title)."""
    figure = samples_figure(images, y_true, y_pred, confidence, class_names, title=title, scaled=scaled)
    return png_bytes(figure)


#: The width of one tile of :func:`samples_figure` (inches) and its titles' font size.
TILE_INCHES = 1.9
TILE_FONT = 8


def sample_title(
    predicted: int, true: int, confidence: float, class_names: Sequence[str], bold: bool = False
) -> str:
    """A tile's two-line title: ``pred NAME (97%)`` over ``true NAME``, each name shortened to
    fit the tile (a long one overprinted its neighbours; ``bold``: a mistake's title, which is
    wider). A prediction that is not one (a negative class, or a confidence that is not a
    finite number: the outputs of a diverged run) says so instead of "nan%" and a class.
    Ready for matplotlib: each name drawn literally (:func:`~cnnspec.training.plots.literal`)."""
    width = 72 * TILE_INCHES * 0.94  # points, less a little space between neighbours

    def line(prefix: str, index: int, suffix: str = "") -> str:
        shown = printable(_class_name(class_names, index))

        def make(k: int) -> str:
            # cut in the middle, with the class index where another name is cut alike
            known = 0 <= index < len(class_names)
            name = distinct_label(class_names, index, k) if known else cut_label(shown, k)
            return f"{prefix}{name}{suffix}"

        # fitted as it reads (a "\\" before each dollar would be measured as a glyph), then literal
        return literal(longest_fitting(len(shown), make, width, TILE_FONT, bold))

    true_line = line("true ", true)
    if predicted < 0 or not math.isfinite(float(confidence)):
        return f"{NO_PREDICTION_TITLE}\n{true_line}"
    return line("pred ", predicted, f" ({confidence:.0%})") + f"\n{true_line}"


def _class_name(class_names: Sequence[str], index: int) -> str:
    return str(class_names[index]) if 0 <= index < len(class_names) else str(index)


def samples_figure(
    images: Sequence[np.ndarray],
    y_true: Sequence[int],
    y_pred: Sequence[int],
    confidence: Sequence[float],
    class_names: Sequence[str],
    *,
    title: str = "",
    scaled: str = "",
) -> Figure:
    """The matplotlib figure :func:`samples_png` draws: a tile whose prediction is
    no number (:func:`sample_title`) is never counted as right."""
    count = len(images)
    rows, cols = _grid(max(count, 1))
    cols = max(cols, min(count, 4))
    rows = max(1, math.ceil(count / cols))
    wide = cols * TILE_INCHES + 0.4
    heading = title or "Test images: predicted vs true class"
    said = f"\nconfidence at {scaled}" if scaled else ""
    rights = [
        int(y_pred[i]) >= 0 and int(y_pred[i]) == int(y_true[i]) and math.isfinite(float(confidence[i]))
        for i in range(count)
    ]
    heading = f"{heading} ({rights.count(False)} of {count} wrong, in red){said}"
    # fitted to the figure's width, each line the title gains making the figure that much taller
    heading = wrapped(heading, 72 * wide * 0.95, 11)
    figure = agg_figure(figsize=(wide, rows * 2.15 + 0.8 + 0.2 * heading.count("\n")), dpi=100)
    for index in range(count):
        axes = figure.add_subplot(rows, cols, index + 1)
        shown, cmap = display_image(images[index])
        axes.imshow(shown, cmap=cmap, interpolation="nearest")
        predicted, true = int(y_pred[index]), int(y_true[index])
        right = rights[index]
        color = CORRECT if right else MISTAKE
        axes.set_title(
            sample_title(predicted, true, float(confidence[index]), class_names, bold=not right),
            fontsize=TILE_FONT,
            color=color,
            fontweight="normal" if right else "bold",
        )
        _bare(axes)
        for spine in axes.spines.values():
            spine.set_color(color)
            spine.set_linewidth(1 if right else 3)
    figure.suptitle(literal(heading), fontsize=11)
    figure.tight_layout()
    return figure


def class_map_png(image: np.ndarray, heat: np.ndarray, title: str, captions: Sequence[str]) -> bytes:
    """Grad-CAM (:mod:`cnnspec.reporting.gradcam`): the input, the class map over the image's
    extent (bilinear between the layer's cells, which are coarser than the pixels), and the
    map laid over the input. ``captions``: one under each panel's title."""
    import matplotlib

    shown, cmap = display_image(image)
    height, width = shown.shape[:2]
    extent = (-0.5, width - 0.5, height - 0.5, -0.5)  # the map spans the image, pixel edge to edge
    panel = 3.4
    figure = agg_figure(figsize=(3 * panel + 0.6, panel + 1.1), dpi=100)
    axes = figure.subplots(1, 3)
    palette = matplotlib.colormaps["inferno"]
    for index, (ax, caption) in enumerate(zip(axes, captions, strict=True)):
        if index != 1:
            ax.imshow(shown, cmap=cmap, interpolation="nearest", extent=extent)
        if index:
            ax.imshow(
                heat,
                cmap=palette,
                vmin=0,
                vmax=1,
                alpha=0.5 if index == 2 else 1.0,
                interpolation="bilinear",
                extent=extent,
            )
        ax.set_xlim(extent[0], extent[1])
        ax.set_ylim(extent[2], extent[3])
        ax.set_title(literal(fit_caption(caption, 72 * panel * 0.95, 10)), fontsize=10)
        _bare(ax)
    figure.suptitle(literal(title), fontsize=11)
    figure.tight_layout()
    return png_bytes(figure)


def reliability_png(result: Calibration, title: str, unit: str = "images", scaled: str = "") -> bytes:
    """The reliability diagram (:mod:`cnnspec.reporting.calibration`): each confidence bin's
    accuracy (bars) with the gap to its mean confidence hatched, the diagonal of a calibrated
    model, and below it how many images each bin holds (``unit``: what is counted, a
    multi-label output's ``label decisions``, a segmentation's ``pixels``; ``scaled``: which
    temperature the probabilities are of, a line under the figures:
    :func:`~cnnspec.reporting.temperature.described`)."""
    figure = agg_figure(figsize=(5.6, 6.4), dpi=100)
    top, bottom = figure.subplots(2, 1, height_ratios=(3, 1), sharex=True)
    width = 1.0 / max(len(result.bins), 1)
    filled = [b for b in result.bins if b.images]
    lows = [b.low for b in filled]
    top.bar(lows, [b.accuracy for b in filled], width=width, align="edge", color="#1565c0",
            alpha=0.85, edgecolor="white", label="accuracy")  # fmt: skip
    # between each bin's accuracy and its mean confidence: above the bar the model was surer
    # than right, inside it less sure
    top.bar(
        lows,
        [(b.confidence or 0) - (b.accuracy or 0) for b in filled],
        bottom=[b.accuracy for b in filled],
        width=width,
        align="edge",
        facecolor="none",
        hatch="//",
        edgecolor="#c62828",
        linewidth=1,
        label="gap to the mean confidence",
    )
    top.plot([0, 1], [0, 1], linestyle="--", color="#555555", linewidth=1, label="calibrated")
    top.set_xlim(0, 1)
    top.set_ylim(0, 1)
    top.set_ylabel("accuracy")
    top.legend(loc="upper left", fontsize=8)
    figures = f"ECE {result.ece:.2%} · MCE {result.mce:.2%} · {result.images:,} {unit}"
    top.set_title(literal(figures + (f"\n{scaled}" if scaled else "")), fontsize=10)
    bottom.bar([b.low for b in result.bins], [b.images for b in result.bins], width=width,
               align="edge", color="#777777", edgecolor="white")  # fmt: skip
    bottom.set_xlabel("confidence (the top class's probability)")
    bottom.set_ylabel(unit)
    figure.suptitle(literal(title), fontsize=11)
    figure.tight_layout()
    return png_bytes(figure)
