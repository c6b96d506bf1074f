"""``image_size`` must be the input's height and width: train refuses other images after loading
them (``expected data of shape …``), and the generated script resized them to input.shape, the
setting ignored. validate (and codegen, which runs its checks) refuses it first, located, for
every source that takes it; an input that is no [height, width, channels] image is refused for
image files whatever image_size and color_mode say (train refuses it too)."""

from __future__ import annotations

import pytest

from cnnspec.cli.app import app

SPEC = """cnnspec: 1
name: sized
input: {{shape: {shape}}}
model:
  - {first}
  - dense: {{units: 2, activation: softmax}}
data: {{source: {source}}}
training: {{epochs: 1, batch_size: 4}}
"""
CONV = "conv2d: {filters: 2, kernel_size: 3}\n  - global_avg_pool2d"


@pytest.mark.parametrize(
    ("source", "key"),
    [
        ("{directory: d1, color_mode: grayscale, image_size: [4, 4]}", "data.source.image_size"),
        ("{directory: d1, test_directory: d2, image_size: [4, 4]}", "data.source.image_size"),
        ("{csv: l.csv, test_csv: t.csv, image_size: [4, 4]}", "data.source.image_size"),
        ("{images: d1, labels: l.csv, image_size: [4, 4]}", "data.source.image_size"),
        ("{images: d1, masks: m, image_size: [4, 4]}", "data.source.image_size"),
        ("{shapes: {images: 20, image_size: [12, 12]}}", "data.source.shapes.image_size"),
    ],
    ids=["directory", "test_directory", "csv", "labels", "masks", "shapes"],
)
@pytest.mark.parametrize("command", [["validate"], ["codegen", "--script", "-o", "t.py"]])
def test_an_image_size_other_than_the_input_is_refused(runner, write_spec, tmp_path, source, key, command):
    size = "[12, 12]" if "shapes" in source else "[4, 4]"
    channels = 3
    shape = f"[8, 8, {channels}]"
    if "grayscale" in source:
        channels, shape = 1, "[8, 8, 1]"
    path = write_spec(SPEC.format(shape=shape, first=CONV, source=source))
    result = runner.invoke(app, [*command, str(path)])
    assert result.exit_code == 1, result.output
    out = " ".join(result.output.split())
    assert (
        f"error: {key}: expected an image_size of the input's height and width, [8, 8] (input.shape "
        f"is {shape}); received {size}"
    ) in out
    height = size[1:-1].split(", ")[0]
    assert (
        f"hint: remove image_size (it defaults to input.shape's size), or set input.shape to "
        f"[{height}, {height}, {channels}] and add `resizing: {{height: 8, width: 8}}` as the first "
        "layer to keep the model's size"
    ) in out
    assert not (tmp_path / "t.py").exists()


@pytest.mark.parametrize("size", ["", ", image_size: [8, 8]"])
def test_an_image_size_of_the_input_or_none_is_fine(runner, write_spec, size):
    path = write_spec(SPEC.format(shape="[8, 8, 3]", first=CONV, source=f"{{directory: d1{size}}}"))
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 0, result.output


def test_a_flat_input_is_refused_for_image_files_even_with_image_size_and_color_mode(runner, write_spec):
    source = "{directory: d1, color_mode: grayscale, image_size: [8, 8]}"
    path = write_spec(SPEC.format(shape="[64]", first="dense: {units: 4}", source=source))
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 1, result.output
    out = " ".join(result.output.split())
    assert (
        "error: input.shape: expected an image input [height, width, 1 or 3] to read the images for; "
        "input.shape is [64]"
    ) in out
    assert (
        "hint: set input.shape to [height, width, 1 or 3], the shape the image files are read with "
        "(a flatten layer after it gives a flat input to what follows)"
    ) in out
