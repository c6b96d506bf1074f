"""A model as deep as a spec may be builds: Keras walks a model's graph
recursively (``map_graph``), about one Python frame per layer, and at Python's recursion limit
of 1,000 a chain of about 1,000 layers that `validate` accepted was "internal error
(RecursionError)" in `build` and `train`."""

from __future__ import annotations

import sys

import pytest

from cnnspec.api import build_model, compile_text
from cnnspec.spec.limits import MAX_NODES

pytestmark = pytest.mark.slow

DEEP = """\
cnnspec: 1
name: deep
input: {shape: [4, 4, 1]}
model:
  - repeat: {times: 1100, layers: [activation: relu]}
  - flatten
  - dense: {units: 2, activation: softmax}
"""


def test_a_chain_deeper_than_pythons_default_limit_builds():
    model = build_model(compile_text(DEEP, "deep.yaml"))
    assert len(model.layers) == 1103
    # room for the deepest chain a spec may hold (saving and loading walk the graph alike: the
    # limit is the process's, raised where Keras is imported), never lower than it was
    assert sys.getrecursionlimit() >= 2 * MAX_NODES


def test_the_generated_module_of_a_deep_chain_builds_without_cnnspec(tmp_path):
    """The generated code runs where cnnspec never raised the limit: a process of its own at
    Python's default 1,000 (the limit it had, printed first, is that). Its build is where the
    chain met it (saving and loading walk the graph alike, within the same raised limit)."""
    from cnnspec.api import generate_code
    from tests.conftest import run_python

    (tmp_path / "deep_model.py").write_text(generate_code(compile_text(DEEP, "deep.yaml")), encoding="utf-8")
    driver = tmp_path / "driver.py"
    driver.write_text(
        "import sys\n"
        "print(sys.getrecursionlimit())\n"
        "import deep_model\n"
        "print(len(deep_model.build_model().layers))\n",
        encoding="utf-8",
    )
    done = run_python(driver, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["1000", "1103"]
