"""Scripts and cnnspec commands run in forks of a Python that has already imported TensorFlow.

The parity tests run a generated ``train.py`` as its user would, ``python train.py …``, and the
kill, resume and lock tests run ``cnnspec train`` in processes of their own that they signal and
wait for. A cold Python spends 6–9 s of CPU importing TensorFlow, Keras, scikit-learn and
matplotlib before the first line runs, and about 3 s tearing its modules down at exit: over the
suite's few dozen such processes, more than a minute and a half of a 2-core CI budget. So a test
process starts this module as a server (``python tests/script_runner.py FD``) that imports them
once and then forks a child per command:

- **The child is a process of its own for the command.** It has its own pid, working directory,
  environment, ``sys.argv`` and ``sys.path[0]`` (the script's folder), stdin from /dev/null, and
  the stdout and stderr the test asked for (pipes it reads, or files). The script runs as
  ``__main__`` through :func:`runpy.run_path` (``cnnspec`` is the console script in the venv), and
  the child ends as Python ends a script: a traceback and exit 1 for an exception, ``sys.exit``'s
  status, threads joined, atexit functions run, the unreachable collected, files left open
  flushed. Only the teardown of every module is left out (a test that checks what that teardown
  prints, as test_faults does for HDF5's destructors, starts a cold process). A signal ends it
  as it ends any process: the test's handle reports ``-SIGKILL`` as :class:`subprocess.Popen`
  does.
- **cnnspec is never imported by the server**, so the command imports it as a cold one would, and
  a generated script that leaned on it would fail as before. (A server of another preload,
  :data:`LSP_PRELOAD`, serves the language-server conversations of the protocol tests: there
  cnnspec's import is the start-up, not what is tested.)
- **Nothing of TensorFlow has run in the server**, only its import: no op, no device, no thread
  pool, so the child may still set threading and determinism, as the scripts do first (a fork
  after TensorFlow had started its runtime could deadlock).
- **Where a fork could differ from a cold start, a cold start runs instead**: no ``os.fork``, or
  an environment whose variables are read at import (``TF_*``, ``KERAS_*``, ``PYTHON*``, …) that
  differ from the server's (unless the test asks for a server of its own environment,
  ``env_server=True``: one that imported TensorFlow with those variables, as the kernel tests'
  ``TF_ENABLE_ONEDNN_OPTS=0`` processes share).
- **One server runs several children at once.** Tests that run several commands at once (two
  search workers on one study) fork them all from the same server, whose imports are done once;
  each child's exit status comes back tagged with its pid. A thread waiting on a server's answer
  holds it, so a command started from another thread meanwhile gets a server of its own.
"""

from __future__ import annotations

import contextlib
import gc
import io
import json
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO

#: What the generated scripts and cnnspec's training import, imported once by the server.
PRELOAD = (
    "numpy",
    "tensorflow",
    "keras",
    "h5py",
    "PIL.Image",
    "sklearn.datasets",
    "sklearn.metrics",
    "sklearn.model_selection",
)
#: What `cnnspec lsp` imports: the preload of the servers for the protocol tests' conversations
#: (``lsprotocol``'s types alone take 0.4 s to import).
LSP_PRELOAD = ("cnnspec.cli.app", "cnnspec.lsp.server")
#: Environment variables read while those modules are imported: a difference means a cold start.
IMPORT_TIME_ENV = ("TF_", "KERAS_", "CUDA_", "XLA_", "OMP_", "MKL", "PYTHON", "MPLBACKEND", "MPLCONFIGDIR")
PIPE = subprocess.PIPE
STDOUT = subprocess.STDOUT
DEVNULL = subprocess.DEVNULL


def _import_time_env(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k.startswith(IMPORT_TIME_ENV)}


class _Server:
    """One preloaded Python and the socket to it: a request (with the child's stdout and stderr
    file descriptors) out, the child's pid back, and later each child's exit status with its
    pid (several children may run at once)."""

    def __init__(self, preload: tuple[str, ...] = PRELOAD, env: dict[str, str] | None = None) -> None:
        """``env``: the environment the server imports in (default: this process's)."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.preload = preload
        # the server's own stderr (its import messages), shown if it ever ends early
        self.log = tempfile.TemporaryFile(mode="w+", prefix="script-server-")  # noqa: SIM115
        self.env = _import_time_env(dict(os.environ if env is None else env))
        self.process = subprocess.Popen(
            [sys.executable, __file__, str(theirs.fileno()), ",".join(preload)],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=self.log,
            pass_fds=[theirs.fileno()],
        )
        theirs.close()
        self.socket = ours
        self.lock = threading.Lock()  # held by the thread reading the server's answers
        self.statuses: dict[int, int] = {}  # exit statuses read while waiting for another answer

    def fork(self, request: dict, fds: list[int]) -> int:
        with self.lock:
            socket.send_fds(self.socket, [json.dumps(request).encode()], fds)
            while True:
                message = self.reply(300)  # the first waits for the server's imports
                if "status" not in message:
                    return message["pid"]
                self.statuses[message["pid"]] = message["status"]

    def status(self, pid: int, timeout: float | None) -> int:
        """The exit status of child ``pid``, within ``timeout`` (else TimeoutExpired)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self.lock:
            while pid not in self.statuses:
                left = None if deadline is None else max(0.0, deadline - time.monotonic())
                message = self.reply(left)
                self.statuses[message["pid"]] = message["status"]
            return self.statuses.pop(pid)

    def reply(self, timeout: float | None) -> dict:
        ready, _, _ = select.select([self.socket], [], [], timeout)
        if not ready:
            raise subprocess.TimeoutExpired("command", timeout or 0)
        message = self.socket.recv(65536)
        if not message:
            code = self.process.wait()
            self.log.seek(0)
            raise RuntimeError(f"the script server ended (exit {code}): {self.log.read()[-3000:]}")
        return json.loads(message)

    def close(self) -> None:
        self.socket.close()  # the server stops at the end of its input
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=30)
        self.log.close()


class Forked:
    """A command running in a child of a server, with what the tests use of
    :class:`subprocess.Popen` (text mode)."""

    def __init__(
        self, args: list[str], server: _Server, pid: int, stdout: IO[str] | None, stderr: IO[str] | None
    ):
        self.args = args
        self.pid = pid
        self.stdin = None
        self.stdout = stdout
        self.stderr = stderr
        self.returncode: int | None = None
        self._server = server
        self._read: dict[int, list[bytes]] = {id(s): [] for s in (stdout, stderr) if s is not None}

    def poll(self) -> int | None:
        if self.returncode is None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._finish(0)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            try:
                self._finish(timeout)
            except subprocess.TimeoutExpired:
                raise subprocess.TimeoutExpired(self.args, timeout or 0) from None
        assert self.returncode is not None
        return self.returncode

    def _finish(self, timeout: float | None) -> None:
        self.returncode = self._server.status(self.pid, timeout)

    def send_signal(self, number: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, number)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def communicate(self, timeout: float | None = None) -> tuple[str | None, str | None]:
        """Read stdout and stderr to their end, then wait; as Popen's, a timeout raises
        TimeoutExpired and a later call goes on reading."""
        deadline = None if timeout is None else time.monotonic() + timeout
        streams = [s for s in (self.stdout, self.stderr) if s is not None and not s.closed]
        while streams:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            ready, _, _ = select.select(streams, [], [], left)
            if not ready:
                raise subprocess.TimeoutExpired(self.args, timeout or 0)
            for stream in ready:
                chunk = os.read(stream.fileno(), 65536)
                if chunk:
                    self._read[id(stream)].append(chunk)
                else:
                    streams.remove(stream)
                    stream.close()
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        self.wait(left)
        texts = [
            None if s is None else b"".join(self._read[id(s)]).decode("utf-8", "replace")
            for s in (self.stdout, self.stderr)
        ]
        return texts[0], texts[1]

    def __enter__(self) -> Forked:
        return self

    def __exit__(self, *exc: object) -> None:
        for stream in (self.stdout, self.stderr):
            if stream is not None:
                stream.close()
        self.wait()


class ScriptRunner:
    """The test side: the servers of one test process, started when needed, ended at exit."""

    def __init__(self) -> None:
        self._servers: list[_Server] = []

    def run(
        self,
        argv: list[str],
        cwd: Path | None,
        timeout: float,
        *,
        input: bytes | None = None,
        text: bool = True,
        preload: tuple[str, ...] = PRELOAD,
        env: dict[str, str] | None = None,
        env_server: bool = False,
    ) -> subprocess.CompletedProcess:
        """``python argv…`` to its end, its output in files (as ``subprocess.run`` with
        ``capture_output=True, text=text``), ``input`` (bytes) on its stdin, in a fork of a server
        that imported ``preload`` (``env``, ``env_server``: as :meth:`start` takes them)."""
        with (
            tempfile.TemporaryFile() as out,
            tempfile.TemporaryFile() as err,
            tempfile.TemporaryFile() as given,
        ):
            stdin = None
            if input is not None:
                given.write(input)
                given.flush()
                given.seek(0)
                stdin = given.fileno()
            process = self.start(
                argv, stdout=out.fileno(), stderr=err.fileno(), cwd=cwd, stdin=stdin, preload=preload,
                env=env, env_server=env_server,
            )  # fmt: skip
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                raise
            out.seek(0)
            err.seek(0)
            read = [f.read() for f in (out, err)]
        texts = [r.decode("utf-8", "replace") for r in read] if text else read
        return subprocess.CompletedProcess([sys.executable, *argv], process.returncode, texts[0], texts[1])

    def start(
        self,
        argv: list[str],
        *,
        stdout: int | None = PIPE,
        stderr: int | None = PIPE,
        env: dict[str, str] | None = None,
        cwd: Path | str | None = None,
        cold: bool = False,
        stdin: int | None = None,
        preload: tuple[str, ...] = PRELOAD,
        env_server: bool = False,
    ) -> Forked | subprocess.Popen[str]:
        """``python argv…`` started, as ``subprocess.Popen([sys.executable, *argv], text=True,
        …)`` with these arguments would (stdout and stderr: PIPE, STDOUT, DEVNULL, a file
        descriptor, or None for the test's own); with ``cold``, in a fresh Python (a command
        refused before it imports TensorFlow, a kill meant to land in the imports). ``stdin``: a
        file descriptor to read (else /dev/null in a fork, the test's own stdin in a fresh Python,
        as before); ``preload``: what the server has imported; ``env_server``: where ``env``'s
        import-time variables differ from this process's, a fork of a server started with them
        (started once, kept for the next such command) instead of a fresh Python."""
        env = dict(os.environ if env is None else env)
        server = None if cold else self._free(env, preload, env_server)
        if server is None:
            return subprocess.Popen(
                [sys.executable, *argv],
                stdin=stdin,
                stdout=stdout,
                stderr=stderr,
                env=env,
                cwd=cwd,
                text=True,
            )
        ends: list[int] = []  # this side's copies of the child's ends, closed once sent
        readers: list[IO[str] | None] = []

        def child_end(choice: int | None, fallback: int) -> int:
            if choice == PIPE:
                read, write = os.pipe()
                readers.append(open(read, encoding="utf-8", errors="replace"))  # noqa: SIM115
                ends.append(write)
                return write
            readers.append(None)
            if choice == DEVNULL:
                ends.append(os.open(os.devnull, os.O_WRONLY))
                return ends[-1]
            return fallback if choice is None else choice

        out = child_end(stdout, 1)  # None: the test process's own stdout and stderr, as Popen's
        err = out if stderr == STDOUT else child_end(stderr, 2)
        if stderr == STDOUT:
            readers.append(None)
        request = {"argv": [str(a) for a in argv], "cwd": str(cwd or os.getcwd()), "env": env}
        try:
            pid = server.fork(request, [out, err] if stdin is None else [out, err, stdin])
        finally:
            for fd in ends:
                os.close(fd)
        return Forked([sys.executable, *map(str, argv)], server, pid, readers[0], readers[1])

    def _free(
        self, env: dict[str, str], preload: tuple[str, ...] = PRELOAD, env_server: bool = False
    ) -> _Server | None:
        """A server of ``preload`` that no other thread is waiting on, started with ``env``'s
        import-time variables, or None where a fork cannot stand for a cold start (a new server
        starts with this process's environment, or with ``env`` where ``env_server``)."""
        wanted = _import_time_env(env)
        if not hasattr(os, "fork"):
            return None
        for server in self._servers:
            free = not server.lock.locked() and server.process.poll() is None
            if free and server.env == wanted and server.preload == preload:
                return server
        if wanted != _import_time_env(dict(os.environ)):
            if not env_server:
                return None
            self._servers.append(_Server(preload, env))
            return self._servers[-1]
        self._servers.append(_Server(preload))
        return self._servers[-1]

    def close(self) -> None:
        for server in self._servers:
            server.close()
        self._servers.clear()


# -- the server --------------------------------------------------------------------------------
def _serve(channel: socket.socket, preload: list[str]) -> dict:
    """Fork a child per request; the parent answers its pid, and its exit status (with its pid)
    once it ends, while other children may run. Returns the request in the child only (which
    then runs it); exits when the test process closes the socket, once its children ended."""
    for name in preload:
        __import__(name)
    if preload == list(PRELOAD):  # the scripts' plots
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot

    # What the preload made lives as long as the server, so in every child too: frozen, the
    # collector's full collections in a child (Python's own, every few hundred thousand
    # allocations of a training, and the one at its end) no longer scan these 370,000 objects
    # again, about 0.25 s each; cnnspec's CLI freezes what it imported in the same way.
    gc.collect()
    _PRELOADED_FILES.extend(_files(gc.get_objects()))  # (for _end: the frozen are not listed)
    gc.freeze()
    pidfds: dict[int, int] = {}  # a running child's pidfd (readable once it has ended) → its pid
    polled: set[int] = set()  # the running children, where os.pidfd_open is missing: looked at
    # every 20 ms instead

    def answer(pid: int, status: int) -> None:
        channel.send(json.dumps({"pid": pid, "status": os.waitstatus_to_exitcode(status)}).encode())

    while True:
        ready, _, _ = select.select([channel, *pidfds], [], [], 0.02 if polled else None)
        for pidfd in [fd for fd in ready if fd is not channel]:
            os.close(pidfd)
            pid = pidfds.pop(pidfd)
            answer(pid, os.waitpid(pid, 0)[1])
        for pid in list(polled):
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                polled.discard(pid)
                answer(pid, status)
        if channel not in ready:
            continue
        message, fds, _, _ = socket.recv_fds(channel, 1 << 20, 3)
        if not message:
            for pid in [*pidfds.values(), *polled]:
                os.waitpid(pid, 0)
            sys.exit(0)
        request = json.loads(message)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            channel.close()
            for pidfd in pidfds:
                os.close(pidfd)
            request["fds"] = fds
            return request
        for fd in fds:
            os.close(fd)
        try:
            pidfds[os.pidfd_open(pid)] = pid
        except (AttributeError, OSError):  # no pidfds (an older Linux or Python, or not Linux)
            polled.add(pid)
        channel.send(json.dumps({"pid": pid}).encode())


def _become(request: dict) -> str:
    """Turn this fork into the command's process; returns the script's path."""
    gc.freeze = _noted_freeze
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    tempfile.tempdir = None  # read TMPDIR again, as a fresh Python would
    out, err, *given = request["fds"]
    stdin = given[0] if given else os.open(os.devnull, os.O_RDONLY)
    os.dup2(stdin, 0)
    os.dup2(out, 1)
    os.dup2(err, 2)
    for fd in {stdin, out, err} - {0, 1, 2}:
        os.close(fd)
    script = os.path.abspath(request["argv"][0])
    sys.argv = list(request["argv"])
    sys.path[0] = os.path.dirname(script)
    return script


def _run(script: str) -> int:
    """Run the script as ``python script`` would, up to its exit status."""
    import runpy
    import traceback

    try:
        runpy.run_path(script, run_name="__main__")
    except SystemExit as stop:
        if stop.code is None or isinstance(stop.code, int):
            return stop.code or 0
        print(stop.code, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        traceback.print_exc()
        return -signal.SIGINT  # Python ends by SIGINT after an uncaught Ctrl-C, so a shell sees 130
    except BaseException:
        traceback.print_exc()
        return 1
    return 0


#: The file objects of the server's preload (stdout and stderr among them), listed before it froze
#: them: a child's _end flushes these and the files of its own.
_PRELOADED_FILES: list[io.IOBase] = []
_FREEZE = gc.freeze
_COMMAND_FROZE: list[bool] = []


def _noted_freeze() -> None:
    """gc.freeze in a child, noted: what the command froze (cnnspec's CLI freezes its imports)
    get_objects() no longer lists, so _end looks at every object again."""
    _COMMAND_FROZE.append(True)
    _FREEZE()


def _files(things: list[object]) -> list[io.IOBase]:
    """The file objects among ``things`` (each type asked once: a few hundred thousand objects)."""
    kinds: dict[type, bool] = {}
    found = []
    for thing in things:
        kind = type(thing)
        if kind not in kinds:
            kinds[kind] = issubclass(kind, io.IOBase)
        if kinds[kind]:
            found.append(thing)
    return found


def _end(code: int) -> None:
    """End as Python ends a script, except for the teardown of every module: that takes about 3 s
    once TensorFlow is imported, and only frees memory. Threads are joined, atexit functions run,
    files left open are flushed, as the teardown would (stdout and stderr too)."""
    import atexit
    import threading

    threading._shutdown()  # what the interpreter does first at exit: join non-daemon threads
    atexit._run_exitfuncs()
    gc.collect()  # what is unreachable is finalized, as in the teardown
    if _COMMAND_FROZE:  # what it froze, get_objects() leaves out: every object, frozen or not
        gc.unfreeze()
        files = _files(gc.get_objects())
    else:  # the server's preload (frozen, listed before) and what the command made (not frozen)
        files = [*_PRELOADED_FILES, *_files(gc.get_objects())]
    for thing in files:  # the teardown would flush files left open, and then close them
        with contextlib.suppress(Exception):
            thing.flush()
    if code < 0:
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    os._exit(code)


if __name__ == "__main__":
    _end(_run(_become(_serve(socket.socket(fileno=int(sys.argv[1])), sys.argv[2].split(",")))))
