"""Imports run one way: a module never imports from a layer above its own.

errors/fileio/paths → layers (registry) → ir → spec (front-end passes) → analysis → backends →
training → reporting/export → cli, with ``cnnspec.api`` (and the package root, which re-exports
it) the facade on top. Every import counts: at module level, inside a function, and under
``if TYPE_CHECKING:`` (a type-only import still says the lower module knows the upper one, and
it is where today's cycles began).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "cnnspec"

#: Lowest first. A dotted name belongs to the layer of its longest listed prefix; the package
#: root (``cnnspec`` itself: ``__version__`` and the lazy re-exports of the facade) only to its own.
ROOT = "cnnspec"
LAYERS: tuple[tuple[str, ...], ...] = (
    (
        "cnnspec.errors",
        "cnnspec.fileio",
        "cnnspec.jsontext",
        "cnnspec.write_faults",
        "cnnspec.paths",
        "cnnspec.machine",
        "cnnspec.resources",
        "cnnspec.version",
        "cnnspec.shapes",
        "cnnspec.runholder",
    ),
    ("cnnspec.layers",),
    ("cnnspec.ir",),
    ("cnnspec.spec", "cnnspec.zoo"),
    ("cnnspec.analysis",),
    ("cnnspec.backends",),
    ("cnnspec.training",),
    ("cnnspec.reporting", "cnnspec.export", "cnnspec.lsp", "cnnspec.importer"),
    ("cnnspec.search",),
    ("cnnspec.cli",),
    ("cnnspec", "cnnspec.api", "cnnspec.__main__"),  # (`python -m cnnspec`: the console script)
)


def layer_of(name: str) -> int | None:
    """The layer index of a dotted module (or module attribute) name; ``None``: not cnnspec."""
    best: tuple[int, int] | None = None
    for index, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            matches = name == prefix or (prefix != ROOT and name.startswith(prefix + "."))
            if matches and (best is None or len(prefix) > best[0]):
                best = (len(prefix), index)
    return best[1] if best is not None else None


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_module(root: Path, dotted: str) -> bool:
    here = root.parent / Path(*dotted.split("."))
    return here.is_dir() or here.with_suffix(".py").is_file()


def _statements(tree: ast.AST) -> Iterator[ast.AST]:
    """Every statement of the tree, nested ones too (function and class bodies, branches,
    handlers, match cases): ``import`` is a statement, never inside an expression, so this
    finds every one that :func:`ast.walk` finds, without visiting the expressions (~9 in 10
    nodes of the package)."""
    pending = [tree]
    while pending:
        node = pending.pop()
        yield node
        for value in vars(node).values():
            if isinstance(value, list):
                pending += [v for v in value if isinstance(v, (ast.stmt, ast.excepthandler, ast.match_case))]


def imported_names(tree: ast.AST, module: str, is_package: bool, root: Path) -> list[tuple[int, str]]:
    """The module each ``import`` statement anywhere in the tree loads from, with its line.

    ``from a.b import c`` gives ``a.b.c`` when ``c`` is a submodule, else ``a.b`` (``c`` is an
    attribute of it, e.g. ``from cnnspec import __version__`` is the package root).
    """
    found: list[tuple[int, str]] = []
    for node in _statements(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.split(".") if is_package else module.split(".")[:-1]
                anchor = package[: len(package) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                inner = f"{base}.{alias.name}"
                found.append((node.lineno, inner if _is_module(root, inner) else base))
    return found


def upward_imports(root: Path) -> list[str]:
    """``file:line: module (layer) imports name (layer)`` for each import that runs upward.
    A module that no layer claims is reported too, so a new package must be placed."""
    problems: list[str] = []
    for path in sorted(root.rglob("*.py")):
        module = module_name(path, root)
        own = layer_of(module)
        where = path.relative_to(root.parent)
        if own is None:
            problems.append(f"{where}: module {module} is in no layer (add it to LAYERS)")
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for line, name in sorted(set(imported_names(tree, module, path.name == "__init__.py", root))):
            target = layer_of(name)
            if target is not None and target > own:
                problems.append(f"{where}:{line}: {module} (layer {own}) imports {name} (layer {target})")
    return problems


def test_no_import_runs_upward():
    problems = upward_imports(PACKAGE)
    assert not problems, "imports that run upward:\n" + "\n".join(problems)


def test_every_module_is_in_a_layer():
    # upward_imports reports unplaced modules; this keeps the table honest about what exists.
    for prefixes in LAYERS:
        for prefix in prefixes:
            relative = Path(*prefix.split("."))
            here = PACKAGE.parent / relative
            assert here.is_dir() or here.with_suffix(".py").is_file(), f"{prefix} names no module"


def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "cnnspec"
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    for directory in [root, *[p for p in root.rglob("*") if p.is_dir()]]:
        (directory / "__init__.py").touch()
    return root


#: The upward imports the package had before the layering (issue 14), each in the form it took:
#: module level, inside a function, under TYPE_CHECKING, relative, and through the package root.
BEFORE = {
    "analysis-to-facade (TYPE_CHECKING)": (
        "analysis/lint.py",
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from cnnspec.api import CompiledSpec\n",
    ),
    "analysis-to-training (in a function)": (
        "analysis/lint.py",
        "def f():\n    from cnnspec.training.config import data_config\n",
    ),
    "backends-to-facade": ("backends/codegen_model.py", "from cnnspec.api import CompiledSpec\n"),
    "backends-to-training": (
        "backends/codegen_script.py",
        "from cnnspec.training.config import TrainConfig\n",
    ),
    "backends-to-package-root": ("backends/python_emitter.py", "from cnnspec import __version__\n"),
    "training-to-facade": ("training/trainer.py", "def f():\n    from cnnspec.api import build_model\n"),
    "training-to-reporting": (
        "training/trainer.py",
        "def f():\n    from cnnspec.reporting.html import write_report\n",
    ),
    "reporting-to-cli": ("reporting/html.py", "def f():\n    from cnnspec.cli.inspect import shape_text\n"),
    "reporting-to-facade": ("reporting/run.py", "def f():\n    from cnnspec.api import compile_doc, load\n"),
    "cli-to-facade": ("cli/validate.py", "def f():\n    from cnnspec.api import compile_spec\n"),
    "relative": ("spec/resolve.py", "from ..analysis import lint\n"),
    "plain import": ("ir.py", "import cnnspec.spec.loader\n"),
}


@pytest.mark.parametrize("case", BEFORE, ids=list(BEFORE))
def test_checker_finds_upward_imports(tmp_path, case):
    where, text = BEFORE[case]
    root = _package(tmp_path, {where: text})
    problems = upward_imports(root)
    assert len(problems) == 1 and problems[0].startswith(f"cnnspec/{where}:"), problems


def test_checker_allows_downward_and_same_layer_imports(tmp_path):
    root = _package(
        tmp_path,
        {
            "cli/validate.py": "from cnnspec.analysis.passes import compile_spec\nfrom . import common\n",
            "api.py": "from cnnspec.cli import app\nfrom cnnspec.errors import SpecError\n",
            "spec/resolve.py": "from . import loader\nfrom .loader import SourceDoc\nimport json\n",
            "spec/loader.py": "",
            "reporting/run.py": "from cnnspec.export import exporter\n",
        },
    )
    assert upward_imports(root) == []


def test_checker_reports_a_module_in_no_layer(tmp_path):
    root = _package(tmp_path, {"newthing/x.py": ""})
    assert any("cnnspec.newthing" in p and "no layer" in p for p in upward_imports(root))
