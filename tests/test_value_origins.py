"""Where a computed value came from: origin notes and folded repeats of one bad value.

An error on a value a ``${…}`` expression computed is located at the expression; its notes say
where each var it read was set (a ``--set`` option, an extending file, a backbone item, the
``vars:`` entry), so that a mistake made elsewhere is found from the error. The same bad value
failing the same way at several uses is one error, with a note listing the other uses.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cnnspec.api import compile_spec, compile_text
from cnnspec.errors import Diagnostic, Diagnostics, Loc, Note, SpecError, origin_note, uses_note
from cnnspec.lsp.diagnostics import convert

BASE = """\
cnnspec: 1
name: base2
input: {shape: [8, 8, 3]}
vars: {w: 4}
model:
  - conv2d: {filters: "${w}", kernel_size: 1}
  - flatten
  - dense: {units: 10, activation: softmax}
"""


def errors_of(text: str, overrides: tuple[str, ...] = ()) -> list[Diagnostic]:
    with pytest.raises(SpecError) as caught:
        compile_text(text, "t.yaml", overrides)
    return caught.value.errors


def file_errors(path: Path, overrides: tuple[str, ...] = ()) -> list[Diagnostic]:
    with pytest.raises(SpecError) as caught:
        compile_spec(path, overrides)
    return caught.value.errors


def messages(error: Diagnostic) -> list[str]:
    return [note.message for note in error.notes]


# -- where the value was set ---------------------------------------------------------------------
def test_a_value_set_on_the_command_line_is_named_with_its_option():
    (error,) = errors_of(BASE, ("vars.w=0",))
    assert (error.loc.file, error.loc.line, error.path) == ("t.yaml", 6, "model[0].conv2d.filters")
    assert error.message == "expected a positive integer; received integer 0"  # not "in a --set"
    (note,) = error.notes
    assert note.message == "w is integer 0, set by --set vars.w=0 (<--set 1>:1:8)"
    assert (note.loc, note.path) == (Loc("<--set 1>", 1, 8), "vars.w")
    assert note.to_json()["file"] == "<--set 1>"  # --format json's trace locates it on the command line


def test_a_value_set_by_an_extending_file_points_at_that_file(tmp_path):
    (tmp_path / "base.yaml").write_text(BASE, encoding="utf-8")
    child = tmp_path / "child.yaml"
    child.write_text("cnnspec: 1\nextends: base.yaml\nname: child\nvars: {w: 0}\n", encoding="utf-8")
    (error,) = file_errors(child)
    assert Path(error.loc.file).name == "base.yaml" and error.loc.line == 6
    origin = [n for n in error.notes if n.message.startswith("w is")]
    assert [
        (n.message.split(", set at ")[0], Path(n.loc.file).name, n.loc.line, n.loc.column) for n in origin
    ] == [("w is integer 0", "child.yaml", 4, 11)]
    assert messages(error)[-1].endswith("child.yaml:4:11")  # the included-from chain comes first


def test_a_zoo_model_extended_with_a_bad_var_points_at_the_extending_file(tmp_path):
    spec = tmp_path / "ext_zoo.yaml"
    spec.write_text("cnnspec: 1\nextends: zoo:resnet50\nname: ez\nvars: {classes: 0}\n", encoding="utf-8")
    (error,) = file_errors(spec)
    assert Path(error.loc.file).name == "resnet.yaml"
    assert error.path == "model[9].dense.units"
    origin = error.notes[-1]
    assert origin.message.startswith("classes is integer 0, set at ") and origin.path == "vars.classes"
    assert (Path(origin.loc.file).name, origin.loc.line, origin.loc.column) == ("ext_zoo.yaml", 4, 17)


def test_a_var_of_the_wrong_type_is_described_with_its_type():
    text = BASE.replace("{w: 4}", '{w: "8"}')
    (error,) = errors_of(text)
    assert messages(error) == ["w is string '8', set at t.yaml:4:11"]


def test_every_var_an_expression_reads_gets_a_note_in_the_order_written():
    text = BASE.replace("{w: 4}", "{w: 4, k: 4}").replace('"${w}"', '"${k - w}"')
    (error,) = errors_of(text)
    assert messages(error) == ["k is integer 4, set at t.yaml:4:17", "w is integer 4, set at t.yaml:4:11"]


def test_an_evaluation_error_names_the_values_it_read():
    text = BASE.replace('"${w}"', '"${8 // w}"')
    (error,) = errors_of(text, ("vars.w=0",))
    assert error.message == "in '${8 // w}': division by zero"
    assert messages(error) == ["w is integer 0, set by --set vars.w=0 (<--set 1>:1:8)"]


def test_a_var_computed_from_another_names_the_one_it_reads():
    text = BASE.replace("{w: 4}", '{d: 2, r: "${8 // d}"}').replace('"${w}"', '"${r}"')
    (error,) = errors_of(text, ("vars.d=0",))
    assert (error.path, error.message) == ("vars.r", "division by zero")
    assert messages(error) == ["d is integer 0, set by --set vars.d=0 (<--set 1>:1:8)"]


# -- what gets no note -----------------------------------------------------------------------------
def test_an_undefined_name_gets_no_origin_notes():
    (error,) = errors_of(BASE.replace('"${w}"', '"${w * x}"'))
    assert error.message == "in '${w * x}': undefined name 'x'"
    assert error.notes == ()


def test_a_written_out_value_gets_no_note_and_a_loop_variable_its_iteration():
    text = BASE.replace('"${w}"', "0")
    (error,) = errors_of(text)
    assert error.notes == ()
    loop = BASE.replace(
        '  - conv2d: {filters: "${w}", kernel_size: 1}',
        '  - repeat: {times: 2, as: w, layers: [conv2d: {filters: "${w}", kernel_size: 1}]}',
    )
    (error,) = errors_of(loop)  # the loop variable w (0 in the first iteration), not the var
    assert error.path == "model[0].repeat.layers[0].conv2d.filters"
    # no origin note (no place wrote its value): the iteration that computed it
    assert messages(error) == ["in the repeat at model[0] (t.yaml:6:5), in iteration w = 0"]


BLOCK = """\
cnnspec: 1
name: t
input: {shape: [8, 8, 3]}
vars: {width: "8"}
blocks:
  cb:
    params: {f: any}
    layers:
      - conv2d: {filters: "${f}", kernel_size: 1}
model:
  - cb: {f: ARGUMENT}
  - flatten
  - dense: 2
"""


def test_a_block_argument_from_a_var_names_the_var_one_level_up():
    (error,) = errors_of(BLOCK.replace("ARGUMENT", '"${width}"'))
    assert error.path == "blocks.cb.layers[0].conv2d.filters"
    assert messages(error) == [
        "in block 'cb' called from model[0] (t.yaml:11:5)",
        "width is string '8', set at t.yaml:4:15",
    ]


def test_a_block_argument_written_at_the_call_is_named_where_it_is_written():
    # the origin every use of `f` shares: one bad argument used three times is one error
    (error,) = errors_of(BLOCK.replace("ARGUMENT", '"8"'))
    assert messages(error) == [
        "in block 'cb' called from model[0] (t.yaml:11:5)",
        "f is string '8', set at t.yaml:11:13",
    ]
    layer = '      - conv2d: {filters: "${f}", kernel_size: 1}\n'
    twice = BLOCK.replace(layer, layer + layer.replace("kernel_size: 1", "kernel_size: 3"))
    (error,) = errors_of(twice.replace("ARGUMENT", "0"))
    assert messages(error)[-1].startswith("same error at 1 more use: blocks.cb.layers[1].conv2d.filters")
    # called twice with it: still one error (the second call's use at layers[1] was a second)
    called_twice = twice.replace("ARGUMENT", "0").replace(
        "  - cb: {f: 0}\n", "  - cb: {f: 0}\n  - cb: {f: 0}\n"
    )
    (error,) = errors_of(called_twice)
    assert sum(m.startswith("f is integer 0, set at") for m in messages(error)) == 2


def test_a_block_parameter_shadows_a_var_of_the_same_name():
    text = BLOCK.replace('{width: "8"}', "{width: 8, f: 3}").replace("ARGUMENT", '"8"')
    (error,) = errors_of(text)
    assert not any(m.startswith("f is integer 3") for m in messages(error))  # the parameter, not the var


# -- one bad value, one error ----------------------------------------------------------------------
WHEN = """\
cnnspec: 1
name: w4
input: {shape: [8, 8, 3]}
vars: {bn: "false"}
model:
  - conv2d: {filters: 3, kernel_size: 1}
  - batch_norm:
    when: "${bn}"
  - conv2d: {filters: 3, kernel_size: 1}
  - batch_norm:
    when: "${bn}"
  - flatten
  - dense: 2
"""


def test_a_bad_var_used_twice_is_one_error_listing_the_other_use():
    (error,) = errors_of(WHEN)
    assert (error.path, error.message) == ("model[1].when", "expected true or false; received 'false'")
    assert messages(error) == [
        "bn is string 'false', set at t.yaml:4:12",
        "same error at 1 more use: model[3].when (t.yaml:11:11)",
    ]
    assert (error.notes[-1].loc, error.notes[-1].path) == (Loc("t.yaml", 11, 11), "model[3].when")


def test_many_uses_are_counted_after_the_first_few():
    layers = "".join('  - conv2d: {filters: "${f}", kernel_size: 1}\n' for _ in range(6))
    text = (
        f'cnnspec: 1\nname: t\ninput: {{shape: [8, 8, 3]}}\nvars: {{f: "8"}}\nmodel:\n{layers}  - flatten\n'
    )
    (error,) = errors_of(text)
    assert error.path == "model[0].conv2d.filters"
    assert messages(error)[-1] == (
        "same error at 5 more uses: model[1].conv2d.filters (t.yaml:7:23), "
        "model[2].conv2d.filters (t.yaml:8:23), model[3].conv2d.filters (t.yaml:9:23) and 2 more"
    )


def test_a_use_inside_a_block_called_twice_is_counted_once():
    text = BLOCK.replace("ARGUMENT", "8").replace('vars: {width: "8"}', 'vars: {bad: "x"}')
    text = text.replace('"${f}", kernel_size: 1}', '"${bad}", kernel_size: 1}\n      - dense: "${bad}"')
    text = text.replace("  - flatten\n", "  - cb: {f: 9}\n  - flatten\n")
    errors = errors_of(text)
    (error,) = [e for e in errors if e.path.startswith("blocks.cb")]
    assert error.path == "blocks.cb.layers[0].conv2d.filters"
    assert messages(error).count("same error at 1 more use: blocks.cb.layers[1].dense (t.yaml:10:16)") == 1


def test_different_errors_from_one_var_are_each_reported():
    text = WHEN.replace('"false"', "0").replace(
        'when: "${bn}"\n  - conv2d: {filters: 3', 'when: "${bn}"\n  - conv2d: {filters: "${bn}"', 1
    )
    errors = errors_of(text)
    assert [(e.path, e.message) for e in errors] == [
        ("model[1].when", "expected true or false; received 0"),
        ("model[2].conv2d.filters", "expected a positive integer; received integer 0"),
    ]


def test_a_backbone_var_of_the_wrong_type_is_one_error_pointing_at_the_item(tmp_path):
    spec = tmp_path / "b9.yaml"
    text = (
        "cnnspec: 1\nname: b9\ninput: {shape: [64, 64, 3]}\nmodel:\n"
        '  - backbone: {spec: zoo:resnet50, vars: {classes: "ten"}}\n'
        "  - global_avg_pool2d\n  - dense: {units: 10, activation: softmax}\n"
    )
    spec.write_text(text, encoding="utf-8")
    (error,) = file_errors(spec)
    assert (Path(error.loc.file).name, error.loc.line) == ("resnet.yaml", 50)
    origin = next(n for n in error.notes if n.message.startswith("classes is"))
    assert origin.message.startswith("classes is string 'ten', set at ")
    assert (Path(origin.loc.file).name, origin.loc.line, origin.loc.column) == ("b9.yaml", 5, 52)
    # a var with var_choices (the zoo's include_top) is refused at the item itself
    spec.write_text(text.replace('classes: "ten"', 'include_top: "no"'), encoding="utf-8")
    (error,) = file_errors(spec)
    assert (Path(error.loc.file).name, error.loc.line, error.loc.column) == ("b9.yaml", 5, 56)
    assert error.message.endswith("to be true or false (its var_choices); received string 'no'")


# -- the helpers and the editor ---------------------------------------------------------------------
def test_origin_note_quotes_a_long_or_hostile_option_safely():
    loc = Loc("<--set 1>", 1, 8)
    note = origin_note("w", "x" * 200, loc, "vars.w", "vars.w=" + "\x1b" * 100)
    assert "\x1b" not in note.message and "..." in note.message
    assert "string 'xxx" in note.message and len(note.message) < 200


def test_diagnostics_fold_only_the_same_message_from_the_same_origin():
    origin = Note("w is integer 0, set at a.yaml:1:1", Loc("a.yaml", 1, 1), "vars.w")
    other = Note("v is integer 0, set at a.yaml:2:1", Loc("a.yaml", 2, 1), "vars.v")
    diags = Diagnostics()
    for line, note, message in [(5, origin, "m"), (6, origin, "m"), (7, origin, "other"), (8, other, "m")]:
        diags.error(message, Loc("a.yaml", line, 3), f"model[{line}]", notes=[note], origins=[note])
    assert [(d.loc.line, d.message) for d in diags.items] == [(5, "m"), (7, "other"), (8, "m")]
    assert diags.items[0].notes == (origin, uses_note([("model[6]", Loc("a.yaml", 6, 3))], 1))
    plain = Diagnostics()  # without origins nothing is folded: different places, different errors
    for line in (5, 6):
        plain.error("m", Loc("a.yaml", line, 3), f"model[{line}]")
    assert len(plain.items) == 2


def test_the_editor_shows_the_origin_as_related_information():
    (error,) = errors_of(BASE.replace("{w: 4}", '{w: "8"}'))
    shown = convert(error, "t.yaml", BASE.replace("{w: 4}", '{w: "8"}'))
    related = [(r.message, r.location.range.start.line) for r in shown.related_information or []]
    assert ("note: w is string '8', set at t.yaml:4:11", 3) in related


def test_a_loop_variable_outside_a_block_does_not_hide_the_var_inside_it():
    text = BLOCK.replace('{width: "8"}', '{w: "8"}').replace('"${f}"', '"${w}"')
    text = text.replace("  - cb: {f: ARGUMENT}\n", "  - repeat: {times: 2, as: w, layers: [cb: {f: 1}]}\n")
    (error,) = errors_of(text)  # a block body sees the vars, not its caller's loop variable
    assert error.path == "blocks.cb.layers[0].conv2d.filters"
    assert messages(error)[-1] == "w is string '8', set at t.yaml:4:11"


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ('loop: "${f}"', "block 'loop' calls itself (loop → loop)"),
        ('flatten: "${f}"', "`flatten` takes no single value; received '${f}'"),
    ],
    ids=["cycle", "no-single-value"],
)
def test_an_error_that_no_value_could_fix_names_no_value(item, message):
    """A block calling itself, or a kind given a value it never takes, is refused whatever the
    value is: a note "w is integer 4, set at …" pointed at a var that was no part of it."""
    text = (
        "cnnspec: 1\nname: c\nvars: {w: 4}\ninput: {shape: [8, 8, 1]}\n"
        "blocks:\n  loop:\n    params: {f: int}\n    layers:\n"
        '      - conv2d: {filters: "${f}", kernel_size: 3, padding: same}\n'
        f"      - {item}\n"
        'model:\n  - loop: {f: "${w}"}\n  - flatten\n  - dense: {units: 10, activation: softmax}\n'
    )
    (error,) = errors_of(text)
    assert error.message == message and error.loc.line == 10
    assert messages(error) == ["in block 'loop' called from model[0] (t.yaml:12:5)"]


def test_a_nested_calls_argument_is_followed_to_where_its_value_was_written():
    """`inner: {g: ${f}}` inside `outer`: the error in inner had no note on the chain through
    outer (f is the caller's parameter), where the direct call's literal had one."""
    text = (
        "cnnspec: 1\nname: ch\nvars: {w: 2}\ninput: {shape: [8, 8, 1]}\nblocks:\n"
        "  inner:\n    params: {g: int}\n    layers:\n"
        '      - conv2d: {filters: "${g}", kernel_size: 3, padding: same}\n'
        '  mid:\n    params: {h: int}\n    layers:\n      - inner: {g: "${h - w}"}\n'
        '  outer:\n    params: {f: int}\n    layers:\n      - mid: {h: "${f}"}\n'
        "model:\n  - outer: {f: 2}\n  - inner: {g: 0}\n  - flatten\n  - dense: {units: 10}\n"
    )
    (error,) = errors_of(text)
    assert error.message == "expected a positive integer; received integer 0"
    assert messages(error) == [
        "in block 'inner' called from blocks.mid.layers[0] (t.yaml:13:9)",
        "in block 'mid' called from blocks.outer.layers[0] (t.yaml:17:9)",
        "in block 'outer' called from model[0] (t.yaml:19:5)",
        "f is integer 2, set at t.yaml:19:16",  # through mid's h and outer's f, two levels out
        "w is integer 2, set at t.yaml:3:11",
        "also in block 'inner' called from model[1] (t.yaml:20:5)",
        "g is integer 0, set at t.yaml:20:16",
    ]


def test_values_computed_differently_from_one_origin_are_each_their_own_error():
    """`${f - 2}` and `${f // 4}` of a right f = 2 are two mistakes (both 0), not one bad value
    used twice: each is reported at its own place, with its own call chain and the note on f."""
    text = (
        "cnnspec: 1\nname: c\ninput: {shape: [8, 8, 1]}\nblocks:\n"
        '  conv:\n    params: {g: int}\n    layers:\n      - conv2d: {filters: "${g}", kernel_size: 3}\n'
        '  fc:\n    params: {u: int}\n    layers:\n      - dense: {units: "${u}"}\n'
        '  outer:\n    params: {f: int}\n    layers:\n      - conv: {g: "${f - 2}"}\n      - flatten\n'
        '      - fc: {u: "${f // 4}"}\n'
        "model:\n  - outer: {f: 2}\n  - dense: {units: 10}\n"
    )
    first, second = errors_of(text)
    assert (first.path, second.path) == (
        "blocks.conv.layers[0].conv2d.filters",
        "blocks.fc.layers[0].dense.units",
    )
    assert messages(first)[-1] == messages(second)[-1] == "f is integer 2, set at t.yaml:20:16"
    assert messages(second)[0] == "in block 'fc' called from blocks.outer.layers[2] (t.yaml:18:9)"
    sections = BASE.replace("vars: {w: 4}", "vars: {w: 4, n: 2}") + (
        'training: {epochs: "${n - 2}", batch_size: "${n // 4}"}\n'
    )
    epochs, batch = errors_of(sections)
    assert (epochs.path, batch.path) == ("training.epochs", "training.batch_size")
    assert messages(epochs) == messages(batch) == ["n is integer 2, set at t.yaml:4:17"]


def test_arguments_that_read_two_parameters_at_every_level_are_followed_once_each():
    """Each level calls the next with `{a: ${a + b}, b: ${a + b}}`: the notes walked 2**depth
    chains (30 levels: hours); each (parameter, level) is now followed once."""
    lines = ["cnnspec: 1", "name: deep", "input: {shape: [8, 8, 1]}", "blocks:"]
    lines += ["  b0:", "    params: {a: int, b: int}", "    layers:"]
    lines += ['      - conv2d: {filters: "${a - a}", kernel_size: 3, padding: same}']
    for k in range(1, 30):
        lines += [f"  b{k}:", "    params: {a: int, b: int}", "    layers:"]
        lines += [f'      - b{k - 1}: {{a: "${{a + b}}", b: "${{a + b}}"}}']
    lines += ["model:", "  - b29: {a: 1, b: 1}", "  - flatten", "  - dense: {units: 2}"]
    (error,) = errors_of("\n".join(lines) + "\n")
    assert messages(error)[-2:] == [
        "a is integer 1, set at t.yaml:126:14",
        "b is integer 1, set at t.yaml:126:20",
    ]


@pytest.mark.parametrize(
    ("default", "note"),
    [
        ("0", "w is integer 0, set at t.yaml:7:46"),  # the default written out, at `default:`
        ('"${z}"', "z is integer 0, set at t.yaml:4:11"),  # the var the default reads
        ('"${j - 3}"', "j is integer 3, set at t.yaml:11:12"),  # the call's other argument
    ],
    ids=["literal", "var", "other-parameter"],
)
def test_a_parameter_left_to_its_default_is_followed_to_the_default(default, note):
    """`b: {j: 3, k: ${n}}` leaves w to its default: the notes named n alone, never what made
    w 0 (its default, or what the default reads)."""
    text = (
        "cnnspec: 1\nname: d\ninput: {shape: [8, 8, 1]}\nvars: {z: 0, n: 3}\nblocks:\n  b:\n"
        f"    params: {{j: int, w: {{type: int, default: {default}}}, k: {{type: int}}}}\n    layers:\n"
        '      - conv2d: {filters: "${w * k}", kernel_size: 3}\nmodel:\n'
        '  - b: {j: 3, k: "${n}"}\n  - flatten\n  - dense: {units: 10}\n'
    )
    (error,) = errors_of(text)
    assert error.message == "expected a positive integer; received integer 0"
    assert messages(error) == [
        "in block 'b' called from model[0] (t.yaml:11:5)",
        note,
        "n is integer 3, set at t.yaml:4:17",
    ]


def test_a_default_read_from_in_channels_names_no_value():
    text = (
        "cnnspec: 1\nname: d\ninput: {shape: [8, 8, 1]}\nblocks:\n  b:\n"
        '    params: {w: {type: int, default: "${in_channels - 1}"}, v: {type: int, default: 0}}\n'
        '    layers:\n      - conv2d: {filters: "${w}", kernel_size: 1}\n'
        '      - conv2d: {filters: "${v}", kernel_size: 1}\n'
        "model:\n  - b\n  - flatten\n  - dense: {units: 10}\n"
    )
    first, second = errors_of(text)
    assert messages(first) == ["in block 'b' called from model[0] (t.yaml:11:5)"]  # in_channels: no place
    assert messages(second) == [
        "in block 'b' called from model[0] (t.yaml:11:5)",
        "v is integer 0, set at t.yaml:6:85",  # (a bare call `- b` leaves both to their defaults)
    ]


def test_one_element_of_a_var_used_at_two_layers_is_one_error_and_another_element_its_own():
    """`${fs[0]}` at two layers is the same bad value met again (one error, a note listing the
    other use), as `${f}` is; `${fs[1]}`, 0 too, is another element: its own error."""
    text = (
        "cnnspec: 1\nname: e\ninput: {shape: [8, 8, 1]}\nvars: {fs: [0, 0, 4]}\nmodel:\n"
        '  - conv2d: {filters: "${fs[0]}", kernel_size: 1}\n'
        '  - conv2d: {filters: "${fs[ 0 ]}", kernel_size: 1}\n'
        '  - conv2d: {filters: "${fs[1]}", kernel_size: 1}\n'
        '  - conv2d: {filters: "${fs[2] - 4}", kernel_size: 1}\n'
        "  - flatten\n  - dense: {units: 10}\n"
    )
    first, second, third = errors_of(text)
    assert (first.path, second.path, third.path) == (
        "model[0].conv2d.filters",
        "model[2].conv2d.filters",
        "model[3].conv2d.filters",
    )
    origin = "fs is a list of 3 items, set at t.yaml:4:12"
    assert messages(first) == [origin, "same error at 1 more use: model[1].conv2d.filters (t.yaml:7:23)"]
    assert messages(second) == messages(third) == [origin]


def test_an_element_passed_through_a_block_parameter_folds_with_its_other_uses():
    text = (
        "cnnspec: 1\nname: e\ninput: {shape: [8, 8, 1]}\nvars: {fs: [[0, 2], 4]}\nblocks:\n"
        '  b:\n    params: {g: list}\n    layers:\n      - conv2d: {filters: "${g[0]}", kernel_size: 1}\n'
        'model:\n  - b: {g: "${fs[0]}"}\n  - conv2d: {filters: "${fs[0][0]}", kernel_size: 1}\n'
        "  - flatten\n  - dense: {units: 10}\n"
    )
    (error,) = errors_of(text)
    assert error.path == "blocks.b.layers[0].conv2d.filters"
    assert messages(error)[1:] == [
        "fs is a list of 2 items, set at t.yaml:4:12",
        "same error at 1 more use: model[1].conv2d.filters (t.yaml:12:23)",
    ]
