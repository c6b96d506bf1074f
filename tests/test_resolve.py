"""Resolution: golden IR snapshots, naming rules, combinators and warnings."""

from __future__ import annotations

import json
import os

import pytest
from hypothesis import HealthCheck, given, settings

from cnnspec.api import compile_spec, compile_text
from cnnspec.cli.app import app
from cnnspec.errors import Diagnostic, SpecError
from cnnspec.ir import BlockCall, Conditional, Layer, Parallel, Repeat, Residual, lower
from tests import strategies as S
from tests.conftest import FIXTURES

RESOLVE = sorted((FIXTURES / "resolve").glob("*.yaml"))


def snapshot(compiled) -> dict:
    summary = compiled.summary()
    return {
        "output_shape": summary["output_shape"],
        "total_params": summary["total_params"],
        "layers": [
            f"{row['name']} = {row['kind']}({', '.join(row['inputs'])}) -> {row['output_shape']} "
            f"params={row['params']} group={row['group'] or '-'}"
            for row in summary["layers"]
        ],
        "params": {node.name: node.params for node in compiled.ir.nodes},
    }


@pytest.mark.parametrize("path", RESOLVE, ids=lambda p: p.stem)
def test_resolve_matches_golden_snapshot(path):
    """Set CNNSPEC_UPDATE_GOLDEN=1 to rewrite the .json snapshots after an intended change."""
    got = json.loads(json.dumps(snapshot(compile_spec(path))))
    golden = path.with_suffix(".json")
    if os.environ.get("CNNSPEC_UPDATE_GOLDEN"):
        golden.write_text(json.dumps(got, indent=1) + "\n")
    assert got == json.loads(golden.read_text())


def test_names_follow_blocks_repeat_and_ids():
    compiled = compile_spec(FIXTURES / "resolve" / "combinators.yaml")
    names = [node.name for node in compiled.ir.nodes]
    assert names[:2] == ["res_1_conv2d_1", "res_1_batch_norm_1"]
    assert names[4:6] == ["res_1_add_1", "res_1_activation_1"]
    assert "res_2_shortcut_conv2d_1" in names  # stride 2 and 8→16 channels: projection
    assert "res_1_shortcut_conv2d_1" in names  # 3 → 8 channels
    assert names[-1] == "global_avg_pool2d_1" and "dropout_1" not in names  # `when` was false
    assert len(names) == len(set(names))


def test_auto_shortcut_projects_only_when_shapes_differ():
    compiled = compile_text(
        """
cnnspec: 1
name: t
input: {shape: [8, 8, 4]}
model:
  - residual: {body: [conv2d: {filters: 4, kernel_size: 3, padding: same}]}
  - residual: {body: [conv2d: {filters: 8, kernel_size: 3, strides: 2, padding: same}]}
"""
    )
    kinds = [(n.name, n.kind) for n in compiled.ir.nodes]
    assert kinds == [
        ("conv2d_1", "conv2d"),
        ("add_1", "add"),
        ("conv2d_2", "conv2d"),
        ("shortcut_conv2d_1", "conv2d"),
        ("shortcut_batch_norm_1", "batch_norm"),
        ("add_2", "add"),
    ]
    projection = compiled.ir.node("shortcut_conv2d_1")
    assert projection.params["strides"] == 2 and projection.params["kernel_size"] == 1
    assert compiled.ir.node("add_2").shape == (4, 4, 8)


@pytest.mark.parametrize("merge", ["multiply", "add"])
def test_auto_shortcut_keeps_the_entry_for_a_gate_the_merge_broadcasts(merge):
    """A body that ends 1×1×C (squeeze-and-excitation) is broadcast over the entry by an
    element-wise merge: `auto` took it for a shape change and projected the entry with stride 8
    down to 1×1, collapsing the whole block."""
    compiled = compile_text(
        "cnnspec: 1\nname: t\ninput: {shape: [8, 8, 16]}\nmodel:\n  - residual:\n      body:\n"
        "        - global_avg_pool2d: {keepdims: true}\n"
        "        - conv2d: {filters: 4, kernel_size: 1, activation: relu}\n"
        "        - conv2d: {filters: 16, kernel_size: 1, activation: sigmoid}\n"
        f"      merge: {merge}\n"
    )
    merged = compiled.ir.nodes[-1]
    assert merged.kind == merge and merged.shape == (8, 8, 16) and merged.inputs[0] == "input"
    assert not any("shortcut" in n.name for n in compiled.ir.nodes)
    # a body ending in other channels (1 of 16: a likely `filters` mistake) is projected, as before
    narrow = compile_text(
        "cnnspec: 1\nname: t\ninput: {shape: [8, 8, 16]}\nmodel:\n"
        "  - residual: {body: [conv2d: {filters: 1, kernel_size: 1}]}\n"
    )
    assert narrow.ir.node("shortcut_conv2d_1").params["filters"] == 1
    # channels that differ are no broadcast: projected as before
    other = compile_text(
        "cnnspec: 1\nname: t\ninput: {shape: [8, 8, 16]}\nmodel:\n"
        "  - residual: {body: [conv2d: {filters: 8, kernel_size: 8}]}\n"
    )
    assert other.ir.node("shortcut_conv2d_1").params["strides"] == 8


def test_identity_shortcut_with_mismatched_shapes_is_a_located_error():
    with pytest.raises(SpecError) as caught:
        compile_text(
            "cnnspec: 1\nname: t\ninput: {shape: [8, 8, 4]}\nmodel:\n"
            "  - residual: {body: [conv2d: {filters: 8, kernel_size: 1}], shortcut: identity}\n"
        )
    error = caught.value.errors[0]
    assert error.message.startswith("expected inputs whose shapes broadcast (on each axis, equal sizes")
    assert error.loc.line == 5


def test_two_heads_and_dead_layer_warning():
    compiled = compile_spec(FIXTURES / "resolve" / "two_heads.yaml")
    assert compiled.summary()["output_shape"] == [[None, 10], [None, 1]]
    dead = compile_text(
        "cnnspec: 1\nname: t\ninput: {shape: [4]}\nmodel:\n  - dense: 3\n    id: a\n"
        "  - dense: 2\n    inputs: input\n"
    )
    assert [w.code for w in dead.warnings] == ["dead-layer"]
    assert [n.name for n in dead.ir.nodes] == ["dense_1"]


def test_unused_block_warning_is_located():
    compiled = compile_text(
        "cnnspec: 1\nname: t\ninput: {shape: [4]}\n"
        "blocks:\n  spare:\n    layers: [flatten]\nmodel: [flatten]\n"
    )
    (warning,) = compiled.warnings
    assert warning.code == "unused-block" and warning.loc.line == 5


def test_all_errors_of_a_file_are_reported_once():
    with pytest.raises(SpecError) as caught:
        compile_text(
            "cnnspec: 1\nname: t\ninput: {shape: [8, 8, 1]}\nmodel:\n"
            "  - conv2d: {filters: 0, kernel_size: 3}\n"
            "  - dense: {units: -1}\n"
            "  - nonsense\n"
            "training: {epochs: 0}\n"
        )
    messages = [(e.loc.line, e.path) for e in caught.value.errors]
    assert messages == [
        (5, "model[0].conv2d.filters"),
        (6, "model[1].dense.units"),
        (7, "model[2].nonsense"),
        (8, "training.epochs"),
    ]


def test_duplicate_ids_and_names():
    with pytest.raises(SpecError, match="duplicate id 'a'"):
        compile_text(
            "cnnspec: 1\nname: t\ninput: {shape: [4]}\n"
            "model:\n  - dense: 2\n    id: a\n  - dense: 2\n    id: a\n"
        )
    with pytest.raises(SpecError, match="layer name 'dense_1' is used twice"):
        compile_text(
            "cnnspec: 1\nname: t\ninput: {shape: [4]}\nmodel:\n  - dense: 2\n    id: dense_1\n  - dense: 2\n"
        )


def too_large(text: str) -> Diagnostic:
    """The first error of a spec ``text`` that passes a budget (its code is ``too-large``)."""
    with pytest.raises(SpecError) as raised:
        compile_text(text)
    first = raised.value.diagnostics[0]
    assert first.code == "too-large", first.message
    return first


def test_repeat_limits_and_model_size_limit():
    with pytest.raises(SpecError, match="from 0 to 10,000"):
        compile_text(
            "cnnspec: 1\nname: t\ninput: {shape: [4]}\n"
            "model:\n  - repeat: {times: 1000000, layers: [flatten]}\n"
        )
    with pytest.raises(SpecError, match="at most 20,000 layers"):
        compile_text(
            "cnnspec: 1\nname: t\ninput: {shape: [4]}\nmodel:\n"
            "  - repeat: {times: 10000, layers: [repeat: {times: 10, layers: [identity]}]}\n"
        )
    # A repeat or block call that must pass a budget, as its text says, is refused there before
    # it is walked (cnnspec/spec/least_size.py), with the least it makes
    blocks = "cnnspec: 1\nname: t\ninput: {shape: [4]}\nblocks:\n"
    doubling = "".join(f"  b{i}: {{layers: [b{i + 1}, b{i + 1}]}}\n" for i in range(16))
    first = too_large(f"{blocks}{doubling}  b16: {{layers: [identity]}}\nmodel: [b0]\n")
    assert first.path == "model[0].b0"
    assert "call of block `b0` it has at least 65,536 (at least 65,536 made by the call)" in first.message
    spin = "[{repeat: {times: 10000, layers: [{identity: null, when: false}]}}, identity]"
    spinning = f"{blocks}  spin: {{layers: {spin}}}\nmodel:\n  - repeat: {{times: 40, layers: [spin]}}\n"
    first = too_large(spinning)
    assert first.path == "model[0].repeat.times"
    assert "the spec needs at least 800,161 (at least 800,160 taken by the repeat)" in first.message
    # Where the text cannot say the size (an item with a `when` may make nothing), a block called
    # again past a budget is refused at that call, with its size, not walked again to the layer
    # where the budget runs out
    call = "{{b{}: null, when: true}}"
    shielded = "".join(
        f"  b{i}: {{layers: [{call.format(i + 1)}, {call.format(i + 1)}]}}\n" for i in range(16)
    )
    first = too_large(f"{blocks}{shielded}  b16: {{layers: [identity]}}\nmodel: [b0]\n")
    assert first.path == "blocks.b1.layers[1].b2"
    assert "with this call of block `b2` it has 32,768 (16,384 made by the call)" in first.message
    first = too_large(spinning.replace("[{repeat:", "[{when: true, repeat:"))
    assert first.path == "model[0].repeat.layers[0].spin"
    assert "with this call of block `spin` the spec needs 100,021 (20,002 taken by the call)" in first.message
    # A repeat's `times` computed from a block's argument is known when the repeat is walked
    counted = (
        f"{blocks}  r: {{params: {{n: int}}, layers: [repeat: {{times: '${{n}}', layers: LAYERS}}]}}\n"
        "model:\n  - r: {n: 10000}\n"
    )
    first = too_large(counted.replace("LAYERS", "[identity, identity, identity]"))
    assert first.path == "blocks.r.layers[0].repeat.times"
    assert "with this repeat it has at least 30,000 (at least 30,000 made by the repeat)" in first.message
    # Items whose size the text does not say (a `when` may skip them) are counted by the walk,
    # which stops at the layer past the budget
    skippable = ", ".join(["{identity: null, when: true}"] * 3)
    first = too_large(counted.replace("LAYERS", f"[{skippable}]"))
    assert first.path == "blocks.r.layers[0].repeat.layers[2].identity"
    assert first.message.endswith("at most 20,000 layers; this spec expands to more")
    assert first.hint == "check `repeat.times`"
    # a list of 20,001 items, no repeat in it: the hint said `repeat.times` all the same
    listed = "cnnspec: 1\nname: t\ninput: {shape: [4]}\nmodel:\n" + "  - identity\n" * 20_001
    first = too_large(listed)
    assert first.path == "model[20000].identity" and "repeat" not in (first.hint or "")
    assert first.hint is not None and first.hint.startswith("cnnspec builds models of up to 20,000 layers")
    huge = "cnnspec: 1\nname: t\ninput: {shape: [100000]}\nmodel:\n  - dense: 100000\n"
    with pytest.raises(SpecError, match="10,000,100,000"):
        compile_text(huge)
    assert compile_text(huge, max_params=20_000_000_000).ir.totals.params == 10_000_100_000


@pytest.mark.parametrize("item", ["resizing: {height: 4, width: 4}", "rescaling: 0.00392156862745098"])
def test_augmentation_takes_random_layers_alone(item):
    """A layer that always acts (resizing, rescaling) was taken in augmentation, where it acts on
    the training images alone: a rescaling there trained on [0, 1] and evaluated on [0, 255]
    (test loss 57 where the same model with it in `model:` had 0.4), and turned data.rescale:
    auto off besides. It is refused at its item, and by the block call that makes one."""
    head = "cnnspec: 1\nname: t\ninput: {shape: [8, 8, 1]}\nmodel: [flatten]\n"
    with pytest.raises(SpecError) as caught:
        compile_text(head + f"augmentation:\n  - random_flip\n  - {item}\n")
    (error,) = caught.value.errors
    kind = item.split(":")[0]
    assert error.path == "augmentation[1]" and error.message.startswith(
        f"expected a random augmentation layer; received '{kind}': augmentation acts on the training "
        "images alone: validation, test, evaluate and predict would feed the model images without it"
    )
    assert error.hint == "put it first in `model`, where it acts at inference too"
    blocks = f"blocks:\n  prep: {{layers: [random_flip, {{{item}}}]}}\n"
    with pytest.raises(SpecError) as caught:
        compile_text(head + blocks + "augmentation: [prep]\n")
    (error,) = caught.value.errors
    assert error.path == "augmentation[0]" and f"({kind}), which is no random layer:" in error.message


def test_augmentation_section_must_hold_augmentation_layers():
    with pytest.raises(SpecError, match="expected an augmentation layer"):
        compile_text(
            "cnnspec: 1\nname: t\ninput: {shape: [8, 8, 1]}\nmodel: [flatten]\naugmentation: [flatten]\n"
        )


def test_augmentation_through_blocks_and_repeats_holds_augmentation_layers_only():
    """A block or repeat of random_* layers is an augmentation; one that makes another layer,
    and a residual or parallel (a merge: the augmentation is one line of layers), is refused at
    its item: they passed validate, and the augmentation was built as a Sequential of a
    convolution never trained, or of merges that had lost their branches."""
    head = "cnnspec: 1\nname: t\ninput: {shape: [8, 8, 3]}\nmodel: [flatten]\n"
    blocks = "blocks:\n  jitter: {layers: [random_flip]}\n"
    blocks += "  bad: {layers: [{conv2d: {filters: 3, kernel_size: 1}}]}\n"
    good = compile_text(
        head + blocks + "augmentation: [jitter, {repeat: {times: 2, layers: [random_flip]}}]\n"
    )
    assert [n.kind for n in good.ir.augmentation] == ["random_flip"] * 3
    for item, made in (
        ("bad", "conv2d"),
        ("{repeat: {times: 1, layers: [batch_norm]}}", "batch_norm"),
        ("{residual: {body: [random_flip]}}", "add"),
        ("{parallel: {branches: [[random_flip], [random_flip]], merge: max}}", "max"),
    ):
        with pytest.raises(SpecError) as caught:
            compile_text(head + blocks + f"augmentation: [jitter, {item}]\n")
        (error,) = caught.value.errors
        assert (
            error.path == "augmentation[1]" and f"({made}), which augmentation cannot apply" in error.message
        )
        if item == "bad":  # located at the call, and a note says where the layer is written
            (note,) = error.notes
            assert note.path == "blocks.bad.layers[0].conv2d" and note.loc.line == 7, note
            assert note.message.startswith(
                "'augment_bad_1_conv2d_1' is written at blocks.bad.layers[0].conv2d ("
            )
    # a branch through `inputs` (the layer between left dead): the Sequential applied all three
    line = "augmentation: [{random_flip: {}, id: a}, {random_zoom: 0.1}, {random_rotation: 0.1, inputs: a}]"
    with pytest.raises(SpecError) as caught:
        compile_text(head + line + "\n")
    (error,) = caught.value.errors
    assert error.path == "augmentation[2].random_rotation" and "take the one before it" in error.message


@pytest.mark.parametrize(("field", "value"), [("name", "m\\n"), ("id", "c\\n"), ("id", "ﬁlter")])
def test_identifiers_refuse_trailing_newlines_and_look_alikes(field, value):
    name = value if field == "name" else "m"
    body = f'cnnspec: 1\nname: "{name}"\ninput: {{shape: [4]}}\nmodel:\n  - dense: 2\n'
    if field == "id":
        body += f'    id: "{value}"\n'
    with pytest.raises(SpecError, match="expected an identifier"):
        compile_text(body)


def test_generate_code_is_part_of_the_api():
    import cnnspec

    source = cnnspec.generate_code(str(FIXTURES / "resolve" / "two_heads.yaml"))
    assert "def build_model" in source and "import cnnspec" not in source


# -- errors: no cascades, call-stack notes, hints that fit ------------------------------------
NESTED = """cnnspec: 1
name: t
input: {shape: [8, 8, 4]}
blocks:
  conv_bn:
    params: {filters: int}
    layers:
      - conv2d: {filters: "${filters}", kernel_size: 3, padding: same, dilation: 2}
      - batch_norm
  bottleneck:
    params: {filters: int}
    layers:
      - conv_bn: {filters: "${filters}"}
model:
  - conv2d: {filters: 4, kernel_size: 1}
  - bottleneck: {filters: 8}
"""


def errors_of(text: str) -> list:
    with pytest.raises(SpecError) as caught:
        compile_text(text, "t.yaml")
    return caught.value.errors


def test_an_error_inside_blocks_has_one_note_per_call_level():
    (error,) = errors_of(NESTED)
    assert (error.loc.line, error.path) == (8, "blocks.conv_bn.layers[0].conv2d.dilation")
    assert [n.message for n in error.notes] == [
        "in block 'conv_bn' called from blocks.bottleneck.layers[0] (t.yaml:13:9)",
        "in block 'bottleneck' called from model[1] (t.yaml:16:5)",
    ]
    assert [(n.loc.line, n.loc.column, n.path) for n in error.notes] == [
        (13, 9, "blocks.bottleneck.layers[0]"),
        (16, 5, "model[1]"),
    ]


def test_an_error_in_a_block_default_names_the_call():
    (error,) = errors_of(
        "cnnspec: 1\nname: t\ninput: {shape: [8, 8, 4]}\nblocks:\n  b:\n"
        "    params: {width: {type: int, default: '${in_channels / 2}'}}\n"
        "    layers: [conv2d: {filters: '${width}', kernel_size: 1}]\n"
        "model:\n  - b\n  - b:\n    inputs: input\n"
    )
    assert error.path == "blocks.b.params.width.default" and "received 2.0" in error.message
    assert [n.message for n in error.notes] == [
        "in block 'b' called from model[0] (t.yaml:9:5)",
        "also in block 'b' called from model[1] (t.yaml:10:5)",
    ]


def test_a_written_out_list_or_mapping_default_is_checked_and_copied_per_call():
    # Such defaults are copied without evaluation: one of the wrong type is one error, where
    # it is declared (called or not: no call notes), and each call's layers get their own copy
    # of a good one.
    text = (
        "cnnspec: 1\nname: t\ninput: {shape: [8, 8, 4]}\nblocks:\n  b:\n"
        "    params: {size: {type: TYPE, default: [1, {a: [2]}]}}\n"
        "    layers: [zero_padding2d: {padding: 1}, conv2d: {filters: 2, kernel_size: '${size[0]}'}]\n"
        "model:\n  - b\n  - b\n"
    )
    (error,) = errors_of(text.replace("TYPE", "int"))
    assert error.path == "blocks.b.params.size.default" and "received [1, {'a': [2]}]" in error.message
    assert not error.notes
    compiled = compile_text(text.replace("TYPE", "list"), "t.yaml")
    calls = [e for e in compiled.ir.tree.body if isinstance(e, BlockCall)]
    first, second = (call.args["size"] for call in calls)
    assert first == second == [1, {"a": [2]}]
    assert first is not second and first[1] is not second[1]


def test_an_error_in_every_repeat_iteration_is_reported_once():
    (error,) = errors_of(
        "cnnspec: 1\nname: t\ninput: {shape: [8, 8, 4]}\nmodel:\n"
        "  - repeat: {times: 3, as: i, layers: [conv2d: {filters: '${i - 3}', kernel_size: 1}]}\n"
    )
    assert error.message == "expected a positive integer; received integer -3"
    # the iterations that computed a bad value (no block call's note says them)
    assert [n.message for n in error.notes] == [
        f"in the repeat at model[0] (t.yaml:5:5), in iteration i = {i}" for i in range(3)
    ]


@pytest.mark.parametrize(
    ("loop", "note"),
    [("as: i, ", "in iteration i = 3"), ("", "in iteration 3 of 0–4")],
    ids=["named", "unnamed"],
)
def test_a_shape_error_in_a_repeat_body_names_its_iteration(loop, note):
    """The shape a repeated layer receives changes with the iteration, whatever the layer reads:
    a shape error says which iteration it failed in (a repeat without `as:` counted from 0)."""
    (error,) = errors_of(
        "cnnspec: 1\nname: t\ninput: {shape: [8, 8, 3]}\nmodel:\n"
        f"  - repeat: {{times: 5, {loop}layers: [conv2d: {{filters: 4, kernel_size: 3}}]}}\n"
    )
    assert error.code == "shape" and "input shape [2, 2, 4]" in error.message
    assert [n.message for n in error.notes] == [f"in the repeat at model[0] (t.yaml:5:5), {note}"]


def test_a_shape_error_in_nested_repeats_names_each_iteration_innermost_first():
    (error,) = errors_of(
        "cnnspec: 1\nname: t\ninput: {shape: [12, 12, 3]}\nmodel:\n"
        "  - repeat:\n      times: 3\n      as: i\n      layers:\n"
        "        - repeat: {times: 2, as: j, layers: [conv2d: {filters: 4, kernel_size: 3}]}\n"
    )
    assert [n.message for n in error.notes] == [
        "in the repeat at model[0].repeat.layers[0] (t.yaml:9:11), in iteration j = 1",
        "in the repeat at model[0] (t.yaml:5:5), in iteration i = 2",
    ]


def test_different_mistakes_in_one_call_are_all_reported():
    errors = errors_of(
        "cnnspec: 1\nname: t\ninput: {shape: [8, 8, 4]}\nblocks:\n  b:\n    layers:\n"
        "      - conv2d\n"
        "model:\n  - b\n  - b\n"
    )
    assert [e.message for e in errors] == [
        "missing required parameter `filters` for `conv2d`",
        "missing required parameter `kernel_size` for `conv2d`",
    ]
    assert all(len(e.notes) == 2 for e in errors)


def test_poisoning_keeps_independent_errors_ranked():
    errors = errors_of(
        "cnnspec: 1\nname: t\ninput: {shape: [8, 8, 4]}\nvars: {w: '${1 // 0}', v: '${w + 1}'}\n"
        "model:\n"
        "  - conv2d: {filters: 4, kernel_size: 16}\n"
        "  - conv2d: {filters: '${in_channels}', kernel_size: 1}\n"
        "    when: '${in_shape[0] > 1}'\n"
        "  - dense: '${v}'\n"
        "  - nonsense\n"
        "  - dense: {units: 0}\n"
    )
    assert [(e.loc.line, e.path) for e in errors] == [
        (4, "vars.w"),
        (6, "model[0].conv2d.kernel_size"),
        (10, "model[3].nonsense"),
        (11, "model[4].dense.units"),
    ]


def test_references_to_a_failed_item_stay_silent():
    errors = errors_of(
        "cnnspec: 1\nname: t\ninput: {shape: [4]}\nmodel:\n"
        "  - dense: 2\n    id: a\n"
        "  - dense: 2\n    id: b\n    inputs: [nowhere]\n"
        "  - add:\n    inputs: [a, b]\n"
        "  - dense: 3\n    id: c\n    when: '${in_shape[0] > 1}'\n"
        "outputs: [b, c]\n"
    )
    assert [e.message for e in errors] == [
        "unknown layer id 'nowhere' (ids must be defined earlier in the spec)"
    ]


@pytest.mark.parametrize(
    ("first", "second", "which", "hint"),
    [
        (
            "conv2d: {filters: 4, kernel_size: 1}",
            "conv2d: {filters: 8, kernel_size: 1}",
            "which differ in channels (4 vs 8)",
            "1×1 convolution (conv2d: {filters: 8, kernel_size: 1})",
        ),
        (
            "conv2d: {filters: 4, kernel_size: 1, strides: 2}",
            "conv2d: {filters: 4, kernel_size: 1}",
            "which differ in height and width (4×4 vs 8×8)",
            "same strides and pooling",
        ),
        (
            "conv2d: {filters: 4, kernel_size: 3}",
            "conv2d: {filters: 8, kernel_size: 1}",
            "which differ in height and width (6×6 vs 8×8) and in channels (4 vs 8)",
            "padding: same",
        ),
        ("flatten:", "global_avg_pool2d:", "which differ in features (256 vs 4)", "units: 256"),
    ],
)
def test_merge_mismatches_name_the_axes_and_hint_accordingly(first, second, which, hint):
    (error,) = errors_of(
        "cnnspec: 1\nname: t\ninput: {shape: [8, 8, 4]}\nmodel:\n"
        f"  - {first}\n    id: a\n    inputs: input\n"
        f"  - {second}\n    id: b\n    inputs: input\n"
        "  - add:\n    inputs: [a, b]\n"
    )
    assert error.message.endswith(which) and error.path == "model[2].add"
    assert hint in error.hint
    if "channels" not in which:
        assert "1×1" not in error.hint
    if "height" not in which:
        assert "strides" not in error.hint


def test_concat_mismatch_hints_at_positions_not_channels():
    (error,) = errors_of(
        "cnnspec: 1\nname: t\ninput: {shape: [8, 8, 4]}\nmodel:\n"
        "  - parallel:\n      merge: concat\n      branches:\n"
        "        - [conv2d: {filters: 4, kernel_size: 3, padding: same}]\n"
        "        - [max_pool2d]\n"
    )
    assert error.message.endswith("which differ in height and width (8×8 vs 4×4)")
    assert "strides and pooling" in error.hint and "1×1" not in error.hint


def test_a_misspelt_required_parameter_is_one_error():
    errors = errors_of(
        "cnnspec: 1\nname: t\ninput: {shape: [8, 8, 3]}\n"
        "blocks:\n  stage:\n    params: {filters: int}\n"
        "    layers: [conv2d: {filters: '${filters}', kernel_size: 1}]\n"
        "model:\n  - conv2d: {filtres: 8, kernel_size: 3}\n  - stage: {filtrs: 8}\n    inputs: input\n"
    )
    assert [(e.message, e.hint) for e in errors] == [
        ("unknown parameter 'filtres' for `conv2d`", "did you mean `filters`?"),
        ("unknown argument 'filtrs' for block `stage`", "did you mean `filters`?"),
    ]


# -- the structured tree --------------------------------------------------------------------
TREE_SPECS = [*sorted((FIXTURES.parent.parent / "specs").glob("*.yaml")), *RESOLVE]
TREE_SPECS += sorted((FIXTURES / "codegen").glob("*.yaml"))


@pytest.mark.parametrize("path", TREE_SPECS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_lowering_the_tree_gives_the_flat_graph(path):
    ir = compile_spec(path).ir
    lowered = lower(ir.tree)
    assert [n.name for n in lowered.nodes] == [n.name for n in ir.nodes]
    assert [n.name for n in lowered.augmentation] == [n.name for n in ir.augmentation]
    assert lowered == ir


def test_tree_keeps_block_calls_repeats_residuals_and_conditions():
    tree = compile_spec(FIXTURES / "resolve" / "combinators.yaml").ir.tree
    loop, mixed, conv, dropout, pool = tree.body
    assert isinstance(loop, Repeat) and (loop.var, loop.times) == ("i", 2)
    calls = [item for iteration in loop.iterations for item in iteration]
    assert [type(c) for c in calls] == [BlockCall, BlockCall]
    assert [c.args for c in calls] == [{"filters": 8, "stride": 1}, {"filters": 16, "stride": 2}]
    assert calls[1].raw_args == {"filters": "${width * (i + 1)}", "stride": "${1 + i}"}
    assert [c.prefix for c in calls] == ["res_1_", "res_2_"]
    (residual,) = calls[1].body
    assert isinstance(residual, Residual) and residual.mode == "auto"
    assert [leaf.node.name for leaf in residual.shortcut] == [
        "res_2_shortcut_conv2d_1",
        "res_2_shortcut_batch_norm_1",
    ]
    assert {leaf.role for leaf in residual.shortcut} == {"projection"}
    assert residual.merge.node.name == "res_2_add_1" and residual.activation.node.kind == "activation"
    assert residual.body[0].raw["filters"] == "${filters}"  # as written, the value is on the node
    assert residual.body[0].node.params["filters"] == 16
    assert isinstance(mixed, BlockCall) and isinstance(mixed.body[0], Parallel)
    assert [len(b) for b in mixed.body[0].branches] == [1, 2, 1]
    assert isinstance(conv, Layer) and conv.raw == {"filters": "${in_channels // 2}", "kernel_size": 1}
    assert isinstance(dropout, Conditional) and dropout.value is False and dropout.item is None
    assert dropout.condition == "${width > 100}"
    assert isinstance(pool, Layer) and pool.node.name == "global_avg_pool2d_1"
    assert [(v.name, v.value) for v in tree.vars] == [("width", 8)]
    assert list(tree.blocks) == ["res", "mixed"] and tree.blocks["res"].params["stride"].default == 1


def test_true_conditions_hold_their_item_and_ids_stay_on_it():
    tree = compile_text(
        "cnnspec: 1\nname: t\ninput: {shape: [4]}\nvars: {big: true}\nmodel:\n"
        "  - dense: 3\n    id: a\n    when: '${big}'\n  - dense: 2\n"
    ).ir.tree
    cond, last = tree.body
    assert isinstance(cond, Conditional) and cond.value is True
    assert cond.item.node.name == "a" and cond.item.extras == {"id": "a", "when": "${big}"}
    assert last.node.inputs == ("a",)


def test_pruned_layers_stay_in_the_tree_but_not_in_the_graph():
    dead = compile_text(
        "cnnspec: 1\nname: t\ninput: {shape: [4]}\nmodel:\n  - dense: 3\n    id: a\n"
        "  - dense: 2\n    inputs: input\n"
    )
    first, second = dead.ir.tree.body
    assert not first.live and second.live  # `a` leads nowhere: the second layer reads the input
    assert [n.name for n in lower(dead.ir.tree).nodes] == ["dense_1"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(S.registry_specs())
def test_lowering_round_trips_on_generated_specs(text):
    """Random specs from the registry (blocks, repeats, combinators, `when`): whenever one
    resolves, its tree lowers to exactly the graph the resolver built."""
    try:
        compiled = compile_text(text, "fuzz.yaml")
    except SpecError:
        return
    ir = compiled.ir
    lowered = lower(ir.tree)
    assert [n.name for n in lowered.nodes] == [n.name for n in ir.nodes]
    assert lowered == ir


# -- each mistake once, located, with a hint that names it -------------------------------------
HEAD = "cnnspec: 1\nname: t\ninput: {shape: [8, 8, 3]}\n"
UNKNOWN_ID = "unknown layer id {!r} (ids must be defined earlier in the spec)"


def diagnostics_of(text: str) -> list[tuple[str, int, int, str, str | None]]:
    """Every diagnostic of a failing spec (errors and warnings): path, line, column, message, hint."""
    with pytest.raises(SpecError) as caught:
        compile_text(HEAD + text, "t.yaml")
    return [(d.path, d.loc.line, d.loc.column, d.message, d.hint) for d in caught.value.diagnostics]


def test_outputs_of_a_failed_call_stay_silent_in_the_model_outputs(runner, tmp_path):
    text = (
        "blocks:\n  two:\n    inputs: [p, q]\n    outputs: [a, b]\n    layers:\n"
        "      - conv2d: {filters: 3, kernel_size: 1}\n        inputs: p\n        id: a\n"
        "      - conv2d: {filters: 3, kernel_size: 1}\n        inputs: q\n        id: b\n"
        "model:\n"
        "  - conv2d: {filters: 3, kernel_size: 1}\n    id: s\n"
        "  - two:\n    inputs: [s, sss]\n    id: c0\n"
        "  - flatten:\n    inputs: c0.b\n"
        "  - dense: 2\n    id: d\n"
        "  - dense: 2\n    inputs: c0\n"
        'outputs: [d, c0.b, "c0[0]", c0]\n'
    )
    assert diagnostics_of(text) == [
        (
            "model[1].inputs[1]",
            19,
            17,
            UNKNOWN_ID.format("sss"),
            "give the earlier layer an `id:` and refer to it here",
        )
    ]
    spec = tmp_path / "t.yaml"
    spec.write_text(HEAD + text)
    result = runner.invoke(app, ["validate", str(spec)])
    assert result.exit_code == 1
    assert [line for line in result.output.splitlines() if ": error: " in line] == [
        f"{spec}:19:17: error: model[1].inputs[1]: " + UNKNOWN_ID.format("sss")
    ]


@pytest.mark.parametrize("where", ["spec", "block"])
def test_a_default_that_fails_is_not_also_a_missing_parameter(where):
    failing = "{conv2d: {kernel_size: '${3 // z}'}}"
    if where == "spec":
        text = f"vars: {{z: 0}}\ndefaults: {failing}\nmodel: [{{conv2d: {{filters: 3}}}}, flatten]\n"
        path, line, column = "defaults.conv2d.kernel_size", 5, 34
    else:  # the block's failed default must not fall back to the spec-level one either
        text = (
            "vars: {z: 0}\ndefaults: {conv2d: {kernel_size: 16}}\n"  # too big: a fallback is an error
            f"blocks:\n  b:\n    defaults: {failing}\n    layers: [{{conv2d: {{filters: 3}}}}]\n"
            "model: [b, flatten]\n"
        )
        path, line, column = "blocks.b.defaults.conv2d.kernel_size", 8, 38
    (diagnostic,) = diagnostics_of(text)
    assert diagnostic == (path, line, column, "in '${3 // z}': division by zero", None)


def test_a_default_of_the_wrong_value_or_misspelt_is_one_error():
    errors = diagnostics_of(
        "blocks:\n  b:\n    params: {m: {type: float, default: 0.9}}\n"
        "    defaults: {dense: {units: '${m}'}}\n    layers: [dense]\n"
        "defaults: {conv2d: {kernal_size: 3}}\n"
        "model: [{conv2d: {filters: 3}}, flatten, b]\n"
    )
    assert [error[:4] for error in errors] == [
        ("blocks.b.defaults.dense.units", 7, 31, "expected a positive integer; received number 0.9"),
        ("defaults.conv2d.kernal_size", 9, 21, "unknown parameter 'kernal_size' for `conv2d`"),
    ]
    assert errors[1][4] == "did you mean `kernel_size`?"


def test_defaults_under_a_misspelt_kind_are_one_error():
    """`conv2: {kernel_size: 3}` meant conv2d's defaults: its layers do not each lack kernel_size."""
    errors = diagnostics_of("defaults: {conv2: {kernel_size: 3}}\nmodel: [{conv2d: {filters: 3}}, flatten]\n")
    assert [error[0] for error in errors] == ["defaults.conv2"]
    assert errors[0][4] == "did you mean `conv2d`?"


def test_every_bad_reference_of_an_inputs_list_is_reported():
    errors = diagnostics_of(
        "vars: {n: 2}\nmodel:\n"
        "  - conv2d: {filters: 3, kernel_size: 1}\n    id: a0\n"
        "  - conv2d: {filters: 3, kernel_size: 1}\n    id: a1\n"
        '  - add:\n    inputs: [a0, "a${n // 0}", "a${nn}", zz, a1]\n'
        "  - flatten\n"
    )
    assert errors == [
        ("model[2].inputs[1]", 11, 18, "in 'a${n // 0}': division by zero", None),
        ("model[2].inputs[2]", 11, 32, "in 'a${nn}': undefined name 'nn'", "did you mean `n`?"),
        (
            "model[2].inputs[3]",
            11,
            42,
            UNKNOWN_ID.format("zz"),
            "give the earlier layer an `id:` and refer to it here",
        ),
    ]


def test_every_bad_name_of_a_by_name_call_is_reported():
    errors = diagnostics_of(
        "blocks:\n  j:\n    inputs: [x, skip]\n    layers: [{add: null, inputs: [x, skip]}]\n"
        "model:\n  - j:\n    inputs: {x: nowhere, skp: input}\n  - flatten\n"
    )
    assert [error[:4] for error in errors] == [
        ("model[0].inputs.x", 10, 17, UNKNOWN_ID.format("nowhere")),
        ("model[0].inputs.skp", 10, 26, "block `j` has no input 'skp'"),
    ]


def test_an_expression_error_in_a_list_is_located_at_its_element():
    errors = diagnostics_of(
        'model:\n  - conv2d: {filters: 3, kernel_size: [1, "${1 // 0}"], strides: ["${zz}", 1]}\n'
        "  - flatten\n"
    )
    assert errors == [
        ("model[0].conv2d.kernel_size[1]", 5, 43, "in '${1 // 0}': division by zero", None),
        (
            "model[0].conv2d.strides[0]",
            5,
            67,
            "in '${zz}': undefined name 'zz'",
            "defined here: in_channels, in_shape",
        ),
    ]
    nested = diagnostics_of("model:\n  - reshape: {target_shape: [2, {a: '${k +}'}]}\n")
    assert [error[:3] for error in nested] == [("model[0].reshape.target_shape[1].a", 5, 37)]


def test_an_id_a_false_when_skipped_is_named_in_the_hint():
    errors = diagnostics_of(
        "vars: {use_side: false}\n"
        "blocks:\n  two:\n    outputs: [a, b]\n    params: {side: bool}\n    layers:\n"
        "      - conv2d: {filters: 3, kernel_size: 1}\n        id: a\n"
        "      - conv2d: {filters: 3, kernel_size: 1}\n        id: b\n        when: '${side}'\n"
        "model:\n"
        "  - conv2d: {filters: 3, kernel_size: 1}\n    id: side\n    when: '${use_side}'\n"
        "  - add:\n    inputs: [input, side]\n"
        "  - two: false\n"
        "  - flatten\n"
    )
    assert errors == [
        (
            "blocks.two.outputs[1]",
            7,
            18,
            "block `two` returns 'b', which its body does not define",
            "'b' (line 12) is skipped: its `when` is false",
        ),
        (
            "model[1].inputs[1]",
            20,
            21,
            UNKNOWN_ID.format("side"),
            "'side' (line 16) is skipped: its `when` is false",
        ),
    ]


REPEAT_HINT = (
    "{ref!r} is defined inside the repeat at line {line}, and ids inside a repeat are visible only "
    "inside the iteration that defines them: {fix}"
)
CARRY = "carry the tensor out (carry: {x: …} with next: {x: …}; after the loop `x` holds its last value)"


REPEATS = {
    "plain": "  - repeat:\n",
    "with an id": "  - id: r\n    repeat:\n",
    "carrying": "  - repeat:\n      carry: {x: s}\n      next: {x: 'b${i}'}\n",
}
FIXES = {
    "plain": CARRY + ", or give the repeat `carry` and an id (id: cells) and refer to it as cells[0].b0",
    "with an id": "refer to it as r[0].b0",
    "carrying": CARRY + ", or give the repeat an id (id: cells) and refer to it as cells[0].b0",
}


@pytest.mark.parametrize("repeat", list(REPEATS))
def test_an_id_inside_a_repeat_used_after_it_names_how_to_reach_it(repeat):
    text = (
        "model:\n  - conv2d: {filters: 3, kernel_size: 1}\n    id: s\n"
        + REPEATS[repeat]
        + "      times: 2\n      as: i\n      layers:\n"
        "        - conv2d: {filters: 3, kernel_size: 1}\n          id: 'b${i}'\n"
        "outputs: [s, b0]\n"
    )
    (error,) = diagnostics_of(text)
    line = text.count("\n") + 3
    hint = REPEAT_HINT.format(ref="b0", line=7, fix=FIXES[repeat])
    assert error == ("outputs[1]", line, 14, "unknown layer id 'b0'", hint)
    if repeat != "plain":  # the way the hint names works
        fixed = text.replace("[s, b0]", '[s, "r[0].b0"]' if repeat == "with an id" else "[s, x]")
        assert compile_text(HEAD + fixed, "t.yaml").ir.outputs[1] in ("r_b0", "b1")


AUTOMATIC = "`{ref}` is the automatic name of a block call: it reaches the ids inside the call"
INNER = (
    "blocks:\n  inner:\n{outputs}    layers:\n"
    "      - conv2d: {{filters: 3, kernel_size: 1}}\n        id: h\n"
    "      - activation: relu\n{last_id}"
    "  stage:\n    layers:\n      - inner\n"
)


@pytest.mark.parametrize(
    ("outputs", "last_id", "called", "ref", "result"),
    [
        ("", "        id: out\n", "  - inner\n  - inner\n", "inner_2", "inner_2.out"),
        ("", "        id: out\n", "  - stage:\n    id: s\n", "s.inner_1", "s.inner_1.out"),
        ("    outputs: [h]\n", "", "  - inner\n", "inner_1", "inner_1.h"),
        ("", "", "  - inner\n", "inner_1", None),
    ],
    ids=["its last id", "through a call", "its first output", "no name"],
)
def test_a_calls_automatic_name_alone_names_the_calls_result_in_the_hint(
    outputs, last_id, called, ref, result
):
    """Not `did you mean inner_2.h`: that is a tensor inside the call, not what it returns."""
    text = INNER.format(outputs=outputs, last_id=last_id) + "model:\n" + called
    text += f"  - add:\n    inputs: [input, {ref}]\n"
    ((path, _, _, message, hint),) = diagnostics_of(text)
    assert (path, message) == ("model[{}].inputs[1]".format(called.count("  - ")), UNKNOWN_ID.format(ref))
    if result is None:
        assert (
            hint
            == AUTOMATIC.format(ref=ref)
            + f" (`{ref}.…`); give the call an `id:` to refer to its result by that id"
        )
        return
    assert hint == AUTOMATIC.format(ref=ref) + f", and its result is `{result}`"
    fixed = compile_text(HEAD + text.replace(f"[input, {ref}]", f"[input, {result}]"), "t.yaml")
    add = fixed.ir.nodes[-1]
    assert add.inputs[1] == fixed.ir.nodes[-2].name  # the call's result: its last layer


def test_an_id_inside_a_plain_repeat_used_in_inputs_names_the_repeat():
    errors = diagnostics_of(
        "model:\n  - repeat:\n      times: 2\n      as: i\n      layers:\n"
        "        - conv2d: {filters: 3, kernel_size: 1}\n          id: 'b${i}'\n"
        "  - add:\n    inputs: [b0, b1]\n  - flatten\n"
    )
    fix = CARRY + ", or give the repeat `carry` and an id (id: cells) and refer to it as cells[{i}].b{i}"
    fix = fix.replace("{x", "{{x").replace("…}", "…}}")
    assert errors == [
        (
            f"model[1].inputs[{i}]",
            12,
            14 + 4 * i,
            UNKNOWN_ID.format(f"b{i}"),
            REPEAT_HINT.format(ref=f"b{i}", line=5, fix=fix.format(i=i)),
        )
        for i in range(2)
    ]


def test_outputs_name_the_model_input_by_its_input_name():
    """As `inputs:` does: `input.name: image` makes `image` the input everywhere."""
    compiled = compile_text(
        "cnnspec: 1\nname: t\ninput: {shape: [4, 4, 1], name: image}\nmodel:\n"
        "  - conv2d: {filters: 2, kernel_size: 1}\n    id: feat\noutputs: [feat, image]\n"
    )
    assert compiled.ir.outputs == ("feat", "image")


def test_outputs_evaluate_their_expressions():
    compiled = compile_text(
        "cnnspec: 1\nname: t\ninput: {shape: [4]}\nvars: {o: head}\nmodel:\n"
        "  - dense: 3\n    id: head\n  - dense: 2\n    inputs: head\n    id: tail\n"
        "outputs: ['${o}', tail]\n"
    )
    assert compiled.ir.outputs == ("head", "tail")


@pytest.mark.parametrize(
    ("item", "kind", "key"),
    [
        ("conv2d: {filters: 4, kernel_size: 1, id: c}", "conv2d", "id"),
        ("backbone: {spec: zoo:resnet50, until: conv2, trainable: false}", "backbone", "trainable"),
        ("residual: {body: [conv2d: {filters: 3, kernel_size: 1}], id: r}", "residual", "id"),
        ("repeat: {times: 2, layers: [relu], when: true}", "repeat", "when"),
    ],
    ids=["layer", "backbone", "residual", "repeat"],
)
def test_an_item_key_inside_a_kinds_mapping_says_it_stands_beside_the_kind(item, kind, key):
    """`trainable: false` inside `backbone: {…}` (its main use: freezing a backbone) got only
    "keys: spec, until, vars, weights", where a layer's got how to write it; each kind now does,
    and the form the hint shows compiles."""
    head = "cnnspec: 1\nname: t\ninput: {shape: [32, 32, 3]}\nmodel:\n"
    (error,) = errors_of(f"{head}  - {item}\n  - flatten\n")
    assert error.path == f"model[0].{kind}.{key}"
    assert error.hint == (
        f"`{key}` stands beside the kind, not among its parameters: "
        f"`- {kind}: {{…}}` then `  {key}: …` on the next line"
    )
    value = item.split(f", {key}: ")[1].rstrip("}")
    as_said = item.replace(f", {key}: {value}", "")
    assert compile_text(f"{head}  - {as_said}\n    {key}: {value}\n  - flatten\n", "t.yaml").name == "t"


def test_a_computed_value_in_a_message_is_spelled_as_a_spec_writes_it():
    """`input.shape: "${[5, 5, 1 == 1]}"` was refused as `received [5, 5, True]`, Python's
    spelling of a value the spec never wrote; YAML's words at any depth."""
    from cnnspec.errors import short_value, spelled

    (error,) = errors_of(
        'cnnspec: 1\nname: t\ninput: {shape: "${[5, 5, 1 == 1]}"}\nmodel:\n  - dense: {units: 2}\n'
    )
    assert error.path == "input.shape" and error.message.endswith("; received [5, 5, true]")
    assert spelled({"a": [None, (False, 1.5)], "b": "x\n"}) == "{'a': [null, [false, 1.5]], 'b': 'x\\n'}"
    assert short_value([True] * 20) == ("[" + ", ".join(["true"] * 20))[:39] + "…"  # (brief still)


def test_an_argument_named_as_the_var_it_reads_says_its_own_value():
    """`leaf: {k: "${k * 3}"}` with a var k = 3: an error on the block's `${k}` noted "k is
    integer 3", the var's value, where the value read is the argument's, 9. The call note says
    it (`with k = 9`), as it says an argument an iteration computes."""
    text = (
        "cnnspec: 1\nname: k\ninput: {shape: [8, 8, 3]}\nvars: {k: 3}\nblocks:\n  leaf:\n"
        '    params: {k: int}\n    layers:\n      - conv2d: {filters: 4, kernel_size: "${k}"}\n'
        'model:\n  - leaf: {k: "${k * 3}"}\n  - flatten\n  - dense: 2\n'
    )
    (error,) = errors_of(text)
    assert error.path == "blocks.leaf.layers[0].conv2d.kernel_size"
    assert error.notes[0].message == "in block 'leaf' called from model[0] (t.yaml:11:5), with k = 9"


@pytest.mark.parametrize("index", ["3", "-1"])
def test_an_iteration_beyond_a_repeat_says_which_there_are(index):
    """`lp[3].c.new` of a repeat of iterations 0–2 was hinted `did you mean lp[0].c.new?`, and
    `lp[-1].c.new` `lp[1].c.new`: other iterations than the one meant (the last)."""
    text = (
        "cnnspec: 1\nname: it\ninput: {shape: [8, 8, 3]}\nblocks:\n  cell:\n    inputs: [x]\n"
        "    outputs: [new]\n    layers:\n      - conv2d: {filters: 3, kernel_size: 1}\n        id: new\n"
        "model:\n  - id: lp\n    repeat:\n      times: 3\n      carry: {x: input}\n      layers:\n"
        "        - cell:\n          inputs: [x]\n          id: c\n      next: {x: c.new}\n"
        f"  - flatten:\n    inputs: lp[{index}].c.new\n  - dense: 2\n"
    )
    (error,) = errors_of(text)
    assert error.hint == (
        "`lp` has iterations 0–2 (counted from 0; an index never counts from the end): the last one is "
        "`lp[2].c.new`"
    )


@pytest.mark.parametrize("times", ['"${cuont}"', "-1", "1.5", "true"])
def test_a_repeat_whose_times_fails_leaves_its_ids_unsaid(times):
    """A bad `times:` was said, then again at every later use of an id its items would have
    made ("unknown layer id 'c1'", hinted to give the layer an `id:`, which it has): the one
    mistake once."""
    text = (
        "cnnspec: 1\nname: t\ninput: {shape: [8, 8, 3]}\nvars: {count: 2}\nmodel:\n  - repeat:\n"
        f"      times: {times}\n      as: i\n      layers:\n"
        '        - conv2d: {filters: 3, kernel_size: 1}\n          id: "c${i}"\n'
        "  - flatten:\n    inputs: c1\n  - dense: 2\n"
    )
    (error,) = errors_of(text)
    assert error.path == "model[0].repeat.times"


def test_a_mistake_in_an_anchored_node_read_twice_is_said_once():
    """`- conv2d: &cb {…, paddng: same}` then `- conv2d: *cb`: two identical errors at one
    place (5:46), model[0] and model[1]; one mistake, said once with where else it is read."""
    text = (
        "cnnspec: 1\nname: anc\ninput: {shape: [8, 8, 3]}\nmodel:\n"
        "  - conv2d: &cb {filters: 4, kernel_size: 3, paddng: same}\n  - conv2d: *cb\n"
        "  - flatten\n  - dense: 2\n"
    )
    (error,) = errors_of(text)
    assert (error.path, error.loc.line) == ("model[0].conv2d.paddng", 5)
    assert [n.message for n in error.notes] == [
        "also read as model[1].conv2d.paddng (through a YAML alias of this text)"
    ]


@pytest.mark.parametrize("carry", [True, False])
def test_a_repeat_whose_id_is_refused_names_no_knock_on_clash(carry):
    """A second repeat of a duplicate `id: stage` named its layers as if it had no id: the
    duplicate was said, then "layer name 'c' is used twice" with the hint to give the repeat an
    id (it has one). The one mistake once; a clash of the first repeat is still said."""
    body = (
        "      carry: {x: stem}\n      layers:\n"
        "        - conv2d: {filters: 4, kernel_size: 3, padding: same}\n"
        "          inputs: x\n          id: c\n      next: {x: c}\n"
        if carry
        else "      layers:\n        - conv2d: {filters: 4, kernel_size: 3, padding: same}\n          id: c\n"
    )
    text = (
        "cnnspec: 1\nname: t\ninput: {shape: [16, 16, 4]}\nmodel:\n"
        "  - conv2d: {filters: 4, kernel_size: 1}\n    id: stem\n"
        f"  - id: stage\n    repeat:\n      times: 2\n{body}"
        f"  - id: stage\n    repeat:\n      times: 2\n{body}"
        "  - global_avg_pool2d\n  - dense: 2\n"
    )
    found = [(error.path, error.message) for error in errors_of(text)]
    clash = [("model[1].repeat.layers[0].conv2d", "layer name 'stage_c' is used twice")]
    assert found == [*([] if carry else clash), ("model[2].id", "duplicate id 'stage' in this layer list")]


@pytest.mark.parametrize(
    ("field", "said"),
    [
        ("shortcut: null", "received null"),
        ("merge: true", "received true"),
        ("merge: [add]", "received ['add']"),
    ],
)
def test_a_combinators_value_is_said_as_yaml_writes_it(field, said):
    """`shortcut: null` was "received None", `merge: true` "received True": Python's words for
    YAML's null and true."""
    text = (
        "cnnspec: 1\nname: t\ninput: {shape: [8, 8, 3]}\nmodel:\n"
        f"  - residual: {{body: [conv2d: {{filters: 3, kernel_size: 1}}], {field}}}\n  - flatten\n"
    )
    (error,) = errors_of(text)
    assert error.message.endswith(said), error.message
