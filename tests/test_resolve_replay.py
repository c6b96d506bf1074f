"""Replaying identical block calls (:mod:`cnnspec.spec.memo`, issue 15): a replayed call gives
the graph, the structured tree and the generated code that walking it again gives, and calls
with errors are still walked (and located) every time."""

from __future__ import annotations

import pytest

from cnnspec.analysis.passes import compile_spec, compile_text
from cnnspec.api import generate_code
from cnnspec.errors import SpecError
from cnnspec.spec.resolve import Resolver

#: Identical calls inside a repeat, a `trainable: false` call (a different key), a block whose
#: last item is skipped by `when`, nested calls, named inputs, outputs and automatic names.
SPEC = """\
cnnspec: 1
name: replay
input: {shape: [16, 16, 3]}
blocks:
  unit:
    params: {filters: int, extra: {type: bool, default: false}}
    layers:
      - conv2d: {filters: "${filters}", kernel_size: 3, padding: same}
      - batch_norm
      - relu
      - dense: 4
        when: "${extra}"
  pair:
    params: {filters: int}
    layers:
      - unit: {filters: "${filters}"}
        id: a
      - residual:
          body: [{unit: {filters: "${filters}"}}]
      - unit: {filters: "${filters}"}
  merge2:
    inputs: [x, z]
    outputs: [out, x]
    layers:
      - add:
        id: out
        inputs: [x, z]
model:
  - pair: {filters: 4}
  - repeat:
      times: 3
      as: i
      layers:
        - pair: {filters: 4}
  - pair: {filters: 4}
    trainable: false
  - pair: {filters: 8}
    id: wide
  - pair: {filters: 8}
  - merge2:
    inputs: {x: wide, z: input}
    when: false
  - unit: {filters: 8}
    id: u
  - merge2:
    inputs: {x: wide.a, z: u}
  - global_avg_pool2d
  - dense: 2
"""


def _compiled(monkeypatch: pytest.MonkeyPatch, replay: bool, **source: str):
    monkeypatch.setattr(Resolver, "replay_calls", replay)
    calls: list[int] = []
    original = Resolver.replay

    def counting(self, *args):
        result = original(self, *args)
        calls.append(result is not None)
        return result

    monkeypatch.setattr(Resolver, "replay", counting)
    if "text" in source:
        compiled = compile_text(source["text"])
    else:
        compiled = compile_spec(source["path"])
    return compiled, sum(calls)


def _same(walked, replayed) -> None:
    assert replayed.ir.nodes == walked.ir.nodes
    assert replayed.ir.outputs == walked.ir.outputs
    assert replayed.ir.tree == walked.ir.tree
    assert generate_code(replayed) == generate_code(walked)


def test_replayed_calls_build_what_walking_builds(monkeypatch):
    walked, none = _compiled(monkeypatch, False, text=SPEC)
    replayed, count = _compiled(monkeypatch, True, text=SPEC)
    assert none == 0 and count >= 5  # the repeat's calls, the later pair and the nested units
    _same(walked, replayed)
    frozen = [n for n in replayed.ir.nodes if not n.trainable]
    assert frozen and all(n.name.startswith("pair_5_") for n in frozen)


@pytest.mark.parametrize("name", ["resnet50", "xception", "mobilenet_v3_small", "inception_v3"])
def test_zoo_models_are_the_same_replayed(monkeypatch, name):
    walked, _ = _compiled(monkeypatch, False, path=f"zoo:{name}")
    replayed, count = _compiled(monkeypatch, True, path=f"zoo:{name}")
    assert count > 0
    _same(walked, replayed)


def test_an_error_in_a_repeated_call_is_located_at_each_call(monkeypatch):
    broken = SPEC.replace("kernel_size: 3", 'kernel_size: "${filters - 8}"')
    monkeypatch.setattr(Resolver, "replay_calls", True)
    with pytest.raises(SpecError) as replayed:
        compile_text(broken)
    monkeypatch.setattr(Resolver, "replay_calls", False)
    with pytest.raises(SpecError) as walked:
        compile_text(broken)
    assert replayed.value.diagnostics == walked.value.diagnostics
    (error,) = replayed.value.diagnostics
    assert error.path == "blocks.unit.layers[0].conv2d.kernel_size"
    # every call with filters 4 is one mistake, noted at each calling item
    assert len([note for note in error.notes if "called from" in str(note)]) > 3
