"""A run folder's model.keras against the run's spec (cnnspec/reporting/model_match.py), read
from the archive's config.json alone: no TensorFlow, no weights."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from cnnspec.api import compile_spec
from cnnspec.layers import REGISTRY
from cnnspec.reporting.model_match import layer_mismatch, model_mismatches

SPEC = """\
cnnspec: 1
name: d
input: {shape: [8, 8, 1]}
model:
  - conv2d: {filters: 4, kernel_size: 3, padding: same, activation: swish}
  - flatten
  - dense: {units: 10, activation: softmax}
"""


def archive(path: Path, layers: list[dict], outputs: object) -> Path:
    """A .keras archive holding only a functional model's config.json."""
    config = {"class_name": "Functional", "config": {"layers": layers, "output_layers": outputs}}
    with zipfile.ZipFile(path, "w") as target:
        target.writestr("config.json", json.dumps(config))
    return path


def layer(kind: str, name: str, **config: object) -> dict:
    return {"class_name": kind, "name": name, "config": {"name": name, **config}}


def test_the_model_of_the_spec_matches_and_another_is_told_apart(tmp_path):
    spec = tmp_path / "d.yaml"
    spec.write_text(SPEC, encoding="utf-8")
    ir = compile_spec(spec).ir
    assert [node.name for node in ir.nodes] == ["conv2d_1", "flatten_1", "dense_1"]
    own = [
        layer("InputLayer", "input", batch_shape=[None, 8, 8, 1]),
        # Keras saves swish as silu, and the kernel size as a list
        layer("Conv2D", "conv2d_1", filters=4, kernel_size=[3, 3], padding="same", activation="silu"),
        layer("Flatten", "flatten_1"),
        layer("Dense", "dense_1", units=10, activation="softmax"),
    ]
    assert model_mismatches(archive(tmp_path / "own.keras", own, ["dense_1", 0, 0]), ir) == []
    logits = [*own[:3], layer("Dense", "dense_1", units=10, activation="linear")]
    assert model_mismatches(archive(tmp_path / "logits.keras", logits, [["dense_1", 0, 0]]), ir) == [
        "its output layer dense_1 has activation linear, the spec's softmax"
    ]
    other = [layer("InputLayer", "input", batch_shape=[None, 16, 16, 3]), layer("Conv2D", "mask", filters=4)]
    assert model_mismatches(archive(tmp_path / "other.keras", other, ["mask", 0, 0]), ir) == [
        "its input is 16×16×3, the spec's 8×8×1",
        "its output layer mask (the spec's dense_1) is a Conv2D, the spec's a Dense",
    ]
    # a run of an earlier cnnspec that named its layers otherwise is its spec's all the same
    renamed = [own[0], {**own[1], "name": "stem_conv2d_1"}, own[2], {**own[3], "name": "predictions"}]
    assert model_mismatches(archive(tmp_path / "renamed.keras", renamed, ["predictions", 0, 0]), ir) == []
    two = archive(
        tmp_path / "two.keras", [*own, layer("Dense", "extra", units=1)], [["dense_1", 0, 0], ["extra", 0, 0]]
    )
    assert model_mismatches(two, ir) == ["its outputs are dense_1, extra, the spec's dense_1"]


def test_a_layer_of_another_class_is_named():
    saved = {"class_name": "Conv2DTranspose", "config": {"filters": 4}}
    assert layer_mismatch(REGISTRY["conv2d"], {"filters": 4}, saved) == (
        "is a Conv2DTranspose, the spec's a Conv2D"
    )
