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


def test_a_repeated_batch_larger_than_the_data_holds_each_image_once() -> None:
    """``steps_per_epoch`` with a batch larger than the split: each step trains on every image
    once (as an epoch without it would), not on each image ~batch/n times."""
    x, y = _images(7)
    dataset = make_dataset(x, y, PipelineSettings(batch_size=100), training=True, seed=1, repeat=True)
    batches = [sorted(int(v) for v in labels.numpy()) for _, labels in dataset.take(3)]
    assert batches == [list(range(7))] * 3
    # without repeat the one batch of an epoch was already every image once
    plain = make_dataset(x, y, PipelineSettings(batch_size=100), training=True, seed=1)
    assert [sorted(int(v) for v in labels.numpy()) for _, labels in plain] == [list(range(7))]


def test_autotuning_is_off_with_fixed_parallelism() -> None:
    x, y = _images(8)
    dataset = make_dataset(x, y, PipelineSettings(batch_size=4), training=True, seed=0)
    assert dataset.options().autotune.enabled is False
    assert parallel_calls() >= 1


def test_augmented_epochs_repeat_for_the_same_seed() -> None:
    """Keras' random layers draw from one seed-state variable: batches augmented side by side
    would take its values in whatever order the threads ran, so two runs with one seed would
    see different images (the transfer example's runs differed by up to 14 points)."""
    import keras

    x = np.random.default_rng(0).integers(0, 256, size=(96, 8, 8, 1), dtype=np.uint8)
    y = np.arange(96, dtype=np.int64)
    settings = PipelineSettings(batch_size=4, rescale=1 / 255)

    def two_epochs() -> list[np.ndarray]:
        augmentation = keras.layers.RandomTranslation(0.3, 0.3, fill_mode="constant", seed=5)
        dataset = make_dataset(x, y, settings, training=True, seed=2, augmentation=augmentation)
        return [images for _ in range(2) for images in _epoch(dataset)[1]]

    first, again = two_epochs(), two_epochs()
    plain = _epoch(make_dataset(x, y, settings, training=True, seed=2))[1]
    assert not np.array_equal(first[0], plain[0]), "the images must be augmented"
    for batch, (one, other) in enumerate(zip(first, again, strict=True)):
        np.testing.assert_array_equal(one, other, err_msg=f"batch {batch} differs")
