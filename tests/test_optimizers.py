"""The optimizers (:data:`cnnspec.spec.optimizers.OPTIMIZER_KINDS`): one table gives the JSON
Schema, `cnnspec train`'s optimizer and the generated script's. For every kind, with every
setting it takes written, both build the same Keras optimizer (the same get_config); two ways
of clipping gradients are one located error before any training."""

from __future__ import annotations

import ast
from typing import Any

import pytest

from cnnspec.analysis.passes import compile_text
from cnnspec.analysis.settings import training_config
from cnnspec.backends.codegen_script import optimizer_node
from cnnspec.errors import SpecError
from cnnspec.spec.optimizers import CLIPPING, COMMON_SETTINGS, OPTIMIZER_KINDS, OPTIMIZER_SCHEMA

HEAD = "cnnspec: 1\nname: t\ninput: {shape: [4]}\nmodel:\n  - dense: {units: 2, activation: softmax}\n"


def sample(schema: dict[str, Any]) -> Any:
    """A value the setting's schema takes, other than Keras' usual default."""
    if schema.get("type") == "boolean":
        return True
    if schema.get("type") == "array":  # Muon's exclude_layers: patterns over the weights' paths
        return ["dense"]
    number = schema["anyOf"][0]
    if number["type"] == "integer":
        return number.get("minimum", 0) + 2
    if number.get("maximum", number.get("exclusiveMaximum")) == 0:  # a decay's power
        return -0.6
    return 0.85 if number.get("maximum") == 1 else 0.05


def every_setting(name: str) -> str:
    """The spec text of optimizer ``name`` with each of its own settings, a weight decay and a
    global clipping norm written."""
    settings = {key: sample(schema) for key, schema in OPTIMIZER_KINDS[name].settings.items()}
    settings |= {"learning_rate": 0.002, "weight_decay": 0.01, "global_clipnorm": 1.5}
    written = ", ".join(f"{key}: {str(value).lower()}" for key, value in settings.items())
    return HEAD + f"training: {{optimizer: {{{name}: {{{written}}}}}}}\n"


def test_the_schema_and_the_table_agree():
    names = OPTIMIZER_SCHEMA["anyOf"][0]["enum"]
    assert names == list(OPTIMIZER_KINDS)
    assert {"lion", "nadam", "adamax", "adagrad", "lamb", "muon", "adafactor", "ftrl"} <= set(names)
    mapping = OPTIMIZER_SCHEMA["anyOf"][1]["properties"]
    for name, kind in OPTIMIZER_KINDS.items():
        assert set(mapping[name]["properties"]) == set(COMMON_SETTINGS) | set(kind.settings), name


@pytest.mark.parametrize("name", OPTIMIZER_KINDS)
def test_every_setting_is_written_into_the_script(name):
    compiled = compile_text(every_setting(name), "t.yaml")
    code = ast.unparse(optimizer_node(training_config(compiled))[0])
    assert code.startswith(f"keras.optimizers.{OPTIMIZER_KINDS[name].keras_class}(learning_rate=0.002")
    for key in (*OPTIMIZER_KINDS[name].settings, "weight_decay", "global_clipnorm"):
        assert f"{key}=" in code, (name, key, code)


def test_muons_excluded_layers_are_regular_expressions_that_match_a_layer():
    """Keras searches each weight's path (LAYER/kernel) with them; a pattern that is no regular
    expression, or that matches no layer (a typo would leave the layer to Muon's steps without
    a word), is a located error with the nearest name."""

    def errors(patterns: str) -> list[Any]:
        text = HEAD + f"training:\n  optimizer: {{muon: {{exclude_layers: {patterns}}}}}\n"
        with pytest.raises(SpecError) as raised:
            compile_text(text, "t.yaml")
        return raised.value.diagnostics

    (bad,) = errors('["dense", "dens(e"]')
    assert bad.path == "training.optimizer.muon.exclude_layers[1]"
    assert (bad.loc.line, bad.loc.column) == (7, 48)
    assert "expected a regular expression; 'dens(e' is not one (missing )" in bad.message
    (typo,) = errors("[dens_1]")
    assert "'dens_1' matches none of its 1 layers' weights (searched in LAYER/kernel)" in typo.message
    assert typo.hint == "did you mean `dense_1`?"
    config = training_config(
        compile_text(HEAD + "training: {optimizer: {muon: {exclude_layers: ['_1/', '^dense']}}}\n", "t.yaml")
    )
    assert config.optimizer.settings["exclude_layers"] == ["_1/", "^dense"]  # (as Keras searches)


def test_two_ways_of_clipping_are_one_located_error():
    text = HEAD + "training:\n  optimizer: {lion: {clipnorm: 1.0, clipvalue: 0.5}}\n"
    with pytest.raises(SpecError) as raised:
        compile_text(text, "t.yaml")
    (error,) = raised.value.diagnostics
    assert error.path == "training.optimizer.lion.clipvalue" and (error.loc.line, error.loc.column) == (7, 48)
    assert f"expected at most one of {', '.join(CLIPPING)}; received clipnorm and clipvalue" in error.message


@pytest.mark.slow
@pytest.mark.parametrize("name", OPTIMIZER_KINDS)
def test_train_and_the_script_build_the_same_optimizer(name):
    import keras

    from cnnspec.training.builders import optimizer

    config = training_config(compile_text(every_setting(name), "t.yaml"))
    ours = optimizer(config, 100)
    node = optimizer_node(config)[0]
    theirs = eval(ast.unparse(node), {"keras": keras})  # the script's expression, as it runs it
    assert type(ours).__name__ == OPTIMIZER_KINDS[name].keras_class
    mine, reference = ours.get_config(), theirs.get_config()
    mine.pop("name"), reference.pop("name")  # (Keras numbers a second optimizer's: adam_1)
    assert mine == reference
    assert mine["global_clipnorm"] == 1.5 and mine["weight_decay"] == 0.01
    for key, schema in OPTIMIZER_KINDS[name].settings.items():
        expected = sample(schema)
        assert mine[key] == (expected if isinstance(expected, list) else pytest.approx(expected)), key


@pytest.mark.slow
def test_the_documented_weight_decay_defaults_are_keras():
    """The docs said "default none; adamw: Keras' 0.004", and Keras' Muon decays by 0.004 too:
    each optimizer the description names decays by Keras' default, every other by none."""
    import inspect
    import re

    import keras

    described = COMMON_SETTINGS["weight_decay"]["description"]
    found = re.search(r"; ([a-z, ]+?): Keras' 0\.004", described)
    assert found is not None, described
    named = {name.strip() for name in found.group(1).replace(" and ", ",").split(",")}
    for name, kind in OPTIMIZER_KINDS.items():
        signature = inspect.signature(getattr(keras.optimizers, kind.keras_class))
        default = signature.parameters["weight_decay"].default
        assert default == (0.004 if name in named else None), name
