"""`cnnspec lsp` end to end: pytest-lsp drives the server over stdio, as an editor would.

One server process serves the whole module (it starts in well under a second: no TensorFlow).
Every expectation is derived from the compiler itself (``cnnspec validate --format json``,
:func:`cnnspec.api.compile_spec`) or from the text under test, never written down by hand:
a diagnostic's range is the token the validator's line and column point at, a hover shows the
shape and parameter count the API computes for that layer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from lsprotocol import types
from typer.testing import CliRunner

pytest_lsp = pytest.importorskip("pytest_lsp", reason="the `lsp` extra is part of `dev`")
from pygls.protocol import default_converter  # noqa: E402
from pytest_lsp import ClientServerConfig, LanguageClient  # noqa: E402
from pytest_lsp.client import DEFAULT_CLIENT_FEATURES, register_lsp_features  # noqa: E402

from cnnspec.analysis.report import batched, shape_text  # noqa: E402
from cnnspec.api import compile_spec  # noqa: E402
from cnnspec.cli.app import app  # noqa: E402
from cnnspec.ir import BlockCall  # noqa: E402
from cnnspec.layers.registry import REGISTRY  # noqa: E402
from cnnspec.lsp.documents import looks_like_spec  # noqa: E402
from tests.conftest import FIXTURES, ROOT, start_python  # noqa: E402
from tests.script_runner import LSP_PRELOAD  # noqa: E402

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.xdist_group("lsp")]

#: Per request or notification. A bound that catches hangs, not a timing (the benchmark times).
TIMEOUT_S = 20.0
SERVE = (
    "import sys; from cnnspec.cli.app import main; "
    "sys.argv = ['cnnspec', 'lsp', '--debounce-ms', '30']; main()"
)

LIBRARY = """\
cnnspec: 1
blocks:
  double:
    params: {filters: int, kernel: {type: int, default: 3}}
    layers:
      - conv2d: {filters: "${filters}", kernel_size: "${kernel}", padding: same}
      - activation: relu
"""
SPEC = """\
cnnspec: 1
name: tiny
use: [lib.yaml]
input: {shape: [8, 8, 3]}
vars: {width: 4, classes: 3}
model:
  - conv2d: {filters: "${width}", kernel_size: 3, padding: same}
    id: stem
  - double: {filters: "${width * 2}"}
  - repeat: {times: 2, as: i, layers: [conv2d: {filters: "${width}", kernel_size: 1}]}
    id: body
  - concat:
    inputs: [stem, body]
  - global_avg_pool2d
  - dense: {units: "${classes}", activation: softmax}
"""
#: Two mistakes: a misspelt parameter and a reference to an id that does not exist.
BROKEN = SPEC.replace('filters: "${width}", kernel_size: 3', 'fliters: "${width}", kernel_size: 3').replace(
    "[stem, body]", "[stem, bdy]"
)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("lsp")
    (root / "lib.yaml").write_text(LIBRARY, "utf-8")
    (root / "net.yaml").write_text(SPEC, "utf-8")
    (root / "bad.yaml").write_text(BROKEN, "utf-8")
    return root


#: Every publishDiagnostics per URI, in order: (document version, diagnostics).
PUBLISHED: dict[str, list[tuple[int | None, list[types.Diagnostic]]]] = {}


def _record(client: LanguageClient, params: types.PublishDiagnosticsParams) -> None:
    client.diagnostics[params.uri] = params.diagnostics
    PUBLISHED.setdefault(params.uri, []).append((params.version, list(params.diagnostics)))


def _make_client() -> LanguageClient:
    """pytest-lsp's test client, which also records the version of each publication (a late
    publication for an earlier version must not pass for the answer to a change)."""
    client = LanguageClient(converter_factory=default_converter)
    register_lsp_features(
        client, {**DEFAULT_CLIENT_FEATURES, types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS: _record}
    )
    return client


@pytest_lsp.fixture(
    scope="module",
    config=ClientServerConfig(server_command=[sys.executable, "-c", SERVE], client_factory=_make_client),
)
async def client(lsp_client: LanguageClient):
    await lsp_client.initialize_session(types.InitializeParams(capabilities=types.ClientCapabilities()))
    yield
    await lsp_client.shutdown_session()


# -- helpers ---------------------------------------------------------------------------------
async def answer(awaitable: Any) -> Any:
    """A request's answer, which must come within the timeout."""
    return await asyncio.wait_for(awaitable, TIMEOUT_S)


def mark(uri: str) -> int:
    """How many publications ``uri`` has had so far (wait for those after it)."""
    return len(PUBLISHED.get(uri, []))


async def published(uri: str, after: int, version: int | None = None) -> list[types.Diagnostic]:
    """The first diagnostics published for ``uri`` after publication number ``after`` (for
    document ``version``, when given)."""

    async def wait() -> list[types.Diagnostic]:
        seen = after
        while True:
            events = PUBLISHED.get(uri, [])
            for got, found in events[seen:]:
                if version is None or got == version:
                    return found
            seen = len(events)
            await asyncio.sleep(0.005)

    return await answer(wait())


async def open_text(client: LanguageClient, path: Path, text: str) -> list[types.Diagnostic]:
    uri = path.as_uri()
    before = mark(uri)
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(types.TextDocumentItem(uri, "yaml", 1, text))
    )
    return await published(uri, before, 1)


async def change(client: LanguageClient, path: Path, text: str, version: int) -> list[types.Diagnostic]:
    uri = path.as_uri()
    before = mark(uri)
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            types.VersionedTextDocumentIdentifier(version=version, uri=uri),
            [types.TextDocumentContentChangeWholeDocument(text=text)],
        )
    )
    return await published(uri, before, version)


def close(client: LanguageClient, path: Path) -> None:
    client.text_document_did_close(
        types.DidCloseTextDocumentParams(types.TextDocumentIdentifier(path.as_uri()))
    )


def position(text: str, needle: str, offset: int = 0, occurrence: int = 0) -> types.Position:
    """The position of ``needle`` (its ``occurrence``-th appearance) plus ``offset`` characters,
    counted in ``text``: past the end of the needle's line, on a later line."""
    start = -1
    for _ in range(occurrence + 1):
        start = text.index(needle, start + 1)
    index = start + offset  # (the line is that of the character reached, not the needle's)
    return types.Position(text.count("\n", 0, index), index - (text.rfind("\n", 0, index) + 1))


async def test_position_counts_past_the_end_of_the_needles_line() -> None:
    text = "ab: 1\ncd: 2\n"
    assert position(text, "b: 1", 1) == types.Position(0, 2)
    assert position(text, "b: 1", 5) == types.Position(1, 0)  # (past "\n": the next line's start)
    assert position(text, "1\ncd", 4) == types.Position(1, 2)  # (a needle over a line break)
    assert position(text, "cd", -2) == types.Position(0, 4)  # (back over the break)


def validate_json(path: Path) -> list[dict[str, Any]]:
    result = CliRunner().invoke(app, ["validate", "--format", "json", str(path)])
    return json.loads(result.stdout)


# -- diagnostics -----------------------------------------------------------------------------
async def test_broken_spec_has_validates_diagnostics_with_exact_ranges(client: LanguageClient, folder: Path):
    found = await open_text(client, folder / "bad.yaml", BROKEN)
    expected = validate_json(folder / "bad.yaml")
    assert len(expected) == 2
    assert len(found) == len(expected)
    lines = BROKEN.splitlines()
    for want in expected:
        start = types.Position(want["line"] - 1, want["column"] - 1)
        got = next(d for d in found if d.range.start == start)
        assert got.message == f"{want['path']}: {want['message']}"
        assert got.code == want["code"]
        assert got.severity == types.DiagnosticSeverity.Error
        assert got.source == "cnnspec"
        token = lines[start.line][start.character :].split(",")[0].split("]")[0].split(":")[0]
        assert got.range.end == types.Position(start.line, start.character + len(token))
        assert [r.message for r in got.related_information or []] == [f"hint: {want['hint']}"]
    close(client, folder / "bad.yaml")


async def test_quick_fixes_apply_the_hints_and_the_errors_go(client: LanguageClient, folder: Path):
    """A code action at a misspelt parameter or id replaces it as the hint says; applied, the
    document checks clean. Asked elsewhere, or for another kind of action, none is offered."""
    path = folder / "fixable.yaml"
    found = await open_text(client, path, BROKEN)
    assert len(found) == 2
    doc = types.TextDocumentIdentifier(path.as_uri())

    async def actions(at: types.Position, only: list[str] | None = None) -> list[types.CodeAction]:
        context = types.CodeActionContext(diagnostics=[], only=only)
        asked = types.CodeActionParams(doc, types.Range(at, at), context)
        return await answer(client.text_document_code_action_async(asked)) or []

    text, version = BROKEN, 1
    for wrong, right in (("fliters", "filters"), ("bdy", "body")):
        offered = await actions(position(text, wrong, 2))
        # with two problems to fix, "fix all" is offered beside the one asked about
        fix_all = ["Fix all: 2 problems cnnspec can fix"] if wrong == "fliters" else []
        assert [a.title for a in offered] == [f"Replace `{wrong}` with `{right}`", *fix_all]
        (edit,) = offered[0].edit.changes[path.as_uri()]
        start = position(text, wrong)
        assert (edit.range.start, edit.range.end, edit.new_text) == (
            start,
            types.Position(start.line, start.character + len(wrong)),
            right,
        )
        assert offered[0].kind == types.CodeActionKind.QuickFix and offered[0].diagnostics
        assert await actions(position(text, wrong), only=[types.CodeActionKind.Refactor]) == []
        lines = text.split("\n")
        row = lines[start.line]
        lines[start.line] = row[: start.character] + right + row[start.character + len(wrong) :]
        text, version = "\n".join(lines), version + 1
        left = await change(client, path, text, version)
    assert text == SPEC and left == []
    assert await actions(position(text, "global_avg_pool2d")) == []
    close(client, path)


async def test_fix_all_makes_every_fix_of_the_document_at_once(client: LanguageClient, folder: Path):
    """``source.fixAll`` (an editor's fix-all command, or on save), asked anywhere: one edit per
    fixable problem; applied together, the document checks clean. Asked for refactorings only,
    nothing."""
    path = folder / "fix_all.yaml"
    assert len(await open_text(client, path, BROKEN)) == 2
    doc = types.TextDocumentIdentifier(path.as_uri())
    at = position(BROKEN, "global_avg_pool2d")

    async def actions(only: list[str]) -> list[types.CodeAction]:
        asked = types.CodeActionParams(doc, types.Range(at, at), types.CodeActionContext([], only=only))
        return await answer(client.text_document_code_action_async(asked)) or []

    (action,) = await actions([types.CodeActionKind.SourceFixAll])
    assert (
        action.kind == types.CodeActionKind.SourceFixAll
        and action.title == "Fix all: 2 problems cnnspec can fix"
    )
    assert [a.title for a in await actions(["source"])] == [action.title]  # ("source" holds fixAll)
    edits = sorted(
        action.edit.changes[path.as_uri()], key=lambda e: (e.range.start.line, e.range.start.character)
    )
    lines = BROKEN.split("\n")
    for edit in reversed(edits):  # one line each, applied from the end
        row, line = edit.range.start.line, lines[edit.range.start.line]
        lines[row] = line[: edit.range.start.character] + edit.new_text + line[edit.range.end.character :]
    assert "\n".join(lines) == SPEC
    assert await change(client, path, SPEC, 2) == []
    assert await actions([types.CodeActionKind.SourceFixAll]) == []  # nothing left to fix
    assert await actions([types.CodeActionKind.Refactor]) == []
    close(client, path)


async def test_fix_all_makes_the_fixes_that_earlier_ones_uncover(client: LanguageClient, folder: Path):
    """A misspelt kind hides its parameters' mistakes until it is fixed: "fix all" fixed one of
    three, where `cnnspec validate --fix` (round after round) fixes all three."""
    hidden = BROKEN.replace("  - conv2d: {fliters", "  - conv2D: {fliters")
    path = folder / "fix_rounds.yaml"
    await open_text(client, path, hidden)
    at = position(hidden, "global_avg_pool2d")
    asked = types.CodeActionParams(
        types.TextDocumentIdentifier(path.as_uri()),
        types.Range(at, at),
        types.CodeActionContext([], only=[types.CodeActionKind.SourceFixAll]),
    )
    (action,) = await answer(client.text_document_code_action_async(asked))
    assert action.title == "Fix all: 3 problems cnnspec can fix"
    lines = hidden.split("\n")
    for edit in action.edit.changes[path.as_uri()]:  # whole lines: one per line changed
        assert (edit.range.start.character, edit.range.end.character) == (
            0,
            len(lines[edit.range.start.line]),
        )
        lines[edit.range.start.line] = edit.new_text
    assert "\n".join(lines) == SPEC
    close(client, path)


async def test_change_checks_the_unsaved_text_not_the_disk(client: LanguageClient, folder: Path):
    path = folder / "bad.yaml"  # on disk: broken; in the editor: fixed, then broken again
    assert await open_text(client, path, SPEC) == []
    again = await change(client, path, BROKEN, 2)
    assert sorted(d.code for d in again) == sorted(d["code"] for d in validate_json(path))
    assert await change(client, path, SPEC, 3) == []
    close(client, path)


async def test_editing_a_block_library_rechecks_the_specs_that_use_it(client: LanguageClient, folder: Path):
    spec, library = folder / "net.yaml", folder / "lib.yaml"
    assert await open_text(client, spec, SPEC) == []
    before = mark(spec.as_uri())
    assert await open_text(client, library, LIBRARY) == []
    assert await published(spec.as_uri(), before) == []  # opening the library re-checks the spec
    before = mark(spec.as_uri())
    broken = LIBRARY.replace("${kernel}", "${kernl}")  # unsaved: the file on disk stays valid
    in_library = await change(client, library, broken, 2)
    in_spec = await published(spec.as_uri(), before)
    # The library's own check adds that `kernel` is now read nowhere (its hint names `${kernl}`).
    warned = [d for d in in_library if d.severity == types.DiagnosticSeverity.Warning]
    assert [(d.code, d.range.start) for d in warned] == [("unused-param", position(broken, "kernel:"))]
    in_library = [d for d in in_library if d not in warned]
    assert len(in_spec) == 1 and len(in_library) == 1
    # In the library: at the expression; in the spec: at the call that leads there.
    assert in_library[0].range.start == position(broken, '"${kernl}"')
    assert in_spec[0].range.start == position(SPEC, "double:")
    assert in_spec[0].message.startswith(f"{library}:")
    notes = [r.message for r in in_spec[0].related_information or []]
    assert any(n.startswith("note: in block 'double' called from model[1]") for n in notes)
    # The library's own check alone finds no error (only its warning): the error came from the
    # spec's check, and leaves with it when the spec is closed.
    before = mark(library.as_uri())
    close(client, spec)
    assert [d.code for d in await published(library.as_uri(), before)] == ["unused-param"]
    assert len(await open_text(client, spec, SPEC)) == 1
    before = mark(spec.as_uri())
    assert await change(client, library, LIBRARY, 3) == []
    assert await published(spec.as_uri(), before) == []
    close(client, library)
    close(client, spec)


async def test_a_burst_of_changes_is_checked_less_often_than_it_changes(client: LanguageClient, folder: Path):
    """Debounced: 20 changes sent at once cost fewer checks, and the last text is the one checked."""
    path = folder / "burst.yaml"
    await open_text(client, path, SPEC)
    uri = path.as_uri()
    before = mark(uri)
    for version in range(2, 22):
        text = BROKEN if version == 21 else SPEC.replace("classes: 3", f"classes: {version}")
        client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                types.VersionedTextDocumentIdentifier(version=version, uri=uri),
                [types.TextDocumentContentChangeWholeDocument(text=text)],
            )
        )
    last = await published(uri, before, 21)
    assert len(last) == 2  # BROKEN's two mistakes
    assert len(PUBLISHED[uri]) - before < 20
    close(client, path)


async def test_hover_in_a_block_library_uses_the_spec_that_calls_it(client: LanguageClient, folder: Path):
    spec, library = folder / "net.yaml", folder / "lib.yaml"
    await open_text(client, spec, SPEC)
    await open_text(client, library, LIBRARY)
    hover = await answer(
        client.text_document_hover_async(
            types.HoverParams(types.TextDocumentIdentifier(library.as_uri()), position(LIBRARY, "conv2d", 1))
        )
    )
    node = compile_spec(spec).ir.node("double_1_conv2d_1")
    assert "`double_1_conv2d_1`" in hover.contents.value
    assert shape_text(batched(node.shape)) in hover.contents.value
    close(client, library)
    close(client, spec)


# -- hover, navigation, completion, outline ----------------------------------------------------
async def test_hover_shows_the_compilers_shape_and_counts(client: LanguageClient, folder: Path):
    spec = folder / "net.yaml"
    await open_text(client, spec, SPEC)
    compiled = compile_spec(spec)
    for needle, node_name in (("conv2d", "stem"), ("concat", "concat_1"), ("dense", "dense_1")):
        hover = await answer(
            client.text_document_hover_async(
                types.HoverParams(types.TextDocumentIdentifier(spec.as_uri()), position(SPEC, needle, 1))
            )
        )
        node = compiled.ir.node(node_name)
        text = hover.contents.value
        assert f"`{node.name}`" in text and node.kind in text
        assert shape_text(batched(node.shape)) in text
        assert f"{node.counts.params:,} params" in text
    call = await answer(
        client.text_document_hover_async(
            types.HoverParams(types.TextDocumentIdentifier(spec.as_uri()), position(SPEC, "double", 1))
        )
    )
    assert "double(filters: int, kernel: int = 3)" in call.contents.value
    tree_call = next(item for item in compiled.ir.tree.body if isinstance(item, BlockCall))
    assert shape_text(batched(compiled.ir.node(tree_call.output).shape)) in call.contents.value
    var = await answer(
        client.text_document_hover_async(
            types.HoverParams(types.TextDocumentIdentifier(spec.as_uri()), position(SPEC, "${classes}", 3))
        )
    )
    assert (
        "`classes`" in var.contents.value
        and f"value: `{compiled.resolved['vars']['classes']}`" in var.contents.value
    )
    close(client, spec)


FROZEN = """\
cnnspec: 1
name: frozen
input: {shape: [64, 64, 3]}
blocks:
  cbr:
    params: {f: int}
    layers:
      - conv2d: {filters: "${f}", kernel_size: 3, padding: same}
      - batch_norm
model:
  - conv2d: {filters: 4, kernel_size: 3}
    trainable: false
  - cbr: {f: 4}
    trainable: false
  - conv2d: {filters: 3, kernel_size: 1}
    id: late
  - backbone: {spec: "zoo:mobilenet_v2", until: stage2}
    trainable: false
  - global_avg_pool2d
  - dense: 4
training: {freeze: [late]}
"""


async def test_hover_counts_frozen_layers_as_inspect_does(client: LanguageClient, folder: Path):
    """A layer, block call or backbone frozen by `trainable: false`, and a layer training.freeze
    freezes, were hovered as trainable: the hover counted each layer's own weights, not the
    freezing inspect counts. Their hover now has inspect's trainable, non-trainable and frozen
    figures (`cnnspec inspect --format json`'s layers, summed over the item's layers)."""
    spec = folder / "frozen.yaml"
    spec.write_text(FROZEN, "utf-8")
    assert await open_text(client, spec, FROZEN) == []
    layers = compile_spec(spec).summary()["layers"]

    def expected(prefix: str) -> str:
        rows = [row for row in layers if row["name"].startswith(prefix)]
        params, trainable = sum(r["params"] for r in rows), sum(r["trainable_params"] for r in rows)
        frozen = sum(r["frozen_params"] for r in rows)
        assert frozen > 0, prefix
        counts = f"{trainable:,} trainable, {params - trainable:,} non-trainable, of which {frozen:,} frozen"
        return f"{params:,} params ({counts})"

    items = (
        ("- conv2d: {filters: 4", "conv2d_1"),
        ("- cbr", "cbr_1_"),
        ("- conv2d: {filters: 3", "late"),
        ("- backbone", "backbone_1_"),
    )
    for needle, prefix in items:
        hover = await answer(
            client.text_document_hover_async(
                types.HoverParams(types.TextDocumentIdentifier(spec.as_uri()), position(FROZEN, needle, 3))
            )
        )
        assert expected(prefix) in hover.contents.value, (needle, hover.contents.value)
    assert "frozen when training starts" in hover.contents.value  # (the backbone's layers)
    close(client, spec)


async def test_definition_and_references(client: LanguageClient, folder: Path):
    spec, library = folder / "net.yaml", folder / "lib.yaml"
    await open_text(client, spec, SPEC)
    doc = types.TextDocumentIdentifier(spec.as_uri())

    async def definition(at: types.Position) -> types.Location:
        found = await answer(client.text_document_definition_async(types.DefinitionParams(doc, at)))
        return found[0] if isinstance(found, list) else found

    block = await definition(position(SPEC, "- double", 3))
    assert block.uri == library.as_uri() and block.range.start == position(LIBRARY, "double:")
    ref = await definition(position(SPEC, "[stem, body]", 8))
    assert ref.uri == spec.as_uri() and ref.range.start == position(SPEC, "body", occurrence=0)
    var = await definition(position(SPEC, "${classes}", 4))
    assert var.range.start == position(SPEC, "classes")
    use = await definition(position(SPEC, "lib.yaml", 1))
    assert use.uri == library.as_uri()
    refs = await answer(
        client.text_document_references_async(
            types.ReferenceParams(
                context=types.ReferenceContext(include_declaration=True),
                text_document=doc,
                position=position(SPEC, "- double", 3),
            )
        )
    )
    assert sorted((r.uri, r.range.start.line) for r in refs) == sorted(
        [
            (library.as_uri(), position(LIBRARY, "double:").line),
            (spec.as_uri(), position(SPEC, "- double").line),
        ]
    )
    close(client, spec)


async def test_completion(client: LanguageClient, folder: Path):
    path = folder / "typing.yaml"
    text = SPEC + "  - con\n"
    await open_text(client, path, text)
    doc = types.TextDocumentIdentifier(path.as_uri())

    async def labels(at: types.Position) -> dict[str, types.CompletionItem]:
        found = await answer(client.text_document_completion_async(types.CompletionParams(doc, at)))
        return {item.label: item for item in found.items}

    ids = await labels(position(text, "[stem, body]", 1))
    assert {"stem", "body", "input"} <= set(ids)
    names = await labels(position(text, "${classes}", 2))
    assert {"width", "classes", "in_channels"} <= set(names)
    kinds = await labels(position(text, "  - con", 7))
    assert set(REGISTRY) <= set(kinds) and {"double", "repeat", "residual", "parallel"} <= set(kinds)
    required = [p.name for p in REGISTRY["conv2d"].params if p.required]
    assert all(f"{p}: $" in kinds["conv2d"].insert_text for p in required)
    assert "filters: ${1:filters}" in kinds["double"].insert_text
    params = await labels(position(text, "- double: {", len("- double: {")))
    assert "kernel" in params and "filters" not in params  # written already
    close(client, path)

    # a backbone's `until:`: its cut points, then its layer names, which the editor sorts after
    path = folder / "cut.yaml"
    text = SPEC + "  - backbone: {spec: zoo:efficientnet_b0, until: }\n"
    await open_text(client, path, text)
    doc = types.TextDocumentIdentifier(path.as_uri())
    cuts = await labels(position(text, "until: }", len("until: ")))
    ordered = sorted(cuts.values(), key=lambda item: item.sort_text or item.label)
    assert [item.label for item in ordered[:4]] == ["normalization", "rescaling", "stem", "top"]
    assert cuts["block6a_expand_activation"].kind == types.CompletionItemKind.Field
    assert cuts["stem"].kind == types.CompletionItemKind.Reference
    close(client, path)


async def test_outline_is_the_model_tree_with_shapes(client: LanguageClient, folder: Path):
    spec = folder / "net.yaml"
    await open_text(client, spec, SPEC)
    symbols = await answer(
        client.text_document_document_symbol_async(
            types.DocumentSymbolParams(types.TextDocumentIdentifier(spec.as_uri()))
        )
    )
    compiled = compile_spec(spec)
    tree = compiled.ir.tree
    assert len(symbols) == len(tree.body)
    call = next(s for s in symbols if s.name.startswith("double"))
    inner = [s.name for s in call.children]
    element = next(item for item in tree.body if isinstance(item, BlockCall))
    assert inner == [leaf.node.name for leaf in element.body]
    repeat = next(s for s in symbols if s.name == "body")  # named by its id, as a layer is
    assert repeat.detail.startswith("repeat ×2 → ")
    assert [c.name for c in repeat.children] == ["iteration 0", "iteration 1"]
    dense = symbols[-1]
    assert dense.detail.endswith(shape_text(batched(compiled.ir.node(dense.name).shape)))
    assert dense.selection_range.start == position(SPEC, "dense")
    close(client, spec)


# -- a server that keeps serving ---------------------------------------------------------------
HOSTILE = FIXTURES / "hostile"


async def test_hostile_corpus_never_crashes_or_hangs_the_server(client: LanguageClient):
    """Every corpus file is opened as an editor would (its bytes decoded leniently), and every
    request about it is answered within the timeout."""
    cases = yaml.safe_load((HOSTILE / "expected.yaml").read_text("utf-8"))
    for case, expected in cases.items():
        path = (HOSTILE / expected.get("spec", case)).resolve()
        if not path.is_file():
            continue
        raw = path.read_bytes()
        text = raw.decode("utf-8", errors="replace")
        found = await open_text(client, path, text)
        # The editor decodes undecodable bytes its own way; the text it sends may then be valid.
        # YAML without a key of a spec (an empty file, a list) is not the server's to check.
        if expected.get("exit", 1) and text.encode("utf-8") == raw and looks_like_spec(text):
            assert any(d.severity == types.DiagnosticSeverity.Error for d in found), case
        doc = types.TextDocumentIdentifier(path.as_uri())
        start = types.Position(0, 0)
        await answer(client.text_document_hover_async(types.HoverParams(doc, start)))
        await answer(client.text_document_document_symbol_async(types.DocumentSymbolParams(doc)))
        await answer(client.text_document_completion_async(types.CompletionParams(doc, start)))
        await answer(client.text_document_definition_async(types.DefinitionParams(doc, start)))
        close(client, path)
    await test_server_still_answers(client, ROOT / "specs" / "resnet.yaml")


async def test_server_still_answers(client: LanguageClient, spec: Path = ROOT / "specs" / "mnist_cnn.yaml"):
    text = spec.read_text("utf-8")
    assert await open_text(client, spec, text) == []
    symbols = await answer(
        client.text_document_document_symbol_async(
            types.DocumentSymbolParams(types.TextDocumentIdentifier(spec.as_uri()))
        )
    )
    assert symbols
    close(client, spec)


class _Input:
    """The server's stdin, as an asyncio stream writer is used here (the messages are small: a
    write never waits on the pipe)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def write(self, data: bytes) -> None:
        while data:
            data = data[os.write(self.fd, data) :]

    async def drain(self) -> None:
        pass


class _Served:
    """``cnnspec lsp --debounce-ms 30`` (SERVE) in a process of its own, forked from a Python that
    has imported the language server (tests/script_runner.py, LSP_PRELOAD: no 0.7 s of imports
    of a cold start), with what the raw-protocol tests use of an asyncio subprocess: ``stdin``,
    ``stdout`` (a StreamReader), ``wait()``, ``returncode``, ``kill()``."""

    def __init__(self, process: Any, stdin: _Input, stdout: asyncio.StreamReader, transport: Any) -> None:
        self.process, self.stdin, self.stdout, self.transport = process, stdin, stdout, transport

    @classmethod
    async def start(cls) -> _Served:
        stdin_read, stdin_write = os.pipe()
        stdout_read, stdout_write = os.pipe()
        command = [str(Path(sys.executable).with_name("cnnspec")), "lsp", "--debounce-ms", "30"]
        try:
            process = start_python(
                *command,
                stdin=stdin_read,
                stdout=stdout_write,
                stderr=subprocess.DEVNULL,
                preload=LSP_PRELOAD,
            )
        finally:
            os.close(stdin_read)
            os.close(stdout_write)
        stdout = asyncio.StreamReader()
        protocol = asyncio.StreamReaderProtocol(stdout)
        pipe = open(stdout_read, "rb", buffering=0)  # noqa: SIM115 (the transport closes it)
        transport, _ = await asyncio.get_running_loop().connect_read_pipe(lambda: protocol, pipe)
        return cls(process, _Input(stdin_write), stdout, transport)

    @property
    def returncode(self) -> int | None:
        return self.process.poll()

    async def wait(self) -> int:
        while (code := self.process.poll()) is None:
            await asyncio.sleep(0.01)
        if self.stdin.fd >= 0:
            os.close(self.stdin.fd)
            self.stdin.fd = -1
            self.transport.close()
        return code

    def kill(self) -> None:
        self.process.kill()


async def _send(server: asyncio.subprocess.Process, message: dict[str, Any] | bytes) -> None:
    body = message if isinstance(message, bytes) else json.dumps(message).encode()
    assert server.stdin is not None
    server.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
    await server.stdin.drain()


async def _message(server: asyncio.subprocess.Process) -> dict[str, Any]:
    """The server's next message."""
    assert server.stdout is not None
    length = 0
    while (line := await answer(server.stdout.readline())) not in (b"\r\n", b""):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    assert length, "the server closed its output"
    return json.loads(await answer(server.stdout.readexactly(length)))


async def _response(server: asyncio.subprocess.Process, request_id: int) -> dict[str, Any]:
    """The server's answer to request ``request_id`` (notifications before it are skipped)."""
    while True:
        message = await _message(server)
        if message.get("id") == request_id and "method" not in message:
            return message


@contextlib.asynccontextmanager
async def _served() -> AsyncIterator[Any]:
    """A server of its own (:class:`_Served`) for a raw-protocol test, which ends it with
    :func:`_shut_down`; killed if the test fails first."""
    server = await _Served.start()
    try:
        yield server
    finally:
        if server.returncode is None:
            server.kill()
            await server.wait()


async def _shut_down(server: Any, request_id: int) -> None:
    """The protocol's end, ``shutdown`` then ``exit``: the server ends with status 0."""
    await _send(server, {"jsonrpc": "2.0", "id": request_id, "method": "shutdown"})
    await _response(server, request_id)
    await _send(server, {"jsonrpc": "2.0", "method": "exit"})
    assert await answer(server.wait()) == 0


async def test_malformed_requests_get_errors_and_the_server_keeps_serving(folder: Path):
    """Raw JSON-RPC (a test client would refuse to send these): a request with invalid params,
    an unknown method and a body that is not JSON; the server answers errors and keeps serving."""
    async with _served() as server:
        uri = (folder / "net.yaml").as_uri()
        await _send(
            server, {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"capabilities": {}}}
        )
        assert "capabilities" in (await _response(server, 1))["result"]
        await _send(server, {"jsonrpc": "2.0", "method": "initialized", "params": {}})
        item = {"uri": uri, "languageId": "yaml", "version": 1, "text": SPEC}
        await _send(
            server, {"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {"textDocument": item}}
        )
        hover = {
            "jsonrpc": "2.0",
            "id": 2,
            "method": "textDocument/hover",
            "params": {"textDocument": {"uri": uri}},
        }
        await _send(server, hover)
        assert "error" in await _response(server, 2)
        await _send(server, {"jsonrpc": "2.0", "id": 3, "method": "cnnspec/noSuchMethod", "params": {}})
        assert (await _response(server, 3))["error"]["code"] == -32601  # method not found
        await _send(server, b"{this is not json")
        at = position(SPEC, "dense", 1)
        hover = {
            "jsonrpc": "2.0",
            "id": 4,
            "method": "textDocument/hover",
            "params": {
                "textDocument": {"uri": uri},
                "position": {"line": at.line, "character": at.character},
            },
        }
        await _send(server, hover)
        assert "dense_1" in (await _response(server, 4))["result"]["contents"]["value"]
        await _shut_down(server, 5)


async def test_a_nul_in_a_document_name_gets_a_diagnostic_not_a_crash(client: LanguageClient, folder: Path):
    """A `file:` URI may carry `%00`: no file can have that name (the OS calls raise on it), and
    the document says so in one diagnostic, as `cnnspec validate` would; the server goes on."""
    found = await open_text(client, folder / "nul\0name.yaml", BROKEN)
    assert [(d.code, d.range.start) for d in found] == [("io", types.Position(0, 0))]
    assert "a file path cannot contain a NUL character" in found[0].message
    close(client, folder / "nul\0name.yaml")
    assert len(await open_text(client, folder / "after.yaml", BROKEN)) == 2
    close(client, folder / "after.yaml")


async def test_yaml_that_is_no_spec_gets_no_diagnostics(client: LanguageClient, folder: Path):
    """Editors start the server for every YAML file; a CI workflow is not a spec."""
    workflow = "name: ci\non: [push]\njobs:\n  test:\n    runs-on: ubuntu-latest\n"
    assert await open_text(client, folder / "ci.yaml", workflow) == []
    close(client, folder / "ci.yaml")
    as_spec = "cnnspec: 1\n" + workflow  # the same text, marked as a spec, has errors
    assert await open_text(client, folder / "ci.yaml", as_spec)
    close(client, folder / "ci.yaml")


async def test_non_yaml_and_huge_documents(client: LanguageClient, folder: Path):
    not_yaml = folder / "notes.yaml"
    found = await open_text(client, not_yaml, "model: [unclosed\n  {: : :\n")
    assert [d.code for d in found] == ["yaml"] and "invalid YAML" in found[0].message
    doc = types.TextDocumentIdentifier(not_yaml.as_uri())
    assert (
        await answer(client.text_document_hover_async(types.HoverParams(doc, types.Position(0, 1)))) is None
    )
    assert await answer(client.text_document_document_symbol_async(types.DocumentSymbolParams(doc))) in (
        [],
        None,
    )
    close(client, not_yaml)

    huge = folder / "huge.yaml"
    text = SPEC + "".join(f"# padding line {i:07d} " + "x" * 60 + "\n" for i in range(40_000))
    found = await open_text(client, huge, text)
    assert len(found) == 1 and "KiB" in found[0].message
    doc = types.TextDocumentIdentifier(huge.as_uri())
    at = types.Position(40_000, 3)
    assert await answer(client.text_document_hover_async(types.HoverParams(doc, at))) is None
    completion = await answer(client.text_document_completion_async(types.CompletionParams(doc, at)))
    assert completion is None or completion.items == []
    close(client, huge)
    await test_server_still_answers(client)


async def test_a_client_that_registers_watchers_is_asked_to_watch_the_yaml_files():
    """Neovim and Helix report the files a server registered a watcher for, and no others: a
    library changed on disk left the open specs' diagnostics stale there."""
    async with _served() as server:
        capabilities = {"workspace": {"didChangeWatchedFiles": {"dynamicRegistration": True}}}
        await _send(
            server,
            {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"capabilities": capabilities}},
        )
        await _response(server, 1)
        await _send(server, {"jsonrpc": "2.0", "method": "initialized", "params": {}})
        while (message := await _message(server)).get("method") != "client/registerCapability":
            pass
        (registration,) = message["params"]["registrations"]
        assert registration["method"] == "workspace/didChangeWatchedFiles"
        assert registration["registerOptions"]["watchers"] == [{"globPattern": "**/*.{yaml,yml}"}]
        await _send(server, {"jsonrpc": "2.0", "id": message["id"], "result": None})
        await _shut_down(server, 2)


async def test_positions_in_the_encoding_the_client_chose(folder: Path):
    """A client that offers UTF-8 positions (Neovim) gets ranges counted in UTF-8 bytes."""
    async with _served() as server:
        capabilities = {"general": {"positionEncodings": ["utf-8", "utf-16"]}}
        await _send(
            server,
            {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"capabilities": capabilities}},
        )
        assert (await _response(server, 1))["result"]["capabilities"]["positionEncoding"] == "utf-8"
        await _send(server, {"jsonrpc": "2.0", "method": "initialized", "params": {}})
        value = "soft🙂max"
        text = SPEC.replace("activation: softmax", f"activation: {value}")
        uri = (folder / "emoji.yaml").as_uri()
        item = {"uri": uri, "languageId": "yaml", "version": 1, "text": text}
        await _send(
            server, {"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {"textDocument": item}}
        )
        while (message := await _message(server)).get("method") != "textDocument/publishDiagnostics":
            pass
        (found,) = message["params"]["diagnostics"]
        start = position(text, value)
        assert found["range"]["start"] == {"line": start.line, "character": start.character}
        assert found["range"]["end"]["character"] == start.character + len(value.encode("utf-8"))
        await _shut_down(server, 2)


async def test_rename_over_the_wire(client: LanguageClient, folder: Path):
    """prepareRename gives the name's range and text, rename the edits of every use (the spec
    then compiles to the same model); on a layer kind, nothing to rename and a RequestFailed
    error that says so."""
    from pygls.exceptions import JsonRpcException

    spec = folder / "renamed.yaml"
    spec.write_text(SPEC, "utf-8")
    await open_text(client, spec, SPEC)
    doc = types.TextDocumentIdentifier(spec.as_uri())
    at = position(SPEC, "${width * 2}", 3)
    prepared = await answer(client.text_document_prepare_rename_async(types.PrepareRenameParams(doc, at)))
    start = position(SPEC, "width * 2")
    assert prepared.placeholder == "width"
    assert prepared.range == types.Range(start, types.Position(start.line, start.character + len("width")))
    edit = await answer(client.text_document_rename_async(types.RenameParams(doc, at, "w")))
    assert list(edit.changes) == [spec.as_uri()]
    lines = SPEC.split("\n")
    for change in sorted(edit.changes[spec.as_uri()], key=lambda e: e.range.start.character, reverse=True):
        row, line = change.range.start.line, lines[change.range.start.line]
        lines[row] = (
            line[: change.range.start.character] + change.new_text + line[change.range.end.character :]
        )
    renamed = "\n".join(lines)
    assert renamed == SPEC.replace("width", "w")  # the var and its three uses
    spec.write_text(renamed, "utf-8")
    before, after = compile_spec(folder / "net.yaml").ir.nodes, compile_spec(spec).ir.nodes
    assert [(n.kind, n.shape, n.counts) for n in after] == [(n.kind, n.shape, n.counts) for n in before]

    kind = position(SPEC, "conv2d", 2)
    assert (
        await answer(client.text_document_prepare_rename_async(types.PrepareRenameParams(doc, kind))) is None
    )
    with pytest.raises(JsonRpcException) as refused:
        await answer(client.text_document_rename_async(types.RenameParams(doc, kind, "conv")))
    assert (
        refused.value.code == types.LSPErrorCodes.RequestFailed
        and "nothing to rename" in refused.value.message
    )
    close(client, spec)


@pytest.mark.parametrize("start", ["library", "call"])
async def test_references_of_a_library_block_reach_every_open_spec_that_uses_it(
    client: LanguageClient, folder: Path, start: str
):
    """References on a block of `lib.yaml`, from the library or from a call in one spec, listed
    the calls of one spec that reads it (the one whose composition answered), not of another
    open one; rename edits both."""
    library, first, second = folder / "lib.yaml", folder / "net.yaml", folder / f"other_{start}.yaml"
    other_text = SPEC.replace("name: tiny", f"name: other_{start}")
    second.write_text(other_text, "utf-8")
    await open_text(client, first, SPEC)
    await open_text(client, second, other_text)
    opened = [second, first]
    if start == "library":
        await open_text(client, library, LIBRARY)
        opened.insert(0, library)
    where, at = (
        (library, position(LIBRARY, "double:", 1))
        if start == "library"
        else (first, position(SPEC, "- double", 3))
    )
    refs = await answer(
        client.text_document_references_async(
            types.ReferenceParams(
                context=types.ReferenceContext(include_declaration=True),
                text_document=types.TextDocumentIdentifier(where.as_uri()),
                position=at,
            )
        )
    )
    call = position(SPEC, "- double").line
    assert sorted((r.uri, r.range.start.line) for r in refs) == sorted(
        [
            (library.as_uri(), position(LIBRARY, "double:").line),
            (first.as_uri(), call),
            (second.as_uri(), call),
        ]
    )
    for path in opened:
        close(client, path)


#: A library of two blocks (one with outputs read through its call), a spec that `use:`s it and
#: one that reads it only through a backbone cut in that spec (`until: u1.out`).
UNET_LIB = """\
cnnspec: 1
blocks:
  convbn:
    params: {filters: int, k: {type: int, default: 3}}
    layers:
      - conv2d: {filters: "${filters}", kernel_size: "${k}", padding: same}
      - batch_norm
      - activation: relu
  up:
    inputs: [x, skip]
    outputs: [out, skip]
    params: {filters: int}
    layers:
      - conv2d_transpose: {filters: "${filters}", kernel_size: 2, strides: 2}
        inputs: x
        id: upsampled
      - concat:
        inputs: [upsampled, skip]
        id: out
"""
UNET = """\
cnnspec: 1
name: unet
use: [lib.yaml]
input: {shape: [16, 16, 1]}
vars: {width: 8}
model:
  - convbn: {filters: "${width}"}
    id: c0
  - max_pool2d: 2
  - convbn: {filters: "${width}"}
    id: s1
  - up: {filters: "${width}"}
    inputs: [s1, c0]
    id: u1
  - concat:
    inputs: [u1.out, u1.skip]
  - global_avg_pool2d
  - dense: 3
"""
HEAD = """\
cnnspec: 1
name: head
input: {shape: [16, 16, 1]}
model:
  - backbone: {spec: net.yaml, until: u1.out, vars: {width: 4}}
    id: body
  - global_avg_pool2d
  - dense: 2
"""


async def test_a_library_is_read_through_a_spec_that_uses_it_not_one_that_cuts_a_user(
    client: LanguageClient, folder: Path
):
    """``head.yaml`` reads ``lib.yaml`` only through its backbone (``net.yaml``, compiled
    apart): open before the library, it was taken as the library's context, whose document
    holds none of the library's positions, so hover, definition, prepareRename and rename
    there found nothing. They answer as with ``head.yaml`` closed, the rename of an output id
    still following the cut into ``head.yaml``; then with ``net.yaml`` open too (its
    composition holds the library's blocks), hover shows the compiled layer."""
    root = folder / "unet"
    root.mkdir()
    library, net, head = root / "lib.yaml", root / "net.yaml", root / "head.yaml"
    for path, text in ((library, UNET_LIB), (net, UNET), (head, HEAD)):
        path.write_text(text, "utf-8")
    assert await open_text(client, head, HEAD) == []
    assert await open_text(client, library, UNET_LIB) == []
    doc = types.TextDocumentIdentifier(library.as_uri())
    hover = await answer(
        client.text_document_hover_async(types.HoverParams(doc, position(UNET_LIB, "conv2d:")))
    )
    assert hover.contents.value.startswith("**conv2d** — 2-D convolution")
    found = await answer(
        client.text_document_definition_async(
            types.DefinitionParams(doc, position(UNET_LIB, "${filters}", 3))
        )
    )
    assert (found.uri, found.range.start) == (library.as_uri(), position(UNET_LIB, "filters: int"))
    prepared = await answer(
        client.text_document_prepare_rename_async(
            types.PrepareRenameParams(doc, position(UNET_LIB, "convbn"))
        )
    )
    assert prepared.placeholder == "convbn" and prepared.range.start == position(UNET_LIB, "convbn")
    edit = await answer(
        client.text_document_rename_async(types.RenameParams(doc, position(UNET_LIB, "id: out", 4), "joined"))
    )
    starts = {uri: sorted((e.range.start, e.range.end) for e in edits) for uri, edits in edit.changes.items()}
    expected = {
        library.as_uri(): [(UNET_LIB, "[out, skip]", 1), (UNET_LIB, "id: out", 4)],
        net.as_uri(): [(UNET, "u1.out", 3)],
        head.as_uri(): [(HEAD, "u1.out", 3)],
    }
    assert starts == {
        uri: sorted(
            (position(text, needle, offset), position(text, needle, offset + 3))
            for text, needle, offset in places
        )
        for uri, places in expected.items()
    }
    assert await open_text(client, net, UNET) == []
    hover = await answer(
        client.text_document_hover_async(types.HoverParams(doc, position(UNET_LIB, "conv2d:")))
    )
    assert hover.contents.value.startswith("**conv2d** `c0_conv2d_1` — 2-D convolution")
    for path in (head, library, net):
        close(client, path)


async def test_references_of_a_block_output_are_the_places_its_rename_edits(
    client: LanguageClient, folder: Path
):
    """A library block's output ``out``, asked in the library (its ``id:``) and at a user's
    ``u1.out``: the same places as its rename edits, each the name's range (``out`` of
    ``u1.out``, not the whole token), in both files and the spec cutting at it."""
    root = folder / "unet_refs"
    root.mkdir()
    library, net, head = root / "lib.yaml", root / "net.yaml", root / "head.yaml"
    for path, text in ((library, UNET_LIB), (net, UNET), (head, HEAD)):
        path.write_text(text, "utf-8")
    for path, text in ((library, UNET_LIB), (net, UNET), (head, HEAD)):
        assert await open_text(client, path, text) == []
    for path, text, needle, offset in [(library, UNET_LIB, "id: out", 4), (net, UNET, "u1.out", 3)]:
        doc, at = types.TextDocumentIdentifier(path.as_uri()), position(text, needle, offset)
        refs = await answer(
            client.text_document_references_async(
                types.ReferenceParams(
                    context=types.ReferenceContext(include_declaration=True), text_document=doc, position=at
                )
            )
        )
        edit = await answer(client.text_document_rename_async(types.RenameParams(doc, at, "joined")))
        edited = sorted(
            (uri, e.range.start, e.range.end) for uri, edits in edit.changes.items() for e in edits
        )
        assert sorted((r.uri, r.range.start, r.range.end) for r in refs) == edited, needle
        assert (net.as_uri(), position(UNET, "u1.out", 3), position(UNET, "u1.out", 6)) in edited
        assert len(edited) == 4
    for path in (library, net, head):
        close(client, path)


async def test_completion_at_a_key_of_a_library_block_calls_inputs_offers_its_inputs(
    client: LanguageClient, folder: Path
):
    """A call of the library's ``up`` binding its inputs by name: at the key after ``x: s1,``
    the input not bound yet (``skip``, read from the composed spec), at a value the ids."""
    root = folder / "unet_inputs"
    root.mkdir()
    (root / "lib.yaml").write_text(UNET_LIB, "utf-8")
    path = root / "net.yaml"
    text = UNET.replace("inputs: [s1, c0]", "inputs: {x: s1, skip: c0}")
    await open_text(client, path, text)
    typing = text.replace("{x: s1, skip: c0}", "{x: s1, }")
    await change(client, path, typing, 2)
    doc = types.TextDocumentIdentifier(path.as_uri())

    async def labels(at: types.Position) -> list[str]:
        found = await answer(client.text_document_completion_async(types.CompletionParams(doc, at)))
        return [item.label for item in found.items]

    assert await labels(position(typing, "{x: s1, }", 8)) == ["skip"]
    assert await labels(position(typing, "{x: s1", 4)) == ["input", "c0", "s1"]
    close(client, path)
