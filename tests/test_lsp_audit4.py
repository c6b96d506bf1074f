"""`cnnspec lsp` against a fourth audit: incremental edits, the lifecycle, broken messages, and
navigation through a block call's automatic name.

- An incremental ``didChange`` counts lines as LSP does (``\\n``, ``\\r\\n``, ``\\r`` only; not
  U+2028, U+2029, U+0085, ``\\x0b``, ``\\x0c``, ``\\x1c``–``\\x1e``, where ``str.splitlines`` also
  breaks) and characters in the negotiated position encoding; a character past the end of its
  line is the line's end, before its line break.
- A request before ``initialize`` is answered ServerNotInitialized (-32002); a second
  ``initialize``, and any request after ``shutdown``, Invalid Request (-32600); notifications
  then are dropped, ``exit`` always served.
- A body that is not UTF-8 or not JSON is answered Parse error (-32700, ``id`` null), one that
  is JSON but no JSON-RPC 2.0 request Invalid Request; the server keeps serving.
- Definition and references on ``double_1.c`` (the automatic name of a block call, which
  validate's hints tell users to write) reach the id ``c`` in the block, and the call.

Each conversation is one server process fed a scripted sequence of frames over stdio (the
protocol tests need bytes no LSP client library would send); the navigation test uses
test_lsp's module server. Every expected diagnostic comes from ``cnnspec validate`` on the text
the editor would hold after the edits, never written down by hand.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types

pytest_lsp = pytest.importorskip("pytest_lsp", reason="the `lsp` extra is part of `dev`")
from pytest_lsp import LanguageClient  # noqa: E402

from tests.conftest import run_lsp  # noqa: E402
from tests.test_lsp import answer, close, open_text, position, validate_json  # noqa: E402
from tests.test_lsp import client as lsp_client_fixture  # noqa: E402

pytestmark = pytest.mark.xdist_group("lsp")
in_server = pytest.mark.asyncio(loop_scope="module")

# the server and its client for the navigation test: test_lsp's module fixture
client = lsp_client_fixture

#: Bound on one scripted conversation (a hang, not a timing: each takes about a second).
CONVERSATION_S = 60


# -- a scripted conversation over stdio -----------------------------------------------------
def frame(message: dict[str, Any] | bytes) -> bytes:
    """One message with its header; ``bytes``: a raw body, sent as it is."""
    body = message if isinstance(message, bytes) else json.dumps({"jsonrpc": "2.0", **message}).encode()
    return b"Content-Length: %d\r\n\r\n%s" % (len(body), body)


def unframe(stream: bytes) -> list[dict[str, Any]]:
    """The messages of the server's output, in order."""
    found: list[dict[str, Any]] = []
    while stream:
        head, _, rest = stream.partition(b"\r\n\r\n")
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        found.append(json.loads(rest[:length]))
        stream = rest[length:]
    return found


def converse(cwd: Path, *messages: dict[str, Any] | bytes) -> tuple[int, list[dict[str, Any]]]:
    """Feed ``messages`` to a fresh server (run in ``cwd``; a process of its own, forked with
    cnnspec's language server imported: conftest's run_lsp) and return its exit code and every
    message it wrote. The script ends with ``exit``; the server reads the frames in order."""
    done = run_lsp(b"".join(frame(m) for m in messages), cwd=cwd, timeout=CONVERSATION_S)
    return done.returncode, unframe(done.stdout)


def initialize(request_id: int = 1, encodings: list[str] | None = None) -> list[dict[str, Any]]:
    """``initialize`` (offering ``encodings``, when given) and ``initialized``."""
    capabilities: dict[str, Any] = {}
    if encodings is not None:
        capabilities = {"general": {"positionEncodings": encodings}}
    return [
        {
            "id": request_id,
            "method": "initialize",
            "params": {"processId": None, "capabilities": capabilities},
        },
        {"method": "initialized", "params": {}},
    ]


def response(found: list[dict[str, Any]], request_id: int | None) -> dict[str, Any]:
    """The server's answer to the request ``request_id`` (``None``: the answers with a null id)."""
    answers = [m for m in found if "method" not in m and m.get("id") == request_id]
    assert len(answers) == 1, (request_id, found)
    return answers[0]


def last_diagnostics(found: list[dict[str, Any]], uri: str) -> list[tuple[int, int, str]]:
    """The last diagnostics the server published for ``uri``: (line, character, message)."""
    published = [
        m["params"]
        for m in found
        if m.get("method") == "textDocument/publishDiagnostics" and m["params"]["uri"] == uri
    ]
    assert published, found
    return sorted(
        (d["range"]["start"]["line"], d["range"]["start"]["character"], d["message"])
        for d in published[-1]["diagnostics"]
    )


def units(text: str, encoding: str) -> int:
    """The length of ``text`` in code units of ``encoding``."""
    if encoding == "utf-8":
        return len(text.encode("utf-8"))
    if encoding == "utf-32":
        return len(text)
    return len(text.encode("utf-16-le")) // 2


def expected(folder: Path, text: str) -> list[tuple[int, int, str]]:
    """What validate says of ``text`` (the editor's text after the edits), as the server
    publishes it. The columns are code points: the lines tested are ASCII where errors are."""
    path = folder / "expected.yaml"
    path.write_bytes(text.encode("utf-8"))
    return sorted(
        (d["line"] - 1, d["column"] - 1, (f"{d['path']}: " if d["path"] else "") + d["message"])
        for d in validate_json(path)
    )


def edited(
    folder: Path, cases: list[tuple[str, list[dict[str, Any]]]], encoding: str | None = None
) -> list[list[tuple[int, int, str]]]:
    """The diagnostics the server publishes for each ``(text, changes)`` case after its
    ``changes`` (one ``didChange``), with ``encoding`` negotiated. The cases are documents of
    their own in one conversation (a server process costs seconds); a ``documentSymbol``
    request runs each document's pending check, so its diagnostics are published before the
    answer."""
    messages: list[dict[str, Any]] = []
    uris = [(folder / f"edited_{index}.yaml").as_uri() for index in range(len(cases))]
    for index, (uri, (text, changes)) in enumerate(zip(uris, cases, strict=True)):
        item = {"uri": uri, "languageId": "yaml", "version": 1, "text": text}
        document = {"textDocument": {"uri": uri}}
        messages += [
            {"method": "textDocument/didOpen", "params": {"textDocument": item}},
            {
                "method": "textDocument/didChange",
                "params": {"textDocument": {"uri": uri, "version": 2}, "contentChanges": changes},
            },
            {"id": 10 + index, "method": "textDocument/documentSymbol", "params": document},
        ]
    code, found = converse(
        folder,
        *initialize(1, [encoding] if encoding else None),
        *messages,
        {"id": 2, "method": "shutdown"},
        {"method": "exit"},
    )
    assert code == 0
    if encoding:
        assert response(found, 1)["result"]["capabilities"]["positionEncoding"] == encoding
    return [last_diagnostics(found, uri) for uri in uris]


def change(start: tuple[int, int], end: tuple[int, int], text: str) -> dict[str, Any]:
    """A ranged content change."""
    return {
        "range": {
            "start": {"line": start[0], "character": start[1]},
            "end": {"line": end[0], "character": end[1]},
        },
        "text": text,
    }


# -- D1: lines as LSP counts them, characters in the agreed encoding -------------------------
#: Characters :meth:`str.splitlines` breaks lines at and LSP does not.
NOT_LINE_BREAKS = ["\u2028", "\u2029", "\x85", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e"]


@pytest.mark.parametrize("encoding", [None, "utf-8", "utf-32"], ids=["utf-16", "utf-8", "utf-32"])
def test_an_incremental_change_counts_lines_as_lsp_does(tmp_path: Path, encoding: str | None) -> None:
    """For each odd character: the editor fixes a misspelt parameter three lines below it, then
    deletes it (after non-ASCII text, measured in the agreed encoding): the text it holds then
    is a valid spec. Splitting at the odd character puts the first edit on the wrong line."""
    before_sep = 'description: "é😀'
    unit = encoding or "utf-16"
    cases = []
    for separator in NOT_LINE_BREAKS:
        text = (
            f'cnnspec: 1\nname: t\n{before_sep}{separator}z"\ninput: {{shape: [8]}}\n'
            "model:\n  - dense: {unitz: 2}\n"
        )
        changes = [  # in this order: the first edit is made while the odd character is there
            change((5, 12), (5, 17), "units"),
            change((2, units(before_sep, unit)), (2, units(before_sep + separator, unit)), ""),
        ]
        cases.append((text, changes))
    final = cases[0][0].replace(NOT_LINE_BREAKS[0], "").replace("unitz", "units")
    assert expected(tmp_path, final) == []
    found = edited(tmp_path, cases, encoding)
    for separator, diagnostics in zip(NOT_LINE_BREAKS, found, strict=True):
        assert diagnostics == [], f"U+{ord(separator):04X}"


# -- D2: a character past the end of its line is the line's end -----------------------------
@pytest.mark.parametrize("eol", ["\n", "\r\n", "\r"], ids=["LF", "CRLF", "CR"])
def test_a_character_past_the_line_end_is_the_line_end(tmp_path: Path, eol: str) -> None:
    """Appending a comment 1, 2 or 100 characters past the line's end appends it to that line,
    before its line break: the error on the next line stays where validate puts it."""
    lines = ["cnnspec: 1", "name: t", "input: {shape: [8]}", "model:", "  - dense: {units: 2}"]
    lines += ["  - dense: {units: 2, activation: relx}", ""]
    text = eol.join(lines)
    final = eol.join([*lines[:4], lines[4] + " # x", *lines[5:]])
    want = expected(tmp_path, final)
    assert [(line, column) for line, column, _ in want] == [(5, lines[5].index("relx"))]
    pasts = [1, 2, 100]
    end = len(lines[4])
    cases = [(text, [change((4, end + past), (4, end + past), " # x")]) for past in pasts]
    for past, found in zip(pasts, edited(tmp_path, cases), strict=True):
        assert found == want, f"{past} past the end"


# -- D3 and D5: the lifecycle ---------------------------------------------------------------
def test_requests_outside_the_session_are_refused_and_notifications_dropped(tmp_path: Path) -> None:
    uri = (tmp_path / "a.yaml").as_uri()
    item = {"uri": uri, "languageId": "yaml", "version": 1, "text": "cnnspec: 1\nname: t\n"}
    hover = {"textDocument": {"uri": uri}, "position": {"line": 0, "character": 0}}
    code, found = converse(
        tmp_path,
        {"id": 1, "method": "textDocument/hover", "params": hover},
        {"method": "textDocument/didOpen", "params": {"textDocument": item}},  # dropped
        *initialize(2),
        {"id": 3, "method": "initialize", "params": {"processId": None, "capabilities": {}}},
        {"id": 4, "method": "textDocument/documentSymbol", "params": {"textDocument": {"uri": uri}}},
        {"id": 5, "method": "shutdown"},
        {"id": 6, "method": "textDocument/hover", "params": hover},
        {"method": "textDocument/didOpen", "params": {"textDocument": item}},  # dropped
        {"id": 7, "method": "shutdown"},
        {"method": "exit"},
    )
    assert code == 0  # `exit` after `shutdown`
    assert response(found, 1)["error"]["code"] == types.ErrorCodes.ServerNotInitialized
    assert "capabilities" in response(found, 2)["result"]
    assert response(found, 3)["error"]["code"] == types.ErrorCodes.InvalidRequest
    assert response(found, 4)["result"] == []  # the document opened before was never opened
    assert response(found, 5)["result"] is None
    for request_id in (6, 7):
        error = response(found, request_id)["error"]
        assert error["code"] == types.ErrorCodes.InvalidRequest and "shut down" in error["message"]
    assert not [m for m in found if m.get("method") == "textDocument/publishDiagnostics"]


# -- D4: broken messages ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b'{"jsonrpc":"2.0","id":77,"method":"textDocument/hover","params":{"x":"\xff"}}', -32700),
        (b'{"jsonrpc":"2.0","id":78,"method":"textDocument/hover","params":', -32700),
        (b"[1, 2]", -32600),
    ],
    ids=["not-utf-8", "truncated-json", "json-array"],
)
def test_a_broken_message_is_answered_and_the_server_keeps_serving(
    tmp_path: Path, body: bytes, code: int
) -> None:
    done, found = converse(
        tmp_path, *initialize(1), body, {"id": 2, "method": "shutdown"}, {"method": "exit"}
    )
    error = response(found, None)["error"]
    assert error["code"] == code and error["message"]
    assert response(found, 2)["result"] is None  # still serving
    assert done == 0


def test_a_broken_message_is_logged_in_one_line_without_a_traceback(tmp_path: Path) -> None:
    """pygls logged the JSON error with its whole traceback on stderr (an editor's LSP log)."""
    script = [*initialize(1), b"{{{{{", {"id": 2, "method": "shutdown"}, {"method": "exit"}]
    done = run_lsp(b"".join(frame(m) for m in script), cwd=tmp_path, timeout=CONVERSATION_S)
    errors = done.stderr.decode("utf-8", "replace")
    assert done.returncode == 0 and "Traceback" not in errors
    lines = [line for line in errors.splitlines() if "Unable to handle message" in line]
    assert len(lines) == 1 and "JSONDecodeError" in lines[0]


def test_a_header_that_claims_a_huge_body_is_not_read_whole(tmp_path: Path) -> None:
    """`Content-Length: 99999999999` made the server allocate it: "out of memory", with a hint
    about images and batches. The body is read through and dropped, and said in one line."""
    done = run_lsp(b"Content-Length: 99999999999\r\n\r\n{}", cwd=tmp_path, timeout=CONVERSATION_S)
    errors = done.stderr.decode("utf-8", "replace")
    assert "out of memory" not in errors and "Traceback" not in errors
    assert "a message of 99999999999 bytes was skipped" in errors
    assert done.returncode == 1  # (the stream ended without shutdown)


def test_a_request_without_jsonrpc_version_is_an_invalid_request(tmp_path: Path) -> None:
    request = json.dumps({"id": 5, "method": "shutdown"}).encode()  # no "jsonrpc": "2.0"
    done, found = converse(
        tmp_path, *initialize(1), request, {"id": 6, "method": "shutdown"}, {"method": "exit"}
    )
    assert response(found, 5)["error"]["code"] == types.ErrorCodes.InvalidRequest
    assert response(found, 6)["result"] is None and done == 0


# -- the automatic name of a block call -------------------------------------------------------
LIBRARY = """\
cnnspec: 1
blocks:
  double:
    params: {filters: int}
    layers:
      - conv2d: {filters: "${filters}", kernel_size: 3, padding: same}
        id: c
    outputs: [c]
"""
SPEC = """\
cnnspec: 1
name: nav
use: [lib.yaml]
input: {shape: [8, 8, 3]}
model:
  - double: {filters: 8}
  - double: {filters: 8}
    id: d2
  - double: {filters: 8}
  - add:
    inputs: [double_1.c, d2.c, double_2.c, "double_1[0]"]
  - global_avg_pool2d
  - dense: 3
"""


@in_server
async def test_an_automatic_call_name_leads_into_its_block(client: LanguageClient, tmp_path: Path):
    (tmp_path / "lib.yaml").write_text(LIBRARY, "utf-8")
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC, "utf-8")
    assert validate_json(spec) == []
    assert await open_text(client, spec, SPEC) == []
    uri = spec.as_uri()
    library = (tmp_path / "lib.yaml").as_uri()
    doc = types.TextDocumentIdentifier(uri)
    c_id = position(LIBRARY, "c\n    outputs")
    call_1, call_2 = position(SPEC, "double", 0, 0), position(SPEC, "double", 0, 2)
    # on the automatic name: the call; on what follows it (`.c`, output `[0]`): the block's `c`
    for needle, offset, expected in (
        ("double_1.c", 1, (uri, call_1)),
        ("double_1.c", 9, (library, c_id)),
        ('"double_1[0]"', 3, (uri, call_1)),
        ('"double_1[0]"', 10, (library, c_id)),
    ):
        target = await answer(
            client.text_document_definition_async(types.DefinitionParams(doc, position(SPEC, needle, offset)))
        )
        assert isinstance(target, types.Location), (needle, target)
        assert (target.uri, target.range.start) == expected, needle
    target = await answer(
        client.text_document_definition_async(types.DefinitionParams(doc, position(SPEC, "double_2.c", 9)))
    )
    assert isinstance(target, types.Location) and target.uri == library  # the same id, another call

    found = await answer(
        client.text_document_references_async(
            types.ReferenceParams(
                text_document=doc,
                position=position(SPEC, "double_1.c", 2),
                context=types.ReferenceContext(include_declaration=True),
            )
        )
    )
    assert found is not None
    # the call (the automatic name's declaration) and both uses of its name, not double_2's:
    # each the name's segment, as a rename's range (inside the quotes of `"double_1[0]"`)
    assert sorted((loc.uri, loc.range.start, loc.range.end) for loc in found) == sorted(
        [
            (uri, call_1, position(SPEC, "double", 6)),
            (uri, position(SPEC, "double_1.c"), position(SPEC, "double_1.c", 8)),
            (uri, position(SPEC, '"double_1[0]"', 1), position(SPEC, '"double_1[0]"', 9)),
        ]
    )
    found = await answer(
        client.text_document_references_async(
            types.ReferenceParams(
                text_document=doc,
                position=position(SPEC, "double_2.c", 2),
                context=types.ReferenceContext(include_declaration=True),
            )
        )
    )
    assert found is not None
    assert sorted((loc.uri, loc.range.start) for loc in found) == [
        (uri, call_2),
        (uri, position(SPEC, "double_2.c")),
    ]
    close(client, spec)
