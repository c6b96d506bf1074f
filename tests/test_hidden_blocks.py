"""A spec's block that hides a library's (`use:`): the library's own blocks then call the spec's,
which is kept (a helper replaced on purpose) but never silent: a located warning at the spec's
block, in `cnnspec validate`, in a library's own check and in the language server, where the
hiding changes what the spec builds: the spec calls a library block that calls the hidden one."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from cnnspec.api import compile_spec
from cnnspec.cli.app import app
from cnnspec.lsp.documents import Documents

#: The tester's spec: its own `projection` for its own head, beside zoo:blocks/resnet's, which
#: basic_residual and bottleneck call for their shortcuts.
ZOO_SHADOW = """\
cnnspec: 1
name: zshadow
input: {shape: [16, 16, 3]}
use: [zoo:blocks/resnet]
blocks:
  projection:          # my own helper, for my own head
    params: {filters: int, stride: {type: int, default: 1}}
    layers:
      - conv2d: {filters: "${filters}", kernel_size: 3, strides: "${stride}", padding: same}
model:
  - conv2d: {filters: 8, kernel_size: 3, padding: same}
  - basic_residual: {filters: 16, stride: 2}
  - projection: {filters: 4}
  - global_avg_pool2d
  - dense: 2
"""

#: Only the callers the spec calls are named: its model calls basic_residual, never bottleneck.
ZOO_WARNING = (
    "block `projection` hides zoo:blocks/resnet's `projection`, which its block `basic_residual` "
    "calls: basic_residual builds with this one"
)

#: A library whose one block calls another of its blocks, inside a residual's shortcut.
LIBRARY = """\
cnnspec: 1
blocks:
  helper:
    layers: [conv2d: {filters: 4, kernel_size: 1}]
  unit:
    layers:
      - residual: {body: [conv2d: {filters: 4, kernel_size: 3, padding: same}], shortcut: [helper]}
  lonely:
    layers: [batch_norm]
"""


def test_validate_warns_at_the_block_that_hides_a_library_block_its_blocks_call(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(ZOO_SHADOW)
    result = CliRunner().invoke(app, ["validate", str(spec)])
    assert result.exit_code == 0, result.output
    assert f"spec.yaml:6:3: warning: blocks.projection: {ZOO_WARNING}\n" in result.output
    assert "  hint: rename this block to keep the library's, e.g. `my_projection`\n" in result.output
    # the behaviour is kept: the library's blocks build with the spec's projection (a 3×3
    # convolution without batch norm in basic_residual's shortcut)
    compiled = compile_spec(spec)
    shortcut = [n for n in compiled.ir.nodes if n.name.startswith("basic_residual") and n.kind == "conv2d"]
    assert [n.params["kernel_size"] for n in shortcut][-1] == 3
    (warning,) = compiled.warnings
    assert (warning.code, warning.path, warning.message) == ("hidden-block", "blocks.projection", ZOO_WARNING)


def test_one_caller_is_named_alone(tmp_path: Path) -> None:
    (tmp_path / "lib.yaml").write_text(LIBRARY)
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "cnnspec: 1\nname: s\ninput: {shape: [8, 8, 3]}\nuse: [lib.yaml]\n"
        "blocks:\n  helper:\n    layers: [conv2d: {filters: 4, kernel_size: 3, padding: same}]\n"
        "model: [unit, flatten]\n"
    )
    (warning,) = compile_spec(spec).warnings
    assert (warning.loc.line, warning.loc.column) == (6, 3)
    assert warning.message == (
        "block `helper` hides lib.yaml's `helper`, which its block `unit` calls: unit builds with this one"
    )
    assert warning.hint == "rename this block to keep the library's, e.g. `my_helper`"


def test_hiding_a_library_block_nothing_there_calls_needs_no_warning(tmp_path: Path) -> None:
    (tmp_path / "lib.yaml").write_text(LIBRARY)
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "cnnspec: 1\nname: s\ninput: {shape: [8, 8, 3]}\nuse: [lib.yaml, zoo:blocks/resnet]\n"
        "blocks:\n  lonely:\n    layers: [flatten]\n  preact_stage:\n    layers: [flatten]\n"
        "model: [unit, lonely, preact_stage]\n"
    )
    assert compile_spec(spec).warnings == []


def test_hiding_a_block_only_uncalled_library_blocks_call_needs_no_warning(tmp_path: Path) -> None:
    """The tester's own `projection` beside zoo:blocks/resnet, whose model calls none of the
    blocks that call the library's `projection`: the spec builds what it would build without
    the library's, and was warned that basic_residual and bottleneck "build with this one"."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(ZOO_SHADOW.replace("  - basic_residual: {filters: 16, stride: 2}\n", ""))
    result = CliRunner().invoke(app, ["validate", str(spec)])
    assert result.exit_code == 0, result.output
    assert result.output == f"ok {spec}: zshadow — 4 layers, 526 parameters\n"
    assert compile_spec(spec).warnings == []


def test_a_caller_reached_through_other_blocks_is_named(tmp_path: Path) -> None:
    """Called through blocks, the library's (bottleneck_stage calls bottleneck) or the spec's
    own (`stage`), a caller builds with the spec's block as well: warned, naming the callers the
    spec reaches, and no other (the library's preact blocks, which call `preact_projection`,
    are not even callers)."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        ZOO_SHADOW.replace(
            "model:\n",
            "  stage:\n    layers: [basic_residual: 8, bottleneck_stage: {filters: 4, blocks: 1}]\nmodel:\n",
        ).replace("  - basic_residual: {filters: 16, stride: 2}\n", "  - stage\n")
    )
    (warning,) = compile_spec(spec).warnings
    assert (warning.code, warning.loc.line, warning.loc.column, warning.message) == (
        "hidden-block",
        6,
        3,
        "block `projection` hides zoo:blocks/resnet's `projection`, which its blocks `basic_residual`, "
        "`bottleneck` call: they build with this one",
    )
    only_stage = spec.read_text().replace("basic_residual: 8, ", "")
    spec.write_text(only_stage)
    (warning,) = compile_spec(spec).warnings
    assert warning.message == (
        "block `projection` hides zoo:blocks/resnet's `projection`, which its block `bottleneck` calls: "
        "bottleneck builds with this one"
    )


def test_the_model_of_a_spec_that_extends_the_hiding_one_decides(tmp_path: Path) -> None:
    """The base hides lib.yaml's `helper` but never calls `unit`: no warning for it; a spec that
    extends it and calls `unit` builds with the base's helper, and is warned at the base's block."""
    (tmp_path / "lib.yaml").write_text(LIBRARY)
    base = tmp_path / "base.yaml"
    base.write_text(
        "cnnspec: 1\nname: s\ninput: {shape: [8, 8, 3]}\nuse: [lib.yaml]\n"
        "blocks:\n  helper:\n    layers: [conv2d: {filters: 4, kernel_size: 3, padding: same}]\n"
        "model: [helper, flatten]\n"
    )
    assert compile_spec(base).warnings == []
    child = tmp_path / "child.yaml"
    child.write_text("cnnspec: 1\nextends: base.yaml\nmodel: [unit, flatten]\n")
    (warning,) = compile_spec(child).warnings
    assert (warning.loc.file, warning.loc.line, warning.loc.column) == (str(base), 6, 3)
    assert warning.message == (
        "block `helper` hides lib.yaml's `helper`, which its block `unit` calls: unit builds with this one"
    )


def test_a_library_check_warns_of_its_own_hiding_block_and_a_spec_using_it_does_not(tmp_path: Path) -> None:
    (tmp_path / "base.yaml").write_text(LIBRARY)
    (tmp_path / "lib.yaml").write_text(
        "cnnspec: 1\nuse: [base.yaml]\nblocks:\n  helper:\n"
        "    layers: [conv2d: {filters: 4, kernel_size: 3, padding: same}]\n"
    )
    result = CliRunner().invoke(app, ["validate", str(tmp_path / "lib.yaml")])
    assert result.exit_code == 0, result.output
    assert (
        "lib.yaml:4:3: warning: blocks.helper: block `helper` hides base.yaml's `helper`, which its block "
        "`unit` calls: unit builds with this one\n"
    ) in result.output
    # the library's author chose it: a spec that uses the library has nothing to rename
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "cnnspec: 1\nname: s\ninput: {shape: [8, 8, 3]}\nuse: [lib.yaml]\nmodel: [unit, flatten]\n"
    )
    assert compile_spec(spec).warnings == []


def test_the_language_server_shows_the_warning_at_the_block(tmp_path: Path) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text("")
    documents = Documents()
    documents.set(path, ZOO_SHADOW, 1)
    found = [d for d in documents.analyze(path).diagnostics if d.code == "hidden-block"]
    assert [(d.severity, d.loc.line, d.loc.column, d.message) for d in found] == [
        ("warning", 6, 3, ZOO_WARNING)
    ]
