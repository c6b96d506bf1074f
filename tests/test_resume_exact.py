"""A run interrupted after an epoch and resumed trains the very epochs an uninterrupted run with
the same seed trains: the same history (losses, accuracies, learning rates) and the same final
weights, with dropout, augmentation, label mixing and phases (with averaged weights and
accumulated gradients). What it takes (training/state.py): the seed generators' states and the
count of the training data's iterators, saved in every snapshot, and the optimizer's variables.

The interrupted run is a copy of the uninterrupted run's folder, made by a callback after the
Recorder saved the epoch's snapshot: what a SIGKILL there leaves (the same epochs, not trained
twice); the resumed run builds its model, augmentation and data afresh, as a new process does.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from cnnspec.api import compile_text

pytestmark = pytest.mark.slow

#: Dropout and a random augmentation: both draw from Keras seed generators every batch.
SPEC = """\
cnnspec: 1
name: exact
input: {shape: [8, 8, 1]}
model:
  - conv2d: {filters: 4, kernel_size: 3, padding: same, activation: relu}
    id: conv
  - flatten
  - dropout: 0.5
  - dense: {units: 5, activation: softmax}
    id: head
augmentation:
  - random_translation: {height_factor: 0.1, width_factor: 0.1, fill_mode: constant}
data: {source: digits, classes: [0, 1, 2, 3, 4], per_class: 10, validation_split: 0.1}
training:
  batch_size: 10
  seed: 5
TRAINING
"""
#: With MixUp and CutMix on the training batches, each batch mixed by one of them
#: (training.mix_switch): the two layers and the switch draw from seed generators too. Four
#: epochs: the resumes after epoch 2 train two more each (the data's iterators counted on past
#: the first epoch a resume trains); every epoch makes new iterators, most of a training's time.
PLAIN = (
    "  epochs: 4\n  optimizer: {adam: {learning_rate: 0.003}}\n  mixup: {alpha: 0.4}\n"
    "  cutmix: true\n  mix_switch: 0.5"
)
#: Each phase's optimizer (the spec's, with the phase's rate) averages the weights, which Keras
#: sets them to at the end of each fit (a resume at the boundary replays it), and accumulates
#: two of an epoch's five batches (every epoch ends in the middle of an accumulation). Early
#: stopping keeps the best averaged weights (validation scores the average) and puts them back
#: when each phase ends.
PHASED = """\
  optimizer: {adam: {use_ema: true, ema_momentum: 0.5, gradient_accumulation_steps: 2}}
  callbacks:
    - early_stopping: {monitor: val_loss, patience: 10, restore_best_weights: true}
  phases:
    - {epochs: 2, freeze: [conv], learning_rate: 0.01}
    - {epochs: 2, unfreeze: ['*'], learning_rate: 0.003}"""


def spec(training: str) -> Any:
    """The compiled spec with ``training`` (the rest of its ``training`` section)."""
    return compile_text(SPEC.replace("TRAINING", training), "spec.yaml")


def untimed(history: list[dict[str, float]]) -> list[dict[str, float]]:
    """The history without its wall-clock column (the only one that may differ)."""
    return [{key: value for key, value in row.items() if key != "seconds"} for row in history]


def test_a_resumed_run_with_dropout_and_augmentation_is_the_uninterrupted_run(tmp_path: Path) -> None:
    from cnnspec.training.state import STATE_DIR
    from cnnspec.training.trainer import train

    compiled = spec(PLAIN)
    # the run interrupted after epoch 2, twice: copies of the uninterrupted run's folder then
    old, interrupted = tmp_path / "old", tmp_path / "resumed"
    copies = [copied_after(2, tmp_path / "whole", folder) for folder in (old, interrupted)]
    whole = train(compiled, out=tmp_path / "whole", callbacks=copies)
    resumed = train(compiled, resume=interrupted)
    assert resumed.resumed_from == 2
    assert not any("holds no random state" in note for note in resumed.notes)
    assert untimed(resumed.history) == untimed(whole.history)  # epochs 3-4 too, not only 1-2
    assert resumed.metrics["weights_sha256"] == whole.metrics["weights_sha256"]

    # a snapshot of an older cnnspec (no random state in it) still resumes, and says it is not exact
    # (``old``: the folder the interruption after epoch 2 left, copied before its resume)
    for manifest in (old / STATE_DIR).glob("epoch-*.json"):
        data = json.loads(manifest.read_text())
        del data["data_iterators"]
        manifest.write_text(json.dumps(data))
    result = train(compiled, resume=old)
    assert result.resumed_from == 2 and [row["epoch"] for row in result.history] == [1, 2, 3, 4]
    assert any("holds no random state" in note for note in result.notes)
    shutil.rmtree(old)


def copied_after(epochs: int, out: Path, copy: Path) -> Any:
    """A callback that copies the run folder ``out`` to ``copy`` once ``epochs`` epochs are
    saved (it runs after the Recorder, which writes the epoch's snapshot in its ``on_epoch_end``):
    the folder an interruption there leaves, less the lock file the interruption releases."""
    import keras

    from cnnspec.training.runlock import LOCK_NAME

    class Copy(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            if epoch + 1 == epochs:
                shutil.copytree(out, copy, ignore=shutil.ignore_patterns(LOCK_NAME))

    return Copy()


@pytest.mark.full
def test_a_resumed_phased_run_is_the_uninterrupted_run(tmp_path: Path) -> None:
    """Interrupted at the phase boundary (the first phase's fit had ended with the averaged
    weights: replayed from the snapshot's optimizer before the second phase's is set up; the
    resumed history differed from epoch 3 without it) and in the middle of the second phase's
    accumulation: each resume gives the uninterrupted run's history and weights. The
    uninterrupted run stands for both interruptions: its folder is copied once epoch 2's and once
    epoch 3's snapshot is saved (as an interruption there leaves it; its epochs so far are the
    same epochs), which saves training them a second time."""
    from cnnspec.training.trainer import train

    compiled = spec(PHASED)
    folders = {epochs: tmp_path / f"resumed-{epochs}" for epochs in (2, 3)}
    copies = [copied_after(epochs, tmp_path / "whole", folder) for epochs, folder in folders.items()]
    whole = train(compiled, out=tmp_path / "whole", callbacks=copies)
    assert [row["phase"] for row in whole.history] == [1, 1, 2, 2]
    for epochs in (2, 3):
        resumed = train(compiled, resume=folders[epochs])
        assert resumed.resumed_from == epochs
        assert untimed(resumed.history) == untimed(whole.history), epochs
        assert resumed.metrics["weights_sha256"] == whole.metrics["weights_sha256"], epochs
