"""The focal losses: ``categorical_focal_crossentropy`` and ``binary_focal_crossentropy``
(Keras' ``CategoricalFocalCrossentropy`` and ``BinaryFocalCrossentropy``), for classifiers,
multi-label and segmentation outputs with imbalanced classes.

The settings, their defaults (Keras', RetinaNet's) and every refusal, located, come first:
TensorFlow-free, as ``cnnspec validate`` reports them, and the generated scripts' loss. Then
(slow) the loss evaluate computes from an export's outputs is Keras' own, and a classifier and
a segmentation model train alike in ``cnnspec train`` and in the script of ``codegen --script``.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest

from cnnspec.analysis.settings import training_config
from cnnspec.api import compile_text
from cnnspec.backends.python_emitter import generate_code
from cnnspec.cli.app import app

#: A digits classifier; LOSS, UNITS and ACTIVATION are replaced.
CLASSIFIER = """\
cnnspec: 1
name: focal
input: {shape: [8, 8, 1]}
model:
  - conv2d: {filters: 4, kernel_size: 3, padding: same, activation: relu}
  - flatten
  - dense: {units: UNITS, activation: ACTIVATION}
data: {source: digits, classes: CLASSES, per_class: 12, validation_split: 0.25}
training:
  epochs: 2
  batch_size: 16
  optimizer: {adam: {learning_rate: 0.01}}
  loss: LOSS
  seed: 6
"""
#: A segmentation model of the shapes source's masks (4 classes: background and three shapes).
SEGMENTATION = """\
cnnspec: 1
name: focalmasks
input: {shape: [16, 16, 3]}
model:
  - conv2d: {filters: 4, kernel_size: 3, padding: same, activation: relu}
  - conv2d: {filters: CHANNELS, kernel_size: 1, activation: softmax}
data: {source: {shapes: {images: 24, image_size: [16, 16], target: mask, seed: 2}}, validation_split: 0.25}
training:
  epochs: 2
  batch_size: 8
  loss: LOSS
  seed: 7
"""


def classifier(loss: str, units: int = 3, activation: str = "softmax") -> str:
    classes = "[0, 1]" if units == 1 else "[0, 1, 2]"
    text = CLASSIFIER.replace("LOSS", loss).replace("UNITS", str(units)).replace("ACTIVATION", activation)
    return text.replace("CLASSES", classes)


def segmentation(loss: str, channels: int = 4) -> str:
    return SEGMENTATION.replace("LOSS", loss).replace("CHANNELS", str(channels))


def config_of(text: str) -> Any:
    return training_config(compile_text(text, "spec.yaml"))


# -- settings ---------------------------------------------------------------------------------------
def test_the_focal_losses_take_keras_defaults_and_their_settings() -> None:
    loss = config_of(classifier("categorical_focal_crossentropy")).loss
    assert (loss.gamma, loss.alpha, loss.label_smoothing, loss.from_logits) == (2.0, 0.25, 0.0, False)
    assert loss.focal and loss.one_hot and not loss.binary
    config = config_of(
        classifier("{categorical_focal_crossentropy: {gamma: 1.5, alpha: 0.5}}", activation="linear")
    )
    assert config.one_hot_labels and not config.binary  # (one-hot labels through the pipeline)
    assert (config.loss.gamma, config.loss.alpha, config.loss.from_logits) == (1.5, 0.5, True)
    assert config.loss.keras_focal() == (
        "CategoricalFocalCrossentropy",
        {"alpha": 0.5, "gamma": 1.5, "from_logits": True, "label_smoothing": 0.0},
    )
    binary = config_of(
        classifier(
            "{binary_focal_crossentropy: {apply_class_balancing: true, alpha: 0.8}}",
            units=1,
            activation="sigmoid",
        )
    )
    assert binary.binary and not binary.one_hot_labels and binary.loss.apply_class_balancing
    assert binary.loss.keras_focal() == (
        "BinaryFocalCrossentropy",
        {
            "apply_class_balancing": True,
            "alpha": 0.8,
            "gamma": 2.0,
            "from_logits": False,
            "label_smoothing": 0.0,
        },
    )
    assert config_of(classifier("categorical_crossentropy")).loss.keras_focal() is None


def test_segmentation_and_multilabel_outputs_take_them_too() -> None:
    (task,) = config_of(segmentation("categorical_focal_crossentropy")).tasks
    assert task.task == "segmentation" and task.one_hot  # (the masks go one-hot)
    (task,) = config_of(
        segmentation("binary_focal_crossentropy", channels=1).replace("softmax", "sigmoid")
    ).tasks
    assert task.binary and task.loss.name == "binary_focal_crossentropy"
    multilabel = segmentation("{binary_focal_crossentropy: {gamma: 1}}").replace(
        "  - conv2d: {filters: 4, kernel_size: 1, activation: softmax}",
        "  - global_avg_pool2d\n  - dense: {units: 3, activation: sigmoid}",
    )
    (task,) = config_of(multilabel.replace("target: mask", "target: multilabel")).tasks
    assert (task.task, task.loss.gamma) == ("multilabel", 1.0)


@pytest.mark.parametrize(
    ("text", "where", "path", "words"),
    [
        (
            classifier("binary_focal_crossentropy"),
            (13, 9),
            "training.loss",
            ["expected a model with 1 output unit for binary_focal_crossentropy; it outputs 3"],
        ),
        (
            classifier("categorical_focal_crossentropy", units=1, activation="sigmoid"),
            (13, 9),
            "training.loss",
            ["one output unit per class for categorical_focal_crossentropy", "binary_focal_crossentropy"],
        ),
        (
            classifier("{categorical_focal_crossentropy: {gamma: -1}}"),
            (13, 50),
            "training.loss.categorical_focal_crossentropy.gamma",
            ["expected a number ≥ 0"],
        ),
        (
            classifier("{binary_focal_crossentropy: {alpha: 1.5}}"),
            (13, 45),
            "training.loss.binary_focal_crossentropy.alpha",
            ["> 0 and < 1; received number 1.5"],
        ),
        (
            classifier("{categorical_focal_crossentropy: {apply_class_balancing: true}}"),
            (13, 43),
            "training.loss.categorical_focal_crossentropy.apply_class_balancing",
            ["unknown key 'apply_class_balancing'"],
        ),
        (
            segmentation("binary_focal_crossentropy"),
            (11, 9),
            "training.loss",
            ["expected a 1-channel output for binary_focal_crossentropy", "has 4 channels"],
        ),
        (
            segmentation("categorical_focal_crossentropy", channels=1).replace("softmax", "sigmoid"),
            (11, 9),
            "training.loss",
            ["expected a channel per class for categorical_focal_crossentropy", "has 1"],
        ),
    ],
    ids=[
        "binary-on-3-units",
        "categorical-on-1-unit",
        "gamma",
        "alpha",
        "balancing-of-categorical",
        "binary-on-4-channels",
        "categorical-on-1-channel",
    ],
)
def test_every_refusal_is_located_by_validate(runner, write_spec, text, where, path, words) -> None:
    result = runner.invoke(app, ["validate", str(write_spec(text))])
    assert result.exit_code == 1, result.output
    output = " ".join(result.output.split())
    line, column = where
    assert f"spec.yaml:{line}:{column}: error: {path}" in output, output
    for word in words:
        assert word in output, (word, output)
    assert "Traceback" not in result.output


def _one_line(code: str) -> str:
    """``code`` with every call on one line, as ruff format would not write it."""
    flat = re.sub(r"\s+", " ", code)
    return re.sub(r",? \)", ")", flat.replace("( ", "("))


def test_the_scripts_build_the_same_keras_loss() -> None:
    text = classifier("{categorical_focal_crossentropy: {gamma: 1.5, alpha: 0.4, label_smoothing: 0.1}}")
    code = generate_code(compile_text(text, "spec.yaml"), script=True).text
    assert (
        "keras.losses.CategoricalFocalCrossentropy(alpha=0.4, gamma=1.5, from_logits=False, "
        "label_smoothing=0.1)"
    ) in _one_line(code)
    code = generate_code(
        compile_text(segmentation("binary_focal_crossentropy", 1).replace("softmax", "sigmoid"), "s.yaml"),
        script=True,
    ).text
    assert (
        "keras.losses.BinaryFocalCrossentropy(apply_class_balancing=False, alpha=0.25, gamma=2.0, "
        "from_logits=False, label_smoothing=0.0)"
    ) in _one_line(code)


# -- TensorFlow -------------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize(
    ("loss", "units", "activation"),
    [
        ("{categorical_focal_crossentropy: {gamma: 1.5, alpha: 0.4, label_smoothing: 0.1}}", 3, "softmax"),
        ("categorical_focal_crossentropy", 3, "linear"),
        (
            "{binary_focal_crossentropy: {gamma: 3, alpha: 0.3, apply_class_balancing: true, "
            "label_smoothing: 0.2}}",
            1,
            "sigmoid",
        ),
        ("binary_focal_crossentropy", 1, "linear"),
    ],
    ids=["categorical", "categorical-logits", "binary-balanced", "binary-logits"],
)  # fmt: skip
def test_the_loss_evaluate_computes_from_outputs_is_keras_own(loss: str, units: int, activation: str) -> None:
    """An export's loss is computed in NumPy from its outputs (reporting/evaluation.py): it is
    the number Keras' focal loss gives for the same outputs and labels."""
    from cnnspec.reporting.evaluation import _loss
    from cnnspec.training import builders

    config = config_of(classifier(loss, units, activation))
    keras_loss = builders.loss(config)
    assert type(keras_loss).__name__ == config.loss.keras_focal()[0]
    rng = np.random.default_rng(0)
    z = rng.normal(size=(32, max(units, 3) if units > 1 else 1)) * 2
    if activation == "softmax":
        outputs = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    elif activation == "sigmoid":
        outputs = 1 / (1 + np.exp(-z))
    else:
        outputs = z
    labels = rng.integers(0, 2 if units == 1 else units, 32)
    truth = labels[:, None] if units == 1 else np.eye(units)[labels]
    expected = float(keras_loss(truth.astype("float32"), outputs.astype("float32")))
    assert _loss(outputs, labels, config) == pytest.approx(expected, rel=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize(
    "text",
    [
        classifier("{categorical_focal_crossentropy: {gamma: 1.5, alpha: 0.5}}"),
        segmentation("{categorical_focal_crossentropy: {gamma: 1}}"),
    ],
    ids=["classifier", "segmentation"],
)
def test_cnnspec_train_trains_with_a_focal_loss(tmp_path, text: str) -> None:
    from tests.test_script_parity_audit import train_text

    ours = train_text(tmp_path, text)
    assert len(ours.history) == 2
    assert all(np.isfinite(row["loss"]) for row in ours.history)


@pytest.mark.slow
@pytest.mark.full
@pytest.mark.parametrize(
    "text",
    [
        classifier("{categorical_focal_crossentropy: {gamma: 1.5, alpha: 0.5}}"),
        segmentation("{categorical_focal_crossentropy: {gamma: 1}}"),
    ],
    ids=["classifier", "segmentation"],
)
def test_cnnspec_train_and_the_script_train_alike_with_a_focal_loss(tmp_path, text: str) -> None:
    from tests.test_script_parity_audit import assert_same_history, run_both

    theirs, _, ours = run_both(tmp_path, text)
    assert_same_history(theirs, ours)
    assert all(np.isfinite(row["loss"]) for row in ours.history)


def test_an_alpha_that_weighs_nothing_is_said(runner, write_spec) -> None:
    """Keras' binary focal loss weighs by ``alpha`` only with ``apply_class_balancing: true``:
    an alpha without it is a located warning (the spec still compiles), not silence. An alpha
    that zeroes every term (0 for the categorical loss, 0 or 1 for the balanced binary one,
    whose positives or negatives would then weigh nothing) is refused."""
    text = classifier("{binary_focal_crossentropy: {alpha: 0.9}}", units=1, activation="sigmoid")
    result = runner.invoke(app, ["validate", str(write_spec(text))])
    assert result.exit_code == 0, result.output
    output = " ".join(result.output.split())
    assert (
        "spec.yaml:13:38: warning: training.loss.binary_focal_crossentropy.alpha: "
        "binary_focal_crossentropy's alpha has no effect without apply_class_balancing: true"
    ) in output, output
    balanced = text.replace("{alpha: 0.9}", "{alpha: 0.9, apply_class_balancing: true}")
    assert "warning" not in runner.invoke(app, ["validate", str(write_spec(balanced))]).output
    for refused in (
        classifier("{categorical_focal_crossentropy: {alpha: 0}}"),
        balanced.replace("alpha: 0.9", "alpha: 1"),
    ):
        result = runner.invoke(app, ["validate", str(write_spec(refused))])
        assert result.exit_code == 1 and "expected a number > 0" in " ".join(result.output.split())


@pytest.mark.slow
@pytest.mark.parametrize(
    ("task", "loss", "settings", "channels"),
    [
        ("segmentation", "sparse_categorical_crossentropy", {}, 4),
        ("segmentation", "sparse_categorical_crossentropy", {"from_logits": True}, 4),
        ("segmentation", "categorical_focal_crossentropy",
         {"gamma": 1.5, "alpha": 0.4, "label_smoothing": 0.1}, 4),
        ("segmentation", "binary_crossentropy", {"label_smoothing": 0.2}, 1),
        ("segmentation", "binary_focal_crossentropy",
         {"from_logits": True, "apply_class_balancing": True, "alpha": 0.3}, 1),
        ("multilabel", "binary_crossentropy", {"label_smoothing": 0.1}, 5),
        ("multilabel", "binary_focal_crossentropy", {"gamma": 3.0}, 5),
    ],
)  # fmt: skip
def test_the_loss_of_a_map_or_labels_from_outputs_is_keras_own(task, loss, settings, channels) -> None:
    """evaluate under a temperature reports the loss of the scaled probabilities of a
    segmentation or multi-label output as it does a classifier's (reporting/evaluation.py
    task_loss; before, Keras' loss of the model's own probabilities, with a note): it is the
    number Keras' loss gives for the same outputs and targets. Dice has no equal: None."""
    import keras

    from cnnspec.analysis.settings_types import LossConfig
    from cnnspec.analysis.tasks import OutputTask
    from cnnspec.reporting.evaluation import task_loss

    from_logits = settings.get("from_logits", False)
    spec = LossConfig(loss, **settings)
    shape = (6, 6, channels) if task == "segmentation" else (channels,)
    out = OutputTask("out", task, spec, (), shape, None if from_logits else "softmax")
    rng = np.random.default_rng(2)
    z = rng.normal(size=(3, *shape)) * 2
    if from_logits:
        outputs = z
    elif channels == 1 or task == "multilabel":
        outputs = 1 / (1 + np.exp(-z))
    else:
        outputs = np.exp(z) / np.exp(z).sum(axis=-1, keepdims=True)
    if task == "multilabel":
        y = rng.integers(0, 2, (3, channels))
        truth = y.astype("float32")
    elif channels == 1:
        y = rng.integers(0, 2, (3, 6, 6))
        truth = y[..., None].astype("float32")
    else:
        y = rng.integers(0, channels, (3, 6, 6))
        truth = y if loss.startswith("sparse") else np.eye(channels)[y].astype("float32")
    keras_class = {
        "sparse_categorical_crossentropy": keras.losses.SparseCategoricalCrossentropy,
        "categorical_focal_crossentropy": keras.losses.CategoricalFocalCrossentropy,
        "binary_crossentropy": keras.losses.BinaryCrossentropy,
        "binary_focal_crossentropy": keras.losses.BinaryFocalCrossentropy,
    }[loss]
    expected = float(keras_class(**settings)(truth, outputs.astype("float32")))
    assert task_loss(outputs, y, out) == pytest.approx(expected, rel=1e-5)
    dice = OutputTask("out", "segmentation", LossConfig("dice"), (), (6, 6, 4), "softmax")
    assert task_loss(outputs, y, dice) is None
