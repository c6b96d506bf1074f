"""The front end: three defects a second audit found, each a spec accepted or located wrongly.

2. An expression that evaluates to infinity passed validation (``learning_rate: "${1e400}"``)
   while a plain YAML ``1e400`` is refused: a non-finite literal in ``${…}`` is now a located
   expression error worded as the loader's ("expected a finite number").
3. A block parameter, var or loop variable named ``in_channels``/``in_shape`` was silently
   ignored (every layer binds those names to its input): the declaration is now refused where
   it is written.
4. Keys copied through a YAML alias were located at their values: an unknown parameter in an
   aliased mapping pointed at the value, not the key.

TensorFlow-free: every spec is text written here, compiled through the API or the CLI.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cnnspec.analysis.passes import compile_text
from cnnspec.cli.app import app
from cnnspec.errors import Diagnostic, Loc, SpecError
from cnnspec.spec.expr import ExpressionError, evaluate
from cnnspec.spec.loader import load_text

HEAD = "cnnspec: 1\nname: t\ninput: {shape: [8, 8, 3]}\n"
TAIL = "  - flatten\n  - dense: 2\n"


def _errors(text: str) -> list[Diagnostic]:
    """The errors of compiling ``text`` (as ``t.yaml``) through the whole front end."""
    with pytest.raises(SpecError) as caught:
        compile_text(text, "t.yaml")
    return caught.value.errors


def _validate_json(runner: CliRunner, path: Path) -> list[dict[str, object]]:
    """The errors ``cnnspec validate --format json`` reports for ``path`` (it must fail)."""
    result = runner.invoke(app, ["validate", str(path), "--format", "json"])
    assert result.exit_code == 1, result.output
    return [d for d in json.loads(result.output) if d["severity"] == "error"]


# -- 2. non-finite numbers in expressions -------------------------------------------------------
@pytest.mark.parametrize(
    ("expression", "shown"),
    [
        ("${1e400}", "1e400"),
        ("${-1e400}", "1e400"),
        ("${max(1e400, 1)}", "1e400"),
        ("${[1, 1e999][0]}", "1e999"),
        ("${2 * 1.8e308}", "1.8e308"),
    ],
)
def test_an_infinite_literal_in_an_expression_is_one_located_error(expression: str, shown: str) -> None:
    """Before the fix these vars evaluated to ±inf (or ignored it) and the spec validated."""
    errors = _errors(HEAD + f'vars: {{big: "{expression}"}}\nmodel:\n' + TAIL)
    assert len(errors) == 1, errors
    error = errors[0]
    assert error.message == f"expected a finite number; received {shown}"
    assert error.path == "vars.big"
    assert error.loc == Loc("t.yaml", 4, 13)  # the expression as written
    assert error.hint is not None and "finite" in error.hint


@pytest.mark.parametrize(
    "expression",
    ["1e308 * 10 - 1e308 * 10", "float('nan')", "float('inf')", "1e308 * 10 * 0", "1.5e308 + 1.5e308"],
)
def test_no_expression_evaluates_to_a_non_finite_number(expression: str) -> None:
    """Operations that overflow (or would make NaN from an infinity) are refused as well."""
    with pytest.raises(ExpressionError, match="finite"):
        evaluate(expression, {})


def test_an_infinite_learning_rate_expression_is_refused_by_the_cli(
    runner: CliRunner, tmp_path: Path
) -> None:
    """The audit's repro: ``learning_rate: "${1e400}"`` printed ``ok``."""
    spec = tmp_path / "lr_inf.yaml"
    spec.write_text(
        "cnnspec: 1\nname: inf\ninput: {shape: [8, 8, 1]}\nmodel:\n  - flatten\n"
        "  - dense: {units: 10, activation: softmax}\ndata: {source: digits}\ntraining:\n"
        '  epochs: 1\n  optimizer: {adam: {learning_rate: "${1e400}"}}\n',
        encoding="utf-8",
    )
    errors = _validate_json(runner, spec)
    finite = [e for e in errors if "expected a finite number; received 1e400" in str(e["message"])]
    assert finite, errors
    assert (finite[0]["line"], finite[0]["column"]) == (10, 37)
    assert finite[0]["path"] == "training.optimizer.adam.learning_rate"


def test_finite_literals_near_the_limit_still_evaluate() -> None:
    assert evaluate("1.7e308", {}) == 1.7e308
    assert evaluate("1e-400", {}) == 0.0  # underflow to zero is finite, as YAML's 1e-400 is


# -- 3. names every layer binds -----------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "path", "loc", "name"),
    [
        (
            HEAD + "blocks:\n  blk:\n    params: {in_channels: int}\n    layers:\n"
            '      - conv2d: {filters: "${in_channels * 2}", kernel_size: 1}\n'
            "model:\n  - blk: 5\n" + TAIL,
            "blocks.blk.params.in_channels",
            Loc("t.yaml", 6, 14),
            "in_channels",
        ),
        (
            HEAD + "blocks:\n  blk:\n    params:\n      in_shape: {type: list, default: [1]}\n    layers:\n"
            '      - conv2d: {filters: "${in_shape[0]}", kernel_size: 1}\n'
            "model:\n  - blk\n" + TAIL,
            "blocks.blk.params.in_shape",
            Loc("t.yaml", 7, 7),
            "in_shape",
        ),
        (
            HEAD + "vars: {in_channels: 7}\nmodel:\n"
            '  - conv2d: {filters: "${in_channels}", kernel_size: 1}\n' + TAIL,
            "vars.in_channels",
            Loc("t.yaml", 4, 8),
            "in_channels",
        ),
        (
            HEAD + "vars: {in_shape: [1, 2]}\nmodel:\n" + TAIL,
            "vars.in_shape",
            Loc("t.yaml", 4, 8),
            "in_shape",
        ),
        (
            HEAD + "model:\n  - repeat:\n      times: 2\n      as: in_channels\n      layers:\n"
            '        - conv2d: {filters: "${in_channels}", kernel_size: 1}\n' + TAIL,
            "model[0].repeat.as",
            Loc("t.yaml", 7, 11),
            "in_channels",
        ),
        (
            HEAD + "model:\n  - repeat:\n      times: 2\n      as: in_shape\n      layers:\n"
            '        - conv2d: {filters: "${in_channels + 1}", kernel_size: 1}\n' + TAIL,
            "model[0].repeat.as",
            Loc("t.yaml", 7, 11),
            "in_shape",
        ),
    ],
    ids=[
        "param-in_channels",
        "param-in_shape",
        "var-in_channels",
        "var-in_shape",
        "loop-in_channels",
        "loop-in_shape",
    ],
)
def test_declaring_a_name_every_layer_binds_is_one_located_error(
    text: str, path: str, loc: Loc, name: str
) -> None:
    """Before the fix the declaration was silently overridden by the layer's input (a block
    called with ``in_channels: 5`` made 6 filters, not 10) and the spec validated."""
    errors = _errors(text)
    assert len(errors) == 1, errors
    error = errors[0]
    meaning = "input channels" if name == "in_channels" else "input shape"
    assert error.message == (
        f"expected a name other than the built-in `{name}` (the layer's {meaning}); received {name!r}"
    )
    assert error.path == path
    assert error.loc == loc
    assert error.hint is not None and error.hint.startswith("rename")


def test_the_block_parameter_repro_fails_in_the_cli(runner: CliRunner, tmp_path: Path) -> None:
    spec = tmp_path / "r5.yaml"
    spec.write_text(
        HEAD + "blocks:\n  blk:\n    params: {in_channels: int}\n    layers:\n"
        '      - conv2d: {filters: "${in_channels * 2}", kernel_size: 1}\n'
        "model:\n  - blk: 5\n" + TAIL,
        encoding="utf-8",
    )
    errors = _validate_json(runner, spec)
    assert [(e["path"], e["line"], e["column"]) for e in errors] == [("blocks.blk.params.in_channels", 6, 14)]


def test_names_of_the_expression_functions_may_still_be_declared() -> None:
    """A call always calls the function and a bare name reads the var, so a var ``max`` hides
    nothing from an expression (generated code refuses it itself): it is not refused here."""
    compiled = compile_text(
        HEAD + "vars: {max: 4}\nmodel:\n"
        '  - conv2d: {filters: "${max(2, 3)}", kernel_size: 1}\n'
        '  - conv2d: {filters: "${max}", kernel_size: 1}\n' + TAIL,
        "t.yaml",
    )
    filters = [n.params["filters"] for n in compiled.ir.nodes if "filters" in n.params]
    assert filters == [3, 4]


def test_names_that_only_resemble_the_built_ins_are_fine() -> None:
    compiled = compile_text(
        HEAD + "blocks:\n  blk:\n    params: {in_channels_: int}\n    layers:\n"
        '      - conv2d: {filters: "${in_channels_ * 2}", kernel_size: 1}\n'
        "model:\n  - blk: 5\n" + TAIL,
        "t.yaml",
    )
    assert [n.params["filters"] for n in compiled.ir.nodes if "filters" in n.params] == [10]


# -- 4. keys copied through an alias ------------------------------------------------------------
ALIASED = (
    HEAD + "model:\n"
    "  - conv2d: &C {filters: 2, kernel_size: 3, paddin: same}\n"  # line 5
    "  - conv2d: *C\n" + TAIL  # line 6
)


def test_keys_copied_through_an_alias_keep_their_key_locations() -> None:
    doc = load_text(ALIASED, "t.yaml")
    anchored, aliased = ("model", 0, "conv2d", "paddin"), ("model", 1, "conv2d", "paddin")
    assert doc.key_loc(anchored) == Loc("t.yaml", 5, 45)
    assert doc.key_loc(aliased) == Loc("t.yaml", 5, 45)  # was 5:53, the value `same`
    assert doc.loc(aliased) == Loc("t.yaml", 5, 53)
    # the alias's own key is where the alias is used, not the anchor's key
    assert doc.key_loc(("model", 1, "conv2d")) == Loc("t.yaml", 6, 5)


def test_an_unknown_parameter_through_an_alias_points_at_the_key(runner: CliRunner, tmp_path: Path) -> None:
    spec = tmp_path / "alias.yaml"
    spec.write_text(ALIASED, encoding="utf-8")
    errors = _validate_json(runner, spec)
    located = sorted((e["path"], e["line"], e["column"]) for e in errors)
    # one mistake, said once at the anchored text, with the path that reads it again (it was
    # two identical errors at 5:45)
    assert located == [("model[0].conv2d.paddin", 5, 45)]
    assert errors[0]["notes"] == ["also read as model[1].conv2d.paddin (through a YAML alias of this text)"]


def test_nested_aliases_copy_key_locations_too() -> None:
    """An alias inside an anchored node is expanded first; copying the outer anchor carries
    the key locations the inner copy made."""
    doc = load_text("a: &a {k: 1}\nb: &b {x: *a}\nc: *b\n", "t.yaml")
    assert doc.key_loc(("c", "x", "k")) == Loc("t.yaml", 1, 8)
    assert doc.key_loc(("c", "x")) == Loc("t.yaml", 2, 8)
    assert doc.key_loc(("c",)) == Loc("t.yaml", 3, 1)
