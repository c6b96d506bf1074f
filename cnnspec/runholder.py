"""Who holds a run folder's lock (``RUN_DIR/.cnnspec.lock``), read without touching the lock.

:mod:`cnnspec.training.runlock` takes and gives back the lock; this module only reads it: the
record its holder writes into the lock file (PID and command line) and the kernel's table of
held locks. It sits in the lowest layer because the spec layer reads it too: a ``weights:``
source naming a run folder still being trained is said to be so, with the process that trains
it, from :mod:`cnnspec.spec.weights` (which may import nothing from the training layer), in the
words the commands that need a finished run's model use.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

LOCK_NAME = ".cnnspec.lock"

#: The run folders (absolute paths) whose lock a ``RunLock`` of this process holds now
#: (:mod:`cnnspec.training.runlock` adds and discards them).
HELD: set[str] = set()

# O_NOFOLLOW: a symlink at the lock path fails the open (ELOOP) instead of being followed;
# O_NONBLOCK: a FIFO there can't hang the open (no effect on a plain file)
OPEN_FLAGS = os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK


def file_kind(mode: int) -> str | None:
    """What a file of ``mode`` is, in words, when it is no plain file (``None`` when it is)."""
    kinds = (
        (stat.S_ISLNK, "symlink"),
        (stat.S_ISDIR, "directory"),
        (stat.S_ISFIFO, "named pipe"),
        (stat.S_ISSOCK, "socket"),
        (stat.S_ISCHR, "device"),
        (stat.S_ISBLK, "device"),
    )
    return next((word for test, word in kinds if test(mode)), None if stat.S_ISREG(mode) else "special file")


def holder_words(record: dict[str, Any] | None) -> str:
    """The process a lock file's ``record`` names, in words: ``process 4242 (cnnspec train
    spec.yaml --out runs/a)``; a holder that has locked the file but not yet written its record
    is "another process (it has not written its PID yet)"."""
    record = record or {}
    pid = record.get("pid")
    command = record.get("command")
    who = f"process {pid}" if pid else "another process (it has not written its PID yet)"
    if isinstance(command, list) and command:
        who += f" ({' '.join(str(word) for word in command)})"
    return who


def read_holder(fd: int) -> dict[str, Any] | None:
    """The record in the open lock file ``fd`` (``None``: none yet, or unreadable)."""
    try:
        text = os.pread(fd, 1 << 16, 0).decode("utf-8", "replace")
        holder = json.loads(text)
    except (OSError, ValueError):
        return None  # the holder has locked the file but not yet written it
    return holder if isinstance(holder, dict) else None


def holder(run_dir: Path) -> dict[str, Any] | None:
    """What the lock file of ``run_dir`` says about its last holder (``None``: no readable file).

    Whether that process still holds the lock is only known by trying to take it."""
    try:
        fd = os.open(run_dir / LOCK_NAME, os.O_RDONLY | OPEN_FLAGS)
    except OSError:
        return None  # none, or a symlink there (ELOOP): not a lock file of ours
    try:
        if file_kind(os.fstat(fd).st_mode) is not None:
            return None
        return read_holder(fd)
    finally:
        os.close(fd)


def locked(run_dir: Path) -> bool | None:
    """Whether a process holds the lock of ``run_dir`` now, read from Linux's ``/proc/locks``
    without touching the lock (taking it, even for a moment, could make a training that starts
    then find the folder busy); ``None`` where that cannot be known (no such file, another
    system): the caller guesses from the holder's PID."""
    try:
        status = os.stat(run_dir / LOCK_NAME)
        table = Path("/proc/locks").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    # "1: FLOCK  ADVISORY  WRITE 4242 08:01:1234567 0 EOF" (a waiter's line has "->" after 1:)
    wanted = f"{os.major(status.st_dev):02x}:{os.minor(status.st_dev):02x}:{status.st_ino}"
    for line in table.splitlines():
        fields = line.split()
        if "FLOCK" in fields and "->" not in fields:
            at = fields.index("FLOCK") + 4
            if at < len(fields) and fields[at] == wanted:
                return True
    return False


def held_here(run_dir: Path) -> bool:
    """Whether this process itself holds the lock of ``run_dir`` (a ``RunLock`` not
    released): a command that locked the run to write into it is no other process using it."""
    return os.path.abspath(run_dir) in HELD


def live_holder(run_dir: Path) -> dict[str, Any] | None:
    """The record (``pid``, ``command``, ``since``) of the process that holds the lock of
    ``run_dir`` now, ``{}`` when it has not written it yet; ``None`` when no process holds it.

    Read without touching the lock (:func:`locked`); where ``/proc/locks`` cannot be read, the
    lock file, which a killed run leaves behind, counts only when the PID it names is alive.
    ``cnnspec runs`` lists such a run as running, and the commands that need a finished run's
    model say it is still being trained instead of sending it to ``--resume`` (refused while
    the lock is held)."""
    found = holder(run_dir)
    held = locked(run_dir)
    if held is not None:
        return (found or {}) if held else None
    pid = found.get("pid") if found is not None else None  # (a guess: another process may reuse it)
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except OSError:  # (another user's process: alive)
        pass
    return found


def training_process(run_dir: Path) -> str | None:
    """The process training the unfinished run in ``run_dir`` now, in words (``process 4242
    (cnnspec train spec.yaml --out runs/a)``), or ``None`` when no other live process holds the
    run folder's lock: a killed run's lock file holds nobody, and a command that locked the
    folder itself to write into it (``visualize RUN confusion``) is not training it. The same
    reading as ``cnnspec runs``' ``running`` (:func:`live_holder`)."""
    if held_here(Path(run_dir)):
        return None
    found = live_holder(Path(run_dir))
    return None if found is None else holder_words(found)
