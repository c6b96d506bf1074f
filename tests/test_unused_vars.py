"""The unused-var warning: a var that no expression reads is most often a misspelt name."""

from __future__ import annotations

from typer.testing import CliRunner

from cnnspec.api import compile_spec, compile_text
from cnnspec.cli.app import app

HEAD = "cnnspec: 1\nname: t\ninput: {shape: [8, 8, 1]}\n"


def codes(compiled) -> list[str]:
    return [w.code for w in compiled.warnings]


def test_an_unread_var_is_located_with_a_hint():
    compiled = compile_text(
        HEAD + "vars:\n  w: 4\n  widht: 8\nmodel:\n  - conv2d: {filters: '${w}', kernel_size: 3}\n"
    )
    (warning,) = compiled.warnings
    assert warning.code == "unused-var" and warning.path == "vars.widht"
    assert (warning.loc.line, warning.loc.column) == (6, 3)
    assert "never read" in warning.message and "${widht}" in warning.hint


def test_reads_anywhere_count_but_a_var_reading_itself_does_not():
    compiled = compile_text(
        HEAD + "vars:\n  a: 2\n  b: '${a * 2}'\n  lr: 0.01\n  gone: false\n  big: 9\n"
        "model:\n  - conv2d: {filters: '${b}', kernel_size: 3}\n"
        "  - dense: {units: '${big}'}\n    when: '${gone}'\n"  # read by a skipped item still counts
        "  - flatten\n"
        "training: {optimizer: {adam: {learning_rate: '${lr}'}}}\n"
    )
    assert "unused-var" not in codes(compiled)


def test_a_misspelt_var_of_an_extended_zoo_model_names_the_declared_one(tmp_path):
    spec = tmp_path / "mine.yaml"
    spec.write_text("extends: zoo:resnet50\nvars:\n  clases: 10\ninput: {shape: [64, 64, 3]}\n")
    (warning,) = compile_spec(spec).warnings
    assert warning.code == "unused-var" and warning.loc.file == str(spec) and warning.loc.line == 3
    assert warning.hint == "did you mean `classes`?"
    # The zoo file's `input_shape`, unread once this spec sets its own input, is not this spec's typo.
    result = CliRunner().invoke(app, ["validate", "--strict", str(spec)])
    assert result.exit_code == 1 and "clases" in result.output and "input_shape" not in result.output


def test_a_spec_without_vars_gets_no_warning():
    assert codes(compile_text(HEAD + "model: [flatten]\n")) == []
