"""Worker processes whose start-up data is in their pipe before they exist.

``multiprocessing``'s ``spawn`` starts the new interpreter first and only then writes the
pickled start-up data into the pipe the child reads. A runner killed in between (``kill -9``
just as the workers start, or its machine busy enough to deschedule it there) leaves the child
reading an empty pipe: it prints ``EOFError: Ran out of input`` with a traceback from
``multiprocessing.spawn`` (before any of our code runs) and dies. Here the data is written
first, into a pipe made large enough to hold it, and the child is started after; a runner
killed at any moment afterwards leaves a child that reads its whole data, runs its target, and
stops by itself when it sees its runner gone.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import os
from multiprocessing import popen_spawn_posix, reduction, spawn, util
from multiprocessing.context import SpawnProcess, set_spawning_popen
from typing import Any

# Linux only; elsewhere the default pipe size is used and a larger remainder is written after
# the start (the old order, for that remainder only).
_SET_PIPE_SIZE: int | None = getattr(fcntl, "F_SETPIPE_SZ", None)


def _pickled(popen: popen_spawn_posix.Popen, process_obj: Any) -> bytes:
    """What ``spawn_main`` reads: the preparation data, then the process object."""
    buffer = io.BytesIO()
    set_spawning_popen(popen)  # lets Events and pipes register the fds the child inherits
    try:
        reduction.dump(spawn.get_preparation_data(process_obj._name), buffer)
        reduction.dump(process_obj, buffer)
    finally:
        set_spawning_popen(None)
    return buffer.getvalue()


def _prefill(fd: int, data: bytes) -> int:
    """Write as much of ``data`` as the pipe holds without blocking; returns the count."""
    if _SET_PIPE_SIZE is not None:
        with contextlib.suppress(OSError):  # over the system's limit: keep the default size
            fcntl.fcntl(fd, _SET_PIPE_SIZE, len(data))
    os.set_blocking(fd, False)
    written = 0
    try:
        while written < len(data):
            written += os.write(fd, data[written:])
    except BlockingIOError:
        pass
    finally:
        os.set_blocking(fd, True)
    return written


class PrefilledPopen(popen_spawn_posix.Popen):
    """``spawn``'s ``Popen`` with the start-up data written before the child is started."""

    def _launch(self, process_obj: Any) -> None:
        from multiprocessing import resource_tracker

        tracker_fd = resource_tracker.getfd()
        self._fds.append(tracker_fd)
        data = _pickled(self, process_obj)
        parent_r, child_w = os.pipe()  # the sentinel: readable once the child is gone
        child_r, parent_w = os.pipe()
        try:
            written = _prefill(parent_w, data)
            command = spawn.get_command_line(tracker_fd=tracker_fd, pipe_handle=child_r)
            self._fds.extend([child_r, child_w])
            self.pid = util.spawnv_passfds(spawn.get_executable(), command, self._fds)
            self.sentinel = parent_r
            if written < len(data):
                with open(parent_w, "wb", closefd=False) as pipe:
                    pipe.write(data[written:])
        except BaseException:
            os.close(parent_r)
            raise
        finally:
            os.close(parent_w)  # the child's end stays open in the child: it reads to the end
            os.close(child_r)
            os.close(child_w)
        self.finalizer = util.Finalize(self, util.close_fds, (parent_r,))


class WorkerProcess(SpawnProcess):
    """A ``spawn`` process started through :class:`PrefilledPopen`."""

    @staticmethod
    def _Popen(process_obj: Any) -> PrefilledPopen:
        return PrefilledPopen(process_obj)
