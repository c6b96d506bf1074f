"""Packaging: the wheel carries the JSON Schema, the templates and the model zoo as package data,
and the console script is declared."""

from __future__ import annotations

import os
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


def test_the_version_is_written_once():
    """pyproject.toml took its own "0.1.0" beside cnnspec/version.py's: the wheel's version is
    now read from the module every command prints."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in pyproject["project"] and "version" in pyproject["project"]["dynamic"]
    assert pyproject["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "cnnspec.version.__version__"}


@pytest.mark.slow
def test_wheel_contains_schema_and_templates(tmp_path):
    """The wheel, built as pip builds it, with setuptools saying nothing it will stop doing (the
    licence as a TOML table, the zoo's block libraries as data of a folder no package lists)."""
    from cnnspec.version import __version__

    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--verbose",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    said = built.stdout + built.stderr
    assert "SetuptoolsDeprecationWarning" not in said and "is absent from the `packages`" not in said, said
    (wheel,) = tmp_path.glob("cnnspec-*.whl")
    archive = zipfile.ZipFile(wheel)
    names = set(archive.namelist())
    info = f"cnnspec-{__version__}.dist-info"
    assert f"{info}/licenses/LICENSE" in names
    metadata = archive.read(f"{info}/METADATA").decode()
    assert f"Version: {__version__}\n" in metadata and "License-Expression: MIT\n" in metadata
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


@pytest.mark.slow
def test_the_source_distribution_builds_the_package_without_half_a_test_suite(tmp_path):
    """The sdist carried tests/test_*.py (setuptools' default) without their conftest and
    fixtures: a suite that could not run. It carries the package, its data and the licence."""
    import tarfile

    import setuptools.build_meta as backend

    from cnnspec.version import __version__

    here = os.getcwd()
    os.chdir(ROOT)
    try:
        name = backend.build_sdist(str(tmp_path))
    finally:
        os.chdir(here)
    with tarfile.open(tmp_path / name) as archive:
        names = set(archive.getnames())
    top = f"cnnspec-{__version__}"
    assert {f"{top}/LICENSE", f"{top}/pyproject.toml", f"{top}/cnnspec/zoo/blocks/resnet.yaml"} <= names
    assert f"{top}/templates/train.py.j2" in names
    assert not [n for n in names if n.startswith(f"{top}/tests/")]
