"""The training settings: defaults, expressions, and located errors (no TensorFlow)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from cnnspec.analysis.settings import training_config
from cnnspec.analysis.settings_types import Schedule
from cnnspec.api import compile_text
from cnnspec.errors import SpecError

HEAD = """\
cnnspec: 1
name: tiny
input: {shape: [8, 8, 1]}
vars: {classes: 10, e: 4}
model:
  - flatten
  - dense: {units: "${classes}", activation: softmax}
"""


def config_of(tail: str, head: str = HEAD):
    return training_config(compile_text(head + tail, "spec.yaml"))


def errors_of(tail: str, head: str = HEAD) -> list:
    with pytest.raises(SpecError) as info:
        config_of(tail, head)
    return info.value.errors


def test_defaults():
    config = config_of("")
    assert (config.epochs, config.batch_size) == (10, 32)
    assert config.optimizer.name == "adam" and config.optimizer.learning_rate == 0.001
    assert config.loss.name == "sparse_categorical_crossentropy" and not config.loss.from_logits
    assert [m.name for m in config.metrics] == ["accuracy"]
    assert config.data.kind == "digits" and config.data.validation_split == 0.1
    assert config.data.rescale == "auto" and config.seed is None and not config.jit_compile


def test_expressions_use_vars():
    config = config_of("training: {epochs: '${e * 2}', batch_size: '${e * 8}'}\n")
    assert (config.epochs, config.batch_size) == (8, 32)


def test_undefined_name_in_training_is_located():
    (error,) = errors_of("training:\n  epochs: '${nope}'\n")
    assert error.loc.line == 9 and "undefined name 'nope'" in error.message


def test_monitor_typo_gets_a_hint():
    (error,) = errors_of("training:\n  callbacks:\n    - early_stopping: {monitor: val_los}\n")
    assert error.path == "training.callbacks[0].early_stopping.monitor"
    assert error.loc.line == 10
    assert "val_loss" in (error.hint or "")


def test_validation_monitor_needs_a_validation_split():
    (error,) = errors_of(
        "data: {validation_split: 0}\ntraining:\n  callbacks: [{early_stopping: {monitor: val_accuracy}}]\n"
    )
    assert "validation_split" in (error.hint or "")


def test_default_monitor_follows_validation():
    config = config_of("data: {validation_split: 0}\ntraining: {callbacks: [early_stopping]}\n")
    assert config.callbacks[0].settings["monitor"] == "loss"
    config = config_of("training: {callbacks: [reduce_lr_on_plateau]}\n")
    assert config.callbacks[0].settings["monitor"] == "val_loss"


def test_schedule_with_reduce_lr_is_refused():
    tail = (
        "training:\n  optimizer: {sgd: {learning_rate: {cosine_decay: {warmup_steps: 5}}}}\n"
        "  callbacks: [reduce_lr_on_plateau]\n"
    )
    (error,) = errors_of(tail)
    assert "schedule" in error.message


PHASED = """\
training:
  optimizer: {adam: {learning_rate: 0.003}}
  callbacks: [reduce_lr_on_plateau]
  phases:
    - {epochs: 1}
    - {epochs: 2, learning_rate: {exponential_decay: {decay_steps: 5, decay_rate: 0.5}}}
"""


def test_a_phase_schedule_with_reduce_lr_is_refused_at_the_phase():
    """Keras cannot set a scheduled optimizer's rate: the run crashed at the first reduction
    in phase 2 after validate had passed. Located at the phase's learning_rate."""
    (error,) = errors_of(PHASED)
    assert error.path == "training.phases[1].learning_rate"
    assert (error.loc.line, error.loc.column) == (13, 34)
    assert "phase 2" in error.message and "exponential_decay" in error.message
    assert "training.callbacks[0]" in (error.hint or "") and "not both" in (error.hint or "")


def test_a_phase_optimizer_schedule_is_refused_once_where_it_is_written():
    # phase 2 sets it in its optimizer; phase 3 keeps phase 2's optimizer: one error, at phase 2
    tail = PHASED.replace(
        "learning_rate: {exponential_decay: {decay_steps: 5, decay_rate: 0.5}}}",
        "optimizer: {sgd: {learning_rate: {cosine_decay: {decay_steps: 9}}}}}\n    - {epochs: 1}",
    )
    (error,) = errors_of(tail)
    assert error.path == "training.phases[1].optimizer.sgd.learning_rate"
    assert "phase 2" in error.message and "cosine_decay" in error.message


def test_training_optimizer_schedule_counts_only_where_a_phase_trains_with_it():
    scheduled = "optimizer: {adam: {learning_rate: {cosine_decay: {decay_steps: 9}}}}"
    # every phase has a constant rate of its own: the schedule is never used
    tail = PHASED.replace("optimizer: {adam: {learning_rate: 0.003}}", scheduled)
    tail = tail.replace("{epochs: 1}", "{epochs: 1, learning_rate: 0.01}")
    tail = tail.replace("{exponential_decay: {decay_steps: 5, decay_rate: 0.5}}", "0.001")
    assert config_of(tail).callback("reduce_lr_on_plateau") is not None
    # phase 1 trains with it: the error on the callback, as without phases
    (error,) = errors_of(tail.replace("{epochs: 1, learning_rate: 0.01}", "{epochs: 1}"))
    assert error.path == "training.callbacks[0]" and "the optimizer has a schedule" in error.message


def test_constant_phase_rates_go_with_reduce_lr():
    tail = PHASED.replace("{exponential_decay: {decay_steps: 5, decay_rate: 0.5}}", "0.0005")
    config = config_of(tail)
    assert [p.optimizer.learning_rate for p in config.phases] == [0.003, 0.0005]


def test_schedules_parse():
    config = config_of(
        "training:\n  optimizer:\n    adamw:\n      learning_rate:\n"
        "        exponential_decay: {decay_steps: 10, decay_rate: 0.9, warmup_steps: 3}\n"
    )
    schedule = config.optimizer.learning_rate
    assert isinstance(schedule, Schedule) and schedule.warmup_steps == 3
    assert schedule.settings["initial_learning_rate"] == 0.001


def test_piecewise_needs_one_more_value():
    tail = (
        "training:\n  optimizer: {sgd: {learning_rate: {piecewise_constant: "
        "{boundaries: [5, 9], values: [0.1, 0.01]}}}}\n"
    )
    (error,) = errors_of(tail)
    assert "3 values for 2 boundaries" in error.message


OUT_OF_RANGE = {
    "decay-steps-0": (
        "optimizer: {adam: {learning_rate: {exponential_decay: {decay_steps: '${e - 4}', decay_rate: 0.5}}}}",
        "training.optimizer.adam.learning_rate.exponential_decay.decay_steps",
        "expected an integer ≥ 1; received 0",
    ),
    "initial-rate": (
        "optimizer: {adam: {learning_rate: {cosine_decay: {initial_learning_rate: '${-1}'}}}}",
        "training.optimizer.adam.learning_rate.cosine_decay.initial_learning_rate",
        "expected a number > 0; received -1",
    ),
    "warmup": (
        "phases: [{epochs: 1, learning_rate: {cosine_decay: {warmup_steps: '${-1}'}}}]",
        "training.phases[0].learning_rate.cosine_decay.warmup_steps",
        "expected an integer ≥ 0; received -1",
    ),
    "momentum": (
        "optimizer: {sgd: {momentum: '${-2}'}}",
        "training.optimizer.sgd.momentum",
        "expected a number ≥ 0 and ≤ 1; received -2",
    ),
    "beta_1": ("optimizer: {adam: {beta_1: '${5}'}}", "training.optimizer.adam.beta_1", "≤ 1; received 5"),
    "weight-decay": (
        "optimizer: {adamw: {weight_decay: '${-1}'}}",
        "training.optimizer.adamw.weight_decay",
        "expected a number ≥ 0; received -1",
    ),
    "clipnorm": (
        "optimizer: {adam: {clipnorm: '${e - 4}'}}",
        "training.optimizer.adam.clipnorm",
        "expected a number > 0; received 0",
    ),
    "phase-optimizer": (
        "phases: [{epochs: 1, optimizer: {rmsprop: {rho: '${2}'}}}]",
        "training.phases[0].optimizer.rmsprop.rho",
        "≤ 1; received 2",
    ),
    "factor": (
        "callbacks: [{reduce_lr_on_plateau: {factor: '${2}'}}]",
        "training.callbacks[0].reduce_lr_on_plateau.factor",
        "expected a number > 0 and < 1; received 2",
    ),
    "patience": (
        "callbacks: [{early_stopping: {patience: '${e / 8}'}}]",
        "training.callbacks[0].early_stopping.patience",
        "expected an integer ≥ 0; received 0.5",
    ),
    # bounds the schema alone kept (a reader checks the lower one): every constraint of the
    # schema applies to what an expression gives
    "epochs-upper": ("epochs: '${e * 10 ** 9}'", "training.epochs", "≤ 100000; received integer 4000000000"),
    "batch-upper": (
        "batch_size: '${10 ** 11}'",
        "training.batch_size",
        "≤ 1000000; received integer 100000000000",
    ),
    "phase-epochs-upper": (
        "phases: [{epochs: '${10 ** 9}'}]",
        "training.phases[0].epochs",
        "≤ 100000; received integer 1000000000",
    ),
}


@pytest.mark.parametrize("setting, path, message", OUT_OF_RANGE.values(), ids=OUT_OF_RANGE)
def test_expressions_are_held_to_the_schemas_bounds(setting, path, message):
    """A `${…}` passes the JSON Schema as text: its value is checked against the same bounds,
    a located error before training (it was a Keras failure, exit 3, after the run started)."""
    (error,) = errors_of(f"training:\n  {setting}\n")
    assert error.path == path and message in error.message and error.loc.line == 9


def test_expressions_within_the_bounds_are_read_as_numbers():
    config = config_of(
        "training:\n  optimizer: {sgd: {momentum: '${e / 8}', learning_rate: "
        "{exponential_decay: {decay_steps: '${e * 2.0}', decay_rate: 0.5}}}}\n"
        "  callbacks: [{early_stopping: {patience: '${e}'}}]\n"
    )
    assert config.optimizer.settings == {"momentum": 0.5}
    assert config.optimizer.learning_rate.settings["decay_steps"] == 8
    assert isinstance(config.optimizer.learning_rate.settings["decay_steps"], int)
    assert config.callbacks[0].settings["patience"] == 4


def test_validate_refuses_an_expression_out_of_range(runner, tmp_path):
    from cnnspec.cli.app import app

    spec = tmp_path / "sch.yaml"
    spec.write_text(HEAD + "training:\n  callbacks: [{reduce_lr_on_plateau: {factor: '${2}'}}]\n")
    result = runner.invoke(app, ["validate", str(spec)])
    assert result.exit_code == 1, result.output
    assert "9:" in result.output and "factor: expected a number > 0 and < 1; received 2" in result.output


def test_binary_loss_needs_one_unit():
    (error,) = errors_of("training: {loss: binary_crossentropy}\n")
    assert "1 output unit" in error.message


def test_one_unit_defaults_to_binary():
    head = HEAD.replace('"${classes}", activation: softmax', "1, activation: sigmoid")
    assert config_of("", head).loss.name == "binary_crossentropy"


def test_top_k_needs_several_classes():
    head = HEAD.replace('"${classes}", activation: softmax', "1, activation: sigmoid")
    (error,) = errors_of("training: {metrics: [top_k_accuracy]}\n", head)
    assert "top_k" in error.message


LOGITS_HEAD = HEAD.replace(", activation: softmax", "")


@pytest.mark.parametrize("metric", ["precision", "recall", "auc"])
def test_precision_and_recall_of_multi_class_logits_are_refused(metric):
    """Keras' Precision/Recall threshold scores at 0.5: a logit is no probability, so the
    figures were wrong without a word (and the generated script builds the same metrics). AUC
    turns each logit into a probability on its own (a sigmoid), not the classes' softmax."""
    (error,) = errors_of(f"training: {{metrics: [accuracy, {metric}]}}\n", LOGITS_HEAD)
    assert error.path == "training.metrics[1]" and error.loc.line == 8
    assert f"expected probabilities for {metric} of a multi-class output" in error.message
    assert "activation: softmax" in error.hint and "drop the metric" in error.hint


def test_precision_of_probabilities_and_of_a_binary_logit_is_kept():
    assert [m.name for m in config_of("training: {metrics: [precision, recall]}\n").metrics] == [
        "precision",
        "recall",
    ]
    binary = HEAD.replace('"${classes}", activation: softmax', "1")  # one logit: threshold 0
    assert config_of("training: {metrics: [precision]}\n", binary).loss.from_logits


def test_codegen_script_refuses_precision_of_logits_too(runner, tmp_path):
    from cnnspec.cli.app import app

    spec = tmp_path / "logit.yaml"
    spec.write_text(LOGITS_HEAD + "training: {metrics: [accuracy, recall]}\n")
    for command in (["validate"], ["codegen", "--script"]):
        result = runner.invoke(app, [*command, str(spec)])
        assert result.exit_code == 1, result.output
        assert "training.metrics[1]: expected probabilities for recall" in " ".join(result.output.split())


@pytest.mark.parametrize(
    "metrics, path, message",
    [
        ("[{top_k_accuracy: {k: 10}}]", "training.metrics[0].top_k_accuracy.k", "received 10"),
        ("[accuracy, {top_k_accuracy: {k: '${classes + 2}'}}]", "training.metrics[1].top_k_accuracy.k", "12"),
    ],
)
def test_top_k_needs_k_below_the_classes(metrics, path, message):
    """top-k accuracy with k ≥ the classes is always 1.0, whatever the model."""
    (error,) = errors_of(f"training: {{metrics: {metrics}}}\n")
    assert error.path == path and "k must be below the output's 10 classes" in error.message
    assert message in error.message and error.loc.line == 8


def test_top_k_default_k_must_be_below_the_classes_too():
    head = HEAD.replace('"${classes}"', "5")
    (error,) = errors_of("training: {metrics: [top_k_accuracy]}\n", head)
    assert error.path == "training.metrics[0]"
    assert error.message == "k must be below the output's 5 classes; received 5 (the default)"
    assert config_of("training: {metrics: [{top_k_accuracy: {k: 4}}]}\n", head).metrics[0].k == 4


def test_logits_inferred_from_a_linear_head():
    head = HEAD.replace(", activation: softmax", "")
    assert config_of("", head).loss.from_logits
    assert not config_of(
        "training: {loss: {sparse_categorical_crossentropy: {from_logits: false}}}\n", head
    ).loss.from_logits


@pytest.mark.parametrize(
    ("head_activation", "loss", "written", "message"),
    [
        (
            ", activation: softmax",
            "sparse_categorical_crossentropy",
            "true",
            "from_logits: true changes nothing; the output ends with softmax: "
            "sparse_categorical_crossentropy reads the values before the softmax (as Keras does) and "
            "the metrics, the test report and predict read them as probabilities",
        ),
        (
            ", activation: softmax",
            "categorical_focal_crossentropy",
            "true",
            "from_logits: true looks wrong; the output ends with softmax: its values are probabilities, "
            "and categorical_focal_crossentropy would apply a softmax again",
        ),
        (
            "",
            "sparse_categorical_crossentropy",
            "false",
            "from_logits: false looks wrong; the output has no activation: its values are logits, which "
            "sparse_categorical_crossentropy would read as probabilities",
        ),
    ],
)
def test_a_from_logits_against_the_activation_is_a_located_warning(head_activation, loss, written, message):
    """``from_logits: true`` after a softmax: Keras' crossentropy reads the values before the
    softmax all the same (nothing changes, and the warning says so, not that it squashes twice),
    while a focal loss does apply the softmax a second time; ``false`` after a linear output
    reads logits as probabilities. A located warning at the setting; the Keras loss is built
    as written (a run trains as before), and the output's values are read as what they are."""
    head = HEAD.replace(", activation: softmax", head_activation)
    text = head + f"training: {{loss: {{{loss}: {{from_logits: {written}}}}}}}\n"
    compiled = compile_text(text, "spec.yaml")
    (warning,) = [w for w in compiled.warnings if w.code == "logits-mismatch"]
    assert warning.path == f"training.loss.{loss}.from_logits"
    assert warning.message == message
    assert warning.loc is not None and warning.loc.line == text.count("\n")
    config = training_config(compiled)
    assert config.loss.keras_from_logits is (written == "true")
    assert config.loss.from_logits is False  # softmax: probabilities; linear + false: as written
    agreeing = head + "training: {loss: sparse_categorical_crossentropy}\n"
    assert not [w for w in compile_text(agreeing, "spec.yaml").warnings if w.code == "logits-mismatch"]


def test_from_logits_true_on_a_probability_output_reads_probabilities_everywhere():
    """A sigmoid (or softmax) output gives probabilities whatever from_logits says: the metrics'
    thresholds are 0.5 and AUC reads probabilities (they read the outputs as logits, and a
    perfect model scored 0.49 accuracy), while the Keras loss keeps the written from_logits."""
    from cnnspec.backends.codegen_script import loss_node, metric_nodes
    from cnnspec.backends.codegen_values import unparse

    sigmoid = HEAD.replace('"${classes}", activation: softmax', "1, activation: sigmoid")
    config = config_of(
        "training: {loss: {binary_crossentropy: {from_logits: true}}, metrics: [accuracy, precision, auc]}\n",
        sigmoid,
    )
    assert not config.loss.from_logits and config.loss.keras_from_logits
    assert config.tasks[0].decision_threshold == 0.5
    script = [unparse(node) for node in metric_nodes(config)]
    assert script == [
        'keras.metrics.BinaryAccuracy(name="accuracy", threshold=0.5)',
        'keras.metrics.Precision(name="precision", thresholds=0.5)',
        'keras.metrics.AUC(name="auc", from_logits=False, multi_label=False)',
    ]
    assert "from_logits=True" in unparse(loss_node(config)), unparse(loss_node(config))
    # softmax with from_logits: true: probabilities too, so precision and AUC are not refused
    softmax = config_of(
        "training: {loss: {sparse_categorical_crossentropy: {from_logits: true}}, metrics: [precision]}\n"
    )
    assert not softmax.loss.from_logits and [m.name for m in softmax.metrics] == ["precision"]
    # evaluate and predict take a softmax's values as the probabilities they are (they applied a
    # softmax a second time, flattening the confidences)
    import numpy as np

    from cnnspec.reporting.model_graph import OutputKind
    from cnnspec.reporting.predictions import probabilities

    row = np.array([[0.7, 0.2, 0.1] + [0.0] * 7])
    kind = OutputKind(binary=softmax.binary, from_logits=softmax.loss.from_logits)
    np.testing.assert_array_equal(probabilities(row, kind), row)


def test_precision_metrics_switch_labels_to_one_hot():
    assert config_of("training: {metrics: [accuracy, precision, auc]}\n").one_hot_labels
    assert not config_of("").one_hot_labels
    assert config_of("training: {loss: {categorical_crossentropy: {label_smoothing: 0.1}}}\n").one_hot_labels


def test_test_split_only_for_sources_without_a_test_set():
    (error,) = errors_of("data: {source: mnist, test_split: 0.2}\n")
    assert "own test set" in error.message


def test_unknown_key_in_training_is_a_schema_error():
    with pytest.raises(SpecError) as info:
        compile_text(HEAD + "training: {epoch: 3}\n", "spec.yaml")
    assert "unknown key 'epoch'" in info.value.errors[0].message


def test_relative_data_paths_are_read_from_the_spec_folder(tmp_path):
    spec = tmp_path / "sub" / "spec.yaml"
    spec.parent.mkdir()
    spec.write_text(HEAD + "data: {source: {npz: data/x.npz}}\n")
    from cnnspec.api import compile_spec

    config = training_config(compile_spec(spec))
    assert config.data.path == spec.parent.resolve() / "data" / "x.npz"


def test_spec_errors_exit_1_without_importing_tensorflow(tmp_path):
    spec = tmp_path / "bad.yaml"
    spec.write_text(HEAD + "training:\n  callbacks: [{early_stopping: {monitor: val_acc}}]\n")
    code = (
        "import sys, json\n"
        "from typer.testing import CliRunner\n"
        "from cnnspec.cli.app import app\n"
        f"r = CliRunner().invoke(app, ['train', {str(spec)!r}])\n"
        "print(json.dumps([r.exit_code, 'tensorflow' in sys.modules, r.output]))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    exit_code, imported, output = json.loads(done.stdout.strip().splitlines()[-1])
    assert exit_code == 1 and not imported
    assert "bad.yaml:9:42" in output and "val_accuracy" in output


def test_tensorboard_needs_tensorboard_installed():
    import importlib.util

    tail = "training:\n  callbacks: [tensorboard]\n"
    if importlib.util.find_spec("tensorboard") is None:
        (error,) = errors_of(tail)
        assert "pip install tensorboard" in error.hint and error.loc.line == 9
    else:
        assert config_of(tail).callbacks[0].name == "tensorboard"


def test_training_needs_a_classifier_output():
    head = HEAD.replace(
        '  - flatten\n  - dense: {units: "${classes}", activation: softmax}\n',
        "  - conv2d: {filters: 2, kernel_size: 1}\n",
    )
    (error,) = errors_of("", head)  # inferred: a per-pixel output is segmentation, which digits can't feed
    assert "segmentation targets; digits has class labels only" in error.message and error.loc.line == 6
    (error,) = errors_of("training: {task: classification}\n", head)
    assert "expected a classification output of shape [units]" in error.message and error.loc.line == 6


def test_failed_expressions_in_sections_are_located_errors_not_crashes(runner, tmp_path):
    """A `${…}` that fails in data/training/runtime is reported where it was written (exit 1),
    never a TypeError from a missing value (exit 3)."""
    from cnnspec.cli.app import app

    spec = tmp_path / "cfg.yaml"
    bad = '"${w / 0}"'
    spec.write_text(
        "cnnspec: 1\nname: t\nvars: {w: 1}\ninput: {shape: [8, 8, 1]}\n"
        "model: [flatten, {dense: {units: 10, activation: softmax}}]\n"
        f"data: {{validation_split: {bad}, test_split: {bad}}}\n"
        f"training:\n  metrics: [{{top_k_accuracy: {{k: {bad}}}}}]\n"
        f"runtime: {{distribute: {{strategy: default, startup_timeout: {bad}}}}}\n"
    )
    for command in (["validate"], ["codegen", "--script"]):
        result = runner.invoke(app, [*command, str(spec)])
        assert result.exit_code == 1, result.output
        text = " ".join(result.output.split())
        assert "6:26: error: data.validation_split: in '${w / 0}': division by zero" in text
        assert "note: w is integer 1, set at" in text  # the var it read, as a model error says
        # one expression failing the same way at four places is one error listing the others
        assert "same error at 3 more uses: data.test_split" in text
        for where in ("training.metrics[0].top_k_accuracy.k (", "runtime.distribute.startup_timeout ("):
            assert where in text


def test_a_bad_var_read_by_two_settings_is_one_error_listing_the_second_use(runner, tmp_path):
    """A var of -1 read as a warm-up's steps and as early stopping's patience: the readers' error
    listed the patience as one more use, and the schema's check of the substituted values said
    it again as an error of its own ("received integer -1"), which the first's note had folded."""
    from cnnspec.cli.app import app

    spec = tmp_path / "cfg.yaml"
    spec.write_text(
        "cnnspec: 1\nname: t\nvars: {a: -1}\ninput: {shape: [8, 8, 1]}\n"
        "model: [flatten, {dense: {units: 10, activation: softmax}}]\n"
        "training:\n  optimizer: {sgd: {learning_rate: {cosine_decay: {warmup_steps: '${a}'}}}}\n"
        "  callbacks: [{early_stopping: {patience: '${a}'}}]\n"
    )
    result = runner.invoke(app, ["validate", str(spec), "--format", "json"])
    assert result.exit_code == 1, result.output
    (error,) = json.loads(result.stdout)
    assert error["path"] == "training.optimizer.sgd.learning_rate.cosine_decay.warmup_steps"
    folded = "same error at 1 more use: training.callbacks[0].early_stopping.patience ("
    assert any(note.startswith(folded) for note in error["notes"]), error


def test_an_error_on_a_var_in_a_section_says_where_the_var_was_set(runner, tmp_path):
    """Model errors on a `${…}` note the var's value and where it was set; the data, training
    and runtime sections' errors lacked it (the mistake is often in the var, or a --set)."""
    from cnnspec.cli.app import app

    spec = tmp_path / "cfg.yaml"
    spec.write_text(
        "cnnspec: 1\nname: t\nvars: {e: -1, bs: 0, fraction: 2}\ninput: {shape: [8, 8, 1]}\n"
        "model: [flatten, {dense: {units: 10, activation: softmax}}]\n"
        "data: {source: digits, validation_split: '${fraction / 4 + 0.5}'}\n"
        "training: {epochs: '${e}', batch_size: '${bs}'}\n"
    )
    result = runner.invoke(app, ["validate", str(spec)])
    assert result.exit_code == 1, result.output
    text = " ".join(result.output.split())
    for path, note in [
        ("training.epochs", f"note: e is integer -1, set at {spec}:3:11"),
        ("training.batch_size", f"note: bs is integer 0, set at {spec}:3:19"),
        ("data.validation_split", f"note: fraction is integer 2, set at {spec}:3:32"),
    ]:
        at = text.index(f"error: {path}")
        assert note in text[at : at + 300], (path, text)
    overridden = runner.invoke(app, ["validate", str(spec), "--set", "vars.e=0"])
    assert "note: e is integer 0, set by --set vars.e=0" in " ".join(overridden.output.split())
    # a literal has no var to name
    spec.write_text(spec.read_text().replace("'${e}'", "-3"))
    literal = " ".join(runner.invoke(app, ["validate", str(spec)]).output.split())
    at = literal.index("error: training.epochs")
    assert "received integer -3" in literal[at:] and "note: e is" not in literal


def test_keras_class_names_are_shared_with_the_generated_script():
    from cnnspec.analysis.settings_types import KERAS_CLASS_NAMES
    from cnnspec.api import generate_code

    fits = HEAD.replace("[8, 8, 1]", "[28, 28, 1]")  # (a named dataset must fit the input)
    compiled = compile_text(fits + "data: {source: fashion_mnist}\n", "spec.yaml")
    script = generate_code(compiled, script=True)
    assert all(f'"{name}"' in script for name in KERAS_CLASS_NAMES["fashion_mnist"])


def test_pipeline_scale_and_the_static_pixel_range():
    from cnnspec.analysis.pixel_scaling import fed_pixel_range, pipeline_scale
    from cnnspec.analysis.settings import data_config

    def both(tail: str, head: str = HEAD):
        compiled = compile_text(head + tail, "spec.yaml")
        data = data_config(compiled)
        return pipeline_scale(data, compiled.ir, True), fed_pixel_range(data, compiled.ir)

    # (each named dataset with an input of its size: validate refuses one that does not fit)
    colour, mnist = HEAD.replace("[8, 8, 1]", "[32, 32, 3]"), HEAD.replace("[8, 8, 1]", "[28, 28, 1]")
    assert both("data: {source: cifar10}\n", colour) == (1 / 255, (0.0, 1.0))
    assert both("data: {source: cifar10, rescale: null}\n", colour) == (None, (0.0, 255.0))
    assert both("data: {source: digits}\n")[1] == (0.0, 1.0)
    assert both("data: {source: {npz: d.npz}}\n") == (1 / 255, None)  # the dtype is read with the file
    rescaling = mnist.replace("  - flatten\n", "  - rescaling: 0.00392156862745098\n  - flatten\n")
    assert both("data: {source: mnist}\n", rescaling) == (None, (0.0, 255.0))
    with pytest.raises(SpecError, match="undefined name 'nope'"):  # a data section is checked,
        compile_text(HEAD + "data: {source: mnist, rescale: '${nope}'}\n")  # training or not


def test_ftrl_with_a_warm_up_is_refused_where_it_is_written():
    """FTRL divides by the learning rate, which a warm-up starts at 0: one step made every
    weight NaN, and the run ended with exit 0. Said once, where the rate is written: the
    optimizer every phase keeps, or a phase's own rate."""
    warmed = "{cosine_decay: {initial_learning_rate: 0.1, warmup_steps: 5}}"
    errors = errors_of(
        f"training:\n  optimizer: {{ftrl: {{learning_rate: {warmed}}}}}\n"
        "  phases:\n    - {epochs: 1}\n    - {epochs: 1}\n"
    )
    assert [e.path for e in errors] == ["training.optimizer"] and "FTRL divides by" in errors[0].message
    errors = errors_of(
        f"training:\n  optimizer: ftrl\n  phases:\n    - {{epochs: 1, learning_rate: {warmed}}}\n"
    )
    assert [e.path for e in errors] == ["training.phases[0].learning_rate"]
    assert (
        config_of(f"training:\n  optimizer: {{adam: {{learning_rate: {warmed}}}}}\n").optimizer.name == "adam"
    )


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            "{source: digits, cache: disk, keep_cache: true}",
            [
                ("data.cache", 24, "disk has no effect: the digits source is held in memory whole"),
                ("data.keep_cache", 37, "true has no effect: the digits source is held in memory whole"),
            ],
        ),
        (
            "{source: {directory: pics}, cache: memory, keep_cache: true}",
            [("data.keep_cache", 50, "true has no effect: the cache is memory (keep_cache keeps the file")],
        ),
        ("{source: {directory: pics}, cache: disk, keep_cache: true}", []),
        ("{source: digits, cache: none, keep_cache: false}", []),
    ],
)
def test_a_data_cache_that_does_nothing_is_a_located_warning(data, expected):
    """Accepted before without a word: a cache of a source held in memory (no cache was made),
    and keep_cache without a disk cache to keep."""
    text = HEAD + f"data: {data}\n"
    warnings = [w for w in compile_text(text, "spec.yaml").warnings if w.code == "unused-setting"]
    assert [(w.path, w.loc.line, w.loc.column) for w in warnings] == [
        (path, text.count("\n"), col) for path, col, _ in expected
    ]
    for warning, (_path, _, said) in zip(warnings, expected, strict=True):
        # (the path is printed before the message: it said `data.cache: data.cache has no effect`)
        assert warning.message.startswith(said), warning.message


@pytest.mark.parametrize(
    ("source", "said", "hint"),
    [
        (
            "{images: imgs, masks: masks}",
            "the {images, masks} source is read whole before training: an image that cannot be read stops "
            "the run",
            "remove data.on_bad_file, and remove or replace the images that cannot be read (with their "
            "masks or rows)",
        ),
        ("{npz: d.npz}", "the npz source holds no image files to leave out", "remove data.on_bad_file"),
        ("{directory: pics}", None, None),
    ],
)
def test_on_bad_file_skip_where_it_does_nothing_is_a_located_warning(source, said, hint):
    """skip was accepted without a word on an {images, masks|labels|values} source, whose
    images are read before training (an unreadable one stopped train all the same); a folder of
    classes honours it; error (the default) asks for nothing."""
    # (masks feed a segmentation head: validate refuses them a classifier's)
    head = HEAD.replace("  - flatten\n", "").replace(
        'dense: {units: "${classes}"', "conv2d: {filters: 2, kernel_size: 1"
    )
    head = head if "masks" in source else HEAD
    text = head + f"data: {{source: {source}, on_bad_file: skip}}\n"
    warnings = [w for w in compile_text(text, "spec.yaml").warnings if w.code == "unused-setting"]
    if said is None:
        assert warnings == []
        return
    (warning,) = warnings
    assert (warning.path, warning.loc.line, warning.loc.column) == (
        "data.on_bad_file",
        text.count("\n"),
        text.splitlines()[-1].index("on_bad_file") + 1,
    )
    assert warning.message == (
        f"skip has no effect: {said} (skip leaves out the bad files of a folder or "
        "CSV of classes, which are read batch by batch)"
    )
    assert warning.hint == hint
    quiet = head + f"data: {{source: {source}, on_bad_file: error}}\n"
    assert [w for w in compile_text(quiet, "spec.yaml").warnings if w.code == "unused-setting"] == []


NO_VALIDATION_CALLBACKS = (
    "data: {source: digits, validation_split: 0}\n"
    "training:\n"
    "  callbacks:\n"
    "    - early_stopping: {patience: 2}\n"
    "    - model_checkpoint\n"
    "    - reduce_lr_on_plateau: {monitor: loss}\n"
)


@pytest.mark.parametrize(
    ("early", "checkpoint", "warned"),
    [
        ("{monitor: val_loss, restore_best_weights: true}", "{monitor: val_accuracy}", True),
        # the same value watched (the default val_loss both), no restore, or a last.keras: no warning
        ("{restore_best_weights: true}", "{}", False),
        ("{monitor: val_loss}", "{monitor: val_accuracy}", False),
        (
            "{monitor: val_loss, restore_best_weights: true}",
            "{monitor: val_accuracy, save_best_only: false}",
            False,
        ),
    ],
)
def test_early_stoppings_restore_lost_to_another_best_checkpoint_is_a_warning(early, checkpoint, warned):
    """Early stopping restored the best val_loss epoch, then the run loaded model_checkpoint's
    best val_accuracy epoch over it (training/finish.py): metrics.json named the checkpoint's
    epoch, and the restore was lost without a word. validate warns at restore_best_weights."""
    text = (
        HEAD
        + "data: {source: digits}\ntraining:\n  callbacks:\n"
        + f"    - model_checkpoint: {checkpoint}\n    - early_stopping: {early}\n"
    )
    warnings = [w for w in compile_text(text, "spec.yaml").warnings if w.code == "best-weights"]
    assert len(warnings) == warned
    if warned:
        (warning,) = warnings
        assert warning.path == "training.callbacks[1].early_stopping.restore_best_weights"
        assert warning.message == (
            "early_stopping restores the weights of the best val_loss epoch, and model_checkpoint's "
            "best.keras (the best val_accuracy epoch) replaces them when training ends: the run ends "
            "with the best val_accuracy epoch's weights"
        )
        assert warning.hint.startswith("monitor val_accuracy in early_stopping too")


def test_a_callbacks_default_monitor_without_a_validation_split_is_a_located_warning(runner, tmp_path):
    """With data.validation_split: 0 a callback's default monitor (documented as val_loss)
    becomes the training loss: the best epoch, the stop and the rate's cut were chosen on it
    without a word. validate (and train, which prints the spec's warnings) says so at each
    callback that takes the default; a written monitor: loss is the user's choice, unwarned."""
    from cnnspec.cli.app import app

    compiled = compile_text(HEAD + NO_VALIDATION_CALLBACKS, "spec.yaml")
    config = training_config(compiled)
    assert [c.settings["monitor"] for c in config.callbacks] == ["loss", "loss", "loss"]
    warnings = [w for w in compiled.warnings if w.code == "monitor-fallback"]
    said = (
        " monitors the training loss (loss): there is no validation split (data.validation_split: 0), "
        "so its default val_loss is not logged"
    )
    assert [(w.path, w.loc.line, w.loc.column, w.message) for w in warnings] == [
        ("training.callbacks[0].early_stopping", 11, 7, "early_stopping" + said),
        ("training.callbacks[1]", 12, 7, "model_checkpoint" + said),
    ]
    assert warnings[0].hint == (
        "set data.validation_split above 0 to watch val_loss, or write monitor: loss to keep the "
        "training loss"
    )
    spec = tmp_path / "spec.yaml"
    spec.write_text(HEAD + NO_VALIDATION_CALLBACKS)
    result = runner.invoke(app, ["validate", str(spec)])
    assert result.exit_code == 0, result.output
    assert f"spec.yaml:11:7: warning: training.callbacks[0].early_stopping: early_stopping{said}" in " ".join(
        result.output.split()
    )
    with_validation = compile_text(HEAD + NO_VALIDATION_CALLBACKS.replace("0}", "0.2}"), "spec.yaml")
    assert not [w for w in with_validation.warnings if w.code == "monitor-fallback"]
    assert [c.settings["monitor"] for c in training_config(with_validation).callbacks] == [
        "val_loss",
        "val_loss",
        "loss",
    ]


def test_an_expression_out_of_the_schemas_bounds_is_said_once_with_its_var():
    """One error at the expression (not the reader's and the schema's both), noting where its
    var was set, for a lower bound the reader checks and an upper one the schema alone did."""
    head = HEAD.replace("vars: {classes: 10, e: 4}", "vars: {classes: 10, e: 4, none: 0, big: 1000001}")
    errors = errors_of("training:\n  epochs: '${none}'\n  batch_size: '${big}'\n", head)
    assert [(e.path, e.message) for e in errors] == [
        ("training.epochs", "expected an integer ≥ 1; received 0"),
        ("training.batch_size", "expected an integer ≥ 1 and ≤ 1000000; received integer 1000001"),
    ]
    assert [n.message for n in errors[1].notes] == ["big is integer 1000001, set at spec.yaml:4:41"]


def test_an_input_shape_from_an_expression_is_held_to_four_axes():
    with pytest.raises(SpecError) as caught:
        compile_text(HEAD.replace("shape: [8, 8, 1]", "shape: '${[8, 8, 1, 1, 1]}'"), "spec.yaml")
    (error,) = caught.value.errors
    assert error.path == "input.shape"
    assert error.message.startswith("expected a list of 1 to 4 positive integers")


def test_a_failed_rate_of_a_warmup_longer_than_the_steps_is_said_once():
    """A schedule whose initial rate's expression failed (`${in_channels}`, which sections cannot
    read), with warmup_steps not below its steps: the long-warmup warning called float() on the
    failed value, an internal error (found by test_resolve's hypothesis round trip)."""
    (error,) = errors_of(
        "training:\n  steps_per_epoch: 1\n  phases:\n  - epochs: 1\n    learning_rate:\n"
        "      cosine_decay: {initial_learning_rate: '${in_channels}', warmup_steps: 1}\n"
    )
    assert error.message == "in '${in_channels}': undefined name 'in_channels'"


@pytest.mark.parametrize("strategy", ["mirrored", "multi_worker", "tpu"])
def test_gradient_accumulation_across_replicas_is_refused_where_it_is_written(strategy):
    """`train` stopped with an internal error at the first batch ("`merge_call` called while
    defining a new graph", exit 3): Keras accumulates gradients on one device only. Refused at
    the optimizer's setting, the spec's or a phase's; one_device and default train it."""
    head = HEAD + f"runtime: {{distribute: {strategy}}}\n"
    (error,) = errors_of("training:\n  optimizer: {sgd: {gradient_accumulation_steps: 2}}\n", head)
    assert error.path == "training.optimizer.sgd.gradient_accumulation_steps"
    assert error.message.startswith(
        f"expected no gradient_accumulation_steps with runtime.distribute: {strategy}"
    )
    phased = (
        "training:\n  phases:\n    - {epochs: 1}\n"
        "    - {epochs: 1, optimizer: {adam: {gradient_accumulation_steps: 3}}}\n"
    )
    (error,) = errors_of(phased, head)
    assert error.path == "training.phases[1].optimizer.adam.gradient_accumulation_steps"
    for fine in ("one_device", "default"):
        tail = "training:\n  optimizer: {sgd: {gradient_accumulation_steps: 2}}\n"
        config = config_of(tail, HEAD + f"runtime: {{distribute: {fine}}}\n")
        assert config.optimizer.settings["gradient_accumulation_steps"] == 2
