"""The embedded ``shapes`` dataset: determinism, the meaning of every target, the spec source.

(Speed is a benchmark, not a test: ``benchmarks/bench_shapes.py``.)
"""

from __future__ import annotations

import hashlib
import subprocess
import sys

import numpy as np
import pytest

from cnnspec.api import compile_spec
from cnnspec.errors import SpecError
from cnnspec.shapes import BACKGROUND_MAX, SHAPE_MIN, SHAPE_NAMES, ShapesOptions, generate
from cnnspec.training.data import load_dataset
from tests.test_task_data import train_settings


def digest(options: ShapesOptions) -> str:
    shapes = generate(options)
    sha = hashlib.sha256()
    for array in (shapes.images, shapes.masks, shapes.kinds):
        sha.update(array.tobytes())
    return sha.hexdigest()


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (
            ShapesOptions(images=12, image_size=(24, 32), seed=5),
            "ac54af49baaa1f12b43e6aeebbe9f35c7f50007b4a1b0153d8f00b2e5319765c",
        ),
        (
            ShapesOptions(
                images=12, image_size=(24, 32), seed=5, channels=1, noise=0.0, min_shapes=2, max_shapes=5
            ),
            "fc93d50025ab9d5ce336998c0339528a7b4e804d7e7187cc65594928db6a49b9",
        ),
        (
            ShapesOptions(images=12, image_size=(24, 32), seed=5, overlap=True),
            "ea8d387644901b60e9aed4327add5d413252894543f2d01f6c6156e1979c9d2a",
        ),
    ],
    ids=["rgb-noisy", "gray-clean-5-shapes", "overlapping"],
)
def test_golden_sample(options, expected):
    """The same bytes on every machine and NumPy version: only PCG64's raw words are used."""
    assert digest(options) == expected


def test_seed_decides_the_images():
    base = ShapesOptions(images=6, image_size=(16, 16))
    assert digest(base) == digest(base)
    assert digest(base) != digest(ShapesOptions(images=6, image_size=(16, 16), seed=1))
    first = generate(ShapesOptions(images=10, image_size=(16, 16)))
    # a longer run starts with different images (the draws are per array, not per image),
    # but each is still deterministic
    assert first.images.shape == (10, 16, 16, 3) and first.masks.shape == (10, 16, 16)


@pytest.fixture(scope="module")
def sample():
    return generate(ShapesOptions(images=300, image_size=(32, 32), max_shapes=4, seed=11))


def test_masks_and_pixels_agree(sample):
    """Without noise, every shape pixel is brighter than the background in every channel."""
    clean = generate(ShapesOptions(images=50, image_size=(32, 32), noise=0.0, max_shapes=4, seed=11))
    shape_pixels = clean.images[clean.masks > 0]
    background = clean.images[clean.masks == 0]
    assert shape_pixels.min() >= SHAPE_MIN and background.max() <= BACKGROUND_MAX
    assert set(np.unique(sample.masks)) == {0, 1, 2, 3}
    assert sample.images.dtype == np.uint8 and sample.masks.dtype == np.uint8


def test_shapes_keep_apart_unless_they_may_overlap():
    """By default each shape has a grid cell of its own, so all four drawn are whole; with
    ``overlap`` later shapes cover earlier ones, and a mostly hidden one is dropped."""
    apart = generate(ShapesOptions(images=200, image_size=(32, 32), min_shapes=4, max_shapes=4))
    count, _ = apart.target("count")
    assert np.all(count == 4)
    overlapping = generate(ShapesOptions(images=200, image_size=(32, 32), max_shapes=4, overlap=True))
    kept = overlapping.kinds >= 0
    # the slots drawn are a prefix of each row: a -1 before a kept slot is a dropped shape
    dropped = ~kept[:, :-1] & np.flip(np.cumsum(np.flip(kept[:, 1:], axis=1), axis=1), axis=1).astype(bool)
    assert np.any(dropped) and np.all(kept.sum(axis=1) >= 1)


@pytest.mark.parametrize("seed", [0, 1])
def test_overlapping_shapes_still_number_at_least_min_shapes(seed):
    """A shape left less than 30 % visible is dropped, and an image left with fewer than
    ``min_shapes`` shapes is drawn again: ``min_shapes`` is the fewest shapes an image holds
    (a quarter of these images showed 1 or 2 shapes before)."""
    options = ShapesOptions(
        images=300, image_size=(16, 16), min_shapes=3, max_shapes=3, overlap=True, seed=seed
    )
    count, _ = generate(options).target("count")
    assert np.all(count == 3)


def test_targets_describe_the_masks(sample):
    n = len(sample.masks)
    present = np.stack([(sample.masks == k + 1).any(axis=(1, 2)) for k in range(3)], axis=1)
    multilabel, labels = sample.target("multilabel")
    assert labels == list(SHAPE_NAMES) and multilabel.dtype == np.float32
    np.testing.assert_array_equal(multilabel, present.astype("float32"))
    count, names = sample.target("count")
    assert names == ["count"] and count.shape == (n, 1)
    assert np.all(count[:, 0] >= present.sum(axis=1)) and np.all((count >= 1) & (count <= 4))
    assert len(np.unique(count)) > 1
    area, _ = sample.target("area")
    np.testing.assert_allclose(area[:, 0], (sample.masks > 0).mean(axis=(1, 2)), rtol=1e-6)
    classes, names = sample.target("class")
    assert names == list(SHAPE_NAMES) and classes.dtype == np.int64
    pixels = np.stack([(sample.masks == k + 1).sum(axis=(1, 2)) for k in range(3)], axis=1)
    assert np.all(pixels[np.arange(n), classes] == pixels.max(axis=1))  # the dominant shape
    assert np.bincount(classes, minlength=3).min() > n / 6  # the kinds are about equally common
    mask, names = sample.target("mask")
    assert names == ["background", *SHAPE_NAMES] and mask is sample.masks


def test_generator_does_not_import_tensorflow():
    code = (
        "import sys\nfrom cnnspec.shapes import generate, ShapesOptions\n"
        "generate(ShapesOptions(images=4))\n"
        "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "[]", out.stderr


# -- the spec source ------------------------------------------------------------------------------
DENSE_HEAD = "  - global_avg_pool2d\n  - dense: {units: UNITS, activation: ACT}\n"
MASK_HEAD = "  - conv2d: {filters: 4, kernel_size: 1, activation: softmax}\n"


def shapes_spec(write_spec, source: str, head: str, extra: str = ""):
    text = (
        "cnnspec: 1\nname: s\ninput: {shape: [16, 16, 3]}\nmodel:\n"
        "  - conv2d: {filters: 4, kernel_size: 3, padding: same}\n"
        + head
        + f"data:\n  source: {source}\n"
        + extra
    )
    compiled = compile_spec(write_spec(text))
    return compiled, train_settings(compiled)


@pytest.mark.parametrize(
    ("target", "head", "kind", "y_shape", "dtype"),
    [
        ("class", DENSE_HEAD.replace("UNITS", "3").replace("ACT", "softmax"), "class", (), np.int64),
        (
            "multilabel",
            DENSE_HEAD.replace("UNITS", "3").replace("ACT", "sigmoid"),
            "multilabel",
            (3,),
            np.float32,
        ),
        ("count", DENSE_HEAD.replace("UNITS", "1").replace("ACT", "linear"), "regression", (1,), np.float32),
        ("area", DENSE_HEAD.replace("UNITS", "1").replace("ACT", "linear"), "regression", (1,), np.float32),
        ("mask", MASK_HEAD, "mask", (16, 16), np.integer),  # uint8, or int32 once prepared for a task
    ],
)
def test_every_target_through_the_spec(write_spec, target, head, kind, y_shape, dtype):
    # (a linear head is a classifier unless the spec says otherwise: README, Tasks)
    task = "training: {task: regression}\n" if kind == "regression" else ""
    compiled, config = shapes_spec(write_spec, f"{{shapes: {{images: 60, target: {target}}}}}", head, task)
    data = load_dataset(compiled, config, seed=1)
    assert data.target == kind and data.sizes() == {"train": 43, "validation": 5, "test": 12}
    assert data.x_train.shape[1:] == (16, 16, 3) and data.x_train.dtype == np.uint8
    assert data.y_train.shape[1:] == y_shape and np.issubdtype(data.y_train.dtype, dtype)
    assert data.source["kind"] == "shapes" and data.source["options"]["images"] == 60
    again = load_dataset(compiled, config, seed=1)
    assert (
        again.content_hash() == data.content_hash() != load_dataset(compiled, config, seed=2).content_hash()
    )


def test_default_target_follows_the_model(write_spec):
    """`source: shapes`: masks for an [H, W, C] output, the dominant shape for a classifier."""
    compiled, config = shapes_spec(write_spec, "shapes", MASK_HEAD, "  limit: 10\n")
    assert config.data.target == "mask" and config.data.options["image_size"] == [16, 16]
    assert load_dataset(compiled, config, seed=0).y_train.shape == (10, 16, 16)
    head = DENSE_HEAD.replace("UNITS", "3").replace("ACT", "softmax")
    _, config = shapes_spec(write_spec, "shapes", head)
    assert config.data.target == "class" and config.data.options["images"] == 2000


def test_classification_split_is_stratified(write_spec):
    head = DENSE_HEAD.replace("UNITS", "3").replace("ACT", "softmax")
    compiled, config = shapes_spec(write_spec, "{shapes: {images: 300, image_size: [16, 16]}}", head)
    data = load_dataset(compiled, config, seed=0)
    whole = np.bincount(np.concatenate([data.y_train, data.y_val, data.y_test]), minlength=3) / 300
    np.testing.assert_allclose(np.bincount(data.y_test, minlength=3) / len(data.y_test), whole, atol=0.02)


def test_mask_classes_must_fit_the_output(write_spec):
    compiled, config = shapes_spec(
        write_spec,
        "{shapes: {images: 20}}",
        "  - conv2d: {filters: 3, kernel_size: 1, activation: softmax}\n",
    )
    with pytest.raises(SpecError) as info:
        load_dataset(compiled, config, seed=0)
    assert "at most 3 mask classes" in info.value.errors[0].message
    assert info.value.errors[0].loc is not None and info.value.errors[0].loc.line == 6


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("{shapes: {images: 20, min_shapes: 4, max_shapes: 2}}", "expected min_shapes ≤ max_shapes"),
        ("{shapes: {images: 20, image_size: [4, 4]}}", "at least 8×8"),
        ("{shapes: {images: 20, target: {nope: mask}}}", "expected a model output"),
    ],
)
def test_bad_settings_are_located(write_spec, source, message):
    with pytest.raises(SpecError) as info:
        shapes_spec(write_spec, source, MASK_HEAD)
    error = info.value.errors[0]
    assert message in error.message and error.loc is not None and error.loc.line == 8


def test_schema_refuses_unknown_targets(write_spec, runner):
    from cnnspec.cli.app import app

    path = write_spec(
        "cnnspec: 1\nname: s\ninput: {shape: [16, 16, 3]}\nmodel:\n" + MASK_HEAD + "data:\n"
        "  source: {shapes: {target: masks}}\n"
    )
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 1 and "masks" in result.output and ":7:" in result.output


# -- the generated training script -----------------------------------------------------------------
@pytest.mark.parametrize(
    ("source", "args"),
    [
        ("{shapes: {images: 30, max_shapes: 2, seed: 4}}", (30, 16, 16, 3, 1, 2, 0.1, 4, False)),
        # overlapping shapes with images drawn again to reach min_shapes
        (
            "{shapes: {images: 30, min_shapes: 3, max_shapes: 3, seed: 4, overlap: true}}",
            (30, 16, 16, 3, 3, 3, 0.1, 4, True),
        ),
    ],
    ids=["apart", "overlap-redrawn"],
)
def test_training_script_generates_the_same_images(write_spec, tmp_path, source, args):
    """`codegen --script` copies the generator (NumPy only) into the script; run from the
    script's text it draws the very images cnnspec trains on."""
    import importlib.util

    from cnnspec.api import generate_code

    head = DENSE_HEAD.replace("UNITS", "3").replace("ACT", "softmax")
    compiled, _ = shapes_spec(write_spec, source, head)
    script = generate_code(compiled, script=True)
    assert f"draw_shapes({', '.join(map(str, args))})" in script
    start = script.index("SHAPE_NAMES = ")
    end = script.index("\n\n\ndef split(")
    module_file = tmp_path / "script_generator.py"
    module_file.write_text("import numpy as np\n\n" + script[start:end], encoding="utf-8")
    spec = importlib.util.spec_from_file_location("script_generator", module_file)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    images, masks, kinds = module.draw_shapes(*args)
    n, height, width, _, least, most, _, seed, overlap = args
    expected = generate(
        ShapesOptions(
            images=n,
            image_size=(height, width),
            min_shapes=least,
            max_shapes=most,
            seed=seed,
            overlap=overlap,
        )
    )
    np.testing.assert_array_equal(images, expected.images)
    np.testing.assert_array_equal(masks, expected.masks)
    np.testing.assert_array_equal(kinds, expected.kinds)
    classes, names = module.shapes_target(masks, kinds, "class")
    assert names == list(SHAPE_NAMES)
    np.testing.assert_array_equal(classes, expected.target("class")[0])


def test_training_script_generates_the_other_targets(write_spec):
    """Every shapes target reaches the script (tests/test_codegen_tasks.py runs such scripts)."""
    from cnnspec.api import generate_code

    head = DENSE_HEAD.replace("UNITS", "3").replace("ACT", "sigmoid")
    compiled, _ = shapes_spec(write_spec, "{shapes: {target: multilabel}}", head)
    script = generate_code(compiled, script=True)
    assert 'shapes_target(masks, kinds, "multilabel")' in script and "multilabel_summary(" in script


def test_one_target_per_output(write_spec):
    """A two-headed model (masks, and the dominant shape) gets both targets of the same images."""
    heads = (
        "  - conv2d: {filters: 4, kernel_size: 1, activation: softmax}\n    id: seg\n"
        "  - global_avg_pool2d:\n    inputs: seg\n  - dense: {units: 3, activation: softmax}\n    id: shape\n"
        "outputs: [seg, shape]\n"
    )
    compiled, config = shapes_spec(
        write_spec, "{shapes: {images: 40, target: {seg: mask, shape: class}}}", heads
    )
    data = load_dataset(compiled, config, seed=0)
    assert data.target == {"seg": "mask", "shape": "class"}
    assert data.target_names == {"seg": ["background", *SHAPE_NAMES], "shape": list(SHAPE_NAMES)}
    assert data.y_train["seg"].shape == (len(data.x_train), 16, 16)
    # the classes and the masks describe the same images, in the same order
    pixels = np.stack([(data.y_train["seg"] == k + 1).sum(axis=(1, 2)) for k in range(3)], axis=1)
    np.testing.assert_array_equal(data.y_train["shape"], pixels.argmax(axis=1))
