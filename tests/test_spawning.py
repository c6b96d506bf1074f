"""A search worker's start-up data is in its pipe before it exists: a runner killed right after
starting it leaves a worker that still starts (no ``EOFError`` traceback from
``multiprocessing.spawn``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

# The runner, played by a child interpreter: it starts a worker whose target touches a file,
# and SIGKILLs itself the moment the worker's process exists (the worst moment for ``spawn``,
# which wrote the data only after that). ``big`` makes the data larger than a default pipe.
RUNNER = """
import os, signal, sys
from pathlib import Path
from multiprocessing import util
from cnnspec.search.spawning import WorkerProcess

started = util.spawnv_passfds

def start_then_die(path, args, passfds):
    pid = started(path, args, passfds)
    if "--multiprocessing-fork" in args:  # the worker (the resource tracker starts this way too)
        os.kill(os.getpid(), signal.SIGKILL)
    return pid

util.spawnv_passfds = start_then_die
target, size = Path(sys.argv[1]), int(sys.argv[2])
WorkerProcess(target=target.write_text, args=("x" * size,)).start()
"""


@pytest.mark.parametrize("size", [10, 300_000], ids=["small", "larger-than-a-default-pipe"])
def test_a_worker_whose_runner_is_killed_as_it_starts_still_runs(tmp_path: Path, size: int) -> None:
    target = tmp_path / "ran"
    done = subprocess.run(
        [sys.executable, "-c", RUNNER, str(target), str(size)],
        capture_output=True,
        text=True,
        timeout=60,  # the output ends when the worker, which holds it too, has ended
    )
    assert done.returncode == -9
    assert "Traceback" not in done.stderr, done.stderr
    assert target.read_text() == "x" * size
