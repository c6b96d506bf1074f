"""Kinds of any rank, as Keras 3 takes them: its Dense acts on the last axis of an input of any
rank, and its normalisations (batch, layer, group, unit, feature-wise) on axes counted from
either end, so a rank-5 tensor (from a reshape) is as valid as an image. The kinds that need an
image or steps (convolutions, pooling, padding, resizing, augmentation) still refuse other
ranks, with their messages; checked against Keras over the registry.

TensorFlow-free: shapes, parameters and MACs, the refusals (located) and the generated code's own
replay. Slow: the builder's model and the generated module against Keras.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cnnspec.api import compile_text
from cnnspec.backends.python_emitter import generate_code
from cnnspec.errors import SpecError
from cnnspec.layers.registry import REGISTRY, ShapeError
from tests.conftest import FIXTURES, load_module
from tests.test_registry import CONFIGS

#: A rank-5 and a rank-6 tensor, made by reshapes, through every kind that now takes them. (No
#: softmax before the flatten: TensorFlow's oneDNN CPU kernel refuses a softmax of more than 5
#: axes with the batch when the model runs, "Input dims must be <= 5"; Keras makes it.)
RANK5 = """\
cnnspec: 1
name: rank5
input: {shape: [4, 6, 8]}
model:
  - reshape: [2, 2, 3, 4, 4]
  - dense: 8
  - batch_norm
  - layer_norm
  - group_norm: 4
  - unit_normalization: [2, -1]
  - normalization: {axis: 3}
  - prelu: [1, 2]
  - activation: relu
  - dropout: {rate: 0.5, noise_shape: [null, 1, 1, 1, 1, 8]}
  - gaussian_noise: 0.1
  - reshape: [2, 2, 3, 2, 2, 8]
  - dense: {units: 2, use_bias: false}
  - layer_norm
  - flatten
  - dense: {units: 3, activation: softmax}
"""
FIVE, SIX = (2, 2, 3, 4, 8), (2, 2, 3, 2, 2, 2)
#: node → (kind, shape, trainable, non-trainable, MACs); Dense's MACs: inputs × units at each of
#: the positions of the other axes (2·2·3·4 = 48, then 2·2·3·2·2 = 48).
RANK5_NODES = [
    ("reshape", (2, 2, 3, 4, 4), 0, 0, 0),
    ("dense", FIVE, 4 * 8 + 8, 0, 4 * 8 * 48),
    ("batch_norm", FIVE, 16, 16, 0),
    ("layer_norm", FIVE, 16, 0, 0),
    ("group_norm", FIVE, 16, 0, 0),
    ("unit_normalization", FIVE, 0, 0, 0),
    ("normalization", FIVE, 0, 2 * 3 + 1, 0),  # mean and variance of axis 3 (size 3), a count
    ("prelu", FIVE, 3 * 4 * 8, 0, 0),  # one slope per position, shared along axes 1 and 2
    ("activation", FIVE, 0, 0, 0),
    ("dropout", FIVE, 0, 0, 0),
    ("gaussian_noise", FIVE, 0, 0, 0),
    ("reshape", (2, 2, 3, 2, 2, 8), 0, 0, 0),
    ("dense", SIX, 8 * 2, 0, 8 * 2 * 48),
    ("layer_norm", SIX, 4, 0, 0),
    ("flatten", (96,), 0, 0, 0),
    ("dense", (3,), 96 * 3 + 3, 0, 96 * 3),
]


def test_dense_and_the_normalisations_take_rank_5_and_6_with_their_counts():
    compiled = compile_text(RANK5)
    got = [
        (n.kind, n.shape, n.counts.trainable, n.counts.non_trainable, n.counts.macs)
        for n in compiled.ir.nodes
    ]
    assert got == RANK5_NODES
    assert compiled.ir.totals.params == sum(t + n for _, _, t, n, _ in RANK5_NODES)


def _rank5(shape: tuple[int, ...]) -> tuple[int, ...]:
    """``shape`` (a kind's test configuration) with leading axes of 2 up to rank 5."""
    return (2,) * (5 - len(shape)) + tuple(shape)


DECLARED = sorted(k.name for k in REGISTRY.values() if k.ranks is not None)


def test_only_the_kinds_that_need_an_image_or_steps_declare_ranks():
    """Dense and the normalisations no longer do; the 1-D and 2-D kinds and the preprocessing
    layers that Keras runs on images only still do (checked against Keras below)."""
    assert not {"dense", "batch_norm", "layer_norm", "group_norm", "unit_normalization"} & set(DECLARED)
    assert "normalization" not in DECLARED and "conv2d" in DECLARED and "max_pool2d" in DECLARED
    assert all(REGISTRY[k].ranks in ((2,), (3,)) for k in DECLARED)


@pytest.mark.parametrize("kind", DECLARED)
def test_the_kinds_that_declare_ranks_still_refuse_rank_5(kind):
    entry = REGISTRY[kind]
    shapes, params = CONFIGS[kind][0]
    shape = _rank5(shapes[0])
    with pytest.raises(ShapeError) as caught:
        entry.output_shape({**entry.defaults(), **params}, [shape])
    (rank,) = entry.ranks or ()
    assert caught.value.message == (
        f"expected a {rank}-D input (without the batch axis); received shape {list(shape)}"
    )


def test_a_convolution_after_a_rank_5_reshape_is_refused_where_it_is_written():
    text = RANK5.split("  - dense: 8\n")[0] + "  - conv2d: {filters: 2, kernel_size: 1}\n"
    with pytest.raises(SpecError) as caught:
        compile_text(text)
    (error,) = caught.value.errors
    assert error.path == "model[1].conv2d" and error.loc is not None and error.loc.line == 6
    assert error.message == "expected a 3-D input (without the batch axis); received shape [2, 2, 3, 4, 4]"


def test_generated_code_replays_the_rank_5_model():
    """``generate_code`` replays the module against the IR (every layer's shape) before it
    returns."""
    code = generate_code(compile_text(RANK5), format_code=False).text
    assert "layers.GroupNormalization(groups=4" in code and "layers.Dense(units=2" in code, code


# -- TensorFlow: the builder's model, Keras' own refusals, the generated module --------------------
def built_as_inferred(compiled: Any) -> Any:
    """The builder's model of ``compiled``: every layer has the IR's output shape and parameter
    count (the caller runs it)."""
    from cnnspec.api import build_model

    model = build_model(compiled)
    for node in compiled.ir.nodes:
        layer = model.get_layer(node.name)
        assert tuple(layer.output.shape[1:]) == node.shape, node.name
        assert layer.count_params() == node.counts.params, node.name
    assert model.count_params() == compiled.ir.totals.params
    return model


def _built_matches_the_ir(text: str) -> Any:
    """Build ``text``'s model (:func:`built_as_inferred`); it runs on a batch of two (its output
    of the IR's shape)."""
    import numpy as np

    compiled = compile_text(text)
    model = built_as_inferred(compiled)
    x = np.random.default_rng(0).normal(size=(2, *compiled.ir.input_shape)).astype("float32")
    # called eagerly: predict() traces a function per model, seconds each across the many merges
    assert tuple(model(x, training=False).shape) == (2, *compiled.ir.nodes[-1].shape)
    return model


@pytest.mark.slow
def test_the_rank_5_model_builds_and_runs_as_inferred():
    _built_matches_the_ir(RANK5)


@pytest.mark.slow
def test_keras_refuses_the_kinds_that_declare_ranks_at_rank_5():
    """Every kind that declares ranks is one Keras refuses at rank 5 when the model is made,
    or (the image preprocessing layers, which Keras makes on any rank) when it runs."""
    import keras
    import numpy as np

    from cnnspec.backends.keras_builder import make_layer
    from cnnspec.ir import Node
    from cnnspec.layers.registry import Counts

    for kind in DECLARED:
        entry = REGISTRY[kind]
        shapes, params = CONFIGS[kind][0]
        shape = _rank5(shapes[0])
        layer = make_layer(Node("layer", kind, {**entry.defaults(), **params}, ("in",), (), Counts()))
        with pytest.raises((ValueError, IndexError)):  # (Conv2DTranspose: an IndexError)
            if entry.preprocessing:
                layer(np.ones((2, *shape), "float32"), training=True)
            else:
                layer(keras.Input(shape))


@pytest.mark.slow
@pytest.mark.parametrize(
    "kind", sorted(k for k in CONFIGS if REGISTRY[k].arity == "one" and REGISTRY[k].ranks is None)
)
def test_the_kinds_without_ranks_match_keras_at_rank_5(kind):
    """The one-input kinds that declare no ranks, on their first test configuration at rank 5:
    refused by both (a parameter written for the configuration's rank: permute's dims,
    reshape's target) or made by both with one shape and parameter count."""
    import keras

    from cnnspec.backends.keras_builder import make_layer
    from cnnspec.ir import Node
    from cnnspec.layers.registry import Counts

    entry = REGISTRY[kind]
    shapes, params = CONFIGS[kind][0]
    full, shape = {**entry.defaults(), **params}, _rank5(shapes[0])
    try:
        ours: tuple[int, ...] | None = entry.output_shape(full, [shape])
    except ShapeError:
        ours = None
    layer = make_layer(Node("layer", kind, full, ("in",), (), Counts()))
    try:
        theirs: tuple[int, ...] | None = tuple(layer(keras.Input(shape)).shape[1:])
    except ValueError:
        theirs = None
    assert ours == theirs
    if ours is not None:
        assert layer.count_params() == entry.counts(full, [shape], ours).params


def compare_generated(tmp_path: Path, cases: dict[str, str]) -> None:
    """Per spec of ``cases`` (name → text): the generated module builds the builder's layers
    (names, classes, configurations, weights) and, with its weights, the same outputs."""
    compare = load_module(FIXTURES / "codegen" / "compare_models.py", "compare_models").compare
    for case, text in sorted(cases.items()):
        spec_path = tmp_path / f"{case}.yaml"
        spec_path.write_text(text, encoding="utf-8")
        module_path = tmp_path / f"{case.replace('-', '_')}_model.py"
        module_path.write_text(generate_code(compile_text(text)).text, encoding="utf-8")
        result = compare(str(spec_path), load_module(module_path, f"generated_{module_path.stem}"), True)
        assert result["ok"], (case, result["problems"])


@pytest.mark.slow
def test_the_generated_module_builds_the_builders_rank_5_model(tmp_path):
    compare_generated(tmp_path, {"rank5": RANK5})
