"""The spec library's keras.applications reproductions and the zoo's block library
(``cnnspec/zoo/blocks``, ``use: [zoo:blocks/NAME]``).

Fast tests check each spec statically (no TensorFlow): it validates, its inferred total equals the
Keras figure, it stays short, and every block library is usable through ``use:`` from any folder.
Slow tests build each spec and the matching ``keras.applications`` model (``weights=None``: nothing
is downloaded) and compare parameter counts, output shapes, sorted weight shapes and layer
configurations.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cnnspec.api import compile_spec
from cnnspec.cli.app import app
from cnnspec.errors import SpecError
from cnnspec.spec.loader import load_file
from tests.conftest import ROOT, SPECS_DIR

# spec stem → (keras.applications function, parameters, input shape)
APPLICATIONS: dict[str, tuple[str, int, tuple[int, ...]]] = {
    "vgg16": ("VGG16", 138_357_544, (224, 224, 3)),
    "resnet50": ("ResNet50", 25_636_712, (224, 224, 3)),
    "inception_v3": ("InceptionV3", 23_851_784, (299, 299, 3)),
    "densenet121": ("DenseNet121", 8_062_504, (224, 224, 3)),
    "mobilenet_v2": ("MobileNetV2", 3_538_984, (224, 224, 3)),
}
BLOCKS_DIR = ROOT / "cnnspec" / "zoo" / "blocks"
LIBRARIES = sorted(BLOCKS_DIR.glob("*.yaml"))

# One call of every block in specs/blocks, in an order whose shapes chain on a 16×16×8 input.
BLOCK_CALLS: dict[str, list[str]] = {
    "resnet.yaml": [
        "projection: {filters: 8}",
        "basic_residual: {filters: 8}",
        "basic_residual: {filters: 16, stride: 2}",
        "bottleneck: {filters: 4}",
        "bottleneck_stage: {filters: 8, blocks: 2}",
        "preact_body: 8",
        "preact_projection: 4",
        "preact_bottleneck: {filters: 4, stride: 2}",
        "preact_stage: {filters: 4, blocks: 3}",
    ],
    "inception.yaml": [
        "basic_conv: {filters: 8, kernel: [1, 7]}",
        "inception_a: 8",
        "reduction_a",
        "inception_b: 16",
        "reduction_b",
        "split_1x3_3x1: 8",
        "inception_c",
    ],
    "densenet.yaml": ["dense_layer: 8", "dense_block: {size: 2, growth_rate: 4}", "transition"],
    "squeeze_excite.yaml": ["squeeze_excite", "squeeze_excite: {reduction: 4, activation: swish}"],
    "mobilenet.yaml": [
        "inverted_residual: {filters: 8}",
        "inverted_residual_stage: {expansion: 6, filters: 16, repeats: 2, stride: 2}",
        "mbconv: {filters: 16, kernel: 5}",
        "mbconv: {filters: 24, stride: 2, expansion: 1}",
        "squeeze_excite",
    ],
    "efficientnet_v2.yaml": [
        "scaled_conv_v2: {filters: 8, kernel: 3, stride: 2}",
        "fused_mbconv: {filters: 8, expansion: 1}",
        "fused_mbconv: {filters: 16, stride: 2, se_ratio: 0.25}",
        "mbconv_v2: {filters: 16, drop: 0.1}",
    ],
    "mobilenet_v3.yaml": [
        "inverted_residual_v3: {expanded: 8, filters: 8, se: true}",
        "inverted_residual_v3: {expanded: 32, filters: 16, kernel: 5, stride: 2, activation: hard_swish}",
        "squeeze_excite_v3",
    ],
    "efficientnet.yaml": [
        "scaled_conv: {filters: 8, kernel: 3, stride: 2}",
        "scaled_conv: {filters: 12, width: 1.1}",
    ],
    # the feature-extractor paths (the classifier's ends the chain at rank 1; the zoo tests build it)
    "head.yaml": ["feature_pooling", "flat_head: 8", "pooled_head"],
}
#: Vars a library's calls need on the 16×16×8 chain.
LIBRARY_VARS: dict[str, str] = {"head.yaml": "vars: {include_top: false}\n"}


def spec_path(stem: str) -> Path:
    return SPECS_DIR / f"{stem}.yaml"


# -- fast: static analysis only ------------------------------------------------------------------
@pytest.mark.parametrize("stem", APPLICATIONS)
def test_spec_validates_with_the_keras_parameter_count(stem):
    _, params, input_shape = APPLICATIONS[stem]
    compiled = compile_spec(spec_path(stem))
    assert compiled.warnings == []
    assert compiled.ir.totals.params == params
    assert compiled.ir.input_shape == input_shape
    assert compiled.ir.output_shapes == [(1000,)]


@pytest.mark.parametrize("stem", APPLICATIONS)
def test_spec_is_short_and_names_its_sources(stem):
    text = spec_path(stem).read_text(encoding="utf-8")
    lines = text.splitlines()
    assert lines[0] == "# yaml-language-server: $schema=../schemas/cnnspec.schema.json"
    assert "keras.applications" in text and "keras/src/applications/" in text
    assert "zoo:" in text, "the spec library's classics come from the packaged zoo"
    assert len(lines) <= 50, "a spec this long means the language is missing a feature"


@pytest.mark.parametrize("stem", APPLICATIONS)
def test_inspect_reports_the_keras_total(stem, runner):
    result = runner.invoke(app, ["inspect", "--format", "json", str(spec_path(stem))])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["total_params"] == APPLICATIONS[stem][1]
    assert report["output_shape"] == [None, 1000]


def test_nested_blocks_are_named_by_their_path():
    names = [node.name for node in compile_spec(spec_path("resnet50")).ir.nodes]
    assert "conv2_bottleneck_1_conv2d_1" in names  # stage id, then the block instance
    assert "conv2_bottleneck_1_shortcut_projection_1_conv2d_1" in names
    assert "conv2_bottleneck_2_shortcut_projection_1_conv2d_1" not in names  # identity shortcut
    assert "conv3_bottleneck_1_shortcut_projection_1_conv2d_1" in names
    assert not any("conv2_conv2_" in name for name in names)
    assert len(names) == len(set(names))


def test_mobilenet_padding_follows_keras_correct_pad(write_spec):
    """``in_shape[0]`` in an expression: the pad before a stride-2 depthwise conv depends on parity."""
    pads = {}
    for size in (16, 15):
        path = write_spec(
            f"cnnspec: 1\nname: m\nuse: [zoo:blocks/mobilenet]\ninput: {{shape: [{size}, {size}, 8]}}\n"
            "model:\n  - inverted_residual: {filters: 8, stride: 2}\n"
        )
        nodes = compile_spec(path).ir.nodes
        pad = next(n for n in nodes if n.kind == "zero_padding2d")
        pads[size] = pad.params["padding"]
        assert nodes[-1].shape == ((size + 1) // 2, (size + 1) // 2, 8)
    assert pads == {16: [[0, 1], [0, 1]], 15: [[1, 1], [1, 1]]}


@pytest.mark.parametrize("library", LIBRARIES, ids=lambda p: p.name)
def test_every_block_library_is_usable(library, write_spec):
    calls = BLOCK_CALLS[library.name]
    text = library.read_text(encoding="utf-8")
    assert text.startswith("# ") and "cnnspec: 1" in text
    items = "\n".join(f"  - {call}" for call in calls)
    path = write_spec(
        f"cnnspec: 1\nname: uses_{library.stem}\nuse: [zoo:blocks/{library.stem}]\n"
        f"{LIBRARY_VARS.get(library.name, '')}input: {{shape: [16, 16, 8]}}\n"
        f"model:\n{items}\n  - global_avg_pool2d\n"
    )
    compiled = compile_spec(path)
    assert compiled.warnings == []
    assert all(node.shape is not None for node in compiled.ir.nodes)
    own = set(load_file(library).data["blocks"])
    called = {call.split(":")[0] for call in calls}
    assert own <= called, f"add a call of {sorted(own - called)} to BLOCK_CALLS"


def test_block_libraries_can_share_a_library(write_spec):
    """mobilenet.yaml uses squeeze_excite.yaml; a spec may use both (the same definition twice)."""
    path = write_spec(
        "cnnspec: 1\nname: both\nuse: [zoo:blocks/mobilenet, zoo:blocks/squeeze_excite]\n"
        "input: {shape: [8, 8, 16]}\nmodel:\n  - squeeze_excite\n  - mbconv: 16\n"
    )
    kinds = [node.kind for node in compile_spec(path).ir.nodes]
    assert kinds.count("multiply") == 2  # one squeeze-excite on its own, one inside the MBConv


def test_block_parameter_defaults_may_read_the_block_input(write_spec):
    compiled = compile_spec(
        write_spec(
            "cnnspec: 1\nname: d\ninput: {shape: [8, 8, 12]}\n"
            "blocks:\n  widen:\n    params:\n      factor: int\n"
            '      width: {type: int, default: "${in_channels * factor}"}\n'
            '    layers: [conv2d: {filters: "${width}", kernel_size: 1}]\n'
            "model:\n  - widen: 2\n  - widen: {factor: 1, width: 5}\n"
        )
    )
    assert [node.shape for node in compiled.ir.nodes] == [(8, 8, 24), (8, 8, 5)]


def test_bad_block_parameter_default_is_located_at_the_default(write_spec):
    path = write_spec(
        "cnnspec: 1\nname: d\ninput: {shape: [8, 8, 3]}\n"
        "blocks:\n  b:\n    params:\n"
        '      width: {type: int, default: "${in_channels / 2}"}\n'
        '    layers: [conv2d: {filters: "${width}", kernel_size: 1}]\n'
        "model: [b]\n"
    )
    with pytest.raises(SpecError) as caught:
        compile_spec(path)
    error = caught.value.errors[0]
    assert "expected int" in error.message and "1.5" in error.message
    assert error.loc is not None and error.loc.line == 7


def test_a_single_value_fills_the_only_required_block_parameter(write_spec):
    text = (
        "cnnspec: 1\nname: d\ninput: {shape: [8, 8, 3]}\n"
        "blocks:\n  b:\n    params: {filters: int, kernel: {type: int, default: 3}}\n"
        '    layers: [conv2d: {filters: "${filters}", kernel_size: "${kernel}"}]\n'
        "  two:\n    params: {a: int, b: int}\n    layers: [conv2d: {filters: 1, kernel_size: 1}]\n"
    )
    compiled = compile_spec(write_spec(text + "model: [b: 4]\n"))
    assert compiled.ir.nodes[0].params["filters"] == 4 and compiled.ir.nodes[0].shape == (6, 6, 4)
    with pytest.raises(SpecError) as caught:
        compile_spec(write_spec(text + "model: [b: 4, two: 1]\n"))
    assert "expected a mapping of arguments for block `two`" in caught.value.errors[0].message


# The specs in specs/ now extend the zoo; tests/test_zoo_parity.py builds every zoo variant
# against keras.applications (class, configuration and weight shape of every layer).
