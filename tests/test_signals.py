"""Stopping and full disks outside `cnnspec train`: SIGTERM stops every command as Ctrl-C does
(exit 130, "interrupted", no temp file left), a Ctrl-C before the command runs is no traceback,
a benchmark's scratch writes on a full temp folder are a clear error (exit 1), and a search
trial that could not write its files is tried again, the search ending with exit 1.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import typer

from cnnspec.cli import app as cli_app
from cnnspec.errors import WriteError
from cnnspec.fileio import stop_handled, stop_noted, write_atomic
from tests.conftest import start_python

TINY = """\
cnnspec: 1
name: tiny
input: {shape: [8, 8, 1]}
model:
  - conv2d: {filters: 2, kernel_size: 3}
  - global_avg_pool2d
  - dense: {units: 3, activation: softmax}
"""

#: ``cnnspec ARGS`` with every fsync held for a minute: the model's temp file stays on the disk
#: until the test's SIGTERM comes (without it, the signal would have to hit a few milliseconds).
HELD_BUILD = """
import os, sys, time
from cnnspec.cli.app import main
os.fsync = lambda fd: time.sleep(60)
sys.argv = ["cnnspec", *sys.argv[1:]]
main()
"""


def run_main() -> int:
    try:
        cli_app.main()
    except SystemExit as done:
        return int(done.code or 0)
    except KeyboardInterrupt:
        pytest.fail("a KeyboardInterrupt escaped main()")
    pytest.fail("main() returned")


# -- 1. SIGTERM and an early Ctrl-C -----------------------------------------------------------------
def test_a_ctrl_c_while_the_command_is_imported_is_one_line_and_exit_130(in_main, monkeypatch, capsys):
    def importing(only=None):
        raise KeyboardInterrupt  # as if pressed while the command's modules load

    monkeypatch.setattr(cli_app, "build_app", importing)
    assert run_main() == 130
    assert capsys.readouterr().err == "interrupted\n"


class _FailsWhenFreed:
    """What a write cut short leaves behind: a ZipFile on a closed temp file, whose finalizer fails."""

    def __del__(self):
        raise ValueError("seek of closed file")


def test_after_interrupted_a_finalizer_that_fails_is_not_printed(in_main, monkeypatch, capsys):
    def importing(only=None):
        left = _FailsWhenFreed()  # noqa: F841  (freed with the exception's frames)
        raise KeyboardInterrupt

    reported = []  # what Python's own hook would print as "Exception ignored in ..."
    monkeypatch.setattr(sys, "unraisablehook", reported.append)
    monkeypatch.setattr(cli_app, "build_app", importing)
    assert run_main() == 130
    _FailsWhenFreed()  # freed at once: after the stop, as at the process's exit
    assert reported == [] and capsys.readouterr().err == "interrupted\n"


def test_a_command_that_ends_otherwise_keeps_the_unraisable_hook(in_main, monkeypatch, tmp_path):
    hook = sys.unraisablehook
    monkeypatch.setattr(sys, "argv", ["cnnspec", "validate", str(tmp_path / "missing.yaml")])
    assert run_main() == 1
    assert sys.unraisablehook is hook


def test_a_ctrl_c_while_the_command_line_is_parsed_says_interrupted(in_main, monkeypatch, capsys):
    """Typer turns a KeyboardInterrupt outside the command's guard into a silent exit 130."""

    def parsing(value: str) -> str:
        raise KeyboardInterrupt

    def application(only=None):
        built = typer.Typer()

        @built.command()
        def validate(file: str = typer.Argument(..., callback=parsing)) -> None:
            pass

        return built

    monkeypatch.setattr(cli_app, "build_app", application)
    assert run_main() == 130
    assert capsys.readouterr().err.strip() == "interrupted"


#: A command that sends itself SIGTERM, run by ``main`` in a process of its own (the signal's
#: default action would end the test process).
SELF_TERMINATING = """
import os, signal, sys, time
from cnnspec.cli import app

def command():
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(30)
    print("SIGTERM did not stop the command")

app.build_app = lambda only=None: command
sys.argv = ["cnnspec", "validate", "x.yaml"]
app.main()
"""


def test_sigterm_raises_keyboard_interrupt_in_every_command():
    done = subprocess.run(
        [sys.executable, "-c", SELF_TERMINATING], capture_output=True, text=True, timeout=60
    )
    assert (done.returncode, done.stdout, done.stderr) == (130, "", "interrupted\n")


def test_a_sigterm_the_parent_ignores_stays_ignored(in_main, monkeypatch):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    monkeypatch.setattr(cli_app, "build_app", lambda only=None: lambda: None)
    cli_app.main()
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_IGN


def test_main_notes_ctrl_c_and_sigterm_where_python_would_just_raise(in_main, monkeypatch):
    """Ctrl-C (Python's own handler) and SIGTERM get the handler that notes the stop before it
    raises, so that a swallowed one still stops the command."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    monkeypatch.setattr(cli_app, "build_app", lambda only=None: lambda: None)
    cli_app.main()
    for number in (signal.SIGINT, signal.SIGTERM):
        handler = signal.getsignal(number)
        assert callable(handler)
        with pytest.raises(KeyboardInterrupt):
            handler(number, None)
        assert stop_noted()
        stop_handled()


def swallowed_stop() -> None:
    """A Ctrl-C that lands in code that drops the exception, as h5py's file callbacks do in
    the middle of Keras' model.save."""
    with contextlib.suppress(KeyboardInterrupt):
        cli_app._terminated(signal.SIGINT, None)


@pytest.mark.parametrize("then", ["writes", "fails", "exits", "returns"])
def test_a_stop_that_something_swallowed_still_ends_the_command_and_writes_nothing(
    in_main, monkeypatch, tmp_path, capsys, then
):
    """The build that went on after its SIGTERM: it saved its model and ended with exit 0 (or,
    where h5py turned the exception into its own, exit 3, "internal error"); an ONNX export
    whose converter's imports it interrupted said the converter failed (exit 1). The noted stop
    is raised again before the write commits, or when the command ends: exit 130, nothing new
    on the disk, the old file as it was."""
    from cnnspec.cli.common import guarded

    target = tmp_path / "model.keras"
    target.write_text("the user's model")

    built = typer.Typer()

    @built.callback()
    def group() -> None:
        pass

    @built.command()
    @guarded
    def validate(file: str) -> None:
        swallowed_stop()
        if then == "writes":
            write_atomic(target, "a model written after Ctrl-C")
        elif then == "fails":
            raise TypeError("Operation not defined for data type class")
        elif then == "exits":  # export's own error: the ONNX converter's imports failed
            sys.stderr.write("error: the onnx converter failed (ImportError: initialization failed)\n")
            raise typer.Exit(1)

    monkeypatch.setattr(cli_app, "build_app", lambda only=None: built)
    assert run_main() == 130
    assert capsys.readouterr().err.strip().splitlines()[-1] == "interrupted"
    assert target.read_text() == "the user's model"
    assert [p.name for p in tmp_path.iterdir()] == ["model.keras"]
    assert not stop_noted()  # handled: a next command in this process writes again
    write_atomic(target, "new")
    assert target.read_text() == "new"


@pytest.mark.slow
def test_sigterm_during_a_build_is_exit_130_and_leaves_no_temp_file(tmp_path):
    spec = tmp_path / "tiny.yaml"
    spec.write_text(TINY, encoding="utf-8")
    out = tmp_path / "out"
    held = tmp_path / "held_build.py"
    held.write_text(HELD_BUILD, encoding="utf-8")
    # a process of its own, forked from a Python that has imported TensorFlow already
    # (tests/script_runner.py): the build's own start-up, signal handling and exit status
    build = start_python(
        held,
        *["build", str(spec), "-o", str(out / "m.keras")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    try:
        deadline = time.monotonic() + 240
        while not (out.is_dir() and any(p.name.startswith(".m.keras.") for p in out.iterdir())):
            assert build.poll() is None, build.communicate()
            assert time.monotonic() < deadline, "the model's temp file never appeared"
            time.sleep(0.02)
        build.send_signal(signal.SIGTERM)
        _, err = build.communicate(timeout=60)
    finally:
        if build.poll() is None:
            build.kill()
            build.communicate()
    assert build.returncode == 130, err
    assert err.strip().splitlines()[-1] == "interrupted" and "Traceback" not in err
    assert not out.exists()  # no model, no temp file, and not the folder the write made for it


# -- 2. and 3. the benchmark's worker and scratch files ----------------------------------------------
def _full(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_a_full_temp_folder_is_a_write_error_naming_the_scratch_file(tmp_path, monkeypatch):
    from cnnspec.export import benchmark

    monkeypatch.setattr(np, "save", _full)
    with pytest.raises(WriteError) as caught:
        benchmark._write_test_split(np.zeros((3, 8, 8, 1), "uint8"), np.arange(3), 1 / 255, tmp_path)
    assert f"cannot write {tmp_path / 'test-y.npy'}: No space left on device" in str(caught.value)
    assert "TMPDIR" in str(caught.value.hint)


def test_a_test_split_that_does_not_fit_in_the_temp_folder_is_refused_before_a_byte(tmp_path, monkeypatch):
    from cnnspec import write_faults
    from cnnspec.export import benchmark

    monkeypatch.setattr(write_faults, "free_space", lambda folder: 4096)
    with pytest.raises(WriteError) as caught:
        benchmark._write_test_split(np.zeros((64, 8, 8, 1), "uint8"), np.arange(64), None, tmp_path)
    assert "test-x.npy: not enough free space" in str(caught.value)
    assert list(tmp_path.iterdir()) == []


def test_a_worker_settings_file_on_a_full_temp_folder_is_a_write_error(tmp_path, monkeypatch):
    from cnnspec.export import benchmark

    monkeypatch.setattr(Path, "write_text", _full)
    with pytest.raises(WriteError) as caught:
        benchmark._worker({"runtime": "onnx"}, tmp_path, 1)
    assert f"cannot write {tmp_path / 'onnx.json'}: No space left on device" in str(caught.value)


def test_a_stopped_benchmark_ends_its_worker_and_waits_for_it():
    from cnnspec.export import benchmark

    worker = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    with pytest.raises(KeyboardInterrupt), benchmark._ended(worker):
        raise KeyboardInterrupt  # Ctrl-C or SIGTERM while the worker times
    assert worker.returncode == -signal.SIGKILL  # ended and reaped: no orphan


def test_a_stop_while_the_worker_starts_ends_the_worker_too(in_main, monkeypatch, tmp_path):
    """A SIGTERM that landed inside Popen (the child forked, Popen not returned) or before the
    worker was in ``_ended``'s hands left the worker timing on as an orphan (the SIGTERM test
    in tests/test_runtimes.py failed so now and then)."""
    from cnnspec.export import benchmark

    real, started = subprocess.Popen, []

    def starting(command, **kwargs):
        started.append(real(["sleep", "60"], **kwargs))
        os.kill(os.getpid(), signal.SIGTERM)  # the child is there; Popen has not returned
        return started[-1]

    signal.signal(signal.SIGTERM, cli_app._terminated)  # (in_main puts the handler back)
    monkeypatch.setattr(benchmark.subprocess, "Popen", starting)
    with pytest.raises(KeyboardInterrupt):
        benchmark._worker({"runtime": "keras"}, tmp_path, 1)
    assert started[0].returncode == -signal.SIGKILL  # ended and reaped: no orphan
    assert signal.getsignal(signal.SIGTERM) is cli_app._terminated


#: A process that starts a timing worker's parent watch in a child, prints the child's PID,
#: and waits to be killed.
ORPHANING = """
import subprocess, sys, time
watch = "import os, time; from cnnspec.export.bench_worker import exit_with_parent; " \\
    "exit_with_parent(os.getppid()); print(os.getpid(), flush=True); time.sleep(60)"
child = subprocess.Popen([sys.executable, "-c", watch], stdout=subprocess.PIPE, text=True)
print(child.stdout.readline().strip(), flush=True)
time.sleep(60)
"""


def _running(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "State:\tZ" not in status  # (a zombie whose new parent has not reaped it yet)


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc")
def test_a_timing_worker_ends_itself_when_its_benchmark_is_killed():
    """SIGKILL leaves a benchmark no clean-up: the worker must notice that it is orphaned."""
    parent = subprocess.Popen([sys.executable, "-c", ORPHANING], stdout=subprocess.PIPE, text=True)
    try:
        worker = int(parent.stdout.readline())
    finally:
        parent.kill()
        parent.communicate()
    deadline = time.monotonic() + 20
    while _running(worker):
        assert time.monotonic() < deadline, "the orphaned worker kept running"
        time.sleep(0.1)


# -- 5. a search trial that could not write its files ----------------------------------------------
SEARCH = """\
cnnspec: 1
name: tiny_search
input: {shape: [8, 8, 1]}
model:
  - conv2d: {filters: 2, kernel_size: 3}
  - global_avg_pool2d
  - dense: {units: 10, activation: softmax}
data: {source: digits, limit: 64}
training: {epochs: 1, batch_size: 32}
search:
  trials: 2
  seed: 3
  pruner: none
  space:
    training.batch_size: {choice: [16, 32, 64]}
"""


def test_a_trial_that_could_not_write_is_tried_again_and_the_search_exits_1(tmp_path, monkeypatch):
    """A full disk failed the trial for good (counted as spent) and the search ended with 0."""
    optuna = pytest.importorskip("optuna")
    from typer.testing import CliRunner

    from cnnspec.search import worker
    from cnnspec.search.study import open_storage
    from cnnspec.training import trainer

    spec = tmp_path / "search.yaml"
    spec.write_text(SEARCH, encoding="utf-8")
    out = tmp_path / "s"
    model = out / "trial-000" / "model.keras"

    def full_disk(*args, **kwargs):
        raise WriteError(model, os.strerror(errno.ENOSPC), errno=errno.ENOSPC, needed=4096, free=0)

    monkeypatch.setattr(worker, "_quiet_tensorflow", lambda: None)
    monkeypatch.setattr(worker, "pruning_callback", lambda trial, metric: None)
    monkeypatch.setattr(trainer, "train", full_disk)
    args = ["search", str(spec), "-o", str(out), "-q"]
    result = CliRunner().invoke(cli_app.app, args, env={"COLUMNS": "400"})
    assert result.exit_code == 1, result.output
    text = " ".join(result.output.split())
    assert f"cannot write {model}: No space left on device" in text and "internal error" not in text
    assert "free some space there, then run the same command again: trial 0 is tried again" in text

    study = optuna.load_study(study_name="tiny_search", storage=open_storage(None, out))
    failed = study.trials[0]
    assert failed.state.name == "FAIL" and failed.user_attrs["failed"].startswith("disk fault")
    assert worker.counted(study) == 0  # not spent: the next search tries it again
    assert str(worker.disk_fault(study).path) == str(model)  # what a worker process's fault reads

    def trains(cfg, compiled, space, study, trial):  # the disk has room again
        values = {d.name: worker.suggest(trial, d) for d in space.dimensions}
        study.tell(trial, 0.5)
        return f"trial {trial.number}: {values}"

    monkeypatch.setattr(worker, "run_trial", trains)
    again = CliRunner().invoke(cli_app.app, args, env={"COLUMNS": "400"})
    assert again.exit_code == 0, again.output
    study = optuna.load_study(study_name="tiny_search", storage=open_storage(None, out))
    done = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert len(done) == 2
    retry = next(t for t in done if t.user_attrs.get("retry_of") == 0)
    assert retry.params == failed.params
