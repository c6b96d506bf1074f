"""A user's path the OS won't look into — a folder of another user's, a name longer than the file
system allows — is a usage error naming the argument or option (exit 2), never "internal error …
please report it" (Python 3.11's ``Path.is_file``/``is_dir``/``exists`` raise there instead of
answering ``False``); ``runs`` lists the rest of a tree and notes the folder it could not read;
and a path error of ``visualize`` is no longer said as "cannot write to standard output".

TF-free: run folders written by hand (tests/test_damaged_runs.py). The tests run as root in CI,
where no permission is denied: a folder of another user's is simulated by making ``os.stat``
and ``os.listdir`` refuse what lies in it, as the OS refuses a 700 folder to other users.
"""

from __future__ import annotations

import errno
import os
import sys
from pathlib import Path

import pytest
import typer
from rich.console import Console

from cnnspec.cli.common import raised_writing_stdout
from cnnspec.paths import exists, is_dir, is_file, unreadable
from tests.test_damaged_runs import make_run
from tests.test_report_support import flat, invoke

LONG = "a" * 300  # longer than NAME_MAX (255 bytes): ENAMETOOLONG, for root too
SHOWN = "a" * 24 + "…" + "a" * 12  # how a message shows it
TOO_LONG = "File name too long"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["report", LONG], "expected RUN_DIR to name a run folder"),
        (["runs", LONG], "expected a folder of runs"),
        (["benchmark", LONG], "expected a run folder written by `cnnspec train` (or its model.keras)"),
        (["visualize", LONG, "history"], "expected a run folder or a .keras model"),
    ],
    ids=["report", "runs", "benchmark", "visualize"],
)
def test_a_name_too_long_is_a_usage_error_naming_what_was_expected(tmp_path, monkeypatch, args, expected):
    monkeypatch.chdir(tmp_path)
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    assert f"error: {expected}; cannot read {SHOWN}: {TOO_LONG}" in flat(result)
    assert "internal error" not in result.output


@pytest.mark.parametrize("command", ["benchmark", "calibrate"])
def test_commands_that_need_a_run_ask_for_a_run_folder(tmp_path, monkeypatch, command):
    """benchmark and calibrate said "expected a run folder or a .keras model" of a path that is
    not there, then refused the .keras model outside a run that the words invited: they need the
    run (its test or validation split), and ask for its folder (or the model.keras in it)."""
    monkeypatch.chdir(tmp_path)
    missing = invoke(command, "nothere")
    assert missing.exit_code == 2, missing.output
    assert flat(missing).startswith(
        "error: expected a run folder written by `cnnspec train` (or its model.keras); nothere does not exist"
    )
    (tmp_path / "plain").mkdir()
    folder = invoke(command, "plain")
    assert folder.exit_code == 2, folder.output
    assert "is not one" in flat(folder) and "hint: pass the folder `cnnspec train` wrote" in flat(folder)
    assert ".keras model file" not in flat(folder)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["report", "RUN", "-o", f"{LONG}/x.html"], "expected --out to name folders of at most"),
        (["visualize", "RUN", "history", "-o", f"{LONG}/x.png"], "expected --out to name folders of at most"),
        (["visualize", "RUN", "history", "-o", f"{LONG}/"], "expected --out to name folders of at most"),
        (["visualize", "RUN", "history", "-o", f"{LONG}.png"], "expected --out to name a file of at most"),
        (
            ["visualize", "RUN", "gradcam", "--image", f"{LONG}.png", "-o", "h/"],
            f"expected --image to name an image or .npy file; cannot read {SHOWN[:-4]}.png: {TOO_LONG}",
        ),
        (
            ["visualize", "RUN", "samples", "--data", LONG, "-o", "h/"],
            f"expected --data to name a source, a file or a folder; cannot read {SHOWN}: {TOO_LONG}",
        ),
        (["evaluate", "RUN", "--out", f"{LONG}/"], "expected --out to name folders of at most"),
        (
            ["evaluate", "RUN", "--out", f"{LONG}.json"],
            "expected --out to name a folder (for evaluation.json",
        ),
        # (export's own check asked the OS first: "internal error (OSError: [Errno 36] …)", exit 3)
        (["export", "RUN", "-f", "onnx", "-o", f"{LONG}.onnx"], "expected -o to name a file of at most"),
        (["export", "RUN", "-f", "onnx", "-o", f"{LONG}/m.onnx"], "expected -o to name folders of at most"),
        (["export", "RUN", "-f", "savedmodel", "-o", f"{LONG}.sm"], "expected -o to name folders of at most"),
    ],
    ids=[
        "report-out",
        "visualize-out-file-in",
        "visualize-out-folder",
        "visualize-out-name",
        "image",
        "data",
        "evaluate-out",
        "evaluate-out-file",
        "export-name",
        "export-folder-in",
        "export-savedmodel",
    ],
)
def test_an_option_naming_a_path_too_long_is_refused_by_its_name(tmp_path, monkeypatch, args, expected):
    """visualize said "cannot write to standard output: File name too long", exit 1, with a hint
    to free space: the OSError of its --out check was blamed on the console it held."""
    monkeypatch.chdir(tmp_path)
    make_run(tmp_path / "RUN")
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    assert f"error: {expected}" in flat(result)
    assert "standard output" not in result.output and "internal error" not in result.output


#: Folder names each short enough, 4,337 bytes in all: more than Linux's PATH_MAX.
DEEP = "/".join(["q" * 240] * 18)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["train", "spec.yaml", "--out", f"y/{DEEP}"], "expected --out to name a path of at most"),
        (["train", "spec.yaml", "--resume", f"y/{DEEP}"], "expected --resume to name a path of at most"),
        (
            ["export", "m.keras", "-f", "tflite", "-o", f"y/{DEEP}/m.tflite"],
            "expected -o to name a path of at most",
        ),
        (["build", "spec.yaml", "-o", f"y/{DEEP}/m.keras"], "expected -o to name a path of at most"),
    ],
    ids=["train-out", "train-resume", "export-o", "build-o"],
)
def test_a_path_too_long_as_a_whole_is_refused_by_its_option(tmp_path, monkeypatch, args, expected):
    """Each folder name was short enough and the whole path too long: `Path.exists` raised
    ENAMETOOLONG, and train --out, train --resume and export -o ended in an internal error
    (exit 3) with the whole path on the terminal."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "spec.yaml").write_text(
        "cnnspec: 1\nname: t\ninput: {shape: [8, 8, 1]}\n"
        "model:\n  - flatten\n  - dense: 10\ndata: {source: digits}\n"
    )
    (tmp_path / "m.keras").write_bytes(b"not read: the path is refused first")
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    assert f"error: {expected}" in flat(result) and "bytes; received one of" in flat(result)
    assert "internal error" not in result.output and "q" * 241 not in result.output.replace("\n", "")
    assert not (tmp_path / "y").exists()


@pytest.fixture
def private(tmp_path, monkeypatch) -> Path:
    """``shared/`` with a run folder ``mine`` and a folder ``private`` of another user's (mode 700):
    it can be seen, but not listed, and nothing in it can be looked at or made."""
    make_run(tmp_path / "shared" / "mine")
    make_run(tmp_path / "shared" / "private")
    inside = str(tmp_path / "shared" / "private") + os.sep
    real_stat, real_listdir, real_open = os.stat, os.listdir, os.open

    def stat(path, *args, **kwargs):
        if os.fspath(path).startswith(inside):
            raise PermissionError(errno.EACCES, "Permission denied", os.fspath(path))
        return real_stat(path, *args, **kwargs)

    def listdir(path="."):
        if (os.fspath(path) + os.sep).startswith(inside):
            raise PermissionError(errno.EACCES, "Permission denied", os.fspath(path))
        return real_listdir(path)

    def open_(path, *args, **kwargs):  # (tempfile's probe of a folder that takes a new file)
        if os.fspath(path).startswith(inside):
            raise PermissionError(errno.EACCES, "Permission denied", os.fspath(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "stat", stat)
    monkeypatch.setattr(os, "open", open_)
    monkeypatch.setattr(os, "listdir", listdir)
    return tmp_path / "shared" / "private"


def test_runs_lists_what_it_can_read_and_notes_the_folder_it_cannot(private):
    """`cnnspec runs shared`: internal error (PermissionError … private/lock.json), exit 3, the
    whole listing lost."""
    listed = invoke("runs", private.parent)
    assert listed.exit_code == 0, listed.output
    assert f"note: {private} can't be read (Permission denied): not searched" in flat(listed)
    assert "│ mine" in listed.stdout and "private" not in listed.stdout


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["report", "{run}"], "expected RUN_DIR to name a run folder"),
        (["visualize", "{run}", "history"], "expected a run folder or a .keras model"),
        (["runs", "compare", "{mine}", "{run}"], "expected a run folder (with lock.json)"),
    ],
    ids=["report", "visualize", "runs-compare"],
)
def test_a_run_folder_of_another_user_is_a_usage_error(private, args, expected):
    words = [a.format(run=private, mine=private.parent / "mine") for a in args]
    result = invoke(*words)
    assert result.exit_code == 2, result.output
    assert f"error: {expected}; cannot read {private / 'lock.json'}: Permission denied" in flat(result)


@pytest.mark.parametrize(
    ("args", "option", "folder"),
    [
        (["report", "{mine}", "-o", "{run}/x.html"], "--out", "{run}"),
        (["visualize", "{mine}", "history", "-o", "{run}/x.png"], "--out", "{run}"),
        (["visualize", "{mine}", "history", "-o", "{run}/sub"], "--out", "{run}"),
        (["runs", "compare", "{mine}", "{mine}", "--png", "{run}/c.png"], "--png", "{run}"),
    ],
    ids=["report", "visualize-file", "visualize-folder", "runs-compare"],
)
def test_an_output_in_a_folder_of_another_user_is_refused_by_its_option(private, args, option, folder):
    """`report RUN -o noacc/x.html`, `runs compare A B --png noacc/c.png`: internal error, exit 3;
    `visualize RUN history -o noacc/x.png`: "cannot write to standard output", exit 1."""
    words = [a.format(run=private, mine=private.parent / "mine") for a in args]
    result = invoke(*words)
    assert result.exit_code == 2, result.output
    where = folder.format(run=private)
    assert f"error: expected {option} to be writable; cannot create files in {where}: Permission denied" in (
        flat(result)
    )


def test_the_safe_questions_answer_false_and_unreadable_says_why(tmp_path):
    long = tmp_path / LONG
    assert (is_file(long), is_dir(long), exists(long)) == (False, False, False)
    assert unreadable(long) == TOO_LONG
    assert unreadable(tmp_path / "absent") is None and unreadable(tmp_path) is None
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    assert unreadable(tmp_path / "loop") is None  # (nothing there, as Path.exists has it)


def test_an_os_error_blames_stdout_only_when_writing_stdout_raised_it(tmp_path, monkeypatch):
    """A function that holds a console of stdout and fails on a path is no failed stdout."""

    def looks_at_a_path() -> None:
        console = Console(file=sys.stdout)  # noqa: F841  (held, as visualize holds its own)
        (tmp_path / LONG).stat()

    with pytest.raises(OSError) as raised:
        looks_at_a_path()
    assert not raised_writing_stdout(raised.value)

    class Full:
        def write(self, text: str) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

        def flush(self) -> None:
            pass

    monkeypatch.setattr(sys, "stdout", Full())
    with pytest.raises(OSError) as raised:
        typer.echo("text")
    assert raised_writing_stdout(raised.value)


@pytest.mark.parametrize(
    ("out", "expected"),
    [
        (f"{LONG}.keras", "expected -o to name a file of at most"),
        (f"{LONG}/x.keras", "expected -o to name folders of at most 255 bytes"),
    ],
    ids=["name", "folder"],
)
def test_build_to_a_name_too_long_is_refused_as_o(tmp_path, monkeypatch, out, expected):
    """`build SPEC -o NAME.keras` with a name too long: internal error (its is_dir check)."""
    spec = Path(__file__).resolve().parents[1] / "specs" / "digits_cnn.yaml"
    monkeypatch.chdir(tmp_path)
    result = invoke("build", spec, "-o", out)
    assert result.exit_code == 2, result.output
    assert f"error: {expected}" in flat(result)


def test_validate_of_a_spec_name_too_long_says_it_cannot_read_it(tmp_path, monkeypatch):
    """validate looked for a family file's variants with a bare is_file (exit 3, internal error)."""
    monkeypatch.chdir(tmp_path)
    result = invoke("validate", f"{LONG}.yaml")
    assert result.exit_code == 1, result.output
    assert "File name too long" in flat(result) and "internal error" not in result.output


@pytest.mark.parametrize(
    ("where", "code"),
    [("spec", 1), ("set", 1), ("option", 2)],
)
def test_weights_named_by_a_path_too_long_are_refused_not_an_internal_error(
    tmp_path, monkeypatch, where, code
):
    """`weights: LONG.keras` in a spec, by --set or as --weights ended every spec command (and
    the language server's check) in "internal error (OSError: [Errno 36] …)", exit 3."""
    monkeypatch.chdir(tmp_path)
    spec = tmp_path / "s.yaml"
    weights = "weights: x.keras\n" if where != "spec" else f"weights: {LONG}.keras\n"
    spec.write_text("cnnspec: 1\nname: t\ninput: {shape: [8, 8, 1]}\nmodel: [flatten, dense: 2]\n" + weights)
    args = {
        "spec": ["validate", spec],
        "set": ["validate", spec, "--set", f"weights={LONG}.keras"],
        "option": ["build", spec, "--weights", f"{LONG}.keras", "-o", tmp_path / "m.keras"],
    }[where]
    result = invoke(*args)
    assert result.exit_code == code, result.output
    from cnnspec.fileio import clipped_name

    assert f"cannot read '{clipped_name(LONG + '.keras')}': {TOO_LONG}" in flat(result)
    assert "internal error" not in result.output


@pytest.mark.parametrize("command", [["report"], ["visualize", "history"], ["evaluate"]])
def test_a_run_folder_that_cannot_be_written_is_named_as_such_without_out(tmp_path, monkeypatch, command):
    """Without --out, a read-only run folder was refused as "expected --out to be writable" with
    the hint to choose another --out: an option the user never gave. It names the run folder."""
    import errno

    from cnnspec import fileio

    run = make_run(tmp_path / "run")

    def read_only(folder):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(fileio, "_probe", read_only)
    args = [command[0], run, *command[1:]]
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    text = flat(result)
    assert "error: expected the run folder to be writable; cannot create files in" in text, text
    assert "--out to be writable" not in text and "hint: write elsewhere with --out" in text


def test_calibrate_of_a_run_folder_that_cannot_be_written_says_what_helps(tmp_path, monkeypatch):
    """It hinted "choose another RUN", which calibrates no other run."""
    import errno

    from cnnspec import fileio

    run = make_run(tmp_path / "run")

    def read_only(folder):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(fileio, "_probe", read_only)
    result = invoke("calibrate", run)
    assert result.exit_code == 2, result.output
    text = flat(result)
    assert "error: expected the run folder to be writable; cannot create files in" in text, text
    assert "choose another RUN" not in text and "copy the run folder to a writable disk" in text
