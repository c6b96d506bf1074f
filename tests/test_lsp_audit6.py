"""`cnnspec lsp` after the sixth audit: the outline's ranges (the augmentation section's own
lines, an item's first line, ranges that stay in their section) and a named combinator's name;
the editor's diagnostics as `cnnspec validate`'s (the smallest square input a backbone accepts,
a hint's range); a var overridden by a spec that extends the file (rename's refusal, references).

The cases drive the modules in process, as the server calls them
(:class:`cnnspec.lsp.documents.Documents` checks the texts as the server does).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from lsprotocol import types

pytest.importorskip("pygls", reason="the `lsp` extra is part of `dev`")

from cnnspec.analysis.input_size import NOTE_START
from cnnspec.api import compile_spec
from cnnspec.errors import SpecError
from cnnspec.lsp import diagnostics, symbols
from cnnspec.lsp.documents import Analysis, Documents
from cnnspec.lsp.rename_symbols import RenameError
from cnnspec.spec.compose import load_spec
from tests.test_lsp_references import Space
from tests.test_lsp_rename import LIBRARY, USER, Workspace
from tests.test_lsp_rename import folder as folder_fixture

folder = folder_fixture  # (the working directory is the folder: files are named relative to it)

ROOT = Path(__file__).resolve().parents[1]


def analysed(path: Path, text: str, documents: Documents | None = None) -> Analysis:
    documents = documents or Documents()
    documents.set(path, text, 1)
    return documents.analyze(path)


def _span(found: types.Range) -> str:
    return f"{found.start.line}:{found.start.character}-{found.end.line}:{found.end.character}"


def _within(outer: types.Range, inner: types.Range) -> bool:
    start = (outer.start.line, outer.start.character) <= (inner.start.line, inner.start.character)
    return start and (inner.end.line, inner.end.character) <= (outer.end.line, outer.end.character)


def _walk(found: list[types.DocumentSymbol]) -> Iterator[types.DocumentSymbol]:
    for symbol in found:
        yield symbol
        yield from _walk(symbol.children or [])


# -- 1. the outline's ranges -------------------------------------------------------------------
BACKBONE_BASE = """\
cnnspec: 1
name: base
input: {shape: [16, 16, 3]}
model:
  - conv2d: {filters: 4, kernel_size: 3, padding: same}
    id: c
  - relu
"""
EVERY_KIND = """\
cnnspec: 1
name: every
input: {shape: [32, 32, 3]}
vars: {deep: true}
blocks:
  cell:
    params: {f: int}
    layers:
      - conv2d: {filters: "${f}", kernel_size: 3, padding: same}
model:
  - backbone: {spec: base.yaml}
    id: trunk
  - conv2d: {filters: 4, kernel_size: 3, padding: same}
    id: stem
  - repeat: {times: 2, layers: [conv2d: {filters: 4, kernel_size: 1}]}
  - cell: 4
    id: c0
  - id: cells
    repeat:
      times: 3
      carry: {x: c0}
      layers:
        - cell: 4
          inputs: x
          id: step
      next: {x: step}
  - residual:
      body: [conv2d: {filters: 4, kernel_size: 3, padding: same}]
    id: res
  - parallel: {branches: [[relu], [relu]]}
  - conv2d: {filters: 4, kernel_size: 1}
    when: "${deep}"
  - global_avg_pool2d
  - dense: {units: 3, activation: softmax}
augmentation:
  - random_flip: horizontal
  - random_rotation: 0.1
data: {source: cifar10, classes: [0, 1, 2]}
training:
  epochs: 1
"""


def _sections(text: str) -> dict[str, tuple[int, int]]:
    """The lines (0-based, first and last) of each top-level key's text."""
    rows = text.split("\n")
    starts = [(row, line.split(":")[0]) for row, line in enumerate(rows) if line[:1].isalpha()]
    ends = [row - 1 for row, _ in starts[1:]] + [len(rows) - 1]
    return {key: (row, end) for (row, key), end in zip(starts, ends, strict=True)}


def test_every_outline_range_holds_its_selection_and_stays_in_its_section(tmp_path: Path):
    (tmp_path / "base.yaml").write_text(BACKBONE_BASE, "utf-8")
    path = (tmp_path / "every.yaml").resolve()
    analysis = analysed(path, EVERY_KIND)
    assert analysis.compiled is not None and analysis.doc is not None, analysis.diagnostics
    found = symbols.outline(analysis.doc, analysis.name, EVERY_KIND, analysis.compiled.ir)
    sections = _sections(EVERY_KIND)
    rows = EVERY_KIND.split("\n")
    kinds = {
        word for symbol in found for word in (symbol.name.split(" ")[0], (symbol.detail or " ").split(" ")[0])
    }
    assert {"backbone", "conv2d", "repeat", "residual", "parallel"} <= kinds
    assert any(symbol.name == "cell c0" for symbol in found)  # a call's name holds its id
    for top in found:
        section = "augmentation" if top.name == "augmentation" else "model"
        first, last = sections[section]
        assert first <= top.range.start.line and top.range.end.line <= last, (top.name, _span(top.range))
        for symbol in _walk([top]):
            assert _within(symbol.range, symbol.selection_range), (symbol.name, _span(symbol.range))
            for child in symbol.children or []:
                assert _within(symbol.range, child.range), (symbol.name, child.name)
    augmentation = found[0]
    assert augmentation.name == "augmentation"
    key, last = rows.index("augmentation:"), rows.index("  - random_rotation: 0.1")
    assert _span(augmentation.range) == f"{key}:0-{last}:{len(rows[last])}"
    assert _span(augmentation.selection_range) == f"{key}:0-{key}:{len('augmentation')}"
    # a carrying repeat written `- id: cells` / `repeat:`: its range from the `id:` line, named
    # by its id as a layer is, with what it is in the detail
    (cells,) = [symbol for symbol in found if symbol.name == "cells"]
    assert cells.detail.startswith("repeat ×3 → ")
    assert cells.range.start == types.Position(rows.index("  - id: cells"), 4)
    assert cells.selection_range.start == types.Position(rows.index("    repeat:"), 4)
    assert cells.range.end.line == rows.index("      next: {x: step}")
    (res,) = [symbol for symbol in found if symbol.name == "res"]
    assert res.detail.startswith("residual → ") and res.range.end.line == rows.index("    id: res")
    plain = [symbol for symbol in found if symbol.name == "repeat ×2"]
    assert len(plain) == 1 and plain[0].detail.startswith("→ ")  # no id: named by what it is


def test_the_augmentation_outline_of_resnet_is_its_section():
    path = ROOT / "specs" / "resnet.yaml"
    text = path.read_text("utf-8")
    analysis = analysed(path, text)
    assert analysis.compiled is not None and analysis.doc is not None
    found = symbols.outline(analysis.doc, analysis.name, text, analysis.compiled.ir)
    (augmentation,) = [symbol for symbol in found if symbol.name == "augmentation"]
    assert _span(augmentation.range) == "38:0-45:55"
    assert _span(augmentation.selection_range) == "38:0-38:12"


# -- 2. the smallest square input's note -------------------------------------------------------
SMALL_INPUT = """\
cnnspec: 1
extends: zoo:densenet121
input: {shape: [28, 28, 3]}
"""


def test_an_input_too_small_for_a_zoo_model_has_validates_note(tmp_path: Path):
    """The editor's diagnostic (at `extends:`) carries the note `validate` gives, pointing at
    the input shape."""
    path = (tmp_path / "small.yaml").resolve()
    path.write_text(SMALL_INPUT, "utf-8")
    with pytest.raises(SpecError) as raised:
        compile_spec(path)
    expected = [note.message for d in raised.value.diagnostics for note in d.notes]
    assert any(message.startswith(NOTE_START + "29×29×3") for message in expected), expected

    documents = Documents()
    analysis = analysed(path, SMALL_INPUT, documents)
    assert [note.message for d in analysis.diagnostics for note in d.notes] == expected
    (shown,) = diagnostics.for_document(documents, path)
    rows = SMALL_INPUT.split("\n")
    assert shown.range.start == types.Position(1, rows[1].index("zoo:"))  # where it comes in
    (note,) = [r for r in shown.related_information or [] if NOTE_START in r.message]
    assert note.message == f"note: {expected[0]}"
    assert note.location.uri == path.as_uri()
    assert note.location.range.start == types.Position(2, rows[2].index("[28"))


# -- 3. a hint's range is its diagnostic's -----------------------------------------------------
HEAD = "cnnspec: 1\nname: t\ninput: {shape: [8, 8, 3]}\n"
FLATEN = HEAD + "model:\n  - conv2d: {filters: 2, kernel_size: 3}\n  - flaten\n"


@pytest.mark.parametrize(
    "text",
    [
        "\ufeff{cnnspec: 1, name: t, input: {shape: [8, 8, 3]}, model: [flaten]}\n",  # a byte-order mark
        "\ufeff" + HEAD + "model: [{dense: {units: 2, activaton: relu}}]\n",
        FLATEN,
        FLATEN.replace("\n", "\r\n"),
        FLATEN.replace("  - flaten\n", "  - dense: {units: 2, activaton: relu}\n"),
    ],
)
def test_a_hint_is_where_its_diagnostic_is(tmp_path: Path, text: str):
    """The hint's related information has the diagnostic's range, also where the loader's copy
    of the text differs from the editor's: without its byte-order mark, or replaced by a later
    load of the file as saved (`- flatten` on the disk, `- flaten` in the editor)."""
    path = (tmp_path / "t.yaml").resolve()
    path.write_text(text.replace("flaten", "flatten").replace("activaton", "activation"), "utf-8")
    documents = Documents()
    analysed(path, text, documents)
    for shown in diagnostics.for_document(documents, path):  # before and after the disk's load
        (hint,) = [r for r in shown.related_information or [] if r.message.startswith("hint: ")]
        assert (hint.location.uri, _span(hint.location.range)) == (path.as_uri(), _span(shown.range))
    load_spec(path)  # the disk's text (the workspace's scan of other specs does this)
    found = diagnostics.for_document(documents, path)
    assert found and all(d.code in ("unknown-kind", "unknown-parameter") for d in found), found
    for shown in found:
        (hint,) = [r for r in shown.related_information or [] if r.message.startswith("hint: ")]
        assert (hint.location.uri, _span(hint.location.range)) == (path.as_uri(), _span(shown.range))


# -- 4. and 5. a var a spec that extends the file overrides ------------------------------------
OVERRIDING = "cnnspec: 1\nextends: user.yaml\nname: child\nvars: {width: 8}\n"


@pytest.mark.parametrize("asked", ["user.yaml", "child.yaml"])
def test_a_rename_refusal_names_the_child_as_overriding(folder: Path, asked: str):
    """Asked in the base or in the child, the refusal says the child's declaration overrides
    the base's (it said the reverse when asked in the base)."""
    space = Workspace(folder, {"lib.yaml": LIBRARY, "user.yaml": USER, "child.yaml": OVERRIDING})
    other = "child.yaml" if asked == "user.yaml" else "user.yaml"
    expected = "declared at user.yaml:5:8 and again at child.yaml:4:8, which overrides it"
    with pytest.raises(RenameError, match=re.escape(expected)):
        space.rename(asked, "width", 0, "w", others=(other,))


@pytest.mark.parametrize("opened", [True, False])
def test_a_vars_references_include_a_childs_override(folder: Path, opened: bool):
    """From the base's declaration or a use, the child that extends it and declares the var
    again (open, or on disk in the workspace) is listed at its declaration, after the base's
    places; from the child, the var is the child's (the base's declaration is not its)."""
    space = Space(folder, {"lib.yaml": LIBRARY, "user.yaml": USER})
    alone = space.references("user.yaml", "width", 0)
    if opened:
        space.put("child.yaml", OVERRIDING)
    else:
        space.disk("child.yaml", OVERRIDING)
    others = ("child.yaml",) if opened else ()
    base = space.references("user.yaml", "width", 0, others=others)
    assert alone[0] == ("user.yaml", 5, 8) and base == [*alone, ("child.yaml", 4, 8)]
    assert space.references("user.yaml", "width}", 0, others=others) == base  # from a use
    if opened:
        child = space.references("child.yaml", "width", 0, others=("user.yaml",))
        assert child[0] == ("child.yaml", 4, 8) and ("user.yaml", 5, 8) not in child


def test_the_outline_of_a_one_line_model_gives_each_item_its_own_text(tmp_path: Path):
    """Each item's range ran to the end of its last line: in a flow-style model on one line every
    item covered the items after it (breadcrumbs and "select enclosing" named the first)."""
    text = (
        "cnnspec: 1\nname: f\ninput: {shape: [8, 8, 1]}\nmodel: [{conv2d: {filters: 2, kernel_size: 3}}, "
        "{residual: {body: [relu, relu]}}, global_avg_pool2d, {dense: {units: 3, activation: softmax}}]\n"
    )
    analysis = analysed((tmp_path / "f.yaml").resolve(), text)
    assert analysis.compiled is not None and analysis.doc is not None, analysis.diagnostics
    found = symbols.outline(analysis.doc, analysis.name, text, analysis.compiled.ir)
    line = text.split("\n")[3]
    covered = [line[s.range.start.character : s.range.end.character] for s in found]
    assert covered == [
        "{conv2d: {filters: 2, kernel_size: 3}}, ",
        "{residual: {body: [relu, relu]}}, ",
        "global_avg_pool2d, ",
        "{dense: {units: 3, activation: softmax}}]",
    ]
    for symbol in _walk(found):
        assert _within(symbol.range, symbol.selection_range), symbol.name
        for child in symbol.children or []:
            assert _within(symbol.range, child.range), (symbol.name, child.name)
    (residual,) = [s for s in found if s.name == "residual"]
    (body,) = [c for c in residual.children if c.name == "body"]
    assert [line[c.range.start.character : c.range.end.character] for c in body.children] == [
        "relu, ",
        "relu]}}, ",
    ]
