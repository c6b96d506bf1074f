"""`cnnspec lsp` on freeze/unfreeze patterns, a backbone's ``until:`` and ``search.space`` keys.

Tested on the pure modules (as ``test_lsp_navigation_fixes`` does), never by importing the
server, plus the server's completion edit for a pattern (a plain function of it):

- completion in a ``freeze:``/``unfreeze:`` list (flow or block, ``training``'s or a phase's)
  offers the names :class:`cnnspec.analysis.freezing.Patterns` matches, filtered by the typed
  prefix, with what each is, replacing the whole typed pattern;
- definition on a plain pattern goes to the item, block call or layer that declares it; on a
  glob to every model item it covers; references of an id list the patterns naming it;
- definition on ``until:`` goes to that id (or layer) of the backbone's spec;
- definition on a ``search.space`` key goes to what it sets, and to nothing when the
  document does not write it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cnnspec.errors import Loc
from cnnspec.lsp import completion, navigation
from cnnspec.lsp.documents import Analysis, Documents
from cnnspec.lsp.locate import Cursor, path_at
from cnnspec.lsp.patterns import PatternNames
from cnnspec.lsp.text import Lines
from cnnspec.spec.loader import load_text
from cnnspec.spec.zoo import resolve_ref
from tests.test_lsp_completion_fixes import complete_at as complete_in
from tests.test_lsp_navigation_fixes import BACKBONE as NAVIGATION_BACKBONE
from tests.test_lsp_navigation_fixes import cursor_at

pytest.importorskip("pygls", reason="the `lsp` extra is part of `dev`")

#: A block call with an id, a carrying repeat (one group per iteration), layers with ids, and
#: patterns in `training` and its phases, flow and block style.
SPEC = """\
cnnspec: 1
name: t
input: {shape: [8, 8, 3]}
vars: {width: 4}
blocks:
  conv_bn:
    params: {filters: int}
    layers:
      - conv2d: {filters: "${filters}", kernel_size: 3, padding: same}
        id: conv
      - batch_norm
model:
  - conv_bn: {filters: "${width}"}
    id: stem
  - id: st
    repeat:
      times: 2
      carry: {h: stem}
      layers:
        - conv_bn: {filters: 4}
          inputs: [h]
          id: inner
      next: {h: inner}
  - global_avg_pool2d
  - dense: {units: 3}
    id: head
training:
  optimizer: {adam: {learning_rate: 0.01}}
  freeze: [stem, "st[1].inner"]
  unfreeze:
    - head
  phases:
    - {epochs: 1, freeze: ["st_*"]}
    - epochs: 1
      unfreeze:
        - stem.conv
"""


def analyzed(path: Path, text: str) -> Analysis:
    """``text`` checked as the server checks an open document (it must compile)."""
    path.write_text(text, "utf-8")
    documents = Documents()
    documents.set(path, text, 1)
    analysis = documents.analyze(path)
    assert analysis.compiled is not None, analysis.diagnostics
    return analysis


def offset_of(text: str, needle: str, offset: int = 0, after: str = "") -> int:
    """The index of ``needle`` (the first after ``after``) plus ``offset``."""
    return text.index(needle, text.index(after) if after else 0) + offset


def at(
    analysis: Analysis, text: str, needle: str, offset: int = 0, after: str = ""
) -> tuple[Cursor, str, int]:
    """The cursor on ``needle`` (plus ``offset``), its line's text and its column."""
    return cursor_at(analysis, text, offset_of(text, needle, offset, after))


def place(text: str, needle: str, offset: int = 0, after: str = "") -> tuple[int, int]:
    """The 1-based line and column of ``needle`` (as a :class:`Loc` has them)."""
    start = offset_of(text, needle, offset, after)
    return text.count("\n", 0, start) + 1, start - (text.rfind("\n", 0, start) + 1) + 1


def where(loc: Loc | None) -> tuple[int, int] | None:
    return (loc.line, loc.column) if loc is not None else None


def complete_at(text: str, needle: str, offset: int) -> list[completion.Suggestion]:
    """Completion at ``needle`` + ``offset`` as the server asks for it (the names come from
    ``known``, the spec as it was, when the text does not load)."""
    return complete_in(text, needle, offset, load_text(SPEC, "t.yaml"))


def labels(found: list[completion.Suggestion]) -> list[str]:
    return [s.label for s in found]


def test_the_names_offered_are_those_freezing_matches() -> None:
    """Every name offered is one a pattern matches (the freezing pass's own index), each
    with what it is; the model's own items first."""
    offered = complete_at(SPEC.replace('[stem, "st[1].inner"]', "[]"), "[]", 1)
    names = labels(offered)
    doc = load_text(SPEC, "t.yaml")
    from cnnspec.spec.resolve import resolve

    patterns = PatternNames(resolve(doc)).patterns
    assert sorted(names) == sorted(patterns.index)
    assert all(patterns.match(name) for name in names)
    detail = {s.label: s.detail for s in offered}
    assert detail["stem"] == "call of block conv_bn, 2 layers"
    assert detail["st"] == "repeat (every iteration), 4 layers"
    assert detail["st[1]"] == "iteration 1 of repeat st, 2 layers"
    assert detail["st[1].inner"] == "call of block conv_bn, 2 layers"
    assert detail["head"] == "dense layer"
    assert detail["stem_conv"] == "conv2d layer in stem"
    ranks = {s.label: s.rank for s in offered}
    assert ranks["stem"] == ranks["head"] == 0 < ranks["st[1].inner"] < ranks["stem.conv"]


def test_a_typed_prefix_filters_and_is_replaced_whole() -> None:
    """``st[1].in`` offers only what starts so, each replacing the seven characters typed
    (editors take ``.`` and ``[`` for word ends); an unquoted flow element with brackets is
    inserted quoted; ``/`` stands for ``.`` and is kept as typed."""
    flow = SPEC.replace('[stem, "st[1].inner"]', "[stem, st[1].in]")
    offered = complete_at(flow, "st[1].in]", 8)
    assert labels(offered) == ["st[1].inner", "st[1].inner.conv", "st[1].inner.batch_norm_1"]
    assert {s.replace for s in offered} == {len("st[1].in")}
    assert offered[0].insert == '"st[1].inner"'  # a flow list would read st[1] as a list
    quoted = SPEC.replace('"st[1].inner"]', '"st[1]/in"]')
    offered = complete_at(quoted, 'st[1]/in"', 8)
    assert labels(offered)[:1] == ["st[1]/inner"] and offered[0].insert == "st[1]/inner"
    block = SPEC.replace("    - head\n", "    - he\n")
    offered = complete_at(block, "- he\n", 4)
    assert labels(offered) == ["head"] and offered[0].insert == "head"
    assert complete_at(block.replace("- he\n", "- zz\n"), "- zz\n", 4) == []


def test_completion_in_flow_and_block_lists_and_in_phases() -> None:
    """Flow and block lists, ``training``'s and a phase's, offer the patterns; a list that
    already names a pattern does not offer it again; other lists offer none."""
    phase_flow = SPEC.replace('freeze: ["st_*"]', "freeze: [st_*, ]")
    assert "head" in labels(complete_at(phase_flow, "st_*, ]", 6))
    assert "st_*" not in labels(complete_at(phase_flow, "st_*, ]", 6))
    phase_block = SPEC.replace("        - stem.conv\n", "        - stem.conv\n        - \n")
    offered = labels(complete_at(phase_block, "        - \n", 10))
    assert "head" in offered and "stem.conv" not in offered  # already in the list
    training_flow = SPEC.replace('[stem, "st[1].inner"]', "[stem, ]")
    assert "stem" not in labels(complete_at(training_flow, "[stem, ]", 7))
    assert "head" in labels(complete_at(training_flow, "[stem, ]", 7))
    unfinished = SPEC.replace('[stem, "st[1].inner"]', "[stem, he")  # the text does not load
    assert labels(complete_at(unfinished, "[stem, he", 9)) == ["head"]
    # a list elsewhere is no pattern list: an `inputs:` list offers ids, not patterns
    assert "st[1].inner" not in labels(complete_at(SPEC, "[h]", 2))


def test_the_server_replaces_the_typed_pattern() -> None:
    """The completion item's edit spans the typed pattern, not the editor's last word."""
    pytest.importorskip("lsprotocol")
    from cnnspec.lsp.server import _replacing

    line = "  freeze: [stem, st[1].in]"
    column = line.index("]", line.index("st[1]") + 5)
    suggestion = completion.Suggestion("st[1].inner", "id", replace=8, insert='"st[1].inner"')
    edit = _replacing(Lines(line), 0, column, suggestion)
    assert edit is not None and edit.new_text == '"st[1].inner"'
    assert (edit.range.start.character, edit.range.end.character) == (column - 8, column)
    assert _replacing(Lines(line), 0, column, completion.Suggestion("x", "id")) is None


@pytest.mark.parametrize(
    ("needle", "offset", "after", "expected"),
    [
        ("stem,", 1, "training:", ("stem\n  - id", 0)),  # a block call with an id: its id
        ('"st[1].inner"', 8, "training:", ("inner\n      next", 0)),  # inside the repeat's iteration
        ("head\n  phases", 1, "training:", ("head\ntraining", 0)),  # a layer's id
        ("stem.conv", 6, "phases:", ("conv\n      - batch_norm", 0)),  # in a phase: the block's layer
        # on a segment another follows: what that segment names (as a rename there reads it)
        ('"st[1].inner"', 2, "training:", ("st\n    repeat", 0)),  # the repeat
        ('"st[1].inner"', 3, "training:", ("st\n    repeat", 0)),  # (just past `st`: still on it)
        # on an index: that iteration of the repeat, declared by the repeat (not `inner`)
        ('"st[1].inner"', 4, "training:", ("st\n    repeat", 0)),
        ('"st[1].inner"', 5, "training:", ("st\n    repeat", 0)),
        ("stem.conv", 2, "phases:", ("stem\n  - id", 0)),  # the call
    ],
)
def test_definition_of_a_plain_pattern(
    tmp_path: Path, needle: str, offset: int, after: str, expected: tuple[str, int]
) -> None:
    analysis = analyzed(tmp_path / "spec.yaml", SPEC)
    assert analysis.doc is not None
    found = navigation.definitions(analysis.doc, *at(analysis, SPEC, needle, offset, after))
    assert [where(t.loc) for t in found] == [place(SPEC, *expected)]


def test_references_on_an_index_are_those_of_its_repeat(tmp_path: Path) -> None:
    """On the index of ``"st[1].inner"`` (``[1]``: iteration 1 of the repeat ``st``), references
    are the repeat's, as on ``st``; on ``inner``, the block call's. Before, the index read the
    whole pattern: ``inner``'s."""
    analysis = analyzed(tmp_path / "spec.yaml", SPEC)
    assert analysis.doc is not None

    def references(offset: int) -> list[tuple[int, int] | None]:
        cursor, line, column = at(analysis, SPEC, '"st[1].inner"', offset, "training:")
        found = navigation.references(analysis.doc, cursor, True, line_text=line, column=column)
        return [where(loc) for loc in found]

    on_st, on_inner = references(1), references(8)
    assert on_st[0] == place(SPEC, "st\n    repeat") and on_inner[0] == place(SPEC, "inner\n      next")
    assert references(4) == references(5) == on_st


def test_definition_of_a_glob_is_every_item_it_covers(tmp_path: Path) -> None:
    """``st_*`` covers the repeat's layers only: its item; ``*`` every item of the model."""
    text = SPEC.replace('freeze: ["st_*"]', 'freeze: ["st_*", "*"]')
    analysis = analyzed(tmp_path / "spec.yaml", text)
    assert analysis.doc is not None
    found = navigation.definitions(analysis.doc, *at(analysis, text, '"st_*"', 2))
    assert [where(t.loc) for t in found] == [place(text, "st\n    repeat")]
    every = navigation.definitions(analysis.doc, *at(analysis, text, '"*"', 1))
    assert [where(t.loc) for t in every] == [
        place(text, "stem\n  - id"),
        place(text, "st\n    repeat"),
        place(text, "global_avg_pool2d"),
        place(text, "head\ntraining"),
    ]
    # the single definition is the first of them; a pattern that matches nothing has none
    first = navigation.definition(analysis.doc, *at(analysis, text, '"*"', 1))
    assert first is not None and where(first.loc) == where(every[0].loc)


def test_definition_of_an_unknown_pattern_is_none(tmp_path: Path) -> None:
    analysis = analyzed(tmp_path / "spec.yaml", SPEC)
    doc = analysis.doc
    assert doc is not None
    text = SPEC.replace("    - head\n", "    - nothere\n")
    broken = load_text(text, analysis.name)  # (freezing refuses it: no compiled model)
    cursor = path_at(broken, analysis.name, *place(text, "nothere", 2))
    assert cursor is not None
    line = text.split("\n")[place(text, "nothere")[0] - 1]
    assert navigation.definitions(broken, cursor, line, line.index("nothere") + 2) == []


def test_references_of_an_id_include_the_patterns_naming_it(tmp_path: Path) -> None:
    """``stem`` is named by the pattern ``stem`` and through the first segment of ``stem.conv``,
    a layer of it (as rename edits them), not by a glob; from the pattern, the same references."""
    analysis = analyzed(tmp_path / "spec.yaml", SPEC)
    doc = analysis.doc
    assert doc is not None
    expected = sorted(
        [place(SPEC, "stem\n  - id"), place(SPEC, "stem}"), place(SPEC, "stem,"), place(SPEC, "stem.conv\n")]
    )
    for needle, offset, after in (("stem\n  - id", 1, ""), ("stem,", 1, "training:")):
        cursor = at(analysis, SPEC, needle, offset, after)[0]
        assert sorted(where(loc) for loc in navigation.references(doc, cursor)) == expected
    head = at(analysis, SPEC, "head\ntraining", 1)[0]
    assert sorted(where(loc) for loc in navigation.references(doc, head)) == sorted(
        [place(SPEC, "head\ntraining"), place(SPEC, "head\n  phases")]
    )


#: ResNet50 cut after its conv4 stage (the navigation tests' spec, one stage earlier).
BACKBONE = NAVIGATION_BACKBONE.replace("until: conv5", "until: conv4")


def test_until_goes_to_the_cut_in_the_zoo_model(tmp_path: Path) -> None:
    """``until: conv4`` of ``zoo:resnet50``: the ``id: conv4`` of the zoo's ResNet file; a
    layer name (a cut inside an item) goes to that layer; the pattern ``body.conv4`` of a
    freeze list goes to the call in the zoo file too."""
    zoo_file = resolve_ref("zoo:resnet50")[0]
    zoo_text = zoo_file.read_text("utf-8")
    analysis = analyzed(tmp_path / "bb.yaml", BACKBONE)
    assert analysis.doc is not None
    found = navigation.definitions(analysis.doc, *at(analysis, BACKBONE, "conv4", 2))
    assert len(found) == 1 and Path(found[0].file).resolve() == zoo_file.resolve()
    assert where(found[0].loc) == place(zoo_text, "id: conv4", 4)

    layer = "conv4_bottleneck_2_add_1"
    text = BACKBONE.replace("until: conv4", f"until: {layer}")
    analysis = analyzed(tmp_path / "bb.yaml", text)
    assert analysis.doc is not None and analysis.compiled is not None
    found = navigation.definitions(analysis.doc, *at(analysis, text, layer, 2))
    node = next(n for n in analysis.compiled.ir.nodes if n.name == f"body_{layer}")
    assert [t.loc for t in found] == [node.loc] and node.loc is not None


def test_until_goes_to_an_id_of_a_spec_beside_the_document(tmp_path: Path) -> None:
    base = (
        "cnnspec: 1\nname: base\ninput: {shape: [8, 8, 3]}\nmodel:\n"
        "  - conv2d: {filters: 3, kernel_size: 1}\n    id: feat\n  - flatten\n"
    )
    (tmp_path / "base.yaml").write_text(base, "utf-8")
    text = BACKBONE.replace(
        "zoo:resnet50, until: conv4, vars: {include_top: false}", "base.yaml, until: feat"
    )
    text = text.replace("224, 224", "8, 8")
    analysis = analyzed(tmp_path / "top.yaml", text)
    assert analysis.doc is not None
    found = navigation.definitions(analysis.doc, *at(analysis, text, "feat", 1))
    assert len(found) == 1 and Path(found[0].file).resolve() == (tmp_path / "base.yaml").resolve()
    assert where(found[0].loc) == place(base, "feat")


SEARCH = SPEC.replace(
    "training:\n",
    "search:\n  trials: 2\n  space:\n"
    "    vars.width: {choice: [4, 8]}\n"
    "    training.optimizer.adam.learning_rate: {float: [0.001, 0.1], log: true}\n"
    "    training.batch_size: {choice: [8, 16]}\n"
    "    head.units: {choice: [3, 5]}\n"
    "training:\n",
)


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("vars.width", ("width", 0, "vars:")),
        ("training.optimizer.adam.learning_rate", ("learning_rate", 0, "optimizer:")),
        ("head.units", ("units", 0, "dense:")),
        ("training.batch_size", None),  # not written: the search adds it
    ],
)
def test_a_search_space_key_goes_to_what_it_sets(
    tmp_path: Path, key: str, expected: tuple[str, int, str] | None
) -> None:
    analysis = analyzed(tmp_path / "search.yaml", SEARCH)
    assert analysis.doc is not None
    found = navigation.definitions(analysis.doc, *at(analysis, SEARCH, key, 2, "space:"))
    assert [where(t.loc) for t in found] == ([place(SEARCH, *expected)] if expected else [])


def test_a_space_key_that_leads_nowhere_has_no_definition() -> None:
    """A key the search cannot set (a typo, its error is the diagnostic) and a space being
    typed: no definition, no exception."""
    text = SEARCH.replace("vars.width: {choice: [4, 8]}", "vars.widht:")
    doc = load_text(text, "t.yaml")
    for needle in ("vars.widht", "training.batch_size"):
        row, column = place(text, needle, 2)
        cursor = path_at(doc, "t.yaml", row, column)
        assert cursor is not None and cursor.path[:2] == ("search", "space")
        line = text.split("\n")[row - 1]
        assert navigation.definitions(doc, cursor, line, column - 1) == []


def test_until_of_a_block_call_is_completed_and_goes_to_its_output(tmp_path: Path) -> None:
    """MobileNetV3's `expanded_conv_2` (an id set inside a repeat) and `expanded_conv_3/…`:
    validate takes them, the editor offered and found neither."""
    from cnnspec.lsp.completion import until_suggestions

    offered = [
        s.label
        for s in until_suggestions(
            None,
            ("model", 0, "backbone", "until"),
            "  - backbone: {spec: zoo:mobilenet_v3_small, until: ",
            [],
        )
    ]
    assert {"expanded_conv_2", "expanded_conv_3.squeeze_excite"} <= set(offered)
    text = BACKBONE.replace("zoo:resnet50, until: conv4", "zoo:mobilenet_v3_small, until: expanded_conv_2")
    analysis = analyzed(tmp_path / "bb.yaml", text)
    assert analysis.doc is not None and analysis.compiled is not None
    found = navigation.definitions(analysis.doc, *at(analysis, text, "expanded_conv_2", 1))
    node = next(n for n in analysis.compiled.ir.nodes if n.name == "body_expanded_conv_2_add_1")
    assert [t.loc for t in found] == [node.loc] and node.loc is not None


def test_references_find_the_dotted_patterns_that_name_an_id_through_a_segment() -> None:
    """`freeze: [stem.inner]` and `learning_rate_scale: {stem/inner: …}` name both `stem`
    (the call) and `inner` (the id in the block): rename edited them, references missed them."""
    from cnnspec.lsp.locate import path_at
    from cnnspec.spec.loader import load_text

    text = (
        "cnnspec: 1\nname: t\ninput: {shape: [8, 8, 3]}\nblocks:\n  unit:\n    params: {filters: int}\n"
        '    layers:\n      - conv2d: {filters: "${filters}", kernel_size: 3, padding: same}\n'
        "        id: inner\nmodel:\n  - unit: {filters: 4}\n    id: stem\n"
        "  - conv2d: {filters: 4, kernel_size: 3}\n    id: head\n"
        "  - global_avg_pool2d\n  - dense: {units: 3}\n"
        "training:\n  freeze: [stem.inner, head, 'st*']\n"
        "  learning_rate_scale: {stem/inner: 0.1}\n"
    )
    doc = load_text(text, "r.yaml")
    # from the id of the call, the id in the block, the id of a layer; from the patterns
    cases = (
        (12, 9, [12, 18, 19]),
        (9, 13, [9, 18, 19]),
        (14, 9, [14, 18]),
        (18, 12, [9, 18, 19]),
        (19, 26, [9, 18, 19]),
    )
    for line, column, expected in cases:
        cursor = path_at(doc, "r.yaml", line, column)
        assert cursor is not None
        assert [loc.line for loc in navigation.references(doc, cursor)] == expected, line
