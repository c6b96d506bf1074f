"""`cnnspec lsp` after the seventh audit: a family file's other variants are checked as
`cnnspec validate` checks them; a block library open alone gets validate's library check; a
var's own `vars:` key renames and finds the var when the default variant overrides it; an
editor document whose name has a `#` is never read as `file#variant`.

The diagnostics are driven through the server (a scripted conversation: test_lsp_audit4's
helpers), rename and references in process as the server calls them (test_lsp_rename's and
test_lsp_references' workspaces).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("pygls", reason="the `lsp` extra is part of `dev`")

from tests.test_lsp_audit4 import converse, initialize, last_diagnostics, response
from tests.test_lsp_references import Space
from tests.test_lsp_rename import folder as folder_fixture
from tests.test_validate_library import LIBRARY

folder = folder_fixture  # (the working directory is the folder: files are named relative to it)

FAMILY = """\
cnnspec: 1
name: fam
variants:
  small: {vars: {w: 4}}
  big: {vars: {w: 0}}
input: {shape: [8, 8, 1]}
vars: {w: 8}
model:
  - conv2d: {filters: "${w}", kernel_size: 3}
  - flatten
  - dense: 2
"""
FILTERS = "model[0].conv2d.filters: expected a positive integer; received integer 0"


def opened(folder: Path, files: dict[str, str], asked: str, *more: dict[str, Any]) -> list[dict[str, Any]]:
    """The server's messages after opening ``files`` (URI: name relative to ``folder``, as
    written) and asking for ``asked``'s outline (a request checks the open documents now)."""
    messages: list[dict[str, Any]] = []
    for name, text in files.items():
        item = {"uri": f"{folder.as_uri()}/{name}", "languageId": "yaml", "version": 1, "text": text}
        messages.append({"method": "textDocument/didOpen", "params": {"textDocument": item}})
    outline = {"textDocument": {"uri": f"{folder.as_uri()}/{asked}"}}
    code, found = converse(
        folder,
        *initialize(1),
        *messages,
        {"id": 2, "method": "textDocument/documentSymbol", "params": outline},
        *more,
        {"id": 9, "method": "shutdown"},
        {"method": "exit"},
    )
    assert code == 0
    return found


def related(found: list[dict[str, Any]], uri: str) -> list[list[str]]:
    """The related information's messages of each diagnostic last published for ``uri``."""
    published = [
        m["params"]
        for m in found
        if m.get("method") == "textDocument/publishDiagnostics" and m["params"]["uri"] == uri
    ]
    return [[r["message"] for r in d.get("relatedInformation") or []] for d in published[-1]["diagnostics"]]


# -- 1. a family file's variants -----------------------------------------------------------------
def test_an_error_of_one_variant_is_shown_with_its_variant_note(folder: Path):
    """validate fails on the `big` variant: the editor showed nothing, as it checked only the
    default variant (`small`, which compiles)."""
    (folder / "fam.yaml").write_text(FAMILY, "utf-8")
    found = opened(folder, {"fam.yaml": FAMILY}, "fam.yaml")
    uri = f"{folder.as_uri()}/fam.yaml"
    assert last_diagnostics(found, uri) == [(8, 22, FILTERS)]
    assert related(found, uri) == [
        ["note: w is integer 0, set at fam.yaml:5:19", "note: in variant big of fam.yaml"]
    ]


def test_an_error_of_every_variant_is_shown_once_without_a_variant_note(folder: Path):
    """validate says a mistake every variant has once, with no note (unsaved text: as typed)."""
    text = FAMILY.replace("kernel_size: 3}", "kernel_size: 3, paddin: same}").replace("w: 0", "w: 2")
    found = opened(folder, {"fam.yaml": text}, "fam.yaml")
    uri = f"{folder.as_uri()}/fam.yaml"
    message = "model[0].conv2d.paddin: unknown parameter 'paddin' for `conv2d`"
    assert last_diagnostics(found, uri) == [(8, 46, message)]
    assert related(found, uri) == [["hint: did you mean `padding`?"]]


# -- 5. a block library open alone --------------------------------------------------------------
def test_a_block_library_open_alone_gets_validates_library_check(folder: Path):
    """A misspelt parameter and kind in a library's block were shown nowhere until a spec
    called the block."""
    found = opened(folder, {"mylib.yaml": LIBRARY}, "mylib.yaml")
    assert last_diagnostics(found, f"{folder.as_uri()}/mylib.yaml") == [
        (5, 50, "blocks.sep.layers[0].conv2d.paddin: unknown parameter 'paddin' for `conv2d`"),
        (6, 8, "blocks.sep.layers[1].batch_nrom: unknown layer kind 'batch_nrom'"),
    ]


def test_a_good_block_library_open_alone_has_no_diagnostics(folder: Path):
    text = LIBRARY.replace("paddin", "padding").replace("batch_nrom", "batch_norm")
    found = opened(folder, {"mylib.yaml": text}, "mylib.yaml")
    assert last_diagnostics(found, f"{folder.as_uri()}/mylib.yaml") == []


# -- 6. a var's own `vars:` key when the default variant overrides it ----------------------------
FAMILY_OK = FAMILY.replace("w: 0", "w: 16")
#: Every place of `w` (file, line, column), the declaration first: the default variant's row,
#: where the composed document declares it, the use, the file's own `vars:` key, `big`'s row.
PLACES = [("fam.yaml", 4, 18), ("fam.yaml", 9, 26), ("fam.yaml", 7, 8), ("fam.yaml", 5, 16)]


@pytest.mark.parametrize(
    ("needle", "offset"),
    [("w: 8", 0), ('"${w}"', 3), ("w: 4", 0), ("w: 16", 0)],
    ids=["vars", "use", "small", "big"],
)
def test_a_var_is_renamed_and_found_alike_from_every_place(folder: Path, needle: str, offset: int):
    """From the file's `vars:` key, rename said "nothing to rename here" and references found
    nothing; from the use both answered with the four places."""
    space = Space(folder, {"fam.yaml": FAMILY_OK})
    assert space.references("fam.yaml", needle, offset) == PLACES
    assert sorted(space.places("fam.yaml", needle, offset, "width")) == sorted(PLACES)
    texts = space.renamed("fam.yaml", needle, offset, "width")
    assert texts["fam.yaml"] == FAMILY_OK.replace("w:", "width:").replace("${w}", "${width}")


def test_a_rename_from_the_vars_key_through_the_server(folder: Path):
    """The server's answer to a rename at the `w` of `vars: {w: 8}` (0-based 6:7)."""
    (folder / "fam.yaml").write_text(FAMILY_OK, "utf-8")
    uri = f"{folder.as_uri()}/fam.yaml"
    at = {"textDocument": {"uri": uri}, "position": {"line": 6, "character": 7}}
    request = {"id": 3, "method": "textDocument/rename", "params": {**at, "newName": "width"}}
    found = opened(folder, {"fam.yaml": FAMILY_OK}, "fam.yaml", request)
    edits = response(found, 3)["result"]["changes"][uri]
    starts = sorted((e["range"]["start"]["line"], e["range"]["start"]["character"]) for e in edits)
    assert starts == [(3, 17), (4, 15), (6, 7), (8, 25)] and {e["newText"] for e in edits} == {"width"}


# -- 7. a `#` in an editor document's name ------------------------------------------------------
@pytest.mark.parametrize("on_disk", [False, True])
def test_a_document_named_with_a_hash_is_never_a_variant(folder: Path, on_disk: bool):
    """`new#v3.yaml`, not saved yet, was read as variant `v3.yaml` of a file `new`: "no such
    file: …/new" at 1:1."""
    text = "cnnspec: 1\nname: net\ninput: {shape: [4]}\nmodel:\n  - dense: 2\n"
    if on_disk:
        (folder / "new#v3.yaml").write_text(text, "utf-8")
    found = opened(folder, {"new%23v3.yaml": text}, "new%23v3.yaml")
    assert last_diagnostics(found, f"{folder.as_uri()}/new%23v3.yaml") == []
