"""Golden fixtures: each file in fixtures/invalid/ names its first error on line 1.

``# expect: LINE:COL: PATH: MESSAGE`` — the first error, ranked by location, must match exactly,
through the API and through `cnnspec validate` (exit code 1, no traceback). Header lines that
may follow it:

- ``# file: NAME`` — the error is located in another file of the folder (an ``extends`` base, a
  ``use`` library), named relative to the folder;
- ``# note: TEXT`` — the error's notes (block calls, includes), exactly and in order, with file
  names relative to the folder; without any, the error has no notes;
- ``# errors: N`` — the number of errors; without it, exactly one. One mistake gives one error:
  nothing that depends on a failed value is reported (the ``cascade_*`` fixtures).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from cnnspec.api import compile_spec
from cnnspec.cli.app import app
from cnnspec.errors import SpecError
from cnnspec.spec.loader import display_name
from tests.conftest import FIXTURES

FOLDER = FIXTURES / "invalid"
INVALID = sorted(FOLDER.glob("*.yaml"))


@dataclass
class Expected:
    line: int
    column: int
    text: str
    file: str
    notes: list[str]
    errors: int


def expected(path: Path) -> Expected:
    lines = path.read_text(encoding="utf-8").splitlines()
    first = lines[0]
    assert first.startswith("# expect: "), f"{path.name} must start with '# expect: LINE:COL: PATH: MESSAGE'"
    line, column, rest = first.removeprefix("# expect: ").split(":", 2)
    headers = {"file": [path.name], "note": [], "errors": ["1"]}
    for header in lines[1:]:
        key = header.removeprefix("# ").split(":", 1)[0]
        if not header.startswith("# ") or key not in headers:
            break
        value = header.split(":", 1)[1].strip()
        headers[key] = [*headers[key], value] if key == "note" else [value]
    return Expected(
        int(line), int(column), rest.strip(), headers["file"][0], headers["note"], int(headers["errors"][0])
    )


def relative(text: str, file: str) -> str:
    """A note's text with its file named relative to the fixture folder."""
    name = Path(file).resolve().relative_to(FOLDER).as_posix()
    return text.replace(file, name)


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_first_error_matches_golden(path):
    want = expected(path)
    with pytest.raises(SpecError) as caught:
        compile_spec(path)
    first = caught.value.errors[0]
    assert f"{first.path}: {first.message}" == want.text
    assert first.loc is not None
    assert Path(first.loc.file).resolve() == (FOLDER / want.file).resolve()
    assert (first.loc.line, first.loc.column) == (want.line, want.column)
    assert [relative(n.message, n.loc.file) if n.loc else n.message for n in first.notes] == want.notes


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_one_mistake_gives_one_error(path):
    """Errors never cascade: every fixture holds one mistake (unless it says otherwise)."""
    with pytest.raises(SpecError) as caught:
        compile_spec(path)
    found = [f"{e.loc}: {e.path}: {e.message}" for e in caught.value.errors]
    assert len(found) == expected(path).errors, found
    # nor a warning that is only a symptom (a block unused because its call failed first)
    assert [d.message for d in caught.value.diagnostics if d.severity == "warning"] == []


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_cli_reports_error_without_traceback(path, runner):
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    want = expected(path)
    assert f"{Path(want.file).name}:{want.line}:{want.column}: error:" in result.output
    shown = result.output.replace(f"{display_name(FOLDER)}/", "").replace(f"{FOLDER}/", "")
    for note in want.notes:
        assert f"note: {note}\n" in shown


def test_json_format_lists_every_error(runner):
    path = FIXTURES / "invalid" / "unknown_param.yaml"
    result = runner.invoke(app, ["validate", "--format", "json", str(path)])
    assert result.exit_code == 1
    items = json.loads(result.stdout)
    assert {"file", "line", "column", "path", "code", "message", "hint", "trace"} <= set(items[0])
    # `filters` is set beside `filtres`: renaming it would write a duplicate key
    assert (
        items[0]["hint"]
        == "`filters` is set already in this mapping: remove `filtres`, or give `filters` its value"
    )
    assert items[0]["trace"] == []
