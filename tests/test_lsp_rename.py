"""`cnnspec lsp` rename (:mod:`cnnspec.lsp.rename`), tested on the pure functions as
``test_lsp_patterns`` and ``test_lsp_navigation_fixes`` test navigation, never through the server
(``tests/test_lsp.py`` has one end-to-end rename).

Each rename is applied to the texts, which are checked again as the editor checks them: no
diagnostics, the same model (layers, kinds, shapes, parameter counts), the new name where the
old one was written as that name, and the old name left alone elsewhere (a longer word, a
comment, a glob). Refusals: a layer kind, a glob pattern, a comment, a zoo block, an invalid or
taken new name, and a rename that would change what a glob covers.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cnnspec.lsp import rename, rename_checks, rename_symbols, rename_target
from cnnspec.lsp.documents import Analysis, Documents
from cnnspec.lsp.navigation import automatic_names
from cnnspec.lsp.rename_symbols import Other, RenameError
from cnnspec.lsp.scopes import Automatic
from tests.conftest import FIXTURES, ROOT
from tests.test_lsp_navigation_fixes import CARRY, cursor_at, start_of
from tests.test_lsp_patterns import SPEC

pytest.importorskip("pygls", reason="the `lsp` extra is part of `dev`")

LIBRARY = """\
cnnspec: 1
blocks:
  double:
    params: {filters: int, kernel: {type: int, default: 3}}
    layers:
      - conv2d: {filters: "${filters}", kernel_size: "${kernel}", padding: same}
        id: c
      - activation: relu
        id: r
"""
#: A spec using LIBRARY: vars with a longer name alike, a comment naming one, calls named
#: automatically and referred to by those names, patterns, and a search over a var and an id.
USER = """\
cnnspec: 1
name: user
use: [lib.yaml]
input: {shape: [8, 8, 1]}
vars: {width: 4, widths: 2, classes: 3}
model:
  - conv2d: {filters: "${width}", kernel_size: 3, padding: same}  # the width
    id: stem
  - double: {filters: "${width * 2 + widths}"}
  - double: {filters: 4}
  - concat:
    inputs: [double_1.c, double_2.r]
  - global_avg_pool2d
  - dense: {units: "${classes}", activation: softmax}
data: {source: digits, classes: [0, 1, 2]}
training:
  freeze: [double_1, "double_2/c", "stem*"]
search:
  objective: {metric: val_accuracy, direction: maximize}
  space:
    vars.width: {choice: [4, 8]}
    stem.filters: {choice: [4, 8]}
"""


class Workspace:
    """Open documents in a folder, checked as the server checks them."""

    #: The spec paths where the test's files have a warning on purpose (a freeze pattern kept
    #: for its segments, ``blk.r``, that matches only a layer without weights); any other
    #: diagnostic is a mistake in the files.
    warned: frozenset[str] = frozenset()

    def __init__(self, root: Path, files: dict[str, str]) -> None:
        self.root = root.resolve()
        self.documents = Documents()
        for name, text in files.items():
            self.put(name, text)

    def put(self, name: str, text: str) -> None:
        path = self.root / name
        path.write_text(text, "utf-8")
        self.documents.set(path, text, 1)

    def text(self, name: str) -> str:
        found = self.documents.text(self.root / name)
        assert found is not None
        return found

    def analyze(self, name: str) -> Analysis:
        analysis = self.documents.analyze(self.root / name)
        assert analysis.compiled is not None or analysis.library, analysis.diagnostics
        unexpected = [d for d in analysis.diagnostics if d.severity != "warning" or d.path not in self.warned]
        assert analysis.doc is not None and not unexpected, analysis.diagnostics
        return analysis

    def at(self, name: str, needle: str, offset: int = 0) -> tuple[Analysis, tuple]:
        analysis = self.analyze(name)
        return analysis, cursor_at(analysis, self.text(name), start_of(self.text(name), needle) + offset)

    def target(self, name: str, needle: str, offset: int = 0) -> rename_symbols.Symbol | None:
        analysis, (cursor, line, column) = self.at(name, needle, offset)
        assert analysis.doc is not None
        automatic = automatic_names(analysis.doc, analysis.compiled.ir) if analysis.compiled else None
        return rename_target.located(analysis.doc, cursor, line, column, automatic, self.file_text)[0]

    #: The workspace folders a rename covers beside the open specs (none here).
    folders: tuple[Path, ...] = ()

    def rename(
        self, name: str, needle: str, offset: int, new: str, others: tuple[str, ...] = ()
    ) -> dict[str, list[rename_symbols.Replacement]]:
        """The replacements of a rename from ``needle`` in ``name``, with the open specs
        ``others`` (as the server passes the other open documents) and the specs on disk in
        :attr:`folders`."""
        analysis, (cursor, line, column), automatic, more = self.asked(name, needle, offset, others)
        return rename.rename(
            analysis.doc,
            cursor,
            line,
            column,
            new,
            automatic=automatic,
            text_of=self.file_text,
            reader=self.documents.text,
            others=more,
            folders=self.folders,
        )

    def asked(
        self, name: str, needle: str, offset: int, others: tuple[str, ...]
    ) -> tuple[Analysis, tuple, Automatic | None, list[Other]]:
        """What a request at ``needle`` in ``name`` passes: the analysis, the cursor (with its
        line and column), the spec's automatic names and the open specs ``others`` (each with
        its own), as the server passes them."""
        more: list[Other] = []
        for other in others:
            found = self.analyze(other)
            assert found.doc is not None and found.compiled is not None
            more.append((found.doc, automatic_names(found.doc, found.compiled.ir)))
        analysis, place = self.at(name, needle, offset)
        assert analysis.doc is not None
        automatic = automatic_names(analysis.doc, analysis.compiled.ir) if analysis.compiled else None
        return analysis, place, automatic, more

    def file_text(self, file: str) -> str | None:
        return self.documents.text((Path.cwd() / file).resolve())

    def renamed(
        self, name: str, needle: str, offset: int, new: str, others: tuple[str, ...] = ()
    ) -> dict[str, str]:
        """Rename, apply the edits, check the specs again: the same models, no diagnostics.
        The new texts by file name (relative to the folder)."""
        before = [model_of(self.analyze(spec)) for spec in (name, *others)]
        changes = self.rename(name, needle, offset, new, others)
        assert changes
        texts = {}
        for file, places in changes.items():
            assert all(place.text == new for place in places)
            relative = str((Path.cwd() / file).resolve().relative_to(self.root))
            texts[relative] = rename_checks.apply(self.text(relative), places)
            self.put(relative, texts[relative])
        assert [model_of(self.analyze(spec)) for spec in (name, *others)] == before
        return texts


def model_of(analysis: Analysis) -> list[tuple[object, ...]]:
    """The compiled model up to its names: each layer's kind, shape and counts (a library's:
    none)."""
    if analysis.compiled is None:
        return []
    return [(node.kind, node.shape, node.counts) for node in analysis.compiled.ir.nodes]


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)  # (locations name files relative to the working directory)
    return tmp_path


def test_an_id_is_renamed_in_references_patterns_and_hierarchical_patterns(folder: Path) -> None:
    space = Workspace(folder, {"s.yaml": SPEC})
    symbol = space.target("s.yaml", "id: stem", 5)
    assert symbol is not None and (symbol.what, symbol.name) == ("id", "stem")
    text = space.renamed("s.yaml", "id: stem", 5, "base")["s.yaml"]
    assert "id: base" in text and "carry: {h: base}" in text
    assert 'freeze: [base, "st[1].inner"]' in text and "- base.conv" in text
    assert '"st_*"' in text  # a glob is never rewritten
    assert "stem" not in text.split("model:")[1]


def test_an_inner_id_is_renamed_through_hierarchical_names(folder: Path) -> None:
    space = Workspace(folder, {"s.yaml": SPEC})
    text = space.renamed("s.yaml", "id: inner", 4, "mid")["s.yaml"]
    assert "id: mid" in text and "next: {h: mid}" in text and '"st[1].mid"' in text
    # the block's own id, from a pattern's later segment: only that segment changes
    text = space.renamed("s.yaml", "stem.conv", 6, "c3")["s.yaml"]
    assert "id: c3" in text and "- stem.c3" in text and "conv_bn" in text


def test_only_the_renamed_segment_of_a_hierarchical_name_changes(folder: Path) -> None:
    cells = (FIXTURES / "codegen" / "cells.yaml").read_text("utf-8")
    space = Workspace(folder, {"cells.yaml": cells})
    text = space.renamed("cells.yaml", "c0.x", 1, "cz")["cells.yaml"]
    assert 'inputs: [x, p, "cz[1]", cz.x]' in text and "id: cz" in text and "x: cz}" in text
    assert text.split("model:")[0] == cells.split("model:")[0]  # the comments name `c0` still
    # the block's input `x`, reached through `cz.x`: its declaration, the block's outputs, its
    # use inside the block and the key binding it at the call, not the model's carried `x`
    text = space.renamed("cells.yaml", "cz.x", 3, "xin")["cells.yaml"]
    assert "inputs: [p, xin]" in text and "outputs: [out, xin]" in text and "inputs: xin" in text
    assert "inputs: {xin: x, p: p}" in text and 'inputs: [x, p, "cz[1]", cz.xin]' in text
    assert "carry: {p: stem_b, x: cz}" in text and "next: {p: x, x: new}" in text


def test_a_repeat_iterations_inner_id_and_carried_name(folder: Path) -> None:
    space = Workspace(folder, {"carry.yaml": CARRY})
    text = space.renamed("carry.yaml", "id: m", 4, "mm")["carry.yaml"]
    assert "next: {h: mm}" in text and '"loop[1].mm"' in text and "id: mm" in text
    text = space.renamed("carry.yaml", "h: s}", 0, "hh")["carry.yaml"]
    assert "carry: {hh: s}" in text and "{a: hh, b: s}" in text and "next: {hh: mm}" in text
    assert 'inputs: [hh, "loop[1].mm"]' in text


def test_a_name_after_an_index_written_as_an_expression(folder: Path) -> None:
    unet = (ROOT / "specs" / "unet.yaml").read_text("utf-8")
    space = Workspace(folder, {"unet.yaml": unet})
    text = space.renamed("unet.yaml", "id: level", 4, "stage")["unet.yaml"]
    assert '"enc[${levels - 1 - i}].stage.skip"' in text and "next: {x: stage}" in text
    text = space.renamed("unet.yaml", "as: i", 4, "k")["unet.yaml"]  # the encoder's loop only
    assert "${base * 2 ** k}" in text and '"enc[${levels - 1 - i}].stage.skip"' in text
    assert space.target("unet.yaml", "carry: {x: input}", 13) is None  # the model's input


def test_a_var_and_its_whole_names_in_expressions_and_the_search_space(folder: Path) -> None:
    space = Workspace(folder, {"lib.yaml": LIBRARY, "user.yaml": USER})
    symbol = space.target("user.yaml", "width * 2", 1)
    assert symbol is not None and (symbol.what, symbol.name) == ("var", "width")
    text = space.renamed("user.yaml", "width * 2", 1, "w")["user.yaml"]
    assert "vars: {w: 4, widths: 2, classes: 3}" in text
    assert '"${w}"' in text and '"${w * 2 + widths}"' in text and "vars.w:" in text
    assert "# the width" in text  # a comment is no use


def test_a_block_parameter_and_the_keyword_of_its_calls(folder: Path) -> None:
    space = Workspace(folder, {"lib.yaml": LIBRARY, "user.yaml": USER})
    texts = space.renamed("user.yaml", "filters: 4}", 0, "nf")
    assert set(texts) == {"lib.yaml", "user.yaml"}
    assert "params: {nf: int" in texts["lib.yaml"] and 'filters: "${nf}"' in texts["lib.yaml"]
    assert '- double: {nf: "${width * 2 + widths}"}' in texts["user.yaml"]
    assert "- double: {nf: 4}" in texts["user.yaml"]
    assert '- conv2d: {filters: "${width}"' in texts["user.yaml"]  # a layer's parameter


def test_a_library_block_renamed_from_its_call_in_the_spec(folder: Path) -> None:
    space = Workspace(folder, {"lib.yaml": LIBRARY, "user.yaml": USER})
    symbol = space.target("user.yaml", "- double", 3)
    assert symbol is not None and (symbol.what, symbol.name) == ("block", "double")
    texts = space.renamed("user.yaml", "- double", 3, "twice")
    assert set(texts) == {"lib.yaml", "user.yaml"}
    assert "\n  twice:\n" in texts["lib.yaml"]
    user = texts["user.yaml"]
    assert user.count("- twice: {filters:") == 2
    # the calls' automatic names follow the block's: the same counter
    assert "inputs: [twice_1.c, twice_2.r]" in user
    assert 'freeze: [twice_1, "twice_2/c", "stem*"]' in user


def test_the_other_open_specs_that_use_the_library_are_renamed_too(folder: Path) -> None:
    other = "cnnspec: 1\nname: other\nuse: [lib.yaml]\ninput: {shape: [8, 8, 3]}\nmodel:\n"
    other += "  - double: {filters: 2, kernel: 1}\n    id: d\n  - flatten\n"
    space = Workspace(folder, {"lib.yaml": LIBRARY, "user.yaml": USER, "other.yaml": other})
    texts = space.renamed("user.yaml", "- double", 3, "twice", others=("other.yaml",))
    assert set(texts) == {"lib.yaml", "user.yaml", "other.yaml"}
    assert "- twice: {filters: 2, kernel: 1}" in texts["other.yaml"]
    texts = space.renamed("lib.yaml", "kernel: {", 0, "k", others=("other.yaml",))
    assert "- twice: {filters: 2, k: 1}" in texts["other.yaml"] and '"${k}"' in texts["lib.yaml"]


def test_a_var_a_child_spec_declares_again_is_refused(folder: Path) -> None:
    child = "cnnspec: 1\nextends: user.yaml\nname: child\nvars: {width: 8}\n"
    space = Workspace(folder, {"lib.yaml": LIBRARY, "user.yaml": USER, "child.yaml": child})
    with pytest.raises(RenameError, match=re.escape("declared at user.yaml:5:8 and again at child.yaml:4:8")):
        space.rename("child.yaml", "width", 0, "w")


def test_an_id_named_by_a_search_space_key(folder: Path) -> None:
    space = Workspace(folder, {"lib.yaml": LIBRARY, "user.yaml": USER.replace('"stem*"', "stem")})
    text = space.renamed("user.yaml", "stem.filters", 1, "first")["user.yaml"]
    assert "id: first" in text and "first.filters:" in text and '"double_2/c", first]' in text


def test_what_cannot_be_renamed(folder: Path) -> None:
    space = Workspace(folder, {"lib.yaml": LIBRARY, "user.yaml": USER, "s.yaml": SPEC})
    assert space.target("s.yaml", "conv2d", 2) is None  # a layer kind
    assert space.target("s.yaml", "kernel_size", 2) is None  # a layer's parameter
    assert space.target("s.yaml", "repeat", 2) is None  # a combinator
    assert space.target("s.yaml", "st_*", 1) is None  # a glob pattern
    assert space.target("user.yaml", "the width", 5) is None  # a comment after a value
    assert space.target("user.yaml", '"stem*"', 2) is None
    assert space.target("s.yaml", '"st[1].inner"', 4) is None  # an iteration's index
    with pytest.raises(RenameError, match="nothing to rename"):
        space.rename("s.yaml", "conv2d", 2, "conv")


def test_a_zoo_block_cannot_be_renamed(folder: Path) -> None:
    zoo = USER.replace("use: [lib.yaml]", "use: [lib.yaml, zoo:blocks/squeeze_excite]").replace(
        "  - global_avg_pool2d\n", "  - squeeze_excite\n  - global_avg_pool2d\n"
    )
    space = Workspace(folder, {"lib.yaml": LIBRARY, "user.yaml": zoo})
    assert space.target("user.yaml", "squeeze_excite\n", 2) is None
    # (it said "nothing to rename here: only ids, blocks, …", on a block)
    with pytest.raises(RenameError, match=r"packaged zoo file .*squeeze_excite\.yaml, which is not yours"):
        space.rename("user.yaml", "squeeze_excite\n", 2, "se")


@pytest.mark.parametrize(
    ("name", "needle", "offset", "new", "message"),
    [
        ("s.yaml", "id: stem", 5, "9lives", "expected an identifier"),
        ("s.yaml", "id: stem", 5, "wïdth", "expected an identifier"),
        ("s.yaml", "id: stem", 5, "head", "already declared in this id scope"),
        ("s.yaml", "id: stem", 5, "input", "reserved for the model input"),
        ("s.yaml", "conv_bn:\n", 0, "conv2d", "names the layer kind `conv2d`"),
        ("s.yaml", "conv_bn:\n", 0, "repeat", "reserved"),
        ("s.yaml", "conv_bn:\n", 0, "id", "reserved"),
        ("user.yaml", "- double", 3, "conv_bn", "already exists"),
        ("user.yaml", "width * 2", 1, "classes", "already exists"),
        ("user.yaml", "width * 2", 1, "in_channels", "built-in"),
        ("user.yaml", "width * 2", 1, "class", "keyword"),
        ("user.yaml", "filters: 4}", 0, "kernel", "already has a parameter"),
        # `st_*` covers the repeat's layers by their names: `stage` would leave it none
        ("s.yaml", "id: st\n", 4, "stage", "'st_\\*'"),
        ("user.yaml", "id: stem", 4, "base", "'stem\\*'"),  # the glob `stem*` would cover nothing
    ],
)
def test_invalid_taken_or_unsafe_new_names_are_refused(
    folder: Path, name: str, needle: str, offset: int, new: str, message: str
) -> None:
    space = Workspace(
        folder, {"lib.yaml": LIBRARY + SPEC.split("blocks:\n")[1].split("model:")[0], "s.yaml": SPEC}
    )
    space.put("user.yaml", USER)
    with pytest.raises(RenameError, match=message):
        space.rename(name, needle, offset, new)


def test_a_new_name_an_expression_would_read_as_something_else(folder: Path) -> None:
    library = LIBRARY.replace('kernel_size: "${kernel}"', 'kernel_size: "${kernel + classes - 3}"')
    space = Workspace(folder, {"lib.yaml": library, "user.yaml": USER})
    with pytest.raises(RenameError, match="`classes` already names something else"):
        space.rename("user.yaml", "filters: 4}", 0, "classes")
    # and a var may not take the name of a parameter where the var is read inside the block
    with pytest.raises(RenameError, match="already names something else"):
        space.rename("user.yaml", "classes}", 0, "kernel")
