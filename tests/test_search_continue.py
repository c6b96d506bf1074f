"""A stopped trial's retry continues its training from the stopped trial's last snapshot.

Before: the same command trained the stopped trial's values again from epoch 1 under the next
number, losing every epoch it had done. A real (tiny) training is stopped by a SIGINT right
after its second epoch's snapshot, as a Ctrl-C in the middle of the third epoch would."""

from __future__ import annotations

import json
import os
import shutil
import signal
from pathlib import Path
from typing import Any

import pytest

optuna = pytest.importorskip("optuna")
pytestmark = pytest.mark.slow  # every test trains (TensorFlow)

#: A flatten, the searched dropout and a dense layer: the tiniest model that trains (a convolution
#: only made each of the trainings here trace a larger graph).
SPEC = """\
cnnspec: 1
name: tiny_continue
input: {shape: [8, 8, 1]}
model:
  - flatten
  - {id: drop, dropout: 0.1}
  - dense: {units: 10, activation: softmax}
data: {source: digits, limit: 128}
training: {epochs: 3, batch_size: 32, seed: 1}
search:
  trials: 1
  seed: 3
  pruner: median
  space:
    drop.rate: {float: [0.0, 0.5]}
"""


def _stop_after_epoch(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """While ``["epoch"]`` is set, a SIGINT to this process once that epoch's snapshot is saved
    (the training stops at its next batch, as after a Ctrl-C)."""
    from cnnspec.training.state import TrainingState

    real = TrainingState.save
    when: dict[str, Any] = {"epoch": 2}

    def save(self: Any, model: Any, epoch: int, *args: Any, **kwargs: Any) -> Any:
        snapshot = real(self, model, epoch, *args, **kwargs)
        if epoch == when["epoch"]:
            when["epoch"] = None
            os.kill(os.getpid(), signal.SIGINT)
        return snapshot

    monkeypatch.setattr(TrainingState, "save", save)
    return when


def _write_data(data: Path, shift: int = 0) -> None:
    """Random 8x8 images as an npz file (``shift`` 0); ``shift`` levels brighter training images
    than the file holds (another content, the same shapes)."""
    import numpy as np

    x = (
        np.random.default_rng(0).integers(0, 256, (160, 8, 8, 1), dtype=np.uint8)
        if shift == 0
        else np.load(data)["x_train"]
    )
    y = np.arange(160) % 10
    np.savez(data, x_train=(x + shift).astype(np.uint8), y_train=y, x_test=x[:40], y_test=y[:40])


@pytest.fixture(scope="module")
def stopped_once(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with SPEC on the images of data.npz (spec.yaml) and the --out of its search
    stopped after epoch 2 (out/, kept as it was in pristine/, and data.npz in pristine.npz): the
    stopped search the tests that continue it share (each trained it again, the same search,
    before). Nothing of it stays in this process (no open storage): each test continues a copy
    put back at the same path (:func:`_stopped_search`)."""
    from typer.testing import CliRunner

    folder = tmp_path_factory.mktemp("stopped")
    data = folder / "data.npz"
    _write_data(data)
    spec = folder / "spec.yaml"
    spec.write_text(
        SPEC.replace("data: {source: digits, limit: 128}", f"data: {{source: {{npz: {data}}}}}"),
        encoding="utf-8",
    )
    with pytest.MonkeyPatch.context() as monkeypatch:
        _stop_after_epoch(monkeypatch)
        stopped = _search(CliRunner(), spec, folder / "out")
    assert stopped.exit_code == 130, stopped.output
    shutil.copytree(folder / "out", folder / "pristine", symlinks=True)
    shutil.copy2(data, folder / "pristine.npz")
    return folder


#: The tests of :func:`stopped_once` run on one xdist worker, which makes it once (on two, each
#: made its own).
STOPPED_ONCE = pytest.mark.xdist_group("search_stopped_once")


def _stopped_search(folder: Path) -> tuple[Path, Path]:
    """The spec and the --out of the shared stopped search (:func:`stopped_once`), the --out and
    the data as they were when the search stopped, at the paths they were made in (the study, its
    trials' run folders and data.npz are as a stopped search leaves them, whatever an earlier test
    did with them)."""
    out = folder / "out"
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(folder / "pristine", out, symlinks=True)
    shutil.copy2(folder / "pristine.npz", folder / "data.npz")
    return folder / "spec.yaml", out


def _search(runner: Any, spec: Path, out: Path) -> Any:
    from cnnspec.cli.app import app

    # (its trials without their pages: no test here reads one, and each was a second and a half)
    return runner.invoke(app, ["search", str(spec), "--no-report", "--out", str(out)])


def _study(out: Path) -> Any:
    from cnnspec.search.study import open_storage

    return optuna.load_study(study_name="tiny_continue", storage=open_storage(None, out))


@STOPPED_ONCE
def test_a_stopped_trial_continues_from_its_last_snapshot(runner, stopped_once):
    spec, out = _stopped_search(stopped_once)  # (the search exited 130, stopped)
    first = _study(out).get_trials()[0]
    assert first.user_attrs.get("stopped") and sorted(first.intermediate_values) == [1, 2]
    assert (out / "trial-000" / "state").is_dir()
    # the note of a trial from a weights run's that its training counted as it started (lock.json's
    # test_note): its continuation records it as an uninterrupted trial does, not counted again
    note = "12 of this run's 128 test images are images weights: runs/base trained or validated on (…)"
    lock = json.loads((out / "trial-000" / "lock.json").read_text())
    (out / "trial-000" / "lock.json").write_text(json.dumps({**lock, "test_note": note}))

    again = _search(runner, spec, out)
    assert again.exit_code == 0, again.output
    assert "continued trial 0 after epoch 2" in " ".join(again.output.split())
    trials = _study(out).get_trials()
    retry = trials[1]
    assert retry.state.name == "COMPLETE" and retry.params == first.params
    assert retry.user_attrs["continues"] == {"trial": 0, "epoch": 2}
    # the pruner sees the whole curve: the stopped trial's two epochs, then the third
    assert sorted(retry.intermediate_values) == [1, 2, 3]
    assert {s: retry.intermediate_values[s] for s in (1, 2)} == first.intermediate_values
    metrics = json.loads((out / "trial-001" / "metrics.json").read_text())
    assert metrics["resumed_from_epoch"] == 2 and metrics["epochs_run"] == 3  # (one epoch trained)
    record = json.loads((out / "trial-001" / "trial.json").read_text())
    assert record["continues"] == {"trial": 0, "epoch": 2} and record["epochs"] == 3
    row = json.loads((out / "search.json").read_text())["trials"][1]
    assert row["continues"] == {"trial": 0, "epoch": 2}
    assert retry.user_attrs["test_note"] == row["test_note"] == note and "seed_from" not in row
    # the stopped trial's folder keeps its record and its spec's texts: its run went on in trial-001
    assert sorted(os.listdir(out / "trial-000")) == ["resolved.yaml", "spec.yaml", "trial.json"]
    stopped_record = json.loads((out / "trial-000" / "trial.json").read_text())
    assert stopped_record["state"] == "STOPPED"
    assert stopped_record["continued_by"] == 1 and stopped_record["continued_in"] == "trial-001"
    assert json.loads((out / "search.json").read_text())["trials"][0]["continued_by"] == 1


@STOPPED_ONCE
def test_a_stopped_trial_of_another_spec_has_nothing_to_continue(stopped_once):
    """Its lock.json's spec hash is not the retry's: no continuation, and why (a retry given a
    reason trains from the start: the damaged snapshots' test below, end to end)."""
    from cnnspec.search import continuing

    _, out = _stopped_search(stopped_once)
    first = _study(out).get_trials()[0]
    values = first.user_attrs.get("values")
    spec_hash = json.loads((out / "trial-000" / "lock.json").read_text())["spec_hash"]
    found = continuing.find_continuation(out, first, values, spec_hash)
    assert isinstance(found, continuing.Continuation) and found.epoch == 2  # (the same spec: it does)
    why = continuing.find_continuation(out, first, values, "0" * 64)
    assert why == f"trial 0's run folder {out / 'trial-000'} holds another spec (its spec hash differs)"


@STOPPED_ONCE
def test_a_stopped_trial_with_nothing_to_continue_trains_from_the_start(runner, stopped_once):
    spec, out = _stopped_search(stopped_once)  # (the search exited 130, stopped)
    folder = out / "trial-000"
    for weights in (folder / "state").glob("*.weights.h5"):
        weights.write_bytes(b"not hdf5")
    why = "the snapshots in"
    again = _search(runner, spec, out)
    assert again.exit_code == 0, again.output
    retry = _study(out).get_trials()[1]
    assert retry.state.name == "COMPLETE" and "continues" not in retry.user_attrs
    assert (
        retry.user_attrs["restarted"].startswith("trained from the start: ")
        and why in retry.user_attrs["restarted"]
    )
    metrics = json.loads((out / "trial-001" / "metrics.json").read_text())
    assert metrics["resumed_from_epoch"] is None and metrics["epochs_run"] == 3
    assert (
        json.loads((out / "trial-001" / "trial.json").read_text())["restarted"]
        == retry.user_attrs["restarted"]
    )
    assert (folder / "state").is_dir()  # (left where it was)


@STOPPED_ONCE
def test_a_stopped_trial_whose_data_changed_since_trains_from_the_start(runner, stopped_once):
    """The training refuses to resume a run on other data; the retry had failed with that
    refusal ("expected the same data as the run"). Its run goes back to the stopped trial's
    folder, and the retry trains from the start, saying why; the pruner sees its own epochs."""
    spec, out = _stopped_search(stopped_once)  # (the search exited 130, stopped)
    first = _study(out).get_trials()[0]
    _write_data(stopped_once / "data.npz", 1)  # (every training image one level brighter)
    again = _search(runner, spec, out)
    assert again.exit_code == 0, again.output
    retry = _study(out).get_trials()[1]
    assert retry.state.name == "COMPLETE" and "continues" not in retry.user_attrs
    assert retry.user_attrs["restarted"] == (
        "trained from the start: the data changed since trial 0 was stopped (its content hash differs)"
    )
    assert sorted(retry.intermediate_values) == [1, 2, 3]
    # its own epochs, none reported from the stopped trial's run (the pruner's objective)
    columns = json.loads((out / "trial-001" / "history.json").read_text())
    assert [retry.intermediate_values[step] for step in (1, 2, 3)] == columns["val_accuracy"]
    assert sorted(first.intermediate_values) == [1, 2]
    metrics = json.loads((out / "trial-001" / "metrics.json").read_text())
    assert metrics["resumed_from_epoch"] is None and metrics["epochs_run"] == 3
    # the stopped trial's run is back in its folder, its record naming no retry
    assert (out / "trial-000" / "state").is_dir() and (out / "trial-000" / "lock.json").is_file()
    record = json.loads((out / "trial-000" / "trial.json").read_text())
    assert record["state"] == "STOPPED" and "continued_by" not in record


#: ``cnnspec search SPEC --out OUT`` whose process dies (SIGKILL: no clean-up, as the OOM killer
#: ends it) right after the snapshot of the training's second epoch is saved.
KILLED_AFTER_EPOCH_2 = """
import os, signal, sys
from cnnspec.training.state import TrainingState
real = TrainingState.save
def save(self, model, epoch, *args, **kwargs):
    snapshot = real(self, model, epoch, *args, **kwargs)
    if epoch == 2:
        os.kill(os.getpid(), signal.SIGKILL)
    return snapshot
TrainingState.save = save
from cnnspec.cli.app import app
app(["search", "--no-report", *sys.argv[1:]])
"""


def test_a_killed_workers_trial_continues_from_its_last_snapshot(runner, write_spec, tmp_path):
    """A worker killed in its trial's third epoch: the same command failed the trial ("worker
    died") and trained its values again from epoch 1. Its retry continues from the snapshot,
    as a stopped trial's does."""
    from tests.conftest import run_python

    spec, out = write_spec(SPEC), tmp_path / "out"
    script = tmp_path / "killed.py"
    script.write_text(KILLED_AFTER_EPOCH_2, encoding="utf-8")
    killed = run_python(script, str(spec), "--out", str(out))
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert (out / "trial-000" / "state").is_dir()
    again = _search(runner, spec, out)
    assert again.exit_code == 0, again.output
    assert "continued trial 0 after epoch 2" in " ".join(again.output.split())
    first, retry = _study(out).get_trials()
    assert first.user_attrs["failed"] == "worker died"
    assert set(first.intermediate_values) <= {1, 2}  # (killed as epoch 2 was saved: maybe before its report)
    assert retry.state.name == "COMPLETE" and retry.params == first.params
    assert retry.user_attrs["continues"] == {"trial": 0, "epoch": 2}
    assert sorted(retry.intermediate_values) == [1, 2, 3]
    metrics = json.loads((out / "trial-001" / "metrics.json").read_text())
    assert metrics["resumed_from_epoch"] == 2 and metrics["epochs_run"] == 3
    record = json.loads((out / "trial-000" / "trial.json").read_text())
    assert record["failed"] == "worker died" and record["continued_by"] == 1
