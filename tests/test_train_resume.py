"""Crash safety: kill a real `cnnspec train`, resume it; damaged snapshots; Ctrl-C."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from cnnspec.api import compile_spec
from cnnspec.cli.app import app
from cnnspec.errors import UsageError
from tests.conftest import TINY_DIGITS_MODEL, start_python

pytestmark = pytest.mark.slow

SPEC = (
    "cnnspec: 1\nname: resumable\n"
    + TINY_DIGITS_MODEL
    + """\
training:
  epochs: EPOCHS
  batch_size: 16
  callbacks:
    - early_stopping: {monitor: val_loss, patience: 100, restore_best_weights: true}
    - reduce_lr_on_plateau: {monitor: val_loss, patience: 100}
  seed: 7
"""
)
#: The tiny model with a flatten for its convolution and pooling, and SPEC with it: the model of
#: the tests whose stop comes at a write or a call, not at a moment a signal must catch (the
#: signalled runs keep the slower epochs of SPEC). A smaller graph to trace: about 0.3 s less
#: CPU a training, of 1.3 s.
FLAT_DIGITS_MODEL = TINY_DIGITS_MODEL.replace(
    "  - conv2d: {filters: 4, kernel_size: 3, padding: same, activation: relu}\n  - global_avg_pool2d\n",
    "  - flatten\n",
)
FLAT_SPEC = SPEC.replace(TINY_DIGITS_MODEL, FLAT_DIGITS_MODEL)
assert "conv2d" not in FLAT_SPEC
CNNSPEC = str(Path(sys.executable).with_name("cnnspec"))


def start(spec: Path, out: Path) -> subprocess.Popen:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    # a fork of a Python with TensorFlow imported (tests/script_runner.py): the signals below
    # come once epoch 2 is saved, so a cold start's 6-9 s of imports would prove nothing more
    return start_python(
        CNNSPEC,
        "train",
        str(spec),
        "--out",
        str(out),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )


def wait_for(path: Path, process: subprocess.Popen, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if process.poll() is not None:
            raise AssertionError(f"training ended early: {process.communicate()}")
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError("no snapshot appeared")
        time.sleep(0.02)


def epochs_in(folder: Path) -> list[int]:
    return json.loads((folder / "history.json").read_text())["epoch"]


#: Epochs of the killed and the interrupted run: the signal comes once epoch 2's snapshot is
#: there, so 8 epochs more (a second or more of training) is its window.
EPOCHS = 10


def test_sigkill_mid_run_then_resume(tmp_path, runner):
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC.replace("EPOCHS", str(EPOCHS)))
    out = tmp_path / "run"
    process = start(spec, out)
    wait_for(out / "state" / "epoch-0002.json", process)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    saved = json.loads((out / "history.json").read_text())
    done = len(saved["epoch"])
    # the kill may land between the epoch-2 snapshot and its history.json line
    assert 1 <= done < EPOCHS and not (out / "metrics.json").exists()

    # the temp file a kill in the middle of an atomic write leaves (maybe this kill left one too)
    (out / ".history.json.x7k2m9q0.json").write_text("{half")
    # (without its page: nothing here reads it, and drawing it was a second and a half)
    result = runner.invoke(app, ["train", str(spec), "--no-report", "--resume", str(out)])
    assert result.exit_code == 0, result.output
    assert "resuming" in result.output
    assert "temp file(s) left in" in result.output and not list(out.rglob(".*"))
    resumed_after = int(result.output.split("after epoch ")[1].split()[0])
    # resumes from the last whole epoch (its snapshot is written just before history.json)
    assert resumed_after in (done, done + 1) and resumed_after >= 2
    history = json.loads((out / "history.json").read_text())
    assert history["epoch"] == list(range(1, EPOCHS + 1))  # every epoch exactly once
    assert history["loss"][:done] == saved["loss"][:done]  # epochs already logged are kept as logged
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["epochs_run"] == EPOCHS and metrics["resumed_from_epoch"] == resumed_after
    assert not (out / "state").exists()


def test_ctrl_c_saves_state_and_prints_the_resume_command(tmp_path, runner):
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC.replace("EPOCHS", str(EPOCHS)))
    out = tmp_path / "run"
    process = start(spec, out)
    wait_for(out / "state" / "epoch-0002.json", process)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    assert f"--resume {out}" in " ".join(stderr.split())
    manifests = sorted((out / "state").glob("epoch-*.json"))
    assert 1 <= len(manifests) <= 2

    # every snapshot damaged: a clean error (exit 2), no traceback
    broken = tmp_path / "broken"
    shutil.copytree(out, broken)
    for path in (broken / "state").iterdir():
        path.write_bytes(b"\0garbage")
    result = runner.invoke(app, ["train", str(spec), "--resume", str(broken)])
    assert result.exit_code == 2 and "no usable training state" in " ".join(result.output.split())

    # the newest snapshot truncated: fall back to the one before
    newest = manifests[-1]
    weights = newest.with_name(newest.stem + ".weights.h5")
    weights.write_bytes(weights.read_bytes()[:500])
    from cnnspec.training.trainer import train

    compiled = compile_spec(spec)
    if len(manifests) == 2:
        result = train(compiled, resume=out)
        assert any("damaged" in note for note in result.notes)
        assert [r["epoch"] for r in result.history] == list(range(1, EPOCHS + 1))
    else:  # only one snapshot was left: nothing to fall back to
        with pytest.raises(UsageError):
            train(compiled, resume=out)


def test_snapshots_keep_two_and_fall_back(tmp_path):
    import keras
    import numpy as np

    from cnnspec.training.state import TrainingState

    def model():
        m = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
        m.compile(optimizer="adam", loss="mse")
        return m

    source = model()
    source.fit(np.ones((4, 3)), np.ones((4, 2)), verbose=0)
    state = TrainingState(tmp_path)
    for epoch in (1, 2, 3):
        source.layers[0].kernel.assign(np.full((3, 2), float(epoch)))
        state.save(
            source, epoch, [{"epoch": e, "loss": 1.0 / e} for e in range(1, epoch + 1)], {"x": {"best": 0.5}}
        )
    assert [s.epoch for s in state.snapshots()] == [3, 2]  # epoch 1 pruned
    (tmp_path / "state" / ".epoch-0004.weights.h5.tmp.weights.h5").write_bytes(b"left by a kill")

    target, notes = model(), []
    snapshot, _ = state.restore(target, notes)
    assert snapshot.epoch == 3 and snapshot.callbacks == {"x": {"best": 0.5}} and not notes
    assert float(target.layers[0].kernel.numpy()[0, 0]) == 3.0
    assert int(target.optimizer.iterations.numpy()) == 1  # optimizer state came back too

    (tmp_path / "state" / "epoch-0003.weights.h5").write_bytes(b"truncated")
    target = model()
    snapshot, _ = state.restore(target, notes)
    assert snapshot.epoch == 2 and "damaged" in notes[0]
    assert float(target.layers[0].kernel.numpy()[0, 0]) == 2.0

    (tmp_path / "state" / "epoch-0002.json").write_text("{not json")
    with pytest.raises(UsageError, match="all damaged"):
        state.restore(model(), [])
    state.save(source, 4, [], {})
    assert not list((tmp_path / "state").glob(".epoch-*"))  # temp leftovers cleaned


def stopped_writing_results(monkeypatch: pytest.MonkeyPatch, spec: Path, run: Path) -> None:
    """Train ``spec`` into ``run`` until writing its results fails as a full disk would (its
    confusion matrix): every epoch trained and saved, the results not written."""
    from cnnspec.training import plots
    from cnnspec.training.trainer import train

    def full_disk(*args: object, **kwargs: object) -> None:
        raise OSError("no space left on device")

    monkeypatch.setattr(plots, "plot_confusion_matrix", full_disk)
    with pytest.raises(OSError):
        train(compile_spec(spec), out=run)
    monkeypatch.undo()


@pytest.mark.xdist_group("killed_before_its_page")  # one worker: the fixture trains once
def test_resuming_a_run_that_saved_no_state_says_it_starts_again(killed_before_its_page, tmp_path):
    """A run whose state/ holds no snapshot (killed in its first epoch, or removed by hand)
    trains from epoch 1 again, and says so instead of passing it off as resumed."""
    from cnnspec.training.trainer import train

    # a one-epoch run that trained and saved its snapshots, without its results and state/
    spec, run = _copied(killed_before_its_page, tmp_path)
    (run / "metrics.json").unlink()
    shutil.rmtree(run / "state", ignore_errors=True)
    result = train(compile_spec(spec), resume=run)
    assert result.resumed_from is None and [row["epoch"] for row in result.history] == [1]
    assert "no training state was saved in this run yet: it starts again from epoch 1" in result.notes


def test_the_printed_resume_command_is_the_one_to_paste(tmp_path, runner, monkeypatch):
    """Its --set values print as written (Rich read `[body]` as markup and dropped it), and it
    repeats the options the spec needed to compile (--allow-outside, --max-params)."""
    import shlex

    from cnnspec.training import outcomes, trainer

    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC.replace("EPOCHS", "2"))
    override = "training.freeze=[conv2d_1]"

    def interrupted(compiled, **kwargs):
        command = outcomes.resume_command(compiled, list(kwargs["overrides"]), tmp_path / "run")
        raise outcomes.TrainingInterrupted(tmp_path / "run", 1, command)

    monkeypatch.setattr(trainer, "train", interrupted)
    args = ["train", str(spec), "--allow-outside", "--max-params", "1000000", "--set", override]
    result = runner.invoke(app, args)
    assert result.exit_code == 130, result.output
    line = next(line for line in result.output.splitlines() if line.startswith("resume with:"))
    words = shlex.split(line.removeprefix("resume with:"))
    assert words == [
        "cnnspec", "train", str(spec), "--allow-outside", "--max-params", "1000000",
        "--set", override, "--resume", str(tmp_path / "run"),
    ]  # fmt: skip


def _one_epoch(tmp_path: Path, runner: Any) -> tuple[Path, Path, Any]:
    """One epoch of the spec trained into tmp_path/run, stopped (exit 130): spec, run, result."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(FLAT_SPEC.replace("EPOCHS", "1"))
    run = tmp_path / "run"
    result = runner.invoke(app, ["train", str(spec), "--out", str(run)])
    assert result.exit_code == 130, result.output
    return spec, run, result


def _stop_once_written(monkeypatch: pytest.MonkeyPatch, run: Path, name: str) -> list[str]:
    """Raise KeyboardInterrupt (a Ctrl-C) once, in the last step of the write that has just put
    ``run/name`` in place (the folder's sync, after the rename); returns the names stopped."""
    from cnnspec import fileio

    real_sync = fileio.sync_folder
    stopped: list[str] = []

    def sync_then_stop(folder: Any) -> None:
        real_sync(folder)
        if not stopped and (run / name).is_file():
            stopped.append(name)
            raise KeyboardInterrupt

    monkeypatch.setattr(fileio, "sync_folder", sync_then_stop)
    return stopped


def test_a_stop_just_after_a_new_runs_spec_yaml_leaves_no_folder_and_the_edited_spec_starts(
    tmp_path, runner, monkeypatch
):
    """A Ctrl-C just after spec.yaml was renamed into place left spec.yaml behind: the run was
    not resumable (no lock.json), and a retry with an edited spec into the same --out was
    refused ("expected a new or empty run folder; … already has files")."""
    spec, run = tmp_path / "spec.yaml", tmp_path / "run"
    spec.write_text(FLAT_SPEC.replace("EPOCHS", "1"))
    with monkeypatch.context() as patch:
        stopped = _stop_once_written(patch, run, "spec.yaml")
        result = runner.invoke(app, ["train", str(spec), "--out", str(run)])
    assert result.exit_code == 130 and stopped == ["spec.yaml"], result.output
    assert "interrupted" in result.output and "resume with" not in result.output
    assert not run.exists()  # the folder this run created went with its files
    spec.write_text(FLAT_SPEC.replace("EPOCHS", "1").replace("batch_size: 16", "batch_size: 8"))
    with monkeypatch.context() as patch:  # accepted as a new run (stopped once that is clear)
        stopped = _stop_once_written(patch, run, "lock.json")
        again = runner.invoke(app, ["train", str(spec), "--quiet", "--out", str(run)])
    assert again.exit_code == 130 and stopped == ["lock.json"], again.output
    assert "batch_size: 8" in (run / "spec.yaml").read_text()


def test_a_stop_just_after_lock_json_says_how_to_resume(tmp_path, runner, monkeypatch):
    """A Ctrl-C just after lock.json was written said a bare "interrupted": the folder resumes
    (its lock.json is there), and the same command was then refused, the folder being no longer
    new. Now it says how to resume, as a stop in the epochs does, and that resume trains."""
    spec, run = tmp_path / "spec.yaml", tmp_path / "run"
    spec.write_text(FLAT_SPEC.replace("EPOCHS", "1"))
    with monkeypatch.context() as patch:
        stopped = _stop_once_written(patch, run, "lock.json")
        result = runner.invoke(app, ["train", str(spec), "--out", str(run)])
    said = " ".join(result.output.split())
    assert result.exit_code == 130 and stopped == ["lock.json"], result.output
    assert f"interrupted before its first whole epoch; {run} starts again from epoch 1" in said
    assert f"resume with: cnnspec train {spec} --resume {run}" in said
    assert sorted(p.name for p in run.iterdir()) == ["lock.json", "resolved.yaml", "spec.yaml"]
    from cnnspec.training.trainer import train

    train(compile_spec(spec), resume=run)  # (the trainer the pasted command runs, without its page)
    assert epochs_in(run) == [1] and (run / "metrics.json").is_file()


def test_a_stop_while_the_report_is_written_leaves_a_finished_run(tmp_path, runner, monkeypatch):
    """Ctrl-C while report.html was written left a run `runs` lists as finished, with its
    snapshots (state/) that nothing removed and a bare "interrupted"; --resume said there was
    nothing to resume. The results are whole: the snapshots go, and the message says how to
    write the page."""
    from cnnspec.reporting import html

    def stopped(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(html, "write_report", stopped)
    _, run, result = _one_epoch(tmp_path, runner)
    text = " ".join(result.output.split())
    assert "interrupted once the run had finished; its results are saved" in text
    assert f"if report.html is missing, write it with `cnnspec report {run}`" in text
    assert (run / "metrics.json").is_file() and (run / "model.keras").is_file()
    assert not (run / "state").exists() and not (run / "report.html").exists()


#: ``cnnspec`` SIGKILLed where report.html is to be written: after metrics.json, before its end.
KILLED_AT_THE_REPORT = """
import os, signal, sys
from cnnspec.reporting import html
html.write_report = lambda *args, **kwargs: os.kill(os.getpid(), signal.SIGKILL)
from cnnspec.cli.app import app
app(sys.argv[1:])
"""


@pytest.fixture(scope="module")
def killed_before_its_page(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A one-epoch run (the spec, the run folder) SIGKILLed once metrics.json was written, as it
    began its report.html: a real kill, in a process of its own, so its lock file and its
    snapshots are left as a kill leaves them. Trained once for the module (a training is most
    of these tests' time): the tests take a copy (:func:`_copied`)."""
    from tests.conftest import run_python

    folder = tmp_path_factory.mktemp("killed")
    spec, run, script = folder / "spec.yaml", folder / "run", folder / "killed.py"
    spec.write_text(FLAT_SPEC.replace("EPOCHS", "1"))
    script.write_text(KILLED_AT_THE_REPORT)
    done = run_python(script, "train", str(spec), "--out", str(run), "-q")
    assert done.returncode == -signal.SIGKILL, done.stdout + done.stderr
    return spec, run


def _copied(killed: tuple[Path, Path], tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the :func:`killed_before_its_page` run's spec and folder in ``tmp_path``."""
    spec, run = killed
    shutil.copy(spec, tmp_path / "spec.yaml")
    shutil.copytree(run, tmp_path / "run")
    return tmp_path / "spec.yaml", tmp_path / "run"


class FinishedByResume:
    """A copy of the :func:`killed_before_its_page` run: what the kill left there (its lock
    file, metrics.json, snapshots, no page; the files kept and the snapshots copied aside),
    then the run finished by one ``train --resume`` (``result``)."""

    def __init__(self, spec: Path, run: Path, snapshots: Path) -> None:
        from cnnspec.training.runlock import LOCK_NAME

        self.spec, self.run, self.snapshots = spec, run, snapshots
        self.lock_left = (run / LOCK_NAME).is_file()
        self.metrics_left = (run / "metrics.json").is_file()
        self.snapshots_left = (run / "state").is_dir() and bool(list((run / "state").iterdir()))
        self.page_left = (run / "report.html").exists()
        names = ("metrics.json", "model.keras", "history.json")
        self.kept = {name: (run / name).read_bytes() for name in names}
        shutil.copytree(run / "state", snapshots)
        self.result: Any = None


@pytest.fixture(scope="module")
def finished_by_resume(killed_before_its_page, tmp_path_factory: pytest.TempPathFactory) -> FinishedByResume:
    """The killed run's ``train --resume`` that writes its page and removes its snapshots, run
    once for the module: the two tests that resume the run as the kill left it read this one
    (a resume with its page was each one's time), and copy the folder to go on from it."""
    from typer.testing import CliRunner

    folder = tmp_path_factory.mktemp("finished")
    spec, run = _copied(killed_before_its_page, folder)
    finished = FinishedByResume(spec, run, folder / "state-copy")
    finished.result = CliRunner().invoke(app, ["train", str(spec), "--resume", str(run)])
    return finished


@pytest.mark.xdist_group("killed_before_its_page")
def test_a_run_killed_between_its_results_and_its_report_is_finished_by_resume(
    finished_by_resume, tmp_path, runner
):
    """A run killed once metrics.json was written and before report.html kept its snapshots
    (state/) forever and had no page, and --resume said it had finished, nothing to resume
    (exit 2). --resume now writes what the run's end writes and removes its snapshots, training
    nothing again; a run that lacks nothing is refused as before, with `cnnspec report` named."""
    done = finished_by_resume
    assert done.metrics_left and done.snapshots_left and not done.page_left
    result, run = done.result, done.run
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert f"finished {run}: wrote its report.html; removed its training snapshots (state/)" in text
    assert "nothing was trained again" in text
    assert (run / "report.html").is_file() and not (run / "state").exists()
    assert all((run / name).read_bytes() == data for name, data in done.kept.items())
    # the steps below go on from a copy of the finished run
    spec, run, snapshots, kept = done.spec, tmp_path / "run", done.snapshots, done.kept
    shutil.copytree(done.run, run)
    # the API's result is the run's, as saved
    from cnnspec.training.trainer import train

    shutil.copytree(snapshots, run / "state")
    (run / "report.html").unlink()
    result = train(compile_spec(spec), resume=run)
    assert result.completed == ["removed its training snapshots (state/)"]  # (no write_report given)
    assert result.metrics == json.loads(kept["metrics.json"])
    assert [row["epoch"] for row in result.history] == [1] and not (run / "state").exists()
    result = runner.invoke(app, ["train", str(spec), "--resume", str(run)])
    assert result.exit_code == 0 and (run / "report.html").is_file(), result.output
    # killed while its snapshots were removed, after the page: only they go, the page stays
    shutil.copytree(snapshots, run / "state")
    page = (run / "report.html").read_bytes()
    result = runner.invoke(app, ["train", str(spec), "--resume", str(run)])
    assert result.exit_code == 0, result.output
    assert f"finished {run}: removed its training snapshots (state/)" in " ".join(result.output.split())
    assert not (run / "state").exists() and (run / "report.html").read_bytes() == page
    # a whole run: nothing to resume, and the hint names the command that writes the page again
    result = runner.invoke(app, ["train", str(spec), "--resume", str(run)])
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert f"the run in {run} has finished; there is nothing to resume" in text
    assert f"`cnnspec report {run}` writes its report.html again" in text


@pytest.mark.xdist_group("killed_before_its_page")
def test_resume_of_a_run_whose_page_cannot_be_written_is_an_error(killed_before_its_page, tmp_path, runner):
    """--resume of a run that lacks only its end, whose metrics.json is damaged: the page was
    not written ("report.html was not written (UsageError: damaged run file …)", a warning),
    then "finished RUN: nothing could be written", exit 0, though the command did nothing it is
    for. It is report's error, exit 2; the snapshots stay for a resume once the file is put back."""
    spec, run = _copied(killed_before_its_page, tmp_path)
    (run / "report.html").unlink(missing_ok=True)
    (run / "metrics.json").write_bytes((run / "metrics.json").read_bytes()[:100])
    result = runner.invoke(app, ["train", str(spec), "--resume", str(run)])
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert f"damaged run file {run / 'metrics.json'}" in text and "nothing could be written" not in text
    # (left for a resume once the file is put back: the other tests here resume such a run)
    assert (run / "state").is_dir() and not (run / "report.html").exists()


@pytest.mark.xdist_group("killed_before_its_page")
def test_resume_writes_the_finished_page_over_one_written_before_the_run_finished(
    killed_before_its_page, tmp_path, runner
):
    """`cnnspec report` of the run before it finished wrote report.html ("metrics.json is
    missing"); the run, killed after its results, then kept that page through the --resume
    that finished it (it took "report.html exists" for its finished page)."""
    from cnnspec.training import rundir

    spec, run = _copied(killed_before_its_page, tmp_path)
    # the page of the run as it was before its results: written with metrics.json not there yet
    (run / "metrics.json").rename(tmp_path / "metrics.json")
    assert runner.invoke(app, ["report", str(run)]).exit_code == 0
    (tmp_path / "metrics.json").rename(run / "metrics.json")
    assert "metrics.json is missing: the run has not finished" in (run / "report.html").read_text()
    assert rundir.left_undone(run) == ["report.html", "state/"]
    result = runner.invoke(app, ["train", str(spec), "--resume", str(run)])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert f"finished {run}: wrote its report.html; removed its training snapshots (state/)" in text
    page = (run / "report.html").read_text()
    assert "metrics.json is missing" not in page
    assert f'<meta name="cnnspec-results" content="{rundir.results_mark(run)}">' in page
    assert rundir.left_undone(run) == []


@pytest.mark.xdist_group("killed_before_its_page")
def test_a_run_sigkilled_before_its_report_is_finished_by_resume(finished_by_resume):
    """The same with a real SIGKILL (its lock file and its snapshots left as a kill leaves them:
    the killed_before_its_page run, killed in a process of its own)."""
    done = finished_by_resume
    assert done.metrics_left and done.snapshots_left
    assert not done.page_left and done.lock_left  # the dead holder's
    result, run = done.result, done.run
    assert result.exit_code == 0, result.output
    assert f"finished {run}: wrote its report.html; removed its training snapshots (state/)" in " ".join(
        result.output.split()
    )
    assert (run / "report.html").is_file() and not (run / "state").exists()


def test_a_stop_in_the_last_moments_around_the_results_says_what_holds(tmp_path, runner, monkeypatch):
    """Two moments the handlers missed: between the last snapshot and the results (the history
    written again, the best checkpoint loaded, a disk cache removed) a bare "interrupted" with no
    way to resume; after the results and the page (the snapshots being cleared) "resume with",
    which then said the run had finished."""
    from cnnspec.training import callbacks
    from cnnspec.training.state import TrainingState

    real_history, written = callbacks.write_history, []

    def history_then_stop(*args, **kwargs):
        written.append(1)
        if len(written) == 2:  # (the first: the epoch's own)
            raise KeyboardInterrupt
        return real_history(*args, **kwargs)

    monkeypatch.setattr(callbacks, "write_history", history_then_stop)
    spec, run, result = _one_epoch(tmp_path, runner)
    assert "interrupted after 1 whole epoch(s)" in result.output and "resume with:" in result.output
    monkeypatch.setattr(callbacks, "write_history", real_history)
    real_clear, cleared = TrainingState.clear, []

    def clear_then_stop(self):
        cleared.append(1)
        real_clear(self)
        if len(cleared) == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(TrainingState, "clear", clear_then_stop)
    again = runner.invoke(app, ["train", str(spec), "--resume", str(run)])
    assert again.exit_code == 130, again.output
    assert "interrupted once the run had finished" in " ".join(again.output.split())
    assert "resume with" not in again.output
    assert (run / "metrics.json").is_file() and (run / "report.html").is_file()


def test_a_stop_before_the_results_are_written_says_how_to_resume(tmp_path, runner, monkeypatch):
    """Ctrl-C during the test evaluation said a bare "interrupted"; --resume then writes the
    results without training again."""
    from cnnspec.training import plots

    real = plots.plot_history
    calls = []

    def stopped(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(plots, "plot_history", stopped)
    spec, run, result = _one_epoch(tmp_path, runner)
    assert "interrupted after 1 whole epoch(s)" in result.output and "resume with:" in result.output
    assert not (run / "metrics.json").exists()
    again = runner.invoke(app, ["train", str(spec), "--resume", str(run)])
    assert again.exit_code == 0, again.output
    assert (run / "metrics.json").is_file() and (run / "report.html").is_file()


def test_a_stop_while_the_final_snapshot_is_written_says_how_to_resume(tmp_path, runner, monkeypatch):
    """Ctrl-C (or SIGTERM) while the snapshot that marks the training done was written, once
    fit had ended, said a bare "interrupted": neither that the epochs were saved nor how to go
    on. --resume then writes the results without training again, every epoch once."""
    from cnnspec.training import callbacks

    real = callbacks.Recorder.save

    def stopped(self, epochs_done, *, complete=False, stopped_early=False):
        if complete:
            raise KeyboardInterrupt
        return real(self, epochs_done, complete=complete, stopped_early=stopped_early)

    monkeypatch.setattr(callbacks.Recorder, "save", stopped)
    spec, run, result = _one_epoch(tmp_path, runner)
    assert "interrupted after 1 whole epoch(s)" in result.output and "resume with:" in result.output
    monkeypatch.setattr(callbacks.Recorder, "save", real)
    from cnnspec.training.trainer import train

    train(compile_spec(spec), resume=run)  # (the trainer the pasted command runs, without its page)
    assert json.loads((run / "history.json").read_text())["epoch"] == [1]
    assert json.loads((run / "metrics.json").read_text())["resumed_from_epoch"] == 1


@pytest.mark.parametrize("then", ["swallowed", "turned into its own error"])
def test_a_stop_that_h5py_swallows_in_the_final_model_save_still_stops_train(
    tmp_path, runner, monkeypatch, then
):
    """SIGTERM while model.keras was saved: h5py drops the KeyboardInterrupt raised in its
    callbacks (the run then finished, exit 0, as if no signal had come) or raises an error of
    its own instead ("internal error", exit 3). Train's handler did not note the stop as every
    other command's does: now nothing is committed after it and train says how to resume."""
    import signal

    from cnnspec.fileio import stop_noted
    from cnnspec.training import finish

    real = finish.save_model

    def save(model, path):
        try:  # the signal lands inside h5py, through the handler train put in place
            signal.getsignal(signal.SIGTERM)(signal.SIGTERM, None)
        except KeyboardInterrupt:
            if then != "swallowed":
                raise TypeError("Operation not defined for data type class") from None
        return real(model, path)

    monkeypatch.setattr(finish, "save_model", save)
    spec = tmp_path / "spec.yaml"
    spec.write_text(FLAT_SPEC.replace("EPOCHS", "1"))
    run = tmp_path / "run"
    result = runner.invoke(app, ["train", str(spec), "--out", str(run)])
    assert result.exit_code == 130, result.output
    said = " ".join(result.output.split())  # (Rich breaks the lines where the paths make it)
    assert "interrupted after 1 whole epoch(s)" in said and f"--resume {run}" in said
    assert not (run / "model.keras").exists() and not (run / "metrics.json").exists()
    assert not stop_noted()  # handled: the next command in this process writes again
    if then == "swallowed":  # (both leave the same folder: one resume of it is proof enough)
        monkeypatch.setattr(finish, "save_model", real)
        from cnnspec.training.trainer import train

        train(compile_spec(spec), resume=run)  # (the trainer the pasted command runs, without its page)
        assert json.loads((run / "history.json").read_text())["epoch"] == [1]


def test_a_best_checkpoint_of_an_epoch_trained_again_is_not_the_runs_best(tmp_path, runner, monkeypatch):
    """Killed after model_checkpoint saved epoch 2 as best.keras and before epoch 2's snapshot:
    the resume trains epoch 2 again from epoch 1's snapshot, and when it comes out worse (a
    resume that is not exact, a GPU's arithmetic), best.keras still held the killed epoch 2's
    weights, which the run loaded as its model while metrics.json said "best epoch 1". The
    file now waits beside best.keras until its epoch's snapshot is written."""
    from cnnspec.training import callbacks
    from cnnspec.training.finish import weights_digest

    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "cnnspec: 1\nname: best\n" + FLAT_DIGITS_MODEL + "training:\n  epochs: 2\n  batch_size: 32\n"
        "  seed: 3\n  callbacks:\n    - model_checkpoint: {monitor: val_loss, save_best_only: true}\n"
    )
    run = tmp_path / "run"
    real_end, real_save = callbacks.BestCheckpoint.on_epoch_end, callbacks.Recorder.save
    epoch_one: list[str] = []
    sign = {"now": -1}  # the killed run: every epoch better; the resumed one: epoch 2 worse

    def end(self, epoch, logs=None):
        return real_end(self, epoch, {**(logs or {}), "val_loss": sign["now"] * (epoch + 1.0)})

    def save(self, epochs_done, **kwargs):
        if epochs_done == 2:
            raise KeyboardInterrupt  # (as a SIGKILL: epoch 2's checkpoint written, its snapshot not)
        epoch_one.append(weights_digest(self.model))
        return real_save(self, epochs_done, **kwargs)

    monkeypatch.setattr(callbacks.BestCheckpoint, "on_epoch_end", end)
    monkeypatch.setattr(callbacks.Recorder, "save", save)
    result = runner.invoke(app, ["train", str(spec), "--out", str(run)])
    assert result.exit_code == 130, result.output
    monkeypatch.setattr(callbacks.Recorder, "save", real_save)
    sign["now"] = 1
    from cnnspec.training.trainer import train

    train(compile_spec(spec), resume=run)  # (the trainer the pasted command runs, without its page)
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["best_epoch"] == 1 and metrics["weights_sha256"] == epoch_one[0]
    assert sorted(path.name for path in (run / "checkpoints").iterdir()) == ["best.keras"]


def test_lock_json_records_a_schedule_s_warmup_and_an_older_lock_without_it_resumes(tmp_path, monkeypatch):
    """Each phase's learning_rate in lock.json is the schedule as the spec writes it,
    warmup_steps included. A resume compares the spec (its hash, resolved.yaml), not that
    record: a run whose lock was written without warmup_steps (older cnnspec) resumes. (And a
    run that crashed while writing its results, after all its epochs, resumes without training
    any again and writes them.)"""
    from cnnspec.training.trainer import train

    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "cnnspec: 1\nname: warm\n" + FLAT_DIGITS_MODEL + "training:\n  batch_size: 32\n  seed: 7\n"
        "  optimizer: {adam: {learning_rate: {cosine_decay: "
        "{initial_learning_rate: 0.01, warmup_steps: 3, alpha: 0.1}}}}\n"
        "  phases:\n    - {epochs: 1}\n"
        "    - {epochs: 1, learning_rate: {exponential_decay: "
        "{initial_learning_rate: 0.001, decay_steps: 5, decay_rate: 0.5, warmup_steps: 2}}}\n"
    )

    stopped_writing_results(monkeypatch, spec, tmp_path / "run")
    assert not (tmp_path / "run" / "metrics.json").exists()
    path = tmp_path / "run" / "lock.json"
    lock = json.loads(path.read_text(encoding="utf-8"))
    assert [phase["learning_rate"] for phase in lock["phases"]] == [
        {"cosine_decay": {"initial_learning_rate": 0.01, "alpha": 0.1, "warmup_steps": 3}},
        {
            "exponential_decay": {
                "initial_learning_rate": 0.001,
                "decay_steps": 5,
                "decay_rate": 0.5,
                "warmup_steps": 2,
            }
        },
    ]
    for phase in lock["phases"]:  # as an older cnnspec wrote it
        next(iter(phase["learning_rate"].values())).pop("warmup_steps")
    path.write_text(json.dumps(lock), encoding="utf-8")
    result = train(compile_spec(spec), resume=tmp_path / "run")  # no epoch is trained again
    assert result.resumed_from == 2 and [row["epoch"] for row in result.history] == [1, 2]
    assert (tmp_path / "run" / "confusion_matrix.png").is_file()
