"""One process owns a run folder (training/runlock.py): refusal, release, a killed holder,
leftover temp files; and two real `cnnspec train` processes on one folder."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from cnnspec.errors import UsageError, WriteError
from cnnspec.fileio import atomic_path
from cnnspec.training import runlock
from cnnspec.training.runlock import LOCK_NAME, RunFolderBusy, acquire, holder, remove_leftovers
from tests.conftest import TINY_DIGITS_MODEL, TINY_FLAT_HEAD, start_python

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


VICTIM = b"the user's notes\n"


def _victim(tmp_path: Path) -> Path:
    victim = tmp_path / "victim" / "notes.txt"
    victim.parent.mkdir()
    victim.write_bytes(VICTIM)
    return victim


def test_a_symlinked_lock_file_is_refused_and_its_target_left_alone(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    victim = _victim(tmp_path)
    (run / LOCK_NAME).symlink_to(victim)
    with pytest.raises(UsageError, match="found a symlink") as info:
        acquire(run, ["cnnspec", "visualize", "run", "history"])
    assert str(run / LOCK_NAME) in str(info.value) and "remove it" in info.value.hint
    assert victim.read_bytes() == VICTIM
    assert (run / LOCK_NAME).is_symlink()  # not ours: not removed either
    assert holder(run) is None  # nor read through


def test_a_dangling_symlink_is_refused_and_creates_nothing_where_it_leads(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / LOCK_NAME).symlink_to(tmp_path / "elsewhere")
    with pytest.raises(UsageError, match="found a symlink"):
        acquire(run)
    assert not (tmp_path / "elsewhere").exists()
    assert (run / LOCK_NAME).is_symlink()


def test_a_hard_link_or_a_directory_at_the_lock_path_is_refused(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    victim = _victim(tmp_path)
    os.link(victim, run / LOCK_NAME)
    with pytest.raises(UsageError, match="found a hard link"):
        acquire(run)
    assert victim.read_bytes() == VICTIM
    (run / LOCK_NAME).unlink()
    (run / LOCK_NAME).mkdir()
    with pytest.raises(UsageError, match="found a directory"):
        acquire(run)


def test_a_named_pipe_at_the_lock_path_is_refused_without_hanging(tmp_path):
    os.mkfifo(tmp_path / LOCK_NAME)
    with pytest.raises(UsageError, match="found a named pipe"):
        acquire(tmp_path)
    assert holder(tmp_path) is None


def test_release_never_removes_a_symlink_put_in_the_lock_files_place(tmp_path):
    lock = acquire(tmp_path, ["first"])
    moved = tmp_path / "moved.lock"
    (tmp_path / LOCK_NAME).rename(moved)
    (tmp_path / LOCK_NAME).symlink_to(moved)  # leads to the very file we hold, but is not it
    lock.release()
    assert (tmp_path / LOCK_NAME).is_symlink() and moved.is_file()


def test_report_on_a_run_folder_with_a_symlinked_lock_file_is_a_clean_usage_error(tmp_path, runner):
    from cnnspec.cli.app import app

    run = tmp_path / "run"
    run.mkdir()
    (run / "resolved.yaml").write_text("cnnspec: 1\nname: tiny\n" + TINY_DIGITS_MODEL)
    (run / "lock.json").write_text(json.dumps({"format": 1, "created": "2026-01-02T03:04:05+0000"}))
    (run / "history.json").write_text(json.dumps({"epoch": [1], "loss": [1.0]}))
    victim = _victim(tmp_path)
    (run / LOCK_NAME).symlink_to(victim)
    result = runner.invoke(app, ["report", str(run)])
    assert result.exit_code == 2, result.output
    output = " ".join(result.output.split())
    assert "found a symlink" in output and "Traceback" not in output
    assert victim.read_bytes() == VICTIM
    assert not (run / "report.html").exists()


def _full_disk(monkeypatch):
    def pwrite(fd, data, offset):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(runlock.os, "pwrite", pwrite)


def test_a_full_disk_under_the_lock_file_is_a_write_error_and_lets_the_lock_go(tmp_path, monkeypatch):
    with monkeypatch.context() as patch:
        _full_disk(patch)
        with pytest.raises(WriteError) as info:
            acquire(tmp_path, ["first"])
    assert info.value.errno == errno.ENOSPC and str(tmp_path / LOCK_NAME) in str(info.value)
    with acquire(tmp_path, ["second"]):  # the failed attempt holds nothing
        assert holder(tmp_path)["command"] == ["second"]


def test_train_on_a_full_disk_is_a_clean_error_that_leaves_no_new_folder(tmp_path, monkeypatch, runner):
    from cnnspec.cli.app import app

    spec = tmp_path / "spec.yaml"
    spec.write_text("cnnspec: 1\nname: tiny\n" + TINY_DIGITS_MODEL + "training: {epochs: 1}\n")
    _full_disk(monkeypatch)
    result = runner.invoke(app, ["train", str(spec), "--out", str(tmp_path / "new")])
    assert result.exit_code == 1, result.output
    assert "No space left on device" in result.output and "internal error" not in result.output
    assert "run the same command again" in " ".join(result.output.split())
    assert not (tmp_path / "new").exists()


@pytest.mark.slow
def test_a_run_that_fails_before_writing_leaves_none_of_the_folders_its_out_made(tmp_path, runner):
    """`train --out a/b/run` whose data could not be read removed run/ and left a/b/, empty."""
    from cnnspec.cli.app import app

    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    spec = tmp_path / "spec.yaml"
    spec.write_text(TINY_FLAT_HEAD + "data: {source: {npz: bad.npz}}\ntraining: {epochs: 1}\n")
    (tmp_path / "kept").mkdir()
    for out in (tmp_path / "a" / "b" / "run", tmp_path / "kept" / "new" / "run"):
        result = runner.invoke(app, ["train", str(spec), "--out", str(out)])
        assert result.exit_code == 1, result.output
        assert "bad.npz" in result.output and "internal error" not in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.npz", "kept", "spec.yaml"]
    assert list((tmp_path / "kept").iterdir()) == []


def test_a_busy_folders_hint_offers_another_folder_only_where_one_would_do(tmp_path):
    with acquire(tmp_path, ["cnnspec", "train"]):
        with pytest.raises(RunFolderBusy) as plain:
            acquire(tmp_path)
        with pytest.raises(RunFolderBusy) as new_run:
            acquire(tmp_path, alternative="choose another --out")
    assert plain.value.hint == "wait for that process to end"
    assert new_run.value.hint == "wait for that process to end, or choose another --out"


def test_remove_leftovers_deletes_only_temp_files_of_killed_atomic_writes(tmp_path):
    (tmp_path / "state").mkdir()
    left = []
    writes = (("history.json", None), ("state/epoch-0002.weights.h5", ".weights.h5"), ("notes", None))
    for target, suffix in writes:
        with atomic_path(tmp_path / target, suffix=suffix) as temp:
            temp.write_text("half written")
            left.append(temp.relative_to(tmp_path))
        # put back the real temp folder and file, as a SIGKILL before the rename would have left it
        (tmp_path / left[-1]).parent.mkdir()
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


def test_remove_leftovers_leaves_a_nested_run_and_a_users_hidden_notes_alone(tmp_path):
    """Every command that holds a run's lock tidies it now, so (a review of that change):
    - a run inside it (`train --out RUN/ft`) had the temp file of the write it was making
      removed (its training then failed: "cannot write RUN/ft/history.json");
    - a user's `.analysis.20261204.tmp` beside a finished run's files was deleted."""
    run = tmp_path / "run"
    (run / "notes").mkdir(parents=True)
    (run / "lock.json").write_text("{}")
    inner = run / "ft"
    inner.mkdir()
    (inner / "lock.json").write_text("{}")
    with atomic_path(inner / "history.json") as in_flight:  # the inner training's write, now
        in_flight.write_text("{")
        mine = [run / ".analysis.20261204.tmp", run / "notes" / ".draft.sections.tmp"]
        for path in mine:
            path.write_text("my notes")
        old = run / ".metrics.json.ab12cd34.json"  # an older cnnspec's temp file: cnnspec's own
        old.write_text("{")
        killed = run / ".report.html.ab12cd34.tmp"  # today's: a folder with its part file
        killed.mkdir()
        (killed / "part.html").write_text("<")
        assert remove_leftovers(run) == 2
        assert in_flight.exists() and all(path.read_text() == "my notes" for path in mine)
        assert not old.exists() and not killed.exists()
    assert (inner / "history.json").read_text() == "{"  # the inner write committed
    # (and the shapes cnnspec leaves that a review found the narrowed rule missed)
    probe, pdf = run / ".write-check.k3j9x0qa.tmp", run / ".graph.pdf.k3j9x0qa.pdf"
    for path in (probe, pdf):
        path.write_bytes(b"")
    assert remove_leftovers(run) == 2 and not probe.exists() and not pdf.exists()


SPEC = (
    "cnnspec: 1\nname: contended\n"
    + TINY_DIGITS_MODEL
    + """\
training: {epochs: 500, batch_size: 16, seed: 7}  # far more than the test lets it run
"""
)


def launch(spec: Path, *args: str, cold: bool = False) -> subprocess.Popen:
    """``cnnspec train`` in a process of its own: a fork of a Python with TensorFlow imported
    (tests/script_runner.py; its lock records this command line as a cold process's would), or
    with ``cold`` a fresh one, for a run refused before it imports TensorFlow. Commands started
    one after another are forked from the same server within milliseconds: racers start alike."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    command = [CNNSPEC, "train", str(spec), "--quiet", *args]
    return start_python(*command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cold=cold)


def wait_for(path: Path, process: subprocess.Popen, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if process.poll() is not None:
            raise AssertionError(f"training ended early: {process.communicate()}")
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"{path} did not appear")
        time.sleep(0.02)


@pytest.mark.slow
def test_two_real_trains_on_one_folder_then_sigkill_of_the_holder(tmp_path, capsys):
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC)
    out = tmp_path / "run"
    first = launch(spec, "--out", str(out))
    refused_ones: list[subprocess.Popen] = []
    try:
        wait_for(out / "state" / "epoch-0001.json", first)
        assert holder(out)["pid"] == first.pid

        started = time.monotonic()
        # a second run and a resume of the same folder, side by side: the holder refuses both
        second = launch(spec, "--out", str(out), cold=True)
        resumed = launch(spec, "--resume", str(out), cold=True)
        refused_ones += [second, resumed]
        _, err = second.communicate(timeout=60)
        refused = time.monotonic() - started
        message = "".join(err.split())  # Rich folds long paths at any character
        assert second.returncode == 2, err
        expected = f"in use by process {first.pid} ({CNNSPEC} train {spec} --quiet --out {out})"
        assert "".join(expected.split()) in message
        assert "Traceback" not in err and "internal error" not in err
        _, err = resumed.communicate(timeout=60)
        assert resumed.returncode == 2 and f"process{first.pid}" in "".join(err.split())
        assert first.poll() is None  # the holder never noticed
    finally:
        for process in refused_ones:  # (refused and gone, unless a check above failed)
            if process.poll() is None:
                process.kill()
                process.wait(timeout=30)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
    assert holder(out)["pid"] == first.pid  # the killed holder's lock file stays: stale
    killed_after = len(json.loads((out / "history.json").read_text())["epoch"])

    started = time.monotonic()
    third = launch(spec, "--resume", str(out))
    try:
        deadline = time.monotonic() + 90
        while (holder(out) or {}).get("pid") != third.pid or epochs(out) <= killed_after:
            assert third.poll() is None, third.communicate()
            assert time.monotonic() < deadline, "the resumed run never got the lock and trained"
            time.sleep(0.05)
        took_over = time.monotonic() - started
    finally:
        third.send_signal(signal.SIGTERM)  # a scheduler's stop: save, release, exit 130
        _, err = third.communicate(timeout=60)
    assert third.returncode == 130, err
    assert not (out / LOCK_NAME).exists()  # released on the way out
    with capsys.disabled():
        print(
            f"\n  second train refused (exit 2) {refused:.2f}s after its start; resume after the "
            f"holder's SIGKILL held the lock and trained an epoch {took_over:.1f}s after its start"
        )


def epochs(out: Path) -> int:
    try:
        return len(json.loads((out / "history.json").read_text())["epoch"])
    except (OSError, ValueError):
        return 0


@pytest.mark.slow
def test_two_runs_racing_for_one_new_folder_exactly_one_wins(tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC)
    out = tmp_path / "runs" / "new"
    racers = [launch(spec, "--out", str(out)) for _ in range(2)]
    try:
        deadline = time.monotonic() + 90
        while all(racer.poll() is None for racer in racers):
            assert time.monotonic() < deadline, "neither racer was refused"
            time.sleep(0.02)
        loser = next(racer for racer in racers if racer.poll() is not None)
        winner = next(racer for racer in racers if racer is not loser)
        _, err = loser.communicate()
        assert loser.returncode == 2 and f"inusebyprocess{winner.pid}" in "".join(err.split()), err
        wait_for(out / "state" / "epoch-0001.json", winner)
        assert holder(out)["pid"] == winner.pid
        assert json.loads((out / "lock.json").read_text())["command"][-1] == str(out)
    finally:
        for racer in racers:
            if racer.poll() is None:
                racer.send_signal(signal.SIGKILL)
                racer.wait(timeout=30)


def test_a_command_writing_into_a_sub_folder_of_a_held_run_is_refused_as_busy(tmp_path):
    """`visualize RUN history -o RUN/pictures/` and `report RUN -o RUN/pages/r.html` wrote into
    a run folder another process held (a training), where `-o RUN` was refused as busy: the
    lock covered the folder itself only."""
    from tests.test_damaged_runs import make_run
    from tests.test_report_support import flat, invoke

    run = make_run(tmp_path / "run")
    before = sorted(run.rglob("*"))
    with acquire(run, ["cnnspec", "train", "--resume", str(run)]):
        for args in (
            ("visualize", run, "history", "-o", f"{run / 'pictures'}/"),
            ("visualize", run, "history", "-o", run / "pictures" / "h.png"),
            ("report", run, "-o", run / "pages" / "r.html"),
        ):
            result = invoke(*args)
            assert result.exit_code == 2, (args, result.output)
            assert f"the run folder {run} is in use by process {os.getpid()}" in flat(result)
    assert sorted(run.rglob("*")) == before
    result = invoke("visualize", run, "history", "-o", f"{run / 'pictures'}/")  # free again
    assert result.exit_code == 0 and (run / "pictures" / "history.png").is_file()


@pytest.mark.parametrize("command", ["visualize", "export"])
def test_a_command_that_owns_a_finished_run_removes_the_temp_files_killed_commands_left(tmp_path, command):
    """A `report` killed mid-write left RUN/.report.html.XXXXXXXX.tmp/, a SavedModel export killed
    between its renames left the old export aside in its scratch folder, a run killed while its
    report was written kept its snapshots (state/): only `train` removed such leftovers, and a
    finished run is never trained again, so they stayed for good (the export missing from its
    place). Every command that takes the run's lock now cleans up."""
    from cnnspec.fileio import SWAP_MARK
    from tests.test_damaged_runs import make_run
    from tests.test_report_support import invoke

    run = make_run(tmp_path / "run")
    page = run / ".report.html.ab12cd34.tmp"
    page.mkdir()
    (page / "part.html").write_text("<html>half")
    swap = run / "export" / ".saved_model.ab12cd34.tmp"
    (swap / "old").mkdir(parents=True)
    (swap / "old" / "saved_model.pb").write_bytes(b"the earlier export")
    (swap / SWAP_MARK).touch()
    mine = run / ".notes.txt"  # the user's hidden file: no temp's shape
    mine.write_text("mine")
    # killed while its report was written: metrics.json is there, and so are its snapshots
    (run / "state").mkdir()
    (run / "state" / "epoch-0002-final.weights.h5").write_bytes(b"weights and optimizer")
    (run / "state" / "epoch-0002-final.json").write_text("{}")
    if command == "visualize":
        result = invoke("visualize", run, "history")
        assert result.exit_code == 0, result.output
    else:  # (a model.keras that is no archive is refused once the export owns the folder)
        (run / "model.keras").write_bytes(b"not loaded")
        result = invoke("export", run, "-f", "savedmodel")
        assert result.exit_code == 2 and "expected a Keras model" in result.output
    assert not page.exists() and not swap.exists() and mine.read_text() == "mine"
    assert not (run / "state").exists()
    assert (run / "export" / "saved_model" / "saved_model.pb").read_bytes() == b"the earlier export"
