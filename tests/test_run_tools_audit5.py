"""Run tools after audit 5: class names with ``$`` drawn literally (no mathtext internal error);
``evaluate -o`` refusing another run's folder and files it did not write, and
``visualize … confusion`` passing over an evaluation.json of another run; a finished run whose
model.keras is gone told apart from an unfinished one; ``visualize … history|graph|confusion``
of a run without its model.keras; a run without resolved.yaml named from lock.json.

The run folders are written by hand (resolved.yaml, lock.json, metrics.json, history.json and a
stand-in model.keras that no test loads): nothing here imports TensorFlow."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cnnspec.errors import UsageError
from tests.test_damaged_runs import SPEC
from tests.test_report_support import flat, invoke

#: Names matplotlib read as mathtext: the first can't be parsed (it ended every picture of the
#: run with an internal error), the second was drawn as a formula.
DOLLARS = ['a$\\frac{1}$ & "q"', "$x^2$", "plain"]

LOCK = {
    "format": 1,
    "name": "tiny",
    "created": "2026-01-02T03:04:05+0000",
    "seed": 1,
    "weights": None,
    "data": {"kind": "digits", "classes": DOLLARS, "target": "class"},
}
MATRIX = [[5, 1, 0], [0, 6, 0], [1, 0, 7]]
METRICS = {
    "test_accuracy": 0.9,
    "test_loss": 0.3,
    "epochs_run": 2,
    "epochs_planned": 2,
    "class_names": DOLLARS,
    "confusion_matrix": MATRIX,
}
HISTORY = {"epoch": [1, 2], "loss": [1.2, 0.8], "accuracy": [0.4, 0.7], "val_loss": [1.3, 0.9]}


def make_run(
    folder: Path, *, model: bool = True, metrics: bool = True, resolved: bool = True, lock: dict | None = None
) -> Path:
    """A run folder as `cnnspec train` leaves it: finished (``metrics``), or killed before its
    end (no metrics.json, no model.keras); ``model``: with a stand-in model.keras."""
    folder.mkdir(parents=True)
    (folder / "spec.yaml").write_text(SPEC)
    if resolved:
        (folder / "resolved.yaml").write_text(SPEC)
    (folder / "lock.json").write_text(json.dumps(LOCK if lock is None else lock))
    (folder / "history.json").write_text(json.dumps(HISTORY))
    if metrics:
        (folder / "metrics.json").write_text(json.dumps(METRICS))
    if model:
        (folder / "model.keras").write_bytes(b"PK not loaded")
    return folder


def is_png(path: Path) -> bool:
    return path.is_file() and path.read_bytes().startswith(b"\x89PNG")


def assert_refused(result, *words: str) -> str:
    text = flat(result)
    assert result.exit_code == 2, result.output
    assert "internal error" not in text and "Traceback" not in text, text
    for word in words:
        assert word in text, (word, text)
    return text


# -- 1. a class name with dollars ----------------------------------------------------------------
def test_visualize_confusion_draws_class_names_with_dollars_literally(tmp_path):
    run = make_run(tmp_path / "run")
    for extra in ([], ["--normalize"]):
        result = invoke("visualize", run, "confusion", "-o", tmp_path / f"c{len(extra)}.png", *extra)
        assert result.exit_code == 0, result.output
        assert is_png(tmp_path / f"c{len(extra)}.png")


def test_the_figures_of_samples_and_feature_maps_draw_dollars_literally():
    import numpy as np

    from cnnspec.reporting.figures import feature_maps_png, sample_title, samples_png
    from cnnspec.training.plots import history_figure

    title = sample_title(0, 1, 0.9, DOLLARS)
    assert "\\$" in title and "$\\frac" not in title.replace("\\$", "")  # every dollar escaped
    images = [np.zeros((8, 8, 1))] * 3
    png = samples_png(images, [0, 1, 2], [1, 0, 2], [0.9, 0.8, 0.7], DOLLARS, title="r$un$")
    assert png.startswith(b"\x89PNG")
    caption = f"test image #0\n(class {DOLLARS[0]})"
    maps = np.ones((8, 8, 2))
    png = feature_maps_png(np.zeros((8, 8, 1)), maps, "c$o$nv", prefix="r$\\x$: ", caption=caption)
    assert png.startswith(b"\x89PNG")
    history_figure(HISTORY, "a$\\frac$b: learning curves").canvas.draw()  # (the title, once unparseable)


def test_evaluate_writes_no_evaluation_json_when_its_picture_cannot_be_drawn(tmp_path, monkeypatch):
    import cnnspec.training.plots as plots
    from cnnspec.reporting.evaluation import Evaluation, write_evaluation

    document = {
        "format": 1,
        "name": "tiny",
        "model": "run/model.keras",
        "run_dir": "run",
        "data": {"source": {"kind": "digits"}, "images": 21, "of_run": True},
        "accuracy": 0.857,
        "class_names": DOLLARS,
        "confusion_matrix": MATRIX,
    }
    evaluation = Evaluation(document, "", data=None)  # type: ignore[arg-type]
    files = write_evaluation(evaluation, tmp_path / "ok", "tiny")  # drawn: dollars and all
    assert is_png(files["confusion_matrix"]) and files["evaluation"].is_file()

    def broken(*args: object, **kwargs: object) -> bytes:
        raise ValueError("cannot draw")

    monkeypatch.setattr(plots, "confusion_png", broken)
    with pytest.raises(ValueError):
        write_evaluation(evaluation, tmp_path / "failed", "tiny")
    assert not (tmp_path / "failed" / "evaluation.json").exists()  # nothing half-written


# -- 2. evaluate -o: another run's folder, and files cnnspec did not write -----------------------
@pytest.fixture
def two_runs(tmp_path, monkeypatch) -> tuple[Path, Path]:
    monkeypatch.chdir(tmp_path)
    return make_run(tmp_path / "runs" / "a"), make_run(tmp_path / "runs" / "b")


def test_evaluate_out_refuses_another_runs_folder_and_a_folder_inside_it(two_runs):
    _, b = two_runs
    evaluation = b / "evaluation.json"
    evaluation.write_text('{"b": "own"}')
    for out in ("runs/b", "runs/b/evaluations/mine"):
        text = assert_refused(invoke("evaluate", "runs/a", "-o", out, "--force"), "another run's folder")
        assert out in text and "choose another --out" in text
    assert evaluation.read_text() == '{"b": "own"}' and not (b / "evaluations").exists()
    # the same for a picture visualize would write there (report.html inlines b's history.png)
    assert_refused(invoke("visualize", "runs/a", "history", "-o", "runs/b"), "another run's folder")
    assert not (b / "history.png").exists()


def test_evaluate_out_refuses_files_it_did_not_write_unless_forced(two_runs, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    for name, content in (("evaluation.json", b'{"my": "notes"}'), ("confusion_matrix.png", b"\x89PNG mine")):
        (mine / name).write_bytes(content)
        text = assert_refused(invoke("evaluate", "runs/a", "-o", mine), "carries no mark of cnnspec's")
        assert str(mine / name) in text and "--force" in text
        assert (mine / name).read_bytes() == content
        (mine / name).unlink()
    # cnnspec's own evaluation.json is replaced (refused only at the stand-in model, not by the check)
    own = '{\n  "format": 1,\n  "name": "tiny",\n  "model": "runs/a/model.keras",\n  "runtime": "keras"\n}\n'
    (mine / "evaluation.json").write_text(own)
    result = invoke("evaluate", "runs/a", "-o", mine)
    assert "carries no mark" not in flat(result) and "another run" not in flat(result)


def test_visualize_confusion_passes_over_an_evaluation_of_another_run_or_model(two_runs, monkeypatch):
    from cnnspec.reporting.run import locate
    from cnnspec.reporting.views import confusion_source

    _, b = two_runs
    other = {"format": 1, "name": "tiny", "class_names": DOLLARS, "confusion_matrix": [[1, 0, 0]] * 3}
    for run_dir, model in (("runs/a", "runs/a/model.keras"), (None, "model.keras")):
        (b / "evaluation.json").write_text(json.dumps({**other, "run_dir": run_dir, "model": model}))
        matrix, _, what = confusion_source(locate(b))
        assert (matrix, what) == (MATRIX, "training's test set")
    # its own evaluation (recorded from another working folder: runs/b does not lead there) is taken
    own = {**other, "run_dir": "elsewhere/b", "model": "m/model.keras"}
    (b / "evaluation.json").write_text(json.dumps(own))
    assert confusion_source(locate(b))[2] == "evaluation"
    # … and `evaluate .` run inside it, read from a working folder where `.` is another run
    (b / "evaluation.json").write_text(json.dumps({**own, "run_dir": "."}))
    monkeypatch.chdir(two_runs[0])
    assert confusion_source(locate(b.resolve()))[2] == "evaluation"
    # the model's hash, recorded since, decides: runs/b's own under any name (evaluated as
    # runs/b-20260102, or through a link), never runs/a's, whatever the path says
    from cnnspec.fileio import sha256_file

    mine, theirs = sha256_file(b / "model.keras"), "0" * 64
    cases = [("runs/b-20260102", mine, "evaluation"), ("latest", mine, "evaluation")]
    cases += [("runs/a", mine, "evaluation"), ("runs/b", theirs, "training's test set")]
    for recorded, digest, wanted in cases:
        (b / "evaluation.json").write_text(json.dumps({**own, "run_dir": recorded, "model_sha256": digest}))
        assert confusion_source(locate(b.resolve()))[2] == wanted, recorded


# -- 5. a finished run whose model.keras is gone ---------------------------------------------------
def test_a_finished_run_without_its_model_is_not_sent_to_resume(tmp_path):
    finished = make_run(tmp_path / "finished", model=False)
    text = assert_refused(invoke("evaluate", finished), f"model.keras is missing from {finished}", "finished")
    assert "--resume" not in text
    killed = make_run(tmp_path / "killed", model=False, metrics=False)
    assert_refused(invoke("evaluate", killed), "has no model.keras yet", f"--resume {killed}")


# -- 5b. a run still being trained: named and waited for, not sent to --resume ---------------------
@pytest.fixture
def trained_now(tmp_path):
    """An unfinished run whose lock another live process holds, as `cnnspec train` holds it
    (a child Python: a lock this process held would be its own), and that process's PID."""
    import subprocess
    import sys

    run = make_run(tmp_path / "lk", model=False, metrics=False)
    hold = (
        "import sys; from cnnspec.training.runlock import acquire; "
        "lock = acquire(sys.argv[1], ['cnnspec', 'train', 'spec.yaml', '--out', sys.argv[1]]); "
        "print('held', flush=True); sys.stdin.read()"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", hold, str(run)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout.readline() == "held\n"
        yield run, child
    finally:
        child.kill()
        child.wait()


def test_a_run_still_being_trained_is_waited_for_not_sent_to_resume(trained_now, tmp_path):
    """Every command that needs the run's model says which process is training it and to wait
    (`train --resume` of it is refused while that process holds it: "in use by process N")."""
    import numpy as np

    run, child = trained_now
    who = f"process {child.pid} (cnnspec train spec.yaml --out {run})"
    image = tmp_path / "x.npy"
    np.save(image, np.zeros((8, 8, 1)))
    for command in (
        ("evaluate", run),
        ("calibrate", run),
        ("predict", run, image),
        ("visualize", run, "samples"),
        ("export", run, "-f", "onnx", "-o", tmp_path / "m.onnx"),
        ("benchmark", run),
    ):
        expected = (
            f"error: expected a finished run; {run} is still being trained by {who}, and has no "
            "model.keras yet hint: wait for that process to end, then run this command again"
        )
        text = assert_refused(invoke(*command), expected)
        assert "--resume" not in text, command
    # a view drawn into another folder (the run is not locked by it): the same words
    text = assert_refused(invoke("visualize", run, "confusion", "-o", tmp_path / "c.png"), who)
    assert f"{run} has no model.keras yet: the run is still being trained by {who}, so it has none" in text
    assert "hint: wait for the training to end; " in text and "--resume" not in text
    result = invoke("visualize", run, "history", "-o", tmp_path / "h.png")
    assert result.exit_code == 0, result.output
    assert f"note: {run} has no model.keras yet: the run is still being trained by {who}; " in flat(result)
    rows = json.loads(invoke("runs", tmp_path, "-f", "json").stdout)
    assert [row["status"] for row in rows] == ["running"]  # the same reading of the lock
    # killed (SIGKILL: its lock file stays, naming a PID that is gone): sent to --resume again
    child.kill()
    child.wait()
    assert str(child.pid) in (run / ".cnnspec.lock").read_text()
    resume = f"expected a finished run; {run} has no model.keras yet hint: finish it with `cnnspec train"
    assert_refused(invoke("evaluate", run), resume, f"--resume {run}`")


# -- 6. views of the folder alone, of a run without its model --------------------------------------
def test_visualize_history_graph_and_confusion_of_a_run_without_its_model(tmp_path):
    killed = make_run(tmp_path / "killed", model=False, metrics=False)
    result = invoke("visualize", killed, "history")
    assert result.exit_code == 0, result.output
    assert is_png(killed / "history.png") and "has not finished" in flat(result)
    result = invoke("visualize", killed, "graph", "-o", tmp_path / "graph.dot")
    assert result.exit_code == 0, result.output
    assert "digraph" in (tmp_path / "graph.dot").read_text()
    assert_refused(invoke("visualize", killed, "confusion"), "has not finished", "--resume")
    assert_refused(invoke("visualize", killed, "samples"), "has no model.keras yet")
    finished = make_run(tmp_path / "finished", model=False)  # its matrix is in metrics.json
    result = invoke("visualize", finished, "confusion")
    assert result.exit_code == 0, result.output
    assert is_png(finished / "confusion_matrix.png") and "model.keras is missing" in flat(result)


# -- 7. a run without resolved.yaml ----------------------------------------------------------------
def test_a_run_without_resolved_yaml_is_named_from_lock_json_and_says_what_is_missing(tmp_path):
    from cnnspec.reporting.held_out import load_test_data
    from cnnspec.reporting.run import locate

    run = locate(make_run(tmp_path / "run", resolved=False, lock={**LOCK, "name": "from_lock"}))
    assert run.name == "from_lock"  # not "model", the model file's stem
    with pytest.raises(UsageError) as caught:
        load_test_data(run, model=None)
    assert "resolved.yaml" in str(caught.value) and "not in a run folder" not in str(caught.value)


def test_the_task_pictures_draw_dollars_literally(tmp_path):
    """A multi-label, regression or captioned picture with `$` in a label, value name, caption
    or title: drawn as written (a name with two dollars ended train and evaluate of such a task
    with an internal error, matplotlib reading it as a formula)."""
    import numpy as np

    from cnnspec.training.task_plots import captioned_png, plot_labels, plot_regression

    per_label = {name: {"precision": 0.5, "recall": 0.5, "f1": 0.5} for name in DOLLARS}
    assert is_png(plot_labels(per_label, tmp_path / "labels.png", title="r$un$"))
    truth = np.arange(6, dtype="float32").reshape(3, 2)
    assert is_png(plot_regression(truth, truth, tmp_path / "values.png", "r$un$", DOLLARS[:2]))
    png = captioned_png([np.zeros((8, 8, 1))], [f"{DOLLARS[0]}\n{DOLLARS[1]}"], [True], title="r$un$")
    assert png.startswith(b"\x89PNG")
