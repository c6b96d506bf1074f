"""The tf.data input pipeline (cnnspec/training/pipeline.py): index shuffling, scaling, options."""

from __future__ import annotations

import numpy as np
import pytest

from cnnspec.training.pipeline import PipelineSettings, make_dataset, parallel_calls

pytestmark = pytest.mark.slow  # imports TensorFlow


def _images(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Image i is filled with the value i % 256 and labelled i, so a batch names its images."""
    x = np.repeat(np.arange(n, dtype=np.uint8)[:, None, None, None], 4, axis=1).repeat(4, axis=2)
    return x, np.arange(n, dtype=np.int64)


def _epoch(dataset) -> tuple[list[int], list[np.ndarray]]:
    labels: list[int] = []
    images: list[np.ndarray] = []
    for batch_images, batch_labels in dataset:
        labels.extend(int(v) for v in batch_labels.numpy())
        images.append(batch_images.numpy())
    return labels, images


def test_training_epochs_are_seeded_permutations_reshuffled_each_pass() -> None:
    x, y = _images(50)
    settings = PipelineSettings(batch_size=8, rescale=1 / 255)
    dataset = make_dataset(x, y, settings, training=True, seed=3)
    first, images = _epoch(dataset)
    second, _ = _epoch(dataset)
    assert sorted(first) == list(range(50)) and sorted(second) == list(range(50))
    assert first != second, "the order must change from one epoch to the next"
    assert first != list(range(50)), "training data must be shuffled"
    again, _ = _epoch(make_dataset(x, y, settings, training=True, seed=3))
    assert again == first, "the same seed gives the same order"
    assert len(images) == 7  # 6 full batches of 8 and one of 2
    # images travel with their labels, cast to float32 and scaled
    stacked = np.concatenate(images)
    assert stacked.dtype == np.float32
    np.testing.assert_allclose(stacked[:, 0, 0, 0], np.array(first, dtype=np.float32) / 255, rtol=1e-6)


def test_evaluation_data_keep_their_order_and_labels_can_be_one_hot() -> None:
    x, y = _images(10)
    settings = PipelineSettings(batch_size=4, rescale=None, num_classes=10, one_hot=True)
    labels = []
    for _, batch_labels in make_dataset(x, y, settings):
        labels.extend(np.argmax(batch_labels.numpy(), axis=1).tolist())
    assert labels == list(range(10))


def test_shuffle_buffer_and_repeat_for_steps_per_epoch() -> None:
    x, y = _images(20)
    settings = PipelineSettings(batch_size=5)
    dataset = make_dataset(x, y, settings, training=True, seed=1, shuffle_buffer=4, repeat=True)
    seen = [int(v) for batch in dataset.take(8) for v in batch[1].numpy()]
    assert len(seen) == 40 and sorted(seen) == sorted(list(range(20)) * 2)
    # a buffer of 4 holds image i back until i - 3 images have come out: none comes early
    assert all(label - position <= 3 for position, label in enumerate(seen[:20]))
    assert seen[:20] != list(range(20))


def test_autotuning_is_off_with_fixed_parallelism() -> None:
    x, y = _images(8)
    dataset = make_dataset(x, y, PipelineSettings(batch_size=4), training=True, seed=0)
    assert dataset.options().autotune.enabled is False
    assert parallel_calls() >= 1
