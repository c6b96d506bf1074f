"""`cnnspec codegen` of a backbone cut inside one of its items: `until:` a layer name as
`cnnspec inspect` lists it, inside a block call, a repeat's iteration, a residual's body or
shortcut, or a parallel's branch (EfficientNet's `block6a_expand_activation`), or an id reached
through one (`enc[1].s`).

The code writes the backbone's items before the one that holds the cut as usual, then that one
cut: a block call written in place up to the cut, a repeat as its whole iterations then the
cut's iteration up to the cut, a residual or parallel as the one path that leads to the cut.
It holds only the layers the cut tensor depends on (a layer before the cut that it does not
depend on is left out), as `cnnspec build` keeps them.

The fast tests run the CLI (the printer's own replay, :func:`verify_model`, checks the code
against the IR: every layer, its name, inputs and parameters); the slow one builds each
generated module with Keras beside cnnspec's builder, in one fresh process, and compares
layer names, classes, configurations, weight shapes and the outputs on a random batch.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cnnspec.api import compile_spec
from cnnspec.backends.python_emitter import generate_code
from cnnspec.cli.app import app
from cnnspec.errors import SpecError
from tests.conftest import FIXTURES, run_python

#: A backbone spec with what a cut can land in: a block call (`stage`) inside a carrying
#: repeat (`enc`), a repeat inside the block, a residual with a projection shortcut (`unit`),
#: a parallel (`mixer`), and a layer (`side`) before the repeat that only the end of each
#: stage reads (a cut inside the stage does not depend on it).
BASE = """cnnspec: 1
name: base
input: {shape: [16, 16, 3]}
vars: {width: 4, depth: 3}
blocks:
  unit:
    params: {filters: int, stride: {type: int, default: 1}}
    layers:
      - residual:
          body:
            - conv2d: {filters: "${filters}", kernel_size: 3, strides: "${stride}", padding: same}
              id: conv
            - batch_norm:
              id: bn
            - activation: relu
          shortcut: projection
          activation: relu
        id: res
  mixer:
    params: {filters: int}
    layers:
      - parallel:
          branches:
            - [{conv2d: {filters: "${filters}", kernel_size: 1}, id: one}]
            - [{conv2d: {filters: "${filters}", kernel_size: 3, padding: same}, id: three},
               {batch_norm: null, id: three_bn}]
          merge: concat
          activation: relu
  stage:
    params: {filters: int, blocks: int}
    layers:
      - unit: {filters: "${filters}", stride: 2}
        id: first
      - conv2d: {filters: "${2 * filters}", kernel_size: 1, strides: 2}
        inputs: input
        id: side
      - repeat:
          times: "${blocks - 1}"
          as: k
          layers:
            - unit: "${filters}"
              id: "u${k}"
        inputs: first
      - mixer: "${filters}"
        id: mix
      - add:
        inputs: [mix, side]
model:
  - conv2d: {filters: "${width}", kernel_size: 3, padding: same}
    id: stem
  - id: enc
    repeat:
      times: "${depth}"
      as: i
      carry: {x: stem}
      layers:
        - stage: {filters: "${width * 2 ** i}", blocks: 2}
          inputs: x
          id: s
      next: {x: s}
  - global_avg_pool2d:
    inputs: x
  - dense: 3
"""


def backbone(spec: str, until: str, side: int, rest: str = "  - flatten\n") -> str:
    """A model of one backbone item (`id: body`) cut at ``until``, then ``rest``."""
    return (
        f"cnnspec: 1\nname: m\ninput: {{shape: [{side}, {side}, 3]}}\nmodel:\n"
        f"  - backbone: {{spec: '{spec}', until: '{until}'}}\n    id: body\n{rest}"
    )


#: The model around the backbone in the `hand_branch` case: it also reads two of the
#: backbone's ids before the cut (returned by its function too).
REACH = """  - global_avg_pool2d:
    id: a
  - global_avg_pool2d:
    inputs: body.stem
    id: b
  - global_avg_pool2d:
    inputs: "body.enc[0].s"
    id: c
  - concat:
    inputs: [a, b, c]
"""

SPECS: dict[str, str] = {
    # EfficientNetB0 in its 6th stage's first block (outer repeat s = 5, inner j = 0), in the
    # residual's body of the block
    "efficientnet_block6a": backbone("zoo:efficientnet_b0", "block6a_expand_activation", 64),
    # … and in a later iteration of the inner repeat (j = 2), inside the squeeze-and-excite call
    "efficientnet_block6c": backbone("zoo:efficientnet_b0", "block6c_se_excite", 64),
    # MobileNetV3Small: inside the squeeze-and-excite call of the 4th inverted residual
    "mobilenet_v3_small": backbone("zoo:mobilenet_v3_small", "expanded_conv_3_squeeze_excite_relu", 96),
    # … at the end of its third inverted residual, named as the block call (an id in a repeat)
    "mobilenet_v3_block": backbone("zoo:mobilenet_v3_small", "expanded_conv_2", 96),
    # … at the end of the squeeze-and-excite call inside the fourth
    "mobilenet_v3_nested_block": backbone("zoo:mobilenet_v3_small", "expanded_conv_3.squeeze_excite", 96),
    # ResNet50: in the residual body of conv3's third bottleneck (the stage's repeat)
    "resnet50_body": backbone("zoo:resnet50", "conv3_bottleneck_3_conv2d_2", 64),
    # … and on the shortcut of conv3's first bottleneck (its projection block, under `when`)
    "resnet50_shortcut": backbone(
        "zoo:resnet50", "conv3_bottleneck_1_shortcut_projection_1_batch_norm_1", 64
    ),
    # the hand-written spec: one parallel branch in the last iteration, the model reading ids
    "hand_branch": backbone("base.yaml", "enc_2_s_mix_three_bn", 16, REACH),
    # … the convolution of a projection shortcut the resolver made
    "hand_projection": backbone("base.yaml", "enc_0_s_first_res_shortcut_conv2d_1", 16),
    # … a residual's merge (its activation after the merge is left out)
    "hand_merge": backbone("base.yaml", "enc_1_s_u0_res_add_1", 16),
    # … an id reached through one iteration (a whole call: the repeat is cut after it)
    "hand_iteration_id": backbone("base.yaml", "enc[1].s", 16),
}

#: What the code says for each case (besides building the right model).
EXPECTED: dict[str, list[str]] = {
    "efficientnet_block6a": [
        'body = efficientnet_b0(inputs, name="body")',
        "# iterations 1-5 of 7 (the cut is in the next one)",
        "for s in range(5):",
        "# iteration 6 of 7 (s = 5), up to the cut at block6a_expand_activation",
        "# iteration 1 of 4 (j = 0), up to the cut at block6a_expand_activation",
        "# its layers written here, up to the cut at block6a_expand_activation",
        "# the residual's body, up to the cut at block6a_expand_activation",
        'name=f"{name}_block6a_expand_activation"',
        "return expand_activation",
    ],
    "efficientnet_block6c": [
        "# iterations 1-2 of 4 (the cut is in the next one)",
        "# iteration 3 of 4 (j = 2), up to the cut at block6c_se_excite",
        'name=f"{name}_block6c_se"',
        "return se",
    ],
    "mobilenet_v3_small": [
        "# iteration 4 of 11 (i = 3), up to the cut at expanded_conv_3_squeeze_excite_relu",
        "# block squeeze_excite_v3()",
        'name=f"{name}_expanded_conv_3_squeeze_excite_relu"',
    ],
    "mobilenet_v3_block": [
        "# iterations 1-2 of 11 (the cut is in the next one)",
        "# iteration 3 of 11 (i = 2), up to the cut at expanded_conv_2",
        'name=f"{name}_expanded_conv_2"',
        "return expanded_conv_2",
    ],
    "mobilenet_v3_nested_block": [
        "# iteration 4 of 11 (i = 3), up to the cut at expanded_conv_3.squeeze_excite",
        "return squeeze_excite",
    ],
    "resnet50_body": [
        'x = bottleneck(conv2, filters=128, stride=2, name=f"{name}_conv3_bottleneck_1")',
        'x = bottleneck(x, filters=128, name=f"{name}_conv3_bottleneck_2")',
        "# iteration 2 of 3, up to the cut at conv3_bottleneck_3_conv2d_2",
        "# the residual's body, up to the cut at conv3_bottleneck_3_conv2d_2",
        'name=f"{name}_conv3_bottleneck_3_conv2d_2"',
    ],
    "resnet50_shortcut": [
        "# the residual's shortcut, up to the cut at conv3_bottleneck_1_shortcut_projection_1_batch_norm_1",
        "projection(conv2, filters=512, stride=2",
    ],
    "hand_branch": [
        "for i in range(2):",
        "# iteration 3 of 3 (i = 2), up to the cut at enc_2_s_mix_three_bn",
        'u0 = unit(first, filters=BODY_WIDTH * 4, name=f"{name}_enc_2_s_u0")',
        "# branch 2 of the parallel, up to the cut at enc_2_s_mix_three_bn",
        "return three_bn, stem, enc_s[0]",
        'body, body_stem, body_enc_0_s = base(inputs, name="body")',
    ],
    "hand_projection": [
        "# the residual's projection shortcut, up to the cut at enc_0_s_first_res_shortcut_conv2d_1",
        'name=f"{name}_enc_0_s_first_res_shortcut_conv2d_1"',
    ],
    "hand_merge": [
        "shortcut = first",
        'layers.Add(name=f"{name}_enc_1_s_u0_res_add_1")',
    ],
    "hand_iteration_id": [
        "# iteration 2 of 3 (i = 1), up to the cut at enc[1].s",
        'name=f"{name}_enc_1_s"',
    ],
}

#: What the code must not say: the layers after the cut, and those before it that the cut
#: tensor does not depend on (the other paths of a residual or parallel, `side`).
ABSENT: dict[str, list[str]] = {
    "efficientnet_block6a": ["block6a_dwconv", "block6b", "block7", "top_conv", "range(7)"],
    "efficientnet_block6c": ["block6c_project_conv", "block6d"],
    "mobilenet_v3_small": ["squeeze_excite_conv_1", "expanded_conv_3_project", "expanded_conv_4"],
    "mobilenet_v3_block": ["expanded_conv_3_", "range(11)"],
    "mobilenet_v3_nested_block": ["expanded_conv_3_project", "expanded_conv_4"],
    "resnet50_body": ["conv3_bottleneck_3_batch_norm_2", "conv3_bottleneck_3_add_1", "conv4"],
    "resnet50_shortcut": ["conv3_bottleneck_1_conv2d_1", "conv3_bottleneck_1_add_1"],
    "hand_branch": ["enc_2_s_mix_one", "enc_2_s_side"],
    "hand_projection": ["enc_0_s_first_res_conv", "shortcut_batch_norm_1", "enc_0_s_side"],
    "hand_merge": ["enc_1_s_u0_res_activation_2", "enc_1_s_mix", "enc_1_s_side"],
    "hand_iteration_id": ["enc_2_s"],
}


#: What the backbone's function must not say past the innermost item cut (earlier calls of
#: the same blocks are functions that have it): the merges and what follows them.
ABSENT_AFTER_CUT: dict[str, list[str]] = {
    "efficientnet_block6a": ["layers.Add(", "layers.Dropout("],
    "resnet50_body": ["layers.Add(", "bottleneck("],
    "hand_branch": ["layers.Concatenate(", "layers.Add(", "side"],
}


def write_case(folder: Path, case: str) -> Path:
    """The case's spec (and the hand-written backbone spec) in ``folder``."""
    (folder / "base.yaml").write_text(BASE, encoding="utf-8")
    spec = folder / f"{case}.yaml"
    spec.write_text(SPECS[case], encoding="utf-8")
    return spec


def generate(runner, folder: Path, case: str) -> Path:
    spec = write_case(folder, case)
    module = folder / f"{case}_model.py"
    result = runner.invoke(app, ["codegen", str(spec), "-o", str(module)])
    assert result.exit_code == 0, result.output
    return module


class CutModules:
    """Each case's module as `cnnspec codegen` writes it (:func:`generate`), written once per
    process into one folder: the fast test of a case and the slow test of them all read the same
    module (neither writes to it), so the slow one no longer generates all 14 again."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.runner = CliRunner()
        self.modules: dict[str, Path] = {}

    def __getitem__(self, case: str) -> Path:
        if case not in self.modules:
            self.modules[case] = generate(self.runner, self.folder, case)
        return self.modules[case]


@pytest.fixture(scope="session")
def cut_modules(tmp_path_factory: pytest.TempPathFactory) -> CutModules:
    return CutModules(tmp_path_factory.mktemp("cuts"))


def test_every_case_says_what_its_code_shows():
    assert set(EXPECTED) == set(SPECS) == set(ABSENT)


@pytest.mark.parametrize("case", sorted(SPECS))
def test_codegen_writes_a_cut_inside_an_item(case, cut_modules):
    code = cut_modules[case].read_text(encoding="utf-8")
    for expected in EXPECTED[case]:
        assert expected in code, expected
    for absent in ABSENT[case]:
        assert absent not in code, absent
    after = code[code.rindex("up to the cut at") : code.index("def build_model")]
    for absent in ABSENT_AFTER_CUT.get(case, []):
        assert absent not in after, absent
    assert "is inside one" not in code


def test_every_layer_of_a_backbone_is_a_cut_codegen_writes(tmp_path):
    """Each layer of the hand-written backbone (and ids through its calls and iterations) as
    the cut: the code builds what the IR has, up to that layer and nothing else (the
    printer's replay compares them layer for layer, and refuses any difference)."""
    (tmp_path / "base.yaml").write_text(BASE, encoding="utf-8")
    names = [node.name for node in compile_spec(tmp_path / "base.yaml").ir.nodes]
    ids = ["stem", "enc", "enc[0].s", "enc[1].s.first", "enc[2].s.mix"]
    spec = tmp_path / "cut.yaml"
    for until in [*names, *ids]:
        spec.write_text(backbone("base.yaml", until, 16), encoding="utf-8")
        compiled = compile_spec(spec)
        code = generate_code(compiled, format_code=False).text
        kept = {node.name.removeprefix("body_") for node in compiled.ir.nodes[:-1]}
        assert not {name for name in names if name not in kept and f'_{name}"' in code}, until


def test_a_cut_inside_a_backbone_of_the_backbone_stays_refused(tmp_path):
    """The one cut codegen still refuses: inside a backbone item of the backbone's own spec
    (that backbone is written whole, as its own function). The message names that backbone
    and the spec that holds it; the hint names a cut that codegen writes."""
    (tmp_path / "base.yaml").write_text(BASE, encoding="utf-8")
    (tmp_path / "wrap.yaml").write_text(
        "cnnspec: 1\nname: wrap\ninput: {shape: [16, 16, 3]}\nmodel:\n"
        "  - conv2d: {filters: 3, kernel_size: 1}\n"
        "  - backbone: {spec: base.yaml, until: enc_1_s_u0_res_bn}\n    id: inner\n"
        "  - global_avg_pool2d\n",
        encoding="utf-8",
    )
    spec = tmp_path / "nested.yaml"
    spec.write_text(backbone("wrap.yaml", "inner_enc_0_s_first_res_bn", 16), encoding="utf-8")
    with pytest.raises(SpecError) as caught:
        generate_code(compile_spec(spec))
    (diag,) = caught.value.diagnostics
    assert diag.code == "codegen"
    assert "cannot write the backbone cut at 'inner_enc_0_s_first_res_bn'" in diag.headline()
    assert diag.headline().endswith(
        "it is inside backbone 'base.yaml' at model[1] of 'wrap.yaml', and codegen does not cut a "
        "backbone of a backbone's spec"
    )
    assert diag.loc is not None and diag.loc.line == 5
    assert diag.hint == (
        "cut at 'inner' (its output) or at a layer after that backbone item, or build the model "
        "with `cnnspec build`"
    )
    assert [note.message for note in diag.notes] == [
        f"in backbone 'base.yaml' at model[1] ({tmp_path / 'wrap.yaml'}:6:15)"
    ]


@pytest.mark.slow
def test_generated_cuts_build_the_builders_model(cut_modules, tmp_path):
    """Every case's module (the one the fast test of the case reads), imported before cnnspec in
    one fresh process, builds the model `cnnspec build` builds: layer names and order, classes,
    configurations, weight shapes, parameters, and (both on the same weights, drawn by the
    builder's initializers) the outputs on a random batch."""
    modules = {cut_modules.folder / f"{case}.yaml": cut_modules[case] for case in sorted(SPECS)}
    assert_modules_build_the_builders_models(modules, tmp_path)


def assert_modules_build_the_builders_models(modules: dict[Path, Path], folder: Path) -> None:
    """Each generated module (spec → module), imported before cnnspec in one fresh process
    (tests/fixtures/codegen/compare_models.py, run in ``folder``), builds its spec's model as
    `cnnspec build` does, outputs on a random batch included, with the IR's parameter count."""
    jobs = [{"spec": str(spec), "module": str(module), "outputs": True} for spec, module in modules.items()]
    job_file = folder / "jobs.json"
    job_file.write_text(json.dumps(jobs), encoding="utf-8")
    done = run_python(FIXTURES / "codegen" / "compare_models.py", str(job_file), cwd=folder, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(done.stdout.strip().splitlines()[-1])
    for job in jobs:
        result = results[job["spec"]]
        assert result["ok"], (job["spec"], result["problems"])
        assert result["params"] == compile_spec(job["spec"]).ir.totals.params
