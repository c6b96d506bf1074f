"""`--ensemble` of `cnnspec evaluate` and `cnnspec predict` (cnnspec/reporting/ensemble.py): the
mean of several trained models' probabilities, each model checked against the first before
anything is predicted."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from cnnspec.training.overlap import seen_images
from tests.test_report_support import train_without_page


def test_shared_images_are_the_same_pixels_of_the_same_dtype():
    """The members' check counts with the one comparison evaluate --data and train use."""
    rng = np.random.default_rng(0)
    train, other = (
        rng.integers(0, 255, (5, 4, 4, 1), dtype="uint8"),
        rng.integers(0, 255, (3, 4, 4, 1), dtype="uint8"),
    )
    test = np.concatenate([train[[1, 3]], other])
    assert seen_images(test, [train]).total == 2
    assert seen_images(test, [train[:2], other[:1]]).total == 2  # (row 1 of train, row 0 of other)
    assert seen_images(test.astype("float32"), [train]).total == 0  # the same numbers, not the same data


# -- the commands --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two colour classifiers on the same npz (a fixed test set: any seeds), another run of
    the reporting tests' spec with twice the filters and another seed."""
    from tests.test_report_support import trained_run, wide_run

    return trained_run(tmp_path_factory), wide_run(tmp_path_factory)


@pytest.mark.slow
@pytest.mark.xdist_group("reporting")
def test_evaluate_scores_the_mean_of_the_models_probabilities(runs, tmp_path):
    from cnnspec.reporting.held_out import load_test_data
    from cnnspec.reporting.predictions import probabilities
    from cnnspec.reporting.run import locate
    from cnnspec.reporting.views import confusion_source
    from cnnspec.training.imagefiles import scale_batch
    from cnnspec.training.modelfile import load_model
    from tests.test_report_support import flat, invoke

    first, wide = runs
    # written into (a copy of) the run folder, as evaluate writes without -o: the one ensemble
    # evaluation this test's figures and the confusion matrix's caption below are checked on
    copy = tmp_path / "run"
    shutil.copytree(first, copy)
    result = invoke("evaluate", copy, "--ensemble", wide)
    assert result.exit_code == 0, result.output
    assert (
        f"--ensemble: each test image's class probabilities are the mean of the 2 models {copy} and {wide}"
        in flat(result)
    )
    document = json.loads((copy / "evaluation.json").read_text("utf-8"))
    assert document["ensemble"] == [str(wide)] and document["tta"] == []
    # by hand: each model on the first run's test split, then the mean
    run = locate(first)
    models = [load_model(run.model_path), load_model(locate(wide).model_path)]  # (each loaded once)
    test = load_test_data(run, models[0])
    x = scale_batch(test.x, test.settings.rescale)
    # (each model called once in inference mode: predict() would first trace a graph of each)
    probs = [probabilities(np.asarray(model(x, training=False)), run.output_kind()) for model in models]
    mean = (probs[0] + probs[1]) / 2
    assert document["accuracy"] == pytest.approx(float((mean.argmax(axis=1) == test.y).mean()))
    assert document["calibration"]["mean_confidence"] == pytest.approx(
        float(mean.max(axis=1).mean()), abs=1e-5
    )
    with_tta = invoke("evaluate", first, "--ensemble", wide, "--tta", "hflip", "-o", tmp_path / "t")
    assert with_tta.exit_code == 0, with_tta.output
    assert "are the mean over it and its mirror image left to right of the 2 models" in flat(with_tta)
    # written into the run folder, its confusion matrix says whose it is (visualize, report.html)
    assert confusion_source(locate(copy))[2] == "evaluation of an ensemble of 2 models"


@pytest.mark.slow
@pytest.mark.xdist_group("reporting")
def test_predict_answers_with_the_mean_and_a_runtime_that_is_not_keras_is_refused(runs, tmp_path):
    from PIL import Image

    from tests.test_report_support import flat, invoke

    first, wide = runs
    image = np.random.default_rng(6).integers(0, 255, (8, 8, 3), dtype="uint8")
    Image.fromarray(image).save(tmp_path / "a.png")

    def top(*args):
        result = invoke("predict", *args, tmp_path / "a.png", "-k", "3", "-f", "json")
        assert result.exit_code == 0, result.output
        document = json.loads(result.stdout)
        return document, {t["class"]: t["probability"] for t in document["predictions"][0]["top"]}

    (_, alone), (_, other) = top(first), top(wide)
    document, both = top(first, "--ensemble", wide)
    assert document["ensemble"] == [str(wide)] and document["runtime"] == "keras"
    for name, probability in both.items():
        assert probability == pytest.approx((alone[name] + other[name]) / 2, abs=1e-6)
    refused = invoke("predict", first, tmp_path / "a.png", "--ensemble", wide, "--runtime", "onnx")
    assert refused.exit_code == 2 and "expected --runtime keras with --ensemble" in flat(refused)


@pytest.mark.slow
@pytest.mark.xdist_group("reporting")
def test_a_model_given_twice_is_refused_by_evaluate_predict_and_export(runs, tmp_path):
    """The target again, through a link, or a copy of its model file byte for byte: the mean
    would weigh that model twice."""
    from tests.test_report_support import flat, invoke

    first, wide = runs
    (tmp_path / "link").symlink_to(first)
    shutil.copy(first / "model.keras", tmp_path / "copy.keras")
    np.save(tmp_path / "x.npy", np.zeros((8, 8, 3), "uint8"))
    cases = [
        ("evaluate", first, "--ensemble", first, "-o", tmp_path / "e"),
        ("evaluate", first, "--ensemble", wide, "--ensemble", tmp_path / "link", "-o", tmp_path / "e"),
        ("predict", first, tmp_path / "x.npy", "--ensemble", tmp_path / "copy.keras"),
        ("export", first, "-f", "onnx", "--ensemble", wide, "--ensemble", wide, "-o", tmp_path / "m.onnx"),
    ]
    for words in cases:
        refused = invoke(*words)
        assert refused.exit_code == 2, (words, refused.output)
        assert "already is" in flat(refused) and "the mean would weigh it twice" in flat(refused), words
    assert not (tmp_path / "e").exists() and not (tmp_path / "m.onnx").exists()


@pytest.mark.slow
@pytest.mark.xdist_group("reporting")
def test_a_model_that_cannot_join_is_refused_before_anything_is_predicted(runs, tmp_path):
    import keras

    from tests.test_report_support import flat, invoke

    first, _ = runs
    np.save(tmp_path / "x.npy", np.zeros((8, 8, 3), "uint8"))
    inputs = keras.Input((6, 6, 3))
    outputs = keras.layers.Dense(3, activation="softmax")(keras.layers.Flatten()(inputs))
    keras.Model(inputs, outputs).save(tmp_path / "small.keras")
    refused = invoke("evaluate", first, "--ensemble", tmp_path / "small.keras", "-o", tmp_path / "e")
    assert refused.exit_code == 2
    assert (
        "expected every model of the ensemble to take tiny_colors's input [8, 8, 3]; "
        f"{tmp_path / 'small.keras'} takes [6, 6, 3]" in flat(refused)
    )
    assert not (tmp_path / "e").exists()
    logits = keras.Input((8, 8, 3))
    scores = keras.layers.Dense(3)(keras.layers.Flatten()(logits))  # the same shapes, in logits
    answering = keras.Model(logits, scores)
    answering.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    answering.save(tmp_path / "logits.keras")
    refused = invoke("predict", first, tmp_path / "x.npy", "--ensemble", tmp_path / "logits.keras")
    assert refused.exit_code == 2
    assert "(classification in probabilities); " in flat(refused)
    assert "logits.keras answers classification in logits" in flat(refused)

    # a run that trained on ten of the first run's test images (another split of the data, as
    # another seed draws of a source without a test set of its own)
    from tests.test_report_support import CLASSES, SPEC, colour_images

    x_train, y_train = colour_images(120, 1)
    x_test, y_test = colour_images(30, 2)  # (the first run's test split)
    np.savez(tmp_path / "leaky.npz", x_train=np.concatenate([x_train, x_test[:10]]),
             y_train=np.concatenate([y_train, y_test[:10]]), x_test=x_test, y_test=y_test,
             class_names=np.array(CLASSES))  # fmt: skip
    (tmp_path / "leaky.yaml").write_text(
        SPEC.replace("colors.npz", "leaky.npz").replace("epochs: 3", "epochs: 1")
    )
    train_without_page(tmp_path / "leaky.yaml", tmp_path / "leaky")
    leaked = invoke("evaluate", first, "--ensemble", tmp_path / "leaky", "-o", tmp_path / "e")
    assert leaked.exit_code == 2
    assert (
        f"10 of tiny_colors's 30 test images are among the training or validation images of "
        f"{tmp_path / 'leaky'}" in flat(leaked)
    )
    assert "the same data and training.seed" in flat(leaked) and not (tmp_path / "e").exists()
    # export --ensemble checks them too (it wrote the file silently): its record keeps the first
    # run's split, which `evaluate FILE --data SOURCE` scores; predict scores no test images
    out = tmp_path / "leaky.onnx"
    exported = invoke("export", first, "--ensemble", tmp_path / "leaky", "-f", "onnx", "-o", out)
    assert exported.exit_code == 2, exported.output
    assert flat(exported) == flat(leaked) and not out.exists()
    predicted = invoke("predict", first, tmp_path / "x.npy", "--ensemble", tmp_path / "leaky")
    assert predicted.exit_code == 0, predicted.output

    # the same run without its resolved.yaml (and spec.yaml) was taken "as a model file outside
    # a run folder", unchecked: an ensemble scored on images a member trained on, exit 0
    for name in ("resolved.yaml", "spec.yaml"):
        (tmp_path / "leaky" / name).unlink(missing_ok=True)
    lost = invoke("evaluate", first, "--ensemble", tmp_path / "leaky", "-o", tmp_path / "e")
    assert lost.exit_code == 2, lost.output
    assert (
        f"cannot tell whether --ensemble {tmp_path / 'leaky'} trained on tiny_colors's test images: "
        f"resolved.yaml, the run's spec that names its data, is missing from the run folder "
        f"{tmp_path / 'leaky'}" in flat(lost)
    )
    assert "outside a run folder" not in flat(lost) and not (tmp_path / "e").exists()
    predicted = invoke("predict", first, tmp_path / "x.npy", "--ensemble", tmp_path / "leaky")
    assert predicted.exit_code == 0, predicted.output
    assert f"a run folder without its resolved.yaml ({tmp_path / 'leaky'})" in flat(predicted)


@pytest.mark.slow
@pytest.mark.xdist_group("reporting")
def test_an_ensemble_is_exported_as_one_file_that_answers_the_mean(runs, tmp_path):
    """`export --ensemble`: one file whose answer is the mean of the models' probabilities, each
    scaled by its own temperature, as predict --ensemble answers; cnnspec's readers never take
    it for the run's own export."""
    import keras

    from cnnspec.export.runtimes import open_session, record_path
    from cnnspec.reporting.temperature import FILE, tempered
    from tests.test_report_support import flat, invoke

    first, wide = runs
    copy = tmp_path / "run"
    shutil.copytree(first, copy)
    assert invoke("calibrate", copy, "--force").exit_code == 0
    t = json.loads((copy / FILE).read_text("utf-8"))["temperature"]
    unnamed = invoke("export", copy, "-f", "tflite", "--ensemble", wide)
    assert unnamed.exit_code == 2 and "expected -o with --ensemble" in flat(unnamed)
    assert not (copy / "export").exists()

    # written where the run's own export goes (one conversion: the file checked here is the one
    # predict is asked about below)
    out = copy / "export" / "model.tflite"
    result = invoke("export", copy, "-f", "tflite", "--ensemble", wide, "-o", out)
    assert result.exit_code == 0, result.output
    assert "an ensemble of 2 models" in flat(result) and "folded into the kernel and bias" in flat(result)
    record = json.loads(record_path(out).read_text("utf-8"))
    assert [(e["model"], e["temperature"]) for e in record["ensemble"]] == [
        (str(copy / "model.keras"), pytest.approx(t)),
        (str(wide / "model.keras"), 1.0),
    ]
    batch = np.random.default_rng(3).random((6, 8, 8, 3)).astype("float32")
    # (each model called once in inference mode: predict() would first trace a graph of each)
    own = [
        np.asarray(keras.saving.load_model(run / "model.keras")(batch, training=False))
        for run in (copy, wide)
    ]
    expected = (tempered(own[0], t) + own[1]) / 2
    np.testing.assert_allclose(open_session("tflite", out).run(batch), expected, atol=1e-5)

    # written where the run's own export goes, it is refused as that, and auto takes Keras
    np.save(tmp_path / "one.npy", (batch[0] * 255).astype("uint8"))
    refused = invoke("predict", copy, tmp_path / "one.npy", "--runtime", "tflite")
    assert refused.exit_code == 2 and "it is an ensemble of 2 models" in flat(refused), refused.output
    auto = invoke("predict", copy, tmp_path / "one.npy", "-f", "json")
    assert auto.exit_code == 0 and json.loads(auto.stdout)["runtime"] == "keras"
    assert "auto: skipped tflite" in flat(auto)


@pytest.mark.slow
def test_an_ensemble_export_of_models_that_answer_in_logits_averages_their_probabilities(tmp_path):
    """As predict --ensemble does: each model's logits through a softmax, then the mean. The
    file answers in probabilities and its record says so."""
    import keras

    from cnnspec.export.runtimes import open_session, record_path
    from tests.test_report_support import flat, invoke

    models = []
    for seed, name in enumerate(("a", "b")):
        keras.utils.set_random_seed(seed)
        inputs = keras.Input((6, 6, 1))
        model = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.Flatten()(inputs)))
        model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        model.save(tmp_path / f"{name}.keras")
        models.append(model)
    out = tmp_path / "e.tflite"
    result = invoke(
        "export", tmp_path / "a.keras", "-f", "tflite", "--ensemble", tmp_path / "b.keras", "-o", out
    )
    assert result.exit_code == 0, result.output
    assert "the mean of their probabilities (their logits through a softmax or sigmoid)" in flat(result)
    record = json.loads(record_path(out).read_text("utf-8"))
    assert record["output"]["from_logits"] is False and len(record["ensemble"]) == 2
    batch = np.random.default_rng(1).random((4, 6, 6, 1)).astype("float32")

    def softmax(z: np.ndarray) -> np.ndarray:
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    expected = np.mean([softmax(np.asarray(m(batch, training=False))) for m in models], axis=0)
    np.testing.assert_allclose(open_session("tflite", out).run(batch), expected, atol=1e-5)


def test_an_ensemble_of_logits_models_is_recorded_as_answering_in_probabilities():
    from cnnspec.export.ensemble_model import as_probabilities

    meta = {
        "output": {"binary": False, "from_logits": True},
        "outputs": [
            {
                "name": "tags",
                "task": "multilabel",
                "from_logits": True,
                "threshold": 0.0,
                "probability_threshold": 0.7,
            },
            {"name": "count", "task": "regression", "from_logits": False},
        ],
    }
    as_probabilities(meta)
    assert meta["output"]["from_logits"] is False
    tags = meta["outputs"][0]
    assert tags["from_logits"] is False and tags["threshold"] == tags["probability_threshold"] == 0.7
    assert meta["outputs"][1] == {"name": "count", "task": "regression", "from_logits": False}


@pytest.mark.slow
@pytest.mark.xdist_group("reporting")
def test_a_temperature_is_noted_once_and_visualize_says_whose_calibration_it_draws(runs, tmp_path):
    """--temperature 1.5 with --ensemble noted it once per model (twice in evaluation.json's
    notes, and in predict's); visualize RUN calibration after evaluate RUN --ensemble drew the
    model alone beside an evaluation.json of the ensemble, unsaid."""
    from PIL import Image

    from tests.test_report_support import flat, invoke

    first, wide = runs
    note = "--temperature 1.5: each logit is divided by 1.5 before the softmax or sigmoid"
    copy = tmp_path / "run"
    shutil.copytree(first, copy)
    result = invoke("evaluate", copy, "--ensemble", wide, "--temperature", "1.5")
    assert result.exit_code == 0, result.output
    assert flat(result).count(note) == 1
    notes = json.loads((copy / "evaluation.json").read_text("utf-8"))["notes"]
    assert notes.count(note) == 1
    from cnnspec.reporting.evaluation import MEAN_OF_SCALED  # (the mean's top class may change)

    assert notes.count(MEAN_OF_SCALED) == 1 and flat(result).count(MEAN_OF_SCALED) == 1
    Image.fromarray(np.zeros((8, 8, 3), dtype="uint8")).save(tmp_path / "a.png")
    predicted = invoke("predict", first, tmp_path / "a.png", "--ensemble", wide, "--temperature", "1.5")
    assert predicted.exit_code == 0 and flat(predicted).count(note) == 1, predicted.output
    drawn = invoke("visualize", copy, "calibration", "-o", tmp_path / "c.png")
    assert drawn.exit_code == 0, drawn.output
    assert (
        f"note: the reliability diagram is of the model alone on its test split, while "
        f"{copy / 'evaluation.json'} holds the evaluation of an ensemble of 2 models (evaluate's figures "
        f"differ); `cnnspec visualize {copy} confusion` draws that evaluation's matrix"
    ) in flat(drawn)


REGRESSION_SPEC = """\
cnnspec: 1
name: reg
input: {shape: [8, 8, 1]}
model:
  - rescaling: {scale: 0.00392156862745098}
  - conv2d: {filters: 4, kernel_size: 3, activation: relu}
  - global_avg_pool2d
  - dense: 1
data: {source: {npz: r.npz}}
training: {task: regression, loss: mse, epochs: 1, batch_size: 8, seed: 0}
"""


@pytest.mark.slow
def test_an_ensemble_of_regressions_is_evaluated_and_predicted_as_the_mean_value(tmp_path):
    """--ensemble alone averages a regression's values (--tta, which mirrors images, still
    refuses one): evaluate reports the MAE of the mean value, predict prints it."""
    from cnnspec.reporting.held_out import load_test_data
    from cnnspec.reporting.run import locate
    from cnnspec.training.imagefiles import scale_batch
    from cnnspec.training.modelfile import load_model
    from tests.test_report_support import flat, invoke

    rng = np.random.RandomState(0)
    x_test = rng.randint(0, 256, (12, 8, 8, 1)).astype("uint8")
    np.savez(
        tmp_path / "r.npz",
        x_train=rng.randint(0, 256, (40, 8, 8, 1)).astype("uint8"),
        y_train=rng.rand(40).astype("float32"),
        x_test=x_test,
        y_test=rng.rand(12).astype("float32"),
    )
    np.save(tmp_path / "x.npy", x_test[:2])
    (tmp_path / "reg.yaml").write_text(REGRESSION_SPEC, "utf-8")
    (tmp_path / "reg1.yaml").write_text(REGRESSION_SPEC.replace("seed: 0", "seed: 1"), "utf-8")
    a, b = tmp_path / "a", tmp_path / "b"
    train_without_page(tmp_path / "reg.yaml", a)
    train_without_page(tmp_path / "reg1.yaml", b)
    result = invoke("evaluate", a, "--ensemble", b, "-o", tmp_path / "e")
    assert result.exit_code == 0, result.output
    assert (
        f"--ensemble: each test image's outputs are the mean of the 2 models {a} and {b} "
        "(a regression's values as they are); the loss and the task's figures are of that mean "
        "(the spec's metrics: evaluate without --ensemble)" in flat(result)
    )
    document = json.loads((tmp_path / "e" / "evaluation.json").read_text("utf-8"))
    run = locate(a)
    models = [load_model(run.model_path), load_model(locate(b).model_path)]  # (each loaded once)
    test = load_test_data(run, models[0])
    x = scale_batch(test.x, test.settings.rescale)
    values = [np.asarray(model(x, training=False))[:, 0] for model in models]  # (no predict(): no trace)
    mean = (values[0] + values[1]) / 2
    assert document["ensemble"] == [str(b)]
    assert document["test_mae"] == pytest.approx(float(np.abs(mean - np.ravel(test.y)).mean()), abs=1e-5)
    # the spec's loss (mse) of the mean value too, not null
    assert document["loss"] == pytest.approx(float(((mean - np.ravel(test.y)) ** 2).mean()), abs=1e-5)
    predicted = invoke("predict", a, tmp_path / "x.npy", "--ensemble", b)
    assert predicted.exit_code == 0, predicted.output
    assert f"values: 0 {mean[0]:.4g}" in flat(predicted)
    mirrored = invoke("evaluate", a, "--ensemble", b, "--tta", "hflip", "-o", tmp_path / "t")
    assert mirrored.exit_code == 2
    assert "hint: evaluate without --tta" in flat(mirrored)


@pytest.mark.parametrize(
    ("document", "temperatures", "said"),
    [
        ({"tta": ["hflip"]}, [0.28], True),  # one model's views: its top class moved (0.72 → 0.75)
        ({"tta": [], "ensemble": ["b"]}, [1.0, 1.5], True),
        ({"tta": ["hflip"]}, [1.0], False),  # nothing scaled: the mean as it is
        ({}, [0.28], False),  # one view of one model: the top class never changes
        ({"tta": ["hflip"], "task": "regression"}, [1.0], False),
    ],
)
def test_a_temperature_under_tta_or_an_ensemble_says_the_means_top_class_may_change(
    document, temperatures, said
):
    """`--tta hflip` with the run's temperature (0.28) scored accuracy 0.7521 where `--temperature
    none` scored 0.7242, while the README said the top class never changes: each view is scaled
    before the mean, as an export with --tta answers."""
    from cnnspec.reporting.evaluation import MEAN_OF_SCALED, Evaluation, _with_temperature

    evaluation = _with_temperature(Evaluation(dict(document), "", None), temperatures)  # type: ignore[arg-type]
    assert (MEAN_OF_SCALED in evaluation.document.get("notes", [])) is said
