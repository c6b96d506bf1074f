"""A new user's typical mistakes (Keras and PyTorch habits, YAML surprises), each reported once,
where it is written, with a hint that says what to write instead.

Every case drives ``cnnspec validate`` through the CLI and checks the number of errors, the
``line:column``, the path, the message and the hint."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest

from cnnspec.cli.app import app

HEAD = "cnnspec: 1\nname: t\ninput: {shape: [8, 8, 1]}\n"
#: A classifier head the model items below are followed by (line numbers count from HEAD).
TAIL = "  - global_avg_pool2d\n  - dense: {units: 10, activation: softmax}\n"
ERROR_LINE = re.compile(r"^\S+?:(\d+):(\d+): error: ([^:]+): (.*)$")


@dataclass
class Reported:
    """One printed error: where, the path, the message and its hint (``None``: no hint)."""

    line: int
    column: int
    path: str
    message: str
    hint: str | None = None


def validate(runner, write_spec, text: str) -> list[Reported]:
    """The errors ``cnnspec validate`` prints for the spec ``text`` (it must fail)."""
    result = runner.invoke(app, ["validate", str(write_spec(text))])
    assert result.exit_code == 1, result.output
    found: list[Reported] = []
    for line in result.stderr.splitlines():
        match = ERROR_LINE.match(line)
        if match:
            found.append(Reported(int(match[1]), int(match[2]), match[3], match[4]))
        elif line.startswith("  hint: ") and found:
            found[-1].hint = line.removeprefix("  hint: ")
    return found


def only(runner, write_spec, text: str) -> Reported:
    """The one error printed for ``text``."""
    found = validate(runner, write_spec, text)
    assert len(found) == 1, found
    return found[0]


# -- 3. one mistake, one error ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("item", "column", "path", "key", "kind", "meant"),
    [
        ("conv2d: {units: 8, kernel_size: 3}", 14, "model[0].conv2d.units", "units", "conv2d", "filters"),
        (
            "conv2d: {out_channels: 8, kernel_size: 3}",
            14,
            "model[0].conv2d.out_channels",
            "out_channels",
            "conv2d",
            "filters",
        ),
        ("conv2d: {filters: 8, kernel: 3}", 26, "model[0].conv2d.kernel", "kernel", "conv2d", "kernel_size"),
        ("dropout: {p: 0.3}", 15, "model[0].dropout.p", "p", "dropout", "rate"),
    ],
)
def test_another_librarys_parameter_name_is_one_error_naming_cnnspecs(
    runner, write_spec, item: str, column: int, path: str, key: str, kind: str, meant: str
) -> None:
    error = only(runner, write_spec, HEAD + f"model:\n  - {item}\n" + TAIL)
    assert (error.line, error.column, error.path) == (5, column, path)
    assert error.message == f"unknown parameter {key!r} for `{kind}`"
    assert error.hint == f"did you mean `{meant}`?"


def test_filters_on_dense_is_one_error_naming_units(runner, write_spec) -> None:
    error = only(
        runner, write_spec, HEAD + "model:\n  - flatten\n  - dense: {filters: 10, activation: softmax}\n"
    )
    assert (error.line, error.column, error.path) == (6, 13, "model[1].dense.filters")
    assert error.message == "unknown parameter 'filters' for `dense`"
    assert error.hint == "did you mean `units`?"


def test_a_synonym_in_defaults_is_not_also_a_missing_parameter(runner, write_spec) -> None:
    text = HEAD + "defaults: {dropout: {p: 0.3}}\nmodel:\n  - flatten\n  - dropout\n"
    error = only(runner, write_spec, text + "  - dense: {units: 10, activation: softmax}\n")
    assert (error.line, error.column, error.path) == (4, 22, "defaults.dropout.p")
    assert error.hint == "did you mean `rate`?"


def test_a_python_tuple_in_a_flow_mapping_is_one_error_at_the_parameter(runner, write_spec) -> None:
    # YAML reads `(3, 3)` there as `kernel_size: "(3"` and a key `3)`: not two errors
    error = only(runner, write_spec, HEAD + "model:\n  - conv2d: {filters: 8, kernel_size: (3, 3)}\n" + TAIL)
    assert (error.line, error.column, error.path) == (5, 39, "model[0].conv2d.kernel_size")
    assert error.message == "expected a positive integer or a list of 2; received string '(3, 3)'"
    assert error.hint == "write a list [3, 3], not a tuple: YAML reads `(3, 3)` as text"


def test_a_flat_optimizer_mapping_is_one_error_with_the_nested_form(runner, write_spec) -> None:
    text = HEAD + "model: [flatten, {dense: {units: 10, activation: softmax}}]\n"
    error = only(runner, write_spec, text + "training:\n  optimizer: {name: adam, learning_rate: 0.003}\n")
    assert (error.line, error.column, error.path) == (6, 14, "training.optimizer")
    assert error.message == (
        "expected the optimizer's name as its key; received a mapping with keys name, learning_rate"
    )
    assert error.hint == "write optimizer: {adam: {learning_rate: 0.003}}"


# -- 2. dense before flatten -----------------------------------------------------------------


def test_dense_on_a_feature_map_is_a_classifier_missing_its_flatten(runner, write_spec) -> None:
    text = HEAD + (
        "model:\n"
        "  - conv2d: {filters: 4, kernel_size: 3, padding: same}\n"
        "  - max_pool2d: 2\n"
        "  - dense: 16\n"
        "  - dense: {units: 10, activation: softmax}\n"
        "data: {source: digits}\ntraining: {epochs: 1}\n"
    )
    error = only(runner, write_spec, text)
    assert (error.line, error.column, error.path) == (8, 12, "model[3].dense")
    assert error.message == (
        "expected a classification output of shape [units]; model[3].dense outputs [4, 4, 10] "
        "(dense acts on the last axis only, keeping height and width)"
    )
    assert error.hint == "add flatten or global_avg_pool2d before model[2].dense, whose input is [4, 4, 4]"


# -- 4. an image input without its channel axis ----------------------------------------------


def test_a_two_dimensional_image_input_is_reported_once_at_input_shape(runner, write_spec) -> None:
    text = "cnnspec: 1\nname: t\ninput: {shape: [8, 8]}\nmodel:\n  - conv2d: {filters: 4, kernel_size: 3}\n"
    text += TAIL + "augmentation:\n  - random_flip\n"
    error = only(runner, write_spec, text)
    assert (error.line, error.column, error.path) == (3, 16, "input.shape")
    assert (
        error.message
        == "expected an image shape [height, width, channels] for model[0].conv2d; received [8, 8]"
    )
    assert error.hint == "images need a channel axis: [8, 8, 1] (or [8, 8, 3] for RGB)"


def test_a_block_named_after_a_kind_is_one_error_not_its_calls_too(runner, write_spec) -> None:
    # the items meant to call it were also reported as conv2d layers missing two parameters
    text = "cnnspec: 1\nname: t\ninput: {shape: [8, 8, 3]}\nblocks:\n  conv2d:\n    layers: [batch_norm]\n"
    error = only(runner, write_spec, text + "model:\n  - conv2d\n" + TAIL)
    assert (error.line, error.path) == (5, "blocks.conv2d")


def test_in_channels_after_a_two_dimensional_input_says_nothing_more(runner, write_spec) -> None:
    # "'in_channels' has no value because of an earlier error" followed: the error was held back
    text = "cnnspec: 1\nname: t\ninput: {shape: [8, 8]}\nmodel:\n  - max_pool2d: 2\n"
    text += '  - conv2d: {filters: "${in_channels * 2}", kernel_size: 1}\n' + TAIL
    error = only(runner, write_spec, text)
    assert (error.line, error.column, error.path) == (3, 16, "input.shape")


# -- 1. other libraries' names for metrics and settings --------------------------------------


@pytest.mark.parametrize("alias", ["acc", "sparse_categorical_accuracy"])
def test_a_keras_metric_alias_names_cnnspecs_metric(runner, write_spec, alias: str) -> None:
    text = HEAD + "model: [flatten, {dense: {units: 10, activation: softmax}}]\n"
    error = only(runner, write_spec, text + f"training:\n  metrics: [{alias}]\n")
    assert (error.line, error.column, error.path) == (6, 13, "training.metrics[0]")
    assert error.message.endswith(f"received string '{alias}'")
    assert error.hint == f"did you mean `accuracy`? cnnspec spells `{alias}` as `accuracy`"


def test_lr_names_the_optimizers_learning_rate(runner, write_spec) -> None:
    text = HEAD + "model: [flatten, {dense: {units: 10, activation: softmax}}]\n"
    error = only(runner, write_spec, text + "training:\n  optimizer: {adam: {lr: 0.003}}\n")
    assert (error.line, error.column, error.path) == (6, 22, "training.optimizer.adam.lr")
    assert error.message == "unknown key 'lr'"
    assert error.hint == "did you mean `learning_rate`? cnnspec spells `lr` as `learning_rate`"


# -- 5. hints that say what to write ---------------------------------------------------------


def test_a_learning_rate_beside_the_optimizer_shows_where_it_goes(runner, write_spec) -> None:
    text = HEAD + "model: [flatten, {dense: {units: 10, activation: softmax}}]\n"
    error = only(runner, write_spec, text + "training:\n  optimizer: sgd\n  learning_rate: 0.01\n")
    assert (error.line, error.column, error.path) == (7, 3, "training.learning_rate")
    assert (
        error.hint == "the learning rate is the optimizer's setting: optimizer: {sgd: {learning_rate: 0.01}}"
    )


def test_an_input_shape_without_its_key(runner, write_spec) -> None:
    error = only(runner, write_spec, "cnnspec: 1\nname: t\ninput: [8, 8, 1]\nmodel: [flatten]\n")
    assert (error.line, error.column, error.path) == (3, 8, "input")
    assert error.hint == "the shape goes under its key: input: {shape: [8, 8, 1]}"


def test_several_inputs_listed_are_refused_as_several_inputs_not_as_a_shape(runner, write_spec) -> None:
    text = (
        "cnnspec: 1\nname: t\ninput:\n  - {shape: [8, 8, 3], name: img}\n  - {shape: [4], name: vec}\n"
        "model: [flatten]\n"
    )
    error = only(runner, write_spec, text)
    assert (error.line, error.column, error.path) == (4, 3, "input")
    assert error.message == (
        "expected one input (a mapping); received a list of 2 inputs: a spec has exactly one input "
        "(models with several inputs are not supported)"
    )
    assert error.hint == "keep the input the model reads: input: {shape: [8, 8, 3], name: img}"


def test_a_model_written_as_a_mapping(runner, write_spec) -> None:
    error = only(runner, write_spec, HEAD + "model:\n  flatten: null\n  dense: 10\n")
    assert (error.line, error.column, error.path) == (5, 3, "model")
    assert error.hint == "write each layer as a list item starting with `- `: `- flatten: …`"


@pytest.mark.parametrize(
    ("item", "column", "path", "shown"),
    [
        ('dropout: "0.3"', 14, "model[1].dropout", "0.3"),
        ('conv2d: {filters: 4, kernel_size: "3"}', 39, "model[1].conv2d.kernel_size", "3"),
    ],
)
def test_a_quoted_layer_number(runner, write_spec, item: str, column: int, path: str, shown: str) -> None:
    text = HEAD + f"model:\n  - flatten\n  - {item}\n  - dense: {{units: 10, activation: softmax}}\n"
    if "conv2d" in item:
        text = HEAD + f"model:\n  - identity\n  - {item}\n" + TAIL
    error = only(runner, write_spec, text)
    assert (error.line, error.column, error.path) == (6, column, path)
    assert error.hint == f"remove the quotes: write {shown}, a number, not the text '{shown}'"


@pytest.mark.parametrize(
    ("setting", "column", "path", "shown"),
    [
        ('batch_size: "32"', 15, "training.batch_size", "32"),
        ('optimizer: {adam: {learning_rate: "0.003"}}', 37, "training.optimizer.adam.learning_rate", "0.003"),
    ],
)
def test_a_quoted_training_number(
    runner, write_spec, setting: str, column: int, path: str, shown: str
) -> None:
    text = HEAD + "model: [flatten, {dense: {units: 10, activation: softmax}}]\n"
    error = only(runner, write_spec, text + f"training:\n  {setting}\n")
    assert (error.line, error.column, error.path) == (6, column, path)
    assert error.hint == f"remove the quotes: write {shown}, a number, not the text '{shown}'"


def test_a_quoted_number_out_of_range_gets_no_remove_the_quotes_hint(runner, write_spec) -> None:
    text = HEAD + "model: [flatten, {dense: {units: 10, activation: softmax}}]\n"
    error = only(runner, write_spec, text + 'training:\n  batch_size: "0"\n')
    assert error.hint is None


def test_true_division_where_an_integer_is_needed(runner, write_spec) -> None:
    text = "cnnspec: 1\nname: t\ninput: {shape: [8, 8, 1]}\nvars: {width: 32}\n"
    text += 'model:\n  - conv2d: {filters: "${width / 2}", kernel_size: 3}\n' + TAIL
    error = only(runner, write_spec, text)
    assert (error.line, error.column, error.path) == (6, 23, "model[0].conv2d.filters")
    assert error.message == "expected a positive integer; received number 16.0"
    assert error.hint == "use // for integer division: / always gives a float (${width // 2})"


# -- a segmentation net is never guessed to be a classifier missing its flatten ----------------

SEG_HEAD = "cnnspec: 1\nname: seg\ninput: {shape: [32, 32, 3]}\nmodel:\n"
SEG_CONV = "  - conv2d: {filters: 8, kernel_size: 3, padding: same, activation: relu}\n"
SEG_SHRUNK = SEG_CONV + "  - max_pool2d: 2\n  - dense: {units: 4, activation: softmax}\n"
SEG_MESSAGE = "expected a segmentation output of shape [32, 32, classes] (the input's height and width)"


@pytest.mark.parametrize(
    "rest",
    [
        "data:\n  source: {shapes: {images: 200, target: mask}}\ntraining: {epochs: 1}\n",
        "data:\n  source: {npz: data.npz, target: mask}\ntraining: {epochs: 1}\n",
        "data:\n  source: {images: imgs, masks: msks}\ntraining: {epochs: 1}\n",
        "data:\n  source: {shapes: {images: 200, target: mask}}\n"
        "training: {epochs: 1, loss: sparse_categorical_crossentropy, metrics: [mean_iou]}\n",
        "data:\n  source: {npz: data.npz}\ntraining: {epochs: 1, loss: dice}\n",
    ],
)
def test_a_stated_mask_target_or_segmentation_loss_keeps_the_segmentation_message(
    runner, write_spec, rest: str
) -> None:
    # a mask target, an image source's masks, dice or mean_iou say a per-pixel map is meant:
    # the shrunken map is a segmentation head to upsample, not a classifier missing a flatten
    found = validate(runner, write_spec, SEG_HEAD + SEG_SHRUNK + rest)
    error = found[0]
    assert (error.line, error.column, error.path) == (7, 12, "model[2].dense")
    assert error.message.startswith(SEG_MESSAGE), error.message
    assert len(found) == 1, found


def test_a_per_output_mask_target_keeps_the_segmentation_message(runner, write_spec) -> None:
    text = SEG_HEAD + (
        SEG_CONV
        + "    id: trunk\n  - max_pool2d: 2\n  - dense: {units: 4, activation: softmax}\n    id: mask\n"
        "  - global_avg_pool2d:\n    inputs: trunk\n  - dense: {units: 3, activation: softmax}\n    id: cls\n"
        "outputs: [mask, cls]\ndata:\n  source: {shapes: {images: 200, target: {mask: mask, cls: class}}}\n"
        "training: {epochs: 1}\n"
    )
    error = only(runner, write_spec, text)
    assert (error.line, error.column, error.path) == (8, 12, "model[2].dense")
    assert error.message.startswith(SEG_MESSAGE), error.message


@pytest.mark.parametrize("source", ["{shapes: {images: 200, target: mask}}", "{npz: data.npz}"])
def test_a_dense_before_a_convolution_is_no_missing_flatten(runner, write_spec, source: str) -> None:
    # a per-pixel dense in the middle of a segmentation net: the convolutions after it make a map
    text = SEG_HEAD + (
        SEG_CONV + "  - dense: {units: 16, activation: relu}\n"
        "  - conv2d: {filters: 8, kernel_size: 3, strides: 2, padding: same, activation: relu}\n"
        "  - conv2d: {filters: 4, kernel_size: 1, activation: softmax}\n"
        f"data:\n  source: {source}\ntraining: {{epochs: 1}}\n"
    )
    error = only(runner, write_spec, text)
    assert (error.line, error.column, error.path) == (8, 13, "model[3].conv2d")
    assert error.message.startswith(SEG_MESSAGE), error.message


@pytest.mark.parametrize("conv2d_first", [False, True])
def test_a_two_dimensional_input_a_conv1d_reads_keeps_the_error_at_the_image_layer(
    runner, write_spec, conv2d_first: bool
) -> None:
    # [steps, channels] is a valid conv1d input: a channel axis would break that branch
    conv1d = "  - conv1d: {filters: 16, kernel_size: 5, activation: relu}\n    id: a\n"
    conv2d = "  - conv2d: {filters: 16, kernel_size: 5}\n    inputs: input\n    id: b\n"
    layers = (
        conv2d + conv1d.replace("    id: a\n", "    inputs: input\n    id: a\n")
        if conv2d_first
        else conv1d + conv2d
    )
    text = "cnnspec: 1\nname: seq\ninput: {shape: [100, 3]}\nmodel:\n" + layers
    text += "  - flatten:\n    inputs: a\n  - dense: {units: 4, activation: softmax}\n"
    error = only(runner, write_spec, text)
    index = 0 if conv2d_first else 1
    assert (error.line, error.column, error.path) == (5 + 2 * index, 13, f"model[{index}].conv2d")
    assert error.message == "expected a 3-D input (without the batch axis); received shape [100, 3]"


# -- hints whose fix is whole --------------------------------------------------------------------

CLASSIFIER = HEAD + "model: [flatten, {dense: {units: 10, activation: softmax}}]\n"


def test_lr_in_a_phase_names_the_phases_own_learning_rate(runner, write_spec) -> None:
    text = (
        CLASSIFIER
        + "training:\n  optimizer: {sgd: {momentum: 0.9}}\n  phases:\n    - {epochs: 1, lr: 0.01}\n"
    )
    error = only(runner, write_spec, text)
    assert (error.line, error.column, error.path) == (8, 19, "training.phases[0].lr")
    assert error.hint == "did you mean `learning_rate`? cnnspec spells `lr` as `learning_rate`"


def test_a_learning_rate_beside_the_optimizer_keeps_its_other_settings(runner, write_spec) -> None:
    text = (
        CLASSIFIER + "training:\n  optimizer: {sgd: {momentum: 0.9, nesterov: true}}\n  learning_rate: 0.01\n"
    )
    error = only(runner, write_spec, text)
    assert (error.line, error.column, error.path) == (7, 3, "training.learning_rate")
    assert error.hint == (
        "the learning rate is the optimizer's setting: "
        "optimizer: {sgd: {momentum: 0.9, nesterov: true, learning_rate: 0.01}}"
    )


def test_a_flat_optimizers_hint_uses_cnnspecs_names_and_yaml(runner, write_spec) -> None:
    text = CLASSIFIER + "training:\n  optimizer: {type: sgd, lr: 0.1, momentum: 0.9, nesterov: true}\n"
    error = only(runner, write_spec, text)
    assert (error.line, error.column, error.path) == (6, 14, "training.optimizer")
    assert error.hint == "write optimizer: {sgd: {learning_rate: 0.1, momentum: 0.9, nesterov: true}}"


@pytest.mark.parametrize(
    "optimizer", ["{name: [adam, sgd], lr: 0.1}", "{type: null, momentum: 0.9}", "{name: adamx}"]
)
def test_a_flat_optimizer_without_a_known_name_gets_no_nested_form(
    runner, write_spec, optimizer: str
) -> None:
    found = validate(runner, write_spec, CLASSIFIER + f"training:\n  optimizer: {optimizer}\n")
    assert not any(e.hint and e.hint.startswith("write optimizer:") for e in found), found
    assert not any("expected the optimizer's name as its key" in e.message for e in found), found


@pytest.mark.parametrize("where", ["model", "defaults"])
def test_a_synonym_of_a_parameter_already_written_does_not_name_it(runner, write_spec, where: str) -> None:
    # `units` beside `filters` is no Keras habit for `filters`: that one is written already
    if where == "model":
        text = HEAD + "model:\n  - conv2d: {filters: 8, units: 16, kernel_size: 3}\n" + TAIL
        at = (5, 26, "model[0].conv2d.units")
    else:
        text = (
            HEAD
            + "defaults: {conv2d: {filters: 8, units: 16}}\nmodel:\n  - conv2d: {kernel_size: 3}\n"
            + TAIL
        )
        at = (4, 33, "defaults.conv2d.units")
    error = only(runner, write_spec, text)
    assert (error.line, error.column, error.path) == at
    assert error.message == "unknown parameter 'units' for `conv2d`"
    assert error.hint is not None and "filters`?" not in error.hint


def test_no_floor_division_hint_where_floor_division_still_gives_a_float(runner, write_spec) -> None:
    # `${width // 2.0}` is 16.0 too: that hint would not fix the mistake
    text = "cnnspec: 1\nname: t\ninput: {shape: [8, 8, 1]}\nvars: {width: 32}\n"
    text += 'model:\n  - conv2d: {filters: "${width / 2.0}", kernel_size: 3}\n' + TAIL
    error = only(runner, write_spec, text)
    assert (error.line, error.column, error.path) == (6, 23, "model[0].conv2d.filters")
    assert error.message == "expected a positive integer; received number 16.0"
    assert error.hint is None
