"""The editor's "fix all" (``source.fixAll``) for a block library and a family file: every fix
``cnnspec validate --fix`` makes, round after round, each round checked as the document is
(a library on its own, a family in each variant). Its later rounds compiled the document as a
one-model spec: a library's uncovered mistakes were left, and a family's other variants unread.

The server is test_lsp's module fixture (one process for this module).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from lsprotocol import types

pytest_lsp = pytest.importorskip("pytest_lsp", reason="the `lsp` extra is part of `dev`")
from pytest_lsp import LanguageClient  # noqa: E402

from tests.test_lsp import answer, change, close, open_text, position  # noqa: E402
from tests.test_lsp import client as lsp_client_fixture  # noqa: E402
from tests.test_validate_fix import FAMILY, LIBRARY, run  # noqa: E402

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.xdist_group("lsp")]

# the server and its client: test_lsp's module fixture, one server for this module too
client = lsp_client_fixture


async def fix_all(client: LanguageClient, path: Path, text: str, anywhere: str) -> types.CodeAction:
    """The document's one ``source.fixAll`` action, asked at ``anywhere`` (a word in ``text``)."""
    at = position(text, anywhere)
    asked = types.CodeActionParams(
        types.TextDocumentIdentifier(path.as_uri()),
        types.Range(at, at),
        types.CodeActionContext([], only=[types.CodeActionKind.SourceFixAll]),
    )
    (action,) = await answer(client.text_document_code_action_async(asked))
    return action


def applied(text: str, action: types.CodeAction, path: Path) -> str:
    """``text`` with the action's edits (whole lines, one per line changed) made."""
    lines = text.split("\n")
    for edit in action.edit.changes[path.as_uri()]:
        assert (edit.range.start.character, edit.range.end.character) == (
            0,
            len(lines[edit.range.start.line]),
        )
        lines[edit.range.start.line] = edit.new_text
    return "\n".join(lines)


@pytest.mark.parametrize(
    ("name", "text", "anywhere", "count"),
    [("lib.yaml", LIBRARY, "activation", 4), ("fam.yaml", FAMILY, "dense", 4)],
    ids=["library", "family"],
)
async def test_fix_all_makes_what_validate_fix_makes(
    client: LanguageClient, tmp_path: Path, name: str, text: str, anywhere: str, count: int
):
    folder = tmp_path
    path = folder / name
    path.write_text(text, "utf-8")
    await open_text(client, path, text)
    action = await fix_all(client, path, text, anywhere)
    assert action.title == f"Fix all: {count} problems cnnspec can fix"
    fixed = applied(text, action, path)
    assert await change(client, path, fixed, 2) == []  # what is left: nothing
    close(client, path)
    assert run(path, "--fix").exit_code == 0  # the same text as validate --fix writes
    assert path.read_text("utf-8") == fixed
