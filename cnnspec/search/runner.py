"""``cnnspec search``'s parent process: the study, the workers, Ctrl-C, and the results.

With one worker the trials run in this process. With ``W`` workers, ``W`` processes are
started (``spawn``: TensorFlow is imported only inside them), each in its own process group so
that a terminal's Ctrl-C reaches only this process, which passes it on. The runner installs its
own handler for SIGINT and SIGTERM: a search started in the background of a script inherits
SIGINT *ignored*, and Python keeps an inherited ignore, so without it a Ctrl-C (``kill -INT``)
was discarded while the workers trained on; a SIGTERM would have killed the runner alone and
orphaned them. The handler only sets a flag (never an exception inside ``multiprocessing``'s
start-up or a join); the poll loop then stops: it starts no more workers, forwards SIGINT to
every live one (each stops its trial at the next batch, records it stopped, its values enqueued
again for the next run, and exits), and escalates to SIGTERM and SIGKILL for a worker still
alive after a grace period (or at once on a second and third Ctrl-C), always reaping them.
A worker is signalled only once it says its handler is in place (an event): before that a
SIGINT would print a traceback from the middle of Python's start-up, or be lost; a worker that
gets ready after the stop sees the stop event and ends at once. A worker whose runner is gone
(killed) stops by itself.

A worker that dies (SIGKILL, out of memory) loses only its trial: it is failed and enqueued once
more, and a new worker takes the dead one's place while trials remain. A worker that stops on an
error prints it and exits with a status that says which (a file it could not write, a usage
error, an unexpected error); the search's notes name it (:func:`worker_exit_note`).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from cnnspec.errors import UsageError, WriteError, printable
from cnnspec.fileio import stop_handled
from cnnspec.search import study as studies
from cnnspec.search.redaction import scrub
from cnnspec.search.spawning import WorkerProcess
from cnnspec.search.worker import (
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    EXIT_WRITE,
    WorkerConfig,
    counted,
    fail_dead_trials,
    run_worker,
)
from cnnspec.training.interrupts import GATE

#: How often a worker process may be replaced after dying, per worker slot.
MAX_RESTARTS = 3
#: Seconds between two looks at the workers and the stop flag.
POLL_S = 0.2
#: After Ctrl-C, seconds a worker has to stop its trial and exit before it gets SIGTERM (it
#: raises at once), and then before SIGKILL. Generous: a worker may still be importing
#: TensorFlow on a loaded machine, and it saves before it exits.
GRACE_S = 60.0
TERM_GRACE_S = 15.0
#: How often a worker looks whether its runner still exists.
PARENT_CHECK_S = 1.0

STOP_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM})


@dataclass
class SearchOutcome:
    """What the search ended with (the CLI prints it)."""

    study: Any
    interrupted: bool
    dead_workers: int
    notes: list[str]
    #: The exit statuses of worker processes that stopped on an error of their own (a write
    #: failure, a usage or an unexpected error), in the order they stopped: the search then
    #: fails as one worker in this process would have (:func:`search_exit_status`).
    worker_errors: list[int] = field(default_factory=list)


def search_exit_status(worker_errors: list[int]) -> int | None:
    """The search's exit status for workers that stopped on errors of their own: 1 for a
    write failure (the command can run again once the disk has room), 2 for a usage error, 3
    for anything else, the most serious first; None when none did."""
    if not worker_errors:
        return None
    statuses = [1 if code == EXIT_WRITE else 2 if code == EXIT_USAGE else 3 for code in worker_errors]
    return max(statuses)


def _child(cfg: WorkerConfig, runner: int, ready: Any, stopping: Any) -> None:
    """A worker process: its own process group (the runner forwards Ctrl-C once).

    ``ready`` tells the runner it may signal this process now; ``stopping``, set by the runner
    before it looks at ``ready``, ends a worker that got ready too late for the signal."""
    with contextlib.suppress(OSError):
        os.setpgid(0, 0)
    for number in STOP_SIGNALS:
        signal.signal(number, GATE.handler)
    GATE.notes = True  # (as _noting_stops: the process ends with its search)
    try:
        ready.set()
        if stopping.is_set():
            raise KeyboardInterrupt
        _watch_runner(runner)
        code, error = worker_outcome(cfg)
    except KeyboardInterrupt:
        code, error = EXIT_INTERRUPTED, None
    if error is not None:  # the runner's note names the kind (worker_exit_note) and points here
        print(worker_error_line(cfg.index, error), flush=True)
    os._exit(code)  # no atexit handlers of TensorFlow's threads: they can hang a spawned child


def worker_error_line(index: int, error: str) -> str:
    """The line a worker process prints when it stops on ``error``. Plain text (no Rich): the
    message quotes paths and the storage's text, so its control characters are shown escaped
    (an ESC sequence reached the terminal raw), as :func:`cnnspec.cli.render.clean` does for
    every plain line; its own line breaks stay (a list, one item per line), as fail_usage
    keeps them."""
    shown = "\n".join(printable(line) for line in error.split("\n"))
    return f"error: [worker {index}] {shown}"


def worker_outcome(cfg: WorkerConfig) -> tuple[int, str | None]:
    """Run a worker process's trials: its exit status and, when it failed, its error message.

    A file it could not write (a trial's disk fault: the study records it, and the search then
    fails with it) is :data:`EXIT_WRITE`; a usage error :data:`EXIT_USAGE`; anything else
    :data:`EXIT_INTERNAL`. A Ctrl-C is raised on. The message never holds the password of
    ``--storage`` (a driver's error may quote the URL or the host it parsed from it)."""
    try:
        return run_worker(cfg), None
    except WriteError as exc:
        return EXIT_WRITE, scrub(str(exc), cfg.storage)
    except UsageError as exc:
        return EXIT_USAGE, scrub(str(exc), cfg.storage)
    except Exception as exc:  # a worker's own failure: the parent reports the exit status
        return EXIT_INTERNAL, scrub(f"{type(exc).__name__}: {exc}", cfg.storage)


#: What a worker's exit status says it stopped on (:func:`worker_outcome`).
_STOPPED_ON = {
    EXIT_WRITE: "a write failure (a full or failing disk)",
    EXIT_USAGE: "a usage error",
    EXIT_INTERNAL: "an unexpected error",
}


def worker_exit_note(index: int, code: int) -> str:
    """The search's note for worker ``index`` that ended with exit status ``code`` (not 0 and
    not a Ctrl-C's): what it stopped on; its own error line was printed when it stopped. That
    line stays out of the note, which is printed as Rich markup: a message's ``[…]`` (in a path)
    would be read as a style. Any other status (1: Python's start-up of the process failed, with
    a traceback) is given as it is."""
    stopped_on = _STOPPED_ON.get(code)
    if stopped_on is None:
        return f"worker {index} ended with exit status {code}"
    return f"worker {index} stopped on {stopped_on}; its error is printed above"


def _watch_runner(runner: int) -> None:
    """Stop this worker like a Ctrl-C when its runner is gone (killed: nobody would stop it),
    and end it outright if that does not work within the grace periods."""

    def watch() -> None:
        while os.getppid() == runner:
            time.sleep(PARENT_CHECK_S)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(GRACE_S + TERM_GRACE_S)
        os._exit(EXIT_INTERRUPTED)

    threading.Thread(target=watch, name="cnnspec-runner-watch", daemon=True).start()


def run_search(cfg: WorkerConfig, workers: int, study: Any) -> SearchOutcome:
    """Run the workers until the study has its trials; Ctrl-C stops them cleanly."""
    notes: list[str] = []
    with studies_lock(cfg):
        dead = fail_dead_trials(study, cfg.out)
    if dead:
        notes.append(dead_note(study, dead))
    from cnnspec.search.worker import counted

    left = cfg.trials - counted(study)
    if workers > max(left, 1):  # a worker more than the trials left has none to run: it only starts up
        said = (
            f"{left} trial(s) left to run, so {left} worker(s) started"
            if left > 0
            else "no trial left to run"
        )
        notes.append(f"--workers {workers}: {said}")
        workers = max(left, 1)  # (one, in this process, to finish the study's files)
    if workers <= 1:
        return _in_process(cfg, study, notes)
    return _processes(cfg, workers, study, notes)


def dead_note(study: Any, dead: list[int]) -> str:
    """The search's note on the running trials ``dead`` it failed as it started: their worker
    died, or stopped on its journal's disk (:func:`cnnspec.search.worker.storage_fault`)."""
    from cnnspec.search.worker import DISK_FAULT

    reasons = {t.number: t.user_attrs.get("failed") for t in study.get_trials(deepcopy=False)}
    faulted = [n for n in dead if str(reasons.get(n) or "").startswith(DISK_FAULT)]
    died = [n for n in dead if n not in faulted]
    parts = []
    if died:
        parts.append(f"trial(s) {', '.join(map(str, died))} of a worker that died")
    if faulted:
        parts.append(f"trial(s) {', '.join(map(str, faulted))} of a worker stopped by its journal's disk")
    return f"{' and '.join(parts)} were failed and enqueued again"


@contextlib.contextmanager
def studies_lock(cfg: WorkerConfig) -> Any:
    from cnnspec.search.worker import ask_lock

    with ask_lock(cfg.out, cfg.storage, cfg.study_name):
        yield


@contextlib.contextmanager
def _handling(handler: Any) -> Iterator[None]:
    """``handler`` for SIGINT and SIGTERM in place of whatever was inherited (an ignored SIGINT
    included), the previous handlers back afterwards; outside the main thread, nothing changes."""
    previous: dict[int, Any] = {}
    with contextlib.suppress(ValueError):  # not the main thread
        for number in STOP_SIGNALS:
            previous[number] = signal.signal(number, handler)
    try:
        yield
    finally:
        for number, before in previous.items():
            signal.signal(number, before)


@contextlib.contextmanager
def _noting_stops() -> Iterator[None]:
    """While inside, a Ctrl-C or SIGTERM raised at once is also noted, as ``train``'s own is
    (:attr:`~cnnspec.training.interrupts.InterruptGate.notes`): one that h5py swallows in the
    middle of a trial's ``model.save`` and turns into an error of its own then stops the trial
    as stopped (:func:`cnnspec.search.worker.run_trial`), not as failed with that error while
    the search trains on."""
    noting, GATE.notes = GATE.notes, True
    GATE.requested = False  # a stop remembered for an earlier command of this process is its own
    try:
        yield
    finally:
        # this search's stop is said (or noted): a training later in this process (the API, a
        # test) must not take it for its own, as batch_boundary_stops lets train's go
        GATE.notes, GATE.requested = noting, False


def _in_process(cfg: WorkerConfig, study: Any, notes: list[str]) -> SearchOutcome:
    interrupted = False
    with _handling(GATE.handler), _noting_stops():
        try:
            run_worker(cfg)
        except KeyboardInterrupt:
            interrupted = True
            stop_handled()  # the search stops as stopped: the summary it writes now is its own
    return SearchOutcome(study, interrupted, 0, notes)


class StopRequest:
    """The runner's SIGINT/SIGTERM handler: counts the signals; the poll loop acts on them."""

    def __init__(self) -> None:
        self.count = 0

    def handler(self, signum: int, frame: Any) -> None:
        self.count += 1


def _processes(cfg: WorkerConfig, workers: int, study: Any, notes: list[str]) -> SearchOutcome:
    context = multiprocessing.get_context("spawn")
    procs: dict[int, Any] = {}
    restarts = dict.fromkeys(range(workers), 0)
    dead_workers = 0
    worker_errors: list[int] = []
    stop = StopRequest()
    stopping = context.Event()
    ready: dict[int, Any] = {}  # by worker slot: its process may be signalled

    def start(index: int) -> None:
        ready[index] = context.Event()
        args = (replace(cfg, index=index), os.getpid(), ready[index], stopping)
        proc = WorkerProcess(target=_child, args=args, daemon=False)  # data in its pipe first
        proc.start()
        procs[index] = proc

    with _handling(stop.handler):
        for index in range(workers):
            if stop.count:
                break
            start(index)
        while procs and not stop.count:
            time.sleep(POLL_S)
            for index, proc in list(procs.items()):
                if proc.is_alive() or stop.count:
                    continue
                proc.join(POLL_S)
                del procs[index]
                code = proc.exitcode
                if code is not None and code < 0:
                    dead_workers += 1
                    notes.append(f"worker {index} was killed by signal {-code}")
                    with studies_lock(cfg):
                        failed = fail_dead_trials(study, cfg.out)
                        remaining = counted(study) < cfg.trials
                    if failed:
                        notes.append(f"trial(s) {', '.join(map(str, failed))} failed with it; enqueued again")
                    if remaining and restarts[index] < MAX_RESTARTS and not stop.count:
                        restarts[index] += 1
                        start(index)
                elif code not in (0, EXIT_INTERRUPTED, None):
                    notes.append(worker_exit_note(index, code))
                    worker_errors.append(code)
        if stop.count:
            stopping.set()  # before reading ready: a worker either sees it or is signalled
            _stop_workers(procs, ready, stop, notes)
            if any(proc.exitcode == -signal.SIGKILL for proc in procs.values()):
                with studies_lock(cfg):
                    fail_dead_trials(study, cfg.out)
    return SearchOutcome(study, bool(stop.count), dead_workers, notes, worker_errors)


def _stop_workers(procs: dict[int, Any], ready: dict[int, Any], stop: StopRequest, notes: list[str]) -> None:
    """SIGINT to every live worker that is ready for it (the others end when they get ready);
    SIGTERM, then SIGKILL, to those still alive after a grace period or a further Ctrl-C;
    returns once every worker is reaped."""
    steps = [(signal.SIGINT, GRACE_S), (signal.SIGTERM, TERM_GRACE_S), (signal.SIGKILL, None)]
    for number, grace in steps:
        alive = {index: proc for index, proc in procs.items() if proc.is_alive()}
        if not alive:
            return
        if number != signal.SIGINT:
            names = ", ".join(map(str, alive))
            notes.append(f"worker(s) {names} still running after Ctrl-C: sent {signal.Signals(number).name}")
        for index, proc in alive.items():
            if number == signal.SIGINT and not ready[index].is_set():
                continue  # still starting up: it sees ``stopping`` once its handler is in place
            with contextlib.suppress(ProcessLookupError, TypeError):
                os.kill(proc.pid, number)
        seen = stop.count
        deadline = None if grace is None else time.monotonic() + grace
        while any(proc.is_alive() for proc in alive.values()):
            if deadline is not None and (time.monotonic() >= deadline or stop.count > seen):
                break  # escalate
            for proc in alive.values():
                proc.join(POLL_S / len(alive))
    for proc in procs.values():
        proc.join()


def out_folder(out: Path) -> Path:
    """The search folder ``out``, made when missing; a ``cnnspec train`` run folder is refused
    before anything is written (:func:`studies.check_search_folder`)."""
    studies.check_search_folder(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create the search folder {out}: {exc.strerror or exc}") from None
    return out


__all__ = ["SearchOutcome", "WorkerConfig", "out_folder", "run_search", "studies"]
