"""The tf.data input pipeline: shuffle (seeded) → batch → scale → augment whole batches → mix
labels (``training.mixup``/``cutmix``) → prefetch.

Scaling, one-hot encoding and augmentation run on whole batches, not per image: Keras'
preprocessing layers are vectorised, so one call per batch is far cheaper than one per image
(DESIGN.md: 2.7× for the pipeline alone). Augmentation runs only in the training pipeline;
validation and test data are never augmented.

The training pipeline shuffles *indices*, not images: ``range(n) → shuffle → batch`` and one
``gather`` per batch. Shuffling 10,000 single images through tf.data cost ~3 % of a basic-CNN
epoch in CPU time (profiled for issue 9); shuffling integers and gathering whole batches costs
less than the seed's unshuffled pipeline, with the same uniform reshuffle every epoch.

tf.data's autotuning is off, with fixed knobs instead: augmentation runs one batch at a time
(in parallel, batches drew their random seeds in the threads' order: runs did not repeat for
a seed); gathering, casting and scaling a batch (a copy) is one call (two parallel
calls measured no better: within this machine's ±4 % per ResNet epoch); two batches are
prefetched. The data
are in memory, so there is nothing for autotuning to tune, and its optimisation thread made
iterators slow to destroy. Keras drops the last epoch's iterator at the start of every epoch
and every validation pass; with autotuning on, that sometimes sat idle for 1.4–2.4 s (one
epoch in three of the basic CNN took ~5.1 s instead of ~2.9 s, in hand-written Keras as much
as in cnnspec; py-spy shows the wait in ``RootDataset::Iterator``'s destructor; measured for
issue 9). With it off: no such stall in 22 epochs, same step time.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cnnspec.machine import usable_cores
from cnnspec.training.joint_augment import JointAugmentation

if TYPE_CHECKING:
    from cnnspec.analysis.compiled import CompiledSpec
    from cnnspec.analysis.settings_types import TrainConfig

#: batches prepared ahead of the model
PREFETCH_BATCHES = 2


def parallel_calls() -> int:
    """Parallel map calls: one per core this process may run on."""
    return usable_cores()


@dataclass(frozen=True)
class PipelineSettings:
    batch_size: int
    rescale: float | None = None
    num_classes: int = 0
    one_hot: bool = False
    binary: bool = False
    #: a batch's targets → what the losses expect, for any task but plain classification
    #: (training/tasks.py); replaces the binary/one-hot handling above when set
    prepare_targets: Any = None


def pipeline_settings(compiled: CompiledSpec, config: TrainConfig, dataset: Any) -> PipelineSettings:
    """The pipeline's settings for ``dataset`` under the spec ``compiled`` (``config``: its
    typed settings): the one place training and the commands that evaluate a run (reporting's
    test data, an ensemble's scale) make them, so both scale and encode the images alike."""
    from cnnspec.training.data_checks import rescale_factor

    prepare_targets = None
    if config.task_path:  # multilabel, regression, segmentation, several outputs
        from cnnspec.training.tasks import target_preparer

        prepare_targets = target_preparer(config)
    return PipelineSettings(
        batch_size=config.batch_size,
        rescale=rescale_factor(config, dataset, compiled),
        num_classes=max(dataset.num_classes, config.output_units),
        one_hot=config.one_hot_labels,
        binary=config.binary,
        prepare_targets=prepare_targets,
    )


def make_dataset(
    x: np.ndarray,
    y: np.ndarray,
    settings: PipelineSettings,
    *,
    training: bool = False,
    seed: int | None = None,
    augmentation: Any = None,
    shuffle_buffer: int | None = None,
    repeat: bool = False,
    cache_file: Path | None = None,
    shard: tuple[int, int] | None = None,
    mixing: Any = None,
) -> Any:
    """A batched ``tf.data.Dataset`` of ``(images, labels)``.

    ``training`` turns on seeded shuffling (reshuffled every epoch) and ``augmentation`` (a
    Keras layer or Sequential, called with ``training=True`` on each batch; a
    :class:`JointAugmentation` augments each batch's images and masks alike). ``x`` may be an
    :class:`~cnnspec.training.filelist.ImageFiles` (a streamed source): its images are then
    read from disk batch by batch (:func:`cnnspec.training.stream.make_stream`, which takes
    ``cache_file`` for ``data.cache: disk`` and ``shard``, ``(count, index)``, to read only
    one worker's part of the files). A ``repeat``-ed dataset is batched at most ``len(x)``
    images at a time (a larger batch would hold every image several times). ``mixing``: Keras'
    MixUp or CutMix layer (:mod:`cnnspec.training.mixing`), applied to training batches only.
    """
    from cnnspec.training.filelist import ImageFiles

    if isinstance(x, ImageFiles):
        from cnnspec.training.stream import make_stream

        return make_stream(
            x, y, settings, training=training, seed=seed, augmentation=augmentation,
            shuffle_buffer=shuffle_buffer, repeat=repeat, cache_file=cache_file, shard=shard,
            mixing=mixing,
        )  # fmt: skip
    import tensorflow as tf

    if repeat and 0 < len(x) < settings.batch_size:
        # a repeated split batched whole would put each image in a batch many times over (a
        # batch of 100,000 of 1,294 images: each ~77 times); one pass per batch is what an
        # unrepeated epoch does with a batch larger than the data
        settings = replace(settings, batch_size=len(x))
    prepare = batch_preparer(settings)

    if training:
        # y is an array, or a dict output name → array for a multi-output model
        all_images, all_labels = tf.convert_to_tensor(x), tf.nest.map_structure(tf.convert_to_tensor, y)
        buffer = min(len(x), shuffle_buffer) if shuffle_buffer else len(x)
        dataset = tf.data.Dataset.range(len(x))
        dataset = dataset.shuffle(max(buffer, 1), seed=seed, reshuffle_each_iteration=True)

        def load(index: Any) -> tuple[Any, Any]:
            labels = tf.nest.map_structure(lambda part: tf.gather(part, index), all_labels)
            return prepare(tf.gather(all_images, index), labels)
    else:
        dataset = tf.data.Dataset.from_tensor_slices((x, y))
        load = prepare
    if repeat:
        dataset = dataset.repeat()
    dataset = dataset.batch(settings.batch_size).map(load)
    if not training:
        augmentation = mixing = None  # validation and test data are never augmented nor mixed
    return finish(dataset, augmentation, settings.prepare_targets, mixing)


class _CountedClass:
    """Holds the class of :func:`counted` datasets, made once TensorFlow is imported."""

    made: Any = None


def counted(dataset: Any) -> Any:
    """``dataset`` as it is, counting the iterators made of it (``.iterators``), with
    ``.replay(count)`` making and dropping iterators until ``count`` were made.

    Why: the seeded shuffle (``reshuffle_each_iteration``) draws a new order for every iterator
    made of the dataset, whether it is read or not (Keras makes two per epoch: one it reads and
    one it makes ready, and drops, when the epoch ends). A resumed run is a new process whose
    dataset starts again at the first order; replaying the count the killed run had reached
    gives the next epoch the order an uninterrupted run gives it, without changing the orders
    themselves. A dataset Keras wraps (``class_weight`` maps it) is iterated through the wrapper,
    which this does not see: ``iterators`` then stays 0 (the trainer takes that as not counted).
    """
    if _CountedClass.made is None:
        from tensorflow.python.data.ops import dataset_ops

        class CountedDataset(dataset_ops.UnaryUnchangedStructureDataset):  # type: ignore[misc]
            """The same dataset (the same variant tensor), its ``__iter__`` counted."""

            def __init__(self, input_dataset: Any) -> None:
                self.iterators = 0
                super().__init__(input_dataset, input_dataset._variant_tensor)

            def __iter__(self) -> Any:
                self.iterators += 1
                return super().__iter__()

            def replay(self, count: int) -> None:
                """Make (and drop unread) iterators until ``count`` were made: each draws its
                shuffle order as one that was read would."""
                while self.iterators < count:
                    iter(self)

        _CountedClass.made = CountedDataset
    return _CountedClass.made(dataset)


def batch_preparer(settings: PipelineSettings) -> Any:
    """The per-batch step: pixels to float32 times the run's scale; labels one-hot or as
    binary targets when the loss needs them (left to ``settings.prepare_targets``, after the
    augmentation, for the other tasks)."""
    import tensorflow as tf

    scale = settings.rescale

    def prepare(images: Any, labels: Any) -> tuple[Any, Any]:
        images = tf.cast(images, tf.float32)
        if scale is not None:
            images = images * scale
        if settings.prepare_targets is not None:
            pass  # after the augmentation, which moves masks as class indices (see finish)
        elif settings.binary:
            labels = tf.cast(tf.reshape(labels, (-1, 1)), tf.float32)
        elif settings.one_hot:
            labels = tf.one_hot(labels, settings.num_classes)
        return images, labels

    return prepare


def finish(dataset: Any, augmentation: Any = None, prepare_targets: Any = None, mixing: Any = None) -> Any:
    """Batched, prepared ``dataset`` → augmented (training only; a :class:`JointAugmentation`
    moves masks with their images) → targets prepared → mixed (``mixing``: Keras' MixUp or
    CutMix; training only) → prefetched, with the fixed knobs of the module docstring."""
    import tensorflow as tf

    # One batch at a time: Keras' random layers draw their seeds from one state variable, so
    # batches augmented side by side took them in whatever order the threads ran and a seed did
    # not repeat a run (the transfer example's test accuracy varied by up to 14 points).
    if isinstance(augmentation, JointAugmentation):
        dataset = dataset.map(augmentation)
    elif augmentation is not None:
        dataset = dataset.map(lambda images, labels: (augmentation(images, training=True), labels))
    if prepare_targets is not None:  # one-hot masks, float multi-hot rows, ...
        dataset = dataset.map(lambda images, labels: (images, prepare_targets(labels)))
    if mixing is not None:
        from cnnspec.training.mixing import mix_batch

        # last: it blends augmented images, and labels once they are one-hot or multi-hot
        # floats; one batch at a time, as the augmentation, for its seed generator's sake
        dataset = dataset.map(lambda images, labels: mix_batch(mixing, images, labels))
    options = tf.data.Options()
    options.autotune.enabled = False  # see the module docstring
    return dataset.prefetch(PREFETCH_BATCHES).with_options(options)
