"""`cnnspec validate` shares many files between forked worker processes (cnnspec.cli.forked):
the output is the same as one process's, in the files' order, whatever a worker does.

The forking runs in child interpreters: a test runner's process has threads (xdist's), and
there `ordered_map` runs serially by design (a fork copies one thread only)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading

import pytest

from cnnspec.cli import forked
from cnnspec.cli import validate as validate_cli
from cnnspec.machine import usable_cores
from tests.conftest import FIXTURES, ROOT, SPEC_FILES
from tests.test_search import CNNSPEC

#: Results as JSON bytes (tuples come back as lists).
CODEC = (lambda result: json.dumps(result).encode(), json.loads)


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, cwd=ROOT, timeout=120
    )


def test_results_come_in_order_from_several_processes_and_no_worker_is_left():
    done = _python(
        """
        import os, time
        from cnnspec.cli.forked import ordered_map
        import json
        CODEC = (lambda result: json.dumps(result).encode(), json.loads)
        parent = os.getpid()
        def work(n):
            time.sleep(0.002 * (n % 5))  # uneven items: the shares differ
            return n * n, os.getpid()
        results = list(ordered_map(work, list(range(200)), 3, *CODEC))
        assert [r[0] for r in results] == [n * n for n in range(200)], results
        pids = {r[1] for r in results}
        assert parent in pids and len(pids) >= 2, pids  # all three, unless one was never scheduled
        try:
            os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            print("reaped")
        """
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "reaped"


@pytest.mark.parametrize("failure", ["raise", "exit"])
def test_an_item_a_worker_fails_on_is_run_again_by_the_parent(failure):
    done = _python(
        f"""
        import os
        from cnnspec.cli.forked import ordered_map
        import json
        CODEC = (lambda result: json.dumps(result).encode(), json.loads)
        parent = os.getpid()
        def work(n):
            if os.getpid() != parent and n % 7 == 3:  # in a worker only
                if {failure!r} == "raise":
                    raise RuntimeError("a worker's failure")
                os._exit(9)  # the worker dies
            return n
        assert list(ordered_map(work, list(range(60)), 2, *CODEC)) == list(range(60))
        print("ok")
        """
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok" and "Traceback" not in done.stderr


def test_an_error_in_the_parent_propagates_and_kills_the_workers():
    done = _python(
        """
        import os, time
        from cnnspec.cli.forked import ordered_map
        import json
        CODEC = (lambda result: json.dumps(result).encode(), json.loads)
        parent = os.getpid()
        def work(n):
            if os.getpid() == parent and n > 4:
                raise ValueError("the parent's own error")
            time.sleep(0.01)
            return n
        try:
            list(ordered_map(work, list(range(500)), 2, *CODEC))
        except ValueError as exc:
            print(exc)
        try:
            os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            print("reaped")
        """
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:2] == ["the parent's own error", "reaped"]


def test_a_process_with_threads_does_not_fork():
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        assert not forked.can_fork()
        assert list(forked.ordered_map(lambda n: n + 1, [1, 2, 3], 4, *CODEC)) == [2, 3, 4]
    finally:
        stop.set()
        thread.join()


def test_auto_jobs_keeps_two_files_per_process():
    assert forked.auto_jobs(0) == 1 and forked.auto_jobs(3) == 1
    assert forked.auto_jobs(100) == min(usable_cores(), 50)


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_validate_prints_the_same_with_workers_as_alone(fmt):
    invalid = sorted((FIXTURES / "invalid").glob("*.yaml"))[:6]
    files = [str(p) for pair in zip(SPEC_FILES, invalid, strict=False) for p in pair] + [
        str(p) for p in SPEC_FILES[len(invalid) :]
    ]
    runs = [
        subprocess.run(
            [CNNSPEC, "validate", "-f", fmt, "-j", jobs, *files],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=120,
        )
        for jobs in ("1", "3")
    ]
    assert runs[0].returncode == runs[1].returncode == 1, runs[1].stderr
    assert runs[0].stdout == runs[1].stdout
    assert runs[0].stderr == runs[1].stderr
    if fmt == "text":
        oks = [line.split(":", 1)[0][3:] for line in runs[1].stdout.splitlines() if line.startswith("ok ")]
        assert oks == [f for f in files if f.startswith(str(ROOT / "specs"))]  # every spec, in order
    else:
        assert json.loads(runs[1].stdout)


def test_a_diagnostic_comes_back_from_its_json_as_it_was():
    from cnnspec.errors import Diagnostic, Loc, Note

    diagnostics = [
        Diagnostic(
            "expected an int; received 'x'",
            Loc("a.yaml", 3, 7),
            "model[2].conv2d.filters",
            "type",
            "write a whole number",
            "error",
            (Note("in block 'b' called from model[4]", Loc("a.yaml", 9, 5), "model[4]"), Note("more")),
        ),
        Diagnostic("unused block", None, "", "unused", None, "warning"),
    ]
    checked = validate_cli.Checked(diagnostics, None)
    assert validate_cli.Checked.decode(checked.encode()) == checked
    assert validate_cli.Checked.decode(validate_cli.Checked([], "ok").encode()) == ([], "ok")


def test_a_fork_that_fails_leaves_the_work_to_the_processes_there_are(monkeypatch):
    """A process limit (fork raises EAGAIN): the items are still all computed, in order."""
    monkeypatch.setattr(forked, "can_fork", lambda: True)

    def no_fork() -> int:
        raise BlockingIOError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(forked.os, "fork", no_fork)
    assert list(forked.ordered_map(lambda n: n * 2, list(range(10)), 4, *CODEC)) == list(range(0, 20, 2))
