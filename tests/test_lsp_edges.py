"""`cnnspec lsp` at the edges an audit found: what a check no longer reads, the exit code, a
change of a document never opened, specs in flow style, control characters on odd line
breaks, documents without a file of their own, and the cost of a ``search:`` section.

The server is test_lsp's module fixture (one process for this module); the exit code needs a
process of its own.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from lsprotocol import types

pytest_lsp = pytest.importorskip("pytest_lsp", reason="the `lsp` extra is part of `dev`")
from pytest_lsp import LanguageClient  # noqa: E402

from cnnspec.lsp.documents import looks_like_spec  # noqa: E402
from cnnspec.spec.linebreaks import LINE_BREAK  # noqa: E402
from tests.conftest import run_lsp  # noqa: E402
from tests.test_lsp import (  # noqa: E402
    answer,
    change,
    close,
    mark,
    open_text,
    position,
    published,
    validate_json,
)
from tests.test_lsp import client as lsp_client_fixture  # noqa: E402

pytestmark = pytest.mark.xdist_group("lsp")
in_server = pytest.mark.asyncio(loop_scope="module")

# the server and its client: test_lsp's module fixture, one server for this module too
client = lsp_client_fixture

LIBRARY = """\
cnnspec: 1
blocks:
  double:
    params: {filters: int}
    layers:
      - conv2d: {filters: "${filters}", kernel_size: 3, padding: same}
"""
USER = """\
cnnspec: 1
name: t
use: [lib.yaml]
input: {shape: [8, 8, 3]}
model:
  - double: {filters: -4}
  - flatten
  - dense: {units: 2}
"""


@in_server
async def test_a_library_the_spec_stops_reading_loses_the_specs_errors(
    client: LanguageClient, tmp_path: Path
):
    library, spec = tmp_path / "lib.yaml", tmp_path / "net.yaml"
    library.write_text(LIBRARY, "utf-8")
    spec.write_text(USER, "utf-8")
    assert await open_text(client, library, LIBRARY) == []
    before = mark(library.as_uri())
    assert len(await open_text(client, spec, USER)) == 1
    assert len(await published(library.as_uri(), before)) == 1  # the bad argument, shown in the library
    before = mark(library.as_uri())
    alone = USER.replace("use: [lib.yaml]\n", "").replace(
        "double: {filters: -4}", "conv2d: {filters: 4, kernel_size: 3}"
    )
    assert await change(client, spec, alone, 2) == []
    assert await published(library.as_uri(), before) == []
    close(client, spec)
    close(client, library)


@in_server
async def test_a_change_of_a_document_never_opened_is_ignored(client: LanguageClient, tmp_path: Path):
    before = len(client.messages)
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            types.VersionedTextDocumentIdentifier(version=2, uri=(tmp_path / "never.yaml").as_uri()),
            [types.TextDocumentContentChangeWholeDocument(text="cnnspec: 1\n")],
        )
    )
    path = tmp_path / "open.yaml"  # a request after it: the change has been handled by then
    await open_text(client, path, "cnnspec: 1\nname: t\ninput: {shape: [4]}\nmodel: [flatten]\n")
    await answer(
        client.text_document_hover_async(
            types.HoverParams(types.TextDocumentIdentifier(path.as_uri()), types.Position(0, 0))
        )
    )
    assert client.messages[before:] == []
    close(client, path)


def _frames(*messages: dict[str, object]) -> bytes:
    bodies = [json.dumps({"jsonrpc": "2.0", **m}).encode() for m in messages]
    return b"".join(b"Content-Length: %d\r\n\r\n%s" % (len(body), body) for body in bodies)


@pytest.mark.parametrize(
    ("messages", "code"),
    [
        ([{"method": "exit"}], 1),
        (
            [
                {"id": 1, "method": "initialize", "params": {"capabilities": {}}},
                {"id": 2, "method": "shutdown"},
                {"method": "exit"},
            ],
            0,
        ),
    ],
    ids=["exit-alone", "shutdown-then-exit"],
)
def test_exit_code_says_whether_shutdown_came_first(messages: list[dict[str, object]], code: int) -> None:
    # `cnnspec lsp --debounce-ms 30` (test_lsp's SERVE) in a process of its own, forked from a
    # Python that has imported the language server (conftest.run_lsp): its exit status is its own
    done = run_lsp(_frames(*messages), timeout=20)
    assert done.returncode == code


FLOW = "{cnnspec: 1, name: t, input: {shape: [8, 8, 3]}, model: [flatten, {dense: {unitz: 2}}]}\n"
JSON_SPEC = (
    '{\n  "cnnspec": 1,\n  "name": "t",\n  "input": {"shape": [8, 8, 3]},\n'
    '  "model": ["flatten", {"dense": {"unitz": 2}}]\n}\n'
)
QUOTED = (
    '"cnnspec": 1\n"name": t\n"input": {shape: [8, 8, 3]}\n"model":\n  - flatten\n  - dense: {unitz: 2}\n'
)


@pytest.mark.parametrize("text", [FLOW, JSON_SPEC, QUOTED, "# a spec\n---\n{'blocks': {}}\n"])
def test_flow_json_and_quoted_specs_are_recognised(text: str) -> None:
    assert looks_like_spec(text)


@pytest.mark.parametrize(
    "text", ["on: push\njobs: {}\n", '{"name": "app", "version": "1.0"}\n', "services:\n  model: x\n"]
)
def test_other_yaml_and_json_are_not_specs(text: str) -> None:
    assert not looks_like_spec(text)


@in_server
@pytest.mark.parametrize("text", [FLOW, JSON_SPEC, QUOTED], ids=["flow", "json", "quoted"])
async def test_a_flow_style_spec_gets_validates_diagnostic(client: LanguageClient, tmp_path: Path, text: str):
    path = tmp_path / "flow.yaml"
    path.write_text(text, "utf-8")
    expected = validate_json(path)
    found = await open_text(client, path, text)
    assert [(d.range.start.line + 1, d.range.start.character + 1) for d in found] == [
        (e["line"], e["column"]) for e in expected
    ]
    assert len(found) == 1
    close(client, path)


_CTRL_LINES = [
    "cnnspec: 1",
    "name: t",
    'description: "a\u2028b"',
    "input: {shape: [8, 8, 3]}",
    "model:",
    "  - flatten",
    '  - dense: {units: 2, name: "x\x07"}',
]
CTRL_TEXTS = {
    "cr": "\r".join(_CTRL_LINES[:2] + _CTRL_LINES[3:]) + "\r",
    "crlf": "\r\n".join(_CTRL_LINES) + "\r\n",
    "u2028": "\n".join(_CTRL_LINES) + "\n",
}


def _ctrl_at(text: str) -> tuple[int, int]:
    """The 1-based line and column of the control character, in the editor's lines."""
    lines = LINE_BREAK.split(text)
    row = next(i for i, line in enumerate(lines) if "\x07" in line)
    return row + 1, lines[row].index("\x07") + 1


@pytest.mark.parametrize("name", list(CTRL_TEXTS))
def test_validate_locates_a_control_character_on_any_line_break(tmp_path: Path, name: str) -> None:
    path = tmp_path / "ctrl.yaml"
    path.write_bytes(CTRL_TEXTS[name].encode())
    (found,) = validate_json(path)
    assert (found["line"], found["column"]) == _ctrl_at(CTRL_TEXTS[name])


@in_server
@pytest.mark.parametrize("name", list(CTRL_TEXTS))
async def test_the_server_locates_a_control_character_on_any_line_break(
    client: LanguageClient, tmp_path: Path, name: str
):
    path = tmp_path / "ctrl.yaml"
    (found,) = await open_text(client, path, CTRL_TEXTS[name])
    line, column = _ctrl_at(CTRL_TEXTS[name])
    assert found.range.start == types.Position(line - 1, column - 1)
    close(client, path)


REFERENCED = """\
cnnspec: 1
name: t
input: {shape: [8, 8, 3]}
model:
  - conv2d: {filters: 4, kernel_size: 3}
    id: stem
  - flatten:
    inputs: stem
  - dense: {unitz: 2}
"""


async def _definition_and_related(client: LanguageClient, uri: str) -> tuple[set[str], set[str]]:
    """The URIs of the definition of ``stem`` and of every diagnostic's related information,
    for the document ``uri`` (opened with :data:`REFERENCED`)."""
    before = mark(uri)
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(types.TextDocumentItem(uri, "yaml", 1, REFERENCED))
    )
    found = await published(uri, before, 1)
    related = {r.location.uri for d in found for r in d.related_information or []}
    at = position(REFERENCED, "inputs: stem", len("inputs: "))
    target = await answer(
        client.text_document_definition_async(types.DefinitionParams(types.TextDocumentIdentifier(uri), at))
    )
    targets = target if isinstance(target, list) else [target]
    client.text_document_did_close(types.DidCloseTextDocumentParams(types.TextDocumentIdentifier(uri)))
    return {t.uri for t in targets}, related


@in_server
async def test_locations_in_an_untitled_buffer_name_the_buffer(client: LanguageClient):
    uri = "untitled:Untitled-7"
    assert await _definition_and_related(client, uri) == ({uri}, {uri})


@in_server
async def test_an_untitled_buffer_is_named_as_the_editor_names_it_in_hovers(client: LanguageClient):
    """A hover said "set in Untitled-8~9f9424a25148:4:8", the name the buffer is held under."""
    uri = "untitled:Untitled-8"
    text = REFERENCED.replace("input: {shape: [8, 8, 3]}\n", "input: {shape: [8, 8, 3]}\nvars: {n: 4}\n")
    text = text.replace("conv2d: {filters: 4,", 'conv2d: {filters: "${n}",')
    before = mark(uri)
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(types.TextDocumentItem(uri, "yaml", 1, text))
    )
    await published(uri, before, 1)
    at = position(text, "${n}", 2)
    found = await answer(
        client.text_document_hover_async(types.HoverParams(types.TextDocumentIdentifier(uri), at))
    )
    client.text_document_did_close(types.DidCloseTextDocumentParams(types.TextDocumentIdentifier(uri)))
    assert found is not None and "Untitled-8:" in found.contents.value, found
    assert "~" not in found.contents.value


@in_server
async def test_locations_in_a_file_opened_through_a_link_name_the_link(
    client: LanguageClient, tmp_path: Path
):
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "a.yaml").write_text(REFERENCED, "utf-8")
    (tmp_path / "link").symlink_to(tmp_path / "real", target_is_directory=True)
    uri = (tmp_path / "link" / "a.yaml").as_uri()
    assert await _definition_and_related(client, uri) == ({uri}, {uri})


@in_server
async def test_a_file_open_through_a_link_and_its_target_stays_open_until_both_close(
    client: LanguageClient, tmp_path: Path
):
    """Closing one of the two URIs dropped the file: the other answered null to hover."""
    real = tmp_path / "real.yaml"
    real.write_text(USER, "utf-8")
    (tmp_path / "link.yaml").symlink_to(real)
    text = USER.replace("use: [lib.yaml]\n", "").replace(
        "double: {filters: -4}", "conv2d: {fliters: 4, kernel_size: 3}"
    )
    assert len(await open_text(client, real, text)) == 1
    link = tmp_path / "link.yaml"
    before = mark(link.as_uri())
    real_before = mark(real.as_uri())
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(types.TextDocumentItem(link.as_uri(), "yaml", 1, text))
    )
    await published(link.as_uri(), before, 1)
    assert len(await published(real.as_uri(), real_before)) == 1  # both URIs show the file's errors
    before = mark(real.as_uri())
    close(client, link)
    assert len(await published(real.as_uri(), before)) == 1  # the real path's, checked again
    hover = await answer(
        client.text_document_hover_async(
            types.HoverParams(types.TextDocumentIdentifier(real.as_uri()), position(text, "conv2d", 1))
        )
    )
    assert hover is not None and "conv2d" in str(hover.contents)
    close(client, real)


@in_server
async def test_documents_without_a_file_are_entries_of_their_own(client: LanguageClient):
    """An untitled buffer and a file (or another buffer) of the same last segment are two
    documents: closing one leaves the other served."""
    kept = "untitled:Untitled-3"
    others = ["untitled:/x/Untitled-3", "other:Untitled-3", (Path.cwd() / "Untitled-3").as_uri()]
    for uri in [kept, *others]:
        before = mark(uri)
        client.text_document_did_open(
            types.DidOpenTextDocumentParams(types.TextDocumentItem(uri, "yaml", 1, REFERENCED))
        )
        await published(uri, before, 1)
    for uri in others:
        client.text_document_did_close(types.DidCloseTextDocumentParams(types.TextDocumentIdentifier(uri)))
    at = position(REFERENCED, "conv2d")
    found = await answer(
        client.text_document_hover_async(types.HoverParams(types.TextDocumentIdentifier(kept), at))
    )
    assert found is not None and "conv2d" in found.contents.value
    client.text_document_did_close(types.DidCloseTextDocumentParams(types.TextDocumentIdentifier(kept)))


SEARCH = """\
cnnspec: 1
name: s
input: {shape: [8, 8, 1]}
model:
  - conv2d: {filters: 8, kernel_size: 3}
  - global_avg_pool2d
  - dense: {units: 10, activation: softmax}
data: {source: digits, validation_split: 0.1}
training:
  epochs: 2
  optimizer: adam
search:
  objective: val_accuracy
  trials: 4
  space:
    training.optimizer: {choice: [adam, sgd]}
"""
#: Found only by compiling the search candidates (each choice written into the spec).
BAD_CHOICE = "received string 'sgdd'"
#: Found by the search checks that compile nothing.
BAD_OBJECTIVE = "received 'val_acuracy'"


def save(client: LanguageClient, path: Path) -> int:
    """Send didSave for ``path``; the publication count to wait after."""
    before = mark(path.as_uri())
    client.text_document_did_save(
        types.DidSaveTextDocumentParams(types.TextDocumentIdentifier(path.as_uri()))
    )
    return before


def messages(found: list[types.Diagnostic]) -> list[str]:
    return sorted(d.message for d in found)


@in_server
async def test_typing_repeats_the_search_candidates_of_the_last_open_or_save(
    client: LanguageClient, tmp_path: Path
):
    """The candidates (up to 256 models) are compiled on open and save only: a check on type
    runs every other check, the objective's included, and repeats what the last full check
    found compiling them (here a choice already fixed in the editor) until the next save."""
    spec = tmp_path / "s.yaml"
    bad = SEARCH.replace("[adam, sgd]", "[adam, sgdd]")
    opened = await open_text(client, spec, bad)
    assert len(opened) == 1 and BAD_CHOICE in opened[0].message
    typed = SEARCH.replace("val_accuracy", "val_acuracy")  # the choice fixed, the objective broken
    found = messages(await change(client, spec, typed, 2))
    assert len(found) == 2 and BAD_OBJECTIVE in found[0] and BAD_CHOICE in found[1]
    spec.write_text(typed, "utf-8")
    saved = await published(spec.as_uri(), save(client, spec))
    assert len(saved) == 1 and BAD_OBJECTIVE in saved[0].message  # compiled again: the choice is fine
    close(client, spec)


@in_server
async def test_a_save_compiles_the_search_candidates_again(client: LanguageClient, tmp_path: Path):
    """A bad choice typed in is not compiled on type; the save finds it, and the checks on
    type that follow keep it until a save compiles the fixed choice."""
    spec = tmp_path / "s.yaml"
    assert await open_text(client, spec, SEARCH) == []
    bad = SEARCH.replace("[adam, sgd]", "[adam, sgdd]")
    assert await change(client, spec, bad, 2) == []  # not compiled on type
    spec.write_text(bad, "utf-8")
    saved = await published(spec.as_uri(), save(client, spec))
    assert len(saved) == 1 and BAD_CHOICE in saved[0].message
    typed = bad.replace("trials: 4", "trials: 5")
    kept = await change(client, spec, typed, 3)
    assert len(kept) == 1 and BAD_CHOICE in kept[0].message
    assert await change(client, spec, SEARCH, 4) != []  # fixed in the editor, not yet saved
    spec.write_text(SEARCH, "utf-8")
    assert await published(spec.as_uri(), save(client, spec)) == []
    close(client, spec)


#: A model of 152 layers whose search compiles 195 trial specs alone (191 widths, the two
#: optimizers, two epochs): about 30,000 layer compilations, over the server's BACKGROUND_COST.
LONG_SEARCH = (
    SEARCH.replace("  - conv2d: {filters: 8, kernel_size: 3}\n", "")
    .replace(
        "model:\n",
        "vars: {width: 8}\nmodel:\n  - repeat:\n      times: 150\n      layers:\n"
        "        - conv2d: {filters: \"${width}\", kernel_size: 3, padding: same}\n",
    )
    .replace("    training.optimizer: {choice: [adam, sgd]}\n",
             "    training.optimizer: {choice: [adam, sgdd]}\n    vars.width: {int: [8, 198]}\n"
             "    training.epochs: {choice: [1, 2]}\n")
)  # fmt: skip


def test_a_long_search_is_left_to_a_thread_on_the_text_of_its_moment(monkeypatch: pytest.MonkeyPatch):
    """An editor's check (``background``) leaves candidates that take long to compile owed,
    repeating their last findings; the job compiles them on the text it was made with, and its
    result is kept only while the document still has that text. (Every search is long here:
    the server's test below has a real one.)"""
    from cnnspec.lsp import documents as module
    from cnnspec.lsp.documents import Documents

    monkeypatch.setattr(module, "BACKGROUND_COST", 0)
    documents, path = Documents(), Path("/tmp/long.yaml")
    bad = SEARCH.replace("[adam, sgd]", "[adam, sgdd]")
    documents.set(path, bad, 1)
    first = documents.analyze(path, full=True, background=True)
    assert first.search_deferred and first.diagnostics == [] and path in documents.owed
    job = documents.search_job(path)
    documents.set(path, bad.replace("trials: 4", "trials: 5"), 2)  # typed while it compiles
    analysis, run = job()
    assert run.compiled and [d for d in analysis.diagnostics if BAD_CHOICE in d.message]
    assert not documents.adopt(path, analysis, run)  # of the text before: not the editor's
    assert path in documents.owed and documents.analyses[path] is first
    assert documents.adopt(path, *documents.search_job(path)())
    assert path not in documents.owed
    (kept,) = documents.analyses[path].diagnostics
    assert BAD_CHOICE in kept.message
    typed = documents.analyze(path, background=True)  # the findings repeated, nothing owed
    assert not typed.search_deferred and [d.message for d in typed.diagnostics] == [kept.message]
    saved = documents.analyze(path, full=True, background=True)  # owed again: the last repeated
    assert saved.search_deferred and [d.message for d in saved.diagnostics] == [kept.message]
    # without `background` (validate --fix's rounds, a rename's checks) they are compiled in place
    assert not documents.analyze(path, full=True).search_deferred and path not in documents.owed


def test_a_long_search_costs_more_than_the_server_compiles_on_its_loop():
    """The server's test below compiles its candidates in a thread: 152 layers, 195 trial specs."""
    from cnnspec.analysis.search_check import planned_compiles
    from cnnspec.api import compile_text
    from cnnspec.errors import Diagnostics
    from cnnspec.lsp.documents import BACKGROUND_COST
    from cnnspec.spec.loader import load_text
    from cnnspec.spec.search import read_search

    space = read_search(load_text(LONG_SEARCH, "long.yaml"), Diagnostics())
    assert space is not None and planned_compiles(space) == 195  # (191 + 2 + 2: one model dimension)
    model = compile_text(LONG_SEARCH.partition("search:")[0], "long.yaml")  # (no candidates compiled)
    assert len(model.ir.nodes) == 152 and BACKGROUND_COST < 152 * 195


@in_server
async def test_the_server_answers_while_a_long_search_compiles(client: LanguageClient, tmp_path: Path):
    """The candidates of a long search are compiled in a thread: the open is published at once
    without them, a hover is answered meanwhile, and their findings come in a publication of
    their own (a spec of ~1,000 layers held every request 15-53 s)."""
    spec = tmp_path / "long.yaml"
    uri = spec.as_uri()
    before = mark(uri)
    opened = await open_text(client, spec, LONG_SEARCH)
    assert not [d for d in opened if BAD_CHOICE in d.message]
    hover = await answer(
        client.text_document_hover_async(
            types.HoverParams(types.TextDocumentIdentifier(uri), position(LONG_SEARCH, "conv2d", 2))
        )
    )
    assert isinstance(hover, types.Hover) and isinstance(hover.contents, types.MarkupContent)
    assert "conv2d" in hover.contents.value
    found = await published(uri, before + 1, 1)
    assert [d for d in found if BAD_CHOICE in d.message]
    close(client, spec)


def test_a_diagnostic_at_an_empty_value_at_the_lines_end_covers_the_word_before_it():
    """`  - add:` (no value): the warning's range was zero-width, past the colon."""
    from cnnspec.lsp.text import Lines

    for line in ("  - add:", "  - add:   "):
        span = Lines(f"model:\n{line}\n", "utf-16").span(2, 9)
        assert (span.start_line, span.start_char, span.end_line, span.end_char) == (1, 4, 1, 8), line


def test_references_through_a_yaml_alias_list_each_place_once():
    from cnnspec.lsp import navigation
    from cnnspec.lsp.locate import path_at
    from cnnspec.spec.loader import load_text

    text = (
        "cnnspec: 1\nname: t\ninput: {shape: [8, 8, 3]}\nmodel:\n  - conv2d: {filters: 4, kernel_size: 1}\n"
        "    id: a\n  - conv2d: {filters: 4, kernel_size: 1}\n    id: b\n  - add:\n    inputs: &ins [a, b]\n"
        "  - add:\n    inputs: *ins\n"
    )
    doc = load_text(text, "t.yaml")
    cursor = path_at(doc, "t.yaml", 6, 9)
    assert cursor is not None
    found = navigation.references(doc, cursor)
    assert len(found) == len(set(found)) and [loc.line for loc in found][:2] == [6, 10]


def test_repeated_search_findings_follow_their_line_when_lines_are_added_above():
    """Until the next save the candidates' findings are repeated at the saved text's positions:
    three lines added above put the squiggle on `objective:`'s line."""
    from cnnspec.lsp.documents import Documents

    documents, path = Documents(), Path("/tmp/s.yaml")
    bad = SEARCH.replace("[adam, sgd]", "[adam, sgdd]")
    documents.set(path, bad, 1)
    (first,) = [d for d in documents.analyze(path, full=True).diagnostics if BAD_CHOICE in d.message]
    documents.set(path, "# a\n# b\n# c\n" + bad, 2)
    (moved,) = [d for d in documents.analyze(path).diagnostics if BAD_CHOICE in d.message]
    assert moved.loc is not None and first.loc is not None and moved.loc.line == first.loc.line + 3
    documents.set(path, bad.replace("  trials: 4\n", ""), 3)  # a line removed, its own line unchanged
    (kept,) = [d for d in documents.analyze(path).diagnostics if BAD_CHOICE in d.message]
    assert kept.loc is not None and kept.loc.line == first.loc.line - 1


@in_server
async def test_an_untitled_buffer_is_named_as_the_editor_names_it_in_diagnostic_notes(client: LanguageClient):
    """A note of a diagnostic (where a shadowing block parameter is declared) said
    "(Untitled-9~9f9424a25148:7:14)", the name the buffer is held under, as hovers did."""
    from tests.test_unused_vars import SHADOWED_BY_A_PARAMETER

    uri = "untitled:Untitled-9"
    before = mark(uri)
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(types.TextDocumentItem(uri, "yaml", 1, SHADOWED_BY_A_PARAMETER))
    )
    found = await published(uri, before, 1)
    client.text_document_did_close(types.DidCloseTextDocumentParams(types.TextDocumentIdentifier(uri)))
    said = [found[0].message, *(r.message for r in found[0].related_information or [])]
    assert any("Untitled-9:" in text for text in said), said
    assert not any("~" in text for text in said), said
