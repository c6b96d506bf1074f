"""Layer configurations that Keras builds but cannot run, or runs differently from what the
spec promises, refused by the kinds' own checks and shape rules with a located message; and the
range messages of list parameters, which name the bad element and the bound that failed."""

from __future__ import annotations

import pytest

from cnnspec.api import compile_spec
from cnnspec.cli.app import app
from cnnspec.errors import SpecError
from cnnspec.layers.registry import REGISTRY, ShapeError

HEAD = "cnnspec: 1\nname: t\ninput: {shape: [8, 8, 1]}\nvars: {w: 3}\n"


def only_error(runner, path):
    """The one diagnostic of ``path`` (API), after checking that ``cnnspec validate`` prints it
    with its location and exits with 1."""
    with pytest.raises(SpecError) as caught:
        compile_spec(path)
    (error,) = caught.value.errors
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 1, result.output
    assert error.loc is not None
    line = f":{error.loc.line}:{error.loc.column}: error: {error.path}: {error.message}"
    assert line in result.stderr, result.stderr
    return error


def _layer_spec(write_spec, item: str, shape: str = "[8, 8, 1]"):
    text = HEAD.replace("[8, 8, 1]", shape) + f"model:\n  - {item}\n  - flatten\n"
    return write_spec(text)


# -- 1. conv2d_transpose: padding same, output_padding and an even kernel ------------------------
# (input side, kernel, strides, output_padding, dilation) → the output side, or None: refused.
# TensorFlow runs the layer as the gradient of a 'same' convolution of the output, which must
# give back the input: ceil(out / strides) == input. Keras' length is (n-1)·s + k%2 + op.
TRANSPOSE_CASES = [
    ((8, 2, 2, 0, 1), None),  # 14 → 7
    ((8, 2, 1, 0, 1), None),  # 7 → 7 ≠ 8
    ((5, 4, 3, 0, 1), None),  # 12 → 4
    ((8, 2, 1, 0, 3), None),  # dilated kernel 4: 7
    ((8, 2, 2, 1, 1), 15),
    ((8, 4, 2, 1, 1), 15),
    ((8, 4, 3, 1, 1), 22),
    ((8, 4, 3, 2, 1), 23),
    ((8, 3, 2, 0, 1), 15),
    ((8, 3, 2, 1, 1), 16),
    ((8, 2, 1, 0, 2), 8),  # dilated kernel 3: odd
    ((8, 2, 2, None, 1), 16),  # no output_padding: input · strides
]


def _transpose_params(kernel: int, strides: int, output_padding: int | None, dilation: int) -> dict:
    entry = REGISTRY["conv2d_transpose"]
    params = {"filters": 2, "kernel_size": kernel, "strides": strides, "padding": "same"}
    params |= {"output_padding": output_padding, "dilation_rate": dilation}
    return {**entry.defaults(), **params}


@pytest.mark.parametrize(("config", "side"), TRANSPOSE_CASES, ids=str)
def test_same_transpose_output_must_map_back_to_the_input(config, side):
    size, kernel, strides, output_padding, dilation = config
    entry = REGISTRY["conv2d_transpose"]
    params = _transpose_params(kernel, strides, output_padding, dilation)
    if side is None:
        with pytest.raises(ShapeError) as caught:
            entry.output_shape(params, [(size, size, 1)])
        assert caught.value.param == "output_padding"
        assert caught.value.hint == "leave output_padding out, or use an odd kernel"
    else:
        assert entry.output_shape(params, [(size, size, 1)]) == (side, side, 2)


def test_even_kernel_transpose_is_refused_where_it_is_written(runner, write_spec):
    item = "conv2d_transpose: {filters: 4, kernel_size: 2, strides: 2, padding: same, output_padding: 0}"
    error = only_error(runner, _layer_spec(write_spec, item))
    assert error.path == "model[0].conv2d_transpose.output_padding"
    assert error.message == (
        "expected the output height of a 'same' transposed convolution to map back to the input's "
        "height (8) with strides 2; kernel size 2 with output_padding 0 gives 14, and "
        "ceil(14 / 2) = 7: TensorFlow cannot run it (input shape [8, 8, 1])"
    )
    assert error.hint == "leave output_padding out, or use an odd kernel"


def test_only_the_axis_with_the_even_kernel_is_named(runner, write_spec):
    item = "conv2d_transpose: {filters: 4, kernel_size: [3, 2], strides: 2, padding: same, output_padding: 0}"
    error = only_error(runner, _layer_spec(write_spec, item))
    assert error.message.startswith("expected the output width of a 'same' transposed convolution")


@pytest.mark.slow
def test_the_transposed_convolutions_refused_are_those_tensorflow_cannot_run():
    import keras
    import numpy as np

    from cnnspec.training.onednn import kernel_limit

    entry = REGISTRY["conv2d_transpose"]
    for (size, kernel, strides, output_padding, dilation), side in TRANSPOSE_CASES:
        params = _transpose_params(kernel, strides, output_padding, dilation)
        layer = keras.layers.Conv2DTranspose(**entry.keras_args(params))
        try:
            out, refused = layer(np.zeros((1, size, size, 1), "float32")), None
        except Exception as exc:  # TensorFlow's OpError (oneDNN: AbortedError; else InvalidArgumentError)
            out, refused = None, exc
        if side is None:
            assert out is None, (size, kernel, strides, output_padding, dilation)
        elif out is None and dilation > 1:
            # TensorFlow's own CPU kernel (oneDNN off: some CPUs) takes no dilation: a kernel's
            # limit that cnnspec says as such (tests/test_onednn.py), not a shape it got wrong
            limit = kernel_limit(refused)
            assert limit is not None and limit.setting == "TF_ENABLE_ONEDNN_OPTS=1", refused
        else:
            assert out is not None and tuple(out.shape) == (1, side, side, 2), refused


# -- 2. relu: Keras refuses a negative max_value, negative_slope or threshold ------------------------
@pytest.mark.parametrize("name", ["max_value", "negative_slope", "threshold"])
def test_relu_refuses_a_negative_parameter(runner, write_spec, name):
    error = only_error(runner, _layer_spec(write_spec, f"relu: {{{name}: -0.5}}"))
    assert error.path == f"model[0].relu.{name}"
    assert error.message == "expected a number ≥ 0; received number -0.5"


def test_codegen_refuses_a_negative_threshold(runner, write_spec):
    result = runner.invoke(app, ["codegen", str(_layer_spec(write_spec, "relu: {threshold: -0.5}"))])
    assert result.exit_code == 1, result.output
    assert "relu.threshold: expected a number ≥ 0" in result.stderr


@pytest.mark.slow
@pytest.mark.parametrize("name", ["max_value", "negative_slope", "threshold"])
def test_the_relu_values_refused_are_those_keras_refuses(name):
    import keras

    param = REGISTRY["relu"].param_index[name]
    for value in (-0.5, 0.0, 0.5):
        try:
            keras.layers.ReLU(**{name: value})
            built = True
        except ValueError:
            built = False
        assert built == (param.check(value) is None), (name, value)


# -- 3. random_crop: Keras 3 does not crop at inference (keras-team/keras#21868) --------------------
def test_a_crop_that_changes_the_size_is_refused(runner, write_spec):
    error = only_error(runner, _layer_spec(write_spec, "random_crop: {height: 8, width: 6}"))
    assert error.path == "model[0].random_crop.width"
    assert "keras-team/keras#21868" in error.message
    assert error.message.startswith("expected a crop to the input's own size (8×8); received 8×6")
    assert error.hint == "crop or resize the images beforehand, or use `resizing` in the model"


def test_a_crop_to_the_input_size_is_valid(runner, write_spec):
    spec = _layer_spec(write_spec, "random_crop: {height: 8, width: 8}")
    result = runner.invoke(app, ["validate", str(spec)])
    assert result.exit_code == 0, result.output


def test_resizing_in_the_augmentation_is_refused_at_its_item(write_spec):
    spec = write_spec(HEAD + "model: [flatten]\naugmentation:\n  - resizing: {height: 4, width: 4}\n")
    with pytest.raises(SpecError) as caught:
        compile_spec(spec)
    (error,) = caught.value.errors  # (not also the changed shape it would have made)
    assert error.message.startswith("expected a random augmentation layer; received 'resizing'")
    assert error.hint == "put it first in `model`, where it acts at inference too"


def test_the_reference_does_not_promise_a_center_crop():
    assert "center crop" not in REGISTRY["random_crop"].doc
    assert "keras-team/keras#21868" in REGISTRY["random_crop"].doc


@pytest.mark.slow
def test_keras_random_crop_still_passes_images_through_at_inference():
    """The upstream bug the refusal works around: when this fails, Keras crops at inference
    again, and random_crop may change the size once more."""
    import keras
    import numpy as np

    layer = keras.layers.RandomCrop(6, 6)
    images = np.zeros((1, 8, 8, 1), "float32")
    assert tuple(layer(images, training=True).shape) == (1, 6, 6, 1)
    assert tuple(layer(images, training=False).shape) == (1, 8, 8, 1)


# -- 4. range messages name the bound that failed and the bad element -------------------------------
@pytest.mark.parametrize(
    ("item", "path", "message"),
    [
        (
            'conv2d: {filters: "${2 ** 62}", kernel_size: 1}',
            "model[0].conv2d.filters",
            "expected a positive integer at most 2,147,483,647; received integer 4611686018427387904",
        ),
        (
            'conv2d: {filters: 4, kernel_size: "${2 ** 40}"}',
            "model[0].conv2d.kernel_size",
            "expected a positive integer at most 2,147,483,647; received integer 1099511627776",
        ),
        (
            'zero_padding2d: "${10 ** 12}"',
            "model[0].zero_padding2d",
            "expected a non-negative integer at most 2,147,483,647; received integer 1000000000000",
        ),
        (
            'conv2d: {filters: 4, kernel_size: "${[w, 6 / 3]}"}',
            "model[0].conv2d.kernel_size",
            "kernel_size[1]: expected a positive integer; received number 2.0",
        ),
        (
            "conv2d: {filters: 4, kernel_size: [3, -3]}",  # written out: at the element
            "model[0].conv2d.kernel_size[1]",
            "expected a positive integer; received integer -3",
        ),
        (
            "reshape: [0, 48]",
            "model[0].reshape[0]",
            "expected a positive integer or -1; received integer 0",
        ),
        (
            'reshape: [4, "${2 ** 40}"]',  # an expression written as the element: there too
            "model[0].reshape[1]",
            "expected a positive integer at most 2,147,483,647; received integer 1099511627776",
        ),
        (
            "zero_padding2d: [[1, 2], [3, -1]]",
            "model[0].zero_padding2d[1][1]",
            "expected a non-negative integer; received integer -1",
        ),
        (
            'zero_padding2d: [1, "${2 ** 40}"]',
            "model[0].zero_padding2d[1]",
            "expected a non-negative integer at most 2,147,483,647; received integer 1099511627776",
        ),
        (
            'dropout: {rate: 0.1, seed: "${2 ** 40}"}',
            "model[0].dropout.seed",
            "expected a non-negative integer at most 2,147,483,647; received integer 1099511627776",
        ),
    ],
)
def test_range_messages_name_the_bound_and_the_element(runner, write_spec, item, path, message):
    """An element the spec wrote out is located at itself; one an expression computed
    (``${[w, 6 / 3]}``) is named in the message at the parameter."""
    error = only_error(runner, _layer_spec(write_spec, item))
    assert (error.path, error.message) == (path, message)


@pytest.mark.parametrize(
    ("item", "at"),
    [
        ("conv2d: {filters: 4, kernel_size: [3, -3]}", "-3]}"),
        ("zero_padding2d: [[1, 2], [3, -1]]", "-1]]"),
        ("reshape: [0, 48]", "0, 48]"),
    ],
)
def test_the_caret_points_at_the_bad_element_written_out(runner, write_spec, item, at):
    spec = _layer_spec(write_spec, item)
    error = only_error(runner, spec)
    line = spec.read_text().splitlines()[error.loc.line - 1]
    assert line[error.loc.column - 1 :] == at


@pytest.mark.parametrize(
    ("item", "message"),
    [
        (
            "conv2d: {filters: 4, kernel_size: [3, 3, 3]}",
            "expected a positive integer or a list of 2; received a list of 3 items",
        ),
        (
            "conv2d: {filters: 4, kernel_size: 0}",
            "expected a positive integer or a list of 2; received integer 0",
        ),
        (
            "zero_padding2d: -1",
            "expected a non-negative integer, [rows, cols], or [[top, bottom], [left, right]]; "
            "received integer -1",
        ),
        (
            "reshape: [-1, -1]",
            "expected a list of positive integers (at most one -1); received a list of 2 items",
        ),
    ],
)
def test_messages_about_the_whole_value_keep_their_wording(runner, write_spec, item, message):
    assert only_error(runner, _layer_spec(write_spec, item)).message == message


# -- strides with dilation: refused for the convolutions Keras refuses them for only -----------------
STRIDED_DILATED = [
    ("depthwise_conv2d: {kernel_size: 3, strides: 2, dilation_rate: 2, padding: same}", (6, 6, 3)),
    ("depthwise_conv2d: {kernel_size: 3, strides: 2, dilation_rate: 2}", (4, 4, 3)),
    ("separable_conv2d: {filters: 4, kernel_size: 3, strides: [2, 1], dilation_rate: [1, 2], padding: same}",
     (6, 11, 4)),
    ("separable_conv2d: {filters: 4, kernel_size: 3, strides: [2, 1], dilation_rate: [1, 2]}", (5, 7, 4)),
]  # fmt: skip


@pytest.mark.parametrize(("item", "shape"), STRIDED_DILATED)
def test_a_strided_dilated_depthwise_or_separable_convolution_compiles(write_spec, item, shape):
    """Keras' TensorFlow backend runs them (it splits the depthwise convolution in two); only
    conv1d/conv2d and the transposed ones refuse strides and dilation together."""
    compiled = compile_spec(_layer_spec(write_spec, item, "[11, 11, 3]"))
    assert tuple(compiled.ir.nodes[0].shape) == shape


UNEQUAL_STRIDES = [
    "depthwise_conv2d: {kernel_size: 3, strides: [1, 2], padding: same}",
    "separable_conv2d: {filters: 4, kernel_size: 3, strides: [2, 1]}",
]


@pytest.mark.parametrize("item", UNEQUAL_STRIDES)
def test_an_undilated_depthwise_convolution_with_two_strides_is_refused_at_strides(runner, write_spec, item):
    """TensorFlow's depthwise kernel takes one stride for both axes: validate, inspect and
    build passed, and training ended in an internal error at the first batch (exit 3)."""
    error = only_error(runner, _layer_spec(write_spec, item, "[11, 11, 3]"))
    assert error.path.endswith(".strides") and error.message.startswith(
        "expected the same stride in height and width; received strides ["
    )
    assert "max_pool2d: {pool_size: [" in error.hint


@pytest.mark.slow
@pytest.mark.xdist_group("own_kernels")  # (one oneDNN-off server: with_own_kernels)
def test_tensorflow_refuses_the_undilated_depthwise_convolution_with_two_strides():
    """The refusal above is TensorFlow's, not a guess: the layer fails at its first call on
    TensorFlow's own kernels (oneDNN's CPU kernel, on by default with AVX-512, alone runs it)."""
    from tests.conftest import with_own_kernels

    said = with_own_kernels(
        "import keras, numpy as np\n"
        "layer = keras.layers.DepthwiseConv2D(kernel_size=3, strides=(1, 2), padding='same')\n"
        "try:\n"
        "    layer(np.random.rand(1, 11, 11, 3).astype('float32'))\n"
        "    print('ran')\n"
        "except Exception as exc:\n"
        "    print('refused' if 'equal length strides' in str(exc) else repr(exc))\n"
    )
    assert said.strip().splitlines()[-1] == "refused"


def test_a_strided_dilated_conv2d_is_still_refused(runner, write_spec):
    path = _layer_spec(write_spec, "conv2d: {filters: 2, kernel_size: 3, strides: 2, dilation_rate: 2}")
    assert "expected strides of 1 when dilation_rate > 1" in only_error(runner, path).message


@pytest.mark.slow
def test_the_strided_dilated_depthwise_convolutions_run_in_keras_as_inferred():
    import keras
    import numpy as np

    from cnnspec.api import compile_text

    classes = {
        "depthwise_conv2d": keras.layers.DepthwiseConv2D,
        "separable_conv2d": keras.layers.SeparableConv2D,
    }
    for item, shape in STRIDED_DILATED:
        node = compile_text(HEAD.replace("[8, 8, 1]", "[11, 11, 3]") + f"model:\n  - {item}\n").ir.nodes[0]
        layer = classes[node.kind](**REGISTRY[node.kind].keras_args(node.params))
        out = layer(np.random.rand(2, 11, 11, 3).astype("float32"))  # runs: the TensorFlow backend
        assert tuple(out.shape) == (2, *shape), item


def test_a_mean_per_channel_with_axis_null_says_which_axis_it_needs(runner, write_spec):
    path = _layer_spec(write_spec, "normalization: {axis: null, mean: [1, 2, 3], variance: 1}", "[8, 8, 3]")
    error = only_error(runner, path)
    assert "a list of 1 with axis: null" in error.message and "None" not in error.message
    assert error.hint == "a mean per channel needs axis: -1"
