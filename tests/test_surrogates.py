"""A lone UTF-16 surrogate in a spec's text: half of a character, which no UTF-8 file holds but
an editor's buffer may (JavaScript's JSON writes ``"\\ud800"`` for a string an edit left with half
of an emoji). The YAML parser cannot encode it: ``load_text`` raised ``UnicodeEncodeError``, and
the language server said "internal error while checking ... please report it" at 1:1 for the
whole document and answered no completion. It is a located error now, like a control character.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cnnspec.errors import SpecError
from cnnspec.spec.loader import load_text


@pytest.mark.parametrize(
    ("text", "line", "column", "code"),
    [
        ("cnnspec: 1\nname: x  # \ud800 a comment\n", 2, 12, "D800"),
        ("cnnspec: 1\nname: x\u2028\nmodel: [\udfff]\n", 3, 9, "DFFF"),  # (U+2028: no line break of ours)
        ('name: "\ud83d"\n', 1, 8, "D83D"),  # (the first half of 😀, U+1F600)
    ],
    ids=["comment", "after-a-yaml-only-break", "quoted"],
)
def test_a_lone_surrogate_is_a_located_error(text: str, line: int, column: int, code: str) -> None:
    with pytest.raises(SpecError) as caught:
        load_text(text, "spec.yaml")
    (error,) = caught.value.errors
    assert (error.loc.line, error.loc.column) == (line, column)
    assert (
        error.message == f"expected Unicode text; received the lone surrogate U+{code}, half of a character"
    )
    assert error.hint is not None and "type the character again" in error.hint


def test_a_whole_character_is_text() -> None:
    assert load_text("cnnspec: 1\nname: x  # \U0001f600\n", "spec.yaml").data["name"] == "x"


def test_the_language_server_locates_it_and_still_completes(tmp_path: Path) -> None:
    pytest.importorskip("pytest_lsp", reason="the `lsp` extra is part of `dev`")
    from tests.test_lsp_audit4 import converse, initialize, response

    uri = (tmp_path / "a.yaml").as_uri()
    text = "cnnspec: 1\nname: x\ninput: {shape: [8, 8, 1]}\nmodel:\n  - dense: {units: 3}  # \ud800\n"
    opened = {"textDocument": {"uri": uri, "languageId": "yaml", "version": 1, "text": text}}
    at = {"textDocument": {"uri": uri}, "position": {"line": 4, "character": 6}}
    code, found = converse(
        tmp_path,
        *initialize(1),
        {"method": "textDocument/didOpen", "params": opened},
        {"id": 2, "method": "textDocument/completion", "params": at},
        {"id": 3, "method": "shutdown"},
        {"method": "exit"},
    )
    published = [m["params"] for m in found if m.get("method") == "textDocument/publishDiagnostics"]
    (diagnostic,) = published[-1]["diagnostics"]
    assert "internal error" not in diagnostic["message"], diagnostic
    # at the surrogate: line 5, after `  - dense: {units: 3}  # ` (25 UTF-16 code units)
    assert diagnostic["range"]["start"] == {"line": 4, "character": 25}
    labels = {item["label"] for item in response(found, 2)["result"]["items"]}
    assert {"conv2d", "dense"} <= labels
    assert code == 0
