"""The augmentation audit: a moving ``random_*`` layer inside ``model:`` of a segmentation spec
(it would move the images but never their masks) is a located error at ``cnnspec validate``, and
a refused ``[lower, upper]`` factor says which rule it breaks, with its values. No TensorFlow."""

from __future__ import annotations

from pathlib import Path

import pytest

from cnnspec.api import compile_text
from cnnspec.cli.app import app
from cnnspec.errors import SpecError
from cnnspec.layers import REGISTRY

HEAD = "cnnspec: 1\nname: t\ninput: {shape: [8, 8, 1]}\n"
#: (with a training section: ``validate`` checks the tasks of a spec that says how it trains)
MASKS = "data: {source: {shapes: {images: 40, target: mask}}}\ntraining: {epochs: 1}\n"
SEGMENT_HEAD = "  - conv2d: {filters: 4, kernel_size: 1, activation: softmax}\n"
MOVES = "it moves the images but not their masks, so the model would train on misaligned labels"
HINT = "hint: move it into the augmentation: section, which moves the masks with the images"
#: A mask head and a regression head on a shared trunk (``tests/test_tasks.py``'s MULTI), with a
#: place before the trunk (``{trunk}``) and one on the regression branch only (``{branch}``).
MULTI = """\
model:
{trunk}  - conv2d: {{filters: 4, kernel_size: 3, padding: same}}
    id: features
  - conv2d: {{filters: 3, kernel_size: 1, activation: softmax}}
    id: mask
{branch}  - global_avg_pool2d
  - dense: 2
    id: size
outputs: [mask, size]
data: {{source: {{shapes: {{images: 40, target: {{mask: mask, size: count}}}}}}}}
training:
  outputs: {{size: {{task: regression}}}}
"""


def validate(runner, write_spec, text: str) -> tuple[int, str, Path]:
    spec = write_spec(text)
    result = runner.invoke(app, ["validate", str(spec)])
    return result.exit_code, result.output, spec


# -- D1: moving augmentation inside the model of a segmentation spec --------------------------------
def test_moving_layers_in_the_model_of_a_segmentation_spec_are_refused_where_written(runner, write_spec):
    text = HEAD + "model:\n  - random_flip: horizontal\n  - random_rotation: 0.25\n" + SEGMENT_HEAD + MASKS
    code, output, spec = validate(runner, write_spec, text)
    assert code == 1, output
    for line, column, kind, index in ((5, 18, "random_flip", 0), (6, 22, "random_rotation", 1)):
        expected = (
            f"{spec}:{line}:{column}: error: model[{index}].{kind}: expected no {kind} in the model on the "
            f"path to a segmentation output; {MOVES}"
        )
        assert expected in output, output
    assert output.count(HINT) == 2, output


def _item(kind: str) -> str:
    """A layer item of ``kind`` with each required parameter set: a size to the input's own 8
    (a crop must keep it), anything else the reference's example value."""
    from cnnspec.analysis.docs import example_value

    required = [p for p in REGISTRY[kind].params if p.required]
    args = ", ".join(f"{p.name}: {8 if p.type == 'int' else example_value(p)}" for p in required)
    return f"{kind}: {{{args}}}"


@pytest.mark.parametrize("kind", sorted(name for name, k in REGISTRY.items() if k.geometric))
def test_every_geometric_kind_is_refused_before_a_mask_output(runner, write_spec, kind):
    """Every kind the registry marks ``geometric`` (not a list of names): a new one is covered."""
    text = HEAD + f"model:\n  - {_item(kind)}\n" + SEGMENT_HEAD + MASKS
    code, output, spec = validate(runner, write_spec, text)
    assert code == 1, output
    expected = (
        f"{spec}:5:{7 + len(kind)}: error: model[0].{kind}: expected no {kind} in the model on the path"
    )
    assert expected in output and HINT in output, output


def test_the_same_layers_in_the_augmentation_section_validate(runner, write_spec):
    text = (
        HEAD
        + "augmentation:\n  - random_flip: horizontal\n  - random_rotation: 0.25\n"
        + "model:\n"
        + SEGMENT_HEAD
        + MASKS
    )
    code, output, _ = validate(runner, write_spec, text)
    assert code == 0, output


def test_a_photometric_layer_in_the_model_of_a_segmentation_spec_is_fine(runner, write_spec):
    # brightness changes the image's values, not where its pixels are: the mask still fits
    text = HEAD + "model:\n  - random_brightness: {factor: 0.2, value_range: [0, 1]}\n" + SEGMENT_HEAD + MASKS
    code, output, _ = validate(runner, write_spec, text)
    assert code == 0, output


def test_a_moving_layer_in_a_classifier_is_fine(runner, write_spec):
    text = (
        HEAD
        + "model:\n  - random_flip: horizontal\n  - flatten\n  - dense: {units: 3, activation: softmax}\n"
    )
    code, output, _ = validate(runner, write_spec, text)
    assert code == 0, output


def test_a_moving_layer_that_only_feeds_the_other_head_of_a_multi_output_model_is_fine(runner, write_spec):
    text = HEAD + MULTI.format(trunk="", branch="  - random_flip: horizontal\n    inputs: features\n")
    code, output, _ = validate(runner, write_spec, text)
    assert code == 0, output


def test_a_moving_layer_before_the_shared_trunk_is_refused_naming_the_mask_output(runner, write_spec):
    text = HEAD + MULTI.format(trunk="  - random_zoom: 0.1\n", branch="")
    code, output, spec = validate(runner, write_spec, text)
    assert code == 1, output
    expected = (
        f"{spec}:5:18: error: model[0].random_zoom: expected no random_zoom in the model on the path "
        f"to a segmentation output (mask); {MOVES}"
    )
    assert expected in output and HINT in output, output


# -- D3: a [lower, upper] factor that is refused says why -------------------------------------------
AUG_HEAD = HEAD + "model:\n  - flatten\n  - dense: {units: 2, activation: softmax}\naugmentation:\n"


@pytest.mark.parametrize(
    ("item", "where", "message"),
    [
        # lower > upper: the order, with both values
        (
            "random_rotation: {factor: [0.3, 0.1]}",
            "8:31: error: augmentation[0].random_rotation.factor",
            "expected a list [lower, upper] with lower ≤ upper; received [0.3, 0.1] (lower 0.3 > upper 0.1)",
        ),
        (
            "random_brightness: [0.5, -0.5]",
            "8:24: error: augmentation[0].random_brightness",
            "expected a list [lower, upper] with lower ≤ upper; received [0.5, -0.5] "
            "(lower 0.5 > upper -0.5)",
        ),
        # a value out of range: named and pointed at, with the range
        (
            "random_rotation: {factor: [-2, 3]}",
            "8:32: error: augmentation[0].random_rotation.factor[0]",
            "expected a number from -1 to 1 (each of [lower, upper]); received integer -2",
        ),
        (
            "random_translation: {height_factor: 0.1, width_factor: [0.1, 1.5]}",
            "8:66: error: augmentation[0].random_translation.width_factor[1]",
            "expected a number from -1 to 1 (each of [lower, upper]); received number 1.5",
        ),
        # random_zoom's own range (-1, 1], and its order
        (
            "random_zoom: {height_factor: [0.5, 0.1]}",
            "8:34: error: augmentation[0].random_zoom.height_factor",
            "expected a list [lower, upper] with lower ≤ upper; received [0.5, 0.1] (lower 0.5 > upper 0.1)",
        ),
        (
            "random_zoom: {height_factor: [-1, 0.5]}",
            "8:35: error: augmentation[0].random_zoom.height_factor[0]",
            "expected a number > -1 and ≤ 1 (each of [lower, upper]); received integer -1",
        ),
    ],
)
def test_a_refused_factor_list_says_which_rule_it_breaks(runner, write_spec, item, where, message):
    code, output, spec = validate(runner, write_spec, AUG_HEAD + f"  - {item}\n")
    assert code == 1, output
    assert f"{spec}:{where}: {message}" in output, output
    assert "received a list of 2 items" not in output, output


def test_factor_lists_within_the_rules_still_compile():
    for item in ("random_rotation: [-0.5, 0.25]", "random_brightness: [-1, 1]", "random_zoom: [-0.5, 1]"):
        compile_text(AUG_HEAD + f"  - {item}\n", "spec.yaml")


def test_a_computed_reversed_factor_is_named_at_the_parameter():
    # an expression computed the list: no element to point at, the message says the values
    text = "cnnspec: 1\nname: t\nvars: {lo: 0.4}\ninput: {shape: [8, 8, 1]}\n" + AUG_HEAD.split("\n", 3)[3]
    text += '  - random_rotation: {factor: ["${lo}", 0.1]}\n'
    with pytest.raises(SpecError) as caught:
        compile_text(text, "spec.yaml")
    assert "received [0.4, 0.1] (lower 0.4 > upper 0.1)" in str(caught.value)


def test_the_reference_says_the_rule_of_a_factor_list():
    from tests.conftest import ROOT

    text = (ROOT / "docs" / "reference.md").read_text(encoding="utf-8")
    rule = "a list [lower, upper] by lower to upper (lower ≤ upper, each from -1 to 1)"
    for description in (
        "rotation range as a fraction of 2π: a number f turns by -f to f, ",
        "vertical shift as a fraction of the height: a number f shifts by -f to f, ",
        "brightness range as a fraction of value_range: a number f shifts by -f to f, ",
    ):
        assert f"| {description}{rule} |" in text, description
    assert "(lower ≤ upper, both from 0 to 1) |" in text


def test_a_moving_layer_inside_a_block_or_backbone_names_the_call_that_brought_it(write_spec, runner):
    """The error is at the layer's line inside the block (or the backbone's spec): the notes
    say which calls brought it in, as the resolver's errors do."""
    write_spec(
        "cnnspec: 1\nname: bb\ninput: {shape: [32, 32, 3]}\nmodel:\n  - random_flip: horizontal\n",
        "flipbb.yaml",
    )
    spec = write_spec(
        "cnnspec: 1\nname: seg\ninput: {shape: [32, 32, 3]}\nblocks:\n  aug:\n    layers:\n"
        "      - random_zoom: 0.1\nmodel:\n  - backbone: {spec: flipbb.yaml}\n  - aug\n"
        "  - conv2d: {filters: 4, kernel_size: 1, activation: softmax}\n"
        "data: {source: {shapes: {images: 50, image_size: [32, 32], target: mask}}}\n"
        "training: {task: segmentation, epochs: 1}\n"
    )
    result = runner.invoke(app, ["validate", str(spec)])
    assert result.exit_code == 1, result.output
    assert "flipbb.yaml:5:18: error: model[0].random_flip" in result.output
    assert f"note: in backbone 'flipbb.yaml' at model[0] ({spec}:9:15)" in result.output
    assert "spec.yaml:7:22: error: blocks.aug.layers[0].random_zoom" in result.output
    assert f"note: in block 'aug' called from model[1] ({spec}:10:5)" in result.output
