"""A Ctrl-C (or SIGTERM) at any moment of a write leaves each target as it was or as written,
all the files of a group or stage alike, and nothing else: no temp folder, no empty folder the
write made, no lock held.

Python raises a stop's ``KeyboardInterrupt`` at the next call or return in the main thread,
wherever that is, as soon as a call returns: right after an ``os.mkdir`` or an ``os.replace``
too, before its caller could note what it did. So each write here is run again and again, the
stop raised at its first, second, third… call or return (a profile hook, :func:`sys.setprofile`,
sees every one, in Python and in C), until it runs to the end untouched. CI's flaky SIGTERM
test (a scratch folder made just before the signal came, and left) found the first such gap.
"""

from __future__ import annotations

import functools
import inspect
import io
import os
import sys
from collections.abc import Callable
from pathlib import Path
from types import CodeType

import pytest

from cnnspec import fileio
from cnnspec.fileio import (
    atomic_dir,
    atomic_path,
    check_writable,
    disown_folder,
    own_folder,
    scratch_folder,
    staged_folder,
    write_atomic,
    write_together,
)

HERE = __file__


@pytest.fixture(autouse=True)
def _no_state_left(monkeypatch):
    """A failed case's lock, group or stage does not fail the next test. (And ``fsync`` flushes
    nothing here: the writes are tried hundreds of times each, and a flush is what takes the time
    of a write. In its place ``fstat``, a file-system call of the same descriptor: a stop is
    still tried before and after it.)"""
    monkeypatch.setattr(os, "fsync", os.fstat)
    yield
    for fd in fileio._HELD.values():
        os.close(fd)
    fileio._HELD.clear()
    fileio._GROUP.set(None)
    fileio._STAGE.set(None)


def _tree(root: Path) -> dict[str, str | None]:
    """Every path under ``root`` with its text (``None`` for a folder)."""
    return {
        str(p.relative_to(root)): (None if p.is_dir() else p.read_text()) for p in sorted(root.rglob("*"))
    }


#: Where cnnspec's code is: its frames' steps are each a place a stop can come.
CNNSPEC = str(Path(fileio.__file__).parent) + os.sep


@functools.cache
def _ours(code: CodeType) -> bool:
    """Whether ``code`` is cnnspec's (asked for every event: kept per code object)."""
    return code.co_filename.startswith(CNNSPEC)


def _touches_disk(arg: object) -> bool:
    """Whether a C function called is a file-system step (``os``, ``fcntl``, a file's method)."""
    return getattr(arg, "__module__", None) in ("posix", "fcntl", "io") or isinstance(
        getattr(arg, "__self__", None), io.IOBase
    )


def _a_step(frame, event: str, arg: object) -> bool:
    """Whether a stop is tried at this event. Where a stop comes can only matter where what was
    done so far differs, so: each call cnnspec's code makes or receives, each of its functions
    returning, each C function it calls returning (``ContextVar.set``, ``dict.pop``: state), and
    each file-system call anywhere, before and after it (a standard library function's own
    steps: ``Path.mkdir`` making one parent after another, ``shutil.rmtree``). Not the pure
    steps inside the standard library (pathlib parsing a path) nor a pure function's return,
    where a stop is the same as one at the call that led there: a third of the tries."""
    ours = _ours(frame.f_code)
    if event == "call":
        return ours or (frame.f_back is not None and _ours(frame.f_back.f_code))
    if event == "return":
        return ours
    return (ours and event == "c_return") or _touches_disk(arg)


#: Where the last stop was raised: function, line, event and the C function's name.
WHERE: list[str] = []


def _stopped_at(count: int, write: Callable[[], object]) -> bool:
    """Run ``write`` with a ``KeyboardInterrupt`` raised at its ``count``-th call or return;
    whether it ran to its end (``count`` is past its last one)."""
    seen = 0
    WHERE[:] = ["nowhere"]

    def hook(frame, event, arg):
        nonlocal seen
        if frame.f_code.co_filename == HERE:  # (this test's own frames: no stop there)
            return
        if event == "return" and frame.f_code.co_flags & inspect.CO_GENERATOR:
            # a generator's yield: raised there, the hook would end the generator's frame
            # without its handlers, which no stop can do (it comes in the caller, after the yield)
            return
        if not _a_step(frame, event, arg):
            return
        seen += 1
        if seen == count:
            sys.setprofile(None)
            code = frame.f_code
            called = getattr(arg, "__name__", "")
            WHERE[:] = [f"{Path(code.co_filename).name}:{frame.f_lineno} {code.co_name} {event} {called}"]
            raise KeyboardInterrupt

    sys.setprofile(hook)
    try:
        write()
    except KeyboardInterrupt:
        return False
    finally:
        sys.setprofile(None)
    return True


def _stop_everywhere(
    make: Callable[[Path], Callable[[], object]],
    root: Path,
    before: dict,
    after: dict,
    together: bool,
    each: Callable[[Path], None] | None = None,
) -> int:
    """Stop the write ``make(case)`` builds at each of its calls in turn, each time in a fresh copy
    of ``before``; what is left must be ``before`` or ``after`` (``together``: for all files at
    once, else file by file), and the process as it was (no lock held, no group or stage left
    on). ``each(case)`` runs after each try, unstopped. Returns how many stops were tried."""
    count = 0
    while True:
        count += 1
        case = root / f"stop{count}"
        case.mkdir()
        for name, text in before.items():
            path = case / name
            if text is None:
                path.mkdir(parents=True, exist_ok=True)
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text)
        finished = _stopped_at(count, make(case))
        if each is not None:
            each(case)
        left = _tree(case)
        assert fileio._HELD == {}, f"stop {count} ({WHERE[0]}): a scratch folder is still locked"
        assert fileio._GROUP.get() is None and fileio._STAGE.get() is None, f"stop {count} ({WHERE[0]})"
        if finished:
            assert left == after
            return count
        if together:
            assert left in (before, after), f"stop {count} ({WHERE[0]}): {left}"
        else:
            for name in set(before) | set(after) | set(left):
                assert left.get(name) in (before.get(name), after.get(name)), (
                    f"stop {count} ({WHERE[0]}): {name}: {left}"
                )
            assert set(left) <= set(before) | set(after), f"stop {count} ({WHERE[0]}): left behind: {left}"
        assert count < 5_000, "the write never ran to its end"


def _written(folder: str, *names: str) -> dict[str, str | None]:
    """The folders up to ``folder`` and the files ``names`` in it, each holding "new <name>"."""
    tree: dict[str, str | None] = {}
    parts = Path(folder).parts
    for i in range(1, len(parts) + 1):
        tree[str(Path(*parts[:i]))] = None
    for name in names:
        tree[str(Path(folder) / name)] = f"new {name}"
    return tree


def test_a_write_into_folders_it_makes(tmp_path):
    tried = _stop_everywhere(
        lambda case: lambda: write_atomic(case / "a" / "b" / "f.txt", "new f.txt"),
        tmp_path, {}, _written("a/b", "f.txt"), together=True,
    )  # fmt: skip
    assert tried > 100  # (the hook saw the write's calls: the stops tried were real ones)


def test_a_write_that_replaces_a_file(tmp_path):
    before = {"a": None, "a/f.txt": "old"}
    _stop_everywhere(
        lambda case: lambda: write_atomic(case / "a" / "f.txt", "new f.txt"),
        tmp_path, before, _written("a", "f.txt"), together=True,
    )  # fmt: skip


def test_a_write_into_an_owned_folder_makes_its_sub_folders_only(tmp_path):
    def make(case: Path) -> Callable[[], object]:
        own_folder(case / "run", lambda target: None)  # (a run's lock: taken and let go unstopped)
        return lambda: write_atomic(case / "run" / "export" / "deep" / "f.txt", "new f.txt")

    before = {"run": None}
    after = {**before, **_written("run/export/deep", "f.txt")}
    _stop_everywhere(
        make, tmp_path, before, after, together=True, each=lambda case: disown_folder(case / "run")
    )


@pytest.mark.parametrize("old", [False, True], ids=["new", "replaced"])
def test_a_folder_written_whole(tmp_path, old):
    def make(case: Path) -> Callable[[], object]:
        def write() -> None:
            with atomic_dir(case / "out" / "model") as temp:
                (temp / "saved.pb").write_text("new saved.pb")

        return write

    before = {"out": None, "out/model": None, "out/model/saved.pb": "old"} if old else {}
    after = _written("out/model", "saved.pb")
    _stop_everywhere(make, tmp_path, before, after, together=True)


def test_a_group_of_files_all_or_none(tmp_path):
    def make(case: Path) -> Callable[[], object]:
        def write() -> None:
            with write_together():
                write_atomic(case / "a" / "f.txt", "new f.txt")
                write_atomic(case / "b" / "h.txt", "new h.txt")

        return write

    before = {"a": None, "a/f.txt": "old"}  # (one file replaced, one new in a folder made for it)
    after = {**_written("a", "f.txt"), **_written("b", "h.txt")}
    _stop_everywhere(make, tmp_path, before, after, together=True)


def test_a_staged_folder_all_or_none(tmp_path):
    def make(case: Path) -> Callable[[], object]:
        def write() -> None:
            with staged_folder(case / "masks"):
                for name in ("1.png", "2.png"):
                    write_atomic(case / "masks" / name, f"new {name}")

        return write

    before = {"masks": None, "masks/2.png": "old"}  # (one file new, one replaced)
    _stop_everywhere(make, tmp_path, before, _written("masks", "1.png", "2.png"), together=True)


def test_a_staged_folder_it_makes(tmp_path):
    def make(case: Path) -> Callable[[], object]:
        def write() -> None:
            with staged_folder(case / "out" / "masks"):
                write_atomic(case / "out" / "masks" / "1.png", "new 1.png")

        return write

    _stop_everywhere(make, tmp_path, {}, _written("out/masks", "1.png"), together=True)


def test_a_copy_checked_in_a_scratch_folder_then_written(tmp_path):
    """The importer's weights: copied into a scratch folder, checked there, then moved in."""

    def make(case: Path) -> Callable[[], object]:
        def write() -> None:
            target = case / "out" / "m.weights.h5"
            with scratch_folder(target, needed=16) as private:
                part = private / "part.weights.h5"
                part.write_text("new m.weights.h5")
                with atomic_path(target, ".weights.h5") as temp:
                    os.replace(part, temp)

        return write

    _stop_everywhere(make, tmp_path, {}, _written("out", "m.weights.h5"), together=True)


def test_the_check_that_a_folder_takes_files_leaves_no_probe(tmp_path):
    before = {"runs": None}
    _stop_everywhere(
        lambda case: lambda: check_writable(case / "runs" / "new"), tmp_path, before, before, together=True
    )


def test_the_hook_stops_a_write_for_real(tmp_path):
    """The harness itself: a stop at the first call of a write raises out of it, and a count past
    the write's last call lets it finish."""
    target = tmp_path / "f.txt"
    assert not _stopped_at(1, lambda: write_atomic(target, "x"))
    assert not target.exists()
    assert _stopped_at(10**9, lambda: write_atomic(target, "x"))
    assert target.read_text() == "x"
    assert os.listdir(tmp_path) == ["f.txt"]
