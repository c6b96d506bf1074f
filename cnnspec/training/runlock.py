"""One process owns a run folder: an exclusive ``flock`` on ``RUN_DIR/.cnnspec.lock``.

``train`` (new runs and ``--resume``), and ``evaluate``, ``report`` and ``visualize`` writing into
a run folder, hold the lock for their whole life; a second process is refused at once
(:class:`RunFolderBusy`, exit 2) with the holder's PID and command line, which the holder writes
into the lock file.

The kernel drops an ``flock`` when its process dies, SIGKILL included, so a lock file left by a
killed run blocks nobody: the next process locks it and writes its own PID. The holder removes
the file when it lets go; a process that opened the file just before that removal notices (the
path no longer names the file it locked) and starts again, so two processes can never both hold
"the" lock through two different files.

The lock file is never followed through a link: a symlink, hard link or anything but a plain
file at its place is refused (``UsageError``), since writing the lock record into it would
overwrite whatever file it leads to.

While it holds the lock, every write of the process into the folder checks first that the
folder still holds the lock file it locked (:meth:`RunLock.check`, through
:func:`cnnspec.fileio.own_folder`): a run folder moved or deleted mid-run, or whose lock file was
removed (another process may hold a new one), stops the holder with :class:`RunFolderLost`
(exit 1) instead of re-creating an empty folder at the old path or writing beside the other
process; the folder is never created again by those writes.

Also :func:`remove_leftovers`: once a process owns the folder, no atomic write can be in flight
in it, so every temp file there was left by an earlier killed write.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from cnnspec.errors import UsageError, WriteError
from cnnspec.fileio import disown_folder, is_atomic_leftover, own_folder, remove_atomic_temp

# The reading of the lock lives below the spec layer, which says a weights run is being trained;
# re-exported here, where the lock is taken (``X as X``: for the modules and tests that import it)
from cnnspec.runholder import (
    HELD,
    LOCK_NAME,
    OPEN_FLAGS,
    file_kind,
    holder_words,
    read_holder,
)
from cnnspec.runholder import held_here as held_here
from cnnspec.runholder import holder as holder
from cnnspec.runholder import live_holder as live_holder
from cnnspec.runholder import locked as locked
from cnnspec.write_faults import write_fault, write_fix


class RunFolderBusy(UsageError):
    """Another live process holds the run folder's lock (a usage error: exit 2)."""

    def __init__(self, run_dir: Path, holder: dict[str, Any] | None, alternative: str | None = None) -> None:
        self.run_dir = run_dir
        self.holder = holder or {}
        super().__init__(
            f"the run folder {run_dir} is in use by {holder_words(self.holder)}",
            "wait for that process to end" + (f", or {alternative}" if alternative else ""),
        )


#: The errnos of a lock file that can't be created whose fix :func:`~cnnspec.write_faults.write_fix`
#: says (others, a name the folder refuses: "make the folder writable").
_FIXABLE = (errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOSPC, errno.EDQUOT)


class RunFolderUnwritable(UsageError):
    """The run folder's lock file can't be created (a read-only folder or disk, no permission):
    the process can't own the folder (a usage error: exit 2). A command that writes elsewhere
    (``report -o``) goes on without writing into the folder, as for :class:`RunFolderBusy`."""

    def __init__(
        self, path: Path, reason: str, code: int | None = None, alternative: str | None = None
    ) -> None:
        # the fix of that errno (a read-only disk, no permission), and the command's other way
        # (`export RUN -o ELSEWHERE` writes nothing into the run folder and needs no lock)
        fix = write_fix(code) if code in _FIXABLE else "make the folder writable"
        super().__init__(
            f"expected a run folder this process can write; can't create {path}: {reason}",
            f"{fix}, or {alternative}" if alternative else fix,
        )


class RunFolderLost(WriteError):
    """The run folder this process holds is no longer there as it locked it: moved or deleted
    (its parent too), or its lock file removed (another process may lock a new one). Nothing
    more is written at its path (exit 1)."""

    def __init__(self, run_dir: Path, target: str | os.PathLike[str]) -> None:
        self.run_dir = run_dir
        super().__init__(
            target,
            f"the run folder {run_dir} was moved or deleted, or its lock file {LOCK_NAME} removed, "
            "while this process was writing it; nothing more is written there",
            hint=(
                "if the folder was moved, run the command again on its new path (a training: "
                "cnnspec train SPEC --resume NEWPATH); if only its lock file was removed, another "
                "process may be writing the folder now: let it finish, then check the folder"
            ),
        )


class RunLock:
    """A held lock on one run folder; :meth:`release` (or leaving the ``with``) lets it go.

    While held, this process's atomic writes into the folder run :meth:`check` first
    (:func:`cnnspec.fileio.own_folder`)."""

    def __init__(self, run_dir: Path, fd: int) -> None:
        self.run_dir = run_dir
        self.path = run_dir / LOCK_NAME
        self._fd: int | None = fd
        own_folder(run_dir, self.check)
        HELD.add(os.path.abspath(run_dir))

    @property
    def held(self) -> bool:
        return self._fd is not None

    def check(self, target: str | os.PathLike[str] | None = None) -> None:
        """Raise :class:`RunFolderLost` (naming ``target``, the file about to be written) when
        the run folder no longer holds the lock file this process locked: the folder (or a
        folder above it) was moved or deleted, or the lock file removed or replaced. The flock
        then sits on a file nobody else can find, so it keeps out no one; writing on would
        re-create an empty folder at the old path, or mix with another process's run."""
        if self._fd is not None and not _names(self.path, self._fd):
            raise RunFolderLost(self.run_dir, target if target is not None else self.path)

    def release(self) -> None:
        """Remove the lock file (while still holding it) and drop the lock; idempotent."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        disown_folder(self.run_dir)
        HELD.discard(os.path.abspath(self.run_dir))
        try:
            if _names(self.path, fd):
                with contextlib.suppress(OSError):
                    self.path.unlink()
        finally:
            os.close(fd)  # closing the last descriptor drops the flock

    def __enter__(self) -> RunLock:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.release()


def _names(path: Path, fd: int) -> bool:
    """Whether ``path`` itself still names the open file ``fd`` (not removed or replaced since).

    ``lstat``: a symlink put there names another file, even when it leads to ours."""
    try:
        on_disk, held = os.lstat(path), os.fstat(fd)
    except OSError:
        return False
    return (on_disk.st_dev, on_disk.st_ino) == (held.st_dev, held.st_ino)


def _foreign(path: Path, kind: str) -> UsageError:
    return UsageError(
        f"expected cnnspec's lock file or nothing at {path}; found a {kind}",
        "remove it: cnnspec keeps its lock file there and writes into nothing else at that path",
    )


def _check_plain(path: Path, info: os.stat_result) -> None:
    """Refuse a lock path that is no plain file of its own: writing the lock record into it
    would overwrite another file (a symlink's or hard link's target) or hang (a FIFO)."""
    kind = file_kind(info.st_mode)
    if kind is None and info.st_nlink > 1:
        kind = "hard link (a file with other names too)"
    if kind is not None:
        raise _foreign(path, kind)


def acquire(
    run_dir: str | Path, command: list[str] | None = None, *, alternative: str | None = None
) -> RunLock:
    """Take the exclusive lock of the existing folder ``run_dir`` without waiting.

    Raises :class:`RunFolderBusy` when a live process holds it (its hint offers ``alternative``,
    e.g. "choose another --out", after waiting), ``UsageError`` when the lock file can't be
    created (a read-only folder, no permission) or when something else than a plain file is in
    its place (a symlink, a hard link, a directory: nothing is written through it),
    :class:`~cnnspec.errors.WriteError` when the holder's record can't be written into it (a full
    disk)."""
    import sys

    run_dir = Path(run_dir)
    path = run_dir / LOCK_NAME
    while True:
        fd = _open(path, alternative)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            found = read_holder(fd)
            for _ in range(20):  # locked a moment ago, its PID not written yet: wait ≤ 0.2 s
                if found is not None:
                    break
                time.sleep(0.01)
                found = read_holder(fd)
            os.close(fd)
            raise RunFolderBusy(run_dir, found, alternative) from None
        except OSError:
            os.close(fd)
            raise
        if _names(path, fd):
            try:  # a hard link made since the open: checked again on the file we now hold
                _check_plain(path, os.fstat(fd))
            except BaseException:
                os.close(fd)
                raise
            break
        os.close(fd)  # the previous holder removed the file between our open and our lock: again
    info = {
        "pid": os.getpid(),
        "command": list(command if command is not None else sys.argv),
        "since": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    data = (json.dumps(info) + "\n").encode("utf-8")
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, data, 0)
    except OSError as exc:  # a full disk: the user's error to report, not ours
        os.close(fd)  # (lets the lock go)
        fault = write_fault(exc, path, len(data))
        if fault is None:
            raise
        raise fault from None
    return RunLock(run_dir, fd)


def _open(path: Path, alternative: str | None = None) -> int:
    """Open (or create) the lock file at ``path`` for writing, never through a link; refuses
    anything but a plain file there before it can write into it. ``alternative``: the other way
    a refusal's hint offers (:class:`RunFolderUnwritable`)."""
    with contextlib.suppress(OSError):  # (none there: os.open creates it)
        _check_plain(path, os.lstat(path))  # before opening: a device's open alone may act
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | OPEN_FLAGS, 0o644)
    except OSError as exc:
        if os.path.islink(path):  # ELOOP: a symlink put there since the lstat
            raise _foreign(path, "symlink") from None
        raise RunFolderUnwritable(path, str(exc.strerror or exc), exc.errno, alternative) from None
    try:
        _check_plain(path, os.fstat(fd))  # what was opened, whatever the path names now
    except BaseException:
        os.close(fd)
        raise
    return fd


def remove_leftovers(run_dir: str | Path) -> int:
    """Delete the temp files of earlier killed atomic writes anywhere in ``run_dir``; returns
    how many. Call it only while holding the folder's lock (no write of ours is in flight).

    A run folder inside it (``train --out RUN/ft``, a search's trials) is left alone: its own
    lock says who writes there, and a training in it may be writing its temp files now. Links
    are not followed."""
    root = Path(run_dir)
    removed = 0
    for folder, dirs, files in os.walk(root):
        here = Path(folder)
        if here != root and any(os.path.lexists(here / name) for name in (LOCK_NAME, "lock.json")):
            dirs.clear()  # another run's
            continue
        for name in [*dirs, *files]:
            path = here / name
            if name.startswith(".") and name != LOCK_NAME and is_atomic_leftover(path):
                remove_atomic_temp(path)
                removed += 1
                if name in dirs:
                    dirs.remove(name)
    return removed
