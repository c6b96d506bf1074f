"""``evaluate --data FOLDER`` on a run trained with ``data.classes``: the folder's classes are
matched to the run's by name, as for a run without a selection. A folder of some of the
selected classes was refused ("expected a class of the data; received 'dog'": the selection
was applied to it and wanted all of them); it is scored in the run's class order, support 0
for the absent. A folder with a class outside the selection is refused naming it."""

from __future__ import annotations

import json

import pytest

from cnnspec.api import compile_spec
from cnnspec.cli.app import app
from tests.test_stream import make_images

# (one worker runs the module, so `run_with_classes` is trained once, not once per xdist worker)
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("selected_classes_run")]

SPEC = """cnnspec: 1
name: picked
input: {shape: [8, 8, 3]}
model:
  - conv2d: {filters: 2, kernel_size: 3}
  - global_avg_pool2d
  - dense: {units: 2, activation: softmax}
data:
  source: {directory: pics, test_directory: held}
  classes: [dog, cat]
training: {epochs: 1, batch_size: 4, seed: 1}
"""


@pytest.fixture(scope="module")
def run_with_classes(tmp_path_factory):
    from cnnspec.training.trainer import train

    root = tmp_path_factory.mktemp("picked")
    make_images(root / "pics", {"bird": 6, "cat": 6, "dog": 6})
    make_images(root / "held", {"bird": 2, "cat": 2, "dog": 2}, seed=1)
    make_images(root / "onlycat", {"cat": 3}, seed=2)
    make_images(root / "withbird", {"bird": 2, "cat": 2}, seed=3)
    (root / "spec.yaml").write_text(SPEC)
    train(compile_spec(root / "spec.yaml"), out=root / "run", write_report=None)
    return root


def test_a_folder_of_some_selected_classes_is_scored_in_the_runs_order(run_with_classes, runner):
    root = run_with_classes
    out = root / "ev"
    result = runner.invoke(
        app, ["evaluate", str(root / "run"), "--data", str(root / "onlycat"), "-f", "json", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    report = json.loads((out / "evaluation.json").read_text())
    assert report["class_names"] == ["dog", "cat"] and report["data"]["images"] == 3
    assert {name: row["support"] for name, row in report["per_class"].items()} == {"dog": 0, "cat": 3}


@pytest.mark.parametrize("folder", ["withbird", "pics"], ids=["another-class", "the-runs-whole-source"])
def test_a_folder_with_a_class_the_run_did_not_select_is_refused_naming_it(run_with_classes, runner, folder):
    """withbird/ adds bird to the selected classes; pics/, the run's own source, holds bird, cat
    and dog: each is refused naming bird, not only counting 3 classes for 2 units."""
    root = run_with_classes
    result = runner.invoke(app, ["evaluate", str(root / "run"), "--data", str(root / folder)])
    assert result.exit_code == 2, result.output
    assert "error: expected class folders named like the run's classes (dog, cat); received bird" in (
        " ".join(result.output.split())
    )


def _npz(path, labels):
    """An .npz of test arrays alone, labelled as the run's source (bird, cat, dog) labels them."""
    import numpy as np

    x = np.random.default_rng(0).integers(0, 256, (len(labels), 8, 8, 3)).astype("uint8")
    np.savez(path, x_test=x, y_test=np.array(labels), class_names=np.array(["bird", "cat", "dog"]))
    return path


def test_an_npz_with_a_class_the_run_did_not_select_is_refused_naming_it(run_with_classes, runner):
    """The run's data.classes applied to an .npz --data dropped its bird images unsaid (2 of 5
    scored, exit 0), where a folder of them is refused; evaluate and calibrate alike."""
    root = run_with_classes
    npz = _npz(root / "withbird.npz", [0, 1, 1, 0, 2])
    for command in ("evaluate", "calibrate"):
        result = runner.invoke(app, [command, str(root / "run"), "--data", str(npz)])
        assert result.exit_code == 2, result.output
        assert " ".join(result.output.split()) == (
            "error: expected --data test images of the run's classes only ('dog', 'cat'); received 2 of 5 "
            "test images of classes the run does not have: 'bird' (2 images) hint: leave the images of "
            "those classes out of --data (they would be left out unscored)"
        )
    out = root / "ev_npz"
    cats = _npz(root / "cats.npz", [1, 1, 1])  # some of the selected classes: scored, dog's support 0
    result = runner.invoke(
        app, ["evaluate", str(root / "run"), "--data", str(cats), "-f", "json", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    report = json.loads((out / "evaluation.json").read_text())
    assert report["per_class"]["dog"]["support"] == 0 and report["per_class"]["dog"]["recall"] is None
    assert report["macro_avg"]["recall"] == report["per_class"]["cat"]["recall"]
    assert "class dog has no test images (support 0)" in " ".join(report["notes"])
