"""`cnnspec codegen`: structure, cleanliness, checks and the CLI (no TensorFlow needed).

The Keras-level proof that generated code builds the same model is in test_codegen_keras.py.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from cnnspec.api import compile_spec, compile_text
from cnnspec.backends.codegen_check import CheckError, check_source, verify_model
from cnnspec.backends.codegen_values import comment_text, docstring, is_identifier, py_string, safe_name
from cnnspec.backends.python_emitter import (
    GeneratedCode,
    docstring_block,
    fitted_note,
    generate_code,
    ruff_binary,
)
from cnnspec.cli.app import app
from cnnspec.errors import SpecError
from cnnspec.spec.expr import FUNCTIONS
from cnnspec.version import __version__
from tests.conftest import FIXTURES, ROOT, SPEC_FILES

CODEGEN = FIXTURES / "codegen"
EXTRA = sorted(CODEGEN.glob("*.yaml")) + sorted((FIXTURES / "resolve").glob("*.yaml"))
ALL_SPECS = SPEC_FILES + EXTRA
LIBRARY = ["basic_cnn", "digits_cnn", "mnist_cnn", "resnet", "vgg16", "resnet50", "inception_v3"]
LIBRARY += ["densenet121", "mobilenet_v2", "unet"]


def ids(path: Path) -> str:
    return f"{path.parent.name}/{path.stem}"


def generate(path: Path, **kwargs) -> GeneratedCode:
    return generate_code(compile_spec(path), source_name=str(path.relative_to(ROOT)), **kwargs)


#: The model modules generated from the spec files, by (path, format_code): generated once per
#: process for the tests that each check a property of the same module.
_MODULES: dict[tuple[Path, bool], GeneratedCode] = {}


def module_of(path: Path, format_code: bool = True) -> GeneratedCode:
    """``generate(path, format_code=format_code)``, generated once per process: the parametrized
    tests read the same module of each spec file (the library's: five times, 0.2–0.6 s each for
    densenet121, inception_v3 and resnet50). Generation is deterministic (as
    test_generation_is_deterministic proves, generating twice); each caller gets its own copy."""
    key = (path, format_code)
    if key not in _MODULES:
        _MODULES[key] = generate(path, format_code=format_code)
    return dataclasses.replace(_MODULES[key], notes=list(_MODULES[key].notes))


def ruff_check(text: str, tmp_path: Path, name: str = "generated.py") -> str:
    """Problems `ruff check` finds with the project's rules ("" when clean)."""
    binary = ruff_binary()
    if binary is None:
        pytest.skip("ruff is not installed")
    target = tmp_path / name
    target.write_text(text, encoding="utf-8")
    done = subprocess.run(
        [binary, "check", "--no-cache", "--config", str(ROOT / "pyproject.toml"), str(target)],
        capture_output=True,
        text=True,
        check=False,
    )
    return "" if done.returncode == 0 else done.stdout + done.stderr


def trainable(path: Path) -> bool:
    """Whether `codegen --script` writes a script for the spec (a classifier, or another task on
    data the script can read)."""
    from cnnspec.analysis.settings import training_config
    from cnnspec.errors import SpecError

    compiled = compile_spec(path)
    try:
        config = training_config(compiled)
    except SpecError:
        return False
    # the other tasks: the sources the task script reads (backends/codegen_tasks.py)
    from cnnspec.backends.codegen_tasks import TASK_SOURCES

    return not config.task_path or config.data.kind in TASK_SOURCES


# -- every spec: checked, clean, standalone ---------------------------------------------------
@pytest.mark.parametrize("path", ALL_SPECS, ids=ids)
def test_model_module_is_standalone_and_passes_ruff(path, tmp_path):
    generated = module_of(path)
    tree = ast.parse(generated.text)
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert imported in ({"keras"}, {"keras", "functools"}), imported  # functools: partials of `defaults:`
    assert "cnnspec" not in {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    assert ruff_check(generated.text, tmp_path) == ""
    assert generated.structured


@pytest.mark.parametrize("path", ALL_SPECS, ids=ids)
def test_templates_write_clean_code_without_ruff(path, tmp_path):
    """Without ruff the templates' own layout passes `ruff check` (line length included)."""
    generated = module_of(path, format_code=False)
    assert not generated.formatted
    assert max(len(line) for line in generated.text.splitlines()) <= 110
    assert ruff_check(generated.text, tmp_path) == ""


@pytest.mark.parametrize("path", [p for p in SPEC_FILES if p.stem in LIBRARY], ids=ids)
def test_library_templates_match_ruff_format(path):
    """For the spec library the templates lay the code out exactly as `ruff format` would."""
    if ruff_binary() is None:
        pytest.skip("ruff is not installed")
    raw = module_of(path, format_code=False).text
    assert module_of(path).text == raw


@pytest.mark.parametrize("path", [p for p in ALL_SPECS if trainable(p)], ids=ids)
def test_training_script_is_standalone_and_passes_ruff(path, tmp_path):
    generated = generate(path, script=True, output=tmp_path / "train.py")
    tree = ast.parse(generated.text)
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert not any(name.startswith("cnnspec") for name in imported)
    assert {"keras", "tensorflow", "numpy", "argparse"} <= imported
    assert 'if __name__ == "__main__":' in generated.text
    for option in ("--epochs", "--batch-size", "--out"):
        assert f'"{option}"' in generated.text
    assert ruff_check(generated.text, tmp_path, "train.py") == ""


@pytest.mark.parametrize("where", ["model", "backbone"])
def test_scripts_loading_weights_from_a_file_pass_ruff(where, tmp_path):
    """The weight-loading code (templates/_weights_code.j2) passes the project's rules: no spec in
    specs/ loads a file, and the script of one failed ruff's SIM401 (h5py's get)."""
    (tmp_path / "start.weights.h5").write_bytes(b"")  # read only by the script, never here
    shutil.copy(CODEGEN / "frozen.yaml", tmp_path)
    weights = "{from: start.weights.h5}"
    body = (
        f"  - backbone: {{spec: frozen.yaml, until: head, weights: {weights}}}\n"
        if where == "backbone"
        else "  - conv2d: {filters: 2, kernel_size: 3}\n  - flatten\n"
    )
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "cnnspec: 1\nname: start\ninput: {shape: [8, 8, 1]}\n"
        + (f"weights: {weights}\n" if where == "model" else "")
        + f"model:\n{body}  - dense: {{units: 10, activation: softmax}}\n"
        + "data: {source: digits}\ntraining: {epochs: 1}\n",
        encoding="utf-8",
    )
    generated = generate_code(
        compile_spec(spec), script=True, source_name="spec.yaml", output=tmp_path / "train.py"
    )
    assert "def stored_weights(path):" in generated.text
    assert ruff_check(generated.text, tmp_path, "train.py") == ""


PHASED_WITH_WEIGHTS = (
    "cnnspec: 1\nname: s2\ninput: {shape: [8, 8, 1]}\nweights: runs/r1\n"
    "model:\n  - conv2d: {filters: 2, kernel_size: 3}\n  - flatten\n"
    "  - dense: {units: 10, activation: softmax}\n"
    "data: {source: digits}\ntraining:\n  phases:\n    - {epochs: 1}\n    - {epochs: 1}\n"
)


def _project_with_weights(tmp_path: Path) -> Path:
    """A project folder whose spec starts from the run folder runs/r1 beside it."""
    project = tmp_path / "project"
    (project / "runs" / "r1").mkdir(parents=True)
    (project / "runs" / "r1" / "model.keras").write_bytes(b"")  # read only by the script
    spec = project / "s2.yaml"
    spec.write_text(PHASED_WITH_WEIGHTS, encoding="utf-8")
    return spec


def test_script_files_the_weights_helpers_apart_from_the_training_functions(tmp_path):
    """The training section holds the optimizer, compile and callbacks functions; the weights
    helpers have a section of their own before it (they were filed under the weights' header,
    leaving "training" empty), in the .py and in the notebook's cells."""
    spec = _project_with_weights(tmp_path)
    text = generate_code(compile_spec(spec), script=True, output=tmp_path / "train.py").text
    sections: dict[str, list[str]] = {}
    header = ""
    for line in text.splitlines():
        if line.startswith("# -- "):
            header = line[5:].rstrip("- ")
            sections[header] = []
        elif line.startswith("def ") and header:
            sections[header].append(line[4 : line.index("(")])
    assert list(sections)[1:4] == [
        "starting weights (the spec's `weights:` and its backbones')",
        "training",
        "output files",
    ]
    assert sections["training"] == ["build_optimizer", "compile_model", "build_callbacks"]
    weights = sections["starting weights (the spec's `weights:` and its backbones')"]
    assert weights[0] == "stored_weights" and weights[-1] == "load_starting_weights"
    assert not {"build_optimizer", "compile_model", "build_callbacks"} & set(weights)
    from cnnspec.backends.notebook import notebook_of

    notebook = json.loads(notebook_of(text, "s2", "s2.yaml", True))
    cells = ["".join(cell["source"]) for cell in notebook["cells"]]
    training = next(cell for cell in cells if cell.startswith("# -- training"))
    assert "def compile_model(" in training and "def stored_weights(" not in training
    weights_cell = next(cell for cell in cells if cell.startswith("# -- starting weights"))
    assert "def build_optimizer(" not in weights_cell


def test_script_names_a_weights_file_relative_to_its_folder_as_its_data(tmp_path):
    """A weights source is written relative to the script's folder, as the data paths are, so
    that the moved project folder keeps both (it was absolute)."""
    spec = _project_with_weights(tmp_path)
    script = spec.parent / "code" / "train.py"
    text = generate_code(compile_spec(spec), script=True, output=script).text
    assert '    load_by_name(model, "", beside_script("../runs/r1/model.keras"))\n' in text
    assert f'"{tmp_path}' not in text  # (the header comment names the spec's file)
    assert "        here = Path(__file__).resolve().parent\n" in text
    # written to the console (no file), relative to the working directory as before
    printed = generate_code(compile_spec(spec), script=True).text
    assert "beside_script" not in printed and "def beside_script(" not in printed


def test_script_codegen_refuses_weights_not_on_the_disk_as_validate_does(runner, tmp_path):
    """`codegen --script` wrote a script (its SEED = None) for a `weights:` run folder that is not
    there, which then stopped with a traceback; it refuses it as validate does, writing nothing.
    The model module reads no weights: it is written as before."""
    spec = tmp_path / "s2.yaml"
    spec.write_text(PHASED_WITH_WEIGHTS, encoding="utf-8")
    script = tmp_path / "train.py"
    result = runner.invoke(app, ["codegen", "--script", str(spec), "-o", str(script)])
    checked = runner.invoke(app, ["validate", str(spec)])
    assert result.exit_code == checked.exit_code == 1 and not script.exists()
    said = f"s2.yaml:4:10: error: weights: no such run folder: {tmp_path / 'runs' / 'r1'}"
    assert said in result.output and said in checked.output
    model = runner.invoke(app, ["codegen", str(spec), "-o", str(tmp_path / "model.py")])
    assert model.exit_code == 0 and (tmp_path / "model.py").is_file()


def test_script_stops_with_a_message_on_a_weights_file_it_cannot_read(tmp_path):
    """The script's stored_weights raised a traceback (FileNotFoundError, h5py's OSError "file
    signature not found", zipfile's BadZipFile) for a weights file gone or damaged since it was
    generated; it stops with cnnspec train's words (exit status 1). h5py alone: no TensorFlow."""
    import io
    import zipfile

    import h5py
    import numpy as np

    spec = _project_with_weights(tmp_path)
    tree = ast.parse(generate_code(compile_spec(spec), script=True, output=tmp_path / "train.py").text)
    kept = [node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == "stored_weights"]
    namespace: dict[str, Any] = {"io": io, "zipfile": zipfile, "h5py": h5py, "np": np}
    exec(compile(ast.Module(kept, []), "train.py", "exec"), namespace)  # (the generated function)
    stored_weights = namespace["stored_weights"]
    junk = tmp_path / "bad.weights.h5"
    junk.write_text("junk")
    (tmp_path / "bad.keras").write_text("junk")
    with zipfile.ZipFile(tmp_path / "empty.keras", "w") as archive:
        archive.writestr("config.json", "{}")
    gone = tmp_path / "gone.weights.h5"
    cases = [
        (gone, f"weights: no such weights file: {gone}\nput it back, or set the spec's weights: and"),
        (junk, f"weights: cannot read the weights in {junk}: Unable to synchronously open file (file "
         "signature not found) (a truncated or corrupted file?)\nsave it again ("),
        (tmp_path / "bad.keras", f"weights: cannot read the weights in {tmp_path / 'bad.keras'}: File is "
         "not a zip file (a truncated or corrupted file?)\n"),
        (tmp_path / "empty.keras", f"weights: cannot read the weights in {tmp_path / 'empty.keras'}: "
         "\"There is no item named 'model.weights.h5' in the archive\" (a truncated"),
    ]  # fmt: skip
    for path, message in cases:
        with pytest.raises(SystemExit) as stopped:
            stored_weights(path)
        assert str(stopped.value.code).startswith(message), stopped.value.code


def test_script_of_a_model_with_two_outputs_on_class_only_data_is_refused_with_a_location():
    from cnnspec.errors import SpecError

    with pytest.raises(SpecError) as caught:
        generate(FIXTURES / "resolve" / "two_heads.yaml", script=True)
    # the training settings' own check (the digits give one array of labels, not one per
    # output), before the script's: at `outputs`, as no data.source is written
    error = caught.value.errors[0]
    assert error.loc is not None and (error.loc.line, error.path) == (14, "outputs")
    assert error.message == (
        "expected a target per output (classes, box); the digits source gives one array of class "
        "labels (the default source)"
    )


# -- structure survives -------------------------------------------------------------------------
@pytest.mark.parametrize("path", [p for p in SPEC_FILES if p.stem in LIBRARY], ids=ids)
def test_library_specs_keep_their_structure(path):
    compiled = compile_spec(path)
    generated = module_of(path)
    # nothing inlined or unrolled (VGG's head decides `when: include_top` while generating, and
    # its loop reads INCLUDE_TOP: the constant says it fits the code only as it is)
    unrolled = [note for note in generated.notes if not note.startswith("the code fits the constant")]
    assert unrolled == [], unrolled
    if path.stem == "vgg16":
        assert generated.notes == [fitted_note({"INCLUDE_TOP": "include_top"})]
    tree = ast.parse(generated.text)
    functions = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    used = list(compiled.ir.tree.blocks)
    assert set(used) <= functions  # every block the model uses is a function
    for var in compiled.doc.data.get("vars") or {}:
        assert f"{var.upper()} = " in generated.text
    repeats = "repeat:" in path.read_text() or any(
        "repeat" in str(block) for block in (compiled.doc.data.get("blocks") or {}).values()
    )
    if repeats:
        assert any(isinstance(n, ast.For) for n in ast.walk(tree))


def test_blocks_become_functions_vars_constants_and_repeat_loops():
    text = module_of(ROOT / "specs" / "resnet50.yaml").text
    assert "def bottleneck(x, *, filters: int, stride: int = 1, name: str):" in text
    assert "for i in range(blocks - 1):" in text
    assert 'name=f"{name}_bottleneck_{i + 2}"' in text
    assert "CLASSES = 1000" in text and "units=CLASSES" in text
    text = module_of(ROOT / "specs" / "digits_cnn.yaml").text
    assert "filters=WIDTH * 2" in text  # ${width * 2}
    text = module_of(ROOT / "specs" / "mobilenet_v2.yaml").text
    assert "if expansion != 1:" in text  # `when`, three items under one `if`
    assert text.count("if expansion != 1:") == 1
    assert "if stride == 1 and shortcut.shape[-1] == filters:" in text  # shortcut chosen by expression
    assert 'padding="same" if stride == 1 else "valid"' in text


def test_header_and_location_comments():
    text = module_of(ROOT / "specs" / "resnet.yaml").text
    first = text.splitlines()[0]
    assert first.startswith("# Generated by cnnspec ") and "specs/resnet.yaml" in first
    from cnnspec import __version__

    assert __version__ in first
    assert "# resnet.yaml:" in text  # each section names the spec line it came from


def test_generation_is_deterministic():
    path = ROOT / "specs" / "inception_v3.yaml"
    # two generations: a fresh one, and the one the other tests read (made here if not yet)
    assert generate(path).text == module_of(path).text


def test_overrides_reach_the_code(tmp_path):
    compiled = compile_spec(ROOT / "specs" / "resnet.yaml", ["vars.classes=3", "data.classes=[0, 1, 2]"])
    assert "CLASSES = 3" in generate_code(compiled).text


def test_vars_that_read_later_vars_become_constants_in_dependency_order():
    text = (
        "cnnspec: 1\nname: fwd\ninput: {shape: [8, 8, 1]}\n"
        "vars: {units: '${half * 2}', half: '${base + 1}', base: 2, label: x}\n"
        "model:\n  - flatten\n  - dense: '${units}'\n"
    )
    generated = generate_code(compile_text(text, "fwd.yaml"))
    constants = [line.split(" = ")[0] for line in generated.text.splitlines() if " = " in line[:12]]
    order = [c for c in constants if c in ("UNITS", "HALF", "BASE", "LABEL")]
    assert order == ["BASE", "LABEL", "HALF", "UNITS"]  # each after the vars it reads
    assert "HALF = BASE + 1" in generated.text and "UNITS = HALF * 2" in generated.text
    assert generated.notes == []


# -- fallbacks -------------------------------------------------------------------------------
def test_fallbacks_inline_blocks_and_unroll_loops_and_say_so():
    generated = module_of(CODEGEN / "fallbacks.yaml")
    notes = "\n".join(generated.notes)
    assert "inlined block `twice`: layer numbers vary" in notes
    assert "unrolled the repeat at model[2].repeat: layer numbers vary" in notes
    assert "# Note: inlined block `twice`" in generated.text
    tree = ast.parse(generated.text)
    assert "twice" not in {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}


def test_reshape_targets_from_expressions_stay_in_functions():
    """A `reshape` target computed from a block parameter that differs between calls is written
    as the expression (Keras stores a list target as a tuple, as the registry does): the block
    stays a function instead of being inlined at every call."""
    generated = module_of(CODEGEN / "fallbacks.yaml")
    assert not any("squeeze" in note for note in generated.notes)
    tree = ast.parse(generated.text)
    assert "squeeze" in {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    assert "target_shape=[-1, channels]" in generated.text
    assert 'squeeze(x, channels=16, name="squeeze_1")' in generated.text


def test_computed_ids_are_written_as_f_strings_in_loops():
    """An `id` with `${…}` (keras.applications' `block2a`, `block2b`, …) names each call by an
    f-string of the loop variables: the loops stay loops, the names stay the resolver's."""
    text = (
        "cnnspec: 1\nname: m\ninput: {shape: [8, 8, 3]}\nvars: {letters: [a, b, c]}\nblocks:\n"
        "  unit:\n    params: {filters: int}\n    layers:\n"
        "      - conv2d: {filters: '${filters}', kernel_size: 1}\n        id: conv\n"
        "model:\n  - repeat:\n      times: 2\n      as: s\n      layers:\n"
        "        - repeat:\n            times: 3\n            as: j\n            layers:\n"
        "              - unit: '${4 * (s + 1)}'\n                id: 'block${s + 1}${letters[j]}'\n"
        "              - dense: 4\n                id: 'head${s}_${j}'\n"
    )
    compiled = compile_text(text)
    names = [node.name for node in compiled.ir.nodes]
    assert names[:4] == ["block1a_conv", "head0_0", "block1b_conv", "head0_1"]
    generated = generate_code(compiled)
    assert generated.notes == []
    assert 'name=f"block{s + 1}{LETTERS[j]}"' in generated.text
    assert 'name=f"head{s}_{j}"' in generated.text
    assert generated.text.count("for ") == 2 and "block2c" not in generated.text


def test_blocks_whose_calls_agree_stay_functions():
    """What the calls produced decides, not the construct: a projection made in every call (or
    in none), and a `reshape` target that every call computes alike, keep the block a function."""
    generated = generate_code(
        compile_text(
            "cnnspec: 1\nname: m\ninput: {shape: [8, 8, 4]}\nblocks:\n"
            "  squeeze:\n    params: {channels: int}\n"
            "    layers: [flatten, reshape: '${[-1, channels]}', flatten]\n"
            "  twice:\n    params: {filters: int}\n    layers:\n"
            "      - residual: {body: [conv2d: {filters: '${filters}', kernel_size: 1}]}\n"
            "      - residual: {body: [conv2d: {filters: '${filters * 2}', kernel_size: 1}]}\n"
            "model: [twice: 4, twice: 8, squeeze: 16, squeeze: 16, dense: 2]\n"
        )
    )
    assert generated.notes == []
    functions = {n.name for n in ast.parse(generated.text).body if isinstance(n, ast.FunctionDef)}
    assert {"twice", "squeeze"} <= functions
    assert "target_shape=[-1, channels]" in generated.text


# -- the checker catches differences and foreign code --------------------------------------------
@pytest.fixture(scope="module")
def resnet_source() -> tuple[str, object]:
    compiled = compile_spec(ROOT / "specs" / "resnet.yaml")
    return generate_code(compiled).text, compiled


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ('name="conv2d_1"', 'name="conv2d_one"'),
        ("kernel_size=7", "kernel_size=5"),
        ('name=f"{name}_add_1")([shortcut, x])', 'name=f"{name}_add_1")([x, shortcut])'),
        ('padding="same", name="max_pool2d_1"', 'name="max_pool2d_1"'),
        ('name="resnet")', 'name="resnet2")'),
        ('x = residual_block(x, filters=128, name="residual_block_4")\n', ""),
        ('activation="softmax"', 'activation="relu"'),
    ],
)
def test_checker_finds_any_difference_from_the_ir(resnet_source, old, new):
    text, compiled = resnet_source
    assert old in text
    with pytest.raises(CheckError):
        verify_model(check_source(text.replace(old, new, 1)), compiled.ir)


@pytest.mark.parametrize(
    "extra",
    [
        "import os\n",
        "from subprocess import run\n",
        'eval("1")\n',
        'X = __import__("os")\n',
        "X = build_model.__globals__\n",
        "class Evil:\n    pass\n",
        'print("hello")\n',
        "X = open\n",
        "def f(*args):\n    return args\n",
        "X = getattr(keras, 'layers')\n",
        "X = len([1, 2])\n",  # module constants call only the functions of ${…}
        "X = range(3)\n",
    ],
)
def test_whitelist_refuses_code_the_templates_never_write(resnet_source, extra):
    text, _ = resnet_source
    with pytest.raises(CheckError):
        check_source(text + "\n" + extra)


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_module_constants_may_call_the_functions_of_expressions(resnet_source, function):
    text, _ = resnet_source
    check_source(text + f"\nX = {function}(2)\n")


# -- values ----------------------------------------------------------------------------------------
@settings(max_examples=300, deadline=None)
@given(st.text())
def test_string_literals_round_trip(text):
    literal = py_string(text)
    assert ast.literal_eval(literal) == text
    assert len(literal.splitlines()) == 1


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_comments_stay_on_their_line(text):
    line = "# " + comment_text(text)
    assert len(line.splitlines()) == 1
    tokens = ast.parse(f"x = 1  {line}\n").body
    assert len(tokens) == 1


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_docstrings_round_trip_and_cannot_be_broken_out_of(text):
    literal = docstring(text)
    assert ast.literal_eval(literal) == text
    module = ast.parse(f"{literal}\n")
    assert len(module.body) == 1
    block = docstring_block([text], "    ")
    tree = ast.parse(f"def f():\n    {block}\n")
    assert len(tree.body[0].body) == 1
    assert " ".join(ast.get_docstring(tree.body[0], clean=False).split()) == " ".join(text.split())


def test_identifiers():
    for good in ("filters", "stage_2", "_private"):
        assert is_identifier(good)
    for bad in ("class", "match", "case", "_", "print", "type", "ﬁlter", "2x", "a-b", "a\n", ""):
        assert not is_identifier(bad)
    taken = {"x"}
    assert safe_name("class", taken) == "class_"
    assert safe_name("x", taken) == "x_2"
    assert safe_name("__import__", taken) == "import__"
    assert safe_name("ﬁlter", taken, "layer") == "layer"
    assert safe_name("a\n", taken, "layer") == "layer"


# -- the CLI ---------------------------------------------------------------------------------------
SPEC = ROOT / "specs" / "digits_cnn.yaml"


def test_cli_prints_to_stdout(runner):
    result = runner.invoke(app, ["codegen", str(SPEC)])
    assert result.exit_code == 0, result.output
    assert "def build_model():" in result.stdout
    ast.parse(result.stdout)


def test_code_from_set_options_names_them_not_their_command_line_places(runner, monkeypatch):
    """The code is the overridden spec's: its header says with which options (its hash is that
    spec's), and a constant or layer an option wrote says which option, not `<--set 1>:1`."""
    monkeypatch.chdir(ROOT)
    options = ["--set", "vars.width=8", "--set", "augmentation=[random_flip: horizontal]"]
    result = runner.invoke(app, ["codegen", "specs/digits_cnn.yaml", *options])
    assert result.exit_code == 0, result.output
    header = " ".join(line.removeprefix("# ") for line in result.stdout.splitlines()[:2])
    assert header.startswith(
        f"Generated by cnnspec {__version__} from specs/digits_cnn.yaml --set vars.width=8 --set "
        "'augmentation=[random_flip: horizontal]' (spec sha256 "
    )
    assert "\nWIDTH = 8  # --set vars.width=8\n" in result.stdout
    assert "# --set augmentation=[random_flip: horizontal] augmentation\n" in result.stdout
    assert "<--set" not in result.stdout


def test_cli_writes_atomically_and_refuses_to_overwrite(runner, tmp_path):
    target = tmp_path / "model.py"
    result = runner.invoke(app, ["codegen", str(SPEC), "-o", str(target)])
    assert result.exit_code == 0, result.output
    assert "def build_model():" in target.read_text()
    target.write_text("# mine\n")
    result = runner.invoke(app, ["codegen", str(SPEC), "-o", str(target)])
    assert result.exit_code == 2
    assert "already exists" in result.output and "--force" in result.output
    assert target.read_text() == "# mine\n"
    result = runner.invoke(app, ["codegen", str(SPEC), "-o", str(target), "--force"])
    assert result.exit_code == 0
    assert "def build_model():" in target.read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.py"]  # no temp files left


def test_cli_script(runner, tmp_path):
    target = tmp_path / "train.py"
    result = runner.invoke(app, ["codegen", str(SPEC), "--script", "-o", str(target)])
    assert result.exit_code == 0, result.output
    text = target.read_text()
    assert "def main(argv=None):" in text and "load_digits" in text
    check_source(text, script=True)


def test_cli_script_refuses_a_data_path_with_a_nul_character(runner, tmp_path):
    """The script resolves its data path, and the OS call raised ValueError on the NUL (an
    internal error; found next to ``make fuzz``'s NUL file names). Without a training section
    only the script reads the data section, so it is the one to report it."""
    spec = tmp_path / "spec.yaml"
    text = SPEC.read_text().split("training:")[0].split("data:")[0]
    spec.write_text(text + 'data: {source: {npz: "digits\\0.npz"}}\n')
    target = tmp_path / "train.py"
    result = runner.invoke(app, ["codegen", str(spec), "--script", "-o", str(target)])
    assert result.exit_code == 1, result.output
    assert "data.source.npz: cannot read 'digits\\x00.npz': a file path cannot contain a NUL" in result.output
    assert "internal error" not in result.output and not target.exists()


#: The tests of what the script checker lets a script add read :func:`spec_code`, made once.
SPEC_CODE_GROUP = pytest.mark.xdist_group("digits_script")


@pytest.fixture(scope="module")
def spec_code(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The train.py ``codegen --script`` writes for SPEC and SPEC's model module: written once
    for the 20 cases that each add one statement to them (the same command each time, 0.3 s)."""
    target = tmp_path_factory.mktemp("spec_code") / "train.py"
    assert CliRunner().invoke(app, ["codegen", str(SPEC), "--script", "-o", str(target)]).exit_code == 0
    return target, generate_code(compile_spec(SPEC)).text


@pytest.mark.parametrize(
    ("statement", "script_allows"),
    [
        ('raise SystemExit("strict weights: not loaded")', True),  # a strict source's stop
        ('raise SystemExit(f"not loaded: {x}")', True),
        ("raise SystemExit", False),
        ('raise ValueError("x")', False),
        ("raise", False),
        ('raise SystemExit("x") from None', False),
        ("raise SystemExit(*x)", False),
        ('raise SystemExit("x", 2)', False),
        ("raise x.SystemExit(1)", False),
        ("sys.exit(1)", False),  # `sys` stays refused
    ],
)
@SPEC_CODE_GROUP
def test_scripts_may_only_raise_system_exit_with_a_message(spec_code, statement, script_allows):
    script, module = spec_code
    text = script.read_text()
    extra = f"\n\ndef stop(x):\n    {statement}\n"
    if script_allows:
        check_source(text + extra, script=True)
    else:
        with pytest.raises(CheckError):
            check_source(text + extra, script=True)
    with pytest.raises(CheckError):  # model modules never raise
        check_source(module + extra)


def test_cli_refuses_a_folder_as_output(runner, tmp_path):
    result = runner.invoke(app, ["codegen", str(SPEC), "-o", str(tmp_path)])
    assert result.exit_code == 2
    assert "folder" in result.output


def test_cli_writes_nothing_when_the_spec_has_errors(runner, tmp_path, write_spec):
    spec = write_spec("cnnspec: 1\nname: bad\ninput: {shape: [8, 8, 1]}\nmodel:\n  - conv2d: {filters: 0}\n")
    target = tmp_path / "out.py"
    result = runner.invoke(app, ["codegen", str(spec), "-o", str(target)])
    assert result.exit_code == 1
    assert not target.exists()


@pytest.mark.parametrize("options", [[], ["-o", "model.py"], ["--script", "-o", "train.py"]])
def test_cli_prints_each_warning_once(runner, tmp_path, write_spec, options):
    """A block called several times whose second output only some calls use: the resolver
    warns once per pruned layer, and codegen (which compiles the spec once) says each once."""
    spec = write_spec(
        "cnnspec: 1\nname: partly\ninput: {shape: [8, 8, 2]}\n"
        "blocks:\n  two:\n    outputs: [out, side]\n    layers:\n"
        "      - conv2d: {filters: 2, kernel_size: 1}\n        id: out\n"
        "      - conv2d: {filters: 2, kernel_size: 1}\n        id: side\n"
        "model:\n  - conv2d: {filters: 2, kernel_size: 1}\n    id: stem\n  - two\n"
        "  - two:\n    id: t2\n    inputs: stem\n  - two:\n    inputs: stem\n"
        "  - add:\n    inputs: [two_1.out, t2.side, two_2.out]\n    id: total\n  - global_avg_pool2d\n"
    )
    args = [str(tmp_path / option) if option.endswith(".py") else option for option in options]
    result = runner.invoke(app, ["codegen", str(spec), *args])
    assert result.exit_code == 0, result.output
    for layer in ("two_1_side", "two_2_side"):
        warning = f"layer '{layer}' does not lead to any model output; it is left out"
        assert result.output.count(warning) == 1, result.output
    assert result.output.count("does not lead to any model output") == 2, result.output


def test_cli_writes_nothing_when_codegen_refuses_a_name(runner, tmp_path, write_spec):
    spec = write_spec(
        "cnnspec: 1\nname: m\ninput: {shape: [8, 8, 1]}\n"
        "blocks:\n  class:\n    layers: [flatten]\nmodel:\n  - class\n"
    )
    target = tmp_path / "out.py"
    target.write_text("# keep\n")
    result = runner.invoke(app, ["codegen", str(spec), "-o", str(target), "--force"])
    assert result.exit_code == 1
    assert "spec.yaml:5:" in result.output  # located at the block's key
    assert target.read_text() == "# keep\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.py", "spec.yaml"]


def test_codegen_never_imports_tensorflow(tmp_path):
    code = f"""
import sys
from typer.testing import CliRunner
from cnnspec.cli.app import app
runner = CliRunner()
for args in (["codegen", {str(ROOT / "specs" / "resnet50.yaml")!r}, "-o", {str(tmp_path / "m.py")!r}],
             ["codegen", {str(SPEC)!r}, "--script", "-o", {str(tmp_path / "t.py")!r}]):
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras"))
print(heavy)
assert not heavy, heavy
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "m.py").exists() and (tmp_path / "t.py").exists()


def test_ids_computed_in_a_loop_keep_the_loop():
    compiled = compile_text(
        "cnnspec: 1\nname: m\ninput: {shape: [4, 4, 2]}\nmodel:\n"
        "  - repeat: {times: 3, as: i, layers: [{conv2d: {filters: 2, kernel_size: 1}, id: 'c${i}'}]}\n"
    )
    generated = generate_code(compiled)
    assert generated.structured and generated.notes == []
    assert 'name=f"c{i}"' in generated.text and 'name="c2"' not in generated.text


def test_names_inside_functions_are_fitted_to_every_call():
    """Layer numbers that differ between calls are written from the block's parameters (a
    `when` condition, a repeat count); a loop that ran once everywhere still counts with its
    variable, so the function stays right for other arguments."""
    head = "cnnspec: 1\nname: m\ninput: {shape: [8, 8, 4]}\nblocks:\n"
    text = generate_code(
        compile_text(
            head + "  b:\n    params: {e: int}\n    layers:\n"
            "      - {conv2d: {filters: 4, kernel_size: 1}, when: '${e != 1}'}\n"
            "      - conv2d: {filters: 4, kernel_size: 1}\n"
            "  s:\n    params: {n: int}\n    layers:\n"
            "      - repeat: {times: '${n}', as: j, layers: [conv2d: {filters: 4, kernel_size: 1}]}\n"
            "      - conv2d: {filters: 4, kernel_size: 1}\n"
            "  once:\n    params: {n: int}\n    layers:\n"
            "      - repeat: {times: '${n}', as: k, layers: [batch_norm]}\n"
            "model: [b: 1, b: 6, s: 1, s: 3, once: 1, once: 1, flatten, dense: 2]\n"
        )
    ).text
    assert 'name=f"{name}_conv2d_{(e != 1) + 1}"' in text
    assert 'name=f"{name}_conv2d_{j + 1}"' in text and 'name=f"{name}_conv2d_{n + 1}"' in text
    assert 'name=f"{name}_batch_norm_{k + 1}"' in text


def test_outputs_name_the_variables_of_their_ids():
    generated = generate_code(
        compile_text(
            "cnnspec: 1\nname: m\ninput: {shape: [8, 8, 4]}\nmodel:\n"
            "  - {repeat: {times: 2, layers: [conv2d: {filters: 4, kernel_size: 1}]}, id: r}\n"
            "  - flatten\n  - {dense: 2, id: head}\noutputs: [head, r]\n"
        )
    )
    assert "return keras.Model(inputs, [head, r]" in generated.text


def _random_item(rng, params: list[str], loops: list[str]):
    """A random layer item whose values, `when` and repeat counts read block parameters and
    loop variables (the constructs whose names the printer fits)."""
    names = params + loops

    def value(base: int):
        return f"${{{base} + {rng.choice(names)}}}" if names and rng.random() < 0.5 else base

    choice = rng.choice(["conv", "norm", "act", "drop", "res", "par", "rep", "call"])
    item: Any
    if choice == "conv":
        item = {"conv2d": {"filters": value(4), "kernel_size": 1}}
    elif choice == "norm":
        item = "batch_norm"
    elif choice == "act":
        item = {"activation": "relu"}
    elif choice == "drop":
        item = {"dropout": 0.1}
    elif choice == "res":
        body = [_random_item(rng, params, loops) for _ in range(rng.randint(1, 2))]
        item = {
            "residual": {"body": body, "shortcut": rng.choice(["auto", "identity", "none", "projection"])}
        }
    elif choice == "par":
        branches = [[{"conv2d": {"filters": 4, "kernel_size": 1}}], [_random_item(rng, params, loops)]]
        item = {"parallel": {"branches": branches, "merge": "concat"}}
    elif choice == "rep":
        var = f"v{len(loops)}"
        times = rng.choice([0, 1, 2, 3, *([f"${{{params[0]} % 3}}"] if params else [])])
        body = [_random_item(rng, params, [*loops, var]) for _ in range(rng.randint(1, 3))]
        item = {"repeat": {"times": times, "as": var, "layers": body}}
    else:
        item = {"blk": {"p": value(1)}} if not params else "batch_norm"
    if names and isinstance(item, dict) and rng.random() < 0.3:
        item = {**item, "when": f"${{{rng.choice(names)} % 2 == {rng.randint(0, 1)}}}"}
    return item


@pytest.mark.parametrize("seed", range(60))
def test_random_blocks_loops_and_conditions_print_and_replay(seed):
    """Whatever the printer decides (functions, loops, fitted names, inlining, unrolling), the
    code it writes builds exactly the resolver's graph (generate_code replays it)."""
    import json
    import random

    rng = random.Random(seed)
    block = {
        "params": {"p": "int"},
        "layers": [_random_item(rng, ["p"], []) for _ in range(rng.randint(1, 4))],
    }
    model = [_random_item(rng, [], []) for _ in range(rng.randint(1, 3))]
    model += [{"blk": {"p": rng.randint(0, 4)}} for _ in range(rng.randint(1, 3))]
    loop = [{"blk": {"p": "${k}"}}, _random_item(rng, [], ["k"])]
    model += [{"repeat": {"times": rng.randint(0, 3), "as": "k", "layers": loop}}, "flatten", {"dense": 2}]
    spec = {
        "cnnspec": 1,
        "name": "m",
        "input": {"shape": [8, 8, 4]},
        "blocks": {"blk": block},
        "model": model,
    }
    try:
        compiled = compile_text(json.dumps(spec), "random.yaml")
    except SpecError:
        return  # e.g. a shape error the random layers made
    generate_code(compiled, format_code=False)


def test_names_after_a_condition_inside_a_residual_in_a_loop():
    """A condition inside a residual's body numbers the layers after the residual too (a
    regression: the fit of `activation_1, activation_2, activation_1` over k = 0, 1, 2 was
    once accepted as `activation_1`, a solution that a later row broke)."""
    text = (
        "cnnspec: 1\nname: m\ninput: {shape: [8, 8, 4]}\nblocks:\n  blk:\n    params: {p: int}\n"
        "    layers:\n      - residual: {body: [{activation: relu, when: '${p % 2 == 1}'}, batch_norm]}\n"
        "      - activation: relu\nmodel:\n"
        "  - repeat: {times: 3, as: k, layers: [blk: {p: '${k}'}]}\n  - flatten\n  - dense: 2\n"
    )
    generated = generate_code(compile_text(text))
    assert generated.notes == []
    assert 'name=f"{name}_activation_{(p % 2 == 1) + 1}"' in generated.text
    assert 'x = blk(x, p=k, name=f"blk_{k + 1}")' in generated.text


@pytest.mark.parametrize(
    "path",
    [
        *sorted((FIXTURES / "codegen").glob("backbone*.yaml")),
        ROOT / "examples" / "backbone" / "resnet50_features.yaml",
    ],
    ids=lambda p: p.stem,
)
def test_generating_twice_from_one_compiled_spec_gives_the_same_code(path):
    """Printing a backbone must not change the compiled spec: the second module named the
    backbone's function after the item (`body_resnet50`), its first name being taken."""
    compiled = compile_spec(path)
    for script in (False, True):
        assert generate_code(compiled, script=script).text == generate_code(compiled, script=script).text


def test_vars_no_code_reads_say_so_in_their_comment(tmp_path):
    """A zoo model's head vars are decided when the code is generated (`when:` items): their
    constants said nothing, and editing INCLUDE_TOP in the file changed nothing, silently. (The
    input's shape is read: `keras.Input(shape=INPUT_SHAPE)`, tried with other shapes.)"""
    from cnnspec.backends.python_emitter import UNREAD_NOTE

    text = generate_code(compile_spec("zoo:resnet50")).text
    lines = {line.split(" = ")[0]: line for line in text.splitlines() if line[:1].isupper() and " = " in line}
    assert all(UNREAD_NOTE in lines[name] for name in ("INCLUDE_TOP", "POOLING"))
    assert all(UNREAD_NOTE not in lines[name] for name in ("STAGE_BLOCKS", "CLASSES", "INPUT_SHAPE"))
    assert lines["INPUT_SHAPE"] == "INPUT_SHAPE = [224, 224, 3]  # zoo:resnet.yaml:16"
    assert '    inputs = keras.Input(shape=INPUT_SHAPE, name="input")' in text
    assert ruff_check(text, tmp_path) == ""


def test_the_comments_name_each_spec_file_beside_the_one_generated_from(tmp_path, monkeypatch):
    """They named a file by its name alone: `# block `cb` (main.yaml:4)` for a block of
    `sub/main.yaml`, whose line 4 was another line of `main.yaml`; the zoo's
    `blocks/resnet.yaml` as `resnet.yaml`, the zoo's model file. Now relative to the folder of
    the spec the code is generated from (the same code from any working folder), the zoo's as
    `zoo:…`."""
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "main.yaml").write_text(
        "cnnspec: 1\ndescription: blocks\nblocks:\n  cb:\n    layers:\n"
        "      - conv2d: {filters: 4, kernel_size: 3}\n"
    )
    (tmp_path / "main.yaml").write_text(
        "cnnspec: 1\nname: mainx\nuse: [sub/main.yaml, zoo:blocks/resnet]\ninput: {shape: [16, 16, 3]}\n"
        "blocks:\n  own:\n    layers:\n      - conv2d: {filters: 4, kernel_size: 1}\n"
        "model:\n  - cb\n  - own\n  - projection: {filters: 8}\n  - global_avg_pool2d\n  - dense: 2\n"
    )
    texts = []
    for cwd in (tmp_path, tmp_path / "sub", tmp_path.parent):
        monkeypatch.chdir(cwd)
        texts.append(generate_code(compile_spec(tmp_path / "main.yaml")).text)
    assert texts[0] == texts[1] == texts[2]
    assert "# block `cb` (sub/main.yaml:4)\n" in texts[0] and "    # sub/main.yaml:6 conv2d\n" in texts[0]
    assert "# block `own` (main.yaml:6)\n" in texts[0]
    assert "# block `projection` (zoo:blocks/resnet.yaml:" in texts[0]


@pytest.mark.parametrize(
    ("statement", "script_allows"),
    [
        ("class Average(keras.callbacks.Callback):\n    pass", True),  # use_ema's AverageIn/Out
        ("class Rate(keras.optimizers.schedules.LearningRateSchedule):\n    pass", True),  # WarmUp
        ("class Evil:\n    pass", False),
        ("class Evil(object):\n    pass", False),
        ("class Evil(keras.callbacks.Callback, dict):\n    pass", False),
        ("class Evil(keras.callbacks.Callback, metaclass=type):\n    pass", False),
        ("class Evil(keras.layers.Layer):\n    pass", False),  # a layer the IR check cannot see
        ("class PixelCutMix(keras.layers.CutMix):\n    pass", True),  # cutmix's exact labels
        ("class Evil(keras.layers.MixUp):\n    pass", False),  # (only the templates' base)
        (
            "class Average(keras.callbacks.Callback):\n    def __init__(self):\n        super().__init__()",
            False,  # (`super` stays refused: the templates' callbacks have no constructor)
        ),
    ],
)
@SPEC_CODE_GROUP
def test_scripts_define_only_the_classes_of_their_templates(spec_code, statement, script_allows):
    script, module = spec_code
    extra = "\n\n" + statement + "\n"
    if script_allows:
        check_source(script.read_text() + extra, script=True)
    else:
        with pytest.raises(CheckError):
            check_source(script.read_text() + extra, script=True)
    with pytest.raises(CheckError):  # model modules define no class
        check_source(module + extra)
