"""`until:` naming an item of a backbone that its `when:` leaves out for the vars given (a zoo
model's head switched off): the hint says so and which var change keeps it, not only the ids."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from cnnspec.cli.app import app


def validate(tmp_path: Path, backbone: str) -> str:
    """`cnnspec validate` of a spec whose first item is ``backbone``: its output, flattened."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "cnnspec: 1\nname: cut\ninput: {shape: [32, 32, 3]}\nmodel:\n"
        f"  - backbone: {backbone}\n    id: body\n  - dense: {{units: 3, activation: softmax}}\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(app, ["validate", str(spec)], env={"COLUMNS": "400"})
    return f"{result.exit_code} " + " ".join(result.output.split())


def test_a_cut_at_a_head_the_vars_switch_off_says_what_keeps_it(tmp_path):
    text = validate(tmp_path, "{spec: zoo:resnet50, until: avg_pool, vars: {include_top: false}}")
    assert text.startswith("1 ")
    assert "the backbone 'zoo:resnet50' has no layer 'avg_pool' to cut at" in text
    assert (
        "hint: avg_pool is left out by its `when: ${include_top or pooling == 'avg'}` with these "
        "vars (include_top: false, pooling: null): set include_top: true or pooling: avg in the "
        "backbone's vars"
    ) in text
    assert "its ids:" not in text


def test_the_cut_is_valid_with_the_var_the_hint_names(tmp_path):
    text = validate(
        tmp_path, "{spec: zoo:resnet50, until: avg_pool, vars: {include_top: false, pooling: avg}}"
    )
    assert text.startswith("0 "), text


def test_an_id_the_backbone_never_writes_still_lists_its_ids(tmp_path):
    text = validate(tmp_path, "{spec: zoo:resnet50, until: nowhere, vars: {include_top: false}}")
    assert "has no layer 'nowhere' to cut at" in text
    assert "its ids: conv1, conv2, conv3, conv4, conv5;" in text  # (input is no cut: not listed)
    assert "left out by its `when:" not in text


def test_a_cut_at_the_backbones_input_keeps_no_layer_and_is_refused_at_until(tmp_path):
    """`until: input` was accepted silently, even with `weights: imagenet` and `--strict`: an
    empty backbone, and a `training.freeze: [body]` that matched none."""
    text = validate(
        tmp_path, "{spec: zoo:resnet50, until: input, vars: {include_top: false}, weights: imagenet}"
    )
    assert text.startswith("1 "), text
    assert (
        "spec.yaml:5:43: error: model[0].backbone.until: expected `until:` to keep at least one layer "
        "of the backbone 'zoo:resnet50'; received 'input', its input, which keeps none"
    ) in text
    assert (
        "hint: its cut points: conv1, conv2, conv3, conv4, conv5; or the name of one of its layers "
        "or blocks, as `cnnspec inspect` of it lists them; or remove the backbone item"
    ) in text
