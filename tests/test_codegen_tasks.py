"""`codegen --script` for models that are not a single classifier (templates/train_task.py.j2).

The generated program trains a three-output model on the embedded shapes data (masks with Dice
on one-hot masks and a flip that moves the masks with their images, multi-label, Huber
regression with a loss weight) and a one-output segmentation model, and writes metrics.json
with the keys and, for the same seed, the numbers of `cnnspec train`.
"""

from __future__ import annotations

import json
import os
import unicodedata
from pathlib import Path

import numpy as np
import pytest

from cnnspec.api import compile_spec
from cnnspec.backends.python_emitter import generate_code
from cnnspec.errors import SpecError
from tests.conftest import FIXTURES, run_script

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


#: tiny_tasks with transfer (three outputs: segmentation, multi-label, regression; a normalisation
#: adapted to the training images, starting weights, two phases) runs in `make test`; plain
#: tiny_tasks, the one-output segmentation script (its own branches of the template) and the
#: scripts that read image files with masks, labels or values (FILE_CASES below) with
#: CNNSPEC_SCRIPT_TASKS=1 (`make test-script-tasks`), to keep `make test` within its time budget.
EXTRA_RUNS = ["tiny_tasks", "tiny_segmentation", "file:index_masks", "file:labels_csv", "file:values_csv"]
SCRIPT_RUNS = ["transfer:tiny_tasks", *(EXTRA_RUNS if os.environ.get("CNNSPEC_SCRIPT_TASKS") else [])]


def transfer_spec(tmp_path: Path, name: str) -> Path:
    """The fixture `name` with a normalisation adapted to the training images first, starting
    weights (random, seeded; the normalisation left out, so that its statistics stay adapted)
    and two phases that both keep the `skip` convolution frozen. The `count` output's loss
    weight and Huber delta and the second phase's learning rate read from vars (the script
    reads their constants)."""
    from cnnspec.backends.keras_builder import build_model

    text = (CODEGEN / f"{name}.yaml").read_text(encoding="utf-8")
    text = text.replace("name: tiny_tasks\n", "name: tiny_tasks\nvars: {w: 0.5, d: 1.5, lr: 0.003}\n", 1)
    text = text.replace(
        "loss: huber, loss_weight: 0.5", 'loss: {huber: {delta: "${d}"}}, loss_weight: "${w}"', 1
    )
    plain = tmp_path / "plain.yaml"
    plain.write_text(text, encoding="utf-8")
    model = build_model(compile_spec(plain).ir)
    rng = np.random.default_rng(5)
    for variable in model.weights:
        variable.assign(rng.normal(0, 0.3, tuple(variable.shape)).astype("float32"))
    model.save_weights(tmp_path / "start.weights.h5")
    text = text.replace("model:\n", "model:\n  - normalization: {adapt: true}\n", 1)
    text = text.replace("images: 60", "images: 32", 1)  # (fewer images: the run has more to do)
    phases = '  phases:\n    - {epochs: 1, freeze: [skip]}\n    - {epochs: 1, learning_rate: "${lr}"}\n'
    text = text.replace("  epochs: 2\n", phases, 1) + "weights: {from: start.weights.h5, strict: false}\n"
    spec = tmp_path / f"{name}_transfer.yaml"
    spec.write_text(text, encoding="utf-8")
    return spec


@pytest.mark.slow
@pytest.mark.parametrize("name", SCRIPT_RUNS)
def test_generated_script_trains_the_task_as_cnnspec_train_does(name, tmp_path):
    from cnnspec.training.trainer import train

    if name.startswith("file:"):  # its data written to tmp_path/data, read from the script's folder
        compiled = compile_spec(file_spec(tmp_path, name.removeprefix("file:")))
    elif name.startswith("transfer:"):
        compiled = compile_spec(transfer_spec(tmp_path, name.removeprefix("transfer:")))
    else:
        compiled = compile_spec(CODEGEN / f"{name}.yaml")
    script = tmp_path / "train.py"
    text = generate_code(compiled, script=True, output=script).text
    if name.startswith("transfer:"):
        assert '"count": W}' in text and "Huber(delta=D)" in text and "learning_rate=LR" in text
        assert "decided when this code was generated" not in text
    script.write_text(text, encoding="utf-8")
    run = run_script(script, "--out", str(tmp_path / "script"))
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
        # the same data (test split, targets) and, for the same seed, the same training: both
        # augment one batch at a time, so the random layers take their seeds in the same order
        for key in TASK_KEYS[part["task"]] & {k for k in expected if k.startswith("test_")}:
            assert part[key] == pytest.approx(expected[key], abs=1e-6), (output, key)
        if part["task"] == "segmentation":
            assert part["class_names"] == expected["class_names"]
            true_pixels = np.asarray(part["confusion_matrix"]).sum(axis=1)
            assert true_pixels.tolist() == np.asarray(expected["confusion_matrix"]).sum(axis=1).tolist()
        if part["task"] == "multilabel":
            support = {k: v["support"] for k, v in part["per_label"].items()}
            assert support == {k: v["support"] for k, v in expected["per_label"].items()}
    # Keras' own test metrics, one per output and metric (NAME_metric for several outputs),
    # at the top level under the names cnnspec train writes
    keras_keys = {k for k in ours if k.startswith("test_")} - {k for k in theirs if k.startswith("test_")}
    assert "test_loss" in theirs and not keras_keys, keras_keys
    if name.startswith("transfer:"):
        import keras

        from cnnspec.backends.keras_builder import build_model

        assert "phase 2/2: epochs 2-2" in run.stdout
        script_model = keras.saving.load_model(tmp_path / "script" / "model.keras")
        train_model = keras.saving.load_model(tmp_path / "cnnspec" / "model.keras")
        reference = build_model(compile_spec(tmp_path / "plain.yaml").ir)
        reference.load_weights(tmp_path / "start.weights.h5")

        def kernel(model: keras.Model, layer: str) -> np.ndarray:
            return model.get_layer(layer).get_weights()[0]

        # the starting weights, kept by the layer frozen in both phases; the others trained
        assert np.array_equal(kernel(script_model, "skip"), kernel(reference, "skip"))
        assert np.array_equal(kernel(train_model, "skip"), kernel(reference, "skip"))
        assert not np.array_equal(kernel(script_model, "deep"), kernel(reference, "deep"))
        # the normalisation adapted to the same training images (the weights file has none)
        mean = kernel(script_model, "normalization_1")
        assert np.abs(mean).max() > 0.05
        np.testing.assert_allclose(mean, kernel(train_model, "normalization_1"), rtol=1e-5)


#: Tiny models on image files with their targets (a masks folder, a labels or values table):
#: SOURCE is replaced by each case's `data.source`.
FILE_SPECS = {
    "segmentation": """\
cnnspec: 1
name: tiny_masks
input: {shape: [16, 16, 3]}
augmentation:
  - random_flip: horizontal
model:
  - conv2d: {filters: 4, kernel_size: 3, padding: same, activation: relu}
  - conv2d: {filters: 3, kernel_size: 1, activation: softmax}
data: {source: SOURCE, validation_split: 0.25}
training: {epochs: 2, batch_size: 8, loss: dice, metrics: [accuracy, mean_iou], seed: 3}
""",
    "multilabel": """\
cnnspec: 1
name: tiny_labels
input: {shape: [16, 16, 3]}
model:
  - conv2d: {filters: 4, kernel_size: 3, padding: same, activation: relu}
  - global_avg_pool2d
  - dense: {units: 3, activation: sigmoid}
data: {source: SOURCE, validation_split: 0.25}
training: {epochs: 2, batch_size: 8, seed: 3}
""",
    "regression": """\
cnnspec: 1
name: tiny_values
input: {shape: [16, 16, 1]}
model:
  - conv2d: {filters: 4, kernel_size: 3, padding: same, activation: relu}
  - global_avg_pool2d
  - dense: 2
data: {source: SOURCE, validation_split: 0.25}
training: {task: regression, loss: mse, epochs: 2, batch_size: 8, seed: 3}
""",
}
#: Each case: the task and its `data.source` (what write_files makes).
FILE_CASES = {
    "index_masks": ("segmentation", "{images: data/images, masks: data/masks, classes: [bg, a, b]}"),
    "colour_masks": (
        "segmentation",
        "{images: data/images, masks: data/colours,"
        " classes: {bg: [0, 0, 0], a: [200, 0, 0], b: [0, 0, 200]}}",
    ),
    "labels_csv": ("multilabel", "{images: data/images, labels: data/labels.csv}"),
    "labels_json": ("multilabel", "{images: data/images, labels: data/labels.json}"),
    "label_columns_csv": ("multilabel", "{images: data/images, labels: data/columns.csv}"),
    "values_csv": ("regression", "{images: data/images, values: data/values.csv}"),
    "values_json": ("regression", "{images: data/images, values: data/values.json}"),
}
COLOURS = np.array([[0, 0, 0], [200, 0, 0], [0, 0, 200]], dtype="uint8")


def write_files(folder: Path, count: int = 16) -> None:
    """Noise images (PNG, JPEG, one sub-folder, some larger than the model's 16×16) with masks
    of 3 classes (grayscale and palette index PNGs, and colour PNGs), labels and values tables."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for sub in ("images/sub", "masks/sub", "colours/sub"):
        (folder / sub).mkdir(parents=True)
    labels, values, lists, columns = [], [], {}, []
    for i in range(count):
        size = (20, 24) if i % 3 == 0 else (16, 16)
        name = f"sub/im{i:02d}.jpg" if i % 5 == 0 else f"im{i:02d}.png"
        Image.fromarray(rng.integers(0, 256, (*size, 3), dtype="uint8")).save(folder / "images" / name)
        mask = rng.integers(0, 3, size, dtype="uint8")
        mask_name = Path(name).with_suffix(".png")
        Image.fromarray(mask, mode="L" if i % 2 else "P").save(folder / "masks" / mask_name)
        Image.fromarray(COLOURS[mask]).save(folder / "colours" / mask_name)
        present = [n for n in ("cat", "dog", "owl") if rng.random() < 0.5]
        labels.append(f"{name},{';'.join(present) if i % 2 else ' '.join(present)}\n")
        lists[name] = [n for n in ("cat", "dog", "owl") if n not in present] or ["cat"]
        columns.append(f"{name},{','.join(str(int(n in present)) for n in ('cat', 'dog', 'owl'))}\n")
        values.append(f"{name},{rng.normal():.4f},{i}\n")
    (folder / "labels.csv").write_text("file,labels\n" + "".join(labels), encoding="utf-8")
    (folder / "labels.json").write_text(json.dumps(lists), encoding="utf-8")
    (folder / "columns.csv").write_text("file,cat,dog,owl\n" + "".join(columns), encoding="utf-8")
    (folder / "values.csv").write_text("file,size,index\n" + "".join(values), encoding="utf-8")
    (folder / "values.json").write_text(
        json.dumps({line.split(",")[0]: float(line.split(",")[2]) for line in values}), encoding="utf-8"
    )


def file_spec(tmp_path: Path, case: str) -> Path:
    task, source = FILE_CASES[case]
    text = FILE_SPECS[task].replace("SOURCE", source)
    if case == "values_json":  # one value per image
        text = text.replace("dense: 2", "dense: 1")
    write_files(tmp_path / "data")
    spec = tmp_path / f"{case}.yaml"
    spec.write_text(text, encoding="utf-8")
    return spec


def load_script(path: Path):
    """The generated script as a module (its main() does not run on import)."""
    import importlib.util

    module_spec = importlib.util.spec_from_file_location(f"generated_{path.stem}", path)
    assert module_spec is not None and module_spec.loader is not None
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(FILE_CASES))
def test_task_script_reads_image_files_as_cnnspec_train_does(case, tmp_path):
    """The script's data for image files with masks, labels or values are cnnspec train's:
    the same pixels (JPEG, resized, grayscale), the same masks (index, palette and colour PNGs),
    the same targets and names, the same seeded test and validation splits."""
    from cnnspec.analysis.settings import training_config
    from cnnspec.training.data import load_dataset

    compiled = compile_spec(file_spec(tmp_path, case))
    script = tmp_path / "scripts" / "train.py"
    script.parent.mkdir()
    text = generate_code(compiled, script=True, output=script, source_name=f"{case}.yaml").text
    script.write_text(text, encoding="utf-8")
    from tests.test_codegen import ruff_check

    assert ruff_check(text, tmp_path, "check.py") == ""
    module = load_script(script)
    config = training_config(compiled)
    (x_train, y_train), (x_val, y_val), (x_test, y_test), names = module.load_splits(
        config.data.path, config.data.labels_path
    )
    reference = load_dataset(compiled, config, config.seed)
    assert names == reference.class_names
    for mine, theirs in [
        (x_train, reference.x_train),
        (y_train, reference.y_train),
        (x_val, reference.x_val),
        (y_val, reference.y_val),
        (x_test, reference.x_test),
        (y_test, reference.y_test),
    ]:
        assert mine.shape == theirs.shape and len(mine)
        assert np.array_equal(mine, theirs)


@pytest.mark.slow
def test_task_script_stops_on_a_missing_mask(tmp_path):
    """A mask missing for an image stops the script with a message, as cnnspec train refuses it."""
    compiled = compile_spec(file_spec(tmp_path, "index_masks"))
    script = tmp_path / "train.py"
    script.write_text(generate_code(compiled, script=True, output=script).text, encoding="utf-8")
    (tmp_path / "data" / "masks" / "im01.png").unlink()
    module = load_script(script)
    with pytest.raises(SystemExit, match=r"no mask in .* for im01\.png"):
        module.read_files(tmp_path / "data" / "images", tmp_path / "data" / "masks")


def test_task_script_of_several_outputs_on_one_target_files_is_refused_with_a_location(tmp_path):
    """A masks folder gives one target: a three-output model on it is a located error (of the
    spec itself, as validate reports it: cnnspec train refused it only once the data were read),
    not a script that trains on the wrong targets."""
    spec = tmp_path / "tasks.yaml"
    text = (CODEGEN / "tiny_tasks.yaml").read_text(encoding="utf-8")
    start = text.index("  source:")
    text = text[:start] + "  source: {images: images, masks: masks}" + text[text.index("\n", start) :]
    spec.write_text(text, encoding="utf-8")
    with pytest.raises(SpecError) as caught:
        generate_code(compile_spec(spec), script=True)
    error = caught.value.errors[0]
    assert error.loc is not None and error.path == "data.source"
    assert error.message == (
        "expected a target per output (mask, present, count); the images source gives one array of masks"
    )


def test_task_script_of_a_source_it_does_not_read_is_refused_with_a_location(tmp_path):
    """Two classifier heads on the digits: the digits have one array of labels, not one per
    output, so the spec itself is refused at data.source (as validate refuses it: `cnnspec
    train` did only after loading the data) instead of a script that trains on other data."""
    spec = tmp_path / "heads.yaml"
    spec.write_text(
        """\
cnnspec: 1
name: two_heads
input: {shape: [8, 8, 1]}
model:
  - conv2d: {filters: 4, kernel_size: 3, padding: same, activation: relu}
  - global_avg_pool2d:
    id: features
  - dense: {units: 10, activation: softmax}
    id: first
  - dense: {units: 10, activation: softmax}
    id: second
    inputs: features
outputs: [first, second]
data: {source: digits}
""",
        encoding="utf-8",
    )
    with pytest.raises(SpecError) as caught:
        generate_code(compile_spec(spec), script=True)
    error = caught.value.errors[0]
    assert error.path == "data.source" and error.loc is not None and error.loc.line == 14
    assert error.message == (
        "expected a target per output (first, second); the digits source gives one array of class labels"
    )
    assert error.hint == (
        "use source: {shapes: {target: {first: class, second: class}}}, or "
        "{npz: FILE} with y_train_NAME and y_test_NAME for every output NAME"
    )


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


def test_one_output_task_script_freezes_per_phase(tmp_path):
    """training.phases in a one-output task script: a PHASES table with each phase's frozen
    layers (as `cnnspec train` resolves the patterns) and a fit per phase (the three-output
    script runs them in the training test above)."""
    spec = tmp_path / "seg.yaml"
    text = (CODEGEN / "tiny_segmentation.yaml").read_text(encoding="utf-8")
    phases = "  phases: [{epochs: 1, freeze: [skip]}, {epochs: 1, unfreeze: [skip]}]\n"
    spec.write_text(text.replace("  epochs: 2\n", phases), encoding="utf-8")
    script = generate_code(compile_spec(spec), script=True).text
    assert '{"epochs": 1, "frozen": ["skip"]},\n    {"epochs": 1, "frozen": []},' in script
    assert "for phase, settings in enumerate(PHASES):" in script and "loss=keras.losses.Dice()" in script


def test_a_regression_scripts_value_names_are_trains_when_the_data_names_none(tmp_path):
    """An .npz of two regression targets without class_names: train writes class_names
    ["0", "1"] (its numbered value names), the script wrote []. Its evaluate_model runs here on
    a stand-in model, without TensorFlow."""
    from cnnspec.analysis.settings import training_config
    from cnnspec.training.task_results import task_metrics
    from tests.test_listing_edges import script_functions

    rng = np.random.default_rng(0)
    x, y = rng.random((12, 16, 16, 1), dtype="float32"), rng.random((12, 2), dtype="float32")
    np.savez(tmp_path / "values.npz", x_train=x, y_train=y, x_test=x, y_test=y)
    spec = tmp_path / "spec.yaml"
    spec.write_text(FILE_SPECS["regression"].replace("SOURCE", "{npz: values.npz}"), encoding="utf-8")
    outputs = y + 0.1

    class StandIn:
        def evaluate(self, test, return_dict, verbose):
            return {"loss": 0.01}

        def predict(self, test, verbose):
            return outputs

    _, summary = script_functions(spec)["evaluate_model"](StandIn(), None, y, [])
    expected = task_metrics(training_config(compile_spec(spec)), y, outputs, ["0", "1"])
    assert summary["class_names"] == expected["class_names"] == ["0", "1"]
    assert summary["per_target"].keys() == expected["per_target"].keys()


#: the script's functions that check a single output's mask classes (check_masks and what it calls)
MASK_CHECKS = ("check_masks", "check_mask_misfit", "check_mask_count")


def test_the_script_checks_mask_class_ids_against_the_outputs_channels():
    """A mask id of 3 for a 3-channel output trained as no class at all (one-hot of 3 is zeros)
    or crashed mid-training; cnnspec train refuses it before training, and so does the script."""
    import ast

    from cnnspec.api import compile_spec
    from cnnspec.backends.python_emitter import generate_code
    from tests.conftest import ROOT

    code = generate_code(compile_spec(ROOT / "specs" / "unet_shapes.yaml"), script=True).text
    tree = ast.parse(code)
    kept = [
        node
        for node in tree.body
        if (isinstance(node, ast.FunctionDef) and node.name in MASK_CHECKS)
        or (
            isinstance(node, ast.Assign)
            and any(getattr(t, "id", "") in ("MASK_CHANNELS", "OUTPUTS") for t in node.targets)
        )
    ]
    namespace: dict = {"np": np}
    exec(compile(ast.Module(kept, []), "train.py", "exec"), namespace)  # (the generated code)
    ((_output, classes),) = namespace["MASK_CHANNELS"].items()
    good = np.zeros((2, 4, 4), "uint8")
    good[0, 0, 0] = classes - 1
    namespace["check_masks"]((good, good[:0], good), [])
    bad = good.copy()
    bad[1, 2, 2] = classes
    with pytest.raises(  # (train's words: tests/test_script_refusal_order.py compares them)
        SystemExit,
        match=f"expected at most {classes} mask classes .*; the data has {classes + 1} ",
    ):
        namespace["check_masks"]((good, good[:0], bad), [])


def test_the_scripts_multi_output_npz_names_are_checked_as_cnnspec_train_checks_them(tmp_path):
    """The script trained where `cnnspec train` refused: a class_names_<x> naming no output, too
    few names for a classifier."""
    import ast

    from cnnspec.api import compile_spec
    from cnnspec.backends.python_emitter import generate_code

    spec = tmp_path / "two.yaml"
    spec.write_text(
        "cnnspec: 1\nname: two\ninput: {shape: [8, 8, 3]}\nmodel:\n"
        "  - conv2d: {filters: 4, kernel_size: 1, activation: softmax}\n    id: seg\n"
        "  - global_avg_pool2d:\n    inputs: seg\n  - dense: {units: 3, activation: softmax}\n    id: kind\n"
        "outputs: [seg, kind]\ndata: {source: {npz: two.npz}}\n"
    )
    code = generate_code(compile_spec(spec), script=True).text
    wanted = {"load_data", "check_names", "check_depths", "check_pixels", "pixel_max", "OUTPUTS", "names_for"}
    wanted |= {
        "check_images",
        "check_shapes",
        "check_read_targets",
        "check_values",
        "check_counts",
        "CLASS_COUNT",
        "npz_arrays",
        "npz_names",
        "check_unique_names",
    }
    wanted |= {
        "check_mask",
        "MASK_CHANNELS",
        "MASK_NAMES_SAID",
        "target_kinds",
        "check_labels",
        "check_value_names",
    }
    wanted |= {"open_npz", "npz_array", "not_found", "ZIP_PREFIXES", "ERROR_MODULES", "promised_bytes"}
    kept = [
        node
        for node in ast.parse(code).body
        if (isinstance(node, ast.FunctionDef) and node.name in wanted)
        or (isinstance(node, ast.Assign) and any(getattr(t, "id", "") in wanted for t in node.targets))
    ]
    namespace: dict = {"np": np, "unicodedata": unicodedata, "Path": Path}
    exec(compile(ast.Module(kept, []), "train.py", "exec"), namespace)  # (the generated code)
    x = np.zeros((6, 8, 8, 3), "uint8")
    arrays = {"x_train": x, "x_test": x, "y_train_seg": np.zeros((6, 8, 8), "uint8")}
    arrays |= {
        "y_test_seg": np.zeros((6, 8, 8), "uint8"),
        "y_train_kind": np.arange(6) % 3,
        "y_test_kind": np.arange(6) % 3,
    }
    for extra, message in (
        ({"class_names_sge": np.array(["a"])}, "has class_names_sge"),
        (
            {"class_names": np.array(["a"])},
            r"each of the 3 classes \(labels 0–2\) in .*; its class_names has 1 \(a\)",
        ),
        ({"class_names_kind": np.array(["a", "b"])}, "class_names_kind has 2"),
    ):
        np.savez(tmp_path / "two.npz", **arrays, **extra)
        with pytest.raises(SystemExit, match=message):
            namespace["load_data"](str(tmp_path / "two.npz"))
    np.savez(tmp_path / "two.npz", **arrays, class_names=np.array(["a", "b", "c"]))
    *_, names = namespace["load_data"](str(tmp_path / "two.npz"))
    assert names == {"seg": [], "kind": ["a", "b", "c"]}
