"""Lint warnings (``cnnspec.analysis.lint``): an augmentation ``value_range`` that does not match
the pixel range the pipeline feeds — located, reported by validate (``--strict`` fails) and train."""

from __future__ import annotations

import json

import pytest

from cnnspec.api import compile_spec, compile_text
from cnnspec.cli.app import app
from tests.conftest import SPEC_FILES, SPECS_DIR

RESNET = SPECS_DIR / "resnet.yaml"
FIXED_LINES = (
    "  - random_brightness: {factor: 0.2, value_range: [0, 1]}\n",
    "  - random_contrast: {factor: 0.2, value_range: [0, 1]}\n",
)
SEED_LINES = ("  - random_brightness: 0.2\n", "  - random_contrast: 0.2\n")


def seed_style_resnet(tmp_path):
    """specs/resnet.yaml as the seed document wrote it (Keras' default value_range)."""
    text = RESNET.read_text(encoding="utf-8")
    for fixed, seed in zip(FIXED_LINES, SEED_LINES, strict=True):
        assert fixed in text
        text = text.replace(fixed, seed)
    path = tmp_path / "resnet.yaml"
    path.write_text(text, encoding="utf-8")
    lines = text.splitlines(keepends=True)
    return path, [lines.index(seed) + 1 for seed in SEED_LINES]


def spec(
    model="[flatten, {dense: 10}]",
    augmentation="[{random_brightness: 0.1}]",
    data="{source: mnist}",
    extra="",
):
    sections = f"data: {data}\n" if data is not None else ""
    return (
        f"cnnspec: 1\nname: t\ninput: {{shape: [28, 28, 1]}}\n{extra}model: {model}\n"
        f"augmentation: {augmentation}\n{sections}"
    )


def range_warnings(text):
    return [w for w in compile_text(text).warnings if w.code == "value-range"]


def test_seed_style_resnet_warns_at_each_layer(tmp_path, runner):
    path, lines = seed_style_resnet(tmp_path)
    warnings = compile_spec(path).warnings
    assert [(w.loc.line, w.path, w.severity) for w in warnings] == [
        (lines[0], "augmentation[3].random_brightness", "warning"),
        (lines[1], "augmentation[4].random_contrast", "warning"),
    ]
    assert warnings[0].message == (
        "expected value_range [0, 1], the range of its input: cifar10 pixels × 1/255 "
        "(data.rescale: auto); received [0, 255] (Keras' default)"
    )
    assert warnings[0].hint == "set value_range: [0, 1] on this random_brightness layer"

    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    assert (
        f"resnet.yaml:{lines[0]}:24: warning: augmentation[3].random_brightness: expected value_range [0, 1]"
        in result.stderr
    )
    assert "hint: set value_range: [0, 1]" in result.stderr
    strict = runner.invoke(app, ["validate", "--strict", str(path)])
    assert strict.exit_code == 1
    assert "warning: augmentation[4].random_contrast" in strict.stderr


def test_fixed_resnet_and_every_spec_pass_strict(runner):
    assert compile_spec(RESNET).warnings == []
    result = runner.invoke(app, ["validate", "--strict", *map(str, SPEC_FILES)])
    assert result.exit_code == 0, result.output
    assert "warning" not in result.output


def test_json_format_carries_code_and_location(tmp_path, runner):
    path, lines = seed_style_resnet(tmp_path)
    result = runner.invoke(app, ["validate", "--format", "json", str(path)])
    assert result.exit_code == 0
    first = json.loads(result.stdout)[0]
    assert (first["severity"], first["code"], first["line"], first["column"]) == (
        "warning",
        "value-range",
        lines[0],
        24,
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # mnist is uint8: auto scales to [0, 1]; null leaves [0, 255]; a factor scales 255
        (spec(), "[0, 1]"),
        (spec(augmentation="[{random_brightness: {factor: 0.2, value_range: [0, 1]}}]"), None),
        (spec(data="{source: mnist, rescale: null}"), None),
        (
            spec(
                augmentation="[{random_contrast: {factor: 0.1, value_range: [0, 1]}}]",
                data="{source: mnist, rescale: null}",
            ),
            "[0, 255]",
        ),
        (spec(data="{source: fashion_mnist, rescale: 0.5}"), "[0, 127.5]"),
        (spec(data="{source: mnist, rescale: '${1 / 255}'}"), "[0, 1]"),
        (
            spec(
                augmentation="[{random_brightness: {factor: 0.1, value_range: ['${lo}', '${hi}']}}]",
                extra="vars: {lo: 0, hi: 1}\n",
            ),
            None,
        ),
        # digits are stored as floats in [0, 1]; a spec with only `training` trains on digits
        (spec(data=None, extra="training: {epochs: 1}\n"), "[0, 1]"),
        # (with an input of their size: a named dataset that does not fit is refused)
        (spec(data="{source: digits, rescale: null}").replace("[28, 28, 1]", "[8, 8, 1]"), "[0, 1]"),
        # the model scales its own input: auto leaves [0, 255] for the augmentation ...
        (spec(model="[{rescaling: 0.00392156862745098}, flatten, {dense: 10}]"), None),
        # ... and a value-range layer after that rescaling sees [0, 1]
        (
            spec(
                model="[{rescaling: 0.00392156862745098}, {random_contrast: 0.1}, flatten, {dense: 10}]",
                augmentation="[random_flip]",
            ),
            "[0, 1]",
        ),
        (
            spec(
                model="[{rescaling: {scale: 0.0078431372549, offset: -1}}, random_flip, "
                "{random_brightness: 0.1}, flatten, {dense: 10}]"
            ),
            "[-1, 1]",
        ),
        # not known statically: an npz file with auto/null, a layer after a convolution, no data section
        (spec(data="{source: {npz: d.npz}}"), None),
        (spec(data="{source: {npz: d.npz}, rescale: 0.00392156862745098}"), "[0, 1]"),
        (
            spec(
                model="[{conv2d: {filters: 2, kernel_size: 3}}, {random_brightness: 0.1}, flatten, "
                "{dense: 10}]",
                augmentation="[random_flip]",
            ),
            None,
        ),
        (spec(data=None), None),
    ],
)
def test_value_range_follows_the_pipeline(text, expected):
    warnings = range_warnings(text)
    if expected is None:
        assert warnings == []
    else:
        assert len(warnings) == 1
        assert warnings[0].message.startswith(f"expected value_range {expected}, ")
        assert warnings[0].hint.startswith(f"set value_range: {expected} ")


def test_rescaling_layer_is_named_in_the_message():
    (warning,) = range_warnings(
        spec(
            model="[{rescaling: 0.00392156862745098}, {random_contrast: 0.1}, flatten, {dense: 10}]",
            augmentation="[random_flip]",
        )
    )
    assert warning.path == "model[1].random_contrast"
    assert (
        "mnist pixels as stored (data.rescale: auto; the model has its own rescaling layer), "
        in warning.message
    )
    assert "then layer 'rescaling_1' (rescaling)" in warning.message


@pytest.mark.parametrize("value", ["0", "-0.5", "'${lo}'"])
def test_a_rescale_of_zero_or_below_is_refused_where_written(value):
    """0 trained on black images and a negative scale on inverted ones; the value_range lint then
    suggested [0, 0] or [0, -1], which are no ranges at all."""
    from cnnspec.errors import SpecError

    with pytest.raises(SpecError) as caught:
        compile_text(spec(data=f"{{source: mnist, rescale: {value}}}", extra="vars: {lo: -1}\n"))
    (error,) = [e for e in caught.value.errors if e.severity == "error"]
    assert error.path == "data.rescale"
    assert (error.loc.line, error.loc.column) == (7, 32)  # the value in `data: {…, rescale: …}`
    if value.startswith("'"):  # an expression: the settings reader checks the value it takes
        assert error.message == "expected a finite number > 0, auto or null; received -1.0"
        assert error.hint == "e.g. rescale: 0.00392156862745098 (1/255) for 8-bit pixels, or auto"
    else:
        assert (
            error.message
            == f"expected a number > 0; received {'integer' if value == '0' else 'number'} {value}"
        )


def test_a_constant_input_gets_no_value_range_it_could_not_take():
    """A rescaling of scale 0 makes every pixel one value: no value_range [v, v] is suggested."""
    (warning,) = range_warnings(
        spec(
            model="[{rescaling: 0}, {random_contrast: 0.1}, flatten, {dense: 10}]",
            augmentation="[random_flip]",
        )
    )
    assert warning.path == "model[1].random_contrast"
    assert warning.message == (
        "expected pixels of more than one value for random_contrast's value_range; received the "
        "constant 0: mnist pixels as stored (data.rescale: auto; the model has its own rescaling "
        "layer), then layer 'rescaling_1' (rescaling)"
    )
    assert (
        warning.hint == "a scale of 0 maps every pixel to one value: give the rescaling a scale other than 0"
    )


@pytest.mark.slow  # cnnspec train imports TensorFlow
def test_train_reports_the_warning_before_it_starts(write_spec, runner, tmp_path):
    # The npz file is missing: train stops with a data error right after reporting the warnings.
    path = write_spec(spec(data="{source: {npz: missing.npz}, rescale: 0.00392156862745098}"))
    result = runner.invoke(app, ["train", str(path), "--out", str(tmp_path / "runs")])
    assert result.exit_code == 1
    assert "spec.yaml:5:" in result.stderr
    assert "warning: augmentation[0].random_brightness: expected value_range [0, 1]" in result.stderr
    assert "Traceback" not in result.output


def test_an_npz_files_pixel_range_is_checked_once_read(tmp_path):
    """An npz file's range is not known before it is read: training measures it and warns as
    validate warns for the named datasets (float images in [0, 1] against Keras' [0, 255])."""
    from types import SimpleNamespace

    import numpy as np

    from cnnspec.training.trainer import _value_range_notes

    text = (
        "cnnspec: 1\nname: t\ninput: {shape: [8, 8, 1]}\n"
        "augmentation: [{random_brightness: 0.2}]\nmodel: [flatten, {dense: 10}]\n"
        "data: {source: {npz: d.npz}}\n"
    )
    compiled = compile_text(text, str(tmp_path / "spec.yaml"))
    scaled = SimpleNamespace(x_train=np.random.default_rng(0).random((16, 8, 8, 1)), streamed=False,
                             integer_pixels=False)  # fmt: skip
    (note,) = _value_range_notes(compiled, scaled, None)
    assert "random_brightness" in note and "read from the file" in note
    eight_bit = SimpleNamespace(x_train=np.zeros((4, 8, 8, 1), "uint8"), streamed=False, integer_pixels=True)
    assert _value_range_notes(compiled, eight_bit, None) == []  # 0–255 as value_range says
    assert len(_value_range_notes(compiled, eight_bit, 1 / 255)) == 1  # scaled by the pipeline


TRANSPOSED = (
    "cnnspec: 1\nname: up\ninput: {shape: [8, 8, 4]}\nmodel:\n"
    "  - conv2d_transpose: {filters: 4, kernel_size: 3, strides: 1, dilation_rate: DILATION}\n"
    "  - flatten\n  - dense: {units: 10, activation: softmax}\ndata: {source: {npz: d.npz}}\n"
)


def test_a_layer_a_cpu_cannot_run_is_warned_of_at_the_layer():
    """A dilated conv2d_transpose passed validate without a word and failed in the first batch on
    a CPU (TensorFlow's kernel has no dilation there): validate warns at the layer, as the spec
    may be meant for a GPU (train refuses it on a machine without one: test_runtime_audit)."""
    compiled = compile_text(TRANSPOSED.replace("DILATION", "2"), "up.yaml")
    (warning,) = [w for w in compiled.warnings if w.code == "cpu-kernel"]
    assert warning.path == "model[0].conv2d_transpose" and warning.loc.line == 5
    assert warning.message == (
        "TensorFlow's own CPU kernel takes no transposed convolution with dilation_rate over 1: on a "
        "CPU with oneDNN off (TF_ENABLE_ONEDNN_OPTS=0, the default of some CPUs) and no GPU, this "
        "layer fails in its first batch (train refuses it there before the data is loaded)"
    )
    assert "upsampling2d" in warning.hint and "TF_ENABLE_ONEDNN_OPTS=1" in warning.hint
    assert not [
        w
        for w in compile_text(TRANSPOSED.replace("DILATION", "1"), "up.yaml").warnings
        if w.code == "cpu-kernel"
    ]


def test_a_class_count_warning_on_a_set_width_is_located_at_the_set(runner):
    """The warning was located at the file's line, which still said the width the --set replaced."""
    spec = SPECS_DIR.parent / "examples" / "transfer" / "pretrain.yaml"
    result = runner.invoke(app, ["validate", str(spec), "--set", "model[3].dense.units=7"])
    assert result.exit_code == 0, result.output
    assert "<--set 1>:1:22: warning: model[3].dense: expected 5 output units" in result.output
