"""The language server's features in process (no pygls, no stdio): what each answers for a
spec that ``extends`` a base with blocks, repeats, ids and vars. tests/test_lsp.py drives the
real server end to end; these cover the cases that need several files or scopes.

Expectations come from the compiler (:func:`cnnspec.api.compile_spec`) or the text itself.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import pytest

from cnnspec.analysis.report import batched, shape_text
from cnnspec.api import compile_spec
from cnnspec.lsp import completion, diagnostics, hover, navigation, symbols
from cnnspec.lsp.documents import Analysis, Documents
from cnnspec.lsp.locate import Cursor, TreeIndex, path_at
from cnnspec.lsp.text import Lines

BASE = """\
cnnspec: 1
name: base
input: {shape: [8, 8, 3]}
vars: {width: 4, classes: 3}
blocks:
  pair:
    params: {filters: int}
    layers:
      - conv2d: {filters: "${filters}", kernel_size: 3, padding: same}
        id: first
      - conv2d: {filters: "${filters}", kernel_size: 3, padding: same}
        inputs: first
model:
  - pair: {filters: "${width}"}
  - repeat: {times: 2, as: i, layers: [conv2d: {filters: "${width + i}", kernel_size: 1}]}
  - global_avg_pool2d
  - dense: {units: "${classes}", activation: softmax}
"""
CHILD = """\
cnnspec: 1
extends: base.yaml
vars: {width: 6}
"""


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    paths = {"base": tmp_path / "base.yaml", "child": tmp_path / "child.yaml"}
    paths["base"].write_text(BASE, "utf-8")
    paths["child"].write_text(CHILD, "utf-8")
    return {name: path.resolve() for name, path in paths.items()}


def analysed(path: Path, text: str, documents: Documents | None = None) -> Analysis:
    documents = documents or Documents()
    documents.set(path, text, 1)
    return documents.analyze(path)


def cursor(analysis: Analysis, file: str, text: str, needle: str, offset: int = 0) -> tuple[Cursor, str, int]:
    """The cursor at ``needle`` + ``offset`` in ``text`` (the file ``file``), its line and column."""
    start = text.index(needle) + offset
    line = text[:start].count("\n")
    column = start - (text[:start].rfind("\n") + 1)
    assert analysis.doc is not None
    found = path_at(analysis.doc, file, line + 1, column + 1)
    assert found is not None
    return found, text.split("\n")[line], column


def test_var_hover_follows_extends(files: dict[str, Path]) -> None:
    child = analysed(files["child"], CHILD)
    assert child.compiled is not None and child.diagnostics == []
    index = TreeIndex(child.compiled.ir)
    base_name = str(files["base"])  # outside the working directory: absolute
    # Over `${width}` in the base, seen through the child: the child's value and location.
    at, line, column = cursor(child, base_name, BASE, '"${width}"', 4)
    text = hover.hover_text(child.doc, child.compiled, index, at, line, column)
    value = compile_spec(files["child"]).resolved["vars"]["width"]
    assert f"value: `{value}`" in text and f"set in {files['child']}:3:" in text


def test_layer_hover_in_a_block_lists_every_call(files: dict[str, Path]) -> None:
    base = analysed(files["base"], BASE)
    index = TreeIndex(base.compiled.ir)
    at, line, column = cursor(base, base.name, BASE, "conv2d", 1)
    text = hover.hover_text(base.doc, base.compiled, index, at, line, column)
    node = base.compiled.ir.node("pair_1_first")
    assert "`pair_1_first`" in text and shape_text(batched(node.shape)) in text
    assert f"{node.counts.params:,} params" in text
    call = hover.hover_text(base.doc, base.compiled, index, *cursor(base, base.name, BASE, "- pair", 3)[0:3])
    assert "pair(filters: int)" in call and "filters=4" in call


def test_block_parameter_hover_shows_each_calls_value(files: dict[str, Path]) -> None:
    base = analysed(files["base"], BASE)
    index = TreeIndex(base.compiled.ir)
    text = hover.hover_text(base.doc, base.compiled, index, *cursor(base, base.name, BASE, '"${filters}"', 4))
    (call,) = index.calls["pair"]
    assert "**parameter** `filters`" in text and f"`pair_1`: {call.args['filters']}" in text


def test_definitions_of_names_in_scope(files: dict[str, Path]) -> None:
    base = analysed(files["base"], BASE)
    name = base.name

    def target(needle: str, offset: int) -> tuple[int, int]:
        found = navigation.definition(base.doc, *cursor(base, name, BASE, needle, offset))
        assert found is not None and found.loc is not None
        return found.loc.line, found.loc.column

    def where(needle: str) -> tuple[int, int]:
        start = BASE.index(needle)
        return BASE[:start].count("\n") + 1, start - (BASE[:start].rfind("\n") + 1) + 1

    assert target('"${width + i}"', 12) == where("i, layers")  # loop variable → `as: i`
    assert target('"${filters}"', 4) == where("filters: int")  # block parameter
    assert target('"${classes}"', 4) == where("classes: 3")  # var
    assert target("inputs: first", 9) == where("first\n")  # an id in the block's scope
    assert target("- pair", 3) == where("pair:\n")  # the block


def test_references_of_an_id_stay_in_its_block(files: dict[str, Path]) -> None:
    base = analysed(files["base"], BASE)
    found = navigation.references(base.doc, cursor(base, base.name, BASE, "id: first", 5)[0])
    lines = sorted(loc.line for loc in found)
    assert lines == [
        BASE[: BASE.index("id: first")].count("\n") + 1,
        BASE[: BASE.index("inputs: first")].count("\n") + 1,
    ]


def test_completion_knows_the_scope_of_an_expression(files: dict[str, Path]) -> None:
    base = analysed(files["base"], BASE)
    in_block = completion.complete(base.doc, *cursor(base, base.name, BASE, '"${filters}"', 3))
    labels = {s.label for s in in_block}
    assert {"filters", "width", "classes", "in_channels"} <= labels and "i" not in labels
    in_repeat = completion.complete(base.doc, *cursor(base, base.name, BASE, '"${width + i}"', 3))
    assert {"i", "width"} <= {s.label for s in in_repeat} and "filters" not in {s.label for s in in_repeat}


def test_included_files_are_tracked_and_errors_in_them_anchor_at_the_include(files: dict[str, Path]) -> None:
    documents = Documents()
    analysed(files["base"], BASE, documents)
    child = analysed(files["child"], CHILD, documents)
    assert child.files == {files["base"], files["child"]}
    assert documents.dependents(files["base"]) == [files["child"]]
    broken = BASE.replace('units: "${classes}"', 'units: "${clases}"')
    documents.set(files["base"], broken, 2)  # unsaved
    child = documents.analyze(files["child"])
    assert [d.code for d in child.diagnostics] == ["expression"]
    shown = diagnostics.convert(child.diagnostics[0], child.name, CHILD)
    assert shown.range.start.line == CHILD.split("\n").index("extends: base.yaml")
    assert shown.message.startswith(f"{files['base']}:")
    in_base = diagnostics.for_document(documents, files["base"])
    start = broken.index('"${clases}"')
    assert [(d.range.start.line, d.range.start.character) for d in in_base] == [
        (broken[:start].count("\n"), start - (broken[:start].rfind("\n") + 1))
    ]


def test_outline_of_a_spec_with_errors_lists_its_items(files: dict[str, Path]) -> None:
    broken = BASE.replace("kernel_size: 1", "kernel_size: -1")
    base = analysed(files["base"], broken)
    assert base.compiled is None and base.doc is not None
    names = [s.name for s in symbols.outline(base.doc, base.name, broken, None)]
    assert names == ["pair", "repeat", "global_avg_pool2d", "dense"]


def test_positions_count_utf16_units() -> None:
    text = "description: 🙂 ok: x"
    start = text.index("ok")  # in code points; the emoji takes two UTF-16 units
    lines = Lines(text + "\n")
    span = lines.span(1, start + 1)
    assert (span.start_char, span.end_char) == (start + 1, start + 1 + len("ok"))
    assert lines.codepoint(0, span.start_char) == start


@pytest.mark.parametrize(("encoding", "mark"), [("utf-16", 1), ("utf-8", 3), ("utf-32", 1)])
def test_a_byte_order_mark_is_counted_by_the_editor_not_by_yaml(encoding: str, mark: int) -> None:
    """YAML's columns start after a leading BOM, the editor's before it: every position of the
    first line was one character early (a squiggle on the blank before `sofmax`, no quick fix)."""
    from cnnspec.spec.loader import load_text

    text = "\ufeff{cnnspec: 1, name: t, model: [dense: {activation: sofmax}]}\n"
    doc = load_text(text, "bom.yaml")
    loc = doc.loc(("model", 0, "dense", "activation"))
    lines = Lines(text, encoding)
    span = lines.span(loc.line, loc.column)
    start = text.index("sofmax")  # in the editor's text, the BOM included
    assert (span.start_char, span.end_char) == (start - 1 + mark, start - 1 + mark + len("sofmax"))
    assert lines.codepoint(0, span.start_char) == loc.column - 1  # back to YAML's column
    assert lines.line(0).startswith("{cnnspec")


def test_cli_without_the_lsp_extra_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from cnnspec.cli.app import app

    monkeypatch.delitem(sys.modules, "cnnspec.lsp.server", raising=False)
    for name in [name for name in sys.modules if name.startswith("pygls.")]:
        monkeypatch.delitem(sys.modules, name)  # (imported by an earlier test: found without pygls)
    monkeypatch.setitem(sys.modules, "pygls", None)  # as if the extra were not installed
    result = CliRunner().invoke(app, ["lsp"])
    assert result.exit_code == 2
    assert "the language server needs the `lsp` extra (pygls is missing)" in result.output
    assert "pip install 'cnnspec[lsp]'" in result.output


@pytest.mark.parametrize(("encoding", "units"), [("utf-16", 2), ("utf-8", 4), ("utf-32", 1)])
def test_positions_follow_the_agreed_encoding(encoding: str, units: int) -> None:
    """Neovim offers UTF-8 first and pygls takes it: columns after an emoji differ by encoding."""
    text = "description: 🙂 ok: x"
    start = text.index("ok")
    lines = Lines(text, encoding)
    span = lines.span(1, start + 1)
    assert span.start_char == start - 1 + units
    assert lines.codepoint(0, span.start_char) == start


ZOO_USER = """\
cnnspec: 1
name: zoo_user
input: {shape: [16, 16, 8]}
use: [zoo:blocks/resnet]
model:
  - bottleneck: {filters: 4}
  - global_avg_pool2d
"""


def test_definitions_reach_into_the_packaged_zoo(tmp_path: Path) -> None:
    """A block from `use: [zoo:blocks/…]` and an `extends: zoo:…` lead to the packaged files."""
    from cnnspec.resources import zoo_dir

    spec = (tmp_path / "zoo_user.yaml").resolve()
    user = analysed(spec, ZOO_USER)
    assert user.compiled is not None and user.diagnostics == []
    library = (zoo_dir() / "blocks" / "resnet.yaml").resolve()
    found = navigation.definition(user.doc, *cursor(user, user.name, ZOO_USER, "- bottleneck", 3))
    assert found is not None and found.loc is not None
    assert Path(found.loc.file).resolve() == library
    assert library.read_text("utf-8").split("\n")[found.loc.line - 1].strip() == "bottleneck:"
    included = navigation.definition(user.doc, *cursor(user, user.name, ZOO_USER, "zoo:blocks", 2))
    assert included is not None and Path(included.file).resolve() == library


def test_unused_vars_and_blocks_are_marked_unnecessary(tmp_path: Path) -> None:
    """Editors fade out what nothing uses (a var never read, a block never called); an error
    or another warning keeps its plain look."""
    from lsprotocol import types

    from cnnspec.api import compile_text

    text = (
        "cnnspec: 1\nname: t\ninput: {shape: [4]}\nvars: {spare: 1}\n"
        "blocks:\n  idle:\n    layers: [flatten]\nmodel: [flatten]\n"
    )
    warnings = compile_text(text, "t.yaml").warnings
    assert sorted(w.code for w in warnings) == ["unused-block", "unused-var"]
    for warning in warnings:
        shown = diagnostics.convert(warning, "t.yaml", text)
        assert shown.tags == [types.DiagnosticTag.Unnecessary]
    other = replace(warnings[0], code="class-count")
    assert diagnostics.convert(other, "t.yaml", text).tags is None


def test_a_backbone_spec_file_is_read_with_its_unsaved_text_and_tracked(tmp_path: Path) -> None:
    """As `extends` and `use` files are: the editor's unsaved text of the backbone's spec file
    counts, and editing it re-checks the spec that uses it."""
    head = "cnnspec: 1\nname: NAME\ninput: {shape: [8, 8, 1]}\nmodel:\n"
    body = head.replace("NAME", "body") + "  - conv2d: {filters: 2, kernel_size: 3}\n    id: c1\n"
    (tmp_path / "body.yaml").write_text(body, "utf-8")
    user = head.replace("NAME", "top") + "  - backbone: {spec: body.yaml, until: flat}\n"
    (tmp_path / "top.yaml").write_text(user, "utf-8")
    documents = Documents()
    base, top = (tmp_path / "body.yaml").resolve(), (tmp_path / "top.yaml").resolve()
    first = analysed(top, user, documents)
    assert [d.code for d in first.diagnostics] == ["reference"]  # no layer 'flat' to cut at
    assert base in first.files and documents.dependents(base) == [top]
    documents.set(base, body + "  - flatten:\n    id: flat\n", 2)  # unsaved
    assert documents.analyze(top).diagnostics == []
