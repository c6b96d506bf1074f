"""`cnnspec validate LIB.yaml` checks a block library on its own (blocks and no model): the
library schema, then its blocks' kinds, parameter and argument names and the values written
out in full, as a block nothing calls is checked in a spec; it said "missing required key
'input'" of every library and never reached its blocks. TF-free."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from cnnspec.cli.app import app
from cnnspec.resources import zoo_dir

LIBRARY = """\
cnnspec: 1
blocks:
  sep:
    params: {f: int}
    layers:
      - conv2d: {filters: "${f}", kernel_size: 3, paddin: same}
      - batch_nrom
"""
GOOD = LIBRARY.replace("paddin", "padding").replace("batch_nrom", "batch_norm")
#: The packaged block libraries (`use: [zoo:blocks/NAME]`).
ZOO_LIBRARIES = sorted((zoo_dir() / "blocks").glob("*.yaml"))


def validate(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["validate", *args], env={"COLUMNS": "300"})
    return result.exit_code, result.output


def test_a_librarys_blocks_are_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    Path("mylib.yaml").write_text(LIBRARY, "utf-8")
    code, output = validate("mylib.yaml", "--format", "json")
    assert code == 1
    found = [(d["line"], d["column"], d["path"], d["message"], d["hint"]) for d in json.loads(output)]
    assert found == [
        (
            6,
            51,
            "blocks.sep.layers[0].conv2d.paddin",
            "unknown parameter 'paddin' for `conv2d`",
            "did you mean `padding`?",
        ),
        (
            7,
            9,
            "blocks.sep.layers[1].batch_nrom",
            "unknown layer kind 'batch_nrom'",
            "did you mean `batch_norm`?",
        ),
    ]


def test_a_good_library_gets_an_ok_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    Path("mylib.yaml").write_text(GOOD, "utf-8")
    assert validate("mylib.yaml") == (0, "ok mylib.yaml: block library — 1 block\n")


def test_a_library_and_a_spec_using_it_are_checked_together(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    Path("mylib.yaml").write_text(GOOD, "utf-8")
    spec = "cnnspec: 1\nname: net\nuse: [mylib.yaml]\ninput: {shape: [8, 8, 1]}\nmodel:\n  - sep: 2\n"
    Path("net.yaml").write_text(spec, "utf-8")
    code, output = validate("mylib.yaml", "net.yaml")
    assert code == 0
    assert output.splitlines() == [
        "ok mylib.yaml: block library — 1 block",
        "ok net.yaml: net — 2 layers, 28 parameters",
    ]


def test_a_wrong_default_and_an_unknown_argument_in_a_library(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """A block's declaration and a call of another block of the library, without a caller."""
    monkeypatch.chdir(tmp_path)
    text = GOOD.replace("{f: int}", "{f: {type: int, default: wide}}") + (
        "  twice:\n    layers:\n      - sep: {f: 2, g: 3}\n"
    )
    Path("mylib.yaml").write_text(text, "utf-8")
    code, output = validate("mylib.yaml", "--format", "json")
    assert code == 1
    found = [(d["line"], d["column"], d["path"], d["message"]) for d in json.loads(output)]
    assert [(line, column, path) for line, column, path, _ in found] == [
        (4, 38, "blocks.sep.params.f.default"),
        (10, 21, "blocks.twice.layers[0].sep.g"),
    ]
    assert "unknown argument 'g'" in found[1][3]


def test_set_is_refused_for_a_library(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    Path("mylib.yaml").write_text(GOOD, "utf-8")
    code, output = validate("mylib.yaml", "--set", "vars.w=2")
    assert code == 1
    assert (
        output.splitlines()[0]
        == "mylib.yaml:1:1: error: --set sets a spec's values; a block library has none to set"
    )


@pytest.mark.parametrize("library", ZOO_LIBRARIES, ids=[p.stem for p in ZOO_LIBRARIES])
def test_every_packaged_block_library_validates(library: Path):
    """`validate …/zoo/blocks/resnet.yaml` said `input.shape: expected a list of positive
    integers …; received None` at `cnnspec: 1`."""
    blocks = len(yaml.safe_load(library.read_text("utf-8"))["blocks"])
    counted = f"{blocks} block{'s' if blocks != 1 else ''}"
    assert validate(str(library)) == (0, f"ok {library}: block library — {counted}\n")


def test_a_zoo_library_is_checked_by_its_zoo_name():
    """`validate zoo:blocks/resnet` said "is a block library, not a model", exit 1, where the
    file's own path got the library check; an unknown name is refused with the zoo's names."""
    blocks = len(yaml.safe_load((zoo_dir() / "blocks" / "resnet.yaml").read_text("utf-8"))["blocks"])
    assert validate("zoo:blocks/resnet") == (0, f"ok zoo:blocks/resnet: block library — {blocks} blocks\n")
    code, output = validate("zoo:blocks/resnt")
    assert code == 1
    assert output.splitlines()[:2] == [
        "error: no block library 'zoo:blocks/resnt' in the zoo",
        "  hint: did you mean `zoo:blocks/resnet`?",
    ]
