"""Graph blocks: named block inputs and outputs, repeats that carry tensors, scoped and
hierarchical ids, per-kind defaults — through the API (resolution, the tree, lowering) and
the code emitter (what the generated code says, checked against the model by the emitter)."""

from __future__ import annotations

import pytest
import yaml

from cnnspec.api import compile_spec, compile_text, generate_code
from cnnspec.errors import SpecError
from cnnspec.ir import BlockCall, Repeat, lower, walk
from tests.conftest import FIXTURES, ROOT

HEAD = "cnnspec: 1\nname: t\ninput: {shape: [8, 8, 3]}\n"

CELL = """
blocks:
  cell:
    inputs: [p, x]
    outputs: [out, x]
    params: {filters: int}
    layers:
      - conv2d: {filters: "${filters}", kernel_size: 1}
        inputs: p
        id: pp
      - conv2d: {filters: "${filters}", kernel_size: 3, padding: same}
        inputs: x
        id: h
      - add:
        inputs: [pp, h]
        id: out
"""


def compile_(text: str):
    # `conv2d: 4` in the short specs: a 1×1 convolution (a spec-level default)
    short = "" if "defaults:" in text else "defaults: {conv2d: {kernel_size: 1}}\n"
    return compile_text(HEAD + short + text, "t.yaml")


def errors_of(text: str) -> list:
    with pytest.raises(SpecError) as caught:
        compile_(text)
    return caught.value.errors


def node_inputs(compiled, name: str) -> tuple[str, ...]:
    return compiled.ir.node(name).inputs


# -- several inputs and outputs ---------------------------------------------------------------
@pytest.mark.parametrize(
    "binding",
    ["inputs: [a, b]", "inputs: {p: a, x: b}", "inputs: {x: b, p: a}"],
    ids=["positional", "by-name", "by-name-reordered"],
)
def test_block_inputs_bind_by_position_or_name(binding):
    compiled = compile_(
        CELL
        + f"""
model:
  - conv2d: {{filters: 4, kernel_size: 1}}
    id: a
  - conv2d: {{filters: 4, kernel_size: 1}}
    id: b
  - cell: 4
    {binding}
    id: c0
"""
    )
    assert node_inputs(compiled, "c0_pp") == ("a",)
    assert node_inputs(compiled, "c0_h") == ("b",)


@pytest.mark.parametrize(
    ("ref", "tensor"),
    [
        ("c0", "c0_out"),
        ("c0.out", "c0_out"),
        ("c0[0]", "c0_out"),
        ("c0.x", "b"),
        ("c0[1]", "b"),
        ("c0.h", "c0_h"),
    ],
)
def test_every_output_and_inner_id_of_a_call_is_reachable(ref, tensor):
    compiled = compile_(
        CELL
        + f"""
model:
  - conv2d: {{filters: 4, kernel_size: 1}}
    id: a
  - conv2d: {{filters: 4, kernel_size: 1}}
    id: b
  - cell: 4
    inputs: [a, b]
    id: c0
  - activation: relu
    inputs: "{ref}"
    id: last
"""
    )
    assert node_inputs(compiled, "last") == (tensor,)


def test_the_next_item_continues_from_the_first_output():
    compiled = compile_(
        CELL + "model:\n  - conv2d: 4\n    id: a\n  - cell: 4\n    inputs: [a, a]\n  - flatten\n"
    )
    assert node_inputs(compiled, "flatten_1") == ("cell_1_out",)


def test_nested_calls_are_reachable_by_hierarchical_names():
    compiled = compile_(
        """
blocks:
  inner:
    layers:
      - conv2d: {filters: 4, kernel_size: 1}
        id: out
      - activation: relu
  stage:
    layers:
      - inner
        # a call without an id is reachable by its automatic name
      - inner:
        id: block2
model:
  - stage:
    id: stage3
  - flatten:
    inputs: stage3.block2.out
    id: flat
  - dense: 2
    inputs: stage3.inner_1.out
    id: other
outputs: [flat, other]
"""
    )
    assert node_inputs(compiled, "flat") == ("stage3_block2_out",)
    assert node_inputs(compiled, "other") == ("stage3_inner_1_out",)


# -- repeats that carry tensors -----------------------------------------------------------------
CARRY = """
model:
  - conv2d: {filters: 4, kernel_size: 1}
    id: a
  - conv2d: {filters: 4, kernel_size: 1}
    id: b
  - id: cells
    repeat:
      times: 3
      carry: {p: a, x: b}
      layers:
        - cell: 4
          inputs: [p, x]
          id: new
      next: {p: x, x: new}
"""


def test_a_carrying_repeat_advances_its_names_by_the_next_rule():
    compiled = compile_(CELL + CARRY + "  - concat:\n    inputs: [p, x, cells.x, 'cells[1].new.h']\n")
    # iteration i reads (p, x) = (x, new) of iteration i - 1
    assert node_inputs(compiled, "cells_0_new_pp") == ("a",)
    assert node_inputs(compiled, "cells_0_new_h") == ("b",)
    assert node_inputs(compiled, "cells_1_new_pp") == ("b",)
    assert node_inputs(compiled, "cells_1_new_h") == ("cells_0_new_out",)
    assert node_inputs(compiled, "cells_2_new_pp") == ("cells_0_new_out",)
    # after the loop: the final values by name, and each iteration by hierarchical name
    assert node_inputs(compiled, "concat_1") == (
        "cells_1_new_out",
        "cells_2_new_out",
        "cells_2_new_out",
        "cells_1_new_h",
    )


def test_a_name_next_leaves_out_keeps_its_value():
    compiled = compile_(
        """
model:
  - conv2d: {filters: 4, kernel_size: 1}
    id: skip
  - id: r
    repeat:
      times: 2
      carry: {h: skip, s: skip}
      layers:
        - add:
          inputs: [h, s]
          id: out
      next: {h: out}
"""
    )
    assert node_inputs(compiled, "r_1_out") == ("r_0_out", "skip")


def test_the_tree_records_inputs_outputs_and_the_carry():
    compiled = compile_(CELL + CARRY)
    tree = compiled.ir.tree
    calls = [item for item in walk(tree.body) if isinstance(item, BlockCall)]
    assert calls[0].inputs == ("a", "b") and calls[0].outputs == ("cells_0_new_out", "b")
    (repeat,) = [item for item in walk(tree.body) if isinstance(item, Repeat)]
    assert repeat.carry == {"p": "a", "x": "b"} and repeat.next == {"p": "x", "x": "new"}
    assert repeat.results == {"p": "cells_1_new_out", "x": "cells_2_new_out"}
    assert tree.blocks["cell"].inputs == ("p", "x") and tree.blocks["cell"].outputs == ("out", "x")
    assert lower(tree) == compiled.ir


# -- scoping rules ------------------------------------------------------------------------------
def test_input_means_the_model_input_inside_a_parallel_branch():
    compiled = compile_(
        """
model:
  - conv2d: {filters: 4, kernel_size: 1}
  - parallel:
      branches:
        - [conv2d: {filters: 4, kernel_size: 1}]
        - - concat:
            inputs: [input, input]
"""
    )
    assert node_inputs(compiled, "concat_1") == ("input", "input")


def test_input_inside_a_block_is_the_block_input_in_its_combinators_too():
    compiled = compile_(
        """
blocks:
  b:
    layers:
      - conv2d: {filters: 3, kernel_size: 1}
      - residual:
          body:
            - add:
              inputs: [input, input]
          shortcut: identity
model:
  - conv2d: {filters: 3, kernel_size: 1}
  - b
"""
    )
    assert node_inputs(compiled, "b_1_add_1") == ("conv2d_1", "conv2d_1")


@pytest.mark.parametrize(
    ("text", "message", "hint"),
    [
        (
            CELL + "model:\n  - conv2d: 4\n  - cell: 4\n",
            "block `cell` takes 2 inputs (p, x); received the previous layer only",
            "inputs: [p, x]",
        ),
        (
            CELL + "model:\n  - conv2d: 4\n    id: a\n  - cell: 4\n    inputs: {p: a, y: a}\n",
            "block `cell` has no input 'y'",
            "did you mean",
        ),
        (
            "blocks:\n  b:\n    layers:\n      - add:\n        inputs: [input, prev]\n"
            "model:\n  - conv2d: 3\n    id: prev\n  - b\n",
            "unknown layer id 'prev'",
            "declare it as an input (blocks: b: inputs: [x, prev])",
        ),
        (
            "model:\n  - repeat:\n      times: 2\n      layers:\n        - conv2d: 3\n          id: h\n",
            "layer name 'h' is used twice",
            'id: "h${i}"',
        ),
        (
            "model:\n  - conv2d: 3\n    id: a\n  - repeat:\n      times: 2\n      carry: {h: a}\n"
            "      layers:\n        - conv2d: 3\n          inputs: h\n          id: out\n"
            "      next: {h: out}\n",
            "layer name 'out' is used twice",
            "give the repeat an id (e.g. `id: cells`)",
        ),
        (  # an iteration's scoped name (cells_1_h) taken by a layer outside the repeat
            "model:\n  - conv2d: 3\n    id: cells_1_h\n  - id: cells\n    repeat:\n      times: 2\n"
            "      carry: {x: input}\n      layers:\n        - conv2d: 3\n          inputs: x\n"
            "          id: h\n      next: {x: h}\n",
            "layer name 'cells_1_h' is used twice",
            "the iterations of `cells` name this layer cells_N_h, and another layer has that name: "
            "give one of the items a different `id` (the other is at line ",
        ),
        (
            "model:\n  - conv2d: 3\n    id: a\n  - concat:\n    inputs: {p: a}\n",
            "only a block call binds its inputs by name",
            "inputs: [a, b]",
        ),
    ],
    ids=[
        "too-few-inputs",
        "unknown-input-name",
        "id-outside-block",
        "fixed-id-in-repeat",
        "carry-without-id",
        "scoped-name-taken-outside",
        "mapping",
    ],
)
def test_each_scoping_mistake_is_one_located_error_with_a_hint_naming_the_fix(text, message, hint):
    (error,) = errors_of(text)
    assert message in error.message
    assert hint in (error.hint or "")


def test_a_failed_call_does_not_also_warn_that_the_block_is_unused():
    errors = errors_of(CELL + "model:\n  - conv2d: 4\n  - cell: 4\n")
    assert [e.code for e in errors] == ["inputs"]  # and no "defined but never used"


# -- per-kind defaults --------------------------------------------------------------------------
DEFAULTS = """
defaults:
  batch_norm: {momentum: 0.9, epsilon: 0.002}
  conv2d: {kernel_size: 3, padding: same}
blocks:
  b:
    defaults:
      batch_norm: {momentum: "${m}"}
    params: {m: float}
    layers:
      - batch_norm
        # explicit beats both
      - batch_norm: {epsilon: 0.01}
      - inner
  inner:
    layers: [batch_norm]
model:
  - conv2d: 4
  - batch_norm
  - b: 0.5
"""


def test_defaults_inner_wins_and_an_explicit_parameter_wins():
    params = {node.name: node.params for node in compile_(DEFAULTS).ir.nodes}
    assert params["conv2d_1"]["kernel_size"] == 3 and params["conv2d_1"]["padding"] == "same"
    assert (params["batch_norm_1"]["momentum"], params["batch_norm_1"]["epsilon"]) == (0.9, 0.002)
    assert (params["b_1_batch_norm_1"]["momentum"], params["b_1_batch_norm_1"]["epsilon"]) == (0.5, 0.002)
    assert (params["b_1_batch_norm_2"]["momentum"], params["b_1_batch_norm_2"]["epsilon"]) == (0.5, 0.01)
    # a block's defaults are lexical: the block it calls sees the spec's
    assert params["b_1_inner_1_batch_norm_1"]["momentum"] == 0.9


def test_inspect_json_shows_the_effective_values(runner, write_spec):
    import json

    from cnnspec.cli.app import app

    result = runner.invoke(app, ["inspect", "-f", "json", str(write_spec(HEAD + DEFAULTS))])
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.stdout)["layers"]}
    assert rows["b_1_batch_norm_2"]["config"]["momentum"] == 0.5
    assert rows["conv2d_1"]["config"]["padding"] == "same"


def test_the_resolved_spec_writes_the_effective_values_into_each_item():
    compiled = compile_(DEFAULTS)
    resolved = compiled.resolved
    model, body = resolved["model"], resolved["blocks"]["b"]["layers"]
    assert model[0] == {"conv2d": {"filters": 4, "kernel_size": 3, "padding": "same"}}
    assert model[1] == {"batch_norm": {"momentum": 0.9, "epsilon": 0.002}}
    assert body[0] == {"batch_norm": {"momentum": "${m}", "epsilon": 0.002}}  # as the block wrote it
    assert body[1]["batch_norm"] == {"epsilon": 0.01, "momentum": "${m}"}  # explicit kept
    assert resolved["blocks"]["inner"]["layers"] == [{"batch_norm": {"momentum": 0.9, "epsilon": 0.002}}]
    assert compiled.doc.data["model"][1] == "batch_norm", "the composed document itself is unchanged"
    # without its `defaults:` sections, the resolved spec still builds exactly the same layers
    for section in (resolved, resolved["blocks"]["b"]):
        del section["defaults"]
    again = compile_text(yaml.safe_dump(resolved, sort_keys=False), "resolved.yaml")
    assert [(n.name, n.params) for n in again.ir.nodes] == [(n.name, n.params) for n in compiled.ir.nodes]


def test_inspect_text_lists_the_defaults_it_applied(runner, write_spec):
    from cnnspec.cli.app import app

    result = runner.invoke(app, ["inspect", str(write_spec(HEAD + DEFAULTS))])
    assert result.exit_code == 0, result.output
    line = next(x for x in result.stdout.splitlines() if x.startswith("per-kind defaults applied"))
    assert "batch_norm momentum=0.5 (2 layers)" in line and "batch_norm momentum=0.9 (2 layers)" in line
    assert 'conv2d padding="same" (1 layer)' in line and "epsilon=0.01" not in line  # written, not a default


def test_defaults_are_checked_against_the_kind():
    (error,) = errors_of("defaults:\n  batch_norm: {momentum: two}\nmodel: [batch_norm]\n")
    assert error.path == "defaults.batch_norm.momentum"


def test_generated_code_writes_spec_defaults_as_partials_and_block_defaults_on_the_layer():
    code = generate_code(compile_(DEFAULTS))
    assert "BATCH_NORM = functools.partial(layers.BatchNormalization, momentum=0.9, epsilon=0.002)" in code
    assert 'CONV2D = functools.partial(layers.Conv2D, kernel_size=3, padding="same")' in code
    assert 'x = BATCH_NORM(name="batch_norm_1")(x)' in code
    # the block's default, as written (its parameter); an explicit value beside it
    assert 'BATCH_NORM(momentum=float(m), epsilon=0.01, name=f"{name}_batch_norm_2")' in code


# -- codegen ------------------------------------------------------------------------------------
def test_a_block_with_several_inputs_and_outputs_is_one_function_with_a_tuple_return():
    code = generate_code(compile_(CELL + CARRY + "  - concat:\n    inputs: [p, x]\n"))
    assert "def cell(p, x, *, filters: int, name: str):" in code
    assert "return out, x" in code
    assert "for i in range(3):" in code and 'name=f"cells_{i}_new"' in code
    assert "p, x_2 = x_2, new" in code
    assert "unrolled" not in code and "inlined" not in code


def test_a_reference_into_one_iteration_reads_a_list_and_one_inside_a_call_inlines_it():
    code = generate_code(compile_(CELL + CARRY + "  - concat:\n    inputs: [x, 'cells[1].new.h']\n"))
    assert "inlined block `cell`: a later item refers to an id inside a call (cells[1].new.h)" in code
    assert "def cell(" not in code and "unrolled" not in code
    assert "cells_new_h = []" in code and "cells_new_h.append(h)" in code
    assert "([x_2, cells_new_h[1]])" in code


def test_an_iteration_picked_by_the_loop_variable_is_read_from_the_list_in_a_loop():
    code = generate_code(compile_spec(ROOT / "specs" / "unet.yaml"))
    assert "enc_level_skip.append(level_skip)" in code
    assert "enc_level_skip[LEVELS - 1 - i_2]" in code
    assert "unrolled" not in code and "inlined" not in code


@pytest.mark.parametrize("path", [ROOT / "specs" / "unet.yaml", FIXTURES / "codegen" / "cells.yaml"])
def test_graph_specs_validate_and_codegen(path):
    compiled = compile_spec(path)
    code = generate_code(compiled)
    assert "def " in code and compiled.ir.nodes


def test_inspect_lists_a_backbones_own_defaults_by_its_own_items(runner, tmp_path):
    """A backbone's layers were matched to the model's defaults by path alone: its `model[2]`
    was counted as the model's `model[2]` (`conv2d strides=1`, a value no default gave), and
    the defaults of its own spec, which its layers took, were left out of the line."""
    from cnnspec.cli.app import app

    (tmp_path / "bb.yaml").write_text(
        "cnnspec: 1\nname: bb\ninput: {shape: [16, 16, 3]}\n"
        "defaults:\n  conv2d: {padding: same, use_bias: false}\nmodel:\n"
        "  - conv2d: {filters: 4, kernel_size: 3}\n  - conv2d: {filters: 4, kernel_size: 3}\n"
        "  - conv2d: {filters: 4, kernel_size: 3}\n    id: cut\n  - flatten\n  - dense: 3\n"
    )
    main = "cnnspec: 1\nname: main\ninput: {shape: [16, 16, 3]}\nDEFAULTS" + (
        "model:\n  - conv2d: {filters: 3, kernel_size: 1, strides: 1}\n"
        "  - backbone: {spec: bb.yaml, until: cut}\n  - conv2d: {filters: 4, kernel_size: 3}\n"
        "  - flatten\n  - dense: 2\n"
    )
    own = 'conv2d padding="same" (3 layers); conv2d use_bias=false (3 layers)'
    for defaults, line in (
        (
            "defaults:\n  conv2d: {strides: 2}\n",
            'conv2d padding="same" (3 layers); conv2d strides=2 (1 layer); conv2d use_bias=false (3 layers)',
        ),
        ("", own),
    ):
        (tmp_path / "main.yaml").write_text(main.replace("DEFAULTS", defaults))
        result = runner.invoke(app, ["inspect", str(tmp_path / "main.yaml")])
        assert result.exit_code == 0, result.output
        assert result.stdout.splitlines()[-1] == f"per-kind defaults applied: {line}"
        resolved = compile_spec(tmp_path / "main.yaml").resolved  # (none written into its items)
        assert "padding" not in str(resolved["model"])
