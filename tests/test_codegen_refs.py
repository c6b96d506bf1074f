"""`cnnspec codegen` on hierarchical references that `validate`, `inspect` and `build` accept:
a call by its automatic name (`s.inner_1.h`), one iteration of a repeat inside a call or
another iteration (`st.inner[0].c`, `outer[1].st.inner[0].even`), a backbone's inner ids
(`body.stem`), and model outputs that are the input or one iteration (`cells[0].new`); a
`carry` from one iteration (`enc[1].h`); computed ids inside the scopes of repeats, residuals,
parallels and calls (`rep_r{i}`); layers the resolver prunes (left out, as the builder does,
also where a later one reads their shape); spec-level `defaults` of a kind with a required
parameter (`dense`); the outputs of several calls of one block function, each reached by its
automatic name (`two_1.out`) after later calls (each call's first output in a variable of its
own, not the chain variable the next call overwrites).

The fast tests run the CLI (the printer's own replay checks the code against the IR); the
slow ones build the generated module with Keras beside cnnspec's builder and compare them.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from cnnspec.cli.app import app

HEAD = "cnnspec: 1\nname: {name}\ninput: {{shape: [{size}, {size}, 3]}}\n"

#: A backbone spec the `backbone` and `backbone_reach` cases cut (written beside them).
FPN = """cnnspec: 1
name: fpn
input: {shape: [16, 16, 3]}
vars: {base: 4, levels: 3}
defaults:
  conv2d: {padding: same, kernel_size: 3}
blocks:
  stage:
    params: {filters: int, stride: {type: int, default: 2}}
    outputs: [out, feat]
    layers:
      - conv2d: {filters: "${filters}", strides: "${stride}"}
        id: feat
      - batch_norm
      - activation: relu
        id: out
  lateral:
    inputs: [top, skip]
    params: {filters: int}
    layers:
      - upsampling2d: 2
        inputs: top
        id: up
      - conv2d: {filters: "${filters}", kernel_size: 1}
        inputs: skip
        id: proj
      - add:
        inputs: [up, proj]
      - conv2d: "${filters}"
model:
  - conv2d: {filters: "${base}"}
    id: stem
  - id: enc
    repeat:
      times: "${levels}"
      as: i
      carry: {x: stem}
      layers:
        - stage: "${base * 2 ** (i+1)}"
          id: s
      next: {x: s}
  - conv2d: {filters: 8, kernel_size: 1}
    inputs: x
    id: p3
  - lateral: 8
    inputs: {skip: "enc[1].s.feat", top: p3}
    id: p2
  - global_avg_pool2d:
    inputs: p3
  - dense: 5
"""

#: A backbone without `until` (its own output), named by its inner calls.
SMALL = """cnnspec: 1
name: small
input: {shape: [16, 16, 3]}
blocks:
  unit:
    layers:
      - conv2d: {filters: 4, kernel_size: 3, padding: same}
        id: c
      - activation: relu
model:
  - conv2d: {filters: 4, kernel_size: 1}
    id: stem
  - unit
  - unit:
    id: u2
"""

SPECS: dict[str, str] = {
    # A call without an id, inside a call: by its automatic name.
    "automatic_name": HEAD.format(name="ie1", size=8)
    + """blocks:
  inner:
    layers:
      - conv2d: {filters: 3, kernel_size: 1}
        id: h
      - activation: relu
        id: out
  stage:
    layers:
      - inner
model:
  - stage:
    id: s
  - add:
    inputs: [s, s.inner_1.h]
""",
    # The same inside one iteration of a carrying repeat written as a loop.
    "automatic_name_in_iteration": HEAD.format(name="ie6", size=8)
    + """blocks:
  cell:
    params: {f: int}
    layers:
      - conv2d: {filters: "${f}", kernel_size: 1}
        id: h
      - activation: relu
model:
  - conv2d: {filters: 3, kernel_size: 1}
    id: stem
  - id: cells
    repeat:
      times: 3
      as: i
      carry: {x: stem}
      layers:
        - cell: 3
          inputs: x
        - identity:
          id: o
      next: {x: o}
  - add:
    inputs: [x, "cells[1].cell_1.h", "cells[0].o"]
""",
    # Automatic names of calls that stay functions (outputs by name and by index).
    "automatic_name_of_a_function": HEAD.format(name="fn", size=8)
    + """blocks:
  inner:
    outputs: [out, h]
    layers:
      - conv2d: {filters: 3, kernel_size: 1}
        id: h
      - activation: relu
        id: out
model:
  - inner
  - inner
  - add:
    inputs: [inner_1.h, "inner_2[1]", inner_2.out]
""",
    # One iteration of a repeat inside a call.
    "iteration_inside_a_call": HEAD.format(name="ie7", size=8)
    + """blocks:
  stage:
    layers:
      - id: inner
        repeat:
          times: 2
          carry: {a: input}
          layers:
            - conv2d: {filters: 3, kernel_size: 1}
              inputs: a
              id: c
          next: {a: c}
  wrap:
    layers:
      - stage:
        id: st
      - add:
        inputs: [st, "st.inner[1].c"]
model:
  - stage:
    id: st
  - add:
    inputs: [st, "st.inner[0].c"]
  - wrap
  - wrap:
    id: w2
  - stage
  - add:
    inputs: [w2, "stage_1.inner[1].c"]
""",
    # One iteration of a repeat inside a call inside one iteration of another repeat.
    "iteration_inside_an_iteration": HEAD.format(name="loops", size=16)
    + """vars: {n: 2, zero: 0}
blocks:
  cell:
    inputs: [p, x]
    outputs: [out, x]
    params: {f: int}
    layers:
      - conv2d: {filters: "${f}", kernel_size: 1}
        inputs: x
        id: h
      - conv2d: {filters: "${f}", kernel_size: 1}
        inputs: p
        id: q
      - add:
        inputs: [h, q]
        id: out
  stage:
    params: {f: int, n: int}
    outputs: [a, b]
    layers:
      - conv2d: {filters: "${f}", kernel_size: 1}
        id: s0
      - id: inner
        repeat:
          times: "${n}"
          as: j
          carry: {a: s0, b: input}
          layers:
            - cell: "${f}"
              inputs: {p: b, x: a}
              id: c
            - conv2d: {filters: "${f}", kernel_size: 1}
              inputs: c.x
              when: "${j % 2 == 0}"
              id: even
          next: {a: c, b: c.x}
model:
  - conv2d: {filters: 4, kernel_size: 1}
    id: stem
  - id: outer
    repeat:
      times: "${n}"
      as: i
      carry: {u: stem, v: stem}
      layers:
        - stage: {f: 4, n: "${i + 1}"}
          inputs: u
          id: st
      next: {u: st, v: st.b}
  - add:
    inputs: [u, v, "outer[1].st.inner[0].even"]
  - global_avg_pool2d
  - dense: 2
""",
    # A backbone's ids: a model-level one, one iteration's, a final carried value.
    "backbone": HEAD.format(name="bb", size=16)
    + """vars: {w: 4}
model:
  - backbone: {spec: fpn.yaml, until: p2, vars: {base: "${w}"}}
    id: body
  - conv2d: {filters: 3, kernel_size: 1}
    inputs: body.stem
    id: side
  - conv2d: {filters: 3, kernel_size: 1}
    inputs: "body.enc[1].s.feat"
    id: side2
  - global_avg_pool2d:
    inputs: body
  - dense: 2
    id: d
outputs: [d, side, side2, body.enc.x, body.p3, body.p2]
""",
    # A backbone without `until`, named through its calls (automatic name and id).
    "backbone_reach": HEAD.format(name="bb6", size=16)
    + """model:
  - backbone: {spec: small.yaml}
    id: body
  - add:
    inputs: [body, body.stem, body.unit_1.c, body.u2.c]
""",
    # The input as a model output.
    "output_input": HEAD.format(name="t", size=8)
    + """model:
  - flatten
  - dense: 2
    id: d
outputs: [d, input]
""",
    # One iteration of a carrying repeat as a model output.
    "output_iteration": HEAD.format(name="outs", size=8)
    + """blocks:
  cb:
    layers:
      - conv2d: {filters: 3, kernel_size: 1}
        id: h
      - activation: relu
model:
  - cb:
    id: c0
  - id: cells
    repeat:
      times: 2
      carry: {x: c0}
      layers:
        - cb:
          inputs: x
          id: new
      next: {x: new}
  - flatten
  - dense: 2
    id: d
outputs: [d, "cells[0].new", cells.x, "cells[1].new.h"]
""",
}

#: A block of two outputs, for the cases that call it several times as a function.
TWO = """blocks:
  two:
    outputs: [out, side]
    layers:
      - conv2d: {filters: 2, kernel_size: 1}
        id: out
      - conv2d: {filters: 2, kernel_size: 1}
        id: side
"""

SPECS |= {
    # Calls of one function, a later item reading an earlier call's first output by its
    # automatic name after another call (an id between them): each output stays its own.
    "automatic_names_of_calls": HEAD.format(name="calls", size=8)
    + TWO
    + """model:
  - conv2d: {filters: 2, kernel_size: 1}
    id: stem
  - two
  - two:
    id: t2
    inputs: stem
  - two:
    inputs: stem
  - add:
    inputs: [two_1.out, t2.side, two_2.out]
    id: total
  - global_avg_pool2d
""",
    # The first of three calls and the middle one (by index), a layer without an id between.
    "automatic_name_of_the_first_of_three": HEAD.format(name="three", size=8)
    + TWO
    + """model:
  - conv2d: {filters: 2, kernel_size: 1}
    id: stem
  - two
  - two
  - conv2d: {filters: 2, kernel_size: 1}
  - two
  - add:
    inputs: [two_1.out, "two_2[0]", two_3.side]
  - global_avg_pool2d
""",
    # A call with an id, then automatic ones; and the same inside a block function.
    "automatic_names_after_an_id": HEAD.format(name="after", size=8)
    + TWO
    + """  stage:
    layers:
      - two
      - two
      - two
      - add:
        inputs: [two_1.out, two_2.out, two_3.side]
model:
  - two:
    id: first
  - two
  - two:
    inputs: first.side
  - max_pool2d
  - add:
    inputs: [first, two_1.out, two_1.side, two_2.out]
  - stage
  - stage
  - global_avg_pool2d
""",
    # Pruned layers that the code must leave out as the builder does: one whose shape a pruned
    # layer reads (`${in_channels}`), a residual whose projection reads shapes, a call (its
    # block then has no function), and the location comment of a pruned item.
    "pruned": HEAD.format(name="pruned", size=8)
    + """blocks:
  side:
    layers:
      - conv2d: {filters: "${in_channels}", kernel_size: 1}
model:
  - conv2d: {filters: 2, kernel_size: 1}
    id: stem
  - max_pool2d
  - conv2d: {filters: "${in_channels}", kernel_size: 1}
  - residual:
      body: [layer_norm]
      shortcut: projection
  - residual:
      body: [{conv2d: {filters: 4, kernel_size: 1}}]
  - side
  - global_avg_pool2d:
    inputs: stem
""",
    # Layers pruned in some iterations or calls only, which one text builds for all of them:
    # the code keeps them, and a layer after them reads their shape; a carried name no
    # iteration reads; a `when` that reads the shape of a pruned layer.
    "partly_pruned": HEAD.format(name="partly", size=8)
    + """blocks:
  two:
    outputs: [out, side]
    layers:
      - conv2d: {filters: 2, kernel_size: 1}
        id: out
      - conv2d: {filters: 2, kernel_size: 1}
      - conv2d: {filters: "${in_channels}", kernel_size: 1}
        id: side
model:
  - conv2d: {filters: 2, kernel_size: 1}
    id: stem
  - id: enc
    repeat:
      times: 3
      carry: {x: stem, y: stem}
      layers:
        - conv2d: {filters: 2, kernel_size: 1}
          inputs: x
          id: h
        - max_pool2d
        - conv2d: {filters: "${in_channels}", kernel_size: 1}
          id: skip
      next: {x: h, y: skip}
  - two:
    inputs: "enc[1].skip"
  - two:
    id: t2
    inputs: "enc[0].skip"
  - two
  - add:
    inputs: [two_1.out, t2.side]
    id: total
  - max_pool2d:
    id: pool
  - conv2d: {filters: 2, kernel_size: 1}
    inputs: total
    when: "${in_channels > 1}"
  - global_avg_pool2d
""",
    # An `id` computed from the loop variable inside a repeat with an id (named `rep_r0`), a
    # carrying one (`enc_0_r0`), a residual with an id in a block function, a call in a loop,
    # and inside a call written in place and a parallel with an id, in a loop.
    "computed_id_in_a_scope": HEAD.format(name="scoped", size=8)
    + """blocks:
  b:
    params: {k: int}
    layers:
      - residual:
          body:
            - conv2d: {filters: 2, kernel_size: 1}
              id: "c${k}"
        id: res
  written_in_place:
    params: {k: int}
    layers:
      - conv2d: {filters: 2, kernel_size: 1}
        id: h
      - conv2d: {filters: 2, kernel_size: 1}
        id: "c${k}"
model:
  - id: rep
    repeat:
      times: 2
      as: i
      layers:
        - conv2d: {filters: 2, kernel_size: 1}
          id: "r${i}"
        - conv2d: {filters: 2, kernel_size: 1}
        - b: {k: "${i}"}
          id: "blk${i}"
  - id: enc
    repeat:
      times: 2
      as: i
      carry: {x: rep}
      layers:
        - conv2d: {filters: 2, kernel_size: 1}
          id: "r${i}"
        - written_in_place: {k: "${i}"}
          id: w
        - add:
          inputs: [w, w.h]
        - parallel:
            branches:
              - [{conv2d: {filters: 2, kernel_size: 1}, id: "p${i}"}]
              - [identity]
          id: par
      next: {x: par}
  - global_avg_pool2d
""",
    # `carry` from one iteration of an earlier carrying repeat, by number and computed.
    "carry_from_an_iteration": HEAD.format(name="carries", size=8)
    + """vars: {n: 2}
model:
  - id: enc
    repeat:
      times: 2
      carry: {x: input}
      layers:
        - conv2d: {filters: 2, kernel_size: 1}
          id: h
      next: {x: h}
  - id: dec
    repeat:
      times: 1
      carry: {z: "enc[0].h"}
      layers:
        - conv2d: {filters: 2, kernel_size: 1}
          inputs: z
          id: g
      next: {z: g}
  - id: dec2
    repeat:
      times: 2
      carry: {w: "enc[${n - 1}].h"}
      layers:
        - conv2d: {filters: 2, kernel_size: 1}
          inputs: w
          id: g
      next: {w: g}
  - add:
    inputs: [z, w]
  - global_avg_pool2d
""",
    # Spec-level defaults of a kind with a required parameter (`dense: units`); the values
    # that are objects (an initializer, a regularizer) are written on each layer.
    "dense_defaults": HEAD.format(name="dd", size=8)
    + """defaults:
  dense: {use_bias: false, kernel_initializer: he_normal, bias_initializer: {constant: {value: 0.1}}}
  conv2d: {kernel_regularizer: {l2: 0.01}}
model:
  - conv2d: {filters: 2, kernel_size: 1}
  - flatten
  - dense: 3
  - dense: {units: 2, use_bias: true}
""",
    # … and of a kind whose arguments derive one parameter from another (the width of a
    # translation follows its height): the defaults alone have neither
    "translation_defaults": HEAD.format(name="td", size=8)
    + """defaults:
  random_translation: {fill_mode: constant}
model:
  - random_translation: 0.1
  - random_translation: {height_factor: 0.2, width_factor: 0.1}
  - flatten
  - dense: 3
""",
    # a call passing null over a parameter whose default is computed (`None` would read as "not
    # passed" and take the default: relu instead of no activation)
    "null_over_a_computed_default": HEAD.format(name="nd", size=8)
    + """vars: {act: relu}
blocks:
  b:
    params: {a: {type: any, default: "${act}"}, k: {type: any, default: [3, 3]}}
    layers: [conv2d: {filters: 4, kernel_size: "${k or 1}", padding: same, activation: "${a}"}]
model: [b: {a: null, k: null}, b, b: {a: tanh}, global_avg_pool2d]
""",
    # One iteration of a repeat with an `id` but no `carry` (`rep[0].c0`: the ids of its
    # iterations are recorded as a carrying repeat's are): an id only one iteration makes
    # unrolls it, …
    "iteration_without_carry": HEAD.format(name="rid", size=8)
    + """model:
  - id: rep
    repeat:
      times: 2
      as: i
      layers:
        - conv2d: {filters: 3, kernel_size: 1}
          id: "c${i}"
  - add:
    inputs: [rep, "rep[0].c0"]
  - flatten
""",
    # … one every iteration makes is collected in a list, read by a constant index or one
    # computed from a later loop's variable
    "iterations_without_carry_in_a_list": HEAD.format(name="ridl", size=8)
    + """vars: {n: 3}
model:
  - id: rep
    repeat:
      times: "${n}"
      as: i
      layers:
        - residual: {body: [conv2d: {filters: 3, kernel_size: 1}]}
          id: r
  - id: mix
    repeat:
      times: "${n}"
      as: k
      carry: {h: rep}
      layers:
        - add:
          inputs: [h, "rep[${n - 1 - k}].r"]
          id: s
      next: {h: s}
  - concat:
    inputs: [h, "rep[0].r"]
  - flatten
""",
    # … and one through an iteration of a repeat without `carry` (`o[1].inner1[0].c`) unrolls it
    "iteration_inside_an_iteration_without_carry": HEAD.format(name="nrid", size=8)
    + """model:
  - id: o
    repeat:
      times: 2
      as: k
      layers:
        - id: "inner${k}"
          repeat:
            times: 2
            carry: {h: input}
            layers:
              - conv2d: {filters: 3, kernel_size: 1}
                inputs: h
                id: c
            next: {h: c}
        - conv2d: {filters: 3, kernel_size: 1}
          id: "p${k}"
  - add:
    inputs: ["o[1].inner1[0].c", "o[0].p0", o]
  - flatten
""",
    # An output of a block that is a call of its own, read through it (`s.x.c2`): the outer
    # block, whose function returns `x`'s value only, is written in place (codegen stopped with
    # "internal error (CodegenError: cannot write unknown input 's.x.c2')" where a block
    # declared `outputs:`; without them it was written in place already)
    "inside_an_output": HEAD.format(name="io", size=8)
    + """blocks:
  two:
    outputs: [c1, c2]
    layers:
      - conv2d: {filters: 3, kernel_size: 1}
        id: c1
      - conv2d: {filters: 2, kernel_size: 1}
        id: c2
  outer:
    outputs: [x]
    layers:
      - two:
        id: x
model:
  - outer:
    id: s
  - concat:
    inputs: [s, s.x.c2]
  - flatten
  - dense: 2
    id: head
outputs: [head, s.x.c1]
""",
    # … and a pass-through block's swapped outputs, read through a call that is an output
    "inside_a_pass_through_output": HEAD.format(name="pt", size=8)
    + """blocks:
  ident:
    inputs: [a, b]
    outputs: [b, a]
    layers: []
  outer:
    outputs: [x, w]
    layers:
      - conv2d: {filters: 3, kernel_size: 1}
        id: w
      - ident:
        inputs: [w, w]
        id: x
model:
  - outer:
    id: s
  - concat:
    inputs: [s, s.x.a]
  - flatten
""",
}

#: What the code says for each case (besides building the right model).
EXPECTED: dict[str, list[str]] = {
    "null_over_a_computed_default": ["def b(x, *, a=..., k=..., name: str):", "if a is ...:", "a = ACT"],
    "automatic_name": ['name="s_inner_1_h"', 'layers.Add(name="add_1")([out, h])'],
    "automatic_name_in_iteration": ["cells_cell_1_h.append(h)", "cells_cell_1_h[1]"],
    "automatic_name_of_a_function": [
        "def inner(",
        'x, x_h = inner(inputs, name="inner_1")',
        'inner_2, inner_2_h = inner(x, name="inner_2")',
        'layers.Add(name="add_1")([x_h, inner_2_h, inner_2])',
    ],
    "automatic_names_of_calls": [
        'two_1, _ = two(stem, name="two_1")',
        '_, t2_side = two(stem, name="t2")',
        'two_2, _ = two(stem, name="two_2")',
        'layers.Add(name="total")([two_1, t2_side, two_2])',
    ],
    "automatic_name_of_the_first_of_three": [
        'two_2, _ = two(two_1, name="two_2")',
        'x, x_side = two(x, name="two_3")',
        'layers.Add(name="add_1")([two_1, two_2, x_side])',
    ],
    "automatic_names_after_an_id": [
        'first, first_side = two(inputs, name="first")',
        'two_1, two_1_side = two(first, name="two_1")',
        'two_2, _ = two(first_side, name="two_2")',
        'layers.Add(name="add_1")([first, two_1, two_1_side, two_2])',
        'two_2, _ = two(two_1, name=f"{name}_two_2")',
        'layers.Add(name=f"{name}_add_1")([two_1, two_2, x_side])',
    ],
    "iteration_inside_a_call": ["unrolled the repeat at blocks.stage.layers[0].repeat"],
    "iteration_inside_an_iteration": ["unrolled the repeat at model[1].repeat"],
    "backbone": [
        "body, body_stem, body_enc_1_s_feat, body_enc_x, body_p3 = fpn(inputs",
        "[d, side, side2, body_enc_x, body_p3, body]",
    ],
    "backbone_reach": ["return x, stem, c, c_2", "body, body_stem, body_unit_1_c, body_u2_c = small("],
    "output_input": ["keras.Model(inputs, [d, inputs]"],
    "output_iteration": ["[d, cells_new[0], cells, cells_new_h[1]]"],
    "pruned": ['stem = layers.Conv2D(filters=2, kernel_size=1, name="stem")(inputs)', "(stem)\n"],
    "partly_pruned": [
        'skip = layers.Conv2D(filters=x.shape[-1], kernel_size=1, name=f"enc_{i}_skip")(x)',
        "x_2 = h\n",  # the carried `y` nothing reads is not kept (it was `x_2, y = h, skip`)
        "if pool.shape[-1] > 1:",
        "side = layers.Conv2D(filters=x.shape[-1]",
        'two_1, _ = two(enc_skip[1], name="two_1")',
        'layers.Add(name="total")([two_1, t2_side])',
    ],
    "computed_id_in_a_scope": [
        'name=f"rep_r{i}"',
        'name=f"rep_blk{i}"',
        'name=f"{name}_res_c{k}"',
        'name=f"enc_{i_2}_r{i_2}"',
        'name=f"enc_{i_2}_w_c{i_2}"',
        'name=f"enc_{i_2}_par_p{i_2}"',
    ],
    "carry_from_an_iteration": ["z = enc_h[0]", "w = enc_h[1]"],
    "iteration_without_carry": [
        "unrolled the repeat at model[0].repeat: a later item refers to an id that only some of its "
        "iterations make (rep[…].c0)",
        'c0 = layers.Conv2D(filters=3, kernel_size=1, name="rep_c0")(inputs)',
        'layers.Add(name="add_1")([rep, c0])',
    ],
    "iteration_inside_an_iteration_without_carry": [
        "unrolled the repeat at model[0].repeat.layers[0].repeat: a later item refers to an id inside "
        "one of its iterations (o[1].inner1[0].c)",
        'c_2 = layers.Conv2D(filters=3, kernel_size=1, name="o_inner1_0_c")(h_2)',
        'layers.Add(name="add_1")([c_2, p0, o])',
    ],
    "iterations_without_carry_in_a_list": [
        "rep_r = []",
        "rep_r.append(r)",
        'layers.Add(name=f"mix_{k}_s")([h, rep_r[N - 1 - k]])',
        'layers.Concatenate(name="concat_1")([h, rep_r[0]])',
    ],
    "dense_defaults": [
        'DENSE = functools.partial(layers.Dense, use_bias=False, kernel_initializer="he_normal")',
        'DENSE(units=3, bias_initializer=keras.initializers.Constant(value=0.1), name="dense_1")',
        "kernel_regularizer=keras.regularizers.L1L2(l1=0.0, l2=0.01)",
        "use_bias=True",
    ],
    "inside_an_output": [
        "inlined block `outer`: a later item refers to an id inside a call (s.x.c1)",
        'x_2, x_c2 = two(inputs, name="s_x")',
        "keras.Model(inputs, [head, x_2]",
    ],
    "inside_a_pass_through_output": [
        "inlined block `outer`: a later item refers to an id inside a call (s.x.a)",
    ],
    "translation_defaults": [
        'RANDOM_TRANSLATION(height_factor=0.1, width_factor=0.1, name="random_translation_1")',
        'RANDOM_TRANSLATION(height_factor=0.2, width_factor=0.1, name="random_translation_2")',
    ],
}

#: What the code must not say (pruned layers, the functions and helpers only they need).
ABSENT: dict[str, list[str]] = {
    "pruned": [
        "max_pool2d_1",
        "conv2d_1",
        "layer_norm",
        "residual",
        "projection_strides",
        "def side",
        "side_1",
    ],
    "partly_pruned": ["two_2"],
}


def write_case(folder: Path, case: str) -> Path:
    """The case's spec (and the backbone specs it names) in ``folder``."""
    (folder / "fpn.yaml").write_text(FPN, encoding="utf-8")
    (folder / "small.yaml").write_text(SMALL, encoding="utf-8")
    spec = folder / f"{case}.yaml"
    spec.write_text(SPECS[case], encoding="utf-8")
    return spec


def generate(runner, folder: Path, case: str) -> tuple[Path, str]:
    spec = write_case(folder, case)
    module = folder / f"{case}_model.py"
    result = runner.invoke(app, ["codegen", str(spec), "-o", str(module)])
    assert result.exit_code == 0, result.output
    return module, result.output


@pytest.mark.parametrize("case", sorted(SPECS))
def test_codegen_writes_hierarchical_references(case, runner, tmp_path):
    module, output = generate(runner, tmp_path, case)
    code = module.read_text(encoding="utf-8")
    text = code + output
    for expected in EXPECTED[case]:
        assert expected in text, expected
    for absent in ABSENT.get(case, []):
        assert absent not in code, absent


def test_every_case_says_what_its_code_shows():
    assert set(EXPECTED) == set(SPECS)
    assert set(ABSENT) <= set(SPECS)


def _layers(model) -> list[tuple]:
    """Per layer: name, class, configuration, output shape, parameters."""
    return [
        (layer.name, type(layer).__name__, layer.get_config(), str(layer.output.shape), layer.count_params())
        for layer in model.layers
    ]


def assert_module_builds_the_builders_model(module_path: Path, spec: Path) -> None:
    """The generated module at ``module_path``, imported in this process, builds the model
    `cnnspec build` builds of ``spec``: every layer's name, class, configuration, output shape
    and parameters, and the model's inputs and outputs."""
    import cnnspec

    loader = importlib.util.spec_from_file_location(f"generated_{module_path.stem}", module_path)
    assert loader is not None and loader.loader is not None
    module = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(module)
    ours = cnnspec.build_model(spec)
    theirs = module.build_model()
    assert theirs.count_params() == ours.count_params()
    assert _layers(theirs) == _layers(ours)
    assert [str(t.shape) for t in theirs.outputs] == [str(t.shape) for t in ours.outputs]
    assert [t.name for t in theirs.inputs] == [t.name for t in ours.inputs]


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(SPECS))
def test_generated_code_builds_the_builders_model(case, runner, tmp_path):
    module_path, _ = generate(runner, tmp_path, case)
    assert_module_builds_the_builders_model(module_path, tmp_path / f"{case}.yaml")
