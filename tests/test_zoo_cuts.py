"""Cut points of the zoo: every id docs/zoo.md lists cuts its model as a backbone's `until:`."""

from __future__ import annotations

import pytest

from cnnspec.analysis.zoo import catalog, cut_points
from cnnspec.api import compile_spec, compile_text

FAMILIES = {entry.family: entry for entry in reversed(catalog())}  # the first variant of each


def backbone(model: str, until: str, side: int) -> str:
    return (
        f"cnnspec: 1\nname: m\ninput: {{shape: [{side}, {side}, 3]}}\nmodel:\n"
        f"  - backbone: {{spec: zoo:{model}, until: {until}}}\n    id: body\n  - flatten\n"
    )


@pytest.mark.parametrize(
    ("family", "until"),
    [(family, point) for family, entry in sorted(FAMILIES.items()) for point in cut_points(entry.name)],
)
def test_every_listed_cut_point_cuts_the_model(family, until):
    entry = FAMILIES[family]
    side = max(entry.min_side or 1, 96)
    compiled = compile_text(backbone(entry.name, until, side))
    cut = compiled.ir.nodes[-2]  # the backbone's last layer, before the flatten
    assert cut.name.startswith(f"body_{until}") or cut.name == f"body_{until}"


@pytest.mark.parametrize(
    ("model", "until", "shape"),
    [  # keras.applications' feature maps at a 96×96 input, by the layer each id ends with
        ("densenet121", "conv4", (6, 6, 1024)),  # conv4_block24_concat
        ("densenet121", "pool3", (6, 6, 256)),  # pool3_pool
        ("mobilenet", "block11", (6, 6, 512)),  # conv_pw_11_relu
        ("mobilenet", "block13", (3, 3, 1024)),  # conv_pw_13_relu
        ("mobilenet_v2", "stage5", (6, 6, 96)),  # block_12_add
        ("mobilenet_v2", "stage7", (3, 3, 320)),  # block_16_project_BN
        ("xception", "block4", (6, 6, 728)),  # add_2 (block4's residual)
        ("xception", "block13", (3, 3, 1024)),  # add_11
    ],
)
def test_the_new_cut_points_give_keras_feature_maps(model, until, shape):
    compiled = compile_text(backbone(model, until, 96))
    assert tuple(compiled.ir.nodes[-2].shape) == shape


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_every_cut_keeps_a_prefix_of_the_weighted_layers(family):
    """`weights: imagenet` loads a cut backbone by position: what it keeps must be the first
    weighted layers of the whole model, in order."""
    entry = FAMILIES[family]
    side = max(entry.min_side or 1, 96)
    full = [
        n.name
        for n in compile_spec(f"zoo:{entry.name}", [f"vars.input_shape=[{side}, {side}, 3]"]).ir.nodes
        if n.counts.params
    ]
    for point in cut_points(entry.name):
        kept = [
            n.name.removeprefix("body_")
            for n in compile_text(backbone(entry.name, point, side)).ir.nodes
            if n.counts.params
        ]
        assert kept == full[: len(kept)], point
