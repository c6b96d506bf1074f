"""The published JSON Schema (what editors check a file against) takes what ``validate`` takes:
a file that ``extends`` another is an overlay (any setting its base sets may be left out),
strings with ``${…}`` formatted into them are strings, and a combinator's ``activation`` is an
activation or null. A file without ``extends`` is still held to every required key. No
TensorFlow."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import pytest
import yaml

from cnnspec.api import compile_spec, compile_text
from cnnspec.errors import SpecError
from cnnspec.spec.schema import json_schema

BASE = """\
cnnspec: 1
name: base
input: {shape: [8, 8, 1]}
blocks:
  head:
    params: {n: {type: int, default: 10}}
    layers:
      - dense: {units: "${n}", activation: softmax}
model:
  - conv2d: {filters: 4, kernel_size: 3}
  - flatten
  - head
data: {source: digits}
training:
  optimizer:
    sgd: {learning_rate: {exponential_decay: {initial_learning_rate: 0.1, decay_steps: 100, decay_rate: 0.9}}}
search:
  trials: 3
  space:
    training.batch_size: {choice: [16, 32]}
"""

#: What a file that extends BASE adds, each a part of a section whose other settings BASE has.
OVERLAYS = {
    "input-name": "input: {name: image}\n",
    "search-trials": "search: {trials: 5}\n",
    "schedule-rate": (
        "training: {optimizer: {sgd: {learning_rate: {exponential_decay: {decay_rate: 0.5}}}}}\n"
    ),
    "block-description": "blocks: {head: {description: the classifier head}}\n",
}


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(json_schema())


def problems(validator: jsonschema.Draft202012Validator, text: str) -> list[str]:
    return [error.message for error in validator.iter_errors(yaml.safe_load(text))]


@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_a_file_extending_a_base_may_leave_out_what_the_base_sets(tmp_path: Path, validator, overlay):
    (tmp_path / "base.yaml").write_text(BASE)
    child = f"cnnspec: 1\nname: child\nextends: base.yaml\n{OVERLAYS[overlay]}"
    (tmp_path / "child.yaml").write_text(child)
    compile_spec(tmp_path / "child.yaml")  # (an error raises)
    assert problems(validator, child) == []
    # without `extends` the same section is a whole spec's, and refused where it lacks a key
    alone = f"cnnspec: 1\nname: alone\ninput: {{shape: [8, 8, 1]}}\nmodel: [flatten]\n{OVERLAYS[overlay]}"
    if overlay != "input-name":
        assert problems(validator, alone)
    assert problems(validator, "cnnspec: 1\nname: alone\ninput: {name: image}\nmodel: [flatten]\n")


def test_a_file_extending_a_base_may_leave_out_cnnspec_and_name(tmp_path: Path, validator):
    (tmp_path / "base.yaml").write_text(BASE)
    child = "extends: base.yaml\ntraining: {epochs: 2}\n"
    (tmp_path / "child.yaml").write_text(child)
    compile_spec(tmp_path / "child.yaml")  # (an error raises)
    assert problems(validator, child) == []
    assert len(problems(validator, "training: {epochs: 2}\n")) == 4  # cnnspec, name, input, model


LAYERS = """\
cnnspec: 1
name: emb
input: {shape: [16, 16, 3]}
vars: {act: relu, mode: horizontal, six: true, tag: x}
augmentation:
  - random_flip: "${mode}_and_vertical"
model:
  - conv2d: {filters: 4, kernel_size: 3, activation: "${act}6"}
  - conv2d: {filters: 4, kernel_size: 3, activation: "${act}${'6' if six else ''}"}
  - conv2d: {filters: 4, kernel_size: 3, kernel_initializer: "he_${'normal'}"}
  - conv2d: {filters: 4, kernel_size: 3, padding: "${'same' if tag == '}' else 'valid'}"}
  - residual:
      body: [conv2d: {filters: 4, kernel_size: 3, padding: same}]
      activation: null
  - parallel:
      branches: [[conv2d: {filters: 4, kernel_size: 1}], [identity]]
      activation: "${act}"
  - flatten
  - dense: {units: 10, activation: softmax}
"""


def test_strings_with_expressions_formatted_in_and_a_null_activation_are_valid(validator):
    assert compile_spec_text_ok(LAYERS)
    assert problems(validator, LAYERS) == []


@pytest.mark.parametrize(
    "item",
    [
        'conv2d: {filters: "x${w}", kernel_size: 3}',  # a number's value is a whole `${…}`
        'conv2d: {filters: "${w}x${w}", kernel_size: 3}',  # (two expressions: a string)
        "residual: {body: [flatten], activation: bogus}",
        "conv2d: {filters: 4, kernel_size: 3, activation: bogus}",
    ],
)
def test_what_validate_refuses_stays_refused(validator, item):
    text = f"cnnspec: 1\nname: bad\ninput: {{shape: [8, 8, 3]}}\nvars: {{w: 4}}\nmodel:\n  - {item}\n"
    assert not compile_spec_text_ok(text)
    assert problems(validator, text)


def compile_spec_text_ok(text: str) -> bool:
    """Whether ``validate`` takes the spec ``text`` (its errors raise)."""
    try:
        compile_text(text)
    except SpecError:
        return False
    return True
