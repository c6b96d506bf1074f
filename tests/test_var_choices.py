"""``var_choices``: a var's allowed values, checked where each value was set (TF-free).

The zoo's heads read ``pooling`` only through comparisons, as keras.applications does, so
``pooling: mean`` used to build a model without pooling, silently. Every zoo model now
refuses it where it was written: a ``--set`` option, an extending file, a backbone item."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cnnspec.api import compile_spec
from cnnspec.cli.app import app
from cnnspec.errors import SpecError
from cnnspec.spec import varchoices, zoo
from tests.test_lsp_completion_fixes import complete_at, labels

runner = CliRunner()

FAMILY = """\
cnnspec: 1
name: fam
family: Fam
input: {shape: [8, 8, 1]}
vars: {pooling: avg, scale: 1, act: relu}
var_choices:
  pooling: [null, avg, max]
  scale: [1, 2]
variants:
  fam_a: {vars: {scale: 1}}
  fam_b: {vars: {scale: 2}}
model:
  - conv2d: {filters: "${int(2 * scale)}", kernel_size: 3, activation: "${act}"}
  - {global_avg_pool2d: null, when: "${pooling == 'avg'}"}
  - {global_max_pool2d: null, when: "${pooling == 'max'}"}
  - flatten
  - dense: 2
"""


def errors_of(spec: str | Path, *overrides: str) -> list:
    with pytest.raises(SpecError) as caught:
        compile_spec(str(spec), overrides=list(overrides))
    return caught.value.diagnostics


def test_a_value_outside_the_choices_is_located_where_it_was_set(tmp_path: Path):
    family = tmp_path / "fam.yaml"
    family.write_text(FAMILY, "utf-8")
    assert compile_spec(str(family), overrides=["vars.pooling=max"]).ir.nodes
    assert compile_spec(str(family), overrides=["vars.pooling=null", "vars.scale=2.0"]).ir.nodes
    # on the command line: at the option's value, with a near choice
    (found,) = errors_of(family, "vars.pooling=agv")
    expected = "expected var 'pooling' to be null, avg or max (its var_choices); received string 'agv'"
    assert found.message.startswith(expected)
    assert found.path == "vars.pooling" and found.hint == "did you mean `avg`?"
    assert found.loc.file.startswith("<--set") and found.loc.column == 14
    # a boolean is no number, whatever Python says
    (found,) = errors_of(family, "vars.scale=true")
    assert "received true" in found.message and found.hint == "set it to one of 1 or 2"
    # an extending file's vars: entry
    child = tmp_path / "child.yaml"
    child.write_text("cnnspec: 1\nname: child\nextends: fam.yaml\nvars: {pooling: mean}\n", "utf-8")
    (found,) = errors_of(child)
    assert (found.loc.file, found.loc.line, found.loc.column) == (str(child), 4, 17)
    # an expression's value is checked too, at the var that holds it
    (found,) = errors_of(family, "vars.pooling=${act}")
    assert "received string 'relu'" in found.message


def test_the_declaration_and_the_variants_table_are_checked_whichever_variant_is_built(tmp_path: Path):
    family = tmp_path / "fam.yaml"
    bad = FAMILY.replace("fam_b: {vars: {scale: 2}}", "fam_b: {vars: {scale: 3}}")
    declared = bad.replace("  scale: [1, 2]\n", "  scale: [1, 2]\n  scal: [1]\n  act: ['${x}']\n")
    family.write_text(declared, "utf-8")
    found = {(d.path, d.loc.line) for d in errors_of(family)}
    assert found == {("var_choices.scal", 9), ("var_choices.act[0]", 10), ("variants.fam_b.vars.scale", 13)}
    family.write_text(bad, "utf-8")
    # the table row is reported once, also when its variant is the one built
    for ref in (f"{family}#fam_a", f"{family}#fam_b"):
        (only,) = errors_of(ref)
        assert only.path == "variants.fam_b.vars.scale" and "received integer 3" in only.message


def test_a_librarys_choices_apply_to_the_specs_that_use_it(tmp_path: Path):
    (tmp_path / "lib.yaml").write_text(
        "cnnspec: 1\nvars: {mode: a}\nvar_choices: {mode: [a, b]}\nblocks:\n"
        "  b:\n    layers:\n      - {flatten: null, when: \"${mode == 'a'}\"}\n",
        "utf-8",
    )
    user = tmp_path / "u.yaml"
    user.write_text(
        "cnnspec: 1\nname: u\nuse: [lib.yaml]\ninput: {shape: [4, 4, 1]}\nvars: {mode: c}\nmodel:\n"
        "  - b\n  - dense: 2\n",
        "utf-8",
    )
    (found,) = errors_of(user)
    assert found.path == "vars.mode" and found.loc.line == 5 and "a or b" in found.message


@pytest.mark.parametrize("model", list(zoo.variants()))
def test_every_zoo_model_refuses_a_pooling_keras_would_ignore(model: str):
    (found,) = errors_of(f"zoo:{model}", "vars.include_top=false", "vars.pooling=mean")
    assert found.path == "vars.pooling" and "null, avg or max" in found.message
    assert compile_spec(f"zoo:{model}", overrides=["vars.include_top=false", "vars.pooling=max"]).ir.nodes


def test_a_backbones_vars_and_the_cli(tmp_path: Path):
    spec = tmp_path / "bb.yaml"
    spec.write_text(
        "cnnspec: 1\nname: bb\ninput: {shape: [32, 32, 3]}\nmodel:\n"
        "  - backbone: {spec: zoo:mobilenet_v2,\n"
        "      vars: {include_top: false, pooling: 1, input_shape: [32, 32, 3]}}\n"
        "  - dense: 3\n",
        "utf-8",
    )
    result = runner.invoke(app, ["validate", str(spec)])
    assert result.exit_code == 1, result.output
    assert f"{spec}:6:" in result.output and "received integer 1" in result.output
    assert "in backbone 'zoo:mobilenet_v2'" in result.output and "Traceback" not in result.output


def test_the_search_space_draws_only_the_choices(tmp_path: Path):
    spec = tmp_path / "s.yaml"
    base = (
        FAMILY
        + "data: {source: digits, classes: [0, 1]}\ntraining: {epochs: 1}\nsearch:\n  trials: 2\n  space:\n"
    )
    spec.write_text(base + "    vars.pooling: {choice: [avg, mean]}\n", "utf-8")
    (found,) = errors_of(spec)
    assert found.path == "search.space.vars.pooling" and "received string 'mean'" in found.message
    assert found.loc.line == base.count("\n") + 1 and found.loc.column == 34
    spec.write_text(base + "    vars.scale: {int: [1, 2]}\n", "utf-8")
    (found,) = errors_of(spec)
    assert "expected {choice: [...]} for var 'scale'" in found.message
    assert found.hint == "list the values to try: {choice: [1, 2]}"
    spec.write_text(base + "    vars.pooling: {choice: [avg, max]}\n", "utf-8")
    assert compile_spec(str(spec)).ir.nodes


def test_choices_compare_as_yaml_values():
    assert varchoices.allowed(1.0, [1, 2]) and not varchoices.allowed(True, [1, 2])
    assert varchoices.allowed(None, [None]) and not varchoices.allowed(0, [None, False])
    assert varchoices.allowed([224, 224, 3], [[224, 224, 3]]) and not varchoices.allowed("1", [1])
    assert varchoices.listing([None, "avg", "null", True, 1.5]) == 'null, avg, "null", true or 1.5'
    # what the editor may show of a document the schema refused
    assert varchoices.listing([]) == "nothing" and varchoices.listing(["a"]) == "a"
    assert varchoices.shown(datetime.date(2026, 1, 2)) == "2026-01-02"


def test_the_editor_offers_a_vars_choices_and_renames_them_with_the_var(tmp_path: Path, monkeypatch):
    text = FAMILY.replace("vars: {pooling: avg,", "vars: {pooling: ,")
    assert labels(complete_at(text, "pooling: ,", 9)) == ["null", "avg", "max"]
    from tests.test_lsp_rename import Workspace

    monkeypatch.chdir(tmp_path)
    space = Workspace(tmp_path, {"fam.yaml": FAMILY})
    text = space.renamed("fam.yaml", "scale: [1, 2]", 0, "factor")["fam.yaml"]
    assert "  factor: [1, 2]\n" in text and "{vars: {factor: 2}}" in text and '"${int(2 * factor)}"' in text
    # starting on the choices' key renames the var
    symbol = space.target("fam.yaml", "pooling: [null", 0)
    assert symbol is not None and (symbol.what, symbol.name) == ("var", "pooling")


def test_the_hover_of_a_var_names_its_choices(tmp_path: Path):
    from cnnspec.lsp import hover
    from cnnspec.lsp.documents import Documents
    from cnnspec.lsp.locate import TreeIndex, path_at

    path = tmp_path / "fam.yaml"
    path.write_text(FAMILY, "utf-8")
    documents = Documents()
    documents.set(path, FAMILY, 1)
    analysis = documents.analyze(path)
    assert analysis.doc is not None and analysis.compiled is not None
    index = TreeIndex(analysis.compiled.ir)
    lines = FAMILY.split("\n")
    for row, column in ((lines.index("  pooling: [null, avg, max]"), 3), (14, lines[14].index("pooling"))):
        cursor = path_at(analysis.doc, analysis.name, row + 1, column + 1)
        text = hover.hover_text(analysis.doc, analysis.compiled, index, cursor, lines[row], column)
        assert text is not None and "one of: `null, avg or max`" in text and "value: `avg`" in text, text
