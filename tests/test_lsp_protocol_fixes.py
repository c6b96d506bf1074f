"""The language server at the edges of the protocol and its pipes: a reader of its output that
goes away (exit 141, quietly), and messages that leave out their ``params`` (JSON-RPC allows it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("pytest_lsp", reason="the `lsp` extra is part of `dev`")

from tests.conftest import run_lsp, start_python
from tests.script_runner import LSP_PRELOAD

pytestmark = pytest.mark.xdist_group("lsp")

SPEC = "cnnspec: 1\nname: a\ninput: {shape: [8, 8, 3]}\nmodel:\n  - flatten\n  - dense: {units: 2}\n"


def _frame(message: dict[str, Any] | bytes) -> bytes:
    body = message if isinstance(message, bytes) else json.dumps({"jsonrpc": "2.0", **message}).encode()
    return b"Content-Length: %d\r\n\r\n%s" % (len(body), body)


def _messages(stdout: bytes) -> list[dict[str, Any]]:
    """The messages the server wrote, in order."""
    found = []
    rest = stdout
    while rest:
        head, _, rest = rest.partition(b"\r\n\r\n")
        length = next(
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length")
        )
        found.append(json.loads(rest[:length]))
        rest = rest[length:]
    return found


INITIALIZE = {
    "id": 1,
    "method": "initialize",
    "params": {"capabilities": {"workspace": {"didChangeWatchedFiles": {"dynamicRegistration": True}}}},
}
END = [{"id": 99, "method": "shutdown"}, {"method": "exit"}]


def test_a_server_whose_output_is_no_longer_read_exits_141_quietly(tmp_path: Path) -> None:
    # the editor reads the answer to initialize, then closes its end of the server's output and
    # goes on writing: every later write met a broken pipe, a traceback each, and the server ran on
    stdin_read, stdin_write = os.pipe()
    stdout_read, stdout_write = os.pipe()
    command = [str(Path(sys.executable).with_name("cnnspec")), "lsp", "--debounce-ms", "30"]
    try:
        server = start_python(
            *command, stdin=stdin_read, stdout=stdout_write, stderr=subprocess.PIPE, preload=LSP_PRELOAD
        )
    finally:
        os.close(stdin_read)
        os.close(stdout_write)
    try:
        os.write(stdin_write, _frame(INITIALIZE))
        with os.fdopen(stdout_read, "rb") as output:
            length = 0
            while (line := output.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            assert json.loads(output.read(length))["id"] == 1
        uri = (tmp_path / "a.yaml").as_uri()
        opened = {"textDocument": {"uri": uri, "languageId": "yaml", "version": 1, "text": SPEC}}
        hover = {"textDocument": {"uri": uri}, "position": {"line": 5, "character": 6}}
        os.write(stdin_write, _frame({"method": "initialized", "params": {}}))
        os.write(stdin_write, _frame({"method": "textDocument/didOpen", "params": opened}))
        for request_id in range(2, 6):
            time.sleep(0.05)
            try:
                os.write(
                    stdin_write, _frame({"id": request_id, "method": "textDocument/hover", "params": hover})
                )
            except BrokenPipeError:  # the server ended already: what it should do
                break
        _, errors = server.communicate(timeout=30)
        assert server.returncode == 141
        assert errors == ""
    finally:
        os.close(stdin_write)
        if server.poll() is None:
            server.kill()
            server.wait()


def test_initialized_without_params_registers_the_watched_files() -> None:
    done = run_lsp(
        b"".join(_frame(m) for m in [INITIALIZE, b'{"jsonrpc":"2.0","method":"initialized"}', *END]),
        timeout=20,
    )
    sent = _messages(done.stdout)
    assert [m.get("method") for m in sent if "method" in m] == ["client/registerCapability"]
    registration = sent[1]["params"]["registrations"][0]
    assert registration["method"] == "workspace/didChangeWatchedFiles"
    assert done.stderr == b""
    assert done.returncode == 0


def test_an_unknown_request_without_params_is_method_not_found() -> None:
    unknown = b'{"jsonrpc":"2.0","id":2,"method":"custom/unknown"}'
    done = run_lsp(b"".join(_frame(m) for m in [INITIALIZE, unknown, *END]), timeout=20)
    sent = _messages(done.stdout)
    assert [m for m in sent if m.get("id") == 2] == [
        {"jsonrpc": "2.0", "id": 2, "error": {"code": -32601, "message": "Method Not Found: custom/unknown"}}
    ]
    assert not any(m.get("method") == "window/showMessage" for m in sent)
    assert b"Traceback" not in done.stderr and b"TypeError" not in done.stderr
    assert done.returncode == 0


def test_a_request_whose_params_need_fields_is_still_invalid_params() -> None:
    hover = b'{"jsonrpc":"2.0","id":2,"method":"textDocument/hover"}'
    done = run_lsp(b"".join(_frame(m) for m in [INITIALIZE, hover, *END]), timeout=20)
    answer = next(m for m in _messages(done.stdout) if m.get("id") == 2)
    assert answer["error"]["code"] == -32602
    assert done.returncode == 0
