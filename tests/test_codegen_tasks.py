"""`codegen --script` for models that are not a single classifier (templates/train_task.py.j2).

The generated program trains a three-output model on the embedded shapes data (masks with Dice
on one-hot masks and a flip that moves the masks with their images, multi-label, Huber
regression with a loss weight) and a one-output segmentation model, and writes metrics.json
with the keys and, for the same seed, the numbers of `cnnspec train`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from cnnspec.api import compile_spec
from cnnspec.backends.python_emitter import generate_code
from cnnspec.errors import SpecError
from tests.conftest import FIXTURES

CODEGEN = FIXTURES / "codegen"
#: The metrics.json keys of each task (task_results.py), which the script must write too.
TASK_KEYS = {
    "segmentation": {"test_mean_iou", "test_pixel_accuracy", "per_class_iou", "confusion_matrix"},
    "multilabel": {"test_f1_macro", "per_label", "f1_micro", "exact_match"},
    "regression": {"test_mae", "test_rmse", "test_r2", "per_target"},
}


def _parts(metrics: dict) -> dict[str, dict]:
    """Each output's summary by name (one output: the top level)."""
    if "outputs" in metrics:
        return metrics["outputs"]
    return {metrics["output"]: metrics}


#: tiny_tasks (three outputs: segmentation, multi-label, regression) runs in `make test`; the
#: one-output segmentation script (its own branches of the template) with CNNSPEC_SCRIPT_TASKS=1
#: (`make test-script-tasks`), to keep `make test` within its time budget.
SCRIPT_RUNS = ["tiny_tasks", *(["tiny_segmentation"] if os.environ.get("CNNSPEC_SCRIPT_TASKS") else [])]


@pytest.mark.slow
@pytest.mark.parametrize("name", SCRIPT_RUNS)
def test_generated_script_trains_the_task_as_cnnspec_train_does(name, tmp_path):
    from cnnspec.training.trainer import train

    compiled = compile_spec(CODEGEN / f"{name}.yaml")
    script = tmp_path / "train.py"
    script.write_text(generate_code(compiled, script=True, output=script).text, encoding="utf-8")
    run = subprocess.run(
        [sys.executable, str(script), "--out", str(tmp_path / "script")],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    theirs = json.loads((tmp_path / "script" / "metrics.json").read_text())
    ours = train(compiled, out=tmp_path / "cnnspec").metrics
    assert theirs["epochs"] == ours["epochs_run"] == 2
    assert theirs["test_images"] == ours["test_images"]
    assert theirs.get("task") == ours["task"]
    mine, reference = _parts(theirs), _parts(ours)
    assert set(mine) == set(reference) and mine
    for output, part in mine.items():
        expected = reference[output]
        assert part["task"] == expected["task"]
        assert TASK_KEYS[part["task"]] <= set(part)
        if "outputs" in theirs:  # (one output: the summary shares the top level with the run's keys)
            assert set(part) == set(expected), output
        # the same data (test split, targets) and, for the same seed, the same training
        for key in TASK_KEYS[part["task"]] & {k for k in expected if k.startswith("test_")}:
            assert part[key] == pytest.approx(expected[key], abs=0.02), (output, key)
        if part["task"] == "segmentation":
            assert part["class_names"] == expected["class_names"]
            true_pixels = np.asarray(part["confusion_matrix"]).sum(axis=1)
            assert true_pixels.tolist() == np.asarray(expected["confusion_matrix"]).sum(axis=1).tolist()
        if part["task"] == "multilabel":
            support = {k: v["support"] for k, v in part["per_label"].items()}
            assert support == {k: v["support"] for k, v in expected["per_label"].items()}
    # Keras' own test metrics, one per output and metric (NAME_metric for several outputs)
    assert {"loss"} < set(theirs["test"])


def test_task_script_refuses_image_folders_with_a_location(tmp_path):
    """A source the task script cannot read yet is a located error, not a failing script."""
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    spec = tmp_path / "seg.yaml"
    text = (CODEGEN / "tiny_segmentation.yaml").read_text(encoding="utf-8")
    text = text.replace(
        "source: {shapes: {images: 60, image_size: [16, 16], target: mask}}",
        "source: {images: images, masks: masks, image_size: [16, 16]}",
    )
    spec.write_text(text, encoding="utf-8")
    with pytest.raises(SpecError) as caught:
        generate_code(compile_spec(spec), script=True)
    error = caught.value.errors[0]
    assert error.loc is not None and error.path == "data.source"
    assert "not supported yet" in error.message


def test_task_script_prepares_and_scores_each_output_for_its_task():
    """The segmentation script sends one-hot masks to Dice and moves masks with the flip only;
    the three-output script weights the losses, moves only the mask target with the images
    and scores each output with its own summary."""
    seg = generate_code(compile_spec(CODEGEN / "tiny_segmentation.yaml"), script=True).text
    assert "keras.losses.Dice()" in seg and "tf.one_hot(tf.cast(labels, tf.int32), 4)" in seg
    assert "GEOMETRIC = (True, False)" in seg and '"segmentation_masks"' in seg
    several = generate_code(compile_spec(CODEGEN / "tiny_tasks.yaml"), script=True).text
    assert 'loss_weights={"mask": 1.0, "present": 1.0, "count": 0.5}' in several
    assert "keras.losses.Huber(delta=1.0)" in several and 'for name in ("mask",)' in several
    assert "multilabel_summary(" in several and "regression_summary(" in several


def test_task_script_refuses_phases_with_a_location(tmp_path):
    """training.phases is not in the task script yet: refused at its key, not ignored."""
    spec = tmp_path / "seg.yaml"
    text = (CODEGEN / "tiny_segmentation.yaml").read_text(encoding="utf-8")
    spec.write_text(text.replace("  epochs: 2\n", "  phases: [{epochs: 1}, {epochs: 1}]\n"), encoding="utf-8")
    with pytest.raises(SpecError) as caught:
        generate_code(compile_spec(spec), script=True)
    error = caught.value.errors[0]
    assert error.loc is not None and error.path == "training.phases"
    assert "not supported yet" in error.message
