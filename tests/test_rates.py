"""Layer-wise learning rates (``learning_rate_scale``): resolved statically against the model's
layers with freeze's patterns (no TensorFlow), applied by wrapping the compiled optimizer's
step (each optimizer kind, weight decay included), recorded in lock.json and the phase line,
and reproduced by the generated script."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from cnnspec.analysis.settings import training_config
from cnnspec.analysis.settings_types import PhaseConfig, rate_scale_text
from cnnspec.errors import SpecError
from tests import test_codegen_parity as files
from tests.test_freezing import BODY, HEAD, LINES, MODEL, STEM, compiled_with, errors_of
from tests.test_script_parity_audit import assert_same_history


def scales(training: str) -> list[dict[str, float]]:
    return [dict(phase.rate_scale) for phase in training_config(compiled_with(training=training)).phases]


def test_patterns_resolve_in_order_a_later_one_overriding_an_earlier_one():
    """Layers without weights are left out, and so are factors of 1 (the rate itself)."""
    (scale,) = scales("training:\n  learning_rate_scale: {'*': 0.1, body.unit_2: 0.5, head: 1}\n")
    assert scale == {**dict.fromkeys(STEM + BODY[:2], 0.1), **dict.fromkeys(BODY[2:], 0.5)}
    assert list(scale) == STEM + BODY  # model order


def test_phases_keep_the_previous_scale_until_they_write_their_own():
    phases = scales(
        """\
training:
  learning_rate_scale: {stem: 0.1}
  phases:
    - {epochs: 1, freeze: [body]}
    - {epochs: 1, learning_rate_scale: {body: 0.2, stem: 0.1}}
    - {epochs: 1}
    - {epochs: 1, learning_rate_scale: {}}
"""
    )
    assert phases[0] == dict.fromkeys(STEM, 0.1)
    assert phases[1] == phases[2] == {**dict.fromkeys(STEM, 0.1), **dict.fromkeys(BODY, 0.2)}
    assert phases[3] == {}


def test_a_factor_that_later_patterns_override_is_judged_by_the_layers_it_still_sets():
    """README's `{"*": 0.1, head: 1}` with the rest frozen in every phase: `*` sets only frozen
    layers (head is overridden), so it changes nothing, which was not said; a pattern every
    layer of which a later one sets is warned too."""
    warnings: list = []
    training_config(
        compiled_with(
            training="training:\n  freeze: [stem, body]\n  learning_rate_scale: {'*': 0.1, head: 1}\n"
        ),
        warnings,
    )
    assert [(w.path, w.code) for w in warnings] == [("training.learning_rate_scale.*", "unused-setting")]
    assert "frozen in every phase" in warnings[0].message
    warnings = []
    training_config(
        compiled_with(training="training:\n  learning_rate_scale: {head: 0.1, 'h*': 2}\n"), warnings
    )
    assert [w.path for w in warnings] == ["training.learning_rate_scale.head"]
    assert "the patterns after it set the factor of every layer it matches" in warnings[0].message


def test_a_factor_on_layers_without_weights_or_under_adafactors_cap_is_warned():
    warnings: list = []
    training_config(
        compiled_with(
            training="training:\n  optimizer: adafactor\n  learning_rate_scale: {'global_*': 2, head: 0.5}\n"
        ),
        warnings,
    )
    assert [(w.path, w.code) for w in warnings] == [
        ("training.learning_rate_scale", "weak-setting"),
        ("training.learning_rate_scale.global_*", "unused-setting"),
    ]
    assert "have no weights to train" in warnings[1].message
    assert "caps each step's rate at 1/√step" in warnings[0].message
    quiet: list = []  # without the relative step, Adafactor's rate is the rate
    training_config(
        compiled_with(
            training="training:\n  optimizer: {adafactor: {relative_step: false}}\n"
            "  learning_rate_scale: {head: 0.5}\n"
        ),
        quiet,
    )
    assert quiet == []


@pytest.mark.parametrize(
    ("child", "expected"),
    [
        ("{stem: 2}", dict.fromkeys(STEM, 2.0)),  # (merged, the parent's '*' came after it: 0.1)
        ("{}", {}),  # "none" (merged, the parent's factors stayed)
    ],
)
def test_a_child_spec_replaces_the_parents_scale_whole(tmp_path, child, expected):
    """A mapping read in order, where {} says none: extends replaces it as it replaces a list."""
    from cnnspec.api import compile_spec

    parent = tmp_path / "parent.yaml"
    parent.write_text(HEAD + MODEL + "training:\n  learning_rate_scale: {stem: 0.5, '*': 0.1}\n", "utf-8")
    path = tmp_path / "child.yaml"
    path.write_text(f"cnnspec: 1\nextends: parent.yaml\ntraining:\n  learning_rate_scale: {child}\n", "utf-8")
    (phase,) = training_config(compile_spec(path)).phases
    assert dict(phase.rate_scale) == expected


def test_a_factor_that_changes_nothing_is_a_located_warning():
    """A pattern whose layers are frozen in every phase its mapping is in force, and a
    training-level mapping that every phase replaces; a layer frozen first and trained later
    under the same mapping is no warning."""
    warnings: list = []
    training_config(
        compiled_with(
            training="""\
training:
  learning_rate_scale: {head: 2}
  phases:
    - {epochs: 1, freeze: [stem, body], learning_rate_scale: {stem: 0.1, body: 0.5}}
    - {epochs: 1, unfreeze: [body]}
"""
        ),
        warnings,
    )
    assert [(w.path, w.code, w.loc.line) for w in warnings] == [
        ("training.learning_rate_scale", "unused-setting", LINES + 2),
        ("training.phases[0].learning_rate_scale.stem", "unused-setting", LINES + 4),
    ]
    assert "frozen in every phase it applies to" in warnings[1].message


def test_a_pattern_that_matches_nothing_is_a_located_error_at_its_key():
    errors = errors_of("training:\n  learning_rate_scale: {stme: 0.1, head: 2}\n")
    (error,) = errors
    assert error.path == "training.learning_rate_scale.stme" and "matches none" in error.message
    assert error.hint == "did you mean `stem`?"
    assert (error.loc.line, error.loc.column) == (LINES + 2, 25)  # the key, not its value


@pytest.mark.parametrize("factor", ["0", "-1", "'fast'", "1e39", "1e-50"])  # (float32: inf, 0)
def test_a_factor_must_be_a_positive_number(factor):
    with pytest.raises(SpecError) as info:
        compiled_with(
            training=f"training:\n  phases:\n    - {{epochs: 1, learning_rate_scale: {{head: {factor}}}}}\n"
        )
    (error,) = info.value.errors
    assert error.path == "training.phases[0].learning_rate_scale.head"


@pytest.mark.parametrize("rate", ["1e39", "1e-50"])
def test_a_learning_rate_a_float32_cannot_hold_is_a_located_error(rate):
    """1e39 is infinite in the optimizer's float32 (the run ended in NaN weights, exit 0), 1e-50
    is 0 there (nothing trained)."""
    (error,) = errors_of(f"training:\n  phases:\n    - {{epochs: 1, learning_rate: {rate}}}\n")
    assert error.path == "training.phases[0].learning_rate" and "a float32 holds" in error.message


def test_an_expression_gives_the_factor():
    (scale,) = scales(
        "vars: {body_rate: 0.25}\ntraining:\n  learning_rate_scale: {head: '${body_rate * 2}'}\n"
    )
    assert scale == {"head": 0.5}


def test_lock_json_and_the_phase_line_record_the_factors_only_where_there_are_some():
    plain = PhaseConfig(3)
    assert "learning_rate_scale" not in plain.describe()  # earlier runs' locks are unchanged
    scaled = PhaseConfig(3, rate_scale=(("a", 0.1), ("b", 0.1), ("head", 2.0)))
    assert scaled.describe()["learning_rate_scale"] == {"a": 0.1, "b": 0.1, "head": 2.0}
    assert rate_scale_text(dict(scaled.rate_scale)) == "layer-wise rates: 2 layer(s) ×0.1, 1 layer(s) ×2"
    assert rate_scale_text({}) == "" and rate_scale_text({"a": "x"}) == ""  # (a damaged lock)
    # a phase's frozen layers take no steps at any rate: the phase line and the report count the
    # layers it trains (they said "2 layer(s) ×0.1" of a phase that froze both)
    assert (
        rate_scale_text(dict(scaled.rate_scale), ("a",)) == "layer-wise rates: 1 layer(s) ×0.1, 1 layer(s) ×2"
    )
    assert rate_scale_text(dict(scaled.rate_scale), ["a", "b", "head"]) == ""
    assert rate_scale_text(dict(scaled.rate_scale), [None, 3]) == rate_scale_text(dict(scaled.rate_scale))


def test_the_script_carries_the_factors_of_each_phase():
    from cnnspec.backends.python_emitter import generate_code

    compiled = compiled_with(
        training="training:\n  phases:\n    - {epochs: 1, freeze: [body]}\n"
        "    - {epochs: 1, learning_rate_scale: {stem: 0.1}}\n"
    )
    code = generate_code(compiled, script=True).text
    assert '"learning_rate_scale": {}' in code
    assert '"learning_rate_scale": {"stem_c": 0.1, "stem_batch_norm_1": 0.1}' in code
    assert 'scale_learning_rates(model, PHASES[phase]["learning_rate_scale"])' in code
    plain = generate_code(compiled_with(training="training:\n  epochs: 1\n"), script=True).text
    assert "scale_learning_rates" not in plain and "_var_key" not in plain


def test_the_checker_admits_the_optimizer_hooks_in_scripts_only():
    from cnnspec.backends.codegen_check import CheckError, check_source

    hooks = (
        "def f(optimizer, weight):\n    return optimizer._var_key(weight), optimizer._apply_weight_decay\n"
    )
    check_source(hooks, script=True)
    with pytest.raises(CheckError):
        check_source(hooks)
    with pytest.raises(CheckError):
        check_source("def f(optimizer):\n    return optimizer._variables\n", script=True)


# -- TensorFlow ----------------------------------------------------------------------------------
def one_step(optimizer: Any, factors: tuple[tuple[str, float], ...], *, mixed: bool = False) -> list[Any]:
    """How one training step moves each weight of a two-layer model (``a`` then ``b``): the
    compiled train step of ``fit`` (traced, the optimizer's wrapped steps inside), run on one
    batch by ``train_on_batch`` without fit's data adapter and callbacks (0.15 s a step less)."""
    import keras

    from cnnspec.training.rates import scale_learning_rates

    keras.utils.set_random_seed(0)
    keras.mixed_precision.set_global_policy("mixed_float16" if mixed else "float32")
    try:
        inputs = keras.Input((3,))
        hidden = keras.layers.Dense(4, name="a")(inputs)
        outputs = keras.layers.Dense(2, name="b", dtype="float32")(hidden)
        model = keras.Model(inputs, outputs)
        model.compile(optimizer=optimizer, loss="mse")
        scale_learning_rates(model, factors)
        before = [weight.numpy().copy() for weight in model.weights]
        model.train_on_batch(np.ones((4, 3)), np.zeros((4, 2)))
        return [weight.numpy() - old for weight, old in zip(model.weights, before, strict=True)]
    finally:
        keras.mixed_precision.set_global_policy("float32")


OPTIMIZERS = {
    "sgd-momentum": lambda k: k.optimizers.SGD(0.1, momentum=0.9),
    "adam": lambda k: k.optimizers.Adam(0.1),
    "adamw-decay": lambda k: k.optimizers.AdamW(0.1, weight_decay=0.5),
    "lion": lambda k: k.optimizers.Lion(0.01, weight_decay=0.3),
    # a's 2-D kernel takes Muon's steps, its bias AdamW's (adam_weight_decay)
    "muon": lambda k: k.optimizers.Muon(0.1, weight_decay=0.2, adam_weight_decay=0.4),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_the_scaled_layer_steps_at_the_factor_and_the_others_as_before(name):
    """One step from the same start: layer a (scaled by 0.25) moves a quarter as far, weight
    decay included; b moves exactly as without the scale."""
    import keras

    plain = one_step(OPTIMIZERS[name](keras), ())
    scaled = one_step(OPTIMIZERS[name](keras), (("a", 0.25),))
    for index in (0, 1):  # a's kernel and bias
        assert np.abs(plain[index]).max() > 1e-4  # (it moved: the check is not vacuous)
        np.testing.assert_allclose(scaled[index], 0.25 * plain[index], rtol=1e-4, atol=1e-7)
    for index in (2, 3):
        np.testing.assert_array_equal(scaled[index], plain[index])


@pytest.mark.slow
def test_mixed_precision_scales_the_optimizer_it_wraps():
    import keras

    plain = one_step(keras.optimizers.SGD(0.1), (), mixed=True)
    scaled = one_step(keras.optimizers.SGD(0.1), (("b", 3.0),), mixed=True)
    np.testing.assert_allclose(scaled[2], 3.0 * plain[2], rtol=1e-3)
    np.testing.assert_array_equal(scaled[0], plain[0])


PARITY = files.SPEC.replace(
    "  epochs: 2\n",
    "  phases:\n"
    "    - {epochs: 1, learning_rate_scale: {conv2d_1: 0.1}}\n"
    "    - {epochs: 1, optimizer: {adamw: {learning_rate: 0.01, weight_decay: 0.5}},"
    " learning_rate_scale: {conv2d_1: 3, dense_1: 0.5}}\n",
)


@pytest.mark.slow
@pytest.mark.full
def test_the_script_trains_with_the_factors_as_cnnspec_train_does(tmp_path):
    """The history of both, to 1e-6, over two phases of other factors (the second with weight
    decay); lock.json records each phase's, and model.keras loads in plain Keras as an AdamW."""
    assert "learning_rate_scale: {conv2d_1: 0.1}" in PARITY and "epochs: 2" not in PARITY
    theirs, ours = files.run_both(tmp_path, PARITY)
    assert_same_history(theirs, ours)
    lock = json.loads((tmp_path / "cnnspec" / "lock.json").read_text(encoding="utf-8"))
    assert [phase.get("learning_rate_scale") for phase in lock["phases"]] == [
        {"conv2d_1": 0.1},
        {"conv2d_1": 3.0, "dense_1": 0.5},
    ]
    saved = json.loads(_model_config(tmp_path / "cnnspec" / "model.keras"))["compile_config"]["optimizer"]
    assert saved["class_name"] == "AdamW" and saved["module"] == "keras.optimizers"


def _model_config(path: Any) -> str:
    import zipfile

    with zipfile.ZipFile(path) as archive:
        return archive.read("config.json").decode("utf-8")


# -- the editor ----------------------------------------------------------------------------------
def lsp_spec() -> str:
    """The LSP tests' spec with layer-wise rates in its two phases: flow style, and block style
    with a quoted hierarchical key (the second phase unfreezes the whole stem: each factor sets a
    layer that trains, so the spec has no warnings)."""
    from tests.test_lsp_patterns import SPEC

    return SPEC.replace(
        '    - {epochs: 1, freeze: ["st_*"]}\n',
        '    - {epochs: 1, freeze: ["st_*"], learning_rate_scale: {head: 2}}\n',
    ).replace(
        "        - stem.conv\n",
        "        - stem.conv\n        - stem\n"
        '      learning_rate_scale:\n        stem: 0.1\n        "stem.conv": 0.5\n',
    )


def test_a_scale_key_goes_to_what_it_names_and_counts_among_its_references(tmp_path):
    pytest.importorskip("pygls", reason="the `lsp` extra is part of `dev`")
    from cnnspec.lsp import navigation
    from tests.test_lsp_patterns import analyzed, at, place, where

    text = lsp_spec()
    assert "learning_rate_scale: {head: 2}" in text and "    stem: 0.1\n" in text
    analysis = analyzed(tmp_path / "spec.yaml", text)
    doc = analysis.doc
    found = navigation.definitions(doc, *at(analysis, text, "stem: 0.1", 1))
    assert [where(t.loc) for t in found] == [place(text, "stem\n  - id")]
    head = at(analysis, text, "head: 2", 1)[0]
    assert sorted(where(loc) for loc in navigation.references(doc, head)) == sorted(
        [place(text, "head\ntraining"), place(text, "head\n  phases"), place(text, "head: 2")]
    )


def test_renaming_an_id_renames_the_scale_keys_that_name_it(tmp_path, monkeypatch):
    pytest.importorskip("pygls", reason="the `lsp` extra is part of `dev`")
    from tests.test_lsp_rename import Workspace

    monkeypatch.chdir(tmp_path)
    space = Workspace(tmp_path, {"s.yaml": lsp_spec()})
    text = space.renamed("s.yaml", "id: stem", 5, "base")["s.yaml"]
    assert "        base: 0.1\n" in text and '"base.conv": 0.5' in text
    # from the key itself too
    space = Workspace(tmp_path, {"s.yaml": lsp_spec()})
    text = space.renamed("s.yaml", "head: 2", 1, "top")["s.yaml"]
    assert "learning_rate_scale: {top: 2}" in text and "id: top" in text


def test_a_scale_key_being_typed_is_completed_with_the_pattern_names():
    """A key of a learning_rate_scale is a pattern: typing one (block or flow style, in a phase
    or in training) offers the names freeze's patterns take, filtered by the prefix; a key the
    block mapping has is not offered again; a value, and another mapping, offer none."""
    pytest.importorskip("pygls", reason="the `lsp` extra is part of `dev`")
    from tests.test_lsp_patterns import complete_at, labels

    text = lsp_spec()
    block = text.replace('        "stem.conv": 0.5\n', '        "stem.conv": 0.5\n        st\n')
    offered = complete_at(block, "        st\n", 10)
    assert "st[1].inner" in labels(offered) and "stem" not in labels(offered)  # (stem: is there)
    assert all(label.startswith("st") for label in labels(offered))
    assert next(s for s in offered if s.label == "st[1].inner").insert == '"st[1].inner"'
    flow = text.replace("learning_rate_scale: {head: 2}", "learning_rate_scale: {head: 2, he}")
    assert labels(complete_at(flow, "he}", 2)) == ["head"]
    assert complete_at(flow.replace("{head: 2, he}", "{head: 2, he: 0.}"), "0.}", 2) == []


@pytest.mark.slow
def test_a_run_of_one_phase_says_its_factors_too(tmp_path, runner):
    """Without training.phases there is no phase line (nor the report's phase caption) to say
    them: the console says them before the epochs, and report.html's optimizer line."""
    from cnnspec.cli.app import app

    spec = tmp_path / "one.yaml"
    spec.write_text(
        HEAD + MODEL + "data: {source: digits, limit: 120}\n"
        "training:\n  epochs: 1\n  batch_size: 40\n  learning_rate_scale: {stem: 0.1}\n",
        "utf-8",
    )
    result = runner.invoke(app, ["train", str(spec), "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    assert "layer-wise rates: 2 layer(s) ×0.1" in result.output
    page = (tmp_path / "run" / "report.html").read_text(encoding="utf-8")
    assert "adam at 0.001; layer-wise rates: 2 layer(s) ×0.1" in page


def test_inspect_shows_the_factors_training_starts_with(runner, tmp_path):
    """An `lr` column of the scaled layers' factors, and each layer's in the JSON; a spec whose
    first phase has none shows neither (TF-free, as inspect is)."""
    from cnnspec.cli.app import app

    spec = tmp_path / "s.yaml"
    spec.write_text(HEAD + MODEL + "training:\n  learning_rate_scale: {stem: 0.1}\n", "utf-8")
    table = " ".join(runner.invoke(app, ["inspect", str(spec)]).output.split())
    assert "┃ lr ┃" in table and "│ ×0.1 │" in table
    result = runner.invoke(app, ["inspect", str(spec), "--format", "json"])
    layers = {row["name"]: row["learning_rate_scale"] for row in json.loads(result.stdout)["layers"]}
    assert layers == {**dict.fromkeys(layers, 1.0), **dict.fromkeys(STEM, 0.1)}
    spec.write_text(HEAD + MODEL + "training:\n  phases:\n    - {epochs: 1}\n"
                    "    - {epochs: 1, learning_rate_scale: {stem: 0.1}}\n", "utf-8")  # fmt: skip
    result = runner.invoke(app, ["inspect", str(spec), "--format", "json"])
    assert all("learning_rate_scale" not in row for row in json.loads(result.stdout)["layers"])
