"""Phases and the callbacks that outlive an epoch, where an audit found a resumed run apart from
the uninterrupted one (or the run apart from what the README promises):

1. model_checkpoint's best carries across phases; a run resumed at a phase boundary forgot it,
   and a worse epoch of the next phase overwrote best.keras.
2. early_stopping with ``restore_best_weights`` puts the best weights back at the end of every
   phase's fit, so the next phase starts from them; a run resumed at the boundary started from
   the phase's last epoch instead (the snapshot is written before that fit's end).
3. early stopping that fires on a phase's last epoch ends the whole run (as it does on any other
   epoch), in ``cnnspec train`` and in the ``codegen --script`` script alike.
4. lock.json's ``--weights`` record holds the source file's SHA-256: a run killed before its first
   snapshot is refused a resume once the file holds other weights.

The interrupted run is the uninterrupted one's folder, copied by a callback after the Recorder
once the epoch's snapshot is saved, as in tests/test_resume_exact.py: what a SIGKILL there
leaves. The callbacks' settings make each case hold by construction
(a ``min_delta`` no epoch can beat keeps the first epoch the best), not by the data's luck.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from cnnspec.api import compile_text
from cnnspec.errors import UsageError
from cnnspec.fileio import sha256_file

SPEC = """\
cnnspec: 1
name: ph
input: {shape: [8, 8, 1]}
model:
  - conv2d: {filters: 4, kernel_size: 3, padding: same}
    id: c1
  - batch_norm: {}
    id: bn
  - activation: relu
  - flatten
  - dropout: 0.3
  - dense: {units: 10, activation: softmax}
    id: head
augmentation:
  - random_translation: {height_factor: 0.1, width_factor: 0.1, fill_mode: constant}
data: {source: digits, limit: 400, validation_split: 0.2}
training:
  batch_size: 64
  seed: 3
  callbacks:
    - CALLBACK
  optimizer: {adam: {learning_rate: 0.01}}
  phases:
    - {epochs: 2, freeze: [c1, bn]}
    - {epochs: 2, unfreeze: ["*"], learning_rate: SECOND_RATE}
"""

#: Phase 2 trains at a rate that wrecks the model: every epoch of it is worse than phase 1's best.
CHECKPOINT = "model_checkpoint: {monitor: val_loss, save_best_only: true}"
#: No epoch beats the first by 10 (a loss): epoch 1 stays the best, its weights are restored.
RESTORE = "early_stopping: {monitor: val_loss, min_delta: 10, patience: 5, restore_best_weights: true}"
#: No epoch beats the first by 10: patience 1 stops the run after epoch 2, phase 1's last.
STOP = "early_stopping: {monitor: val_loss, min_delta: 10, patience: 1}"


def spec_text(*callbacks: str, second_rate: float = 0.001) -> str:
    """The spec with ``callbacks`` (the items of ``training.callbacks``) and phase 2's rate."""
    return SPEC.replace("CALLBACK", "\n    - ".join(callbacks)).replace("SECOND_RATE", repr(second_rate))


def untimed(history: list[dict[str, float]]) -> list[dict[str, float]]:
    """The history without its wall-clock column (the only one that may differ)."""
    return [{key: value for key, value in row.items() if key != "seconds"} for row in history]


def whole_and_resumed(text: str, tmp_path: Path, epochs: int = 2) -> tuple[Any, Any]:
    """The uninterrupted run of ``text``, and the run interrupted after ``epochs`` epochs (the
    phase boundary) and resumed to its end. The interrupted run is the uninterrupted one's folder
    copied once epoch ``epochs``'s snapshot is saved (what a SIGKILL there leaves: its epochs so
    far are the same epochs), which saves training them a second time."""
    from cnnspec.training.trainer import train
    from tests.test_resume_exact import copied_after

    compiled = compile_text(text, str(tmp_path / "spec.yaml"))
    whole = train(
        compiled,
        out=tmp_path / "whole",
        callbacks=[copied_after(epochs, tmp_path / "whole", tmp_path / "resumed")],
    )
    return whole, train(compiled, resume=tmp_path / "resumed")


def assert_same_run(whole: Any, resumed: Any) -> None:
    assert untimed(resumed.history) == untimed(whole.history)
    for key in ("best_epoch", "weights_from", "stopped_early", "epochs_run", "weights_sha256"):
        assert resumed.metrics[key] == whole.metrics[key], key


@pytest.fixture(scope="module")
def boundary_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Any]:
    """``whole_and_resumed`` of the spec with both CHECKPOINT and RESTORE (phase 2 at the rate
    that wrecks the model), trained once for the two tests of 1. and 2.: each case is at stake in
    it. model_checkpoint's best.keras is loaded after fit, over what early stopping restored, so
    the model and ``best_epoch`` are best.keras's (a resume that forgot its best would take
    epoch 3's); early stopping's restore still decides where phase 2 starts, which only its
    epochs 3-4 show (a resume from epoch 2's weights trains other epochs 3-4)."""
    return whole_and_resumed(
        spec_text(CHECKPOINT, RESTORE, second_rate=5.0), tmp_path_factory.mktemp("boundary")
    )


@pytest.mark.slow
@pytest.mark.xdist_group("phases_audit3_boundary")  # one worker: boundary_runs trains once
def test_model_checkpoints_best_survives_a_resume_at_a_phase_boundary(boundary_runs: tuple[Any, Any]) -> None:
    whole, resumed = boundary_runs
    assert whole.metrics["best_epoch"] in (1, 2)  # phase 2 never beats phase 1 (the case at stake)
    assert whole.metrics["weights_from"].endswith("(restored from model_checkpoint's best.keras)")
    assert resumed.resumed_from == 2
    assert_same_run(whole, resumed)
    # the model is best.keras's, the best epoch of phase 1, in both
    assert resumed.metrics["test_accuracy"] == whole.metrics["test_accuracy"]


@pytest.mark.slow
@pytest.mark.xdist_group("phases_audit3_boundary")
def test_a_resume_at_a_phase_boundary_starts_from_the_weights_early_stopping_restored(
    boundary_runs: tuple[Any, Any],
) -> None:
    whole, resumed = boundary_runs
    assert [row["phase"] for row in whole.history] == [1, 1, 2, 2]
    assert not whole.metrics["stopped_early"]
    assert resumed.resumed_from == 2
    assert_same_run(whole, resumed)  # phase 2 from epoch 1's weights in both: the same epochs 3-4


@pytest.fixture(scope="module")
def stopped_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Any]:
    """``whole_and_resumed`` of the STOP spec, trained once for the two tests that read it (the
    uninterrupted run is the `cnnspec train` run the generated script is held to); neither
    changes the run folders."""
    return whole_and_resumed(spec_text(STOP), tmp_path_factory.mktemp("stopped"))


@pytest.mark.slow
@pytest.mark.xdist_group("phases_audit3_stopped")  # one worker: stopped_runs trains once
def test_early_stopping_on_a_phases_last_epoch_ends_the_run(stopped_runs: tuple[Any, Any]) -> None:
    """It stops the run there, says so in metrics.json, and a kill right after that epoch's
    snapshot resumes to the very same result."""
    whole, resumed = stopped_runs
    assert [row["epoch"] for row in whole.history] == [1, 2]  # phase 2 never starts
    assert whole.metrics["stopped_early"] is True
    assert whole.metrics["epochs_run"] == 2 and whole.metrics["epochs_planned"] == 4
    assert resumed.resumed_from == 2
    assert_same_run(whole, resumed)


@pytest.mark.slow
@pytest.mark.xdist_group("phases_audit3_stopped")
def test_the_generated_script_ends_the_run_where_train_does(
    tmp_path: Path, stopped_runs: tuple[Any, Any]
) -> None:
    """The script's phase loop stops on early stopping at a phase's last epoch too, with the
    history of `cnnspec train` (its uninterrupted run of the same spec, from stopped_runs)."""
    from tests.conftest import run_script
    from tests.test_script_parity_audit import write_script

    ours, _ = stopped_runs
    _, script = write_script(tmp_path, spec_text(STOP))
    stdout = run_script(script, "--out", str(tmp_path / "script")).stdout
    theirs = json.loads((tmp_path / "script" / "metrics.json").read_text(encoding="utf-8"))
    assert [line for line in stdout.splitlines() if line.startswith("phase ")] == ["phase 1/2: epochs 1-2"]
    assert theirs["epochs"] == ours.metrics["epochs_run"] == 2
    for key, values in theirs["history"].items():
        assert values == pytest.approx([row[key] for row in ours.history], abs=1e-6), key


# -- 4. the --weights source's content hash ------------------------------------------------------
TARGET = """\
cnnspec: 1
name: target
input: {shape: [8, 8, 1]}
model:
  - conv2d: {filters: 4, kernel_size: 3, padding: same}
    id: stem
  - global_avg_pool2d
  - dense: {units: 10, activation: softmax}
data: {source: digits, limit: 64}
training:
  batch_size: 32
  seed: 3
  epochs: 1
"""


def test_the_weights_record_holds_the_files_hash_and_a_changed_file_refuses_the_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """lock.json's ``weights`` (:func:`override_record`) keeps the file's SHA-256; a restart
    (:func:`recorded_source`) whose file holds other bytes now is refused, naming it; an older
    record without the hash is not checked."""
    from cnnspec.training.transfer_loads import override_record, recorded_source

    monkeypatch.chdir(tmp_path)
    source = tmp_path / "base.weights.h5"
    source.write_bytes(b"the weights the run started from")
    compiled = compile_text(TARGET, str(tmp_path / "target.yaml"))
    record = override_record(compiled, "base.weights.h5")
    assert record is not None and record["sha256"] == sha256_file(source)
    assert recorded_source(record, tmp_path / "run").file == source.absolute()  # unchanged: fine

    source.write_bytes(b"other weights, written over the file since")
    with pytest.raises(UsageError) as refused:
        recorded_source(record, tmp_path / "run")
    assert "the file's content hash changed" in str(refused.value)
    assert str(source.absolute()) in str(refused.value)
    assert "start a new run" in (refused.value.hint or "")
    older = {key: value for key, value in record.items() if key != "sha256"}
    assert recorded_source(older, tmp_path / "run").file == source.absolute()


# a second, longer proof: the refusal is proven without TensorFlow above
# (test_the_weights_record_holds_the_files_hash_and_a_changed_file_refuses_the_restart), and a
# resume of a run stopped before its first snapshot going through it by test_transfer_resume.py
@pytest.mark.slow
@pytest.mark.full
def test_a_run_killed_before_its_first_snapshot_refuses_a_replaced_weights_file(
    tmp_path: Path, runner: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through `cnnspec train --resume`: refused (exit 2) while the file holds other weights,
    resumed once the original is back. The first run is stopped (a Ctrl-C) once its lock.json is
    written, before its first epoch: what the test reads of it is there by then."""
    from cnnspec.api import build_model
    from cnnspec.cli.app import app
    from tests.test_train_resume import _stop_once_written

    monkeypatch.chdir(tmp_path)
    spec = tmp_path / "target.yaml"
    spec.write_text(TARGET, encoding="utf-8")
    source = tmp_path / "base.weights.h5"
    build_model(compile_text(TARGET, str(spec))).save_weights(str(source))
    run = tmp_path / "run"
    with pytest.MonkeyPatch.context() as patch:
        stopped = _stop_once_written(patch, run, "lock.json")
        started = runner.invoke(app, ["train", str(spec), "--weights", "base.weights.h5", "--out", str(run)])
    assert started.exit_code == 130 and stopped == ["lock.json"], started.output
    assert json.loads((run / "lock.json").read_text())["weights"]["sha256"] == sha256_file(source)
    for path in run.iterdir():  # as a kill in the first epoch leaves it: no snapshot, no results
        if path.name not in {"lock.json", "spec.yaml", "resolved.yaml"} and not path.name.startswith("."):
            shutil.rmtree(path) if path.is_dir() else path.unlink()

    original = source.read_bytes()
    build_model(compile_text(TARGET, str(spec))).save_weights(str(source))  # (initialized anew)
    assert source.read_bytes() != original  # other weights, the same file name and shapes
    refused = runner.invoke(app, ["train", str(spec), "--resume", str(run)])
    assert refused.exit_code == 2, refused.output
    text = " ".join(refused.output.split())
    assert "the file's content hash changed" in text and "Traceback" not in text

    source.write_bytes(original)
    resumed = runner.invoke(app, ["train", str(spec), "--resume", str(run)])
    assert resumed.exit_code == 0, resumed.output


def test_a_phase_that_freezes_every_trained_layer_is_warned_at_it():
    """`freeze: ["*"]` trained an epoch with nothing trainable: Keras' own warning only."""
    from cnnspec.analysis.passes import compile_text

    head = (
        "cnnspec: 1\nname: fz\ninput: {shape: [8, 8, 1]}\nmodel:\n  - conv2d: {filters: 4, kernel_size: 3}\n"
        "  - flatten\n  - dense: {units: 10, activation: softmax}\n    id: head\n"
    )
    phased = compile_text(
        head
        + "training:\n  phases:\n    - {epochs: 1, freeze: ['*']}\n    - {epochs: 1, unfreeze: [head]}\n",
        "fz.yaml",
    )
    (warning,) = [w for w in phased.warnings if "trains nothing" in w.message]
    assert warning.path == "training.phases[0]" and warning.message.startswith("phase 1 trains nothing")
    whole = compile_text(head + "training: {freeze: ['*']}\n", "fz.yaml")
    assert [w.message for w in whole.warnings if "trains nothing" in w.message] == [
        "the training trains nothing: every layer with trainable weights is frozen"
    ]
    fine = compile_text(head + "training: {freeze: ['conv2d_1']}\n", "fz.yaml")
    assert not [w for w in fine.warnings if "trains nothing" in w.message]


@pytest.mark.slow
def test_a_phase_that_trains_nothing_is_said_once_not_again_by_keras(runner, tmp_path):
    """The spec's warning said it, located; Keras then said it again in its own words, a
    UserWarning naming a file in its site-packages."""
    import warnings

    from cnnspec.cli.app import app

    spec = tmp_path / "fz.yaml"
    spec.write_text(
        "cnnspec: 1\nname: fz\ninput: {shape: [8, 8, 1]}\nmodel:\n  - conv2d: {filters: 2, kernel_size: 3}\n"
        "  - flatten\n  - dense: {units: 10, activation: softmax}\n    id: head\n"
        "data: {source: digits, limit: 64}\ntraining:\n  batch_size: 32\n  phases:\n"
        "    - {epochs: 1, freeze: ['*']}\n    - {epochs: 1, unfreeze: [head]}\n"
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # (without its page: nothing here reads it, and drawing it was a second and a half)
        result = runner.invoke(app, ["train", str(spec), "--no-report", "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    assert "phase 1 trains nothing" in " ".join(result.output.split())
    assert not [w for w in caught if "does not have any trainable weights" in str(w.message)]
