"""Hostile specs for the code emitter: every case is either refused with a located error or
emitted so that each string round-trips exactly and nothing but the templates' code runs."""

from __future__ import annotations

import ast
import json

import pytest

from cnnspec.api import compile_spec
from cnnspec.backends.codegen_check import check_source, verify_model
from cnnspec.backends.python_emitter import generate_code
from cnnspec.cli.app import app
from cnnspec.errors import SpecError

HEAD = "cnnspec: 1\n"
INPUT = "input: {shape: [8, 8, 1]}\n"

# Strings that have broken code generators: quotes of every kind, triple quotes, backslashes
# (also before a quote and at the end), newlines, NUL, line/paragraph separators, bidi controls,
# a look-alike ligature, format braces, and things that look like code.
NASTY = [
    "it's",
    'say "hi"',
    '"""',
    "'''",
    "a\"\"\"b'''c",
    "back\\slash",
    "ends with backslash\\",
    '\\"',
    "line\nbreak",
    "carriage\rreturn",
    "nul\x00byte",
    "sep\u2028arator",
    "para\u2029graph",
    "bidi\u202eevil\u202c",
    "ﬁlter",
    "{x} {{y}} %s",
    '"); import os; os.system("echo pwned"); ("',
    "\\n is not a newline",
    "tab\there",
]


def yaml_string(text: str) -> str:
    """A YAML double-quoted scalar for ``text`` (JSON strings are valid YAML)."""
    return json.dumps(text)


def emit(write_spec, text: str, *, script: bool = False):
    """Compile and generate; returns (tree, source) after the emitter's own checks."""
    compiled = compile_spec(write_spec(text))
    generated = generate_code(compiled, script=script, source_name="spec.yaml")
    tree = check_source(generated.text, script=script)
    verify_model(tree, compiled.ir)
    return tree, generated.text, compiled


def string_constants(tree: ast.AST) -> list[str]:
    return [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)]


def calls(tree: ast.AST) -> set[str]:
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            while isinstance(func, ast.Call):
                func = func.func
            out.add(ast.unparse(func))
    return out


BASELINE_CALLS = None


def baseline_calls(write_spec) -> set[str]:
    tree, _, _ = emit(write_spec, HEAD + "name: plain\n" + INPUT + "model:\n  - flatten\n")
    return calls(tree)


@pytest.mark.parametrize("text", NASTY, ids=range(len(NASTY)))
def test_descriptions_stay_documentation(write_spec, text):
    tree, source, _ = emit(
        write_spec, HEAD + "name: m\ndescription: " + yaml_string(text) + "\n" + INPUT + "model: [flatten]\n"
    )
    doc = ast.get_docstring(tree, clean=False)
    assert doc is not None
    # whitespace (newlines, U+2028, …) is re-wrapped; every other character round-trips
    assert " ".join(text.split()) in " ".join(doc.split())
    assert calls(tree) == baseline_calls(write_spec)
    assert all(line.isprintable() for line in source.splitlines())


@pytest.mark.parametrize("text", NASTY, ids=range(len(NASTY)))
def test_string_values_round_trip_exactly(write_spec, text):
    spec = (
        HEAD
        + "name: m\n"
        + INPUT
        + "vars: {label: "
        + yaml_string(text)
        + "}\n"
        + "blocks:\n  b:\n    params:\n      note: {type: str, default: "
        + yaml_string(text)
        + "}\n    layers: [flatten]\n"
        + "model: [b]\n"
    )
    tree, source, _ = emit(write_spec, spec)
    constants = {
        node.targets[0].id: ast.literal_eval(node.value) for node in tree.body if isinstance(node, ast.Assign)
    }
    assert constants["LABEL"] == text
    block = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "b")
    defaults = [ast.literal_eval(d) for d in block.args.kw_defaults if d is not None]
    assert text in defaults
    assert calls(tree) == baseline_calls(write_spec) | {"b"}
    assert all(line.isprintable() for line in source.splitlines())


@pytest.mark.parametrize(
    "dead", ["\\", "it's\"", "nul\x00", "a\u2028b"], ids=["backslash", "quotes", "nul", "separator"]
)
def test_embedded_expressions_with_escaped_strings_are_valid_python_311(write_spec, tmp_path, dead):
    """A string in an embedded ``${…}`` that needs an escape (or both quote kinds) cannot sit in
    an f-string's expression on Python 3.11 (an internal error before): the text is written as a
    concatenation, which the static check proves gives the resolver's activation per call."""
    from tests.test_codegen import ruff_check

    spec = (
        HEAD
        + "name: m\n"
        + INPUT
        + "blocks:\n  b:\n    params: {x: int}\n    layers:\n"
        + "      - conv2d: {filters: 2, kernel_size: 1, activation: "
        + yaml_string("${" + json.dumps(dead) + ' if x > 100 else "re"}lu')
        + "}\n"
        + "model:\n  - b: {x: 1}\n  - b: {x: 2}\n  - flatten\n"
    )
    _, source, compiled = emit(write_spec, spec)
    assert "activation=(str(" in source and ' + "lu")' in source
    assert ruff_check(source, tmp_path) == ""
    # emit()'s verify_model ran the code statically: both calls make activation "relu"
    with pytest.raises(Exception, match="activation"):
        verify_model(check_source(source.replace(' + "lu")', ' + "lu6")')), compiled.ir)


def test_names_with_a_trailing_newline_are_refused_before_codegen(write_spec):
    # `$` in the schema's identifier pattern matches before a final newline; the resolver checks
    # identifiers in full, so such names never reach the emitter
    for text in (
        'name: "m\\n"\n' + INPUT + "model:\n  - flatten\n",
        "name: m\n" + INPUT + 'model:\n  - flatten:\n    id: "c\\n"\n',
    ):
        with pytest.raises(SpecError, match="expected an identifier"):
            compile_spec(write_spec(HEAD + text))


@pytest.mark.parametrize(
    "name",
    ["class", "match", "case", "print", "type", "build_model", "layers", "keras", "projection_strides"],
)
def test_block_names_that_cannot_be_functions_are_refused_with_a_location(write_spec, name):
    path = write_spec(
        HEAD + "name: m\n" + INPUT + f"blocks:\n  {name}:\n    layers: [flatten]\nmodel:\n  - {name}\n"
    )
    compiled = compile_spec(path)  # a valid spec for `cnnspec build`
    with pytest.raises(SpecError) as caught:
        generate_code(compiled)
    error = caught.value.errors[0]
    assert error.loc is not None and error.loc.line == 5 and error.path == f"blocks.{name}"
    assert error.hint and "rename" in error.hint


def test_script_only_names_are_refused_for_scripts(write_spec):
    path = write_spec(
        HEAD + "name: m\n" + INPUT + "blocks:\n  main:\n    layers: [flatten, dense: 2]\nmodel: [main]\n"
    )
    generate_code(compile_spec(path))  # fine for a model module
    with pytest.raises(SpecError) as caught:
        generate_code(compile_spec(path), script=True)
    assert caught.value.errors[0].path == "blocks.main"


@pytest.mark.parametrize("name", ["class", "lambda"])
def test_block_parameter_names_are_checked(write_spec, name):
    # (a keyword is refused where the parameter is declared: no ${…} could read it)
    path = write_spec(
        HEAD + "name: m\n" + INPUT + f"blocks:\n  b:\n    params: {{{name}: int}}\n    layers: [flatten]\n"
        f"model:\n  - b: {{{name}: 1}}\n"
    )
    with pytest.raises(SpecError) as caught:
        generate_code(compile_spec(path))
    error = caught.value.errors[0]
    assert error.loc is not None and error.path == f"blocks.b.params.{name}"


# Parameters named like builtins or soft keywords, which `validate` and `build` accept, were
# refused by codegen ("expected a name that does not hide a Python builtin"); they are renamed.
BUILTIN_PARAMS = (
    "blocks:\n  unit:\n    params:\n      filter: int\n      type: {type: str, default: relu}\n"
    "      max: {type: int, default: 2}\n      id: {type: int, default: 1}\n"
    '      input: {type: int, default: "${max + 1}"}\n      match: {type: list, default: [1, 2]}\n'
    "      _: {type: int, default: 0}\n"
    "    layers:\n"
    '      - conv2d: {filters: "${max(filter, 3) + id + input + match[0] + _}", kernel_size: 1,'
    ' activation: "${type}"}\n'
    '      - max_pool2d: {pool_size: "${max}"}\n'
    "model:\n  - unit: {filter: 4}\n  - unit: {filter: 6, type: tanh, max: 1, match: [2], _: 1}\n"
    "  - flatten\n"
)


@pytest.mark.parametrize("script", [False, True], ids=["module", "script"])
def test_parameters_named_like_builtins_are_renamed(runner, write_spec, tmp_path, script):
    spec = write_spec(HEAD + "name: m\n" + INPUT.replace("1]", "3]") + BUILTIN_PARAMS)
    assert runner.invoke(app, ["validate", str(spec)]).exit_code == 0
    target = tmp_path / "model.py"
    result = runner.invoke(app, ["codegen", str(spec), "-o", str(target), *(["--script"] if script else [])])
    assert result.exit_code == 0, result.output
    source = target.read_text(encoding="utf-8")
    verify_model(check_source(source, script=script), compile_spec(spec).ir)
    assert (
        'def unit(\n    x,\n    *,\n    filter_: int,\n    type_: str = "relu",\n    max_: int = 2,\n'
        "    id_: int = 1,\n    input_: int | None = None,\n    match_: list | None = None,\n"
        "    arg_value: int = 0,\n    name: str,\n):"
    ) in source
    unit = next(n for n in ast.parse(source).body if isinstance(n, ast.FunctionDef) and n.name == "unit")
    assert " ".join((ast.get_docstring(unit) or "").split()) == (
        "The `unit` block of the spec. Parameters `filter`, `type`, `max`, `id`, `input`, `match`, `_` are "
        "`filter_`, `type_`, `max_`, `id_`, `input_`, `match_`, `arg_value` here: "
        "Python uses those names itself."
    )
    assert "input_ = max_ + 1" in source
    assert "filters=max(filter_, 3) + id_ + input_ + match_[0] + arg_value," in source  # max() is still max
    assert 'x = unit(inputs, filter_=4, name="unit_1")' in source
    assert 'unit(x, filter_=6, type_="tanh", max_=1, match_=[2], arg_value=1, name="unit_2")' in source


# A block parameter named like a name the module uses for itself once hid it inside the block's
# function (`layers.Conv2D` read the argument): `validate` took these specs, `codegen` exited 3.
CLASHING_PARAMS = {
    "keras-import": (
        "vars: {layers: 4}\n"
        "blocks:\n  b:\n    params: {layers: int}\n    layers:\n"
        '      - conv2d: {filters: "${layers}", kernel_size: 3, padding: same}\n'
        "model: [{b: {layers: 4}}, flatten, {dense: 2}]\n",
        {"b": {"layers": "layers_"}},
    ),
    "defaults-partial": (
        "defaults: {batch_norm: {momentum: 0.9}}\n"
        "blocks:\n  b:\n    params: {BATCH_NORM: int}\n    layers:\n"
        '      - conv2d: {filters: "${BATCH_NORM}", kernel_size: 3, padding: same}\n'
        "      - batch_norm\n"
        "model: [{b: {BATCH_NORM: 4}}, flatten, {dense: 2}]\n",
        {"b": {"BATCH_NORM": "BATCH_NORM_"}},
    ),
    "called-block": (
        "blocks:\n"
        "  inner:\n    params: {filters: int}\n    layers:\n"
        '      - conv2d: {filters: "${filters}", kernel_size: 3, padding: same}\n'
        "  outer:\n    params: {inner: int}\n    layers:\n"
        '      - inner: {filters: "${inner}"}\n'
        "model: [{outer: {inner: 4}}, {outer: {inner: 6}}, flatten, {dense: 2}]\n",
        {"outer": {"inner": "inner_"}},
    ),
    "var-constant": (
        "vars: {k: 3}\n"
        "blocks:\n  b:\n    params: {K: int}\n    layers:\n"
        '      - conv2d: {filters: "${K}", kernel_size: "${k}", padding: same}\n'
        "model: [{b: {K: 5}}, flatten, {dense: 2}]\n",
        {"b": {"K": "K_"}},
    ),
    "several-and-a-taken-rename": (
        "vars: {k: 3}\n"
        "blocks:\n  b:\n    params:\n      layers: int\n      layers_: int\n"
        "      K: {type: int, default: 2}\n      keras: {type: list, default: [1, 2]}\n"
        '      x: {type: int, default: "${K * 2}"}\n'
        "    layers:\n"
        '      - conv2d: {filters: "${layers + layers_ + keras[0] + x}", kernel_size: "${k}"}\n'
        '      - conv2d: {filters: "${K}", kernel_size: 1}\n'
        "model: [{b: {layers: 1, layers_: 2}}, {b: {layers: 2, layers_: 1, K: 3}}, flatten]\n",
        {"b": {"layers": "layers_value", "layers_": "layers_", "K": "K_", "keras": "keras_", "x": "x"}},
    ),
}


@pytest.mark.parametrize("script", [False, True], ids=["module", "script"])
@pytest.mark.parametrize("case", sorted(CLASHING_PARAMS))
def test_parameters_named_like_module_names_are_renamed_and_proven(
    runner, write_spec, tmp_path, case, script
):
    text, expected = CLASHING_PARAMS[case]
    spec = write_spec(HEAD + "name: m\n" + INPUT + text)
    assert runner.invoke(app, ["validate", str(spec)]).exit_code == 0  # what `validate` accepts…
    target = tmp_path / "model.py"
    args = ["codegen", str(spec), "-o", str(target), *(["--script"] if script else [])]
    result = runner.invoke(app, args)  # …codegen writes (its own proof against the IR passed)
    assert result.exit_code == 0, result.output
    assert "internal error" not in result.output and "wrote" in result.output
    source = target.read_text(encoding="utf-8")
    tree = check_source(source, script=script)
    verify_model(tree, compile_spec(spec).ir)  # proven again here: same layers, names, arguments
    functions = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    for block, renames in expected.items():
        function = functions[block]
        assert [a.arg for a in function.args.kwonlyargs][:-1] == list(renames.values())
        doc = " ".join((ast.get_docstring(function) or "").split())
        for spec_name, py_name in renames.items():
            if spec_name != py_name:
                assert f"`{spec_name}`" in doc and f"`{py_name}`" in doc
        calls_of_block = [
            n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", None) == block
        ]
        assert calls_of_block
        for call in calls_of_block:  # the calls pass the arguments by the new names
            assert {k.arg for k in call.keywords} <= {*renames.values(), function.args.kwonlyargs[-1].arg}


def test_script_names_are_renamed_only_in_scripts(write_spec):
    path = write_spec(
        HEAD + "name: m\n" + INPUT + "blocks:\n  b:\n    params: {main: int}\n    layers:\n"
        '      - dense: {units: "${main}"}\n'
        "model: [flatten, {b: {main: 3}}, {dense: {units: 2, activation: softmax}}]\n"
    )
    module = generate_code(compile_spec(path)).text
    assert "def b(x, *, main: int, name: str):" in module
    script = generate_code(compile_spec(path), script=True).text
    assert "main_: int" in script and "main_=3" in script
    verify_model(check_source(script, script=True), compile_spec(path).ir)


@pytest.mark.parametrize(("names", "bad"), [("match", "match"), ("str", "str"), ("width, WIDTH", "WIDTH")])
def test_var_names_are_checked(write_spec, names, bad):
    values = ", ".join(f"{n.strip()}: 3" for n in names.split(","))
    path = write_spec(HEAD + "name: m\n" + INPUT + f"vars: {{{values}}}\nmodel: [flatten]\n")
    with pytest.raises(SpecError) as caught:
        generate_code(compile_spec(path))
    assert caught.value.errors[0].path == f"vars.{bad}"
    assert caught.value.errors[0].loc is not None


def test_look_alike_names_never_reach_python(write_spec):
    # NFKC would turn `ﬁlter` into the builtin `filter`: the schema refuses it before codegen
    path = write_spec(
        HEAD + "name: m\n" + INPUT + "blocks:\n  ﬁlter:\n    layers: [flatten]\nmodel: [ﬁlter]\n"
    )
    with pytest.raises(SpecError) as caught:
        compile_spec(path)
    assert caught.value.errors[0].loc is not None


@pytest.mark.parametrize(
    "ident",
    ["class", "match", "_", "print", "x", "inputs", "keras", "layers", "name", "__import__", "build_model"],
)
def test_ids_and_loop_variables_become_safe_local_names(write_spec, ident):
    import keyword

    # a keyword cannot name a loop variable (no `${…}` could read it): refused where declared
    loop_var = ident if ident.isidentifier() and not keyword.iskeyword(ident) else "i"
    spec = (
        HEAD
        + "name: m\n"
        + INPUT
        + "model:\n"
        + f"  - conv2d: {{filters: 2, kernel_size: 3, padding: same}}\n    id: {ident}\n"
        + f"  - repeat: {{times: 2, as: {loop_var}, layers: [batch_norm]}}\n"
        + f"  - concat:\n    inputs: [{ident}, input]\n"
        + "  - flatten\n"
    )
    tree, _, _ = emit(write_spec, spec)
    assert ident in string_constants(tree)  # the layer name, exactly
    assigned = {t.id for n in ast.walk(tree) if isinstance(n, ast.Assign) for t in n.targets}
    loop_vars = {n.target.id for n in ast.walk(tree) if isinstance(n, ast.For)}
    for local in assigned | loop_vars:
        assert local == "_" or not (keyword.iskeyword(local) or keyword.issoftkeyword(local))
        assert not local.startswith("__")
    assert {"keras", "layers", "build_model"}.isdisjoint(assigned | loop_vars)


def test_loop_variable_named_underscore_stays_a_loop(write_spec):
    """`as: _` once became the dunder `__`, which the checker refuses; the loop stays a loop."""
    tree, source, _ = emit(
        write_spec,
        HEAD
        + "name: m\n"
        + INPUT
        + "model:\n  - repeat: {times: 3, as: _, layers: [batch_norm]}\n  - flatten\n",
    )
    assert "for i in range(3):" in source  # `_` is a soft keyword: the loop variable falls back to `i`
    assert not any(isinstance(n, ast.Name) and n.id.startswith("__") for n in ast.walk(tree))


def test_loop_variable_named_like_a_builtin_keeps_its_meaning(write_spec):
    _, source, _ = emit(
        write_spec,
        HEAD
        + "name: m\n"
        + INPUT
        + "model:\n  - repeat: {times: 3, as: len,\n"
        + "              layers: [conv2d: {filters: '${len + 1}', kernel_size: 1}]}\n"
        + "  - flatten\n",
    )
    assert "for len_ in range(3):" in source
    assert "filters=len_ + 1" in source


def test_hostile_spec_file_name_stays_in_its_comment(tmp_path):
    from typer.testing import CliRunner

    folder = tmp_path / 'we"ird\u2028 \\name'
    folder.mkdir()
    spec = folder / "sp'ec\u202e.yaml"
    spec.write_text(HEAD + "name: m\n" + INPUT + "model: [flatten]\n", encoding="utf-8")
    target = tmp_path / "out.py"
    result = CliRunner().invoke(app, ["codegen", str(spec), "-o", str(target)])
    assert result.exit_code == 0, result.output
    source = target.read_text(encoding="utf-8")
    assert all(line.isprintable() for line in source.splitlines())
    check_source(source)
    assert source.splitlines()[0].startswith("# Generated by cnnspec")


def test_hostile_data_paths_are_plain_strings_in_scripts(write_spec, tmp_path):
    path_text = 'x"; import os; os.system("echo pwned"); ".npz'
    tree, _, _ = emit(
        write_spec,
        HEAD
        + "name: m\n"
        + INPUT
        + "model: [flatten, dense: {units: 2, activation: softmax}]\n"
        + "data: {source: {npz: "
        + yaml_string(path_text)
        + "}}\n",
        script=True,
    )
    assert any(value.endswith(path_text) for value in string_constants(tree))
    assert "os.system" not in calls(tree)


@pytest.mark.slow
def test_parameters_named_like_builtins_build_the_builders_model(write_spec, tmp_path):
    from tests.test_codegen_refs import assert_module_builds_the_builders_model

    spec = write_spec(HEAD + "name: m\n" + INPUT.replace("1]", "3]") + BUILTIN_PARAMS)
    target = tmp_path / "builtins_model.py"
    target.write_text(generate_code(compile_spec(spec)).text, encoding="utf-8")
    assert_module_builds_the_builders_model(target, spec)
