"""`cnnspec lsp` navigation on backbones, hierarchical names and carrying repeats.

Tested on the pure modules (as ``test_lsp_scopes`` does), never by importing the server:

- a backbone item is in the outline (named by its id, the backbone spec and cut point in its
  detail), has a hover, and definition on it or its ``spec:`` opens the backbone's spec file;
- references to an id include its hierarchical uses (``c0.x``, ``"c0[1]"``), ``carry:``
  values and a block call's by-name ``inputs:`` mapping, each in its own scope;
- definition on ``c0.x``, ``"c0[1]"`` and a ``carry:`` value reaches the declaration.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from lsprotocol import types

from cnnspec.errors import Loc
from cnnspec.lsp import hover, navigation, symbols
from cnnspec.lsp.documents import Analysis, Documents
from cnnspec.lsp.locate import Cursor, TreeIndex, path_at
from cnnspec.spec.zoo import resolve_ref
from tests.conftest import FIXTURES

pytest.importorskip("pygls", reason="the `lsp` extra is part of `dev`")

BACKBONE = """\
cnnspec: 1
name: t
input: {shape: [224, 224, 3]}
model:
  - backbone: {spec: zoo:resnet50, until: conv5, vars: {include_top: false}}
    id: body
  - global_avg_pool2d
"""

#: A carrying repeat whose body calls a block with its inputs bound by name, in this scope.
CARRY = """\
cnnspec: 1
name: t
input: {shape: [8, 8, 3]}
blocks:
  mix:
    inputs: [a, b]
    layers:
      - add:
        inputs: [a, b]
        id: s
model:
  - conv2d: {filters: 3, kernel_size: 1}
    id: s
  - id: loop
    repeat:
      times: 2
      carry: {h: s}
      layers:
        - mix:
          inputs: {a: h, b: s}
          id: m
      next: {h: m}
  - add:
    inputs: [h, "loop[1].m"]
"""


def analyzed(path: Path, text: str) -> Analysis:
    documents = Documents()
    documents.set(path, text, 1)
    analysis = documents.analyze(path)
    assert analysis.compiled is not None, analysis.diagnostics
    return analysis


def start_of(text: str, needle: str) -> int:
    """Where ``needle`` is, looked for in the model first (the fixture's comments name the
    same ids)."""
    model = max(text.find("\nmodel:"), 0)
    found = text.find(needle, model)
    return found if found >= 0 else text.index(needle)


def at(analysis: Analysis, text: str, needle: str, offset: int = 0) -> tuple[Cursor, str, int]:
    """The cursor on ``needle`` (plus ``offset`` characters), its line's text and its column."""
    return cursor_at(analysis, text, start_of(text, needle) + offset)


def cursor_at(analysis: Analysis, text: str, start: int) -> tuple[Cursor, str, int]:
    """The cursor at index ``start`` of ``text``, its line's text and its column."""
    row = text.count("\n", 0, start)
    column = start - (text.rfind("\n", 0, start) + 1)
    assert analysis.doc is not None
    cursor = path_at(analysis.doc, analysis.name, row + 1, column + 1)
    assert cursor is not None
    return cursor, text.split("\n")[row], column


def place(text: str, needle: str, offset: int = 0) -> tuple[int, int]:
    """The 1-based line and column of ``needle`` (as a :class:`Loc` has them)."""
    start = start_of(text, needle) + offset
    return text.count("\n", 0, start) + 1, start - (text.rfind("\n", 0, start) + 1) + 1


def lines_of(locs: list[Loc]) -> list[tuple[int, int]]:
    return sorted((loc.line, loc.column) for loc in locs)


def test_a_backbone_has_an_outline_entry_a_hover_and_a_definition(tmp_path: Path) -> None:
    path = (tmp_path / "bb.yaml").resolve()
    analysis = analyzed(path, BACKBONE)
    doc, compiled = analysis.doc, analysis.compiled
    assert doc is not None and compiled is not None

    found = symbols.outline(doc, analysis.name, BACKBONE, compiled.ir)
    assert [s.name for s in found] == ["body", "global_avg_pool2d_1"]
    assert found[0].detail == "backbone zoo:resnet50 up to conv5 → (None, 7, 7, 2048)"
    assert found[0].children  # the layers it keeps, all at the item's range
    assert found[0].selection_range.start == types.Position(4, 4)

    index = TreeIndex(compiled.ir)
    for needle, offset in (("backbone", 2), ("zoo:resnet50", 6)):
        text = hover.hover_text(doc, compiled, index, *at(analysis, BACKBONE, needle, offset))
        assert text is not None and text.startswith("**backbone** `zoo:resnet50`"), text
        assert "(None, 7, 7, 2048)" in text and "params" in text and "trainable" in text
        target = navigation.definition(doc, *at(analysis, BACKBONE, needle, offset))
        assert target is not None and target.loc is None
        assert Path(target.file).resolve() == resolve_ref("zoo:resnet50")[0].resolve()


def test_a_local_backbone_spec_is_its_definition(tmp_path: Path) -> None:
    (tmp_path / "base.yaml").write_text(
        "cnnspec: 1\nname: base\ninput: {shape: [8, 8, 3]}\nmodel:\n"
        "  - conv2d: {filters: 3, kernel_size: 1}\n    id: feat\n  - flatten\n",
        "utf-8",
    )
    text = BACKBONE.replace(
        "zoo:resnet50, until: conv5, vars: {include_top: false}", "base.yaml, until: feat"
    )
    analysis = analyzed((tmp_path / "top.yaml").resolve(), text.replace("224, 224", "8, 8"))
    assert analysis.doc is not None
    target = navigation.definition(analysis.doc, *at(analysis, text, "base.yaml", 2))
    assert target is not None and Path(target.file).resolve() == (tmp_path / "base.yaml").resolve()


def test_references_include_hierarchical_names_and_carry_values(tmp_path: Path) -> None:
    text = (FIXTURES / "codegen" / "cells.yaml").read_text("utf-8")
    analysis = analyzed((tmp_path / "cells.yaml").resolve(), text)
    doc = analysis.doc
    assert doc is not None

    def refs(needle: str, offset: int) -> list[tuple[int, int]]:
        return lines_of(navigation.references(doc, at(analysis, text, needle, offset)[0]))

    c0 = [place(text, "c0\n"), place(text, "c0}"), place(text, '"c0[1]"'), place(text, "c0.x")]
    assert refs("id: c0", 5) == sorted(c0)
    assert refs("c0.x", 1) == sorted(c0)  # from a use, the same set
    assert refs("id: stem_b", 5) == sorted(
        [place(text, "stem_b\n"), place(text, "stem_b]"), place(text, "stem_b,")]
    )


def test_references_read_a_calls_mapping_carry_and_next_in_their_scopes(tmp_path: Path) -> None:
    analysis = analyzed((tmp_path / "carry.yaml").resolve(), CARRY)
    doc = analysis.doc
    assert doc is not None

    def refs(needle: str, offset: int) -> list[tuple[int, int]]:
        return lines_of(navigation.references(doc, at(analysis, CARRY, needle, offset)[0]))

    # the model's `s`: the carry value and the mapping's value, not the block body's `s`
    assert refs("id: s\n  - id", 4) == sorted(
        [place(CARRY, "s\n  - id"), place(CARRY, "s}\n      layers"), place(CARRY, "s}\n          id")]
    )
    # the carried `h`: its key, the mapping's value, `next`'s key and the use after the loop
    assert refs("h: s}", 0) == sorted(
        [place(CARRY, "h: s}"), place(CARRY, "h, b:"), place(CARRY, "h: m}"), place(CARRY, 'h, "loop')]
    )
    # the body's `m`: the `next` value and the hierarchical use after the loop
    assert refs("id: m", 4) == sorted(
        [place(CARRY, "m\n      next"), place(CARRY, "m}"), place(CARRY, '"loop[1].m"')]
    )
    # the block's `s` is only its own
    assert refs("id: s\nmodel", 4) == [place(CARRY, "s\nmodel")]


@pytest.mark.parametrize(
    ("needle", "offset", "expected"),
    [
        # each segment leads where the name read up to it does, as a rename there reads it
        ("c0.x", 1, ("c0\n", 0)),  # on `c0`: the call's id
        ("c0.x", 3, ("x]\n    outputs", 0)),  # the block's output `x`: its input declaration
        ('"c0[1]"', 2, ("c0\n", 0)),
        ('"c0[1]"', 4, ("x]\n    outputs", 0)),  # on the index, output 1 of the block: `x`
        ("x: c0}", 4, ("c0\n", 0)),  # a carry value: the item's id
        ("p: stem_b", 4, ("stem_b\n", 0)),
        ("next: {p: x", 10, ("x: c0}", 0)),  # a next value: the carried name
        ("x: new}", 3, ("new\n", 0)),  # a next value: the body's id
    ],
)
def test_definitions_of_hierarchical_names_and_carry_values(
    tmp_path: Path, needle: str, offset: int, expected: tuple[str, int]
) -> None:
    text = (FIXTURES / "codegen" / "cells.yaml").read_text("utf-8")
    analysis = analyzed((tmp_path / "cells.yaml").resolve(), text)
    assert analysis.doc is not None
    target = navigation.definition(analysis.doc, *at(analysis, text, needle, offset))
    assert target is not None and target.loc is not None
    assert (target.loc.line, target.loc.column) == place(text, *expected)


def test_references_on_a_hierarchical_use_read_its_segment_under_the_cursor(tmp_path: Path) -> None:
    """On ``"loop[1].m"``, given the cursor's column as the server gives it: on ``m`` the
    references of the body's ``m``, on ``loop`` and on its index those of the repeat ``loop``
    (what definition goes to and a rename edits there). Before, every place read the first
    segment: ``loop``'s references while definition went to ``m``."""
    analysis = analyzed((tmp_path / "carry.yaml").resolve(), CARRY)
    doc = analysis.doc
    assert doc is not None

    def refs(needle: str, offset: int) -> list[tuple[int, int]]:
        cursor, line, column = at(analysis, CARRY, needle, offset)
        return lines_of(navigation.references(doc, cursor, line_text=line, column=column))

    on_m, on_loop = refs("id: m", 4), refs("id: loop", 4)
    assert place(CARRY, "m\n      next") in on_m and place(CARRY, "loop\n") in on_loop
    assert refs('"loop[1].m"', 9) == on_m
    assert refs('"loop[1].m"', 2) == refs('"loop[1].m"', 6) == on_loop


def test_a_hierarchical_name_follows_a_repeat_and_block_calls(tmp_path: Path) -> None:
    analysis = analyzed((tmp_path / "carry.yaml").resolve(), CARRY)
    assert analysis.doc is not None
    target = navigation.definition(analysis.doc, *at(analysis, CARRY, '"loop[1].m"', 9))
    assert target is not None and target.loc is not None
    assert (target.loc.line, target.loc.column) == place(CARRY, "m\n      next")
    for offset in (2, 6):  # on `loop`, and on its index (iteration 1): the repeat's id
        target = navigation.definition(analysis.doc, *at(analysis, CARRY, '"loop[1].m"', offset))
        assert target is not None and target.loc is not None
        assert (target.loc.line, target.loc.column) == place(CARRY, "loop\n")
