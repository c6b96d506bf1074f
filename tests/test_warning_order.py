"""Warnings are ranked by position, as errors are: each pass added its own after the others',
so a `hidden-loop-var` warning of line 12 (the resolver's) came before an `unused-var` one of
line 4 (the lint pass's), in validate, the language server and every command that says them."""

from __future__ import annotations

from cnnspec.analysis.passes import compile_text
from cnnspec.cli.app import app

NESTED = """\
cnnspec: 1
name: w2
input: {shape: [8, 8, 1]}
vars: {unused: 3}
model:
  - repeat:
      times: 2
      as: i
      layers:
        - repeat:
            times: 2
            as: i
            layers:
              - conv2d: {filters: "${i + 4}", kernel_size: 3, padding: same}
  - flatten
  - dense: 10
"""


def test_warnings_come_in_the_order_of_their_lines(runner, tmp_path):
    compiled = compile_text(NESTED, "w2.yaml")
    assert [(w.code, w.loc.line) for w in compiled.warnings] == [("unused-var", 4), ("hidden-loop-var", 12)]
    spec = tmp_path / "w2.yaml"
    spec.write_text(NESTED, encoding="utf-8")
    result = runner.invoke(app, ["validate", str(spec)])
    assert result.exit_code == 0, result.output
    said = [line for line in result.stderr.splitlines() if ": warning: " in line]
    assert [line.split(":")[1] for line in said] == ["4", "12"]
