"""The modern augmentation kinds (colour: random_grayscale, random_hue, random_saturation,
random_color_jitter; pixel values: random_sharpness, random_gaussian_blur, random_erasing,
random_invert, random_posterization, random_solarization) against Keras 3:

- at inference each passes its input through unchanged (they may sit in ``model:`` too);
- in training it changes uint8-range images, keeps their shape and dtype and stays within
  value_range, and the same seed gives the same images;
- the colour kinds refuse images without 3 channels statically (Keras fails in the first batch,
  or, for grayscale on 1 channel, changes nothing), and the others take any channel count;
- the values the spec refuses beyond the parameter types fail or misbehave in Keras, each with a
  located error and a hint;
- a tiny ``cnnspec train`` runs them all in ``augmentation:``, the generated script writes them,
  and a Keras model holding them imports back.

The fast tests compile specs only; the slow ones run TensorFlow (about 5 s in all).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cnnspec.api import compile_text
from cnnspec.errors import SpecError
from cnnspec.layers.registry import REGISTRY

#: Each new kind with parameters strong enough to change every image of a small batch.
STRONG: dict[str, dict[str, Any]] = {
    "random_grayscale": {"factor": 1.0},
    "random_hue": {"factor": [0.5, 1.0]},
    "random_saturation": {"factor": [0.1, 0.4]},
    "random_color_jitter": {"brightness_factor": 0.3, "contrast_factor": 0.3, "saturation_factor": 0.4},
    "random_sharpness": {"factor": [0.9, 1.0]},
    "random_gaussian_blur": {"factor": [1.0, 1.0]},
    "random_erasing": {"factor": [1.0, 1.0], "scale": [0.2, 0.5]},
    "random_invert": {"factor": [1.0, 1.0]},
    "random_posterization": {"factor": 2},
    "random_solarization": {"threshold_factor": [0.3, 0.6]},
}
COLOUR = ("random_grayscale", "random_hue", "random_saturation", "random_color_jitter")
#: The new kinds that move pixels (masks move with their images: test_registry's mask test);
#: rand_augment moves them with three of its eleven operations.
#: (RandomShear is left out: Keras 3.15 cannot load it back from its own get_config, which holds
#: the symmetric (-f, f) that its __init__ refuses.)
MOVING: dict[str, dict[str, Any]] = {
    "random_perspective": {"factor": [1.0, 1.0], "scale": 0.6},
    "rand_augment": {"num_ops": 3, "factor": [0.5, 1.0]},
}


def _spec(shape: list[int], item: str, section: str = "model") -> str:
    head = f"cnnspec: 1\nname: aug\ninput: {{shape: {shape}}}\n"
    if section == "augmentation":
        return f"{head}augmentation:\n  - {item}\nmodel:\n  - flatten\n  - dense: 2\n"
    return f"{head}model:\n  - {item}\n  - flatten\n  - dense: 2\n"


def _item(kind: str, params: dict[str, Any]) -> str:
    import json

    return f"{kind}: {json.dumps(params)}" if params else kind


def _only_error(text: str):
    with pytest.raises(SpecError) as caught:
        compile_text(text)
    errors = [d for d in caught.value.errors if d.severity == "error"]
    assert len(errors) == 1, [e.message for e in errors]
    return errors[0]


def test_every_new_kind_is_registered_as_a_value_augmentation():
    for kind in STRONG:
        entry = REGISTRY[kind]
        assert entry.augmentation and not entry.geometric, kind
        assert entry.xla, kind  # Keras' supports_jit (checked over the registry in test_registry)
    for kind in MOVING:  # they move pixels; Keras compiles only RandAugment with XLA
        entry = REGISTRY[kind]
        assert entry.augmentation and entry.geometric and entry.xla == (kind == "rand_augment"), kind


# -- channels ---------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", COLOUR)
@pytest.mark.parametrize("channels", [1, 4])
def test_a_colour_kind_refuses_images_without_three_channels(kind, channels):
    for section in ("model", "augmentation"):
        error = _only_error(_spec([8, 8, channels], _item(kind, STRONG[kind]), section))
        assert error.path.startswith(f"{section}[0].{kind}"), error.path
        assert error.message.startswith(f"expected RGB images (3 channels) for {kind}; received {channels}")
        assert error.hint and ("grayscale" in error.hint if channels == 1 else "3 channels" in error.hint)


@pytest.mark.parametrize("channels", [2, 4])
def test_rand_augment_refuses_images_without_one_or_three_channels(channels):
    """Keras' RandAugment fails in the first training batch ("Invalid channel size")."""
    for section in ("model", "augmentation"):
        error = _only_error(_spec([8, 8, channels], "rand_augment: 0.3", section))
        assert error.path == f"{section}[0].rand_augment"
        assert error.message == (
            "expected RGB or grayscale images (3 or 1 channels) for rand_augment; received "
            f"{channels} channels (input shape [8, 8, {channels}])"
        )
        assert error.hint == (
            "Keras' RandAugment takes 3 (RGB) or 1 (grayscale) channels: apply it to such images"
        )
    for channels in (1, 3):
        compile_text(_spec([8, 8, channels], "rand_augment: 0.3", "augmentation"))


def test_color_jitter_takes_any_channels_without_saturation_or_hue():
    compile_text(_spec([8, 8, 1], "random_color_jitter: {brightness_factor: 0.2, contrast_factor: 0.1}"))
    error = _only_error(_spec([8, 8, 1], "random_color_jitter: {brightness_factor: 0.2, hue_factor: 0.1}"))
    assert error.path == "model[0].random_color_jitter.hue_factor"


@pytest.mark.parametrize("kind", sorted(set(STRONG) - set(COLOUR)))
def test_a_pixel_kind_takes_any_number_of_channels(kind):
    for channels in (1, 3, 4):
        compile_text(_spec([8, 8, channels], _item(kind, STRONG[kind])))


# -- values Keras takes but misuses, refused where they are written ---------------------------------
REFUSED = {
    # a negative end of a probability or amount range: Keras draws it (NaN patches for scale)
    "negative-scale": ("random_erasing: {scale: [-0.1, 0.3]}", "scale", "both from 0 to 1"),
    "negative-sharpness": ("random_sharpness: [-0.5, 0.5]", "", "both from 0 to 1"),
    # saturation above 0.5 at [0, 255]: Keras clips it to 255 instead of 1 (negative pixels)
    "saturation-0-255": ("random_saturation: 0.8", "", "at most 0.5 with value_range [0, 255]"),
    "jitter-saturation-0-255": (
        "random_color_jitter: {saturation_factor: [0.2, 0.9]}",
        "saturation_factor",
        "at most 0.5",
    ),
    # Keras inverts as high − x: only a range from 0 maps onto itself
    "invert-range": ("random_invert: {value_range: [-1, 1]}", "value_range", "to start at 0"),
    # Keras draws bits with randint: 4.0 fails in the first batch
    "posterization-fraction": ("random_posterization: 4.5", "", "whole numbers of bits"),
    "blur-sigma": ("random_gaussian_blur: {sigma: 1.5}", "sigma", "sigma at most 1"),
    # Keras builds it and changes nothing
    "jitter-nothing": ("random_color_jitter", "", "at least one of"),
    # Keras takes a negative probability and draws it
    "negative-perspective": ("random_perspective: {factor: [-0.2, 0.5]}", "factor", "both from 0 to 1"),
    "negative-rand-augment": ("rand_augment: {factor: [-0.2, 0.5]}", "factor", "both from 0 to 1"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_values_keras_misuses_are_refused_where_written_with_a_hint(case):
    item, param, words = REFUSED[case]
    kind = item.split(":")[0]
    error = _only_error(_spec([8, 8, 3], item))
    assert error.path == f"model[0].{kind}" + (f".{param}" if param else "")
    assert words in error.message and error.hint


def test_the_allowed_forms_compile():
    for item in (
        "random_saturation: {factor: 0.9, value_range: [0, 1]}",
        "random_gaussian_blur: {sigma: [0.5, 2.0]}",
        "random_posterization: [3, 3]",
        "random_solarization: {addition_factor: 0.2, threshold_factor: [0.4, 0.8]}",
        "random_erasing: {fill_value: 0.0}",
        "random_perspective: {scale: 0.5, fill_value: 127.0}",
        "rand_augment",
        "rand_augment: 0.3",
        "rand_augment: {num_ops: 4, factor: [0.1, 0.9], interpolation: nearest, value_range: [0, 1]}",
    ):
        compile_text(_spec([8, 8, 3], item))


# -- Keras --------------------------------------------------------------------------------------
def _layer(kind: str, params: dict[str, Any], shape: tuple[int, ...] = (8, 8, 3), seed: int = 7):
    """The Keras layer cnnspec builds for ``kind`` (through the compiler and the builder)."""
    from cnnspec.backends.keras_builder import make_layer

    node = compile_text(_spec(list(shape), _item(kind, {**params, "seed": seed}))).ir.nodes[0]
    return make_layer(node)


def _images(channels: int = 3, n: int = 4):
    import numpy as np

    # uint8-range float images; colourful (channels differ) so colour kinds have work to do
    rng = np.random.default_rng(0)
    return np.round(rng.uniform(0, 255, (n, 8, 8, channels))).astype("float32")


@pytest.mark.slow
@pytest.mark.parametrize("kind", sorted({**STRONG, **MOVING}))
def test_keras_passes_through_at_inference_and_changes_images_in_training(kind):
    import numpy as np

    params = {**STRONG, **MOVING}[kind]
    x = _images()
    np.testing.assert_array_equal(np.asarray(_layer(kind, params)(x, training=False)), x)
    # (a fresh layer: some draw their transformation at inference too, which moves the seed on)
    y = np.asarray(_layer(kind, params)(x, training=True))
    assert y.shape == x.shape and y.dtype == np.float32
    assert np.isfinite(y).all() and y.min() >= 0.0 and y.max() <= 255.0, (y.min(), y.max())
    changed = [not np.allclose(y[i], x[i]) for i in range(len(x))]
    assert any(changed), kind
    # the same seed draws the same transformations
    again = np.asarray(_layer(kind, params)(x, training=True))
    np.testing.assert_array_equal(again, y)


@pytest.mark.slow
@pytest.mark.parametrize("kind", sorted(STRONG))
def test_the_channel_rule_is_what_keras_does(kind):
    """A colour kind fails in Keras on 4 channels, and on 1 fails or changes nothing; every other
    kind changes 1- and 4-channel images too."""
    import numpy as np

    from cnnspec.backends.keras_builder import make_layer
    from cnnspec.ir import Node
    from cnnspec.layers.registry import Counts

    entry = REGISTRY[kind]
    for channels in (1, 4):
        x = _images(channels)
        # built directly: the compiler refuses these shapes for the colour kinds
        full = {**entry.defaults(), **STRONG[kind], "seed": 7}
        layer = make_layer(Node("layer", kind, full, ("in",), (8, 8, channels), Counts()))
        try:
            y = np.asarray(layer(x, training=True))
        except Exception:  # TensorFlow's op errors (FailedPreconditionError) and ValueError alike
            assert kind in COLOUR, (kind, channels)
            continue
        assert (kind in COLOUR) == np.allclose(y, x), (kind, channels)


#: (kind, value) the spec refuses beyond the parameter types, and how Keras fails on it.
KERAS_FAILS = [
    ("random_posterization", {"factor": 4.0}),  # randint refuses a float
    ("random_gaussian_blur", {"sigma": 1.5}),  # refused when built
]


@pytest.mark.slow
def test_the_refused_values_fail_or_misbehave_in_keras():
    import keras
    import numpy as np

    x = _images()
    for kind, args in KERAS_FAILS:
        cls = getattr(keras.layers, REGISTRY[kind].keras_class)
        with pytest.raises(Exception):  # noqa: B017 (ValueError when built, a TF error when called)
            cls(**args)(x, training=True)
    # saturation above 0.5 at [0, 255]: negative pixels
    y = np.asarray(keras.layers.RandomSaturation([0.9, 1.0], seed=1)(x, training=True))
    assert y.min() < 0
    # inversion with a range from -1: values leave it
    scaled = x / 127.5 - 1
    y = np.asarray(keras.layers.RandomInvert([1.0, 1.0], value_range=(-1, 1), seed=1)(scaled, training=True))
    assert y.max() > 1


COLORS_SPEC = """\
cnnspec: 1
name: modern_aug
input: {shape: [8, 8, 3]}
augmentation:
  - random_grayscale: 0.2
  - random_hue: 0.1
  - random_saturation: [0.3, 0.5]
  - random_color_jitter: {brightness_factor: 0.1, contrast_factor: 0.1}
  - random_sharpness: [0.4, 0.6]
  - random_gaussian_blur: 0.3
  - random_erasing: 0.3
  - random_invert: 0.1
  - random_posterization: [6, 8]
  - random_solarization: {threshold_factor: [0.9, 1.0]}
  - random_perspective: {factor: 0.3, scale: 0.2}
  - rand_augment: {num_ops: 1, factor: 0.2}
model:
  - conv2d: {filters: 4, kernel_size: 3, padding: same, activation: relu}
  - global_avg_pool2d
  - dense: {units: 3, activation: softmax}
data: {source: {npz: colors.npz}, rescale: null, validation_split: 0.2}
training: {epochs: 1, batch_size: 32, seed: 3}
"""


@pytest.mark.slow
def test_the_new_kinds_train_in_augmentation_and_the_script_writes_them(tmp_path: Path):
    from tests.test_report_support import invoke, train_without_page, write_data

    write_data(tmp_path)
    spec = tmp_path / "spec.yaml"
    spec.write_text(COLORS_SPEC, encoding="utf-8")
    # the trainer `cnnspec train` calls, without the report.html it adds (nothing here reads it)
    train_without_page(spec, tmp_path / "run")
    script = tmp_path / "train.py"
    result = invoke("codegen", spec, "--script", "-o", script)
    assert result.exit_code == 0, result.output
    text = script.read_text(encoding="utf-8")
    compile(text, str(script), "exec")  # valid Python
    for kind in {**STRONG, **MOVING}:
        assert f"{REGISTRY[kind].keras_class}(" in text, kind


@pytest.mark.slow
def test_a_keras_model_with_the_new_layers_imports(tmp_path: Path):
    import json

    import keras

    from cnnspec.importer import import_source

    inputs = keras.Input((8, 8, 3), name="input")
    x = keras.layers.RandomHue(0.2, name="hue")(inputs)
    x = keras.layers.RandomGaussianBlur(0.5, sigma=(0.5, 2.0), name="blur")(x)
    x = keras.layers.RandomPosterization((4, 8), name="poster")(x)
    x = keras.layers.Solarization(threshold_factor=0.5, name="sol")(x)
    x = keras.layers.Flatten(name="flat")(x)
    outputs = keras.layers.Dense(2, name="dense")(x)
    model = keras.Model(inputs, outputs, name="augmented")
    path = tmp_path / "augmented.json"
    path.write_text(json.dumps(keras.saving.serialize_keras_object(model)))
    nodes = compile_text(import_source(str(path)).text).ir.nodes
    assert [n.kind for n in nodes[:4]] == [
        "random_hue",
        "random_gaussian_blur",
        "random_posterization",
        "random_solarization",
    ]
    assert nodes[1].params["sigma"] == [0.5, 2.0]
    assert nodes[2].params["factor"] == [4, 8]


@pytest.mark.slow
def test_rand_augment_moves_masks_only_with_its_moving_operations():
    """RandAugment's photometric operations leave a mask as it is while they change the image;
    with its default bilinear interpolation a moved mask still holds class indices only (Keras
    samples masks with nearest neighbours). test_registry checks the moving operations move
    the mask exactly as the image."""
    import numpy as np

    masks = np.floor(np.random.default_rng(0).random((8, 16, 16, 1)) * 4).astype("float32")
    images = np.repeat(masks, 3, axis=-1) / 4 + 0.1
    layer = _layer("rand_augment", {"num_ops": 3, "factor": 1.0, "value_range": [0, 1]}, (16, 16, 3))
    moving = ("random_shear", "random_translation", "random_rotation")
    layer._AUGMENT_LAYERS = [name for name in type(layer)._AUGMENT_LAYERS if name not in moving]
    out = layer({"images": images, "segmentation_masks": masks}, training=True)
    np.testing.assert_array_equal(np.asarray(out["segmentation_masks"]), masks)
    assert not np.allclose(np.asarray(out["images"]), images)
    layer = _layer("rand_augment", {"num_ops": 3, "factor": 1.0, "value_range": [0, 1]}, (16, 16, 3))
    layer._AUGMENT_LAYERS = list(moving)
    moved = np.asarray(
        layer({"images": images, "segmentation_masks": masks}, training=True)["segmentation_masks"]
    )
    assert not np.array_equal(moved, masks) and set(np.unique(moved)) <= {0.0, 1.0, 2.0, 3.0}


# -- a number factor of contrast: 1 − f to 1 + f ------------------------------------------------
CONTRAST_SPEC = """\
cnnspec: 1
name: contrast
input: {shape: [8, 8, 3]}
augmentation:
  - random_contrast: {factor: 0.3, value_range: [0, 1], seed: 1}
  - random_color_jitter: {contrast_factor: 0.2, value_range: [0, 1], seed: 2}
model:
  - flatten
  - dense: 2
"""


def test_a_contrast_number_is_passed_to_keras_as_both_ends(tmp_path: Path):
    """Keras' RandomContrast reads a number f as (0, f): a scale from 1 to 1 + f. The spec's f
    means 1 − f to 1 + f, so the code passes (f, f); a list stays as written."""
    from tests.test_report_support import invoke

    spec = tmp_path / "spec.yaml"
    spec.write_text(CONTRAST_SPEC, encoding="utf-8")
    result = invoke("codegen", spec)
    assert result.exit_code == 0, result.output
    assert "factor=(0.3, 0.3), value_range=(0.0, 1.0), seed=1," in result.output
    assert "contrast_factor=(0.2, 0.2),\n" in result.output
    spec.write_text(CONTRAST_SPEC.replace("factor: 0.3", "factor: [0.1, 0.3]"), encoding="utf-8")
    result = invoke("codegen", spec)
    assert "factor=(0.1, 0.3), value_range=(0.0, 1.0), seed=1," in result.output


@pytest.mark.slow
@pytest.mark.parametrize(
    ("kind", "params"),
    [("random_contrast", {"factor": 0.5}), ("random_color_jitter", {"contrast_factor": 0.5})],
)
def test_a_contrast_number_lowers_and_raises_the_contrast(kind, params):
    import numpy as np

    layer = _layer(kind, {**params, "value_range": [0, 1]})
    images = np.random.default_rng(0).uniform(0.4, 0.6, (32, 8, 8, 3)).astype("float32")
    out = np.asarray(layer(images, training=True))
    ratio = out.std(axis=(1, 2, 3)) / images.std(axis=(1, 2, 3))
    assert ratio.min() < 0.8 and ratio.max() > 1.2, ratio  # scales from 0.5 to 1.5


@pytest.mark.slow
def test_a_keras_contrast_number_imports_as_the_range_keras_draws(tmp_path: Path):
    """Keras' number f is (0, f): imported as [0, f], and built back it draws the same range
    (RandomColorJitter saves its contrast_factor as given, RandomContrast the pair)."""
    import json

    import keras

    from cnnspec.backends.keras_builder import build_model
    from cnnspec.importer import import_source

    inputs = keras.Input((8, 8, 3), name="input")
    x = keras.layers.RandomContrast(0.3, name="contrast")(inputs)
    x = keras.layers.RandomColorJitter(contrast_factor=0.4, name="jitter")(x)
    outputs = keras.layers.Dense(2, name="dense")(keras.layers.Flatten(name="flat")(x))
    path = tmp_path / "contrast.json"
    path.write_text(json.dumps(keras.saving.serialize_keras_object(keras.Model(inputs, outputs))))
    nodes = compile_text(import_source(str(path)).text).ir.nodes
    assert nodes[0].params["factor"] == [0, 0.3]
    assert nodes[1].params["contrast_factor"] == [0, 0.4]
    built = build_model(compile_text(import_source(str(path)).text).ir)
    contrast = [layer for layer in built.layers if isinstance(layer, keras.layers.RandomContrast)]
    assert [tuple(layer.factor) for layer in contrast] == [(0.0, 0.3)]
    jitter = [layer for layer in built.layers if isinstance(layer, keras.layers.RandomColorJitter)]
    assert tuple(jitter[0].random_contrast.factor) == (0.0, 0.4)
