"""`cnnspec validate FAMILY.yaml` checks every variant of a family file (a variants table),
each mistake of the shared part said once; a variant that sets a var the spec does not
declare is refused, as `--set` refuses it. TF-free."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from cnnspec.cli.app import app

FAMILY = """\
cnnspec: 1
name: small
input: {shape: [16, 16, 3]}
vars: {w: 4}
variants:
  small: {vars: {w: 4}}
  big: {vars: {w: 8}}
  ROW
model:
  - conv2d: {filters: "${w}", kernel_size: 3, padding: SHARED}
  - global_avg_pool2d
  - dense: 2
"""


def validate(tmp_path: Path, row: str, shared: str = "same") -> tuple[int, str]:
    family = tmp_path / "fam.yaml"
    family.write_text(FAMILY.replace("ROW", row).replace("SHARED", shared), "utf-8")
    result = CliRunner().invoke(app, ["validate", str(family)], env={"COLUMNS": "300"})
    return result.exit_code, result.output


def test_every_variant_is_checked(tmp_path: Path):
    # only the first variant was: `bad` passed validate until someone compiled fam.yaml#bad
    code, output = validate(tmp_path, "bad: {vars: {w: 0}}")
    assert code == 1
    assert "ok " in output and "fam.yaml#small: small" in output and "fam.yaml#big: big" in output
    assert "model[0].conv2d.filters: expected a positive integer; received integer 0" in output
    assert "w is integer 0, set at" in output and "1 of 3 specs failed" in output
    assert f"note: in variant bad of {tmp_path / 'fam.yaml'}" in output  # only that one has it


def test_a_mistake_every_variant_shares_is_said_once(tmp_path: Path):
    code, output = validate(tmp_path, "other: {vars: {w: 2}}", shared="sme")
    assert code == 1 and output.count("error: model[0].conv2d.padding") == 1
    assert "3 of 3 specs failed" in output


def test_a_variant_setting_an_undeclared_var_is_refused(tmp_path: Path):
    # it was only warned of as never read, where --set vars.ww=3 is an error
    code, output = validate(tmp_path, "bad: {vars: {ww: 3}}")
    assert code == 1
    assert (
        "variants.bad.vars.ww: unknown var 'ww': a variant can only change a var the spec declares" in output
    )
    assert "did you mean `w`?" in output


def _params_again(compiled, tmp_path: Path) -> int:
    """The parameters of ``compiled`` written as a run's resolved.yaml writes it, loaded again."""
    from cnnspec.api import compile_spec
    from cnnspec.spec.dumping import dump_yaml
    from cnnspec.spec.zoo import written_data

    again = tmp_path / "resolved.yaml"
    again.write_text(dump_yaml(written_data(compiled.resolved, compiled.doc.variant), sort_keys=False))
    return compile_spec(again).ir.totals.params


def test_a_variant_written_again_is_the_same_variant(tmp_path: Path):
    """resolved.yaml, best.yaml and trial specs kept the whole variants table: loaded again,
    the first variant's vars went over those trained (fam.yaml#big came back as small, a spec
    extending zoo:resnet101 as ResNet50)."""
    from cnnspec.api import compile_spec

    family = tmp_path / "fam.yaml"
    family.write_text(FAMILY.replace("ROW", "huge: {vars: {w: 16}}").replace("SHARED", "same"), "utf-8")
    big = compile_spec(f"{family}#big")
    assert _params_again(big, tmp_path) == big.ir.totals.params != compile_spec(family).ir.totals.params
    searched = compile_spec(f"{family}#big", overrides=["vars.w=6"])  # --set over the variant's vars
    assert _params_again(searched, tmp_path) == searched.ir.totals.params
    child = tmp_path / "child.yaml"
    child.write_text("cnnspec: 1\nname: mine\nextends: zoo:resnet101\nvars: {classes: 10}\n", "utf-8")
    deep = compile_spec(child)
    assert _params_again(deep, tmp_path) == deep.ir.totals.params
    assert compile_spec(tmp_path / "resolved.yaml").name == "mine"  # not renamed after the variant


def test_strict_fails_each_variant_whose_warnings_were_said_for_another(tmp_path: Path):
    # the second variant printed `ok`: its warning, shared, was said once for the first
    text = FAMILY.replace("ROW", "huge: {vars: {w: 16}}").replace("SHARED", "same")
    text = text.replace("model:", "blocks:\n  unused:\n    layers: [batch_norm]\nmodel:")
    family = tmp_path / "fam.yaml"
    family.write_text(text, "utf-8")
    result = CliRunner().invoke(app, ["validate", "--strict", str(family)], env={"COLUMNS": "300"})
    assert result.exit_code == 1 and result.output.count("is defined but never used") == 1
    assert result.output.count("which --strict treats as errors") == 3


def test_a_family_extending_a_family_is_checked_in_the_variants_of_both(tmp_path: Path):
    base = tmp_path / "fam.yaml"
    base.write_text(FAMILY.replace("ROW", "huge: {vars: {w: 16}}").replace("SHARED", "same"), "utf-8")
    child = tmp_path / "child.yaml"
    child.write_text("cnnspec: 1\nextends: fam.yaml\nvariants:\n  tiny: {vars: {w: 1}}\n", "utf-8")
    result = CliRunner().invoke(app, ["validate", str(child)], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    assert [line.split(":")[0] for line in result.output.splitlines()] == [
        f"ok {child}#{name}" for name in ("small", "big", "huge", "tiny")
    ]


def test_a_spec_extending_a_family_with_vars_of_its_own_is_checked_as_written(tmp_path: Path):
    # it was checked in the base's variants, whose rows set the vars over its own: its own
    # model, the one `train` builds, was never compiled ("ok" for a spec inspect refused)
    (tmp_path / "fam.yaml").write_text(
        FAMILY.replace("ROW", "huge: {vars: {w: 16}}").replace("SHARED", "same")
    )
    child = tmp_path / "child.yaml"
    child.write_text("cnnspec: 1\nname: mine\nextends: fam.yaml#big\nvars: {w: 0}\n", "utf-8")
    result = CliRunner().invoke(app, ["validate", str(child)], env={"COLUMNS": "300"})
    assert result.exit_code == 1 and "received integer 0" in result.output
    assert "#small" not in result.output


def test_imagenet_weights_are_refused_on_a_family_of_the_users(tmp_path: Path):
    # its variants table was taken for the zoo's: validate passed, and train refused it
    family = tmp_path / "fam.yaml"
    text = FAMILY.replace("ROW", "huge: {vars: {w: 16}}").replace("SHARED", "same")
    family.write_text(text + "weights: imagenet\n", "utf-8")
    result = CliRunner().invoke(app, ["validate", str(family)], env={"COLUMNS": "300"})
    assert result.exit_code == 1 and "`imagenet` weights exist only for zoo models" in result.output
    # a resolved.yaml of a spec extending the zoo keeps the zoo's row: still accepted
    from cnnspec.api import compile_spec
    from cnnspec.spec.dumping import dump_yaml
    from cnnspec.spec.zoo import written_data

    child = tmp_path / "child.yaml"
    child.write_text("cnnspec: 1\nname: mine\nextends: zoo:resnet50\nweights: imagenet\n", "utf-8")
    compiled = compile_spec(child)
    again = tmp_path / "resolved.yaml"
    again.write_text(dump_yaml(written_data(compiled.resolved, compiled.doc.variant), sort_keys=False))
    assert compile_spec(again).name == "mine"


def test_a_name_written_wrong_is_said_once_where_it_is_written(tmp_path: Path):
    """A variant named `b-1` was refused at its key and again at the family's `name:` line,
    as "received 'b-1'" where that line says `small`; and a family's own `name: "bad name!"`
    passed unchecked, replaced by the variant's. Each is said once, where it is written; an
    error in the variants table of an extended family says where it is included."""
    code, output = validate(tmp_path, '"b-1": {vars: {w: 2}}')
    assert code == 1 and output.count("error:") == 1, output
    assert "fam.yaml:8:3: error: variants.b-1: expected an identifier" in output
    (tmp_path / "child.yaml").write_text('cnnspec: 1\nextends: "fam.yaml#b-1"\nname: child\n', "utf-8")
    child = CliRunner().invoke(app, ["validate", str(tmp_path / "child.yaml")], env={"COLUMNS": "300"})
    assert child.exit_code == 1 and "note: included from " in child.output, child.output
    assert f"{tmp_path / 'child.yaml'}:2:10" in child.output
    family = tmp_path / "fam.yaml"
    family.write_text(
        FAMILY.replace("ROW", "").replace("SHARED", "same").replace("name: small", 'name: "bad name!"')
    )
    named = CliRunner().invoke(app, ["validate", str(family)], env={"COLUMNS": "300"})
    assert named.exit_code == 1, named.output
    assert "fam.yaml:2:7: error: name: expected an identifier" in named.output
    assert "received string 'bad name!'" in named.output


def test_a_variant_the_family_lacks_asked_on_the_command_line_is_located_at_its_table(tmp_path: Path):
    """`validate 'fam.yaml#v2'` said `"file": null, "line": null` in JSON: no place in a file
    asked for it, but the family's variants table is where the names are."""
    family = tmp_path / "fam.yaml"
    family.write_text(FAMILY.replace("ROW", "").replace("SHARED", "same"), "utf-8")
    result = CliRunner().invoke(app, ["validate", f"{family}#bgi", "--format", "json"])
    assert result.exit_code == 1, result.output
    (error,) = json.loads(result.output)
    assert (error["file"], error["line"], error["path"]) == (str(family), 5, "variants")
    assert error["message"].endswith("has no variant 'bgi'") and error["hint"] == "did you mean `big`?"
