"""validate, inspect and schema never import TensorFlow or Keras (checked in a fresh process)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import SPEC_FILES, SPECS_DIR

PROBE = """
import sys
from cnnspec.cli.app import app
try:
    app(sys.argv[1:])
except SystemExit as exit:
    code = exit.code
heavy = sorted(m for m in ("tensorflow", "keras", "matplotlib", "sklearn") if m in sys.modules)
print("HEAVY=" + ",".join(heavy))
sys.exit(code or 0)
"""


@pytest.mark.parametrize(
    "args",
    [
        ["validate", *map(str, SPEC_FILES)],
        ["inspect", str(SPECS_DIR / "resnet.yaml")],
        ["inspect", "--format", "json", str(SPECS_DIR / "basic_cnn.yaml")],
        ["schema"],
        ["schema", "--kinds"],
        ["zoo"],
        ["zoo", "--format", "json"],
        ["validate", "zoo:mobilenet_v2", "zoo:resnet50"],
    ],
    ids=["validate", "inspect", "inspect-json", "schema", "schema-kinds", "zoo", "zoo-json", "validate-zoo"],
)
def test_front_end_commands_do_not_import_tensorflow(args):
    out = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "HEAVY="
