"""Replaying identical block calls (:mod:`cnnspec.spec.memo`, issue 15): a replayed call gives
the graph, the structured tree and the generated code that walking it again gives, and calls
with errors are still walked (and located) every time."""

from __future__ import annotations

import pytest

from cnnspec.analysis.passes import compile_spec, compile_text
from cnnspec.api import generate_code
from cnnspec.errors import SpecError
from cnnspec.spec.memo import value_params
from cnnspec.spec.resolve import Resolver

#: Identical calls inside a repeat, a `trainable: false` call (a different key), a block whose
from cnnspec.spec.scope import COMBINATORS

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


def _compiled(
    monkeypatch: pytest.MonkeyPatch, replay: bool, *, values: list[int] | None = None, **source: str
):
    """Compile with or without replaying: the spec and how many calls were replayed (and into
    ``values``, how many of them with differing value parameters)."""
    monkeypatch.setattr(Resolver, "replay_calls", replay)
    calls: list[int] = []
    original = Resolver.replay

    def counting(self, *args):
        result = original(self, *args)
        calls.append(result is not None)
        if values is not None and result is not None and len(args) > 4 and args[4] is not None:
            values.append(1)
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


def _same_errors(monkeypatch, text: str) -> tuple:
    """The diagnostics of compiling ``text`` with replay, checked equal to walking's."""
    found = []
    for replay in (True, False):
        monkeypatch.setattr(Resolver, "replay_calls", replay)
        with pytest.raises(SpecError) as caught:
            compile_text(text)
        found.append(caught.value.diagnostics)
    assert found[0] == found[1]
    return found[0]


def test_replayed_calls_build_what_walking_builds(monkeypatch):
    walked, none = _compiled(monkeypatch, False, text=SPEC)
    replayed, count = _compiled(monkeypatch, True, text=SPEC)
    assert none == 0 and count >= 5  # the repeat's calls, the later pair and the nested units
    # Replays after a recording's first leave their tree copies for the first read of the tree
    # (nested ones too: a copy of a call fills the calls inside it first).
    assert replayed.ir.pending_tree is not None and walked.ir.pending_tree is None
    _same(walked, replayed)
    assert replayed.ir.pending_tree is None
    frozen = [n for n in replayed.ir.nodes if not n.trainable]
    assert frozen and all(n.name.startswith("pair_5_") for n in frozen)


@pytest.mark.parametrize(
    "name",
    [
        "resnet50",
        "xception",
        "mobilenet_v3_small",
        "inception_v3",
        "efficientnet_b1",
        "efficientnet_v2_b0",
        "densenet121",
    ],
)
def test_zoo_models_are_the_same_replayed(monkeypatch, name):
    walked, _ = _compiled(monkeypatch, False, path=f"zoo:{name}")
    values: list[int] = []
    replayed, count = _compiled(monkeypatch, True, path=f"zoo:{name}", values=values)
    assert count > 0
    if name.startswith(("efficientnet", "densenet")):  # each mbconv call has its own drop-connect
        assert len(values) > 3  # rate; each dense layer sees a wider input
    if name != "mobilenet_v3_small":  # its calls each replay a recording once: copied at once
        assert replayed.ir.pending_tree is not None
    _same(walked, replayed)


def test_a_backbone_with_replayed_calls_has_its_whole_tree(monkeypatch):
    """A backbone's cut walks the tree while resolving: the deferred copies are made first."""
    path = "examples/backbone/resnet50_features.yaml"
    walked, _ = _compiled(monkeypatch, False, path=path)
    replayed, count = _compiled(monkeypatch, True, path=path)
    assert count > 0
    _same(walked, replayed)


#: Calls that differ only in value parameters (read only in layer parameters and `when`):
#: a dropout rate, a rate that turns a `when` off, a width that changes a shape (walked), a
#: kernel size that keeps the shape, and a value that fails its check (walked and reported).
VALUES = """\
cnnspec: 1
name: values
input: {shape: [8, 8, 3]}
blocks:
  unit:
    params: {filters: int, rate: number, width: {type: int, default: 4}, kernel: {type: int, default: 3}}
    layers:
      - conv2d: {filters: "${width}", kernel_size: "${kernel}", padding: same}
      - conv2d: {filters: "${filters}", kernel_size: 1}
      - dropout: "${rate}"
        when: "${rate > 0}"
      - relu
model:
  - conv2d: {filters: 4, kernel_size: 1}
  - unit: {filters: 4, rate: 0.1}
  - unit: {filters: 4, rate: 0.2}
  - unit: {filters: 4, rate: 0.3, kernel: 5}
  - unit: {filters: 4, rate: 0.0}
  - unit: {filters: 4, rate: 0.4, width: 6}
  - unit: {filters: 4, rate: 0.5}
  - global_avg_pool2d
  - dense: 2
"""


#: The same block made to depend on its input's shape (a kernel size read from in_channels):
#: a call with another width is then walked, not replayed with its shapes computed again.
SHAPED = VALUES.replace("kernel_size: 1}", 'kernel_size: "${1 if in_channels > 0 else 2}"}')


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # rate 0.2, 0.3 with kernel 5 (same shape, other counts), width 6 (the block reads no
        # input shape: its shapes are computed again) and 0.5; rate 0.0 turns a `when` false
        (VALUES, 4),
        (SHAPED, 3),  # width 6 changes a shape the block could read: walked
    ],
)
def test_calls_that_differ_in_value_parameters_build_what_walking_builds(monkeypatch, text, expected):
    walked, _ = _compiled(monkeypatch, False, text=text)
    values: list[int] = []
    replayed, _ = _compiled(monkeypatch, True, text=text, values=values)
    assert len(values) == expected
    _same(walked, replayed)
    rates = [n.params["rate"] for n in replayed.ir.nodes if n.kind == "dropout"]
    assert rates == [0.1, 0.2, 0.3, 0.4, 0.5]


#: A block that reads no input shape, called on ever wider inputs (DenseNet's dense layer),
#: then on a grid too small for its pooling: that call is walked and its error located.
WIDER = """\
cnnspec: 1
name: wider
input: {shape: [8, 8, 3]}
blocks:
  grow:
    params: {k: {type: int, default: 2}}
    layers:
      - residual:
          body:
            - conv2d: {filters: "${k}", kernel_size: 3, padding: same}
            - batch_norm
          shortcut: identity
          merge: concat
  shrink:
    layers:
      - max_pool2d: {pool_size: 4}
model:
  - repeat: {times: 4, layers: [grow]}
  - shrink
  - grow: 3
  - shrink
"""


def test_a_block_that_reads_no_input_shape_is_replayed_on_other_shapes(monkeypatch):
    text = WIDER.replace("  - shrink\n", "", 1).replace("  - shrink\n", "")
    walked, _ = _compiled(monkeypatch, False, text=text)
    values: list[int] = []
    replayed, _ = _compiled(monkeypatch, True, text=text, values=values)
    assert len(values) == 4  # the 2nd–4th grow of the repeat, and grow: 3 (k is a value parameter)
    _same(walked, replayed)
    assert [n.shape[-1] for n in replayed.ir.nodes if n.kind == "concat"] == [5, 7, 9, 11, 14]


def test_a_shape_error_on_another_shape_is_reported_as_walking_reports_it(monkeypatch):
    (error,) = _same_errors(monkeypatch, WIDER)
    assert error.path.startswith("blocks.shrink.layers[0]")
    assert "model[3]" in str(error.notes[0])


def test_a_value_parameter_that_fails_is_reported_as_walking_reports_it(monkeypatch):
    broken = VALUES.replace("rate: 0.5}", "rate: 1.5}")
    (error,) = _same_errors(monkeypatch, broken)
    assert error.path == "blocks.unit.layers[2].dropout"
    assert "model[6]" in str(error.notes[0])


@pytest.mark.parametrize(
    ("layers", "params", "expected"),
    [
        ([{"dropout": "${p}", "when": "${p > 0}"}], {"p": "number"}, {"p"}),
        ([{"dense": 3, "id": "d${p}"}], {"p": "int"}, set()),
        ([{"dense": 3, "inputs": "${p}"}], {"p": "str"}, set()),
        ([{"unit": {"f": "${p}"}}], {"p": "int"}, set()),
        ([{"repeat": {"times": "${p}", "layers": ["relu"]}}], {"p": "int"}, set()),
        ([{"repeat": {"times": 2, "as": "p", "layers": [{"dense": "${p}"}]}}], {"p": "int"}, set()),
        (
            [{"residual": {"body": [{"dense": "${p}"}], "shortcut": "${'identity' if q else 'none'}"}}],
            {"p": "int", "q": "bool"},
            {"p"},
        ),
        ([{"dense": "${p}"}], {"p": "int", "q": {"type": "int", "default": "${p * 2}"}}, {"q"}),
        ([{"dense": "${in_channels}"}], {"in_channels": "int"}, set()),
        ("not a list", {"p": "int"}, set()),
    ],
)
def test_value_parameters_are_those_read_only_by_layer_parameters_and_when(layers, params, expected):
    block = {"params": params, "layers": layers}
    found = value_params(
        block, lambda kind: kind in ("dense", "dropout", "relu"), lambda kind: kind in COMBINATORS
    )
    assert found == expected


def test_an_error_in_a_repeated_call_is_located_at_each_call(monkeypatch):
    broken = SPEC.replace("kernel_size: 3", 'kernel_size: "${filters - 8}"')
    (error,) = _same_errors(monkeypatch, broken)
    assert error.path == "blocks.unit.layers[0].conv2d.kernel_size"
    # every call with filters 4 is one mistake, noted at each calling item
    assert len([note for note in error.notes if "called from" in str(note)]) > 3
