"""``training.mixup`` and ``training.cutmix``: Keras' MixUp and CutMix on training batches.

The settings (defaults, expressions, the loss they imply) and every refusal, located, come
first: TensorFlow-free, as ``cnnspec validate`` reports them. Then (slow) what training does:
training batches are mixed and validation batches are not, a run trains and scores with them
(classification and multilabel), and a resumed run is the uninterrupted run.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cnnspec.analysis.settings import training_config
from cnnspec.analysis.settings_types import Mixer
from cnnspec.api import compile_text
from cnnspec.backends.python_emitter import generate_code
from cnnspec.cli.app import app
from tests.conftest import ROOT

#: A digits classifier; TRAINING is replaced by the rest of its ``training`` section.
CLASSIFIER = """\
cnnspec: 1
name: mix
input: {shape: [8, 8, 1]}
vars: {a: 0.1}
model:
  - conv2d: {filters: 4, kernel_size: 3, padding: same, activation: relu}
  - flatten
  - dense: {units: 10, activation: softmax}
data: {source: digits, limit: 60}
training:
  epochs: 1
TRAINING
"""
#: A multilabel model on the shapes source (which shapes an image holds).
MULTILABEL = """\
cnnspec: 1
name: mixlabels
input: {shape: [16, 16, 3]}
model:
  - conv2d: {filters: 4, kernel_size: 3, padding: same, activation: relu}
  - global_avg_pool2d
  - dense: {units: 3, activation: sigmoid}
data: {source: {shapes: {images: 40, target: multilabel, seed: 2}}, validation_split: 0.25}
training:
  epochs: 2
  batch_size: 8
  seed: 3
TRAINING
"""


#: Each mixing key's one setting.
SETTING = {"mixup": "alpha", "cutmix": "factor"}


def classifier(training: str) -> str:
    return CLASSIFIER.replace("TRAINING\n", training)


def config_of(text: str) -> Any:
    return training_config(compile_text(text, "spec.yaml"))


# -- settings ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("written", "kind", "amount"),
    [
        ("  mixup: true\n", "mixup", 0.2),  # Keras' defaults
        ("  mixup:\n", "mixup", 0.2),  # nothing: on, as a layer item with nothing is
        ("  mixup: {}\n", "mixup", 0.2),
        ("  mixup: {alpha: '${a * 4}'}\n", "mixup", 0.4),  # an expression (search can tune it)
        ("  cutmix: true\n", "cutmix", 1.0),
        ("  cutmix: {factor: 0.5}\n", "cutmix", 0.5),
        ("  cutmix: {factor: 1}\n", "cutmix", 1.0),
    ],
)
def test_mixing_settings_and_their_defaults(written: str, kind: str, amount: float) -> None:
    config = config_of(classifier(written))
    assert config.mixing is not None and config.mixing.mixers == (Mixer(kind, amount),)
    assert config.mixing.switch is None and config.mixing.describe() == {kind: {SETTING[kind]: amount}}
    # mixed labels are shares of two classes: the default loss is the one-hot one
    assert config.loss.name == "categorical_crossentropy" and config.one_hot_labels


def test_false_turns_mixing_off_and_the_loss_stays_sparse() -> None:
    """``false`` is off (a spec that extends one with mixing turns it off so; a merge cannot
    remove a key), and nothing else of the run changes."""
    config = config_of(classifier("  mixup: false\n"))
    assert config.mixing is None and config.loss.name == "sparse_categorical_crossentropy"
    assert config_of(classifier("  mixup: true\n  cutmix: false\n")).mixing.mixers == (Mixer("mixup", 0.2),)


@pytest.mark.parametrize(
    ("written", "switch"),
    [
        ("", 0.5),  # timm's default switch_prob
        ("  mix_switch: 0.3\n", 0.3),
        ("  mix_switch: '${a * 8}'\n", 0.8),  # an expression (search can tune it)
    ],
)
def test_mixup_and_cutmix_both_on_mix_each_batch_by_one_of_them(written: str, switch: float) -> None:
    """Both keys on (the ImageNet recipes of DeiT and ConvNeXt): each training batch is mixed by
    one, CutMix with probability ``training.mix_switch``; lock.json records the three."""
    config = config_of(classifier("  mixup: {alpha: 0.8}\n  cutmix: true\n" + written))
    assert config.mixing is not None and config.mixing.switch == pytest.approx(switch)
    assert config.mixing.mixers == (Mixer("mixup", 0.8), Mixer("cutmix", 1.0))
    assert config.mixing.kinds == "mixup and cutmix"
    described = config.mixing.describe()
    assert described == {
        "mixup": {"alpha": 0.8},
        "cutmix": {"factor": 1.0},
        "mix_switch": described["mix_switch"],
    }
    assert described["mix_switch"] == pytest.approx(switch)
    assert config.loss.name == "categorical_crossentropy"


def test_the_one_hot_loss_keeps_from_logits_and_label_smoothing() -> None:
    linear = classifier("  mixup: true\n").replace("{units: 10, activation: softmax}", "10")
    assert config_of(linear).loss.from_logits  # a linear head: logits, as without mixing
    config = config_of(
        classifier("  cutmix: true\n  loss: {categorical_crossentropy: {label_smoothing: 0.1}}\n")
    )
    assert (config.loss.name, config.loss.label_smoothing) == ("categorical_crossentropy", 0.1)


def test_multilabel_and_binary_outputs_mix_their_float_targets() -> None:
    config = config_of(MULTILABEL.replace("TRAINING\n", "  mixup: {alpha: 0.4}\n"))
    assert config.task == "multilabel" and config.loss.name == "binary_crossentropy"
    assert config.mixing is not None and config.mixing.mixers == (Mixer("mixup", 0.4),)
    binary = classifier("  cutmix: true\n").replace(
        "{units: 10, activation: softmax}", "{units: 1, activation: sigmoid}"
    )
    binary = binary.replace("source: digits,", "source: digits, classes: [0, 1],")
    config = config_of(binary)
    assert config.binary and config.mixing is not None and not config.one_hot_labels


# -- refusals, located (cnnspec validate, TensorFlow-free) -------------------------------------------
REGRESSION = """\
cnnspec: 1
name: mixcount
input: {shape: [16, 16, 1]}
model:
  - conv2d: {filters: 4, kernel_size: 3, padding: same, activation: relu}
  - global_avg_pool2d
  - dense: 1
data: {source: {shapes: {images: 20, target: count}}}
training:
  loss: mse
  mixup: true
"""
SEGMENTATION = """\
cnnspec: 1
name: mixmasks
input: {shape: [16, 16, 3]}
model:
  - conv2d: {filters: 4, kernel_size: 3, padding: same, activation: relu}
  - conv2d: {filters: 4, kernel_size: 1, activation: softmax}
data: {source: {shapes: {images: 20, target: mask}}}
training:
  cutmix: {factor: 0.5}
"""
TWO_OUTPUTS = """\
cnnspec: 1
name: mixtwo
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
data: {source: {shapes: {images: 20, target: {kind: class, area: area}}}}
training:
  outputs: {area: {task: regression, loss: mse}}
  mixup: true
"""


@pytest.mark.parametrize(
    ("text", "where", "path", "words"),
    [
        (
            classifier("  mixup: true\n  mix_switch: 0.3\n"),
            (13, 3),
            "training.mix_switch",
            [
                "expected training.mixup and training.cutmix both on for training.mix_switch; only "
                "training.mixup is",
                "turn both on, or remove it",
            ],
        ),
        (
            classifier("  mix_switch: 0.3\n"),
            (12, 3),
            "training.mix_switch",
            ["both on for training.mix_switch; neither is"],
        ),
        (
            classifier("  mixup: true\n  cutmix: true\n  mix_switch: 1\n"),
            (14, 15),
            "training.mix_switch",
            ["< 1; received integer 1"],
        ),
        (
            classifier("  mixup: true\n  cutmix: true\n  mix_switch: '${a - 0.1}'\n"),
            (14, 15),
            "training.mix_switch",
            ["> 0 and < 1; received 0.0"],
        ),
        (
            classifier("  mixup: {alpha: '${a - 1}'}\n"),
            (12, 18),
            "training.mixup.alpha",
            ["expected a number > 0; received -0.9"],
        ),
        (
            classifier("  mixup: {alpha: 0}\n"),
            (12, 18),
            "training.mixup.alpha",
            ["expected a number > 0; received integer 0"],
        ),
        (
            classifier("  cutmix: {factor: 1.5}\n"),
            (12, 20),
            "training.cutmix.factor",
            ["> 0 and ≤ 1; received number 1.5"],
        ),
        (
            classifier("  cutmix: {factor: '${a - 0.1}'}\n"),
            (12, 20),
            "training.cutmix.factor",
            ["> 0 and ≤ 1; received 0.0"],
        ),
        (
            classifier("  mixup: {beta: 2}\n"),
            (12, 11),
            "training.mixup.beta",
            ["unknown key 'beta'", "keys: alpha"],
        ),
        (
            classifier("  mixup: true\n  loss: sparse_categorical_crossentropy\n"),
            (13, 9),
            "training.loss",
            ["expected categorical_crossentropy with training.mixup", "write loss: categorical_crossentropy"],
        ),
        (
            REGRESSION,
            (11, 3),
            "training.mixup",
            ["expected a classification or multilabel output for training.mixup", "regression", "remove"],
        ),
        (
            SEGMENTATION,
            (9, 3),
            "training.cutmix",
            ["expected a classification or multilabel output for training.cutmix", "segmentation"],
        ),
        (
            TWO_OUTPUTS,
            (17, 3),
            "training.mixup",
            ["expected a model with one output for training.mixup; this one has 2 (kind, area)"],
        ),
    ],
    ids=[
        "switch-beside-mixup",
        "switch-alone",
        "switch-at-1",
        "switch-expression",
        "alpha-expression",
        "alpha-zero",
        "factor-above-1",
        "factor-expression",
        "unknown-setting",
        "sparse-loss",
        "regression",
        "segmentation",
        "two-outputs",
    ],
)
def test_every_refusal_is_located_by_validate(runner, write_spec, text, where, path, words) -> None:
    spec = write_spec(text)
    result = runner.invoke(app, ["validate", str(spec)])
    assert result.exit_code == 1, result.output
    output = " ".join(result.output.split())  # (rich wraps long lines)
    line, column = where
    assert f"spec.yaml:{line}:{column}: error: {path}" in output, output
    for word in words:
        assert word in output, (word, output)
    assert "Traceback" not in result.output


def test_a_switch_is_unused_where_a_mixer_is_turned_off_on_purpose(runner, write_spec) -> None:
    """A spec that extends one with both mixers and a switch turns one off with ``false`` (a
    merge cannot remove the switch), as does ``--set`` or a search's choice: the switch has
    nothing to choose then, and is no error; ``mix_switch: null`` clears it too. Before, the
    error's hint (remove it) could not be followed in the child."""
    from cnnspec.api import compile_spec

    parent = write_spec(classifier("  mixup: true\n  cutmix: true\n  mix_switch: 0.3\n"), "parent.yaml")
    child = write_spec("extends: parent.yaml\ntraining: {cutmix: false}\n", "child.yaml")
    config = training_config(compile_spec(child))
    assert [m.kind for m in config.mixing.mixers] == ["mixup"] and config.mixing.switch is None
    cleared = write_spec("extends: parent.yaml\ntraining: {mix_switch: null}\n", "cleared.yaml")
    config = training_config(compile_spec(cleared))
    assert config.mixing.switch == pytest.approx(0.5)  # (both on: the default switch)
    result = runner.invoke(app, ["validate", str(parent), "--set", "training.cutmix=false"])
    assert result.exit_code == 0, result.output
    searched = (
        parent.read_text(encoding="utf-8")
        + "search:\n  trials: 2\n  space:\n    training.cutmix: {choice: [true, false]}\n"
    )
    result = runner.invoke(app, ["validate", str(write_spec(searched, "searched.yaml"))])
    assert result.exit_code == 0, result.output


SEARCHED = """\
search:
  trials: 2
  space:
    training.mixup.alpha: {float: [LOW, 0.8]}
"""


def test_a_search_tunes_alpha_within_its_bounds(runner, write_spec) -> None:
    """``alpha`` is a number setting like any other: a search space may draw it, and a range
    reaching below its bound is refused where it is written."""
    text = classifier("  mixup: {alpha: 0.2}\n") + SEARCHED
    result = runner.invoke(app, ["validate", str(write_spec(text.replace("LOW", "0.1")))])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["validate", str(write_spec(text.replace("LOW", "-0.5")))])
    assert result.exit_code == 1
    assert "spec.yaml:16:36: error: training.mixup.alpha: expected a number > 0" in " ".join(
        result.output.split()
    )


def test_a_search_of_alpha_beside_mixing_switched_off_is_refused(runner, write_spec) -> None:
    """``mixup: false`` with ``training.mixup.alpha`` searched: every trial would write an
    alpha there and mix, against the spec's word; refused at the search key, with the
    ``false`` as a note. With ``mixup: true`` the search tunes it."""
    text = classifier("  mixup: false\n") + SEARCHED.replace("LOW", "0.1")
    result = runner.invoke(app, ["validate", str(write_spec(text))])
    assert result.exit_code == 1, result.output
    output = " ".join(result.output.split())
    where = "spec.yaml:16:5: error: search.space.training.mixup.alpha:"
    assert f"{where} expected training.mixup to be on" in output
    assert "every trial would turn it on" in output and "switched off here (" in output
    result = runner.invoke(app, ["validate", str(write_spec(text.replace("mixup: false", "mixup: true")))])
    assert result.exit_code == 0, result.output


def test_validate_and_codegen_of_a_mixing_spec_stay_free_of_tensorflow(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(classifier("  cutmix: {factor: 0.5}\n"), encoding="utf-8")
    probe = (
        "import sys\n"
        "from cnnspec.api import compile_spec, validate\n"
        "from cnnspec.analysis.settings import training_config\n"
        "from cnnspec.backends.python_emitter import generate_code\n"
        f"compiled = compile_spec({str(spec)!r})\n"
        "training_config(compiled)\n"
        "assert 'CutMix(' in generate_code(compiled, script=True).text\n"
        "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"


# -- the generated script ---------------------------------------------------------------------------
def test_the_script_builds_keras_mixup_seeded_with_its_seed_and_mixes_training_batches_only() -> None:
    code = generate_code(
        compile_text(classifier("  mixup: {alpha: 0.3}\n  seed: 4\n"), "spec.yaml"), script=True
    ).text
    assert "# training.mixup: applied to the training batches only" in code
    assert "mixing = keras.layers.MixUp(alpha=0.3, seed=SEED)\n" in code
    assert "keras.losses.CategoricalCrossentropy(from_logits=False, label_smoothing=0.0)" in code
    assert "if training and mixing is not None:" in code and code.count("mixing=mixing") == 1
    # mixed precision: the layer computes in float32, as in cnnspec train (labels are float32)
    mixed = classifier("  cutmix: true\nruntime: {mixed_precision: true}\n")
    code = generate_code(compile_text(mixed, "spec.yaml"), script=True).text
    assert 'PixelCutMix(factor=1.0, seed=SEED, dtype="float32")' in code
    plain = generate_code(compile_text(classifier(""), "spec.yaml"), script=True).text
    assert "mixing" not in plain and "MixUp" not in plain
    assert "switch_mixing" not in code  # (one key on: its layer, no switch)


def test_the_script_switches_between_mixup_and_cutmix_as_cnnspec_train_does() -> None:
    """Both keys on: the script's ``switch_mixing`` of the two layers, its draw seeded apart
    from theirs as ``cnnspec train``'s switch layer (the parity test trains both)."""
    text = classifier("  mixup: true\n  cutmix: {factor: 0.5}\n  mix_switch: 0.3\n  seed: 4\n")
    code = generate_code(
        compile_text(text + "runtime: {mixed_precision: true}\n", "s.yaml"), script=True
    ).text
    assert "def switch_mixing(mixup, cutmix, cutmix_share, seed):" in code
    assert (
        "    mixing = switch_mixing(\n"
        '        keras.layers.MixUp(alpha=0.2, seed=SEED, dtype="float32"),\n'
        '        PixelCutMix(factor=0.5, seed=SEED, dtype="float32"),\n'
        "        cutmix_share=0.3,\n        seed=SEED,\n    )\n"
    ) in code
    assert "keras.random.SeedGenerator(None if seed is None else (seed + 1) % 2**32)" in code
    assert "# training.mixup and cutmix: applied to the training batches only" in code
    task = MULTILABEL.replace("TRAINING\n", "  mixup: true\n  cutmix: true\n")
    code = generate_code(compile_text(task, "m.yaml"), script=True).text
    assert "def switch_mixing(" in code and "cutmix_share=0.5," in code


def test_the_task_script_mixes_multi_hot_targets_after_preparing_them() -> None:
    code = generate_code(
        compile_text(MULTILABEL.replace("TRAINING\n", "  cutmix: true\n"), "m.yaml"), script=True
    ).text
    prepared = code.index("dataset = dataset.map(with_targets")
    assert prepared < code.index("dataset = dataset.map(mix)")
    assert "mixing = PixelCutMix(factor=1.0, seed=SEED)\n" in code
    assert "class PixelCutMix(keras.layers.CutMix):" in code


# -- training (TensorFlow) --------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("kind", ["mixup", "cutmix"])
def test_training_batches_are_mixed_and_validation_batches_are_not(kind: str) -> None:
    """The pipeline with the run's mixing layer: each training image is blended with (MixUp) or
    has pixels from (CutMix) another image of its batch, and its one-hot label becomes a share of
    two; the same data read for validation is left as it is. The same seed mixes alike."""
    from cnnspec.training.mixing import build_mixing
    from cnnspec.training.pipeline import PipelineSettings, make_dataset

    config = config_of(classifier(f"  {kind}: true\n"))
    rng = np.random.default_rng(0)
    x = rng.random((16, 8, 8, 1)).astype("float32")
    y = np.arange(16) % 4
    settings = PipelineSettings(batch_size=16, num_classes=4, one_hot=True)

    def first_batch(**kwargs: Any) -> tuple[np.ndarray, np.ndarray]:
        images, labels = next(iter(make_dataset(x, y, settings, seed=1, **kwargs)))
        return images.numpy(), labels.numpy()

    plain_images, plain_labels = first_batch(training=True)  # the same shuffle, unmixed
    images, labels = first_batch(training=True, mixing=build_mixing(config, 7))
    np.testing.assert_allclose(labels.sum(axis=1), 1.0, atol=1e-5)
    soft = (labels > 1e-3) & (labels < 1 - 1e-3)
    assert soft.any(axis=1).sum() >= 4, labels  # labels are shares of two classes
    assert not np.allclose(images, plain_images)
    for image, label in zip(images, labels, strict=True):
        # each mixed image is made of the batch's images: a blend of two, or pixels of two
        if kind == "cutmix":
            assert np.isclose(image[None], plain_images, atol=1e-6).any(axis=0).all()
        else:
            assert plain_images.min() - 1e-6 <= image.min() and image.max() <= plain_images.max() + 1e-6
        assert np.count_nonzero(label > 1e-6) <= 2
    again_images, again_labels = first_batch(training=True, mixing=build_mixing(config, 7))
    np.testing.assert_array_equal(again_labels, labels)  # the same seed mixes alike
    np.testing.assert_array_equal(again_images, images)
    # validation (and test) data: never mixed, whatever the caller passes
    images, labels = first_batch(training=False, mixing=build_mixing(config, 7))
    np.testing.assert_array_equal(labels, np.eye(4, dtype="float32")[y])
    np.testing.assert_array_equal(images, x)
    assert not np.array_equal(plain_labels, labels)  # (the training batch was shuffled)


@pytest.mark.slow
@pytest.mark.parametrize("size", [8, 32])
def test_cutmix_labels_take_the_share_of_the_pixels_pasted(size: int) -> None:
    """Keras' CutMix mixes the labels by the area of a box with real corners, and pastes whole
    pixels: on 8×8 images the labels were up to 23 points off the pixels pasted. Each image here
    is a constant of its own, so the pixels it keeps are counted exactly; its label's share of
    its own class is that count's, for train's layer and the script's class alike."""
    from cnnspec.training.mixing import build_mixing

    config = config_of(classifier("  cutmix: true\n"))
    values = np.arange(1, 17, dtype="float32") * 10
    images = np.broadcast_to(values[:, None, None, None], (16, size, size, 1)).copy()
    labels = np.eye(16, dtype="float32")
    namespace: dict[str, Any] = {}
    code = generate_code(compile_text(classifier("  cutmix: true\n"), "s.yaml"), script=True).text
    start = code.index("class PixelCutMix(")
    exec(compile("import keras\n" + code[start : code.index("\n\n\n", start)], "script", "exec"), namespace)
    for layer in (build_mixing(config, 7), namespace["PixelCutMix"](factor=1.0, seed=7)):
        mixed = layer({"images": images, "labels": labels}, training=True)
        x, y = np.asarray(mixed["images"]), np.asarray(mixed["labels"])
        kept = (x == values[:, None, None, None]).mean(axis=(1, 2, 3))
        np.testing.assert_allclose(np.diag(y), kept, atol=1e-6)
        np.testing.assert_allclose(y.sum(axis=1), 1.0, atol=1e-6)


@pytest.mark.slow
def test_with_both_on_each_training_batch_is_mixed_by_one_of_them() -> None:
    """``training.mix_switch``: each batch is either CutMix's (every pixel one of the batch's
    images' at that place) or MixUp's (blends), both kinds occur, the same seed switches alike,
    and the switch's own seed generator is among those a snapshot saves."""
    from cnnspec.training.callbacks import seed_generators
    from cnnspec.training.mixing import build_mixing
    from cnnspec.training.pipeline import PipelineSettings, make_dataset

    config = config_of(classifier("  mixup: {alpha: 1.0}\n  cutmix: true\n  mix_switch: 0.5\n"))
    rng = np.random.default_rng(0)
    x = rng.random((32, 8, 8, 1)).astype("float32")
    y = np.arange(32) % 4
    settings = PipelineSettings(batch_size=4, num_classes=4, one_hot=True)

    def batches(mixing: Any) -> list[tuple[np.ndarray, np.ndarray]]:
        return [
            (i.numpy(), j.numpy())
            for i, j in make_dataset(x, y, settings, seed=1, training=True, mixing=mixing)
        ]

    plain = batches(None)
    switch = build_mixing(config, 7)
    assert len(seed_generators([switch])) == 3  # the switch's own, MixUp's and CutMix's
    mixed = batches(switch)
    kinds = []
    for (images, labels), (plain_images, _) in zip(mixed, plain, strict=True):
        np.testing.assert_allclose(labels.sum(axis=1), 1.0, atol=1e-5)
        pasted = np.isclose(images[:, None], plain_images[None], atol=1e-6).any(axis=1).all()
        kinds.append("cutmix" if pasted else "mixup")
    assert 0 < kinds.count("cutmix") < len(kinds), kinds
    again = batches(build_mixing(config, 7))
    for (images, labels), (images2, labels2) in zip(mixed, again, strict=True):
        np.testing.assert_array_equal(images, images2)
        np.testing.assert_array_equal(labels, labels2)


@pytest.mark.slow
def test_a_classifier_trains_with_mixup_across_phases_and_scores_on_unmixed_data(tmp_path: Path) -> None:
    """Phases keep the mixing on; precision, AUC and top-k accuracy compute on the one-hot
    labels; class_weight weighs a mixed image by its larger share's class (Keras' argmax)."""
    from cnnspec.training.trainer import train

    text = classifier(
        "  mixup: {alpha: 0.4}\n  seed: 2\n  class_weight: balanced\n"
        "  metrics: [accuracy, precision, auc, {top_k_accuracy: {k: 3}}]\n"
        "  phases: [{epochs: 1}, {epochs: 1, learning_rate: 0.0005}]\n"
    ).replace("  epochs: 1\n", "")
    result = train(compile_text(text, "spec.yaml"), out=tmp_path / "run")
    assert [row["phase"] for row in result.history] == [1, 2]
    for row in result.history:
        for key in ("loss", "accuracy", "precision", "auc", "top_3_accuracy", "val_loss", "val_auc"):
            assert np.isfinite(row[key]), (key, row)
    assert 0 <= result.metrics["test_accuracy"] <= 1 and np.isfinite(result.metrics["test_auc"])
    lock = json.loads((tmp_path / "run" / "lock.json").read_text(encoding="utf-8"))
    assert lock["mixing"] == {"mixup": {"alpha": 0.4}}
    assert lock["tasks"][0]["loss"] == "categorical_crossentropy"


@pytest.mark.slow
def test_a_multilabel_model_trains_with_cutmix_under_a_distribution_strategy(tmp_path: Path) -> None:
    """Multi-hot float rows mix as they are; F1, precision, recall and AUC still compute. The
    mixing runs in the input pipeline, before the strategy distributes the batches."""
    from cnnspec.training.trainer import train

    text = MULTILABEL.replace(
        "TRAINING\n",
        "  cutmix: {factor: 0.8}\n  metrics: [f1, precision, recall, auc]\nruntime: {distribute: mirrored}\n",
    ).replace("  epochs: 2\n", "  epochs: 1\n")  # (one epoch mixes and scores as any other)
    assert "  epochs: 1\n" in text
    result = train(compile_text(text, "spec.yaml"), out=tmp_path / "run")
    assert len(result.history) == 1
    for key in ("loss", "f1", "precision", "recall", "auc", "val_f1"):
        assert np.isfinite(result.history[-1][key]), key
    lock = json.loads((tmp_path / "run" / "lock.json").read_text(encoding="utf-8"))
    assert lock["mixing"] == {"cutmix": {"factor": 0.8}}
    import tensorflow as tf

    if not tf.config.list_physical_devices("GPU"):  # mirrored without a GPU: the CPU, and a note
        assert any("no GPU found" in note for note in result.notes), result.notes
        assert lock["distribute"]["strategy"] == "mirrored" and lock["distribute"]["replicas"] == 1


# -- 0/1 metrics under mixing -----------------------------------------------------------------------
#: A 1-unit sigmoid classifier of two digits, with MixUp.
SIGMOID = """\
cnnspec: 1
name: mixbinary
input: {shape: [8, 8, 1]}
model:
  - conv2d: {filters: 4, kernel_size: 3, padding: same, activation: relu}
  - global_avg_pool2d
  - dense: {units: 1, activation: sigmoid}
data: {source: digits, classes: [3, 8], per_class: 16, validation_split: 0.25}
training:
  epochs: 2
  batch_size: 8
  optimizer: {adam: {learning_rate: 0.01}}
  metrics: [accuracy, auc, precision, recall]
  mixup: true
  seed: 4
"""


def test_the_script_scores_a_mixed_binary_or_multilabel_output_on_rounded_labels() -> None:
    """The 0/1 metrics of a mixed 1-unit head or multilabel output are wrapped in the script's
    ``on_rounded_labels`` (cnnspec train's :func:`~cnnspec.training.mixing.on_rounded_labels`);
    a softmax head's accuracy (argmax) and an unmixed run's metrics are left as they are."""
    code = generate_code(compile_text(SIGMOID, "spec.yaml"), script=True).text
    assert "def on_rounded_labels(metric):" in code
    assert "        y_true = keras.ops.cast(y_true > 0.5, y_true.dtype)\n" in code
    for metric in (
        'keras.metrics.BinaryAccuracy(name="accuracy", threshold=0.5)',
        'keras.metrics.AUC(name="auc", from_logits=False, multi_label=False)',
        'keras.metrics.Precision(name="precision", thresholds=0.5)',
        'keras.metrics.Recall(name="recall", thresholds=0.5)',
    ):
        assert f"on_rounded_labels({metric})," in code
    plain = generate_code(compile_text(SIGMOID.replace("  mixup: true\n", ""), "s.yaml"), script=True).text
    assert "on_rounded_labels" not in plain
    softmax = generate_code(compile_text(classifier("  mixup: true\n"), "s.yaml"), script=True).text
    assert "on_rounded_labels" not in softmax
    assert 'keras.metrics.CategoricalAccuracy(name="accuracy")' in softmax
    task = MULTILABEL.replace("TRAINING\n", "  mixup: true\n  metrics: [accuracy, f1]\n")
    code = generate_code(compile_text(task, "m.yaml"), script=True).text
    assert 'on_rounded_labels(keras.metrics.BinaryAccuracy(name="accuracy", threshold=0.5))' in code
    assert 'on_rounded_labels(keras.metrics.F1Score(average="macro", threshold=0.5, name="f1"))' in code


@pytest.mark.slow
@pytest.mark.parametrize(
    "text", [SIGMOID, MULTILABEL.replace("TRAINING\n", "  mixup: true\n  metrics: [accuracy, f1, auc]\n")]
)
def test_mixed_labels_are_scored_rounded_by_a_sigmoid_output_s_metrics(text: str) -> None:
    """Under mixing, a 1-unit head's (and a multilabel output's) accuracy, precision, recall,
    AUC and F1 score a mixed label as the class with the larger share (0.97 is 1, 0.3 is 0), as
    Keras' own metrics score those labels rounded by hand; a real 0/1 label is itself."""
    import keras

    from cnnspec.training import builders

    config = config_of(text)
    units = config.tasks[0].units if config.task_path else 1
    rng = np.random.default_rng(0)
    labels = rng.uniform(size=(12, units)).astype("float32")
    labels[:2] = np.round(labels[:2])  # some real labels among the mixed ones
    predicted = rng.uniform(size=(12, units)).astype("float32")
    ours = builders.metrics(config)
    plain = builders.metrics(config_of(text.replace("  mixup: true\n", "")))
    assert [m.name for m in ours] == [m.name for m in plain]
    for mine, theirs in zip(ours, plain, strict=True):
        mine.update_state(labels, predicted)
        theirs.update_state(np.round(labels), predicted)
        assert float(keras.ops.convert_to_numpy(mine.result()).mean()) == pytest.approx(
            float(keras.ops.convert_to_numpy(theirs.result()).mean()), abs=1e-6
        ), mine.name
    accuracy = ours[0]
    accuracy.reset_state()
    accuracy.update_state(np.array([[0.97], [0.03], [0.3]]), np.array([[0.9], [0.2], [0.1]]))
    if units == 1:
        assert float(accuracy.result()) == pytest.approx(1.0)  # (Keras' own: 1/3, 0.97 ≠ 1)


@pytest.mark.slow
def test_a_sigmoid_classifier_trained_with_mixup_saves_plain_keras_metrics(tmp_path: Path) -> None:
    """The rounding is the metric instances' own: model.keras records Keras' BinaryAccuracy,
    AUC, Precision and Recall, and loads compiled without cnnspec (as the script loads it)."""
    import keras

    from cnnspec.training.trainer import train

    text = SIGMOID.replace("  epochs: 2\n", "  epochs: 1\n")  # (the metrics are saved after any epoch)
    assert "  epochs: 1\n" in text
    result = train(compile_text(text, "spec.yaml"), out=tmp_path / "run")
    assert len(result.history) == 1
    for key in ("accuracy", "auc", "precision", "recall"):
        assert 0 <= result.history[-1][key] <= 1, key
    loaded = keras.saving.load_model(str(tmp_path / "run" / "model.keras"), compile=True)
    config = loaded.get_compile_config()
    names = [item["class_name"] for item in config["metrics"]]
    assert names == ["BinaryAccuracy", "AUC", "Precision", "Recall"]
