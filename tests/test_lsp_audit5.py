"""`cnnspec lsp` after the fifth audit: search findings that outlive a failing edit, a missing
``use:`` file that appears, completion that follows the cursor's place (which list, which
mapping), ``until:`` at the item's vars, the outline of a cut backbone and a combinator's hover.

Most cases drive the modules in process (:class:`cnnspec.lsp.documents.Documents` checks the
texts as the server does); one server process (test_lsp's module fixture) covers a file that
appears on disk or in the editor, end to end.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from lsprotocol import types

pytest_lsp = pytest.importorskip("pytest_lsp", reason="the `lsp` extra is part of `dev`")
from pytest_lsp import LanguageClient  # noqa: E402

from cnnspec.layers.registry import REGISTRY  # noqa: E402
from cnnspec.lsp import completion, hover, symbols  # noqa: E402
from cnnspec.lsp.documents import Analysis, Documents  # noqa: E402
from cnnspec.lsp.locate import TreeIndex, path_at  # noqa: E402
from cnnspec.spec.loader import SourceDoc, load_text  # noqa: E402
from cnnspec.spec.schema import json_schema  # noqa: E402
from tests.test_lsp import client as lsp_client_fixture  # noqa: E402
from tests.test_lsp import close, mark, open_text, published  # noqa: E402
from tests.test_lsp_edges import LIBRARY  # noqa: E402
from tests.test_lsp_edges import SEARCH as EDGES_SEARCH  # noqa: E402

pytestmark = pytest.mark.xdist_group("lsp")
in_server = pytest.mark.asyncio(loop_scope="module")
client = lsp_client_fixture  # one server process for this module

SEARCH = EDGES_SEARCH.replace("[adam, sgd]}", "[adam, sgdd]}")  # one candidate misspelt
#: Found only by compiling the search candidates (each choice written into the spec).
BAD_CHOICE = "received string 'sgdd'"
#: The same text with invalid YAML: the check fails before the search section.
BROKEN_YAML = SEARCH.replace("name: s\n", "name: s\nfoo: [\n")


def messages(analysis: Analysis) -> list[str]:
    return [d.message for d in analysis.diagnostics]


def test_search_findings_outlive_a_failing_edit_and_are_compiled_once_the_text_reads(tmp_path: Path):
    """A check that fails before the search pass (invalid YAML) leaves the last compiled
    candidates' findings for the edit that restores the text; a document opened (or saved)
    with an error gets its candidates compiled by the first check that reaches them."""
    path = (tmp_path / "s.yaml").resolve()
    documents = Documents()
    documents.set(path, SEARCH, 1)
    assert any(BAD_CHOICE in m for m in messages(documents.analyze(path, full=True)))
    documents.set(path, BROKEN_YAML, 2)
    assert not any(BAD_CHOICE in m for m in messages(documents.analyze(path)))
    documents.set(path, SEARCH, 3)
    assert any(BAD_CHOICE in m for m in messages(documents.analyze(path)))  # kept, not lost

    other = (tmp_path / "t.yaml").resolve()
    documents.set(other, BROKEN_YAML, 1)
    assert not any(BAD_CHOICE in m for m in messages(documents.analyze(other, full=True)))
    documents.set(other, SEARCH, 2)  # fixed on type: the open's compilation is still owed
    assert any(BAD_CHOICE in m for m in messages(documents.analyze(other)))


USER = """\
cnnspec: 1
name: s
use: [LIB]
input: {shape: [8, 8, 3]}
model:
  - double: 4
  - global_avg_pool2d
"""


def test_a_missing_use_file_is_a_dependency_and_an_open_buffer_of_it_is_read(tmp_path: Path):
    """The missing file is among those the check read (its creation re-checks the spec), and
    the editor's unsaved buffer at that path is read as the file (as a backbone's is)."""
    spec, library = (tmp_path / "s.yaml").resolve(), (tmp_path / "lib.yaml").resolve()
    documents = Documents()
    documents.set(spec, USER.replace("LIB", "lib.yaml"), 1)
    assert any("no such file" in m for m in messages(documents.analyze(spec, full=True)))
    assert documents.dependents(library) == [spec]
    documents.set(library, LIBRARY, 1)  # opened in the editor, not saved
    assert documents.analyze(spec).diagnostics == []


@in_server
async def test_a_missing_use_file_that_appears_clears_no_such_file(client: LanguageClient, tmp_path: Path):
    """Created on disk (didChangeWatchedFiles), or opened in the editor before it is saved:
    the spec that names it is checked again at once, without an edit of its own."""
    disk, editor = tmp_path / "disk.yaml", tmp_path / "editor.yaml"
    spec_a, spec_b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    found = await open_text(client, spec_a, USER.replace("LIB", disk.name))
    assert len(found) == 1 and "no such file" in found[0].message
    disk.write_text(LIBRARY, "utf-8")
    before = mark(spec_a.as_uri())
    client.workspace_did_change_watched_files(
        types.DidChangeWatchedFilesParams([types.FileEvent(disk.as_uri(), types.FileChangeType.Created)])
    )
    assert await published(spec_a.as_uri(), before) == []
    found = await open_text(client, spec_b, USER.replace("LIB", editor.name))
    assert len(found) == 1 and "no such file" in found[0].message
    before = mark(spec_b.as_uri())
    await open_text(client, editor, LIBRARY)
    assert await published(spec_b.as_uri(), before) == []
    for path in (spec_a, spec_b, editor):
        close(client, path)


HEAD = "cnnspec: 1\nname: t\ninput: {shape: [8, 8, 3]}\n"


def complete_at(text: str, doc: SourceDoc | None = None, file: Path | None = None) -> list[str]:
    """The labels offered at the end of ``text`` (its last line, unfinished)."""
    lines = text.split("\n")
    row, column = len(lines) - 1, len(lines[-1])
    cursor = path_at(doc, doc.file, row + 1, column + 1) if doc is not None else None
    found = completion.complete(doc, cursor, lines[row], column, lines[:row], file=file)
    return [s.label for s in found]


def _enum(schema: object, key: str) -> Iterator[str]:
    """The string ``enum`` values under ``key`` anywhere in ``schema`` (for expectations)."""
    if isinstance(schema, dict):
        for name, value in schema.items():
            if name == key and isinstance(value, dict):
                for alternative in value.get("items", {}).get("anyOf", []):
                    yield from (v for v in alternative.get("enum", []) if isinstance(v, str))
            yield from _enum(value, key)
    elif isinstance(schema, list):
        for value in schema:
            yield from _enum(value, key)


def test_a_new_list_item_offers_what_that_list_takes():
    """Layer kinds only in layer lists; augmentation's kinds under ``augmentation``; the
    schema's names under ``metrics``/``callbacks``; nothing under ``use``, ``classes``,
    ``unfreeze`` (file names, classes, patterns)."""
    kinds = set(REGISTRY)
    training = json_schema()["properties"]["training"]
    for text in (
        HEAD + "use:\n  - ",
        HEAD + "model:\n  - relu\ndata:\n  source: digits\n  classes:\n    - ",
        HEAD + "training:\n  phases:\n    - epochs: 2\n      unfreeze:\n        - ",
    ):
        assert complete_at(text) == [], text
    metrics = complete_at(HEAD + "training:\n  metrics:\n    - ")
    assert metrics and set(metrics) == set(_enum(training, "metrics")) | {"top_k_accuracy"}
    callbacks = complete_at(HEAD + "training:\n  epochs: 2\n  callbacks:\n    - ")
    assert callbacks and set(callbacks) == set(_enum(training, "callbacks"))
    augmentation = set(complete_at(HEAD + "augmentation:\n  - "))
    random = {k for k in kinds if REGISTRY[k].augmentation}  # (a rescaling there is refused)
    assert random <= augmentation and not (kinds - random) & augmentation
    assert "repeat" in augmentation and not {"residual", "parallel"} & augmentation  # (no branches)
    nested = set(complete_at(HEAD + "augmentation:\n  - repeat:\n      times: 2\n      layers:\n        - "))
    assert random <= nested and not (kinds - random) & nested and "residual" not in nested
    for text in (
        HEAD + "model:\n  - ",
        HEAD + "model:\n- relu\n- ",
        HEAD + "model:\n  - residual:\n      body:\n        - ",
        HEAD + "blocks:\n  b:\n    layers:\n      - relu\n      - ",
        HEAD + "model:\n  - parallel:\n      branches:\n        - - relu\n          - ",
        HEAD + "model:\n" + "  - relu\n" * 1000 + "  - ",  # its key far above (a flat model)
    ):
        assert kinds | {"residual", "repeat"} <= set(complete_at(text)), text[-60:]
    long_item = HEAD + "model:\n" + "  - relu\n" * 1000 + "  - conv2d:\n      filters: 8\n      "
    assert "kernel_size" in complete_at(long_item)


BODY = "model:\n  - conv2d: {filters: 4, kernel_size: 3, padding: same}\n"


@pytest.mark.parametrize("loads", [True, False])
def test_a_key_position_offers_the_keys_of_the_mapping_its_indentation_puts_it_in(loads: bool):
    """Below a combinator's list, at the combinator's key indent: its own keys (never the
    last inner layer's parameters); at an item's indent after a kind: the item's keys."""
    tail = "\n  - global_avg_pool2d\n" if loads else "\n  - dense: {units: 4\n"
    cases = {
        "  - residual:\n      body:\n        - conv2d: {filters: 4, kernel_size: 3}\n      ": [
            "shortcut",
            "merge",
            "activation",
            "projection_bias",
        ],
        "  - repeat:\n      times: 2\n      layers: [dense: {units: 3}]\n      ": ["as", "carry", "next"],
        "  - parallel:\n      branches: [[relu], [relu]]\n      ": ["merge", "activation"],
        "  - residual: {body: [conv2d: {filters: 4, kernel_size: 3}], ": [
            "shortcut",
            "merge",
            "activation",
            "projection_bias",
        ],
        "  - conv2d: {filters: 4, kernel_size: 1}\n    ": ["id", "inputs", "when", "trainable"],
        "  - dense:\n      units: 4\n    ": ["id", "inputs", "when", "trainable"],
        "  - dense:\n      units: 4\n      ": [p.name for p in REGISTRY["dense"].params if p.name != "units"],
    }
    for written, expected in cases.items():
        text = HEAD + BODY + written
        closing = "}" if written.endswith(", ") else ""  # (the rest of the cursor's line)
        doc = load_text(text + closing + tail, "t.yaml") if loads else None
        assert complete_at(text, doc) == expected, written


def test_until_offers_the_layers_of_the_backbone_at_the_items_vars(tmp_path: Path):
    (tmp_path / "vb.yaml").write_text(
        "cnnspec: 1\nname: vb\ninput: {shape: [8, 8, 3]}\nvars: {n: 1}\nmodel:\n"
        '  - repeat: {times: "${n}", layers: [conv2d: {filters: 4, kernel_size: 1}]}\n',
        "utf-8",
    )
    line = '  - backbone: {spec: vb.yaml, vars: {n: "${k + 1}"}, until: '
    text = HEAD + "vars: {k: 2}\nmodel:\n" + line
    doc = load_text(text + "}\n", str(tmp_path / "t.yaml"))
    offered = complete_at(text, doc, tmp_path / "t.yaml")
    assert offered == ["conv2d_1", "conv2d_2", "conv2d_3"]


BASE = """\
cnnspec: 1
name: base
input: {shape: [8, 8, 3]}
blocks:
  unit:
    params: {f: int}
    layers:
      - conv2d: {filters: "${f}", kernel_size: 3, padding: same}
        id: c
      - relu
model:
  - unit: 4
    id: u1
  - unit: 4
    id: u2
  - repeat: {times: 2, layers: [conv2d: {filters: 4, kernel_size: 1}]}
  - residual: {body: [conv2d: {filters: 4, kernel_size: 1}]}
  - parallel: {branches: [[relu], [relu]]}
  - global_avg_pool2d
"""
CUT = """\
cnnspec: 1
name: cut
input: {shape: [8, 8, 3]}
model:
  - backbone: {spec: base.yaml, until: u1.c}
  - residual:
      body: [conv2d: {filters: 4, kernel_size: 3, padding: same}]
      merge: max
  - global_avg_pool2d
"""


def _names(found: list[types.DocumentSymbol]) -> Iterator[tuple[str, str]]:
    for symbol in found:
        yield symbol.name, symbol.detail or ""
        yield from _names(symbol.children or [])


def test_a_cut_backbones_outline_and_a_combinators_hover(tmp_path: Path):
    """The outline lists what the cut keeps (no empty "→ ?" containers after it); a residual's
    hover says the residual once, with its merge (not a line for the merge layer)."""
    (tmp_path / "base.yaml").write_text(BASE, "utf-8")
    path = (tmp_path / "cut.yaml").resolve()
    documents = Documents()
    documents.set(path, CUT, 1)
    analysis = documents.analyze(path)
    assert analysis.compiled is not None and analysis.doc is not None, analysis.diagnostics
    outline = symbols.outline(analysis.doc, analysis.name, CUT, analysis.compiled.ir)
    found = list(_names(outline[:1]))
    assert [name for name, _ in found] == ["backbone_1", "unit backbone_1_u1", "backbone_1_u1_c"]
    assert found[-1][1].startswith("conv2d → (None, 8, 8, 4)")  # the cut layer, and nothing after

    row = CUT.split("\n").index("  - residual:")
    cursor = path_at(analysis.doc, analysis.name, row + 1, 5)
    assert cursor is not None
    index = TreeIndex(analysis.compiled.ir)
    text = hover.hover_text(analysis.doc, analysis.compiled, index, cursor, CUT.split("\n")[row], 4)
    assert text is not None and "?" not in text and text.count("- output") == 1, text
    assert "`max`" in text


def test_an_outline_that_reaches_its_limit_says_how_many_items_it_leaves_out(tmp_path: Path, monkeypatch):
    """The outline stops at MAX_SYMBOLS; a repeat that filled it left the items after it (the
    pooling and the head of a 5,000-layer spec) out without a word, as if the spec had none."""
    monkeypatch.setattr(symbols, "MAX_SYMBOLS", 40)
    text = (
        "cnnspec: 1\nname: long\ninput: {shape: [8, 8, 1]}\nmodel:\n"
        "  - repeat: {times: 50, layers: [activation: relu]}\n"
        "  - global_avg_pool2d\n  - dense: {units: 2, activation: softmax}\n"
    )
    path = (tmp_path / "long.yaml").resolve()
    documents = Documents()
    documents.set(path, text, 1)
    analysis = documents.analyze(path)
    assert analysis.compiled is not None and analysis.doc is not None, analysis.diagnostics
    outline = symbols.outline(analysis.doc, analysis.name, text, analysis.compiled.ir)
    said = "more item(s) not listed: the outline stops at 40 symbols"
    assert outline[-1].name == f"… 2 {said}"  # the pooling and the head, counted
    assert any(name.endswith(said) for name, _ in _names(outline[:1]))  # (within the repeat too)
    # the spec as written (it does not compile): the same, at the model's items
    broken = text.replace("units: 2", "units: -2")
    documents.set(path, broken, 2)
    analysis = documents.analyze(path)
    assert analysis.compiled is None and analysis.doc is not None
    monkeypatch.setattr(symbols, "MAX_SYMBOLS", 2)
    names = [s.name for s in symbols.outline(analysis.doc, analysis.name, broken, None)]
    assert names == [
        "repeat",
        "global_avg_pool2d",
        "… 1 more item(s) not listed: the outline stops at 2 symbols",
    ]
