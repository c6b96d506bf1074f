"""`cnnspec codegen` output frozen as golden files, for the library and the fixtures.

Any change in the generated model module or training script shows up here as a diff. Set
CNNSPEC_UPDATE_GOLDEN=1 to rewrite the files after an intended change (and say why in the
commit). The cnnspec version in the header is normalised, so a release does not touch them.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cnnspec import __version__
from cnnspec.cli.app import app
from tests.conftest import FIXTURES, ROOT, SPEC_FILES

GOLDEN = FIXTURES / "codegen" / "golden"
SOURCES = [
    *SPEC_FILES,
    *sorted((FIXTURES / "codegen").glob("*.yaml")),
    *sorted((FIXTURES / "resolve").glob("*.yaml")),
]
#: Specs whose training script is refused (data the script cannot read, see
#: backends/codegen_script.py and codegen_tasks.py; data that cannot feed the model, as
#: validate and train refuse it: analysis/tasks.py), with the reason shown.
NO_SCRIPT = {
    # several outputs on the default digits, one array of labels: no target per output
    "graph": "expected a target per output (len, type); the digits source gives one array",
    "skip_connections": "digits has class labels only",  # a segmentation map: no digits masks
    "two_heads": "expected a target per output (classes, box); the digits source gives one array",
    "unet": "digits has class labels only",
}
CASES = [(path, script) for path in SOURCES for script in (False, True)]


def golden_path(path: Path, script: bool) -> Path:
    return GOLDEN / f"{path.parent.name}__{path.stem}{'.train' if script else ''}.py"


def case_id(case: tuple[Path, bool]) -> str:
    path, script = case
    return f"{path.parent.name}/{path.stem}{' --script' if script else ''}"


@pytest.mark.parametrize("case", CASES, ids=[case_id(c) for c in CASES])
def test_codegen_matches_golden_file(case, runner, monkeypatch):
    path, script = case
    monkeypatch.chdir(ROOT)
    args = ["codegen", str(path.relative_to(ROOT)), *(["--script"] if script else [])]
    result = runner.invoke(app, args)
    if script and path.stem in NO_SCRIPT:
        assert result.exit_code != 0 and NO_SCRIPT[path.stem] in result.output
        return
    assert result.exit_code == 0, result.output
    text = result.stdout.replace(f"cnnspec {__version__}", "cnnspec VERSION")
    golden = golden_path(path, script)
    if os.environ.get("CNNSPEC_UPDATE_GOLDEN"):
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(text, encoding="utf-8")
    assert text == golden.read_text(encoding="utf-8")


def test_every_golden_file_has_a_spec():
    """A golden file left behind by a renamed spec would never be compared again."""
    expected = {golden_path(path, script).name for path, script in CASES}
    assert {p.name for p in GOLDEN.glob("*.py")} <= expected


@pytest.mark.parametrize("golden", sorted(GOLDEN.glob("*.py")), ids=lambda p: p.name)
def test_no_module_level_name_is_bound_twice(golden):
    """A template's constant or function bound again further down replaces the first (the task
    script's MASK_CLASSES, a count by output, was nearly bound again as the shapes' names)."""
    import ast
    from collections import Counter

    bound: Counter[str] = Counter()
    for node in ast.parse(golden.read_text(encoding="utf-8")).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            bound[node.name] += 1
        elif isinstance(node, ast.Assign):
            bound.update(t.id for t in node.targets if isinstance(t, ast.Name))
    assert [name for name, count in bound.items() if count > 1] == []
