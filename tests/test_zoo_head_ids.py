"""The zoo keeps the names keras.applications gives its heads as layer ids: ``avg_pool`` and
``predictions`` with the top, ``max_pool`` (and ``avg_pool``) for ``pooling`` without it, where
keras.applications names them (keras/src/applications/*.py). ResNet's, DenseNet's and Xception's
heads were the scoped ``pooled_head_1_*``, so a backbone cut ``until: avg_pool``, as the README
offers it, was refused."""

from __future__ import annotations

import pytest

from cnnspec.api import compile_spec

#: zoo model → (named with the top, named with pooling avg, named with pooling max): the heads'
#: names keras.applications gives (its other head layers get automatic names)
NAMED = {
    "zoo:resnet50": ({"avg_pool", "predictions"}, {"avg_pool"}, {"max_pool"}),
    "zoo:resnet50_v2": ({"avg_pool", "predictions"}, {"avg_pool"}, {"max_pool"}),
    "zoo:densenet121": ({"avg_pool", "predictions"}, {"avg_pool"}, {"max_pool"}),
    "zoo:xception": ({"avg_pool", "predictions"}, set(), set()),
    "zoo:mobilenet_v2": ({"predictions"}, set(), set()),
    "zoo:inception_v3": ({"avg_pool", "predictions"}, set(), set()),
}
HEAD_NAMES = {"avg_pool", "max_pool", "predictions"}


def _head_names(name: str, *options: str) -> set[str]:
    compiled = compile_spec(name, overrides=list(options))
    return {node.name for node in compiled.ir.nodes} & HEAD_NAMES


@pytest.mark.parametrize("name", sorted(NAMED))
def test_the_heads_are_named_as_keras_applications_names_them(name):
    top, avg, most = NAMED[name]
    assert _head_names(name) == top
    assert _head_names(name, "vars.include_top=false", "vars.pooling=avg") == avg
    assert _head_names(name, "vars.include_top=false", "vars.pooling=max") == most


def test_a_backbone_cut_at_avg_pool(tmp_path):
    spec = tmp_path / "cut.yaml"
    spec.write_text(
        "cnnspec: 1\nname: cut\ninput: {shape: [64, 64, 3]}\nmodel:\n"
        "  - backbone: {spec: zoo:resnet50, until: avg_pool}\n"
        "  - dense: {units: 5, activation: softmax}\n",
        encoding="utf-8",
    )
    compiled = compile_spec(spec)
    names = [node.name for node in compiled.ir.nodes]
    assert names[-2:] == ["backbone_1_avg_pool", "dense_1"]  # (the cut's last layer, then the head)
    assert compiled.ir.output_shapes == [(5,)]
