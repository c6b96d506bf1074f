"""Where the spec shows an error made in a library block called several times, and completion
that keeps working when the text stops loading, of parameter values and of zoo names.

The pure modules (:mod:`cnnspec.lsp.diagnostics`, :mod:`cnnspec.lsp.completion`) are driven
directly, with :class:`cnnspec.lsp.documents.Documents` checking the texts as the server does
(the server module itself is never imported in the test process).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cnnspec.layers.registry import REGISTRY
from cnnspec.lsp import completion, diagnostics
from cnnspec.lsp.documents import Documents
from cnnspec.lsp.locate import path_at
from cnnspec.spec import zoo
from cnnspec.spec.loader import SourceDoc, load_text

LIBRARY = """\
cnnspec: 1
blocks:
  double:
    params: {filters: int}
    layers:
      - conv2d: {filters: "${filters}", kernel_size: [3, -3], padding: same}
  outer:
    params: {filters: int}
    layers:
      - double: {filters: "${filters}"}
"""
SPEC = """\
cnnspec: 1
name: s
use: [lib.yaml]
input: {shape: [8, 8, 3]}
model:
  - {CALL}: {filters: 4}
  - conv2d: {filters: 2, kernel_size: 1}
  - {CALL}: {filters: 8}
  - flatten
"""


@pytest.mark.parametrize("call", ["double", "outer"])
def test_an_error_in_a_library_block_called_twice_is_shown_at_the_first_call(tmp_path: Path, call: str):
    """``double`` fails in both calls (directly, or through the library's ``outer``): the
    spec shows the one diagnostic at its first call (model[0], line 5), not the last."""
    (tmp_path / "lib.yaml").write_text(LIBRARY, "utf-8")
    path = (tmp_path / "spec.yaml").resolve()
    text = SPEC.replace("{CALL}", call)
    documents = Documents()
    documents.set(path, text, 1)
    documents.analyze(path)
    found = diagnostics.for_document(documents, path)
    assert len(found) == 1, found
    shown = found[0]
    assert "kernel_size[1]" in shown.message
    assert (shown.range.start.line, shown.range.start.character) == (5, 4)  # model[0]'s kind key
    notes = [r.message for r in shown.related_information or []]
    assert sum(f"'{call}' called from model[" in n for n in notes) == 2, notes  # both calls listed


HEAD = """\
cnnspec: 1
name: t
input: {shape: [8, 8, 3]}
vars: {width: 4}
model:
  - conv2d: {filters: 4, kernel_size: 3}
    id: a
"""


def complete_at(
    text: str, needle: str, offset: int, known: SourceDoc | None = None, file: Path | None = None
) -> list[completion.Suggestion]:
    """Completion at ``needle`` + ``offset`` in ``text`` as the server asks for it: with the
    located document when the text loads, else ``None`` and the lines above; ``file``: the
    spec's path (its folder holds the files it names)."""
    start = text.index(needle) + offset
    row = text[:start].count("\n")
    column = start - (text[:start].rfind("\n") + 1)
    lines = text.split("\n")
    try:
        doc: SourceDoc | None = load_text(text, "t.yaml")
    except Exception:
        doc = None
    cursor = path_at(doc, "t.yaml", row + 1, column + 1) if doc is not None else None
    return completion.complete(doc, cursor, lines[row], column, lines[:row], known, file)


def labels(found: list[completion.Suggestion]) -> list[str]:
    return [s.label for s in found]


def test_inputs_and_expressions_complete_while_the_text_does_not_load():
    """An unclosed mapping below the cursor, or the unfinished ``${w`` the cursor is in, keeps
    the text from loading; the ids and names of the cursor's scope are still offered."""
    inputs = HEAD + "  - add:\n    inputs: [a, ]\n"
    assert labels(complete_at(inputs, "[a, ]", 4)) == ["input", "a"]
    broken = inputs + "  - dense: {units: 4\n"
    assert labels(complete_at(broken, "[a, ]", 4)) == ["input", "a"]
    typing = HEAD + '  - conv2d: {filters: "${w\n'
    assert sorted(labels(complete_at(typing, "${w", 3))) == ["in_channels", "in_shape", "width"]
    # Vars only the last document that loaded knows (here: one the text no longer lists).
    known = load_text(HEAD.replace("{width: 4}", "{width: 4, depth: 2}"), "t.yaml")
    assert "depth" in labels(complete_at(typing, "${w", 3, known))


def _choice_param() -> tuple[str, str, tuple[str, ...]]:
    """A registered kind with a parameter of fixed choices (read from the registry)."""
    for kind in REGISTRY.values():
        for param in kind.params:
            if param.choices and not param.required:
                return kind.name, param.name, param.choices
    raise AssertionError("no parameter with choices")


def _bool_param() -> tuple[str, str]:
    for kind in REGISTRY.values():
        for param in kind.params:
            if param.type == "bool" and not param.required:
                return kind.name, param.name
    raise AssertionError("no boolean parameter")


@pytest.mark.parametrize("broken", [False, True])
def test_parameter_values_and_zoo_names_are_completed(broken: bool):
    """A parameter with choices offers them (a flow or block mapping, loading or not); a
    boolean one ``true``/``false``; ``zoo:`` the zoo's models, or under ``use:`` its block
    libraries."""
    tail = "  - dense: {units: 4\n" if broken else ""
    kind, name, choices = _choice_param()
    flow = HEAD + f"  - {kind}: {{{name}: }}\n" + tail
    assert labels(complete_at(flow, f"{name}: }}", len(name) + 2)) == list(choices)
    block = HEAD + f"  - {kind}:\n      {name}: \n" + tail
    assert labels(complete_at(block, f"{name}: \n", len(name) + 2)) == list(choices)
    kind, name = _bool_param()
    flag = HEAD + f"  - {kind}: {{{name}: }}\n" + tail
    assert labels(complete_at(flag, f"{name}: }}", len(name) + 2)) == ["true", "false"]
    models = list(zoo.variants())
    assert models and "resnet50" in models
    backbone = HEAD + "  - backbone: {spec: zoo:}\n" + tail
    assert labels(complete_at(backbone, "zoo:}", 4)) == models
    extends = "cnnspec: 1\nextends: zoo:\n" + tail
    assert labels(complete_at(extends, "zoo:\n", 4)) == models
    libraries = [f"blocks/{n}" for n in zoo.block_libraries()]
    assert "blocks/resnet" in libraries
    use = HEAD.replace("name: t\n", "name: t\nuse: [zoo:]\n") + tail
    assert labels(complete_at(use, "zoo:]", 4)) == libraries
    listed = HEAD.replace("name: t\n", "name: t\nuse:\n  - a.yaml\n  - zoo:\n") + tail
    assert labels(complete_at(listed, "zoo:\n", 4)) == libraries


@pytest.mark.parametrize("broken", [False, True])
def test_a_backbones_until_offers_the_cut_points_of_its_spec(broken: bool, tmp_path: Path):
    """``until:`` of a backbone item: the ids where the spec it names can be cut (a zoo model,
    or a spec file of the folder), flow or block style, loading or not."""
    tail = "  - dense: {units: 4\n" if broken else ""
    flow = HEAD + "  - backbone: {spec: zoo:resnet50, until: }\n" + tail
    offered = complete_at(flow, "until: }", 7)
    assert labels(offered)[:5] == ["conv1", "conv2", "conv3", "conv4", "conv5"]
    # then its block calls (as inspect groups the layers), then its layers' names, ranked
    # after the cut points: `until:` cuts inside an item too
    calls = [s for s in offered[5:] if s.what == "id"]
    layers = [s for s in offered if s.what == "layer"]
    assert labels(offered)[5:] == labels(calls) + labels(layers)
    assert {s.rank for s in calls} == {1} and {s.rank for s in layers} == {2}
    assert {"conv2.bottleneck_1", "conv5.bottleneck_3"} <= set(labels(calls))
    assert {"conv2_bottleneck_1_conv2d_1", "conv5_bottleneck_3_add_1"} <= set(labels(layers))
    assert "conv1" not in labels(layers)
    block = HEAD + "  - backbone:\n      spec: zoo:mobilenet_v2\n      until: \n" + tail
    assert labels(complete_at(block, "until: \n", 7))[:2] == ["stage1", "stage2"]
    assert "stage7_inverted_residual_1_conv2d_2" in labels(complete_at(block, "until: \n", 7))
    # a spec file beside the one edited: its own items' ids (not one under `when`)
    (tmp_path / "body.yaml").write_text(
        "cnnspec: 1\nname: b\ninput: {shape: [8, 8, 1]}\nmodel:\n  - {conv2d: 4, id: stem}\n"
        "  - {conv2d: 8, id: deep}\n  - {flatten: null, id: flat, when: false}\n"
    )
    (tmp_path.parent / "outside.yaml").write_text((tmp_path / "body.yaml").read_text())
    for ref, expected in (("body.yaml", ["stem", "deep"]), ("../outside.yaml", []), ("nope.yaml", [])):
        text = HEAD + f"  - backbone: {{spec: {ref}, until: }}\n" + tail
        line = text.split("\n").index(f"  - backbone: {{spec: {ref}, until: }}")
        lines = text.split("\n")
        try:
            doc: SourceDoc | None = load_text(text, str(tmp_path / "t.yaml"))
        except Exception:
            doc = None
        column = lines[line].index("until: ") + 7
        cursor = path_at(doc, str(tmp_path / "t.yaml"), line + 1, column + 1) if doc is not None else None
        found = completion.complete(doc, cursor, lines[line], column, lines[:line], file=tmp_path / "t.yaml")
        assert labels(found) == expected, ref


def test_a_new_item_offers_the_backbone_item_beside_the_combinators():
    """`backbone` was never offered at `  - `, where residual, parallel and repeat were."""
    offered = {s.label: s for s in complete_at(HEAD + "  - \n", "  - \n", 4)}
    assert {"residual", "parallel", "repeat", "backbone"} <= set(offered)
    assert offered["backbone"].what == "combinator"
    assert offered["backbone"].snippet == "backbone: {spec: ${1:zoo:resnet50}, until: ${2:conv4}}"


@pytest.mark.parametrize("typed", ["conv4.", "conv4.bott", "conv4/"])
def test_a_backbones_until_is_completed_past_a_dot(typed: str):
    """`until: conv4.` offered nothing (the value's word stopped at the dot), where `until:`
    and `until: conv4` offered `conv4.bottleneck_1`: the whole dotted name is completed, and
    each suggestion replaces what was typed of it (several words to an editor)."""
    for tail in ("}\n", "}\n  - dense: {units: 4\n"):  # (loading, and not)
        text = HEAD + f"  - backbone: {{spec: zoo:resnet50, until: {typed}" + tail
        offered = complete_at(text, f"until: {typed}", 7 + len(typed))
        assert "conv4.bottleneck_1" in labels(offered)
        assert {s.replace for s in offered} == {len(typed)}


def test_a_backbones_until_reads_its_spec_as_the_editor_holds_it(tmp_path: Path):
    """A backbone spec open in the editor offers the cut points of its unsaved text (what the
    diagnostics read), not those saved on disk; a file not open is read from disk."""
    (tmp_path / "body.yaml").write_text(
        "cnnspec: 1\nname: b\ninput: {shape: [8, 8, 1]}\nmodel:\n  - {conv2d: 4, id: stem}\n"
    )
    unsaved = "cnnspec: 1\nname: b\ninput: {shape: [8, 8, 1]}\nmodel:\n  - {conv2d: 4, id: entry}\n"
    text = HEAD + "  - backbone: {spec: body.yaml, until: }\n"
    lines = text.split("\n")
    line = lines.index("  - backbone: {spec: body.yaml, until: }")
    doc = load_text(text, str(tmp_path / "t.yaml"))
    column = lines[line].index("until: ") + 7
    cursor = path_at(doc, str(tmp_path / "t.yaml"), line + 1, column + 1)

    def found(reader):
        return labels(
            completion.complete(
                doc, cursor, lines[line], column, lines[:line], file=tmp_path / "t.yaml", reader=reader
            )
        )

    open_files = {(tmp_path / "body.yaml").resolve(): unsaved}
    assert found(lambda path: open_files.get(Path(path).resolve())) == ["entry"]
    assert found(lambda path: None) == ["stem"]  # not open: the file on disk
    assert found(None) == ["stem"]


@pytest.mark.parametrize("length", [10, 100_000])
def test_a_long_line_completes_as_a_short_one(length):
    """Completion at the end of `inputs: [aaa…` searched for a key before the cursor from every
    letter of the word (23 s at 100,000 characters, the server frozen meanwhile)."""
    above = ["cnnspec: 1", "name: t", "input: {shape: [8, 8, 3]}", "model:", "  - dense: 3"]
    for line in ("    inputs: [" + "a" * length, "    inputs: [" + "a" * length + "]"):
        found = completion.complete(None, None, line, len(line), above)
        closed = line.endswith("]")  # after the list: not in it
        assert [(s.label, s.what) for s in found] == ([] if closed else [("input", "id")])
    assert completion._KEY_BEFORE.search("a" * length + ": ")[1] == "a" * length


def test_outputs_offers_the_ids_the_models_end_sees():
    text = (
        "cnnspec: 1\nname: t\ninput: {shape: [8, 8, 3]}\noutputs: [head, ]\nmodel:\n"
        "  - conv2d: {filters: 4, kernel_size: 1}\n    id: feat\n  - flatten\n  - dense: 3\n    id: head\n"
    )
    offered = labels(complete_at(text, "head, ]", 6))
    assert {"feat", "head"} <= set(offered)


def test_a_zoo_name_replaces_all_that_is_typed_after_zoo():
    """An editor's word before the cursor ends at `/`: each zoo name replaces everything typed
    after `zoo:` (`blocks/he`), so `zoo:blocks/he` never becomes `zoo:blocks/blocks/head`."""
    use = HEAD.replace("name: t\n", "name: t\nuse: [lib.yaml, zoo:blocks/he\n")
    found = complete_at(use, "zoo:blocks/he", len("zoo:blocks/he"))
    assert "blocks/head" in labels(found)
    assert {(s.replace, s.insert) for s in found} == {(len("blocks/he"), None)}
    extends = "cnnspec: 1\nextends: zoo:res\n"
    found = complete_at(extends, "zoo:res", len("zoo:res"))
    assert "resnet50" in labels(found)
    assert {s.replace for s in found} == {3}
    assert {s.replace for s in complete_at("cnnspec: 1\nextends: zoo:\n", "zoo:", 4)} == {0}


#: A spec typed half-way that never loaded: a block above two unfinished items.
HALF_TYPED = """\
cnnspec: 1
name: t
input: {shape: [8, 8, 3]}
blocks:
  mine:
    params: {g: int}
    layers:
      - conv2d: {filters: "${g}", kernel_size: 1}
model:
  - mine: {
  - mi
"""


def test_a_text_that_never_loaded_gets_the_blocks_declared_above_the_cursor():
    """No document ever loaded (``known`` is None): a new item still offers the block, and a
    call of it its parameters, read from the sections above the cursor."""
    assert "mine" in labels(complete_at(HALF_TYPED, "- mi\n", 4))
    assert labels(complete_at(HALF_TYPED, "- mine: {", 9)) == ["g"]


def test_a_text_that_never_loaded_gets_the_blocks_of_the_libraries_it_uses(tmp_path: Path):
    """The blocks a `use:` library defines were missing while the document had never loaded
    (only a document that loaded, composed, knew them): they are read from the library beside
    the spec now, with their parameters; the zoo's libraries too; a library that does not load
    leaves the spec's own blocks."""
    (tmp_path / "lib.yaml").write_text(
        "cnnspec: 1\nblocks:\n  conv_bn:\n    params: {f: int}\n    layers:\n"
        "      - conv2d: {filters: '${f}', kernel_size: 3}\n      - batch_norm\n",
        encoding="utf-8",
    )
    spec = tmp_path / "spec.yaml"
    text = HALF_TYPED.replace("name: t\n", "name: t\nuse: [lib.yaml, zoo:blocks/head]\n")
    found = labels(complete_at(text, "- mi\n", 4, file=spec))
    assert {"mine", "conv_bn"} <= set(found)
    head = load_text((zoo.zoo_dir() / "blocks" / "head.yaml").read_text(encoding="utf-8"), "head.yaml")
    assert set(head.data["blocks"]) <= set(found)
    assert labels(complete_at(text.replace("- mine: {", "- conv_bn: {"), "- conv_bn: {", 12, file=spec)) == [
        "f"
    ]
    missing = text.replace("lib.yaml", "missing.yaml")
    assert "mine" in labels(complete_at(missing, "- mi\n", 4, file=spec))


PAIR = """\
cnnspec: 1
name: p
input: {shape: [8, 8, 1]}
blocks:
  pair:
    inputs: [left, right]
    layers:
      - add:
        inputs: [left, right]
model:
  - conv2d: {filters: 2, kernel_size: 1}
    id: a
  - conv2d: {filters: 2, kernel_size: 1}
    id: b
  - pair:
    inputs: {left: a, right: b}
  - flatten
  - dense: 2
"""


def _inputs(mapping: str) -> str:
    """PAIR with the call's ``inputs:`` written as ``mapping`` (what follows ``inputs:``)."""
    return PAIR.replace(" {left: a, right: b}", mapping)


def test_a_key_of_a_block_calls_inputs_mapping_completes_to_the_inputs_not_bound_yet():
    """At a key of ``pair``'s by-name ``inputs:`` (flow or block style, typed or not, with the
    text loading or not): the block's inputs no other key binds (``right`` once ``left`` is),
    not the layer ids a value takes; the values still complete to the ids before the call."""
    ids = ["input", "a", "b"]
    flow = _inputs(" {left: a, }")
    assert labels(complete_at(flow, "{left: a, }", 10)) == ["right"]
    assert labels(complete_at(_inputs(" {}"), "inputs: {}", 9)) == ["left", "right"]
    assert labels(complete_at(_inputs(" {left: a, ri}"), "{left: a, ri}", 12)) == ["right"]
    assert labels(complete_at(_inputs(" {ri, left: a}"), "{ri", 3)) == ["right"]  # (`left` bound after it)
    assert labels(complete_at(_inputs(" {left: a, right: }"), "right: }", 7)) == ids
    assert labels(complete_at(PAIR, "{left: a", 7)) == ids
    found = complete_at(flow, "{left: a, }", 10)
    assert [(s.what, s.detail) for s in found] == [("parameter", "input of block `pair`")]
    block = _inputs("\n      left: a\n      \n")
    assert labels(complete_at(block, "left: a\n      ", 14)) == ["right"]
    above = _inputs("\n      \n      right: b\n")  # (a key below the cursor binds its input too)
    assert labels(complete_at(above, "inputs:\n      ", 14)) == ["left"]
    typing = _inputs("\n      left: a\n      ri\n")  # (does not load: the text above says it)
    assert labels(complete_at(typing, "      ri", 8)) == ["right"]
    assert labels(complete_at(typing, "      ri", 8, load_text(PAIR, "t.yaml"))) == ["right"]
    assert labels(complete_at(_inputs("\n      left: \n"), "left: \n", 6)) == ids
    # a list of inputs, and a layer's (no block's) mapping: ids, as before
    assert labels(complete_at(_inputs(" [a, ]"), "[a, ]", 4)) == ids
    layer = PAIR.replace("  - pair:\n    inputs: {left: a, right: b}", "  - add:\n    inputs: {left: a, }")
    assert labels(complete_at(layer, "{left: a, }", 10)) == ids
