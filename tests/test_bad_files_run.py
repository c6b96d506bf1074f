"""A run that left bad image files out (``data.on_bad_file: skip``) read back by every command.

JPEGs cut short pass the header check before training and fail when decoded, so the stream
drops them as it reads. ``report``, ``calibrate``, ``visualize`` and ``evaluate --tta`` must read
the images evaluate reads (skipping the same files, with the same note, indexing samples over
the images actually read), and metrics.json, lock.json and report.html count the images used,
not the files listed. ``runs compare`` says when two runs read other data (content hash).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from cnnspec.cli.app import app
from tests.test_data_files_audit import image
from tests.test_script_data_audit4 import truncated_jpeg

# (Keras warns when a stream's first epoch ends, as its length is unknown until then); one worker
# runs the module, so `run` is trained once, not once per xdist worker
pytestmark = [
    pytest.mark.slow,  # (every test reads the run `run` trains)
    pytest.mark.filterwarnings("ignore:Your input ran out of data"),
    pytest.mark.xdist_group("bad_files_run"),
]

#: good images per split and class, and the cut JPEGs beside them: 2 + 1 + 2 = 5 bad files
GOOD = {"train": 6, "validation": 2, "test": 3}
CUT = {("train", "a"): 1, ("train", "b"): 1, ("validation", "a"): 1, ("test", "a"): 1, ("test", "b"): 1}
LISTED = {"train": 14, "validation": 5, "test": 8}
USED = {"train": 12, "validation": 4, "test": 6}

SPEC = """cnnspec: 1
name: badrun
input: {shape: [8, 8, 3]}
model:
  - conv2d: {filters: 2, kernel_size: 3, padding: same}
  - global_avg_pool2d
  - dense: {units: 2, activation: softmax}
data: {source: {directory: photos}, on_bad_file: skip}
training: {epochs: 1, batch_size: 4, seed: 3}
"""


def photos(folder: Path) -> None:
    """``folder/{train,validation,test}/{a,b}/``: :data:`GOOD` PNGs each and :data:`CUT` cut JPEGs."""
    for split, count in GOOD.items():
        for name in "ab":
            for index in range(count):
                image(folder / split / name / f"{name}{index}.png", 20 * index + (100 if name == "b" else 0))
            for index in range(CUT.get((split, name), 0)):
                truncated_jpeg(folder / split / name / f"cut{index}.jpg")


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run trained on :func:`photos` with ``on_bad_file: skip``."""
    from typer.testing import CliRunner

    root = tmp_path_factory.mktemp("badrun")
    photos(root / "photos")
    spec = root / "spec.yaml"
    spec.write_text(SPEC, encoding="utf-8")
    out = root / "run"
    result = CliRunner().invoke(app, ["train", str(spec), "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


def test_the_run_counts_the_images_it_read_not_the_files_listed(run):
    metrics = json.loads((run / "metrics.json").read_text(encoding="utf-8"))
    assert [metrics[f"{split}_images"] for split in ("train", "validation", "test")] == list(USED.values())
    data = json.loads((run / "lock.json").read_text(encoding="utf-8"))["data"]
    assert data["sizes"] == LISTED  # the listing the content hash covers (a resume reads it again)
    assert data["used_sizes"] == USED
    assert len((run / "bad_files.txt").read_text(encoding="utf-8").splitlines()) == 5
    page = (run / "report.html").read_text(encoding="utf-8")
    assert "12 training, 4 validation, 6 test images" in page
    assert "5 image file(s) left out as unreadable" in page and "bad_files.txt" in page


def test_report_reads_the_run_skipping_its_bad_files(runner, run, tmp_path):
    page = tmp_path / "page.html"
    result = runner.invoke(app, ["report", str(run), "--out", str(page)])
    assert result.exit_code == 0, result.output
    text = page.read_text(encoding="utf-8")
    assert "12 training, 4 validation, 6 test images" in text
    assert "5 image file(s) left out as unreadable" in text


def test_evaluate_and_its_tta_read_the_same_images(runner, run, tmp_path):
    documents = []
    for extra in ([], ["--tta", "hflip"]):
        out = tmp_path / ("tta" if extra else "plain")
        result = runner.invoke(app, ["evaluate", str(run), "--out", str(out), "-f", "json", *extra])
        assert result.exit_code == 0, result.output
        documents.append(json.loads((out / "evaluation.json").read_text(encoding="utf-8")))
    for document in documents:
        assert document["data"]["images"] == USED["test"]
        assert "left out 2 image file(s) that failed to decode" in document["notes"]


def test_calibrate_fits_on_the_validation_images_read(runner, run, tmp_path):
    copy = tmp_path / "run"  # (calibrate writes temperature.json into the run folder)
    shutil.copytree(run, copy)
    result = runner.invoke(app, ["calibrate", str(copy), "--force"])  # (4 images fit no temperature well)
    assert result.exit_code == 0, result.output
    assert (copy / "temperature.json").is_file()
    assert "left out 1 image file(s) that failed to decode" in result.output
    assert f"fitted on {USED['validation']} validation images" in result.output


@pytest.mark.parametrize("what", ["samples", "calibration"])
def test_visualize_draws_from_the_images_read(runner, run, tmp_path, what):
    out = tmp_path / f"{what}.png"
    result = runner.invoke(app, ["visualize", str(run), what, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.stat().st_size > 0
    assert "left out 2 image file(s) that failed to decode" in result.output


def test_a_sample_index_counts_only_the_images_read(runner, run, tmp_path):
    last = USED["test"] - 1
    result = runner.invoke(
        app, ["visualize", str(run), "gradcam", "--sample", str(last + 1), "--out", str(tmp_path)]
    )
    assert result.exit_code == 2
    assert f"expected --sample between 0 and {last}" in result.output
    assert "Traceback" not in result.output
    result = runner.invoke(
        app, ["visualize", str(run), "gradcam", "--sample", str(last), "--out", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output


def test_data_files_the_header_check_skips_are_said_by_every_command(runner, run, tmp_path):
    """`evaluate RUN --data FOLDER` (and visualize, which reads --data alike) left out a file of
    --data that fails the header check under the run's `on_bad_file: skip` without a word:
    evaluation.json said 2 images and no note. It is said as training says it, naming the file."""
    for name in "ab":
        for index in range(2):
            image(tmp_path / "more" / name / f"{name}{index}.png", 20 * index)
    junk = tmp_path / "more" / "a" / "junk.png"
    junk.write_text("not an image")
    note = f"left out 1 unreadable image file(s) (data.on_bad_file: skip): {junk}"
    out = tmp_path / "ev"
    result = runner.invoke(app, ["evaluate", str(run), "--data", str(tmp_path / "more"), "-o", str(out)])
    assert result.exit_code == 0, result.output
    document = json.loads((out / "evaluation.json").read_text(encoding="utf-8"))
    assert document["data"]["images"] == 4 and note in document["notes"]
    assert "left out 1 unreadable image file(s)" in result.output
    result = runner.invoke(
        app,
        [
            "visualize",
            str(run),
            "samples",
            "--data",
            str(tmp_path / "more"),
            "--out",
            str(tmp_path / "s.png"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "left out 1 unreadable image file(s)" in result.output


def test_runs_compare_says_when_the_data_differs(runner, run, tmp_path):
    """A copy of the run whose lock.json records another content hash stands for the same spec
    trained after a file of its folder was replaced."""
    other = tmp_path / "other"
    shutil.copytree(run, other)
    lock = json.loads((other / "lock.json").read_text(encoding="utf-8"))
    lock["data"]["content_hash"] = "f" * 64
    (other / "lock.json").write_text(json.dumps(lock), encoding="utf-8")
    png = tmp_path / "curves.png"
    result = runner.invoke(app, ["runs", "compare", str(run), str(other), "--png", str(png)])
    assert result.exit_code == 0, result.output
    assert "resolved specs: the same" in result.output
    assert "data (A → B): differs (content hash" in result.output
    result = runner.invoke(
        app, ["runs", "compare", str(run), str(other), "--png", str(png), "--force", "-f", "json"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)["data"]
    assert data["same"] is False
    assert data["b"]["content_hash"] == "f" * 64
    result = runner.invoke(app, ["runs", "compare", str(run), str(run), "--png", str(png), "--force"])
    assert "data: the same (content hash)" in result.output


@pytest.mark.slow
def test_an_int8_export_draws_only_images_that_decode(runner, run, tmp_path):
    out = tmp_path / "model.tflite"
    result = runner.invoke(
        app, ["export", str(run), "--format", "tflite", "--quantize", "int8", "-o", str(out), "--json"]
    )
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["verify_data"].startswith(f"{USED['test']} of the run's {LISTED['test']} test images")
    assert "2 drawn file(s) failed to decode, left out" in record["verify_data"]
    assert out.is_file()
