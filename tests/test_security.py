"""Security checks that fail the build: forbidden constructs in the package source, and the
dependency floors where security fixes landed.

The source scan is textual on purpose (comments and strings included): the package also writes
Python (the code emitter and its templates), and a forbidden call in a template string is as
dangerous as one in code.
"""

from __future__ import annotations

import functools
import re
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from cnnspec.cli.app import app
from cnnspec.spec import loader
from tests.conftest import ROOT, SPEC_FILES

PACKAGE = ROOT / "cnnspec"
TEMPLATES = ROOT / "templates"

#: pattern → why it is forbidden
FORBIDDEN: dict[str, str] = {
    r"\byaml\.load\(": "yaml.load can construct arbitrary Python objects; use the located safe loader",
    r"\byaml\.(unsafe_load|full_load|load_all|unsafe_load_all|full_load_all)\(": "unsafe YAML loading",
    r"\b(Unsafe|Full)?Loader\s*=\s*yaml\.(Unsafe|Full)?Loader\b": "an unsafe YAML loader class",
    r"\bsafe_mode\s*=\s*False\b": "Keras safe_mode=False deserialises arbitrary code (Lambda layers)",
    r"(?<![\w.])eval\(": "eval() runs arbitrary code; expressions use cnnspec.spec.expr",
    r"(?<![\w.])exec\(": "exec() runs arbitrary code",
    r"\bLambda\(": "Keras Lambda layers serialise Python bytecode; register a proper layer",
    r"\ballow_pickle\s*=\s*True\b": "pickled arrays in .npz files run code when loaded",
    r"\bpickle\.loads?\(": "unpickling runs code",
    r"\bshell\s*=\s*True\b": "shell=True lets file names inject commands",
    r"\bos\.system\(": "os.system goes through the shell",
    r"__import__\(": "dynamic imports from text",
}


def source_files() -> list[Path]:
    files = sorted(PACKAGE.rglob("*.py"))
    if TEMPLATES.is_dir():
        files += sorted(p for p in TEMPLATES.rglob("*") if p.is_file() and p.suffix in (".py", ".j2"))
    return files


def test_scan_covers_the_package():
    names = {p.relative_to(ROOT).as_posix() for p in source_files()}
    assert {"cnnspec/spec/loader.py", "cnnspec/spec/expr.py", "cnnspec/api.py"} <= names


@functools.cache
def source_texts() -> list[tuple[Path, str]]:
    """Each of :func:`source_files` with its text, read once for all the patterns."""
    return [(path, path.read_text(encoding="utf-8")) for path in source_files()]


#: What a pattern starts with that matches no text or may match none: a zero-width ``\b`` or
#: lookbehind, an optional group.
_OPTIONAL_START = re.compile(r"^(?:\\b|\(\?<!\[[^\]]*\]\)|\([^()]*\)\?)")


def prefilter(pattern: str) -> re.Pattern[str]:
    """``pattern`` without its optional start: whatever text ``pattern`` matches, this matches
    too, and Python's regex engine finds a pattern that begins with a literal ~30 times faster
    in the package's 4 MB than one that begins with ``\b``."""
    while (stripped := _OPTIONAL_START.sub("", pattern, count=1)) != pattern:
        pattern = stripped
    return re.compile(pattern)


@pytest.mark.parametrize("pattern", list(FORBIDDEN))
def test_forbidden_constructs_absent(pattern):
    regex, anywhere = re.compile(pattern), prefilter(pattern)
    hits = []
    for path, text in source_texts():
        # a line that matches is a match of the prefilter in the whole text: files without one
        # are not scanned line by line
        if anywhere.search(text) is None:
            continue
        for number, line in enumerate(text.splitlines(), start=1):
            if regex.search(line):
                hits.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not hits, f"{FORBIDDEN[pattern]}:\n" + "\n".join(hits)


@pytest.mark.parametrize(
    "text",
    [
        "data = yaml.load(text)",
        "yaml.full_load(stream)",
        "Loader=yaml.UnsafeLoader",
        "keras.models.load_model(p, safe_mode=False)",
        "value = eval(text)",
        "exec(code)",
        "keras.layers.Lambda(lambda x: x)",
        "np.load(p, allow_pickle=True)",
        "subprocess.run(cmd, shell=True)",
    ],
)
def test_the_scanner_catches_what_it_should(text):
    assert any(re.search(pattern, text) for pattern in FORBIDDEN)
    # (and the prefilter of a pattern that matches, in the file around it too)
    assert all(prefilter(p).search(f"x = 1\n{text}\n") for p in FORBIDDEN if re.search(p, text))


@pytest.mark.parametrize("text", ["self.evaluate(x)", "_eval(node, env)", "safe_mode=True", "evaluate("])
def test_the_scanner_ignores_lookalikes(text):
    assert not any(re.search(pattern, text) for pattern in FORBIDDEN)


# -- the loader is safe at run time, not only by grep -------------------------------------------
def test_the_loader_uses_only_safe_machinery():
    assert loader._SafeLoader in (yaml.SafeLoader, getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def test_validating_every_spec_never_reaches_an_unsafe_yaml_api(monkeypatch, runner):
    def refuse(*args, **kwargs):
        raise AssertionError("an unsafe YAML API was called")

    for name in ("load", "load_all", "unsafe_load", "full_load", "unsafe_load_all", "full_load_all"):
        monkeypatch.setattr(yaml, name, refuse)
    result = runner.invoke(app, ["validate", *map(str, SPEC_FILES)])
    assert result.exit_code == 0, result.output


# -- dependency floors -------------------------------------------------------------------------
FLOORS = {
    "pyyaml": ("5.4", "CVE-2020-14343: full_load could run code"),
    "jinja2": ("3.1.6", "CVE-2025-27516 and earlier sandbox escapes"),
    "keras": ("3.14", "safe-mode loading fixes"),
}


def declared_requirements() -> dict[str, Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    requirements = [Requirement(text) for text in project["dependencies"]]
    return {r.name.lower(): r for r in requirements}


def lower_bound(specifier: SpecifierSet) -> Version | None:
    bounds = [
        Version(s.version.removesuffix(".*"))
        for s in specifier
        if s.operator in (">=", ">", "==", "~=", "===")
    ]
    return max(bounds) if bounds else None


@pytest.mark.parametrize("name", sorted(FLOORS))
def test_dependency_floor_declared(name):
    floor, why = FLOORS[name]
    requirement = declared_requirements().get(name)
    assert requirement is not None, f"{name} must be a declared dependency ({why})"
    bound = lower_bound(requirement.specifier)
    assert bound is not None and bound >= Version(floor), f"{requirement}: declare {name}>={floor} ({why})"
    below = Version(floor).release
    probe = ".".join(map(str, (*below[:-1], below[-1] - 1))) if below[-1] > 0 else "0"
    assert not requirement.specifier.contains(probe, prereleases=True)


@pytest.mark.parametrize("name", sorted(FLOORS))
def test_installed_version_meets_the_floor(name):
    floor, why = FLOORS[name]
    assert Version(metadata.version(name)) >= Version(floor), why


def test_lower_bound_helper():
    assert lower_bound(SpecifierSet(">=5.4")) == Version("5.4")
    assert lower_bound(SpecifierSet("==2.21.*")) == Version("2.21")
    assert lower_bound(SpecifierSet("<4")) is None
    assert lower_bound(SpecifierSet(">=3.1,<4,>=3.1.6")) == Version("3.1.6")
