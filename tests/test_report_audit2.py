"""The reporting commands on the runs of the second audit (``report``, ``visualize``, ``runs``):
a diverged run's predictions, figures too large for a float, JSON NaN in the per-class table,
long class names in the pictures and ``runs compare --png`` of another format.

Everything here is TF-free: the run folders are written by hand (as in test_damaged_runs.py),
the "model" of the sample predictions is a stand-in with a ``predict`` method, and the
pictures are checked on the matplotlib figures' text artists (captured where they are turned
into PNG bytes), not on pixels.
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from types import SimpleNamespace
from typing import Any, ClassVar

import numpy as np
import pytest

from cnnspec.errors import UsageError
from cnnspec.reporting.html import _cards, _model_parts, _report_rows, write_report
from cnnspec.reporting.model_graph import OutputKind
from cnnspec.reporting.run import Run
from cnnspec.reporting.runs import run_row
from cnnspec.reporting.views import Probe, history_columns
from tests.test_damaged_runs import make_run
from tests.test_report_support import flat, invoke

#: An integer JSON allows and no float can hold (10**400: 401 digits).
HUGE = 10**400
CLASSES = ["a", "b", "c"]


# -- stand-ins: a model whose outputs are NaN for some images, and captured figures --------------
class NanModel:
    """A "model" of three classes whose outputs are NaN for every image whose first pixel is
    negative (a diverged run's), else a confident class ``first pixel % 3``."""

    layers: ClassVar[list[Any]] = []

    def predict(self, batch: np.ndarray, batch_size: int = 64, verbose: int = 0) -> np.ndarray:
        first = np.asarray(batch)[:, 0, 0, 0]
        out = np.full((len(batch), 3), 0.05)
        out[np.arange(len(batch)), np.abs(first).astype(int) % 3] = 0.9
        out[first < 0] = np.nan
        return out


def fake_probe(y: list[int], first_pixels: list[float]) -> Probe:
    """A :class:`Probe` of :class:`NanModel` on 8×8 test images of classes ``y``."""
    x = np.zeros((len(y), 8, 8, 1), dtype="float32")
    x[:, 0, 0, 0] = first_pixels
    test = SimpleNamespace(
        x=x,
        y=np.asarray(y, dtype="int64"),
        class_names=CLASSES,
        notes=[],
        settings=SimpleNamespace(rescale=None),
        config=SimpleNamespace(task_path=None),
    )
    run = SimpleNamespace(
        name="diverged", output_kind=lambda model=None: OutputKind(), config=None, run_dir=None
    )
    return Probe(run, NanModel(), _test=test)  # type: ignore[arg-type]


@pytest.fixture
def figures(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The figures the picture functions draw, captured where they become PNG bytes (each
    drawn once on an Agg canvas, so the artists' extents are known)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    import cnnspec.reporting.figures
    import cnnspec.training.plots

    drawn: list[Any] = []

    def capture(figure: Any) -> bytes:
        FigureCanvasAgg(figure).draw()
        drawn.append(figure)
        return b"\x89PNG captured"

    monkeypatch.setattr(cnnspec.reporting.figures, "png_bytes", capture)
    monkeypatch.setattr(cnnspec.training.plots, "png_bytes", capture)
    return drawn


def texts(figure: Any) -> list[str]:
    """Every text the figure draws (titles, labels, tick labels, annotations)."""
    return [t.get_text() for t in figure.findobj(lambda a: hasattr(a, "get_text")) if t.get_text()]


def run_folder(tmp_path: Path, name: str = "run", *, model: bool = False, **changes: Any) -> Path:
    """A finished run written by hand, with ``changes`` merged into its metrics.json (written
    with Python's json, which writes a float NaN as the bare literal ``NaN``); ``model``: with
    a stand-in model.keras, which ``runs`` asks of a finished run."""
    run = make_run(tmp_path / name, model=model)
    metrics = json.loads((run / "metrics.json").read_text())
    (run / "metrics.json").write_text(json.dumps({**metrics, **changes}))
    return run


# -- D1: a diverged run's predictions are no prediction, never "nan%" and class 0 ---------------
def test_outputs_that_are_not_numbers_are_no_prediction_not_class_0():
    from cnnspec.reporting.calibration import NO_PREDICTION

    probe = fake_probe([0, 1, 0], [-1.0, 1.0, -2.0])
    predicted, confidence = probe.predictions(np.arange(3))
    assert predicted.tolist() == [NO_PREDICTION, 1, NO_PREDICTION]
    assert math.isnan(confidence[0]) and confidence[1] == pytest.approx(0.9)
    assert probe.all_predictions()[0].tolist() == [NO_PREDICTION, 1, NO_PREDICTION]


def test_the_report_cards_of_a_diverged_run_say_there_is_no_prediction():
    from cnnspec.reporting.html import NO_PREDICTION_TEXT

    probe = fake_probe([0, 1, 0, 2], [-1.0, 1.0, -2.0, 2.0])
    notes: list[str] = []
    parts = _model_parts(probe, notes)
    cards = parts["samples"] + parts["mistakes"]
    assert not any("nan" in card["confidence"] for card in cards), cards
    undecided = [card for card in parts["samples"] if card["index"] in (0, 2)]
    assert len(undecided) == 2
    for card in undecided:  # true class 0, and argmax of a NaN row was 0: framed as right
        assert card["predicted"] == NO_PREDICTION_TEXT and card["correct"] is False
    decided = {card["index"]: card for card in parts["samples"]}
    assert decided[1]["confidence"] == "90.0% sure" and decided[1]["correct"] is True
    assert "2 of them have no prediction" in parts["mistakes_caption"]


def test_visualize_samples_of_a_diverged_run_draws_no_nan_percent(figures):
    probe = fake_probe([0, 1, 0, 2], [-1.0, 1.0, -2.0, 2.0])
    probe.samples(4)
    (figure,) = figures
    shown = texts(figure)
    assert not any("nan" in text for text in shown), shown
    titles = [axes.get_title() for axes in figure.axes]
    assert sum(title.startswith("no prediction") for title in titles) == 2, titles
    # the two without a prediction are wrong (in red), though their true class is 0
    assert "(2 of 4 wrong, in red)" in figure._suptitle.get_text()


# -- D2: an integer too large for a float ---------------------------------------------------------
def test_runs_lists_a_run_with_a_huge_time_as_damaged_beside_the_good_one(tmp_path):
    root = tmp_path / "runs"
    root.mkdir()
    run_folder(root, "good", model=True)
    run_folder(root, "huge", model=True, train_seconds=HUGE)
    result = invoke("runs", root)
    assert result.exit_code == 0, result.output
    text = flat(result)
    assert "internal error" not in text and "good" in text and "3.0s" in text
    assert "huge: metrics.json: train_seconds is a whole number of 401 digits" in text
    rows = {row["run"]: row for row in json.loads(invoke("runs", root, "--format", "json").stdout)}
    assert rows["good"]["status"] == "finished"
    assert rows["huge"]["status"] == "damaged" and rows["huge"]["seconds"] is None


def test_runs_row_of_a_huge_headline_figure_is_damaged_not_an_overflow(tmp_path):
    run = run_folder(tmp_path, model=True, test_accuracy=HUGE)
    row = run_row(run)
    assert row["status"] == "damaged" and row["test_accuracy"] is None
    assert row["problems"] == [
        "metrics.json: test_accuracy is a whole number of 401 digits, too large for a figure"
    ]


def test_runs_compare_with_a_huge_figure_leaves_it_out_of_the_differences(tmp_path):
    a, b = run_folder(tmp_path, "a"), run_folder(tmp_path, "b", train_seconds=HUGE)
    result = invoke("runs", "compare", a, b, "--png", tmp_path / "c.png", "--format", "json")
    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout)
    assert "train_seconds" not in {row["metric"] for row in found["metrics"]}
    assert any("train_seconds is a whole number of 401 digits" in note for note in found["notes"])


@pytest.mark.parametrize("file", ["metrics.json", "history.json", "lock.json"])
def test_report_of_a_run_file_with_a_huge_number_is_a_damaged_run_error(tmp_path, file):
    run = make_run(tmp_path / "run", model=False)
    document = json.loads((run / file).read_text())
    key = {"metrics.json": "train_seconds", "history.json": "loss", "lock.json": "phases"}[file]
    if file == "history.json":
        document[key] = [HUGE, 1.0]
    elif file == "lock.json":
        document[key][0]["learning_rate"] = HUGE  # formatted with :g by the curves' caption
    else:
        document[key] = HUGE
    (run / file).write_text(json.dumps(document))
    result = invoke("report", run)
    assert result.exit_code == 2, result.output
    text = flat(result)
    assert "internal error" not in text and f"damaged run file {run / file}" in text
    assert "whole number of 401 digits, too large for a figure" in text
    assert not (run / "report.html").exists()


def test_visualize_confusion_of_a_huge_count_is_a_damaged_run_error(tmp_path):
    run = make_run(tmp_path / "run")
    metrics = json.loads((run / "metrics.json").read_text())
    metrics.update(confusion_matrix=[[HUGE, 0, 0], [0, 1, 0], [0, 0, 1]], class_names=CLASSES)
    (run / "metrics.json").write_text(json.dumps(metrics))
    result = invoke("visualize", run, "confusion", "-o", tmp_path / "c.png")
    assert result.exit_code == 2, result.output
    assert "confusion_matrix[0][0] is a whole number of 401 digits" in flat(result)


def test_the_key_figures_show_a_huge_or_non_finite_time_as_no_number():
    for value in (HUGE, math.inf, math.nan):
        cards = {
            card["label"]: card for card in _cards({"train_seconds": value, "images_per_second": HUGE}, None)
        }
        assert "not a number" in cards["training time"]["value"] or cards["training time"]["value"] == "–"
        assert "nan" not in cards["training time"]["value"] and cards["training time"]["sub"] == ""


# -- D3: a JSON NaN literal in the per-class table ------------------------------------------------
def test_report_of_a_per_class_nan_literal_shows_not_a_number(tmp_path):
    per_class = {"a": {"precision": 0.5, "recall": "nan", "f1": math.nan, "support": 3}}
    run = run_folder(tmp_path, per_class=per_class, macro_avg={"f1": math.inf, "precision": 1})
    assert "NaN" in (run / "metrics.json").read_text()  # the bare literal, not the text "nan"
    result = invoke("report", run)
    assert result.exit_code == 0, result.output
    rows = _report_rows(json.loads((run / "metrics.json").read_text()))
    assert rows[0]["bar"] == 0 and rows[0]["low"] is True
    assert rows[0]["f1"] == "not a number (the run diverged)"
    assert rows[1]["bar"] == 0 and rows[1]["f1"] == "not a number (the run diverged)"


# -- D4: long class names in the pictures ---------------------------------------------------------
LONG = "x" * 300
NAMES = ["<script>", "ünïcødé ßπΩ", LONG, "a&b</td>", "W" * 40, "MOUNTAIN BIKE MOUNTAIN BIKE"]


def test_the_confusion_matrix_shortens_long_names_and_keeps_its_axis_titles(figures, tmp_path):
    from cnnspec.training.plots import plot_confusion_matrix

    matrix = np.eye(len(NAMES), dtype=int).tolist()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        plot_confusion_matrix(matrix, NAMES, tmp_path / "c.png", "a run: confusion matrix")
    assert not [w for w in caught if "Tight layout not applied" in str(w.message)]
    (figure,) = figures
    axes = figure.axes[0]
    ticks = [t.get_text() for t in axes.get_xticklabels()]
    assert max(len(t) for t in ticks) <= 22 and "xxxxxxxxxxx…xxxxxxxxxx" in ticks  # (cut in the middle)
    whole = figure.bbox
    renderer = figure.canvas.get_renderer()
    for label in (axes.xaxis.label, axes.yaxis.label):  # "predicted class", "true class": visible
        box = label.get_window_extent(renderer)
        assert whole.x0 <= box.x0 and box.x1 <= whole.x1 and whole.y0 <= box.y0 and box.y1 <= whole.y1
    for tick in axes.get_xticklabels() + axes.get_yticklabels():
        box = tick.get_window_extent(renderer)
        assert box.x0 >= whole.x0 - 1 and box.y0 >= whole.y0 - 1, tick.get_text()


def test_sample_titles_fit_their_tiles(figures):
    from cnnspec.reporting.figures import samples_png

    images = [np.zeros((8, 8, 1)) for _ in range(6)]
    samples_png(images, [0, 1, 2, 3, 4, 5], [2, 2, 2, 2, 2, 2], [0.99] * 6, NAMES, title="t")
    (figure,) = figures
    renderer = figure.canvas.get_renderer()
    cols = figure.axes[0].get_subplotspec().get_gridspec().ncols
    cell = figure.bbox.width / cols
    for axes in figure.axes:
        column = axes.get_subplotspec().colspan.start
        box = axes.title.get_window_extent(renderer)
        assert column * cell - 1 <= box.x0 and box.x1 <= (column + 1) * cell + 1, axes.get_title()
    assert any("…" in axes.get_title() for axes in figure.axes)


def test_a_narrow_samples_picture_wraps_its_title_and_says_its_temperature(figures):
    """`visualize samples --max 1`: the title ran off both edges of the one-tile picture; it is
    wrapped to the figure's width, the figure taller by the lines it gains, and it says which
    temperature the confidences are of (the 16-tile picture's title keeps its two lines)."""
    from cnnspec.reporting.figures import samples_png

    said = "temperature 0.05 (the run's temperature.json)"
    title = "tiny_colors: test images, predicted vs true class"
    samples_png([np.zeros((8, 8, 3))], [0], [0], [0.99], ["red"], title=title, scaled=said)
    samples_png([np.zeros((8, 8, 3))] * 16, [0] * 16, [1] * 16, [0.5] * 16, ["red", "blue"], title=title)
    narrow, wide = figures
    heading = narrow._suptitle
    box = heading.get_window_extent(narrow.canvas.get_renderer())
    assert narrow.bbox.x0 <= box.x0 and box.x1 <= narrow.bbox.x1, heading.get_text()
    assert " ".join(heading.get_text().split("\n")) == f"{title} (0 of 1 wrong, in red) confidence at {said}"
    assert heading.get_text().count("\n") >= 3 and narrow.get_figheight() > 2.15 + 0.8
    assert wide._suptitle.get_text() == f"{title} (16 of 16 wrong, in red)"


def test_the_reliability_diagram_says_which_temperature_its_probabilities_are_of(figures):
    from cnnspec.reporting.calibration import of_probabilities
    from cnnspec.reporting.figures import reliability_png

    result = of_probabilities(np.array([[0.9, 0.1], [0.3, 0.7]]), np.array([0, 0]))
    reliability_png(result, "run: reliability", scaled="temperature 2 (--temperature)")
    (figure,) = figures
    assert figure.axes[0].get_title() == "ECE 40.00% · MCE 70.00% · 2 images\ntemperature 2 (--temperature)"


def test_the_feature_maps_caption_stays_on_the_picture(figures):
    from cnnspec.reporting.figures import feature_maps_png

    caption = f"test image #0\n(class {LONG})"  # as Probe.features writes it
    for activations in (np.random.default_rng(0).random((6, 6, 4)), np.arange(5.0)):
        feature_maps_png(np.zeros((8, 8, 1)), activations, "conv", caption=caption)
    for figure in figures:
        box = figure.axes[0].title.get_window_extent(figure.canvas.get_renderer())
        assert box.x0 >= figure.bbox.x0 and box.x1 <= figure.bbox.x1, figure.axes[0].get_title()
        title = figure.axes[0].get_title()
        assert title.startswith("test image #0\n(class x") and title.endswith("x)"), title  # cut inside


# -- D5: runs compare --png of another format -----------------------------------------------------
@pytest.mark.parametrize("name", ["x.jpg", "x.PNG.svg", "x"])
def test_runs_compare_refuses_a_png_path_of_another_format(tmp_path, name):
    a, b = run_folder(tmp_path, "a"), run_folder(tmp_path, "b")
    target = tmp_path / "cmp" / name
    result = invoke("runs", "compare", a, b, "--png", target)
    assert result.exit_code == 2, result.output
    assert f"expected --png to end in .png; received {target}" in flat(result)
    assert not target.exists() and not target.parent.exists()


def test_runs_compare_takes_an_upper_case_png_suffix(tmp_path):
    a, b = run_folder(tmp_path, "a"), run_folder(tmp_path, "b")
    result = invoke("runs", "compare", a, b, "--png", tmp_path / "c.PNG")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "c.PNG").read_bytes().startswith(b"\x89PNG")


# -- observations: an empty history, a non-finite time in the table ------------------------------
def test_an_empty_history_says_it_holds_no_epochs(tmp_path):
    run = make_run(tmp_path / "run", model=False)
    (run / "history.json").write_text("{}")
    with pytest.raises(UsageError) as info:
        history_columns(Run(model_path=run / "model.keras", run_dir=run))
    assert "history.json; it holds no epochs" in str(info.value)
    assert "there is none" not in str(info.value)
    assert write_report(run).is_file()  # the page notes it and is written


@pytest.mark.parametrize(("value", "shown"), [(math.inf, "inf s"), (math.nan, "nan s")])
def test_the_runs_table_shows_a_non_finite_time_apart_from_its_unit(tmp_path, value, shown):
    (tmp_path / "runs").mkdir()
    run_folder(tmp_path / "runs", "r", train_seconds=value)
    result = invoke("runs", tmp_path / "runs")
    assert result.exit_code == 0, result.output
    assert f" {shown} " in flat(result) and "infs" not in result.output
