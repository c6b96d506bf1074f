"""Layer-kind audit: values the registry accepted that Keras then refused (or that failed on the
first batch), and the importer's and the resolver's gaps around them.

- normalization: one number beside a list (ImageNet's per-channel means, one variance) and a
  list of one with ``axis: null`` reach Keras in the shapes it needs;
- the random_* factors are bounded as Keras bounds them (random_rotation: 1);
- dropout's noise_shape takes null or 1 for the batch axis, never a fixed batch size;
- an all-zero regularizer imports (an explicit ``{l2: 0.0}``), and no message shows an empty
  list of keys;
- number parameters stay within float32's range;
- a mistyped initializer (or regularizer key) gets a did-you-mean.

The fast tests compile specs (no TensorFlow); the slow one builds the fixed specs with Keras,
runs a batch, and round-trips a zero regularizer through a real Keras configuration.
"""

from __future__ import annotations

import json
import math

import pytest

from cnnspec.api import compile_text, generate_code
from cnnspec.errors import SpecError
from cnnspec.layers.registry import REGISTRY

#: float32's largest finite value (numpy.finfo("float32").max), the bound of number parameters.
FLOAT32_MAX = 3.4028234663852886e38


def _spec(shape: str, *layers: str) -> str:
    body = "".join(f"  - {layer}\n" for layer in layers)
    return f"cnnspec: 1\nname: audit\ninput: {{shape: {shape}}}\nmodel:\n{body}"


def _errors(text: str) -> list:
    with pytest.raises(SpecError) as caught:
        compile_text(text)
    return [d for d in caught.value.errors if d.severity == "error"]


def _only_error(text: str):
    errors = _errors(text)
    assert len(errors) == 1, [e.message for e in errors]
    return errors[0]


def _args(text: str, index: int = -1) -> dict:
    node = compile_text(text).ir.nodes[index]
    kind = REGISTRY[node.kind]
    return kind.keras_args({**kind.defaults(), **node.params})


# -- 1. normalization: mean and variance in the shapes Keras needs ----------------------------------
NORM_MIXED = _spec("[8, 8, 3]", "normalization: {mean: [0.485, 0.456, 0.406], variance: 0.05}")
NORM_MIXED_REVERSED = _spec("[8, 8, 3]", "normalization: {mean: 0.45, variance: [0.05, 0.06, 0.07]}")
NORM_AXIS_NULL = _spec("[6]", "normalization: {axis: null, mean: [1.0], variance: [2.0]}")


def test_normalization_one_variance_beside_per_channel_means_is_expanded():
    args = _args(NORM_MIXED)
    assert args["mean"] == (0.485, 0.456, 0.406)
    assert args["variance"] == (0.05, 0.05, 0.05)
    reverse = _args(NORM_MIXED_REVERSED)
    assert reverse["mean"] == (0.45, 0.45, 0.45)
    assert reverse["variance"] == (0.05, 0.06, 0.07)


def test_normalization_lists_of_one_with_axis_null_become_numbers():
    args = _args(NORM_AXIS_NULL)
    assert args["axis"] is None
    assert (args["mean"], args["variance"]) == (1.0, 2.0)


def test_generated_code_passes_the_same_mean_and_variance():
    code = generate_code(compile_text(NORM_MIXED))
    assert "mean=(0.485, 0.456, 0.406), variance=(0.05, 0.05, 0.05)" in code
    code = generate_code(compile_text(NORM_AXIS_NULL))
    assert "axis=None, mean=1.0, variance=2.0" in code


def test_normalization_lists_of_different_lengths_are_still_refused():
    error = _only_error(_spec("[8, 8, 3]", "normalization: {mean: [1, 2, 3], variance: [1, 2]}"))
    assert error.path == "model[0].normalization.variance"
    assert "a list of 3" in error.message and "received a list of 2" in error.message


# -- 2. random_* factors within Keras' bounds -------------------------------------------------------
def test_random_rotation_refuses_a_factor_above_one_where_it_is_written():
    error = _only_error(_spec("[8, 8, 3]", "random_rotation: 2"))
    assert error.path == "model[0].random_rotation"
    assert error.message == "expected a number ≥ 0 and ≤ 1 or a list [lower, upper]; received integer 2"
    compile_text(_spec("[8, 8, 3]", "random_rotation: 1"))
    compile_text(_spec("[8, 8, 3]", "random_rotation: [-0.5, 0.25]"))


def test_random_rotation_in_the_augmentation_section_is_refused_too():
    text = (
        "cnnspec: 1\nname: audit\ninput: {shape: [8, 8, 3]}\n"
        "augmentation:\n  - random_rotation: 1.5\nmodel:\n  - flatten\n  - dense: 2\n"
    )
    error = _only_error(text)
    assert error.path == "augmentation[0].random_rotation"
    assert "≤ 1" in error.message


# Keras' bounds (keras/src/layers/preprocessing/image_preprocessing): a single factor in
# _FACTOR_BOUNDS — (-1, 1), (0, 1) for RandomContrast; a list needs lower ≤ bound[1] and
# upper ≥ bound[0]; RandomTranslation bounds every value to [-1, 1].
FACTORS = {
    "random_rotation": ([0.0, 0.5, 1.0, [-1.0, 1.0], [-0.2, 0.3]], [1.01, 2, -0.1, [-1.5, 0.5], [0.5, 2.0]]),
    "random_brightness": ([0.0, 1.0, [-1.0, 1.0], [-0.2, 0.3]], [1.5, [0.5, 1.5]]),
    "random_contrast": ([0.0, 1.0, [0.0, 1.0], [0.2, 0.5]], [1.5, [0.5, 1.5], [-0.5, -0.2], [-0.5, 0.5]]),
    "random_translation": ([0.0, 1.0, [-1.0, 1.0]], [1.5, [-1.5, 0.5]]),
    # the kinds whose factor Keras bounds to (0, 1); ours also refuse a list's negative end, which
    # Keras takes and draws (a negative probability, sharpness or threshold)
    "random_grayscale": ([0.0, 0.5, 1.0], [1.5, -0.1, [0.2, 0.5]]),
    "random_hue": ([0.0, 1.0, [0.0, 1.0], [0.2, 0.5]], [1.5, -0.1, [0.5, 1.5], [-0.5, 0.5]]),
    # (-1, 1) as RandomSaturation bounds it; above 0.5 only with value_range [0, 1]
    "random_saturation": ([0.0, 0.5, [-1.0, 0.5], [0.2, 0.4]], [1.5, -0.1, [0.5, 1.5], 0.9]),
    "random_sharpness": ([0.0, 1.0, [0.0, 1.0], [0.2, 0.8]], [1.5, -0.1, [0.5, 1.5], [-0.5, 0.5]]),
    "random_gaussian_blur": ([0.0, 1.0, [0.0, 1.0]], [1.5, -0.1, [0.5, 1.5], [-0.5, 0.5]]),
    "random_erasing": ([0.0, 1.0, [0.0, 1.0]], [1.5, -0.1, [0.5, 1.5], [-0.5, 0.5]]),
    "random_invert": ([0.0, 1.0, [0.0, 1.0]], [1.5, -0.1, [0.5, 1.5], [-0.5, 0.5]]),
    # (1, 8) bits, whole numbers (Keras' randint refuses 4.0 in the first batch)
    "random_posterization": ([1, 4, 8, [1, 8], [4, 4]], [0, 9, 4.5, [0, 4], [4, 9], [-4, 4]]),
    "random_solarization": ([0.0, 0.5, 1.0, [0.0, 1.0]], [1.5, -0.1, [-0.5, 0.5], [0.5, 1.5]]),
    "rand_augment": ([0.0, 0.5, 1.0, [0.0, 1.0], [0.2, 0.4]], [1.5, -0.1, [-0.5, 0.5], [0.5, 1.5]]),
}


def _factor_spec(kind: str, value) -> str:
    main = REGISTRY[kind].main
    return _spec("[8, 8, 3]", f"{kind}: {{{main}: {json.dumps(value)}}}")


@pytest.mark.parametrize("kind", sorted(FACTORS))
def test_the_random_factors_accepted_are_within_keras_bounds(kind):
    accepted, refused = FACTORS[kind]
    for value in accepted:
        compile_text(_factor_spec(kind, value))
    for value in refused:
        errors = _errors(_factor_spec(kind, value))
        assert errors and errors[0].path.startswith(f"model[0].{kind}"), (value, errors)


def test_a_negative_contrast_amount_is_refused_with_a_hint():
    error = _only_error(_spec("[8, 8, 3]", "random_contrast: [-0.5, -0.2]"))
    assert error.path == "model[0].random_contrast"
    assert error.message.startswith("expected random_contrast's factor [lower, upper] with both from 0 to 1")
    assert error.hint and "1 − lower to 1 + upper" in error.hint


@pytest.mark.parametrize(
    ("value", "path", "message"),
    [
        (
            "[1, 0]",
            "",
            "expected a list [lower, upper] with lower < upper; received [1, 0] (lower 1 > upper 0)",
        ),
        (
            "[0.5, 0.5]",
            "",
            "expected a list [lower, upper] with lower < upper; received [0.5, 0.5] (lower 0.5 = upper 0.5)",
        ),
        ("[0, x]", "[1]", "expected a number (each of [lower, upper]); received string 'x'"),
        # a number that failed as it was read: its own error alone, not one on the list it was
        # read into as 0 ("received a list of 2 items")
        ("[0, .inf]", "[1]", "expected a finite number; received '.inf'"),
        ("[.nan, 1]", "[0]", "expected a finite number; received '.nan'"),
    ],
)
def test_a_value_range_says_which_rule_it_breaks(value, path, message):
    error = _only_error(_spec("[8, 8, 3]", f"random_contrast: {{factor: 0.1, value_range: {value}}}"))
    assert error.path == f"model[0].random_contrast.value_range{path}"
    assert error.message == message


def test_a_nan_in_a_factor_is_said_once_as_written():
    """``.nan`` is read as a placeholder 0 after its error: the list was then said to be
    ``[0.1, 0] (lower 0.1 > upper 0)``, a value the spec never held."""
    error = _only_error(_spec("[8, 8, 3]", "random_rotation: {factor: [0.1, .nan]}"))
    assert error.path == "model[0].random_rotation.factor[1]"
    assert error.message == "expected a finite number; received '.nan'"
    assert (error.loc.line, error.loc.column) == (5, 37)


def test_the_reference_gives_random_rotation_its_bound():
    from tests.conftest import ROOT

    text = (ROOT / "docs" / "reference.md").read_text(encoding="utf-8")
    assert "| `factor` | a number ≥ 0 and ≤ 1 or a list [lower, upper] | required | rotation range" in text


# -- 3. dropout: the noise_shape's batch entry ------------------------------------------------------
def test_a_fixed_batch_size_in_noise_shape_is_refused_at_the_entry():
    error = _only_error(_spec("[4, 4, 2]", "dropout: {rate: 0.5, noise_shape: [32, 1, 1, 1]}"))
    assert error.path == "model[0].dropout.noise_shape[0]"
    assert error.message == (
        "expected null or 1 for the batch axis (a fixed batch size fails on any other); received integer 32"
    )
    assert error.hint == (
        "write [null, 1, 1, 1] (one mask per sample), or [1, 1, 1, 1] (one mask for the whole batch)"
    )


@pytest.mark.parametrize("batch", ["null", "1"])
def test_noise_shape_takes_null_or_one_for_the_batch(batch):
    args = _args(_spec("[4, 4, 2]", f"dropout: {{rate: 0.5, noise_shape: [{batch}, 1, 1, 2]}}"))
    assert args["noise_shape"] == (None if batch == "null" else 1, 1, 1, 2)


def test_the_schema_and_the_reference_say_the_batch_entry():
    from cnnspec.spec.schema import json_schema
    from tests.conftest import ROOT

    (param,) = [p for p in REGISTRY["dropout"].params if p.name == "noise_shape"]
    assert param.check([32, 1]) is not None and param.check([None, 1]) is None and param.check([1, 1]) is None
    import jsonschema

    schema = json_schema()
    mapping = next(a for a in schema["$defs"]["kinds"]["dropout"]["anyOf"] if a.get("type") == "object")
    piece = dict(mapping["properties"]["noise_shape"])
    piece["$defs"] = schema["$defs"]
    validator = jsonschema.Draft202012Validator(piece)
    assert not validator.is_valid([32, 1, 1, 1])
    assert validator.is_valid([None, 1, 1, 1]) and validator.is_valid([1, 1, 1, 1])
    text = (ROOT / "docs" / "reference.md").read_text(encoding="utf-8")
    assert "never a fixed batch size" in text


# -- 4. an all-zero regularizer imports -------------------------------------------------------------
def _dense_config(regularizer: dict) -> dict:
    """A Keras 3 functional config (as `model.get_config()` saves it) of input → dense."""
    dense = {
        "module": "keras.layers",
        "class_name": "Dense",
        "config": {
            "name": "dense_1",
            "trainable": True,
            "dtype": {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"}},
            "units": 2,
            "activation": "linear",
            "use_bias": True,
            "kernel_initializer": {
                "module": "keras.initializers",
                "class_name": "GlorotUniform",
                "config": {"seed": None},
                "registered_name": None,
            },
            "bias_initializer": {
                "module": "keras.initializers",
                "class_name": "Zeros",
                "config": {},
                "registered_name": None,
            },
            "kernel_regularizer": regularizer,
            "bias_regularizer": None,
            "kernel_constraint": None,
            "bias_constraint": None,
        },
        "registered_name": None,
        "build_config": {"input_shape": [None, 4]},
        "name": "dense_1",
        "inbound_nodes": [
            {
                "args": [
                    {
                        "class_name": "__keras_tensor__",
                        "config": {"shape": [None, 4], "dtype": "float32", "keras_history": ["input", 0, 0]},
                    }
                ],
                "kwargs": {},
            }
        ],
    }
    source = {
        "module": "keras.layers",
        "class_name": "InputLayer",
        "config": {"batch_shape": [None, 4], "dtype": "float32", "sparse": False, "name": "input"},
        "registered_name": None,
        "name": "input",
        "inbound_nodes": [],
    }
    return {
        "module": "keras.src.models.functional",
        "class_name": "Functional",
        "config": {
            "name": "reg0",
            "trainable": True,
            "layers": [source, dense],
            "input_layers": ["input", 0, 0],
            "output_layers": ["dense_1", 0, 0],
        },
        "registered_name": "Functional",
    }


ZERO_REGULARIZERS = {
    "L1L2(0, 0)": ("L1L2", {"l1": 0.0, "l2": 0.0}, {"l2": 0.0}),
    "L2(0)": ("L2", {"l2": 0.0}, {"l2": 0.0}),
    "L1(0)": ("L1", {"l1": 0.0}, {"l1": 0.0}),
    "L2(1e-4)": ("L2", {"l2": 1e-4}, {"l2": 1e-4}),
}


@pytest.mark.parametrize("case", sorted(ZERO_REGULARIZERS))
def test_an_all_zero_regularizer_imports_as_an_explicit_zero(tmp_path, case):
    from cnnspec.importer import import_source

    class_name, config, written = ZERO_REGULARIZERS[case]
    regularizer = {"module": "keras.regularizers", "class_name": class_name, "config": config}
    path = tmp_path / "reg0.json"
    path.write_text(json.dumps(_dense_config(regularizer)))
    text = import_source(str(path)).text
    compiled = compile_text(text)
    (node,) = [n for n in compiled.ir.nodes if n.kind == "dense"]
    assert node.params["kernel_regularizer"] == written
    # what the spec builds: an L1L2 with the source's amounts (zero or not)
    call = _args(text)["kernel_regularizer"]
    assert dict(call.kwargs) == {"l1": config.get("l1", 0.0), "l2": config.get("l2", 0.0)}


def test_an_empty_regularizer_mapping_is_said_to_be_empty():
    error = _only_error(_spec("[4]", "dense: {units: 2, kernel_regularizer: {}}"))
    assert error.message == (
        "expected a mapping {l1: number, l2: number} (either or both); received an empty mapping"
    )
    assert "keys " not in error.message
    assert error.hint == "give an amount, e.g. `{l2: 0.0001}`, or null for no penalty"


# -- 5. numbers within float32's range --------------------------------------------------------------
def test_the_float32_limit_is_numpys():
    from cnnspec.layers import params

    numpy = pytest.importorskip("numpy")
    assert float(numpy.finfo("float32").max) == FLOAT32_MAX == params.FLOAT32_MAX


BEYOND_FLOAT32 = {
    "rescaling": (
        _spec("[4]", "rescaling: 1.0e+39"),
        "model[0].rescaling",
        "expected a number at most 3.4028235e+38 (float32's largest); received number 1e+39",
    ),
    "relu": (
        _spec("[4]", "relu: {max_value: 1.0e+308}"),
        "model[0].relu.max_value",
        "expected a number ≥ 0 at most 3.4028235e+38 (float32's largest); received number 1e+308",
    ),
    "rescaling_negative_offset": (
        _spec("[4]", "rescaling: {scale: 1, offset: -1.0e+39}"),
        "model[0].rescaling.offset",
        "expected a number at least -3.4028235e+38; received number -1e+39",
    ),
    "constant": (
        _spec("[4]", "dense: {units: 2, kernel_initializer: {constant: {value: 1.0e+39}}}"),
        "model[0].dense.kernel_initializer",
        "expected {constant: {value: number}} with a value at most 3.4028235e+38 (float32's largest); "
        "received a mapping with keys constant",
    ),
    "normalization_mean": (
        _spec("[4]", "normalization: {mean: 1.0e+39, variance: 1}"),
        "model[0].normalization.mean",
        "expected a number at most 3.4028235e+38 (float32's largest); received number 1e+39",
    ),
    "normalization_variance": (
        _spec("[3]", "normalization: {mean: [1, 2, 3], variance: [1, 1.0e+39, 2]}"),
        "model[0].normalization.variance[1]",
        "expected a number at most 3.4028235e+38 (float32's largest); received number 1e+39",
    ),
    "regularizer": (
        _spec("[4]", "dense: {units: 2, kernel_regularizer: {l2: 1.0e+39}}"),
        "model[0].dense.kernel_regularizer",
        "expected a mapping {l1: number, l2: number} with amounts at most 3.4028235e+38 (float32's "
        "largest); received a mapping with keys l2",
    ),
}


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("scale: -1", "expected a number > 0; received integer -1"),
        ("mode: fan_inn", "expected one of fan_in, fan_out, fan_avg; received string 'fan_inn'"),
    ],
)
def test_a_bad_variance_scaling_setting_is_named_where_it_is_written(setting, message):
    # it listed every initializer there is, at kernel_initializer, and "received a mapping"
    layer = f"conv2d: {{filters: 2, kernel_size: 1, kernel_initializer: {{variance_scaling: {{{setting}}}}}}}"
    (error,) = _errors(_spec("[4]", layer))
    key = setting.split(":")[0]
    assert (error.path, error.message) == (
        f"model[0].conv2d.kernel_initializer.variance_scaling.{key}",
        message,
    )


def test_a_negative_regularizer_amount_says_the_amount_is_the_fault():
    # the message listed the mapping's form, which {l2: -1} has
    (error,) = _errors(_spec("[4]", "dense: {units: 2, kernel_regularizer: {l2: -1}}"))
    assert error.message.startswith(
        "expected a mapping {l1: number, l2: number} with amounts ≥ 0 (a penalty cannot reward weights)"
    )


@pytest.mark.parametrize("case", sorted(BEYOND_FLOAT32))
def test_a_number_beyond_float32_is_refused_where_it_is_written(case):
    text, path, message = BEYOND_FLOAT32[case]
    error = _only_error(text)
    assert (error.path, error.message) == (path, message)


def test_the_largest_float32_and_an_integer_number_are_accepted():
    assert _args(_spec("[4]", f"rescaling: {FLOAT32_MAX!r}"))["scale"] == FLOAT32_MAX
    assert _args(_spec("[4]", "rescaling: 255"))["scale"] == 255.0
    (param,) = [p for p in REGISTRY["rescaling"].params if p.name == "scale"]
    assert param.check(10**39) is not None  # an integer too large for float32 as well
    assert param.check(math.inf) is not None and param.check(math.nan) is not None


# -- 6. did-you-mean for initializer names ----------------------------------------------------------
def test_a_mistyped_initializer_gets_a_did_you_mean():
    error = _only_error(_spec("[4]", "dense: {units: 2, kernel_initializer: he_unifrom}"))
    assert error.path == "model[0].dense.kernel_initializer"
    assert error.hint == "did you mean `he_uniform`?"


def test_a_mistyped_configurable_initializer_gets_a_did_you_mean():
    error = _only_error(_spec("[4]", "dense: {units: 2, kernel_initializer: {constnat: {value: 0}}}"))
    assert error.hint == "did you mean `constant`?"


def test_a_mistyped_regularizer_key_gets_a_did_you_mean():
    error = _only_error(_spec("[4]", "dense: {units: 2, kernel_regularizer: {l_2: 0.1}}"))
    assert error.hint == "did you mean `l2`?"
    error = _only_error(_spec("[4]", "dense: {units: 2, kernel_regularizer: l2}"))
    assert error.hint == "a regularizer is a mapping of amounts: `{l2: 0.0001}` (l1, l2 or both)"


def test_an_activation_still_gets_its_did_you_mean():
    error = _only_error(_spec("[4]", "dense: {units: 2, activation: rleu}"))
    assert error.hint == "did you mean `relu`?"


# -- Keras: the fixed specs build and run; a zero regularizer round-trips -------------------------
@pytest.mark.slow
def test_the_fixed_specs_build_run_and_round_trip_with_keras(tmp_path):
    import keras
    import numpy as np

    from cnnspec.backends.keras_builder import build_model
    from cnnspec.importer import import_source

    rng = np.random.default_rng(0)
    for text, shape in [
        (NORM_MIXED, (2, 8, 8, 3)),
        (NORM_MIXED_REVERSED, (2, 8, 8, 3)),
        (NORM_AXIS_NULL, (2, 6)),
        (_spec("[4, 4, 2]", "dropout: {rate: 0.5, noise_shape: [1, 1, 1, 2]}"), (3, 4, 4, 2)),
        (_spec("[4]", f"rescaling: {FLOAT32_MAX!r}"), (2, 4)),
    ]:
        model = build_model(compile_text(text).ir)
        x = rng.random(shape, dtype=np.float32)
        assert model(x, training=True).shape == shape
    # the normalization a mixed spelling builds is the ImageNet one
    model = build_model(compile_text(NORM_MIXED).ir)
    x = rng.random((1, 8, 8, 3), dtype=np.float32)
    want = (x - np.array([0.485, 0.456, 0.406])) / np.sqrt(0.05)
    np.testing.assert_allclose(model(x).numpy(), want, rtol=1e-5, atol=1e-5)

    # Keras refuses what the registry refuses, and builds what it accepts
    for kind, (accepted, _refused) in FACTORS.items():
        entry = REGISTRY[kind]
        cls = getattr(keras.layers, entry.keras_class)
        for value in accepted:
            cls(**entry.keras_args({**entry.defaults(), entry.main: value}))
        if kind == "random_rotation":  # what validate said ok, before the fix
            for value in (1.01, 2):
                with pytest.raises(ValueError):
                    cls(**entry.keras_args({**entry.defaults(), entry.main: value}))

    # an all-zero regularizer round-trips: build(import(x)) has x's configuration
    for regularizer in (keras.regularizers.L2(0.0), keras.regularizers.L1L2(0.0, 0.0)):
        inputs = keras.Input((4,), name="input")
        outputs = keras.layers.Dense(2, kernel_regularizer=regularizer, name="dense_1")(inputs)
        source = keras.Model(inputs, outputs, name="reg0")
        path = tmp_path / "reg0.json"
        path.write_text(json.dumps(keras.saving.serialize_keras_object(source)))
        rebuilt = build_model(compile_text(import_source(str(path)).text).ir)
        (dense,) = [layer for layer in rebuilt.layers if isinstance(layer, keras.layers.Dense)]
        got = dense.kernel_regularizer.get_config()
        want = regularizer.get_config()
        assert {"l1": got.get("l1", 0.0), "l2": got.get("l2", 0.0)} == {
            "l1": want.get("l1", 0.0),
            "l2": want.get("l2", 0.0),
        }
