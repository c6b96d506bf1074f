"""``cnnspec validate --fix`` and the editor's quick fixes on keys: a hint that corrects one part
of a dotted ``search.space`` key replaces that part alone (and the diagnostic's range is that
part), and no fix writes a key that its mapping already has."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cnnspec.cli.app import app

pytest.importorskip("pygls", reason="the `lsp` extra is part of `dev`")

from cnnspec.errors import Loc
from cnnspec.lsp.diagnostics import convert
from cnnspec.lsp.documents import Documents
from cnnspec.lsp.fixes import fix_for

SPACE = """\
cnnspec: 1
name: fs
input: {shape: [8, 8, 1]}
vars: {width: 8}
model:
  - conv2d: {filters: "${width}", kernel_size: 3}
  - flatten
  - {id: head_dropout, dropout: 0.3}
  - dense: {units: 10, activation: softmax}
training:
  epochs: 1
  callbacks:
    - reduce_lr_on_plateau: {monitor: val_loss, patience: 2}
search:
  trials: 2
  space:
    vars.widht: {choice: [8, 16]}
    head_dropot.rate: {float: [0.0, 0.5]}
    training.callbacks[0].reduce_lr_on_plateu.patience: {int: [1, 4]}
"""


def fix(path: Path, text: str) -> tuple[int, str]:
    path.write_text(text)
    result = CliRunner().invoke(app, ["validate", str(path), "--fix"])
    return result.exit_code, path.read_text()


def test_fix_replaces_the_misspelt_part_of_a_search_space_key(tmp_path):
    code, fixed = fix(tmp_path / "s.yaml", SPACE)
    assert code == 0, fixed
    assert "    vars.width: {choice" in fixed
    assert "    head_dropout.rate: {float" in fixed
    assert "    training.callbacks[0].reduce_lr_on_plateau.patience: {int" in fixed


def test_quoted_search_space_keys_are_fixed_in_their_part(tmp_path):
    text = SPACE.replace("vars.widht:", '"vars.widht":').replace("head_dropot.rate:", "'head_dropot.rate':")
    code, fixed = fix(tmp_path / "s.yaml", text)
    assert code == 0, fixed
    assert '"vars.width":' in fixed and "'head_dropout.rate':" in fixed


def test_the_editor_marks_and_fixes_the_misspelt_part_only(tmp_path):
    path = tmp_path / "s.yaml"
    documents = Documents()
    documents.set(path, SPACE, 1)
    analysis = documents.analyze(path)
    lines = SPACE.split("\n")
    seen = {}
    for diagnostic in analysis.diagnostics:
        span = convert(diagnostic, analysis.name, SPACE).range
        line = lines[span.start.line]
        found = fix_for(diagnostic, analysis.name, SPACE)
        assert found is not None and (found.start, found.end) == (span.start.character, span.end.character)
        seen[line[span.start.character : span.end.character]] = found.text
    assert seen == {
        "widht": "width",
        "head_dropot": "head_dropout",
        "reduce_lr_on_plateu": "reduce_lr_on_plateau",
    }


def test_no_fix_where_the_misspelt_part_is_not_where_the_error_is(tmp_path):
    # located at the key's start (a key whose part could not be found as written): `training`
    # is not the part the hint corrects, so nothing is offered
    path = tmp_path / "s.yaml"
    documents = Documents()
    documents.set(path, SPACE, 1)
    analysis = documents.analyze(path)
    (third,) = [d for d in analysis.diagnostics if "reduce_lr_on_plateu" in d.message]
    assert third.hint == "did you mean `reduce_lr_on_plateau`?" and third.loc is not None
    at_start = replace(third, loc=Loc(third.loc.file, third.loc.line, 5))
    assert fix_for(at_start, analysis.name, SPACE) is None


def test_a_misspelt_var_whose_var_is_searched_already_is_not_renamed_to_it(tmp_path):
    """`vars.widht` beside `vars.width` was hinted "did you mean `width`?": the rename would set
    the var twice in the space. The hint says it is searched already, and nothing is fixed."""
    text = SPACE.replace(
        "    vars.widht: {choice: [8, 16]}\n",
        "    vars.widht: {choice: [8, 16]}\n    vars.width: {int: [4, 8]}\n",
    )
    code, fixed = fix(tmp_path / "s.yaml", text)
    assert code == 1
    assert "    vars.widht: {choice: [8, 16]}\n    vars.width: {int: [4, 8]}\n" in fixed
    assert "    head_dropout.rate: {float" in fixed  # (the other keys' fixes are made)
    result = CliRunner().invoke(app, ["validate", str(tmp_path / "s.yaml")])
    assert "hint: `vars.width` is searched already: remove `vars.widht`" in result.output
