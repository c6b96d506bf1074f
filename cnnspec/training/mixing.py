"""Label mixing on training batches: ``training.mixup`` and ``training.cutmix``.

Keras' own ``MixUp`` and ``CutMix`` layers (the generated training script builds the same
classes) take a batch as ``{"images": …, "labels": …}`` and return both mixed: each image is
blended with (MixUp) or has a box pasted from (CutMix) another image of its batch, and its label
becomes the same share of the two labels. They run in the input pipeline on whole training
batches, after the augmentation and after the labels are made one-hot (classification) or
multi-hot floats (multilabel) (:func:`cnnspec.training.pipeline.finish`); validation and test
batches are never mixed. With both keys on, each batch is mixed by one of the two, CutMix with
probability ``training.mix_switch`` (timm's ``switch_prob``; :func:`switch_class`).

CutMix is Keras' with one change (:func:`pixel_cutmix_class`): an image's label takes the
share of its pixels the box actually covers. Keras computes the share from the box's corners
before they fall on whole pixels, which on an 8×8 input made labels up to 23 points off the
pixels pasted (6 on average).

Each layer is seeded with the run's seed and owns a Keras ``SeedGenerator``: the trainer lists
it among the run's random owners, so its state is saved in every snapshot and a resumed run
mixes the batches an uninterrupted run mixes.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cnnspec.analysis.settings_types import TrainConfig


def build_mixing(config: TrainConfig, seed: int | None) -> Any:
    """The Keras layer of ``config.mixing`` (``None``: no mixing): ``MixUp`` or ``CutMix``, or,
    with both on, a :func:`switch_class` layer that mixes each batch by one of them.

    Under a mixed dtype policy (``runtime.mixed_precision``) it computes in float32: the labels
    it mixes are float32, and the model's input casts the images anyway."""
    mixing = config.mixing
    if mixing is None:
        return None
    import keras

    # (an explicit table of the registry's classes, never a lookup by a name from the spec)
    classes = {"MixUp": keras.layers.MixUp, "CutMix": pixel_cutmix_class()}
    dtype: dict[str, Any] = {"dtype": "float32"} if config.mixed_precision else {}
    layers = [
        classes[mixer.keras_class](**{mixer.setting: mixer.amount, "seed": seed}, **dtype)
        for mixer in mixing.mixers
    ]
    if mixing.switch is None:
        return layers[0]
    mixup, cutmix = layers
    return switch_class()(mixup, cutmix, cutmix_share=mixing.switch, seed=seed, **dtype)


@functools.cache
def pixel_cutmix_class() -> type:
    """``PixelCutMix``: Keras' ``CutMix`` whose labels take the share of each image's pixels
    its box covers. Keras' layer draws the box's corners as real numbers, pastes the pixels
    whose grid positions fall inside, and mixes the labels by the real box's area: on a small
    input the two differ by up to a row and a column of the box (on 8×8 digits, 23 points at
    most, 6 on average; about 1 on 32×32). The pasted pixels are its batch masks, so the label
    share is theirs: the same images and permutation, the same random draws (a seeded run mixes
    the images it mixed before), only the labels exact. The generated script writes the same
    class (templates/_training_code.j2), on Keras' public ``get_random_transformation``."""
    import keras

    class PixelCutMix(keras.layers.CutMix):
        def get_random_transformation(self, data: Any, training: bool = True, seed: Any = None) -> Any:
            transformation = super().get_random_transformation(data, training=training, seed=seed)
            if transformation is None:  # (not training, or a single image)
                return None
            masks = keras.ops.cast(transformation["batch_masks"], self.compute_dtype)
            pasted = keras.ops.mean(masks, axis=tuple(range(1, len(masks.shape))))
            return {**transformation, "mix_weight": 1.0 - pasted}

    return PixelCutMix


@functools.cache
def switch_class() -> type:
    """``MixingSwitch``: a Keras layer that mixes each batch by MixUp or by CutMix, CutMix with
    probability ``cutmix_share`` (``training.mix_switch``), drawn batch by batch from a seed
    generator of its own. The generated training script does the same (templates/
    _training_code.j2) as a function, ``switch_mixing`` (its checker admits no class of this
    form; the script saves no snapshots, which here need a layer's tracked generator); the
    parity test trains both. Built on first use: TensorFlow is imported by training only."""
    import keras
    import tensorflow as tf

    class MixingSwitch(keras.layers.Layer):
        def __init__(
            self, mixup: Any, cutmix: Any, cutmix_share: float, seed: int | None = None, **kwargs: Any
        ):
            super().__init__(**kwargs)
            self.mixup, self.cutmix, self.cutmix_share = mixup, cutmix, cutmix_share
            # its own stream (not the MixUp layer's, seeded with the same seed): a tracked
            # generator, so a snapshot saves its state with the two layers'
            self.generator = keras.random.SeedGenerator(None if seed is None else (seed + 1) % 2**32)

        def call(self, data: Any, training: bool = True) -> Any:
            draw = keras.random.uniform((), seed=self.generator)
            # only the chosen layer runs, and only its generator moves on
            return tf.cond(
                draw < self.cutmix_share,
                lambda: self.cutmix(data, training=training),
                lambda: self.mixup(data, training=training),
            )

    return MixingSwitch


def mix_batch(layer: Any, images: Any, labels: Any) -> tuple[Any, Any]:
    """One training batch (float images, float one-hot or multi-hot labels) mixed by ``layer``."""
    mixed = layer({"images": images, "labels": labels}, training=True)
    return mixed["images"], mixed["labels"]


#: The metrics that read a label as 0/1 (a 1-unit head's and a multilabel output's, and the
#: thresholded ones of a softmax head): under mixing they score the rounded label. Accuracy of
#: a softmax head (``CategoricalAccuracy``, top-k) takes the label's argmax already.
ROUNDED_LABEL_METRICS = ("BinaryAccuracy", "Precision", "Recall", "AUC", "F1Score")


def on_rounded_labels(metrics: list[Any]) -> list[Any]:
    """``metrics`` (one output's) with those of :data:`ROUNDED_LABEL_METRICS` scoring each
    label rounded (``> 0.5``: 1, else 0): the class or label with the larger share of a mixed
    label, as the training accuracy of a softmax head scores it. Keras' ``BinaryAccuracy``
    compares the label itself with the thresholded prediction (a mixed 0.97 never equals 1) and
    ``Precision``/``Recall``/``AUC`` count any label above 0 as positive. Real labels (0 or 1:
    the validation and test batches, never mixed) round to themselves.

    The instances only (their ``update_state``, as :mod:`cnnspec.training.tasks` patches an
    ``R2Score``'s ``result``): the saved model records the plain Keras class, which loads
    without cnnspec. The generated script wraps the same metrics (its ``on_rounded_labels``)."""
    from keras import ops

    def rounded(metric: Any) -> Any:
        plain = metric.update_state

        def update_state(y_true: Any, y_pred: Any, sample_weight: Any = None) -> Any:
            y_true = ops.cast(ops.greater(y_true, 0.5), y_true.dtype)
            return plain(y_true, y_pred, sample_weight=sample_weight)

        metric.update_state = update_state
        return metric

    return [rounded(m) if type(m).__name__ in ROUNDED_LABEL_METRICS else m for m in metrics]
