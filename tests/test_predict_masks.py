"""Where segmentation ``predict`` writes its masks (``cnnspec/reporting/task_predict.py``): never
over an input or a file of the user's in ``--out``; an earlier prediction is replaced. The model
is stood in for by a function (no TensorFlow): what is checked is the files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnnspec.analysis.settings import training_config
from cnnspec.api import compile_spec
from cnnspec.errors import UsageError
from cnnspec.reporting.images import read_inputs
from cnnspec.reporting.task_predict import predict_tasks
from tests.conftest import ROOT

SHAPE = (64, 64, 3)  # specs/unet_shapes.yaml's input


@pytest.fixture(scope="module")
def tasks():
    return training_config(compile_spec(ROOT / "specs" / "unet_shapes.yaml")).tasks


def _image(path: Path, value: int = 40) -> Path:
    Image.fromarray(np.full(SHAPE, value, dtype="uint8")).save(path)
    return path


def _predict(tasks, inputs: list[Path], folder: Path) -> list[dict]:
    """predict_tasks with a model that gives class 2 for every pixel."""
    samples = read_inputs(inputs, SHAPE)

    def model(batch: np.ndarray) -> np.ndarray:
        scores = np.zeros((len(batch), *SHAPE[:2], 4), dtype="float32")
        scores[..., 2] = 1.0
        return scores

    return predict_tasks(tasks, {}, samples, folder, 3, lambda integer, pixels: 1 / 255, model)


def test_a_mask_never_replaces_an_input_image(tasks, tmp_path):
    """``predict cat.png cat_mask.png -o .``: the first input's mask would be the second input."""
    cat, own = _image(tmp_path / "cat.png"), _image(tmp_path / "cat_mask.png", 200)
    before = own.read_bytes()
    with pytest.raises(UsageError, match="is one of the inputs"):
        _predict(tasks, [cat, own], tmp_path)
    assert own.read_bytes() == before


def test_a_file_of_the_users_in_out_is_not_replaced(tasks, tmp_path):
    cat = _image(tmp_path / "cat.png")
    out = tmp_path / "out"
    out.mkdir()
    (out / "cat_mask.png").write_bytes(b"the user's notes")
    with pytest.raises(UsageError, match="a file predict did not write") as caught:
        _predict(tasks, [cat], out)
    assert "another --out" in caught.value.hint
    assert (out / "cat_mask.png").read_bytes() == b"the user's notes"


def test_an_earlier_prediction_is_replaced(tasks, tmp_path):
    cat = _image(tmp_path / "cat.png")
    out = tmp_path / "out"
    (first,) = _predict(tasks, [cat], out)
    mask = Path(first["outputs"][tasks[0].name]["mask"])
    assert np.all(np.asarray(Image.open(mask)) == 2)
    mask.write_bytes(mask.read_bytes())  # (the same file again: marked as predict's)
    (again,) = _predict(tasks, [cat], out)
    assert again["outputs"][tasks[0].name]["mask"] == str(mask)


def test_the_mask_of_an_image_named_in_no_utf8_has_a_utf8_name(tasks, tmp_path):
    """caf\\xe9.png (a Latin-1 name): its mask is caf__mask.png, each character that is no letter,
    digit, ``-``, ``_`` or ``.`` a ``_``, so the mask's name (in the CSV and JSON too) is UTF-8."""
    import os

    cat = Path(os.fsdecode(os.fsencode(tmp_path) + b"/caf\xe9.png"))
    _image(cat)
    (answer,) = _predict(tasks, [cat], tmp_path / "out")
    assert answer["outputs"][tasks[0].name]["mask"] == str(tmp_path / "out" / "caf__mask.png")
    assert (tmp_path / "out" / "caf__mask.png").is_file()
