"""Files written together (`fileio.write_together`): an export and its record, a spec and its
weights, an evaluation and its picture replace their old selves all together or not at all.
Before, each was renamed into place as soon as it was written: a failure between two of them
(a full disk, a read-only disk, a Ctrl-C) left a new file beside a stale partner."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

import pytest

from cnnspec.errors import WriteError
from cnnspec.fileio import atomic_path, is_atomic_leftover, write_atomic, write_together


def _pair(tmp_path: Path) -> tuple[Path, Path]:
    """A model file and its record, both there from an earlier write."""
    model, record = tmp_path / "model.onnx", tmp_path / "model.onnx.json"
    model.write_bytes(b"old model")
    record.write_text("old record")
    return model, record


def _listing(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def _failing_rename(monkeypatch: pytest.MonkeyPatch, call: int, error: BaseException) -> list[str]:
    """Make the ``call``-th ``os.replace`` (1-based) raise ``error``; returns the destinations."""
    real = os.replace
    seen: list[str] = []

    def replace(source, destination):
        seen.append(str(destination))
        if len(seen) == call:
            raise error
        return real(source, destination)

    monkeypatch.setattr(os, "replace", replace)
    return seen


def test_the_files_of_a_group_are_renamed_into_place_together_and_leave_nothing(tmp_path):
    model, record = _pair(tmp_path)
    with write_together():
        write_atomic(model, b"new model")
        assert model.read_bytes() == b"old model"  # nothing replaced before the group ends
        write_atomic(record, "new record")
        write_atomic(tmp_path / "sub" / "chart.png", b"png")
        assert not (tmp_path / "sub" / "chart.png").exists()
    assert model.read_bytes() == b"new model" and record.read_text() == "new record"
    assert sorted(os.listdir(tmp_path)) == ["model.onnx", "model.onnx.json", "sub"]
    assert os.listdir(tmp_path / "sub") == ["chart.png"]


def test_a_writer_failing_on_the_second_file_keeps_the_first_as_it_was(tmp_path, monkeypatch):
    model, record = _pair(tmp_path)
    before = _listing(tmp_path)
    real_open = open

    def read_only(path, mode="r", *args, **kwargs):  # the record's temp file can't be created
        if "x" in mode and Path(path).parent.name.startswith(".model.onnx.json."):
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real_open(path, mode, *args, **kwargs)

    monkeypatch.setattr("builtins.open", read_only)
    with pytest.raises(WriteError, match="Read-only file system") as caught, write_together():
        write_atomic(model, b"new model")
        write_atomic(record, "new record")
    assert caught.value.path == record
    monkeypatch.setattr("builtins.open", real_open)
    assert _listing(tmp_path) == before  # the old pair, and no temp folder


def test_a_free_space_check_failing_on_the_second_file_writes_nothing(tmp_path, monkeypatch):
    """The first file fits; the second does not: the first is not renamed into place either,
    and the folder the group made for it goes again."""
    model, _record = _pair(tmp_path)
    before = _listing(tmp_path)
    real = shutil.disk_usage

    def nearly_full(path):
        usage = real(path)
        return usage._replace(free=1000)

    monkeypatch.setattr(shutil, "disk_usage", nearly_full)
    with pytest.raises(WriteError, match="not enough free space") as caught, write_together():
        write_atomic(model, b"new model")  # 9 bytes: fits
        write_atomic(tmp_path / "new" / "big.bin", b"x" * 5000)
    assert caught.value.path == tmp_path / "new" / "big.bin" and caught.value.needed == 5000
    assert _listing(tmp_path) == before


@pytest.mark.parametrize("linked", [True, False], ids=["hard-link", "no-hard-links"])
@pytest.mark.parametrize(
    "error", [OSError(errno.EIO, "Input/output error"), KeyboardInterrupt()], ids=["io-error", "ctrl-c"]
)
def test_the_second_rename_failing_puts_the_first_file_back(tmp_path, monkeypatch, error, linked):
    """The model is renamed into place, the record's rename fails: the old model is put back
    (kept aside as a hard link, or, on a file system without them, renamed aside), and a file
    the group created is removed again."""
    model, record = _pair(tmp_path)
    before = _listing(tmp_path)
    if not linked:

        def no_links(*args, **kwargs):
            raise OSError(errno.EPERM, "Operation not permitted")

        monkeypatch.setattr(os, "link", no_links)
    # renames: made.png, (model aside,) model, (record aside,) record ← fails
    _failing_rename(monkeypatch, 3 if linked else 5, error)
    with pytest.raises((WriteError, KeyboardInterrupt)) as caught, write_together():
        write_atomic(tmp_path / "made.png", b"a new file")
        write_atomic(model, b"new model")
        write_atomic(record, "new record")
    if isinstance(error, OSError):
        assert caught.value.path == record
    assert _listing(tmp_path) == before


def test_the_second_rename_failing_names_the_file_it_failed_on(tmp_path, monkeypatch):
    model, record = _pair(tmp_path)
    before = _listing(tmp_path)
    seen = _failing_rename(monkeypatch, 2, OSError(errno.ENOSPC, "No space left on device"))
    with pytest.raises(WriteError, match="No space left on device") as caught, write_together():
        write_atomic(model, b"new model")
        write_atomic(record, "new record")
    assert seen[:2] == [str(model), str(record)]  # the model was in place when the record failed
    assert caught.value.path == record
    assert _listing(tmp_path) == before


def test_a_file_that_cannot_be_put_back_is_kept_and_the_error_says_where(tmp_path, monkeypatch):
    from cnnspec.training.runlock import remove_leftovers

    model, record = _pair(tmp_path)
    real = os.replace
    calls: list[str] = []

    def replace(source, destination):
        calls.append(str(destination))
        if len(calls) > 1:  # the record's rename, and the one putting the old model back
            raise OSError(errno.EIO, "Input/output error")
        return real(source, destination)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(WriteError, match="the file there before is kept in") as caught, write_together():
        write_atomic(model, b"new model")
        write_atomic(record, "new record")
    monkeypatch.setattr(os, "replace", real)
    assert caught.value.path == model and "move " in (caught.value.hint or "")
    (kept,) = [p for p in tmp_path.iterdir() if p.name.startswith(".model.onnx.")]
    assert (kept / "old.onnx").read_bytes() == b"old model" and is_atomic_leftover(kept)
    assert record.read_text() == "old record" and model.read_bytes() == b"new model"
    # the user's "move it back", or the cleanup once the model is gone again, restores it
    model.unlink()
    assert remove_leftovers(tmp_path) == 1
    assert _listing(tmp_path) == {"model.onnx": b"old model", "model.onnx.json": b"old record"}


def test_a_failure_inside_the_block_after_the_writes_commits_nothing(tmp_path):
    model, record = _pair(tmp_path)
    before = _listing(tmp_path)
    with pytest.raises(ValueError, match="verification"), write_together():
        with atomic_path(model) as temp:
            temp.write_bytes(b"new model")
        write_atomic(record, "new record")
        raise ValueError("verification failed")
    assert _listing(tmp_path) == before


def test_a_group_inside_a_group_joins_it(tmp_path, monkeypatch):
    model, record = _pair(tmp_path)
    before = _listing(tmp_path)
    _failing_rename(monkeypatch, 2, OSError(errno.EIO, "Input/output error"))
    with pytest.raises(WriteError), write_together():
        with write_together():
            write_atomic(model, b"new model")
        assert model.read_bytes() == b"old model"  # the inner block committed nothing
        write_atomic(record, "new record")
    assert _listing(tmp_path) == before


def test_what_a_group_killed_mid_commit_leaves_is_a_leftover(tmp_path):
    """A kill between the renames leaves each file's temp folder with its kept old file (and
    its new part, if not renamed yet): the cleanup of a run folder removes both shapes, and
    a user's folder with another file in it stays."""
    from cnnspec.training.runlock import remove_leftovers

    model, record = _pair(tmp_path)
    renamed = tmp_path / ".model.onnx.ab12cd34.tmp"
    renamed.mkdir()
    os.link(model, renamed / "old.onnx")
    waiting = tmp_path / ".model.onnx.json.ab12cd34.tmp"
    waiting.mkdir()
    (waiting / "part.json").write_text("new record")
    os.link(record, waiting / "old.json")
    mine = tmp_path / ".notes.ab12cd34.tmp"
    mine.mkdir()
    (mine / "old.txt").write_text("mine")
    (mine / "list.txt").write_text("mine too")
    assert [is_atomic_leftover(p) for p in (renamed, waiting, mine)] == [True, True, False]
    assert remove_leftovers(tmp_path) == 2
    assert model.read_bytes() == b"old model" and record.read_text() == "old record"
    assert sorted(os.listdir(tmp_path)) == [".notes.ab12cd34.tmp", "model.onnx", "model.onnx.json"]
