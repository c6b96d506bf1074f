"""`cnnspec report RUN_DIR` and the report.html `train` writes: one self-contained page with
every section, user text escaped, every picture an inline PNG that decodes."""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
from html.parser import HTMLParser

import pytest
from PIL import Image

from tests.test_report_support import CLASSES, flat, invoke, trained_run

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("reporting")]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return trained_run(tmp_path_factory)


class Page(HTMLParser):
    """Collects the tags, attributes and ids of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def all(self, name):
        return [attrs for tag, attrs in self.tags if tag == name]


def parse(text: str) -> Page:
    page = Page()
    page.feed(text)
    return page


def check_self_contained(text: str) -> list[tuple[int, int]]:
    """No scripts, stylesheets, fonts or remote URLs; returns the decoded image sizes."""
    page = parse(text)
    assert not page.all("script") and not page.all("link") and not page.all("iframe")
    assert "@import" not in text and "url(" not in text and "@font-face" not in text
    for tag, attrs in page.tags:
        for key in ("src", "href"):
            value = attrs.get(key)
            if value is not None:
                assert value.startswith(("data:image/png;base64,", "#")), (tag, key, value[:80])
    sizes = []
    for attrs in page.all("img"):
        data = base64.b64decode(attrs["src"].split(",", 1)[1], validate=True)
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            assert image.format == "PNG"
            sizes.append(image.size)
        assert attrs.get("alt")
    return sizes


def test_train_writes_the_report(run_dir):
    page = run_dir / "report.html"
    assert page.is_file(), "train writes report.html at the end of every run"
    check_self_contained(page.read_text(encoding="utf-8"))


def test_the_page_shows_the_test_outputs_train_counted_without_predicting_again(run_dir):
    """train hands the page the outputs its test results were computed from (write_report's
    ``outputs``): the samples, mistakes and reliability are read from them, not predicted again."""
    import numpy as np

    from cnnspec.reporting.held_out import load_test_data
    from cnnspec.reporting.html import report_context
    from cnnspec.reporting.run import locate
    from cnnspec.training.modelfile import load_model

    run = locate(run_dir)
    model = load_model(run.model_path)
    test = load_test_data(run, model)
    # outputs that call every test image "red" (the model itself gets the tiny data right)
    outputs = np.tile(np.array([[0.7, 0.2, 0.1]], dtype="float32"), (len(test.y), 1))

    def refused(*args, **kwargs):
        raise AssertionError("the page predicted the test images again")

    model.predict = refused
    context = report_context(run, model, test, into_run=False, outputs=outputs)
    wrong = int((test.y != 0).sum())
    assert 0 < wrong < len(test.y)
    assert context["mistakes_caption"].endswith(f" more of the {wrong} misclassified test images.")
    shown = context["samples"] + context["mistakes"]
    assert shown and all("red" in str(card) and "70.0%" in str(card) for card in shown)


def test_report_command(run_dir, tmp_path):
    target = tmp_path / "page.html"
    result = invoke("report", run_dir, "--out", target)
    assert result.exit_code == 0, result.output
    assert f"wrote {target}" in flat(result)
    text = target.read_text(encoding="utf-8")
    sizes = check_self_contained(text)
    # curves, confusion matrix, 2 feature-map figures, a class map, filters, and the
    # sample/mistake cards (the reliability diagram is drawn by the page)
    big = [s for s in sizes if s[0] > 300]
    assert len(big) == 6, sizes
    cards = [s for s in sizes if s == (96, 96)]
    assert len(cards) >= 24
    page = parse(text)
    ids = {attrs.get("id") for _, attrs in page.tags}
    assert {
        "results",
        "curves",
        "classes",
        "confusion",
        "calibration",
        "samples",
        "features",
        "class-map",
        "model",
        "spec",
    } <= ids
    # the reliability of every test image (the tiny run has 30), as evaluate computes it
    assert "Calibration: ECE " in text and "Each column is the accuracy of the 30 test images whose" in text
    assert text.count('<div class="bin" title="confidence ') == 15
    # the first mistake's class map, or the first sample's (the tiny run makes no mistakes)
    assert "Grad-CAM of a test image: class blue (p = " in text and "on conv2d_2&#39;s 4×4 maps" in text
    # name, escaped description, inspect table, metrics, class report
    assert "<h1>tiny_colors</h1>" in text
    assert "A &lt;i&gt;tiny&lt;/i&gt; &amp; quick colour classifier" in text and "<i>tiny</i>" not in text
    for word in (
        "conv2d_1",
        "conv2d_2",
        "max_pool2d_1",
        "dense_1",
        "(None, 4, 4, 6)",
        "test accuracy",
        *CLASSES,
    ):
        assert word in text, word
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert f"{metrics['test_accuracy']:.2%}" in text
    assert "macro average" in text and "weighted average" in text
    assert "conv2d_1 (first convolution)" in text and "conv2d_2 (last convolution)" in text
    assert 50_000 < len(text) < 3_000_000


def test_report_of_an_unfinished_run(run_dir, tmp_path):
    partial = tmp_path / "partial"
    partial.mkdir()
    for name in ("lock.json", "resolved.yaml", "spec.yaml", "history.json"):
        shutil.copy(run_dir / name, partial / name)
    result = invoke("report", partial)
    assert result.exit_code == 0, result.output
    text = (partial / "report.html").read_text()
    check_self_contained(text)
    assert "metrics.json is missing" in text
    assert "the run has no model.keras yet (it has not finished)" in text
    assert (partial / "history.png").is_file()  # the curves are drawn from history.json
    # with its model.keras (killed while testing): the page's test-split parts say whose they are
    # (it said "there are no test results" above a calibration of the 30 test images)
    shutil.copy(run_dir / "model.keras", partial / "model.keras")
    result = invoke("report", partial)
    assert result.exit_code == 0, result.output
    assert (
        "metrics.json is missing: the run has not finished, so there are no test results from training; "
        "the calibration and sample predictions below are of the model.keras the run has now, on the 30 "
        "images of its test split"
    ) in " ".join((partial / "report.html").read_text().split())


def test_report_errors(run_dir, tmp_path):
    result = invoke("report", tmp_path / "missing")
    assert result.exit_code == 2 and "does not exist" in flat(result)
    result = invoke("report", tmp_path)
    assert result.exit_code == 2 and "lock.json" in flat(result)
    result = invoke("report", run_dir, "--out", tmp_path / "page.pdf")
    assert result.exit_code == 2 and ".html" in flat(result)
    corrupt = tmp_path / "corrupt"
    shutil.copytree(run_dir, corrupt)
    (corrupt / "model.keras").write_bytes(b"garbage")
    result = invoke("report", corrupt)  # the page is still written, without the model's parts
    assert result.exit_code == 0, result.output
    text = (corrupt / "report.html").read_text()
    assert "the model could not be loaded" in text and "not one" in text
    check_self_contained(text)


def test_reporting_into_a_run_another_process_holds_is_refused(run_dir, tmp_path):
    import os

    from cnnspec.training.runlock import acquire

    # copies of its own: the trained run is shared by the test processes, and another one's
    # test may write its report.html meanwhile (and make "held" beside it too)
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    page = run / "report.html"
    written = page.stat().st_mtime_ns
    with acquire(run, ["cnnspec", "evaluate", str(run)]):
        busy = invoke("report", run)
    assert busy.exit_code == 2 and f"in use by process {os.getpid()} (cnnspec evaluate" in flat(busy)
    assert page.stat().st_mtime_ns == written
    # a page elsewhere is written, and nothing is drawn into the folder the other process holds
    copy = tmp_path / "held"
    shutil.copytree(run, copy)
    (copy / "history.png").unlink()
    with acquire(copy, ["cnnspec", "train", "--resume", str(copy)]):
        elsewhere = invoke("report", copy, "--out", tmp_path / "held.html")
    assert elsewhere.exit_code == 0, elsewhere.output
    assert (tmp_path / "held.html").is_file() and not (copy / "history.png").exists()


# -- phases as they ran ------------------------------------------------------------------------
PHASED_SPEC = """\
cnnspec: 1
name: phased
input: {shape: [8, 8, 1]}
model:
  - conv2d: {filters: 4, kernel_size: 3}
  - flatten
  - dense: {units: 3, activation: softmax}
"""


def _phase(first: int, last: int, frozen: list[str], rate: float) -> dict:
    return {
        "epochs": last - first + 1,
        "first_epoch": first,
        "last_epoch": last,
        "frozen": frozen,
        "optimizer": "adam",
        "learning_rate": rate,
    }


def phased_run(folder, *, epochs_run: int | None, stopped_early: bool = True):
    """A run folder of two planned phases (epochs 1–3 and 4–5) written by hand, without a model:
    ``epochs_run`` epochs trained (``None``: unfinished, with a history of 2 epochs)."""
    folder.mkdir()
    (folder / "resolved.yaml").write_text(PHASED_SPEC, encoding="utf-8")
    phases = [_phase(1, 3, ["conv2d_1"], 0.01), _phase(4, 5, [], 0.003)]
    (folder / "lock.json").write_text(json.dumps({"format": 1, "name": "phased", "phases": phases}))
    ran = epochs_run or 2
    history = {
        "epoch": list(range(1, ran + 1)),
        "loss": [1.0 / e for e in range(1, ran + 1)],
        "phase": [1 if e <= 3 else 2 for e in range(1, ran + 1)],
    }
    (folder / "history.json").write_text(json.dumps(history))
    if epochs_run is not None:
        metrics = {"epochs_run": epochs_run, "epochs_planned": 5, "stopped_early": stopped_early}
        (folder / "metrics.json").write_text(json.dumps(metrics))
    return folder


def phase_lines(folder) -> list[str]:
    result = invoke("report", folder)
    assert result.exit_code == 0, result.output
    text = (folder / "report.html").read_text(encoding="utf-8")
    return [" ".join(line.split()) for line in re.findall(r"<li>(phase \d[^<]*)", text)]


def test_the_report_lists_the_phases_as_they_ran_after_early_stopping(tmp_path):
    lines = phase_lines(phased_run(tmp_path / "early", epochs_run=2))
    assert lines == [
        "phase 1: epochs 1–2 (planned 1–3; stopped early at epoch 2), 1 layer(s) frozen, "
        "adam at learning rate 0.01",
        "phase 2: not run (stopped early at epoch 2); planned epochs 4–5, 0 layer(s) frozen, "
        "adam at learning rate 0.003",
    ]
    later = phase_lines(phased_run(tmp_path / "later", epochs_run=4))
    assert later[0].startswith("phase 1: epochs 1–3, ")  # ran whole
    assert later[1].startswith("phase 2: epochs 4–4 (planned 4–5; stopped early at epoch 4), ")
    whole = phase_lines(phased_run(tmp_path / "whole", epochs_run=5, stopped_early=False))
    assert [line.split(",")[0] for line in whole] == ["phase 1: epochs 1–3", "phase 2: epochs 4–5"]
    unfinished = phase_lines(phased_run(tmp_path / "unfinished", epochs_run=None))
    assert unfinished[1].startswith("phase 2: not run (the unfinished run has reached epoch 2); ")


@pytest.mark.parametrize(("phases", "marks"), [([1, 1], []), ([1, 1, 1, 2], [3.5])], ids=["early", "both"])
def test_the_curves_mark_only_phases_that_ran(tmp_path, monkeypatch, phases, marks):
    """history.json's phase column decides the dashed lines: none past the last epoch run."""
    from matplotlib.axes import Axes

    from cnnspec.training.plots import plot_history

    drawn: list[float] = []
    original = Axes.axvline

    def record(self, x=0, *args, **kwargs):
        drawn.append(x)
        return original(self, x, *args, **kwargs)

    monkeypatch.setattr(Axes, "axvline", record)
    epochs = list(range(1, len(phases) + 1))
    history = {"epoch": epochs, "loss": [1.0] * len(epochs), "accuracy": [0.5] * len(epochs), "phase": phases}
    plot_history(history, tmp_path / "history.png")
    assert drawn == marks * 2  # one line per panel (accuracy, loss)


def test_a_metrics_file_with_values_of_the_wrong_type_is_a_damaged_run(run_dir, tmp_path):
    """The page showed "epochs zzz/zzz" and "stopped early, best epoch zzz", exit 0, where
    `cnnspec runs` called the same run damaged; now report says so too, and writes nothing."""
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    (copy / "report.html").unlink(missing_ok=True)
    metrics = json.loads((copy / "metrics.json").read_text())
    metrics.update(epochs_run="zzz", test_accuracy="high")
    (copy / "metrics.json").write_text(json.dumps(metrics))
    result = invoke("report", copy)
    assert result.exit_code == 2, result.output
    text = flat(result)
    assert f"damaged run file {copy / 'metrics.json'}" in text and "epochs_run" in text
    assert "test_accuracy" in text and not (copy / "report.html").exists()
    # and visualize, which drew the confusion matrix from it, exit 0
    (copy / "evaluation.json").unlink(missing_ok=True)
    drawn = invoke("visualize", copy, "confusion", "-o", tmp_path / "c.png")
    assert drawn.exit_code == 2, drawn.output
    assert f"damaged run file {copy / 'metrics.json'}" in flat(drawn) and not (tmp_path / "c.png").exists()


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"best_epoch": "zzz", "stopped_early": True}, "best_epoch"),  # the page said "best epoch zzz"
        ({"test_images": "zzz"}, "test_images"),  # "zzz images"
        ({"per_class": {"0": "zzz"}}, "per_class"),  # an internal error (AttributeError)
    ],
    ids=["best-epoch", "test-images", "per-class"],
)
def test_the_other_keys_the_page_reads_are_checked_too(run_dir, tmp_path, changes, named):
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    (copy / "report.html").unlink(missing_ok=True)
    metrics = json.loads((copy / "metrics.json").read_text())
    metrics.update(changes)
    (copy / "metrics.json").write_text(json.dumps(metrics))
    result = invoke("report", copy)
    assert result.exit_code == 2, result.output
    text = flat(result)
    assert f"damaged run file {copy / 'metrics.json'}" in text and named in text
    assert "internal error" not in text and not (copy / "report.html").exists()


def test_a_metrics_json_that_is_a_folder_is_a_damaged_run_file(run_dir, tmp_path):
    """report read a folder in metrics.json's place as no file: "the run has not finished",
    exit 0, where train --resume calls the run finished. It is a damaged run file."""
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    (copy / "report.html").unlink(missing_ok=True)
    (copy / "metrics.json").unlink()
    (copy / "metrics.json").mkdir()
    result = invoke("report", copy)
    assert result.exit_code == 2, result.output
    assert f"damaged run file {copy / 'metrics.json'}: expected a file; it is a folder" in flat(result)
    assert not (copy / "report.html").exists()
