"""The unused-var warning: a var that no expression reads is most often a misspelt name."""

from __future__ import annotations

import pytest
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


SHADOWED_BY_A_PARAMETER = """\
cnnspec: 1
name: shadow2
input: {shape: [8, 8, 3]}
vars: {w: 2}
blocks:
  b:
    params: {w: {type: int, default: 4}}
    layers:
      - conv2d: {filters: "${w}", kernel_size: 1}
model:
  - b
  - flatten
  - dense: 2
"""
SHADOWED_BY_A_LOOP_VARIABLE = """\
cnnspec: 1
name: loop
input: {shape: [8, 8, 3]}
vars: {i: 7}
model:
  - repeat:
      times: 2
      as: i
      layers:
        - conv2d: {filters: "${i + 1}", kernel_size: 1}
  - flatten
  - dense: 2
"""


@pytest.mark.parametrize(
    ("text", "name", "line", "message", "note"),
    [
        (
            SHADOWED_BY_A_PARAMETER,
            "w",
            4,
            "var 'w' is set but never read: it is shadowed by the parameter `w` of block `b`, which every "
            "`${w}` reads instead",
            "the parameter `w` of block `b` is declared at blocks.b.params.w (t.yaml:7:14)",
        ),
        (
            SHADOWED_BY_A_LOOP_VARIABLE,
            "i",
            4,
            "var 'i' is set but never read: it is shadowed by the loop variable of the repeat at model[0], "
            "which every `${i}` reads instead",
            "the loop variable of the repeat at model[0] is declared at model[0].repeat.as (t.yaml:8:7)",
        ),
    ],
)
def test_a_var_read_only_where_a_name_shadows_it_is_warned_of_naming_what_shadows_it(
    text, name, line, message, note
):
    """Setting `w` (in the file or with --set) changed nothing and said nothing: every `${w}`
    read the block's parameter, every `${i}` the loop variable."""
    (warning,) = compile_text(text, "t.yaml").warnings
    assert (warning.code, warning.path, warning.loc.line) == ("unused-var", f"vars.{name}", line)
    assert warning.message == message
    assert [n.message for n in warning.notes] == [note]
    assert warning.hint == "rename the var, or what shadows it where the var is meant; or remove the var"


def test_setting_a_shadowed_var_on_the_command_line_is_warned_of_there(tmp_path):
    spec = tmp_path / "shadow2.yaml"
    spec.write_text(SHADOWED_BY_A_PARAMETER, encoding="utf-8")
    for args in ([], ["--set", "vars.w=64"]):
        result = CliRunner().invoke(app, ["validate", str(spec), *args])
        assert result.exit_code == 0 and "530 parameters" in result.output, result.output
        assert "warning: vars.w: var 'w' is set but never read: it is shadowed by" in result.output
    assert "<--set 1>:1:6: warning: vars.w:" in result.output
    # a var read nowhere and set on the command line was not warned of either (its place was
    # not the spec's file, as an extended file's var's is not)
    spec.write_text(SHADOWED_BY_A_PARAMETER.replace("vars: {w: 2}", "vars: {w: 2, unused: 1}"))
    result = CliRunner().invoke(app, ["validate", str(spec), "--set", "vars.unused=5"])
    assert (
        "<--set 1>:1:6: warning: vars.unused: var 'unused' is set but never read (in a --set" in result.output
    )


@pytest.mark.parametrize(
    "text",
    [
        # read outside the block too: the var is read
        SHADOWED_BY_A_PARAMETER.replace("  - dense: 2\n", "  - dense: '${w}'\n"),
        # a parameter's default reads the var of its own name (not declared before it)
        SHADOWED_BY_A_PARAMETER.replace("default: 4", "default: '${w * 2}'"),
        # a parameter shadows only in its own block
        SHADOWED_BY_A_PARAMETER.replace("model:\n", "  c:\n    layers: [{dense: '${w}'}]\nmodel:\n  - c\n"),
        # a repeat's count is read outside its loop
        SHADOWED_BY_A_LOOP_VARIABLE.replace("times: 2", "times: '${i - 5}'"),
    ],
)
def test_a_var_read_anywhere_it_is_not_shadowed_is_read(text):
    assert "unused-var" not in codes(compile_text(text, "t.yaml"))


def test_codegen_says_why_a_var_is_not_read(runner, tmp_path):
    """The constant of a var the spec never reads said `decided when this code was generated`."""
    spec = tmp_path / "loop.yaml"
    spec.write_text(SHADOWED_BY_A_LOOP_VARIABLE.replace("vars: {i: 7}", "vars: {i: 7, unused: 3}"))
    result = runner.invoke(app, ["codegen", str(spec)])
    assert result.exit_code == 0, result.output
    assert (
        "I = 7  # loop.yaml:4; not read below: every ${i} of the spec reads the loop variable of the "
        "repeat at model[0]\n" in result.stdout
    )
    assert "UNUSED = 3  # loop.yaml:4; not read below: the spec reads it nowhere\n" in result.stdout


def test_a_read_var_set_beside_it_is_not_hinted_as_the_one_meant():
    """``h`` beside a read ``w`` was "did you mean `w`?": renaming it would set ``w`` twice. A
    read var set in the same file is no typo of it; the plain hint stands."""
    model = "model:\n  - conv2d: {filters: '${w}', kernel_size: 3}\n"
    compiled = compile_text(HEAD + "vars: {w: 4, h: 2}\n" + model)
    (warning,) = compiled.warnings
    assert warning.path == "vars.h" and warning.hint == "read it with `${h}`, or remove it"
