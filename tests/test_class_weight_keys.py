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
from tests.test_data import load, spec_text
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
    """``data.classes: [3, 8]`` makes the classes '3' and '8', indices 0 and 1 (as train
    renumbers them): '8' and 1 are classes, 5 is not."""
    text = spec_text(units=2, data="{source: digits, classes: [3, 8]}")
    code, output = validate(tmp_path, text + "training: {class_weight: {'8': 2, 1: 3}}\n")
    assert code == 0, output
    code, output = validate(tmp_path, text + "training:\n  class_weight: {'8': 2, 5: 3}\n")
    assert code == 1
    assert "spec.yaml:9:26: error: training.class_weight.5: expected a class index (0–1) or name; " in output
    assert "received '5'\n" in output and "  hint: did you mean `3`?\n" in output


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
