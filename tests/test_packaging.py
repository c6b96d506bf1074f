"""Packaging: the wheel carries the JSON Schema, the templates and the model zoo as package data,
and the console script is declared."""

from __future__ import annotations

import posixpath
import subprocess
import sys
import tomllib
import zipfile

import pytest

from tests.conftest import ROOT


def test_console_script_and_dev_extra_are_declared():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["scripts"]["cnnspec"] == "cnnspec.cli.app:main"
    assert {"pytest", "ruff", "hypothesis"} <= {
        d.split(">")[0].split("=")[0] for d in project["optional-dependencies"]["dev"]
    }
    assert any(d.startswith("tensorflow==2.21") for d in project["dependencies"])


def test_every_package_directory_is_listed():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {
        ".".join(path.parent.relative_to(ROOT).parts)
        for path in (ROOT / "cnnspec").rglob("__init__.py")
        if "__pycache__" not in path.parts
    }
    assert found <= listed, f"add to [tool.setuptools] packages: {sorted(found - listed)}"


@pytest.mark.slow
def test_wheel_contains_schema_and_templates(tmp_path):
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("cnnspec-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "cnnspec/schemas/cnnspec.schema.json" in names
    templates = sorted((ROOT / "templates").glob("*.j2"))
    assert all(f"cnnspec/templates/{t.name}" in names for t in templates)
    assert "cnnspec/layers/registry.py" in names
    zoo = sorted((ROOT / "cnnspec" / "zoo").rglob("*.yaml"))
    assert zoo and all(f"{path.relative_to(ROOT).as_posix()}" in names for path in zoo)
    # each zoo file's `$schema` modeline, relative to where the wheel installs it, names a file of
    # the wheel: editors check a packaged zoo spec against the packaged schema
    for path in zoo:
        target = path.read_text(encoding="utf-8").splitlines()[0].split("$schema=", 1)[1]
        installed = posixpath.normpath(posixpath.join(path.parent.relative_to(ROOT).as_posix(), target))
        assert installed in names, f"{path.name}: {target} → {installed}"
