"""`codegen --script` trains as `cnnspec train` does where an audit found them apart: a batch
larger than the training set with ``steps_per_epoch`` (classifier and task scripts), a
``weights:`` source of which nothing fits, and ``data.cache`` with ``data.shuffle_buffer`` on a
streamed source (the order of the batches).

Each test runs the generated script in a fresh process and `cnnspec train` in this one, on tiny
data (digits, the shapes source or 36 small image files; 1–2 epochs).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cnnspec.api import compile_spec
from cnnspec.backends.python_emitter import generate_code
from tests.conftest import run_python, run_script
from tests.test_codegen_parity import write_images

# (Keras warns when a stream's first epoch ends, as its length is unknown until then)
pytestmark = pytest.mark.filterwarnings("ignore:Your input ran out of data")

DIGITS = """\
cnnspec: 1
name: audit
input: {shape: [8, 8, 1]}
model:
  - conv2d: {filters: 4, kernel_size: 3, padding: same, activation: relu}
    id: c1
  - flatten
  - dense: {units: 2, activation: softmax}
    id: head
data: {source: digits, classes: [0, 1], per_class: 10, validation_split: 0.2}
training:
  epochs: 2
  batch_size: 32
  optimizer: {adam: {learning_rate: 0.01}}
  seed: 1
"""

TASK = """\
cnnspec: 1
name: audit
input: {shape: [16, 16, 3]}
model:
  - conv2d: {filters: 4, kernel_size: 3, padding: same, activation: relu}
  - global_avg_pool2d:
    id: feat
  - dense: {units: 3, activation: softmax}
    id: kind
  - dense: 1
    inputs: feat
    id: area
outputs: [kind, area]
data:
  source: {shapes: {images: 30, image_size: [16, 16], target: {kind: class, area: area}, seed: 2}}
  validation_split: 0.2
training:
  epochs: 2
  batch_size: 80
  steps_per_epoch: 2
  optimizer: {adam: {learning_rate: 0.005}}
  outputs:
    kind: {loss: categorical_crossentropy, metrics: [accuracy]}
    area: {task: regression, loss: mse, metrics: [mae]}
  seed: 13
"""

FILES = """\
cnnspec: 1
name: audit
input: {shape: [8, 8, 1]}
model:
  - conv2d: {filters: 4, kernel_size: 3, padding: same, activation: relu}
  - global_avg_pool2d
  - dense: {units: 3, activation: softmax}
data:
  source: {directory: images}
  validation_split: 0.25
  test_split: 0.25
  shuffle_buffer: 5
  cache: CACHE
training:
  epochs: 2
  batch_size: 4
  optimizer: {adam: {learning_rate: 0.01}}
  seed: 9
  deterministic: true
"""


def write_script(tmp_path: Path, text: str) -> tuple[Any, Path]:
    """The compiled spec `text` (written to tmp_path) and its generated script, ruff-clean."""
    from tests.test_codegen import ruff_check

    spec = tmp_path / "audit.yaml"
    spec.write_text(text, encoding="utf-8")
    compiled = compile_spec(spec)
    script = tmp_path / "train.py"
    code = generate_code(compiled, script=True, output=script, source_name="audit.yaml").text
    assert ruff_check(code, tmp_path, "check.py") == ""
    script.write_text(code, encoding="utf-8")
    return compiled, script


def train_text(tmp_path: Path, text: str) -> Any:
    """`cnnspec train`'s result for the spec ``text`` (written to tmp_path as :func:`run_both`
    writes it), without its script: the first proof of a feature, where :func:`run_both`'s
    comparison with the script is a second, longer one (``full``)."""
    from cnnspec.training.trainer import train

    spec = tmp_path / "audit.yaml"
    spec.write_text(text, encoding="utf-8")
    return train(compile_spec(spec), out=tmp_path / "cnnspec")


def run_both(tmp_path: Path, text: str) -> tuple[dict[str, Any], str, Any]:
    """The script's metrics.json and console output, and `cnnspec train`'s result."""
    from cnnspec.training.trainer import train

    compiled, script = write_script(tmp_path, text)
    done = run_script(script, "--out", str(tmp_path / "script"))
    theirs = json.loads((tmp_path / "script" / "metrics.json").read_text(encoding="utf-8"))
    return theirs, done.stdout, train(compiled, out=tmp_path / "cnnspec")


def assert_same_history(theirs: dict[str, Any], ours: Any) -> None:
    assert theirs["epochs"] == len(ours.history) == 2
    assert set(theirs["history"]) <= set(ours.history[0])
    for key, values in theirs["history"].items():
        expected = [row[key] for row in ours.history]
        assert values == pytest.approx(expected, abs=1e-6), key


@pytest.mark.slow
@pytest.mark.parametrize(
    "text",
    [DIGITS.replace("  seed: 1\n", "  steps_per_epoch: 3\n  seed: 1\n"), TASK],
    ids=["classifier", "task"],
)
@pytest.mark.full
def test_a_batch_larger_than_the_training_set_shrinks_to_it_with_steps_per_epoch(tmp_path, text):
    """training.steps_per_epoch repeats the training data: a batch_size larger than the
    training set is one batch of every image, once (not each image several times over), and
    the script says so in cnnspec train's words."""
    theirs, output, ours = run_both(tmp_path, text)
    assert_same_history(theirs, ours)
    notes = [note for note in ours.notes if "is larger than the" in note]
    assert len(notes) == 1 and "training.batch_size" in notes[0]
    assert f"note: {notes[0]}" in output


@pytest.mark.slow
@pytest.mark.full
def test_one_hot_labels_are_as_wide_as_the_output_when_the_data_has_fewer_classes(tmp_path):
    """Three units on two classes, with label smoothing (one-hot labels): the script one-hot
    encoded to the highest label seen + 1 and stopped with a shape mismatch, where cnnspec
    train encodes to the model's output units."""
    text = DIGITS.replace("units: 2,", "units: 3,").replace(
        "  seed: 1\n", "  seed: 1\n  loss: {categorical_crossentropy: {label_smoothing: 0.1}}\n"
    )
    theirs, _, ours = run_both(tmp_path, text)
    assert_same_history(theirs, ours)


@pytest.mark.slow
def test_a_weights_source_of_which_nothing_fits_stops_the_script_as_train_does(tmp_path):
    """A non-strict source none of whose layer names the model has: cnnspec train refuses it
    rather than train from random weights, and the script stops (exit 1) with train's words."""
    import keras

    from cnnspec.errors import SpecError
    from cnnspec.training.trainer import train

    source = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(4, 3, padding="same", name="x1"),
            keras.layers.Flatten(),
            keras.layers.Dense(2, name="xhead"),
        ]
    )
    source.save_weights(tmp_path / "start.weights.h5")
    text = DIGITS.replace("  epochs: 2\n", "  epochs: 1\n")
    compiled, script = write_script(tmp_path, text + "weights: {from: start.weights.h5, strict: false}\n")
    with pytest.raises(SpecError) as refused:
        train(compiled, out=tmp_path / "cnnspec")
    message = refused.value.diagnostics[0].message
    assert "none of the model's 4 weight tensors could be loaded" in message
    # in a fork of a Python that has imported TensorFlow (tests/script_runner.py), as run_script
    # runs the other scripts, but with its exit status left to the test
    done = run_python(script, "--out", str(tmp_path / "script"))
    assert done.returncode == 1, done.stdout[-2000:] + done.stderr[-2000:]
    assert f"weights: {message}" in done.stderr
    assert not (tmp_path / "script" / "metrics.json").exists()


@pytest.mark.slow
@pytest.mark.parametrize("cache", ["memory", "disk"])
@pytest.mark.full
def test_a_cached_stream_is_shuffled_in_the_buffer_as_train_does(tmp_path, cache):
    """data.cache on an image folder: cnnspec train shuffles the cached (decoded) images in a
    buffer of data.shuffle_buffer (5 of the 18 training images), not the file indices whole;
    the script's batches come in the same order, so the history is train's to 1e-6."""
    write_images(tmp_path / "images")
    theirs, _, ours = run_both(tmp_path, FILES.replace("CACHE", cache))
    assert_same_history(theirs, ours)
    assert theirs["test_loss"] == pytest.approx(ours.metrics["test_loss"], abs=1e-6)


@pytest.mark.parametrize("imagenet", [False, True], ids=["file", "imagenet"])
def test_load_by_position_is_written_only_where_a_source_loads_by_position(tmp_path, imagenet):
    """A weights file is matched by layer name (load_by_name): the script carries no unused
    load_by_position; an ImageNet backbone, matched by position, has it and calls it."""
    if imagenet:
        text = (
            "cnnspec: 1\nname: audit\ninput: {shape: [32, 32, 3]}\nmodel:\n"
            "  - backbone: {spec: 'zoo:mobilenet_v3_small', until: conv_bn, "
            "vars: {include_top: false, input_shape: [32, 32, 3]}, weights: imagenet}\n"
            "    id: body\n  - global_avg_pool2d\n  - dense: {units: 10, activation: softmax}\n"
            "data: {source: cifar10}\n"
        )
    else:
        (tmp_path / "start.weights.h5").write_bytes(b"")  # read only by the script, never here
        text = DIGITS.replace("units: 2", "units: 10").replace(
            "data: {source: digits, classes: [0, 1], per_class: 10, validation_split: 0.2}",
            "data: {source: digits}",
        )
        text += "weights: {from: start.weights.h5, strict: false}\n"
    _, script = write_script(tmp_path, text)
    code = script.read_text(encoding="utf-8")
    assert ("def load_by_position(" in code) == imagenet
    assert ("\n    load_by_position(" in code) == imagenet  # the call
    assert ("\n    load_by_name(" in code) != imagenet
