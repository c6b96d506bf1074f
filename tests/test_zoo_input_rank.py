"""An input shape that is no image ([H, W], or 4 axes: [32, 32, 3, 1], [1, 32, 32, 3]) reaching
a zoo model is the user's mistake: it is reported once where the shape was set (the spec's
``input.shape``, or ``--set vars.input_shape=…``), with a hint, not at the first layer of the
packaged zoo file; a backbone fed such an input likewise (a 2-D one was accepted silently,
every backbone layer left out)."""

from __future__ import annotations

import pytest

from cnnspec.cli.app import app

HINT_4D = "hint: an image shape is [height, width, channels], without the batch axis: [32, 32, 3]"


def flat(output: str) -> str:
    return " ".join(output.split())


def backbone_spec(write_spec, shape: str, spec: str = "zoo:resnet50", until: str = "conv2"):
    return write_spec(
        f"cnnspec: 1\nname: t\ninput: {{shape: {shape}}}\nmodel:\n"
        f"  - backbone: {{spec: {spec}, until: {until}, vars: {{include_top: false}}}}\n"
        "  - global_avg_pool2d\n  - dense: {units: 2, activation: softmax}\n"
    )


@pytest.mark.parametrize(
    ("name", "layer"),
    [
        ("resnet50", "blocks.stem.layers[0].zero_padding2d"),
        ("mobilenet_v2", "model[0].conv2d"),
        ("vgg16", "blocks.vgg_stage.layers[0].repeat.layers[0].conv2d"),
        # after its rescaling and normalization, which keep the input's shape at any rank
        ("efficientnet_b0", "blocks.scaled_conv.layers[0].zero_padding2d"),
        ("mobilenet_v3_small", "model[1].conv2d"),
    ],
)
def test_a_4d_input_shape_set_on_a_zoo_model_is_reported_at_the_set(runner, name, layer):
    result = runner.invoke(app, ["inspect", f"zoo:{name}", "--set", "vars.input_shape=[32,32,3,1]"])
    assert result.exit_code == 1
    assert flat(result.output) == (
        "<--set 1>:1:18: error: vars.input_shape: expected an image shape [height, width, channels] "
        f"for {layer}; received [32, 32, 3, 1] (in a --set option on the command line) "
        f"1 | vars.input_shape=[32,32,3,1] ^ {HINT_4D}"
    )


def test_a_leading_batch_axis_is_named_in_the_hint(runner):
    result = runner.invoke(app, ["validate", "zoo:resnet50", "--set", "vars.input_shape=[1,32,32,3]"])
    assert result.exit_code == 1
    assert "<--set 1>:1:18: error: vars.input_shape: expected an image shape" in flat(result.output)
    assert HINT_4D in flat(result.output)


def test_a_2d_input_shape_set_on_a_zoo_model_is_reported_at_the_set_too(runner):
    # (it was reported at the packaged resnet.yaml's `input: {shape: "${input_shape}"}`)
    result = runner.invoke(app, ["inspect", "zoo:resnet50", "--set", "vars.input_shape=[32,32]"])
    assert result.exit_code == 1
    assert flat(result.output) == (
        "<--set 1>:1:18: error: vars.input_shape: expected an image shape [height, width, channels] "
        "for blocks.stem.layers[0].zero_padding2d; received [32, 32] (in a --set option on the "
        "command line) 1 | vars.input_shape=[32,32] ^ "
        "hint: images need a channel axis: [32, 32, 1] (or [32, 32, 3] for RGB)"
    )


@pytest.mark.parametrize(
    ("shape", "hint"),
    [
        ("[32, 32, 3, 1]", HINT_4D),
        ("[32, 32]", "hint: images need a channel axis: [32, 32, 1] (or [32, 32, 3] for RGB)"),
    ],
)
def test_a_backbone_fed_a_non_image_input_is_reported_at_input_shape(runner, write_spec, shape, hint):
    spec = backbone_spec(write_spec, shape)
    result = runner.invoke(app, ["validate", str(spec)])
    assert result.exit_code == 1, result.output
    assert flat(result.output).startswith(
        f"{spec}:3:16: error: input.shape: expected an image shape [height, width, channels] for "
        f"blocks.stem.layers[0].zero_padding2d of backbone 'zoo:resnet50'; received {shape} "
    )
    assert hint in flat(result.output)
    assert "resnet.yaml" not in result.output and "left out" not in result.output


def test_a_4d_input_of_the_specs_own_image_layer_is_reported_at_input_shape(runner, write_spec):
    spec = write_spec(
        "cnnspec: 1\nname: t\ninput: {shape: [8, 8, 3, 1]}\nmodel:\n"
        "  - conv2d: {filters: 4, kernel_size: 3}\n  - global_avg_pool2d\n"
        "  - dense: {units: 2, activation: softmax}\n"
    )
    result = runner.invoke(app, ["validate", str(spec)])
    assert result.exit_code == 1
    assert flat(result.output) == (
        f"{spec}:3:16: error: input.shape: expected an image shape [height, width, channels] for "
        "model[0].conv2d; received [8, 8, 3, 1] 3 | input: {shape: [8, 8, 3, 1]} ^ "
        "hint: an image shape is [height, width, channels], without the batch axis: [8, 8, 3]"
    )


def test_a_4d_input_reshaped_before_the_image_layers_is_no_mistake(runner, write_spec):
    spec = write_spec(
        "cnnspec: 1\nname: t\ninput: {shape: [8, 8, 3, 1]}\nmodel:\n  - reshape: [8, 8, 3]\n"
        "  - conv2d: {filters: 4, kernel_size: 3}\n  - global_avg_pool2d\n"
        "  - dense: {units: 2, activation: softmax}\n"
    )
    result = runner.invoke(app, ["validate", str(spec)])
    assert result.exit_code == 0, result.output


def test_efficientnets_normalization_fed_a_2d_input_is_the_inputs_mistake(runner, write_spec):
    """Its ``normalization: {axis: 3}`` keeps any rank's shape but refuses a 2-D input's axis 3:
    that error is the input's (an image shape passes it), reported where the shape was set,
    not as an axis error inside the packaged efficientnet.yaml."""
    set_shape = runner.invoke(app, ["validate", "zoo:efficientnet_b0", "--set", "vars.input_shape=[32,32]"])
    assert set_shape.exit_code == 1
    assert flat(set_shape.output) == (
        "<--set 1>:1:18: error: vars.input_shape: expected an image shape [height, width, channels] "
        "for model[1].normalization; received [32, 32] (in a --set option on the command line) "
        "1 | vars.input_shape=[32,32] ^ "
        "hint: images need a channel axis: [32, 32, 1] (or [32, 32, 3] for RGB)"
    )
    spec = backbone_spec(write_spec, "[32, 32]", "zoo:efficientnet_b0", "block2")
    result = runner.invoke(app, ["validate", str(spec)])
    assert result.exit_code == 1, result.output
    assert flat(result.output).startswith(
        f"{spec}:3:16: error: input.shape: expected an image shape [height, width, channels] for "
        "model[1].normalization of backbone 'zoo:efficientnet_b0'; received [32, 32] "
    )
    assert "efficientnet.yaml" not in result.output


def test_a_normalization_axis_no_input_has_is_still_its_own_error(runner, write_spec):
    """Axis 5 fits no image either: the error stays at the layer's parameter."""
    spec = write_spec(
        "cnnspec: 1\nname: t\ninput: {shape: [8, 8]}\nmodel:\n  - normalization: {axis: 5}\n"
        "  - flatten\n  - dense: {units: 2, activation: softmax}\n"
    )
    result = runner.invoke(app, ["validate", str(spec)])
    assert result.exit_code == 1
    assert f"{spec}:5:27: error: model[0].normalization.axis: expected axis in [1, 2]" in flat(result.output)
