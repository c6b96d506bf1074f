"""`cnnspec codegen` of a backbone whose spec has a backbone item of its own (`mid.yaml` is
`leaf.yaml` then layers; the model is `mid.yaml` cut at `neck`, then its head).

The inner backbone is a function of the module too, which the outer backbone's function calls
(`body = leaf(x, name=f"{name}_body")`), with the ids the specs around it name returned. What
codegen cannot write (a cut inside the inner backbone, a backbone in a block or loop of the
backbone's spec) is refused at the model's own backbone item, the spec being generated, naming
the inner backbone as reached through the outer one, with a note at the inner item and a hint
that leads to code (never to a cut that is refused too).

The fast tests check the code and the printer's replay (every layer, its name, inputs and
parameters against the IR); the slow one builds each module with Keras beside cnnspec's
builder in a fresh process and compares the models, their weights and outputs.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cnnspec.api import compile_spec
from cnnspec.backends.python_emitter import generate_code
from cnnspec.cli.app import app
from cnnspec.errors import SpecError
from tests.test_codegen_cuts import assert_modules_build_the_builders_models

LEAF = """cnnspec: 1
name: leaf
input: {shape: [8, 8, 3]}
model:
  - conv2d: {filters: 4, kernel_size: 3, padding: same}
    id: stem
  - conv2d: {filters: 6, kernel_size: 1}
    id: head
"""

MID = """cnnspec: 1
name: mid
input: {shape: [8, 8, 3]}
model:
  - backbone: {spec: leaf.yaml, until: head}
    id: body
  - conv2d: {filters: 5, kernel_size: 1}
    id: neck
  - conv2d: {filters: 3, kernel_size: 1}
    inputs: body.stem
    id: side
"""

#: `mid.yaml` under one more backbone: three levels.
UPPER = """cnnspec: 1
name: upper
input: {shape: [8, 8, 3]}
model:
  - backbone: {spec: mid.yaml, until: neck}
    id: m
  - conv2d: {filters: 7, kernel_size: 1}
    id: u
"""

#: A backbone item in a block of the backbone's spec: still refused.
IN_BLOCK = """cnnspec: 1
name: in_block
input: {shape: [8, 8, 3]}
blocks:
  wrap:
    layers:
      - backbone: {spec: leaf.yaml, until: head}
model:
  - wrap:
    id: w
  - conv2d: {filters: 5, kernel_size: 1}
    id: neck
"""


def top(until: str, spec: str = "mid.yaml", model: str = "") -> str:
    """The model: ``spec`` cut at ``until`` (or ``model``'s items), then a head."""
    return (
        "cnnspec: 1\nname: top\ninput: {shape: [8, 8, 3]}\nmodel:\n"
        + (model or f"  - backbone: {{spec: {spec}, until: '{until}'}}\n")
        + "  - global_avg_pool2d\n  - dense: {units: 2, activation: softmax}\n"
    )


def write(folder: Path, until: str, spec: str = "mid.yaml", model: str = "") -> Path:
    """The backbone specs and the model (``top.yaml``) in ``folder``."""
    for name, text in {"leaf": LEAF, "mid": MID, "upper": UPPER, "in_block": IN_BLOCK}.items():
        (folder / f"{name}.yaml").write_text(text, encoding="utf-8")
    path = folder / "top.yaml"
    path.write_text(top(until, spec, model), encoding="utf-8")
    return path


def refusal(spec: Path) -> tuple[str, str | None, list[str]]:
    """The one error of generating ``spec``'s code: its first line, hint and notes."""
    with pytest.raises(SpecError) as caught:
        generate_code(compile_spec(spec))
    (diag,) = caught.value.diagnostics
    assert diag.code == "codegen"
    return diag.headline(), diag.hint, [note.message for note in diag.notes]


HINT = (
    "build the model with `cnnspec build`, or write the backbone 'leaf.yaml' as an item of this "
    "spec's own model, with the layers after it"
)


def test_a_cut_inside_the_inner_backbone_is_refused_with_a_hint_that_works(tmp_path):
    """`until: body.stem` lands inside `mid.yaml`'s backbone item: the hint said to cut at a
    layer outside that item, which was refused in turn; the cut it names now gives code."""
    spec = write(tmp_path, "body.stem")
    headline, hint, notes = refusal(spec)
    assert headline == (
        f"{spec}:5:39: error: model[0].backbone.until: codegen cannot write the backbone cut at "
        "'body.stem': it is inside backbone 'leaf.yaml' at model[0] of 'mid.yaml', and codegen "
        "does not cut a backbone of a backbone's spec"
    )
    assert hint == (
        "cut at 'body' (its output) or at a layer after that backbone item, or build the model "
        "with `cnnspec build`"
    )
    assert notes == [f"in backbone 'leaf.yaml' at model[0] ({tmp_path / 'mid.yaml'}:5:15)"]
    assert 'x = mid(inputs, name="backbone_1")' in generate_code(compile_spec(write(tmp_path, "body"))).text


def test_a_backbone_in_a_block_of_the_backbone_is_refused_at_the_models_item(runner, tmp_path):
    """`in_block.yaml` calls a block that holds a backbone item: codegen writes a backbone item
    only in a model's own list; the error is at the model's item, with a note at the inner one."""
    spec = write(tmp_path, "neck", "in_block.yaml")
    headline, hint, notes = refusal(spec)
    assert headline == (
        f"{spec}:5:15: error: model[0].backbone: codegen cannot write backbone 'leaf.yaml' inside "
        "backbone 'in_block.yaml': it is in a block or loop of 'in_block.yaml', and codegen writes "
        "a backbone item only in a model's own list"
    )
    assert hint == HINT
    assert notes == [f"in backbone 'leaf.yaml' at blocks.wrap.layers[0] ({tmp_path / 'in_block.yaml'}:7:19)"]
    result = runner.invoke(app, ["codegen", str(spec), "-o", str(tmp_path / "top.py")])
    assert result.exit_code == 1
    assert headline in result.output
    assert "internal error" not in result.output and not (tmp_path / "top.py").exists()


def test_the_backbone_spec_alone_is_written(runner, tmp_path):
    """`mid.yaml` on its own: its backbone item is in the model's own list."""
    write(tmp_path, "neck")
    result = runner.invoke(app, ["codegen", str(tmp_path / "mid.yaml"), "-o", str(tmp_path / "mid.py")])
    assert result.exit_code == 0, result.output
    assert '_, body_stem = leaf(inputs, name="body")' in (tmp_path / "mid.py").read_text(encoding="utf-8")


#: Each case: the model's items before its head, and the lines of code it must have.
CASES: dict[str, tuple[str, list[str]]] = {
    # the tester's case: no cut inside the inner backbone
    "neck": (
        "  - backbone: {spec: mid.yaml, until: neck}\n",
        [
            "def leaf(x, *, name: str):",
            "def mid(x, *, name: str):",
            '    body = leaf(x, name=f"{name}_body")',
            '    neck = layers.Conv2D(filters=5, kernel_size=1, name=f"{name}_neck")(body)',
            '    x = mid(inputs, name="backbone_1")',
        ],
    ),
    # cut at the inner backbone item itself
    "body": ("  - backbone: {spec: mid.yaml, until: body}\n", ['    body = leaf(x, name=f"{name}_body")']),
    # a cut that reads inside the inner backbone (`body.stem`): the inner function returns it
    "side": (
        "  - backbone: {spec: mid.yaml, until: side}\n",
        ["    return head, stem", '    _, body_stem = leaf(x, name=f"{name}_body")'],
    ),
    # the model names ids of the inner backbone through the outer one (`a.body.stem`)
    "reach": (
        "  - backbone: {spec: mid.yaml, until: neck}\n    id: a\n"
        "  - concat:\n    inputs: [a, a.body.stem, a.body]\n",
        ["    return neck, body_stem, body", '    a, a_body_stem, a_body = mid(inputs, name="a")'],
    ),
    # one spec twice: the second's functions and constants are named after its item
    "twice": (
        "  - backbone: {spec: mid.yaml, until: neck}\n    id: a\n"
        "  - backbone: {spec: mid.yaml, until: side}\n    inputs: input\n    id: b\n"
        "  - concat:\n    inputs: [a, b]\n",
        ["def b_body_leaf(x, *, name: str):", '    _, body_stem = b_body_leaf(x, name=f"{name}_body")'],
    ),
    # three levels: upper.yaml → mid.yaml → leaf.yaml
    "three": (
        "  - backbone: {spec: upper.yaml, until: u}\n",
        ['    m = mid(x, name=f"{name}_m")', '    x = upper(inputs, name="backbone_1")'],
    ),
}


def generate(runner, folder: Path, case: str) -> Path:
    """The case's model (``CASE.yaml``) and its generated module (``CASE.py``)."""
    spec = write(folder, "", model=CASES[case][0]).rename(folder / f"{case}.yaml")
    module = folder / f"{case}.py"
    result = runner.invoke(app, ["codegen", str(spec), "-o", str(module)])
    assert result.exit_code == 0, result.output
    return module


@pytest.mark.parametrize("case", sorted(CASES))
def test_codegen_writes_a_backbone_of_a_backbone(case, runner, tmp_path):
    """The error said the item was not in the model's own list (it is, in `mid.yaml`): the
    inner backbone is now a function the outer one's calls, and the printer's replay checks
    every layer, name, input and parameter against the IR."""
    lines = generate(runner, tmp_path, case).read_text(encoding="utf-8").splitlines()
    for expected in CASES[case][1]:
        assert expected in lines, expected
    compiled = compile_spec(tmp_path / f"{case}.yaml")
    assert generate_code(compiled).text == generate_code(compiled).text  # (the tree is left as it was)


@pytest.mark.slow
def test_generated_nested_backbones_build_the_builders_model(runner, tmp_path):
    """Every case's module, imported before cnnspec in one fresh process, builds the model
    `cnnspec build` builds: layer names and order, classes, configurations, weight shapes,
    parameters, and (both on the same weights, drawn by the builder's initializers) the outputs
    on a random batch."""
    modules = {tmp_path / f"{case}.yaml": generate(runner, tmp_path, case) for case in sorted(CASES)}
    assert_modules_build_the_builders_models(modules, tmp_path)
