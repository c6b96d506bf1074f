"""Label mixing on training batches: ``training.mixup`` and ``training.cutmix``.

Keras' own ``MixUp`` and ``CutMix`` layers (the generated training script builds the same
classes) take a batch as ``{"images": …, "labels": …}`` and return both mixed: each image is
blended with (MixUp) or has a box pasted from (CutMix) another image of its batch, and its label
becomes the same share of the two labels. They run in the input pipeline on whole training
batches, after the augmentation and after the labels are made one-hot (classification) or
multi-hot floats (multilabel) (:func:`cnnspec.training.pipeline.finish`); validation and test
batches are never mixed.

The layer is seeded with the run's seed and owns a Keras ``SeedGenerator``: the trainer lists it
among the run's random owners, so its state is saved in every snapshot and a resumed run mixes
the batches an uninterrupted run mixes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cnnspec.analysis.settings import TrainConfig


def build_mixing(config: TrainConfig, seed: int | None) -> Any:
    """The Keras ``MixUp`` or ``CutMix`` layer of ``config.mixing`` (``None``: no mixing).

    Under a mixed dtype policy (``runtime.mixed_precision``) it computes in float32: the labels
    it mixes are float32, and the model's input casts the images anyway."""
    mixing = config.mixing
    if mixing is None:
        return None
    import keras

    # (an explicit table of the registry's classes, never a lookup by a name from the spec)
    classes = {"MixUp": keras.layers.MixUp, "CutMix": keras.layers.CutMix}
    kwargs: dict[str, Any] = {mixing.setting: mixing.amount, "seed": seed}
    if config.mixed_precision:
        kwargs["dtype"] = "float32"
    return classes[mixing.keras_class](**kwargs)


def mix_batch(layer: Any, images: Any, labels: Any) -> tuple[Any, Any]:
    """One training batch (float images, float one-hot or multi-hot labels) mixed by ``layer``."""
    mixed = layer({"images": images, "labels": labels}, training=True)
    return mixed["images"], mixed["labels"]
