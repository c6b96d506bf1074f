"""The training-settings pass: three defects an audit found.

S1. A loss setting written as a ``${…}`` expression was never held to its bounds: the schema
    checks a written number, but passes an expression as text, and ``_loss`` read the value
    as it came (``label_smoothing: "${smooth}"`` with ``smooth: 2`` trained with 2.0, a huber
    ``delta`` of -1 reached the generated script), while ``value or default`` turned a 0 into
    the default. It now gets the located error a literal gets, and a valid 0 stays 0.
S2. ``top_k_accuracy.k`` from an expression was not checked either: 0 logged a top_0_accuracy
    (always 0), 0.5 and even 2.0 silently became the default 5. It is now "expected an integer
    ≥ 1" at ``k``, a whole float is taken as the int it is, and the check that k is below the
    output's classes still applies.
S3. ``warmup_steps`` meant two things: cosine_decay used Keras' warm-up (0 at step 0, the peak
    at step ``warmup_steps``), the other schedules cnnspec's ``LinearWarmup`` (never 0, the
    peak one step early), copied by the generated script's ``WarmUp``. Every schedule now ramps
    as Keras does, in ``cnnspec train`` and in the script.

S1 and S2 are TensorFlow-free (spec text compiled through the front end that ``validate``,
``train`` and ``codegen`` share); S3 evaluates the Keras schedules, so it is slow.
"""

from __future__ import annotations

import ast
from typing import Any

import pytest

from cnnspec.analysis.passes import compile_text
from cnnspec.analysis.settings import training_config
from cnnspec.analysis.settings_types import TrainConfig
from cnnspec.errors import Diagnostic, SpecError

CLASSIFIER = (
    "cnnspec: 1\nname: t\ninput: {shape: [8, 8, 1]}\nmodel:\n  - flatten\n"
    "  - dense: {units: 10, activation: softmax}\ndata: {source: digits}\n"
)
REGRESSOR = (
    "cnnspec: 1\nname: r\ninput: {shape: [8, 8, 3]}\nmodel:\n  - flatten\n  - dense: {units: 1}\n"
    "data: {source: {shapes: {images: 40, target: count}}}\n"
)


def _errors(text: str) -> list[Diagnostic]:
    """The errors of compiling ``text`` (as ``t.yaml``) through the whole front end."""
    with pytest.raises(SpecError) as caught:
        compile_text(text, "t.yaml")
    return caught.value.errors


def _config(text: str) -> TrainConfig:
    return training_config(compile_text(text, "t.yaml"))


def _located(text: str, needle: str) -> tuple[int, int]:
    """The 1-based line and column of the first ``needle`` in ``text``."""
    for number, line in enumerate(text.splitlines(), start=1):
        if needle in line:
            return number, line.index(needle) + 1
    raise AssertionError(f"{needle!r} is not in the spec")


# -- S1. a loss setting from an expression is held to the literal's bounds ------------------------
LABEL_SMOOTHING = "training:\n  loss: {categorical_crossentropy: {label_smoothing: VALUE}}\n"
HUBER = "training:\n  task: regression\n  loss: {huber: {delta: VALUE}}\n"


@pytest.mark.parametrize(
    ("head", "training", "value", "path", "expected"),
    [
        (
            CLASSIFIER,
            LABEL_SMOOTHING,
            "2",
            "training.loss.categorical_crossentropy.label_smoothing",
            "expected a number ≥ 0 and ≤ 1",
        ),
        (
            CLASSIFIER,
            LABEL_SMOOTHING,
            "-0.1",
            "training.loss.categorical_crossentropy.label_smoothing",
            "expected a number ≥ 0 and ≤ 1",
        ),
        (REGRESSOR, HUBER, "-1", "training.loss.huber.delta", "expected a number > 0"),
        # (0 is no valid delta: it was swapped for the default 1.0 by `or 1.0`)
        (REGRESSOR, HUBER, "0", "training.loss.huber.delta", "expected a number > 0"),
    ],
    ids=["label_smoothing=2", "label_smoothing=-0.1", "delta=-1", "delta=0"],
)
def test_a_loss_setting_from_an_expression_is_refused_as_the_literal_is(
    head: str, training: str, value: str, path: str, expected: str
) -> None:
    """The literal is refused by the schema; the same value from ``vars`` gets the same
    located error (the bounds' wording), where the expression is written, and nothing else."""
    literal = _errors(head + training.replace("VALUE", value))
    assert [e.path for e in literal] == [path] and literal[0].message.startswith(expected)

    text = head + f"vars: {{v: {value}}}\n" + training.replace("VALUE", '"${v}"')
    errors = _errors(text)
    assert [(e.path, e.message) for e in errors] == [(path, f"{expected}; received {value}")]
    assert (errors[0].loc.line, errors[0].loc.column) == _located(text, '"${v}"')


@pytest.mark.parametrize(
    ("head", "training", "value", "field", "expected"),
    [
        (CLASSIFIER, LABEL_SMOOTHING, "0", "label_smoothing", 0.0),  # 0 is valid: kept
        (CLASSIFIER, LABEL_SMOOTHING, "0.2", "label_smoothing", 0.2),
        (CLASSIFIER, LABEL_SMOOTHING, "1", "label_smoothing", 1.0),
        (REGRESSOR, HUBER, "0.5", "delta", 0.5),
    ],
    ids=["label_smoothing=0", "label_smoothing=0.2", "label_smoothing=1", "delta=0.5"],
)
def test_a_valid_loss_setting_from_an_expression_is_used(
    head: str, training: str, value: str, field: str, expected: float
) -> None:
    text = head + f"vars: {{v: {value}}}\n" + training.replace("VALUE", '"${v}"')
    loss = _config(text).tasks[0].loss
    assert getattr(loss, field) == expected and isinstance(getattr(loss, field), float)


# -- S2. top_k_accuracy.k from an expression ------------------------------------------------------
TOP_K = 'training:\n  metrics: [accuracy, {top_k_accuracy: {k: "${k}"}}]\n'
K_PATH = "training.metrics[1].top_k_accuracy.k"


@pytest.mark.parametrize("value", ["0", "-2", "0.5", "2.5", "true", "'three'"])
def test_a_top_k_from_an_expression_must_be_an_integer_of_at_least_one(value: str) -> None:
    """One error, at ``k``: no top_0_accuracy (always 0), no silent top_5_accuracy, and no
    second error about the default 5 standing in for the refused value."""
    text = CLASSIFIER + f"vars: {{k: {value}}}\n" + TOP_K
    errors = _errors(text)
    assert [e.path for e in errors] == [K_PATH], [e.message for e in errors]
    assert errors[0].message.startswith("expected an integer ≥ 1; received ")
    assert (errors[0].loc.line, errors[0].loc.column) == _located(text, '"${k}"')


def test_a_whole_top_k_from_an_expression_is_that_k() -> None:
    """``${2.0}`` (or ``${k}`` with ``k: 2``) is top-2, not the default 5."""
    for value in ("2", "2.0"):
        metrics = _config(CLASSIFIER + f"vars: {{k: {value}}}\n" + TOP_K).metrics
        assert [(m.name, m.k, m.log_name) for m in metrics][1] == ("top_k_accuracy", 2, "top_2_accuracy")
        assert type(metrics[1].k) is int


def test_a_top_k_from_an_expression_still_stays_below_the_classes() -> None:
    errors = _errors(CLASSIFIER + "vars: {k: 10}\n" + TOP_K)
    assert [e.path for e in errors] == [K_PATH]
    assert errors[0].message == "k must be below the output's 10 classes; received 10"


# -- S3. one meaning of warmup_steps, Keras', for every schedule, in train and the script ----------
WARMUP = 4
TOTAL_STEPS = 20
#: each schedule with a warm-up, and the same schedule without one (Keras' own class)
SCHEDULES: dict[str, tuple[str, str]] = {
    "cosine_decay": (
        "{cosine_decay: {initial_learning_rate: 0.1, alpha: 0.1, warmup_steps: 4}}",
        # (its decay spans the steps after the warm-up)
        f"keras.optimizers.schedules.CosineDecay(0.1, {TOTAL_STEPS - WARMUP}, alpha=0.1)",
    ),
    "exponential_decay": (
        "{exponential_decay: {initial_learning_rate: 0.05, decay_steps: 2, decay_rate: 0.5,"
        " warmup_steps: 4}}",
        "keras.optimizers.schedules.ExponentialDecay(0.05, 2, 0.5)",
    ),
    "piecewise_constant": (
        "{piecewise_constant: {boundaries: [3], values: [0.01, 0.001], warmup_steps: 4}}",
        "keras.optimizers.schedules.PiecewiseConstantDecay([3], [0.01, 0.001])",
    ),
}


def _warmup_spec(schedule: str) -> str:
    return CLASSIFIER + f"training:\n  optimizer: {{adam: {{learning_rate: {schedule}}}}}\n"


def _script_schedule(schedule: str, keras: Any) -> Any:
    """The learning-rate schedule the generated script builds: its optimizer's
    ``learning_rate`` expression evaluated with the script's own ``WarmUp`` class."""
    from cnnspec.backends.python_emitter import generate_code

    code = generate_code(
        compile_text(_warmup_spec(schedule), "t.yaml"), script=True, source_name="t.yaml"
    ).text
    tree = ast.parse(code)
    names: dict[str, Any] = {"keras": keras, "total_steps": TOTAL_STEPS}
    rate: ast.expr | None = None
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name == "WarmUp":
            exec(compile(ast.Module([node], []), "<WarmUp>", "exec"), names)
        if isinstance(node, ast.FunctionDef) and node.name == "build_optimizer":
            call = next(n for n in ast.walk(node) if isinstance(n, ast.Call) and n.keywords)
            rate = next(k.value for k in call.keywords if k.arg == "learning_rate")
    assert rate is not None, "the script has no build_optimizer(learning_rate=…)"
    return eval(compile(ast.Expression(rate), "<learning_rate>", "eval"), names)


def _rates(schedule: Any, steps: int) -> list[float]:
    return [float(schedule(step)) for step in range(steps)]


@pytest.mark.slow
def test_every_schedule_warms_up_as_keras_does_in_train_and_in_the_script() -> None:
    """lr(0) = 0, lr(s) = first · s / warmup_steps before the warm-up ends, lr(warmup_steps) =
    the schedule's first value, then the schedule from its own step 0; the ramp is the same
    for cosine_decay (Keras' warm-up) and the others (cnnspec's), and the script's rates are
    ``cnnspec train``'s."""
    import keras

    from cnnspec.training.builders import learning_rate

    ramps: dict[str, list[float]] = {}
    for kind, (schedule, plain) in SCHEDULES.items():
        train = _rates(
            learning_rate(_config(_warmup_spec(schedule)).optimizer.learning_rate, TOTAL_STEPS), 16
        )
        script = _rates(_script_schedule(schedule, keras), 16)
        unwarmed = _rates(eval(plain, {"keras": keras}), 16 - WARMUP)
        first = unwarmed[0]
        assert script == pytest.approx(train, rel=1e-6, abs=1e-12), kind
        assert train[0] == 0.0, kind
        assert train[WARMUP] == pytest.approx(first, rel=1e-6), kind
        assert train[: WARMUP + 1] == pytest.approx([first * s / WARMUP for s in range(WARMUP + 1)], rel=1e-6)
        assert train[WARMUP:] == pytest.approx(unwarmed, rel=1e-6), kind
        ramps[kind] = [rate / first for rate in train[: WARMUP + 1]]
    assert ramps["exponential_decay"] == pytest.approx(ramps["cosine_decay"], rel=1e-6)
    assert ramps["piecewise_constant"] == pytest.approx(ramps["cosine_decay"], rel=1e-6)


def test_the_docs_state_keras_rule_for_piecewise_constant_boundaries() -> None:
    """Keras' PiecewiseConstantDecay runs values[0] while step <= boundaries[0]: the docs said
    the boundaries were "the steps at which the rate changes" (one step early). They state the
    rule as it is (the rates themselves are unchanged: runs reproduce)."""
    from tests.conftest import ROOT

    page = (ROOT / "docs" / "sections.md").read_text(encoding="utf-8")
    (boundaries,) = [row for row in page.splitlines() if "piecewise_constant.boundaries`" in row]
    assert boundaries.endswith(
        "| the last step of each rate but the last, increasing (Keras' rule, step ≤ boundary): "
        "values[0] for steps 0 to boundaries[0] inclusive, the next value from step boundaries[0] + 1 "
        "(steps count from 0, after warmup_steps) |"
    )
    assert "steps at which the rate changes" not in page


@pytest.mark.slow
def test_piecewise_constant_changes_the_rate_the_step_after_a_boundary() -> None:
    """The rule the docs state, as the trainer's schedule runs it: with boundaries [7, 10],
    steps 0…7 run values[0], 8…10 values[1], from 11 values[2] (after a warm-up, counted from
    its end)."""
    from cnnspec.training.builders import learning_rate

    rate = "{piecewise_constant: {boundaries: [7, 10], values: [0.1, 0.01, 0.001]}}"
    rates = _rates(learning_rate(_config(_warmup_spec(rate)).optimizer.learning_rate, 20), 13)
    assert rates == pytest.approx([0.1] * 8 + [0.01] * 3 + [0.001] * 2)
    warm = "{piecewise_constant: {boundaries: [7, 10], values: [0.1, 0.01, 0.001], warmup_steps: 2}}"
    rates = _rates(learning_rate(_config(_warmup_spec(warm)).optimizer.learning_rate, 20), 15)
    assert rates[2:] == pytest.approx([0.1] * 8 + [0.01] * 3 + [0.001] * 2)


#: Load the model file given, compiled, and print its learning rate and optimizer step count.
LOAD_COMPILED = """\
import sys

import keras

model = keras.saving.load_model(sys.argv[1])
print(type(model.optimizer).__name__, float(model.optimizer.learning_rate), int(model.optimizer.iterations))
"""


def _script_saver(keras: Any) -> tuple[Any, Any]:
    """The generated script's ``WarmUp`` class and ``record_reached_rate`` function, as it defines
    them (for a spec whose learning rate warms up)."""
    from cnnspec.backends.python_emitter import generate_code

    spec = _warmup_spec("{exponential_decay: {decay_steps: 10, decay_rate: 0.9, warmup_steps: 5}}")
    code = generate_code(compile_text(spec, "t.yaml"), script=True, source_name="t.yaml").text
    names: dict[str, Any] = {"keras": keras}
    for node in ast.parse(code).body:
        if getattr(node, "name", None) in ("WarmUp", "record_reached_rate"):
            exec(compile(ast.Module([node], []), f"<{node.name}>", "exec"), names)  # type: ignore[attr-defined]
    return names["WarmUp"], names["record_reached_rate"]


@pytest.mark.slow
@pytest.mark.parametrize("saver", ["train", "script"])
@pytest.mark.parametrize("wrapped", [False, True], ids=["adam", "loss-scaled"])
def test_a_warmed_up_model_file_loads_in_plain_keras_with_its_optimizer_state(
    tmp_path, wrapped, saver
) -> None:
    """modelfile.save_model (train) and the script's record_reached_rate: a model whose rate warms
    up (cnnspec's LinearWarmup or the script's WarmUp, neither registered in another process),
    also inside the LossScaleOptimizer of mixed_float16, loads compiled in a process that never
    imports cnnspec, at the rate reached and with its step count (a plain number for the rate
    made Keras skip the optimizer's variables)."""
    import keras
    import numpy as np

    from cnnspec.training.builders import warmup_class
    from cnnspec.training.modelfile import save_model
    from tests.conftest import run_python

    warm, record_reached_rate = (warmup_class(), None) if saver == "train" else _script_saver(keras)
    schedule = warm(keras.optimizers.schedules.ExponentialDecay(0.01, 10, 0.9), 5)
    optimizer = keras.optimizers.Adam(schedule)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    model.compile(
        optimizer=keras.optimizers.LossScaleOptimizer(optimizer) if wrapped else optimizer, loss="mse"
    )
    if record_reached_rate is not None:
        record_reached_rate(model.optimizer)  # as the script's compile_model does
    model.fit(np.ones((8, 4)), np.ones((8, 2)), batch_size=4, epochs=4, verbose=0)  # 8 steps
    reached = float(np.asarray(model.optimizer.learning_rate))
    if record_reached_rate is None:
        save_model(model, tmp_path / "m.keras")
    else:
        model.save(tmp_path / "m.keras")  # as the script and its ModelCheckpoint save
    loader = tmp_path / "load.py"
    loader.write_text(LOAD_COMPILED, encoding="utf-8")
    loaded = run_python(loader, str(tmp_path / "m.keras"))
    assert loaded.returncode == 0, loaded.stderr[-2000:]
    kind, rate, steps = loaded.stdout.split()
    assert kind == ("LossScaleOptimizer" if wrapped else "Adam") and int(steps) == 8
    assert (
        float(rate) == pytest.approx(reached, rel=1e-6) and "Skipping variable loading" not in loaded.stderr
    )
    inner = getattr(model.optimizer, "inner_optimizer", model.optimizer)  # it trained with the schedule
    assert type(inner._learning_rate) is type(schedule)
    saved = inner.get_config()["learning_rate"]["class_name"]  # train's: its own again after the save
    assert saved == (type(schedule).__name__ if record_reached_rate is None else "PiecewiseConstantDecay")
