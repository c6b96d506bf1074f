"""Augmentation of segmentation data: masks move with their images through the training
pipeline, sampled nearest-neighbour; photometric augmentation leaves masks alone."""

from __future__ import annotations

import numpy as np
import pytest

from cnnspec.api import compile_text
from cnnspec.training.joint_augment import build_joint_augmentation, mask_outputs

SPEC = """\
cnnspec: 1
name: seg
input: {{shape: [16, 16, 3]}}
model:
  - conv2d: {{filters: 4, kernel_size: 1, activation: softmax}}
augmentation:
{augmentation}
"""
GEOMETRIC = """\
  - random_flip: horizontal_and_vertical
  - random_rotation: {factor: 0.25, fill_mode: constant, interpolation: INTERP}
  - random_zoom: {height_factor: 0.3, fill_mode: constant, interpolation: INTERP}
  - random_translation: {height_factor: 0.2, fill_mode: constant, interpolation: INTERP}
"""


def test_which_targets_are_masks():
    assert mask_outputs("mask") == [] and mask_outputs("class") is None
    assert mask_outputs({"seg": "mask", "n": "regression"}) == ["seg"]
    assert mask_outputs({"n": "regression"}) is None
    ir = compile_text(SPEC.format(augmentation=GEOMETRIC.replace("INTERP", "nearest"))).ir
    assert build_joint_augmentation(ir, "class") is None  # image-only augmentation as before


def batches(augmentation_text: str, masks: np.ndarray, images: np.ndarray, target="mask", labels=None):
    from cnnspec.training.pipeline import PipelineSettings, make_dataset

    ir = compile_text(SPEC.format(augmentation=augmentation_text)).ir
    joint = build_joint_augmentation(ir, target)
    assert joint is not None
    y = labels if labels is not None else masks
    data = make_dataset(images, y, PipelineSettings(batch_size=8), training=True, seed=3, augmentation=joint)
    return [(np.asarray(a), b) for a, b in data]


def class_masks(n: int = 16) -> np.ndarray:
    """Masks of classes 0 and 3 only: blocks, so that a move is visible."""
    rng = np.random.default_rng(1)
    masks = np.zeros((n, 16, 16), dtype="uint8")
    for mask in masks:
        top, left = rng.integers(0, 9, 2)
        mask[top : top + 7, left : left + 5] = 3
    return masks


@pytest.mark.slow
def test_geometric_augmentation_moves_masks_with_their_images():
    masks = class_masks()
    images = np.repeat(masks[..., None].astype("float32") * 50, 3, axis=-1)  # the image draws its mask
    seen = batches(GEOMETRIC.replace("INTERP", "nearest"), masks, images)
    moved = np.concatenate([m.numpy() for _, m in seen])
    pictures = np.concatenate([i for i, _ in seen])
    assert moved.dtype == np.uint8 and moved.shape == masks.shape
    np.testing.assert_array_equal(np.round(pictures[..., 0] / 50), moved)  # still aligned
    assert not np.array_equal(np.sort(moved.reshape(16, -1)), np.sort(masks.reshape(16, -1)))  # moved


@pytest.mark.slow
def test_masks_are_sampled_nearest_when_images_are_bilinear():
    """With bilinear images, a mask of classes {0, 3} must not gain 1s and 2s at its edges."""
    masks = class_masks()
    images = np.repeat(masks[..., None].astype("float32") * 50, 3, axis=-1)
    text = GEOMETRIC.replace("INTERP", "bilinear") + "  - random_contrast: 0.5\n"
    seen = batches(text, masks, images)
    pictures = np.concatenate([i for i, _ in seen])
    moved = np.concatenate([m.numpy() for _, m in seen])
    assert set(np.unique(moved)) == {0, 3}
    assert len(np.unique(pictures)) > 10  # the images were interpolated (and contrast-changed)


@pytest.mark.slow
def test_multi_output_labels_move_only_their_masks():
    masks = class_masks(8)
    images = np.repeat(masks[..., None].astype("float32") * 50, 3, axis=-1)
    count = np.arange(8, dtype="float32")[:, None]
    labels = {"seg": masks, "count": count}
    (batch,) = batches(
        "  - random_flip: horizontal\n", masks, images, {"seg": "mask", "count": "regression"}, labels
    )
    pictures, out = batch
    np.testing.assert_array_equal(np.round(pictures[..., 0] / 50), out["seg"].numpy())
    assert sorted(out["count"].numpy()[:, 0].tolist()) == list(range(8))
