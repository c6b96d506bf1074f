"""The training batch against the size of the training split (training/epochs.py): with
``steps_per_epoch`` a batch larger than the split is clamped to it, with a note, and the
throughput in metrics.json counts the images the steps trained on."""

from __future__ import annotations

import json

import pytest

from cnnspec.analysis.settings_types import DataConfig, TrainConfig
from cnnspec.api import compile_text


def test_a_batch_is_at_most_the_training_split():
    from cnnspec.training.epochs import images_shown_per_epoch, training_batch_size

    stepped = TrainConfig(data=DataConfig("digits"), batch_size=100_000, steps_per_epoch=5)
    assert training_batch_size(stepped, 1294) == 1294
    assert images_shown_per_epoch(stepped, 1294) == 5 * 1294  # not 5 × 100,000
    plain = TrainConfig(data=DataConfig("digits"), batch_size=100_000)
    assert (training_batch_size(plain, 1294), images_shown_per_epoch(plain, 1294)) == (1294, 1294)
    small = TrainConfig(data=DataConfig("digits"), batch_size=32, steps_per_epoch=3)
    assert (training_batch_size(small, 1294), images_shown_per_epoch(small, 1294)) == (32, 96)


@pytest.mark.slow
def test_steps_per_epoch_with_a_batch_larger_than_the_data(tmp_path):
    """Each step trains on every image once (the note says so), and images_per_second counts
    steps × images, not steps × the batch size asked for."""
    from cnnspec.training.trainer import train

    text = """\
cnnspec: 1
name: tiny
input: {shape: [8, 8, 1]}
model:
  - flatten
  - dense: {units: 10, activation: softmax}
data: {source: digits, limit: 40, validation_split: 0, test_split: 0.25}
training: {epochs: 2, batch_size: 100000, steps_per_epoch: 3, seed: 1}
"""
    result = train(compile_text(text, str(tmp_path / "spec.yaml")), out=tmp_path / "run")
    metrics = json.loads((result.run_dir / "metrics.json").read_text())
    images = metrics["train_images"]
    assert 0 < images <= 40
    assert any(f"batch of all {images}" in note for note in result.notes), result.notes
    expected = round(3 * images * metrics["epochs_run"] / metrics["train_seconds"], 1)
    assert metrics["images_per_second"] == pytest.approx(expected, rel=0.01)
