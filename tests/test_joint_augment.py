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


#: Each geometric kind that fills what it uncovers, with fill values a mask must not take as
#: classes (1: a real class; 255: a label the loss refuses).
FILLING = {
    "translation-0.9": "random_translation: {height_factor: 0.4, fill_mode: constant, fill_value: 0.9, "
    "interpolation: nearest, seed: 1}",
    "rotation-255": "random_rotation: {factor: 0.2, fill_mode: constant, fill_value: 255, "
    "interpolation: nearest, seed: 2}",
    "zoom-1": "random_zoom: {height_factor: [0.3, 0.5], fill_mode: constant, fill_value: 1, "
    "interpolation: nearest, seed: 3}",
    "perspective-1": "random_perspective: {factor: 1.0, scale: 0.5, fill_value: 1, "
    "interpolation: nearest, seed: 4}",
}


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(FILLING))
def test_mask_pixels_a_layer_uncovers_get_the_background_class(case):
    """The layer's fill_value is a pixel value: the masks' uncovered pixels become class 0, and
    the covered ones still move exactly as their image."""
    import tensorflow as tf

    masks = class_masks(8)
    images = np.repeat(masks[..., None].astype("float32") * 50 + 10, 3, axis=-1)  # 10 or 160
    ir = compile_text(SPEC.format(augmentation=f"  - {FILLING[case]}\n")).ir
    joint = build_joint_augmentation(ir, "mask")
    assert joint is not None
    pictures, moved = (np.asarray(t) for t in joint(tf.constant(images), tf.constant(masks)))
    fill = float(case.split("-")[1])
    uncovered = pictures[..., 0] == fill
    assert uncovered.any() and not uncovered.all()
    assert moved.dtype == np.uint8 and set(np.unique(moved)) <= {0, 3}
    assert (moved[uncovered] == 0).all()
    np.testing.assert_array_equal(moved[~uncovered], (pictures[..., 0][~uncovered] - 10) / 50)


SCRIPT_SPEC = """\
cnnspec: 1
name: filled
input: {shape: [16, 16, 3]}
augmentation:
  - random_flip: {mode: horizontal, seed: 5}
  - random_rotation: {factor: 0.2, fill_mode: constant, fill_value: 255, interpolation: nearest, seed: 6}
  - random_contrast: {factor: 0.1, value_range: [0, 255], seed: 7}
model:
  - conv2d: {filters: 4, kernel_size: 1, activation: softmax}
data: {source: {shapes: {images: 16, target: mask}}}
training: {epochs: 1, batch_size: 8, seed: 1}
"""


@pytest.mark.slow
def test_the_generated_script_augments_masks_as_train_does(tmp_path):
    """codegen --script's augment_with_masks gives the same images and masks as cnnspec train's
    joint augmentation (the same seeded layers), uncovered mask pixels class 0 in both."""
    import importlib.util

    import tensorflow as tf

    from cnnspec.api import compile_spec
    from cnnspec.backends.python_emitter import generate_code

    (tmp_path / "spec.yaml").write_text(SCRIPT_SPEC, encoding="utf-8")
    compiled = compile_spec(tmp_path / "spec.yaml")
    script = tmp_path / "train.py"
    script.write_text(generate_code(compiled, script=True, output=script).text, encoding="utf-8")
    loaded = importlib.util.spec_from_file_location("generated_filled", script)
    assert loaded is not None and loaded.loader is not None
    module = importlib.util.module_from_spec(loaded)
    loaded.loader.exec_module(module)

    masks = class_masks(8)
    images = np.repeat(masks[..., None].astype("float32") * 50 + 10, 3, axis=-1)
    joint = build_joint_augmentation(compiled.ir, "mask")
    assert joint is not None
    ours_images, ours_masks = joint(tf.constant(images), tf.constant(masks))
    theirs_images, theirs_masks = module.augment_with_masks(
        module.build_augmentation(), tf.constant(images), tf.constant(masks[..., None], tf.float32)
    )
    np.testing.assert_array_equal(np.asarray(theirs_images), np.asarray(ours_images))
    np.testing.assert_array_equal(np.round(np.asarray(theirs_masks)[..., 0]), np.asarray(ours_masks))
    assert set(np.unique(np.asarray(ours_masks))) == {0, 3}
