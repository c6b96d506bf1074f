"""Audit 5: what `cnnspec runs`, `runs compare`, `report` and the export checks said of diverged,
multi-output and incomplete runs. Every run folder is written by hand (no training, no
TensorFlow): lock.json, metrics.json, history.json and resolved.yaml as training leaves them."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from cnnspec.errors import UsageError
from tests.test_damaged_runs import stand_in_model
from tests.test_report_support import flat, invoke
from tests.test_runs import make_run

CREATED = "2026-01-01T10:00:00+0000"
NAN = float("nan")


def regression_run(folder: Path, metrics: dict[str, Any], *, lr: float = 0.01) -> Path:
    """A finished regression run: the test_runs.py folder with a regression metrics.json."""
    run = make_run(folder, lr=lr, accuracy=None, created=CREATED)
    base = {"task": "regression", "epochs_run": 3, "epochs_planned": 3, "train_seconds": 2.0}
    (run / "metrics.json").write_text(json.dumps({**base, **metrics}), encoding="utf-8")
    stand_in_model(run / "model.keras")  # a finished run's model is there
    return run


def compared(a: Path, b: Path, png: Path, *extra: str) -> tuple[dict[str, Any], Any]:
    """``runs compare`` as JSON (the document) and as text (the result)."""
    document = invoke("runs", "compare", a, b, "--png", png, "--format", "json", "--force")
    assert document.exit_code == 0, document.output
    text = invoke("runs", "compare", a, b, "--png", png, "--force", *extra)
    assert text.exit_code == 0 and "Traceback" not in text.output, text.output
    return json.loads(document.stdout), text


# -- 3: a diverged run of any task shows its figure as text ---------------------------------------
def test_a_diverged_regression_runs_score_is_shown_as_nan(tmp_path):
    root = tmp_path / "runs"
    regression_run(root / "diverged", {"test_mae": "nan", "test_r2": "nan", "test_loss": "nan"})
    (row,) = json.loads(invoke("runs", root, "--format", "json").stdout)
    assert row["status"] == "finished"
    assert row["headline"] == [["test MAE", "nan"], ["test R²", "nan"]]  # not []
    assert "MAE nan" in flat(invoke("runs", root))


def test_headline_reads_non_finite_text_of_every_task_and_output():
    from cnnspec.training.task_metrics import headline

    figures = headline({"task": "segmentation", "test_mean_iou": "nan", "test_pixel_accuracy": 0.5})
    assert figures[0][0] == "test mean IoU" and figures[0][1] != figures[0][1]  # NaN
    assert figures[1] == ("test pixel accuracy", 0.5)
    multi = {"outputs": {"count": {"task": "regression", "test_mae": "inf", "test_r2": "-inf"}}}
    assert headline(multi) == [("count MAE", float("inf")), ("count R²", float("-inf"))]
    # text that is no figure, and a boolean, are still no figure
    assert headline({"task": "multilabel", "test_f1_macro": "high"}) == []
    assert headline({"test_accuracy": True}) == []


# -- 4: runs compare shows every figure that differs ----------------------------------------------
def test_compare_shows_non_finite_and_one_sided_figures(tmp_path):
    a = regression_run(tmp_path / "good", {"test_mae": 0.5, "test_r2": 0.8, "best_epoch": 2, "only_a": 1})
    b = regression_run(
        tmp_path / "diverged", {"test_mae": "nan", "test_r2": "-inf", "best_epoch": None, "only_b": 0.25}
    )
    found, text = compared(a, b, tmp_path / "c.png")
    rows = {row["metric"]: row for row in found["metrics"]}
    assert (rows["test_mae"]["a"], rows["test_mae"]["b"], rows["test_mae"]["difference"]) == (
        0.5,
        "nan",
        "nan",
    )
    assert (rows["test_r2"]["b"], rows["test_r2"]["difference"]) == ("-inf", "-inf")
    assert rows["epochs_run"]["difference"] == 0 and rows["epochs_run"]["missing"] == []
    # only in one run: missing on the other side; a recorded null is not "missing"
    assert (rows["only_a"]["b"], rows["only_a"]["missing"], rows["only_a"]["difference"]) == (
        None,
        ["B"],
        None,
    )
    assert (rows["only_b"]["a"], rows["only_b"]["missing"]) == (None, ["A"])
    assert (rows["best_epoch"]["b"], rows["best_epoch"]["missing"]) == (None, [])
    lines = text.stdout.splitlines()

    def line(metric: str) -> list[str]:
        return next(row for row in lines if f" {metric} " in row).replace("│", " ").split()

    assert line("test_mae") == ["test_mae", "0.5000", "nan", "nan"]
    assert line("only_a") == ["only_a", "1", "missing"]
    assert line("only_b") == ["only_b", "missing", "0.2500"]
    assert line("best_epoch") == ["best_epoch", "2", "none"]


def test_compare_shows_each_outputs_figures_under_its_name(tmp_path):
    def multi(folder: Path, count: dict[str, Any], mask: dict[str, Any] | None) -> Path:
        outputs = {"count": {"task": "regression", **count}}
        if mask is not None:
            outputs["mask"] = {"task": "segmentation", **mask}
        return regression_run(folder, {"task": "multi-output", "outputs": outputs})

    a = multi(tmp_path / "a", {"test_mae": 1.5, "test_r2": 0.25}, {"test_mean_iou": 0.5})
    b = multi(tmp_path / "b", {"test_mae": 1.0, "test_r2": "nan"}, None)
    found, text = compared(a, b, tmp_path / "c.png")
    rows = {row["metric"]: row for row in found["metrics"]}
    assert rows["outputs.count.test_mae"]["difference"] == pytest.approx(-0.5)
    assert rows["outputs.count.test_mae"]["output"] == "count"
    assert rows["outputs.count.test_r2"]["b"] == "nan"
    assert rows["outputs.mask.test_mean_iou"]["missing"] == ["B"]  # an output only A has
    assert rows["epochs_run"]["output"] is None
    for expected in (
        "outputs.count.test_mae 1.5000 1.0000 -0.5000",
        "outputs.mask.test_mean_iou 0.5000 missing",
    ):
        assert expected in " ".join(text.stdout.replace("│", " ").split())


def test_compare_still_leaves_a_damaged_figure_to_the_notes(tmp_path):
    a = regression_run(tmp_path / "a", {"test_mae": 0.5})
    b = regression_run(tmp_path / "b", {"test_mae": "low"})
    found, _ = compared(a, b, tmp_path / "c.png")
    assert "test_mae" not in {row["metric"] for row in found["metrics"]}
    assert any("test_mae is a string ('low'), expected a number" in note for note in found["notes"])


def test_compare_says_a_missing_resolved_spec_is_missing(tmp_path):
    a = make_run(tmp_path / "a", lr=0.1, accuracy=0.5, created=CREATED)
    b = make_run(tmp_path / "b", lr=0.1, accuracy=0.6, created=CREATED)
    (b / "resolved.yaml").unlink()
    found, text = compared(a, b, tmp_path / "c.png")
    assert found["spec_diff"] == [] and found["spec_missing"] == {"B": "no resolved.yaml"}
    assert f"{b}: no resolved.yaml: the resolved specs are not compared" in found["missing"]
    assert "resolved specs: not compared (B: no resolved.yaml)" in flat(text)
    assert "the same" not in text.stdout and "+name: digits" not in text.stdout  # not diffed against nothing
    (a / "resolved.yaml").unlink()
    both, _ = compared(a, b, tmp_path / "c.png")
    assert both["spec_missing"] == {"A": "no resolved.yaml", "B": "no resolved.yaml"}


def test_compare_notes_a_missing_history_on_the_text_and_the_picture(tmp_path):
    from cnnspec.reporting.runs import curves, curves_figure

    a = make_run(tmp_path / "a", lr=0.1, accuracy=0.5, created=CREATED)
    b = make_run(tmp_path / "b", lr=0.1, accuracy=0.6, created=CREATED)
    (a / "history.json").unlink()
    found, text = compared(a, b, tmp_path / "c.png")
    assert found["missing"] == [f"{a}: no history.json: no learning curves drawn for it"]
    assert found["notes"] == []  # missing is not damaged
    assert f"note: {a}: no history.json: no learning curves drawn for it" in flat(text)
    figure = curves_figure(a, b)
    assert "A (a): no history.json, no curves" in [t.get_text() for t in figure.texts]
    # a diverged run's curves are all NaN: drawn as nothing, and the legend says so
    (b / "history.json").write_text(json.dumps({"epoch": [1, 2], "loss": ["nan", "nan"]}))
    labels = [line["label"] for line in curves(a, b)["loss"]]
    assert labels == ["b training (all nan: not drawn)"]


# -- 8, 9: report of a run without history.json, and --out into another run folder ----------------
def test_report_of_a_run_without_history_says_the_history_is_missing(tmp_path):
    from PIL import Image

    from tests.test_report_html import make_run as report_run
    from tests.test_report_html import text_of

    run = report_run(tmp_path / "run")
    (run / "history.json").unlink()
    Image.new("RGB", (4, 4)).save(run / "history.png")  # the curves training drew: still shown
    result = invoke("report", run, "-o", run / "report.html")  # RUN/report.html of RUN itself: fine
    assert result.exit_code == 0, result.output
    text = text_of((run / "report.html").read_text(encoding="utf-8"))
    assert "no validation split" not in text  # it had one: history.json can't tell, so nothing says
    assert "history.json is missing: the curves are the run's own history.png" in text
    assert "its history.json is missing" in text  # the caption
    (run / "history.png").unlink()
    assert invoke("report", run).exit_code == 0
    text = text_of((run / "report.html").read_text(encoding="utf-8"))
    assert "history.json is missing: there are no training curves" in text


@pytest.mark.parametrize("inside", ["report.html", "pages/page.html"])
@pytest.mark.parametrize("force", [False, True])
def test_report_never_writes_into_another_run_folder(tmp_path, inside, force):
    run = make_run(tmp_path / "run", lr=0.1, accuracy=0.5, created=CREATED)
    other = make_run(tmp_path / "other", lr=0.2, accuracy=0.6, created=CREATED)
    (other / "pages").mkdir()
    page = other / "report.html"
    page.write_text('<html><head><meta name="generator" content="cnnspec 1"></head></html>')
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    result = invoke("report", run, "-o", other / inside, *(["--force"] if force else []))
    assert result.exit_code == 2, result.output
    assert f"inside the run folder {os.path.realpath(other)}" in flat(result)
    assert "Traceback" not in result.output
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before


# -- 10: an export refused after the model changed says what was checked --------------------------
def test_a_stale_export_is_refused_for_its_hash_not_its_date(tmp_path):
    from cnnspec.export.runtimes import find_export, write_record
    from tests.test_export_records import META

    run = tmp_path / "run"
    (run / "export").mkdir(parents=True)
    (run / "lock.json").write_text("{}")
    model = run / "model.keras"
    model.write_bytes(b"model v1")
    (run / "export" / "model.onnx").write_bytes(b"onnx bytes")
    write_record(run / "export" / "model.onnx", model, {"verified": True}, META)
    model.write_bytes(b"model v2")
    os.utime(model, (1577836800, 1577836800))  # touch -d 2020: older than the export now
    with pytest.raises(UsageError) as info:
        find_export(run, "onnx")
    message = str(info.value)
    assert "model.keras changed since the export" in message and "SHA-256 differs" in message
    assert "older than" not in message


@pytest.mark.parametrize("force", [False, True], ids=["plain", "force"])
def test_compare_never_draws_into_a_third_run_folder(tmp_path, force):
    """`runs compare A B --png C/history.png --force` replaced C's own curves with A's and B's."""
    a, b, c = (make_run(tmp_path / name, lr=0.1, accuracy=0.5, created=CREATED) for name in "abc")
    (c / "history.png").write_bytes(b"C's curves")
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    for png in (c / "history.png", c / "compare.png"):
        result = invoke("runs", "compare", a, b, "--png", png, *(["--force"] if force else []))
        assert result.exit_code == 2, result.output
        assert "which is not compared" in flat(result) and "Traceback" not in result.output
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before


def test_the_benchmark_chart_draws_a_name_with_dollars_and_is_written_before_its_json(tmp_path, monkeypatch):
    """benchmark.png's title holds the model's name (a .keras file's stem may hold `$`): drawn
    as written; and a chart that fails to draw leaves no new benchmark.json beside an old one."""
    from cnnspec.export import benchmark

    row = {"runtime": "keras", "status": "ok", "throughput": {"1": 1000.0}}
    row["latency_ms"] = {"1": {"median": 1.0, "p90": 1.2}}
    settings = {"threads": {"intra_op": 1}, "batches": [1]}
    document = {"name": "a$\\frac{1}$", "settings": settings, "machine": {"cpus": 2}, "results": [row]}
    files = benchmark.write_results(document, tmp_path)
    assert files["chart"].read_bytes()[:4] == b"\x89PNG"
    old = files["benchmark"].read_bytes()

    def broken(document):
        raise RuntimeError("cannot draw")

    monkeypatch.setattr(benchmark, "chart_png", broken)
    with pytest.raises(RuntimeError):
        benchmark.write_results({**document, "name": "other"}, tmp_path)
    assert files["benchmark"].read_bytes() == old


def test_compare_draws_a_regressions_figures_beside_its_loss(tmp_path):
    """Two regression runs were compared by their loss alone (the accuracy panel's place was
    left to a figure they do not have): their MAE, R² and RMSE curves are drawn too."""
    from cnnspec.reporting.runs import curves, curves_figure

    runs = []
    for name, lr in (("a", 0.01), ("b", 0.02)):
        run = regression_run(tmp_path / name, {"test_mae": 0.3}, lr=lr)
        columns = {key: [1.0, 0.5] for key in ("loss", "mae", "r2", "rmse", "val_loss", "val_mae")}
        (run / "history.json").write_text(
            json.dumps({"epoch": [1, 2], **columns, "learning_rate": [0.1] * 2})
        )
        runs.append(run)
    drawn = curves(*runs)
    assert list(drawn) == ["loss", "mae", "r2", "rmse"]
    assert len(drawn["mae"]) == 4  # each run's training and validation
    assert [axes.get_title() for axes in curves_figure(*runs).axes] == ["loss", "mae", "r2", "rmse"]


def test_compare_does_not_call_a_damaged_runs_data_another_source(tmp_path):
    """A lock.json that is no JSON records no data; compare said `data.source: "differs"`, a
    claim it cannot make (the notes said the lock.json was damaged)."""
    a = make_run(tmp_path / "a", lr=0.1, accuracy=0.5, created=CREATED)
    b = make_run(tmp_path / "b", lr=0.1, accuracy=0.6, created=CREATED)
    for run in (a, b):  # (what training records of the digits: its kind, no path)
        lock = json.loads((run / "lock.json").read_text(encoding="utf-8"))
        (run / "lock.json").write_text(json.dumps({**lock, "data": {"kind": "digits"}}), encoding="utf-8")
    same, _ = compared(a, b, tmp_path / "c.png")
    (a / "lock.json").write_text("{not json", encoding="utf-8")
    found, _ = compared(a, b, tmp_path / "c.png")
    assert found["data"]["source"] is None and found["data"]["same"] is None
    assert same["data"]["source"] != "differs"  # (the two runs' own: the same data)
    assert any("lock.json" in note for note in found["notes"])
    # the text says why (it said "A lock.json records no content hash", as of an older run's)
    assert found["data"]["a"]["lock_damage"].startswith("lock.json is not valid JSON (")
    text = flat(invoke("runs", "compare", a, b, "--png", tmp_path / "d.png"))
    assert "data: not compared (A's lock.json is not valid JSON (" in text
    assert "; B's lock.json records no content hash)" in text  # (B's is whole: it has none)
