"""Regression tests for the resolver defects a graph audit found: nesting deep enough to exhaust
Python's stack, a repeat's id shadowing a carried name, a block call's automatic name taken by a
layer id, a second error after an item with two kinds, block parameter defaults that read a
parameter declared after them, and hints that did not fit the mistake (a block's outputs, a
list bound to one block input, references into a skipped item)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cnnspec.api import compile_spec, compile_text
from cnnspec.cli.app import app
from cnnspec.errors import Diagnostic, SpecError

HEAD = "cnnspec: 1\nname: t\ninput: {shape: [8]}\n"


def errors_of(text: str) -> list[Diagnostic]:
    with pytest.raises(SpecError) as caught:
        compile_text(text, "t.yaml")
    return caught.value.errors


def only_error(text: str) -> Diagnostic:
    errors = errors_of(text)
    assert len(errors) == 1, [e.headline() for e in errors]
    return errors[0]


# -- 4: nesting ---------------------------------------------------------------------------------
def nesting(form: str, depth: int) -> list[str]:
    """What nests inside what, outermost first: ``chain`` (blocks that each call the next),
    ``mixed`` (blocks that each wrap the next in a repeat and a residual, as the audit's spec),
    or ``repeat``, ``residual``, ``parallel`` with every eighth level a block call (written out
    in one item, a few dozen of them pass the loader's limit of 100 nesting levels first)."""
    if form == "chain":
        return ["call"] * depth
    if form == "mixed":
        return [("call", "repeat", "residual")[i % 3] for i in range(depth)]
    return ["call" if i % 8 == 7 else form for i in range(depth)]


def nested_spec(form: str, depth: int) -> str:
    """A spec (JSON, which is YAML) whose model nests ``depth`` block calls and combinators
    inside one another (:func:`nesting`); the block called at level ``i`` is ``b{i}``."""
    blocks: dict[str, Any] = {}
    inner: Any = {"dense": 8}  # the input's width: a residual around it needs no projection
    levels = nesting(form, depth)
    for index in reversed(range(depth)):
        kind = levels[index]
        if kind == "call":
            blocks[f"b{index}"] = {"layers": [inner]}
            inner = f"b{index}"
        elif kind == "repeat":
            inner = {"repeat": {"times": 1, "layers": [inner]}}
        elif kind == "residual":
            inner = {"residual": {"body": [inner]}}
        else:
            inner = {"parallel": {"branches": [[inner], [{"dense": 4}]]}}
    spec = {"cnnspec": 1, "name": "deep", "input": {"shape": [8]}, "blocks": blocks, "model": [inner]}
    return json.dumps(spec, indent=1)


FORMS = ["chain", "repeat", "residual", "parallel", "mixed"]


def test_the_documented_nesting_limit_is_the_resolvers():
    from cnnspec.spec.limits import MAX_NESTING

    docs = (Path(__file__).resolve().parents[1] / "docs" / "graphs.md").read_text(encoding="utf-8")
    assert f"nested more than {MAX_NESTING} deep" in docs
    assert (
        f"expected at most {MAX_NESTING} block calls"
        in only_error(nested_spec("chain", MAX_NESTING + 1)).message
    )


@pytest.mark.parametrize("form", FORMS)
def test_nesting_up_to_the_limit_validates(form):
    compiled = compile_text(nested_spec(form, 32), "t.yaml")
    assert compiled.ir.nodes


@pytest.mark.parametrize("form", FORMS)
def test_one_level_past_the_limit_is_one_located_error(form):
    error = only_error(nested_spec(form, 33))
    assert error.code == "too-large"
    assert error.message.startswith("expected at most 32 block calls and combinators")
    assert "received 33 levels here" in error.message
    assert "the limit is 32 levels" in (error.hint or "")
    assert error.loc is not None and error.loc.line > 1
    if form == "chain":  # at the call that goes deeper, with one note per call around it
        assert error.path == "blocks.b31.layers[0].b32"
        assert len(error.notes) == 32
        assert error.notes[0].message.startswith("in block 'b31' called from blocks.b30.layers[0]")
    if form == "mixed":  # the 33rd level is the residual in b30, inside its repeat
        assert error.path == "blocks.b30.layers[0].repeat.layers[0].residual"
        assert len(error.notes) == 11  # the calls of b0, b3, …, b30


@pytest.mark.parametrize(("name", "form", "depth"), [("deep350", "chain", 350), ("deepr100", "mixed", 300)])
def test_hundreds_of_levels_are_a_located_error_not_an_internal_error(runner, write_spec, name, form, depth):
    spec = write_spec(nested_spec(form, depth), f"{name}.yaml")
    result = runner.invoke(app, ["validate", str(spec)])
    assert result.exit_code == 1, result.output
    assert "internal error" not in result.output
    assert "Traceback" not in result.output
    assert "expected at most 32 block calls and combinators" in result.output


def test_a_recorded_call_replayed_deeper_still_meets_the_limit():
    # `inner` nests 3 repeats; its first call (depth 1) is recorded, and the identical call at the
    # end of a chain of 29 blocks (depth 30) would be replayed without walking it.
    blocks = {f"c{i}": {"layers": [f"c{i + 1}"]} for i in range(28)}
    blocks["c28"] = {"layers": ["inner"]}
    inner: Any = {"dense": 4}
    for _ in range(3):
        inner = {"repeat": {"times": 1, "layers": [inner]}}
    blocks["inner"] = {"layers": [inner]}
    spec = {"cnnspec": 1, "name": "t", "input": {"shape": [8]}, "blocks": blocks}
    spec["model"] = ["inner", {"c0": None, "inputs": "input"}]
    error = only_error(json.dumps(spec, indent=1))
    assert "received 33 levels here" in error.message
    assert error.path == "blocks.inner.layers[0].repeat.layers[0].repeat.layers[0].repeat"


def test_a_backbones_items_nest_inside_the_item_that_takes_it(tmp_path):
    """A backbone spec 20 levels deep, taken inside 13 block calls: 33 levels, one too many
    (the backbone item itself is no level); inside 12 calls it fits."""
    (tmp_path / "body.yaml").write_text(nested_spec("chain", 20), encoding="utf-8")
    for calls, fits in ((13, False), (12, True)):
        outer = json.loads(nested_spec("chain", calls))
        outer["blocks"][f"b{calls - 1}"] = {"layers": [{"backbone": {"spec": "body.yaml"}}]}
        (tmp_path / "deep.yaml").write_text(json.dumps(outer, indent=1), encoding="utf-8")
        if fits:
            assert compile_spec(tmp_path / "deep.yaml").ir.nodes
            continue
        with pytest.raises(SpecError) as caught:
            compile_spec(tmp_path / "deep.yaml")
        [error] = caught.value.errors
        assert "received 33 levels here" in error.message and error.loc.file.endswith("body.yaml")


# -- 5: a repeat's id and its carried names --------------------------------------------------
CARRY_ID = (
    HEAD
    + """model:
  - id: x
    repeat:
      times: 2
      carry: {x: input}
      layers:
        - dense: 4
          inputs: x
          id: h
        - dense: 6
          id: g
      next: {x: h}
  - dense: 2
    inputs: x
"""
)


def test_a_repeat_id_equal_to_a_carried_name_is_a_duplicate_id():
    error = only_error(CARRY_ID)
    assert error.code == "duplicate-id"
    assert error.path == "model[0].id"
    assert (error.loc.line, error.loc.column) == (5, 9)
    assert error.message.startswith("duplicate id 'x' in this layer list")
    assert "id: cells" in (error.hint or "")


def test_a_carried_name_may_still_rebind_an_earlier_id():
    text = CARRY_ID.replace("  - id: x\n    repeat:", "  - dense: 8\n    id: x\n  - id: cells\n    repeat:")
    compiled = compile_text(text, "t.yaml")
    last = compiled.ir.nodes[-1]
    assert last.inputs == ("cells_1_h",)  # the carried value, not the repeat's last layer (g)


# -- 6: a block call's automatic name and the layer ids --------------------------------------
BLK = HEAD + "blocks:\n  blk:\n    layers:\n      - dense: 4\n        id: d\n"
TAKEN_FIRST = BLK + "model:\n  - blk\n  - dense: 4\n    id: blk_2\n  - blk\n"
TAKEN_LATER = BLK + "model:\n  - blk\n  - blk\n  - dense: 4\n    id: blk_2\n"


def test_a_block_calls_automatic_name_taken_by_an_earlier_layer_id_is_reported():
    error = only_error(TAKEN_FIRST)
    assert error.code == "duplicate-name"
    assert error.path == "model[2].blk"
    assert error.loc.line == 13
    assert error.message == (
        "name 'blk_2' is used twice: by the layer at line 11 and by this block call (its automatic name)"
    )
    assert "give the call an `id:`" in (error.hint or "")


def test_a_layer_id_taking_an_earlier_calls_automatic_name_is_reported():
    error = only_error(TAKEN_LATER)
    assert error.code == "duplicate-name"
    assert error.path == "model[2].dense"
    assert error.message == (
        "layer name 'blk_2' is used twice: by this layer and by the block call at line 11 "
        "(its automatic name)"
    )


def test_freezing_the_shared_name_is_not_reached(runner, write_spec):
    spec = write_spec(TAKEN_FIRST + "training:\n  freeze: [blk_2]\n")
    result = runner.invoke(app, ["inspect", str(spec)])
    assert result.exit_code == 1, result.output
    assert "name 'blk_2' is used twice" in result.output


def test_a_layer_named_like_a_call_in_another_group_is_no_clash():
    # `outer_2/blk_1` is the call inside the second `outer`: inspect and freeze patterns show it
    # under its group, apart from the top-level layer `outer_2_blk_1`.
    text = BLK + "  outer:\n    layers:\n      - blk\nmodel:\n  - outer\n  - dense: 4\n"
    text += "    id: outer_2_blk_1\n  - outer\n"
    compiled = compile_text(text, "t.yaml")
    assert [node.name for node in compiled.ir.nodes] == [
        "outer_1_blk_1_d",
        "outer_2_blk_1",
        "outer_2_blk_1_d",
    ]


def test_distinct_automatic_names_still_validate():
    compiled = compile_text(BLK + "model:\n  - blk\n  - dense: 4\n    id: blk_3\n  - blk\n", "t.yaml")
    assert [node.name for node in compiled.ir.nodes] == ["blk_1_d", "blk_3", "blk_2_d"]


# -- 7: one error for an item with two kinds and an id ---------------------------------------
def test_an_item_with_two_kinds_and_an_id_is_one_error():
    text = HEAD + "model:\n  - dense: 4\n    units: 3\n    id: a\n  - dense: 4\n    id: b\n"
    text += "  - dense: 2\n    inputs: a\n"
    error = only_error(text)
    assert error.message == "expected exactly one layer kind per item; received dense, units"


# -- 8: block parameter defaults and declaration order -----------------------------------------
DORD = (
    HEAD
    + """blocks:
  blk:
    params: {a: {type: int, default: "${b}"}, b: {type: int, default: 3}}
    layers:
      - dense: "${a}"
model:
  - blk
"""
)


def test_a_default_reading_a_parameter_declared_after_it_says_so():
    error = only_error(DORD)
    assert error.path == "blocks.blk.params.a.default"
    assert (error.loc.line, error.loc.column) == (6, 38)
    assert error.message == (
        "expected the default of block parameter `a` to read parameters declared before it; "
        "received `b`, declared after it"
    )
    assert error.hint == "defaults are filled in declaration order: declare b before a in `params`"
    assert not error.notes  # refused at the declaration, not at a call


def test_a_default_never_reads_a_var_the_later_parameter_shadows():
    # Before, `${b}` read the var b here, while the generated function reads the parameter.
    error = only_error(DORD.replace("input: {shape: [8]}\n", "input: {shape: [8]}\nvars: {b: 5}\n"))
    assert "received `b`, declared after it" in error.message


@pytest.mark.parametrize(
    "model",
    ["  - blk: {b: 4}\n", "  - dense: 2\n"],
    ids=["passed", "uncalled"],
)
def test_a_default_reading_a_later_parameter_is_refused_whatever_the_calls(model):
    # One rule for every call and for a block nothing calls (before, a call passing b built
    # a = 4, one leaving b out was refused and an uncalled block said nothing).
    error = only_error(DORD.replace("  - blk\n", model))
    assert (error.path, error.loc.line, error.loc.column) == ("blocks.blk.params.a.default", 6, 38)


def test_a_library_whose_default_reads_a_later_parameter_is_refused(tmp_path: Path):
    lib = tmp_path / "lib.yaml"
    lib.write_text("cnnspec: 1\n" + DORD[DORD.index("blocks:") : DORD.index("model:")])
    result = CliRunner().invoke(app, ["validate", str(lib)])
    assert result.exit_code == 1, result.output
    assert result.output.startswith(
        f"{lib}:4:38: error: blocks.blk.params.a.default: expected the default of block parameter `a` "
        "to read parameters declared before it; received `b`, declared after it\n"
    )
    assert "hint: defaults are filled in declaration order: declare b before a in `params`" in result.output
    assert "never read" not in result.output  # b is read (by a's default): no unused-param warning


def test_a_default_reading_a_parameter_declared_before_it_works():
    text = DORD.replace(
        '{a: {type: int, default: "${b}"}, b: {type: int, default: 3}}',
        '{b: {type: int, default: 3}, a: {type: int, default: "${b}"}}',
    )
    assert compile_text(text, "t.yaml").ir.nodes[-1].params["units"] == 3
    passed = compile_text(text.replace("  - blk\n", "  - blk: {b: 4}\n"), "t.yaml")
    assert passed.ir.nodes[-1].params["units"] == 4


def test_a_default_reading_a_later_required_parameter_is_refused_once():
    # The declaration is refused, and the call leaving b out is missing it: nothing else.
    text = DORD.replace("b: {type: int, default: 3}", "b: int")
    assert [error.message for error in errors_of(text)] == [
        "expected the default of block parameter `a` to read parameters declared before it; "
        "received `b`, declared after it",
        "missing required argument `b` for block `blk`",
    ]


# -- 9: hints that fit the mistake -------------------------------------------------------------
def test_a_block_output_listed_twice_gets_its_own_hint():
    text = (
        HEAD
        + "blocks:\n  blk:\n    inputs: [x, x]\n    outputs: [o, o]\n    layers:\n"
        + "      - dense: 4\n        inputs: x\n        id: o\nmodel:\n  - blk:\n    inputs: [input, input]\n"
    )
    by_path = {error.path: error for error in errors_of(text)}
    assert (
        by_path["blocks.blk.inputs[1]"].hint == "give each input a distinct name (the ids its body refers to)"
    )
    output = by_path["blocks.blk.outputs[1]"]
    assert output.message == "'o' is listed twice"
    assert output.hint is not None and output.hint.startswith(
        "list each output once: a call of `blk` with id ID gives `o` as ID.o"
    )


def test_a_reference_through_a_failed_inner_call_is_not_a_second_error():
    """``k.sw.c``, where the call ``k``'s inner call ``sw`` failed (its block lists an output
    twice), was a second error, "unknown layer id 'k.sw.c'", with a hint to write ``k.sw``:
    wrong once the block is fixed. One mistake, one error, at any depth."""
    text = (
        HEAD.replace("[8]", "[8, 8, 2]")
        + "blocks:\n  pair:\n    outputs: [c, c]\n    layers:\n"
        + "      - conv2d: {filters: 2, kernel_size: 1}\n        id: c\n"
        + "  cell:\n    layers:\n      - pair:\n        id: sw\n"
        + "      - conv2d: {filters: 2, kernel_size: 1}\n"
        + "model:\n  - cell:\n    id: k\n  - conv2d: {filters: 2, kernel_size: 1}\n    inputs: k.sw.c\n"
        + "  - conv2d: {filters: 2, kernel_size: 1}\n    inputs: k.sw.nothing\n"
    )
    assert [error.path for error in errors_of(text)] == ["blocks.pair.outputs[1]"]
    fixed = text.replace("outputs: [c, c]", "outputs: [c]").replace("k.sw.nothing", "k.sw.c")
    assert compile_text(fixed, "t.yaml").ir.nodes[-1].shape == (8, 8, 2)


def test_a_block_input_named_as_a_parameter_gets_its_own_hint():
    text = (
        HEAD
        + "blocks:\n  blk:\n    inputs: [x, k]\n    params: {k: int}\n    layers:\n"
        + "      - add:\n        inputs: [x, x]\nmodel:\n  - dense: 8\n    id: a\n"
        + "  - blk: {k: 1}\n    inputs: [a, a]\n"
    )
    error = only_error(text)
    assert error.message == "'k' is both an input and a parameter of block `blk`"
    assert error.hint == "rename the input or the parameter: inside the body `k` can mean only one"


def test_a_list_bound_to_one_block_input_says_an_input_takes_one_reference():
    text = (
        HEAD
        + "blocks:\n  blk:\n    inputs: [p, x]\n    layers:\n      - add:\n        inputs: [p, x]\n"
        + "model:\n  - dense: 8\n    id: a\n  - blk:\n    inputs: {p: [a], x: a}\n"
    )
    error = only_error(text)
    assert error.path == "model[1].inputs.p"
    assert error.message == "expected one id (a reference to one tensor); received a list ['a']"
    assert error.hint == "a block input bound by name takes one reference, not a list: write p: a"


SKIPPED = (
    "cnnspec: 1\nname: w\ninput: {shape: [8, 8, 3]}\n"
    + """blocks:
  cell:
    inputs: [p, x]
    outputs: [o, x]
    layers:
      - add:
        inputs: [p, x]
        id: o
model:
  - conv2d: {filters: 3, kernel_size: 1}
    id: a
  - cell:
    inputs: [a, a]
    id: c0
    when: false
  - id: cells
    when: false
    repeat:
      times: 2
      carry: {p: a, q: a}
      layers:
        - cell:
          inputs: [p, q]
          id: nn
      next: {q: nn}
  - concat:
    inputs: [c0.x, "c0[1]", cells.q, q, "cells[0].nn", c0]
  - flatten
"""
)


def test_references_into_a_skipped_item_say_it_is_skipped():
    hints = {error.path: error.hint for error in errors_of(SKIPPED)}
    inputs = "model[3].inputs"
    assert hints == {
        f"{inputs}[0]": "'c0.x' is inside 'c0' (line 15), which is skipped: its `when` is false",
        f"{inputs}[1]": "'c0[1]' is inside 'c0' (line 15), which is skipped: its `when` is false",
        f"{inputs}[2]": "'cells.q' is inside 'cells' (line 19), which is skipped: its `when` is false",
        f"{inputs}[3]": "'q' is carried by the repeat at line 19, which is skipped: its `when` is false",
        f"{inputs}[4]": "'cells[0].nn' is inside 'cells' (line 19), which is skipped: its `when` is false",
        f"{inputs}[5]": "'c0' (line 15) is skipped: its `when` is false",
    }


@pytest.mark.parametrize("ref", ["c.o", "c", "'cells[1].h'", "cells.new"])
def test_an_item_reading_a_failed_call_still_reports_its_own_mistakes(ref):
    """`inputs: c.o` of a call `c` that failed was silent about the item's own mistakes (a bare
    `inputs: c` was not): the failed call's output is unknown, and the item is still checked."""
    text = (
        "cnnspec: 1\nname: e6\ninput: {shape: [16, 16, 3]}\nblocks:\n  b:\n    params: {f: int}\n"
        "    outputs: [o]\n    layers: [{conv2d: {filters: '${f}', kernel_size: 1}, id: o}]\n"
        "model:\n  - b: {ff: 3}\n    id: c\n"
        "  - id: cells\n    repeat:\n      times: 2\n      carry: {new: c}\n"
        "      layers: [{conv2d: {filters: 2, kernel_size: 1}, inputs: new, id: h}]\n      next: {new: h}\n"
        f"  - conv2d: {{filters: 4, kernel_size: '${{undefined_k}}', paddin: same}}\n    inputs: {ref}\n"
    )
    errors = errors_of(text)
    assert [e.path for e in errors] == [
        "model[0].b.ff",
        "model[2].conv2d.kernel_size",
        "model[2].conv2d.paddin",
    ]


def test_an_id_inside_a_residual_a_parallel_or_a_sibling_branch_gets_a_hint_that_says_so():
    """The hint was "give the earlier layer an `id:`", for a layer that has one."""
    text = (
        "cnnspec: 1\nname: ids\ninput: {shape: [8, 8, 4]}\nmodel:\n"
        "  - residual:\n      body:\n        - conv2d: {filters: 4, kernel_size: 3, padding: same}\n"
        "          id: r1\n"
        "  - parallel:\n      branches:\n        - [{conv2d: {filters: 4, kernel_size: 1}, id: b1}]\n"
        "        - [{conv2d: {filters: 4, kernel_size: 1}, inputs: b1, id: b2}]\n"
        "  - add:\n    inputs: [r1, b2]\n"
        "  - repeat: {times: true, layers: [relu]}\n"
    )
    sibling, residual, parallel, times = errors_of(text)
    assert sibling.hint.startswith("'b1' is defined in another branch of this parallel (line 11)")
    assert residual.hint.startswith("'r1' is defined inside the residual at line 5, and its ids are visible")
    assert parallel.hint.startswith("'b2' is defined inside the parallel at line 9")
    assert times.message.endswith("received true")  # the spec's word, not Python's True


@pytest.mark.parametrize(("name", "refused"), [("val", True), ("val_head", True), ("value", False)])
def test_an_output_named_like_keras_validation_logs_is_refused(name, refused):
    """Keras logs an output's figures as NAME_loss: an output `val` logged its training loss as
    `val_loss`, the total validation loss's name, and its training MAE as `val_mae`."""
    text = (
        f"cnnspec: 1\nname: mo\ninput: {{shape: [12, 12, 3]}}\noutputs: [cls, {name}]\nmodel:\n"
        "  - global_avg_pool2d:\n    id: feat\n  - dense: {units: 3, activation: softmax}\n    id: cls\n"
        f"  - dense: 2\n    id: {name}\n    inputs: feat\n"
    )
    if not refused:
        compile_text(text)
        return
    (error,) = errors_of(text)
    assert (
        error.path == "outputs[1]"
        and f"{name!r} makes Keras log its training figures as {name}_loss" in error.message
    )


@pytest.mark.parametrize(
    ("outputs", "column", "message"),
    [
        ("[c, c]", 14, "expected each output once; 'c' is listed already at outputs[0]"),
        # another name of the same tensor: the call's output is its last item, `c.h`
        ("[c, d, c.h]", 17, "expected each output once; 'c.h' is listed already at outputs[0] (as 'c')"),
    ],
)
def test_an_output_listed_twice_is_a_located_error(outputs, column, message):
    """`outputs: [head, head]` validated, and `train` refused it only after loading the data
    (it asked for a target per entry): the second entry is the error, before any data."""
    text = (
        "cnnspec: 1\nname: t\ninput: {shape: [8]}\nblocks:\n  b:\n    layers:\n"
        "      - dense: 2\n        id: h\nmodel:\n  - b:\n    id: c\n  - dense: 3\n    id: d\n"
        f"    inputs: [c]\noutputs: {outputs}\n"
    )
    error = only_error(text)
    assert error.loc is not None and (error.loc.line, error.loc.column) == (15, column)
    assert (error.path, error.message) == (f"outputs[{outputs.count(',')}]", message)
    assert error.hint == (
        "remove this entry (to train a head on two targets, give it two dense layers, each with an id "
        "of its own)"
    )


def test_the_enclosed_id_hint_reaches_a_shortcut_list_a_nested_parallel_and_a_dotted_name():
    text = (
        "cnnspec: 1\nname: e\ninput: {shape: [8, 8, 4]}\nmodel:\n  - residual:\n      body:\n"
        "        - parallel:\n            branches:\n"
        "              - [{conv2d: {filters: 4, kernel_size: 1}, id: deep}]\n"
        "              - [{conv2d: {filters: 4, kernel_size: 1}}]\n            merge: add\n"
        "      shortcut: [{conv2d: {filters: 4, kernel_size: 1}, id: sc}]\n    id: r\n"
        "  - add:\n    inputs: [deep, sc, r.deep]\n"
    )
    deep, sc, dotted = errors_of(text)
    assert deep.hint.startswith("'deep' is defined inside the parallel at line 7")
    assert sc.hint.startswith("'sc' is defined inside the residual at line 5")
    assert dotted.hint.startswith("'r.deep' is defined inside the parallel at line 7")


FORWARD = "cnnspec: 1\nname: fwd\ninput: {shape: [8, 8, 3]}\nmodel:\n"


@pytest.mark.parametrize(
    ("model", "path", "ref", "hint"),
    [
        (
            "  - add:\n    inputs: [input, later]\n  - conv2d: {filters: 3, kernel_size: 1}\n    id: later\n",
            "model[0].inputs[1]",
            "later",
            "'later' is defined later (line 8): `inputs` may name only layers before the item; "
            "move that layer above this item",
        ),
        # from inside a residual's body, an id of the list around it; a scoped reference
        (
            "  - residual:\n      body:\n        - add:\n          inputs: [input, later.x]\n"
            "  - conv2d: {filters: 3, kernel_size: 1}\n    id: later\n",
            "model[0].residual.body[0].inputs[1]",
            "later.x",
            "'later' is defined later (line 10): `inputs` may name only layers before the item; "
            "move that layer above this item",
        ),
        (
            "  - conv2d: {filters: 3, kernel_size: 1}\n    id: me\n    inputs: me\n",
            "model[0].inputs",
            "me",
            "'me' is this item's own id: an item cannot take its own output as input",
        ),
    ],
    ids=["same-list", "enclosing-list", "itself"],
)
def test_a_reference_to_a_layer_defined_later_says_where_and_why(model, path, ref, hint):
    """The hint was "give the earlier layer an `id:`", for a layer that has one, after it."""
    (error,) = errors_of(FORWARD + model + "  - flatten\n")
    assert (error.path, error.message, error.hint) == (
        path,
        f"unknown layer id {ref!r} (ids must be defined earlier in the spec)",
        hint,
    )


@pytest.mark.parametrize(("taken", "suggested"), [("x", "`skip` or `h`"), ("skip", "`x` or `h`")])
def test_a_block_input_named_like_the_model_input_is_told_names_not_taken(taken, suggested):
    """`input: {name: x}` and a block's `inputs: [x]`: the hint suggested `x`, the name refused."""
    text = (
        f"cnnspec: 1\nname: inx\ninput: {{shape: [8, 8, 3], name: {taken}}}\n"
        f"blocks:\n  b:\n    inputs: [{taken}]\n    layers: [conv2d: {{filters: 3, kernel_size: 1}}]\n"
        "model: [b, flatten]\n"
    )
    (error,) = errors_of(text)
    assert (error.path, error.message, error.hint) == (
        "blocks.b.inputs[0]",
        f"'{taken}' cannot name a block input (it means the model's input)",
        f"name it after what it carries, e.g. {suggested}",
    )


# -- 10: nested repeats with the same loop variable --------------------------------------------
NEST = """cnnspec: 1
name: nest
input: {shape: [16, 16, 3]}
model:
  - repeat:
      times: 2
      as: i
      layers:
        - repeat:
            times: 2
            as: INNER
            layers:
              - conv2d: {filters: 4, kernel_size: 1}
                id: "ID"
  - global_avg_pool2d
  - dense: 2
"""


def validate_text(tmp_path: Path, text: str) -> str:
    spec = tmp_path / "nest.yaml"
    spec.write_text(text)
    result = CliRunner().invoke(app, ["validate", str(spec)])
    return f"{result.exit_code}\n" + result.output.replace(str(spec), "nest.yaml")


def test_an_inner_loop_variable_hiding_the_outer_one_is_named_in_the_hint_and_warned_of(tmp_path: Path):
    output = validate_text(tmp_path, NEST.replace("INNER", "i").replace("ID", "q${i}"))
    assert output == (
        "1\n"
        "nest.yaml:13:25: error: model[0].repeat.layers[0].repeat.layers[0].conv2d: layer name 'q0' is "
        "used twice\n"
        " 13 |               - conv2d: {filters: 4, kernel_size: 1}\n"
        "                              ^\n"
        "  hint: the repeat at model[0].repeat.layers[0] has `as: i`, which hides the loop variable `i` of "
        "the repeat at model[0] around it: every `${i}` inside reads the inner one, so each iteration of "
        "the outer repeat names this layer `q0` again. Name the inner loop variable otherwise (as: j) and "
        'read both: id: "q${i}_${j}"\n'
        "nest.yaml:11:17: warning: model[0].repeat.layers[0].repeat.as: loop variable 'i' hides the loop "
        "variable of the repeat at model[0] around it: inside this repeat every `${i}` reads this one\n"
        " 11 |             as: i\n"
        "                      ^\n"
        "  hint: name it otherwise (e.g. as: j) and read `${i}` and `${j}` where both are meant\n"
        "  note: the loop variable `i` of the outer repeat is declared at model[0].repeat.as "
        "(nest.yaml:7:7)\n"
    )


def test_following_the_hint_builds(tmp_path: Path):
    output = validate_text(tmp_path, NEST.replace("INNER", "j").replace("ID", "q${i}_${j}"))
    assert output.startswith("0\nok nest.yaml: nest — 6 layers") and "warning" not in output


def test_a_hidden_loop_variable_is_warned_of_even_when_the_spec_builds(tmp_path: Path):
    text = NEST.replace("INNER", "i").replace('                id: "ID"\n', "")
    output = validate_text(tmp_path, text)
    assert output.startswith(
        "0\nnest.yaml:11:17: warning: model[0].repeat.layers[0].repeat.as: loop variable 'i' hides"
    )
    assert output.count("warning:") == 1  # once, not once per outer iteration


@pytest.mark.parametrize(
    ("inner", "written", "hint"),
    [
        (
            "j",
            "q${j}",
            "the id `q${j}` is the same in each iteration of the repeat at model[0]: read its loop "
            'variable too: id: "q${j}_${i}"',
        ),
        (
            "j",
            "q${j % 1}_${i}",
            "the id `q${j % 1}_${i}` gives two layers the same name `q0_0`: give one of the items a "
            "different `id` (the other is at line 13); automatic names are kind_N",
        ),
    ],
    ids=["outer-unread", "all-read"],
)
def test_a_computed_id_hint_never_suggests_a_variable_it_reads(tmp_path: Path, inner, written, hint):
    output = validate_text(tmp_path, NEST.replace("INNER", inner).replace("ID", written))
    assert f"  hint: {hint}\n" in output, output


def test_a_computed_id_in_an_outer_repeat_without_a_loop_variable(tmp_path: Path):
    text = NEST.replace("      as: i\n", "", 1).replace("INNER", "i").replace("ID", "q${i}")
    output = validate_text(tmp_path, text)
    assert (
        "  hint: the id `q${i}` is the same in each iteration of the repeat at model[0]: give that repeat "
        'a loop variable (as: j) and read it: id: "q${i}_${j}"\n'
    ) in output
