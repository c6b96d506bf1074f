"""Augmenting images together with their segmentation masks.

A mask must move with its image: a flip, rotation, zoom, translation or crop (the kinds whose
registry entry is ``geometric``) draws one random transformation per image and applies it to
both, sampling the mask with nearest-neighbour interpolation so that class indices stay class
indices (no blend of "circle" and "triangle" at a boundary). Photometric augmentation
(brightness, contrast) changes the image only.

Keras 3's preprocessing layers do exactly this when called on ``{"images": …,
"segmentation_masks": …}``: one transformation, masks through ``transform_segmentation_masks``
(nearest-neighbour for the affine ones). ``tests/test_joint_augment.py`` checks that for every
augmentation kind in the registry, so a Keras change cannot silently break the pairing.

Several mask targets (a multi-output model with several mask outputs) are stacked on the
channel axis and transformed as one.

What a layer uncovers (``fill_mode: constant``, and random_perspective always) Keras fills with
the layer's ``fill_value``, a pixel value meant for the image: in a mask it would be read as a
class index (``fill_value: 255`` became label 255 and broke the loss). The masks carry two
marker channels, 1 and 0, through the same call: where both come back as the fill value (never
1 and 0 at once, whatever the value) the pixel was uncovered, and it gets the background
class 0. The generated training script's ``augment_with_masks`` does the same.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cnnspec.layers import REGISTRY

if TYPE_CHECKING:
    from cnnspec.ir import ModelIR


def mask_outputs(target: str | dict[str, str]) -> list[str] | None:
    """Which targets are masks: ``[]`` for a single mask target, the output names of a
    multi-output model's mask targets, or ``None`` when no target is a mask."""
    if isinstance(target, dict):
        names = [name for name, kind in target.items() if kind == "mask"]
        return names or None
    return [] if target == "mask" else None


class JointAugmentation:
    """The spec's augmentation layers applied to a batch of images and its masks alike."""

    def __init__(self, layers: list[tuple[Any, bool]], mask_keys: list[str]) -> None:
        """``layers``: (Keras layer, geometric) in spec order; ``mask_keys``: the label dict's
        mask entries (``[]``: the labels are one mask tensor)."""
        self.layers = layers
        self.mask_keys = mask_keys

    def __call__(self, images: Any, labels: Any) -> tuple[Any, Any]:
        """Augment ``images`` (B, H, W, C) float and the masks (B, H, W) in ``labels``."""
        import tensorflow as tf

        keys = self.mask_keys
        masks = [labels[k] for k in keys] if keys else [labels]
        dtypes = [m.dtype for m in masks]
        stacked = tf.stack([tf.cast(m, tf.float32) for m in masks], axis=-1)  # (B, H, W, k)
        for layer, geometric in self.layers:
            if geometric:
                images, stacked = move_together(layer, images, stacked)
            else:
                images = layer(images, training=True)
        moved = [tf.cast(tf.round(stacked[..., i]), dtype) for i, dtype in enumerate(dtypes)]
        if not keys:
            return images, moved[0]
        return images, {**labels, **dict(zip(keys, moved, strict=True))}


def move_together(layer: Any, images: Any, masks: Any) -> tuple[Any, Any]:
    """One geometric layer's random transformation applied to ``images`` and ``masks``
    (B, H, W, k) float alike; the mask pixels it uncovers get the background class 0, not the
    layer's ``fill_value``."""
    import tensorflow as tf

    # marker channels 1 and 0: only a pixel moved from inside the mask keeps them apart (the
    # test allows for interpolation: random_crop resizes a crop larger than the image)
    markers = tf.concat([tf.ones_like(masks[..., :1]), tf.zeros_like(masks[..., :1])], axis=-1)
    out = layer({"images": images, "segmentation_masks": tf.concat([masks, markers], -1)}, training=True)
    moved = out["segmentation_masks"]
    covered = (moved[..., -2:-1] > 0.5) & (moved[..., -1:] < 0.5)
    return out["images"], tf.where(covered, moved[..., :-2], tf.zeros_like(moved[..., :-2]))


def build_joint_augmentation(ir: ModelIR, target: str | dict[str, str]) -> JointAugmentation | None:
    """The augmentation for data with mask targets, or ``None`` (no augmentation, or no mask:
    the ordinary image-only augmentation applies)."""
    keys = mask_outputs(target)
    if not ir.augmentation or keys is None:
        return None
    from cnnspec.backends.keras_builder import make_layer

    layers = [(make_layer(node), REGISTRY[node.kind].geometric) for node in ir.augmentation]
    return JointAugmentation(layers, keys)
