"""`cnnspec codegen`: a var's constant drives every setting its value reaches, or says it does not.

A var read by the model and by the augmentation, data or training settings was a constant only
in the model's layers: the other settings were written with its value (``split(x, y, 0.2)``,
``default=10``, ``max(len(class_names), 10)``), so an edited ``N = 12`` changed the model alone
and the script crashed where ``cnnspec train --set vars.n=12`` trained. Those settings are now
written as the constant's expression where the emitter can (``split(x, y, F)``); a constant that
a setting written with its value reads says it was decided when the code was generated, with a
note that names the settings. The slow test runs an edited script beside ``--set``.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

import pytest

from cnnspec.api import compile_spec
from cnnspec.backends.codegen_check import check_source, verify_model
from cnnspec.cli.app import app
from tests.conftest import run_script

MARK = "decided when this code was generated: change it in the spec"

#: The tester's spec: f and n read by the model, the augmentation, the data and the training.
C2 = """\
cnnspec: 1
name: c2
input: {shape: [8, 8, 1]}
vars: {f: 0.2, n: 10}
augmentation:
  - random_translation: {height_factor: "${f}", width_factor: "${f}"}
model:
  - conv2d: {filters: "${n}", kernel_size: 3, padding: same}
  - global_avg_pool2d
  - dropout: "${f}"
  - dense: {units: "${n}", activation: softmax}
data: {source: digits, limit: 40, validation_split: "${f}", test_split: "${f}"}
training:
  epochs: 1
  batch_size: "${n}"
  mixup: {alpha: "${f}"}
  seed: 1
"""

#: A dropout rate that is also the loss's label smoothing; a batch norm's epsilon whose var
#: also makes the learning rate.
SMOOTHING = """\
cnnspec: 1
name: ls
input: {shape: [8, 8, 1]}
vars: {rate: 0.2, tiny: 1.0e-300}
model:
  - conv2d: {filters: 4, kernel_size: 3}
  - batch_norm: {epsilon: "${tiny}"}
  - global_avg_pool2d
  - dropout: "${rate}"
  - dense: {units: 10, activation: softmax}
data: {source: digits, limit: 40}
training:
  epochs: 1
  loss: {categorical_crossentropy: {label_smoothing: "${rate}"}}
  optimizer: {adam: {learning_rate: "${tiny*1e290}"}}
"""


def codegen(runner, write_spec, tmp_path, text: str, *, script: bool = False) -> tuple[str, str]:
    """The code ``codegen -o`` writes for ``text``, and what it says on the console (one line)."""
    spec = write_spec(text)
    target = tmp_path / ("train.py" if script else "model.py")
    result = runner.invoke(app, ["codegen", str(spec), "-o", str(target), *(["--script"] if script else [])])
    assert result.exit_code == 0, result.output
    return target.read_text(encoding="utf-8"), " ".join(result.output.split())


def test_module_writes_the_augmentation_with_the_constants(runner, write_spec, tmp_path):
    source, output = codegen(runner, write_spec, tmp_path, C2)
    assert "F = 0.2  # spec.yaml:4\n" in source and "N = 10  # spec.yaml:4\n" in source
    assert (
        'layers.RandomTranslation(height_factor=F, width_factor=F, name="augment_random_translation_1"),'
        in source
    )
    assert MARK not in source and "note:" not in output
    # the edited constants build what --set builds
    edited = source.replace("N = 10  # spec.yaml:4", "N = 12").replace("F = 0.2  # spec.yaml:4", "F = 0.25")
    overrides = ["vars.n=12", "vars.f=0.25"]
    verify_model(check_source(edited), compile_spec(tmp_path / "spec.yaml", overrides).ir)


#: The hunter's spec: one rotation in the shorthand, one as a mapping, both reading rot.
SHORTHAND = """\
cnnspec: 1
name: wa
input: {shape: [8, 8, 1]}
vars: {rot: 0.05}
model:
  - flatten
  - dense: {units: 10, activation: softmax}
augmentation:
  - random_rotation: "${rot}"
  - random_rotation: {factor: "${rot}"}
data: {source: digits, limit: 40}
training: {epochs: 1, seed: 4}
"""


@pytest.mark.parametrize("script", [False, True], ids=["module", "script"])
def test_an_augmentation_shorthand_is_written_with_the_constant(runner, write_spec, tmp_path, script):
    """``random_rotation: "${rot}"`` is the kind's main parameter, as ``dropout: "${rate}"`` is
    in the model: it was written as ``factor=0.05`` (and ROT marked as decided when the code was
    generated) where the mapping form beside it was ``factor=ROT``."""
    source, output = codegen(runner, write_spec, tmp_path, SHORTHAND, script=script)
    for number in (1, 2):
        assert f'layers.RandomRotation(factor=ROT, name="augment_random_rotation_{number}"),' in source
    assert "0.05" not in source.replace("ROT = 0.05", "")
    assert MARK not in source and "note:" not in output
    if not script:  # the edited constant builds what --set builds
        edited = source.replace("ROT = 0.05  # spec.yaml:4", "ROT = 0.1")
        verify_model(check_source(edited), compile_spec(tmp_path / "spec.yaml", ["vars.rot=0.1"]).ir)


def test_script_writes_data_training_and_class_count_with_the_constants(runner, write_spec, tmp_path):
    source, output = codegen(runner, write_spec, tmp_path, C2, script=True)
    assert "F = 0.2  # spec.yaml:4\n" in source and "N = 10  # spec.yaml:4\n" in source
    assert MARK not in source and "note:" not in output
    for line in (
        "            layers.RandomTranslation(height_factor=F, width_factor=F, "
        'name="augment_random_translation_1"),\n',
        "    x_train, y_train, x_test, y_test = split(x, y, F)\n",
        "    x_train, y_train, x_val, y_val = split(x_train, y_train, F)\n",
        '    parser.add_argument("--batch-size", type=int, default=N, help="examples per batch '
        '(default %(default)s)")\n',
        "    num_classes = max(len(class_names), N)\n",
        "    mixing = keras.layers.MixUp(alpha=F, seed=SEED)\n",
    ):
        assert line in source, line
    assert "0.2" not in source.replace("F = 0.2", "")


def test_script_writes_label_smoothing_and_learning_rate_with_the_constants(runner, write_spec, tmp_path):
    source, output = codegen(runner, write_spec, tmp_path, SMOOTHING, script=True)
    assert "RATE = 0.2  # spec.yaml:4\n" in source and "TINY = 1e-300  # spec.yaml:4\n" in source
    assert "    return keras.optimizers.Adam(learning_rate=TINY * 1e290)\n" in source
    assert "loss=keras.losses.CategoricalCrossentropy(from_logits=False, label_smoothing=RATE)," in source
    assert MARK not in source and "note:" not in output


#: A warm-up of n × 4 steps: it decides whether the script warms up at all, so it is written as its
#: value (the other settings of C2 are written as expressions).
WARMUP = C2.replace(
    "  seed: 1\n",
    '  seed: 1\n  optimizer: {adam: {learning_rate: {cosine_decay: {warmup_steps: "${n * 4}"}}}}\n',
)


def test_a_setting_written_with_its_value_marks_the_constant(runner, write_spec, tmp_path):
    # the schedule's warmup_steps is written as its number: N drives the model only
    source, output = codegen(runner, write_spec, tmp_path, WARMUP, script=True)
    assert f"N = 10  # spec.yaml:4; {MARK}\n" in source
    assert "F = 0.2  # spec.yaml:4\n" in source
    assert "warmup_steps=40" in source
    where = "training.optimizer.adam.learning_rate.cosine_decay.warmup_steps"
    note = (
        f"note: the code fits the constant N only as it is: {where} is written as the value it had; "
        "for other values change vars.n in the spec and generate again"
    )
    assert note in output
    assert "# Note: the code fits the constant N only as it is:" in source
    # the model module does not write the training settings: N is live there
    module, _ = codegen(runner, write_spec, tmp_path, WARMUP)
    assert "N = 10  # spec.yaml:4\n" in module


def test_a_var_reaching_a_literal_through_another_var_is_marked(runner, write_spec, tmp_path):
    text = WARMUP.replace("vars: {f: 0.2, n: 10}", 'vars: {f: 0.2, n: 10, m: "${n * 4}"}').replace(
        'warmup_steps: "${n * 4}"', 'warmup_steps: "${m}"'
    )
    source, output = codegen(runner, write_spec, tmp_path, text, script=True)
    assert f"N = 10  # spec.yaml:4; {MARK}\n" in source
    # (m itself: no code reads it, which it says)
    assert "M = N * 4  # spec.yaml:4; not read below: decided when this code was generated\n" in source
    assert "the code fits the constant N only as it is: training.optimizer.adam.learning_rate" in output


def assigned(source: str) -> dict[str, tuple[int, str]]:
    """The module-level ``NAME = value`` of the generated code: each name's statement index and
    its value's source."""
    body = ast.parse(source).body
    return {
        stmt.targets[0].id: (index, ast.unparse(stmt.value))
        for index, stmt in enumerate(body)
        if isinstance(stmt, ast.Assign) and isinstance(stmt.targets[0], ast.Name)
    }


def keyword_of(source: str, func: str, key: str, first: str | None = None) -> list[str]:
    """The sources of keyword ``key`` of each call of ``func`` (its dotted name's last part; with
    ``first``: only the calls whose first argument is that string) in the generated code."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        if name != func or (
            first is not None and not (node.args and ast.literal_eval(node.args[0]) == first)
        ):
            continue
        found.extend(ast.unparse(k.value) for k in node.keywords if k.arg == key)
    return found


def test_script_writes_limit_epochs_and_seed_with_the_constants(runner, write_spec, tmp_path):
    """data.limit, training.epochs and training.seed: written as the constants' expressions
    (SEED after the constants it reads), so no constant is marked decided."""
    text = (
        C2.replace("vars: {f: 0.2, n: 10}", "vars: {f: 0.2, n: 10, e: 1, s: 7}")
        .replace("limit: 40", 'limit: "${n * 4}"')
        .replace("epochs: 1", 'epochs: "${e}"')
        .replace("seed: 1", 'seed: "${s + 1}"')
    )
    source, output = codegen(runner, write_spec, tmp_path, text, script=True)
    assert MARK not in source and "note:" not in output
    assert "E = 1  # spec.yaml:4\n" in source and "S = 7  # spec.yaml:4\n" in source
    for part in ("x_train, y_train", "x_val, y_val", "x_test, y_test"):
        assert f"    {part} = limit({part}, N * 4)\n" in source
    assert keyword_of(source, "add_argument", "default", "--epochs") == ["E"]
    names = assigned(source)
    assert names["SEED"][1] == "S + 1" and names["S"][0] < names["SEED"][0]
    assert "SEED = S + 1  # training.seed\n" in source


def test_phases_write_their_epochs_and_learning_rates_with_the_constants(runner, write_spec, tmp_path):
    """Each phase's optimizer reads its learning rate's constants (the phase's own, or the main
    optimizer's that it keeps); PHASES, after the constants, their epochs, and --epochs' default
    is their sum."""
    text = SMOOTHING.replace("vars: {rate: 0.2, tiny: 1.0e-300}", "vars: {rate: 0.2, tiny: 1.0e-300, e: 2}")
    text = text.replace(
        "  epochs: 1\n",
        '  phases:\n    - {epochs: "${e}"}\n    - {epochs: 1, learning_rate: "${tiny * 1e289}"}\n',
    )
    source, output = codegen(runner, write_spec, tmp_path, text, script=True)
    assert MARK not in source and "note:" not in output
    # (the last phase's return comes first: it is the function's last statement)
    assert keyword_of(source, "Adam", "learning_rate") == ["TINY * 1e+289", "TINY * 1e+290"]
    names = assigned(source)
    assert names["PHASES"][1] == "[{'epochs': E, 'frozen': []}, {'epochs': 1, 'frozen': []}]"
    assert names["E"][0] < names["PHASES"][0]
    assert keyword_of(source, "add_argument", "default", "--epochs") == ["E + 1"]


def test_schedule_numbers_are_written_with_the_constants(runner, write_spec, tmp_path):
    """A schedule's numbers read the constants (its warm-up does not: see WARMUP above)."""
    cosine = '{cosine_decay: {initial_learning_rate: "${lr}", decay_steps: "${n * 10}", alpha: "${f}"}}'
    exponential = (
        '{exponential_decay: {initial_learning_rate: "${lr * 2}", decay_steps: "${n}", decay_rate: "${f}"}}'
    )
    for kind, schedule, call in (
        ("cosine", cosine, "keras.optimizers.schedules.CosineDecay(LR, N * 10, alpha=F)"),
        (
            "exponential",
            exponential,
            "keras.optimizers.schedules.ExponentialDecay(LR * 2, N, F, staircase=False)",
        ),
    ):
        text = C2.replace("vars: {f: 0.2, n: 10}", "vars: {f: 0.2, n: 10, lr: 0.01}").replace(
            "  seed: 1\n", f"  seed: 1\n  optimizer: {{adam: {{learning_rate: {schedule}}}}}\n"
        )
        (tmp_path / kind).mkdir()
        source, output = codegen(runner, write_spec, tmp_path / kind, text, script=True)
        assert MARK not in source and "note:" not in output
        assert keyword_of(source, "Adam", "learning_rate") == [call]


def _tiny_tasks_script(
    runner: Any, write_spec: Any, tmp_path: Path, vars_text: str, change: tuple[str, str]
) -> str:
    """The --script of the codegen fixture tiny_tasks.yaml with ``vars: VARS_TEXT`` and one
    ``change`` (old, new) to its text, checked to mark no constant decided and to say no note."""
    fixture = Path(__file__).parent / "fixtures" / "codegen" / "tiny_tasks.yaml"
    text = fixture.read_text(encoding="utf-8").replace(
        "name: tiny_tasks\n", f"name: tiny_tasks\nvars: {vars_text}\n"
    )
    assert change[0] in text
    source, output = codegen(runner, write_spec, tmp_path, text.replace(*change), script=True)
    assert MARK not in source and "note:" not in output
    return source


def test_task_script_writes_each_outputs_loss_and_weight_with_the_constants(runner, write_spec, tmp_path):
    """training.outputs.NAME: the loss's numbers and the loss weight read the constants."""
    source = _tiny_tasks_script(
        runner, write_spec, tmp_path, "{w: 0.5, d: 2.0}",
        ("loss: huber, loss_weight: 0.5", 'loss: {huber: {delta: "${d}"}}, loss_weight: "${w}"'),
    )  # fmt: skip
    assert "W = 0.5  # spec.yaml:7\n" in source and "D = 2.0  # spec.yaml:7\n" in source
    assert keyword_of(source, "compile", "loss_weights") == ["{'mask': 1.0, 'present': 1.0, 'count': W}"]
    assert keyword_of(source, "Huber", "delta") == ["D"]


def test_an_augmentation_value_keras_gets_changed_marks_the_constant(runner, write_spec, tmp_path):
    # without width_factor the width follows the height: written as values, F is not live
    text = C2.replace(', width_factor: "${f}"', "")
    source, output = codegen(runner, write_spec, tmp_path, text)
    assert 'height_factor=0.2, width_factor=0.2, name="augment_random_translation_1"' in source
    assert f"F = 0.2  # spec.yaml:4; {MARK}\n" in source
    assert "augmentation[0].random_translation.height_factor is written as the value it had" in output


def test_an_input_shape_read_from_a_var_is_written_with_the_constant_in_a_module(
    runner, write_spec, tmp_path
):
    """A model module writes input.shape as the constants' expression (the replay tries other
    values of its vars: see the next test); the edited constant builds what --set builds (the
    spec without its data: digits are 8×8)."""
    text = C2.split("data:")[0].replace("input: {shape: [8, 8, 1]}", 'input: {shape: ["${n - 2}", 8, 1]}')
    source, output = codegen(runner, write_spec, tmp_path, text)
    assert keyword_of(source, "Input", "shape") == ["(N - 2, 8, 1)"]
    assert "N = 10  # spec.yaml:4\n" in source and MARK not in source and "note:" not in output
    edited = source.replace("N = 10  # spec.yaml:4", "N = 12")
    verify_model(check_source(edited), compile_spec(tmp_path / "spec.yaml", ["vars.n=12"]).ir)


def test_an_input_shape_var_the_code_fits_is_marked(runner, write_spec, tmp_path):
    """Two iterations of a loop counted from the input's height, then a layer named after them
    (`conv2d_3`): the replay with another height builds other names, so N is marked."""
    text = (
        "cnnspec: 1\nname: c4\ninput: {shape: ['${n}', 8, 1]}\nvars: {n: 8}\nmodel:\n"
        "  - repeat: {times: '${in_shape[0] // 4}', layers: [{conv2d: {filters: 4, kernel_size: 3}}]}\n"
        "  - conv2d: {filters: 4, kernel_size: 1}\n  - global_avg_pool2d\n"
        "  - dense: {units: 3, activation: softmax}\n"
    )
    source, output = codegen(runner, write_spec, tmp_path, text)
    assert keyword_of(source, "Input", "shape") == ["(N, 8, 1)"]
    assert f"N = 8  # spec.yaml:4; {MARK}\n" in source
    assert "the code fits the constant N only as it is: layer names or `when:`s were decided" in output


def test_an_input_shape_read_from_a_var_marks_the_constant_in_a_script(runner, write_spec, tmp_path):
    # a script decodes and resizes the images to the input's size: written as its value
    text = C2.replace("input: {shape: [8, 8, 1]}", 'input: {shape: ["${n - 2}", 8, 1]}')
    source, output = codegen(runner, write_spec, tmp_path, text, script=True)
    assert keyword_of(source, "Input", "shape") == ["(8, 8, 1)"]
    assert f"N = 10  # spec.yaml:4; {MARK}\n" in source
    assert "input.shape[0] is written as the value it had" in output


def test_output_units_the_script_cannot_write_as_an_expression_mark_their_var(runner, write_spec, tmp_path):
    # the output layer's units come from a block parameter: the class count is written as 10
    text = (
        C2.replace(
            '  - dense: {units: "${n}", activation: softmax}\n',
            '  - head: {u: "${n}"}\n',
        )
        .replace(
            "model:\n",
            "blocks:\n  head:\n    params: {u: int}\n"
            '    layers:\n      - dense: {units: "${u}", activation: softmax}\nmodel:\n',
        )
        .replace('batch_size: "${n}"', "batch_size: 10")
    )
    source, output = codegen(runner, write_spec, tmp_path, text, script=True)
    assert "    num_classes = max(len(class_names), 10)\n" in source
    assert f"N = 10  # spec.yaml:4; {MARK}\n" in source
    assert "the code fits the constant N only as it is: the model's output units is written" in output


@pytest.mark.slow
@pytest.mark.full
def test_edited_script_trains_as_set_does(write_spec, tmp_path):
    """The tester's case: the script with N = 12 and F = 0.25 edited in trains what `cnnspec
    train --set vars.n=12 --set vars.f=0.25` trains (it stopped on a one-hot width of 10); with
    data.limit, the epochs and the seed read from vars too (S = 2: the split and the weights of
    the other seed, as --set gives them), and the optimizer's momentum and data.shuffle_buffer."""
    from cnnspec.backends.python_emitter import generate_code
    from cnnspec.training.trainer import train

    text = (
        C2.replace("vars: {f: 0.2, n: 10}", "vars: {f: 0.2, n: 10, s: 1, e: 1}")
        .replace("limit: 40", 'limit: "${n * 4}", shuffle_buffer: "${n}"')
        .replace("  mixup:", '  optimizer: {sgd: {learning_rate: 0.05, momentum: "${f + 0.5}"}}\n  mixup:')
        .replace("epochs: 1", 'epochs: "${e}"')
        .replace("seed: 1", 'seed: "${s}"')
    )
    spec = write_spec(text)
    script = tmp_path / "train.py"
    source = generate_code(compile_spec(spec), script=True, output=script).text
    edited = source.replace("N = 10  # spec.yaml:4", "N = 12").replace("F = 0.2  # spec.yaml:4", "F = 0.25")
    edited = edited.replace("S = 1  # spec.yaml:4", "S = 2")
    script.write_text(edited, encoding="utf-8")
    run_script(script, "--out", str(tmp_path / "script"))
    theirs = json.loads((tmp_path / "script" / "metrics.json").read_text(encoding="utf-8"))
    ours = train(compile_spec(spec, ["vars.n=12", "vars.f=0.25", "vars.s=2"]), out=tmp_path / "cnnspec")
    assert theirs["test_loss"] == pytest.approx(ours.metrics["test_loss"], rel=1e-5)
    assert theirs["history"]["loss"] == pytest.approx([ours.metrics["final_loss"]], rel=1e-5)
    assert len(theirs["class_names"]) == 10


def test_a_var_read_where_the_code_writes_its_value_names_the_vars_it_reads_in_turn():
    """literal_places follows a chain of vars from each var a place reads (found for the vars
    that places read, each once: every var of a chain of 3,000 was followed through the rest of
    it before, seconds of `codegen` for tests/fixtures/hostile/var_chain_long.yaml)."""
    from cnnspec.backends.codegen_vars import literal_places

    chain = {f"v{i}": f"${{v{i + 1}}}" for i in range(3_000)} | {"v3000": 10}
    data = {"vars": {**chain, "unread": "${v2}", "lr": "${v2999 * 2}"},
            "data": {"limit": "${v2998}", "seed": "${lr}"}, "model": ["${v0}"]}  # fmt: skip
    limit, seed, first = ("data", "limit"), ("data", "seed"), ("model", 0)
    tail = {"v2998": [limit], "v2999": [limit], "v3000": [limit]}
    assert literal_places(data, ("data",), {seed}) == tail
    expected = {name: [first] for name in chain} | {"lr": [seed]}
    expected |= {"v2998": [limit, first], "v2999": [limit, seed, first], "v3000": [limit, seed, first]}
    assert literal_places(data, ("data", "model"), set()) == expected


def test_optimizer_callbacks_buffer_and_steps_are_written_with_the_constants(runner, write_spec, tmp_path):
    """The optimizer's other keywords, the callbacks' numbers, data.shuffle_buffer and
    training.steps_per_epoch read the constants; no constant is marked decided."""
    text = (
        C2.replace("vars: {f: 0.2, n: 10}", "vars: {f: 0.2, n: 10, m: 0.9, p: 3}")
        .replace("limit: 40,", 'limit: 40, shuffle_buffer: "${n * 4}",')
        .replace("  seed: 1\n", '  seed: 1\n  steps_per_epoch: "${n}"\n')
        .replace(
            "  seed: 1\n",
            "  seed: 1\n"
            '  optimizer: {sgd: {learning_rate: 0.01, momentum: "${m}"}}\n'
            "  callbacks:\n"
            '    - early_stopping: {patience: "${p}", min_delta: "${f / 10}"}\n'
            '    - reduce_lr_on_plateau: {factor: "${f}", patience: "${p - 1}"}\n',
        )
    )
    source, output = codegen(runner, write_spec, tmp_path, text, script=True)
    assert MARK not in source and "note:" not in output
    assert keyword_of(source, "SGD", "momentum") == ["M"]
    assert keyword_of(source, "EarlyStopping", "patience") == ["P"]
    assert keyword_of(source, "EarlyStopping", "min_delta") == ["F / 10"]
    assert keyword_of(source, "ReduceLROnPlateau", "factor") == ["F"]
    assert keyword_of(source, "ReduceLROnPlateau", "patience") == ["P - 1"]
    assert "        buffer = min(len(y), N * 4)\n" in source
    assert "    # spec without it): no repeat, each epoch the whole training set once\n" in source
    assert "    steps_per_epoch = N\n    repeat = steps_per_epoch is not None\n" in source


def test_phase_optimizer_keywords_are_written_with_the_constants(runner, write_spec, tmp_path):
    """A phase's own optimizer reads its keywords' constants; a later phase that only changes the
    learning rate keeps that optimizer and its expressions."""
    text = C2.replace("vars: {f: 0.2, n: 10}", "vars: {f: 0.2, n: 10, m: 0.9, b: 0.8}").replace(
        "  epochs: 1\n",
        '  optimizer: {adam: {learning_rate: 0.01, beta_1: "${b}"}}\n'
        "  phases:\n"
        '    - {epochs: 1, optimizer: {sgd: {learning_rate: 0.01, momentum: "${m}"}}}\n'
        "    - {epochs: 1, learning_rate: 0.001}\n",
    )
    source, output = codegen(runner, write_spec, tmp_path, text, script=True)
    # (b is read by the main optimizer alone, which the phases replace: it is no setting used)
    assert keyword_of(source, "SGD", "momentum") == ["M", "M"]
    assert MARK not in source and "note:" not in output


def test_an_outputs_threshold_is_written_with_the_constant(runner, write_spec, tmp_path):
    """A multilabel output's threshold: its metrics and its summary in metrics.json read it."""
    source = _tiny_tasks_script(
        runner,
        write_spec,
        tmp_path,
        "{t: 0.4}",
        ("present: {metrics:", 'present: {threshold: "${t}", metrics:'),
    )
    assert "T = 0.4  # spec.yaml:7\n" in source
    assert keyword_of(source, "F1Score", "threshold") == ["T"]
    assert keyword_of(source, "BinaryAccuracy", "threshold") == ["T"]
    assert "multilabel_summary(y_true, outputs, names, T)" in source
