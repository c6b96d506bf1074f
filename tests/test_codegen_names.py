"""Names in generated code: spec names against the templates' own, and values spliced into text.

* A var's constant or a block's function that takes a name the training script binds itself
  (``PHASES``, ``MIN_VISIBLE``, ``select_classes``…) is refused with a located error, never
  written twice (the script would crash) nor reported as an internal error; every name a
  rendered script binds besides the spec's is one the printer's own names avoid
  (:func:`~cnnspec.backends.codegen_model.script_names`), for specs through the templates'
  branches.
* An embedded ``${…}`` is written so that the f-string gives the resolver's text
  (``true``/``false`` for a bool, ``str()`` otherwise).
* ``%`` in spec text shown by ``--help`` (argparse %-formats help texts).
* ``runtime`` settings the script does not reproduce are noted.

All without TensorFlow: generation, ``ast`` and the emitter's own replay of ``build_model``.
"""

from __future__ import annotations

import ast
import contextlib
import io
from pathlib import Path
from typing import Any

import pytest

from cnnspec.api import compile_spec
from cnnspec.backends.codegen_check import top_level_names
from cnnspec.backends.codegen_model import (
    MODULE_NAMES,
    UNKNOWN,
    Binding,
    CodeWriter,
    script_names,
    template_bindings,
)
from cnnspec.backends.codegen_values import literal_node
from cnnspec.backends.python_emitter import build_module, generate_code
from cnnspec.cli.app import app
from cnnspec.errors import SpecError
from cnnspec.spec.expr import substitute
from tests.conftest import FIXTURES, SPEC_FILES
from tests.test_codegen_golden import NO_SCRIPT
from tests.test_codegen_tasks import FILE_CASES, FILE_SPECS

HEAD = "cnnspec: 1\nname: t\n"
CLASSIFIER = "  - flatten\n  - dense: {units: 10, activation: softmax}\n"
SHAPES = "data: {source: {shapes: {images: 60, target: class}}}\n"
DIGITS_CLASSES = "data: {source: digits, classes: [1, 2, 3], per_class: 20}\n"


def _spec(data: str, *, extra: str = "", shape: str = "[8, 8, 1]", model: str = "", units: int = 10) -> str:
    """A small classifier of ``units`` classes on ``data`` (``extra``: more top-level sections)."""
    body = model or "  - conv2d: {filters: 4, kernel_size: 3}\n    id: conv\n"
    head = CLASSIFIER.replace("units: 10", f"units: {units}")
    return f"{HEAD}input: {{shape: {shape}}}\n{data}{extra}model:\n{body}{head}"


#: Specs through the branches of the training templates, besides specs/ and the codegen
#: fixtures: each a spec text (``SOURCE`` of a task case: its file source).
BRANCH_SPECS: dict[str, str] = {
    "phases": _spec(
        "data: {source: digits, limit: 64}\n",
        extra=(
            "training:\n  phases:\n    - {epochs: 1, freeze: [conv]}\n"
            "    - {epochs: 1, learning_rate: 0.001}\n"
        ),
    ),
    "freeze-only": _spec("data: {source: digits}\n", extra="training: {freeze: [conv]}\n"),
    "starting-weights": _spec(
        "data: {source: digits}\n", extra="weights: {from: start.weights.h5, strict: false}\n"
    ),
    "classes-per-class": _spec(DIGITS_CLASSES, units=3),
    "shapes": _spec(SHAPES, shape="[60, 60, 3]", units=3),
    "npz": _spec("data: {source: {npz: data.npz}}\n"),
    "image-folder": _spec("data: {source: {directory: images, test_directory: test}, on_bad_file: skip}\n"),
    "csv": _spec("data: {source: {csv: labels.csv, test_csv: test.csv}}\n"),
    "adapt-warmup-callbacks": _spec(
        "data: {source: digits}\n",
        extra=(
            "training:\n  class_weight: balanced\n"
            "  optimizer: {adam: {learning_rate:\n"
            "    {exponential_decay: {decay_steps: 10, decay_rate: 0.9, warmup_steps: 2}}}}\n"
            "  callbacks: [{early_stopping: {patience: 2}}, {model_checkpoint: {save_best_only: true}}]\n"
            "runtime: {mixed_precision: true, jit_compile: true, threads: {intra_op: 2}}\n"
        ),
        model="  - normalization: {adapt: true}\n  - conv2d: {filters: 4, kernel_size: 3}\n",
    ),
    **{
        f"task-{case}": FILE_SPECS[task]
        .replace("SOURCE", source)
        .replace("dense: 2", "dense: 1" if case == "values_json" else "dense: 2")
        for case, (task, source) in FILE_CASES.items()
    },
    "task-phases-weights": (FIXTURES / "codegen" / "tiny_tasks.yaml")
    .read_text(encoding="utf-8")
    .replace("model:\n", "model:\n  - normalization: {adapt: true}\n", 1)
    .replace("  epochs: 2\n", "  phases:\n    - {epochs: 1, freeze: [skip]}\n    - {epochs: 1}\n", 1)
    + "weights: {from: start.weights.h5, strict: false}\n",
}
SPEC_PATHS = [*SPEC_FILES, *sorted((FIXTURES / "codegen").glob("*.yaml"))]


def _script_cases() -> list[Any]:
    cases: list[Any] = [
        pytest.param(path, id=f"{path.parent.name}/{path.stem}")
        for path in SPEC_PATHS
        if path.stem not in NO_SCRIPT  # codegen --script refuses these specs (their data)
    ]
    return cases + [pytest.param(name, id=name, marks=BRANCH_GROUP) for name in BRANCH_SPECS]


#: The branch specs' cases and the test after them render the same scripts (seconds in all):
#: on one worker, the second renders none of them again (:func:`branch_script`).
BRANCH_GROUP = pytest.mark.xdist_group("branch_specs")
#: Rendered scripts of the branch specs, by name: each the same call on the same spec text.
BRANCH_SCRIPTS: dict[str, str] = {}


def branch_script(name: str, path: Path) -> str:
    """The script ``BRANCH_SPECS[name]`` renders to, written to ``path`` (rendered once)."""
    path.write_text(BRANCH_SPECS[name], encoding="utf-8")
    if name not in BRANCH_SCRIPTS:
        generated = generate_code(compile_spec(path), script=True, source_name=path.name, format_code=False)
        BRANCH_SCRIPTS[name] = generated.text
    return BRANCH_SCRIPTS[name]


@pytest.mark.parametrize("case", _script_cases())
def test_every_name_a_script_binds_is_reserved(case, tmp_path):
    """Every module-level name of a rendered script that is not the model code's own (a var's
    constant, a block's function, a defaults partial…) is one that the printer's own names
    avoid and that a spec name is checked against: else a template gained a name that
    ``script_names()`` cannot find, and a spec could take it."""
    if isinstance(case, Path):
        path = case
        text = generate_code(compile_spec(path), script=True, source_name=path.name, format_code=False).text
    else:
        path = tmp_path / f"{case}.yaml"
        text = branch_script(case, path)
    module = build_module(compile_spec(path), script=True)
    own = {c.name for c in module.constants} | {f.name for f in module.functions}
    bound = set(top_level_names(ast.parse(text))) - own
    missing = sorted(bound - script_names() - MODULE_NAMES)
    assert not missing, f"names the generated script binds that script_names() misses: {missing}"


@BRANCH_GROUP
def test_the_branch_specs_reach_the_templates_branches(tmp_path):
    """The specs above render the names of the branches the audit found unreserved (so the
    test above covers them): phases, shapes, npz, class selection, weights, image files."""
    bound: set[str] = set()
    for name in BRANCH_SPECS:
        code = branch_script(name, tmp_path / f"{name}.yaml")
        bound |= set(top_level_names(ast.parse(code)))
    expected = {
        "PHASES", "MIN_VISIBLE", "SHAPE_NAMES", "SIZE_PER_MILLE", "_GROUPS", "draw_shapes",
        "shapes_target", "load_splits", "squeeze_masks", "decode", "read_image", "class_label",
        "select_classes", "per_class", "pixel_max", "auto_scale", "check_depths", "stored_weights",
        "load_by_name", "assign_what_fits", "layers_with_weights", "load_starting_weights", "h5py",
        "io", "zipfile", "WarmUp", "CLASSES", "read_mask", "read_labels", "read_values",
    }  # fmt: skip
    assert expected <= bound, sorted(expected - bound)


def test_template_bindings_reads_module_level_python_lines():
    text = (
        "{% if x %}\nimport numpy as np\nimport a.b, c\nfrom m import (\n    d,\n    e as f,\n)\n"
        "from n import g as h, i\nK = 1  # comment\nL: int = 2\ndef fn(x):\n    inner = 3\n"
        "class C(B):\n    pass\n{{ name }} = 4\nM == 5\n{% endif %}\n"
    )
    assert template_bindings(text) == {"np", "a", "c", "d", "f", "h", "i", "K", "L", "fn", "C"}


# -- spec names that a script binds itself: located errors ------------------------------------
CLASHES = {
    "var-phases": (
        "vars: {phases: 2}\n"
        + _spec(
            "data: {source: digits}\n",
            extra="training: {phases: [{epochs: 1, freeze: [conv]}, {epochs: 1}]}\n",
            model='  - conv2d: {filters: "${phases}", kernel_size: 3}\n    id: conv\n',
        ).removeprefix(HEAD),
        "vars.phases",
        "'PHASES'",
    ),
    "var-min_visible": (
        "vars: {min_visible: 2}\n"
        + _spec(
            SHAPES,
            shape="[60, 60, 3]",
            model='  - conv2d: {filters: "${min_visible}", kernel_size: 3}\n',
            units=3,
        ).removeprefix(HEAD),
        "vars.min_visible",
        "'MIN_VISIBLE'",
    ),
    "var-shape_names": (
        "vars: {shape_names: 2}\n"
        + _spec(
            SHAPES,
            shape="[60, 60, 3]",
            model='  - conv2d: {filters: "${shape_names}", kernel_size: 3}\n',
            units=3,
        ).removeprefix(HEAD),
        "vars.shape_names",
        "'SHAPE_NAMES'",
    ),
    **{
        f"block-{block}": (
            f"blocks:\n  {block}:\n    layers:\n      - conv2d: {{filters: 4, kernel_size: 3}}\n"
            + _spec(DIGITS_CLASSES, model=f"  - {block}\n", units=3).removeprefix(HEAD),
            f"blocks.{block}",
            f"{block!r}",
        )
        for block in ("select_classes", "per_class", "class_label")
    },
    "var-seed": (  # (refused before this fix too: the same error)
        "vars: {seed: 3}\n" + _spec("data: {source: digits}\n").removeprefix(HEAD),
        "vars.seed",
        "'SEED'",
    ),
}


@pytest.mark.parametrize("case", sorted(CLASHES))
def test_a_spec_name_the_script_binds_is_a_located_error(case, runner, write_spec, tmp_path):
    text, where, named = CLASHES[case]
    spec = write_spec(HEAD + text)
    assert runner.invoke(app, ["validate", str(spec)]).exit_code == 0
    result = runner.invoke(app, ["codegen", "--script", str(spec), "-o", str(tmp_path / "t.py")])
    assert result.exit_code == 1, result.output
    assert "internal error" not in result.output
    assert where in result.output and named in result.output and "rename" in result.output
    assert not (tmp_path / "t.py").exists()
    with pytest.raises(SpecError) as caught:
        generate_code(compile_spec(spec), script=True)
    diagnostic = caught.value.diagnostics[0]
    assert diagnostic.loc is not None and diagnostic.loc.line > 0


def test_a_name_only_other_scripts_bind_stays_free(write_spec):
    """Spec names are checked against the names this script binds: ``select_classes`` is
    a script's function only with ``data.classes``, ``CLASSES`` only beside a masks folder
    (``specs/basic_cnn.yaml`` has ``vars: {classes: 10}``)."""
    text = (
        HEAD + "vars: {classes: 10}\ninput: {shape: [8, 8, 1]}\ndata: {source: digits, limit: 64}\n"
        "blocks:\n  select_classes:\n    layers:\n      - conv2d: {filters: 4, kernel_size: 3}\n"
        'model:\n  - select_classes\n  - flatten\n  - dense: {units: "${classes}", activation: softmax}\n'
    )
    script = generate_code(compile_spec(write_spec(text)), script=True).text
    assert "def select_classes(" in script and "CLASSES = 10" in script


# -- values spliced into text -----------------------------------------------------------------
BOOL_IDS = {
    "comparison": ("{tag: {type: str, default: t}}", "id: \"c_${tag == 'x'}\"", ["{tag: x}", "{tag: z}"]),
    "not": ("{on: {type: bool, default: true}}", 'id: "c_${not on}"', ["{on: true}", "{on: false}"]),
    "bool-param": ("{on: {type: bool, default: true}}", 'id: "c_${on}"', ["{on: true}", "{on: false}"]),
    "any-param-mixed": ("{tag: {default: t}}", 'id: "c_${tag}"', ["{tag: true}", "{tag: z}", "{tag: false}"]),
    "any-param-strings": ("{tag: {default: t}}", 'id: "c_${tag}"', ["{tag: a}", "{tag: b}"]),
    "conditional": (
        "{n: {type: int, default: 1}}",
        "id: \"c_${n > 1 if n < 3 else 'big'}\"",
        ["{n: 1}", "{n: 2}", "{n: 5}"],
    ),
    "called-once": ("{tag: {type: str, default: t}}", "id: \"c_${tag == 'x'}\"", ["{tag: x}"]),
}


@pytest.mark.parametrize("case", sorted(BOOL_IDS))
@pytest.mark.parametrize("script", [False, True], ids=["module", "script"])
def test_an_embedded_bool_is_written_as_the_resolver_writes_it(case, script, write_spec):
    params, layer_id, calls = BOOL_IDS[case]
    text = (
        HEAD + "input: {shape: [8, 8, 1]}\n"
        f"blocks:\n  b:\n    params: {params}\n    layers:\n"
        f"      - conv2d: {{filters: 4, kernel_size: 3, padding: same}}\n        {layer_id}\n"
        "model:\n" + "".join(f"  - b: {call}\n" for call in calls) + CLASSIFIER
    )
    compiled = compile_spec(write_spec(text))
    # the emitter replays build_model against the IR's layer names (true/false, as resolved)
    code = generate_code(compiled, script=script).text
    names = [node.name for node in compiled.ir.nodes]
    assert "True" not in "".join(names) and "False" not in "".join(names)
    if case in ("comparison", "not", "bool-param"):  # always a bool: the short form
        assert "'true' if" in code and " is True" not in code
    if case == "any-param-strings":  # never a bool: a plain field
        assert "'true'" not in code and '_c_{tag}"' in code


def _writer(write_spec) -> CodeWriter:
    return CodeWriter(compile_spec(write_spec(HEAD + "input: {shape: [4]}\nmodel: [{dense: 2}]\n")))


VALUES = [True, False, None, 0, 7, -3, 0.1, 1e-05, -2.5, 1e20, "x", "True", [1, 2], [True, "a"], []]


@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_every_kind_of_embedded_value_formats_as_the_resolver_formats_it(value, write_spec):
    """The f-string of ``a_${p}_b`` gives :func:`substitute`'s text for every value type, with
    ``p`` known (a var), known only per call (a block parameter) or not known at all."""
    writer = _writer(write_spec)
    expected = substitute("a_${p}_b ${[p, 1]} ${p if p else 0}", {"p": value})
    name = ast.Name("p", ast.Load())
    bindings = {
        "known": Binding(literal_node(value), value),
        "per-call": Binding(name, UNKNOWN, values=(value,)),
        "mixed-calls": Binding(name, UNKNOWN, values=(value, True, "s")),
        "unknown": Binding(name),
    }
    for how, binding in bindings.items():
        node = writer.translate_value("a_${p}_b ${[p, 1]} ${p if p else 0}", {"p": binding}, None)
        source = ast.unparse(node)
        expression = ast.fix_missing_locations(ast.Expression(node))
        written = eval(compile(expression, "<f-string>", "eval"), {"p": value})
        assert written == expected, (how, source)


# -- `%` in help texts ------------------------------------------------------------------------
def _help_text(code: str, tmp_path: Path) -> str:
    """``--help`` of a generated script, from its ``parse_args`` alone (no TensorFlow)."""
    tree = ast.parse(code)
    function = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "parse_args")
    module = ast.Module(
        [*ast.parse("import argparse\nfrom pathlib import Path\n").body, function], type_ignores=[]
    )
    namespace: dict[str, Any] = {"__file__": str(tmp_path / "t.py"), "__name__": "generated"}
    exec(compile(module, "t.py", "exec"), namespace)  # (the emitter's checked output)
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as stopped:
        import sys

        argv, sys.argv = sys.argv, ["t.py", "--help"]
        try:
            namespace["parse_args"]()
        finally:
            sys.argv = argv
    assert stopped.value.code == 0
    return out.getvalue()


HELP_CASES = {
    "npz": ('data: {source: {npz: "p%d/50%_off.npz"}}\n', ["p%d/50%_off.npz"]),
    "test-folder": (
        'data: {source: {directory: "im%(x)s", test_directory: "te%st"}}\n',
        ["im%(x)s", "te%st"],
    ),
    "labels-table": (None, ["50%(prog)s.csv"]),
}


@pytest.mark.parametrize("case", sorted(HELP_CASES))
def test_a_percent_sign_in_a_data_path_shows_in_help(case, tmp_path):
    data, shown = HELP_CASES[case]
    if data is None:  # a task script: its --targets help
        text = FILE_SPECS["multilabel"].replace(
            "SOURCE", '{images: data/images, labels: "data/50%(prog)s.csv"}'
        )
    else:
        text = _spec(data)
    spec = tmp_path / "100%(prog)s.yaml"  # (the description: argparse formats it for %(prog))
    spec.write_text(text, encoding="utf-8")
    code = generate_code(compile_spec(spec), script=True).text
    # (argparse wraps long paths, also at a hyphen: compare without white space)
    help_text = "".join(_help_text(code, tmp_path).split())
    for path in [*shown, "100%(prog)s.yaml"]:
        assert path in help_text


@pytest.mark.parametrize("written", [True, False], ids=["script-file", "stdout"])
def test_default_data_paths_in_help_say_what_they_are_relative_to(written, tmp_path):
    """A script written to a file reads its default data path from its own folder, while a
    --data the user types is read from the working directory: the help says which."""
    spec = tmp_path / "spec.yaml"
    text = FILE_SPECS["multilabel"].replace("SOURCE", "{images: data/images, labels: data/labels.csv}")
    spec.write_text(text, encoding="utf-8")
    output = tmp_path / "out" / "train.py" if written else None
    code = generate_code(compile_spec(spec), script=True, output=output).text
    help_text = " ".join(_help_text(code, tmp_path).split())
    note = "relative to this script's folder"
    assert help_text.count(note) == (2 if written else 0), help_text  # --data and --targets
    if written:
        assert "(default: ../data/labels.csv, relative to this script's folder)" in help_text


# -- runtime settings the script does not reproduce -------------------------------------------
@pytest.mark.parametrize(
    ("runtime", "note"),
    [
        ("{distribute: mirrored}", "runtime.distribute is 'mirrored'"),
        ("{distribute: {strategy: one_device}}", "runtime.distribute is 'one_device'"),
        ("{jit_compile: auto}", "runtime.jit_compile is 'auto'"),
    ],
)
def test_a_runtime_setting_the_script_does_not_reproduce_is_noted(runtime, note, write_spec):
    plain = generate_code(compile_spec(write_spec(_spec("data: {source: digits}\n"))), script=True)
    assert not any(n.startswith("runtime.") for n in plain.notes)
    spec = write_spec(_spec("data: {source: digits}\n", extra=f"runtime: {runtime}\n"))
    generated = generate_code(compile_spec(spec), script=True)
    assert any(n.startswith(note) for n in generated.notes)  # (on the console)
    header = generated.text.split('"""', 1)[0]
    assert "# Note: " + note in header  # (and in the script)
    module = generate_code(compile_spec(spec))  # a model module trains nothing: no note
    assert not any(n.startswith("runtime.") for n in module.notes)


#: Nested carrying repeats whose ids read both loop variables: ``c00`` … ``c11``.
LEADING_ZERO = """\
cnnspec: 1
name: zeros
input: {shape: [8, 8, 2]}
model:
  - id: outer
    repeat:
      times: 2
      as: i
      carry: {u: input}
      layers:
        - id: inner
          repeat:
            times: 2
            as: j
            carry: {p: u}
            layers:
              - conv2d: {filters: 2, kernel_size: 1}
                inputs: p
                id: "c${i}${j}"
            next: {p: "c${i}${j}"}
      next: {u: p}
  - concat:
    inputs: [u, "outer[0].inner[1].c01"]
  - global_avg_pool2d
  - dense: 2
"""


@pytest.mark.parametrize("template", ["c${i}${j}", "c0${j}${i}"])
def test_a_layer_number_written_with_a_leading_zero_is_text(template, write_spec):
    """``c00`` was read as the number 0 written as "00", which no expression gives: codegen
    ended in an internal error (exit 3) for a spec that validates and builds. A number the same
    in every instance is text; the emitter's replay proves the code builds the model."""

    def named(i: int, j: int) -> str:
        return template.replace("${i}", str(i)).replace("${j}", str(j))

    text = LEADING_ZERO.replace("c${i}${j}", template).replace("c01", named(0, 1))
    code = generate_code(compile_spec(write_spec(text)))
    name = "outer_1_inner_0_" + named(1, 0)
    assert f'name="{name}"' in code.text
