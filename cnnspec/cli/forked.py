"""One function over many items in forked worker processes, the results in the items' order.

`cnnspec validate` checks many spec files (a spec folder in CI, the 32 zoo variants); each file
is independent CPU work, so on a machine with several cores the files are shared between the
command's process and ``jobs - 1`` forked copies of it (issue 15: a cold validate of the whole
zoo). Forked after the imports, a worker starts in about a millisecond and pays for no import.

- **Dynamic shares.** The items' indexes wait in a pipe as 4-byte tokens (a chunk of indexes
  each when there are many); every process, the parent too, takes the next token when it is free
  (a pipe read of 4 bytes is atomic), so a worker that drew large specs takes fewer.
- **Order.** A worker sends each result as soon as it has it (length-prefixed bytes from the
  caller's ``encode``: no pickle, which would run code when read); the parent yields results
  strictly in the items' order, as soon as the next one is there.
- **Failures stay in the parent.** A worker whose function raises, or that dies, sends nothing
  for that item and stops; the parent then runs the function on every item it is missing
  itself, so an unexpected error is raised (and reported) exactly as without workers.
- **Signals.** Workers take the default action for SIGINT (a Ctrl-C to the terminal's process
  group ends them silently; the parent reports the interrupt) and stop at their next result once
  the parent is gone (their pipe breaks). The parent kills and reaps any worker still running
  when it stops early.
- **When it forks.** Only where ``os.fork`` exists, with at least two items and two jobs, and only
  from a single-threaded process (a fork copies one thread: a lock another thread held would
  never be released in the copy), so library callers and test runners with threads run serially.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import struct
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

from cnnspec.machine import usable_cores

Item = TypeVar("Item")
Result = TypeVar("Result")

#: At most this many tokens (4 bytes each): they fill at most one page, what a pipe holds even
#: when the system's pipe buffer limits are exhausted, so writing them all never blocks.
MAX_TOKENS = 1024
_TOKEN = struct.Struct("<I")
_FRAME = struct.Struct("<II")  # item index, length of the encoded result


def auto_jobs(items: int) -> int:
    """How many processes share ``items`` by default: one per CPU core this process may run on,
    and at most one per two items (a worker of its own is not worth it for one small file)."""
    return max(1, min(usable_cores(), items // 2))


def can_fork() -> bool:
    """Whether this process may fork workers: it can, and no other thread runs in it."""
    return hasattr(os, "fork") and threading.active_count() == 1


def ordered_map(
    func: Callable[[Item], Result],
    items: Sequence[Item],
    jobs: int,
    encode: Callable[[Result], bytes],
    decode: Callable[[bytes], Result],
) -> Iterator[Result]:
    """``func(item)`` for every item, in order, computed by up to ``jobs`` processes.

    A worker sends ``encode(result)``; the parent yields ``decode`` of it. ``func`` should turn
    the errors it expects into results, since an exception in a worker only makes the parent
    run that item again itself.
    """
    if jobs < 2 or len(items) < 2 or not can_fork():
        for item in items:
            yield func(item)
        return
    chunk = -(-len(items) // MAX_TOKENS)
    tokens_out, tokens_in = os.pipe()
    os.write(tokens_in, b"".join(_TOKEN.pack(start) for start in range(0, len(items), chunk)))
    os.close(tokens_in)  # every process reads until the pipe is empty, then sees its end
    pids: list[int] = []
    buffers: dict[int, bytes] = {}  # a worker's open result pipe → what it sent of a result
    completed = False
    try:
        sys.stdout.flush()
        sys.stderr.flush()
        for _ in range(min(jobs, len(items)) - 1):
            results_out, results_in = os.pipe()
            try:
                pid = os.fork()
            except OSError:  # no process to spare (a process limit): go on with those there are
                os.close(results_out)
                os.close(results_in)
                break
            if pid == 0:  # pragma: no cover - the worker's side, measured by the parent's results
                os.close(results_out)
                for other in buffers:
                    os.close(other)
                _work(func, encode, items, chunk, tokens_out, results_in)
            os.close(results_in)
            pids.append(pid)
            buffers[results_out] = b""
        yield from _collect(func, decode, items, chunk, tokens_out, buffers)
        completed = True
    finally:
        os.close(tokens_out)
        for fd in buffers:
            os.close(fd)
        _reap(pids, kill=not completed)


def _work(
    func: Callable[[Item], Result],
    encode: Callable[[Result], bytes],
    items: Sequence[Item],
    chunk: int,
    tokens: int,
    out: int,
) -> None:
    """A worker's life: take tokens and send results until the tokens run out, then exit
    without running the parent's clean-up (``os._exit``)."""
    status = 0
    try:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        while (start := _take(tokens)) is not None:
            for index in range(start, min(start + chunk, len(items))):
                data = encode(func(items[index]))
                _write_all(out, _FRAME.pack(index, len(data)) + data)
    except BaseException:  # the parent runs what is missing itself and reports any error
        status = 1
    finally:
        os._exit(status)


def _collect(
    func: Callable[[Item], Result],
    decode: Callable[[bytes], Result],
    items: Sequence[Item],
    chunk: int,
    tokens: int,
    buffers: dict[int, bytes],
) -> Iterator[Result]:
    """The parent's side: work on tokens too, gather the workers' results (``buffers``: each
    worker's result pipe, removed and closed at its end), yield in order."""
    done: dict[int, Result] = {}
    following = 0

    def ready() -> Iterator[Result]:
        nonlocal following
        while following in done:
            yield done.pop(following)
            following += 1

    while (start := _take(tokens)) is not None:
        for index in range(start, min(start + chunk, len(items))):
            done[index] = func(items[index])
            _receive(buffers, done, decode, wait=False)
            yield from ready()
    while buffers:  # the tokens are gone: wait for what the workers still compute
        _receive(buffers, done, decode, wait=True)
        yield from ready()
    for index in range(following, len(items)):  # what a failed worker did not send
        yield done.pop(index) if index in done else func(items[index])


def _receive(
    buffers: dict[int, bytes], done: dict[int, Result], decode: Callable[[bytes], Result], *, wait: bool
) -> None:
    """Read what the workers have sent; a pipe at its end (worker finished or died) is closed."""
    if not buffers:
        return
    readable, _, _ = select.select(list(buffers), [], [], None if wait else 0)
    for fd in readable:
        data = os.read(fd, 1 << 16)
        if not data:
            os.close(fd)
            del buffers[fd]
            continue
        buffer = buffers[fd] + data
        while len(buffer) >= _FRAME.size:
            index, size = _FRAME.unpack_from(buffer)
            if len(buffer) < _FRAME.size + size:
                break
            done[index] = decode(buffer[_FRAME.size : _FRAME.size + size])
            buffer = buffer[_FRAME.size + size :]
        buffers[fd] = buffer


def _take(tokens: int) -> int | None:
    data = os.read(tokens, _TOKEN.size)
    return _TOKEN.unpack(data)[0] if len(data) == _TOKEN.size else None


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _reap(pids: list[int], *, kill: bool) -> None:
    """Wait for every worker; when the parent stops early, kill those still running first."""
    for pid in pids:
        if kill:
            with contextlib.suppress(ProcessLookupError):  # gone already
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
