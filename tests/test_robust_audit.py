"""Robustness audit: a full disk under the search journal, a run folder moved, deleted or
unlocked mid-run, and a report of a read-only run written elsewhere.

1. A full disk under the study journal (Optuna's own append fails) is the search's
   ``cannot write JOURNAL`` (exit 1, the hint to free space and run again), never "internal
   error"; the rerun records the trial that had finished training from its run folder instead
   of training it again.
2. and 3. A run folder moved or deleted mid-run (its parent too), or whose ``.cnnspec.lock`` was
   removed: the holder's next write stops with :class:`RunFolderLost` (exit 1) and never
   re-creates the folder at its old path nor writes beside a new holder.
4. ``report RUN -o ELSEWHERE`` of a run folder whose lock file can't be created (a read-only
   disk) writes the page elsewhere, as for a busy folder.

All but one test are TF-free (a stand-in training, runlock and fileio alone); the slow one moves
a real training's folder.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cnnspec.errors import WriteError
from cnnspec.fileio import atomic_path, write_atomic
from cnnspec.training import runlock
from cnnspec.training.runlock import LOCK_NAME, acquire
from tests.conftest import start_python
from tests.test_damaged_runs import make_run
from tests.test_report_support import flat, invoke
from tests.test_search_fixes import SPEC, search

# -- 1. a full disk under the search journal --------------------------------------------------


@pytest.fixture
def finishing_train(monkeypatch: pytest.MonkeyPatch) -> Any:
    """``train`` of a trial without TensorFlow that leaves a finished run folder (metrics.json,
    history.json, model.keras: what :func:`cnnspec.search.worker.finished_run` reads); counts
    its calls in ``.calls``."""
    pytest.importorskip("optuna")
    from cnnspec.search import worker
    from cnnspec.training import trainer

    class Pruning:
        pruned_at = None

    class State:
        calls = 0

    state = State()

    def train(compiled: Any, *, out: Path, **_: Any) -> Any:
        state.calls += 1
        history = [{"epoch": 1.0, "loss": 0.9, "val_accuracy": 0.75}]
        metrics = {"test_accuracy": 0.5, "epochs_run": 1}
        (out / "metrics.json").write_text(json.dumps(metrics))
        (out / "history.json").write_text(json.dumps({k: [row[k] for row in history] for k in history[0]}))
        (out / "model.keras").write_bytes(b"stand-in")
        return trainer.TrainResult(out, metrics, history, {})

    monkeypatch.setattr(trainer, "train", train)
    monkeypatch.setattr(worker, "_quiet_tensorflow", lambda: None)
    monkeypatch.setattr(worker, "pruning_callback", lambda trial, metric: Pruning())
    return state


class FullJournal:
    """The disk under the journal fills up once ``armed``: Optuna's append writes part of its
    line (what a full disk takes) and fails with ENOSPC, as ``write`` does on a real one."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from optuna.storages.journal import JournalFileBackend

        self.armed = False
        self.failed = 0
        real = JournalFileBackend.append_logs
        full = self

        def append_logs(backend: Any, logs: list[dict[str, Any]]) -> None:
            if not full.armed:
                return real(backend, logs)
            full.failed += 1
            with open(backend._file_path, "ab") as handle:
                handle.write(json.dumps(logs[0]).encode()[:7])  # a torn line: no newline
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        monkeypatch.setattr(JournalFileBackend, "append_logs", append_logs)


def test_a_full_disk_under_the_journal_is_a_write_error_and_the_rerun_records_the_trained_trial(
    runner: Any, write_spec: Any, tmp_path: Path, finishing_train: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    full = FullJournal(monkeypatch)

    def arm_after(compiled: Any, **kwargs: Any) -> Any:  # the disk fills up while it trains
        result = trained(compiled, **kwargs)
        full.armed = True
        return result

    from cnnspec.training import trainer

    trained = trainer.train
    monkeypatch.setattr(trainer, "train", arm_after)
    out = tmp_path / "out"
    spec = write_spec(SPEC)
    first = search(runner, spec, out, "-n", "1")
    text = flat(first)
    assert first.exit_code == 1, first.output
    assert f"cannot write {out / 'study.journal'}: No space left on device" in text
    assert "free some space there, then run the same command again" in text
    assert "internal error" not in text and "Traceback" not in text
    assert full.failed >= 1 and finishing_train.calls == 1
    assert json.loads((out / "trial-000" / "trial.json").read_text())["state"] == "COMPLETE"

    full.armed = False  # space freed: the same command again records trial 0, trains nothing
    from cnnspec.search import worker

    # (that search's process has ended)
    monkeypatch.setattr(worker, "_alive", lambda pid, identity=None: False)
    again = search(runner, spec, out, "-n", "1")
    assert again.exit_code == 0, again.output
    assert "half written" in flat(again)  # (the torn line was cut first)
    assert finishing_train.calls == 1, "the trial that had trained was trained again"
    assert not (out / "trial-001").exists()
    summary = json.loads((out / "search.json").read_text())
    (row,) = summary["trials"]
    assert row["number"] == 0 and row["state"] == "COMPLETE" and row["value"] == pytest.approx(0.75)


def test_a_trial_the_journals_full_disk_stopped_is_failed_for_it_not_as_a_dead_workers(
    runner: Any, write_spec: Any, tmp_path: Path, finishing_train: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It was reported `fail: worker died`, and the repair note blamed "a killed process"."""
    from cnnspec.search import worker
    from cnnspec.training import trainer

    full = FullJournal(monkeypatch)
    trained = trainer.train

    def fill_while_training(compiled: Any, **kwargs: Any) -> Any:  # its pruning report fails
        if full.failed:  # (the disk filled once: the retry trains)
            return trained(compiled, **kwargs)
        full.armed, full.failed = True, 1
        with open(kwargs["out"].parent / "study.journal", "ab") as handle:  # its report, torn
            handle.write(b'{"op_co')
        raise worker.StudyWriteFailed(OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)))

    monkeypatch.setattr(trainer, "train", fill_while_training)
    out, spec = tmp_path / "out", write_spec(SPEC)
    first = search(runner, spec, out, "-n", "1")
    assert first.exit_code == 1, first.output
    assert f"cannot write {out / 'study.journal'}: No space left on device" in flat(first)

    full.armed = False
    monkeypatch.setattr(worker, "_alive", lambda pid, identity=None: False)  # (that search has ended)
    again = search(runner, spec, out, "-n", "1")
    text = flat(again)
    assert again.exit_code == 0, again.output
    assert f"the last line of {out}/study.journal was half written (a process killed or a disk full)" in text
    assert "note: trial(s) 0 of a worker stopped by its journal's disk were failed and enqueued again" in text
    summary = json.loads((out / "search.json").read_text())
    assert [row["state"] for row in summary["trials"]] == ["FAIL", "COMPLETE"]
    assert summary["trials"][0]["failed"].startswith(
        f"disk fault: cannot write {out / 'study.journal'}: No space left on device"
    )
    assert "worker died" not in json.dumps(summary)


def test_a_storage_fault_names_the_journal_and_other_errors_pass() -> None:
    pytest.importorskip("optuna")
    from cnnspec.search.worker import WorkerConfig, storage_writes

    cfg = WorkerConfig(spec=Path("s.yaml"), out=Path("o"), study_name="s", trials=1)
    with pytest.raises(WriteError) as caught, storage_writes(cfg):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    assert str(caught.value).startswith(f"cannot write {Path('o') / 'study.journal'}: No space left")
    assert caught.value.hint and "run the same command again" in caught.value.hint
    with pytest.raises(ValueError, match="not a disk"), storage_writes(cfg):
        raise ValueError("not a disk fault")


# -- 2. and 3. the run folder moved, deleted or unlocked while its holder writes ---------------


def test_a_moved_run_folder_is_never_recreated_and_its_holder_stops(tmp_path: Path) -> None:
    run = tmp_path / "runs" / "x"
    run.mkdir(parents=True)
    held = acquire(run, ["cnnspec", "train"])
    try:
        write_atomic(run / "history.json", "{}")  # while it is there: as before
        with atomic_path(run / "checkpoints" / "last.keras") as temp:  # (its sub-folders still made)
            temp.write_bytes(b"x")
        (tmp_path / "runs").rename(tmp_path / "moved")  # the parent is moved mid-run
        for target in (run / "history.json", run / "state" / "epoch-0002.json"):
            with pytest.raises(WriteError) as caught:
                write_atomic(target, "{}")
            assert not run.exists() and not (tmp_path / "runs").exists(), "the run folder came back"
            message = str(caught.value)
            assert f"cannot write {target}: the run folder {run} was moved or deleted" in message
            assert caught.value.hint and "--resume NEWPATH" in caught.value.hint
    finally:
        held.release()
    moved = tmp_path / "moved" / "x"
    assert (moved / "history.json").read_text() == "{}" and (moved / "checkpoints" / "last.keras").is_file()
    write_atomic(run / "history.json", "{}")  # released: an ordinary write again, as before
    assert run.is_dir()


def test_a_deleted_run_folder_is_never_recreated(tmp_path: Path) -> None:
    import shutil

    run = tmp_path / "x"
    run.mkdir()
    with acquire(run, ["cnnspec", "train"]):
        shutil.rmtree(run)
        with pytest.raises(WriteError, match="was moved or deleted"):
            write_atomic(run / "model.keras", b"m")
        assert not run.exists()


def test_a_removed_lock_file_stops_the_holder_before_it_writes_beside_the_new_holder(tmp_path: Path) -> None:
    run = tmp_path / "r2"
    run.mkdir()
    with acquire(run, ["cnnspec", "train"]) as held:
        write_atomic(run / "history.json", "first")
        (run / LOCK_NAME).unlink()  # the user deletes the lock; a second `--resume` locks a new one
        second = subprocess.run(
            [
                sys.executable,
                "-c",
                f"from cnnspec.training.runlock import acquire; acquire({str(run)!r}); print('ok')",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.stdout.strip() == "ok", second.stderr  # (the flock sat on the unlinked file)
        (run / LOCK_NAME).write_text('{"pid": 1}')  # the second holder's lock file, still there
        with pytest.raises(WriteError, match=r"lock file \.cnnspec\.lock removed"):
            write_atomic(run / "history.json", "second")
        with pytest.raises(WriteError, match="was moved or deleted"):
            held.check()
    assert (run / "history.json").read_text() == "first"
    assert (run / LOCK_NAME).read_text() == '{"pid": 1}', "the holder removed the other's lock file"


def test_a_lost_folder_keeps_the_files_at_its_path_when_a_snapshot_stops(tmp_path: Path) -> None:
    """A snapshot that stops on a lost folder does not remove the files at its path (they may
    be the new holder's snapshot of the same epoch)."""
    from cnnspec.training.state import TrainingState

    run = tmp_path / "run"
    (run / "state").mkdir(parents=True)
    with acquire(run, ["cnnspec", "train"]):
        (run / LOCK_NAME).unlink()
        (run / LOCK_NAME).write_text("{}")
        theirs = run / "state" / "epoch-0001.weights.h5"
        theirs.write_bytes(b"the other run's")

        class Model:  # no Keras model: written through save_weights
            def save_weights(self, path: str) -> None:
                Path(path).write_bytes(b"mine")

        with pytest.raises(WriteError, match="was moved or deleted"):
            TrainingState(run).save(Model(), 1, [], {})
        assert theirs.read_bytes() == b"the other run's"


@pytest.mark.parametrize("in_memory", [True, False], ids=["weights-image", "save-weights"])
def test_a_folder_moved_just_after_a_snapshot_file_is_written_stops_as_a_move(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, in_memory: bool
) -> None:
    """Moved between a snapshot file's commit and the next write, the folder is said as moved
    (RunFolderLost): the file's hash is of the bytes written, never read back from its path
    (that read was a FileNotFoundError, an internal error, in CI)."""
    from cnnspec.training import state

    run, moved = tmp_path / "run", tmp_path / "moved"
    (run / "state").mkdir(parents=True)
    real_write, real_path = state.write_atomic, state.atomic_path

    def write_then_move(target: Path, data: Any) -> None:
        real_write(target, data)
        if run.exists():
            run.rename(moved)

    @contextlib.contextmanager
    def path_then_move(*args: Any, **kwargs: Any) -> Any:
        with real_path(*args, **kwargs) as temp:
            yield temp
        run.rename(moved)

    monkeypatch.setattr(state, "write_atomic", write_then_move)
    monkeypatch.setattr(state, "atomic_path", path_then_move)
    monkeypatch.setattr(state, "weights_image", lambda model: b"image" if in_memory else None)

    class Model:
        def save_weights(self, path: str) -> None:
            Path(path).write_bytes(b"saved")

    with acquire(run, ["cnnspec", "train"]), pytest.raises(runlock.RunFolderLost):
        state.TrainingState(run).save(Model(), 1, [], {}, {"early_stopping": [np.zeros(2)]})
    assert not run.exists()
    written = (moved / "state" / "epoch-0001.weights.h5").read_bytes()
    assert written == (b"image" if in_memory else b"saved")
    assert not (moved / "state" / "epoch-0001.json").exists()  # no manifest: the snapshot is not whole


def test_writes_into_a_held_folder_that_stays_are_unchanged(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    with acquire(run, ["cnnspec", "train"]):
        write_atomic(run / "a" / "b" / "c.txt", "deep")
        write_atomic(tmp_path / "elsewhere" / "d.txt", "not owned")  # outside: created as before
    assert (run / "a" / "b" / "c.txt").read_text() == "deep"
    assert (tmp_path / "elsewhere" / "d.txt").read_text() == "not owned"


@pytest.mark.slow
def test_a_training_whose_folder_is_moved_mid_run_stops_with_exit_1_and_leaves_no_empty_folder(
    tmp_path: Path, write_spec: Any
) -> None:
    spec = write_spec(
        "cnnspec: 1\nname: moved\ninput: {shape: [8, 8, 1]}\nmodel:\n"
        "  - conv2d: {filters: 4, kernel_size: 3, activation: relu}\n  - flatten\n"
        "  - dense: {units: 10, activation: softmax}\n"
        "data: {source: digits, limit: 256}\ntraining: {epochs: 400, batch_size: 32, seed: 1}\n"
    )
    run = tmp_path / "p" / "runs" / "x"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "COLUMNS": "400"}
    process = start_python(
        *[str(Path(sys.executable).with_name("cnnspec")), "train", str(spec), "--quiet", "--out", str(run)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
    )
    try:
        deadline = time.monotonic() + 240
        while not list((run / "state").glob("*.json")):
            assert process.poll() is None and time.monotonic() < deadline, process.communicate()[0]
            time.sleep(0.1)
        (tmp_path / "p" / "runs").rename(tmp_path / "p" / "moved")
        output, _ = process.communicate(timeout=240)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    text = " ".join(output.split())
    assert process.returncode == 1, output
    assert f"the run folder {run} was moved or deleted" in text
    assert "--resume NEWPATH" in text and "Traceback" not in text and "internal error" not in text
    assert not run.exists() and not (tmp_path / "p" / "runs").exists()
    moved = tmp_path / "p" / "moved" / "x"
    assert (moved / "lock.json").is_file() and list((moved / "state").glob("*.json"))
    assert not (moved / "metrics.json").exists()


@pytest.mark.slow
def test_a_file_gone_with_a_moved_folder_mid_training_is_said_as_the_move(
    tmp_path: Path, write_spec: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Any OSError out of the training (Keras reading back a file of its own) while the run
    folder is gone is the move's error with its resume command, not an internal error."""
    from cnnspec.training import trainer

    spec = write_spec(
        "cnnspec: 1\nname: gone\ninput: {shape: [8, 8, 1]}\nmodel:\n  - flatten\n"
        "  - dense: {units: 10, activation: softmax}\ndata: {source: digits, limit: 64}\n"
        "training: {epochs: 1, batch_size: 32}\n"
    )
    run = tmp_path / "runs" / "x"

    def moved_then_read(*args: Any, **kwargs: Any) -> Any:
        (tmp_path / "runs").rename(tmp_path / "moved")
        return (run / "state" / "epoch-0001.weights.h5").read_bytes()  # FileNotFoundError

    monkeypatch.setattr(trainer, "_run", moved_then_read)
    result = invoke("train", str(spec), "--quiet", "--out", str(run))
    text = flat(result)
    assert result.exit_code == 1, text
    assert f"the run folder {run} was moved or deleted" in text and "--resume NEWPATH" in text
    assert "internal error" not in text and not run.exists()


@pytest.mark.slow
def test_train_starts_in_a_folder_a_run_of_the_same_spec_left_when_killed_before_it_started(
    tmp_path: Path, write_spec: Any
) -> None:
    from cnnspec.api import compile_spec
    from cnnspec.training import rundir

    spec = write_spec(
        "cnnspec: 1\nname: again\ninput: {shape: [8, 8, 1]}\nmodel:\n  - flatten\n"
        "  - dense: {units: 10, activation: softmax}\ndata: {source: digits, limit: 64}\n"
        "training: {epochs: 1, batch_size: 32}\n"
    )
    run = tmp_path / "run"
    run.mkdir()
    for name, text in rundir.spec_files(compile_spec(spec)).items():  # what a SIGKILL left
        (run / name).write_text(text, encoding="utf-8")
    result = invoke("train", str(spec), "--quiet", "--out", str(run))
    text = flat(result)
    assert result.exit_code == 0, text
    assert "held the spec.yaml and resolved.yaml of this spec from a run killed before it started" in text
    assert (run / "lock.json").is_file() and (run / "metrics.json").is_file()


# -- 4. a read-only run folder reported elsewhere ----------------------------------------------


def test_a_read_only_run_folder_is_reported_elsewhere_like_a_busy_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = make_run(tmp_path / "ro" / "r1", model=False)
    before = sorted(p.name for p in run.iterdir())
    real_open = runlock.os.open

    def read_only(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:  # root ignores chmod
        if Path(path).name == LOCK_NAME and flags & os.O_CREAT:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(runlock.os, "open", read_only)
    page = tmp_path / "out_ro.html"
    result = invoke("report", run, "-o", page)
    assert result.exit_code == 0, result.output
    assert page.is_file() and "wrote" in flat(result)
    assert sorted(p.name for p in run.iterdir()) == before  # nothing drawn into the run folder
    into = invoke("report", run)  # into the run folder itself: still refused (exit 2)
    assert into.exit_code == 2 and "Read-only file system" in flat(into), into.output


@pytest.mark.parametrize(("codes", "status"), [([74], 1), ([74, 2], 2), ([3, 74], 3), ([1], 3)])
def test_a_search_whose_worker_process_stopped_on_its_own_error_fails_with_it(
    runner: Any,
    write_spec: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    codes: list[int],
    status: int,
) -> None:
    """With --workers N, a worker that stops on a full journal (exit 74), a usage error (2) or
    an unexpected one (3) prints its error; the search exits 1, 2 or 3 as one worker in this
    process would (it exited 0 with a note)."""
    from cnnspec.search import runner as search_runner

    def stopped_workers(cfg: Any, workers: int, study: Any) -> Any:
        notes = [search_runner.worker_exit_note(index, code) for index, code in enumerate(codes)]
        return search_runner.SearchOutcome(study, False, 0, notes, list(codes))

    monkeypatch.setattr(search_runner, "run_search", stopped_workers)
    result = search(runner, write_spec(SPEC), tmp_path / "out", "-n", "2", "--workers", "2")
    assert result.exit_code == status, result.output
    assert "worker 0 stopped on" in flat(result) or "worker 0 ended with exit status" in flat(result)


def test_a_search_plot_that_cannot_be_written_is_a_write_error_not_left_out(
    tmp_path: Path, monkeypatch
) -> None:
    """The search's plots on a full disk were skipped without a word (as a plot the study
    cannot have yet is), and the search ended 0 with its summary page missing them."""
    import optuna

    from cnnspec import fileio
    from cnnspec.search.results import write_plots

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study()
    study.optimize(lambda trial: trial.suggest_float("x", 0, 1) ** 2, n_trials=3)
    assert "history" in write_plots(tmp_path, study)  # (on a disk with room)

    def full_disk(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(fileio.os, "fsync", full_disk)
    with pytest.raises(WriteError, match="No space left on device"):
        write_plots(tmp_path, study)


def test_a_stop_after_the_results_leaves_the_state_of_a_lost_folder_alone(tmp_path: Path) -> None:
    """Ctrl-C once metrics.json was written removes the run's snapshots, by a removal no
    folder check saw: with the run folder lost meanwhile (its lock file removed, another
    `train --resume` holding the path), it removed the other run's state/, which its resume
    needs."""
    from cnnspec.training.outcomes import ReportInterrupted
    from cnnspec.training.state import TrainingState
    from cnnspec.training.trainer import _stopped_after_fit

    run = tmp_path / "run"
    (run / "state").mkdir(parents=True)
    (run / "metrics.json").write_text("{}")
    with acquire(run, ["cnnspec", "train"]):
        (run / LOCK_NAME).unlink()
        (run / LOCK_NAME).write_text('{"pid": 1}')  # the other process's lock file
        (run / "state" / "epoch-0003.json").write_text("the other run's snapshot")
        with pytest.raises(ReportInterrupted):
            _stopped_after_fit(run, TrainingState(run), [], None, [])  # type: ignore[arg-type]
    assert (run / "state" / "epoch-0003.json").read_text() == "the other run's snapshot"
    # held: a finished run's snapshots go, as before
    with acquire(run, ["cnnspec", "train"]), pytest.raises(ReportInterrupted):
        _stopped_after_fit(run, TrainingState(run), [], None, [])  # type: ignore[arg-type]
    assert not (run / "state").exists()
