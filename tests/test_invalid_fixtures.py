"""Golden fixtures: each file in fixtures/invalid/ names its first error on line 1.

``# expect: LINE:COL: PATH: MESSAGE`` — the first error, ranked by location, must match exactly,
through the API and through `cnnspec validate` (exit code 1, no traceback).
"""

from __future__ import annotations

import json

import pytest

from cnnspec.api import compile_spec
from cnnspec.cli.app import app
from cnnspec.errors import SpecError
from tests.conftest import FIXTURES

INVALID = sorted((FIXTURES / "invalid").glob("*.yaml"))


def expected(path):
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith("# expect: "), f"{path.name} must start with '# expect: LINE:COL: PATH: MESSAGE'"
    line, column, rest = first.removeprefix("# expect: ").split(":", 2)
    return int(line), int(column), rest.strip()


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_first_error_matches_golden(path):
    line, column, text = expected(path)
    with pytest.raises(SpecError) as caught:
        compile_spec(path)
    first = caught.value.errors[0]
    assert f"{first.path}: {first.message}" == text
    assert first.loc is not None and first.loc.file.endswith(path.name)
    assert (first.loc.line, first.loc.column) == (line, column)


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_cli_reports_error_without_traceback(path, runner):
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    line, column, _ = expected(path)
    assert f"{path.name}:{line}:{column}: error:" in result.output


def test_json_format_lists_every_error(runner):
    path = FIXTURES / "invalid" / "unknown_param.yaml"
    result = runner.invoke(app, ["validate", "--format", "json", str(path)])
    assert result.exit_code == 1
    items = json.loads(result.stdout)
    assert {"file", "line", "column", "path", "code", "message", "hint"} <= set(items[0])
    assert items[0]["hint"] == "did you mean `filters`?"
