"""``cnnspec search``'s parent process: the study, the workers, Ctrl-C, and the results.

With one worker the trials run in this process. With ``W`` workers, ``W`` processes are
started (``spawn``: TensorFlow is imported only inside them), each in its own process group so
that Ctrl-C reaches only this process, which passes one SIGINT on: every worker stops its trial
at the next batch, marks it failed ("interrupted", enqueued again for the next run) and exits.
A worker that dies (SIGKILL, out of memory) loses only its trial: it is failed and enqueued once
more, and a new worker takes the dead one's place while trials remain.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from cnnspec.errors import UsageError
from cnnspec.search import study as studies
from cnnspec.search.worker import EXIT_INTERRUPTED, WorkerConfig, counted, fail_dead_trials, run_worker
from cnnspec.training.interrupts import GATE

#: How often a worker process may be replaced after dying, per worker slot.
MAX_RESTARTS = 3


@dataclass
class SearchOutcome:
    """What the search ended with (the CLI prints it)."""

    study: Any
    interrupted: bool
    dead_workers: int
    notes: list[str]


def _child(cfg: WorkerConfig) -> None:
    """A worker process: its own process group (the parent forwards Ctrl-C once)."""
    with contextlib.suppress(OSError):
        os.setpgid(0, 0)
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, GATE.handler)
    try:
        code = run_worker(cfg)
    except KeyboardInterrupt:
        code = EXIT_INTERRUPTED
    except UsageError as exc:
        print(f"error: [worker {cfg.index}] {exc}", flush=True)
        code = 2
    except Exception as exc:  # a worker's own failure: the parent reports the exit status
        print(f"error: [worker {cfg.index}] {type(exc).__name__}: {exc}", flush=True)
        code = 3
    os._exit(code)  # no atexit handlers of TensorFlow's threads: they can hang a spawned child


def run_search(cfg: WorkerConfig, workers: int, study: Any) -> SearchOutcome:
    """Run the workers until the study has its trials; Ctrl-C stops them cleanly."""
    notes: list[str] = []
    with studies_lock(cfg):
        dead = fail_dead_trials(study, cfg.out)
    if dead:
        notes.append(
            f"trial(s) {', '.join(map(str, dead))} of a worker that died were failed and enqueued again"
        )
    if workers <= 1:
        return _in_process(cfg, study, notes)
    return _processes(cfg, workers, study, notes)


@contextlib.contextmanager
def studies_lock(cfg: WorkerConfig) -> Any:
    from cnnspec.search.worker import ask_lock

    with ask_lock(cfg.out):
        yield


def _in_process(cfg: WorkerConfig, study: Any, notes: list[str]) -> SearchOutcome:
    previous: dict[int, Any] = {}
    with contextlib.suppress(ValueError):  # not the main thread
        for number in (signal.SIGINT, signal.SIGTERM):
            previous[number] = signal.signal(number, GATE.handler)
    interrupted = False
    try:
        run_worker(cfg)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    return SearchOutcome(study, interrupted, 0, notes)


def _processes(cfg: WorkerConfig, workers: int, study: Any, notes: list[str]) -> SearchOutcome:
    context = multiprocessing.get_context("spawn")
    procs: dict[int, Any] = {}
    restarts = dict.fromkeys(range(workers), 0)
    dead_workers = 0
    interrupted = False

    def start(index: int) -> None:
        proc = context.Process(target=_child, args=(replace(cfg, index=index),), daemon=False)
        proc.start()
        procs[index] = proc

    for index in range(workers):
        start(index)
    try:
        while procs:
            time.sleep(0.2)
            GATE.check()  # a Ctrl-C that storage or process start-up code swallowed (interrupts.py)
            for index, proc in list(procs.items()):
                if proc.is_alive():
                    continue
                proc.join()
                del procs[index]
                code = proc.exitcode
                if code is not None and code < 0 and not interrupted:
                    dead_workers += 1
                    notes.append(f"worker {index} was killed by signal {-code}")
                    with studies_lock(cfg):
                        failed = fail_dead_trials(study, cfg.out)
                        remaining = counted(study) < cfg.trials
                    if failed:
                        notes.append(f"trial(s) {', '.join(map(str, failed))} failed with it; enqueued again")
                    if remaining and restarts[index] < MAX_RESTARTS:
                        restarts[index] += 1
                        start(index)
                elif code not in (0, EXIT_INTERRUPTED, None):
                    notes.append(f"worker {index} ended with exit status {code}")
    except KeyboardInterrupt:
        interrupted = True
        GATE.requested = False  # handled here: nothing for a later fit in this process to raise
        for proc in procs.values():
            with contextlib.suppress(ProcessLookupError, TypeError):
                os.kill(proc.pid, signal.SIGINT)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the workers are saving: let them
        try:
            for proc in procs.values():
                proc.join()
        finally:
            signal.signal(signal.SIGINT, signal.default_int_handler)
    return SearchOutcome(study, interrupted, dead_workers, notes)


def out_folder(out: Path) -> Path:
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create the search folder {out}: {exc.strerror or exc}") from None
    return out


__all__ = ["SearchOutcome", "WorkerConfig", "out_folder", "run_search", "studies"]
