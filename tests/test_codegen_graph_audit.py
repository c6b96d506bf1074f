"""`cnnspec codegen` on specs an audit found that `validate` accepts and codegen refused with
an internal error:

- a block parameter whose computed default reads a var of its own name (``f: {default:
  "${f + 1}"}``): the resolver reads the var there, so the code reads its constant (``F + 1``);
- a reference into one iteration of a carrying repeat to an id that not every iteration makes
  (an id computed per iteration, one under a ``when``, one inside a call under a ``when``);
- ``inputs`` written as one ``${…}`` that gives a list of references (``"${srcs}"``);
- nesting as deep as the resolver accepts (32 block calls, repeats and combinators inside one
  another): a chain of calls, repeats and residuals through calls, repeats directly inside
  each other (more than Python's 20 nested loops in one function), residuals and parallels.

The fast tests generate the code (the emitter replays it against the IR: every layer's name,
class, configuration and inputs) and replay it again here; the slow one builds the module with
Keras beside cnnspec's builder.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

from cnnspec.api import compile_spec
from cnnspec.backends.codegen_check import check_source, verify_model
from cnnspec.backends.python_emitter import generate_code
from cnnspec.cli.app import app
from cnnspec.spec.limits import MAX_NESTING

HEAD = "cnnspec: 1\nname: audit\ninput: {shape: [8]}\n"
#: The resolver's limit of block calls, repeats and combinators nested inside one another.
DEPTH = MAX_NESTING


def emit(write_spec, text: str) -> tuple[str, list[str], object]:
    """Compile and generate (the emitter checks the code against the IR); returns the source,
    the notes and the compiled spec, after replaying the code once more here."""
    compiled = compile_spec(write_spec(text))
    generated = generate_code(compiled, source_name="spec.yaml")
    verify_model(check_source(generated.text), compiled.ir)
    return generated.text, list(generated.notes), compiled


# -- 1: a default that reads a var of its parameter's name -----------------------------------

SHADOW_PLUS = (
    HEAD
    + """vars: {f: 3}
blocks:
  blk:
    params: {f: {type: int, default: "${f + 1}"}}
    layers:
      - dense: "${f}"
model:
  - blk
  - blk: 6
"""
)

SHADOW_SAME = (
    HEAD
    + """vars: {f: 3}
blocks:
  blk:
    params: {f: {type: int, default: "${f}"}}
    layers:
      - dense: "${f}"
model:
  - blk
  - blk
"""
)

#: ``g``'s default reads ``f``, declared before it, which some calls pass: the parameter, not
#: the var ``f`` (a default reading a parameter declared after it is refused where it is written).
EARLIER_PARAM = (
    HEAD
    + """vars: {f: 3}
blocks:
  blk:
    params: {f: {type: int, default: 5}, g: {type: int, default: "${f * 2}"}}
    layers:
      - dense: "${g}"
      - dense: "${f}"
model:
  - blk: {f: 2}
  - blk: {f: 7}
  - blk
"""
)


@pytest.mark.parametrize(
    ("text", "fill"),
    [(SHADOW_PLUS, "f = F + 1"), (SHADOW_SAME, "f = F")],
    ids=["plus", "same"],
)
def test_default_reading_a_var_of_its_own_name_reads_the_var(write_spec, text, fill):
    source, _, compiled = emit(write_spec, text)
    assert fill in source
    units = [node.params["units"] for node in compiled.ir.nodes if node.kind == "dense"]
    assert units[0] == (4 if "+ 1" in fill else 3)


def test_default_reading_an_earlier_parameter_reads_it(write_spec):
    source, notes, compiled = emit(write_spec, EARLIER_PARAM)
    assert "def blk(" in source and "g = f * 2" in source
    assert not any("inlined" in note for note in notes)
    units = [node.params["units"] for node in compiled.ir.nodes if node.kind == "dense"]
    assert units == [4, 2, 14, 7, 10, 5]


def test_codegen_refuses_a_default_reading_a_later_parameter_even_if_every_call_passes_it(runner, write_spec):
    # Before, codegen wrote `g = f * 2` after `f`'s own fill; now the declaration is refused.
    text = EARLIER_PARAM.replace(
        '{f: {type: int, default: 5}, g: {type: int, default: "${f * 2}"}}',
        '{g: {type: int, default: "${f * 2}"}, f: {type: int, default: 5}}',
    ).replace("  - blk\n", "")
    result = runner.invoke(app, ["codegen", str(write_spec(text))])
    assert result.exit_code == 1, result.output
    assert (
        ":7:38: error: blocks.blk.params.g.default: expected the default of block parameter `g` to read "
        "parameters declared before it; received `f`, declared after it\n" in result.output
    )


# -- 2: an id that only some iterations make --------------------------------------------------

COMPUTED_ID = (
    HEAD
    + """model:
  - id: cells
    repeat:
      times: 2
      as: i
      carry: {x: input}
      layers:
        - dense: 4
          id: "h${i}"
      next: {x: "h${i}"}
  - concat:
    inputs: [x, "cells[0].h0"]
"""
)

WHEN_ID = (
    HEAD
    + """model:
  - id: cells
    repeat:
      times: 3
      as: i
      carry: {x: input}
      layers:
        - dense: 4
          id: h
        - dense: 4
          id: side
          when: "${i == 1}"
      next: {x: h}
  - concat:
    inputs: [x, "cells[1].side", "cells[2].h"]
"""
)

#: ``side`` is inside a call, under a `when` of its parameter (false in the first iteration);
#: ``c.out`` is made in every iteration (and read through a computed index after the loop).
CALL_WHEN_ID = (
    HEAD
    + """vars: {n: 3}
blocks:
  cell:
    params: {f: int}
    outputs: [out]
    layers:
      - dense: "${f}"
        id: m
      - dense: "${f}"
        inputs: m
        id: side
        when: "${f > 8}"
      - dense: "${f}"
        inputs: m
        id: out
model:
  - id: st
    repeat:
      times: "${n}"
      as: i
      carry: {x: input}
      layers:
        - cell: {f: "${8 + 4 * i}"}
          id: c
      next: {x: c}
  - concat:
    inputs: [x, "st[1].c.side", "st[${n - 1}].c.out"]
"""
)

#: The ids a loop can collect (made in every iteration) still make a loop.
EVERY_ITERATION = (
    HEAD
    + """model:
  - id: cells
    repeat:
      times: 3
      as: i
      carry: {x: input}
      layers:
        - dense: 4
          id: h
      next: {x: h}
  - concat:
    inputs: [x, "cells[0].h", "cells[1].h"]
"""
)


@pytest.mark.parametrize(
    ("text", "wanted"),
    [(COMPUTED_ID, "cells[…].h0"), (WHEN_ID, "cells[…].side"), (CALL_WHEN_ID, "st[…].c.side")],
    ids=["computed-id", "when", "call-when"],
)
def test_reference_to_an_id_some_iterations_lack_unrolls_the_repeat(write_spec, text, wanted):
    source, notes, _ = emit(write_spec, text)
    assert any("only some of its iterations make" in note and wanted in note for note in notes)
    assert not re.search(r"^\s*for ", source, re.MULTILINE)


def test_ids_every_iteration_makes_keep_the_loop(write_spec):
    source, notes, _ = emit(write_spec, EVERY_ITERATION)
    assert re.search(r"^\s*for ", source, re.MULTILINE)
    assert ".append(" in source
    assert not any("only some" in note for note in notes)


#: A block's input passed through as an output (``x``), named through a call in an iteration
#: (``cells[1].new.x``): every call has it, as ``cells[1].new[1]`` says it.
PASSTHROUGH = (
    HEAD
    + """blocks:
  cell:
    inputs: [p, x]
    outputs: [out, x]
    layers:
      - dense: 4
        inputs: p
        id: pp
      - dense: 4
        inputs: x
        id: xx
      - add:
        inputs: [pp, xx]
        id: out
model:
  - dense: 4
    id: a
  - dense: 4
    id: b
  - id: cells
    repeat:
      times: 3
      carry: {p: a, x: b}
      layers:
        - cell:
          inputs: [p, x]
          id: new
      next: {p: x, x: new}
  - concat:
    inputs: [x, "cells[1].new.x"]
"""
)


def test_a_passed_through_input_named_through_a_call_keeps_the_loop(write_spec):
    """It was taken for an id some iterations lack: the repeat was unrolled, with a note
    saying so, where ``cells[1].new[1]`` (the same tensor) kept the loop."""
    for text in (PASSTHROUGH, PASSTHROUGH.replace('"cells[1].new.x"', '"cells[1].new[1]"')):
        source, notes, _ = emit(write_spec, text)
        assert re.search(r"^\s*for ", source, re.MULTILINE), source
        assert not any("only some" in note or "unrolled" in note for note in notes), notes


# -- 3: `inputs` as one expression giving a list ----------------------------------------------

LIST_INPUTS = (
    HEAD
    + """vars: {srcs: [a, b]}
model:
  - dense: 4
    id: a
  - dense: 6
    id: b
  - concat:
    inputs: "${srcs}"
"""
)

#: In a block called twice (each call's ids), and naming the input.
LIST_INPUTS_BLOCK = (
    HEAD
    + """vars: {srcs: [a, b, input]}
blocks:
  two:
    params: {w: int}
    layers:
      - dense: "${w}"
        id: a
      - dense: 3
        id: b
      - concat:
        inputs: "${srcs}"
model:
  - two: 4
  - two: 5
"""
)

#: One iteration of a loop named through a var's list.
LIST_INPUTS_ITERATION = (
    HEAD
    + """vars: {srcs: ["cells[0].h", x]}
model:
  - id: cells
    repeat:
      times: 3
      carry: {x: input}
      layers:
        - dense: 4
          id: h
      next: {x: h}
  - concat:
    inputs: "${srcs}"
"""
)


@pytest.mark.parametrize(
    "text",
    [LIST_INPUTS, LIST_INPUTS_BLOCK, LIST_INPUTS_ITERATION],
    ids=["model", "block", "iteration"],
)
def test_inputs_as_one_expression_giving_a_list(write_spec, text):
    _, _, compiled = emit(write_spec, text)
    concat = [node for node in compiled.ir.nodes if node.kind == "concat"]
    assert concat and all(len(node.inputs) >= 2 for node in concat)


# -- 4: nesting as deep as the resolver accepts -----------------------------------------------


def chain_of_calls(depth: int) -> str:
    """``depth`` block calls inside one another: b0 calls b1 … calls b<depth-1>."""
    lines = [HEAD, "blocks:\n"]
    lines += [f"  b{k}: {{layers: [b{k + 1}]}}\n" for k in range(depth - 1)]
    lines.append(f"  b{depth - 1}: {{layers: [{{dense: 4}}]}}\n")
    return "".join([*lines, "model:\n  - b0\n"])


def calls_in_repeats_and_residuals(depth: int) -> str:
    """Each block wraps the next in a repeat (two iterations) and a residual: a call, a repeat
    and a residual per level (``depth`` items along the deepest path)."""
    levels = (depth + 2) // 3
    lines = [HEAD, "blocks:\n"]
    for k in range(levels - 1):
        body = f"{{residual: {{body: [b{k + 1}]}}}}"
        lines.append(f"  b{k}: {{layers: [{{repeat: {{times: 2, as: i{k}, layers: [{body}]}}}}]}}\n")
    rest = depth - (3 * (levels - 1) + 1)  # the items the last block still nests
    leaf = "{dense: 8}"
    for _ in range(rest):
        leaf = f"{{repeat: {{times: 2, layers: [{leaf}]}}}}"
    lines.append(f"  b{levels - 1}: {{layers: [{leaf}]}}\n")
    return "".join([*lines, "model:\n  - b0\n"])


def nested_repeats(depth: int, counted: bool) -> str:
    """``depth`` repeats directly inside one another. ``counted``: in a block, each count the
    parameter ``n`` (a loop in a function: more loops than Python nests), else at the model's
    level, each count but the first read from the enclosing loop's variable (``${1 + 0 * i}``:
    one iteration, known only in the loop)."""
    inner = "{dense: 8}"
    for k in reversed(range(depth - 1 if counted else depth)):
        times = '"${n}"' if counted else (2 if k == 0 else f'"${{1 + 0 * i{k - 1}}}"')
        inner = f"{{repeat: {{times: {times}, as: i{k}, layers: [{inner}]}}}}"
    if counted:
        block = f"blocks:\n  deep:\n    params: {{n: int}}\n    layers: [{inner}]\n"
        return HEAD + block + "model:\n  - deep: 1\n  - deep: 1\n"
    return HEAD + f"model:\n  - {inner}\n"


def nested_residuals(depth: int) -> str:
    """``depth`` residuals inside one another, each under a `when` of a block parameter (an
    ``if`` inside an ``if``: code indented past the line length)."""
    inner = '{dense: 8, when: "${on}"}'
    for _ in range(depth - 1):
        inner = f'{{residual: {{body: [{inner}]}}, when: "${{on}}"}}'
    block = f"blocks:\n  blk:\n    params: {{on: bool}}\n    layers: [{inner}]\n"
    return HEAD + block + "model:\n  - blk: true\n  - blk: false\n"


def parallels_through_calls(depth: int) -> str:
    """A parallel in each block whose first branch calls the next block, every other level a
    residual instead: a call and a combinator per level."""
    levels = depth // 2
    lines = [HEAD, "blocks:\n"]
    for k in range(levels - 1):
        if k % 2:
            lines.append(f"  b{k}: {{layers: [{{residual: {{body: [b{k + 1}]}}}}]}}\n")
        else:
            branches = f"[[b{k + 1}], [{{dense: 8}}]]"
            lines.append(f"  b{k}: {{layers: [{{parallel: {{branches: {branches}, merge: add}}}}]}}\n")
    last = "{parallel: {branches: [[{dense: 8}], [{dense: 8}]], merge: add}}"
    lines.append(f"  b{levels - 1}: {{layers: [{last}]}}\n")
    return "".join([*lines, "model:\n  - b0\n"])


DEEP = {
    "chain": lambda: chain_of_calls(DEPTH),
    "repeat-residual": lambda: calls_in_repeats_and_residuals(DEPTH),
    "repeats-in-block": lambda: nested_repeats(DEPTH, counted=True),
    "repeats-in-loops": lambda: nested_repeats(DEPTH, counted=False),
    "residuals": lambda: nested_residuals(DEPTH),
    "parallels": lambda: parallels_through_calls(DEPTH),
}


@pytest.mark.parametrize("case", sorted(DEEP))
def test_nesting_as_deep_as_the_resolver_accepts(write_spec, case):
    source, _, compiled = emit(write_spec, DEEP[case]())
    compile(source, "generated.py", "exec")  # (no "too many statically nested blocks")
    assert compiled.ir.nodes


def test_loops_nest_at_most_sixteen_deep_in_one_function(write_spec):
    from cnnspec.backends.codegen_decisions import MAX_LOOP_NESTING

    source, notes, _ = emit(write_spec, nested_repeats(DEPTH, counted=False))
    depths = [len(m[1]) // 4 for m in re.finditer(r"^( *)for ", source, re.MULTILINE)]
    assert len(depths) == MAX_LOOP_NESTING
    assert any(f"inside {MAX_LOOP_NESTING} loops" in note for note in notes)


# -- the generated modules, built with Keras ---------------------------------------------------

BUILT = {
    "shadow": SHADOW_PLUS,
    "earlier-param": EARLIER_PARAM,
    "call-when": CALL_WHEN_ID,
    "computed-id": COMPUTED_ID,
    "list-inputs-block": LIST_INPUTS_BLOCK,
}


def _layers(model) -> list[tuple]:
    """Per layer: name, class, configuration, output shape, parameters."""
    return [
        (layer.name, type(layer).__name__, layer.get_config(), str(layer.output.shape), layer.count_params())
        for layer in model.layers
    ]


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(BUILT))
def test_generated_code_builds_the_builders_model(case, write_spec, tmp_path):
    import cnnspec

    spec = write_spec(BUILT[case])
    source = generate_code(compile_spec(spec), source_name="spec.yaml").text
    module_path = Path(tmp_path / f"generated_{case.replace('-', '_')}.py")
    module_path.write_text(source, encoding="utf-8")
    loader = importlib.util.spec_from_file_location(module_path.stem, module_path)
    assert loader is not None and loader.loader is not None
    module = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(module)
    ours = cnnspec.build_model(spec)
    theirs = module.build_model()
    assert _layers(theirs) == _layers(ours)
    assert theirs.count_params() == ours.count_params()


# -- a block written in place inside another block's function reads its input's shape ---------

SE_BESIDE = """cnnspec: 1
name: b2
input: {shape: [16, 16, 8]}
use: [zoo:blocks/LIB]
model:
FIRST
SECOND
  - global_avg_pool2d
  - dense: 2
"""


@pytest.mark.parametrize(
    ("lib", "mbconv", "se"),
    [
        ("mobilenet", "mbconv", "squeeze_excite"),
        ("mobilenet", "mbconv", "squeeze_excite: {channels: 8}"),
        ("efficientnet_v2", "mbconv_v2", "squeeze_excite"),
    ],
    ids=["mbconv", "channels-passed", "mbconv_v2"],
)
@pytest.mark.parametrize("se_first", [True, False], ids=["se-first", "se-after"])
def test_squeeze_excite_beside_mbconv_is_written_in_place_reading_the_shape(
    runner, write_spec, lib, mbconv, se, se_first
):
    # squeeze_excite, called directly and by mbconv with another initializer, is written in
    # place; in mbconv's function its default `channels: ${in_channels}` was an internal error.
    lines = [f"  - {se}", f"  - {mbconv}: {{filters: 8}}"]
    first, second = lines if se_first else lines[::-1]
    text = SE_BESIDE.replace("LIB", lib).replace("FIRST", first).replace("SECOND", second)
    result = runner.invoke(app, ["codegen", str(write_spec(text))])
    assert result.exit_code == 0, result.output
    source = result.stdout
    compile(source, "b2.py", "exec")
    assert re.findall(r"^def (\w+)\(", source, re.MULTILINE) == [mbconv, "build_model"]
    # in mbconv's function the shape of squeeze_excite's input is read before its layers
    assert "        channels = x.shape[-1]\n        block_input = x\n" in source
    assert "inlined block `squeeze_excite`: a `conv2d` parameter whose type needs a literal value" in (
        result.output
    )
