"""Parametrized over specs/*.yaml: each validates, infers, and (slow) builds a Keras model whose
every layer shape and parameter count equals the static analysis."""

from __future__ import annotations

import contextlib
import math

import pytest

from cnnspec.api import build_model, compile_spec
from tests.conftest import SPEC_FILES, layers_by_name

EXPECTED_PARAMS = {"basic_cnn": 74_058, "resnet": 687_242, "mnist_cnn": 93_322}
#: Specs with more parameters are built without filling their weights (time).
FILLED_BELOW_PARAMS = 5_000_000


@pytest.mark.parametrize("path", SPEC_FILES, ids=lambda p: p.stem)
def test_spec_has_modeline_and_origin_comment(path):
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "# yaml-language-server: $schema=../schemas/cnnspec.schema.json"
    assert lines[1].startswith("# ") and len(lines[1]) > 10, "second line: where the architecture comes from"


@pytest.mark.parametrize("path", SPEC_FILES, ids=lambda p: p.stem)
def test_spec_validates_and_infers(path):
    compiled = compile_spec(path)
    assert compiled.warnings == []
    assert compiled.ir.nodes
    assert all(node.shape is not None for node in compiled.ir.nodes)
    if path.stem in EXPECTED_PARAMS:
        assert compiled.ir.totals.params == EXPECTED_PARAMS[path.stem]


@pytest.mark.slow
@pytest.mark.parametrize("path", SPEC_FILES, ids=lambda p: p.stem)
def test_built_model_equals_static_analysis(path):
    import keras

    compiled = compile_spec(path)
    # Nothing below reads a weight's values. Above a few million parameters the model is built
    # in a stateless scope that does not initialize its variables: Keras gives each weight its
    # shape and dtype only (as tests/test_zoo_parity.py does). Filling VGG16's 138 M weights
    # from their initializers, and reading them back, was most of this file's time (9 s of 17).
    # The smaller specs are built as `cnnspec build` builds them, weights filled.
    big = compiled.ir.totals.params >= FILLED_BELOW_PARAMS
    with keras.StatelessScope(initialize_variables=False) if big else contextlib.nullcontext():
        model = build_model(compiled)
    summary = compiled.summary()
    assert model.count_params() == summary["total_params"]
    trainable = sum(math.prod(w.shape) for w in model.trainable_weights)
    assert trainable == summary["trainable_params"]
    assert [list(o.shape) for o in model.outputs] == [summary["output_shape"]] or len(model.outputs) > 1
    layers = layers_by_name(model)  # (model.get_layer lists the layers anew on every call)
    for row in summary["layers"]:
        layer = layers[row["name"]]
        assert list(layer.output.shape) == row["output_shape"], row["name"]
        assert layer.count_params() == row["params"], row["name"]
    # the augmentation section builds too, and keeps the shape
    from cnnspec.api import build_augmentation

    augmentation = build_augmentation(compiled)
    if augmentation is not None:
        import numpy as np

        batch = np.random.default_rng(0).random((2, *compiled.ir.input_shape), dtype="float32")
        assert augmentation(batch, training=True).shape == batch.shape
