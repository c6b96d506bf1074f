"""A temperature folded into a model's weights (cnnspec/export/folding.py): every head it takes
answers with the model's own probabilities scaled as cnnspec/reporting/temperature.py scales
them, and every head it refuses is left untouched, with the reason."""

from __future__ import annotations

import numpy as np
import pytest

from cnnspec.reporting.temperature import tempered, tempered_labels

pytestmark = pytest.mark.slow

T = 1.7


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def build(head: str):
    """A small seeded model whose last layers are ``head``'s."""
    import keras

    keras.utils.set_random_seed(4)
    layers = keras.layers
    inputs = keras.Input((6, 6, 2))
    x = layers.Conv2D(5, 3, activation="relu", name="body")(inputs)
    if head == "dense_softmax":
        out = layers.Dense(4, activation="softmax", name="scores")(layers.Flatten()(x))
    elif head == "dense_then_softmax_layer":
        out = layers.Softmax(name="probabilities")(layers.Dense(4, name="scores")(layers.Flatten()(x)))
    elif head == "conv_pool_dropout_activation":
        z = layers.Conv2D(4, 1, name="scores")(x)
        z = layers.Dropout(0.3)(layers.GlobalAveragePooling2D()(z))
        out = layers.Activation("softmax")(z)
    elif head == "separable_softmax_layer":
        z = layers.SeparableConv2D(4, 4, name="scores")(x)
        out = layers.Softmax()(layers.Reshape((4,))(z))
    elif head == "multilabel_sigmoid":
        out = layers.Dense(3, activation="sigmoid", name="scores")(layers.GlobalMaxPooling2D()(x))
    elif head == "logits":
        out = layers.Dense(4, name="scores", use_bias=False)(layers.Flatten()(x))
    elif head == "normalised_scores":
        z = layers.BatchNormalization(name="norm")(layers.Dense(4, name="scores")(layers.Flatten()(x)))
        out = layers.Softmax()(z)
    elif head == "relu_scores":
        out = layers.Softmax()(layers.Dense(4, activation="relu", name="scores")(layers.Flatten()(x)))
    elif head == "residual_scores":  # (scores added to a branch of their own: no one layer makes them)
        z = layers.Dense(4, name="scores")(layers.Flatten()(x))
        out = layers.Softmax()(layers.Add(name="merge")([z, layers.Dense(4)(z)]))
    elif head == "softmax_over_rows":
        out = layers.Softmax(axis=1, name="rows")(layers.Dense(4, name="scores")(x))
    elif (
        head == "map_logits_bilinear"
    ):  # a segmentation head of logits, upsampled (a review found it refused)
        out = layers.UpSampling2D(2, interpolation="bilinear")(layers.Conv2D(4, 1, name="scores")(x))
    elif head == "map_softmax_cropped":
        out = layers.Cropping2D(1)(layers.Conv2D(4, 1, activation="softmax", name="scores")(x))
    elif head == "map_softmax_nearest":
        out = layers.UpSampling2D(2)(layers.Conv2D(4, 1, activation="softmax", name="scores")(x))
    elif head == "map_softmax_bilinear":  # interpolated probabilities: no scaled logits' softmax
        probabilities = layers.Conv2D(4, 1, activation="softmax", name="scores")(x)
        out = layers.UpSampling2D(2, interpolation="bilinear")(probabilities)
    elif head == "two_outputs":
        flat = layers.Flatten()(x)
        return keras.Model(inputs, [layers.Dense(4, activation="softmax")(flat), layers.Dense(1)(flat)])
    else:
        raise AssertionError(head)
    return keras.Model(inputs, out)


def outputs(model) -> np.ndarray:
    batch = np.random.default_rng(1).random((16, 6, 6, 2)).astype("float32")
    return np.asarray(model(batch, training=False), dtype="float64")


@pytest.mark.parametrize(
    ("head", "scaled"),
    [
        ("dense_softmax", lambda own: tempered(own, T)),
        ("dense_then_softmax_layer", lambda own: tempered(own, T)),
        ("conv_pool_dropout_activation", lambda own: tempered(own, T)),
        ("separable_softmax_layer", lambda own: tempered(own, T)),
        ("multilabel_sigmoid", lambda own: tempered_labels(own, False, T)),
        ("logits", lambda own: own / T),
        ("map_logits_bilinear", lambda own: own / T),
        ("map_softmax_cropped", lambda own: tempered(own.reshape(-1, 4), T).reshape(own.shape)),
        ("map_softmax_nearest", lambda own: tempered(own.reshape(-1, 4), T).reshape(own.shape)),
    ],
)
def test_a_head_linear_in_its_weights_answers_with_the_scaled_probabilities(head, scaled):
    from cnnspec.export.folding import fold_temperature

    model = build(head)
    own = outputs(model)
    assert fold_temperature(model, T) == "scores"
    np.testing.assert_allclose(outputs(model), scaled(own), atol=2e-6)
    if head != "multilabel_sigmoid":  # the top class stays where it was
        assert (outputs(model).argmax(axis=-1) == own.argmax(axis=-1)).all()


@pytest.mark.parametrize(
    ("head", "reason"),
    [
        ("normalised_scores", "layer `norm` (BatchNormalization), which has no kernel"),
        ("relu_scores", "layer `scores` (Dense) applies relu after its kernel"),
        ("residual_scores", "layer `merge` (Add), which has no kernel"),
        ("softmax_over_rows", "the softmax layer `rows` is over axis 1"),
        ("two_outputs", "the model has 2 outputs"),
        ("map_softmax_bilinear", "layer `scores` (Conv2D) applies softmax after its kernel"),
    ],
)
def test_a_head_a_temperature_cannot_pass_is_refused_and_left_as_it_was(head, reason):
    from cnnspec.export.folding import NotFoldable, fold_temperature

    model = build(head)
    before = [np.array(w) for w in model.get_weights()]
    with pytest.raises(NotFoldable, match=reason.replace("(", r"\(").replace(")", r"\)")):
        fold_temperature(model, T)
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights(), strict=True))


def test_a_sharpening_temperature_keeps_the_classes_a_float32_softmax_can_hold():
    """T < 1 on a float32 graph: the folded scores are the model's divided by T, as in NumPy."""
    from cnnspec.export.folding import fold_temperature

    model = build("dense_then_softmax_layer")
    own = outputs(model)
    fold_temperature(model, 0.25)
    np.testing.assert_allclose(outputs(model), softmax(np.log(own) / 0.25), atol=2e-6)


@pytest.mark.parametrize("averaged", [False, True])
def test_a_run_temperature_not_folded_is_said_as_the_file_answers(tmp_path, averaged):
    """Under ``auto``, a calibrated run whose head takes no temperature is exported as it is,
    with a note. A file of one model: evaluate and predict scale its answer, and another
    program divides the logits. A ``--tta`` or ``--ensemble`` file answers a mean, which
    nothing can scale after it: its note says the mean is unscaled (before, it said the same
    as the single model's, which a review found untrue of such a file)."""
    import json
    from types import SimpleNamespace

    from cnnspec.export.folding import fold_for_export
    from cnnspec.fileio import sha256_file
    from cnnspec.reporting.temperature import Fitted

    model_path = tmp_path / "model.keras"
    model_path.write_bytes(b"the model's bytes")
    digest = sha256_file(model_path)
    fitted = Fitted(1.5, "validation", 40, 0.5, 0.4, 0.1, 0.05, digest)
    (tmp_path / "temperature.json").write_text(json.dumps(fitted.describe()), encoding="utf-8")
    run = SimpleNamespace(run_dir=tmp_path, model_path=model_path)
    model = build("normalised_scores")
    notes: list[str] = []
    kept: list[float] = []  # (what the exporter records for the file served alone)
    folded = fold_for_export(
        model,
        wanted=None,
        run=run,
        reading={"output": {"binary": False, "from_logits": False, "classes": ["a", "b", "c", "d"]}},
        model_sha256=digest,
        first_output=lambda: outputs(model),
        notes=notes,
        averaged=averaged,
        unfolded=kept.append,
    )
    assert folded == 1.0 and len(notes) == 1, notes
    assert kept == ([] if averaged else [1.5])  # (a mean is scaled by nothing after it)
    assert "the run's temperature 1.5 is not folded into the export (" in notes[0]
    if averaged:
        assert notes[0].endswith("the file's mean is of the model's own probabilities, unscaled"), notes
    else:
        assert "which cnnspec evaluate and predict scale" in notes[0], notes
