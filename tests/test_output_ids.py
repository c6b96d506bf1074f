"""The ids ``training.outputs.ID`` and ``data.source.shapes.target.ID`` name a model output by
(cnnspec/analysis/output_ids.py): each entry of ``outputs:`` as written (a block call's id for
its output, ``call.output`` for one of its named outputs), or the output's own name (the name
metrics.json and an npz file's arrays use)."""

from __future__ import annotations

import pytest

from cnnspec.analysis.settings import training_config
from cnnspec.api import compile_spec
from cnnspec.cli.app import app
from cnnspec.errors import SpecError

HEAD = """\
cnnspec: 1
name: t12
input: {shape: [16, 16, 3]}
blocks:
  twohead:
    outputs: [b, a]
    layers:
      - global_avg_pool2d
      - dense: 1
        id: a
      - dense: 1
        id: b
model:
  - conv2d: {filters: 4, kernel_size: 3, padding: same, activation: relu}
    id: stem
  - twohead:
    id: th
  - global_avg_pool2d:
    inputs: stem
  - dense: {units: 3, activation: softmax}
    id: cls_p
outputs: [th, cls_p, th.a]
"""
TARGETS = "data:\n  source: {shapes: {images: 40, target: {TARGETS}}}\n"
TRAINING = "training:\n  epochs: 1\n  outputs:\n    th: {task: regression}\n" + (
    "    th.a: {task: regression, loss: mae}\n"
)


def spec(targets: str = "th: count, cls_p: class, th.a: area", training: str = TRAINING) -> str:
    return HEAD + TARGETS.replace("TARGETS", targets) + training


def test_the_ids_outputs_lists_name_the_outputs_they_resolve_to(write_spec):
    compiled = compile_spec(write_spec(spec()))
    config = training_config(compiled)
    assert compiled.ir.outputs == ("th_b", "cls_p", "th_a")  # `th`: the block's first output, b
    assert [(t.name, t.task, t.loss.name) for t in config.tasks] == [
        ("th_b", "regression", "mse"),
        ("cls_p", "classification", "sparse_categorical_crossentropy"),
        ("th_a", "regression", "mae"),
    ]
    # the data's targets by the outputs' names, as the arrays and metrics.json name them
    assert config.data.target == {"th_b": "count", "cls_p": "class", "th_a": "area"}


def test_the_outputs_own_names_are_still_taken(write_spec):
    training = "training:\n  outputs:\n    th_b: {task: regression}\n    th_a: {task: regression}\n"
    compiled = compile_spec(write_spec(spec("th_b: count, cls_p: class, th_a: area", training)))
    config = training_config(compiled)
    assert [t.task for t in config.tasks] == ["regression", "classification", "regression"]
    assert config.data.target == {"th_b": "count", "cls_p": "class", "th_a": "area"}


def test_a_wrong_key_is_told_the_ids_as_outputs_lists_them(runner, write_spec):
    path = write_spec(spec(training="training:\n  outputs:\n    thx: {task: regression}\n"))
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 1
    assert (
        "spec.yaml:27:5: error: training.outputs.thx: expected the name of a model output; received 'thx'"
        in (result.output)
    )
    assert "hint: did you mean `th`?" in result.output
    path = write_spec(spec("th: count, cls_p: class, nope: area"))
    with pytest.raises(SpecError) as refused:
        training_config(compile_spec(path))
    error = refused.value.errors[0]
    assert (error.message, error.path) == (
        "expected a model output; received 'nope'",
        "data.source.shapes.target.nope",
    )
    assert error.hint == "the outputs are th, cls_p, th.a"


def test_one_output_named_twice_is_refused(runner, write_spec):
    training = TRAINING + "    th_b: {loss_weight: 2}\n"
    result = runner.invoke(app, ["validate", str(write_spec(spec(training=training)))])
    assert result.exit_code == 1
    assert (
        "training.outputs.th_b: expected each output once; 'th_b' names the output 'th' names already"
        in result.output
    )
    assert "hint: merge its settings into training.outputs.th" in result.output
    path = write_spec(spec("th: count, cls_p: class, th.a: area, th_b: count"))
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 1
    assert (
        "data.source.shapes.target.th_b: expected one target per output; 'th_b' names the output 'th' "
        "names already" in result.output
    )


def test_a_missing_target_is_named_by_its_id(write_spec):
    with pytest.raises(SpecError) as refused:
        training_config(compile_spec(write_spec(spec("th: count, cls_p: class"))))
    assert refused.value.errors[0].message == "expected a target for every output; missing th.a"


def test_an_inferred_task_is_set_by_the_id_outputs_lists(runner, write_spec):
    training = "training:\n  outputs:\n    th: {task: regression}\n"
    result = runner.invoke(app, ["validate", str(write_spec(spec(training=training)))])
    assert result.exit_code == 1
    assert (
        "error: data.source.shapes.target.th.a: expected a class target for the classification output th_a"
        in (result.output)
    )
    assert (
        "hint: set training.outputs.th.a.task: regression, or target: class for this output" in result.output
    )
