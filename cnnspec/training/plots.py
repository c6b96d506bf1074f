"""Training pictures: learning curves and the confusion matrix (matplotlib, Agg, no pyplot).

Figures are drawn with matplotlib's object API on an Agg canvas (no global pyplot state, no
display needed) and written atomically as PNG.
"""

from __future__ import annotations

import functools
import io
import math
import weakref
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from cnnspec.analysis.graph import PICTURE_MARK
from cnnspec.errors import printable
from cnnspec.fileio import write_atomic

#: Figures whose Agg canvas holds their picture as it is (painted by :func:`fit_title`, which
#: had to draw the figure to measure its title): :func:`png_bytes` encodes them without drawing again.
_PAINTED: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


def agg_figure(**kwargs: Any) -> Any:
    """A matplotlib ``Figure(**kwargs)`` on its own Agg canvas, the one :func:`png_bytes` draws it
    on: a ``tight_layout`` measures its texts with the renderer that then paints them, so that
    the draw finds each text's extent measured (matplotlib keeps them per renderer; on a bare
    figure the layout measured them on a renderer of its own, which was then thrown away)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(**kwargs)
    FigureCanvasAgg(figure)
    return figure


#: Inches above the axes that a figure title and its margins take, for its first line and
#: for each line more (:func:`titled_layout`).
TITLE_INCHES = (0.45, 0.25)


def titled_layout(figure: Any, title: str) -> None:
    """``figure.tight_layout()``, with ``title`` (when there is one) as the figure's title in a
    band of the same height in inches whatever the figure's: at its default place, a fraction
    of the height, it fell onto the first row's headings on a tall figure (16 rows of masks)."""
    if not title:
        figure.tight_layout()
        return
    height = figure.get_figheight()
    first, more = TITLE_INCHES
    band = first + more * title.count("\n")
    figure.suptitle(literal(title), y=1 - 0.1 / height, va="top")
    figure.tight_layout(rect=(0, 0, 1, max(0.5, 1 - band / height)))


def png_bytes(figure: Any, mark: str | None = None) -> bytes:
    """The figure as PNG bytes, marked as cnnspec's (:data:`PICTURE_MARK`, or ``mark`` under its
    key): drawn on its Agg canvas (:func:`agg_figure`; one is made for a figure that has none),
    once, unless that canvas holds it painted already and unchanged since (:data:`_PAINTED`),
    then encoded as ``print_png`` encodes it (``savefig`` drew a figure with a layout engine
    twice: once to lay it out again, then to paint it)."""
    import matplotlib.image
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = figure.canvas
    if not isinstance(canvas, FigureCanvasAgg):
        canvas = FigureCanvasAgg(figure)
    if _PAINTED.pop(figure, None) is not canvas or figure.stale:
        canvas.draw()
    buffer = io.BytesIO()
    matplotlib.image.imsave(
        buffer, canvas.buffer_rgba(), format="png", origin="upper", dpi=figure.dpi,
        metadata={PICTURE_MARK[0]: PICTURE_MARK[1] if mark is None else mark},
    )  # fmt: skip
    return buffer.getvalue()


def epoch_axis(axes: Any, epochs: Sequence[float]) -> None:
    """An x axis of whole epochs: ticks on whole numbers only, and at least half an epoch
    either side of the first and last (one epoch drew ticks at 0.96, 0.98, …: matplotlib's
    integer locator falls back to fractions when fewer than two whole numbers are in view)."""
    from matplotlib.ticker import MaxNLocator

    finite = [float(e) for e in epochs if math.isfinite(float(e))]
    if finite:
        axes.set_xlim(min(finite) - 0.5, max(finite) + 0.5)
    axes.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))


#: history.json's columns that are no figure of the model, so never a panel: the epoch is the
#: x axis, the phases are the dashed lines, and the learning rate and seconds are the schedule's
#: and the machine's, not the model's.
NOT_CURVES = frozenset({"epoch", "learning_rate", "seconds", "phase"})

#: At most this many panels in history.png (four rows of three); the others are named under them.
MAX_HISTORY_PANELS = 12


def curve_names(histories: Iterable[Mapping[str, object]]) -> list[str]:
    """The figures the histories logged, a panel each: ``accuracy`` and ``loss`` first, as a
    classifier's curves have always been drawn, then the others in the order training logged
    them (``mae``, ``mask_mean_iou``, a head's own ``label_loss``…), each once across the
    histories. A ``val_x`` column without its ``x`` (a hand-trimmed history) still gives ``x``."""
    found: list[str] = []
    for history in histories:
        for key in history:
            name = key[4:] if key.startswith("val_") else key
            if name and name not in found and name not in NOT_CURVES:
                found.append(name)
    first = [name for name in ("accuracy", "loss") if name in found]
    return first + [name for name in found if name not in first]


def plot_history(history: Mapping[str, Sequence[float]], target: Path, title: str = "") -> Path:
    """Every figure training logged per epoch (:func:`curve_names`), training vs validation,
    a panel each: accuracy and loss for a classifier (as in the seed notebook), and a task's or
    each output's own figures beside them."""
    return write_atomic(target, png_bytes(history_figure(history, title)))


def history_figure(history: Mapping[str, Sequence[float]], title: str = "") -> Any:
    """The matplotlib figure :func:`plot_history` writes: three panels a row, at most
    :data:`MAX_HISTORY_PANELS` (the figures left out are named at the bottom)."""
    epochs = list(history.get("epoch") or range(1, len(history.get("loss", [])) + 1))
    names = curve_names([history]) or ["loss"]
    shown, left_out = names[:MAX_HISTORY_PANELS], names[MAX_HISTORY_PANELS:]
    columns = min(len(shown), 3)
    rows = math.ceil(len(shown) / columns)
    # two panels keep the seed's 11 × 4 inches; each row of three more is as tall
    figure = agg_figure(figsize=(5.5 * max(columns, 2), 4 * rows), dpi=100)
    for index, key in enumerate(shown, start=1):
        axes = figure.add_subplot(rows, columns, index)
        for column, split in ((key, "training"), (f"val_{key}", "validation")):
            if column in history:
                x, y = _paired(epochs, history[column])
                axes.plot(x, y, marker="o", markersize=3, label=literal(f"{split} {key}"))
        for boundary, phase in _phase_starts(epochs, history.get("phase")):
            axes.axvline(boundary, color="grey", linestyle="--", linewidth=1)
            axes.annotate(
                f"phase {phase}", (boundary, 1.0), xycoords=("data", "axes fraction"),
                xytext=(3, -12), textcoords="offset points", fontsize=8, color="dimgrey",
            )  # fmt: skip
        axes.set_title(literal(PANEL_TITLES.get(key, key)))
        axes.set_xlabel("epoch")
        epoch_axis(axes, epochs)  # no "epoch 1.5" on short runs
        axes.set_ylabel(literal(key))
        axes.grid(True, alpha=0.3)
        if axes.lines:
            axes.legend()
    if title:
        figure.suptitle(literal(title))  # a run or model name may hold dollars
    if left_out:  # said on the picture, not silently dropped
        note = f"{len(left_out)} more in history.csv: " + ", ".join(cut_label(name) for name in left_out)
        figure.text(
            0.5, 0.005, literal(note), ha="center", va="bottom", fontsize=8, color="dimgrey", wrap=True
        )
        figure.tight_layout(rect=(0, 0.04, 1, 1))
    else:
        figure.tight_layout()
    return figure


#: The panels titled as the seed notebook titled them; the others by the name Keras logged.
PANEL_TITLES = {"accuracy": "Accuracy", "loss": "Loss"}


def _paired(epochs: Sequence[float], values: Sequence[float]) -> tuple[list[float], list[float]]:
    """A column against its epochs, both cut to the shorter: the values of a history read
    from a file that are not one per epoch (a hand-edited history.json) are not drawn, and
    matplotlib is never handed x and y of different lengths."""
    count = min(len(epochs), len(values))
    return list(epochs[:count]), list(values[:count])


def _phase_starts(epochs: Sequence[float], phases: Sequence[float] | None) -> list[tuple[float, int]]:
    """Where each phase after the first starts (half an epoch before its first epoch), and its
    number: the dashed lines between the phases of a ``training.phases`` run."""
    if not phases:
        return []
    starts = []
    for index in range(1, min(len(epochs), len(phases))):
        if phases[index] != phases[index - 1]:
            starts.append((float(epochs[index]) - 0.5, int(phases[index])))
    return starts


#: How many characters of a class name a picture draws (a tick label, a tile's title): one
#: name of hundreds of characters made tight_layout give up, so every label was clipped.
LABEL_CHARS = 22


def literal(text: str) -> str:
    """``text`` as a picture's text that matplotlib draws as it is written: its line breaks
    kept, other control characters escaped (:func:`printable`; an ESC drew nothing, and made
    matplotlib print it raw in a warning), and every ``$`` a literal dollar. matplotlib reads
    a text with two ``$`` as mathtext: a class named ``a$\\frac{1}$`` (or a run, model or layer
    name with dollars) ended train, evaluate, visualize and report with an internal error, or
    was drawn as a formula.

    The one place a figure's free text is made safe; apply it once, to the text as it is handed
    to matplotlib, after any cutting or wrapping (a cut between the ``\\`` and its ``$`` would
    make the dollar live again). A name with a line break of its own goes into a longer text
    through :func:`printable` (or :func:`cut_label`) first, so that only the text's own breaks
    stay."""
    return "\n".join(printable(line).replace("$", r"\$") for line in str(text).split("\n"))


def cut_label(text: str, limit: int = LABEL_CHARS) -> str:
    """``text`` with its control characters escaped (:func:`printable`) and cut to ``limit``
    characters when longer: its start and its end kept, an ellipsis in the middle (names such
    as ``experimental_condition_group_0`` … ``_9`` differ at the end, which a cut keeping only
    the start drew alike). What :func:`short_label` draws, before its dollars are made literal
    (for a caller that fits or joins it into a longer text first)."""
    shown = printable(str(text))
    limit = max(1, limit)
    if len(shown) <= limit:
        return shown
    head = limit // 2
    tail = limit - 1 - head
    return shown[:head] + "…" + shown[len(shown) - tail :]


def distinct_label(names: Sequence[str], index: int, limit: int = LABEL_CHARS) -> str:
    """Name ``index`` of ``names`` cut as :func:`cut_label` cuts it, with its class index
    (``… (class 3)``, still within ``limit`` where it can be) when another name is cut to the
    same text: the labels of a picture stay apart (names that differ only in their middle)."""
    shown = cut_label(names[index], limit)
    if not any(cut_label(name, limit) == shown for i, name in enumerate(names) if i != index):
        return shown
    tag = f" (class {index})"
    return cut_label(names[index], limit - len(tag)) + tag if limit > len(tag) else str(index)


def distinct_labels(names: Sequence[str], limit: int = LABEL_CHARS) -> list[str]:
    """Every name of ``names`` as :func:`distinct_label` draws it."""
    cut = [cut_label(name, limit) for name in names]
    taken: dict[str, int] = {}
    for label in cut:
        taken[label] = taken.get(label, 0) + 1
    return [label if taken[label] == 1 else distinct_label(names, i, limit) for i, label in enumerate(cut)]


def short_label(text: str, limit: int = LABEL_CHARS) -> str:
    """``text`` as a picture draws it (a tick label): :func:`cut_label`, drawn literally
    (:func:`literal`). Hand the result to matplotlib as it is."""
    return literal(cut_label(text, limit))


def plot_confusion_matrix(
    matrix: Sequence[Sequence[int]], class_names: Sequence[str], target: Path, title: str = ""
) -> Path:
    """A labelled confusion matrix (true class in rows, predicted class in columns)."""
    return write_atomic(target, confusion_png(matrix, class_names, title))


def confusion_figure(matrix: Sequence[Sequence[int]], class_names: Sequence[str], title: str = "") -> Any:
    """The matplotlib figure :func:`plot_confusion_matrix` writes: class names longer than
    :data:`LABEL_CHARS` are shortened, so the tick labels and axis titles fit the figure."""
    import numpy as np

    data = np.asarray(matrix)
    n = len(class_names)
    size = min(max(4.0, 0.45 * n + 2), 24.0)
    figure = agg_figure(figsize=(size + 1, size), dpi=100)
    axes = figure.add_subplot(1, 1, 1)
    image = axes.imshow(data, cmap="Blues")
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04)
    if n <= 40:
        labels = [literal(label) for label in distinct_labels(class_names)]  # (apart, however cut)
        axes.set_xticks(range(n), labels=labels, rotation=45, ha="right")
        axes.set_yticks(range(n), labels=labels)
    if n <= 20:
        threshold = data.max() / 2 if data.size else 0
        for i in range(n):
            for j in range(n):
                axes.text(
                    j,
                    i,
                    str(int(data[i, j])),
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="white" if data[i, j] > threshold else "black",
                )
    axes.set_xlabel("predicted class")
    axes.set_ylabel("true class")
    fit_title(figure, axes, title or "Confusion matrix (test set)")
    return figure


def confusion_png(matrix: Sequence[Sequence[int]], class_names: Sequence[str], title: str = "") -> bytes:
    """The PNG bytes :func:`plot_confusion_matrix` writes (for a page that inlines them). The
    last few pictures are kept: a training draws confusion_matrix.png and its report.html shows
    the same matrix a moment later, and drawing one takes half a second."""
    import numpy as np

    rows = tuple(tuple(row) for row in np.asarray(matrix).tolist())
    return _confusion_bytes(rows, tuple(str(name) for name in class_names), title)


@functools.lru_cache(maxsize=4)
def _confusion_bytes(matrix: tuple[tuple[Any, ...], ...], class_names: tuple[str, ...], title: str) -> bytes:
    return png_bytes(confusion_figure([list(row) for row in matrix], list(class_names), title))


def fit_title(figure: Any, axes: Any, title: str) -> Any:
    """Title ``axes`` with ``title`` (drawn literally: :func:`literal`) and lay ``figure`` out
    (``tight_layout``) with the title wholly inside it: a title wider than the figure is
    wrapped at spaces (a word too long for a line is broken) on fewer characters a line until
    its extent, as the Agg renderer measures it, fits. A small figure (five inches for up to
    three classes) cut "…: confusion matrix (test accuracy 0.9259)" at its edges. Returns the
    title's text object.

    The plain title is wrapped and then made literal, so a line break never falls between a
    dollar and the backslash that keeps it literal."""
    import textwrap

    from matplotlib.backends.backend_agg import FigureCanvasAgg

    whole = str(title)
    text = axes.set_title(literal(whole))
    canvas = figure.canvas if isinstance(figure.canvas, FigureCanvasAgg) else FigureCanvasAgg(figure)
    width = len(whole)
    while True:
        figure.tight_layout()
        # measured as drawn: an image's axes takes its final (equal-aspect) place then. A round
        # that is likely the last (the title, centred over the axes, looks as if it fits) paints,
        # and leaves the picture png_bytes encodes, drawn once; the others lay everything out without
        # painting a pixel (a painted draw of a 20-class matrix with its 400 counts took most of
        # a second, once for each round). Which draw a round makes changes no measurement.
        last = width <= 8 or _looks_inside(figure, axes, text, canvas.get_renderer())
        if last:
            canvas.draw()
        else:
            figure.draw_without_rendering()
        box = text.get_window_extent(canvas.get_renderer())
        inside = box.x0 >= 0 and box.x1 <= figure.bbox.width and box.y1 <= figure.bbox.height
        if inside or width <= 8:
            if last:
                _PAINTED[figure] = canvas
            return text
        # the share of the line that fits, a little less so that the loop ends in a few rounds.
        # The title stays centred where it is (over the axes, which a colorbar pushes aside), so
        # what fits is twice its centre's distance to the nearer edge, not the figure's width:
        # a title narrower than the figure but off-centre lost one character a round (ten rounds
        # of layout, a second of CPU, for a 3-class matrix with a run's long name)
        centre = (box.x0 + box.x1) / 2
        room = 2 * max(min(centre, figure.bbox.width - centre), 1.0)
        width = max(8, min(width - 1, int(width * room / max(box.width, 1.0) * 0.95)))
        text.set_text(literal(textwrap.fill(whole, width)))


def _looks_inside(figure: Any, axes: Any, text: Any, renderer: Any) -> bool:
    """Whether the axes' title, centred over the axes where the draw will put them (their
    equal-aspect place), will lie within the figure's width: a guess, made without a draw,
    of which round of :func:`fit_title` is its last (the draw then measures it)."""
    axes.apply_aspect()  # (as the draw does first: the same place, computed again there)
    box = axes.get_position()
    centre = (box.x0 + box.x1) / 2 * figure.bbox.width
    half = text.get_window_extent(renderer).width / 2
    return centre - half >= 0 and centre + half <= figure.bbox.width
