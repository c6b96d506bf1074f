"""Crash-safe training state (``cnnspec/training/state.py``) without TensorFlow: snapshots are
written and read back with a stand-in model whose weights are a few bytes."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from cnnspec.errors import UsageError
from cnnspec.training.state import KEEP, STATE_DIR, TrainingState


class FakeModel:
    """Saves and loads its ``weights`` bytes where Keras would write an .h5 file."""

    optimizer = None

    def __init__(self, weights: bytes = b"w0") -> None:
        self.weights = weights
        self.loaded: bytes | None = None

    def save_weights(self, path: str) -> None:
        Path(path).write_bytes(self.weights)

    def load_weights(self, path: str) -> None:
        data = Path(path).read_bytes()
        if not data.startswith(b"w"):
            raise OSError("not a weights file")
        self.loaded = data


def _save(state: TrainingState, epoch: int, **kw):
    history = [{"epoch": e, "loss": 1.0 / e} for e in range(1, epoch + 1)]
    return state.save(FakeModel(f"w{epoch}".encode()), epoch, history, {}, **kw)


def test_a_snapshot_round_trips_history_callbacks_and_arrays(tmp_path):
    state = TrainingState(tmp_path)
    history = [{"epoch": 1, "loss": 0.5, "val_loss": math.inf}, {"epoch": 2, "loss": math.nan}]
    callbacks = {"early_stopping": {"wait": 1, "best": -math.inf, "best_epoch": 0}}
    arrays = {"early_stopping_best_weights": [np.arange(3.0), np.ones((2, 2))]}
    state.save(FakeModel(b"w-two"), 2, history, callbacks, arrays, stopped_early=True)

    model = FakeModel()
    restored = state.restore(model, notes := [])
    assert restored is not None and not notes
    snapshot, got = restored
    assert model.loaded == b"w-two"
    assert snapshot.epoch == 2 and snapshot.stopped_early and not snapshot.complete
    assert snapshot.history[0] == {"epoch": 1, "loss": 0.5, "val_loss": math.inf}
    assert math.isnan(snapshot.history[1]["loss"])
    assert snapshot.callbacks == callbacks
    assert [a.tolist() for a in got["early_stopping_best_weights"]] == [[0.0, 1.0, 2.0], [[1, 1], [1, 1]]]


def test_the_manifest_is_plain_json_with_the_hash_of_every_file(tmp_path):
    snapshot = TrainingState(tmp_path).save(FakeModel(), 1, [{"loss": math.inf}], {}, {"a": [np.zeros(2)]})
    manifest = json.loads(snapshot.manifest.read_text())  # infinities are stored as strings
    assert manifest["history"] == [{"loss": "inf"}]
    assert set(manifest["files"]) == {"epoch-0001.weights.h5", "epoch-0001.arrays.npz"}


def test_only_the_newest_snapshots_are_kept(tmp_path):
    state = TrainingState(tmp_path)
    for epoch in range(1, 5):
        _save(state, epoch)
    assert [s.epoch for s in state.snapshots()] == list(range(4, 4 - KEEP, -1))
    names = sorted(p.name for p in (tmp_path / STATE_DIR).iterdir())
    assert names == ["epoch-0003.json", "epoch-0003.weights.h5", "epoch-0004.json", "epoch-0004.weights.h5"]


def test_the_final_snapshot_counts_as_newer_than_its_epoch(tmp_path):
    state = TrainingState(tmp_path)
    _save(state, 3)
    _save(state, 3, complete=True)
    newest = state.snapshots()[0]
    assert newest.complete and newest.manifest.name == "epoch-0003-final.json"


def test_a_damaged_newest_snapshot_falls_back_to_the_previous_one(tmp_path):
    state = TrainingState(tmp_path)
    _save(state, 1)
    newest = _save(state, 2)
    newest.weights.write_bytes(b"w-truncated")  # still loadable bytes, but not what was hashed
    model, notes = FakeModel(), []
    snapshot, _ = state.restore(model, notes)
    assert snapshot.epoch == 1 and model.loaded == b"w1"
    assert notes == [
        "snapshot after epoch 2 epoch-0002.weights.h5 is damaged (checksum mismatch); trying an older one"
    ]


def test_a_snapshot_that_fails_to_load_falls_back_too(tmp_path):
    state = TrainingState(tmp_path)
    _save(state, 1)
    state.save(FakeModel(b"xx"), 2, [], {})  # hashes match, but the model cannot read it
    model, notes = FakeModel(), []
    snapshot, _ = state.restore(model, notes)
    assert snapshot.epoch == 1 and "cannot be loaded (OSError" in notes[0]


def test_an_unreadable_manifest_is_skipped_with_a_note(tmp_path):
    state = TrainingState(tmp_path)
    _save(state, 1)
    _save(state, 2).manifest.write_text("{not json")
    notes: list[str] = []
    assert [s.epoch for s in state.snapshots(notes)] == [1]
    assert notes == ["skipped damaged state file epoch-0002.json (JSONDecodeError)"]


def test_no_state_at_all_is_a_fresh_start(tmp_path):
    assert TrainingState(tmp_path).restore(FakeModel(), []) is None


def test_state_with_no_usable_snapshot_is_a_clear_error(tmp_path):
    state = TrainingState(tmp_path)
    _save(state, 1).weights.unlink()
    with pytest.raises(UsageError, match="1 snapshot\\(s\\), all damaged"):
        state.restore(FakeModel(), [])
    (tmp_path / STATE_DIR / "epoch-0001.json").unlink()
    (tmp_path / STATE_DIR / "junk").write_text("x")
    with pytest.raises(UsageError, match="every snapshot is damaged or incomplete"):
        state.restore(FakeModel(), [])


def test_saving_removes_leftovers_of_a_killed_save(tmp_path):
    state = TrainingState(tmp_path)
    folder = tmp_path / STATE_DIR
    folder.mkdir()
    (folder / "epoch-0005.weights.h5").write_bytes(b"w5")  # its manifest was never written
    (folder / ".epoch-0006.weights.h5.abc.h5").write_bytes(b"partial")  # a temp file
    _save(state, 1)
    assert sorted(p.name for p in folder.iterdir()) == ["epoch-0001.json", "epoch-0001.weights.h5"]


def test_clear_removes_the_state_folder(tmp_path):
    state = TrainingState(tmp_path)
    _save(state, 1)
    state.clear()
    assert not (tmp_path / STATE_DIR).exists() and state.snapshots() == []


def test_a_first_snapshot_that_was_never_finished_is_a_fresh_start(tmp_path):
    """Its weights were written, its manifest never (a kill, a full disk): nothing to resume
    from, and nothing damaged either; anything else in state/ still refuses."""
    folder = tmp_path / STATE_DIR
    folder.mkdir()
    (folder / "epoch-0001.weights.h5").write_bytes(b"w1")
    (folder / "epoch-0001.arrays.npz").write_bytes(b"a1")
    (folder / ".epoch-0001.json.abcd1234.json").write_bytes(b"{half")
    assert TrainingState(tmp_path).restore(FakeModel(), notes := []) is None
    assert notes == ["ignored 3 file(s) of a snapshot that was never finished"]
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(UsageError, match="every snapshot is damaged or incomplete"):
        TrainingState(tmp_path).restore(FakeModel(), [])


def test_a_manifest_whose_epoch_is_not_its_files_is_skipped_with_a_note(tmp_path):
    """Edited to epoch 999, it was resumed "after epoch 999" and the run finished there."""
    import json

    state = TrainingState(tmp_path)
    _save(state, 1)
    manifest = _save(state, 2).manifest
    manifest.write_text(json.dumps({**json.loads(manifest.read_text()), "epoch": 999}))
    notes: list[str] = []
    assert [s.epoch for s in state.snapshots(notes)] == [1]
    assert notes == [
        "skipped damaged state file epoch-0002.json (it says epoch 999, with 2 epochs of history)"
    ]
