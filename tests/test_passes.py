"""The front end as a tuple of passes: any prefix runs on its own, and the whole tuple is what
both the Python API and `cnnspec validate` run, so they report the same diagnostics."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cnnspec.analysis.compiled import CompiledSpec
from cnnspec.analysis.passes import (
    PASSES,
    Context,
    Source,
    check_schema,
    check_sections,
    compose,
    lint,
    load,
    resolve,
    run_passes,
)
from cnnspec.api import compile_spec, compile_text
from cnnspec.cli.app import app
from cnnspec.errors import SpecError, UsageError
from cnnspec.spec.loader import SourceDoc
from tests.conftest import FIXTURES, ROOT, SPEC_FILES

EVERY_FIXTURE = [
    *sorted((FIXTURES / "invalid").glob("*.yaml")),
    *sorted(p for p in (FIXTURES / "hostile").glob("*.yaml") if p.name != "expected.yaml"),
    *SPEC_FILES,
]

#: Compiles as far as resolution; its training section is one `cnnspec train` refuses (a binary
#: loss on ten output units), and its augmentation gets a value-range warning (lint).
SPEC = """\
cnnspec: 1
name: tiny
input: {shape: [8, 8, 1]}
augmentation:
  - random_brightness: {factor: 0.1}
model:
  - flatten
  - dense: {units: 10, activation: softmax}
data: {source: digits}
training:
  loss: binary_crossentropy
"""


def api_outcome(path: Path) -> tuple[int, list[dict]]:
    """What the API reports for a spec file: the exit code validate should give, and the
    diagnostics (the errors of a SpecError, or the warnings of a compiled spec) as JSON."""
    try:
        compiled = compile_spec(path)
    except SpecError as exc:
        return 1, [d.to_json() for d in exc.diagnostics]
    except UsageError:
        return 2, []
    return 0, [d.to_json() for d in compiled.warnings]


@pytest.mark.parametrize("path", EVERY_FIXTURE, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_api_and_validate_report_the_same_diagnostics(path, runner, monkeypatch):
    monkeypatch.chdir(ROOT)  # both name files relative to the working directory
    code, diagnostics = api_outcome(path)
    result = runner.invoke(app, ["validate", "--format", "json", str(path)])
    assert result.exit_code == code, result.output
    if code != 2:
        assert json.loads(result.stdout) == diagnostics


def test_the_fixtures_include_section_errors():
    # Without them the comparison above would hold even if validate checked more than the API.
    # It stops at the first fixture that has one: the claim is only that one exists.
    assert any(d["code"] == "training" for path in EVERY_FIXTURE for d in api_outcome(path)[1])


def test_each_prefix_of_the_passes_stops_at_its_stage():
    stages = [Source, SourceDoc, SourceDoc, SourceDoc, CompiledSpec]
    for count, stage in enumerate(stages):
        value = run_passes(Source(text=SPEC, file="tiny.yaml"), Context(), PASSES[:count])
        assert isinstance(value, stage), (count, PASSES[:count])


def test_load_and_compose_give_the_overridden_document():
    context = Context(overrides=("name=renamed", "training.epochs=3"))
    doc = run_passes(Source(text=SPEC, file="tiny.yaml"), context, (load, compose))
    assert doc.data["name"] == "renamed" and doc.data["training"]["epochs"] == 3
    assert doc.loc(("name",)).file == "<--set 1>"


def test_schema_errors_in_the_sections_wait_for_the_resolver():
    text = SPEC.replace("training:\n", "training:\n  epoch: 3\n")
    context = Context()
    doc = run_passes(Source(text=text), context, (load, compose, check_schema))
    assert isinstance(doc, SourceDoc)
    assert [d.path for d in context.diags.errors] == ["training.epoch"]
    with pytest.raises(SpecError) as caught:
        run_passes(doc, context, (resolve,))
    assert [d.path for d in caught.value.errors] == ["training.epoch"]


def test_the_sections_pass_runs_after_resolution():
    compiled = run_passes(Source(text=SPEC), Context(), PASSES[: PASSES.index(check_sections)])
    assert compiled.ir.output_shapes == [(10,)]
    assert [w.code for w in compiled.warnings] == ["value-range"]  # the lint pass ran
    with pytest.raises(SpecError) as caught:
        check_sections(compiled, Context())
    assert [(d.path, d.code) for d in caught.value.errors] == [("training.loss", "training")]


def test_compile_text_runs_every_pass():
    with pytest.raises(SpecError) as caught:
        compile_text(SPEC, "tiny.yaml")
    assert "expected a model with 1 output unit for binary_crossentropy" in caught.value.errors[0].message
    fixed = compile_text(SPEC.replace("binary_crossentropy", "sparse_categorical_crossentropy"))
    assert [w.code for w in fixed.warnings] == ["value-range"]


def test_without_a_training_section_the_model_need_not_be_a_classifier():
    text = "cnnspec: 1\nname: features\ninput: {shape: [8, 8, 1]}\n"
    text += "model: [{conv2d: {filters: 4, kernel_size: 3}}]\n"
    assert compile_text(text).ir.output_shapes == [(6, 6, 4)]
    # with one, the output must fit a task: a shrunken map on the class-only digits reads as a
    # classifier missing its pooling (a per-pixel guess would point to upsampling it)
    with pytest.raises(SpecError, match=r"expected a classification output of shape \[units\]"):
        compile_text(text + "training: {epochs: 1}\n")


def test_a_data_section_without_training_is_checked_as_train_reads_it(runner, tmp_path):
    """`train` trains a spec with data and no training section at the default settings, so
    validate checks its outputs' tasks against the source too: a segmentation model on the
    class-only digits passed validate, and train refused it."""
    spec = tmp_path / "seg.yaml"
    spec.write_text(
        "cnnspec: 1\nname: segd\ninput: {shape: [32, 32, 3]}\nmodel:\n"
        "  - conv2d: {filters: 4, kernel_size: 3, padding: same, activation: softmax}\n"
        "data: {source: digits}\n"
    )
    result = runner.invoke(app, ["validate", str(spec)])
    assert result.exit_code == 1, result.output
    assert (
        f"{spec}:6:16: error: data.source: expected a data source with segmentation targets" in result.output
    )


def test_lint_is_a_pass_of_its_own():
    compiled = run_passes(Source(text=SPEC), Context(), PASSES[: PASSES.index(lint)])
    assert compiled.warnings == []
    assert [w.code for w in lint(compiled, Context()).warnings] == ["value-range"]
