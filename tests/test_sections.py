"""The JSON Schema of the data, training and runtime sections (``cnnspec/spec/sections.py``),
checked directly with jsonschema: closed objects, ``${…}`` wherever a number goes, one-key
settings, and bounds."""

from __future__ import annotations

from typing import Any

import pytest
from jsonschema import Draft202012Validator

from cnnspec.analysis.settings import training_config
from cnnspec.api import compile_text
from cnnspec.errors import SpecError
from cnnspec.spec import sections
from cnnspec.spec.optimizers import OPTIMIZERS
from cnnspec.spec.schema import json_schema
from tests.conftest import TINY_FLAT_HEAD

EXPRESSION = json_schema()["$defs"]["expression"]
SECTIONS = {
    "data": sections.DATA_SCHEMA,
    "training": sections.TRAINING_SCHEMA,
    "runtime": sections.RUNTIME_SCHEMA,
}


def ok(section: str, value: Any) -> bool:
    schema = {"$defs": {"expression": EXPRESSION}, **SECTIONS[section]}
    return Draft202012Validator(schema).is_valid(value)


@pytest.mark.parametrize("section", sorted(SECTIONS))
def test_every_section_schema_is_valid_draft_2020_12(section):
    Draft202012Validator.check_schema(SECTIONS[section])


@pytest.mark.parametrize(
    ("section", "misspelt"),
    [
        ("data", {"validation_splt": 0.1}),
        ("training", {"epoch": 3}),
        ("training", {"optimizer": {"adam": {"learning_rat": 0.1}}}),
        ("training", {"callbacks": [{"early_stopping": {"patiance": 2}}]}),
        ("runtime", {"threads": {"intra": 2}}),
        ("runtime", {"mixed_precission": True}),
    ],
)
def test_a_misspelt_key_is_refused_not_ignored(section, misspelt):
    assert not ok(section, misspelt)


@pytest.mark.parametrize(
    ("section", "value"),
    [
        ("training", {"epochs": "${e * 2}", "batch_size": "${b}"}),
        ("training", {"optimizer": {"sgd": {"learning_rate": "${lr}", "momentum": "${m}"}}}),
        ("data", {"validation_split": "${v}", "rescale": "${1 / 255}", "limit": "${n}"}),
        ("runtime", {"threads": {"intra_op": "${t}"}}),
    ],
)
def test_numbers_may_be_expressions(section, value):
    assert ok(section, value)


@pytest.mark.parametrize(
    ("section", "value", "valid"),
    [
        ("training", {"epochs": 1}, True),
        ("training", {"epochs": 0}, False),
        ("training", {"epochs": "ten"}, False),
        ("training", {"epochs": 2.5}, False),
        ("training", {"seed": 2**32}, False),
        ("data", {"validation_split": 0}, True),
        ("data", {"validation_split": 1}, False),  # nothing would be left to train on
        ("data", {"test_split": 0}, False),
        ("data", {"rescale": "auto"}, True),
        ("data", {"rescale": None}, True),
        ("data", {"rescale": 0.5}, True),
        ("data", {"rescale": "yes"}, False),
        ("training", {"callbacks": [{"reduce_lr_on_plateau": {"factor": 1}}]}, False),
        ("training", {"class_weight": {"0": 2, "cat": 0.5}}, True),
        ("training", {"class_weight": {"0": -1}}, False),
    ],
)
def test_bounds(section, value, valid):
    assert ok(section, value) == valid


@pytest.mark.parametrize(
    ("source", "valid"),
    [
        ("cifar10", True),
        ("imagenet", False),
        ({"npz": "d.npz"}, True),
        ({"npz": ""}, False),
        ({"directory": "images", "image_size": [32, 32], "color_mode": "rgb"}, True),
        ({"directory": "images", "image_size": [32]}, False),
        ({"directory": "images", "color_mode": "cmyk"}, False),
        ({"image_size": [32, 32]}, False),  # no directory
    ],
)
def test_data_sources(source, valid):
    assert ok("data", {"source": source}) == valid


def test_settings_take_exactly_one_name():
    assert ok("training", {"optimizer": "adamw"})
    assert ok("training", {"optimizer": {"adam": {"beta_1": 0.8}}})
    assert not ok("training", {"optimizer": {"adam": {}, "sgd": {}}})
    assert not ok("training", {"optimizer": {}})
    assert not ok("training", {"optimizer": {"sgd": {"beta_1": 0.9}}})  # adam's setting, not sgd's
    assert ok("training", {"loss": {"binary_crossentropy": {"label_smoothing": 0.1}}})
    assert not ok("training", {"loss": {"sparse_categorical_crossentropy": {"label_smoothing": 0.1}}})


def test_learning_rate_schedules():
    def schedule(value: dict) -> bool:
        return ok("training", {"optimizer": {"sgd": {"learning_rate": value}}})

    assert schedule({"cosine_decay": {"warmup_steps": 5}})
    assert schedule({"exponential_decay": {"decay_steps": 10, "decay_rate": 0.9}})
    assert not schedule({"exponential_decay": {"decay_steps": 10}})  # decay_rate is required
    assert schedule({"piecewise_constant": {"boundaries": [100], "values": [0.1, 0.01]}})
    assert not schedule({"piecewise_constant": {"boundaries": [100], "values": [0.1]}})
    assert not schedule({"cosine_decay": {}, "exponential_decay": {}})


def test_distribute_is_a_strategy_or_a_strategy_with_settings():
    assert ok("runtime", {"distribute": "mirrored", "jit_compile": "auto"})
    assert ok("runtime", {"distribute": {"strategy": "multi_worker", "startup_timeout": 60}})
    assert not ok("runtime", {"distribute": {"startup_timeout": 60}})
    assert not ok("runtime", {"distribute": "parameter_server"})


@pytest.mark.parametrize("section", sorted(SECTIONS))
def test_every_setting_says_what_it_does(section):
    """The descriptions are the documentation of each setting and its default."""
    schema = SECTIONS[section]
    assert schema.get("description")
    for name, prop in schema["properties"].items():
        assert prop.get("description") or name in ("optimizer", "loss", "callbacks", "threads"), name


HEAD = TINY_FLAT_HEAD


@pytest.mark.parametrize("name", sections.CALLBACKS)
def test_every_callback_the_schema_names_is_understood_by_training(name):
    try:
        config = training_config(compile_text(HEAD + f"training: {{callbacks: [{name}]}}\n", "t.yaml"))
    except SpecError as exc:  # tensorboard without TensorBoard installed: refused by name
        assert name in str(exc) and "installed" in str(exc)
    else:
        assert [c.name for c in config.callbacks] == [name]


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_every_optimizer_the_schema_names_is_understood_by_training(name):
    config = training_config(compile_text(HEAD + f"training: {{optimizer: {name}}}\n", "t.yaml"))
    assert config.optimizer.name == name
