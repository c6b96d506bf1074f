"""`cnnspec lsp` on ids and scopes, broken text and the outline's nesting.

- ``inputs:`` completion and go-to-definition follow the resolver's scoping rules: what
  completion offers at a place is exactly what ``cnnspec validate`` accepts there (checked by
  writing every candidate there and validating), a block's named inputs included;
- a request never answers from the positions of another text: after an edit that breaks the
  YAML, hover and definition answer nothing rather than describe the item that used to be on
  those lines, while completion of kinds and parameters still works from the text alone;
- the outline's children lie within their parents (LSP requires it), also for calls of a
  block defined in the same file.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from lsprotocol import types

from cnnspec.layers.registry import REGISTRY
from cnnspec.lsp import completion, navigation
from cnnspec.lsp.completion import COMBINATORS, written_kind
from cnnspec.lsp.documents import Documents
from cnnspec.lsp.locate import path_at
from tests.conftest import ROOT

pytest_lsp = pytest.importorskip("pytest_lsp", reason="the `lsp` extra is part of `dev`")
from pytest_lsp import LanguageClient  # noqa: E402

from tests.test_lsp import answer, change, close, open_text, position  # noqa: E402
from tests.test_lsp import client as lsp_client_fixture  # noqa: E402

pytestmark = pytest.mark.xdist_group("lsp")
in_server = pytest.mark.asyncio(loop_scope="module")

#: Every scope the resolver knows, each with a probe: ``{M1}`` … is where a reference is written.
SCOPES = """\
cnnspec: 1
name: scopes
input: {shape: [8, 8, 3]}
blocks:
  cell:
    inputs: [x, skip]
    layers:
      - conv2d: {filters: 3, kernel_size: 1}
        inputs: x
        id: cx
      - activation: relu
        inputs: {B1}
      - add:
        inputs: [cx, skip]
      - activation: relu
        id: tail
model:
  - conv2d: {filters: 3, kernel_size: 3, padding: same}
    id: s1
  - residual:
      body:
        - conv2d: {filters: 3, kernel_size: 3, padding: same}
          id: inner
        - activation: relu
          inputs: {M1}
      shortcut:
        - activation: relu
          inputs: {M2}
  - parallel:
      merge: add
      branches:
        - - conv2d: {filters: 3, kernel_size: 1}
            id: b0
        - - activation: relu
            inputs: {M3}
    id: par
  - cell:
    inputs: [s1, par]
    id: c
  - id: loop
    repeat:
      times: 2
      carry: {h: c}
      layers:
        - activation: relu
          inputs: {M4}
        - conv2d: {filters: 3, kernel_size: 1}
          inputs: h
          id: step
      next: {h: step}
  - activation: relu
    inputs: {M5}
  - conv2d: {filters: 3, kernel_size: 1}
    id: late
  - global_avg_pool2d
"""
PROBES = ("B1", "M1", "M2", "M3", "M4", "M5")
#: What each probe may name, as the scoping rules in the README say.
EXPECTED = {
    "B1": ["x", "skip", "cx"],
    "M1": ["input", "s1", "inner"],
    "M2": ["input", "s1", "inner"],  # the shortcut sees the residual's body
    "M3": ["input", "s1"],  # not the other branch's b0
    "M4": ["input", "s1", "par", "c", "h"],
    "M5": ["input", "s1", "par", "c", "h", "loop"],
}
CANDIDATES = [
    *("input", "x", "skip", "cx", "tail", "s1", "inner"),
    *("b0", "par", "c", "loop", "h", "step", "late"),
]


def spec_with(probe: str, name: str, other: str = "input") -> str:
    """SCOPES with ``name`` at ``probe`` and a reference every scope accepts elsewhere."""
    text = SCOPES
    for p in PROBES:
        text = text.replace(f"{{{p}}}", name if p == probe else ("cx" if p == "B1" else other))
    return text


def offered(path: Path, text: str, needle: str, offset: int) -> list[str]:
    documents = Documents()
    documents.set(path, text, 1)
    analysis = documents.analyze(path)
    assert analysis.doc is not None
    at = position(text, needle, offset)
    line = text.split("\n")[at.line]
    cursor = path_at(analysis.doc, analysis.name, at.line + 1, at.character + 1)
    return [s.label for s in completion.complete(analysis.doc, cursor, line, at.character)]


@pytest.mark.parametrize("probe", PROBES)
def test_inputs_completion_offers_exactly_what_the_resolver_accepts(tmp_path: Path, probe: str) -> None:
    path = (tmp_path / "scopes.yaml").resolve()
    marker = "PROBE_ID"
    text = spec_with(probe, marker)
    assert offered(path, text, marker, 0) == EXPECTED[probe]
    accepted = []
    for name in CANDIDATES:
        documents = Documents()
        documents.set(path, spec_with(probe, name), 1)
        found = documents.analyze(path).diagnostics
        if not any(d.code == "reference" for d in found):
            accepted.append(name)
    assert sorted(accepted) == sorted(EXPECTED[probe])


def test_definitions_follow_the_scopes(tmp_path: Path) -> None:
    path = (tmp_path / "scopes.yaml").resolve()
    text = spec_with("M2", "inner")
    documents = Documents()
    documents.set(path, text, 1)
    analysis = documents.analyze(path)
    assert analysis.compiled is not None, analysis.diagnostics
    doc = analysis.doc

    def target(needle: str, offset: int, occurrence: int = 0) -> types.Position | None:
        at = position(text, needle, offset, occurrence)
        cursor = path_at(doc, analysis.name, at.line + 1, at.character + 1)
        found = navigation.definition(doc, cursor, text.split("\n")[at.line], at.character)
        if found is None or found.loc is None:
            return None
        return types.Position(found.loc.line - 1, found.loc.column - 1)

    assert target("inputs: x", 8) == position(text, "x, skip]")  # a block input: its declaration
    assert target("[cx, skip]", 5) == position(text, "skip]")
    assert target("[cx, skip]", 1) == position(text, "cx\n")
    assert target("inputs: inner", 8) == position(text, "inner\n")  # shortcut → body's id
    assert target("inputs: h", 8) == position(text, "h: c}")  # a carried name → its carry key
    refs = navigation.references(doc, path_at(doc, analysis.name, *_one_based(text, "x, skip]")))
    assert sorted((r.line, r.column) for r in refs) == [
        _one_based(text, "x, skip]"),
        _one_based(text, "x\n        id: cx"),
    ]


def _one_based(text: str, needle: str) -> tuple[int, int]:
    at = position(text, needle)
    return at.line + 1, at.character + 1


@pytest.mark.parametrize(
    ("before", "above", "expected"),
    [
        ("  - conv2d: {filters: 3, ", [], ("conv2d", {"filters"})),
        ('  - double: {filters: "${w * 2}", ', [], ("double", {"filters"})),
        ("      ", ["  - dense:", "      units: 4"], ("dense", {"units"})),
        ("      act", ["  - dense:", "      units: 4", "      # a comment", ""], ("dense", {"units"})),
        ("    ", ["  - conv2d: {filters: 3}", "    id: a"], None),
        ("  - conv2d: {kernel_size: [3, ", [], None),
    ],
)
def test_the_kind_at_the_cursor_from_the_text_alone(before: str, above: list[str], expected: object) -> None:
    found = written_kind(before, above)
    assert (found if found is None or expected is None else (found[0], found[1])) == expected


# -- end to end --------------------------------------------------------------------------------
# the server and its client: test_lsp's module fixture, one server for this module too
client = lsp_client_fixture


async def labels(client: LanguageClient, path: Path, at: types.Position) -> list[str] | None:
    found = await answer(
        client.text_document_completion_async(
            types.CompletionParams(types.TextDocumentIdentifier(path.as_uri()), at)
        )
    )
    return None if found is None else [item.label for item in found.items]


async def hover(client: LanguageClient, path: Path, at: types.Position) -> str | None:
    found = await answer(
        client.text_document_hover_async(types.HoverParams(types.TextDocumentIdentifier(path.as_uri()), at))
    )
    return None if found is None else found.contents.value


async def definition(client: LanguageClient, path: Path, at: types.Position) -> list[types.Location]:
    found = await answer(
        client.text_document_definition_async(
            types.DefinitionParams(types.TextDocumentIdentifier(path.as_uri()), at)
        )
    )
    return [] if found is None else found if isinstance(found, list) else [found]


async def outline(client: LanguageClient, path: Path) -> list[types.DocumentSymbol]:
    return await answer(
        client.text_document_document_symbol_async(
            types.DocumentSymbolParams(types.TextDocumentIdentifier(path.as_uri()))
        )
    )


KINDS = [*REGISTRY, *COMBINATORS]

BLOCK_INPUTS = """\
cnnspec: 1
name: blkin
input: {shape: [16, 16, 3]}
blocks:
  cell:
    inputs: [x, skip]
    layers:
      - conv2d: {filters: 3, kernel_size: 1}
        inputs: x
        id: cx
      - add:
        inputs: [cx, skip]
model:
  - conv2d: {filters: 3, kernel_size: 1}
    id: s1
  - cell:
    inputs: [s1, s1]
  - flatten
"""


@in_server
async def test_a_blocks_named_inputs_are_completed_and_defined(client: LanguageClient, tmp_path: Path):
    path = tmp_path / "blkin.yaml"
    await open_text(client, path, BLOCK_INPUTS)
    declared = position(BLOCK_INPUTS, "x, skip]")
    assert await labels(client, path, position(BLOCK_INPUTS, "[cx, skip]", 1)) == ["x", "skip", "cx"]
    assert await labels(client, path, position(BLOCK_INPUTS, "inputs: x", 8)) == ["x", "skip"]
    assert await labels(client, path, position(BLOCK_INPUTS, "[s1, s1]", 1)) == ["input", "s1"]
    (found,) = await definition(client, path, position(BLOCK_INPUTS, "inputs: x", 8))
    assert found.uri == path.as_uri() and found.range.start == declared
    (found,) = await definition(client, path, position(BLOCK_INPUTS, "[cx, skip]", 5))
    assert found.range.start == position(BLOCK_INPUTS, "skip]")
    close(client, path)


@in_server
async def test_ids_defined_later_are_not_offered(client: LanguageClient, tmp_path: Path):
    path = tmp_path / "later.yaml"
    text = BLOCK_INPUTS.replace("inputs: [s1, s1]", "inputs: [s1, ]").replace(
        "  - flatten\n", "  - flatten:\n    id: late\n"
    )
    await open_text(client, path, text)
    assert await labels(client, path, position(text, "[s1, ]", 5)) == ["input", "s1"]
    close(client, path)


STALE = """\
cnnspec: 1
name: t
input: {shape: [8, 8, 3]}
vars: {w: 4}
model:
  - conv2d: {filters: 4, kernel_size: 3}
    id: a
  - conv2d: {filters: 4, kernel_size: 3}
  - add:
    inputs: [a, a]
  - flatten
"""


@in_server
async def test_no_answer_from_the_positions_of_another_text(client: LanguageClient, tmp_path: Path):
    path = tmp_path / "stale.yaml"
    await open_text(client, path, STALE)
    assert "`conv2d_1`" in (await hover(client, path, position(STALE, "conv2d", 2, occurrence=1)))
    shifted = "# c1\n# c2\n# c3\n" + STALE.replace("  - flatten", "  - flatten: {: }\n  - ")
    assert [d.code for d in await change(client, path, shifted, 2)] == ["yaml"]
    second_conv = position(shifted, "conv2d", 0, occurrence=1)
    assert second_conv == types.Position(10, 4)
    assert await hover(client, path, second_conv) is None  # was: "flatten — Flattens …"
    assert await definition(client, path, position(shifted, "[a, a]", 1)) == []
    # inputs completion reads the ids of this text's own lines above the cursor, not the
    # positions of the last text that loaded
    assert await labels(client, path, position(shifted, "[a, a]", 1)) == ["input", "a"]
    assert await outline(client, path) == []
    # Completion of kinds and parameters needs no document.
    assert await labels(client, path, position(shifted, "  - \n", 4)) == KINDS
    conv = REGISTRY["conv2d"].params
    found = await labels(client, path, position(shifted, "filters: 4, ", len("filters: 4, ")))
    assert found == [p.name for p in conv if p.name not in ("filters", "kernel_size")]
    close(client, path)


@in_server
async def test_one_load_error_leaves_completion_working(client: LanguageClient, tmp_path: Path):
    # (a YAML 1.1 value, `tags: [x, y]`, no longer stops the load: `validate` reports it with
    # the file's other errors, and so does the editor; completion works all the same)
    mistakes = {
        "use: [missing.yaml]\n": ["io"],
        "name: again\n": ["yaml"],
        "tags: [x, y]\n": ["unknown-key", "yaml-1.1", "invalid"],
    }
    for mistake, codes in mistakes.items():
        path = tmp_path / "broken.yaml"
        text = BLOCK_INPUTS.replace("name: blkin\n", "name: blkin\n" + mistake) + "  - \n"
        found = await open_text(client, path, text)
        assert [d.code for d in found] == codes, found
        offered = await labels(client, path, position(text, "  - \n", 4))
        if "tags" in mistake:  # it loaded: its block `cell` is offered too
            assert offered is not None and sorted(offered) == sorted([*KINDS, "cell"])
        else:  # the document did not load: nothing to hover or outline
            assert await hover(client, path, position(text, "conv2d", 2, occurrence=1)) is None
            assert await outline(client, path) == []
            # the blocks its lines above the cursor declare, read from them: `cell` where those
            # lines load (a missing library), none where they do not (the key given twice)
            assert offered is not None
            assert sorted(offered) == sorted([*KINDS, *(["cell"] if "use" in mistake else [])])
        close(client, path)


@in_server
async def test_the_last_document_serves_while_its_text_is_unchanged(client: LanguageClient, tmp_path: Path):
    """A check that fails for a reason outside the text (a `use:` file gone from the disk) leaves
    the positions of the last document that loaded valid: outline and hover still answer."""
    library = tmp_path / "lib.yaml"
    library.write_text("cnnspec: 1\nblocks:\n  one:\n    layers: [flatten]\n", "utf-8")
    path = tmp_path / "user.yaml"
    text = BLOCK_INPUTS.replace("name: blkin\n", "name: blkin\nuse: [lib.yaml]\n")
    assert await open_text(client, path, text) == []
    library.unlink()
    client.workspace_did_change_watched_files(
        types.DidChangeWatchedFilesParams(
            [types.FileEvent(uri=library.as_uri(), type=types.FileChangeType.Deleted)]
        )
    )
    assert [d.code for d in await change(client, path, text, 2)] == ["io"]
    shown = await hover(client, path, position(text, "flatten", 2))
    assert shown is not None and shown.startswith("**flatten**")
    assert [s.name for s in await outline(client, path)] == ["conv2d", "cell", "flatten"]
    close(client, path)


def _within(outer: types.Range, inner: types.Range) -> bool:
    return (outer.start.line, outer.start.character) <= (inner.start.line, inner.start.character) and (
        inner.end.line,
        inner.end.character,
    ) <= (outer.end.line, outer.end.character)


@in_server
@pytest.mark.parametrize("spec", ["basic_cnn.yaml", "resnet.yaml", "unet.yaml"])
async def test_outline_children_lie_within_their_parents(client: LanguageClient, spec: str):
    path = ROOT / "specs" / spec
    text = path.read_text("utf-8")
    assert await open_text(client, path, text) == []
    symbols = await outline(client, path)
    outside = []

    def walk(symbol: types.DocumentSymbol, parent: types.DocumentSymbol | None) -> None:
        if not _within(symbol.range, symbol.selection_range):
            outside.append(("selection", symbol.name))
        if parent is not None and not _within(parent.range, symbol.range):
            outside.append((parent.name, symbol.name))
        for child in symbol.children or []:
            walk(child, symbol)

    for symbol in symbols:
        walk(symbol, None)
    assert outside == []
    close(client, path)


@in_server
async def test_a_same_file_blocks_children_sit_at_the_call(client: LanguageClient):
    path = ROOT / "specs" / "basic_cnn.yaml"
    text = path.read_text("utf-8")
    await open_text(client, path, text)
    call = next(s for s in await outline(client, path) if s.name == "conv_bn_pool conv_bn_pool_1")
    assert call.selection_range.start == position(text, "conv_bn_pool: {filters: 32}")
    assert call.children and all(child.range == call.range for child in call.children)
    close(client, path)


@in_server
async def test_a_key_naming_a_model_output_goes_to_its_id_and_shows_it(
    client: LanguageClient, tmp_path: Path
):
    """`training.outputs.cnt` and the `shapes` target's `cnt:` name the output `cnt`:
    go-to-definition reaches its `id:` and hover shows that layer, as on the `cnt` of a search
    path (they found nothing, while references and rename already read these keys). A search
    path's definition stays the setting it searches."""
    from tests.test_lsp_references import OUTPUTS

    path = tmp_path / "m.yaml"
    await open_text(client, path, OUTPUTS)
    declared = position(OUTPUTS, "id: cnt\noutputs", 4)
    for needle, offset in [("cnt: {task", 1), ("cnt: count", 2), ("outputs.cnt.loss", 9)]:
        found = await definition(client, path, position(OUTPUTS, needle, offset))
        searched = position(OUTPUTS, "loss_weight: 0.5")
        expected = searched if needle.startswith("outputs.") else declared
        assert [(f.uri, f.range.start) for f in found] == [(path.as_uri(), expected)], needle
        shown = await hover(client, path, position(OUTPUTS, needle, offset))
        assert shown is not None and shown.startswith("**output** `cnt`\n\n"), (needle, shown)
        assert "dense" in shown and "(None, 1)" in shown, shown
    # the key `cls` of training.outputs: the other output
    found = await definition(client, path, position(OUTPUTS, "cls: {loss", 1))
    assert [f.range.start for f in found] == [position(OUTPUTS, "id: cls", 4)]
    # a block's own id of the same name is no output: its key in the block is not one either
    assert await hover(client, path, position(OUTPUTS, "units: 1}", 1)) != shown
