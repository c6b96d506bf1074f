"""The training-settings pass: two defects an audit found.

D1. A ``${…}`` that failed in a learning rate was reported twice at one spot, the wrong error
    first ("expected a learning rate > 0; received None", then the real one): the reader
    reported the failure and handed ``None`` on, which the learning-rate check reported again.
    A failed expression is now poisoned (:data:`cnnspec.analysis.settings_reader.POISONED`, distinct
    from a user's null) and every reader of a settings value stays silent for it: one mistake,
    one error, in every field below.
D7. ``data.classes`` was checked only by ``cnnspec train``, after loading the data, even for
    the built-in sources whose classes are fixed (digits, shapes, mnist, fashion_mnist,
    cifar10, cifar100): ``validate`` now refuses an entry that names no class of the source,
    on the entry, with the message ``train`` gives (one rule: ``class_indices``).

TensorFlow-free: every spec is text written here, compiled through the API or the CLI; no data
is downloaded.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cnnspec.analysis.passes import compile_text
from cnnspec.analysis.settings_types import FIXED_CLASS_NAMES, KERAS_CLASS_NAMES
from cnnspec.cli.app import app
from cnnspec.errors import Diagnostic, SpecError
from cnnspec.training import subsets

HEAD = (
    "cnnspec: 1\nname: t\ninput: {shape: [8, 8, 1]}\nmodel:\n  - flatten\n"
    "  - dense: {units: 10, activation: softmax}\n"
)
BAD = '"${1 / 0}"'
FAILED = "in '${1 / 0}': division by zero"


def _errors(text: str) -> list[Diagnostic]:
    """The errors of compiling ``text`` (as ``t.yaml``) through the whole front end."""
    with pytest.raises(SpecError) as caught:
        compile_text(text, "t.yaml")
    return caught.value.errors


def _located(text: str, needle: str) -> tuple[int, int]:
    """The 1-based line and column of the first ``needle`` in ``text``."""
    for number, line in enumerate(text.splitlines(), start=1):
        if needle in line:
            return number, line.index(needle) + 1
    raise AssertionError(f"{needle!r} is not in the spec")


# -- D1. a failed expression is one error, whatever reads it -------------------------------------
DIGITS = "data: {source: digits}\n"


@pytest.mark.parametrize(
    ("section", "path"),
    [
        # the learning rates (each gave a second "expected a learning rate > 0; received None")
        (
            DIGITS + "training: {optimizer: {adam: {learning_rate: BAD}}}",
            "training.optimizer.adam.learning_rate",
        ),
        (
            DIGITS + "training: {phases: [{epochs: 1, learning_rate: BAD}]}",
            "training.phases[0].learning_rate",
        ),
        (
            DIGITS + "training: {phases: [{epochs: 1, optimizer: {sgd: {learning_rate: BAD}}}]}",
            "training.phases[0].optimizer.sgd.learning_rate",
        ),
        # a freeze pattern (gave "'None' matches none"), a count compared with another (gave
        # "expected min_shapes ≤ max_shapes; received 5 > 3", the default 3 blamed on min_shapes)
        (DIGITS + "training: {phases: [{epochs: 1, freeze: [BAD]}]}", "training.phases[0].freeze[0]"),
        (
            "data: {source: {shapes: {min_shapes: 5, max_shapes: BAD}}}\ntraining: {epochs: 1}",
            "data.source.shapes.max_shapes",
        ),
        # a monitored value (crashed: the failure reached str methods)
        (
            DIGITS + "training: {callbacks: [{early_stopping: {monitor: BAD}}]}",
            "training.callbacks[0].early_stopping.monitor",
        ),
        # the other readers: numbers with bounds, optimizer and schedule settings, phases, loss,
        # metrics, callbacks, data and runtime options
        (DIGITS + "training: {epochs: BAD}", "training.epochs"),
        (DIGITS + "training: {batch_size: BAD}", "training.batch_size"),
        (DIGITS + "training: {phases: [{epochs: BAD}, {epochs: 1}]}", "training.phases[0].epochs"),
        (DIGITS + "training: {optimizer: {adam: {beta_1: BAD}}}", "training.optimizer.adam.beta_1"),
        (
            DIGITS
            + "training: {optimizer: {adam: {learning_rate: {cosine_decay: "
            + "{decay_steps: 10, warmup_steps: BAD}}}}}",
            "training.optimizer.adam.learning_rate.cosine_decay.warmup_steps",
        ),
        (
            DIGITS
            + "training: {optimizer: {adam: {learning_rate: {cosine_decay: "
            + "{initial_learning_rate: BAD, decay_steps: 10}}}}}",
            "training.optimizer.adam.learning_rate.cosine_decay.initial_learning_rate",
        ),
        (
            DIGITS + "training: {loss: {categorical_crossentropy: {label_smoothing: BAD}}}",
            "training.loss.categorical_crossentropy.label_smoothing",
        ),
        (
            DIGITS + "training: {metrics: [{top_k_accuracy: {k: BAD}}]}",
            "training.metrics[0].top_k_accuracy.k",
        ),
        (
            DIGITS + "training: {callbacks: [{early_stopping: {patience: BAD}}]}",
            "training.callbacks[0].early_stopping.patience",
        ),
        ("data: {source: digits, validation_split: BAD}\ntraining: {epochs: 1}", "data.validation_split"),
        ("data: {source: digits, rescale: BAD}\ntraining: {epochs: 1}", "data.rescale"),
        ("data: {source: digits, per_class: BAD}\ntraining: {epochs: 1}", "data.per_class"),
        ("data: {source: digits, classes: [3, BAD]}\ntraining: {epochs: 1}", "data.classes[1]"),
        ("data: {source: {shapes: {images: BAD}}}\ntraining: {epochs: 1}", "data.source.shapes.images"),
        (
            DIGITS
            + "training: {epochs: 1}\nruntime: {distribute: {strategy: mirrored, startup_timeout: BAD}}",
            "runtime.distribute.startup_timeout",
        ),
    ],
)
def test_a_failed_expression_in_a_setting_is_one_error(section: str, path: str) -> None:
    """Exactly one diagnostic, the expression's own, where the expression is written."""
    text = HEAD + section.replace("BAD", BAD) + "\n"
    errors = _errors(text)
    assert [(e.path, e.message) for e in errors] == [(path, FAILED)]
    assert (errors[0].loc.line, errors[0].loc.column) == _located(text, BAD)


@pytest.mark.parametrize(
    ("training", "path", "message"),
    [
        (
            'optimizer: {adam: {learning_rate: "${10**300}"}}',
            "training.optimizer.adam.learning_rate",
            "in '${10**300}': expected a smaller power",
        ),
        (
            'phases: [{epochs: 1, learning_rate: "${nope}"}]',
            "training.phases[0].learning_rate",
            "in '${nope}': undefined name 'nope'",
        ),
    ],
)
def test_validate_prints_the_failed_learning_rate_once(
    tmp_path: Path, training: str, path: str, message: str
) -> None:
    """The audit's repro through the CLI: one error, the expression's, not "received None"."""
    spec = tmp_path / "lr.yaml"
    spec.write_text(HEAD + DIGITS + f"training: {{{training}}}\n")
    result = CliRunner().invoke(app, ["validate", str(spec), "--format", "json"])
    assert result.exit_code == 1, result.output
    errors = [d for d in json.loads(result.output) if d["severity"] == "error"]
    assert len(errors) == 1, errors
    assert errors[0]["path"] == path and str(errors[0]["message"]).startswith(message)
    assert "received None" not in result.output


def test_a_users_null_learning_rate_is_still_refused() -> None:
    """The poison is no ``None``: a rate that *evaluates* to null (a var set to null) is the
    user's mistake, reported as before."""
    text = "vars: {rate: null}\n" + DIGITS + 'training: {optimizer: {adam: {learning_rate: "${rate}"}}}\n'
    errors = _errors(HEAD + text)
    assert [(e.path, e.message) for e in errors] == [
        ("training.optimizer.adam.learning_rate", "expected a learning rate > 0; received None")
    ]


def test_an_error_beside_a_failed_expression_is_still_reported() -> None:
    """Only what depends on the failed value is silent: independent mistakes are each reported."""
    text = HEAD + (
        "data: {source: {shapes: {images: BAD, min_shapes: 5, max_shapes: 4}}}\n"
        "training: {epochs: BAD, optimizer: {adam: {learning_rate: '${-1}'}}}\n"
    ).replace("BAD", BAD)
    found = {(e.path, e.message) for e in _errors(text)}
    assert found == {
        ("data.source.shapes.images", FAILED),
        ("data.source.shapes.min_shapes", "expected min_shapes ≤ max_shapes; received 5 > 4"),
        ("training.epochs", FAILED),
        ("training.optimizer.adam.learning_rate", "expected a learning rate > 0; received -1"),
    }


# -- D7. data.classes of a source whose classes are fixed ----------------------------------------
MODEL2 = (
    "cnnspec: 1\nname: t\ninput: {shape: SHAPE}\nmodel:\n  - flatten\n"
    "  - dense: {units: 2, activation: softmax}\n"
)


def _classes_spec(source: str, classes: str, shape: str = "[8, 8, 1]") -> str:
    return (
        MODEL2.replace("SHAPE", shape)
        + f"data: {{source: {source}, classes: {classes}}}\ntraining: {{epochs: 1}}\n"
    )


@pytest.mark.parametrize(
    ("source", "classes", "index", "entry", "needle"),
    [
        ("digits", "[5, 11]", 1, 11, "11]"),  # t5b: 11 is no digit nor label index
        ("digits", "[a, b]", 0, "a", "a, b"),  # t6b
        ("mnist", '["5", 12]', 1, 12, "12]"),  # t6c
        ("fashion_mnist", "[sneaker, sneakers]", 1, "sneakers", "sneakers]"),
        ("cifar10", "[cat, lion]", 1, "lion", "lion"),
        ("cifar100", "[0, 99, 100]", 2, 100, "100]"),
        ("{shapes: {images: 20}}", "[circle, hexagon]", 1, "hexagon", "hexagon"),
    ],
)
def test_a_class_the_source_lacks_is_a_located_error_at_validate(
    source: str, classes: str, index: int, entry: object, needle: str
) -> None:
    """Before the fix each validated ``ok`` and only ``cnnspec train`` refused it."""
    text = _classes_spec(source, classes)
    error = next(e for e in _errors(text) if e.path == f"data.classes[{index}]")
    assert error.code == "data"
    assert error.message == f"expected a class of the data; received {entry!r}"
    assert (error.loc.line, error.loc.column) == _located(text, needle)


@pytest.mark.parametrize(
    ("classes", "received", "hint"),
    [
        ("5", "integer 5", "one class is a list of one: classes: [5]"),
        ("cat", "string 'cat'", "one class is a list of one: classes: [cat]"),
        ("null", "null", "leave data.classes out to keep every class"),
        ("{a: 1}", "a mapping with keys a", "e.g. classes: [cat, dog] or [3, 5]"),
    ],
)
def test_data_classes_that_is_no_list_is_asked_for_as_a_list_of_classes(
    classes: str, received: str, hint: str
) -> None:
    """It said "expected a list without repeats" of a value that is no list at all (a repeat
    has its own message, at the repeat)."""
    text = _classes_spec("digits", classes)
    (error,) = _errors(text)
    assert error.path == "data.classes"
    assert error.message == f"expected a list of class names or label indices; received {received}"
    assert error.hint == hint


@pytest.mark.parametrize("source", ["digits", "{shapes: {images: 20}}"])
def test_a_float_in_data_classes_is_refused_for_its_type(source: str) -> None:
    """``4.0`` passes the schema's integer (JSON Schema counts it one), and was refused as
    "expected a class of the data" with a list of the data's classes that has 4 in it; it gets
    the message ``[3, [4]]`` gets, and a hint to write 4."""
    text = _classes_spec(source, "[0, 4.0]")
    (error,) = _errors(text)
    assert error.path == "data.classes[1]"
    assert error.message == "expected a string or an integer ≥ 0; received number 4.0"
    assert error.hint == "write 4 for the label index 4, or '4.0' in quotes for a class of that name"
    assert (error.loc.line, error.loc.column) == _located(text, "4.0")


def test_validate_and_train_word_an_unknown_class_alike() -> None:
    """The message and hint are the ones train's loader gives (it calls the same
    ``subsets.class_indices`` with the names it loads: here mnist's, as training/data.py does)."""
    (error,) = _errors(_classes_spec("mnist", '["5", 12]'))
    with pytest.raises(subsets.UnknownClass) as caught:
        subsets.class_indices(["5", 12], KERAS_CLASS_NAMES["mnist"], 10)
    assert (error.message, error.hint, f"data.classes[{caught.value.index}]") == (
        caught.value.message,
        caught.value.hint,
        error.path,
    )


def test_every_class_entry_in_error_is_reported_at_once() -> None:
    """All errors of a file at once: before, only the first entry of ``[11, cat]`` was."""
    errors = _errors(_classes_spec("digits", "[11, cat, 3, '3', 4]"))
    assert sorted(e.path for e in errors) == ["data.classes[0]", "data.classes[1]", "data.classes[3]"]
    assert {e.code for e in errors} == {"data"}


def test_a_class_listed_twice_is_refused_at_validate() -> None:
    (error,) = _errors(_classes_spec("digits", "[3, '3']"))
    assert error.path == "data.classes[1]"
    assert error.message == (
        "expected each class once in data.classes; received '3', the same class ('3') as 3 at data.classes[0]"
    )


@pytest.mark.parametrize(
    ("source", "classes", "shape"),
    [
        ("digits", "[5, '6']", "[8, 8, 1]"),
        ("mnist", "['5', 7]", "[28, 28, 1]"),
        ("fashion_mnist", "[sneaker, 9]", "[28, 28, 1]"),
        ("cifar10", "[cat, dog]", "[32, 32, 3]"),
        ("cifar100", "[0, 99]", "[32, 32, 3]"),
        ("{shapes: {images: 20}}", "[circle, 2]", "[8, 8, 1]"),  # a name, or a label index
        # read from disk: their classes are known once the files are, checked when loaded
        ("{npz: d.npz}", "[anything, else]", "[8, 8, 1]"),
        ("{directory: imgs}", "[cats, dogs]", "[8, 8, 1]"),
    ],
)
def test_classes_the_source_has_or_cannot_tell_validate(source: str, classes: str, shape: str) -> None:
    compile_text(_classes_spec(source, classes, shape), "t.yaml")


def test_a_failed_class_entry_is_reported_once_and_the_others_still_checked() -> None:
    """A poisoned entry is skipped (neither a missing class nor a repeat), the others are not."""
    errors = _errors(_classes_spec("digits", f"[{BAD}, 3, '3', 4]"))
    assert [(e.path, e.message) for e in errors] == [
        ("data.classes[0]", FAILED),
        (
            "data.classes[2]",
            "expected each class once in data.classes; received '3', the same class ('3') as 3 "
            "at data.classes[1]",
        ),
    ]
    assert [e.path for e in _errors(_classes_spec("digits", f"[{BAD}, 3, 4]"))] == ["data.classes[0]"]


def test_the_fixed_class_names_are_those_train_loads() -> None:
    """The one table validate checks against: digits' are scikit-learn's target names (what
    training/data.py loads), the Keras datasets' the table train names them by."""
    from sklearn.datasets import load_digits

    assert FIXED_CLASS_NAMES["digits"] == [str(n) for n in load_digits().target_names]
    for name, names in KERAS_CLASS_NAMES.items():
        assert FIXED_CLASS_NAMES[name] == names
    assert FIXED_CLASS_NAMES["cifar100"] == [str(i) for i in range(100)]
