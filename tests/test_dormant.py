"""Items a compilation does not expand are checked for what needs no value (cnnspec/spec/dormant.py):
an item whose `when` is false, a repeat of 0 times, a block nothing calls, a `use:` library's
block. Each mistake there passed validate and waited for the var that turns it on."""

from __future__ import annotations

from pathlib import Path

import pytest

from cnnspec.api import compile_spec, compile_text
from cnnspec.errors import SpecError

HEAD = "cnnspec: 1\nname: d\ninput: {shape: [8, 8, 3]}\nvars: {big: false, n: 0}\n"
TAIL = "  - global_avg_pool2d\n  - dense: {units: 2, activation: softmax}\n"


def errors(text: str) -> list[tuple[str, str, str | None]]:
    with pytest.raises(SpecError) as caught:
        compile_text(text, "d.yaml")
    return [(e.path, e.message, e.hint) for e in caught.value.errors]


@pytest.mark.parametrize(
    ("model", "blocks", "expected"),
    [
        (
            '  - conv2d: {filters: 8, kernel_size: 3, paddin: same}\n    when: "${big}"\n',
            "",
            ("model[0].conv2d.paddin", "unknown parameter 'paddin' for `conv2d`", "did you mean `padding`?"),
        ),
        (
            '  - repeat: {times: "${n}", layers: [conv2D: {filters: 3, kernel_size: 3}]}\n',
            "",
            ("model[0].repeat.layers[0].conv2D", "unknown layer kind 'conv2D'", "did you mean `conv2d`?"),
        ),
        (
            "  - residual: {body: [conv2d: {filters: 3, kernel_size: 3, padding: sme}]}\n"
            '    when: "${big}"\n',
            "",
            (
                "model[0].residual.body[0].conv2d.padding",
                "expected one of valid, same; received string 'sme'",
                "did you mean `same`?",
            ),
        ),
        (
            '  - b: {f: 4, widht: 2}\n    when: "${big}"\n',
            "blocks:\n  b:\n    params: {f: int}\n    layers: [conv2d: {filters: '${f}', kernel_size: 1}]\n",
            ("model[0].b.widht", "unknown argument 'widht' for block `b`", "parameters: f"),
        ),
        (
            "  - conv2d: {filters: 4, kernel_size: 1}\n",
            "blocks:\n  unused:\n    layers: [dropout: {rate: 2}]\n",
            ("blocks.unused.layers[0].dropout.rate", None, None),
        ),
    ],
    ids=["when-false", "repeat-zero", "combinator-inside", "block-argument", "unused-block"],
)
def test_a_mistake_in_an_item_not_expanded_is_reported_where_it_is(model, blocks, expected):
    found = errors(HEAD + blocks + "model:\n" + model + TAIL)
    assert len(found) == 1, found
    path, message, hint = found[0]
    assert path == expected[0]
    if expected[1] is not None:
        assert (message, hint) == expected[1:]


def test_expressions_and_what_is_expanded_elsewhere_are_not_checked_again():
    # an expression has no value where nothing runs; a block's item expanded by one call and
    # skipped by another is reported once, by its expansion
    text = (
        HEAD
        + "blocks:\n  b:\n    params: {on: bool}\n    layers:\n"
        + '      - conv2d: {filters: "${undefined_here * 2}", kernel_size: 3, padding: sme}\n'
        + '        when: "${on}"\n'
        + "model:\n  - b: {on: true}\n  - b: {on: false}\n"
        + '  - dropout: "${rate}"\n    when: "${big}"\n'
        + TAIL
    )
    found = errors(text)
    assert [path for path, _, _ in found] == [
        "blocks.b.layers[0].conv2d.filters",
        "blocks.b.layers[0].conv2d.padding",
    ]


def test_a_valid_item_not_expanded_says_nothing():
    text = HEAD + "model:\n" + '  - dropout: 0.5\n    when: "${big}"\n' + TAIL
    assert [w.code for w in compile_text(text, "d.yaml").warnings] == ["unused-var"]  # vars.n


def test_a_block_of_a_use_library_nothing_calls_is_left_to_the_specs_that_call_it(tmp_path: Path):
    # its items name blocks the spec that calls it defines: checked in this spec, a `unit`
    # the library leaves to its users was an unknown kind, located in a file the user may not own
    (tmp_path / "lib.yaml").write_text(
        "cnnspec: 1\nblocks:\n  stage:\n    layers: [unit: {filters: 8}]\n"
        "  conv_bn:\n    layers: [conv2d: {filters: 4, kernel_size: 1}, batch_norm]\n"
    )
    spec = tmp_path / "spec.yaml"
    spec.write_text(HEAD + "use: [lib.yaml]\nmodel:\n  - conv_bn\n" + TAIL)
    assert compile_spec(spec).ir.nodes


def test_a_block_called_only_where_when_is_false_is_used_and_its_body_checked():
    # it was warned "defined but never used" (a family with a variant that turns it off then
    # failed --strict), and its body was not checked
    text = (
        HEAD
        + "blocks:\n  extra:\n    layers: [conv2d: {filters: 4, kernel_size: 1, paddin: same}]\n"
        + 'model:\n  - extra:\n    when: "${big}"\n'
        + TAIL
    )
    ((path, message, _),) = errors(text)
    assert (path, message) == (
        "blocks.extra.layers[0].conv2d.paddin",
        "unknown parameter 'paddin' for `conv2d`",
    )
    fine = text.replace("paddin: same", "padding: same")
    assert not [w for w in compile_text(fine, "d.yaml").warnings if w.code == "unused-block"]


def test_a_tuple_in_an_item_not_expanded_is_one_error_with_its_hint():
    text = HEAD + "model:\n" + '  - conv2d: {filters: 8, kernel_size: (3, 3)}\n    when: "${big}"\n' + TAIL
    ((path, message, hint),) = errors(text)
    assert path == "model[0].conv2d.kernel_size" and "received string '(3, 3)'" in message
    assert hint is not None and "not a tuple" in hint


HIDDEN = """\
cnnspec: 1
name: hidden
input: {shape: [8, 8, 1]}
blocks:
  b:
    params: {f: int}
    layers:
      - conv2d: {filters: "${f}", kernel_size: 3, paddin: same}
model:
  - conv2d: {filters: 4, kernel_size: 3}
    id: a
  - dense: {units: 3, activaton: softmax}
    inputs: [aa]
  - b: {f: 2, g: 3}
  - flatten:
    inputs: [a]
  - dense: 2
"""


def test_an_item_or_a_call_that_failed_still_has_what_needs_no_value_checked():
    """A mistake in an item's `inputs:` hid a misspelt parameter of the same item, and a call's
    unknown argument hid the block's body, which no other call expanded: every mistake of the
    file is reported at once, in the file's order."""
    assert errors(HIDDEN) == [
        (
            "blocks.b.layers[0].conv2d.paddin",
            "unknown parameter 'paddin' for `conv2d`",
            "did you mean `padding`?",
        ),
        (
            "model[1].dense.activaton",
            "unknown parameter 'activaton' for `dense`",
            "did you mean `activation`?",
        ),
        (
            "model[1].inputs[0]",
            "unknown layer id 'aa' (ids must be defined earlier in the spec)",
            "did you mean `a`?",
        ),
        (
            "model[2].b.g",
            "unknown argument 'g' for block `b`",
            "`f` is set already in this mapping: remove `g`, or give `f` its value",
        ),
    ]


@pytest.mark.parametrize(
    ("item", "first"),
    [
        # a `when:` that fails
        ('  - dense: {units: 3, activaton: softmax}\n    when: "${nowhere}"\n', "model[0].when"),
        # a `trainable:` that fails
        ('  - dense: {units: 3, activaton: softmax}\n    trainable: "${nowhere}"\n', "model[0].trainable"),
        # a combinator given two inputs: its layers are checked
        (
            "  - conv2d: {filters: 3, kernel_size: 1}\n    id: c\n"
            "  - residual: {body: [dense: {units: 3, activaton: softmax}]}\n    inputs: [c, c]\n",
            "model[1].inputs",
        ),
    ],
)
def test_an_item_stopped_by_its_own_error_has_its_layer_checked(item, first):
    found = [path for path, _, _ in errors(HEAD + "model:\n" + item + TAIL)]
    # in the file's order: the layer's line comes first
    assert len(found) == 2 and found[1] == first and found[0].endswith(".dense.activaton"), found


def test_a_block_body_expanded_by_another_call_is_not_checked_again():
    # the first call fails on its argument, the second expands the body: its mistake is
    # reported once, by the expansion (with the call that made it)
    text = HIDDEN.replace("  - b: {f: 2, g: 3}\n", "  - b: {f: 2, g: 3}\n  - b: {f: 2}\n")
    found = [path for path, _, _ in errors(text)]
    assert found.count("blocks.b.layers[0].conv2d.paddin") == 1, found


SKIPPED_CALLS = """\
cnnspec: 1
name: dm
input: {shape: [8, 8, 3]}
vars: {on: false}
blocks:
  b:
    params: {f: int}
    layers: [conv2d: {filters: "${f}", kernel_size: 1}]
model:
  - b: {f: 2.5}
    when: "${on}"
  - b:
    when: "${on}"
  - conv2d: {filters: 3}
    when: "${on}"
  - flatten
"""


def test_a_skipped_item_has_its_arguments_types_and_required_values_checked():
    # they passed validate and waited for `--set vars.on=true`, which reports them alike
    expected = [
        ("model[0].b.f", "expected int for block parameter `f`; received 2.5", None),
        ("model[1].b", "missing required argument `f` for block `b`", None),
        (
            "model[2].conv2d",
            "missing required parameter `kernel_size` for `conv2d`",
            "e.g. conv2d: {filters: 32, kernel_size: 3}",
        ),
    ]
    assert errors(SKIPPED_CALLS) == expected
    assert errors(SKIPPED_CALLS.replace("{on: false}", "{on: true}")) == expected


CONV = "  - conv2d: {filters: 4, kernel_size: 1}\n"


@pytest.mark.parametrize(
    ("model", "blocks", "expected"),
    [
        # a single value goes to the only parameter, and is checked as that argument
        (
            '  - b: 2.5\n    when: "${big}"\n',
            "b:\n    params: {f: int}\n",
            ("model[0].b", "`f`; received 2.5"),
        ),
        # a repeat of 0 times: its call misses an argument
        (
            '  - repeat: {times: "${n}", layers: [b]}\n',
            "b:\n    params: {f: int}\n",
            ("model[0].repeat.layers[0].b", "argument `f`"),
        ),
        # a block nothing calls: the call in its body misses one, its layer a parameter
        (
            CONV,
            "b:\n    params: {f: int}\n  u:\n    layers: [b: {}]\n",
            ("blocks.u.layers[0].b", "argument `f`"),
        ),
        (CONV, "u:\n    layers: [dense: {activation: relu}]\n", ("blocks.u.layers[0].dense", "`units`")),
    ],
    ids=["single-value", "repeat-zero", "uncalled-block-call", "uncalled-block-layer"],
)
def test_required_values_and_argument_types_are_checked_in_every_skipped_place(model, blocks, expected):
    body = "    layers: [conv2d: {filters: '${f}', kernel_size: 1}]\n" if "params" in blocks else ""
    text = HEAD + "blocks:\n  " + blocks.replace("params: {f: int}\n", "params: {f: int}\n" + body, 1)
    found = errors(text + "model:\n" + model + TAIL)
    assert [(path, expected[1] in message) for path, message, _ in found] == [(expected[0], True)], found


def test_a_skipped_layer_given_its_required_parameter_by_defaults_or_an_expression_says_nothing():
    # the spec's `defaults` and, in a block's body, the block's give it; `${…}` waits for a value
    text = (
        HEAD
        + "defaults:\n  conv2d: {kernel_size: 3}\n"
        + "blocks:\n  b:\n    params: {u: {type: int, default: 2}}\n"
        + "    defaults: {dense: {units: 4}}\n    layers:\n"
        + '      - dense: {activation: relu}\n        when: "${big}"\n'
        + '      - b2: {f: "${u * 2}"}\n        when: "${big}"\n'
        + "      - conv2d: {filters: 2}\n"
        + "  b2:\n    params: {f: int}\n    layers: [dense: '${f}']\n"
        + "model:\n  - b\n"
        + '  - conv2d: {filters: 3}\n    when: "${big}"\n'
        + '  - dropout: "${rate}"\n    when: "${big}"\n'
        + TAIL
    )
    compiled = compile_text(text, "d.yaml")
    assert [w.code for w in compiled.warnings] == ["unused-var"]  # vars.n
    # a misspelt kind in `defaults` is one error (its layers rely on the kind meant)
    assert [
        path for path, _, _ in errors(text.replace("conv2d: {kernel_size: 3}", "conv2D: {kernel_size: 3}"))
    ] == ["defaults.conv2D"]


def test_a_library_layer_may_take_its_required_parameter_from_the_calling_spec(tmp_path: Path):
    # checked on its own, a block library cannot know the `defaults` of the specs that call it
    (tmp_path / "lib.yaml").write_text("cnnspec: 1\nblocks:\n  unit:\n    layers: [conv2d: {filters: 4}]\n")
    spec = tmp_path / "spec.yaml"
    spec.write_text(HEAD + "use: [lib.yaml]\ndefaults: {conv2d: {kernel_size: 1}}\nmodel:\n  - unit\n" + TAIL)
    assert compile_spec(spec).ir.nodes
    from cnnspec.spec.library import check_library

    assert check_library(tmp_path / "lib.yaml").blocks == ["unit"]


UNUSED_INNER = """\
cnnspec: 1
name: unused
input: {shape: [8, 8, 3]}
vars: {extra: false, n: 0}
blocks:
  outer:
    layers:
      - inner
  inner:
    layers:
      - conv2d: {filters: 4, kernel_size: 1}
  spare:
    layers: [flatten]
model:
  - outer:
    when: "${extra}"
  - repeat: {times: "${n}", layers: [outer]}
  - flatten
"""


@pytest.mark.parametrize(
    "drop", ["", '  - outer:\n    when: "${extra}"\n', '  - repeat: {times: "${n}", layers: [outer]}\n']
)
def test_a_block_reached_only_through_a_skipped_call_is_used(drop):
    # `inner` is called by `outer`, which a false `when` or a repeat of 0 times skips: used, only
    # not this time, as `outer` is; `spare`, which nothing calls, is still warned of
    compiled = compile_text(UNUSED_INNER.replace(drop, ""), "u.yaml")
    assert [(w.code, w.path) for w in compiled.warnings if w.code == "unused-block"] == [
        ("unused-block", "blocks.spare")
    ]
