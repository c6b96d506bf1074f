"""README.md's shell examples name files that ship: every ``specs/…`` and ``examples/…`` path and
every ``zoo:`` name in a fenced command exists, so a command copied from the README does not
stop at ``error: no such file``. TensorFlow-free: the README is only read, and the one command
run (``validate``) imports none."""

from __future__ import annotations

import re

from cnnspec.cli.app import app
from cnnspec.spec.zoo import resolve_ref
from tests.conftest import ROOT

README = ROOT / "README.md"

#: Languages of the fences whose every line is a command; other fences (``text``, none) hold a
#: transcript whose commands are the lines that start with ``$ ``.
SHELL = frozenset({"bash", "sh", "shell", "console"})

#: A repository path the README's commands use, as a shell word: not a part of a longer path
#: (``runs/x/specs/…``) or name (``my_examples/``).
REPO_PATH = re.compile(r"(?<![\w./-])((?:specs|examples)/[\w./*?\[\]-]+)")
ZOO_NAME = re.compile(r"(?<![\w./-])(zoo:[\w./-]+)")


def fenced_commands(text: str) -> list[tuple[int, str]]:
    """Each command of the fenced blocks of ``text`` with its line number, comments cut."""
    commands: list[tuple[int, str]] = []
    for fence in re.finditer(r"^```(\w*)\n(.*?)^```", text, re.S | re.M):
        first = text.count("\n", 0, fence.start(2)) + 1
        for offset, line in enumerate(fence.group(2).splitlines()):
            if fence.group(1) in SHELL:
                command = line
            elif line.startswith("$ "):
                command = line[2:]
            else:
                continue
            command = command.split(" #", 1)[0].strip()
            if command and not command.startswith("#"):
                commands.append((first + offset, command))
    return commands


def test_the_scan_finds_the_tours_commands():
    """The scan itself: it reads the quick tour (a test that checks nothing would pass as well)."""
    commands = dict(fenced_commands(README.read_text(encoding="utf-8")))
    assert "cnnspec validate zoo:blocks/resnet" in commands.values()
    assert any("specs/resnet.yaml" in c for c in commands.values())
    assert any("examples/transfer/finetune.yaml" in c for c in commands.values())


def test_every_repository_path_in_a_readme_command_exists():
    missing = [
        f"README.md:{line}: {path} ({command})"
        for line, command in fenced_commands(README.read_text(encoding="utf-8"))
        for path in REPO_PATH.findall(command)
        if not list(ROOT.glob(path.rstrip(".,;:)")))
    ]
    assert missing == []


def test_every_zoo_name_in_a_readme_command_resolves():
    # resolve_ref raises a located SpecError for a name the zoo lacks
    for _line, command in fenced_commands(README.read_text(encoding="utf-8")):
        for name in ZOO_NAME.findall(command):
            assert resolve_ref(name.rstrip(".,;:)"))[0].is_file()


def test_the_tours_block_library_validates_as_the_readme_says(runner):
    """The tour's comment: a block library is checked, and said ok with its number of blocks
    (no kinds, no names)."""
    result = runner.invoke(app, ["validate", "zoo:blocks/resnet"])
    assert result.exit_code == 0, result.output
    assert result.output == "ok zoo:blocks/resnet: block library — 8 blocks\n"
    tour = dict(fenced_commands(README.read_text(encoding="utf-8")))
    line = next(n for n, command in tour.items() if command == "cnnspec validate zoo:blocks/resnet")
    comment = README.read_text(encoding="utf-8").splitlines()[line - 1].split(" # ", 1)[1]
    assert comment == "a block library (blocks, no model): ok, and how many blocks"
