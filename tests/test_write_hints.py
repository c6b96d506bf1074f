"""A failed write says how to go on, whatever the command (docs/faults.md, "How a write fails");
``import`` refuses an output it can't write before the work, as the other commands do; and a
search worker that stopped on a write failure is named so in the search's notes.

The faults are injected as tests/test_faults.py does (its :class:`Injector`), where the disk
reports them; nothing here needs TensorFlow.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import pytest

from cnnspec import fileio
from cnnspec.cli.app import app
from cnnspec.errors import WriteError
from cnnspec.search import runner as search
from cnnspec.search import worker
from cnnspec.search.worker import WorkerConfig
from tests.test_faults import FAULTS, TINY_SPEC, Injector, flat, leftovers, needs_proc
from tests.test_import import TINY_JSON, TINY_KERAS
from tests.test_report import phased_run

AGAIN = "then run the same command again"

# -- every command's failed write has a hint ---------------------------------------------------------


def _import(tmp_path: Path) -> tuple[list[str], Path]:
    out = tmp_path / "spec.yaml"
    return ["import", str(TINY_JSON), "-o", str(out)], out


def _codegen(tmp_path: Path) -> tuple[list[str], Path]:
    spec = tmp_path / "tiny.yaml"
    spec.write_text(TINY_SPEC)
    out = tmp_path / "model.py"
    return ["codegen", str(spec), "-o", str(out), "--no-format"], out


def _report(tmp_path: Path) -> tuple[list[str], Path]:
    run = phased_run(tmp_path / "run", epochs_run=2)
    return ["report", str(run)], run / "report.html"


COMMANDS = {"import": _import, "codegen": _codegen, "report": _report}
#: The fault → the fix the hint names for it.
FIXES = {
    "ENOSPC": "free some space there",
    "EIO": "check the disk",
    "EROFS": "make that disk writable",
}


@needs_proc
@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("command", COMMANDS)
def test_a_failed_write_says_how_to_go_on(tmp_path, runner, monkeypatch, command, fault):
    args, target = COMMANDS[command](tmp_path)
    injector = Injector(monkeypatch, fault, target.name)
    result = runner.invoke(app, args)
    text = flat(result.output)
    assert injector.fired and result.exit_code == 1, text
    assert f"error: cannot write {target}: {os.strerror(FAULTS[fault])}" in text
    assert f"hint: {FIXES[fault]} or write elsewhere (-o), {AGAIN}" in text
    assert "Traceback" not in text and "internal error" not in text
    assert not target.exists() and not leftovers(tmp_path)


def test_a_command_s_own_hint_is_kept(tmp_path, runner, monkeypatch):
    from cnnspec.importer import output

    def full(*args: Any, **kwargs: Any) -> None:
        raise WriteError(tmp_path / "x.yaml", "No space left on device", errno=errno.ENOSPC, hint="its own")

    monkeypatch.setattr(output, "run_import", full)
    result = runner.invoke(app, ["import", str(TINY_JSON), "-o", str(tmp_path / "x.yaml")])
    assert result.exit_code == 1 and "hint: its own" in flat(result.output)
    assert AGAIN not in result.output


@pytest.mark.parametrize(
    ("code", "option", "hint"),
    [
        (errno.ENOSPC, "-o", f"free some space there or write elsewhere (-o), {AGAIN}"),
        (errno.EDQUOT, None, f"free some space there (or raise the disk quota), {AGAIN}"),
        (errno.EROFS, "-o", f"make that disk writable or write elsewhere (-o), {AGAIN}"),
        (errno.EACCES, "-o", f"get permission to write there or write elsewhere (-o), {AGAIN}"),
        (errno.EIO, None, f"check the disk, {AGAIN}"),
        (None, None, f"check the disk, {AGAIN}"),
    ],
)
def test_the_hint_names_the_fix_for_the_fault(code, option, hint):
    from cnnspec.cli.common import write_hint

    assert write_hint(WriteError("x.keras", "reason", errno=code), option) == hint


# -- import refuses an output it can't write, before the work ----------------------------------------


@pytest.fixture
def not_imported(monkeypatch):
    """The import's work is never started (a refusal comes first)."""
    from cnnspec.importer import output

    def started(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the import ran")

    monkeypatch.setattr(output, "run_import", started)


@pytest.mark.parametrize("weights", [False, True], ids=["spec", "spec-and-weights"])
def test_import_into_a_read_only_folder_is_refused_up_front(
    tmp_path, runner, monkeypatch, not_imported, weights
):
    def read_only(*args: Any, **kwargs: Any) -> None:  # as a read-only mount answers (root too)
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(fileio, "_probe", read_only)
    out = tmp_path / "ro" / "spec.yaml"
    result = runner.invoke(
        app, ["import", str(TINY_KERAS), "-o", str(out), *(["--weights"] if weights else [])]
    )
    text = flat(result.output)
    assert result.exit_code == 2, text
    assert (
        f"error: expected -o to be writable; cannot create files in {tmp_path}: Read-only file system" in text
    )
    assert "hint: choose another -o" in text and not (tmp_path / "ro").exists()


def test_import_behind_a_file_is_refused_up_front(tmp_path, runner, not_imported):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where a folder should be")
    result = runner.invoke(app, ["import", str(TINY_JSON), "-o", str(blocker / "spec.yaml")])
    assert result.exit_code == 2
    assert f"expected -o to name a file that can be written; the file {blocker} is in the way" in flat(
        result.output
    )


def test_import_s_weights_file_is_checked_too(tmp_path, runner, not_imported):
    (tmp_path / "spec.weights.h5").mkdir()  # where the weights would go
    args = ["import", str(TINY_KERAS), "-o", str(tmp_path / "spec.yaml"), "--weights", "--force"]
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert (
        f"expected -o to name a file that can be written; {tmp_path / 'spec.weights.h5'} is a folder"
        in flat(result.output)
    )


# -- a search worker stopped by a write failure -------------------------------------------------------


class FinishedWorker:
    """Stands in for a worker process: runs its body (:func:`search.worker_outcome`) in this
    process when started, and has then ended with the exit status that chose."""

    def __init__(self, target: Any, args: tuple[Any, ...], daemon: bool) -> None:
        self.cfg: WorkerConfig = args[0]
        self.exitcode: int | None = None

    def start(self) -> None:
        self.exitcode, _ = search.worker_outcome(self.cfg)

    def is_alive(self) -> bool:
        return False

    def join(self, timeout: float | None = None) -> None:
        return None


def _disk_full(cfg: WorkerConfig) -> int:
    raise WriteError(cfg.out / "trial-000" / "model.keras", "No space left on device", errno=errno.ENOSPC)


def test_a_worker_stopped_by_a_write_failure_is_named_so_in_the_notes(tmp_path, monkeypatch):
    monkeypatch.setattr(search, "run_worker", _disk_full)
    monkeypatch.setattr(search, "WorkerProcess", FinishedWorker)
    cfg = WorkerConfig(spec=tmp_path / "s.yaml", out=tmp_path, study_name="s", trials=2, workers=2)
    outcome = search._processes(cfg, 2, study=None, notes=[])
    assert outcome.notes == [
        f"worker {index} stopped on a write failure (a full or failing disk); its error is printed above"
        for index in (0, 1)
    ]
    assert not any("exit status" in note for note in outcome.notes)


def test_a_worker_s_outcome_names_its_error(tmp_path, monkeypatch):
    cfg = WorkerConfig(spec=tmp_path / "s.yaml", out=tmp_path, study_name="s", trials=1)
    monkeypatch.setattr(search, "run_worker", _disk_full)
    code, message = search.worker_outcome(cfg)
    assert code == worker.EXIT_WRITE and message is not None
    assert message.startswith(
        f"cannot write {tmp_path / 'trial-000' / 'model.keras'}: No space left on device"
    )
    monkeypatch.setattr(search, "run_worker", lambda cfg: 0)
    assert search.worker_outcome(cfg) == (0, None)


@pytest.mark.parametrize(
    ("code", "words"),
    [
        ("EXIT_WRITE", "stopped on a write failure (a full or failing disk); its error is printed above"),
        ("EXIT_USAGE", "stopped on a usage error; its error is printed above"),
        ("EXIT_INTERNAL", "stopped on an unexpected error; its error is printed above"),
        (1, "ended with exit status 1"),  # Python's own start-up of the process failed
    ],
)
def test_the_note_says_what_a_worker_stopped_on(code, words):
    status = getattr(worker, code) if isinstance(code, str) else code
    assert search.worker_exit_note(3, status) == f"worker 3 {words}"


@pytest.mark.parametrize(
    ("code", "fix"),
    [
        (errno.ENOSPC, "free some space there"),
        (errno.EFBIG, "check the disk"),  # (a file-size limit: "make the disk writable" was said)
        (errno.EACCES, "get permission to write there"),
        (errno.EROFS, "make that disk writable"),
    ],
)
def test_train_and_search_name_the_fix_for_the_fault_as_every_command_does(tmp_path, code, fix):
    """A failed write of a run or a trial: the same fix for the same errno as the other
    commands' hints (docs/faults.md); every fault but a full disk was "make the disk writable"."""
    from cnnspec.api import compile_text
    from cnnspec.search.worker import _retry_hint
    from cnnspec.training.trainer import _continue_hint

    compiled = compile_text("cnnspec: 1\nname: t\ninput: {shape: [8, 8, 1]}\nmodel: [flatten]\n")
    fault = WriteError(tmp_path / "run" / "model.keras", "reason", errno=code)
    assert _continue_hint(compiled, [], fault).startswith(f"{fix}, then run the same command again")
    assert _retry_hint(3, code) == f"{fix}, then run the same command again: trial 3 is tried again"
