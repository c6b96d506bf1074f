"""What killed writes left outside a run folder is removed by the next write to the same file.

Inside a run folder, the command holding the run's lock removes killed writes' temp folders
(``runlock.remove_leftovers``). Elsewhere (``codegen -o``, ``validate --fix``, ``import``'s spec)
nothing did: a SIGKILL mid-write left ``.NAME.XXXXXXXX.tmp/`` beside the user's file for good,
and a group's kept file (``write_together``) whose target a kill left missing stayed there.

Now every write locks its scratch folder (``flock``) while it is in flight, and a write to
``NAME`` first removes the scratch folders of earlier writes to ``NAME`` that no process holds
and that are older than ``STALE_AFTER_S``: a live write (another process's, holding its lock)
and a folder of another name are left alone.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cnnspec import fileio
from cnnspec.fileio import write_atomic, write_together

#: A write killed after its part file was written (the shape atomic_path leaves).
KILLED = """
import os, sys
from pathlib import Path
from cnnspec.fileio import atomic_path
with atomic_path(Path(sys.argv[1])) as temp:
    temp.write_text("half")
    os._exit(9)  # (killed: nothing runs after)
"""


def _killed_write(target: Path) -> Path:
    """The scratch folder a write to ``target`` killed mid-way left (in a process of its own)."""
    done = subprocess.run([sys.executable, "-c", KILLED, str(target)], capture_output=True, text=True)
    assert done.returncode == 9, done.stderr
    named = [(p, fileio._TEMP_FOLDER.fullmatch(p.name)) for p in target.parent.iterdir()]
    (left,) = [p for p, found in named if found is not None and found["target"] == target.name]
    assert fileio.is_atomic_leftover(left)
    return left


def _age(path: Path, seconds: float = fileio.STALE_AFTER_S + 5) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_a_killed_writes_leftover_is_removed_by_the_next_write_of_that_file(tmp_path: Path) -> None:
    target = tmp_path / "model.py"
    target.write_text("mine")
    left = _killed_write(target)
    assert target.read_text() == "mine"  # (the kill left the user's file as it was)
    _age(left)
    write_atomic(target, "new")
    assert target.read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.py"]


def test_a_leftover_of_another_file_a_young_one_and_a_held_one_are_left(tmp_path: Path) -> None:
    target = tmp_path / "a"
    other = _killed_write(tmp_path / "a.b")  # `.a.b.XXXXXXXX.tmp`: starts as `a`'s would
    young = _killed_write(target)
    _age(other)
    write_atomic(target, "1")
    assert other.is_dir() and young.is_dir()  # another file's; one that may be a write starting
    _age(young)
    fd = os.open(young, os.O_RDONLY | os.O_DIRECTORY)  # another write's, in flight: it holds it
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        write_atomic(target, "2")
        assert young.is_dir()
    finally:
        os.close(fd)
    write_atomic(target, "3")  # let go of: a leftover
    assert not young.exists() and target.read_text() == "3" and other.is_dir()


def test_a_write_in_flight_holds_its_folder_and_lets_go_once_done(tmp_path: Path) -> None:
    target = tmp_path / "x.json"
    with fileio.atomic_path(target) as temp:
        temp.write_text("{}")
        fd = os.open(temp.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(fd)
    assert fileio._HELD == {} and target.read_text() == "{}"
    with pytest.raises(RuntimeError), fileio.atomic_path(target) as temp:
        temp.write_text("no")
        raise RuntimeError("the writer failed")
    assert fileio._HELD == {} and sorted(p.name for p in tmp_path.iterdir()) == ["x.json"]


def test_a_group_leftover_puts_back_the_file_its_kill_left_missing(tmp_path: Path) -> None:
    """A group's file kept aside by renaming (a file system without hard links), its target
    missing after a kill: the next write of that file puts it back before writing over it,
    so what the user had is never lost on the way."""
    target = tmp_path / "record.json"
    scratch = tmp_path / ".record.json.abcd1234.tmp"
    scratch.mkdir()
    (scratch / "old.json").write_text("kept")
    _age(scratch)
    with write_together():
        write_atomic(target, "new")
        # put back first; the new file waits for the group's end
        assert target.read_text() == "kept" and not scratch.exists()
    assert target.read_text() == "new" and fileio._HELD == {}


def test_codegen_over_a_killed_codegen_leaves_only_the_script(tmp_path: Path, runner) -> None:
    from cnnspec.cli.app import app
    from tests.conftest import SPECS_DIR

    target = tmp_path / "model.py"
    left = _killed_write(target)
    _age(left)
    done = runner.invoke(app, ["codegen", str(SPECS_DIR / "basic_cnn.yaml"), "-o", str(target)])
    assert done.exit_code == 0, done.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.py"]


def test_a_large_folder_is_listed_once_a_while_and_its_leftovers_still_go(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """predict writing thousands of masks into one folder listed the folder for each write: 22 s
    of listing for 5,000 files. A large folder's listing is kept for ``STALE_AFTER_S`` seconds;
    a leftover in it is still removed, and one made since is found by the next listing."""
    for i in range(fileio.LISTED_ENTRIES):
        (tmp_path / f"m{i:03d}.png").write_bytes(b"")
    left = _killed_write(tmp_path / "m000.png")
    _age(left)
    listings = []
    real = os.scandir
    monkeypatch.setattr(fileio.os, "scandir", lambda path: listings.append(Path(path)) or real(path))
    for i in range(20):
        write_atomic(tmp_path / f"m{i:03d}.png", b"mask")
    assert listings.count(tmp_path) == 1 and not left.exists()
    later = _killed_write(tmp_path / "m001.png")
    _age(later)
    write_atomic(tmp_path / "m001.png", b"mask")
    assert later.is_dir()  # (made after the listing kept)
    clock = time.monotonic() + fileio.STALE_AFTER_S
    monkeypatch.setattr(fileio.time, "monotonic", lambda: clock)
    write_atomic(tmp_path / "m001.png", b"mask")
    assert listings.count(tmp_path) == 2 and not later.exists()
