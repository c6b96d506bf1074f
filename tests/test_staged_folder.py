"""Many files of one folder written all together or none (`fileio.staged_folder`, predict's
masks): one scratch folder inside the destination for all of them, the files renamed into place
only when the block ends without an error, the files they replace put back when a rename fails,
and a killed stage's scratch folder a leftover that the next write there removes."""

from __future__ import annotations

import errno
import os
import time

import pytest

from cnnspec.errors import PartlyWrittenError, WriteError
from cnnspec.fileio import STALE_AFTER_S, is_atomic_leftover, staged_folder, write_atomic
from tests.test_write_together import _failing_rename, _listing


def test_the_files_appear_together_at_the_end_through_one_scratch_folder(tmp_path):
    (tmp_path / "a.png").write_bytes(b"old a")
    with staged_folder(tmp_path):
        for name in ("a.png", "b.png", "c.png"):
            write_atomic(tmp_path / name, f"new {name}")
        write_atomic(tmp_path / "b.png", "newer b.png")  # (the later write wins)
        write_atomic(tmp_path / "elsewhere" / "d.png", "d")  # another folder: not staged
        assert (tmp_path / "a.png").read_bytes() == b"old a" and not (tmp_path / "b.png").exists()
        hidden = [name for name in os.listdir(tmp_path) if name.startswith(".")]
        assert len(hidden) == 1 and hidden[0].startswith(".cnnspec-staged.")  # one, for all
    assert {p.name: p.read_text() for p in tmp_path.glob("*.png")} == {
        "a.png": "new a.png",
        "b.png": "newer b.png",
        "c.png": "new c.png",
    }
    assert sorted(os.listdir(tmp_path)) == ["a.png", "b.png", "c.png", "elsewhere"]


def test_a_failure_inside_writes_nothing_and_removes_the_folders_it_made(tmp_path):
    out = tmp_path / "new" / "masks"
    with pytest.raises(RuntimeError, match="a damaged input"), staged_folder(out):
        write_atomic(out / "a.png", "a")
        raise RuntimeError("a damaged input")
    assert os.listdir(tmp_path) == []


def test_a_stage_nothing_writes_into_makes_no_folder(tmp_path):
    with staged_folder(tmp_path / "predictions"):
        pass
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("error", [OSError(errno.EIO, "Input/output error"), KeyboardInterrupt()])
def test_a_rename_failing_mid_commit_puts_back_what_was_replaced(tmp_path, monkeypatch, error):
    for name in ("a.png", "b.png"):
        (tmp_path / name).write_text(f"old {name}")
    before = _listing(tmp_path)
    raised = WriteError if isinstance(error, OSError) else KeyboardInterrupt
    with pytest.raises(raised), staged_folder(tmp_path):
        for name in ("a.png", "b.png", "c.png"):
            write_atomic(tmp_path / name, f"new {name}")
        _failing_rename(monkeypatch, 3, error)  # a.png, b.png replaced; c.png's rename fails
    monkeypatch.undo()
    assert _listing(tmp_path) == before  # a.png and b.png put back, no c.png, no scratch folder


def test_a_killed_stage_is_a_leftover_the_next_write_removes_putting_back_a_kept_file(tmp_path):
    """Killed between renames where the file system has no hard links: a.png was moved into
    its ``old`` folder and its new one not yet renamed; the next write into the folder puts it
    back and removes the rest."""
    scratch = tmp_path / ".cnnspec-staged.abcd1234.tmp"
    (scratch / "new").mkdir(parents=True)
    (scratch / "old").mkdir()
    (scratch / ".cnnspec-stage").touch()
    (scratch / "new" / "a.png").write_text("new a")
    (scratch / "old" / "a.png").write_text("old a")
    (scratch / "old" / "b.png").write_text("old b")
    (tmp_path / "b.png").write_text("new b")  # renamed already: stays
    assert is_atomic_leftover(scratch)
    past = time.time() - 2 * STALE_AFTER_S
    os.utime(scratch, (past, past))
    with staged_folder(tmp_path):
        write_atomic(tmp_path / "c.png", "c")
    assert _listing(tmp_path) == {"a.png": b"old a", "b.png": b"new b", "c.png": b"c"}


def test_a_stage_that_cannot_be_made_names_the_file_asked_for(tmp_path):
    """A file where the folder should be: the error names the mask, not the stage's folder."""
    (tmp_path / "masks").write_text("a file")
    with pytest.raises(WriteError) as caught, staged_folder(tmp_path / "masks"):
        write_atomic(tmp_path / "masks" / "x_mask.png", b"png")
    assert str(caught.value).startswith(f"cannot write {tmp_path / 'masks' / 'x_mask.png'}: ")
    assert os.listdir(tmp_path) == ["masks"]


def test_a_commit_whose_undo_fails_says_what_is_new_and_where_the_old_file_is(tmp_path, monkeypatch):
    """c.png's rename fails; then putting back b.png's old file fails, and so does removing
    a.png (new: there was none before): the error names both as new and where old b.png is
    kept, and the hint says to move it back and delete a.png."""
    (tmp_path / "b.png").write_text("old b")
    real_unlink, real_replace = os.unlink, os.replace
    seen: list[str] = []

    def unlink(path, *args, **kwargs):
        if os.path.basename(path) == "a.png":
            raise OSError(errno.EIO, "Input/output error")
        return real_unlink(path, *args, **kwargs)

    def replace(source, destination):
        seen.append(str(destination))
        if len(seen) in (3, 4):  # c.png's rename, then b.png's old file put back
            raise OSError(errno.EIO, "Input/output error")
        return real_replace(source, destination)

    with pytest.raises(PartlyWrittenError) as caught, staged_folder(tmp_path):
        for name in ("a.png", "b.png", "c.png"):
            write_atomic(tmp_path / name, f"new {name}")
        monkeypatch.setattr(os, "unlink", unlink)
        monkeypatch.setattr(os, "replace", replace)
    monkeypatch.undo()
    (scratch,) = tmp_path.glob(".cnnspec-staged.*")
    kept_in = scratch / "old"
    assert seen == [str(tmp_path / n) for n in ("a.png", "b.png", "c.png", "b.png")]
    assert str(caught.value) == (
        f"cannot write {tmp_path / 'c.png'}: Input/output error; putting back what it replaced failed "
        f"too: a.png, b.png in {tmp_path} are new (this write's), every other file there as it was; "
        f"the old b.png is kept in {kept_in}"
    )
    assert caught.value.hint == (
        f"move the file in {kept_in} back into {tmp_path} and delete a.png (new, with no earlier file), "
        "then run the same command again"
    )
    assert _listing(kept_in) == {"b.png": b"old b"}
    assert (tmp_path / "a.png").read_text() == "new a.png" and (tmp_path / "b.png").read_text() == "new b.png"
    assert not (tmp_path / "c.png").exists()
