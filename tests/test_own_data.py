"""A run's own images given back as ``--data`` (cnnspec/reporting/own_data.py): `calibrate`
refuses a folder or CSV holding any image the run trained, validated or was tested on (as it
refuses the run's own named or ``.npz`` data by its content hash), `evaluate` and `visualize`
score such data but say how many of its images the model trained on; and what `calibrate`
says of a fit whose calibration error got worse, and of a temperature.json that is damaged."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.test_listing_edges import make_images
from tests.test_report_support import CLASSES, flat, invoke

#: A two-class model of 8×8 colour images, trained for one epoch: what it learns is beside the
#: point, only which images it trained on.
SPEC = """\
cnnspec: 1
name: own
input: {{shape: [8, 8, 3]}}
model:
  - conv2d: {{filters: 2, kernel_size: 3}}
  - global_avg_pool2d
  - dense: {{units: 2, activation: softmax}}
data: {data}
training: {{epochs: 1, batch_size: 4, seed: 3}}
"""

#: What calibrate's refusal of the run's own images begins with.
REFUSED = "expected a calibration set other than the run's own images"


def train(folder: Path, data: str, *, hash_content: bool = False) -> Path:
    """The run folder of :data:`SPEC` trained on ``data`` (its ``data:`` mapping).

    Trained in this process by the trainer `cnnspec train` calls, without the report.html
    `cnnspec train` adds (a fifth of a training's time): these tests read the run folder's
    lock.json, model and splits, never its page, and `cnnspec report` writes the page anew."""
    from cnnspec.api import compile_spec
    from cnnspec.training.trainer import train as run_training

    spec = folder / "spec.yaml"
    spec.write_text(SPEC.format(data=data), encoding="utf-8")
    run = folder / "run"
    run_training(compile_spec(spec), out=run, hash_content=hash_content)
    return run


def sizes(run: Path) -> dict[str, int]:
    """The run's split sizes, as lock.json records them."""
    return json.loads((run / "lock.json").read_text("utf-8"))["data"]["sizes"]


@pytest.mark.slow
def test_calibrate_refuses_any_file_of_a_folders_own_splits_and_evaluate_says_what_it_trained_on(tmp_path):
    """A folder split into train/, validation/ and test/: its test folder, a link to it, its
    training and its validation folder are each refused as a calibration set (no
    temperature.json written), with the count and the split; a folder of other images is
    fitted on. Evaluate scores each, with a note where the images include training ones."""
    root = tmp_path / "split"
    make_images(root / "train", {"a": 6, "b": 6}, seed=1)
    make_images(root / "validation", {"a": 2, "b": 2}, seed=2)
    make_images(root / "test", {"a": 2, "b": 2}, seed=3)
    run = train(tmp_path, f"{{source: {{directory: {root}}}}}")
    (tmp_path / "linked").symlink_to(root / "test", target_is_directory=True)

    for folder, said in (
        (root / "test", "4 of the 4 images of --data {} are own's own (4 test images: the same files)"),
        (tmp_path / "linked", "4 of the 4 images of --data {} are own's own (4 test images"),
        (root / "train", "12 of the 12 images of --data {} are own's own (12 training images"),
    ):
        refused = invoke("calibrate", run, "--data", folder)
        assert refused.exit_code == 2, refused.output
        assert REFUSED in flat(refused) and said.format(folder) in flat(refused)
        assert "hint: fit on a held-out calibration folder" in flat(refused)
        assert "Traceback" not in refused.output
        assert not (run / "temperature.json").exists()

    trained = invoke("evaluate", run, "--data", root / "train", "-o", tmp_path / "e1")
    assert trained.exit_code == 0, trained.output
    assert (
        f"12 of the 12 images of --data {root / 'train'} are images own trained or validated on "
        "(12 training: the same files): the test figures may include images the model trained on"
    ) in flat(trained)
    document = json.loads((tmp_path / "e1" / "evaluation.json").read_text("utf-8"))
    assert any("12 of the 12 images" in note for note in document["notes"])
    # its own test images are unseen ones: scored without a word
    tested = invoke("evaluate", run, "--data", root / "test", "-o", tmp_path / "e2")
    assert tested.exit_code == 0 and "trained or validated on" not in flat(tested), tested.output
    drawn = invoke("visualize", run, "calibration", "--data", root / "validation", "-o", tmp_path / "c.png")
    assert drawn.exit_code == 0, drawn.output
    assert "4 of the 4 images" in flat(drawn) and "(4 validation: the same files)" in flat(drawn)

    # its validation folder is what calibrate fits on without --data: fitted, not refused (the
    # refusal's hint sent the user back to the very images it refused)
    validated = invoke("calibrate", run, "--data", root / "validation")
    assert validated.exit_code == 0, validated.output
    assert json.loads((run / "temperature.json").read_text("utf-8"))["images"] == 4

    fresh = tmp_path / "fresh"
    make_images(fresh, {"a": 5, "b": 5}, seed=9)
    fitted = invoke("calibrate", run, "--data", fresh, "--force")
    assert fitted.exit_code == 0, fitted.output
    assert json.loads((run / "temperature.json").read_text("utf-8"))["images"] == 10
    other = invoke("evaluate", run, "--data", fresh, "-o", tmp_path / "e3")
    assert other.exit_code == 0 and "trained or validated on" not in flat(other), other.output

    # a damaged temperature.json: calibrate wrote it, and writes it again (no training mends it)
    (run / "temperature.json").write_text("garbage\n", encoding="utf-8")
    for command in (["evaluate", run], ["visualize", run, "calibration"], ["report", run]):
        damaged = invoke(*command)
        assert damaged.exit_code == 2, damaged.output
        text = flat(damaged)
        assert f"damaged run file {run / 'temperature.json'}: expected readable JSON" in text
        assert "run `cnnspec calibrate RUN` again (it replaces the file), or delete it" in text
        assert "train the run again" not in text and "Traceback" not in damaged.output
    # --temperature 1 leaves the file unread, as the hint says
    assert invoke("evaluate", run, "--temperature", "1").exit_code == 0


@pytest.mark.slow
def test_a_csv_runs_images_are_refused_by_their_files_and_with_hash_content_by_their_bytes(tmp_path):
    """A CSV split by fractions: the CSV itself, and the folder it lists, hold every image of
    the run (refused, with each split's count from lock.json); evaluate's note counts its
    training and validation images. The run hashed its files' bytes (--hash-content), so a
    copy of the folder is its images too."""
    photos = tmp_path / "photos"
    files = make_images(photos, {"a": 8, "b": 8}, seed=4)
    rows = [f"{path.relative_to(tmp_path).as_posix()},{path.parent.name}" for path in files]
    (tmp_path / "labels.csv").write_text("file,label\n" + "\n".join(rows) + "\n", encoding="utf-8")
    run = train(
        tmp_path,
        f"{{source: {{csv: {tmp_path / 'labels.csv'}}}, validation_split: 0.25, test_split: 0.25}}",
        hash_content=True,  # as `cnnspec train --hash-content`
    )
    split = sizes(run)
    listed = f"{split['train']} training, {split['validation']} validation and {split['test']} test images"
    shutil.copytree(photos, tmp_path / "copy")
    for data, how in (
        (tmp_path / "labels.csv", "the same files)"),
        (photos, "the same files)"),
        (tmp_path / "copy", "the same files, or files of the same bytes)"),
    ):
        refused = invoke("calibrate", run, "--data", data)
        assert refused.exit_code == 2, refused.output
        assert f"16 of the 16 images of --data {data} are own's own ({listed}: {how}" in flat(refused)
        assert not (run / "temperature.json").exists()

    scored = invoke("evaluate", run, "--data", photos, "-o", tmp_path / "e")
    assert scored.exit_code == 0, scored.output
    seen = split["train"] + split["validation"]
    assert (
        f"{seen} of the 16 images of --data {photos} are images own trained or validated on "
        f"({split['train']} training and {split['validation']} validation: the same files)"
    ) in flat(scored)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    from tests.test_report_support import trained_run

    return trained_run(tmp_path_factory)


@pytest.mark.slow
@pytest.mark.xdist_group("reporting")
def test_arrays_of_the_runs_training_images_are_told_by_their_pixels(run_dir, tmp_path):
    """The tiny run trained on an .npz (96 training and 24 validation images of its 120
    x_train): an .npz of 12 of those and 3 others is scored with a note counting the 12; the
    run's own .npz is its own test split (no note), and calibrate still refuses it by its
    content hash. Calibrate sets the mixed one's training and test images aside (the same
    pixels are those images to the model) and fits on its validation ones, saying so; an
    .npz of the run's test images alone (another file: another hash) is refused."""
    own = np.load(run_dir.parent / "colors.npz")
    x = np.concatenate([own["x_train"][:12], own["x_test"][:3]])
    y = np.concatenate([own["y_train"][:12], own["y_test"][:3]])
    mixed = tmp_path / "mixed.npz"
    np.savez(mixed, x_test=x, y_test=y, class_names=np.array(CLASSES))
    scored = invoke("evaluate", run_dir, "--data", mixed, "-o", tmp_path / "e1")
    assert scored.exit_code == 0, scored.output
    text = flat(scored)
    assert f"12 of the 15 images of --data {mixed} are images tiny_colors trained" in text
    assert ": the same pixels): the test figures may include images the model trained on" in text
    counts = text.split("trained or validated on (")[1].split(":")[0]  # "9 training and 3 validation"
    trained, validated = (int(word) for word in counts.split() if word.isdigit())
    assert trained + validated == 12 and counts == f"{trained} training and {validated} validation"

    itself = invoke("evaluate", run_dir, "--data", run_dir.parent / "colors.npz", "-o", tmp_path / "e2")
    assert itself.exit_code == 0 and "trained or validated on" not in flat(itself), itself.output
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    refused = invoke("calibrate", copy, "--data", run_dir.parent / "colors.npz")
    assert refused.exit_code == 2 and "is the data tiny_colors was trained and tested on" in flat(refused)
    # (--force: the tiny model gets its validation images right, so the fit ends at 0.05)
    fitted = invoke("calibrate", copy, "--data", mixed, "--force")
    assert fitted.exit_code == 0, fitted.output
    assert (
        f"note: set aside {trained + 3} of the 15 images of --data {mixed}, tiny_colors's own {trained} "
        "training and 3 test images (the same pixels): a temperature is never fitted on the images "
        "the model trained on, nor on its test split, which must stay unseen to judge the fit; "
        f"fitted on the other {validated}"
    ) in flat(fitted)
    assert "trained or validated on" not in flat(fitted) and "the test figures" not in flat(fitted)
    assert json.loads((copy / "temperature.json").read_text("utf-8"))["images"] == validated

    # the run's test images alone: nothing left to fit on, refused as the run's test files are
    np.savez(
        tmp_path / "tested.npz", x_test=own["x_test"], y_test=own["y_test"], class_names=np.array(CLASSES)
    )
    (copy / "temperature.json").unlink()
    tested = invoke("calibrate", copy, "--data", tmp_path / "tested.npz")
    assert tested.exit_code == 2, tested.output
    images = len(own["x_test"])
    assert (
        f"error: expected a calibration set other than the run's own images; {images} of the {images} "
        f"images of --data {tmp_path / 'tested.npz'} are tiny_colors's own ({images} test images: the "
        "same pixels)"
    ) in flat(tested)
    assert not (copy / "temperature.json").exists()


def _constant_images(pixel: tuple[int, int, int], count: int) -> np.ndarray:
    """``count`` 8×8 images of one colour."""
    return np.broadcast_to(np.array(pixel, "uint8"), (count, 8, 8, 3)).copy()


@pytest.mark.slow
@pytest.mark.xdist_group("reporting")
def test_calibrate_says_when_the_fit_leaves_the_calibration_error_worse(run_dir, tmp_path):
    """A model whose class probabilities are softmax(10 × mean colour) (the tiny run's, its
    convolutions made the identity and its dense layer given known weights: a run folder holds
    its spec's model), on images made for it: 10 it
    gets right at confidence 0.56, 10 it gets wrong at 0.56 with the right class a close
    second. Sharpening (T < 1, "underconfident") lowers the likelihood's loss but sends the
    confidence far above the 50 % accuracy: written, with a note saying the ECE rose and how
    to undo it. Images it gets wrong half the time at that confidence soften it (T > 1,
    "overconfident"), with the ECE lower and no note."""
    from cnnspec.training.modelfile import load_model

    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    model = load_model(copy / "model.keras")
    *convs, dense = [layer for layer in model.layers if layer.weights]
    for conv in convs:  # the identity on the colours (relu keeps them: they are not negative)
        kernel = np.zeros(conv.kernel.shape, "float32")
        kernel[1, 1, range(3), range(3)] = 1.0
        conv.set_weights([kernel, np.zeros(kernel.shape[-1], "float32")])
    weights = np.zeros(dense.kernel.shape, "float32")
    weights[:3] = np.eye(3, dtype="float32") * 10
    dense.set_weights([weights, np.zeros(3, "float32")])
    model.save(copy / "model.keras")
    right = _constant_images((151, 127, 127), 10)  # red at 0.56, the others 0.22 each
    close = _constant_images((200, 193, 97), 10)  # red at 0.56, green at 0.43
    x = np.concatenate([right, close])
    np.savez(
        tmp_path / "sharp.npz", x_test=x, y_test=np.array([0] * 10 + [1] * 10), class_names=np.array(CLASSES)
    )
    result = invoke("calibrate", copy, "--data", tmp_path / "sharp.npz")
    assert result.exit_code == 0, result.output
    kept = json.loads((copy / "temperature.json").read_text("utf-8"))
    assert kept["temperature"] < 1 and "(it was underconfident)" in flat(result)
    assert kept["nll_after"] < kept["nll_before"] and kept["ece_after"] > kept["ece_before"] + 0.2
    text = flat(result)
    assert (
        f"note: the expected calibration error got worse with this temperature (ECE "
        f"{kept['ece_before']:.2%} → {kept['ece_after']:.2%})"
    ) in text
    assert f"`rm {copy / 'temperature.json'}` goes back to the model's own probabilities" in text
    assert "calibrate again on more images (a larger calibration set)" in text

    np.savez(tmp_path / "soft.npz", x_test=right, y_test=np.array([0, 1] * 5), class_names=np.array(CLASSES))
    softened = invoke("calibrate", copy, "--data", tmp_path / "soft.npz")
    assert softened.exit_code == 0, softened.output
    kept = json.loads((copy / "temperature.json").read_text("utf-8"))
    assert kept["temperature"] > 1 and "(it was overconfident)" in flat(softened)
    assert kept["ece_after"] < kept["ece_before"] and "got worse" not in flat(softened)


@pytest.mark.slow
def test_evaluate_data_says_the_runs_data_limit_cut_it(tmp_path):
    """`evaluate RUN --data FOLDER` reads the folder as the run's spec reads its data: a run
    with data.limit: 6 scored 6 of a folder's 10 images without a word."""
    make_images(tmp_path / "photos", {"a": 8, "b": 8}, seed=1)
    run = train(tmp_path, f"{{source: {{directory: {tmp_path / 'photos'}}}, limit: 6}}")
    other = tmp_path / "other"
    make_images(other, {"a": 5, "b": 5}, seed=9)
    scored = invoke("evaluate", run, "--data", other, "-o", tmp_path / "e")
    assert scored.exit_code == 0, scored.output
    assert "with data.limit: 6: at most 6 of its images are scored" in flat(scored)
    document = json.loads((tmp_path / "e" / "evaluation.json").read_text("utf-8"))
    assert any("data.limit: 6" in note for note in document["notes"])
