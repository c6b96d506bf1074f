"""Atomic writes: a failure mid-write leaves the previous file intact and no temp files; a
target that is no regular file (a FIFO, device, folder) is refused before anything is written."""

from __future__ import annotations

import hashlib
import json
import os
import stat

import pytest

from cnnspec.cli.app import app
from cnnspec.errors import UsageError, WriteError
from cnnspec.fileio import atomic_path, check_writable, sha256_file, write_atomic
from tests.conftest import ROOT


def test_write_atomic_replaces_content(tmp_path):
    target = tmp_path / "sub" / "out.txt"
    write_atomic(target, "one")
    write_atomic(target, b"two")
    assert target.read_bytes() == b"two"
    assert os.listdir(target.parent) == ["out.txt"]


def test_failure_mid_write_keeps_previous_file(tmp_path, monkeypatch):
    target = tmp_path / "model.py"
    target.write_text("previous")
    real_fsync = os.fsync

    def full_disk(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(WriteError, match="No space left") as info:  # a clean error naming the file
        write_atomic(target, "x" * 10_000)
    assert info.value.path == target and info.value.needed == 10_000
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert target.read_text() == "previous"
    assert os.listdir(tmp_path) == ["model.py"]


def test_atomic_path_cleans_up_after_a_writer_exception(tmp_path):
    target = tmp_path / "model.keras"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_path(target) as temp:
        assert temp.suffix == ".keras" and temp.parent.parent == tmp_path  # (in a private folder there)
        temp.write_bytes(b"partial")
        raise RuntimeError("writer crashed")
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["model.keras"]


def test_a_failed_write_removes_the_folders_it_created_and_only_those(tmp_path, monkeypatch):
    """`evaluate -o new/deeper` on a full disk left the folders it created, empty."""
    (tmp_path / "kept").mkdir()

    def full_disk(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(WriteError):
        write_atomic(tmp_path / "kept" / "new" / "deeper" / "evaluation.json", "{}")
    assert os.listdir(tmp_path) == ["kept"] and os.listdir(tmp_path / "kept") == []
    # refused before the writer ran (too little space): the same
    with pytest.raises(WriteError), atomic_path(tmp_path / "new" / "m.keras", needed=1 << 62):
        pass
    assert os.listdir(tmp_path) == ["kept"]
    # a folder another file landed in meanwhile stays, with what is above it
    target = tmp_path / "a" / "b" / "c.json"
    with pytest.raises(RuntimeError), atomic_path(target):
        (tmp_path / "a" / "other.txt").write_text("theirs")
        raise RuntimeError("writer crashed")
    assert sorted(os.listdir(tmp_path)) == ["a", "kept"] and os.listdir(tmp_path / "a") == ["other.txt"]


def test_interrupt_does_not_leave_temp_files(tmp_path):
    target = tmp_path / "a.json"
    with pytest.raises(KeyboardInterrupt), atomic_path(target) as temp:
        temp.write_text("{")
        raise KeyboardInterrupt
    assert not target.exists() and os.listdir(tmp_path) == []


def test_sha256_file_matches_hashlib(tmp_path):
    data = bytes(range(256)) * 5000  # over one 1 MiB chunk
    path = tmp_path / "blob.bin"
    path.write_bytes(data)
    assert sha256_file(path) == hashlib.sha256(data).hexdigest()
    assert sha256_file(str(path)) == sha256_file(path)


# -- targets that are not regular files ------------------------------------------------------------
needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this system")


@pytest.fixture
def fifo(tmp_path):
    path = tmp_path / "fifo.py"
    os.mkfifo(path)
    return path


def is_fifo(path) -> bool:
    return stat.S_ISFIFO(os.lstat(path).st_mode)


@needs_fifo
def test_a_fifo_is_never_replaced_by_a_write(fifo, tmp_path):
    with pytest.raises(UsageError, match=r"fifo\.py is a FIFO \(named pipe\)") as info:
        write_atomic(fifo, "x = 1\n")
    assert "choose another" in (info.value.hint or "")
    ran = []
    with pytest.raises(UsageError), atomic_path(fifo) as temp:  # refused before the writer runs
        ran.append(temp)
    assert ran == []
    assert is_fifo(fifo) and os.listdir(tmp_path) == ["fifo.py"]  # no temp file either


@needs_fifo
def test_a_link_to_a_fifo_is_refused_a_link_to_a_file_is_replaced(fifo, tmp_path):
    link = tmp_path / "pipe_link.py"
    link.symlink_to(fifo)
    with pytest.raises(UsageError, match=r"pipe_link\.py is a link to a FIFO"):
        write_atomic(link, "x = 1\n")
    assert link.is_symlink() and is_fifo(fifo)
    # (unchanged) the rename replaces a link to a regular file, never the file it points to
    original = tmp_path / "original.py"
    original.write_text("mine\n")
    file_link = tmp_path / "file_link.py"
    file_link.symlink_to(original)
    write_atomic(file_link, "new\n")
    assert not file_link.is_symlink() and file_link.read_text() == "new\n"
    assert original.read_text() == "mine\n"


def test_a_folder_is_refused_before_the_writer_runs(tmp_path):
    folder = tmp_path / "out.keras"
    folder.mkdir()
    ran = []
    with pytest.raises(UsageError, match=r"out\.keras is a folder"), atomic_path(folder) as temp:
        ran.append(temp)
    assert ran == [] and os.listdir(folder) == [] and os.listdir(tmp_path) == ["out.keras"]


@needs_fifo
def test_check_writable_names_a_fifo_in_its_option(fifo):
    with pytest.raises(
        UsageError, match=r"expected -o to name a file that can be written; .*fifo\.py is a FIFO"
    ):
        check_writable(fifo, option="-o", folder=False)
    with pytest.raises(UsageError, match=r"expected --out to name a folder .*fifo\.py is a FIFO"):
        check_writable(fifo, option="--out")
    with pytest.raises(UsageError, match=r"fifo\.py, a FIFO \(named pipe\), is in the way"):
        check_writable(fifo / "model.py", option="-o", folder=False)
    assert is_fifo(fifo)


@needs_fifo
@pytest.mark.parametrize(
    "command",
    [["codegen", "{spec}"], ["codegen", "{spec}", "--script"], ["schema"], ["build", "{spec}"]],
    ids=["codegen", "codegen-script", "schema", "build"],
)
def test_commands_refuse_a_fifo_as_output_even_with_force(runner, tmp_path, command):
    spec = ROOT / "specs" / "mnist_cnn.yaml"
    fifo = tmp_path / ("fifo.keras" if command[0] == "build" else "fifo.out")
    os.mkfifo(fifo)
    args = [part.format(spec=spec) for part in command] + ["-o", str(fifo)]
    if command[0] == "codegen":
        args.append("--force")
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output  # a usage error: the user's choice of path
    assert "is a FIFO (named pipe)" in result.output and "choose another -o" in result.output
    assert is_fifo(fifo) and os.listdir(tmp_path) == [fifo.name]


def test_codegen_refuses_to_write_over_its_own_spec(runner, tmp_path, monkeypatch):
    spec = tmp_path / "spec.yaml"
    spec.write_bytes((ROOT / "specs" / "mnist_cnn.yaml").read_bytes())
    before = spec.read_bytes()
    link = tmp_path / "link.yaml"
    link.symlink_to(spec)
    monkeypatch.chdir(tmp_path)
    for output in (str(spec), "spec.yaml", "./../" + tmp_path.name + "/spec.yaml", "link.yaml"):
        for extra in ([], ["--force"]):
            result = runner.invoke(app, ["codegen", "spec.yaml", "-o", output, *extra])
            assert result.exit_code == 2, result.output
            assert "is the spec file itself" in result.output and "choose another -o" in result.output
            assert "already exists" not in result.output  # --force would not help: not suggested
    assert spec.read_bytes() == before and link.is_symlink()
    assert sorted(os.listdir(tmp_path)) == ["link.yaml", "spec.yaml"]
    result = runner.invoke(app, ["codegen", "spec.yaml", "-o", "model.py"])  # any other file is fine
    assert result.exit_code == 0, result.output


def test_a_tilde_of_no_such_user_is_a_plain_name():
    """`masks: ~0` (found by the long fuzz): pathlib's expanduser raised RuntimeError for a
    user that does not exist, and compiling the spec ended in an internal error."""
    from pathlib import Path

    from cnnspec.fileio import user_path

    assert user_path("~no_such_user_0/x") == Path("~no_such_user_0/x")
    assert user_path("~/x") == Path(os.path.expanduser("~/x"))


def test_a_data_path_of_no_such_users_home_compiles():
    from cnnspec.api import compile_text

    text = (
        "cnnspec: 1\nname: t\ninput: {shape: [8, 8, 1]}\n"
        "model: [{conv2d: {filters: 2, kernel_size: 1, activation: softmax}}]\n"
        "data: {source: {images: '0', masks: '~0'}}\ntraining: {}\n"
    )
    assert compile_text(text, "fuzz.yaml").ir.totals.params == 4


def test_the_temp_file_is_made_in_a_private_folder_that_goes_with_it(tmp_path):
    """A temp name freed for the writer could be taken by another user in a shared folder
    without the sticky bit; the temp file is in a folder of mode 0700 instead."""
    target = tmp_path / "model.keras"
    with atomic_path(target) as temp:
        assert stat.S_IMODE(os.stat(temp.parent).st_mode) == 0o700 and temp.parent.parent == tmp_path
        assert not temp.exists()  # the writer creates it (Keras refuses to overwrite)
        temp.write_bytes(b"new")
    assert target.read_bytes() == b"new" and os.listdir(tmp_path) == ["model.keras"]


def test_leftovers_of_killed_writes_are_removed_folders_and_old_files_alike(tmp_path):
    from cnnspec.training.runlock import remove_leftovers

    (tmp_path / ".model.keras.ab12cd34.tmp").mkdir()
    (tmp_path / ".model.keras.ab12cd34.tmp" / "part.keras").write_bytes(b"half")
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / ".epoch-0001.json.zz99yy88.json").write_text("{")  # an older cnnspec's
    (tmp_path / "metrics.json").write_text("{}")
    assert remove_leftovers(tmp_path) == 2
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == ["metrics.json", "state"]


def test_codegen_refuses_to_write_over_a_spec_its_spec_reads(runner, tmp_path, monkeypatch):
    """`codegen child.yaml -o base.yaml --force` replaced the spec child.yaml extends."""
    monkeypatch.chdir(tmp_path)
    base = tmp_path / "base.yaml"
    base.write_text("cnnspec: 1\nname: base\ninput: {shape: [8, 8, 1]}\nmodel: [flatten, {dense: 3}]\n")
    (tmp_path / "lib.yaml").write_text("blocks:\n  head: {layers: [dense: 3]}\n")
    (tmp_path / "child.yaml").write_text(
        "extends: base.yaml\nuse: [lib.yaml]\nname: child\nmodel: [flatten, head]\n"
    )
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    for output in ("base.yaml", "lib.yaml"):
        result = runner.invoke(app, ["codegen", "child.yaml", "-o", output, "--force"])
        assert result.exit_code == 2, result.output
        assert f"{output} is a spec file that child.yaml reads" in " ".join(result.output.split())
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_a_killed_folder_swap_is_a_leftover_and_a_half_done_one_is_put_back(tmp_path):
    """A SavedModel export killed while writing left `.saved_model.x1y2z3w4/new/…`, which no
    cleanup knew: its scratch folder now has the temp shape and a mark. Killed between its two
    renames, it left the old export aside and none in its place: the cleanup puts it back."""
    from cnnspec.fileio import SWAP_MARK, atomic_dir, is_atomic_leftover
    from cnnspec.training.runlock import remove_leftovers

    target = tmp_path / "export" / "saved_model"
    with atomic_dir(target) as temp:
        (temp / "saved_model.pb").write_bytes(b"half")
        scratch = temp.parent
        assert scratch.name.startswith(".saved_model.") and scratch.name.endswith(".tmp")
        assert is_atomic_leftover(scratch)  # what a kill here would leave
    assert (target / "saved_model.pb").read_bytes() == b"half" and not scratch.exists()
    # killed while writing: the new half folder goes, the export in place stays
    killed = tmp_path / "export" / ".saved_model.ab12cd34.tmp"
    (killed / "new" / "variables").mkdir(parents=True)
    (killed / SWAP_MARK).touch()
    # killed between the renames: the old export is aside, nothing in its place
    aside = tmp_path / "export" / ".other_model.ab12cd34.tmp"
    (aside / "old").mkdir(parents=True)
    (aside / "old" / "saved_model.pb").write_bytes(b"previous")
    (aside / "new").mkdir()
    (aside / SWAP_MARK).touch()
    # a user's folder of that shape without the mark, or with more in it, is none
    mine = tmp_path / ".notes.ab12cd34.tmp"
    (mine / "new").mkdir(parents=True)
    more = tmp_path / ".more.ab12cd34.tmp"
    (more / "new").mkdir(parents=True)
    (more / SWAP_MARK).touch()
    (more / "list.txt").write_text("mine")
    assert [is_atomic_leftover(p) for p in (killed, aside, mine, more)] == [True, True, False, False]
    assert remove_leftovers(tmp_path) == 2
    assert not killed.exists() and (target / "saved_model.pb").read_bytes() == b"half"
    assert (
        not aside.exists()
        and (tmp_path / "export" / "other_model" / "saved_model.pb").read_bytes() == b"previous"
    )
    assert (mine / "new").is_dir() and (more / "list.txt").read_text() == "mine"


def test_a_users_folder_named_like_a_temp_is_never_taken_for_a_leftover(tmp_path):
    """`.notes.settings.bak/` with the user's file in it was deleted, whole, as a leftover."""
    from cnnspec.fileio import is_atomic_leftover
    from cnnspec.training.rundir import check_new
    from cnnspec.training.runlock import remove_leftovers

    mine = tmp_path / ".notes.settings.bak"
    mine.mkdir()
    (mine / "important.txt").write_text("precious")
    also = tmp_path / ".backup.20261204.tmp"  # the temp folder's shape, but not what it holds
    also.mkdir()
    (also / "list.txt").write_text("mine")
    notes = tmp_path / ".notes.abcdefgh.tmp"  # its one file named part, of another suffix
    notes.mkdir()
    (notes / "part.txt").write_text("mine")
    settings = [tmp_path / ".config.defaults.yaml", tmp_path / ".settings.personal.json"]
    for path in settings:  # hidden files of the shape .X.<8 characters>.ext: no temp's suffix
        path.write_text("keep")
    left = tmp_path / ".model.keras.ab12cd34.tmp"
    left.mkdir()
    (left / "part.keras").write_bytes(b"half")
    old = tmp_path / ".history.json.ab12cd34.json"  # an older cnnspec's temp file
    old.write_text("{")
    checked = [mine, also, notes, *settings, left, old]
    assert [is_atomic_leftover(p) for p in checked] == [False, False, False, False, False, True, True]
    assert remove_leftovers(tmp_path) == 2
    assert (mine / "important.txt").read_text() == "precious" and (also / "list.txt").exists()
    assert (notes / "part.txt").exists() and all(path.read_text() == "keep" for path in settings)
    assert not left.exists() and not old.exists()
    with pytest.raises(UsageError):  # a folder with the user's files is no empty run folder
        check_new(tmp_path)


def _failing_rename(monkeypatch, call: int, error: BaseException) -> None:
    """Make the ``call``-th ``os.replace`` (1-based) raise ``error``; the others rename."""
    real = os.replace
    count = {"calls": 0}

    def replace(source, destination):
        count["calls"] += 1
        if count["calls"] == call:
            raise error
        return real(source, destination)

    monkeypatch.setattr(os, "replace", replace)


@pytest.mark.parametrize(
    "error", [OSError(5, "Input/output error"), KeyboardInterrupt()], ids=["io-error", "ctrl-c"]
)
def test_a_folder_swap_failing_between_its_renames_puts_the_old_folder_back(tmp_path, monkeypatch, error):
    """`export -f savedmodel` over an earlier export: the old folder was renamed aside, the new
    one's rename failed (or a Ctrl-C came between them), and the cleanup deleted the scratch
    folder with the old export in it: nothing was left at the path."""
    from cnnspec.fileio import atomic_dir

    target = tmp_path / "saved_model"
    target.mkdir()
    (target / "saved_model.pb").write_bytes(b"previous")
    _failing_rename(monkeypatch, 2, error)  # the first sets the old folder aside
    with pytest.raises((WriteError, KeyboardInterrupt)), atomic_dir(target) as temp:
        (temp / "saved_model.pb").write_bytes(b"new")
    assert (target / "saved_model.pb").read_bytes() == b"previous"
    assert os.listdir(tmp_path) == ["saved_model"]


def test_a_folder_swap_that_cannot_put_the_old_folder_back_keeps_it_and_says_where(tmp_path, monkeypatch):
    from cnnspec.fileio import atomic_dir, is_atomic_leftover
    from cnnspec.training.runlock import remove_leftovers

    target = tmp_path / "saved_model"
    target.mkdir()
    (target / "saved_model.pb").write_bytes(b"previous")
    real = os.replace
    calls = []

    def replace(source, destination):
        calls.append(destination)
        if len(calls) > 1:  # the new folder's rename and the one putting the old back
            raise OSError(5, "Input/output error")
        return real(source, destination)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(WriteError, match="moved aside; it is kept in") as caught, atomic_dir(target) as temp:
        (temp / "saved_model.pb").write_bytes(b"new")
    monkeypatch.setattr(os, "replace", real)
    (scratch,) = [path for path in tmp_path.iterdir()]
    assert (scratch / "old" / "saved_model.pb").read_bytes() == b"previous"
    assert str(scratch / "old") in caught.value.hint and is_atomic_leftover(scratch)
    assert remove_leftovers(tmp_path) == 1  # the cleanup puts it back
    assert (target / "saved_model.pb").read_bytes() == b"previous" and os.listdir(tmp_path) == ["saved_model"]


def test_a_folder_swap_refuses_a_file_in_its_place_and_leaves_no_new_folders(tmp_path, monkeypatch):
    from cnnspec.fileio import atomic_dir

    mine = tmp_path / "saved_model"
    mine.write_text("the user's notes")
    with pytest.raises(UsageError, match="is a file"), atomic_dir(mine):
        pass
    assert mine.read_text() == "the user's notes" and os.listdir(tmp_path) == ["saved_model"]

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("cnnspec.fileio._make_scratch", full_disk)  # (its scratch folder: the disk is full)
    with pytest.raises(WriteError, match="No space left"), atomic_dir(tmp_path / "new" / "deeper" / "sm"):
        pass
    assert os.listdir(tmp_path) == ["saved_model"], "the folders it created were left, empty"


def test_a_folder_swap_never_recreates_a_deleted_run_folder(tmp_path):
    """A SavedModel export into its run's export/ (under the run's lock) re-created the run
    folder, deleted meanwhile, as atomic_path writes never do."""
    import shutil

    from cnnspec.fileio import atomic_dir
    from cnnspec.training.runlock import acquire

    run = tmp_path / "run"
    run.mkdir()
    with acquire(run, ["cnnspec", "export"]):
        shutil.rmtree(run)  # before the export is written
        with pytest.raises(WriteError, match="was moved or deleted"), atomic_dir(run / "export" / "sm"):
            pass
        assert not run.exists()
    run.mkdir()
    with acquire(run, ["cnnspec", "export"]):
        with (
            pytest.raises(WriteError, match="was moved or deleted"),
            atomic_dir(run / "export" / "sm") as temp,
        ):
            (temp / "saved_model.pb").write_bytes(b"new")
            run.rename(tmp_path / "moved")  # while it is written
        assert not run.exists()
    assert not (tmp_path / "moved" / "export" / "sm").exists()


def test_a_folder_swap_replaces_a_dangling_link_and_leaves_a_linked_folder_alone(tmp_path):
    from cnnspec.fileio import atomic_dir

    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "nowhere")
    with atomic_dir(dangling) as temp:
        (temp / "saved_model.pb").write_bytes(b"new")
    assert not dangling.is_symlink() and (dangling / "saved_model.pb").read_bytes() == b"new"
    real = tmp_path / "real"
    real.mkdir()
    (real / "saved_model.pb").write_bytes(b"the folder the link leads to")
    linked = tmp_path / "linked"
    linked.symlink_to(real)
    with atomic_dir(linked) as temp:
        (temp / "saved_model.pb").write_bytes(b"new")
    assert (linked / "saved_model.pb").read_bytes() == b"new" and not linked.is_symlink()
    assert (real / "saved_model.pb").read_bytes() == b"the folder the link leads to"


def test_a_failed_write_into_a_held_run_folder_removes_the_sub_folders_it_made(tmp_path, monkeypatch):
    """An export refused on a full disk left an empty RUN/export/: the writes into a run folder
    this process holds made their sub-folders without noting them, so nothing removed them."""
    from cnnspec.fileio import atomic_dir
    from cnnspec.training.runlock import acquire

    run = tmp_path / "run"
    (run / "state").mkdir(parents=True)
    with acquire(run, ["cnnspec", "export"]):
        with pytest.raises(RuntimeError), atomic_path(run / "export" / "deeper" / "model.onnx") as temp:
            temp.write_bytes(b"half")
            raise RuntimeError("the converter failed")
        monkeypatch.setattr("shutil.disk_usage", lambda _: shutil_usage(free=1))
        with pytest.raises(WriteError, match="not enough free space"):
            write_atomic(run / "export" / "model.tflite", b"x" * 100)
        with (
            pytest.raises(WriteError, match="not enough free space"),
            atomic_dir(run / "export" / "sm", needed=100),
        ):
            pass
        with pytest.raises(WriteError, match="not enough free space"):
            write_atomic(run / "state" / "epoch-0001.json", b"x" * 100)  # (state/ was there: kept)
    assert sorted(p.name for p in run.iterdir()) == ["state"]


def shutil_usage(free: int):
    import shutil

    return shutil._ntuple_diskusage(10**9, 10**9 - free, free)


def test_utf8_safe_escapes_the_bytes_of_names_that_are_not_utf8():
    """A Latin-1 name read from the file system holds lone surrogates (caf\\udce9.png): written raw
    they made CSV that is no UTF-8 and JSON strict readers refuse; each byte becomes \\xNN."""
    from cnnspec.jsontext import utf8_safe, utf8_text

    name = os.fsdecode(b"d/caf\xe9.png")
    assert utf8_text(name) == "d/caf\\xe9.png" and utf8_text("café ✓.png") == "café ✓.png"
    assert utf8_text("x\ud800") == "x\\ud800"  # (a surrogate no byte stands for)
    document = {"input": name, "top": [{"class": "a", "probability": 0.5}], name: [1, None]}
    assert utf8_safe(document) == (
        {"input": "d/caf\\xe9.png", "top": [{"class": "a", "probability": 0.5}], "d/caf\\xe9.png": [1, None]},
        True,
    )
    assert utf8_safe({"input": "café.png"}) == ({"input": "café.png"}, False)
    json.dumps(utf8_safe(document)[0], ensure_ascii=False).encode("utf-8")  # (strict: raised before)
