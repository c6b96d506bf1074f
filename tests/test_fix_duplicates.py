"""``cnnspec validate --fix`` and the editor's quick fixes never write a key its mapping already
has: the hints name no key set beside the unknown one (they say it is set), a block called with
inputs bound by name is pointed to an input not bound yet, and the fixer refuses an edit that
would make a duplicate key whatever the hint says."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cnnspec.cli.app import app

pytest.importorskip("pygls", reason="the `lsp` extra is part of `dev`")

from cnnspec.lsp.documents import Documents
from cnnspec.lsp.fixes import fix_for

HEAD = "cnnspec: 1\nname: t\ninput: {shape: [8, 8, 1]}\n"
DUPLICATING = (
    HEAD
    + "model:\n  - flatten\n  - dense: {units: 10, unit: 5}\n"
    + "training: {optimizer: {adam: {learning_rate: 0.01, lr: 0.1}}}\n"
)
CELL = (
    HEAD
    + """\
blocks:
  cell:
    inputs: [p, x]
    layers:
      - {add: {}, inputs: [p, x]}
model:
  - {id: stem_a, conv2d: {filters: 4, kernel_size: 3, padding: same}}
  - {id: stem_b, conv2d: {filters: 4, kernel_size: 3, padding: same}, inputs: input}
  - cell: {}
    inputs: {p: stem_a, y: stem_b}
  - flatten
  - dense: {units: 2, activation: softmax}
"""
)


def validate(path: Path, text: str, *args: str) -> tuple[int, str, str]:
    path.write_text(text)
    result = CliRunner().invoke(app, ["validate", str(path), *args])
    return result.exit_code, " ".join(result.output.split()), path.read_text()


def test_no_fix_renames_a_key_to_one_set_beside_it(tmp_path):
    code, output, after = validate(tmp_path / "s.yaml", DUPLICATING, "--fix")
    assert code != 0
    assert after == DUPLICATING  # nothing written: `units` and `learning_rate` are set already
    assert "duplicate key" not in output
    assert "`units` is set already in this mapping: remove `unit`" in output
    assert "`learning_rate` is set already in this mapping" in output and "remove `lr`" in output
    assert "did you mean" not in output


def test_a_misspelt_key_is_still_fixed_when_the_key_meant_is_not_set(tmp_path):
    text = DUPLICATING.replace("units: 10, unit: 5", "unit: 5").replace("learning_rate: 0.01, ", "")
    code, _output, after = validate(tmp_path / "s.yaml", text, "--fix")
    assert code == 0, after
    assert "dense: {units: 5}" in after and "adam: {learning_rate: 0.1}" in after


def test_a_block_input_bound_by_name_is_fixed_to_the_input_not_bound_yet(tmp_path):
    code, output, _after = validate(tmp_path / "c.yaml", CELL)
    assert code != 0 and "did you mean `x`?" in output and "did you mean `p`" not in output
    code, _output, after = validate(tmp_path / "c.yaml", CELL, "--fix")
    assert code == 0, after
    assert "inputs: {p: stem_a, x: stem_b}" in after


def test_several_unbound_inputs_are_listed_when_none_is_close(tmp_path):
    text = CELL.replace("[p, x]", "[p, x, z]")
    _code, output, _after = validate(tmp_path / "c.yaml", text.replace("y: stem_b", "other: stem_b"))
    assert "not bound yet: x, z" in output and "did you mean `p`" not in output


def test_the_fixer_refuses_an_edit_that_would_write_a_duplicate_key(tmp_path):
    """The last guard: a hint that names a key set beside the located one (as hints did
    before) gets no fix, in a block mapping and a flow mapping, plain or quoted."""
    for text in (DUPLICATING, HEAD + "model:\n  - flatten\n  - dense:\n      units: 10\n      'unit': 5\n"):
        path = tmp_path / "s.yaml"
        documents = Documents()
        documents.set(path, text, 1)
        analysis = documents.analyze(path)
        (unit,) = [d for d in analysis.diagnostics if "'unit'" in d.message]
        assert fix_for(replace(unit, hint="did you mean `units`?"), analysis.name, text) is None
        # the same edit where `units` is not set is made
        alone = text.replace("units: 10, ", "").replace("      units: 10\n", "")
        documents.set(path, alone, 2)
        analysis = documents.analyze(path)
        (unit,) = [d for d in analysis.diagnostics if "'unit'" in d.message]
        found = fix_for(unit, analysis.name, alone)
        assert found is not None and found.text == "units"
