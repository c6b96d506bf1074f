"""A ``.keras`` file outside a run folder is read whatever its file name: the stand-in spec
(:func:`cnnspec.reporting.stand_in.stand_in_name`) is named after the file, and ``my-model.keras``,
``1model.keras`` and ``modèle.keras`` were refused ("cannot tell the task of the model's
outputs without a spec (name: expected an identifier …)"), while ``m x.keras`` was read."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from cnnspec.reporting.stand_in import stand_in_name
from tests.test_bare_review3 import _flat_head, _image, _invoke, _save

IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("my-model", "my_model"),
        ("1model", "_1model"),
        ("modèle", "mod_le"),
        ("m x", "m_x"),
        ("模型", "model"),
        ("-", "model"),
        ("", "model"),
        ("ok_name", "ok_name"),
        ("a.b", "a_b"),
    ],
)
def test_the_stand_in_name_is_an_identifier_whatever_the_file_is_called(name, expected):
    assert stand_in_name(name) == expected
    assert IDENTIFIER.fullmatch(stand_in_name(name))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["my-model", "1model", "modèle"])
def test_a_model_file_is_read_whatever_its_name(tmp_path: Path, name: str) -> None:
    import keras

    inputs, flat = _flat_head()
    path = _save(
        keras.Model(inputs, keras.layers.Dense(3, activation="softmax", name="out")(flat)),
        tmp_path / "model.keras",
        "sparse_categorical_crossentropy",
    )
    renamed = tmp_path / f"{name}.keras"
    shutil.copyfile(path, renamed)
    result = _invoke("predict", renamed, _image(tmp_path), "--format", "json")
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)["predictions"][0]["top"]) == 3
