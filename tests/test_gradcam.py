"""Grad-CAM (cnnspec/reporting/gradcam.py) on models whose answer is known by hand.

The model: an identity 1×1 convolution (its maps A are the image), a global average and a
dense layer whose two class scores are +mean(A) and −mean(A). Class 0's gradient is 1/(h·w)
at every place, so its map is ReLU(A)/(h·w): the image itself, scaled to [0, 1]. Class 1's
weights are negative, so nothing raises its score: an empty map. The same holds read before a
softmax, a sigmoid unit, a separate Softmax layer (through the log-probability) and frozen
weights.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cnnspec.reporting.model_graph import OutputKind

pytestmark = pytest.mark.slow

IMAGE = np.array([[0, 1, 2, 0], [3, 0, 1, 4], [0, 0, 5, 1], [2, 1, 0, 0]], dtype="float32")[None, :, :, None]


def model(head: str, *, frozen: bool = False) -> Any:
    """``head``: ``softmax`` (dense 2 with its activation), ``layer`` (dense 2, then a Softmax
    layer), ``sigmoid`` (one unit: class 1's logit is +mean), ``sigmoid2`` (two labels) or
    ``logits`` (no activation)."""
    import keras

    inputs = keras.Input((4, 4, 1))
    maps = keras.layers.Conv2D(1, 1, use_bias=False, name="maps", kernel_initializer="ones")(inputs)
    pooled = keras.layers.GlobalAveragePooling2D()(maps)
    shapes = {"sigmoid": (1, "sigmoid"), "sigmoid2": (2, "sigmoid"), "softmax": (2, "softmax")}
    units, activation = shapes.get(head, (2, None))
    dense = keras.layers.Dense(units, activation=activation, use_bias=False, name="scores")
    outputs = dense(pooled)
    if head == "layer":
        outputs = keras.layers.Softmax()(outputs)
    built = keras.Model(inputs, outputs)
    dense.set_weights([np.array([[1.0]] if units == 1 else [[1.0, -1.0]], dtype="float32")])
    built.trainable = not frozen
    return built


@pytest.mark.parametrize(
    ("head", "kind", "score"),
    [
        ("softmax", OutputKind(), "logit"),
        ("layer", OutputKind(), "log-probability"),
        ("logits", OutputKind(from_logits=True), "logit"),
    ],
)
@pytest.mark.parametrize("frozen", [False, True])
def test_the_map_of_a_class_is_where_its_score_rises(
    head: str, kind: OutputKind, score: str, frozen: bool
) -> None:
    from cnnspec.reporting.gradcam import class_map

    built = model(head, frozen=frozen)
    before = np.asarray(built(IMAGE))
    raised = class_map(built, "maps", IMAGE, 0, kind)
    np.testing.assert_allclose(raised.heat, IMAGE[0, :, :, 0] / 5, atol=1e-6)
    assert raised.score == score and raised.peak > 0
    lowered = class_map(built, "maps", IMAGE, 1, kind)
    assert lowered.peak == 0 and not lowered.heat.any()
    # the softmax set aside for the gradient is back: the model answers as before
    np.testing.assert_array_equal(np.asarray(built(IMAGE)), before)


def test_a_diverged_model_has_no_class_map() -> None:
    from cnnspec.errors import UsageError
    from cnnspec.reporting.gradcam import class_map

    built = model("softmax")
    built.get_layer("scores").set_weights([np.full((1, 2), np.nan, dtype="float32")])
    with pytest.raises(UsageError, match="is not finite numbers"):
        class_map(built, "maps", IMAGE, 0, OutputKind())


def test_a_sigmoid_unit_has_two_classes() -> None:
    from cnnspec.reporting.gradcam import class_map

    built = model("sigmoid")
    one = class_map(built, "maps", IMAGE, 1, OutputKind(binary=True))
    np.testing.assert_allclose(one.heat, IMAGE[0, :, :, 0] / 5, atol=1e-6)
    assert class_map(built, "maps", IMAGE, 0, OutputKind(binary=True)).peak == 0


def segmenter() -> Any:
    """The identity maps, then a 1×1 convolution whose two classes score +A and −A at each
    pixel (softmax): class 0's score averaged over the map rises with the image."""
    import keras

    inputs = keras.Input((4, 4, 1))
    maps = keras.layers.Conv2D(1, 1, use_bias=False, name="maps", kernel_initializer="ones")(inputs)
    head = keras.layers.Conv2D(2, 1, use_bias=False, activation="softmax", name="mask")
    built = keras.Model(inputs, head(maps))
    head.set_weights([np.array([[[[1.0, -1.0]]]], dtype="float32")])
    return built


def test_a_segmentation_class_map_averages_the_scores_of_every_pixel() -> None:
    from cnnspec.reporting.gradcam import class_map, spatial_layers

    built = segmenter()
    assert spatial_layers(built) == ["maps"]  # (not the output: the map itself)
    raised = class_map(built, "maps", IMAGE, 0, OutputKind())
    np.testing.assert_allclose(raised.heat, IMAGE[0, :, :, 0] / 5, atol=1e-6)
    assert raised.score == "logit" and class_map(built, "maps", IMAGE, 1, OutputKind()).peak == 0


def test_the_command_draws_a_model_file_and_refuses_a_regression(tmp_path: Path) -> None:
    """A .keras file outside a run: read as a classifier by the task rules (a softmax output),
    its classes by index, or as a multi-label model (sigmoid units, binary crossentropy); a
    regression model's outputs have no class to explain."""
    import keras
    from typer.testing import CliRunner

    from cnnspec.cli.app import app
    from cnnspec.reporting.images import is_cnnspec_png

    np.save(tmp_path / "x.npy", IMAGE[0])

    def gradcam(name: str, *extra: str) -> Any:
        args = ["visualize", str(tmp_path / name), "gradcam", "--image", str(tmp_path / "x.npy"), *extra]
        return CliRunner().invoke(app, args)

    model("softmax").save(tmp_path / "m.keras")
    result = gradcam("m.keras")
    assert result.exit_code == 0, result.output
    assert "class 0 (p = " in result.output and "predicted) on maps's 4×4 maps" in result.output
    assert is_cnnspec_png(tmp_path / "gradcam_maps.png")
    result = gradcam("m.keras", "--class", "1")
    assert result.exit_code == 0 and "class map is empty" in result.output

    labels = model("sigmoid2")  # a label's map, and which side of the threshold the label is
    labels.compile(loss="binary_crossentropy")
    labels.save(tmp_path / "l.keras")
    result = gradcam("l.keras", "--class", "0")
    assert result.exit_code == 0, result.output
    assert "label 0 (p = " in result.output and "above the threshold 0.5) on maps's 4×4 maps" in result.output

    inputs = keras.Input((4, 4, 1))
    value = keras.layers.Dense(1, name="value")(keras.layers.Flatten()(keras.layers.Conv2D(2, 1)(inputs)))
    regression = keras.Model(inputs, value)
    regression.compile(loss="mse")
    regression.save(tmp_path / "r.keras")
    result = gradcam("r.keras")
    assert (
        result.exit_code == 2
        and "expected a classifier, a multi-label or a segmentation model" in result.output
    )
    assert "(regression)" in result.output and "Traceback" not in result.output


def test_a_nested_model_is_a_layer_whose_maps_are_its_call_output(tmp_path: Path) -> None:
    """keras.applications' transfer pattern: a body model called as one layer of the model.
    Its own ``output`` belongs to its graph, not the outer model's; the map (and `features`)
    is taken of its call's output, the image itself here, as for the flat model."""
    import keras
    from typer.testing import CliRunner

    from cnnspec.cli.app import app
    from cnnspec.reporting.gradcam import class_map, spatial_layers

    inner = keras.Input((4, 4, 1))
    ones = keras.layers.Conv2D(1, 1, use_bias=False, name="maps", kernel_initializer="ones")
    body = keras.Model(inner, ones(inner), name="body")
    inputs = keras.Input((4, 4, 1))
    dense = keras.layers.Dense(2, activation="softmax", use_bias=False, name="scores")
    built = keras.Model(inputs, dense(keras.layers.GlobalAveragePooling2D()(body(inputs))))
    dense.set_weights([np.array([[1.0, -1.0]], dtype="float32")])
    assert spatial_layers(built) == ["body"]
    raised = class_map(built, "body", IMAGE, 0, OutputKind())
    np.testing.assert_allclose(raised.heat, IMAGE[0, :, :, 0] / 5, atol=1e-6)

    built.save(tmp_path / "n.keras")
    np.save(tmp_path / "x.npy", IMAGE[0])
    for view in ("gradcam", "features"):
        args = ["visualize", str(tmp_path / "n.keras"), view, "--image", str(tmp_path / "x.npy")]
        result = CliRunner().invoke(app, [*args, "--layer", "body", "-o", str(tmp_path / f"{view}.png")])
        assert result.exit_code == 0, result.output
        assert (tmp_path / f"{view}.png").is_file()
        # a layer inside it is not one of the model's: the hint says how to reach it
        result = CliRunner().invoke(app, [*args, "--layer", "maps"])
        assert result.exit_code == 2 and "Valid: body" in result.output
        assert "'maps' is a layer of the nested model 'body'" in " ".join(result.output.split())


def test_sample_picks_the_image_of_an_npy_batch_and_is_refused_where_it_picks_none(tmp_path: Path) -> None:
    """`gradcam --image two.npy --sample 1` drew the batch's first image, and --sample 5 (out of
    range) or --sample 3 with a single image file were taken without a word."""
    from typer.testing import CliRunner

    from cnnspec.cli.app import app

    model("softmax").save(tmp_path / "m.keras")
    np.save(tmp_path / "two.npy", np.concatenate([IMAGE, IMAGE * 0]))  # p = 50% for the blank one
    np.save(tmp_path / "one.npy", IMAGE[0])

    def draw(view: str, image: str, *extra: str) -> Any:
        args = ["visualize", str(tmp_path / "m.keras"), view, "--image", str(tmp_path / image), *extra]
        return CliRunner().invoke(app, [*args, "-o", str(tmp_path / f"{view}.png")], env={"COLUMNS": "400"})

    first, second = draw("gradcam", "two.npy"), draw("gradcam", "two.npy", "--sample", "1")
    assert first.exit_code == 0 and second.exit_code == 0, first.output + second.output
    assert "(p = 50.0%," not in first.output and "class 0 (p = 50.0%, predicted)" in second.output
    for view in ("gradcam", "features"):
        out_of_range = draw(view, "two.npy", "--sample", "5")
        assert out_of_range.exit_code == 2, out_of_range.output
        assert (
            f"error: expected --sample between 0 and 1 (the images of {tmp_path / 'two.npy'}); received 5"
            in " ".join(out_of_range.output.split())
        )
        single = draw(view, "one.npy", "--sample", "3")
        assert single.exit_code == 2, single.output
        assert (
            f"error: --sample picks an image of an .npy batch given by --image; {tmp_path / 'one.npy'} "
            "holds one image (received --sample 3)" in " ".join(single.output.split())
        )


def test_an_op_without_a_gradient_is_a_note_naming_its_layer() -> None:
    """An area resize (TensorFlow has no gradient for ResizeArea) has no class map: a
    UsageError naming the op and its layer (the report notes it; report.html is still written),
    not a LookupError that lost the whole page."""
    import keras

    from cnnspec.errors import UsageError
    from cnnspec.reporting.gradcam import class_map

    inputs = keras.Input((4, 4, 1))
    maps = keras.layers.Conv2D(1, 1, name="maps")(inputs)
    small = keras.layers.Resizing(3, 3, interpolation="area", name="shrink")(maps)
    pooled = keras.layers.GlobalAveragePooling2D()(small)
    built = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(pooled))
    with pytest.raises(UsageError) as caught:
        class_map(built, "maps", IMAGE, 0, OutputKind())
    assert str(caught.value) == (
        "TensorFlow has no gradient for the ResizeArea op of layer(s) `shrink`, so Grad-CAM can't "
        "weigh the feature maps (LookupError: gradient registry has no entry for: ResizeArea)"
    )
