"""Front-end messages that say what is wrong, where it is written: block parameter defaults
checked where declared, no self-contradicting "expected …; received …", names refused where
they are declared rather than where they fail, and folders named as files.

Each case goes through the CLI (exit code, the printed ``file:line:col: error: path: message``)
and the API (the diagnostic's location, path, message and hint)."""

from __future__ import annotations

import pickle

import pytest

from cnnspec.api import compile_spec
from cnnspec.cli.app import app
from cnnspec.errors import SpecError
from cnnspec.spec.expr import ExpressionError, OutOfRange, evaluate
from tests.conftest import FIXTURES

HEAD = "cnnspec: 1\nname: t\ninput: {shape: [8, 8, 1]}\n"


def errors_of(runner, path):
    """The diagnostics of ``path`` (API), after checking that ``cnnspec validate`` prints each
    of them with its location and exits with 1."""
    with pytest.raises(SpecError) as caught:
        compile_spec(path)
    errors = caught.value.errors
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 1, result.output
    for error in errors:
        assert error.loc is not None
        line = f":{error.loc.line}:{error.loc.column}: error: {error.path}: {error.message}"
        assert line in result.stderr, result.stderr
    return errors


def only_error(runner, path):
    (error,) = errors_of(runner, path)
    return error


def where(error):
    return (error.loc.line, error.loc.column, error.path)


# -- 1. block parameter defaults are checked where they are declared --------------------------

DEFAULTS = HEAD + (
    "blocks:\n"
    "  b:\n"
    "    params:\n"
    "      f: int\n"
    '      s: {type: int, default: "two"}\n'
    "      u: {type: bool, default: 3}\n"
    "      l: {type: list, default: 4}\n"
    '      e: {type: int, default: "${in_channels}"}\n'
    "      k: {type: float, default: 2}\n"
    '    layers: [{conv2d: {filters: "${f}", kernel_size: 3, padding: same}}]\n'
)


@pytest.mark.parametrize(
    "model", ["[{b: 4}, flatten, {dense: 2}]", "[flatten, {dense: 2}]"], ids=["called", "unused"]
)
def test_a_default_of_the_wrong_type_is_an_error_where_it_is_declared(runner, write_spec, model):
    errors = errors_of(runner, write_spec(DEFAULTS + f"model: {model}\n"))
    assert [(where(e), e.message, e.code, e.notes) for e in errors] == [
        (
            (8, 31, "blocks.b.params.s.default"),
            "expected int for the default of block parameter `s`; received 'two'",
            "parameter",
            (),
        ),
        (
            (9, 32, "blocks.b.params.u.default"),
            "expected bool for the default of block parameter `u`; received 3",
            "parameter",
            (),
        ),
        (
            (10, 32, "blocks.b.params.l.default"),
            "expected list for the default of block parameter `l`; received 4",
            "parameter",
            (),
        ),
    ]


def test_a_call_that_passes_the_parameter_is_still_checked_as_before(runner, write_spec):
    text = (
        DEFAULTS.replace('"two"', "2")
        .replace("default: 3", "default: true")
        .replace("default: 4", "default: []")
    )
    error = only_error(runner, write_spec(text + "model: [{b: 2.5}, flatten, {dense: 2}]\n"))
    assert error.message == "expected int for block parameter `f`; received 2.5"
    assert where(error) == (14, 13, "model[0].b")


def test_good_defaults_compile(write_spec):
    text = (
        DEFAULTS.replace('"two"', "2")
        .replace("default: 3", "default: true")
        .replace("default: 4", "default: []")
    )
    compiled = compile_spec(write_spec(text + "model: [{b: 4}, flatten, {dense: 2}]\n"))
    assert len(compiled.ir.nodes) == 3


# -- 2. messages that do not contradict themselves ---------------------------------------------

MESSAGES = {
    "empty_shape": (
        "cnnspec: 1\nname: t\ninput: {shape: []}\nmodel: [flatten]\n",
        (3, 16, "input.shape"),
        "expected a non-empty list; received an empty list",
        None,
    ),
    "long_shape": (
        "cnnspec: 1\nname: t\ninput: {shape: [8, 8, 1, 1, 1]}\nmodel: [flatten]\n",
        (3, 16, "input.shape"),
        "expected at most 4 item(s); received 5",
        None,
    ),
    "empty_block_outputs": (
        HEAD + "blocks:\n  b:\n    outputs: []\n    layers: [flatten]\nmodel: [b]\n",
        (6, 14, "blocks.b.outputs"),
        "expected a non-empty list; received an empty list",
        None,
    ),
    "empty_outputs": (
        HEAD + "outputs: []\nmodel: [flatten]\n",
        (4, 10, "outputs"),
        "expected a non-empty list; received an empty list",
        None,
    ),
    "param_unknown_key": (
        HEAD + "blocks:\n  b:\n    params: {k: {type: int, default: 3, extra: 1}}\n"
        "    layers: [flatten]\nmodel: [b]\n",
        (6, 41, "blocks.b.params.k.extra"),
        "unknown key 'extra'",
        "keys: type, default, doc",
    ),
    "param_misspelt_key": (
        HEAD + "blocks:\n  b:\n    params: {k: {type: int, dfault: 3}}\n    layers: [flatten]\nmodel: [b]\n",
        (6, 29, "blocks.b.params.k.dfault"),
        "unknown key 'dfault'",
        "did you mean `default`?",
    ),
    "param_unknown_type": (
        HEAD + "blocks:\n  b:\n    params: {k: integer}\n    layers: [flatten]\nmodel: [b]\n",
        (6, 17, "blocks.b.params.k"),
        "expected one of int, float, number, bool, str, list, any; received string 'integer'",
        "did you mean `int`?",
    ),
    "var_name": (
        HEAD + "vars: {κ: 3}\nmodel: [flatten]\n",
        (4, 8, "vars.κ"),
        "expected an identifier ([A-Za-z_][A-Za-z0-9_]*); received string 'κ'",
        None,
    ),
    "block_name": (
        HEAD + "blocks:\n  bé: {layers: [flatten]}\nmodel: [flatten]\n",
        (5, 3, "blocks.bé"),
        "expected an identifier ([A-Za-z_][A-Za-z0-9_]*); received string 'bé'",
        None,
    ),
    # a name beside true/false: every way to write the setting is said (it said "one of auto"
    # to a quoted "true"), and a quoted boolean is told to lose its quotes
    "quoted_boolean_beside_a_name": (
        HEAD + 'model: [flatten]\nruntime: {jit_compile: "true"}\n',
        (5, 24, "runtime.jit_compile"),
        "expected true or false or one of auto; received string 'true'",
        "remove the quotes: write true, a boolean, not the text 'true'",
    ),
    "other_text_beside_a_name": (
        HEAD + "model: [flatten]\nruntime: {jit_compile: yes_please}\n",
        (5, 24, "runtime.jit_compile"),
        "expected true or false or one of auto; received string 'yes_please'",
        None,
    ),
    # a settings key written in another settings section is pointed at the one that has it
    "key_of_another_section": (
        HEAD + "model: [flatten]\nruntime: {deterministic: true}\n",
        (5, 11, "runtime.deterministic"),
        "unknown key 'deterministic'",
        "`deterministic` is a key of `training`: write it as training.deterministic",
    ),
    "quoted_boolean": (
        HEAD + 'model: [flatten]\ntraining: {deterministic: "True"}\n',
        (5, 27, "training.deterministic"),
        "expected true or false; received string 'True'",
        "remove the quotes: write true, a boolean, not the text 'True'",
    ),
}


@pytest.mark.parametrize("case", MESSAGES)
def test_schema_messages_say_what_is_wrong(runner, write_spec, case):
    text, location, message, hint = MESSAGES[case]
    error = only_error(runner, write_spec(text))
    assert (where(error), error.message, error.hint) == (location, message, hint)


EXPRESSIONS = {
    "-(2**63)": ("expected a result within ±(2**63 - 1); received 2 ** 63 = 9223372036854775808", None),
    "-(2**62) * 2": (
        "expected a result within ±(2**63 - 1); received -4611686018427387904 * 2 = -9223372036854775808",
        None,
    ),
    "2**60 * 2**60": (
        "expected a result within ±(2**63 - 1); "
        "received 1152921504606846976 * 1152921504606846976 = 1.329e+36",
        None,
    ),
    "10 ** -400": (
        "expected an exponent of at least -64; received 10 ** -400",
        "for a tiny number write a literal such as 1e-30 (a float ends near 1e-308)",
    ),
    "min(1)": (
        "expected a list or two or more arguments for min(); received one int",
        "min([a, b, …]) or min(a, b, …)",
    ),
    "max(2.5)": (
        "expected a list or two or more arguments for max(); received one float",
        "max([a, b, …]) or max(a, b, …)",
    ),
    "max()": (
        "expected a list or two or more arguments for max(); received none",
        "max([a, b, …]) or max(a, b, …)",
    ),
    "min([])": (
        "expected a non-empty list for min(); received an empty list",
        "min([a, b, …]) or min(a, b, …)",
    ),
}


@pytest.mark.parametrize("expression", EXPRESSIONS)
def test_expression_messages_say_what_is_wrong(runner, write_spec, expression):
    message, hint = EXPRESSIONS[expression]
    error = only_error(runner, write_spec(HEAD + f'model: [flatten, {{dense: "${{{expression}}}"}}]\n'))
    assert where(error) == (4, 26, "model[1].dense")
    assert (error.message, error.hint) == (f"in '${{{expression}}}': {message}", hint)


def test_the_bound_is_a_64_bit_integers():
    assert evaluate("2**62 + (2**62 - 1)", {}) == 2**63 - 1
    assert evaluate("-(2**62) - (2**62 - 1)", {}) == -(2**63) + 1
    assert evaluate("2 ** -64", {}) == 2**-64
    assert evaluate("min([3, 1]) + max(1, 2)", {}) == 3
    with pytest.raises(OutOfRange) as caught:
        evaluate("2 ** 63", {})
    again = pickle.loads(pickle.dumps(caught.value))  # a search trial's error crosses processes
    assert isinstance(again, ExpressionError) and again.message == caught.value.message


# -- 3. names refused where they are declared --------------------------------------------------

NAMES = {
    "var": (
        HEAD + 'vars: {class: 4}\nmodel: [flatten, {dense: "${class}"}]\n',
        (4, 8, "vars.class"),
        "expected a name that ${…} expressions can read; received 'class', a Python keyword",
        "rename it, e.g. `class_`",
    ),
    "var_read_by_a_var": (
        HEAD + 'vars: {None: 3, w: "${None * 2}"}\nmodel: [flatten, {dense: "${w}"}]\n',
        (4, 8, "vars.None"),
        "expected a name that ${…} expressions can read; received 'None', a Python keyword",
        "rename it, e.g. `None_`",
    ),
    "param": (
        HEAD + 'blocks:\n  b:\n    params: {class: int}\n    layers: [{dense: "${class}"}]\n'
        "model: [flatten, {b: 3}]\n",
        (6, 14, "blocks.b.params.class"),
        "expected a name that ${…} expressions can read; received 'class', a Python keyword",
        "rename the parameter, e.g. `class_`",
    ),
    "unused_param": (
        HEAD + "blocks:\n  b:\n    params: {lambda: {type: int, default: 1}}\n    layers: [flatten]\n"
        "model: [flatten]\n",
        (6, 14, "blocks.b.params.lambda"),
        "expected a name that ${…} expressions can read; received 'lambda', a Python keyword",
        "rename the parameter, e.g. `lambda_`",
    ),
    "loop_variable": (
        HEAD + 'model: [flatten, {repeat: {times: 2, as: if, layers: [{dense: "${if + 1}"}]}}]\n',
        (4, 42, "model[1].repeat.as"),
        "expected a name that ${…} expressions can read; received 'if', a Python keyword",
        "rename it, e.g. `if_`",
    ),
    "block_inputs": (
        HEAD + "blocks:\n  inputs:\n    layers: [flatten]\nmodel: [{inputs: {}}, {dense: 2}]\n",
        (5, 3, "blocks.inputs"),
        "block name 'inputs' is reserved: it is a key of layer items (id, inputs, when, trainable)",
        "rename the block: a layer item `inputs` never calls it",
    ),
    "block_id_bare": (
        HEAD + "blocks:\n  id:\n    layers: [flatten]\nmodel: [id, {dense: 2}]\n",
        (5, 3, "blocks.id"),
        "block name 'id' is reserved: it is a key of layer items (id, inputs, when, trainable)",
        "rename the block: a layer item `id` never calls it",
    ),
    "block_repeat": (
        HEAD + "blocks:\n  repeat:\n    layers: [flatten]\nmodel: [flatten, {dense: 2}]\n",
        (5, 3, "blocks.repeat"),
        "block name 'repeat' is reserved: it names the `repeat` combinator",
        "rename the block: a layer item `repeat` never calls it",
    ),
    "block_layer_kind": (
        HEAD + "blocks:\n  conv2d:\n    layers: [flatten]\nmodel: [flatten, {dense: 2}]\n",
        (5, 3, "blocks.conv2d"),
        "block name 'conv2d' is reserved: it names the layer kind `conv2d`",
        "rename the block: a layer item `conv2d` never calls it",
    ),
}


@pytest.mark.parametrize("case", NAMES)
def test_unusable_names_are_refused_where_declared_once(runner, write_spec, case):
    text, location, message, hint = NAMES[case]
    error = only_error(runner, write_spec(text))  # the use site stays silent: one mistake, one error
    assert (where(error), error.message, error.hint) == (location, message, hint)


def test_soft_keywords_and_function_names_stay_usable(write_spec):
    text = HEAD + (
        "vars: {match: 2, type: 3, min: 1}\n"
        "blocks:\n  b:\n    params: {case: int}\n    layers: [{dense: '${case}'}]\n"
        "model: [flatten, {repeat: {times: 1, as: _, layers: [{b: '${match + type + min(min, 1) + _}'}]}}]\n"
    )
    compiled = compile_spec(write_spec(text))
    assert compiled.ir.nodes[-1].params["units"] == 6


# -- 4. a folder named where a file is expected ------------------------------------------------


@pytest.mark.parametrize(
    ("text", "location", "hint"),
    [
        ("extends: sub.yaml\nname: t\n", (1, 10, "extends"), "name a spec file (.yaml) in it"),
        (
            HEAD + "use: [sub.yaml]\nmodel: [flatten]\n",
            (4, 7, "use[0]"),
            "name a block library file (.yaml) in it",
        ),
    ],
    ids=["extends", "use"],
)
def test_a_directory_is_named_as_one(runner, write_spec, tmp_path, text, location, hint):
    (tmp_path / "sub.yaml").mkdir()
    error = only_error(runner, write_spec(text))
    assert where(error) == location
    assert error.message == f"expected a file; received the directory 'sub.yaml' (looked in {tmp_path})"
    assert error.hint == hint


@pytest.mark.parametrize("what", ["extends", "use"])
def test_a_named_pipe_is_named_as_one_not_as_missing(runner, write_spec, tmp_path, what):
    """`extends: fifo.yaml` (or /dev/zero) said "no such file", of a file that is there."""
    import os

    os.mkfifo(tmp_path / "fifo.yaml")
    text = (
        "extends: fifo.yaml\nname: t\n"
        if what == "extends"
        else HEAD + "use: [fifo.yaml]\nmodel: [flatten]\n"
    )
    error = only_error(runner, write_spec(text))
    assert error.message == (
        f"expected a regular file; received a pipe, socket or device: 'fifo.yaml' (looked in {tmp_path})"
    )


def test_an_automatic_name_the_input_took_names_the_input(runner, write_spec):
    """`input.name: conv2d_1` beside a first conv2d said "layer name 'conv2d_1' is used twice",
    with the hint to give "one of the items" another id: the other use, the input, unnamed."""
    text = "cnnspec: 1\nname: m\ninput: {shape: [5, 5, 3], name: conv2d_1}\nmodel:\n"
    error = only_error(runner, write_spec(text + "  - conv2d: {filters: 2, kernel_size: 1}\n"))
    assert where(error) == (5, 13, "model[0].conv2d")
    assert error.message == (
        "layer name 'conv2d_1' is used twice: by this layer and by the model input (input.name, line 3)"
    )
    assert error.hint == "rename the input (input.name), or give this item an `id`"


# -- a string where a number belongs: the number's message, not the ${…} alternative's --------


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("abc", "expected an integer ≥ 1 and ≤ 100000; received string 'abc'"),
        ('"3"', "expected an integer ≥ 1 and ≤ 100000; received string '3'"),
        ("${x", "expected a ${…} expression; received string '${x'"),
    ],
)
def test_a_string_for_a_number_says_which_number(runner, write_spec, value, message):
    spec = write_spec(HEAD + "model: [flatten, {dense: 2}]\ntraining: {epochs: 3}\n")
    result = runner.invoke(app, ["validate", str(spec), "--set", f"training.epochs={value}"])
    assert result.exit_code == 1
    assert f"error: training.epochs: {message}" in result.stderr
    assert "expected a string" not in result.stderr


@pytest.mark.parametrize(
    ("optimizer", "where", "message"),
    [
        ("{adam: {}, sgd: {}}", (1, 34), "received 2: adam, sgd"),  # at sgd, the key to take out
        ("{}", (1, 23), "received an empty mapping"),
    ],
)
def test_a_choice_of_one_key_names_the_keys_and_points_at_the_second(
    runner, write_spec, optimizer, where, message
):
    """It said "received 2 keys" at the first key, as if that one were the mistake, and
    "received 0 keys" for an empty mapping."""
    spec = write_spec(HEAD + f"model: [flatten, {{dense: 2}}]\ntraining: {{optimizer: {optimizer}}}\n")
    result = runner.invoke(app, ["validate", str(spec)])
    assert result.exit_code == 1
    line, column = where
    line += len(HEAD.splitlines()) + 1
    assert (
        f"spec.yaml:{line}:{column}: error: training.optimizer: expected exactly one of adam,"
        in result.stderr
    )
    assert f"; {message}\n" in result.stderr
    assert ("hint: keep one of adam, sgd" in result.stderr) == ("sgd" in optimizer)


def test_a_key_that_is_no_choice_is_one_error_not_two(runner, write_spec):
    """`loss: {huber: …, mse: …}`: the unknown key says it (mse is no loss with settings), not
    also "received 2 keys"."""
    spec = write_spec(
        HEAD + "model: [flatten, {dense: 2}]\ntraining: {loss: {huber: {delta: 1.0}, mse: {}}}\n"
    )
    result = runner.invoke(app, ["validate", str(spec)])
    assert result.exit_code == 1
    assert "unknown key 'mse'" in result.stderr
    assert "expected exactly one of" not in result.stderr


def test_a_choice_that_allows_other_keys_still_says_several_were_written():
    """Only where the schema refuses any other key does an unknown key's own error stand alone:
    elsewhere no error would have said it, and the document would have passed."""
    from cnnspec.errors import Diagnostics
    from cnnspec.spec.loader import load_text
    from cnnspec.spec.schema import _one_key_error

    doc = load_text("pick: {a: 1, other: 2}\n", "t.yaml")
    for closed, said in ((False, ["expected exactly one of a, b; received 2: a, other"]), (True, [])):
        schema = {"properties": {"a": {}, "b": {}}, "maxProperties": 1}
        if closed:
            schema["additionalProperties"] = False
        diags = Diagnostics()
        _one_key_error(diags, doc, ("pick",), "pick", schema, ["a", "other"])
        assert [error.message for error in diags.errors] == said
        assert all(str(error.loc) == "t.yaml:1:14" for error in diags.errors)


# -- one mistake, one error: what a failed call or repeat would have defined stays silent -----

CELLS = (FIXTURES / "codegen" / "cells.yaml").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("inputs: [stem_a, stem_b]", "inputs: [stem_a, later]", "unknown layer id 'later'"),
        ("next: {p: x, x: new}", "next: {p: x, hh: new}", "`next` names 'hh'"),
        ("times: 2", "times: -1", "expected an integer from 0 to 10,000; received integer -1"),
        ("carry: {p: stem_b, x: c0}", "carry: {p: stem_b, x: nowhere}", "unknown layer id 'nowhere'"),
    ],
)
def test_what_a_failed_call_or_repeat_defines_is_not_reported_again(runner, write_spec, old, new, message):
    """`c0[1]`/`c0.x` of a call that failed, and a repeat's carried names (`x`, `cells.x`) after
    the repeat failed, are consequences: only the mistake itself is reported."""
    assert old in CELLS
    error = only_error(runner, write_spec(CELLS.replace(old, new)))
    assert message in error.message


def test_a_wrong_part_of_a_call_that_worked_is_still_reported(runner, write_spec):
    error = only_error(runner, write_spec(CELLS.replace('"c0[1]"', '"c0[7]"')))
    assert "unknown layer id 'c0[7]'" in error.message


# -- the bound that was broken is the one named --------------------------------------------------


@pytest.mark.parametrize(
    ("data", "where", "message"),
    [
        ("validation_split: 1", "data.validation_split", "expected a number ≥ 0 and < 1; received integer 1"),
        ("test_split: 1", "data.test_split", "expected a number > 0 and < 1; received integer 1"),
        (
            "classes: [3, 5, 3]",
            "data.classes[2]",
            "expected distinct items; received integer 3 at [0] and [2]",
        ),
        (
            "validation_split: 0.1}\ntraining: {freeze: ['']",
            "training.freeze[0]",
            "expected a non-empty string; received an empty string",
        ),
    ],
)
def test_an_upper_bound_or_a_repeat_is_named(runner, write_spec, data, where, message):
    spec = HEAD + "model: [flatten, {dense: 10}]\ndata: {source: digits, " + data + "}\n"
    error = only_error(runner, write_spec(spec))
    assert (error.path, error.message) == (where, message)


@pytest.mark.parametrize("variance", ["-1", "[1, -0.5]"])
def test_a_bound_on_each_number_of_a_list_is_named(runner, write_spec, variance):
    """Not "expected a number …; received integer -1", which contradicts itself: the bound is said."""
    spec = HEAD + f"model: [{{normalization: {{mean: 0, variance: {variance}}}}}, flatten, {{dense: 10}}]\n"
    error = only_error(runner, write_spec(spec + "data: {source: digits}\n"))
    assert error.path == "model[0].normalization.variance"
    assert error.message.startswith("expected a number ≥ 0 or a non-empty list of numbers ≥ 0; received")


# -- data.classes selects class labels: refused before any data is read where the targets are not --

MULTILABEL = HEAD + (
    "model: [{conv2d: {filters: 4, kernel_size: 3}}, global_avg_pool2d,\n"
    "  {dense: {units: 3, activation: sigmoid}}]\n"
    "data:\n  source: SOURCE\n  SELECTION\ntraining: {epochs: 1, batch_size: 4}\n"
)


@pytest.mark.parametrize(
    ("source", "selection", "key", "target"),
    [
        ("{shapes: {images: 20, target: multilabel}}", "classes: [circle, square]", "classes", "multilabel"),
        ("{images: imgs, labels: labels.csv}", "classes: [cat, dog]", "classes", "multilabel"),
        ("{shapes: {images: 20, target: count}}", "per_class: 5", "per_class", "count"),
        ("{shapes: {images: 20, target: mask}}", "classes: [circle]", "classes", "mask"),
    ],
    ids=["shapes-multilabel", "folder-multilabel", "shapes-count-per-class", "shapes-mask"],
)
def test_a_class_selection_for_targets_that_are_not_classes_is_a_located_error(
    runner, write_spec, source, selection, key, target
):
    """Not a pass with a hint to change the output units, nor a script that drops data.classes:
    the error ``cnnspec train`` gave only after loading the data, at the key, from validate on."""
    text = MULTILABEL.replace("SOURCE", source).replace("SELECTION", selection)
    spec = write_spec(text)
    error = only_error(runner, spec)
    assert (error.loc.line, error.path) == (text.splitlines().index(f"  {selection}") + 1, f"data.{key}")
    # the project's form, not "data.classes: data.classes selects classification labels; …"
    received = (
        f"shapes with target {target!r}" if "shapes" in source else f"a source whose targets are {target!r}"
    )
    expected = f"expected a source of class labels to select from; received {received}"
    assert error.message == expected
    assert error.hint.startswith("leave it out, or use a source with class labels")
    result = runner.invoke(app, ["validate", str(spec)])
    assert "warning" not in result.output and "units" not in result.output
    script = runner.invoke(app, ["codegen", "--script", str(spec)])
    assert script.exit_code == 1 and f"data.{key}: {expected}" in " ".join(script.stderr.split())


def test_a_data_section_is_checked_without_a_training_section(runner, write_spec):
    """`cnnspec train` trains such a spec with default settings: validate reads its data too."""
    text = MULTILABEL.replace("SOURCE", "{shapes: {images: 20, target: multilabel}}")
    text = text.replace("SELECTION", "classes: [circle, square]").replace(
        "training: {epochs: 1, batch_size: 4}\n", ""
    )
    result = runner.invoke(app, ["validate", str(write_spec(text))])
    assert result.exit_code == 1 and "data.classes: expected a source of class labels" in result.output
    assert "units" not in result.output


def test_a_class_selection_for_class_targets_still_compiles(write_spec):
    text = MULTILABEL.replace("units: 3, activation: sigmoid", "units: 2, activation: softmax")
    text = text.replace("SOURCE", "{shapes: {images: 20}}").replace("SELECTION", "classes: [circle, square]")
    assert compile_spec(write_spec(text)).ir.nodes


#: Models whose npz targets only the file tells (no data.target): masks, values, one per output.
SEGMENTATION = HEAD + "model:\n  - conv2d: {filters: 3, kernel_size: 3, padding: same, activation: softmax}\n"
REGRESSION = HEAD + "model: [{conv2d: {filters: 2, kernel_size: 3}}, global_avg_pool2d, {dense: 1}]\n"
TWO_OUTPUTS = HEAD + (
    "model:\n  - conv2d: {filters: 3, kernel_size: 1, activation: softmax}\n    id: seg\n"
    "  - global_avg_pool2d:\n    inputs: seg\n  - dense: {units: 3, activation: softmax}\n    id: kind\n"
    "outputs: [seg, kind]\n"
)


@pytest.mark.parametrize(
    ("model", "selection", "target"),
    [
        (SEGMENTATION, "classes: [b, bg]", "'mask'"),
        (SEGMENTATION, "per_class: 5", "'mask'"),
        (REGRESSION + "training: {loss: mse}\n", "per_class: 3", "'regression'"),
        (TWO_OUTPUTS, "classes: [b, bg]", "{'seg': 'mask', 'kind': 'class'}"),
    ],
    ids=["masks-classes", "masks-per-class", "values-per-class", "two-outputs"],
)
def test_the_script_refuses_a_class_selection_for_npz_targets_that_are_not_classes(
    write_spec, tmp_path, model, selection, target
):
    """Only the npz file tells its targets: `cnnspec train` refused data.classes / per_class once
    it read them, the generated script trained on everything without a word. It stops with
    train's message and hint (SystemExit: exit status 1)."""
    import numpy as np

    from cnnspec.analysis.settings import training_config
    from cnnspec.training.data import load_dataset
    from tests.test_listing_edges import script_functions

    x = np.zeros((6, 8, 8, 1), "uint8")
    masks = (np.arange(6 * 64).reshape(6, 8, 8) % 3).astype("uint8")
    arrays = {"x_train": x, "x_test": x, "class_names": np.array(["bg", "a", "b"])}
    if model is TWO_OUTPUTS:
        arrays |= {"y_train_seg": masks, "y_test_seg": masks, "y_train_kind": np.arange(6) % 3}
        arrays["y_test_kind"] = np.arange(6) % 3
    else:
        values = masks if model is SEGMENTATION else np.linspace(0, 1, 6)
        arrays |= {"y_train": values, "y_test": values}
    np.savez(tmp_path / "d.npz", **arrays)
    spec = write_spec(model + f"data: {{source: {{npz: d.npz}}, {selection}}}\n")
    compiled = compile_spec(spec)
    with pytest.raises(SpecError) as refused:
        load_dataset(compiled, training_config(compiled), 0)
    (error,) = refused.value.errors
    key = selection.split(":")[0]
    assert error.path == f"data.{key}" and error.message == (
        f"expected a source of class labels to select from; received a source whose targets are {target}"
    )
    with pytest.raises(SystemExit) as stopped:
        script_functions(spec)["load_data"](str(tmp_path / "d.npz"))
    assert stopped.value.code == f"{error.path}: {error.message}\n{error.hint}"
