"""Element-wise merges of inputs of different ranks, as Keras 3 takes them: its Merge layers
(``compute_output_shape`` → ``_compute_elemwise_op_output_shape``) line the batch-less shapes up
on their last axes and stretch axes of size 1, as NumPy does, and ``Merge.call`` expands the
shorter inputs right after the batch axis (``_reshape_required``), the same alignment; the batch
axis itself is never lined up with another (cnnspec's batch is always unknown, so Keras' check
of different batch sizes never applies). What Keras refuses ("Inputs have incompatible shapes")
is refused at the merge, with a hint. A residual whose body ends in a gate of the entry's
channels without spatial axes keeps the entry as its ``auto`` shortcut, as for a 1×1×C gate.

TensorFlow-free: shapes, the refusals and the generated code's own replay. Slow: the builder's
models (their values NumPy's broadcast), Keras' refusals and the generated modules.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from cnnspec.api import compile_text
from cnnspec.backends.python_emitter import generate_code
from cnnspec.errors import SpecError
from cnnspec.layers.registry import REGISTRY, ShapeError
from tests.test_any_rank import _built_matches_the_ir, built_as_inferred, compare_generated

# -- merges of different ranks --------------------------------------------------------------------
ELEMENTWISE = [*sorted(k.name for k in REGISTRY.values() if k.combines == "elementwise"), "subtract"]

#: input shapes → the merged shape (Keras' and NumPy's), each checked against Keras below
BROADCASTS: list[tuple[list[tuple[int, ...]], tuple[int, ...]]] = [
    ([(8, 8, 3), (3,)], (8, 8, 3)),  # one value per channel
    ([(3,), (8, 8, 3)], (8, 8, 3)),  # the shorter first
    ([(8, 8, 3), (1,)], (8, 8, 3)),  # one value for everything
    ([(8, 8, 1), (3,)], (8, 8, 3)),  # both stretched
    ([(4,), (4, 4)], (4, 4)),
    ([(8, 8, 3), (8, 3)], (8, 8, 3)),  # one row for every row
    ([(8, 8, 3), (1, 3)], (8, 8, 3)),
    ([(5, 1), (3,)], (5, 3)),
    ([(2, 3, 2, 2, 4), (4,)], (2, 3, 2, 2, 4)),  # rank 5
    ([(2, 3, 2, 2, 4), (2, 1)], (2, 3, 2, 2, 4)),
    ([(3,), (8, 1, 1), (2, 1)], (8, 2, 3)),  # three ranks (not for subtract)
    ([(8, 8, 3), (3,), (8, 1, 3)], (8, 8, 3)),
]
#: input shapes → the error's message (after "expected inputs whose shapes broadcast (…);") and hint
REFUSED: list[tuple[list[tuple[int, ...]], str, str]] = [
    (
        [(8, 8, 3), (8,)],
        "received [8, 8, 3] and [8], which differ in channels (3 vs 8)",
        "the 1-D input lines up with the last axis of the 3-D one (size 3): give it that size, or 1",
    ),
    (
        [(8,), (8, 8, 3)],
        "received [8] and [8, 8, 3], which differ in channels (8 vs 3)",
        "the 1-D input lines up with the last axis of the 3-D one (size 3): give it that size, or 1",
    ),
    (
        [(8, 8, 3), (4, 3)],
        "received [8, 8, 3] and [4, 3], which differ in width (8 vs 4)",
        "the 2-D input lines up with the last 2 axes of the 3-D one ([8, 3]): give each axis that size, or 1",
    ),
    (
        [(2, 3, 2, 2, 4), (3, 2, 3)],
        "received [2, 3, 2, 2, 4] and [3, 2, 3], which differ in axis 3 (2 vs 3) and in axis 5 (4 vs 3)",
        "the 3-D input lines up with the last 3 axes of the 5-D one ([2, 2, 4]): give each axis that "
        "size, or 1",
    ),
]
MESSAGE_HEAD = (
    "expected inputs whose shapes broadcast (Keras lines up their last axes and stretches an axis "
    "of size 1); "
)


def merge_spec(kind: str, shapes: list[tuple[int, ...]]) -> str:
    """A spec whose ``merged`` layer is ``kind`` of tensors of ``shapes``, each a dense layer of
    the flattened 4×4×2 input reshaped (``t0``, ``t1``, …), then flattened."""
    lines = [
        "cnnspec: 1",
        "name: ranks",
        "input: {shape: [4, 4, 2]}",
        "model:",
        "  - flatten: {}",
        "    id: flat",
    ]
    for index, shape in enumerate(shapes):
        lines += [f"  - dense: {math.prod(shape)}", "    inputs: flat", f"  - reshape: {list(shape)}"]
        lines.append(f"    id: t{index}")
    refs = ", ".join(f"t{index}" for index in range(len(shapes)))
    lines += [f"  - {kind}: {{}}", f"    inputs: [{refs}]", "    id: merged", "  - flatten"]
    return "\n".join(lines) + "\n"


MERGE_CASES = [
    pytest.param(kind, shapes, out, id=f"{kind}-{'+'.join('x'.join(map(str, s)) for s in shapes)}")
    for kind in ELEMENTWISE
    for shapes, out in BROADCASTS
    if len(shapes) == 2 or REGISTRY[kind].max_inputs is None
]


def _node(compiled: Any, name: str) -> Any:
    return next(n for n in compiled.ir.nodes if n.name == name)


@pytest.mark.parametrize(("kind", "shapes", "out"), MERGE_CASES)
def test_a_merge_of_different_ranks_has_keras_broadcast_shape(kind, shapes, out):
    compiled = compile_text(merge_spec(kind, shapes))
    merged = _node(compiled, "merged")
    assert (merged.kind, merged.shape, merged.counts.params) == (kind, out, 0)
    assert compiled.ir.nodes[-1].shape == (math.prod(out),)


@pytest.mark.parametrize("kind", ELEMENTWISE)
@pytest.mark.parametrize(
    ("shapes", "message", "hint"),
    REFUSED,
    ids=[str(len(r[0][1])) + "-" + str(i) for i, r in enumerate(REFUSED)],
)
def test_a_merge_that_does_not_broadcast_is_refused_at_the_merge_with_a_hint(kind, shapes, message, hint):
    with pytest.raises(SpecError) as caught:
        compile_text(merge_spec(kind, shapes))
    (error,) = caught.value.errors
    line = 7 + 4 * len(shapes)  # the merge item's line
    assert error.path == f"model[{1 + 2 * len(shapes)}].{kind}"
    assert error.loc is not None and error.loc.line == line
    assert (error.message, error.hint) == (MESSAGE_HEAD + message, hint)


SAME_RANK_HEAD = "expected inputs whose shapes broadcast (on each axis, equal sizes or a size of 1); "


def test_inputs_of_one_rank_are_refused_with_the_rule_keras_applies():
    """Size-1 axes broadcast at one rank too, so the refusal states that rule (once: "expected
    inputs of the same shape"), names the axes that differ and hints at both fixes."""
    with pytest.raises(SpecError) as caught:
        compile_text(merge_spec("add", [(8, 8, 3), (8, 8, 4)]))
    (error,) = caught.value.errors
    assert (
        error.message
        == SAME_RANK_HEAD + "received [8, 8, 3] and [8, 8, 4], which differ in channels (3 vs 4)"
    )
    assert error.hint is not None and "1×1 convolution" in error.hint
    assert error.hint.endswith("or give one input size 1 on those axes, which broadcasts it over the other")
    # what the rule allows: a size of 1 against any size, at one rank
    assert _node(compile_text(merge_spec("add", [(8, 8, 3), (8, 1, 3)])), "merged").shape == (8, 8, 3)


#: three inputs → the refusal's message, naming two of the inputs as written: the first pair, in
#: Keras' order, that does not broadcast (once: the shape merged so far and the third)
THREE: list[tuple[str, list[tuple[int, ...]], str]] = [
    (
        "max",
        [(8, 1, 3), (8, 3), (2, 3)],
        SAME_RANK_HEAD + "received [8, 3] from `t1` (input 2) and [2, 3] from `t2` (input 3), "
        "which differ in steps (8 vs 2)",
    ),
    (
        "add",
        [(8, 8, 3), (3,), (8, 4, 3)],
        SAME_RANK_HEAD + "received [8, 8, 3] from `t0` (input 1) and [8, 4, 3] from `t2` (input 3), "
        "which differ in width (8 vs 4)",
    ),
    (
        "average",
        [(3,), (8, 8, 1), (8, 4)],
        MESSAGE_HEAD + "received [3] from `t0` (input 1) and [8, 4] from `t2` (input 3), which "
        "differ in channels (3 vs 4)",
    ),
]


@pytest.mark.parametrize(("kind", "shapes", "message"), THREE, ids=[t[0] for t in THREE])
def test_three_inputs_refused_name_the_two_written_inputs(kind, shapes, message):
    with pytest.raises(SpecError) as caught:
        compile_text(merge_spec(kind, shapes))
    (error,) = caught.value.errors
    assert error.message == message and error.path == f"model[7].{kind}"


def test_a_parallel_of_three_branches_names_the_branches_layers():
    """A combinator's merge has no written ``inputs``: the layers its branches end in (the
    names ``inspect`` shows) and their positions."""
    with pytest.raises(SpecError) as caught:
        compile_text(
            "cnnspec: 1\nname: t\ninput: {shape: [8, 8, 4]}\nmodel:\n"
            "  - parallel:\n      merge: add\n      branches:\n"
            "        - [conv2d: {filters: 4, kernel_size: 1}]\n"
            "        - [conv2d: {filters: 1, kernel_size: 1}]\n"
            "        - [conv2d: {filters: 8, kernel_size: 1}]\n"
        )
    (error,) = caught.value.errors
    assert error.message == (
        SAME_RANK_HEAD + "received [8, 8, 4] from `conv2d_1` (input 1) and [8, 8, 8] from "
        "`conv2d_3` (input 3), which differ in channels (4 vs 8)"
    )


def test_the_shape_rule_alone_names_inputs_by_position():
    with pytest.raises(ShapeError) as caught:
        REGISTRY["min"].output_shape({}, [(4, 4), (1,), (4, 5)])
    assert caught.value.message == (
        SAME_RANK_HEAD + "received [4, 4] from input 1 and [4, 5] from input 3, which differ in "
        "channels (4 vs 5)"
    )


# -- a residual whose body ends in a gate without its spatial axes ------------------------------
GATED = """\
cnnspec: 1
name: gated
input: {shape: [8, 8, 3]}
model:
  - conv2d: {filters: 4, kernel_size: 3, padding: same}
  - residual:
      body:
        - global_avg_pool2d
        - dense: {units: 4, activation: sigmoid}
      merge: multiply
  - global_avg_pool2d
  - dense: {units: 2, activation: softmax}
"""


def test_a_residual_gate_of_the_channels_alone_is_broadcast_not_projected():
    """Squeeze-and-excitation pooled without keepdims: the ``auto`` shortcut stays the entry
    (as for a 1×1×C gate), which the multiply broadcasts the [4] gate over. Before, it had to be
    projected, which a 1-D body refused ("expected image tensors for a projection shortcut")."""
    compiled = compile_text(GATED)
    assert [n.kind for n in compiled.ir.nodes] == [
        "conv2d",
        "global_avg_pool2d",
        "dense",
        "multiply",
        "global_avg_pool2d",
        "dense",
    ]
    multiply = compiled.ir.nodes[3]
    entry, gate = compiled.ir.nodes[0].name, compiled.ir.nodes[2].name
    assert multiply.shape == (8, 8, 4) and sorted(multiply.inputs) == sorted([entry, gate])
    assert compiled.ir.totals.params == (27 * 4 + 4) + (4 * 4 + 4) + (4 * 2 + 2)


def test_a_gate_of_other_channels_is_still_refused_at_the_shortcut():
    with pytest.raises(SpecError) as caught:
        compile_text(GATED.replace("units: 4, activation: sigmoid", "units: 5, activation: sigmoid"))
    (error,) = caught.value.errors
    assert error.path == "model[1].residual.shortcut"
    assert error.message == "expected image tensors for a projection shortcut; received [8, 8, 4] → [5]"


# -- the generated code --------------------------------------------------------------------------
#: A squeeze-and-excitation block called at two resolutions, so that its function reads the
#: shapes at run time (POOL: the pooling's parameters, the gate C or 1×1×C; SECOND: the other
#: call's gate channels, a projection when they are not the entry's).
SE_TWICE = """\
cnnspec: 1
name: se_twice
input: {shape: [16, 16, 3]}
blocks:
  se:
    params: {c: int}
    layers:
      - residual:
          merge: multiply
          body:
            - global_avg_pool2d: POOL
            - dense: {units: "${c}", activation: sigmoid}
model:
  - conv2d: {filters: 8, kernel_size: 3, padding: same}
  - se: {c: 8}
  - max_pool2d: 2
  - se: {c: SECOND}
  - flatten
  - dense: {units: 3, activation: softmax}
"""
#: (the generated test of a shortcut the resolver kept for a gate: a projection there crashed
#: codegen's replay, or projected the gate it should have broadcast)
GATE_TEST = "if needs_projection(shortcut, x):"
#: spec → the Keras class of a layer the generated module writes
CODEGEN = {
    "gate-vector-twice": (SE_TWICE.replace("POOL", "{}").replace("SECOND", "8"), GATE_TEST),
    "gate-keepdims-twice": (SE_TWICE.replace("POOL", "{keepdims: true}").replace("SECOND", "8"), GATE_TEST),
    "gate-or-projection": (SE_TWICE.replace("POOL", "{keepdims: true}").replace("SECOND", "4"), GATE_TEST),
    "broadcast-add": (merge_spec("add", [(8, 8, 3), (3,)]), 'layers.Add(name="merged")([t0, t1])'),
    "broadcast-three": (
        merge_spec("average", [(3,), (8, 1, 1), (2, 1)]),
        'layers.Average(name="merged")([t0, t1, t2])',
    ),
    "broadcast-subtract": (
        merge_spec("subtract", [(2, 3, 2, 2, 4), (2, 1)]),
        'layers.Subtract(name="merged")([t0, t1])',
    ),
    "gated": (GATED, "layers.Multiply("),
}


@pytest.mark.parametrize("case", sorted(CODEGEN))
def test_generated_code_replays_the_broadcast_merges(case):
    """``generate_code`` replays the module against the IR (every layer's shape) before it
    returns."""
    text, written = CODEGEN[case]
    code = generate_code(compile_text(text), format_code=False).text
    assert written in code, code


# -- TensorFlow: the builder's models, Keras' refusals, the generated modules --------------------
@pytest.mark.slow
def test_the_gated_residual_builds_and_runs_as_inferred():
    _built_matches_the_ir(GATED)


def merges_spec(kinds: list[str], shapes: list[tuple[int, ...]]) -> str:
    """:func:`merge_spec` with a merge of each of ``kinds`` (``merged_<kind>``) over the same
    tensors, and their sum (all have the broadcast shape) as the one output: a model per shape
    set, not per case (a build each, ~70 ms)."""
    body, _, _ = merge_spec(kinds[0], shapes).partition(f"  - {kinds[0]}: {{}}\n")
    refs = ", ".join(f"t{index}" for index in range(len(shapes)))
    for kind in kinds:
        body += f"  - {kind}: {{}}\n    inputs: [{refs}]\n    id: merged_{kind}\n"
    merged = ", ".join(f"merged_{kind}" for kind in kinds)
    return body + f"  - add: {{}}\n    inputs: [{merged}]\n  - flatten\n"


@pytest.mark.slow
def test_every_broadcast_merge_builds_and_runs_as_inferred():
    """The builder's model of every case (each shape set's merges in one), and each merge's
    values NumPy's broadcast of its inputs."""
    import keras
    import numpy as np

    ops = {
        "add": np.add,
        "subtract": np.subtract,
        "multiply": np.multiply,
        "max": np.maximum,
        "min": np.minimum,
    }
    cases: dict[tuple[tuple[int, ...], ...], list[str]] = {}
    for param in MERGE_CASES:
        kind, shapes, _ = param.values
        cases.setdefault(tuple(shapes), []).append(kind)
    assert sum(len(kinds) for kinds in cases.values()) == len(MERGE_CASES)
    for shapes, kinds in cases.items():
        compiled = compile_text(merges_spec(kinds, list(shapes)))
        model = built_as_inferred(compiled)
        names = [*(f"t{i}" for i in range(len(shapes))), *(f"merged_{kind}" for kind in kinds)]
        # one eager call gives the merges' inputs, their outputs and the model's output
        probe = keras.Model(model.inputs, [*(model.get_layer(name).output for name in names), model.output])
        x = np.random.default_rng(1).normal(size=(2, 4, 4, 2)).astype("float32")
        *found, out = (np.asarray(part) for part in probe(x, training=False))
        parts, merges = found[: len(shapes)], found[len(shapes) :]
        assert out.shape == (2, *compiled.ir.nodes[-1].shape), shapes  # it runs, as inferred
        for kind, merged in zip(kinds, merges, strict=True):
            expected = []
            for sample in range(2):
                values = [p[sample] for p in parts]
                if kind == "average":
                    expected.append(sum(values[1:], values[0]) / len(values))
                else:
                    result = values[0]
                    for value in values[1:]:
                        result = ops[kind](result, value)
                    expected.append(result)
            np.testing.assert_allclose(
                merged, np.stack(expected), rtol=1e-5, atol=1e-6, err_msg=f"{kind} {shapes}"
            )
        keras.backend.clear_session(free_memory=False)


@pytest.mark.slow
def test_keras_refuses_the_merges_refused():
    import keras

    for kind in ELEMENTWISE:
        for shapes, _, _ in REFUSED:
            layer = getattr(keras.layers, REGISTRY[kind].keras_class)()
            with pytest.raises(ValueError, match="Inputs have incompatible shapes"):
                layer([keras.Input(s) for s in shapes])
    for kind, shapes, _ in THREE:
        layer = getattr(keras.layers, REGISTRY[kind].keras_class)()
        with pytest.raises(ValueError, match="Inputs have incompatible shapes"):
            layer([keras.Input(s) for s in shapes])


@pytest.mark.slow
def test_the_generated_modules_build_the_builders_models(tmp_path):
    compare_generated(tmp_path, {case: text for case, (text, _) in CODEGEN.items()})


@pytest.mark.slow
def test_a_saved_model_with_rank_5_layers_and_broadcast_merges_imports_output_for_output(tmp_path):
    """`cnnspec import` of a Keras model that multiplies a map by a [C] gate, runs a rank-5
    tensor through dense and the normalisations and adds the gate to it: before, the spec it
    wrote was refused ("expected inputs of the same rank"); now it builds the same model."""
    import keras
    import numpy as np

    from cnnspec.api import build_model
    from cnnspec.importer.output import run_import
    from tests.test_import import assert_same_model

    layers = keras.layers
    inputs = keras.Input((8, 8, 2), name="image")
    stem = layers.Conv2D(4, 3, padding="same", name="stem")(inputs)
    gate = layers.Dense(4, activation="sigmoid", name="gate")(
        layers.GlobalAveragePooling2D(name="pool")(stem)
    )
    scaled = layers.Multiply(name="scaled")([stem, gate])
    five = layers.Dense(4, name="d5")(layers.Reshape((2, 4, 2, 4, 4), name="five")(scaled))
    five = layers.LayerNormalization(name="ln5")(layers.BatchNormalization(name="bn5")(five))
    plus = layers.Add(name="plus")([five, gate])
    head = layers.Dense(3, name="head")(layers.Flatten(name="flat")(plus))
    source = keras.Model(inputs, head, name="ranks_import")
    path = tmp_path / "ranks.keras"
    source.save(path)
    out = tmp_path / "ranks.yaml"
    imported = run_import(str(path), out, weights=True)
    text = out.read_text(encoding="utf-8")
    assert "inputs: [stem, gate]" in text and "inputs: [ln5, gate]" in text, text
    model = build_model(compile_text(text.replace("weights: ranks.weights.h5\n", "")))
    model.load_weights(tmp_path / "ranks.weights.h5")
    assert_same_model(source, model, imported.names)
    x = np.random.default_rng(0).normal(size=(4, 8, 8, 2)).astype("float32")
    # each model called once in inference mode (predict() would first trace a graph of each)
    np.testing.assert_allclose(model(x, training=False), source(x, training=False), rtol=1e-5, atol=1e-6)
    assert model.count_params() == source.count_params()
