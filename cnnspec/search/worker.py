"""One worker: asks the study for trials and trains each into its own run folder.

A trial is an ordinary ``cnnspec train`` run (:func:`cnnspec.training.trainer.train`, which
takes the run folder's lock) in ``DIR/trial-NNN/``: the trial's spec with its values written in
(``spec.yaml``), ``resolved.yaml``, metrics, report.html, plus ``trial.json`` (its params,
state, objective, and the epoch it was pruned at). The objective is the best epoch's value of
the logged metric; pruning gets one report per epoch. Another study than the spec's own in the same
``DIR`` names its folders ``trial-SLUG-NNN`` (:func:`cnnspec.search.study.study_tag`). A trial
creates its folder itself and writes ``trial.json`` only there: a folder already at its name is
left alone, and the trial is skipped without spending the budget.

Workers agree on how many trials remain under a file lock in ``DIR`` (``.ask.lock``), those
sharing one journal file or SQLite database (from any ``DIR``) under a lock file beside it too
(``study.journal.ask.lock``, ``study.db.ask.lock``), and those sharing a PostgreSQL database
(from any machine) under an advisory lock of the study's as well (:func:`ask_lock`), so the
workers start exactly ``trials`` trials and take each waiting trial once. A trial
whose worker died (its PID is gone on this host; on a database, its heartbeat stopped) is
failed and enqueued once more with the same values, unless its training had finished: its run
folder's ``trial.json`` (written before the study is told) and results are then recorded as the
trial's outcome (:func:`record_finished`).
A trial that could not write its files (a full or failing disk) is failed
(:data:`DISK_FAULT`) and enqueued again every time, and its worker stops: the next trial would
fail the same way, and the search is to be run again once the disk is fixed
(:func:`disk_fault`). A study storage that can't be written (a full disk under the journal file)
stops the worker the same way, with the :class:`~cnnspec.errors.WriteError` naming the journal
(:func:`storage_writes`).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import math
import os
import socket
import sys
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cnnspec.analysis.report import DEFAULT_MAX_PARAMS
from cnnspec.errors import SpecError, UsageError, WriteError, printable
from cnnspec.fileio import stop_handled, stop_noted, write_atomic
from cnnspec.jsontext import json_text
from cnnspec.search import continuing
from cnnspec.search import study as studies
from cnnspec.spec.search import Dimension, SearchSpace, apply_values
from cnnspec.write_faults import write_fault, write_fix

ASK_LOCK = ".ask.lock"
#: A worker process's exit statuses: a file it could not write (a full or failing disk; sysexits'
#: EX_IOERR, not the command's 1, which Python's own start-up of a spawned process exits with
#: when it fails), a usage error, an unexpected error, a Ctrl-C. The runner's notes say which.
EXIT_WRITE = 74
EXIT_USAGE = 2
EXIT_INTERNAL = 3
EXIT_INTERRUPTED = 130
#: How the ``failed`` attribute of a trial that could not write its files starts; its
#: ``write_error`` attribute holds the fault (:func:`disk_fault`).
DISK_FAULT = "disk fault"
#: How the ``failed`` attribute of a trial whose run folder already existed starts.
FOLDER_TAKEN = "run folder taken"
#: The ``stopped`` attribute of a trial a Ctrl-C or SIGTERM stopped (:func:`stop`); an older
#: cnnspec failed it with ``failed: "interrupted"`` (:data:`INTERRUPTED`), read as the same.
STOPPED = "stopped by the user (Ctrl-C or SIGTERM)"
INTERRUPTED = "interrupted"


@dataclass
class WorkerConfig:
    """What a worker process needs (picklable: it crosses a ``spawn``)."""

    spec: Path
    out: Path
    study_name: str
    trials: int
    overrides: list[str] = field(default_factory=list)
    storage: str | None = None
    allow_outside: bool = False
    max_params: int = DEFAULT_MAX_PARAMS
    #: Seconds after which this worker starts no trial, counted from when it is ready (the
    #: spec compiled, the study opened, TensorFlow loaded): ``search.timeout`` or ``--timeout``.
    timeout: float | None = None
    index: int = 0
    workers: int = 1
    quiet: bool = False
    tag: str = ""  # what this study's files carry in their names (studies.study_tag)
    report: bool = True  # each trial's report.html (not with --no-report)


#: The user attribute naming the real path of the ``--out`` a trial ran in (with ``host``).
OUT_ATTR = "out"


def trial_dir(out: Path, number: int, tag: str = "") -> Path:
    """Trial ``number``'s run folder: ``OUT/trial-NNN`` (the spec's own study), or
    ``OUT/trial-SLUG-NNN`` for another study (``tag``, :func:`studies.study_tag`)."""
    return out / f"trial{tag}-{number:03d}"


def claim_trial_dir(out: Path, number: int, tag: str) -> Path | None:
    """Create trial ``number``'s run folder, only if nothing is there yet (``mkdir`` is atomic):
    ``None`` when the name is taken (a folder of an earlier study whose journal was removed, or
    anything of the user's), which the trial then leaves alone. A folder that cannot be made is
    a :class:`WriteError` (a full disk: the trial is tried again)."""
    folder = trial_dir(out, number, tag)
    try:
        folder.mkdir()
    except FileExistsError:
        return None
    except OSError as exc:
        raise WriteError(folder, exc.strerror or str(exc), errno=exc.errno) from None
    return folder


@contextlib.contextmanager
def ask_lock(out: Path, storage: str | None = None, study_name: str = "") -> Iterator[None]:
    """The workers of a study count and ask one at a time: those of one ``--out`` under
    ``OUT/.ask.lock``; those sharing one journal file or SQLite database (from any ``--out``)
    under the lock file beside it too (:func:`studies.storage_lock_path`); those sharing one
    PostgreSQL database (from any machine) under an advisory lock keyed by the study's name
    as well (:func:`studies.advisory_lock`).

    Without the storage's lock, two workers of different ``--out`` folders both counted one
    trial left and both asked: each started one more than ``--trials``. SQLite also does not
    lock the row Optuna reads before it takes a waiting trial (a retry, an enqueued one): both
    read it waiting and both set it running, and one trial was trained twice and another
    never. The locks are always taken in this order (``--out``'s, the file's, the database's),
    so no two workers each hold one and wait for the other's; a killed worker holds none (a
    ``flock`` goes with its descriptors, an advisory lock with its session)."""
    fd = _lock_fd(out / ASK_LOCK)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        beside = studies.storage_lock_path(storage, out)
        shared = _lock_fd(beside, storage=True) if beside is not None else None
        try:
            if shared is not None and not _same_file(fd, shared):  # (flock of one file twice
                fcntl.flock(shared, fcntl.LOCK_EX)  # by one process: a deadlock)
            with studies.advisory_lock(storage, study_name):
                yield
        finally:
            if shared is not None:
                os.close(shared)
    finally:
        os.close(fd)


def _lock_fd(path: Path, *, storage: bool = False) -> int:
    """An open descriptor of the lock file ``path``, created when missing, never through a
    link (a dangling one would create a file where it leads). ``storage``: the lock beside a
    journal file or SQLite database; on a folder this process cannot create files in, an
    existing lock file is opened to read (``flock`` needs no more), and a missing one is a
    :class:`UsageError`."""
    flags = os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK
    try:
        return os.open(path, flags | os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        failure = exc
    if storage and failure.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        with contextlib.suppress(OSError):
            return os.open(path, flags | os.O_RDONLY)
        raise UsageError(
            f"cannot create the lock file {path} beside the study's storage: "
            f"{failure.strerror or failure} (the workers sharing the storage take their trials "
            "one at a time through it)",
            f"make {path.parent} writable (the journal, or SQLite's own journal, is written there too)",
        ) from None
    raise UsageError(
        f"expected cnnspec's lock file or nothing at {path}; cannot open it: {failure.strerror or failure}",
        f"remove {path}",
    ) from None


def _same_file(first: int, second: int) -> bool:
    """Whether two open descriptors are of one file (a link, or a database named in --out)."""
    a, b = os.fstat(first), os.fstat(second)
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def counted(study: Any) -> int:
    """Trials that use up the budget: finished, running, and failed ones not retried."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    retried = {t.user_attrs.get("retry_of") for t in trials if "retry_of" in t.user_attrs}
    live = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)
    spent = [
        t
        for t in trials
        if t.state == TrialState.FAIL and t.number not in retried and not _retryable(t) and not skipped(t)
    ]
    return sum(1 for t in trials if t.state in live) + len(spent)


def skipped(trial: Any) -> bool:
    """A trial whose run folder name was taken: it trained nothing, so it spends no budget
    (the next trial has the next number, and so the next folder). ``SKIPPED`` in search.json
    (:func:`cnnspec.search.results.trial_rows`); Optuna's own state for it is ``FAIL``."""
    reason = trial.user_attrs.get("failed")
    return isinstance(reason, str) and reason.startswith(FOLDER_TAKEN)


def _retryable(trial: Any) -> bool:
    """A failed trial that gets (or got) another go: stopped by the user or by a disk fault, or
    killed when it was not already a retry of a killed one."""
    reason = trial.user_attrs.get("failed")
    if stopped(trial) or (isinstance(reason, str) and reason.startswith(DISK_FAULT)):
        return True
    died = studies.WORKER_DIED
    return reason == died and trial.user_attrs.get("retry_reason") != died


def disk_fault(study: Any, since: int = 0) -> WriteError | None:
    """The disk fault that stopped a trial numbered ``since`` or later on this host (the last
    one), as the :class:`~cnnspec.errors.WriteError` it was; ``None`` when there was none."""
    from optuna.trial import TrialState

    host = socket.gethostname()
    for t in reversed(study.get_trials(deepcopy=False, states=(TrialState.FAIL,))):
        fault = t.user_attrs.get("write_error")
        if t.number >= since and t.user_attrs.get("host") == host and isinstance(fault, dict):
            return WriteError(
                str(fault.get("path")),
                str(fault.get("reason")),
                errno=fault.get("errno"),
                needed=fault.get("needed"),
                free=fault.get("free"),
                hint=_retry_hint(t.number, fault.get("errno")),
            )
    return None


def _retry_hint(number: int, code: int | None) -> str:
    from cnnspec.write_faults import write_fix

    fix = write_fix(code)
    return f"{fix}, then run the same command again: trial {number} is tried again"


def fail_dead_trials(study: Any, out: Path) -> list[int]:
    """Fail the running trials of this host whose worker process is gone; enqueue each once
    more (same values). Returns their numbers. A dead worker's trial whose training had
    finished (the study could not be told: a full disk under the journal) is recorded from its
    run folder instead (:func:`record_finished`), and neither failed nor trained again."""
    from optuna.trial import TrialState

    host = socket.gethostname()
    failed: list[int] = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if t.user_attrs.get("host") != host or _alive(t.user_attrs.get("pid"), t.user_attrs.get("process")):
            continue
        recorded = False
        with contextlib.suppress(Exception):  # a storage still full: failed (or left) as before
            recorded = record_finished(study, t, out)
        if recorded:
            continue
        fault = storage_fault(out, t.user_attrs.get("pid"), t.user_attrs.get("process"))
        # its worker stopped on its journal's disk, not dead: tried again, as a disk fault is
        fail(study, t, studies.WORKER_DIED if fault is None else f"{DISK_FAULT}: {fault}"[:500], out)
        failed.append(t.number)
    return failed


#: The attributes :func:`_tell_result` sets from a finished training, as trial.json holds them.
_RESULT_ATTRS = (
    "test_accuracy",
    "test_metric",
    "test_value",
    "epochs",
    "pruned_at_epoch",
    "failed",
    "seconds",
)


def record_finished(study: Any, frozen: Any, out: Path) -> bool:
    """Tell the study the outcome of the running trial ``frozen`` from its run folder when its
    training had finished there (``metrics.json`` and the rest: :func:`finished_run`) and its
    ``trial.json`` says what it was (complete with its value, pruned, or failed): its worker
    died, or its study storage failed (a full disk under the journal), after the results were
    written but before the study was told. Returns whether it did; ``False`` leaves the trial
    to be failed and trained again."""
    from optuna.trial import TrialState

    run_dir = frozen.user_attrs.get("run_dir")
    if not isinstance(run_dir, str) or Path(run_dir).name != run_dir or not run_dir.startswith("trial"):
        return False  # (the trial had not made its folder; or not a plain trial-… name)
    folder = out / run_dir
    if folder.is_symlink() or finished_run(folder) is None:
        return False
    try:
        info = json.loads((folder / "trial.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return False
    if not isinstance(info, dict) or info.get("number") != frozen.number:
        return False
    state, value = info.get("state"), info.get("value")
    complete = state == "COMPLETE" and isinstance(value, (int, float)) and math.isfinite(value)
    if not complete and state not in ("PRUNED", "FAIL"):
        return False  # (a trial.json of a failed or interrupted trial: trained again)
    storage = study._storage  # Optuna's own API for a trial another process started
    for key in _RESULT_ATTRS:
        if info.get(key) is not None:
            storage.set_trial_user_attr(frozen._trial_id, key, info[key])
    for key, text in recorded_split(folder).items():  # (as record_split would have)
        storage.set_trial_user_attr(frozen._trial_id, key, text)
    if complete:
        study.tell(frozen.number, float(value))
    else:
        study.tell(frozen.number, state=TrialState.PRUNED if state == "PRUNED" else TrialState.FAIL)
    return True


def _alive(pid: Any, identity: Any = None) -> bool:
    """Whether the worker process ``pid`` that asked a trial still runs. ``identity``: the
    :func:`process_identity` it recorded; a process with that PID but another identity is a
    new one that reuses the number (after a reboot, or PID 1 of a container started again), so
    the worker is dead."""
    if not isinstance(pid, int):
        return True  # asked but not yet started: its worker is alive (it sets the PID at once)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    now = process_identity(pid)
    return not (isinstance(identity, str) and now is not None and now != identity)


def process_identity(pid: int) -> str | None:
    """The boot and the start time of process ``pid`` (``BOOT_ID:START_TICKS``), which a PID
    reused by another process does not share; None where /proc cannot say (not Linux)."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        stat = Path(f"/proc/{pid}/stat").read_text()
        # after the command name in parentheses (which may hold spaces): field 3 on; the
        # start time is field 22
        start = stat.rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None
    return f"{boot}:{start}"


def fail(study: Any, frozen: Any, reason: str, out: Path, attrs: dict[str, Any] | None = None) -> None:
    """Mark a trial failed (``reason`` and ``attrs`` in its attributes) and, when it may,
    enqueue a retry."""
    from optuna.trial import TrialState

    storage = study._storage  # Optuna's own API for a trial another process started
    trial_id = frozen._trial_id
    with contextlib.suppress(Exception):
        for key, value in {**(attrs or {}), "failed": reason}.items():
            storage.set_trial_user_attr(trial_id, key, value)
    try:
        storage.set_trial_state_values(trial_id, TrialState.FAIL)
    except Exception:
        return  # it finished (or another process failed it) meanwhile
    frozen = storage.get_trial(trial_id)
    info = {"state": "FAIL", "failed": reason, "params": frozen.user_attrs.get("values", frozen.params)}
    _write_trial_json(out, frozen, info)
    if _retryable(frozen):
        study.enqueue_trial(frozen.params, user_attrs={"retry_of": frozen.number, "retry_reason": reason})


def stopped(trial: Any) -> bool:
    """Whether ``trial`` was stopped by the user (a Ctrl-C or SIGTERM, :func:`stop`), not failed."""
    return "stopped" in trial.user_attrs or trial.user_attrs.get("failed") == INTERRUPTED


def stop(study: Any, frozen: Any, out: Path) -> None:
    """Record the running trial ``frozen`` as stopped by the user: its ``stopped`` attribute
    (no ``failed`` one: nothing went wrong with it), ``trial.json`` saying ``STOPPED``, and its
    values enqueued again, so the same command trains them (under the next number, going on
    from its last snapshot: :mod:`cnnspec.search.continuing`) in its place. In Optuna's
    storage it is a finished trial (``FAIL``: Optuna has no state for a stopped one, and a
    running one would be failed as its dead worker's); the budget (:func:`counted`),
    search.json and the leaderboard take it as stopped, not failed."""
    from optuna.trial import TrialState

    storage = study._storage  # Optuna's own API for a trial another process started
    with contextlib.suppress(Exception):
        storage.set_trial_user_attr(frozen._trial_id, "stopped", STOPPED)
    try:
        storage.set_trial_state_values(frozen._trial_id, TrialState.FAIL)
    except Exception:
        return  # it finished (or another process failed it) meanwhile
    frozen = storage.get_trial(frozen._trial_id)
    info = {"state": "STOPPED", "stopped": STOPPED, "params": frozen.user_attrs.get("values", frozen.params)}
    _write_trial_json(out, frozen, info)
    study.enqueue_trial(frozen.params, user_attrs={"retry_of": frozen.number, "retry_reason": "stopped"})


def stop_unstarted(study: Any, trial: Any, out: Path) -> None:
    """Record ``trial`` as stopped (:func:`stop`) when a Ctrl-C or SIGTERM reached it before
    its training began (its values being drawn, its folder claimed): it was left running, and
    the next search failed it as its dead worker's. One its training recorded already (stopped,
    or finished) is no longer running: left as it is."""
    from optuna.trial import TrialState

    try:
        frozen = study._storage.get_trial(trial._trial_id)
    except Exception:  # (the storage is gone: the next search's sweep fails it as a dead worker's)
        return
    if frozen.state == TrialState.RUNNING:
        stop(study, frozen, out)


def fail_stale(study: Any, out: Path) -> list[int]:
    """Fail the running trials of a database whose heartbeat stopped (their worker died, on any
    machine), each with the reason a dead worker's trial of this host gets (:func:`fail`):
    ``failed: "worker died"`` is set while the trial still runs (a failed trial's attributes
    can no longer be set), then Optuna fails it and calls the storage's stale-trial callback,
    :func:`studies.retry_stale`, which writes its trial.json and enqueues the retry. Returns
    the numbers of the trials it found stale; a journal storage has no heartbeat: nothing."""
    from optuna.storages import fail_stale_trials
    from optuna.storages._heartbeat import BaseHeartbeat, is_heartbeat_enabled

    storage = study._storage  # Optuna's own API for trials other processes started
    if not isinstance(storage, BaseHeartbeat) or not is_heartbeat_enabled(storage):
        return []
    numbers: list[int] = []
    for trial_id in storage._get_stale_trial_ids(study._study_id):
        with contextlib.suppress(Exception):  # it finished meanwhile: nothing to fail
            storage.set_trial_user_attr(trial_id, "failed", studies.WORKER_DIED)
            numbers.append(storage.get_trial(trial_id).number)
    fail_stale_trials(study)  # (a trial another worker failed first is left to that worker)
    return numbers


def write_dead_trial_json(out: Path, trial: Any, reason: str) -> None:
    """``trial.json`` of a trial failed because its worker died on another machine (its
    heartbeat stopped), when its run folder is here too (a shared disk) and has none yet: the
    folder holds what that worker trained, and a trial.json already there is the trial's own."""
    info = {"state": "FAIL", "failed": reason, "params": trial.user_attrs.get("values", trial.params)}
    _write_trial_json(out, trial, info, only_new=True)


def _write_trial_json(out: Path, trial: Any, info: dict[str, Any], *, only_new: bool = False) -> None:
    """``trial.json`` in the trial's own run folder: the one its ``run_dir`` attribute names,
    set only once the trial has created it (:func:`claim_trial_dir`); a trial without one
    writes nothing, so a folder that was there before is never touched. ``only_new``: not
    when the folder has a trial.json already."""
    run_dir = trial.user_attrs.get("run_dir")
    if not isinstance(run_dir, str) or Path(run_dir).name != run_dir or not run_dir.startswith("trial"):
        return  # (the attribute is anyone's who shares the storage: only a plain trial-… name)
    folder = out / run_dir
    if only_new and os.path.lexists(folder / "trial.json"):
        return
    for key in (continuing.CONTINUES, continuing.RESTARTED):  # (a stopped trial's retry)
        if key in trial.user_attrs and key not in info:
            info = {**info, key: trial.user_attrs[key]}
    if folder.is_dir() and not folder.is_symlink():
        with contextlib.suppress(OSError, WriteError):  # (a full disk: the study has it all)
            text = json_text({"number": trial.number, **info}, default=str)
            write_atomic(folder / "trial.json", text)


#: Optuna's warning when a stepped range's step does not divide it (``{int: [16, 24], step: 5}``):
#: it trims the top to the last step (21), as README and :meth:`Dimension.top` say, and the
#: warning would print a site-packages path on every trial.
TRIMMED_WARNING = r"The distribution is specified by .* but the range is not divisible by `step`"


def suggest(trial: Any, d: Dimension) -> Any:
    """The trial's value of dimension ``d`` (a choice as the spec takes it)."""
    if d.kind in ("float", "int"):
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=TRIMMED_WARNING, category=UserWarning)
            if d.kind == "float":
                return trial.suggest_float(d.name, d.low, d.high, log=d.log, step=d.step)
            return trial.suggest_int(d.name, int(d.low), int(d.high), step=int(d.step or 1), log=d.log)
    raw = trial.suggest_categorical(d.name, [studies.categorical(c) for c in d.choices])
    return studies.from_categorical(raw, d.choices)


def objective_value(history: list[dict[str, float]], metric: str, direction: str) -> float | None:
    """The best epoch's value of ``metric`` (``None`` when it never appeared)."""
    values = [row[metric] for row in history if metric in row and math.isfinite(float(row[metric]))]
    if not values:
        return None
    return max(values) if direction == "maximize" else min(values)


def diverged(history: list[dict[str, float]], metrics: dict[str, Any]) -> str | None:
    """Why a finished training's model is no result (``None``: it is one): its training loss
    was not a finite number at the epoch whose weights it kept (the last, unless a callback
    restored a best epoch's). Its objective may still be a finite number (an accuracy at chance
    level on NaN outputs): such a trial must not count, nor become the best."""
    if not history:
        return None
    best = metrics.get("best_epoch")
    epoch = int(best) if isinstance(best, int) and 1 <= best <= len(history) else len(history)
    loss = history[epoch - 1].get("loss")
    if loss is None or math.isfinite(float(loss)):
        return None
    return (
        f"the training loss was {float(loss)} at epoch {epoch}, whose weights the model kept: "
        "the training diverged"
    )


def no_objective(history: list[dict[str, float]], metric: str) -> str:
    """Why a finished training has no objective value: ``metric`` never logged, or logged but
    never a finite number (NaN or infinite at every epoch: the training diverged)."""
    if any(metric in row for row in history):
        return f"{metric} was not a finite number at any epoch: the training diverged"
    return f"the training logged no {metric}"


def pruning_callback(trial: Any, metric: str) -> Any:
    """A Keras callback: one ``trial.report`` per epoch; stops ``fit`` when Optuna prunes."""
    import keras

    class Pruning(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.pruned_at: int | None = None
            #: The stopped trial's run this trial continues (:func:`continue_stopped`): said
            #: and its epochs reported once the training has taken it up, its data checked.
            self.continues: continuing.Continuation | None = None
            #: The training's last epoch (of its last phase): a trial that got there is
            #: trained whole, and is no more pruned (its result would be thrown away).
            self.last_epoch: int | None = None

        def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
            found = self.continues
            if found is None:
                return
            self.continues = None  # (said once: every phase's fit begins a training)
            try:
                trial.set_user_attr(continuing.CONTINUES, {"trial": found.trial, "epoch": found.epoch})
                continuing.report_done(trial, found.history, metric)
            except OSError as exc:  # the study's storage (its journal's disk), not the training
                raise StudyWriteFailed(exc) from exc

        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            value = (logs or {}).get(metric)
            if value is None or not math.isfinite(float(value)):
                return
            try:
                trial.report(float(value), epoch + 1)
                prune = trial.should_prune() and epoch + 1 != self.last_epoch
            except OSError as exc:  # the study's storage (its journal's disk), not the training
                raise StudyWriteFailed(exc) from exc
            if prune:
                self.pruned_at = epoch + 1
                self.model.stop_training = True

    return Pruning()


class StudyWriteFailed(Exception):
    """The study's storage failed under a trial's training (its pruning report: a full disk
    under the journal). :func:`run_trial` raises the original error on, for the worker to
    report as the storage's (:func:`storage_writes`), instead of failing the trial for it."""

    def __init__(self, error: OSError) -> None:
        super().__init__(str(error))
        self.error = error


@contextlib.contextmanager
def storage_writes(cfg: WorkerConfig) -> Iterator[None]:
    """Optuna's writes to the study's journal file: a disk fault there (a full disk; the append
    is Optuna's own ``open``/``write``/``fsync``) is the :class:`~cnnspec.errors.WriteError`
    that names the journal, with the hint to free space and run the same command again (exit
    1), not an internal error. A database storage that fails (its server gone) is the
    :class:`~cnnspec.errors.UsageError` that says so in the database's words (exit 2), with the
    hint to run the same command again once it is back. Other errors pass as they are."""
    try:
        yield
    except WriteError:
        raise
    except Exception as exc:
        journal = studies.journal_file(cfg.storage, cfg.out)
        fault = write_fault(exc, journal) if journal is not None else None
        if fault is None:
            if journal is None and cfg.storage and studies.database_failure(exc):
                raise studies.database_lost(exc, cfg.storage) from None
            raise
        fault.hint = (
            f"{write_fix(fault.errno)}, then run the same command again: the study goes on (a "
            "trial whose training had finished is recorded from its run folder, one that had "
            "not is trained again)"
        )
        record_storage_fault(cfg.out, fault)
        raise fault from None


#: The journal faults of this ``--out``'s workers (:func:`record_storage_fault`), in ``OUT``.
STORAGE_FAULTS = ".storage-faults.json"


def record_storage_fault(out: Path, fault: WriteError) -> None:
    """Keep, in ``OUT/.storage-faults.json``, that this process stopped on ``fault`` (its
    journal's disk): the trial it was running stays running in the study, which could not be
    told, and the next search fails it with this reason (:func:`storage_fault`), not as a dead
    worker's. Nothing when ``OUT`` can't be written either (the default journal's disk: the
    next search then says "worker died")."""
    if not out.is_dir():
        return
    faults = _storage_faults(out)
    faults = [f for f in faults if f.get("pid") != os.getpid()][-19:]  # (the last 20 processes)
    faults.append({"pid": os.getpid(), "process": process_identity(os.getpid()), "fault": str(fault)})
    with contextlib.suppress(OSError, WriteError):
        write_atomic(out / STORAGE_FAULTS, json.dumps(faults, indent=2) + "\n")


def _storage_faults(out: Path) -> list[dict[str, Any]]:
    try:
        found = json.loads((out / STORAGE_FAULTS).read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return []
    return [f for f in found if isinstance(f, dict)] if isinstance(found, list) else []


def storage_fault(out: Path, pid: Any, identity: Any) -> str | None:
    """The journal fault the worker process ``pid`` (``identity``: :func:`process_identity`)
    recorded in ``out`` before it stopped (:func:`record_storage_fault`), else ``None``."""
    for found in reversed(_storage_faults(out)):
        if (
            found.get("pid") == pid
            and found.get("process") == identity
            and isinstance(found.get("fault"), str)
        ):
            return found["fault"]
    return None


def with_seed(doc: Any, seed: int) -> None:
    """Write ``training.seed: seed`` into the trial's document ``doc`` (a copy of its own)."""
    training = doc.data.get("training")
    if not isinstance(training, dict):
        training = doc.data["training"] = {}
    training["seed"] = seed


def trial_spec_text(doc: Any, name: str, values: dict[str, Any], number: int, seed: int | None = None) -> str:
    from cnnspec.spec.dumping import dump_yaml
    from cnnspec.spec.zoo import written_data

    shown = ", ".join(f"{k}={v!r}" for k, v in values.items())
    header = (
        f"# trial {number} of the search of {name}: {shown}\n"
        "# the searched spec, composed (extends/use applied), with this trial's values written in\n"
    )
    if seed is not None:
        header += (
            f"# training.seed {seed} is the study's: the spec sets none, and every trial trains with it\n"
        )
    data = json.loads(json.dumps(written_data(doc.data, doc.variant), default=str))
    return header + dump_yaml(data, sort_keys=False, allow_unicode=True, default_flow_style=None)


def run_trial(cfg: WorkerConfig, compiled: Any, space: SearchSpace, study: Any, trial: Any) -> str:
    """Train one trial and tell the study; returns a one-line summary."""
    from cnnspec.analysis.passes import compile_doc
    from cnnspec.analysis.settings import training_config
    from cnnspec.reporting.html import write_report
    from cnnspec.reporting.own_data import run_data
    from cnnspec.spec.loader import SOURCE_TEXTS
    from cnnspec.training.outcomes import DataChanged, ReportInterrupted, TrainingInterrupted
    from cnnspec.training.progress import Display
    from cnnspec.training.trainer import train

    number = trial.number
    values = {d.name: suggest(trial, d) for d in space.dimensions}
    # the values as the trial uses them (Optuna stores a float range's 12 as 12.0, and a
    # mapping choice as its JSON text): best.yaml writes these (results._params)
    trial.set_user_attr("values", json.loads(json.dumps(values, default=str)))
    try:
        folder = claim_trial_dir(cfg.out, number, cfg.tag)
    except WriteError as fault:
        _tell_disk_fault(cfg, study, trial, fault)
        raise
    if folder is None:
        taken = trial_dir(cfg.out, number, cfg.tag)
        reason = f"{FOLDER_TAKEN}: {taken} already exists (not this study's; left as it is)"
        _tell_failed(study, trial, reason, cfg.out, values)
        # its values again, under the next number: a grid sampler counts the point visited, and
        # trained another twice in its place
        with contextlib.suppress(Exception):
            study.enqueue_trial(trial.params, user_attrs={"retry_of": number, "retry_reason": FOLDER_TAKEN})
        return f"trial {number}: skipped ({taken} already exists; the next trial takes its values)"
    trial.set_user_attr("run_dir", folder.name)  # (only now: trial.json goes only where it made it)
    # the --out that holds it: workers of other --out folders (and machines) share a storage,
    # and each one's summary says where a trial that is not in its own folder is
    trial.set_user_attr(OUT_ATTR, os.path.realpath(cfg.out))
    doc = apply_values(compiled.doc, space, values)
    seed = studies.kept_seed(study, compiled.doc)
    if seed is not None:
        with_seed(doc, seed)
        trial.set_user_attr("seed", seed)  # (best.yaml writes the best trial's own)
    # the run folder's spec.yaml is this trial's text (rundir writes SOURCE_TEXTS[doc.file]
    # for a spec without a file); locations stay the searched file's, for relative data paths
    doc.file = f"<trial {number}>"
    SOURCE_TEXTS[doc.file] = trial_spec_text(doc, compiled.name, values, number, seed)
    started = time.time()
    pruning = None
    try:
        try:
            trial_compiled = compile_doc(doc, max_params=cfg.max_params, allow_outside=cfg.allow_outside)
            pruning = pruning_callback(trial, space.objective)
            continued = continue_stopped(cfg, study, trial, folder, trial_compiled)
            if pruning is not None:  # (it says so, and reports the epochs done, once taken up)
                pruning.continues = continued
                pruning.last_epoch = training_config(trial_compiled).epochs

            def fit(resume: Path | None) -> Any:
                return train(
                    trial_compiled,
                    out=folder,
                    resume=resume,
                    display=Display("quiet"),
                    command=[*sys.argv[:1], "search", str(cfg.spec), "--study", cfg.study_name],
                    write_report=write_report if cfg.report else None,
                    callbacks=[pruning],
                    run_data=run_data,  # the weights run's split: its images among the test images
                )

            try:
                result = fit(folder if continued is not None else None)
            except DataChanged:  # (refused before the training wrote anything)
                if continued is None or not restart_changed(trial, continued, folder):
                    raise
                if pruning is not None:
                    pruning.continues = None
                result = fit(None)
        except Exception:
            if stop_noted():  # the stop's KeyboardInterrupt, swallowed (h5py in the middle of a
                raise KeyboardInterrupt from None  # model.save), came back as another error
            raise
    except (TrainingInterrupted, ReportInterrupted, KeyboardInterrupt):
        # the search records the stop itself: its own writes are not cut by it (atomic_path's
        # check_stop), and the runner then writes what finished and exits as stopped
        stop_handled()
        finished = finished_run(folder)
        if finished is None:
            stop(study, study._storage.get_trial(trial._trial_id), cfg.out)
        else:  # the interrupt came once the results were written: a result, not a retry
            for key, text in recorded_split(folder).items():  # (as record_split would)
                trial.set_user_attr(key, text)
            _tell_result(cfg, study, trial, space, values, folder, finished, time.time() - started, None)
        raise KeyboardInterrupt from None  # the search stops: the runner writes what finished
    except WriteError as fault:
        # not the trial's fault: it is tried again when the search is run again, and this
        # worker stops (its next trial would fail the same way, again and again)
        _tell_disk_fault(cfg, study, trial, fault)
        raise
    except StudyWriteFailed as failed:  # the storage's fault, not the trial's (storage_writes)
        raise failed.error from None
    except (SpecError, UsageError) as exc:
        reason = failure_text(exc)
        _tell_failed(study, trial, f"{type(exc).__name__}: {reason}", cfg.out, values)
        first, _, rest = reason.partition("\n")
        return f"trial {number}: failed: {first}\n{rest}" if rest else f"trial {number}: failed ({first})"
    except Exception as exc:
        if cfg.storage and studies.database_failure(exc):  # the study's, not the trial's: the
            raise  # worker stops (storage_writes), and the trial stays running to be retried
        _tell_failed(study, trial, f"{type(exc).__name__}: {exc}", cfg.out, values)
        return f"trial {number}: failed ({type(exc).__name__}: {exc})"
    pruned_at = pruning.pruned_at if pruning is not None else None
    record_split(trial, result)
    return _tell_result(
        cfg,
        study,
        trial,
        space,
        values,
        folder,
        (result.history, result.metrics),
        time.time() - started,
        pruned_at,
    )


def failure_text(exc: SpecError | UsageError) -> str:
    """The whole of the error a trial failed with, as ``cnnspec train`` shows it: each error's
    ``file:line:col: error: path: message`` (a message may run over lines: the bad image files
    it names) and its hint. Its first line alone was kept: "2 bad image file(s) of 92:", the
    files and what to do left out of trial.json, search.json and the search's last error."""
    if isinstance(exc, SpecError):
        said = [d.headline() + (f"\n  hint: {d.hint}" if d.hint else "") for d in exc.errors]
        if said:
            return "\n".join(said)
    hint = getattr(exc, "hint", None)
    text = str(exc).strip() or type(exc).__name__
    return text + (f"\n  hint: {hint}" if hint and f"hint: {hint}" not in text else "")


def record_split(trial: Any, result: Any) -> None:
    """Record in ``trial`` how its test split stands to the run its weights come from, which its
    training said once, as it started: ``seed_from``, the run whose split seed it took (its test
    images are none those weights learnt), or ``test_note``, how many of its test images they
    trained or validated on (a trial of that run's data that drew another ``data.test_split``
    than that run's, or that trains with a ``training.seed`` of the spec's other than its).
    search.json lists both (:func:`cnnspec.search.results.trial_rows`), best.yaml says the best
    trial's."""
    for key, value in (("seed_from", result.seed_from), ("test_note", result.shared_note)):
        if isinstance(value, str):
            trial.set_user_attr(key, value)


#: The attributes :func:`record_split` sets, as the trial's lock.json records them.
SPLIT_ATTRS = ("seed_from", "test_note")


def recorded_split(folder: Path) -> dict[str, str]:
    """What :func:`record_split` records of a trial whose training ended without returning its
    result (an interrupt after its results were written, a worker that died then): its run
    folder's lock.json's ``seed_from`` and ``test_note`` (:func:`cnnspec.training.rundir.start`),
    those that are there."""
    try:
        lock = json.loads((folder / "lock.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return {}
    if not isinstance(lock, dict):
        return {}
    return {key: lock[key] for key in SPLIT_ATTRS if isinstance(lock.get(key), str)}


def continue_stopped(
    cfg: WorkerConfig, study: Any, trial: Any, folder: Path, compiled: Any
) -> continuing.Continuation | None:
    """The stopped trial's run that ``trial``, its retry, continues, moved into ``folder``
    (:func:`continuing.take_over`; the pruning callback then says so and reports the epochs it
    had done, once the training has taken it up). A retry with nothing to continue trains from
    the start, its ``restarted`` attribute saying why; any other trial is left as it is
    (``None``)."""
    from cnnspec.training.interrupts import GATE

    source = continuing.stopped_source(study, trial)
    if source is None:
        return None
    found = continuing.find_continuation(
        cfg.out, source, trial.user_attrs.get("values"), compiled.spec_hash()
    )
    if isinstance(found, continuing.Continuation):
        with GATE.deferred():  # a stop waits until the run is moved whole (then stops this trial)
            why = continuing.take_over(found, folder, compiled, trial.number)
        if why is None:
            return found
        found = why
    trial.set_user_attr(continuing.RESTARTED, f"trained from the start: {found}")
    return None


def restart_changed(trial: Any, found: continuing.Continuation, folder: Path) -> bool:
    """Whether the retry ``trial`` can start over in ``folder`` after its training refused the
    stopped trial's run it was to continue (``found``) for data that changed since: the run is
    moved back (:func:`continuing.give_back`) and its ``restarted`` attribute says why;
    ``False`` when the run cannot be moved back (the refusal then fails the trial)."""
    from cnnspec.training.interrupts import GATE

    with GATE.deferred():  # (a stop waits until the run is back whole)
        if continuing.give_back(found, folder) is not None:
            return False
    why = f"the data changed since trial {found.trial} was stopped (its content hash differs)"
    trial.set_user_attr(continuing.RESTARTED, f"trained from the start: {why}")
    return True


def finished_run(folder: Path) -> tuple[list[dict[str, Any]], dict[str, Any]] | None:
    """The history and metrics of a trial whose training finished and wrote ``metrics.json``
    (all its epochs run) before an interrupt stopped what follows (its report), else ``None``:
    such a trial is a result, not an interrupted one to train again."""
    try:
        metrics = json.loads((folder / "metrics.json").read_text(encoding="utf-8"))
        columns = json.loads((folder / "history.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None
    if (
        not isinstance(metrics, dict)
        or not isinstance(columns, dict)
        or not (folder / "model.keras").is_file()
    ):
        return None
    epochs = columns.get("epoch")
    if not isinstance(epochs, list) or metrics.get("epochs_run") != len(epochs):
        return None
    rows = [
        {
            key: float(values[index])
            for key, values in columns.items()
            if isinstance(values, list) and index < len(values) and isinstance(values[index], (int, float))
        }
        for index in range(len(epochs))
    ]
    return rows, metrics


def _tell_result(
    cfg: WorkerConfig,
    study: Any,
    trial: Any,
    space: SearchSpace,
    values: dict[str, Any],
    folder: Path,
    outcome: tuple[list[dict[str, Any]], dict[str, Any]],
    seconds: float,
    pruned_at: int | None,
) -> str:
    """Tell the study what a finished training gave (complete, pruned, or failed: no objective,
    or diverged), write ``trial.json``; the one-line summary."""
    history, metrics = outcome
    number = trial.number
    value = objective_value(history, space.objective, space.direction)
    test_key, test_value = test_headline(metrics)
    info: dict[str, Any] = {
        "params": values,
        "objective": space.objective,
        "value": value,
        "epochs": len(history),
        "pruned_at_epoch": pruned_at,
        "test_accuracy": metrics.get("test_accuracy"),
        "test_metric": test_key,
        "test_value": test_value,
        "seconds": round(seconds, 2),
    }
    from optuna.trial import TrialState

    why = diverged(history, metrics)
    if pruned_at is not None:
        info["state"] = "PRUNED"
    elif value is None or why is not None:
        info["failed"] = why or no_objective(history, space.objective)
        info["state"] = "FAIL"
    else:
        info["state"] = "COMPLETE"
    # trial.json first: when the study's storage can't take the outcome (a full disk under the
    # journal), the run folder still says it, and the next search records it from there
    # (record_finished) instead of training the trial again
    _write_trial_json(cfg.out, trial, info)
    trial.set_user_attr("test_accuracy", metrics.get("test_accuracy"))
    trial.set_user_attr("test_metric", test_key)
    trial.set_user_attr("test_value", test_value)
    trial.set_user_attr("epochs", len(history))
    trial.set_user_attr("seconds", info["seconds"])  # (search.json's figure: trial.json's)
    if info["state"] == "PRUNED":
        trial.set_user_attr("pruned_at_epoch", pruned_at)
        study.tell(trial, state=TrialState.PRUNED)
    elif info["state"] == "FAIL":
        trial.set_user_attr("failed", info["failed"])
        study.tell(trial, state=TrialState.FAIL)
    else:
        study.tell(trial, value)
    shown = "n/a" if value is None else f"{value:.4f}"
    what = f"pruned at epoch {pruned_at}" if pruned_at else info["state"].lower()
    if "failed" in info:
        what = f"failed: {info['failed']}"
    went_on = trial.user_attrs.get(continuing.CONTINUES)
    if isinstance(went_on, dict):
        what += f", continued trial {went_on.get('trial')} after epoch {went_on.get('epoch')}"
    return (
        f"trial {number}: {space.objective} {shown} ({what}, {len(history)} epoch(s), "
        f"{test_key} {float('nan') if test_value is None else test_value:.4f}, {seconds:.1f}s) → {folder}"
    )


def test_headline(metrics: dict[str, Any]) -> tuple[str, float | None]:
    """The key and value of a run's headline test metric: its task's (``test_accuracy``,
    ``test_mean_iou``, ``test_f1_macro``, ``test_mae``); for several outputs the first
    output's, named ``OUTPUT.test_…``."""
    outputs = metrics.get("outputs")
    if isinstance(outputs, dict) and outputs:
        name, part = next(iter(outputs.items()))
        key, value = test_headline(part)
        return f"{name}.{key}", value
    from cnnspec.training.task_metrics import HEADLINE_KEYS

    keys = HEADLINE_KEYS.get(str(metrics.get("task", "classification")), HEADLINE_KEYS["classification"])
    key = keys[0][0]  # the first of the task's headline figures (`cnnspec runs`, report.html)
    value = metrics.get(key)
    return key, float(value) if isinstance(value, (int, float)) else None


def _tell_disk_fault(cfg: WorkerConfig, study: Any, trial: Any, fault: WriteError) -> None:
    """Fail ``trial`` as stopped by ``fault`` (retried: :func:`_retryable`) and give ``fault``
    the hint to run the search again. On a full disk the study's own storage may not take it:
    the trial then stays running, and the next search fails it as its worker's ("worker died",
    or the journal's fault its worker noted: :func:`record_storage_fault`)."""
    fault.hint = _retry_hint(trial.number, fault.errno)
    written = {
        "path": str(fault.path),
        "reason": fault.reason,
        "errno": fault.errno,
        "needed": fault.needed,
        "free": fault.free,
    }
    with contextlib.suppress(Exception):
        frozen = study._storage.get_trial(trial._trial_id)
        fail(study, frozen, f"{DISK_FAULT}: {fault}"[:500], cfg.out, {"write_error": written})


def _tell_failed(study: Any, trial: Any, reason: str, out: Path, values: dict[str, Any]) -> None:
    from optuna.trial import TrialState

    with contextlib.suppress(Exception):
        trial.set_user_attr("failed", reason[:500])
    with contextlib.suppress(Exception):
        study.tell(trial, state=TrialState.FAIL)
    _write_trial_json(out, trial, {"state": "FAIL", "failed": reason, "params": values})


def open_study(
    cfg: WorkerConfig, space: SearchSpace, epochs: int, meaning: dict[str, Any] | None = None
) -> Any:
    """The study (refused when its space or ``meaning`` differ), with this worker's sampler:
    its seed keyed by a trial number this worker alone gets, so that workers started together,
    a continued study and a worker that replaces a dead one each draw new values; a lone
    worker's key is the number of trials already there (:mod:`cnnspec.search.seeding`)."""
    optuna = studies.import_optuna()
    storage = studies.open_storage(cfg.storage, cfg.out)
    label = studies.storage_label(cfg.storage, cfg.out)
    study = studies.create_study(optuna, storage, cfg.study_name, space, label, meaning)
    existing = len(study.get_trials(deepcopy=False))
    study.sampler = studies.make_sampler(optuna, space, cfg.index, existing)
    study.pruner = studies.make_pruner(optuna, space, epochs)
    return study


def _quiet_tensorflow() -> None:
    """TensorFlow imported without its start-up lines; its retracing warnings (one process
    trains many models) silenced."""
    from cnnspec.training.runtime import import_keras

    import_keras()
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")


def ask_trial(cfg: WorkerConfig, study: Any, limit: int, asked: list[Any] | None = None) -> Any | None:
    """This worker's next trial (a waiting one first: a retry, an enqueued one), ``None`` once
    the study has ``limit`` trials. Under :func:`ask_lock`: dead workers' trials are failed
    first, and no other worker of the study (of any ``--out``, on a shared storage) takes the
    same waiting trial or the last one.

    A Ctrl-C or SIGTERM in here never leaves a trial running (the next search failed it as a
    dead worker's, "worker died", and counted the user's stop a failure): the first waits for
    the end of the section (:meth:`~cnnspec.training.interrupts.InterruptGate.deferred`) and
    the trial asked is then recorded stopped (:func:`stop`); one that comes before the ask
    asks none. One raised in the middle of ``study.ask()`` (a second signal, or another
    handler than the gate's) stops the trial it had already made running: still under the
    lock, the running trials that were not running before the ask are this worker's.
    ``asked``: the trial is appended to it too while the stop still waits, for a caller whose
    own stop handler must see it (a signal handled as this returns, before the caller has
    it)."""
    from cnnspec.training.interrupts import GATE

    trial = None
    try:
        with GATE.deferred(), ask_lock(cfg.out, cfg.storage, cfg.study_name):
            fail_dead_trials(study, cfg.out)
            fail_stale(study, cfg.out)  # a database's trials whose heartbeat stopped (any machine)
            if counted(study) >= limit:
                return None
            GATE.check()  # a stop that came during the sweep: no trial asked only to be stopped
            before = _running_ids(study)
            try:
                trial = study.ask()
                trial.set_user_attr("pid", os.getpid())  # under the lock: a sweep sees it alive
                trial.set_user_attr("process", process_identity(os.getpid()))  # (PIDs get reused)
                trial.set_user_attr("host", socket.gethostname())
                if asked is not None:
                    asked.append(trial)
            except KeyboardInterrupt:  # (recorded here, under the lock)
                if trial is not None:  # asked, its attributes being set
                    stop_unstarted(study, trial, cfg.out)
                else:  # in the middle of study.ask()
                    _stop_asked(study, before, cfg.out)
                trial = None
                raise
    except KeyboardInterrupt:
        if trial is not None:  # the stop waited for the end of the section: the trial is asked
            stop_unstarted(study, trial, cfg.out)
        raise
    return trial


def _running_ids(study: Any) -> set[int]:
    """The storage ids of the study's running trials."""
    from optuna.trial import TrialState

    return {t._trial_id for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}


def _stop_asked(study: Any, before: set[int], out: Path) -> None:
    """Record stopped the trial a ``study.ask()`` cut by a Ctrl-C had made running (a new one,
    or a waiting one it took) before it could return it: the running trials not in ``before``,
    taken under :func:`ask_lock`, which every worker of the storage holds while it asks."""
    from optuna.trial import TrialState

    with contextlib.suppress(Exception):  # (a storage gone: the next search's sweep fails it)
        for frozen in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            if frozen._trial_id not in before and "pid" not in frozen.user_attrs:
                stop(study, frozen, out)


def run_worker(cfg: WorkerConfig) -> int:
    """Run trials until the study has ``cfg.trials`` (or ``cfg.timeout`` has passed since the
    worker was ready: its set-up, TensorFlow's import above all, spends none of it); exit status."""
    from optuna.storages._heartbeat import get_heartbeat_thread

    from cnnspec.analysis.passes import compile_spec
    from cnnspec.analysis.settings import training_config

    compiled = compile_spec(
        cfg.spec, cfg.overrides, allow_outside=cfg.allow_outside, max_params=cfg.max_params
    )
    space = compiled.search
    if space is None:
        raise UsageError(f"expected a search: section in {cfg.spec}")
    meaning = studies.trial_meaning(compiled.doc, space, cfg.overrides)
    study = open_study(cfg, space, training_config(compiled).epochs, meaning)
    if not studies.spec_seeds(compiled.doc):  # every trial trains with the study's one seed
        with ask_lock(cfg.out, cfg.storage, cfg.study_name):  # (workers starting it together)
            adopted = studies.adopted_split_seed(compiled)
            studies.study_seed(study, space, None if adopted is None else adopted[0])
    _quiet_tensorflow()
    limit = min(cfg.trials, studies.grid_size(space)) if space.sampler == "grid" else cfg.trials
    label = f"[worker {cfg.index}] " if cfg.workers > 1 else ""
    deadline = time.monotonic() + cfg.timeout if cfg.timeout is not None else None
    while True:
        if deadline is not None and time.monotonic() >= deadline:
            break  # (the search says so: cnnspec.cli.search.timeout_text)
        with storage_writes(cfg):  # a full disk under the journal: exit 1 naming it, not 3
            asked: list[Any] = []  # (the trial, before the call returns it: a stop may come between)
            try:
                trial = ask_trial(cfg, study, limit, asked)
                if trial is None:
                    break
                with get_heartbeat_thread(trial._trial_id, study._storage):  # a no-op for the journal
                    line = run_trial(cfg, compiled, space, study, trial)
            except KeyboardInterrupt:
                for unstarted in asked:  # (one its training or ask_trial recorded: left as it is)
                    stop_unstarted(study, unstarted, cfg.out)
                raise
        if not cfg.quiet:
            # a plain line (no Rich), so only control characters need escaping (render.clean's
            # escaping): the line quotes the --out path and a failed trial's exception text,
            # the user's and the data's, whose ESC sequences reached the terminal raw
            # (line by line: a failed trial's reason runs over several, the bad files it names)
            print("\n".join(f"{label}{printable(part)}" for part in line.split("\n")), flush=True)
    return 0
