"""A stopped trial's retry continues its training instead of starting it again; so does the
retry of a trial whose worker was killed (SIGKILL, the OOM killer) or that a disk fault ended
(:func:`cut_short`), as the same command trains it again.

A Ctrl-C or SIGTERM stops a trial (:func:`cnnspec.search.worker.stop`) and enqueues its values
again; the next search trains them under the next number, in a folder of its own. Its training
goes on from the stopped trial's last snapshot, as ``cnnspec train --resume`` would, so a long
search interrupted by the user loses at most the epoch in progress: the stopped trial's run
folder (its ``lock.json``, ``state/`` snapshots and the rest, all but its ``trial.json`` and
its spec's texts) is moved into the retry's, the retry's own ``spec.yaml`` and ``resolved.yaml``
are written there, and once the training has taken the run up (its data is the run's) the retry
reports the epochs done to the study first, so that the pruner judges it on the same curve as
every other trial. Data that changed since is refused by the training before it writes
anything: the run is moved back (:func:`give_back`) and the retry starts over. Its
``continues`` attribute (in ``trial.json`` and ``search.json``) names the trial and the epoch it
continues from.

Where there is nothing to continue (the trial was stopped in its first epoch, its folder is on
another machine's disk, its snapshots are damaged, or its folder holds another spec or other
values), the retry trains from the start, and its ``restarted`` attribute says why.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: A retry's attribute naming the trial and epoch it continues: ``{"trial": N, "epoch": E}``.
CONTINUES = "continues"
#: A stopped trial's retry's attribute saying why it trained from the start.
RESTARTED = "restarted"
#: What a stopped trial's folder keeps: its own record, its spec's texts (the retry writes its
#: own) and its (released) run lock file.
_KEPT = ("trial.json", "spec.yaml", "resolved.yaml", ".cnnspec.lock")
#: The retry's own files that :func:`take_over` writes beside the run it moved.
_WRITTEN = ("spec.yaml", "resolved.yaml")
#: The keys :func:`take_over` adds to the stopped trial's ``trial.json``.
_CONTINUED = ("continued_by", "continued_in")


@dataclass
class Continuation:
    """What a retry continues: the stopped trial's number and folder, and the epochs done."""

    trial: int
    folder: Path
    epoch: int
    history: list[dict[str, float]]
    #: The entries :func:`take_over` moved into the retry's folder (:func:`give_back` moves
    #: them back).
    moved: list[str] = field(default_factory=list)


def stopped_source(study: Any, trial: Any) -> Any | None:
    """The stopped trial whose values ``trial`` retries and whose run folder it may continue,
    or ``None`` (not a stopped trial's retry). A retry skipped for a taken folder name, or
    stopped before it had made its folder, passes its retry on (``retry_of`` again): the
    chain is followed back to the trial that has a folder (or, where none has, the first
    stopped one: its retry then says there was nothing to continue)."""
    from cnnspec.search.worker import FOLDER_TAKEN

    by_number = {t.number: t for t in study.get_trials(deepcopy=False)}
    attrs = trial.user_attrs
    seen: set[int] = set()
    while _continued(attrs.get("retry_reason")) and isinstance(attrs.get("retry_of"), int):
        number = attrs["retry_of"]
        source = by_number.get(number)
        if source is None or number in seen:
            return None
        seen.add(number)
        if cut_short(source) and isinstance(source.user_attrs.get("run_dir"), str):
            return source
        attrs = source.user_attrs
        reason = attrs.get("retry_reason")
        if cut_short(source) and (reason == FOLDER_TAKEN or not _continued(reason)):
            return source  # (stopped before it made its folder: nothing to continue, said so)
    return None


def cut_short(trial: Any) -> bool:
    """Whether ``trial``'s training was cut short in a way its retry may continue: stopped by
    the user, its worker killed (SIGKILL, the OOM killer, a lost machine), or a disk fault (a
    full disk under its snapshots). Each retry trained from epoch 1 before; a stopped trial's
    alone went on from its last snapshot."""
    from cnnspec.search.study import WORKER_DIED
    from cnnspec.search.worker import DISK_FAULT, stopped

    reason = trial.user_attrs.get("failed")
    return (
        stopped(trial) or reason == WORKER_DIED or (isinstance(reason, str) and reason.startswith(DISK_FAULT))
    )


def _continued(reason: Any) -> bool:
    """Whether a retry enqueued for ``reason`` (its ``retry_reason``) follows its ``retry_of``
    to a run it may continue: a trial cut short (:func:`cut_short`), or one skipped for a taken
    folder name, which passes on the retry it was."""
    from cnnspec.search.study import WORKER_DIED
    from cnnspec.search.worker import DISK_FAULT, FOLDER_TAKEN, INTERRUPTED

    if not isinstance(reason, str):
        return False
    return reason in ("stopped", INTERRUPTED, FOLDER_TAKEN, WORKER_DIED) or reason.startswith(DISK_FAULT)


def find_continuation(out: Path, source: Any, values: dict[str, Any], spec_hash: str) -> Continuation | str:
    """The snapshot the retry of the stopped trial ``source`` (its values ``values``, its spec
    hashing to ``spec_hash``) continues from, or why there is none (the retry then starts
    over). Nothing is changed here."""
    from cnnspec.errors import UsageError
    from cnnspec.training import rundir
    from cnnspec.training.state import TrainingState

    run_dir = source.user_attrs.get("run_dir")
    if not isinstance(run_dir, str) or Path(run_dir).name != run_dir or not run_dir.startswith("trial"):
        return f"trial {source.number} left no run folder of this search"
    folder = out / run_dir
    if folder.is_symlink() or not folder.is_dir():
        return f"trial {source.number}'s run folder {folder} is not here (another machine's disk?)"
    if source.user_attrs.get("values") not in (None, values):
        return f"trial {source.number} trained other values"
    if not os.path.lexists(folder / "lock.json"):
        return f"trial {source.number} ended before its training began"
    try:
        lock = rundir.read_lock(folder)
    except UsageError:
        return f"trial {source.number}'s run folder {folder} has no readable lock.json"
    if lock.get("spec_hash") != spec_hash:
        return f"trial {source.number}'s run folder {folder} holds another spec (its spec hash differs)"
    if os.path.lexists(folder / "metrics.json"):
        return f"trial {source.number}'s run folder {folder} holds a finished run"
    state = TrainingState(folder)
    notes: list[str] = []
    snapshots = state.snapshots(notes)
    for snapshot in snapshots:
        if state.verify(snapshot) is None:
            return Continuation(source.number, folder, snapshot.epoch, snapshot.history)
    if snapshots or notes:
        return f"the snapshots in {folder} are damaged"
    return f"trial {source.number} ended before its first epoch was saved"


def take_over(continuation: Continuation, folder: Path, compiled: Any, number: int) -> str | None:
    """Move the stopped trial's run (all but its ``trial.json``, its spec's texts and its run
    lock file) into the new ``folder`` of its retry, trial ``number``, and write the retry's own
    ``spec.yaml`` and ``resolved.yaml`` there; ``None``, or why it could not (what was moved is
    put back, and the retry starts over). Moved, not copied: renames take no space (its
    snapshots may be large); the stopped folder keeps its record, which then says where its run
    went on (``continued_by``, ``continued_in``), and its spec's texts."""
    from cnnspec.errors import WriteError
    from cnnspec.fileio import is_atomic_leftover, write_atomic
    from cnnspec.training import rundir

    moved = continuation.moved
    try:
        for entry in sorted(os.listdir(continuation.folder)):
            if entry in _KEPT or is_atomic_leftover(continuation.folder / entry):
                continue
            os.rename(continuation.folder / entry, folder / entry)
            moved.append(entry)
    except OSError as exc:
        give_back(continuation, folder)  # (best effort: the retry then trains from the start here)
        return f"cannot move {continuation.folder}'s run here: {exc.strerror or exc}"
    with contextlib.suppress(WriteError):  # (its trial.json and lock.json say it all the same)
        for name, text in rundir.spec_files(compiled).items():
            write_atomic(folder / name, text)
    _update_record(continuation.folder, {"continued_by": number, "continued_in": folder.name})
    return None


def give_back(continuation: Continuation, folder: Path) -> str | None:
    """Undo :func:`take_over`: the run moved into ``folder`` goes back to the stopped trial's
    folder, the retry's own spec files are removed, and the stopped trial's record no longer
    names the retry (whose training then starts over in ``folder``, as claimed). ``None``, or
    what could not be moved back (``folder`` is then left as it is)."""
    for entry in list(reversed(continuation.moved)):
        try:
            os.rename(folder / entry, continuation.folder / entry)
        except OSError as exc:
            return f"cannot move {folder / entry} back to {continuation.folder}: {exc.strerror or exc}"
        continuation.moved.remove(entry)
    for name in _WRITTEN:
        with contextlib.suppress(OSError):
            os.unlink(folder / name)
    _update_record(continuation.folder, dict.fromkeys(_CONTINUED))
    return None


def _update_record(folder: Path, changes: dict[str, Any]) -> None:
    """Set (a value) or remove (``None``) keys of the stopped trial's ``trial.json`` in
    ``folder``; a record that cannot be read or written is left as it is (the study has it)."""
    from cnnspec.errors import WriteError
    from cnnspec.fileio import write_atomic
    from cnnspec.jsontext import json_text

    record = folder / "trial.json"
    with contextlib.suppress(OSError, ValueError, RecursionError, WriteError):
        info = json.loads(record.read_text(encoding="utf-8"))
        if isinstance(info, dict):
            info.update({key: value for key, value in changes.items() if value is not None})
            for key in [key for key, value in changes.items() if value is None]:
                info.pop(key, None)
            write_atomic(record, json_text(info, default=str))


def report_done(trial: Any, history: list[dict[str, float]], metric: str) -> None:
    """Report the epochs a continued trial had trained (one value per epoch, as the pruning
    callback does), so the pruner sees its whole curve."""
    for index, row in enumerate(history):
        value = row.get(metric)
        if isinstance(value, (int, float)) and math.isfinite(float(value)):
            trial.report(float(value), index + 1)
