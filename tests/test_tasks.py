"""Tasks (analysis/tasks.py): inferred from the outputs, stated with training.task or per output
with training.outputs, and checked before any data is read — located errors through
`cnnspec validate`, no TensorFlow."""

from __future__ import annotations

import pytest

from cnnspec.analysis.settings import training_config
from cnnspec.api import compile_text
from cnnspec.cli.app import app

HEAD = "cnnspec: 1\nname: t\ninput: {shape: [8, 8, 1]}\n"
NPZ = "data: {source: {npz: d.npz}}\n"
SEGMENT = "model:\n  - conv2d: {filters: 3, kernel_size: 1, activation: softmax}\n"
MULTI = """\
model:
  - conv2d: {filters: 4, kernel_size: 3, padding: same}
    id: features
  - conv2d: {filters: 3, kernel_size: 1, activation: softmax}
    id: mask
  - global_avg_pool2d:
    inputs: features
  - dense: 2
    id: size
outputs: [mask, size]
"""


def tasks_of(text: str) -> list[tuple[str, str, tuple[str, ...]]]:
    config = training_config(compile_text(HEAD + text, "spec.yaml"))
    return [(t.task, t.loss.name, tuple(m.log_name for m in t.metrics)) for t in config.tasks]


@pytest.mark.parametrize(
    ("model", "training", "expected"),
    [
        # a per-pixel softmax: segmentation, sparse cross-entropy, pixel accuracy and mean IoU
        (SEGMENT, "", ("segmentation", "sparse_categorical_crossentropy", ("accuracy", "mean_iou"))),
        # a 1-channel sigmoid map: binary masks
        (
            "model:\n  - conv2d: {filters: 1, kernel_size: 1, activation: sigmoid}\n",
            "",
            ("segmentation", "binary_crossentropy", ("accuracy", "mean_iou")),
        ),
        # several independent sigmoids: multi-label
        (
            "model: [flatten, {dense: {units: 4, activation: sigmoid}}]\n",
            "",
            ("multilabel", "binary_crossentropy", ("f1",)),
        ),
        # a regression loss on a linear head: regression
        ("model: [flatten, {dense: 2}]\n", "training: {loss: mae}\n", ("regression", "mae", ("mae", "r2"))),
        # stated: a linear head is a regression only when the spec says so
        (
            "model: [flatten, {dense: 1}]\n",
            "training: {task: regression}\n",
            ("regression", "mse", ("mae", "r2")),
        ),
        # today's classifiers are unchanged
        (
            "model: [flatten, {dense: {units: 3, activation: softmax}}]\n",
            "",
            ("classification", "sparse_categorical_crossentropy", ("accuracy",)),
        ),
        (
            "model: [flatten, {dense: {units: 1, activation: sigmoid}}]\n",
            "",
            ("classification", "binary_crossentropy", ("accuracy",)),
        ),
        (SEGMENT, "training: {loss: dice, metrics: [mean_iou]}\n", ("segmentation", "dice", ("mean_iou",))),
    ],
)
def test_task_is_inferred_or_stated(model, training, expected):
    assert tasks_of(model + NPZ + training) == [expected]


def test_multi_output_model_has_a_task_loss_weight_and_metrics_per_output():
    text = (
        MULTI
        + NPZ
        + "training:\n  outputs:\n    mask: {loss: dice}\n"
        + "    size: {task: regression, loss_weight: 0.25, metrics: [rmse]}\n"
    )
    config = training_config(compile_text(HEAD + text, "spec.yaml"))
    assert [(t.name, t.task, t.loss.name, t.loss_weight) for t in config.tasks] == [
        ("mask", "segmentation", "dice", 1.0),
        ("size", "regression", "mse", 0.25),
    ]
    # Keras logs each output's loss and metrics as NAME_KEY: callbacks may monitor them
    assert {"mask_mean_iou", "val_size_rmse", "val_mask_loss"} <= set(config.logged_names(True))


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        # the output's shape does not fit the stated task (a pooled map is not the input's size)
        (
            "model:\n  - max_pool2d: 2\n  - conv2d: {filters: 3, kernel_size: 1, activation: softmax}\n"
            + NPZ
            + "training: {task: segmentation}\n",
            6,
            "expected a segmentation output of shape [8, 8, classes]",
        ),
        (
            SEGMENT + NPZ + "training: {task: regression}\n",
            5,
            "expected a regression output of shape [units]",
        ),
        (
            "model: [flatten, {dense: {units: 3, activation: softmax}}]\n"
            + NPZ
            + "training: {task: multilabel}\n",
            4,
            "expected a sigmoid output for multilabel",
        ),
        # loss and metric fit the task
        (SEGMENT + NPZ + "training: {loss: mse}\n", 7, "expected a segmentation loss"),
        (
            "model: [flatten, {dense: 2}]\n"
            + NPZ
            + "training: {task: regression, metrics: [mae, accuracy]}\n",
            6,
            "expected a regression metric (mae, mse, rmse, r2); received accuracy",
        ),
        (SEGMENT + NPZ + "training: {metrics: [f1]}\n", 7, "expected a segmentation metric"),
        # a source with class labels only can't feed another task
        ("model: [flatten, {dense: 2}]\ntraining: {task: regression}\n", 5, "digits has class labels only"),
        (SEGMENT + "data: {source: mnist}\ntraining: {epochs: 1}\n", 6, "mnist has class labels only"),
        # multi-output settings go per output, by an output's name
        (MULTI + NPZ + "training: {loss: mse}\n", 15, "expected training.outputs.NAME.loss"),
        (
            MULTI + NPZ + "training:\n  outputs: {sise: {loss: mse}}\n",
            16,
            "expected the name of a model output",
        ),
        (
            "model: [flatten, {dense: 2}]\n" + NPZ + "training: {task: regression, threshold: 0.3}\n",
            6,
            "expected threshold only for a multilabel output",
        ),
    ],
)
def test_task_mistakes_are_located_errors(runner, tmp_path, text, line, message):
    spec = tmp_path / "spec.yaml"
    spec.write_text(HEAD + text, encoding="utf-8")
    result = runner.invoke(app, ["validate", str(spec)])
    assert result.exit_code == 1, result.output
    assert f"spec.yaml:{line}:" in result.output and message in result.output, result.output


@pytest.mark.parametrize(
    ("model", "key", "message"),
    [
        ("model: [flatten, {dense: {units: 2, activation: softmax}}]\n", "labels", "classification"),
        ("model: [flatten, {dense: {units: 2, activation: softmax}}]\n", "values", "classification"),
        ("model: [flatten, {dense: {units: 2, activation: softmax}}]\n", "masks", "classification"),
        ("model: [flatten, {dense: {units: 3, activation: sigmoid}}]\n", "masks", "multilabel"),
        (SEGMENT, "labels", "segmentation"),
    ],
)
def test_an_images_source_of_another_tasks_targets_is_refused_by_validate(
    runner, tmp_path, model, key, message
):
    """The key of an `{images: …}` source fixes its targets (labels: label sets, values: values,
    masks: masks). validate passed a head of another task, and train refused it once it had read
    every image, with a hint about `shapes`."""
    files = {"labels": "labels.csv", "values": "values.csv", "masks": "masks"}
    spec = tmp_path / "spec.yaml"
    source = f"data: {{source: {{images: imgs, {key}: {files[key]}}}}}\n"
    spec.write_text(HEAD + model + source, encoding="utf-8")
    result = runner.invoke(app, ["validate", str(spec)])
    assert result.exit_code == 1, result.output
    said = " ".join(result.output.split())
    given = {"labels": "multilabel", "values": "regression", "masks": "mask"}[key]
    assert f"error: data.source.{key}: expected " in said and f"for the {message} output" in said, said
    assert f"the data has {given} targets" in said
    assert f"hint: an images source's {key} give" in said and "shapes" not in said


def test_fewer_mask_class_names_than_the_outputs_classes_are_refused_by_validate(runner, tmp_path):
    """Too many names were refused at validate, too few only by train, once every image and mask
    had been read."""
    spec = tmp_path / "spec.yaml"
    source = "data: {source: {images: imgs, masks: masks, classes: [background, road]}}\n"
    spec.write_text(HEAD + SEGMENT + source, encoding="utf-8")
    result = runner.invoke(app, ["validate", str(spec)])
    assert result.exit_code == 1, result.output
    assert (
        "error: data.source.classes: expected a name for each of the output's 3 classes; "
        "data.source.classes has 2 (background, road)"
    ) in " ".join(result.output.split())


@pytest.mark.parametrize("shape", [[1], [4, 3]])
def test_a_segmentation_of_an_input_that_is_no_image_is_a_located_error(runner, tmp_path, shape):
    """Found by `make fuzz`: an input of rank 1 (`shape: [1]`) made the segmentation check index
    the input's missing width, an IndexError instead of an error."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        f"cnnspec: 1\nname: t\ninput: {{shape: {shape}}}\nmodel:\n  - batch_norm\n"
        + NPZ
        + "training: {task: segmentation}\n",
        encoding="utf-8",
    )
    result = runner.invoke(app, ["validate", str(spec)])
    assert result.exit_code == 1, result.output
    said = " ".join(result.output.split())
    assert (
        "spec.yaml:5:5: error: model[0].batch_norm: expected an image input [height, width, channels] for "
        f"a segmentation output (training task segmentation); the input's shape is {shape}"
    ) in said, said
    assert "hint: a segmentation gives each pixel of an image a class" in said, said


@pytest.mark.parametrize(
    ("training", "where", "key"),
    [
        ("training: {threshold: 0}\n", "9:23", "training.threshold"),
        ("training: {threshold: '${0 * 1}'}\n", "9:23", "training.threshold"),
        ("training:\n  outputs: {labels: {threshold: 0}}\n", "10:33", "training.outputs.labels.threshold"),
    ],
    ids=["threshold", "expression", "per-output"],
)
def test_a_threshold_of_0_is_a_located_error(runner, tmp_path, training, where, key):
    """Keras' metrics refuse a threshold of 0 (``0 < threshold <= 1``): it passed validate and
    training ended in an internal error, leaving a half-made run folder."""
    spec = tmp_path / "spec.yaml"
    model = "model:\n  - flatten\n  - dense: {units: 3, activation: sigmoid}\n    id: labels\n"
    spec.write_text(HEAD + model + NPZ + training, encoding="utf-8")
    result = runner.invoke(app, ["validate", str(spec)])
    assert result.exit_code == 1, result.output
    received = "0" if "${" in training else "integer 0"
    assert f"spec.yaml:{where}: error: {key}: expected a number > 0 and ≤ 1; received {received}" in (
        result.output
    )


def test_did_you_mean_for_an_output_name(runner, tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text(HEAD + MULTI + NPZ + "training:\n  outputs: {sise: {loss: mse}}\n", encoding="utf-8")
    result = runner.invoke(app, ["validate", str(spec)])
    assert "size" in result.output.split("hint:")[1]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # Keras' Dice compares probabilities: a linear map would train on nonsense
        (
            "model:\n  - conv2d: {filters: 3, kernel_size: 1}\n"
            + NPZ
            + "training: {task: segmentation, loss: dice}\n",
            "expected probabilities for the dice loss",
        ),
        (
            SEGMENT + NPZ + "training: {class_weight: balanced}\n",
            "expected class_weight only for a single classification output; this one is for segmentation",
        ),
        # several outputs: said so, not "this one is for classification" (the first output's task)
        (
            "model:\n  - flatten: {}\n    id: f\n  - dense: {units: 3, activation: softmax}\n    id: head\n"
            "  - dense: 1\n    id: size\n    inputs: f\noutputs: [head, size]\n"
            + NPZ
            + "training:\n  class_weight: {1: 2}\n  outputs: {size: {task: regression}}\n",
            "expected class_weight only for a single classification output; this model has 2 outputs "
            "(head: classification, size: regression)",
        ),
    ],
)
def test_settings_that_only_fit_other_tasks(text, message):
    from cnnspec.errors import SpecError

    with pytest.raises(SpecError) as info:
        training_config(compile_text(HEAD + text, "spec.yaml"))
    assert message in str(info.value)


def test_training_script_of_other_tasks_reads_npz_and_image_folders(runner, tmp_path):
    """codegen --script trains a regression on npz data and on a value table beside image files
    (backends/codegen_tasks.py; the script's data are compared with cnnspec's in
    test_codegen_tasks.py)."""
    spec = tmp_path / "spec.yaml"
    model = HEAD + "model: [flatten, {dense: 2}]\n"
    spec.write_text(model + NPZ + "training: {task: regression}\n", encoding="utf-8")
    result = runner.invoke(app, ["codegen", str(spec), "--script"])
    assert result.exit_code == 0, result.output
    assert "regression_summary(" in result.stdout and "keras.losses.MeanSquaredError()" in result.stdout
    (tmp_path / "imgs").mkdir()
    (tmp_path / "values.csv").write_text("file,a,b\n", encoding="utf-8")
    source = "data: {source: {images: imgs, values: values.csv, image_size: [8, 8]}}\n"
    spec.write_text(model + source + "training: {task: regression}\n", encoding="utf-8")
    result = runner.invoke(app, ["codegen", str(spec), "--script"])
    assert result.exit_code == 0, result.output
    assert "def read_files(folder, table):" in result.stdout and '"--targets"' in result.stdout


def shapes_source(target: str) -> str:
    return f"data: {{source: {{shapes: {{images: 20, target: {target}}}}}}}\n"


@pytest.mark.parametrize(
    ("model", "target", "training", "where", "message"),
    [
        # a regression head fed masks: train blamed the model ("end the model with conv2d")
        (
            "model: [flatten, {dense: 1}]\n",
            "mask",
            "training: {task: regression}\n",
            "data.source.shapes.target",
            "a count or area target for the regression output dense_1; received 'mask', the targets of "
            "a segmentation output",
        ),
        # an inferred classifier (a linear head) fed counts: train ended in an internal error
        (
            "model: [flatten, {dense: 1}]\n",
            "count",
            "training: {epochs: 1}\n",
            "data.source.shapes.target",
            "a class target for the classification output dense_1 (inferred from its head: one without "
            "a regression loss is a classifier); received 'count'",
        ),
        # a stated classifier fed label sets: train ended in an internal error
        (
            "model: [flatten, {dense: {units: 3, activation: softmax}}]\n",
            "multilabel",
            "training: {task: classification}\n",
            "data.source.shapes.target",
            "a class target for the classification output dense_1; received 'multilabel'",
        ),
        # one target per output: the output's own entry
        (
            MULTI,
            "{mask: multilabel, size: count}",
            "training:\n  outputs: {size: {task: regression}}\n",
            "data.source.shapes.target.mask",
            "a mask target for the segmentation output mask; received 'multilabel'",
        ),
    ],
)
def test_a_shapes_target_of_another_task_is_refused_by_validate(
    runner, tmp_path, model, target, training, where, message
):
    text = HEAD + model + shapes_source(target) + training
    spec = tmp_path / "spec.yaml"
    spec.write_text(text, encoding="utf-8")
    result = runner.invoke(app, ["validate", str(spec)])
    assert result.exit_code == 1, result.output
    line = text.splitlines().index(shapes_source(target).strip()) + 1
    assert f"spec.yaml:{line}:" in result.output and f"error: {where}: " in result.output, result.output
    # a stated task: change the target first; an inferred one: say the task first
    first = "hint: set target:" if "task" in training else "hint: set training.task: regression"
    assert message in result.output and first in result.output, result.output


@pytest.mark.parametrize(
    ("model", "target", "training"),
    [
        ("model: [flatten, {dense: 1}]\n", "count", "training: {task: regression}\n"),
        ("model: [flatten, {dense: 1}]\n", "area", "training: {task: regression}\n"),
        (SEGMENT, "mask", ""),
        ("model: [flatten, {dense: {units: 3, activation: sigmoid}}]\n", "multilabel", ""),
        ("model: [flatten, {dense: {units: 3, activation: softmax}}]\n", "class", ""),
        (MULTI, "{mask: mask, size: count}", "training:\n  outputs: {size: {task: regression}}\n"),
    ],
)
def test_a_shapes_target_of_the_tasks_kind_validates(runner, tmp_path, model, target, training):
    spec = tmp_path / "spec.yaml"
    spec.write_text(HEAD + model + shapes_source(target) + training, encoding="utf-8")
    result = runner.invoke(app, ["validate", str(spec)])
    assert result.exit_code == 0, result.output


TWO_HEADS = """\
model:
  - conv2d: {filters: 2, kernel_size: 3}
  - global_avg_pool2d:
    id: features
  - dense: {units: 3, activation: softmax}
    id: head
  - dense: 2
    id: size
    inputs: features
outputs: [head, size]
"""
SIZE_REGRESSION = "training:\n  outputs: {size: {task: regression}}\n"
DIGITS_MESSAGE = "expected a target per output (head, size); the {} source gives one array of class labels"
ELSEWHERE = (
    "use source: {shapes: {target: {head: class, size: count}}}, or "
    "{npz: FILE} with y_train_NAME and y_test_NAME for every output NAME"
)


@pytest.mark.parametrize(
    ("data", "training", "where", "message", "hint"),
    [
        # two classifiers on the digits: train refused them only after loading the data
        (
            "data: {source: digits}\n",
            "",
            "data.source",
            DIGITS_MESSAGE.format("digits"),
            ELSEWHERE.replace("size: count", "size: class"),
        ),
        # the default source: located at the outputs listed
        (
            "",
            SIZE_REGRESSION,
            "outputs",
            DIGITS_MESSAGE.format("digits") + " (the default source)",
            ELSEWHERE,
        ),
        # one report, not the regression output's "class labels only" beside it
        (
            "data: {source: mnist}\n",
            SIZE_REGRESSION,
            "data.source",
            DIGITS_MESSAGE.format("mnist"),
            ELSEWHERE,
        ),
        (
            "data: {source: {directory: imgs}}\n",
            SIZE_REGRESSION,
            "data.source",
            "expected a target per output (head, size); the directory source gives one array of class "
            "labels (one per class folder)",
            ELSEWHERE,
        ),
        (
            "data: {source: {images: imgs, values: values.csv}}\n",
            SIZE_REGRESSION,
            "data.source",
            "expected a target per output (head, size); the images source gives one array of values",
            ELSEWHERE,
        ),
        # shapes with one target for the whole model: at that target, the hint writes one per output
        (
            "data: {source: {shapes: {images: 20, target: class}}}\n",
            SIZE_REGRESSION,
            "data.source.shapes.target",
            "expected a target per output (head, size); the shapes source gives one target (class)",
            "give each output its target: target: {head: class, size: count}",
        ),
        (
            "data: {source: shapes}\n",
            "",
            "data.source",
            "expected a target per output (head, size); the shapes source gives one target (the model's "
            "default)",
            # (the whole key: `target: {…}` alone was put at data.target, an unknown key)
            "give each output its target: source: {shapes: {target: {head: class, size: class}}}",
        ),
    ],
)
def test_several_outputs_on_a_source_of_one_target_array_are_refused_by_validate(
    runner, tmp_path, data, training, where, message, hint
):
    """A model of several outputs needs a target per output: a source that gives one array is
    refused before any data is read, once, where it is said (train refused it after loading)."""
    text = HEAD + TWO_HEADS + data + (training or "training: {epochs: 1}\n")
    spec = tmp_path / "spec.yaml"
    spec.write_text(text, encoding="utf-8")
    result = runner.invoke(app, ["validate", str(spec)])
    assert result.exit_code == 1, result.output
    line = 1 + next(i for i, row in enumerate(text.splitlines()) if row.startswith(where.split(".")[0]))
    assert result.output.count("error:") == 1, result.output
    assert f"spec.yaml:{line}:" in result.output and f"error: {where}: {message}\n" in result.output
    assert f"hint: {hint}\n" in result.output, result.output


@pytest.mark.parametrize(
    "data",
    [
        "data: {source: {shapes: {images: 20, target: {head: class, size: count}}}}\n",
        # an npz's arrays alone tell whether it has y_train_NAME per output: checked once it is read
        NPZ,
    ],
)
def test_several_outputs_on_a_source_of_a_target_per_output_validate(runner, tmp_path, data):
    spec = tmp_path / "spec.yaml"
    spec.write_text(HEAD + TWO_HEADS + data + SIZE_REGRESSION, encoding="utf-8")
    result = runner.invoke(app, ["validate", str(spec)])
    assert result.exit_code == 0, result.output


def test_from_logits_true_on_a_multilabel_sigmoid_output_is_read_as_probabilities():
    """A sigmoid output gives probabilities whatever ``from_logits`` says (Keras' loss reads the
    values before the sigmoid then): its thresholds stay the output's (0.5), AUC reads
    probabilities, in the trainer's tables and the generated script's alike (they thresholded
    at 0: accuracy 0.59, exact match halved). The Keras loss keeps the written from_logits."""
    from cnnspec.backends.codegen_tasks import loss_source, metric_source

    text = (
        HEAD
        + NPZ
        + "model: [flatten, {dense: {units: 4, activation: sigmoid}}]\n"
        + "training:\n  loss: {binary_crossentropy: {from_logits: true}}\n"
        + "  metrics: [accuracy, precision, auc]\n"
    )
    compiled = compile_text(text, "spec.yaml")
    (out,) = training_config(compiled).tasks
    assert out.task == "multilabel" and not out.loss.from_logits and out.decision_threshold == 0.5
    assert [metric_source(out, m) for m in out.metrics] == [
        'keras.metrics.BinaryAccuracy(name="accuracy", threshold=0.5)',
        'keras.metrics.Precision(name="precision", thresholds=0.5)',
        'keras.metrics.AUC(name="auc", multi_label=True, num_labels=4, from_logits=False)',
    ]
    assert "from_logits=True" in loss_source(out)
    (warning,) = [w for w in compiled.warnings if w.code == "logits-mismatch"]
    assert warning.message.startswith("from_logits: true changes nothing; the output ends with sigmoid")
