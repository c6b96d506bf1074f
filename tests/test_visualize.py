"""`cnnspec visualize TARGET WHAT`: every view writes a readable PNG and prints its path; bad
layer names, samples and targets are clear errors."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from PIL import Image

from tests.test_report_support import bare_model, flat, invoke, trained_run

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("reporting")]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return trained_run(tmp_path_factory)


def png_size(path):
    with Image.open(path) as image:
        image.load()  # decodes the whole file
        assert image.format == "PNG"
        return image.size


@pytest.mark.parametrize(
    ("args", "name", "low", "high"),
    [
        (["history"], "history.png", (700, 300), (1600, 800)),
        (["confusion"], "confusion_matrix.png", (400, 400), (1500, 1500)),
        (["confusion", "--normalize"], "confusion_matrix_normalized.png", (400, 400), (1500, 1500)),
        (["features", "--layer", "conv2d_1"], "features_conv2d_1.png", (600, 300), (1400, 1500)),
        (["features", "--layer", "conv2d_2", "--sample", "3", "--max", "4"], "features_conv2d_2.png",
         (600, 300), (1400, 1500)),
        (["features", "--layer", "dense_1"], "features_dense_1.png", (600, 300), (1400, 1500)),
        (["filters"], "filters_conv2d_1.png", (400, 200), (1300, 1300)),
        (["filters", "--layer", "conv2d_2"], "filters_conv2d_2.png", (400, 200), (1300, 1300)),
        (["samples"], "samples.png", (500, 500), (1400, 1600)),
        (["samples", "--max", "6", "--seed", "2"], "samples.png", (400, 200), (1400, 1600)),
        (["gradcam"], "gradcam_conv2d_2.png", (700, 300), (1400, 800)),
        (["gradcam", "--layer", "conv2d_1", "--sample", "2", "--class", "green"], "gradcam_conv2d_1.png",
         (700, 300), (1400, 800)),
        (["calibration"], "calibration.png", (400, 500), (800, 900)),
    ],
)  # fmt: skip
def test_views_write_pngs(run_dir, tmp_path, args, name, low, high):
    result = invoke("visualize", run_dir, *args, "--out", tmp_path)
    assert result.exit_code == 0, result.output
    path = tmp_path / name
    assert f"wrote {path}" in flat(result)
    width, height = png_size(path)
    assert low[0] <= width <= high[0] and low[1] <= height <= high[1], (width, height)


def test_default_out_is_the_run_folder_and_out_file(run_dir, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    (copy / "history.png").unlink()
    result = invoke("visualize", copy, "history")
    assert result.exit_code == 0, result.output
    assert png_size(copy / "history.png")[0] > 500
    target = tmp_path / "pictures" / "maps.png"
    result = invoke("visualize", copy, "features", "--out", target)
    assert result.exit_code == 0 and png_size(target)[0] > 500
    result = invoke("visualize", copy, "features", "--out", tmp_path / "maps.jpg")
    assert result.exit_code == 2 and ".png" in flat(result)
    # a new folder (`-o "new pictures/"`: Typer drops the slash) is created for the picture
    result = invoke("visualize", copy, "history", "--out", tmp_path / "new pictures")
    assert result.exit_code == 0, result.output
    assert png_size(tmp_path / "new pictures" / "history.png")[0] > 500


def test_graph_writes_text_and_picture_when_possible(run_dir, tmp_path):
    result = invoke("visualize", run_dir, "graph", "--out", tmp_path)
    assert result.exit_code == 0, result.output
    dot = (tmp_path / "graph.dot").read_text()
    assert "conv2d_1" in dot and "dense_1" in dot
    assert "flowchart" in (tmp_path / "graph.mmd").read_text()
    if shutil.which("dot"):
        assert png_size(tmp_path / "graph.png")[1] > 100
    else:
        assert "Graphviz is not installed" in flat(result)


def test_features_of_an_image_file(run_dir, tmp_path):
    picture = tmp_path / "blue.png"
    Image.fromarray(np.full((20, 30, 3), (10, 20, 230), dtype="uint8")).save(picture)
    result = invoke("visualize", run_dir, "features", "--image", picture, "--out", tmp_path / "f.png")
    assert result.exit_code == 0, result.output
    assert png_size(tmp_path / "f.png")[0] > 500


def test_unknown_layer_lists_the_valid_ones(run_dir, tmp_path):
    result = invoke("visualize", run_dir, "features", "--layer", "conv2d_9", "--out", tmp_path)
    assert result.exit_code == 2
    text = flat(result)
    assert "conv2d_9" in text and "conv2d_1" in text and "dense_1" in text
    result = invoke("visualize", run_dir, "filters", "--layer", "dense_1", "--out", tmp_path)
    assert result.exit_code == 2 and "conv2d_2" in flat(result)


def test_bad_requests(run_dir, tmp_path):
    result = invoke("visualize", run_dir, "features", "--sample", "999", "--out", tmp_path)
    assert result.exit_code == 2 and "--sample" in flat(result)
    result = invoke("visualize", run_dir, "nonsense")
    assert result.exit_code == 2
    result = invoke("visualize", run_dir, "samples", "--seed", "-1", "--out", tmp_path)
    assert result.exit_code == 2 and "--seed" in flat(result) and "internal error" not in flat(result)
    model = bare_model(tmp_path)
    for what in ("history", "confusion", "graph", "samples"):
        result = invoke("visualize", model, what, "--out", tmp_path)
        assert result.exit_code == 2, (what, result.output)
        assert "Traceback" not in flat(result)
    # the filters of a bare model need nothing else
    result = invoke("visualize", model, "filters", "--out", tmp_path)
    assert result.exit_code == 0, result.output
    result = invoke("visualize", tmp_path / "missing", "history")
    assert result.exit_code == 2 and "does not exist" in flat(result)


def test_gradcam_says_which_class_and_refuses_what_it_cannot_draw(run_dir, tmp_path):
    result = invoke("visualize", run_dir, "gradcam", "--class", "2", "--sample", "1", "--out", tmp_path)
    assert result.exit_code == 0, result.output
    # the class by index is the run's third class, named; how sure the model is of it
    assert "class blue (p = " in flat(result) and "on conv2d_2's 4×4 maps" in flat(result)
    # (a probability: of which temperature, said; the run has no temperature.json)
    assert "on conv2d_2's 4×4 maps; p at temperature 1 (the model's own probabilities)" in flat(result)
    result = invoke("visualize", run_dir, "gradcam", "--class", "purple", "--out", tmp_path)
    assert result.exit_code == 2
    assert "received 'purple'. Classes: red, green, blue" in flat(result)
    result = invoke("visualize", run_dir, "gradcam", "--layer", "dense_1", "--out", tmp_path)
    assert result.exit_code == 2  # a flat output has no places to show
    assert "received 'dense_1'. Valid: conv2d_1, max_pool2d_1, conv2d_2" in flat(result)
    result = invoke("visualize", run_dir, "gradcam", "--sample", "999", "--out", tmp_path)
    assert result.exit_code == 2 and "--sample" in flat(result)


def test_history_and_confusion_do_not_load_tensorflow(run_dir, tmp_path):
    import subprocess
    import sys

    run, out = str(run_dir), str(tmp_path)
    calls = "; ".join(
        f"r = CliRunner().invoke(app, ['visualize', {run!r}, {what!r}, '--out', {out!r}]); "
        "assert r.exit_code == 0, r.output"
        for what in ("history", "confusion")
    )
    code = (
        "import sys; from typer.testing import CliRunner; from cnnspec.cli.app import app; "
        f"{calls}; print('tensorflow' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize(
    ("view", "option", "named"),
    [
        ("confusion", ["--data", "x.npz"], "--data with the features, gradcam, samples, calibration views"),
        ("history", ["--data", ""], "--data with"),
        ("filters", ["--data", "x.npz"], "--data with"),
        ("graph", ["--layer", "conv"], "--layer with the features, filters, gradcam views"),
        ("samples", ["--normalize"], "--normalize with the confusion view"),
        ("features", ["--seed", "3"], "--seed with the samples view"),
        ("history", ["--temperature", "none"], "--temperature with the samples, gradcam, calibration views"),
    ],
)
def test_an_option_of_other_views_is_refused_before_anything_is_read(tmp_path, view, option, named):
    """`visualize RUN confusion --data X.npz` drew the run's own matrix, exit 0, as if of X's
    images (and --data '' was taken too); any view-specific option another view does not read
    is refused, before the run is read (here there is none)."""
    result = invoke("visualize", tmp_path / "no-run", view, *option)
    assert result.exit_code == 2, result.output
    assert named in flat(result) and f"{view} does not read it" in flat(result)


def test_a_temperature_visualize_cannot_apply_is_refused_before_anything_is_read(tmp_path):
    """visualize's --temperature is evaluate's (one definition, one parser): a word it does not
    take is exit 2 with evaluate's message, before the run is read (here there is none)."""
    for command in (["visualize", tmp_path / "no-run", "calibration"], ["evaluate", tmp_path / "no-run"]):
        result = invoke(*command, "--temperature", "-1")
        assert result.exit_code == 2, result.output
        assert flat(result) == (
            "error: expected --temperature to be auto, none or a number from 0.001 to 1000; received '-1' "
            "hint: --temperature none (or 1) shows the model's own probabilities, auto the run's "
            "temperature.json (cnnspec calibrate)"
        )


def test_gradcam_refuses_a_class_the_run_s_data_classes_left_out(tmp_path):
    """A digits model of ``data.classes: [9, 5, 7]`` (its spec fixes the data's classes): ``--class
    2`` is the digit 2, which it was not trained on, not the index of its class '7'; ``7`` is."""
    from cnnspec.api import build_model

    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "cnnspec: 1\nname: ft\ninput: {shape: [8, 8, 1]}\nmodel:\n"
        "  - conv2d: {filters: 2, kernel_size: 3, padding: same}\n  - flatten\n"
        "  - dense: {units: 3, activation: softmax}\ndata: {source: digits, classes: [9, 5, 7]}\n",
        encoding="utf-8",
    )
    build_model(spec).save(tmp_path / "m.keras")
    args = ["visualize", tmp_path / "m.keras", "gradcam", "--spec", spec, "--out", tmp_path]
    result = invoke(*args, "--class", "2")
    assert result.exit_code == 2
    assert (
        "error: expected --class to be one of the model's classes; received '2': the data's class '2' "
        "is not among the run's data.classes [9, 5, 7] hint: name one of the model's classes ('9', '5' "
        "or '7')"
    ) in flat(result)
    result = invoke(*args, "--class", "7")
    assert result.exit_code == 0, result.output
    assert "class 7 (p = " in flat(result)
