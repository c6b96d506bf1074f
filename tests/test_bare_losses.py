"""A ``.keras`` file without a spec is evaluated with the classification loss it records,
where cnnspec builds that loss as Keras does (a focal loss with its gamma and alpha, label
smoothing): ``evaluate``'s loss is then the figure the model trained on, Keras' own
``model.evaluate``. Before, crossentropy stood in for every classification loss, and the
report's loss of a focal model was a figure it never trained on, without a word. A loss
cnnspec has no equal of, or one the output's task does not take, still gets crossentropy,
and evaluate says so."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from cnnspec.analysis.tasks import keras_classification_loss
from cnnspec.cli.app import app


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("sparse_categorical_crossentropy", "sparse_categorical_crossentropy"),
        ("bce", "binary_crossentropy"),
        ("CategoricalCrossentropy", "categorical_crossentropy"),
        (
            {
                "module": "keras.losses",
                "class_name": "CategoricalFocalCrossentropy",
                "config": {
                    "name": "mine",
                    "reduction": "sum_over_batch_size",
                    "alpha": 0.5,
                    "gamma": 3,
                    "from_logits": False,
                    "label_smoothing": 0.0,
                    "axis": -1,
                },
            },
            {"categorical_focal_crossentropy": {"label_smoothing": 0.0, "gamma": 3.0, "alpha": 0.5}},
        ),
        (
            {
                "class_name": "BinaryFocalCrossentropy",
                "config": {"apply_class_balancing": True, "alpha": 0.3},
            },
            {"binary_focal_crossentropy": {"alpha": 0.3, "apply_class_balancing": True}},
        ),
        # settings that make it another figure than cnnspec's loss: not rebuilt
        ({"class_name": "CategoricalCrossentropy", "config": {"reduction": "sum"}}, None),
        ({"class_name": "CategoricalCrossentropy", "config": {"axis": 1}}, None),
        ({"class_name": "SparseCategoricalCrossentropy", "config": {"ignore_class": 0}}, None),
        # no equal in cnnspec, a regression loss, none
        ("hinge", None),
        ("kl_divergence", None),
        ("mse", None),
        (None, None),
    ],
)
def test_recorded_classification_losses_cnnspec_rebuilds(entry: Any, expected: Any) -> None:
    assert keras_classification_loss(entry) == expected


def _saved(folder: Path, name: str, units: int, activation: str, loss: Any) -> Path:
    """An 8×8×1 model (its own Rescaling) of ``units`` outputs, trained 2 epochs with ``loss``
    on random data and saved as ``name``.keras."""
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Rescaling(1 / 255),
            keras.layers.Flatten(),
            keras.layers.Dense(units, activation=activation),
        ]
    )
    model.compile(optimizer="adam", loss=loss)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (40, 8, 8, 1)).astype("float32")
    y = keras.utils.to_categorical(rng.integers(0, units, 40), units)
    model.fit(x, y, epochs=2, verbose=0)
    path = folder / f"{name}.keras"
    model.save(path)
    return path


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """60 test images of 8×8 in classes 0–2, as an ``.npz`` (its training split the same)."""
    folder = tmp_path_factory.mktemp("bare_losses")
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (60, 8, 8, 1), dtype="uint8")
    y = np.arange(60) % 3
    np.savez(folder / "data.npz", x_train=x, y_train=y, x_test=x, y_test=y)
    return folder / "data.npz"


def _evaluate(model: Path, data: Path, out: Path) -> dict[str, Any]:
    result = CliRunner().invoke(
        app, ["evaluate", str(model), "--data", str(data), "-o", str(out), "-f", "json"]
    )
    assert result.exit_code == 0, result.output
    return json.loads((out / "evaluation.json").read_text(encoding="utf-8"))


def _keras_loss(model: Path, data: Path) -> float:
    """The model's own loss on the data's test split, as Keras computes it."""
    import keras

    with np.load(data) as arrays:
        x, y = arrays["x_test"].astype("float32"), arrays["y_test"]
    loaded = keras.saving.load_model(model, safe_mode=True)
    return float(loaded.evaluate(x, keras.utils.to_categorical(y, 3), verbose=0))


@pytest.mark.slow
@pytest.mark.parametrize(
    "loss",
    [
        "focal_gamma3",
        "smoothed_crossentropy",
    ],
)
def test_evaluate_reports_the_loss_the_file_records(loss: str, data: Path, tmp_path: Path) -> None:
    import keras

    recorded = {
        "focal_gamma3": keras.losses.CategoricalFocalCrossentropy(gamma=3.0, alpha=0.5),
        "smoothed_crossentropy": keras.losses.CategoricalCrossentropy(label_smoothing=0.2),
    }[loss]
    model = _saved(tmp_path, loss, 3, "softmax", recorded)
    document = _evaluate(model, data, tmp_path / "out")
    assert document["loss"] == pytest.approx(_keras_loss(model, data), abs=1e-4)
    assert not any("loss is" in note for note in document.get("notes", []))


@pytest.mark.slow
def test_a_loss_cnnspec_does_not_rebuild_is_named_in_a_note(data: Path, tmp_path: Path) -> None:
    # hinge: no equal in cnnspec; binary crossentropy on a softmax of 3 units: Keras trains it
    # without a word, no task of cnnspec's takes it: crossentropy stands in for both, said
    for name, loss in (("hinge", "hinge"), ("bce3", "binary_crossentropy")):
        model = _saved(tmp_path, name, 3, "softmax", loss)
        document = _evaluate(model, data, tmp_path / name)
        notes = [note for note in document.get("notes", []) if "the loss is" in note]
        assert len(notes) == 1, document.get("notes")
        assert f"records {loss}" in notes[0] and "sparse_categorical_crossentropy" in notes[0], notes
        assert isinstance(document["loss"], float)
