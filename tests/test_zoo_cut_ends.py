"""Every documented cut point of the zoo (docs/zoo.md's table: the ids ``until:`` can name)
ends where keras.applications' block of that name ends: ``until: conv1`` of ResNet50 keeps
Keras' ``conv1_relu`` and all before it, not the bare convolution before its batch norm and
ReLU (same shape, different features, and nothing said so).

The check runs on the IR, without TensorFlow: each cut's output shape, number of layers and
parameters against :data:`KERAS_BLOCK_ENDS`, which records, for the first variant of each
family, the layer where Keras' block ends and what ``keras.applications.<keras_name>(
include_top=False, weights=None)`` computes up to it (the layers it depends on). The slow test
at the end rebuilds those Keras models and checks the table.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from cnnspec.analysis.passes import compile_text
from cnnspec.analysis.zoo import cut_points
from cnnspec.spec.zoo import variants

#: variant → cut point → (keras.applications' layer where its block ends, that layer's output
#: shape at :data:`SIDE`, the layers it depends on without the input, their parameters).
#: Xception's residual blocks end in an unnamed ``add`` (block2's is the first).
KERAS_BLOCK_ENDS: dict[str, dict[str, tuple[str, tuple[int, int, int], int, int]]] = {
    "densenet121": {
        "conv1": ("conv1_relu", (112, 112, 64), 4, 9_664),
        "conv2": ("conv2_block6_concat", (56, 56, 256), 48, 347_968),
        "pool2": ("pool2_pool", (28, 28, 128), 52, 381_760),
        "conv3": ("conv3_block12_concat", (28, 28, 512), 136, 1_311_808),
        "pool3": ("pool3_pool", (14, 14, 256), 140, 1_444_928),
        "conv4": ("conv4_block24_concat", (14, 14, 1024), 308, 4_318_784),
        "pool4": ("pool4_pool", (7, 7, 512), 312, 4_847_168),
        "conv5": ("conv5_block16_concat", (7, 7, 1024), 424, 7_033_408),
    },
    "efficientnet_b0": {
        "rescaling": ("rescaling", (224, 224, 3), 1, 0),
        "normalization": ("normalization", (224, 224, 3), 2, 7),
        "stem": ("stem_activation", (112, 112, 32), 6, 999),
        "top": ("top_activation", (7, 7, 1280), 236, 4_049_571),
    },
    "efficientnet_v2_b0": {
        "stem": ("stem_activation", (112, 112, 32), 5, 992),
        "top": ("top_activation", (7, 7, 1280), 269, 5_919_312),
    },
    "inception_v3": {
        "mixed0": ("mixed0", (35, 35, 256), 40, 429_440),
        "mixed1": ("mixed1", (35, 35, 288), 63, 707_408),
        "mixed2": ("mixed2", (35, 35, 288), 86, 993_056),
        "mixed3": ("mixed3", (17, 17, 768), 100, 2_146_976),
        "mixed4": ("mixed4", (17, 17, 768), 132, 3_445_920),
        "mixed5": ("mixed5", (17, 17, 768), 164, 5_138_656),
        "mixed6": ("mixed6", (17, 17, 768), 196, 6_831_392),
        "mixed7": ("mixed7", (17, 17, 768), 228, 8_975_264),
        "mixed8": ("mixed8", (8, 8, 1280), 248, 10_674_848),
    },
    "mobilenet": {
        "block1": ("conv_pw_1_relu", (112, 112, 64), 9, 3_712),
        "block2": ("conv_pw_2_relu", (56, 56, 128), 16, 13_248),
        "block3": ("conv_pw_3_relu", (56, 56, 128), 22, 31_808),
        "block4": ("conv_pw_4_relu", (28, 28, 256), 29, 67_264),
        "block5": ("conv_pw_5_relu", (28, 28, 256), 35, 137_152),
        "block6": ("conv_pw_6_relu", (14, 14, 512), 42, 273_600),
        "block7": ("conv_pw_7_relu", (14, 14, 512), 48, 544_448),
        "block8": ("conv_pw_8_relu", (14, 14, 512), 54, 815_296),
        "block9": ("conv_pw_9_relu", (14, 14, 512), 60, 1_086_144),
        "block10": ("conv_pw_10_relu", (14, 14, 512), 66, 1_356_992),
        "block11": ("conv_pw_11_relu", (14, 14, 512), 72, 1_627_840),
        "block12": ("conv_pw_12_relu", (7, 7, 1024), 79, 2_162_880),
        "block13": ("conv_pw_13_relu", (7, 7, 1024), 85, 3_228_864),
    },
    "mobilenet_v2": {
        "stage1": ("expanded_conv_project_BN", (112, 112, 16), 8, 1_984),
        "stage2": ("block_2_add", (56, 56, 24), 26, 17_008),
        "stage3": ("block_5_add", (28, 28, 32), 53, 59_008),
        "stage4": ("block_9_add", (14, 14, 64), 89, 248_768),
        "stage5": ("block_12_add", (14, 14, 96), 115, 558_656),
        "stage6": ("block_15_add", (7, 7, 160), 142, 1_364_864),
        "stage7": ("block_16_project_BN", (7, 7, 320), 150, 1_843_264),
    },
    "mobilenet_v3_small": {
        "conv": ("conv", (112, 112, 16), 2, 432),
        "conv_bn": ("conv_bn", (112, 112, 16), 3, 496),
        "conv_1": ("conv_1", (7, 7, 576), 154, 936_816),
        "conv_1_bn": ("conv_1_bn", (7, 7, 576), 155, 939_120),
    },
    "resnet50": {
        "conv1": ("conv1_relu", (112, 112, 64), 4, 9_728),
        "conv2": ("conv2_block3_out", (56, 56, 256), 38, 229_760),
        "conv3": ("conv3_block4_out", (28, 28, 512), 80, 1_460_096),
        "conv4": ("conv4_block6_out", (14, 14, 1024), 142, 8_589_184),
        "conv5": ("conv5_block3_out", (7, 7, 2048), 174, 23_587_712),
    },
    "resnet50_v2": {
        "conv1": ("conv1_conv", (112, 112, 64), 2, 9_472),
        "conv2": ("conv2_block3_out", (28, 28, 256), 39, 227_328),
        "conv3": ("conv3_block4_out", (14, 14, 512), 85, 1_453_568),
        "conv4": ("conv4_block6_out", (7, 7, 1024), 153, 8_573_440),
        "conv5": ("conv5_block3_out", (7, 7, 2048), 187, 23_556_608),
    },
    "vgg16": {
        "block1": ("block1_pool", (112, 112, 64), 3, 38_720),
        "block2": ("block2_pool", (56, 56, 128), 6, 260_160),
        "block3": ("block3_pool", (28, 28, 256), 10, 1_735_488),
        "block4": ("block4_pool", (14, 14, 512), 14, 7_635_264),
        "block5": ("block5_pool", (7, 7, 512), 18, 14_714_688),
    },
    "xception": {
        "block1": ("block1_conv2_act", (147, 147, 64), 6, 19_680),
        "block2": ("add", (74, 74, 128), 15, 55_712),
        "block3": ("add_1", (37, 37, 256), 25, 193_312),
        "block4": ("add_2", (19, 19, 728), 35, 1_113_624),
        "block13": ("add_11", (10, 10, 1024), 125, 16_105_512),
    },
}
#: The square input side the shapes are recorded at (keras.applications' default size).
SIDE = {"inception_v3": 299, "xception": 299}
DEFAULT_SIDE = 224
CASES = [(variant, cut) for variant, cuts in KERAS_BLOCK_ENDS.items() for cut in cuts]


def _first_variants() -> list[str]:
    """The first variant of each zoo family, in zoo order."""
    seen: dict[str, str] = {}
    for name, variant in variants().items():
        seen.setdefault(variant.family, name)
    return list(seen.values())


def test_the_table_covers_every_family_and_every_documented_cut_point():
    assert sorted(KERAS_BLOCK_ENDS) == sorted(_first_variants())
    for variant, cuts in KERAS_BLOCK_ENDS.items():
        assert cut_points(variant) == list(cuts), variant


@pytest.mark.parametrize(("variant", "cut"), CASES, ids=[f"{v}-{c}" for v, c in CASES])
def test_the_cut_ends_where_keras_applications_block_of_that_name_ends(variant, cut):
    keras_layer, shape, layers, params = KERAS_BLOCK_ENDS[variant][cut]
    side = SIDE.get(variant, DEFAULT_SIDE)
    ir = compile_text(
        f"cnnspec: 1\nname: cut\ninput: {{shape: [{side}, {side}, 3]}}\nmodel:\n"
        f"  - backbone: {{spec: zoo:{variant}, until: {cut}, vars: {{include_top: false}}}}\n"
    ).ir
    (output,) = ir.outputs
    got = (tuple(ir.nodes[-1].shape or ()), len(ir.nodes), sum(node.counts.params for node in ir.nodes))
    assert output == ir.nodes[-1].name
    assert got == (shape, layers, params), f"{variant} until: {cut} should end at Keras' {keras_layer}"


def _depends_on(model: Any, name: str) -> list[Any]:
    """The layers of the Keras ``model`` that its layer ``name`` depends on, itself included and
    the input layer not (operations that are no layer of the model, Keras' own ``ops``, skipped)."""
    import keras

    seen: dict[int, Any] = {}
    stack = [model.get_layer(name)]
    while stack:
        operation = stack.pop()
        if id(operation) in seen:
            continue
        seen[id(operation)] = operation
        for node in operation._inbound_nodes:
            stack.extend(tensor._keras_history.operation for tensor in node.input_tensors)
    members = {id(layer) for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)}
    return [operation for key, operation in seen.items() if key in members]


def keras_table_mismatches() -> list[str]:
    """The entries of :data:`KERAS_BLOCK_ENDS` that keras.applications, rebuilt, does not have
    (``VARIANT CUT``; about 25 s of CPU): run by ``make zoo-golden-check`` (make test-full)
    with the zoo's other Keras fingerprints (:mod:`tests.zoo_golden`)."""
    import keras

    wrong = []
    for variant, cuts in KERAS_BLOCK_ENDS.items():
        keras.backend.clear_session()  # (Xception's unnamed adds are numbered from `add`)
        side = SIDE.get(variant, DEFAULT_SIDE)
        build = getattr(keras.applications, variants()[variant].keras_name)
        model = build(include_top=False, weights=None, input_shape=(side, side, 3))
        for cut, (keras_layer, shape, layers, params) in cuts.items():
            kept = _depends_on(model, keras_layer)
            got = (tuple(model.get_layer(keras_layer).output.shape[1:]), len(kept))
            if (*got, sum(layer.count_params() for layer in kept)) != (shape, layers, params):
                wrong.append(f"{variant} {cut}")
    return wrong


@pytest.mark.slow
@pytest.mark.skipif(
    not os.environ.get("CNNSPEC_ZOO_GOLDEN"),
    reason="the table is rebuilt from keras.applications by `make zoo-golden-check` (make test-full)",
)
def test_the_table_is_what_keras_applications_builds():
    assert keras_table_mismatches() == []
