"""The language server's message framing (:mod:`cnnspec.lsp.stdin`): a message's headers are
read as the base protocol defines them (HTTP's: a header name in any case, spacing around the
value, ``Content-Type`` before or after the length), and a message framed wrong costs that
message only. pygls took ``Content-Length: N`` exactly and found each message where the last
one's body ended, so one ``content-length: N`` header, or one wrong length, lost every message
after it: unanswered, unlogged, the server running on.

The reader is checked on its own over in-memory streams (what pygls is handed for each case),
and once end to end: a fresh server answers every well-framed request after each kind of
misframed one.
"""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import pytest

from cnnspec.lsp.stdin import StopAwareStdin

pytestmark = pytest.mark.xdist_group("lsp")

A, B, C = (json.dumps({"jsonrpc": "2.0", "id": n, "method": "shutdown"}).encode() for n in (1, 2, 3))
#: What stderr says of a message whose headers give no length, and of its body, which follows.
NO_LENGTH = "headers gave no valid Content-Length"
SKIPPED_BODY = f"{len(B)} bytes that were no message"


def framed(body: bytes, header: bytes = b"Content-Length: %d") -> bytes:
    """``body`` with the one header ``header`` (``%d``: the body's length) and the blank line."""
    return (header % len(body) if b"%d" in header else header) + b"\r\n\r\n" + body


def bodies(stream: bytes) -> list[bytes]:
    """The bodies pygls reads from ``stream``, as pygls reads them: a header line, which must be
    ``Content-Length: N`` exactly, the blank line, then N bytes."""
    reader = StopAwareStdin(io.BytesIO(stream))
    found = []
    while header := reader.readline():
        assert header.startswith(b"Content-Length: ") and header.endswith(b"\r\n"), header
        assert reader.readline() == b"\r\n"
        found.append(reader.read(int(header.split(b":")[1])))
    assert reader.read(10) == b""  # (nothing left)
    return found


@pytest.mark.parametrize(
    "second",
    [
        framed(B, b"content-length: %d"),
        framed(B, b"CONTENT-LENGTH:%d"),
        framed(B, b"Content-Length:   %d  "),
        b"Content-Type: application/vscode-jsonrpc; charset=utf-8\r\n" + framed(B),
        framed(B).replace(b"\r\n\r\n", b"\r\nContent-Type: application/vscode-jsonrpc\r\n\r\n"),
        b"\r\n\r\n" + framed(B),  # (blank lines between messages)
    ],
    ids=["lower-case", "upper-case-no-space", "spaces", "type-first", "type-after", "blank-lines"],
)
def test_a_length_header_is_read_as_http_reads_it(second: bytes, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="cnnspec.lsp"):
        assert bodies(framed(A) + second + framed(C)) == [A, B, C]
    assert caplog.messages == []


@pytest.mark.parametrize(
    ("second", "expected", "said"),
    [
        # no valid length: answered as a parse error, the body that follows skipped
        (framed(B, b"Content-Length: abc"), b"\x00", [NO_LENGTH, SKIPPED_BODY]),
        (framed(B, b"Content-Length: 0"), b"\x00", [NO_LENGTH, SKIPPED_BODY]),
        (framed(B, b"Content-Length: -5"), b"\x00", [NO_LENGTH, SKIPPED_BODY]),
        (framed(B, b"Content-Type: application/json"), b"\x00", [NO_LENGTH, SKIPPED_BODY]),
        # a length too short: pygls reads that much (its parse error), the rest is skipped
        (framed(B, b"Content-Length: 5"), B[:5], [f"{len(B) - 5} bytes that were no message"]),
        # bytes of no message between two messages: skipped
        (b"garbage\r\n", None, ["9 bytes that were no message"]),
        (b"garbage", None, ["7 bytes that were no message"]),
    ],
    ids=["not-a-number", "zero", "negative", "no-length", "too-short", "garbage-line", "garbage-glued"],
)
def test_a_misframed_message_costs_that_message_only(
    second: bytes, expected: bytes | None, said: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="cnnspec.lsp"):
        found = bodies(framed(A) + second + framed(C))
    assert found == [A, *([expected] if expected is not None else []), C]
    assert len(caplog.messages) == len(said)
    for words in said:
        assert any(words in message for message in caplog.messages), caplog.messages


def test_bytes_after_the_last_message_are_said_and_end_the_stream(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="cnnspec.lsp"):
        assert bodies(framed(A) + b"Content-Length: 12\r\n") == [A]
    assert caplog.messages == ["20 bytes at the end of the input were no message"]


def test_a_server_answers_every_request_after_misframed_ones(tmp_path: Path) -> None:
    """End to end: the helper-found case (a ``content-length`` header, then nothing answered)
    and the others, each followed by a well-framed request that must be answered."""
    from tests.test_lsp_audit4 import frame, initialize, response, run_lsp, unframe

    def request(request_id: int) -> bytes:
        return frame({"id": request_id, "method": "textDocument/documentSymbol", "params": DOC})

    DOC = {"textDocument": {"uri": (tmp_path / "a.yaml").as_uri()}}
    symbols = json.dumps({"jsonrpc": "2.0", "id": 2, "method": "textDocument/documentSymbol", "params": DOC})
    script = [
        *(frame(m) for m in initialize(1)),
        framed(symbols.encode(), b"content-length: %d"),
        request(3),
        framed(b'{"jsonrpc": "2.0", "id": 4, "method": "shutdown"}', b"Content-Length: abc"),
        request(5),
        framed(b'{"jsonrpc": "2.0", "id": 6, "method": "shutdown"}', b"Content-Length: 9"),
        request(7),
        frame({"id": 8, "method": "shutdown"}),
        frame({"method": "exit"}),
    ]
    done = run_lsp(b"".join(script), cwd=tmp_path, timeout=60)
    found = unframe(done.stdout)
    for request_id in (2, 3, 5, 7):
        assert "result" in response(found, request_id), found
    assert response(found, 8)["result"] is None
    # the two misframed shutdowns: parse errors (their ids unknown), never answered as requests
    assert [m["error"]["code"] for m in found if m.get("id") is None and "error" in m] == [-32700, -32700]
    assert all(m.get("id") not in (4, 6) for m in found)
    errors = done.stderr.decode("utf-8", "replace")
    assert "headers gave no valid Content-Length" in errors and "Traceback" not in errors
    assert done.returncode == 0
