"""Generated scripts run in forks of one Python that has already imported TensorFlow.

Every parity test runs a generated ``train.py`` as its user would: ``python train.py …`` in a
process of its own, whose output and exit status the test reads. A cold Python spends 6–9 s of
CPU importing TensorFlow, Keras, scikit-learn and matplotlib before the script's first line runs;
over the suite's script runs that was about 90 s of a 2-core CI budget. So the first run in a test
process starts this module as a server (``python tests/script_runner.py``) which imports them once
and then forks a child per script:

- **The child is a fresh process for the script.** It has its own pid, working directory,
  environment, ``sys.argv`` and ``sys.path[0]`` (the script's folder), stdin from /dev/null, stdout
  and stderr in files; the script runs as ``__main__`` through :func:`runpy.run_path`, and the
  child ends as Python ends a script (a traceback and exit 1 for an exception, threads joined,
  atexit functions run, files left open flushed), less the 3 s teardown of every module.
  cnnspec is never imported by the server, so a script that leaned on it would fail as before.
- **Nothing of TensorFlow has run in the server**, only its import: no op, no device, no thread
  pool, so the child may still set threading and determinism, as the scripts do first (a fork
  after TensorFlow had started its runtime could deadlock).
- **Where the fork could differ from a cold start, a cold start runs instead**: no ``os.fork``,
  or an environment whose variables TensorFlow reads at import (``TF_*``, ``KERAS_*``, …) differ
  from the server's.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import select
import signal
import subprocess
import sys
from pathlib import Path
from typing import IO

#: What the generated scripts import (templates/train*.py.j2), imported once by the server.
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
#: Environment variables read while those modules are imported: a difference means a cold start.
IMPORT_TIME_ENV = ("TF_", "KERAS_", "CUDA_", "XLA_", "OMP_", "MKL", "PYTHON", "MPLBACKEND", "MPLCONFIGDIR")


def _import_time_env(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k.startswith(IMPORT_TIME_ENV)}


class ScriptRunner:
    """The test side: one server per test process, started on first use, ended at exit."""

    def __init__(self) -> None:
        self._server: subprocess.Popen[str] | None = None
        self._env: dict[str, str] = {}
        self._log: IO[str] | None = None

    def run(self, argv: list[str], cwd: Path | None, timeout: float) -> subprocess.CompletedProcess[str]:
        env = dict(os.environ)
        if not hasattr(os, "fork") or (self._server and _import_time_env(env) != self._env):
            return subprocess.run(
                [sys.executable, *argv], capture_output=True, text=True, cwd=cwd, timeout=timeout, check=False
            )
        server = self._start()
        folder = Path(cwd or os.getcwd())
        out, err = _capture_files()
        request = {"argv": argv, "cwd": str(folder), "env": env, "stdout": out, "stderr": err}
        server.stdin.write(json.dumps(request) + "\n")
        server.stdin.flush()
        pid = json.loads(self._reply(server, 60))["pid"]
        try:
            status = json.loads(self._reply(server, timeout))["status"]
        except subprocess.TimeoutExpired:
            os.kill(pid, signal.SIGKILL)
            self._reply(server, 60)
            raise
        finally:
            stdout, stderr = (_read_and_remove(path) for path in (out, err))
        return subprocess.CompletedProcess([sys.executable, *argv], status, stdout, stderr)

    def _start(self) -> subprocess.Popen[str]:
        if self._server is None or self._server.poll() is not None:
            self._env = _import_time_env(dict(os.environ))
            import tempfile

            # the server's own stderr (its import messages), shown if it ever ends early; open as
            # long as the server runs
            self._log = tempfile.TemporaryFile(mode="w+", prefix="script-server-")  # noqa: SIM115
            self._server = subprocess.Popen(
                [sys.executable, __file__],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self._log,
                text=True,
            )
        return self._server

    def _reply(self, server: subprocess.Popen[str], timeout: float) -> str:
        ready, _, _ = select.select([server.stdout], [], [], timeout)
        if not ready:
            raise subprocess.TimeoutExpired("script", timeout)
        line = server.stdout.readline()
        if not line:
            code = server.wait()
            self._log.seek(0)
            raise RuntimeError(f"the script server ended (exit {code}): {self._log.read()[-3000:]}")
        return line

    def close(self) -> None:
        if self._server is not None and self._server.poll() is None:
            self._server.stdin.close()
            self._server.wait(timeout=30)


def _capture_files() -> tuple[str, str]:
    import tempfile

    paths = []
    for stream in ("stdout", "stderr"):
        handle, path = tempfile.mkstemp(prefix=f"script-{stream}-")
        os.close(handle)
        paths.append(path)
    return paths[0], paths[1]


def _read_and_remove(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace")
    finally:
        Path(path).unlink(missing_ok=True)


def _serve() -> dict:
    """Fork a child per request line; the parent answers its pid, then its exit status. Returns
    the request in the child only (which then runs the script); exits at the end of input."""
    for name in PRELOAD:
        __import__(name)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot

    replies = sys.stdout
    for line in sys.stdin:
        request = json.loads(line)
        replies.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            return request
        replies.write(json.dumps({"pid": pid}) + "\n")
        replies.flush()
        _, status = os.waitpid(pid, 0)
        replies.write(json.dumps({"status": os.waitstatus_to_exitcode(status)}) + "\n")
        replies.flush()
    sys.exit(0)


def _become(request: dict) -> str:
    """Turn this fork into the script's process; returns the script's path."""
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    for fd, target in ((0, os.devnull), (1, request["stdout"]), (2, request["stderr"])):
        opened = os.open(target, os.O_RDONLY if fd == 0 else os.O_WRONLY | os.O_TRUNC)
        os.dup2(opened, fd)
        os.close(opened)
    script = os.path.abspath(request["argv"][0])
    sys.argv = [request["argv"][0], *request["argv"][1:]]
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
    except BaseException:
        traceback.print_exc()
        return 1
    return 0


def _end(code: int) -> None:
    """End as Python ends a script, except for the teardown of every module: that takes about 3 s
    once TensorFlow is imported, and only frees memory. Threads are joined, atexit functions run,
    files left open are flushed, as the teardown would (stdout and stderr too)."""
    import atexit
    import gc
    import threading

    threading._shutdown()  # what the interpreter does first at exit: join non-daemon threads
    atexit._run_exitfuncs()
    for thing in gc.get_objects():  # the teardown would flush files left open, and then close them
        if isinstance(thing, io.IOBase):
            with contextlib.suppress(Exception):
                thing.flush()
    os._exit(code)


if __name__ == "__main__":
    _end(_run(_become(_serve())))
