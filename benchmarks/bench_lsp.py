"""Latency of `cnnspec lsp` as an editor sees it (issue 25): raw JSON-RPC over the server's stdio.

* cold start: a fresh ``cnnspec lsp`` process until it answers ``initialize``, and until the
  diagnostics of cnnspec/zoo/resnet.yaml (ResNet-50) (opened right after) arrive;
* diagnostics after a one-character edit of cnnspec/zoo/resnet.yaml (ResNet-50) (an incremental change, as
  editors send them; ``classes: 1000`` ↔ ``1001``), warm server, edits spaced beyond the debounce
  period: from sending the change to receiving ``publishDiagnostics`` for that version;
* a burst of edits 20 ms apart (typing): how many checks the debounce runs, and how long after
  the last edit its diagnostics arrive;
* hover on a layer (the stem ``conv2d``): request to response;
* a long search: a spec of 993 layers whose ``search:`` compiles up to 236 trial specs, opened,
  then a hover sent at once: when the hover is answered, when the first diagnostics arrive, and
  when the search's finding (a misspelt optimizer among its choices) does. Its candidates are
  compiled beside the server (before, every request waited for them: 6.7 s here).

Targets (issue 25): diagnostics < 50 ms and hover < 20 ms at the median, warm. Run by hand:

    .venv/bin/python benchmarks/bench_lsp.py [--repeats 30] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from queue import Empty, Queue
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "cnnspec" / "zoo" / "resnet.yaml"  # ResNet-50, the default variant
SERVER = [sys.executable, "-c", "from cnnspec.cli.app import main; main()", "lsp"]
TARGET_DIAGNOSTICS_MS = 50.0
TARGET_HOVER_MS = 20.0
TIMEOUT_S = 30.0


class Client:
    """A minimal JSON-RPC client over a server process's stdin/stdout (a reader thread)."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.process = subprocess.Popen(
            SERVER, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=ROOT
        )
        self.inbox: Queue[tuple[float, dict[str, Any]]] = Queue()
        self.next_id = 0
        self.consumed: list[dict[str, Any]] = []  # every message wait() has taken, in order
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        stream = self.process.stdout
        assert stream is not None
        while True:
            length = 0
            while (line := stream.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            if not length:
                return
            message = json.loads(stream.read(length))
            self.inbox.put((time.perf_counter(), message))

    def send(self, method: str, params: Any, *, request: bool = False) -> int | None:
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "params": params}
        if request:
            self.next_id += 1
            message["id"] = self.next_id
        body = json.dumps(message).encode()
        assert self.process.stdin is not None
        self.process.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.process.stdin.flush()
        return message.get("id")

    def wait(self, match: Any) -> tuple[float, dict[str, Any]]:
        """The first message for which ``match(message)`` holds: (arrival time, message)."""
        deadline = time.perf_counter() + TIMEOUT_S
        while True:
            try:
                arrived, message = self.inbox.get(timeout=max(deadline - time.perf_counter(), 0.001))
            except Empty:
                raise TimeoutError("the server did not answer") from None
            self.consumed.append(message)
            if match(message):
                return arrived, message

    def request(self, method: str, params: Any) -> tuple[float, dict[str, Any]]:
        request_id = self.send(method, params, request=True)
        return self.wait(lambda m: m.get("id") == request_id and "method" not in m)

    def diagnostics(self, uri: str, version: int) -> tuple[float, dict[str, Any]]:
        return self.wait(
            lambda m: (
                m.get("method") == "textDocument/publishDiagnostics"
                and m["params"]["uri"] == uri
                and m["params"].get("version") == version
            )
        )

    def close(self) -> None:
        try:
            self.request("shutdown", None)
            self.send("exit", None)
            self.process.wait(timeout=10)
        except (TimeoutError, OSError, subprocess.TimeoutExpired):
            self.process.kill()


def stats(samples: list[float]) -> dict[str, Any]:
    return {
        "median": statistics.median(samples),
        "min": min(samples),
        "max": max(samples),
        "n": len(samples),
        "samples": samples,
    }


def open_spec(client: Client, text: str) -> str:
    uri = SPEC.as_uri()
    item = {"uri": uri, "languageId": "yaml", "version": 1, "text": text}
    client.send("textDocument/didOpen", {"textDocument": item})
    return uri


def initialize(client: Client) -> float:
    arrived, _ = client.request("initialize", {"processId": os.getpid(), "capabilities": {}})
    client.send("initialized", {})
    return arrived


def cold_start(repeats: int) -> dict[str, Any]:
    text = SPEC.read_text("utf-8")
    to_initialize, to_diagnostics, cpu = [], [], []
    for _ in range(repeats):
        used = resource.getrusage(resource.RUSAGE_CHILDREN)
        client = Client()
        arrived = initialize(client)
        to_initialize.append((arrived - client.started) * 1000)
        uri = open_spec(client, text)
        arrived, _ = client.diagnostics(uri, 1)
        to_diagnostics.append((arrived - client.started) * 1000)
        client.close()
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append((after.ru_utime + after.ru_stime - used.ru_utime - used.ru_stime) * 1000)
    return {
        "initialize_ms": stats(to_initialize),
        "first_diagnostics_ms": stats(to_diagnostics),
        "process_cpu_ms": stats(cpu),  # the whole server process: start, check, shutdown
    }


def warm(repeats: int) -> dict[str, Any]:
    text = SPEC.read_text("utf-8")
    lines = text.split("\n")
    row = next(i for i, line in enumerate(lines) if "classes: 1000" in line)
    column = lines[row].index("classes: 1000") + len("classes: 100")
    stem = next(i for i, line in enumerate(lines) if "- conv2d:" in line)
    on_kind = lines[stem].index("conv2d") + 1  # (on the kind, whatever the item's indent)
    client = Client()
    initialize(client)
    uri = open_spec(client, text)
    client.diagnostics(uri, 1)
    version = 1

    def edit(digit: str) -> float:
        nonlocal version
        version += 1
        change = {
            "range": {
                "start": {"line": row, "character": column},
                "end": {"line": row, "character": column + 1},
            },
            "text": digit,
        }
        sent = time.perf_counter()
        client.send(
            "textDocument/didChange",
            {"textDocument": {"uri": uri, "version": version}, "contentChanges": [change]},
        )
        arrived, message = client.diagnostics(uri, version)
        assert message["params"]["diagnostics"] == [], message
        return (arrived - sent) * 1000

    diagnostics = []
    for i in range(repeats):
        time.sleep(0.3)  # past the debounce period: an edit after a pause
        diagnostics.append(edit("1" if i % 2 == 0 else "0"))

    # A burst: 10 edits 20 ms apart; the debounce checks the first at once, the rest together.
    time.sleep(0.3)
    first = version + 1
    before = len(client.consumed)
    last_sent = 0.0
    for i in range(10):
        version += 1
        change = {
            "range": {
                "start": {"line": row, "character": column},
                "end": {"line": row, "character": column + 1},
            },
            "text": "1" if i % 2 == 0 else "0",
        }
        last_sent = time.perf_counter()
        client.send(
            "textDocument/didChange",
            {"textDocument": {"uri": uri, "version": version}, "contentChanges": [change]},
        )
        time.sleep(0.02)
    arrived, _ = client.diagnostics(uri, version)
    burst_checks = sum(
        1
        for m in client.consumed[before:]
        if m.get("method") == "textDocument/publishDiagnostics" and (m["params"].get("version") or 0) >= first
    )

    hovers = []
    for _ in range(repeats):
        sent = time.perf_counter()
        arrived_hover, message = client.request(
            "textDocument/hover",
            {"textDocument": {"uri": uri}, "position": {"line": stem, "character": on_kind}},
        )
        assert "conv2d" in message["result"]["contents"]["value"], message
        hovers.append((arrived_hover - sent) * 1000)
    client.close()
    return {
        "diagnostics_ms": stats(diagnostics),
        "hover_ms": stats(hovers),
        "burst": {
            "edits": 10,
            "interval_ms": 20,
            "checks": burst_checks,
            "last_edit_to_diagnostics_ms": (arrived - last_sent) * 1000,
        },
    }


#: 330 times a convolution, batch norm and ReLU (993 layers with the head); a search of 57 widths,
#: a dropout rate, three batch sizes and two optimizers, one misspelt: at most 236 trial specs to
#: compile (``planned_compiles``: each value alone, and the model's two dimensions combined).
LONG_SEARCH = """\
cnnspec: 1
name: long_search
vars: {width: 8}
input: {shape: [8, 8, 1]}
model:
  - repeat:
      times: 330
      layers:
        - conv2d: {filters: "${width}", kernel_size: 3, padding: same}
        - batch_norm
        - relu
  - global_avg_pool2d
  - dropout: {rate: 0.1}
    id: head_dropout
  - dense: {units: 10, activation: softmax}
data: {source: digits}
training:
  epochs: 2
  batch_size: 32
  optimizer: {adam: {learning_rate: 0.001}}
search:
  trials: 4
  space:
    vars.width: {int: [8, 64]}
    training.optimizer: {choice: [adam, sgdd]}
    head_dropout.rate: {float: [0.0, 0.5]}
    training.batch_size: {choice: [16, 32, 64]}
"""


def long_search() -> dict[str, Any]:
    import tempfile

    with tempfile.TemporaryDirectory(prefix="bench-lsp-") as folder:
        spec = Path(folder) / "long_search.yaml"
        spec.write_text(LONG_SEARCH, "utf-8")
        uri = spec.as_uri()
        client = Client()
        initialize(client)
        opened = time.perf_counter()
        item = {"uri": uri, "languageId": "yaml", "version": 1, "text": LONG_SEARCH}
        client.send("textDocument/didOpen", {"textDocument": item})
        row = next(i for i, text in enumerate(LONG_SEARCH.split("\n")) if "- conv2d:" in text)
        position = {"line": row, "character": 12}
        hover_id = client.send(
            "textDocument/hover", {"textDocument": {"uri": uri}, "position": position}, request=True
        )
        hovered = first = found = 0.0
        deadline = opened + 10 * TIMEOUT_S  # (the old server answered only after the search)
        while not (hovered and found) and time.perf_counter() < deadline:
            try:
                arrived, message = client.inbox.get(timeout=1.0)
            except Empty:
                continue
            if message.get("id") == hover_id:
                assert "conv2d" in message["result"]["contents"]["value"], message
                hovered = arrived
            elif message.get("method") == "textDocument/publishDiagnostics":
                first = first or arrived
                if any("sgdd" in d["message"] for d in message["params"]["diagnostics"]):
                    found = arrived
        client.close()
    if not (hovered and found):
        raise TimeoutError("the server did not answer the hover or publish the search's finding")
    return {
        "hover_ms": (hovered - opened) * 1000,
        "first_diagnostics_ms": (first - opened) * 1000,
        "search_finding_s": found - opened,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=30, help="edits and hovers (warm)")
    parser.add_argument("--cold", type=int, default=5, help="cold server starts")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)
    results = {"cold": cold_start(args.cold), "warm": warm(args.repeats), "long_search": long_search()}
    cold, hot = results["cold"], results["warm"]

    def show(s: dict[str, Any]) -> str:
        return f"{s['median']:.1f} ({s['min']:.1f}–{s['max']:.1f}) ms"

    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"cold start to initialize:          {show(cold['initialize_ms'])}")
    print(f"cold start to resnet50 diagnostics: {show(cold['first_diagnostics_ms'])}")
    print(f"cold server process, CPU time:      {show(cold['process_cpu_ms'])}")
    met = "met" if hot["diagnostics_ms"]["median"] < TARGET_DIAGNOSTICS_MS else "NOT met"
    target = f"< {TARGET_DIAGNOSTICS_MS:.0f} ms: {met}"
    print(f"diagnostics after a 1-char edit:   {show(hot['diagnostics_ms'])}  ({target})")
    met = "met" if hot["hover_ms"]["median"] < TARGET_HOVER_MS else "NOT met"
    print(f"hover on a layer:                  {show(hot['hover_ms'])}  (< {TARGET_HOVER_MS:.0f} ms: {met})")
    burst = hot["burst"]
    print(
        f"burst of {burst['edits']} edits {burst['interval_ms']} ms apart: {burst['checks']} checks, "
        f"the last one's diagnostics {burst['last_edit_to_diagnostics_ms']:.1f} ms after the last edit"
    )
    long = results["long_search"]
    print(
        f"long search (993 layers, up to 236 trial specs): hover {long['hover_ms']:.0f} ms after the open, "
        f"first diagnostics {long['first_diagnostics_ms']:.0f} ms, the search's finding "
        f"{long['search_finding_s']:.1f} s"
    )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2), "utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
