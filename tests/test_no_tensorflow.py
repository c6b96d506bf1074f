"""validate, inspect and schema never import TensorFlow or Keras (checked in a fresh process)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import ROOT, SPEC_FILES, SPECS_DIR, cold_commands

#: The front-end commands, each a command line of its own.
FRONT_END = {
    "validate": ["validate", *map(str, SPEC_FILES)],
    "validate-diff": ["validate", "--diff", *map(str, SPEC_FILES)],  # (checked with the reader)
    "validate-search": ["validate", str(SPECS_DIR.parent / "examples" / "search" / "digits_search.yaml")],
    "inspect": ["inspect", str(SPECS_DIR / "resnet.yaml")],
    "inspect-json": ["inspect", "--format", "json", str(SPECS_DIR / "basic_cnn.yaml")],
    "schema": ["schema"],
    "schema-kinds": ["schema", "--kinds"],
    "zoo": ["zoo"],
    "zoo-json": ["zoo", "--format", "json"],
    "validate-zoo": ["validate", "zoo:mobilenet_v2", "zoo:resnet50"],
    "inspect-backbone": [
        "inspect",
        str(SPECS_DIR.parent / "examples" / "backbone" / "resnet50_features.yaml"),
    ],
}
HEAVY = ("tensorflow", "keras", "matplotlib", "sklearn", "optuna")


@pytest.fixture(scope="module")
def front_end() -> dict[str, tuple[int, str, str, list[str]]]:
    """Every front-end command line, one after another in one fresh Python (conftest's
    cold_commands): its exit status, output and the heavy modules imported once it ended."""
    return dict(zip(FRONT_END, cold_commands(list(FRONT_END.values()), HEAVY), strict=True))


@pytest.mark.xdist_group("no_tensorflow_front_end")  # one worker runs the one probe
@pytest.mark.parametrize("command", FRONT_END)
def test_front_end_commands_do_not_import_tensorflow(front_end, command):
    code, _, stderr, heavy = front_end[command]
    assert code == 0, stderr
    assert heavy == [], f"{command} imported {heavy}"


MAIN_PROBE = """
import sys
from cnnspec.cli.app import COMMANDS, main
sys.argv = ["cnnspec", *sys.argv[1:]]
try:
    main()
except SystemExit as exit:
    code = exit.code
loaded = sorted(name for name, (module, _) in COMMANDS.items() if module in sys.modules)
print("COMMANDS=" + ",".join(loaded))
sys.exit(code or 0)
"""


def test_a_command_line_imports_only_the_command_it_names():
    """`cnnspec validate …` builds the application with `validate` alone (issue 15: a cold
    validate does not pay for the other commands' modules); `--help` still lists them all."""
    out = subprocess.run(
        [sys.executable, "-c", MAIN_PROBE, "validate", "zoo:mobilenet"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert "ok zoo:mobilenet" in out.stdout
    assert out.stdout.strip().splitlines()[-1] == "COMMANDS=validate"
    from cnnspec.cli.app import COMMANDS

    listed = subprocess.run(
        [sys.executable, "-c", MAIN_PROBE, "--help"], capture_output=True, text=True, timeout=60
    )
    assert listed.returncode == 0, listed.stderr
    assert all(name in listed.stdout for name in COMMANDS)
    assert listed.stdout.strip().splitlines()[-1] == "COMMANDS=" + ",".join(sorted(COMMANDS))


LSP_PROBE = """
import io, json, sys
spec = sys.argv[1]
uri = "file://" + spec
text = open(spec, encoding="utf-8").read()
line = next(i for i, l in enumerate(text.splitlines()) if "- conv2d:" in l)
messages = [
    {"id": 1, "method": "initialize", "params": {"capabilities": {}}},
    {"method": "initialized", "params": {}},
    {"method": "textDocument/didOpen",
     "params": {"textDocument": {"uri": uri, "languageId": "yaml", "version": 1, "text": text}}},
    {"id": 2, "method": "textDocument/hover",
     "params": {"textDocument": {"uri": uri}, "position": {"line": line, "character": 5}}},
    {"id": 3, "method": "textDocument/documentSymbol", "params": {"textDocument": {"uri": uri}}},
    {"id": 4, "method": "textDocument/completion",
     "params": {"textDocument": {"uri": uri}, "position": {"line": line, "character": 4}}},
    {"id": 5, "method": "shutdown"},
    {"method": "exit"},
]
data = b"".join(
    b"Content-Length: %d\\r\\n\\r\\n%s" % (len(body), body)
    for body in (json.dumps({"jsonrpc": "2.0", **m}).encode() for m in messages)
)
class Kept(io.BytesIO):
    def close(self):  # the server closes its output when it exits; keep what it wrote
        pass
sys.stdin = io.TextIOWrapper(io.BytesIO(data))
out = Kept()
sys.stdout = io.TextIOWrapper(out)
from cnnspec.cli.app import app
try:
    app(["lsp"])
except SystemExit:
    pass
answered = out.getvalue().count(b'"result"')
heavy = sorted(m for m in ("tensorflow", "keras", "matplotlib", "sklearn") if m in sys.modules)
sys.__stdout__.write(f"ANSWERED={answered}\\nHEAVY=" + ",".join(heavy) + "\\n")
"""


def test_language_server_does_not_import_tensorflow():
    """`cnnspec lsp` answers hover, outline and completion on ResNet-50 without TensorFlow."""
    pytest.importorskip("pygls", reason="the `lsp` extra is part of `dev`")
    spec = str((ROOT / "cnnspec" / "zoo" / "resnet.yaml").resolve())  # ResNet-50 in full
    out = subprocess.run([sys.executable, "-c", LSP_PROBE, spec], capture_output=True, text=True, timeout=120)
    lines = out.stdout.strip().splitlines()
    assert lines[-2:] == ["ANSWERED=5", "HEAVY="], out.stderr[-2000:]


def test_python_dash_m_cnnspec_is_the_console_script_without_tensorflow():
    """`python -m cnnspec` (a venv whose scripts are not on PATH) runs the CLI: it failed with
    "No module named cnnspec.__main__"; a validate through it imports no TensorFlow either."""
    # one process runs the module as `-m` does and says, once the command ended (its exit status
    # the process's own), what it imported and the command it recorded (a run's lock.json's)
    probe = (
        "import runpy, sys\n"
        "try:\n    runpy.run_module('cnnspec', run_name='__main__')\n"
        "finally:\n"
        "    print('HEAVY=' + ','.join(m for m in ('tensorflow', 'keras') if m in sys.modules))\n"
        "    print('ARGV0=' + sys.argv[0])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe, "validate", str(SPECS_DIR / "basic_cnn.yaml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert "ok " in out.stdout and "basic_cnn" in out.stdout
    assert out.stdout.strip().splitlines()[-2:] == ["HEAVY=", "ARGV0=cnnspec"], out.stderr
    run = subprocess.run(
        [sys.executable, "-m", "cnnspec", "validate", "zoo:nothing_here"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode != 0 and "Traceback" not in run.stderr + run.stdout
    assert "No module named" not in run.stderr
    shown = subprocess.run(
        [sys.executable, "-m", "cnnspec", "--help"], capture_output=True, text=True, timeout=60
    )
    assert "Usage: python -m cnnspec [OPTIONS]" in shown.stdout
