"""A transfer run killed before its first snapshot, then resumed: it starts again from epoch 1,
and from the weights a new run would start from (``--weights``, recorded in lock.json, and the
spec's own ``weights:``), not from random ones; a source gone by then refuses the resume.

A kill in the first epoch leaves the run folder with spec.yaml, resolved.yaml and lock.json (and
perhaps transfer.json): the slow tests start a tiny run for real, stop it (a Ctrl-C) once its
transfer.json is written, before its first epoch (what they read of the run is written by then;
training it would add nothing), and take the rest away."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cnnspec.api import compile_spec
from cnnspec.cli.app import app
from cnnspec.errors import UsageError
from cnnspec.fileio import sha256_file

# The source: a model whose stem (and batch norm) fit the target's; its head has 3 classes.
BASE = """\
cnnspec: 1
name: tinybase
input: {shape: [8, 8, 1]}
model:
  - conv2d: {filters: 4, kernel_size: 3, padding: same}
    id: stem
  - batch_norm
  - activation: relu
  - global_avg_pool2d
  - dense: {units: 3, activation: softmax}
"""

# The target: the same stem, frozen for its one epoch, and a new 10-class head.
TARGET = """\
cnnspec: 1
name: target
input: {shape: [8, 8, 1]}
model:
  - conv2d: {filters: 4, kernel_size: 3, padding: same}
    id: stem
  - batch_norm
  - activation: relu
  - global_avg_pool2d
  - dense: {units: 10, activation: softmax}
data: {source: digits, limit: 64}
training:
  batch_size: 32
  seed: 3
  phases:
    - {epochs: 1, freeze: [stem], learning_rate: 0.01}
"""

#: What a kill before the first snapshot leaves of a run (and the lock files of cnnspec's own).
KEPT = {"lock.json", "spec.yaml", "resolved.yaml"}


def _source(folder: Path) -> tuple[Path, list[np.ndarray]]:
    """Save the weights of BASE's model in ``folder``; returns the file and its stem's weights."""
    from cnnspec.api import build_model

    model = build_model(compile_spec(_write(folder / "base.yaml", BASE)))
    target = folder / "base.weights.h5"
    model.save_weights(str(target))
    return target, model.get_layer("stem").get_weights()


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _started(runner: Any, args: list[str], run: Path) -> Any:
    """``cnnspec train ARGS`` into ``run``, stopped by a Ctrl-C once transfer.json (the weights
    it loaded) is in place, before its first epoch: exit 130, resumable."""
    from tests.test_train_resume import _stop_once_written

    with pytest.MonkeyPatch.context() as patch:
        stopped = _stop_once_written(patch, run, "transfer.json")
        started = runner.invoke(app, ["train", *args, "--out", str(run)])
    assert started.exit_code == 130 and stopped == ["transfer.json"], started.output
    assert "starts again from epoch 1" in " ".join(started.output.split())
    return started


def _as_killed(run: Path) -> None:
    """Leave ``run`` as a kill in its first epoch does: no snapshot, no results (nor
    transfer.json here: the kill came before it was written)."""
    for path in run.iterdir():
        if path.name in KEPT or path.name.startswith("."):
            continue
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()


def _stem(run: Path) -> list[np.ndarray]:
    import keras

    return keras.saving.load_model(str(run / "model.keras")).get_layer("stem").get_weights()


def _assert_same(ours: list[np.ndarray], theirs: list[np.ndarray]) -> None:
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.slow
def test_a_run_killed_before_its_first_snapshot_restarts_from_its_weights(tmp_path, runner, monkeypatch):
    source, stem = _source(tmp_path)
    spec = _write(tmp_path / "target.yaml", TARGET)
    run = tmp_path / "run"
    monkeypatch.chdir(tmp_path)  # --weights relative to the working directory
    _started(runner, [str(spec), "--weights", "base.weights.h5"], run)
    lock = json.loads((run / "lock.json").read_text())
    assert lock["weights"] == {
        "from": "base.weights.h5",
        "kind": "weights_h5",
        "file": str(source),
        "strict": False,
        "sha256": sha256_file(source),
    }
    report = json.loads((run / "transfer.json").read_text())
    assert (report["loaded"], report["total"]) == (6, 8)
    _as_killed(run)
    gone = tmp_path / "gone"
    shutil.copytree(run, gone)

    monkeypatch.chdir(tmp_path / "run")  # resumed from elsewhere: the recorded path is absolute
    # (without its page: nothing here reads it)
    resumed = runner.invoke(app, ["train", str(spec), "--no-report", "--resume", str(run)])
    assert resumed.exit_code == 0, resumed.output
    text = " ".join(resumed.output.split())
    assert "no training state was saved in this run yet: it starts again from epoch 1" in text
    assert f"loaded 6 of 8 weight tensors from {source}" in text
    _assert_same(_stem(run), stem)  # frozen for the whole run: still the source's
    assert json.loads((run / "transfer.json").read_text()) == report

    source.unlink()  # the source is gone by the time the other copy is resumed
    refused = runner.invoke(app, ["train", str(spec), "--resume", str(gone)])
    assert refused.exit_code == 2, refused.output
    text = " ".join(refused.output.split())
    assert f"started from --weights base.weights.h5 ({source}), which is gone" in text
    assert "start a new run" in text and "Traceback" not in text
    assert sorted(p.name for p in gone.iterdir() if not p.name.startswith(".")) == sorted(KEPT)


@pytest.mark.slow
def test_the_specs_own_weights_are_loaded_again_and_a_missing_one_is_located(tmp_path, runner):
    source, stem = _source(tmp_path)
    spec = _write(tmp_path / "target.yaml", TARGET + "weights: base.weights.h5\n")
    run = tmp_path / "run"
    _started(runner, [str(spec)], run)
    lock = json.loads((run / "lock.json").read_text())
    assert lock["weights"] is None  # no --weights
    digest = sha256_file(source)  # which bytes the run started from, in both files
    assert lock["weights_files"] == [
        {"scope": "", "source": str(source), "file": str(source), "sha256": digest}
    ]
    report = json.loads((run / "transfer.json").read_text())
    assert (report["file"], report["sha256"]) == (str(source), digest)
    _as_killed(run)

    kept = source.read_bytes()
    source.unlink()
    refused = runner.invoke(app, ["train", str(spec), "--resume", str(run)])
    assert refused.exit_code != 0
    text = " ".join(refused.output.split())
    assert f"target.yaml:{TARGET.count(chr(10)) + 1}:" in text  # located at `weights:`
    assert f"no such weights file: {source}" in text
    assert "start a new run" in text and "Traceback" not in text

    source.write_bytes(kept)
    _other_weights(source)  # a file of the same layers, other values: it would load quietly
    changed = runner.invoke(app, ["train", str(spec), "--resume", str(run)])
    assert changed.exit_code == 2, changed.output
    text = " ".join(changed.output.split())
    assert f"expected the same weights file {source} as the run in {run} started from" in text
    assert "content hash changed" in text and f"put the file the run started from back at {source}" in text
    assert sorted(p.name for p in run.iterdir() if not p.name.startswith(".")) == sorted(KEPT)

    source.write_bytes(kept)
    from cnnspec.training.trainer import train

    train(compile_spec(spec), resume=run)  # (the trainer the pasted command runs, without its page)
    _assert_same(_stem(run), stem)
    assert json.loads((run / "transfer.json").read_text()) == report


def _other_weights(file: Path) -> None:
    """Change one value of the stem's kernel in the .weights.h5 ``file``, in place."""
    import h5py

    with h5py.File(file, "r+") as handle:
        kernels = []
        handle.visititems(lambda name, item: kernels.append(item) if name.endswith("vars/0") else None)
        kernels[0][(0,) * kernels[0].ndim] += 1.0


def test_an_older_lock_that_does_not_record_weights_is_refused_only_if_it_had_them(tmp_path):
    from cnnspec.training.transfer_loads import plan_for_restart

    compiled = compile_spec(_write(tmp_path / "target.yaml", TARGET))
    older = {"seed": 3, "command": ["cnnspec", "train", "target.yaml", "--weights", "pre"]}
    with pytest.raises(UsageError, match="does not record the source") as caught:
        plan_for_restart(compiled, older, tmp_path / "run")
    assert "start a new run" in (caught.value.hint or "")
    assert (
        plan_for_restart(compiled, {"seed": 3, "command": ["cnnspec", "train", "target.yaml"]}, tmp_path)
        == []
    )
    damaged = {"seed": 3, "weights": "base.weights.h5"}  # not what cnnspec writes there
    with pytest.raises(UsageError, match="as cnnspec records it"):
        plan_for_restart(compiled, damaged, tmp_path / "run")
