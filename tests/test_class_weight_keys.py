"""``training.class_weight``'s keys name a class or are class indices: refused with
``cnnspec train``'s message by ``cnnspec validate`` and ``codegen`` where the source's classes
are fixed (digits, the Keras datasets, shapes, as ``data.classes`` selects them), and by the
generated script once it has read a folder's, a CSV's or an npz file's classes.

The script's ``class_weights`` runs without TensorFlow (tests/test_listing_edges.py's
:func:`script_functions`); train's data is loaded as tests/test_data.py loads it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from cnnspec.api import compile_spec
from cnnspec.cli.app import app
from cnnspec.errors import SpecError
from cnnspec.training.data_checks import class_weights
from tests.test_data import load, spec_text, write_npz
from tests.test_listing_edges import script_functions

runner = CliRunner()

DIGITS = spec_text(extra="training: {epochs: 1}\n")


def validate(tmp_path: Path, text: str, *options: str) -> tuple[int, str]:
    path = tmp_path / "spec.yaml"
    path.write_text(text, encoding="utf-8")
    result = runner.invoke(app, ["validate", str(path), *options])
    return result.exit_code, result.output


@pytest.mark.parametrize(
    ("weights", "message", "hint"),
    [
        ("{99: 2}", "expected a class index (0–9) or name; received '99'", "  hint: did you mean `9`?\n"),
        ("{seven: 2}", "expected a class index (0–9) or name; received 'seven'", ""),
    ],
)
def test_validate_refuses_a_key_that_is_no_digit_class_as_train_does(tmp_path, weights, message, hint):
    code, output = validate(tmp_path, DIGITS, "--set", f"training.class_weight={weights}")
    assert code == 1
    # located at the key the message is about (`seven` of `{seven: 2}`), not at the `{` or the 2
    assert output.startswith(
        f"<--set 1>:1:24: error: training.class_weight.{weights[1:-4]}: {message} "
        "(in a --set option on the command line)\n"
    )
    assert hint in output if hint else "hint" not in output
    # cnnspec train's own check, once the data is loaded, gives the same message
    with pytest.raises(SpecError) as info:
        load(DIGITS.replace("{epochs: 1}", f"{{epochs: 1, class_weight: {weights}}}"), tmp_path)
    assert info.value.errors[0].message == message
    assert (info.value.errors[0].loc.line, info.value.errors[0].loc.column) == (8, 38)  # (the key)


def test_keys_are_checked_against_the_classes_data_classes_selects(tmp_path):
    """``data.classes: [sneaker, bag]`` of fashion_mnist makes the classes 'sneaker' and 'bag',
    indices 0 and 1 (as train renumbers them): 'bag' and 0 are classes, 5 and 'bgg' are not. (Of
    the digits 0 would be the class named '0', which data.classes leaves out: see below.)"""
    text = spec_text("[28, 28, 1]", units=2, data="{source: fashion_mnist, classes: [sneaker, bag]}")
    code, output = validate(tmp_path, text + "training: {class_weight: {bag: 2, 0: 3}}\n")
    assert code == 0, output
    code, output = validate(tmp_path, text + "training:\n  class_weight: {bag: 2, 5: 3, bgg: 1}\n")
    assert code == 1
    assert "spec.yaml:9:26: error: training.class_weight.5: expected a class index (0–1) or name; " in output
    assert "received '5'\n" in output
    assert (
        "spec.yaml:9:32: error: training.class_weight.bgg: expected a class index (0–1) or name; " in output
    )
    assert "received 'bgg'\n" in output and "  hint: did you mean `bag`?\n" in output


#: The tester's spec: digits with data.classes [9, 5, 7], so the labels 0, 1, 2 are '9', '5', '7'.
SELECTED = (
    "cnnspec: 1\nname: ft\ninput: {shape: [8, 8, 1]}\nmodel:\n  - flatten\n"
    "  - dense: {units: 3, activation: softmax}\n"
    "data: {source: digits, classes: [9, 5, 7], per_class: 6, validation_split: 0.1}\n"
    "training:\n  class_weight: {%s: 3.0}\n  epochs: 1\n"
)
LEFT_OUT_HINT = (
    "use the name of a class data.classes keeps ('9', '5' or '7'), or drop the key (a number that "
    "names a class of the data is that class, not a label index)"
)


@pytest.mark.parametrize("key", ["0", "1", "2", "'2'", "3"])
def test_a_key_naming_a_class_data_classes_left_out_is_refused_not_read_as_an_index(tmp_path, key):
    """``2`` of the digits is the class named '2', which ``data.classes: [9, 5, 7]`` leaves out:
    read as the label index 2 it weighed '7' without a word. Validate refuses it at the key, and
    so does train, which compiles the spec first (its own check, once the data is read, is that
    of the npz tests below); 3 (no label index after the selection) alike."""
    text = SELECTED % key
    message = (
        f"expected a class that data.classes keeps; received '{key.strip(chr(39))}': class "
        f"'{key.strip(chr(39))}' is not among data.classes [9, 5, 7]"
    )
    code, output = validate(tmp_path, text)
    assert code == 1
    assert output.startswith(
        f"{tmp_path / 'spec.yaml'}:9:18: error: training.class_weight.{key.strip(chr(39))}: "
    )
    assert f": {message}\n" in output and f"  hint: {LEFT_OUT_HINT}\n" in output
    with pytest.raises(SpecError) as info:
        load(text, tmp_path)
    error = info.value.errors[0]
    assert (error.message, error.hint, error.path) == (
        message,
        LEFT_OUT_HINT,
        f"training.class_weight.{key.strip(chr(39))}",
    )
    assert (error.loc.line, error.loc.column) == (9, 18)


NAMED = "{source: {npz: d.npz}, validation_split: 0, classes: [bird, cat]}"


def test_a_kept_class_s_name_weighs_it(tmp_path):
    """'7' of the digits' [9, 5, 7] passes validate; train weighs a kept class by its name at
    its new label (an npz's cat of [bird, cat]: label 1), with no note."""
    code, output = validate(tmp_path, SELECTED % "7")
    assert code == 0, output
    write_npz(tmp_path / "d.npz", classes=3, class_names=["cat", "dog", "bird"])
    _, config, data = load(
        spec_text("[6, 6, 1]", 2, NAMED) + "training: {class_weight: {cat: 2}}\n", tmp_path
    )
    assert class_weights(config, data) == {0: 1.0, 1: 2.0}
    assert data.notes == []


def test_a_folder_source_says_the_label_index_note_too(tmp_path):
    """A folder's (or CSV's) dataset is listed, not loaded, and returned before the arrays' notes:
    `cnnspec train` said nothing where the generated script said the note, with the same
    weights applied. The folder of cat, dog, emu, fox with data.classes [fox, dog] has it too."""
    from PIL import Image

    for name in ("cat", "dog", "emu", "fox"):
        (tmp_path / "imgs" / name).mkdir(parents=True)
        for index in range(5):
            Image.new("L", (6, 6), index * 40).save(tmp_path / "imgs" / name / f"{index}.png")
    data = "{source: {directory: imgs}, validation_split: 0, classes: [fox, dog]}"
    _, config, dataset = load(
        spec_text("[6, 6, 1]", 2, data) + "training: {class_weight: {0: 2}}\n", tmp_path
    )
    assert class_weights(config, dataset) == {0: 2.0, 1: 1.0}
    assert dataset.notes == [
        "training.class_weight: '0' is the label index 0 after data.classes ('fox'), not the data's "
        "class at label index 0 ('cat')"
    ]


def test_a_number_naming_no_class_is_a_label_index_among_the_kept_ones_with_a_note(tmp_path):
    """The npz's classes cat, dog, bird; data.classes [bird, cat]: 1 names no class, so it is
    the label index 1 ('cat'), not the data's class 1 ('dog'), which train and the script say;
    'dog' names a class left out: refused by both (validate cannot know the npz's names)."""
    write_npz(tmp_path / "d.npz", classes=3, class_names=["cat", "dog", "bird"])
    text = spec_text("[6, 6, 1]", 2, NAMED) + "training: {class_weight: {1: 3}}\n"
    _, config, data = load(text, tmp_path)
    assert class_weights(config, data) == {0: 1.0, 1: 3.0}
    note = (
        "training.class_weight: '1' is the label index 1 after data.classes ('cat'), not the data's "
        "class at label index 1 ('dog')"
    )
    assert data.notes == [note]
    x, y = np.zeros((6, 2, 2)), np.arange(6) % 3
    select_classes = script_functions(tmp_path / "spec.yaml")["select_classes"]
    assert select_classes(x, y, x[:0], y[:0], ["cat", "dog", "bird"])[4] == ["bird", "cat"]
    text = text.replace("{1: 3}", "{dog: 3}")
    code, output = validate(tmp_path, text)
    assert code == 0, output
    with pytest.raises(SpecError) as info:
        load(text, tmp_path)
    message = (
        "expected a class that data.classes keeps; received 'dog': class 'dog' is not among "
        "data.classes [bird, cat]"
    )
    assert info.value.errors[0].message == message
    select_classes = script_functions(tmp_path / "spec.yaml")["select_classes"]
    with pytest.raises(SystemExit) as stopped:
        select_classes(x, y, x[:0], y[:0], ["cat", "dog", "bird"])
    assert str(stopped.value) == (
        f"training.class_weight.dog: {message}\nuse the name of a class data.classes keeps ('bird' or "
        "'cat'), or drop the key (a number that names a class of the data is that class, not a label index)"
    )


def test_an_npz_s_numbered_classes_are_names_of_the_classes_left_out_too(tmp_path, capsys):
    """An npz without class_names: its classes are '0', '1', '2'. Of data.classes [2, 0], 1 names
    the class left out (refused); 0 the class '0', now label 1, as train and the script say."""
    write_npz(tmp_path / "d.npz", classes=3)
    text = (
        spec_text("[6, 6, 1]", 2, NAMED.replace("bird, cat", "2, 0")) + "training: {class_weight: {0: 3}}\n"
    )
    _, config, data = load(text, tmp_path)
    assert class_weights(config, data) == {0: 1.0, 1: 3.0}
    note = "training.class_weight: '0' is the class named '0' (label 1), not the class at label index 0 ('2')"
    assert data.notes == [note]
    functions = script_functions(tmp_path / "spec.yaml")
    x, y = np.zeros((6, 2, 2)), np.arange(6) % 3
    _, y_train, _, _, names = functions["select_classes"](x, y, x[:0], y[:0], [])
    assert f"note: {note}\n" in capsys.readouterr().out
    assert functions["class_weights"](y_train, names) == {0: 1.0, 1: 3.0}
    with pytest.raises(SpecError) as info:
        load(text.replace("{0: 3}", "{1: 3}"), tmp_path)
    assert info.value.errors[0].message == (
        "expected a class that data.classes keeps; received '1': class '1' is not among data.classes [2, 0]"
    )


def test_a_keras_dataset_s_class_names_are_keys_and_codegen_refuses_others(tmp_path):
    text = spec_text("[28, 28, 1]", data="{source: fashion_mnist}")
    code, output = validate(tmp_path, text + "training: {class_weight: {sneaker: 2, 0: 1}}\n")
    assert code == 0, output
    path = tmp_path / "spec.yaml"
    path.write_text(text + "training: {class_weight: {snekaer: 2}}\n", encoding="utf-8")
    result = runner.invoke(app, ["codegen", str(path), "--script", "-o", str(tmp_path / "s.py")])
    assert result.exit_code == 1
    assert "training.class_weight.snekaer: expected a class index (0–9) or name; received 'snekaer'" in (
        result.output
    )
    assert "hint: did you mean `sneaker`?" in result.output
    assert not (tmp_path / "s.py").exists()


def test_sources_whose_classes_are_read_are_checked_by_train_and_the_script(tmp_path):
    """An npz file's class names are known once it is read: validate and codegen pass, train
    refuses the key, and the script stops with train's message where it makes Keras' weights."""
    x = np.zeros((30, 4, 4), "uint8")
    y = np.array([0] * 20 + [1] * 10)
    np.savez(tmp_path / "d.npz", x_train=x, y_train=y, x_test=x[:4], y_test=y[:4], class_names=["cat", "dog"])
    text = spec_text("[4, 4, 1]", 2, "{source: {npz: d.npz}, validation_split: 0}")
    for key, message in [
        ("cow", "expected a class index (0–1) or name; received 'cow'"),
        ("2", "expected a class index (0–1) or name; received '2'"),
    ]:
        spec = text + f"training: {{class_weight: {{{key}: 3}}}}\n"
        code, output = validate(tmp_path, spec)
        assert code == 0, output
        with pytest.raises(SpecError) as info:
            load(spec, tmp_path)
        assert info.value.errors[0].message == message
        functions = script_functions(tmp_path / "spec.yaml", compile_spec(tmp_path / "spec.yaml"))
        with pytest.raises(SystemExit) as stopped:
            functions["class_weights"](y, ["cat", "dog"])
        assert str(stopped.value) == f"training.class_weight.{key}: {message}"
    spec = text + "training: {class_weight: {dog: 3, 0: 2}}\n"
    (tmp_path / "spec.yaml").write_text(spec, encoding="utf-8")
    functions = script_functions(tmp_path / "spec.yaml")
    assert functions["class_weights"](y, ["cat", "dog"]) == {0: 2.0, 1: 3.0}


def test_two_keys_weighing_one_class_are_refused_at_the_second(tmp_path):
    """'bag' and 1 are one class once data.classes renumbered the labels (a name and its index):
    one of the two weights was dropped without a word. Refused by validate (a fixed source),
    train and the script (an npz's classes)."""
    text = spec_text("[28, 28, 1]", units=2, data="{source: fashion_mnist, classes: [sneaker, bag]}")
    code, output = validate(tmp_path, text + "training: {class_weight: {bag: 2, 1: 3}}\n")
    assert code == 1
    assert (
        "spec.yaml:8:35: error: training.class_weight.1: expected each class once in training.class_weight; "
        "received '1', the same class ('bag') as 'bag'\n"
    ) in output
    assert "  hint: remove one of 'bag' and '1'\n" in output
    write_npz(tmp_path / "d.npz", classes=3, class_names=["cat", "dog", "bird"])
    text = spec_text("[6, 6, 1]", 2, NAMED) + "training: {class_weight: {cat: 2, 1: 3}}\n"
    with pytest.raises(SpecError) as info:
        load(text, tmp_path)
    message = (
        "expected each class once in training.class_weight; received '1', the same class ('cat') as 'cat'"
    )
    assert (info.value.errors[0].message, info.value.errors[0].hint) == (
        message,
        "remove one of 'cat' and '1'",
    )
    with pytest.raises(SystemExit) as stopped:
        script_functions(tmp_path / "spec.yaml")["class_weights"](np.array([0, 1]), ["bird", "cat"])
    assert str(stopped.value) == f"training.class_weight.1: {message}\nremove one of 'cat' and '1'"
