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
