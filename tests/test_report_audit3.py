"""What a third audit found wrong in what cnnspec shows after training: duplicate class names that
made a class vanish from metrics.json and the report, report.html pairing the training's
per-class table with the confusion matrix of a later ``evaluate --data``, two "images/s"
figures with one label, a confusion-matrix title cut at the figure's edge, and ``runs`` rows
that hid a linked run, an unfinished run's empty comparison, or a damaged lock.json or
history.json.

Most of it is TF-free (run folders written by hand as in test_damaged_runs.py, figures drawn on
an Agg canvas); the tests that train or load a model are marked slow.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from rich.console import Console

from cnnspec.errors import SpecError
from cnnspec.reporting.evaluation import Evaluation, write_evaluation
from cnnspec.reporting.html import _cards, report_context
from cnnspec.reporting.run import Run
from cnnspec.training.metrics import classification_report_text, classification_summary
from cnnspec.training.plots import confusion_figure
from tests.test_damaged_runs import make_run
from tests.test_data_files_audit import data_error, load
from tests.test_report_support import colour_images, flat, invoke, trained_run

DOGS = ["golden_retriever", "labrador_retriever", "german_shepherd"]


# -- 1. duplicate class names: a located error, never a class that vanishes --------------------------
def dup_npz(tmp_path: Path, names: list[str]) -> Path:
    """A spec of an .npz whose class_names are ``names`` (4 classes of 8×8×1 images)."""
    rng = np.random.default_rng(0)
    np.savez(
        tmp_path / "dup.npz",
        x_train=rng.random((40, 8, 8, 1)).astype("float32"),
        y_train=np.arange(40) % 4,
        x_test=rng.random((20, 8, 8, 1)).astype("float32"),
        y_test=np.arange(20) % 4,
        class_names=np.array(names),
    )
    spec = tmp_path / "dup.yaml"
    spec.write_text(
        "cnnspec: 1\nname: dup\ninput: {shape: [8, 8, 1]}\nmodel:\n  - global_avg_pool2d\n"
        "  - dense: {units: 4, activation: softmax}\ndata: {source: {npz: dup.npz}}\n"
        "training: {epochs: 1, batch_size: 8, seed: 1}\n",
        encoding="utf-8",
    )
    return spec


def test_an_npz_with_a_class_name_twice_is_a_located_error_naming_it(tmp_path):
    message, hint, where = data_error(dup_npz(tmp_path, ["cat", "cat", "dog", "emu"]))
    assert message.startswith("expected each class name once in the class_names of dup.npz")
    assert "'cat' at class_names[1], the same name as 'cat' at class_names[0]" in message
    assert where == "data.source.npz" and hint and "distinct name" in hint


def test_class_names_in_two_unicode_spellings_are_one_name_twice(tmp_path):
    composed, decomposed = "\u00e9mu", "e\u0301mu"
    message, _, _ = data_error(dup_npz(tmp_path, ["cat", composed, "dog", decomposed]))
    assert "class_names[3]" in message and "class_names[1]" in message


def test_an_npz_with_distinct_class_names_loads(tmp_path):
    assert load(dup_npz(tmp_path, ["cat", "cow", "dog", "emu"])).class_names == ["cat", "cow", "dog", "emu"]


def test_a_masks_classes_list_with_a_name_twice_is_a_located_error(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    spec = tmp_path / "seg.yaml"
    spec.write_text(
        "cnnspec: 1\nname: seg\ninput: {shape: [8, 8, 3]}\nmodel:\n"
        "  - conv2d: {filters: 3, kernel_size: 1, activation: softmax}\n"
        "data:\n  source: {images: images, masks: masks, classes: [sky, road, sky]}\n"
        "training: {epochs: 1, batch_size: 4, seed: 3}\n",
        encoding="utf-8",
    )
    with pytest.raises(SpecError) as info:
        load(spec)
    (error,) = info.value.errors
    assert error.message.startswith("expected each class name once in data.source.classes")
    assert "'sky' at classes[2]" in error.message and error.path == "data.source.classes"


def test_results_of_classes_named_alike_keep_every_class():
    # a run trained before the sources refused repeated names: no class's figures replace another's
    y_true = np.array([0, 0, 1, 1, 2, 3, 3])
    y_pred = np.array([0, 1, 1, 1, 2, 3, 0])
    summary = classification_summary(y_true, y_pred, ["cat", "cat", "dog", "emu"])
    assert list(summary["per_class"]) == ["cat (class 0)", "cat (class 1)", "dog", "emu"]
    assert sum(row["support"] for row in summary["per_class"].values()) == len(y_true)
    text = classification_report_text(y_true, y_pred, ["cat", "cat", "dog", "emu"])
    assert "cat (class 0)" in text and "cat (class 1)" in text


@pytest.mark.slow
def test_train_of_an_npz_with_a_class_name_twice_exits_1_and_writes_nothing(tmp_path):
    spec = dup_npz(tmp_path, ["cat", "cat", "dog", "emu"])
    result = invoke("train", spec, "--out", tmp_path / "run")
    assert result.exit_code == 1, result.output  # a spec (data) error, as every located one
    assert "expected each class name once" in flat(result) and "'cat'" in flat(result)
    assert not (tmp_path / "run").exists()


# -- 2. the report's matrix is of the table's data; evaluate --data leaves the run's files ----------
def classifier_run(tmp_path: Path, name: str = "run") -> Path:
    """A finished classifier run written by hand, with the per-class table and matrix training
    writes into metrics.json (3 classes, 12 test images) and a stale picture of another matrix."""
    run = make_run(tmp_path / name, model=False)
    metrics = json.loads((run / "metrics.json").read_text())
    matrix = [[4, 0, 0], [1, 3, 0], [0, 0, 4]]
    per_class = {name: {"precision": 0.9, "recall": 0.9, "f1": 0.9, "support": 4} for name in ("a", "b", "c")}
    metrics.update(
        test_accuracy=11 / 12,
        test_images=12,
        per_class=per_class,
        class_names=["a", "b", "c"],
        confusion_matrix=matrix,
        macro_avg={"precision": 0.9, "recall": 0.9, "f1": 0.9},
        weighted_avg={"precision": 0.9, "recall": 0.9, "f1": 0.9},
    )
    (run / "metrics.json").write_text(json.dumps(metrics))
    return run


def drawn_counts(figure: Any) -> list[list[int]]:
    """The counts a confusion-matrix figure shows (its image's data)."""
    return np.asarray(figure.axes[0].images[0].get_array()).astype(int).tolist()


def test_the_report_matrix_is_drawn_from_the_tables_metrics_not_a_later_evaluation(tmp_path, monkeypatch):
    import cnnspec.training.plots

    run = classifier_run(tmp_path)
    # what a later `evaluate --data other.npz` of an older cnnspec left in the run folder
    other = {"data": {"source": {"kind": "npz", "path": "other.npz"}}, "class_names": ["a", "b", "c"]}
    other["confusion_matrix"] = [[0, 9, 0], [0, 0, 9], [9, 0, 0]]
    (run / "evaluation.json").write_text(json.dumps(other))
    cnnspec.training.plots.plot_confusion_matrix(
        other["confusion_matrix"], ["a", "b", "c"], run / "confusion_matrix.png"
    )
    drawn: list[Any] = []
    real_png = cnnspec.training.plots.png_bytes

    def capture(figure: Any) -> bytes:
        drawn.append(figure)
        return real_png(figure)

    monkeypatch.setattr(cnnspec.training.plots, "png_bytes", capture)
    cnnspec.training.plots._confusion_bytes.cache_clear()  # (the training's own picture, kept)
    context = report_context(Run(model_path=run / "model.keras", run_dir=run))
    (matrix,) = [figure for figure in drawn if figure.axes[0].images]  # (history.png: curves)
    assert context["confusion_png"]
    assert drawn_counts(matrix) == [[4, 0, 0], [1, 3, 0], [0, 0, 4]]  # metrics.json's, as the table
    # the training's figure (the title is wrapped to the figure's width: where, depends on the font
    # matplotlib found, which once differed between processes of the suite)
    assert "confusion matrix (test accuracy 0.9167)" in " ".join(matrix.axes[0].get_title().split())
    assert context["confusion_of"] == "the training's test set (12 images)"
    assert [row["name"] for row in context["report_rows"]][:3] == ["a", "b", "c"]


def test_the_trainings_picture_of_the_matrix_is_drawn_once_for_its_file_and_its_page(tmp_path, monkeypatch):
    """The report written at the end of a training shows the matrix confusion_matrix.png has:
    the same picture, drawn once (half a second each time)."""
    import cnnspec.training.plots as plots

    renders: list[Any] = []
    real_png = plots.png_bytes
    monkeypatch.setattr(plots, "png_bytes", lambda figure: renders.append(figure) or real_png(figure))
    plots._confusion_bytes.cache_clear()
    matrix, names, title = [[3, 1], [0, 4]], ["a", "b"], "m: confusion matrix (test accuracy 0.8750)"
    plots.plot_confusion_matrix(matrix, names, tmp_path / "cm.png", title)
    assert plots.confusion_png(np.array(matrix), names, title) == (tmp_path / "cm.png").read_bytes()
    assert len(renders) == 1
    plots.confusion_png(matrix, names, "m: another title")
    plots.confusion_png([[3, 1], [1, 3]], names, title)
    assert len(renders) == 3  # another title or other counts: another picture


def test_the_report_page_says_which_data_its_matrix_is_of(tmp_path):
    from cnnspec.reporting.html import write_report

    run = classifier_run(tmp_path)
    page = write_report(run).read_text(encoding="utf-8")
    assert "Of the training&#39;s test set (12 images), the predictions the per-class report counts" in page


def evaluation_of(
    run: Path, *, of_run: bool, data: str = "other.npz", sha: str | None = None, path: str | None = None
) -> Evaluation:
    """An evaluation document as `evaluate` writes it (of the run's test split, or of --data);
    ``sha``: the SHA-256 of the file as evaluated; ``path``: the path as given (default: the
    absolute path of ``data``, beside the run)."""
    source = {"kind": "npz", "path": path or str(run.parent / data)}
    if sha is not None:
        source["file_sha256"] = sha
    document = {
        "name": "tiny",
        "run_dir": str(run),
        "data": {"source": source, "of_run": of_run},
        "accuracy": 0.5,
        "class_names": ["a", "b", "c"],
        "confusion_matrix": [[1, 1, 0], [0, 1, 1], [1, 0, 1]],
        "notes": [],
    }
    return Evaluation(document, "", SimpleNamespace())  # type: ignore[arg-type]


def test_an_evaluation_of_other_data_goes_apart_from_the_runs_own_files(tmp_path):
    run = classifier_run(tmp_path)
    (run / "confusion_matrix.png").write_bytes(b"\x89PNG the training's")
    files = write_evaluation(evaluation_of(run, of_run=False), run, "tiny")
    assert (run / "confusion_matrix.png").read_bytes() == b"\x89PNG the training's"
    assert not (run / "evaluation.json").exists()
    assert files["evaluation"] == run / "evaluations" / "other" / "evaluation.json"
    assert files["confusion_matrix"].parent == run / "evaluations" / "other"
    # --out elsewhere, and an evaluation of the run's own test split, go where they are sent
    out = tmp_path / "out"
    assert write_evaluation(evaluation_of(run, of_run=False), out, "tiny")["evaluation"].parent == out
    assert write_evaluation(evaluation_of(run, of_run=True), run, "tiny")["evaluation"].parent == run


def test_evaluations_of_two_sources_of_one_name_keep_a_folder_each(tmp_path):
    """a/other.npz and then b/other.npz: the second goes to other-<hash>/, and a/other.npz
    again to its own other/."""
    run = classifier_run(tmp_path)
    first = write_evaluation(evaluation_of(run, of_run=False, data="a/other.npz"), run, "tiny")["evaluation"]
    second = write_evaluation(evaluation_of(run, of_run=False, data="b/other.npz"), run, "tiny")["evaluation"]
    again = write_evaluation(evaluation_of(run, of_run=False, data="a/other.npz"), run, "tiny")["evaluation"]
    assert first.parent.name == "other" and again == first
    assert second.parent.name.startswith("other-") and len(second.parent.name) == len("other-") + 8
    assert json.loads(first.read_text())["data"]["source"]["path"].endswith("a/other.npz")
    assert json.loads(second.read_text())["data"]["source"]["path"].endswith("b/other.npz")


def test_the_same_file_changed_since_its_evaluation_replaces_it_in_its_folder(tmp_path, monkeypatch):
    """The same --data path with other contents (an updated other.npz) is the same source: its
    evaluation replaces the older one in evaluations/other/ with a note that the file changed
    (it went to other-<hash>/ and left the stale one as the source's). Another file of that
    name still gets a folder of its own, and that file changed comes back to that folder."""
    run = classifier_run(tmp_path)
    first = write_evaluation(evaluation_of(run, of_run=False, sha="a" * 64), run, "tiny")["evaluation"]
    assert first == run / "evaluations" / "other" / "evaluation.json"
    assert json.loads(first.read_text())["notes"] == []
    changed = evaluation_of(run, of_run=False, sha="b" * 64)
    assert write_evaluation(changed, run, "tiny")["evaluation"] == first
    assert sorted(p.name for p in (run / "evaluations").iterdir()) == ["other"]
    note = (
        f"other.npz has changed since its evaluation in {run / 'evaluations' / 'other'} (SHA-256 "
        "aaaaaaaaaaaa… then, bbbbbbbbbbbb… now): that evaluation is replaced by this one"
    )
    assert changed.document["notes"] == [note]
    recorded = json.loads(first.read_text())
    assert recorded["data"]["source"]["file_sha256"] == "b" * 64 and recorded["notes"] == [note]
    # the same contents again: replaced without a note
    again = evaluation_of(run, of_run=False, sha="b" * 64)
    assert write_evaluation(again, run, "tiny")["evaluation"] == first and again.document["notes"] == []
    # the same file named another way (relative to the working folder): the same folder
    monkeypatch.chdir(tmp_path)
    relative = evaluation_of(run, of_run=False, sha="c" * 64, path="./other.npz")
    assert write_evaluation(relative, run, "tiny")["evaluation"] == first
    assert "other.npz has changed since its evaluation" in relative.document["notes"][0]
    # another file of that name: other-<hash>/, and that file changed: the same other-<hash>/
    elsewhere = write_evaluation(
        evaluation_of(run, of_run=False, data="b/other.npz", sha="d" * 64), run, "tiny"
    )["evaluation"]
    assert elsewhere.parent.name.startswith("other-") and len(elsewhere.parent.name) == len("other-") + 8
    updated = evaluation_of(run, of_run=False, data="b/other.npz", sha="e" * 64)
    assert write_evaluation(updated, run, "tiny")["evaluation"] == elsewhere
    assert updated.document["notes"][0].startswith(
        f"other.npz has changed since its evaluation in {elsewhere.parent}"
    )
    assert sorted(p.name for p in (run / "evaluations").iterdir()) == ["other", elsewhere.parent.name]


@pytest.mark.slow
def test_evaluate_with_data_keeps_the_runs_matrix_and_the_report_shows_the_trainings(
    tmp_path_factory, tmp_path
):
    run = tmp_path / "run"
    shutil.copytree(trained_run(tmp_path_factory), run)
    before = (run / "confusion_matrix.png").read_bytes()
    x_test, y_test = colour_images(24, 7)
    np.savez(tmp_path / "other.npz", x_train=x_test, y_train=y_test, x_test=x_test, y_test=y_test,
             class_names=np.array(["red", "green", "blue"]))  # fmt: skip
    result = invoke("evaluate", run, "--data", tmp_path / "other.npz")
    assert result.exit_code == 0, result.output
    assert (run / "confusion_matrix.png").read_bytes() == before
    assert not (run / "evaluation.json").exists()
    assert (run / "evaluations" / "other" / "confusion_matrix.png").is_file()
    document = json.loads((run / "evaluations" / "other" / "evaluation.json").read_text())
    assert document["data"]["of_run"] is False
    report = invoke("report", run)
    assert report.exit_code == 0, report.output
    page = (run / "report.html").read_text(encoding="utf-8")
    assert "Of the training&#39;s test set (" in page
    # other.npz updated at its path: evaluated again into evaluations/other/, with a note
    x_test, y_test = colour_images(12, 8)
    np.savez(
        tmp_path / "other.npz", x_test=x_test, y_test=y_test, class_names=np.array(["red", "green", "blue"])
    )
    again = invoke("evaluate", run, "--data", tmp_path / "other.npz")
    assert again.exit_code == 0, again.output
    assert sorted(p.name for p in (run / "evaluations").iterdir()) == ["other"]
    document = json.loads((run / "evaluations" / "other" / "evaluation.json").read_text())
    assert document["data"]["images"] == 12
    assert f"note: other.npz has changed since its evaluation in {run / 'evaluations' / 'other'}" in flat(
        again
    )


# -- 3. one speed figure per label, the steady one a true median ------------------------------------
def test_steady_epochs_leave_out_the_first_of_the_run_of_each_phase_and_after_a_resume():
    from cnnspec.training.epochs import steady_epoch_seconds

    history = [
        {"epoch": 1, "seconds": 9.0, "phase": 1},
        {"epoch": 2, "seconds": 1.0, "phase": 1},
        {"epoch": 3, "seconds": 3.0, "phase": 1},
        {"epoch": 4, "seconds": 8.0, "phase": 2},
        {"epoch": 5, "seconds": 2.0, "phase": 2},
        {"epoch": 6, "seconds": 4.0, "phase": 2},
    ]
    assert steady_epoch_seconds(history) == [1.0, 3.0, 2.0, 4.0]
    assert steady_epoch_seconds(history, resumed_from=4) == [1.0, 3.0, 4.0]  # epoch 5 traced anew
    assert steady_epoch_seconds([{"epoch": 1, "seconds": 5.0}]) == []


def test_the_report_card_and_the_terminal_show_the_same_labelled_speeds():
    from cnnspec.cli.train import print_result
    from cnnspec.reporting.html import speed_text

    metrics = {
        "test_accuracy": 0.9,
        "test_loss": 0.3,
        "epochs_run": 3,
        "epochs_planned": 3,
        "train_seconds": 2.0,
        "images_per_second": 1253.0,
        "images_per_second_steady": 876.0,
    }
    assert speed_text(metrics) == "1,253 images/s overall, 876 images/s steady"
    (card,) = [c for c in _cards(metrics, None) if c["label"] == "training time"]
    assert card["sub"] == speed_text(metrics)
    console = Console(record=True, width=200)
    result = SimpleNamespace(metrics=metrics, worker=None, run_dir=Path("run"), files={}, completed=None)
    print_result(SimpleNamespace(console=console), result, quiet=False)
    assert "2.0s (1,253 images/s overall, 876 images/s steady)" in console.export_text()


# -- 4. the confusion-matrix title is always wholly in the figure -----------------------------------
@pytest.mark.parametrize(
    "names, title",
    [
        (DOGS, "dog_breeds_cnn: confusion matrix (test accuracy 0.9259)"),
        (["a", "b"], "a_model_with_a_very_long_name_" * 4 + ": confusion matrix (test accuracy 0.5)"),
        ([str(i) for i in range(12)], "twelve: confusion matrix, training's test set (accuracy 0.9876)"),
    ],
)
def test_the_confusion_matrix_title_lies_wholly_inside_the_figure(names, title):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    n = len(names)
    figure = confusion_figure(np.eye(n, dtype=int).tolist(), names, title)
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    box = figure.axes[0].title.get_window_extent(canvas.get_renderer())
    assert box.x0 >= 0 and box.x1 <= figure.bbox.width and box.y1 <= figure.bbox.height, (box, figure.bbox)
    assert " ".join(figure.axes[0].get_title().split()) == title or "accuracy" in figure.axes[0].get_title()
    assert figure.axes[0].get_title().replace("\n", "").replace(" ", "") == title.replace(" ", "")


def test_an_off_centre_title_narrower_than_the_figure_is_wrapped_in_a_few_layout_rounds(monkeypatch):
    """A 2-class matrix's colorbar pushes the axes, and the title centred over them, to the left:
    a title narrower than the figure stuck out at the left edge, and each round of fit_title took
    one character off its lines (ten rounds of layout, 0.6 s of CPU). It now wraps to the room
    either side of its centre: a few rounds, and still wholly inside."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rounds = []
    layout = Figure.tight_layout

    def counted(self, *args, **kwargs):
        rounds.append(1)
        return layout(self, *args, **kwargs)

    monkeypatch.setattr(Figure, "tight_layout", counted)
    title = "a_model_with_a_rather_long_name_and_more_words_after_it: confusion matrix (test accuracy 0.5)"
    figure = confusion_figure([[5, 1], [2, 7]], ["cat", "dog"], title)
    assert len(rounds) <= 4, len(rounds)
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    box = figure.axes[0].title.get_window_extent(canvas.get_renderer())
    assert box.x0 >= 0 and box.x1 <= figure.bbox.width and box.y1 <= figure.bbox.height, (box, figure.bbox)
    assert figure.axes[0].get_title().replace("\n", "").replace(" ", "") == title.replace(" ", "")


# -- 5. runs: linked runs, unfinished comparisons, damaged lock.json and history.json ---------------
def runs_table(folder: Path) -> dict[str, str]:
    """Each row of the `runs` table by its run name: the row's text."""
    result = invoke("runs", folder)
    assert result.exit_code == 0, result.output
    return {line.split("│")[1].strip(): line for line in result.stdout.splitlines() if line.count("│") > 2}


def test_runs_lists_a_run_folder_reached_through_a_link(tmp_path):
    make_run(tmp_path / "elsewhere" / "kept")
    (tmp_path / "runs").mkdir()
    make_run(tmp_path / "runs" / "here")
    (tmp_path / "runs" / "linked").symlink_to(tmp_path / "elsewhere" / "kept")
    (tmp_path / "runs" / "again").symlink_to(tmp_path / "runs" / "here")  # the same run twice: once
    (tmp_path / "runs" / "dangling").symlink_to(tmp_path / "nowhere")
    rows = json.loads(invoke("runs", tmp_path / "runs", "--format", "json").stdout)
    assert sorted(row["run"] for row in rows) == ["here", "linked"]
    linked = next(row for row in rows if row["run"] == "linked")
    assert linked["link"] == str((tmp_path / "elsewhere" / "kept").resolve())
    assert linked["status"] == "finished"
    assert any(name.startswith("linked →") for name in runs_table(tmp_path / "runs"))
    # the link that leads nowhere (a run moved or deleted since) is said, not silently left out
    listed = invoke("runs", tmp_path / "runs")
    assert f"note: {tmp_path / 'runs' / 'dangling'} leads to {tmp_path / 'nowhere'}, which is gone" in flat(
        listed
    )
    assert "dangling" not in listed.stdout  # (on stderr: the table and JSON stay as they were)


def test_a_run_linked_nearer_than_itself_is_listed_under_its_own_name(tmp_path):
    """runs/latest → runs/exp/r1: the link is met first (breadth first), the run is r1."""
    (tmp_path / "runs" / "exp").mkdir(parents=True)
    make_run(tmp_path / "runs" / "exp" / "r1")
    (tmp_path / "runs" / "latest").symlink_to(tmp_path / "runs" / "exp" / "r1")
    rows = json.loads(invoke("runs", tmp_path / "runs", "--format", "json").stdout)
    assert [row["run"] for row in rows] == ["exp/r1"] and rows[0]["link"] is None, rows


def test_runs_compare_with_an_unfinished_run_says_it_has_no_metrics(tmp_path):
    a = make_run(tmp_path / "a")
    b = make_run(tmp_path / "b")
    (b / "metrics.json").unlink()
    result = invoke("runs", "compare", a, b, "--png", tmp_path / "cmp.png")
    assert result.exit_code == 0, result.output
    assert "metrics: none to compare: B has no metrics.json yet (unfinished or failed)" in flat(result)
    data = json.loads(
        invoke("runs", "compare", a, b, "--png", tmp_path / "cmp.png", "--force", "-f", "json").stdout
    )
    assert data["unfinished"] == ["B"]


@pytest.mark.parametrize("text", ["{not json", "[1, 2]"])
def test_runs_compare_with_a_damaged_metrics_file_says_so_instead_of_an_empty_table(tmp_path, text):
    a = make_run(tmp_path / "a")
    b = make_run(tmp_path / "b")
    (b / "metrics.json").write_text(text)
    result = invoke("runs", "compare", a, b, "--png", tmp_path / "cmp.png")
    assert result.exit_code == 0, result.output
    assert "metrics: none to compare: the metrics.json of B can't be read (see above)" in flat(result)
    assert "metrics.json" in result.stderr and "B − A" not in result.stdout  # the note, no table
    data = json.loads(
        invoke("runs", "compare", a, b, "--png", tmp_path / "cmp.png", "--force", "-f", "json").stdout
    )
    assert data["metrics_damaged"] == ["B"] and data["unfinished"] == [] and data["metrics"] == []


def test_the_runs_table_marks_a_damaged_lock_in_its_status_column(tmp_path):
    (tmp_path / "runs").mkdir()
    make_run(tmp_path / "runs" / "good")
    bad = make_run(tmp_path / "runs" / "halflock")
    (bad / "lock.json").write_text('{"name": "tiny", "created": "2026')
    rows = runs_table(tmp_path / "runs")
    assert "0.5000" in rows["halflock"] and "damaged" in rows["halflock"]  # its accuracy, and damaged
    assert "finished" in rows["good"] and "damaged" not in rows["good"]


@pytest.mark.parametrize("text", ["", '{"loss": [1,2', "[1, 2]", '{"loss": [1, "x"]}'])
def test_a_run_with_a_corrupt_or_empty_history_is_listed_as_damaged(tmp_path, text):
    (tmp_path / "runs").mkdir()
    run = make_run(tmp_path / "runs" / "hist")
    (run / "history.json").write_text(text)
    (row,) = json.loads(invoke("runs", tmp_path / "runs", "--format", "json").stdout)
    assert row["status"] == "damaged"
    assert any(problem.startswith("history.json") for problem in row["problems"]), row["problems"]
    assert "damaged" in runs_table(tmp_path / "runs")["hist"]


def test_runs_compare_names_a_damaged_history_once(tmp_path):
    a = make_run(tmp_path / "a")
    b = make_run(tmp_path / "b")
    (a / "history.json").write_text('{"loss": [1, "x"]}')
    data = json.loads(invoke("runs", "compare", a, b, "--png", tmp_path / "cmp.png", "-f", "json").stdout)
    assert len([note for note in data["notes"] if "history.json" in note]) == 1, data["notes"]
