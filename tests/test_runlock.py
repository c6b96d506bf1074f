"""One process owns a run folder (training/runlock.py): refusal, release, a killed holder,
leftover temp files; and two real `cnnspec train` processes on one folder."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from cnnspec.errors import UsageError
from cnnspec.fileio import atomic_path
from cnnspec.training import runlock
from cnnspec.training.runlock import LOCK_NAME, RunFolderBusy, acquire, holder, remove_leftovers

CNNSPEC = str(Path(sys.executable).with_name("cnnspec"))


def test_a_second_acquire_is_refused_with_the_holders_pid_and_command(tmp_path):
    with acquire(tmp_path, ["cnnspec", "train", "spec.yaml", "--out", "run"]) as first:
        assert first.held and holder(tmp_path)["pid"] == os.getpid()
        # flock belongs to the open file: a second open, even in this process, is a second owner
        with pytest.raises(RunFolderBusy) as info:
            acquire(tmp_path, ["cnnspec", "report", "run"])
    error = info.value
    assert isinstance(error, UsageError)  # the CLI's exit 2, no traceback
    assert f"process {os.getpid()}" in str(error)
    assert "cnnspec train spec.yaml --out run" in str(error)
    assert error.holder["command"][:2] == ["cnnspec", "train"]


def test_release_removes_the_lock_file_and_frees_the_folder(tmp_path):
    lock = acquire(tmp_path, ["first"])
    assert (tmp_path / LOCK_NAME).is_file()
    lock.release()
    lock.release()  # idempotent
    assert not lock.held and not (tmp_path / LOCK_NAME).exists()
    with acquire(tmp_path, ["second"]):
        assert holder(tmp_path)["command"] == ["second"]
    assert holder(tmp_path) is None


def test_a_lock_file_whose_holder_is_gone_blocks_nobody(tmp_path):
    (tmp_path / LOCK_NAME).write_text(json.dumps({"pid": 999999, "command": ["gone"]}))
    with acquire(tmp_path, ["next"]):
        assert holder(tmp_path)["pid"] == os.getpid()  # rewritten, not appended to


def test_a_killed_holders_lock_is_free(tmp_path):
    script = textwrap.dedent(
        f"""
        import sys, time
        from cnnspec.training.runlock import acquire
        lock = acquire({str(tmp_path)!r}, ["holder"])
        print("locked", flush=True)
        time.sleep(60)
        """
    )
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline().strip() == "locked"
        with pytest.raises(RunFolderBusy, match=f"process {process.pid} \\(holder\\)"):
            acquire(tmp_path)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    assert holder(tmp_path)["pid"] == process.pid  # SIGKILL left the file, but not the lock
    with acquire(tmp_path, ["after"]):
        assert holder(tmp_path)["command"] == ["after"]


def test_a_folder_that_cannot_take_a_lock_file_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="can't create"):
        acquire(tmp_path / "missing")


def test_remove_leftovers_deletes_only_temp_files_of_killed_atomic_writes(tmp_path):
    (tmp_path / "state").mkdir()
    left = []
    writes = (("history.json", None), ("state/epoch-0002.weights.h5", ".weights.h5"), ("notes", None))
    for target, suffix in writes:
        with atomic_path(tmp_path / target, suffix=suffix) as temp:
            temp.write_text("half written")
            left.append(temp.relative_to(tmp_path))
        # put back the real temp name, as a SIGKILL before the rename would have left it
        (tmp_path / left[-1]).write_text("half written")
    kept = ["lock.json", "history.json", "state/epoch-0001.json", "state/epoch-0001.weights.h5", ".hidden"]
    for name in kept:
        (tmp_path / name).write_text("keep")
    with acquire(tmp_path):
        assert remove_leftovers(tmp_path) == 3
        assert (tmp_path / LOCK_NAME).exists()  # its own lock file is no leftover
    for name in kept:
        assert (tmp_path / name).read_text() == "keep"
    assert not any((tmp_path / path).exists() for path in left)
    assert remove_leftovers(tmp_path) == 0
    assert runlock.remove_leftovers(tmp_path / "missing") == 0
