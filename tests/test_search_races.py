"""Searches that share one study: workers of different ``--out`` folders on one SQLite file.

Optuna takes a waiting trial (a retry, an enqueued one) by reading it and then writing it
running. SQLite does not lock the row in between (``with_for_update`` is a no-op there), so two
workers that read it before either wrote both took it: one trial trained twice, another never.
The pause between the read and the write is made deterministic here: each worker waits after its
read until the other has read too, or until the other is held by the ask lock this one holds (it
cannot read before this one goes on), or a timeout passes. The lock's holding is observed, not
timed: a worker that finds the lock taken says so (:func:`_observed_flocks`, PostgreSQL's
``pg_locks`` in test_search_postgres) and then waits for it as before; the 2 s timeout, which each
of these tests used to wait out, is now only a safety net.
"""

from __future__ import annotations

import fcntl
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from cnnspec.errors import UsageError
from tests.test_escapes_audit import SEARCH_SPEC

optuna = pytest.importorskip("optuna")


def _config(out: Path, storage: str | None) -> Any:
    from cnnspec.search.worker import WorkerConfig

    out.mkdir(parents=True, exist_ok=True)
    return WorkerConfig(spec=Path("s.yaml"), out=out, study_name="s", trials=5, storage=storage)


def _observed_flocks(monkeypatch: pytest.MonkeyPatch) -> Callable[[], bool]:
    """The ask locks' ``flock`` as before, except that a worker that finds a lock taken first
    notes it: whether a worker has found one taken (it then waits for it as before), the sign
    that it is held by the lock of the other and will not count or read before that one goes on.
    Workers of different ``--out`` folders meet only at the lock beside their shared storage:
    without it (the bug) none is ever found taken."""
    from cnnspec.search import worker

    found_taken = threading.Event()

    def flock(fd: int, operation: int) -> None:
        if operation == fcntl.LOCK_EX:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                found_taken.set()
        fcntl.flock(fd, operation)

    # (the worker module's own name for fcntl: the rest of the process keeps the real one)
    monkeypatch.setattr(worker, "fcntl", SimpleNamespace(flock=flock, LOCK_EX=fcntl.LOCK_EX))
    return found_taken.is_set


class _Meeting:
    """Two workers' threads meet at a point: each waits there until the other has arrived too,
    until ``held()`` says the other waits for the ask lock this one holds (it cannot arrive before
    this one goes on), or until ``seconds`` pass (a safety net: neither happening is a failure the
    test shows, not a wait it needs)."""

    def __init__(self, held: Callable[[], bool], seconds: float) -> None:
        self.held = held
        self.seconds = seconds
        self.arrived = 0
        self.changed = threading.Condition()

    def wait(self) -> None:
        deadline = time.monotonic() + self.seconds
        with self.changed:
            self.arrived += 1
            self.changed.notify_all()
            while self.arrived < 2 and not self.held() and time.monotonic() < deadline:
                self.changed.wait(0.01)  # (``held`` is polled: nothing notifies its change)


def _paused_reads(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    """Optuna's read of a trial it is about to set running waits, after reading, until a second
    worker has read it too (or is held by the ask lock, or ``seconds`` pass): the moment the race
    needs, every time."""
    from optuna.storages._rdb import models

    real = models.TrialModel.find_or_raise_by_id
    both_read = _Meeting(_observed_flocks(monkeypatch), seconds)

    def find(trial_id: int, session: Any, for_update: bool = False) -> Any:
        trial = real(trial_id, session, for_update)
        if for_update and trial.state.name == "WAITING":
            both_read.wait()
        return trial

    monkeypatch.setattr(models.TrialModel, "find_or_raise_by_id", staticmethod(find))


def _race(cfgs: list[Any]) -> list[int]:
    """Each config's worker asks for its next trial at the same moment, in its own thread with
    its own storage (its own connections); the trial numbers they got."""
    from cnnspec.search.study import open_storage
    from cnnspec.search.worker import ask_trial

    studies = [optuna.load_study(study_name="s", storage=open_storage(c.storage, c.out)) for c in cfgs]
    got: list[int] = []
    errors: list[BaseException] = []

    def ask(cfg: Any, study: Any) -> None:
        try:
            got.append(ask_trial(cfg, study, limit=5).number)
        except BaseException as exc:  # (the test fails with it below)
            errors.append(exc)

    threads = [threading.Thread(target=ask, args=pair) for pair in zip(cfgs, studies, strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    return sorted(got)


def _paused_counts(monkeypatch: pytest.MonkeyPatch, seconds: float, held: Callable[[], bool]) -> None:
    """A worker that has counted the trials of the study waits, before it asks, until a second
    worker has counted too (or ``held()`` says it waits for the ask lock, or ``seconds`` pass):
    both saw one trial left, every time."""
    from cnnspec.search import worker

    real = worker.counted
    both_counted = _Meeting(held, seconds)

    def counted(study: Any) -> int:
        found = real(study)
        both_counted.wait()
        return found

    monkeypatch.setattr(worker, "counted", counted)


def race_for_the_last_trial(
    cfgs: list[Any], monkeypatch: pytest.MonkeyPatch, held: Callable[[], bool] | None = None
) -> list[Any]:
    """Two workers of different ``--out`` folders on one storage ask at the same moment, the
    study one trial short of its budget (4 of 5 finished): what each got (a trial number, or
    ``None`` for none left), and the study's trials after. ``held``: whether a worker waits for
    the ask lock of the other (default: it found a lock file taken, :func:`_observed_flocks`)."""
    from cnnspec.search.study import open_storage
    from cnnspec.search.worker import ask_trial

    study = optuna.create_study(study_name="s", storage=open_storage(cfgs[0].storage, cfgs[0].out))
    for _ in range(4):
        study.tell(study.ask(), 0.5)
    flocks = _observed_flocks(monkeypatch)
    _paused_counts(monkeypatch, seconds=2, held=held or flocks)
    studies = [optuna.load_study(study_name="s", storage=open_storage(c.storage, c.out)) for c in cfgs]
    got: list[Any] = []
    errors: list[BaseException] = []

    def ask(cfg: Any, study: Any) -> None:
        try:
            trial = ask_trial(cfg, study, limit=5)
            got.append(None if trial is None else trial.number)
        except BaseException as exc:  # (the test fails with it below)
            errors.append(exc)

    threads = [threading.Thread(target=ask, args=pair) for pair in zip(cfgs, studies, strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    return got


def test_two_workers_of_different_outs_on_one_journal_start_no_trial_beyond_the_budget(tmp_path, monkeypatch):
    """Before: each worker counted 4 of 5 under its own OUT/.ask.lock and each asked: 6 trials."""
    journal = tmp_path / "shared" / "study.journal"
    journal.parent.mkdir()
    cfgs = [_config(tmp_path / "a", str(journal)), _config(tmp_path / "b", str(journal))]
    got = race_for_the_last_trial(cfgs, monkeypatch)
    assert sorted(got, key=str) == [4, None]
    assert len(optuna.load_study(study_name="s", storage=_journal(journal)).get_trials()) == 5
    assert (journal.parent / "study.journal.ask.lock").is_file()


def test_a_worker_naming_another_outs_default_journal_shares_its_lock(tmp_path, monkeypatch):
    """One worker with the journal of its --out, another naming that file with --storage."""
    cfgs = [_config(tmp_path / "a", None), _config(tmp_path / "b", str(tmp_path / "a" / "study.journal"))]
    assert sorted(race_for_the_last_trial(cfgs, monkeypatch), key=str) == [4, None]


def _journal(path: Path) -> Any:
    return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(path)))


def _study_with_a_retry(storage: str, out: Path) -> None:
    from cnnspec.search.study import open_storage

    study = optuna.create_study(study_name="s", storage=open_storage(storage, out), direction="maximize")
    study.enqueue_trial({"x": 1.0}, user_attrs={"retry_of": 7, "retry_reason": "worker died"})


def test_two_workers_of_different_outs_on_one_sqlite_file_take_a_waiting_trial_once(tmp_path, monkeypatch):
    """Before: both workers read trial 0 waiting and both set it running (each got trial 0)."""
    db = tmp_path / "shared" / "study.db"
    db.parent.mkdir()
    storage = f"sqlite:///{db}"
    cfgs = [_config(tmp_path / "a", storage), _config(tmp_path / "b", storage)]
    _study_with_a_retry(storage, cfgs[0].out)
    _paused_reads(monkeypatch, seconds=2)
    assert _race(cfgs) == [0, 1]  # one took the retry, the other a new trial
    trials = optuna.load_study(study_name="s", storage=storage).get_trials()
    assert [t.state.name for t in trials] == ["RUNNING", "RUNNING"]
    assert (db.parent / "study.db.ask.lock").is_file()


def test_a_relative_sqlite_url_and_an_absolute_one_of_the_same_file_share_the_lock(tmp_path, monkeypatch):
    db = tmp_path / "shared" / "study.db"
    db.parent.mkdir()
    monkeypatch.chdir(tmp_path)
    cfgs = [_config(tmp_path / "a", "sqlite:///shared/study.db"), _config(tmp_path / "b", f"sqlite:///{db}")]
    _study_with_a_retry(cfgs[1].storage, cfgs[1].out)
    _paused_reads(monkeypatch, seconds=2)
    assert _race(cfgs) == [0, 1]


def test_the_sqlite_lock_path_is_beside_the_database_file(tmp_path, monkeypatch):
    from cnnspec.search.study import storage_lock_path

    monkeypatch.chdir(tmp_path)
    (tmp_path / "real").mkdir()
    (tmp_path / "link.db").symlink_to(tmp_path / "real" / "study.db")
    beside = tmp_path / "real" / "study.db.ask.lock"
    assert storage_lock_path("sqlite:///link.db") == beside  # (a link: the file it names)
    assert storage_lock_path(f"sqlite:///{tmp_path}/real/study.db") == beside
    assert storage_lock_path("sqlite:///file:real/study.db?uri=true") == beside
    for unshared in (None, "sqlite://", "sqlite:///:memory:", "postgresql://u@h/db"):
        assert storage_lock_path(unshared) is None
    # a journal's: beside it too, the default one in --out (its workers may name it by --storage)
    (tmp_path / "link.journal").symlink_to(tmp_path / "real" / "study.journal")
    journal_lock = tmp_path / "real" / "study.journal.ask.lock"
    assert storage_lock_path("link.journal") == storage_lock_path("real/study.journal") == journal_lock
    assert storage_lock_path(None, tmp_path / "real") == journal_lock
    assert storage_lock_path("sqlite:///file:m?mode=memory&uri=true") is None


def test_a_database_lock_in_the_out_folder_itself_is_taken_once(tmp_path):
    """The two locks of one file (a database named ``.ask`` in --out: its lock is ``.ask.lock``)
    would wait for each other in one process."""
    from cnnspec.search.worker import ask_lock

    with ask_lock(tmp_path, f"sqlite:///{tmp_path}/.ask"):
        pass


def test_a_database_on_a_read_only_folder_is_a_clear_error(tmp_path, monkeypatch):
    """A lock file that cannot be created beside the database (a read-only disk, no permission)
    is a usage error that says why; one already there is opened to read (``flock`` needs no
    more)."""
    import errno
    import os

    from cnnspec.search import worker

    shared = tmp_path / "shared"
    shared.mkdir()
    real_open = os.open

    def read_only(path: Any, flags: int, *args: Any) -> int:
        if Path(path).parent == shared and flags & (os.O_CREAT | os.O_RDWR | os.O_WRONLY):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return real_open(path, flags, *args)

    monkeypatch.setattr(worker.os, "open", read_only)
    refused = r"cannot create the lock file .*study\.db\.ask\.lock"
    with (
        pytest.raises(UsageError, match=refused) as caught,
        worker.ask_lock(tmp_path, f"sqlite:///{shared}/study.db"),
    ):
        pass
    assert "Read-only file system" in str(caught.value) and "writable" in str(caught.value.hint)
    os.close(real_open(shared / "study.db.ask.lock", os.O_CREAT | os.O_WRONLY, 0o644))  # (made before)
    with worker.ask_lock(tmp_path, f"sqlite:///{shared}/study.db"):
        pass


# -- a search stopped by Ctrl-C or SIGTERM --------------------------------------------------------

STOP_SPEC = SEARCH_SPEC  # (a two-trial search of one dropout rate)


@pytest.fixture
def stopping_train(monkeypatch: pytest.MonkeyPatch) -> Any:
    """``train`` of a trial without TensorFlow: while ``.stop`` says so, the process gets that
    signal in the middle of the training (``.swallowed``: something swallows its
    ``KeyboardInterrupt`` and fails with an error of its own, as h5py does in the middle of
    Keras' ``model.save``); otherwise it finishes with accuracy 0.5."""
    import os
    import time

    from cnnspec.search import worker
    from cnnspec.training import trainer

    class Pruning:
        pruned_at = None

    class State:
        stop: int | None = None
        swallowed = False
        calls = 0

    state = State()

    def train(compiled: Any, *, out: Path, **_: Any) -> Any:
        state.calls += 1
        if state.stop is not None:
            try:
                os.kill(os.getpid(), state.stop)
                time.sleep(5)  # (the handler runs before this returns)
            except KeyboardInterrupt:
                if not state.swallowed:
                    raise
            if state.swallowed:
                raise TypeError("a stand-in for h5py's error after the swallowed stop")
        return trainer.TrainResult(out, {"test_accuracy": 0.5}, [{"val_accuracy": 0.5}], {})

    monkeypatch.setattr(trainer, "train", train)
    monkeypatch.setattr(worker, "_quiet_tensorflow", lambda: None)
    monkeypatch.setattr(worker, "pruning_callback", lambda trial, metric: Pruning())
    return state


def _stopped_search(runner: Any, write_spec: Any, tmp_path: Path, stopping_train: Any) -> tuple[Any, Path]:
    import json

    from cnnspec.cli.app import app

    spec = write_spec(STOP_SPEC)
    out = tmp_path / "out"
    result = runner.invoke(app, ["search", str(spec), "--out", str(out)])
    assert result.exit_code == 130, result.output
    flat = " ".join(result.output.split())
    assert "Traceback" not in result.output and "trial 0 was stopped" in flat, flat
    study = optuna.load_study(
        study_name="tiny_search",
        storage=optuna.storages.JournalStorage(
            optuna.storages.journal.JournalFileBackend(str(out / "study.journal"))
        ),
    )
    stopped, retry = study.get_trials()
    # stopped, not failed: no failure reason, its retry waits with the same values
    assert stopped.state.name == "FAIL" and "failed" not in stopped.user_attrs
    assert stopped.user_attrs["stopped"] == "stopped by the user (Ctrl-C or SIGTERM)"
    assert retry.state.name == "WAITING" and retry.user_attrs["retry_of"] == 0
    summary = json.loads((out / "search.json").read_text())
    assert summary["counts"] == {"STOPPED": 1, "WAITING": 1}
    assert summary["trials"][0]["stopped"] == "stopped by the user (Ctrl-C or SIGTERM)"
    assert "failed" not in summary["trials"][0]
    trial = json.loads((out / "trial-000" / "trial.json").read_text())
    assert trial["state"] == "STOPPED" and "failed" not in trial
    assert stopping_train.calls == 1  # no trial started after the stop
    from cnnspec.fileio import stop_noted
    from cnnspec.training.interrupts import GATE

    # the stop was this search's: a training later in the process (the API) starts unstopped
    # (it was left requested, and the next train of the test session stopped at once)
    assert not GATE.requested and not stop_noted()

    # the same command again trains the stopped trial's values and one more: 2 complete
    stopping_train.stop = None
    again = runner.invoke(app, ["search", str(spec), "--out", str(out)])
    assert again.exit_code == 0, again.output
    trials = study.get_trials()
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    assert [t.number for t in complete] == [1, 2] and complete[0].params == stopped.params
    return result, out


@pytest.mark.parametrize("signal_name", ["SIGINT", "SIGTERM"])
def test_a_stopped_trial_is_recorded_stopped_and_trained_again(
    runner, write_spec, tmp_path, stopping_train, signal_name
):
    """Before: the trial was failed ("interrupted"), search.json counted it a failure."""
    import signal

    stopping_train.stop = getattr(signal, signal_name)
    _stopped_search(runner, write_spec, tmp_path, stopping_train)


def test_a_stop_swallowed_inside_the_training_stops_the_search_too(
    runner, write_spec, tmp_path, stopping_train
):
    """A SIGTERM whose ``KeyboardInterrupt`` something swallowed and turned into an error of its
    own (h5py in ``model.save``). Before: the trial failed with that error (a real failure, never
    tried again) and the search went on to the next trial and exited 0."""
    import signal

    stopping_train.stop = signal.SIGTERM
    stopping_train.swallowed = True
    _stopped_search(runner, write_spec, tmp_path, stopping_train)


def test_a_stop_before_the_training_began_is_recorded_stopped_too(
    runner, write_spec, tmp_path, stopping_train, monkeypatch
):
    """The signal lands while the trial's folder is claimed, before its training: the trial
    was left RUNNING, and the next search failed it as a dead worker's ("worker died")."""
    import json
    import os
    import signal
    import time

    from cnnspec.cli.app import app
    from cnnspec.search import worker

    claim = worker.claim_trial_dir

    def claim_then_stop(*args: Any, **kwargs: Any) -> Any:
        found = claim(*args, **kwargs)
        if stopping_train.stop is not None:
            os.kill(os.getpid(), stopping_train.stop)
            time.sleep(5)  # (the handler raises before this returns)
        return found

    monkeypatch.setattr(worker, "claim_trial_dir", claim_then_stop)
    stopping_train.stop = signal.SIGINT
    spec, out = write_spec(STOP_SPEC), tmp_path / "out"
    result = runner.invoke(app, ["search", str(spec), "--out", str(out)])
    assert result.exit_code == 130, result.output
    assert "trial 0 was stopped" in " ".join(result.output.split())
    assert stopping_train.calls == 0  # (no training began)
    summary = json.loads((out / "search.json").read_text())
    assert summary["counts"] == {"STOPPED": 1, "WAITING": 1}
    stopping_train.stop = None
    again = runner.invoke(app, ["search", str(spec), "--out", str(out)])
    assert again.exit_code == 0, again.output
    rows = json.loads((out / "search.json").read_text())["trials"]
    assert [row["state"] for row in rows] == ["STOPPED", "COMPLETE", "COMPLETE"]
    assert all("failed" not in row for row in rows)
    # its retry had nothing to continue, and says so
    assert rows[1]["restarted"] == "trained from the start: trial 0 left no run folder of this search"
    assert json.loads((out / "trial-001" / "trial.json").read_text())["restarted"] == rows[1]["restarted"]


# -- a Ctrl-C or SIGTERM while a trial is asked ---------------------------------------------------


def _journal_study(out: Path) -> Any:
    from cnnspec.search.study import open_storage

    out.mkdir(parents=True, exist_ok=True)
    return optuna.create_study(study_name="s", storage=open_storage(None, out), direction="maximize")


@pytest.mark.parametrize("where", ["creating a trial", "taking a waiting trial", "setting its attributes"])
def test_an_interrupt_while_a_trial_is_asked_records_it_stopped(tmp_path, monkeypatch, where):
    """A ``KeyboardInterrupt`` raised at once (a second Ctrl-C, or Python's own handler) inside
    ``study.ask()`` once the trial is running in the storage, or while its attributes are set.
    Before: the trial was left RUNNING, and the next search failed it as a dead worker's
    ("worker died") and counted a failure the user's stop had made."""
    from optuna.trial import TrialState

    from cnnspec.search.worker import STOPPED, WorkerConfig, ask_trial, fail_dead_trials

    out = tmp_path / "out"
    study = _journal_study(out)
    storage = study._storage
    if where == "taking a waiting trial":
        study.enqueue_trial({}, user_attrs={"retry_of": 9, "retry_reason": "stopped"})
        real_state = storage.set_trial_state_values

        def state_then_stop(trial_id: int, state: Any, values: Any = None) -> bool:
            done = real_state(trial_id, state, values)
            if state == TrialState.RUNNING:
                raise KeyboardInterrupt
            return done

        monkeypatch.setattr(storage, "set_trial_state_values", state_then_stop)
    elif where == "creating a trial":
        real_create = storage.create_new_trial

        def create_then_stop(*args: Any, **kwargs: Any) -> int:
            real_create(*args, **kwargs)
            raise KeyboardInterrupt

        monkeypatch.setattr(storage, "create_new_trial", create_then_stop)
    else:
        real_attr = optuna.trial.Trial.set_user_attr

        def attr_then_stop(self: Any, key: str, value: Any) -> None:
            real_attr(self, key, value)
            if key == "process":
                raise KeyboardInterrupt

        monkeypatch.setattr(optuna.trial.Trial, "set_user_attr", attr_then_stop)
    cfg = WorkerConfig(spec=Path("s.yaml"), out=out, study_name="s", trials=5)
    with pytest.raises(KeyboardInterrupt):
        ask_trial(cfg, study, limit=5)
    monkeypatch.undo()
    stopped, retry = study.get_trials()
    assert stopped.state == TrialState.FAIL and stopped.user_attrs["stopped"] == STOPPED
    assert "failed" not in stopped.user_attrs
    assert retry.state == TrialState.WAITING and retry.user_attrs["retry_of"] == stopped.number
    assert fail_dead_trials(study, out) == []  # (nothing left running for the next search)


def test_a_stop_while_a_trial_is_asked_waits_and_records_it_stopped(
    runner, write_spec, tmp_path, stopping_train, monkeypatch
):
    """The search's own handler (the interrupt gate) holds a Ctrl-C that lands in the middle of
    ``study.ask()`` until the trial is in hand, which is then recorded stopped. Before: the
    ``KeyboardInterrupt`` came out of ``study.ask()``, the trial stayed RUNNING."""
    import json
    import os
    import signal
    import time

    from cnnspec.cli.app import app

    real_ask = optuna.study.Study.ask

    def ask_then_stop(self: Any, *args: Any, **kwargs: Any) -> Any:
        trial = real_ask(self, *args, **kwargs)
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.2)  # (the handler runs in here)
        return trial

    monkeypatch.setattr(optuna.study.Study, "ask", ask_then_stop)
    spec, out = write_spec(STOP_SPEC), tmp_path / "out"
    result = runner.invoke(app, ["search", str(spec), "--out", str(out)])
    assert result.exit_code == 130, result.output
    assert "Traceback" not in result.output
    assert stopping_train.calls == 0  # (no training began)
    summary = json.loads((out / "search.json").read_text())
    assert summary["counts"] == {"STOPPED": 1, "WAITING": 1}


def test_a_stop_as_the_asked_trial_is_returned_records_it_stopped(
    runner, write_spec, tmp_path, stopping_train, monkeypatch
):
    """A signal handled as ``ask_trial`` returns (Python runs handlers after a call), before the
    worker holds the trial. Before: the trial stayed RUNNING, failed as a dead worker's later."""
    import json

    from cnnspec.cli.app import app
    from cnnspec.search import worker

    real = worker.ask_trial

    def ask_then_stop(*args: Any, **kwargs: Any) -> Any:
        real(*args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(worker, "ask_trial", ask_then_stop)
    spec, out = write_spec(STOP_SPEC), tmp_path / "out"
    result = runner.invoke(app, ["search", str(spec), "--out", str(out)])
    assert result.exit_code == 130, result.output
    assert stopping_train.calls == 0
    assert json.loads((out / "search.json").read_text())["counts"] == {"STOPPED": 1, "WAITING": 1}
