"""What a backbone item and ``imagenet`` weights take from the model around them: the input's
shape and channels. A backbone's var that only its spec's ``input`` reads changes nothing (the
item's input feeds the backbone): warned. ``imagenet`` weights on an input of other than 3
channels: a located error at validation, as keras.applications builds no such model.
TensorFlow-free."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from cnnspec.api import compile_spec, compile_text
from cnnspec.cli.app import app
from cnnspec.errors import SpecError, UsageError

runner = CliRunner()


def backbone_spec(channels: int, extra: str) -> str:
    return (
        f"cnnspec: 1\nname: m\ninput: {{shape: [32, 32, {channels}]}}\nmodel:\n"
        f"  - backbone: {{spec: zoo:resnet50, until: conv3{extra}}}\n"
        "  - global_avg_pool2d\n  - dense: {units: 3, activation: softmax}\n"
    )


def test_a_backbone_var_only_the_input_reads_is_warned_at_its_key():
    compiled = compile_text(backbone_spec(3, ", vars: {include_top: false, input_shape: [64, 64, 3]}"))
    warned = [w for w in compiled.warnings if "input_shape" in w.message]
    assert len(warned) == 1, compiled.warnings
    assert warned[0].path == "model[0].backbone.vars.input_shape"
    assert warned[0].loc is not None and warned[0].loc.line == 5
    assert "changes nothing here" in warned[0].message
    assert not any("include_top" in w.message for w in compiled.warnings)  # the model reads it


def test_a_backbone_var_read_through_another_var_is_not_warned(tmp_path):
    (tmp_path / "body.yaml").write_text(
        "cnnspec: 1\nname: body\ninput: {shape: [8, 8, 3]}\nvars: {width: 4, filters: '${width * 2}'}\n"
        "model:\n  - conv2d: {filters: '${filters}', kernel_size: 3}\n    id: out\n"
    )
    spec = tmp_path / "m.yaml"
    spec.write_text(
        "cnnspec: 1\nname: m\ninput: {shape: [8, 8, 3]}\nmodel:\n"
        "  - backbone: {spec: body.yaml, vars: {width: 8}}\n  - flatten\n"
    )
    compiled = compile_spec(spec)
    assert not compiled.warnings
    assert compiled.ir.totals.params == 3 * 3 * 3 * 16 + 16


@pytest.mark.parametrize("channels", [1, 4])
def test_imagenet_weights_on_a_backbone_need_three_channels(channels):
    with pytest.raises(SpecError) as caught:
        compile_text(backbone_spec(channels, ", weights: imagenet"))
    (diag,) = caught.value.diagnostics
    assert diag.path == "model[0].backbone.weights" and diag.loc is not None and diag.loc.line == 5
    assert f"this input has {channels} channel" in diag.message and "3-channel" in diag.message
    compile_text(backbone_spec(3, ", weights: imagenet"))  # three: fine


def test_imagenet_weights_on_a_whole_zoo_model_need_three_channels(tmp_path):
    spec = tmp_path / "gray.yaml"
    spec.write_text(
        "extends: zoo:resnet50\ninput: {shape: [64, 64, 1]}\n"
        "vars: {include_top: false, pooling: avg}\nweights: imagenet\n"
    )
    result = runner.invoke(app, ["validate", str(spec)])
    assert result.exit_code == 1, result.output
    assert "gray.yaml:4:10: error: weights: `imagenet` weights take 3-channel (RGB) images" in result.output
    assert "Traceback" not in result.output


def test_weights_imagenet_on_the_command_line_needs_three_channels(tmp_path):
    from cnnspec.training.transfer_loads import _override_source

    spec = tmp_path / "gray.yaml"
    spec.write_text("extends: zoo:resnet50\ninput: {shape: [64, 64, 1]}\nvars: {include_top: false}\n")
    compiled = compile_spec(spec)
    with pytest.raises(UsageError, match="this input has 1 channel"):
        _override_source(compiled, "imagenet")


def test_until_takes_an_id_inside_a_call_with_a_slash_as_patterns_do(tmp_path):
    """`until: stem/conv` (freeze patterns take `/` for `.`) said "did you mean `stem.conv`?"."""
    (tmp_path / "bb.yaml").write_text(
        "cnnspec: 1\nname: bb\ninput: {shape: [8, 8, 3]}\nblocks:\n  cb:\n    layers:\n"
        "      - conv2d: {filters: 4, kernel_size: 1}\n        id: conv\n      - relu\n"
        "model:\n  - cb:\n    id: stem\n  - flatten\n"
    )
    spec = tmp_path / "m.yaml"
    counts = []
    for until in ("stem.conv", "stem/conv"):
        spec.write_text(
            "cnnspec: 1\nname: m\ninput: {shape: [8, 8, 3]}\nmodel:\n"
            f"  - backbone: {{spec: bb.yaml, until: '{until}'}}\n  - flatten\n"
        )
        compiled = compile_spec(spec)
        counts.append([node.name for node in compiled.ir.nodes])
    assert counts[0] == counts[1] and counts[0][0].endswith("stem_conv")
