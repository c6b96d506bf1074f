"""The run folder (``cnnspec/training/rundir.py``) without TensorFlow: naming, the checks
before a new run and before ``--resume``, and what ``start`` writes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from cnnspec.analysis.settings import training_config
from cnnspec.api import compile_text
from cnnspec.errors import UsageError
from cnnspec.training import rundir
from tests.conftest import TINY_FLAT_HEAD, FakeDataset

SPEC = TINY_FLAT_HEAD + "training: {epochs: 2}\n"


def _start(tmp_path: Path, monkeypatch, text: str = SPEC) -> tuple[Path, dict]:
    monkeypatch.setattr(rundir, "machine", lambda: {"platform": "test", "cpu_count": 1, "gpus": []})
    spec = tmp_path / "tiny.yaml"
    spec.write_text(text)
    from cnnspec.api import compile_spec

    compiled = compile_spec(spec)
    run = tmp_path / "run"
    lock = rundir.start(
        run, compiled, training_config(compiled), 7, FakeDataset(), "float32", ["training.epochs=2"], ["x"]
    )
    return run, lock


def test_the_spec_files_a_run_killed_before_its_lock_left_are_reused_only_when_they_are_this_runs(
    tmp_path, monkeypatch
):
    """A run SIGKILLed between resolved.yaml and lock.json left a folder that could be neither
    resumed nor started again. Files byte for byte what this run writes are its own: reused;
    another spec's (or a user's own spec.yaml) still refuse, with a hint saying what they are."""
    from cnnspec.api import compile_spec

    killed, _ = _start(tmp_path, monkeypatch)
    (killed / "lock.json").unlink()  # as a kill before it left the folder
    compiled = compile_spec(tmp_path / "tiny.yaml")
    assert rundir.check_new(killed, compiled) is True
    assert sorted(p.name for p in killed.iterdir()) == ["resolved.yaml", "spec.yaml"]  # (nothing removed)
    (killed / "resolved.yaml").unlink()  # killed between the two: spec.yaml alone
    assert rundir.check_new(killed, compiled) is True
    assert rundir.check_new(tmp_path / "new", compiled) is False
    (killed / "spec.yaml").write_text(SPEC.replace("epochs: 2", "epochs: 3"))  # another spec's
    with pytest.raises(UsageError, match="already has files") as info:
        rundir.check_new(killed, compiled)
    assert "killed before it started" in (info.value.hint or "")
    with pytest.raises(UsageError, match="already has files"):
        rundir.check_new(killed)  # (without the spec to compare: as before)
    (killed / "spec.yaml").write_text(SPEC)  # this spec's again
    (killed / "notes.txt").write_text("mine")  # a file of the user's beside them
    with pytest.raises(UsageError, match="already has files") as info:
        rundir.check_new(killed, compiled)
    assert "killed" not in (info.value.hint or "")


def test_default_run_dir_is_named_after_the_spec_and_never_reused(tmp_path):
    first = rundir.default_run_dir("tiny", tmp_path)
    assert first.parent == tmp_path and first.name.startswith("tiny-")
    first.mkdir()
    second = rundir.default_run_dir("tiny", tmp_path)
    assert second != first and second.name.startswith(first.name)


def test_claimed_default_run_dirs_are_created_and_never_shared(tmp_path):
    first = rundir.claim_default_run_dir("tiny", tmp_path / "runs")
    second = rundir.claim_default_run_dir("tiny", tmp_path / "runs")
    assert first.is_dir() and second.is_dir() and first != second


def test_a_new_run_needs_an_empty_or_missing_folder(tmp_path):
    rundir.check_new(tmp_path / "missing")
    rundir.check_new(tmp_path)  # empty
    (tmp_path / ".cnnspec.lock").write_text("{}")
    rundir.check_new(tmp_path)  # the lock file the new run itself holds
    (tmp_path / ".lock.json.k2j4h1x0.json").write_text("{half")
    rundir.check_new(tmp_path)  # a killed run's temp file: the new run removes it
    (tmp_path / ".hidden").write_text("mine")
    with pytest.raises(UsageError, match="already has files"):
        rundir.check_new(tmp_path)
    (tmp_path / ".hidden").unlink()
    (tmp_path / ".lock.json.k2j4h1x0.json").unlink()
    (tmp_path / "lock.json").write_text("{}")
    with pytest.raises(UsageError) as info:
        rundir.check_new(tmp_path)
    assert "--resume" in (info.value.hint or "")
    (tmp_path / "metrics.json").write_text("{}")
    with pytest.raises(UsageError) as info:
        rundir.check_new(tmp_path)
    assert "finished" in (info.value.hint or "")


def test_a_run_folder_that_saved_no_epoch_is_not_only_offered_to_resume(tmp_path):
    """A run stopped before its first snapshot in a folder it did not make (its bad files, once
    removed, change the data's hash, which --resume refuses): the hint offered --resume alone,
    a command that led nowhere. It says that nothing of the run is lost by removing its files."""
    for name in ("lock.json", "spec.yaml", "resolved.yaml"):
        (tmp_path / name).write_text("{}")
    with pytest.raises(UsageError) as info:
        rundir.check_new(tmp_path)
    hint = info.value.hint or ""
    assert (
        "stopped before it saved an epoch" in hint and f"--resume {tmp_path} on the data it started" in hint
    )
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "epoch-0001.json").write_text("{}")
    with pytest.raises(UsageError) as info:
        rundir.check_new(tmp_path)
    assert info.value.hint == f"choose another --out, or continue it with --resume {tmp_path}"


@pytest.mark.parametrize(
    ("content", "expected"),
    [(None, "does not exist"), ("{oops", "readable lock.json"), ('{"seed": 1}', "missing spec_hash")],
)
def test_read_lock_refuses_what_is_not_a_run_folder(tmp_path, content, expected):
    folder = tmp_path / "run"
    if content is not None:
        folder.mkdir()
        (folder / "lock.json").write_text(content)
    with pytest.raises(UsageError, match=expected):
        rundir.read_lock(folder)


def test_start_writes_the_spec_the_resolved_spec_and_the_lock(tmp_path, monkeypatch):
    run, lock = _start(tmp_path, monkeypatch)
    assert (run / "spec.yaml").read_text() == SPEC
    resolved = yaml.safe_load((run / "resolved.yaml").read_text())
    assert resolved["name"] == "tiny" and resolved["training"] == {"epochs": 2}
    on_disk = json.loads((run / "lock.json").read_text())
    assert on_disk == lock
    assert lock["seed"] == 7 and lock["overrides"] == ["training.epochs=2"] and lock["command"] == ["x"]
    assert lock["data"] == {
        "kind": "npz",
        "path": "d.npz",
        "content_hash": "abc123",
        "sizes": {"train": 4, "validation": 0, "test": 2},
        "sample_shape": [8, 8, 1],
        "dtype": "uint8",
        "classes": ["a", "b", "c"],
        "target": "class",  # what y holds (issue 18: class | multilabel | regression | mask)
    }
    assert lock["versions"]["python"] and lock["machine"]["platform"] == "test"


def test_resume_accepts_the_same_spec(tmp_path, monkeypatch):
    run, lock = _start(tmp_path, monkeypatch)
    compiled = compile_text(SPEC, "tiny.yaml")
    assert rundir.check_resumable(run, compiled, lock["spec_hash"]) == lock


def test_resume_with_a_changed_spec_names_what_changed(tmp_path, monkeypatch):
    run, _ = _start(tmp_path, monkeypatch)
    changed = compile_text(SPEC.replace("epochs: 2", "epochs: 5").replace("units: 3", "units: 4"), "t.yaml")
    with pytest.raises(UsageError) as info:
        rundir.check_resumable(run, changed, changed.spec_hash())
    assert "(changed: model[1].dense.units, training.epochs)" in str(info.value)


def test_resume_of_a_family_variant_names_only_what_changed(tmp_path, monkeypatch):
    # resolved.yaml keeps the variants table reduced to the variant: it was compared with the
    # whole table and said "changed: variants.large.vars, variants.small, training.epochs"
    family = SPEC.replace("cnnspec: 1\n", "cnnspec: 1\nvariants:\n  small: {}\n  large: {}\n", 1)
    run, _ = _start(tmp_path, monkeypatch, family)
    from cnnspec.api import compile_spec

    (tmp_path / "tiny.yaml").write_text(family.replace("epochs: 2", "epochs: 5"))
    changed = compile_spec(tmp_path / "tiny.yaml")
    with pytest.raises(UsageError) as info:
        rundir.check_resumable(run, changed, changed.spec_hash())
    assert "(changed: training.epochs)" in str(info.value)


def test_a_finished_run_cannot_be_resumed(tmp_path, monkeypatch):
    run, lock = _start(tmp_path, monkeypatch)
    (run / "metrics.json").write_text("{}")
    # its results saved, its end not reached (no report.html): passed on, for train to finish it
    compiled = compile_text(SPEC, "tiny.yaml")
    assert rundir.left_undone(run) == ["report.html"]
    assert rundir.check_resumable(run, compiled, lock["spec_hash"]) == lock
    (run / "report.html").write_text("<html></html>")
    assert rundir.left_undone(run) == []
    with pytest.raises(UsageError, match="has finished") as info:
        rundir.check_resumable(run, compiled, lock["spec_hash"])
    assert f"`cnnspec report {run}` writes its report.html again" in str(info.value.hint)


@pytest.mark.parametrize("what", ["a file", "a link that leads nowhere"])
def test_a_file_where_the_state_folder_belongs_is_refused_before_training(tmp_path, monkeypatch, what):
    """It trained an epoch, then failed to write its snapshot with "File exists … check the disk"."""
    run, lock = _start(tmp_path, monkeypatch)
    if what == "a file":
        (run / "state").write_text("x")
    else:
        (run / "state").symlink_to(tmp_path / "gone")
    with pytest.raises(
        UsageError, match=f"expected .*state to be the run's training-state folder; it is {what}"
    ):
        rundir.check_resumable(run, compile_text(SPEC, "tiny.yaml"), lock["spec_hash"])


def test_resolved_yaml_shows_the_values_per_kind_defaults_give(tmp_path, monkeypatch):
    defaults = "defaults: {dropout: {rate: 0.25}}\nmodel:\n  - dropout\n  - flatten"
    text = SPEC.replace("model:\n  - flatten", defaults)
    run, _ = _start(tmp_path, monkeypatch, text)
    resolved = yaml.safe_load((run / "resolved.yaml").read_text())
    assert resolved["model"][0] == {"dropout": {"rate": 0.25}}
    assert resolved["defaults"] == {"dropout": {"rate": 0.25}}


def test_a_stop_before_the_lock_is_written_leaves_the_folder_new(tmp_path, monkeypatch):
    """Ctrl-C (or a scheduler's SIGTERM) while `start` gathered lock.json's contents left
    spec.yaml and resolved.yaml without lock.json: the folder could neither be resumed ("no
    readable lock.json") nor used for a new run ("already has files")."""

    def stopped():
        raise KeyboardInterrupt

    run = tmp_path / "run"
    monkeypatch.setattr(rundir, "machine", stopped)
    compiled = compile_text(SPEC, "tiny.yaml")
    with pytest.raises(KeyboardInterrupt):
        rundir.start(run, compiled, training_config(compiled), 7, FakeDataset(), "float32", [], ["x"])
    assert list(run.iterdir()) == []
    rundir.check_new(run)  # a new run may start there


@pytest.mark.parametrize("name", ["spec.yaml", "resolved.yaml"])
def test_a_stop_just_after_a_spec_file_is_renamed_into_place_leaves_the_folder_new(
    tmp_path, monkeypatch, name
):
    """Ctrl-C (or SIGTERM) in the last steps of a write, once its file was renamed into place
    (the folder's sync): the KeyboardInterrupt came out of the write instead of its return, so
    `start` never recorded the file and left it; the same --out with an edited spec was then
    refused ("already has files")."""
    from cnnspec import fileio

    run = tmp_path / "run"
    real_sync = fileio.sync_folder

    def stopped_after_rename(folder):
        real_sync(folder)
        if (run / name).is_file() and not stopped:
            stopped.append(name)
            raise KeyboardInterrupt

    stopped: list[str] = []
    monkeypatch.setattr(fileio, "sync_folder", stopped_after_rename)
    monkeypatch.setattr(rundir, "machine", lambda: {"platform": "test", "cpu_count": 1, "gpus": []})
    compiled = compile_text(SPEC, "tiny.yaml")
    with pytest.raises(KeyboardInterrupt):
        rundir.start(run, compiled, training_config(compiled), 7, FakeDataset(), "float32", [], ["x"])
    assert stopped == [name] and list(run.iterdir()) == []
    edited = compile_text(SPEC.replace("epochs: 2", "epochs: 3"), "tiny.yaml")
    assert rundir.check_new(run, edited) is False  # a new run of another spec may start there


def test_a_lost_run_folder_keeps_the_files_at_its_path(tmp_path, monkeypatch):
    """The folder moved (or its lock file was removed) while `start` wrote it: the files at its
    path may be another process's run now, and are left alone."""
    from cnnspec.training import runlock

    run = tmp_path / "run"
    run.mkdir()
    with runlock.acquire(run, ["cnnspec", "train"]):
        theirs = run / "spec.yaml"

        def lost():
            (run / runlock.LOCK_NAME).unlink()  # another `train --out run` locks it and writes
            (run / runlock.LOCK_NAME).write_text("{}")
            theirs.write_text("the other run's spec")
            return {"platform": "test"}

        monkeypatch.setattr(rundir, "machine", lost)
        compiled = compile_text(SPEC, "tiny.yaml")
        with pytest.raises(runlock.RunFolderLost):
            rundir.start(run, compiled, training_config(compiled), 7, FakeDataset(), "float32", [], ["x"])
    assert theirs.read_text() == "the other run's spec"


@pytest.mark.parametrize(
    ("training", "loss"),
    [
        ("training: {epochs: 2}\n", "sparse_categorical_crossentropy"),
        # precision/recall/AUC make the labels one-hot, and the loss the categorical one with them
        ("training: {epochs: 2, metrics: [accuracy, precision, recall, auc]}\n", "categorical_crossentropy"),
        (
            "training: {epochs: 2, loss: {categorical_crossentropy: {label_smoothing: 0.2}}}\n",
            {"categorical_crossentropy": {"label_smoothing": 0.2}},
        ),
        (
            "training: {epochs: 2, metrics: [precision], loss: {sparse_categorical_crossentropy: "
            "{from_logits: true}}}\n",
            {"categorical_crossentropy": {"from_logits": True}},
        ),
        (
            "training: {epochs: 2, loss: {categorical_focal_crossentropy: {gamma: 3}}}\n",
            {"categorical_focal_crossentropy": {"gamma": 3.0}},
        ),
    ],
)
def test_the_lock_records_the_loss_compiled_with_its_settings(tmp_path, monkeypatch, training, loss):
    """lock.json's ``tasks[].loss`` is the loss training compiled, as a spec writes it: it named
    the spec's sparse crossentropy where one-hot labels made it the categorical one, and left
    out its settings (label smoothing, from_logits as the Keras loss is built, gamma …)."""
    _, lock = _start(tmp_path, monkeypatch, TINY_FLAT_HEAD + training)
    assert [task["loss"] for task in lock["tasks"]] == [loss]
    written = json.loads((tmp_path / "run" / "lock.json").read_text(encoding="utf-8"))
    assert written["tasks"][0]["loss"] == loss


def test_a_page_written_before_the_results_is_not_the_finished_runs_page(tmp_path, monkeypatch):
    """`cnnspec report` of a run before it finished wrote a report.html ("metrics.json is
    missing"); a --resume that completed the run then took "report.html exists" for the finished
    run's page and kept that one. The page records the results it shows (its metrics.json's
    SHA-256, or none): only that of the metrics.json there now counts."""
    import os

    run, lock = _start(tmp_path, monkeypatch)
    page = run / "report.html"
    page.write_text('<html><head>\n<meta name="cnnspec-results" content="none">\n</head></html>')
    (run / "metrics.json").write_text('{"test_accuracy": 0.5}')
    assert rundir.results_mark(run).startswith("metrics.json sha256 ")
    assert rundir.left_undone(run) == ["report.html"]
    compiled = compile_text(SPEC, "tiny.yaml")
    assert rundir.check_resumable(run, compiled, lock["spec_hash"]) == lock  # (resume writes it)
    page.write_text(f'<html><head>\n<meta name="cnnspec-results" content="{rundir.results_mark(run)}">\n')
    assert rundir.left_undone(run) == []
    (run / "metrics.json").write_text('{"test_accuracy": 0.75}')  # other results than the page's
    assert rundir.left_undone(run) == ["report.html"]
    # a page of an older cnnspec (no mark): it counts when it is not older than metrics.json
    page.write_text("<html><head></head></html>")
    results = (run / "metrics.json").stat().st_mtime
    os.utime(page, (results - 60, results - 60))
    assert rundir.left_undone(run) == ["report.html"]
    os.utime(page, (results + 1, results + 1))
    assert rundir.left_undone(run) == []


def test_the_report_command_marks_its_page_with_the_results_it_shows(tmp_path, monkeypatch, runner):
    """The page `cnnspec report` writes of an unfinished run says so in its head; the one written
    once metrics.json is there is that run's finished page (no model: no TensorFlow)."""
    from cnnspec.cli.app import app

    run, _ = _start(tmp_path, monkeypatch)
    result = runner.invoke(app, ["report", str(run)])
    assert result.exit_code == 0, result.output
    head = (run / "report.html").read_text()[:4096]
    assert '<meta name="cnnspec-results" content="none">' in head
    (run / "metrics.json").write_text('{"test_accuracy": 0.5, "epochs_run": 2, "epochs_planned": 2}')
    assert rundir.left_undone(run) == ["report.html"]
    result = runner.invoke(app, ["report", str(run)])
    assert result.exit_code == 0, result.output
    head = (run / "report.html").read_text()[:4096]
    assert f'<meta name="cnnspec-results" content="{rundir.results_mark(run)}">' in head
    assert rundir.left_undone(run) == []


def test_lock_json_records_the_sha256_of_the_resolved_yaml_it_was_written_with(tmp_path, monkeypatch):
    """spec_hash is that of the composed spec, not of resolved.yaml's text: a resolved.yaml cut
    since could not be told from the file training wrote (reporting/runs.py checks this hash)."""
    import hashlib

    from cnnspec.reporting.runs import resolved_changed

    run, lock = _start(tmp_path, monkeypatch)
    written = (run / "resolved.yaml").read_bytes()
    assert lock["resolved_sha256"] == hashlib.sha256(written).hexdigest() != lock["spec_hash"]
    assert json.loads((run / "lock.json").read_text())["resolved_sha256"] == lock["resolved_sha256"]
    assert resolved_changed(run, lock) is None
    (run / "resolved.yaml").write_bytes(written[:200])
    assert resolved_changed(run, lock) == (
        "expected the file training wrote (lock.json's resolved_sha256); its SHA-256 differs: "
        "it was changed or cut since"
    )
