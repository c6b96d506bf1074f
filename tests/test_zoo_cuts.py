"""Cut points of the zoo: every id docs/zoo.md lists cuts its model as a backbone's `until:`,
and so does the name of any of its layers."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from cnnspec.analysis.zoo import catalog, cut_points
from cnnspec.api import compile_spec, compile_text
from cnnspec.errors import SpecError

FAMILIES = {entry.family: entry for entry in reversed(catalog())}  # the first variant of each


def backbone(model: str, until: str, side: int) -> str:
    return (
        f"cnnspec: 1\nname: m\ninput: {{shape: [{side}, {side}, 3]}}\nmodel:\n"
        f"  - backbone: {{spec: zoo:{model}, until: {until}}}\n    id: body\n  - flatten\n"
    )


@pytest.mark.parametrize(
    ("family", "until"),
    [(family, point) for family, entry in sorted(FAMILIES.items()) for point in cut_points(entry.name)],
)
def test_every_listed_cut_point_cuts_the_model(family, until):
    entry = FAMILIES[family]
    side = max(entry.min_side or 1, 96)
    compiled = compile_text(backbone(entry.name, until, side))
    cut = compiled.ir.nodes[-2]  # the backbone's last layer, before the flatten
    assert cut.name.startswith(f"body_{until}") or cut.name == f"body_{until}"


@pytest.mark.parametrize(
    ("model", "until", "shape"),
    [  # keras.applications' feature maps at a 96×96 input, by the layer each id ends with
        ("densenet121", "conv4", (6, 6, 1024)),  # conv4_block24_concat
        ("densenet121", "pool3", (6, 6, 256)),  # pool3_pool
        ("mobilenet", "block11", (6, 6, 512)),  # conv_pw_11_relu
        ("mobilenet", "block13", (3, 3, 1024)),  # conv_pw_13_relu
        ("mobilenet_v2", "stage5", (6, 6, 96)),  # block_12_add
        ("mobilenet_v2", "stage7", (3, 3, 320)),  # block_16_project_BN
        ("xception", "block4", (6, 6, 728)),  # add_2 (block4's residual)
        ("xception", "block13", (3, 3, 1024)),  # add_11
    ],
)
def test_the_new_cut_points_give_keras_feature_maps(model, until, shape):
    compiled = compile_text(backbone(model, until, 96))
    assert tuple(compiled.ir.nodes[-2].shape) == shape


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_every_cut_keeps_a_prefix_of_the_weighted_layers(family):
    """`weights: imagenet` loads a cut backbone by position: what it keeps must be the first
    weighted layers of the whole model, in order."""
    entry = FAMILIES[family]
    side = max(entry.min_side or 1, 96)
    full = [
        n.name
        for n in compile_spec(f"zoo:{entry.name}", [f"vars.input_shape=[{side}, {side}, 3]"]).ir.nodes
        if n.counts.params
    ]
    for point in cut_points(entry.name):
        kept = [
            n.name.removeprefix("body_")
            for n in compile_text(backbone(entry.name, point, side)).ir.nodes
            if n.counts.params
        ]
        assert kept == full[: len(kept)], point


# -- cuts at a layer name: inside the items, where no id reaches ---------------------------------


def _text(error: SpecError) -> str:
    return "\n".join(f"{d.headline()}\n{d.hint or ''}" for d in error.diagnostics)


@pytest.mark.parametrize(
    ("model", "until", "shape", "params"),
    [  # keras.applications at 224×224: get_layer(until).output, and the params up to it
        ("efficientnet_b0", "block6a_expand_activation", (14, 14, 672), 945_927),
        ("efficientnet_b0", "block3b_add_1", (28, 28, 40), None),  # Keras: block3b_add
        ("mobilenet_v3_small", "expanded_conv_3_project_bn", (14, 14, 40), None),
    ],
)
def test_until_names_any_layer_of_the_backbone_as_its_spec_names_it(model, until, shape, params):
    compiled = compile_text(backbone(model, until, 224))
    cut = compiled.ir.nodes[-2]
    assert cut.name == f"body_{until}" and tuple(cut.shape) == shape
    if params is not None:
        assert sum(n.counts.params for n in compiled.ir.nodes[:-1]) == params


@pytest.mark.parametrize(
    ("model", "until", "last", "shape"),
    [  # the block call's output, as keras.applications names it (`expanded_conv_2_add`)
        ("mobilenet_v3_small", "expanded_conv_2", "expanded_conv_2_add_1", (28, 28, 24)),
        (
            "mobilenet_v3_small",
            "expanded_conv_3.squeeze_excite",
            "expanded_conv_3_squeeze_excite_mul",
            (14, 14, 96),
        ),
        # as `cnnspec inspect` shows the groups
        (
            "mobilenet_v3_small",
            "expanded_conv_3/squeeze_excite",
            "expanded_conv_3_squeeze_excite_mul",
            (14, 14, 96),
        ),
        ("mobilenet_v3_large", "expanded_conv_14", "expanded_conv_14_add_1", (7, 7, 160)),
        ("efficientnet_b0", "block6a", "block6a_project_bn", (7, 7, 192)),
    ],
)
def test_until_names_a_block_call_inside_a_repeat(model, until, last, shape):
    """An id inside a repeat (MobileNetV3's `expanded_conv_2`) reaches no id lookup; the block
    call it names, as `cnnspec inspect` groups its layers, is a cut point: its output."""
    compiled = compile_text(backbone(model, until, 224))
    cut = compiled.ir.nodes[-2]
    assert cut.name == f"body_{last}" and tuple(cut.shape) == shape  # the last layer kept


@pytest.mark.parametrize(
    ("until", "meant"),
    [
        ("expanded_conv_22", "expanded_conv_2"),
        ("expanded_conv_3.squeeze_excit", "expanded_conv_3.squeeze_excite"),
    ],
)
def test_a_mistyped_block_call_gets_the_near_one(until, meant):
    with pytest.raises(SpecError) as caught:
        compile_text(backbone("mobilenet_v3_small", until, 96))
    assert f"did you mean `{meant}`?" in _text(caught.value)


def test_a_mistyped_layer_name_gets_the_near_one():
    with pytest.raises(SpecError) as caught:
        compile_text(backbone("efficientnet_b0", "block6a_expand_activaton", 96))
    text = _text(caught.value)
    assert "no layer 'block6a_expand_activaton' to cut at" in text
    assert "did you mean `block6a_expand_activation`?" in text


@pytest.mark.parametrize(
    ("family", "until"),
    [(family, point) for family, entry in sorted(FAMILIES.items()) for point in cut_points(entry.name)],
)
def test_every_listed_cut_point_takes_imagenet_weights(family, until):
    """The listed cut points are boundaries of the graph: Keras orders the kept layers as in
    the whole model, so keras.applications' file loads by position."""
    entry = FAMILIES[family]
    side = max(entry.min_side or 1, 96)
    text = backbone(entry.name, until, side).replace(
        f"until: {until}}}", f"until: {until}, weights: imagenet}}"
    )
    compile_text(text)


def test_imagenet_refuses_a_cut_inside_a_block_whose_order_keras_changes():
    """A cut at the body's last batch norm keeps the block's input, which the dropped shortcut
    takes: keras.applications orders that shortcut's convolution before the body's last one,
    so by position the shortcut's kernel (same shape) would load into the body's conv."""
    until = "conv2_bottleneck_1_batch_norm_3"
    text = backbone("resnet50", until, 96).replace(
        f"until: {until}}}", f"until: {until}, weights: imagenet}}"
    )
    with pytest.raises(SpecError) as caught:
        compile_text(text)
    assert "drops its layer 'conv2_bottleneck_1_shortcut_projection_1_conv2d_1'" in _text(caught.value)


def test_imagenet_refuses_a_cut_that_drops_a_weighted_layer_before_a_kept_one():
    """keras.applications' files load by position: a cut on a shortcut branch keeps layers with
    weights after ones it drops, which would shift every later layer's weights."""
    until = "conv4_bottleneck_1_shortcut_projection_1_batch_norm_1"
    text = backbone("resnet50", until, 96).replace(
        f"until: {until}}}", f"until: {until}, weights: imagenet}}"
    )
    with pytest.raises(SpecError) as caught:
        compile_text(text)
    rendered = _text(caught.value)
    assert ":5:" in rendered and "drops its layer 'conv4_bottleneck_1_conv2d_1'" in rendered
    assert "loaded by position" in rendered
    compile_text(backbone("resnet50", until, 96))  # without them the cut is fine


def test_codegen_cuts_at_a_layer_item_and_at_one_inside_an_item():
    """A layer item is the end of the backbone's function; a layer inside an item (here in a
    repeat's iteration, a block call and its residual's body) ends it with that item written
    up to the cut (tests/test_codegen_cuts.py has the other kinds of items)."""
    from cnnspec.backends.python_emitter import generate_code

    code = generate_code(compile_text(backbone("mobilenet_v3_small", "activation_1", 96))).text
    assert 'body = mobilenet_v3_small(inputs, name="body")' in code
    code = generate_code(compile_text(backbone("efficientnet_b0", "block6a_expand_activation", 96))).text
    assert 'body = efficientnet_b0(inputs, name="body")' in code
    assert "# iteration 6 of 7 (s = 5), up to the cut at block6a_expand_activation" in code
    assert "return expand_activation" in code and "block6a_dwconv" not in code


@pytest.mark.slow
def test_a_layer_cut_loads_imagenet_by_position_as_keras_computes_it(
    runner, tmp_path_factory, tmp_path, monkeypatch
):
    """EfficientNetB0 cut at `block4a_expand_activation` with `weights: imagenet` (a file this
    test copies into Keras' cache) computes what keras.applications' ImageNet model computes
    there (Keras builds it, its download answered with the file: it has a rescaling more than
    the weights=None model, which the loader folds in; test_zoo_weights' ImageNet test compares
    with the same file and model, made once)."""
    import keras

    from cnnspec.cli.app import app
    from cnnspec.training import transfer_imagenet
    from tests.test_zoo_weights import efficientnet_b0_imagenet

    def no_download(found):
        raise AssertionError(f"downloaded {found.name}")

    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setattr(transfer_imagenet, "download", no_download)
    name = transfer_imagenet.application_file("EfficientNetB0", False, (64, 64, 3)).name
    (tmp_path / "keras" / "models").mkdir(parents=True)
    shared, reference = efficientnet_b0_imagenet(tmp_path_factory)
    shutil.copyfile(shared, tmp_path / "keras" / "models" / name)
    spec = tmp_path / "cut.yaml"
    spec.write_text(
        "cnnspec: 1\nname: cut\ninput: {shape: [64, 64, 3]}\nmodel:\n"
        "  - backbone: {spec: 'zoo:efficientnet_b0', until: block4a_expand_activation,\n"
        "               vars: {include_top: false, input_shape: [64, 64, 3]}, weights: imagenet}\n"
        "    id: body\n"
    )
    result = runner.invoke(app, ["build", str(spec), "-o", str(tmp_path / "cut.keras")])
    assert result.exit_code == 0, result.output
    built = keras.saving.load_model(tmp_path / "cut.keras", safe_mode=True)
    cut = keras.Model(reference.input, reference.get_layer("block4a_expand_activation").output)
    images = np.random.default_rng(0).uniform(0, 255, (2, 64, 64, 3)).astype("float32")
    np.testing.assert_allclose(built(images), cut(images), rtol=1e-4, atol=1e-4)


def test_the_documented_hierarchical_cut_reaches_an_id_inside_an_item():
    """docs/zoo.md's example of an id reached through a cut point: EfficientNet's `stem.bn`."""
    compiled = compile_text(backbone("efficientnet_b0", "stem.bn", 224))
    assert compiled.ir.nodes[-2].name == "body_stem_bn"
    assert tuple(compiled.ir.nodes[-2].shape) == (112, 112, 32)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("model", "until"),
    [
        ("resnet50", "conv3"),
        ("efficientnet_b0", "block4a_expand_activation"),
        ("mobilenet_v3_small", "expanded_conv_3_project_bn"),
    ],
)
def test_a_boundary_cut_orders_its_weighted_layers_as_keras_applications(model, until):
    """What `imagenet` by position relies on: the built cut model's layers with weights are the
    first ones of keras.applications' model, in its order (compared by their tensors' shapes)."""
    import keras

    from cnnspec.api import build_model
    from cnnspec.spec.zoo import variants

    text = backbone(model, until, 96).replace("  - flatten\n", "")
    # Both models are built in a stateless scope that does not initialize their variables: Keras
    # gives each weight its shape and dtype and never fills it. Only the shapes are compared, and
    # filling them from their initializers was most of this test's time (as in test_zoo_parity).
    with keras.StatelessScope(initialize_variables=False):
        built = build_model(compile_text(text))
        reference = getattr(keras.applications, variants()[model].keras_name)(
            weights=None, include_top=False, input_shape=(96, 96, 3)
        )
    ours = [[tuple(w.shape) for w in layer.weights] for layer in built.layers if layer.weights]
    theirs = [[tuple(w.shape) for w in layer.weights] for layer in reference.layers if layer.weights]
    assert ours == theirs[: len(ours)]
