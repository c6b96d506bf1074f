"""The command line's third audit: every exit the README's table promises, where a command did
otherwise.

- `lsp` ended by Ctrl-C or SIGTERM: "interrupted", exit 130 (was exit 1 without a word);
- a Ctrl-C during the command's imports that Python wrapped in another error (a dataclass's
  ``__set_name__``): "interrupted", 130 (was a traceback, exit 1);
- `build --weights MISSING`: refused before TensorFlow is imported (took 4 s to say so);
- `report -o new.html/`, `runs compare --png new.png/`: a folder, refused (wrote a file);
  `-o ""` is "empty" (was ". is a folder");
- help and usage errors into a closed pipe: 141, quietly (was 1, the status of a spec error);
- `import MISSING` (a folder, a device, nothing): a usage error, 2, as `evaluate`'s target;
- an output name too long for the file system: a usage error, 2, before anything is written
  (was a disk error, exit 1, "check the disk");
- `lsp --stdio` shows no default it cannot change; `build -o` says its default.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import typer

from cnnspec.cli import app as cli_app
from cnnspec.cli.app import app
from cnnspec.errors import UsageError
from cnnspec.fileio import check_writable, note_stop, write_atomic
from tests.conftest import ROOT, SPECS_DIR, start_python
from tests.test_search import CNNSPEC
from tests.test_signals import run_main

BASIC = str(SPECS_DIR / "basic_cnn.yaml")


# -- lsp: Ctrl-C and SIGTERM ------------------------------------------------------------------------
def _message(payload: dict) -> bytes:
    body = json.dumps(payload).encode()
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


def _read_message(stream) -> dict:
    length = 0
    while (line := stream.readline().strip()) != b"":
        name, _, value = line.partition(b":")
        if name.lower() == b"content-length":
            length = int(value)
    return json.loads(stream.read(length))


@pytest.mark.parametrize("first", ["initialize", "shutdown"])  # (a request before it: refused, -32002)
@pytest.mark.parametrize(
    "numbers",
    [[signal.SIGINT], [signal.SIGTERM], [signal.SIGTERM, signal.SIGINT], [signal.SIGINT, signal.SIGINT]],
    ids=lambda numbers: "-".join(n.name for n in numbers),
)
def test_the_language_server_stopped_by_a_signal_says_interrupted_and_exits_130(numbers, first):
    """pygls swallows the KeyboardInterrupt; with no `shutdown` the server exited 1, silently.
    The editor keeps stdin open: the server ended only once it closed the pipe (pygls waited
    for its thread blocked reading stdin), and a second signal while it waited made Python
    abort at shutdown ("could not acquire lock for <stdin>", exit 134)."""
    # `cnnspec lsp` in a fresh Python, as an editor starts it (a fork of one that has imported
    # the language server read stdin otherwise: its server ended without the fix too), on pipes
    # of this test's own (bytes)
    stdin_read, stdin_write = os.pipe()
    stdout_read, stdout_write = os.pipe()
    stderr_read, stderr_write = os.pipe()
    try:
        proc = start_python(
            CNNSPEC,
            "lsp",
            stdin=stdin_read,
            stdout=stdout_write,
            stderr=stderr_write,
            cwd=ROOT,
            cold=True,
        )
    finally:
        for fd in (stdin_read, stdout_write, stderr_write):
            os.close(fd)
    with (
        open(stdin_write, "wb") as stdin,
        open(stdout_read, "rb") as stdout,
        open(stderr_read, "rb") as stderr,
    ):
        try:  # serving (it answered `initialize`), then stopped
            request = {"jsonrpc": "2.0", "id": 1, "method": first, "params": {"capabilities": {}}}
            stdin.write(_message(request))
            stdin.flush()
            assert _read_message(stdout).get("id") == 1
            for index, number in enumerate(numbers):  # (stdin stays open, as an editor keeps it)
                if index:  # a second signal lands while the first is being handled
                    time.sleep(0.2)
                proc.send_signal(number)
            deadline, chunks = time.monotonic() + 10, []  # its stderr to its end, bounded
            while select.select([stderr], [], [], max(0.0, deadline - time.monotonic()))[0]:
                if not (chunk := os.read(stderr.fileno(), 65536)):
                    break
                chunks.append(chunk)
            error = b"".join(chunks)
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    # (a second Ctrl-C that lands once the command has ended, as Python exits, ends it by
    # SIGINT: what a shell also reports as 130; never a hang, nor an abort, -6)
    late = [-signal.SIGINT] if numbers[1:] == [signal.SIGINT] else []
    assert proc.returncode in (130, *late), error
    assert error.decode() == "interrupted\n"


# -- a Ctrl-C that came back as another error while the command's modules load -------------------------
def test_a_ctrl_c_wrapped_by_set_name_while_importing_is_interrupted(in_main, monkeypatch, capsys):
    """Python 3.11 wraps a KeyboardInterrupt raised in ``__set_name__`` (dataclasses' Field) in
    a RuntimeError: main() caught KeyboardInterrupt alone, so that was a traceback, exit 1."""

    def importing(only=None):
        note_stop()  # what the signal handler does before it raises
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as stop:
            raise RuntimeError("Error calling __set_name__ on 'Field' instance 'x' in 'Spec'") from stop

    monkeypatch.setattr(cli_app, "build_app", importing)
    assert run_main() == 130
    assert capsys.readouterr().err == "interrupted\n"


def test_an_error_while_importing_without_a_stop_is_not_called_an_interrupt(in_main, monkeypatch):
    def importing(only=None):
        raise RuntimeError("a real bug")

    monkeypatch.setattr(cli_app, "build_app", importing)
    with pytest.raises(RuntimeError, match="a real bug"):
        cli_app.main()


# -- build --weights MISSING: before TensorFlow ---------------------------------------------------------
def test_build_refuses_a_missing_weights_file_before_tensorflow_is_imported(tmp_path):
    """It built the model (TensorFlow: ~4 s) before reading its weight sources; train checks first."""
    (tmp_path / "basic_cnn.yaml").write_text(Path(BASIC).read_text())
    code = (
        "import sys, json\n"
        "from typer.testing import CliRunner\n"
        "from cnnspec.cli.app import app\n"
        "r = CliRunner().invoke(app, ['build', 'basic_cnn.yaml', '--weights', 'nonexist.weights.h5',"
        " '-o', 'a.keras'])\n"
        "print(json.dumps([r.exit_code, 'tensorflow' in sys.modules, r.output]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    exit_code, imported, output = json.loads(done.stdout.strip().splitlines()[-1])
    assert exit_code == 2 and "no such weights file" in output, output
    assert not imported
    assert sorted(p.name for p in tmp_path.iterdir()) == ["basic_cnn.yaml"]


# -- a folder given as a file: report -o, runs compare --png; an empty -o -----------------------------------
@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["report", "RUN", "-o", "newdir.html/"], "newdir.html/ names a folder; expected a file path such as "
         "newdir.html/report.html"),
        (["report", "RUN", "-o", "adir/"],
         "adir/ names a folder; expected a file path such as adir/report.html"),
        (["runs", "compare", "RUN", "RUN", "--png", "cmpdir.png/"],
         "cmpdir.png/ names a folder; expected a file path such as cmpdir.png/compare.png"),
        (["report", "RUN", "-o", ""], "--out is empty; expected a file path such as report.html"),
        (["runs", "compare", "RUN", "RUN", "--png", ""],
         "--png is empty; expected a file path such as compare.png"),
        (["codegen", BASIC, "-o", ""], "-o is empty; expected a file path such as model.py"),
        (["build", BASIC, "-o", ""], "-o is empty; expected a file path such as model.keras"),
    ],
    ids=["report", "report-new-folder", "runs-compare", "report-empty", "runs-empty", "codegen-empty",
         "build-empty"],
)  # fmt: skip
def test_an_output_that_names_a_folder_or_nothing_is_refused(runner, tmp_path, monkeypatch, args, said):
    """`report -o newdir.html/` and `runs compare --png cmpdir.png/` wrote a file of that name
    (Typer's Path drops the slash); `-o ""` was ". is a folder"."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "RUN").mkdir()
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert said in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["RUN"]
    assert list((tmp_path / "RUN").iterdir()) == []


# -- help and usage errors into a closed pipe ------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "both"),
    [(["--help"], False), (["codegen", "-h"], False), (["validate", "x.yaml", "--bogus"], True)],
    ids=["help", "command-help", "usage-error"],
)
def test_help_and_usage_errors_into_a_closed_pipe_exit_141_quietly(args, both):
    """`cnnspec --help | head -1` (and a usage error with 2>&1) exited 1: Rich and Click print
    them before any command's guard, and end a broken pipe with 1, the status of a spec error."""
    read, write = os.pipe()
    os.close(read)  # the reader went away before the first line: every write fails (EPIPE)
    try:
        proc = subprocess.Popen(
            [CNNSPEC, *args],
            stdin=subprocess.DEVNULL,
            stdout=write,
            stderr=write if both else subprocess.PIPE,
            cwd=ROOT,
        )
    finally:
        os.close(write)
    _, error = proc.communicate(timeout=60)
    assert proc.returncode == 141, error
    assert not error


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (Linux)")
@pytest.mark.parametrize(
    "args",
    [
        ["validate", "specs/digits_cnn.yaml"],
        ["schema"],
        ["codegen", "specs/digits_cnn.yaml", "-o", "-"],
        ["--version"],
        ["validate", "-h"],
    ],
    ids=["validate", "schema", "codegen", "version", "help"],
)
def test_output_to_a_full_disk_is_a_write_error_not_an_internal_one(args):
    """`cnnspec validate SPEC > /dev/full` said "internal error … please report it", exit 3:
    the disk's fault, said as one (exit 1, as any write that fails). Click prints --version and
    help before any command's guard: they printed a traceback."""
    with open("/dev/full", "w") as full:
        run = subprocess.run(
            [CNNSPEC, *args], stdin=subprocess.DEVNULL, stdout=full, stderr=subprocess.PIPE, cwd=ROOT,
            text=True, timeout=60,
        )  # fmt: skip
    assert run.returncode == 1, run.stderr
    text = " ".join(run.stderr.split())
    assert "error: cannot write to standard output: No space left on device" in text
    assert "internal error" not in text and "Traceback" not in text


# -- import: a source path that names no file is a usage error ----------------------------------------
def _fifo(path: Path) -> str:
    os.mkfifo(path)
    return str(path)


@pytest.mark.parametrize(
    ("make", "said"),
    [
        (lambda tmp: str(tmp / "nonexist.json"), "nonexist.json: no such file"),
        (lambda tmp: str(tmp), "expected a file, or a run folder with its model.keras; received a folder"),
        (lambda tmp: "/dev/null", "/dev/null: expected a model file; received a character device"),
        (lambda tmp: "", "expected a model file; received an empty path"),
        (lambda tmp: _fifo(tmp / "pipe"), "expected a model file; received a FIFO (named pipe)"),
    ],
    ids=["missing", "folder", "device", "empty", "fifo"],
)
def test_import_of_a_source_that_is_no_file_is_a_usage_error(runner, tmp_path, make, said):
    """Exit 1 (a spec error) where evaluate, export, report and runs exit 2 for an input path
    that names no file; the README's table: a missing *spec* is 1, other usage errors 2."""
    result = runner.invoke(app, ["import", make(tmp_path), "-o", str(tmp_path / "x.yaml")])
    assert result.exit_code == 2, result.output
    assert said in result.stderr and "hint: pass a .keras file, a JSON config or keras:NAME" in result.stderr
    assert not (tmp_path / "x.yaml").exists()


def test_import_of_a_file_that_is_no_model_stays_a_located_error(runner, tmp_path):
    source = tmp_path / "model.json"
    source.write_text("{not json")
    result = runner.invoke(app, ["import", str(source), "-o", str(tmp_path / "x.yaml")])
    assert result.exit_code == 1, result.output
    assert not (tmp_path / "x.yaml").exists()


# -- an output name too long for the file system -----------------------------------------------------------
def test_a_too_long_output_name_is_a_usage_error_not_a_disk_error(runner, tmp_path, monkeypatch):
    """`codegen -o <300 a's>.py` was "File name too long (needs about 1.4 KiB; 77.0 GiB free
    there)", exit 1, hint "check the disk"."""
    monkeypatch.chdir(tmp_path)
    name = "a" * 300 + ".py"
    result = runner.invoke(app, ["codegen", BASIC, "-o", name])
    assert result.exit_code == 2, result.output
    limit = os.pathconf(tmp_path, "PC_NAME_MAX") - len("..XXXXXXXX.tmp")  # room for the temp folder
    assert (
        f"expected -o to name a file of at most {limit} bytes; received a name of 303 bytes" in result.stderr
    )
    assert "check the disk" not in result.stderr and "free there" not in result.stderr
    assert list(tmp_path.iterdir()) == []
    # the longest name that fits is written
    fits = "b" * (limit - len(".py")) + ".py"
    assert runner.invoke(app, ["codegen", BASIC, "-o", fits]).exit_code == 0
    assert [p.name for p in tmp_path.iterdir()] == [fits]


def test_a_too_long_folder_name_is_refused_before_the_work(tmp_path):
    with pytest.raises(UsageError, match="expected --out to name folders of at most"):
        check_writable(tmp_path / ("d" * 300) / "runs", option="--out", folder=True)
    with pytest.raises(UsageError, match="expected -o to name folders of at most"):
        check_writable(tmp_path / ("d" * 300) / "m.keras", option="-o", folder=False)
    assert list(tmp_path.iterdir()) == []


def test_a_write_with_a_too_long_name_is_a_usage_error_where_it_was_not_checked(tmp_path):
    with pytest.raises(UsageError, match="too long to write"):
        write_atomic(tmp_path / ("c" * 300 + ".json"), "{}")
    assert list(tmp_path.iterdir()) == []


# -- help text ------------------------------------------------------------------------------------------
def test_lsp_stdio_shows_no_default_it_cannot_change_and_build_says_its_default():
    """`--stdio` showed `[default: True]`, a flag that could not be turned off."""
    commands = typer.main.get_command(app).commands  # type: ignore[attr-defined]
    stdio = next(p for p in commands["lsp"].params if p.name == "stdio")
    assert not stdio.show_default and not stdio.default and "the only transport" in (stdio.help or "")
    output = next(p for p in commands["build"].params if p.name == "output")
    assert "default NAME.keras" in (output.help or "")


@pytest.mark.parametrize("command", ["validate", "inspect", "codegen"])
def test_a_dash_for_the_spec_says_specs_are_files(runner, tmp_path, monkeypatch, command):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(cli_app.app, [command, "-"])
    assert result.exit_code == 1 and "no such file: -" in result.output
    assert "specs are read from files, not standard input" in result.output


def test_small_wordings_count_and_a_number_gets_no_did_you_mean():
    from cnnspec.errors import UsageError
    from cnnspec.reporting.views import _class_index

    for target in ("-1", "10", "+3"):
        with pytest.raises(UsageError) as caught:
            _class_index(target, ["0", "1", "2"])
        assert caught.value.hint is None, target  # `-1` was "did you mean `1`?"
    with pytest.raises(UsageError) as caught:
        _class_index("cta", ["cat", "dog"])
    assert caught.value.hint == "did you mean `cat`?"


def test_export_of_a_finished_run_without_its_model_file_is_not_sent_to_resume(runner, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "lock.json").write_text("{}")
    (run / "metrics.json").write_text("{}")
    result = runner.invoke(app, ["export", str(run), "-f", "onnx"])
    assert result.exit_code == 2, result.output
    assert "the run finished, and the file was moved or deleted since" in " ".join(result.output.split())
    assert "--resume" not in result.output
