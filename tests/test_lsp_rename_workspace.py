"""`cnnspec lsp` rename over the workspace (:mod:`cnnspec.lsp.workspace`): the specs on disk
that are not open, and another spec's backbone (its ``until:`` and ``vars:``); a rename asked
on an ``until:`` (plain or dotted) renames the id of the backbone's spec it names, or is
refused saying why (an automatic name, a layer's name, a zoo model).

On the pure function (:func:`cnnspec.lsp.rename.rename` with the workspace's ``folders``) as
``test_lsp_rename`` tests it, and over the wire as ``test_lsp`` does, with a server initialized
with a workspace folder. Each rename is applied to the files, which must then compile to the
same models. What is not a user's spec (a hidden folder, a Python environment, broken YAML)
is neither read nor edited; a workspace larger than the scan is refused, saying so; an open
document's unsaved text wins over its disk text. No TensorFlow: the server never imports it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from lsprotocol import types

from cnnspec.lsp import rename_checks, rename_symbols, workspace
from cnnspec.lsp.documents import check
from cnnspec.lsp.rename_symbols import RenameError
from cnnspec.resources import zoo_dir
from cnnspec.spec.linebreaks import LINE_BREAK
from tests.test_lsp_rename import LIBRARY, Workspace, model_of

pytest_lsp = pytest.importorskip("pytest_lsp", reason="the `lsp` extra is part of `dev`")
from pygls.exceptions import JsonRpcException  # noqa: E402
from pytest_lsp import ClientServerConfig, LanguageClient  # noqa: E402

from tests.test_lsp import SERVE, _make_client, answer, open_text, position  # noqa: E402

#: A spec using LIBRARY's block, with a var and ids another spec's backbone names.
BASE = """\
cnnspec: 1
name: base
use: [lib.yaml]
input: {shape: [8, 8, 3]}
vars: {width: 4}
model:
  - conv2d: {filters: "${width}", kernel_size: 3, padding: same}
    id: stem
  - double: {filters: 4}
    id: blk
  - global_avg_pool2d
  - dense: {units: 3, activation: softmax}
"""
#: Another user of LIBRARY, never opened.
OTHER = """\
cnnspec: 1
name: other
use: [lib.yaml]
input: {shape: [8, 8, 3]}
model:
  - double: {filters: 2, kernel: 1}
  - double: {filters: 3}
  - flatten
"""
#: A library using LIBRARY, and a spec using it: LIBRARY read through another file.
LIB2 = """\
cnnspec: 1
use: [lib.yaml]
blocks:
  quad:
    params: {filters: int}
    layers:
      - double: {filters: "${filters}"}
      - double: {filters: "${filters}"}
"""
DEEP = """\
cnnspec: 1
name: deep
use: [lib2.yaml]
input: {shape: [8, 8, 3]}
model:
  - quad: {filters: 2}
  - flatten
"""
#: A spec cutting BASE's model at its ids and setting its var.
CUT = """\
cnnspec: 1
name: cut
input: {shape: [8, 8, 3]}
model:
  - backbone: {spec: base.yaml, until: stem, vars: {width: 8}}
    id: body
  - flatten
"""
#: A cut at an id inside a block call of BASE (LIBRARY's `c`).
INNER = CUT.replace("name: cut", "name: inner").replace("until: stem", "until: blk.c")


class Folder(Workspace):
    """Open documents in a folder (:class:`Workspace`) beside specs on disk that are not open,
    renamed with the folder as the workspace."""

    @property
    def folders(self) -> tuple[Path, ...]:  # (the folder itself: the workspace)
        return (self.root,)

    def disk(self, name: str, text: str) -> Path:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, "utf-8")
        return path

    def file_text(self, file: str) -> str | None:
        """As the server's: the editor's text, else the one read last, else the disk's."""
        return self.documents.text((Path.cwd() / file).resolve()) or rename_symbols.default_text(file)

    def model(self, name: str) -> list[tuple[object, ...]]:
        """The model of ``name`` as the editor compiles it (open files: their editor text)."""
        analysis = check(self.root / name, self.documents.text)
        assert analysis.compiled is not None, analysis.diagnostics
        return model_of(analysis)

    def applied(
        self, name: str, needle: str, offset: int, new: str, others: tuple[str, ...] = ()
    ) -> dict[str, str]:
        """Rename, write the edits (to the editor's text of an open file, else to the disk)
        and check that the specs compile to the same models: the new texts by file name."""
        specs = sorted(
            str(p.relative_to(self.root))
            for p in workspace.scan([self.root]).files
            if "name:" in p.read_text()
        )
        before = {spec: self.model(spec) for spec in specs}
        texts: dict[str, str] = {}
        for file, places in self.rename(name, needle, offset, new, others).items():
            assert all(place.text == new for place in places)
            relative = str((Path.cwd() / file).resolve().relative_to(self.root))
            path = self.root / relative
            old = self.documents.text(path) or path.read_text("utf-8")
            texts[relative] = rename_checks.apply(old, places)
            if self.documents.text(path) is not None:
                self.put(relative, texts[relative])
            else:
                path.write_text(texts[relative], "utf-8")
        assert {spec: self.model(spec) for spec in specs} == before
        return texts


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)  # (locations name files relative to the working directory)
    return tmp_path


def test_a_library_block_is_renamed_in_the_specs_on_disk_that_call_it(folder: Path) -> None:
    space = Folder(folder, {"lib.yaml": LIBRARY, "base.yaml": BASE})
    for name, text in {"other.yaml": OTHER, "lib2.yaml": LIB2, "deep.yaml": DEEP}.items():
        space.disk(name, text)
    texts = space.applied("base.yaml", "- double", 3, "twice")
    assert set(texts) == {"lib.yaml", "base.yaml", "other.yaml", "lib2.yaml"}  # deep.yaml: no call
    assert "- twice: {filters: 2, kernel: 1}" in texts["other.yaml"]
    assert texts["lib2.yaml"].count('- twice: {filters: "${filters}"}') == 2
    assert (folder / "other.yaml").read_text("utf-8") == texts["other.yaml"]
    # a parameter: its keyword at the calls on disk too
    texts = space.applied("lib.yaml", "kernel: {", 0, "k")
    assert "- twice: {filters: 2, k: 1}" in texts["other.yaml"] and '"${k}"' in texts["lib.yaml"]


def test_an_id_another_spec_cuts_at_is_renamed_at_its_until(folder: Path) -> None:
    space = Folder(folder, {"lib.yaml": LIBRARY, "base.yaml": BASE})
    space.disk("cut.yaml", CUT)
    space.disk("inner.yaml", INNER)
    texts = space.applied("base.yaml", "id: stem", 4, "first")
    assert set(texts) == {"base.yaml", "cut.yaml"}
    assert "until: first, vars: {width: 8}" in texts["cut.yaml"]
    # an id inside a block call: only its segment of the hierarchical `until: blk.c`
    texts = space.applied("lib.yaml", "id: c", 4, "conv")
    assert "until: blk.conv" in texts["inner.yaml"] and "id: conv" in texts["lib.yaml"]
    # open, the spec that cuts is renamed as well (the open specs the server passes)
    space.put("cut.yaml", (folder / "cut.yaml").read_text("utf-8"))
    texts = space.applied("base.yaml", "id: first", 4, "head", others=("cut.yaml",))
    assert "until: head," in texts["cut.yaml"] and "until: head," in space.text("cut.yaml")


def test_a_spec_on_disk_the_rename_would_break_makes_it_refused(folder: Path) -> None:
    """A name through another spec's backbone item (``body.stem``) is not rewritten: the
    compiled check of that spec, on disk and not open, refuses the rename."""
    space = Folder(folder, {"lib.yaml": LIBRARY, "base.yaml": BASE})
    through = CUT.replace("until: stem, vars: {width: 8}", "until: blk").replace(
        "  - flatten\n", "  - add:\n    inputs: [body, body.stem]\n  - flatten\n"
    )
    space.disk("through.yaml", through)
    assert space.model("through.yaml")
    with pytest.raises(RenameError, match=r"would break through\.yaml"):
        space.rename("base.yaml", "id: stem", 4, "first")
    assert (folder / "through.yaml").read_text("utf-8") == through


def test_a_var_another_spec_sets_in_its_backbones_vars_is_renamed_there(folder: Path) -> None:
    space = Folder(folder, {"lib.yaml": LIBRARY, "base.yaml": BASE})
    space.disk("cut.yaml", CUT)
    texts = space.applied("base.yaml", "${width}", 3, "w")
    assert set(texts) == {"base.yaml", "cut.yaml"}
    assert "vars: {w: 4}" in texts["base.yaml"] and "vars: {w: 8}}" in texts["cut.yaml"]
    # a name the backbone spec already declares is refused there (its own vars)
    taken = BASE.replace("{width: 4}", "{width: 4, depth: 3}").replace("size: 3", 'size: "${depth}"')
    space.put("base.yaml", taken)
    with pytest.raises(RenameError, match="already exists"):
        space.rename("base.yaml", "width: 4", 0, "depth")


def test_what_is_no_users_spec_is_neither_read_nor_edited(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    space = Folder(folder, {"lib.yaml": LIBRARY, "base.yaml": BASE})
    loaded: list[Path] = []
    load = workspace.load

    def recording(
        path: Path, text: str, reader: Callable[[Path], str | None] | None
    ) -> workspace.Spec | None:
        loaded.append(path)
        return load(path, text, reader)

    monkeypatch.setattr(workspace, "load", recording)
    hidden = [
        space.disk(".hidden/spy.yaml", OTHER),
        space.disk(".venv/spy.yaml", OTHER),
        space.disk("env/spy.yaml", OTHER),
        space.disk("node_modules/pkg/spy.yaml", OTHER),
        space.disk("build/spy.yaml", OTHER),
    ]
    space.disk("env/pyvenv.cfg", "home = /usr\n")
    broken = space.disk("broken.yaml", "cnnspec: 1\nuse: [lib.yaml\nmodel: [: :\n")
    unrelated = space.disk("ci.yaml", "on: push\njobs: {lib: {runs-on: ubuntu}}\n")
    found = workspace.scan([folder]).files
    assert not set(hidden) & set(found) and {broken, unrelated} <= set(found)
    texts = space.applied("base.yaml", "- double", 3, "twice")
    assert set(texts) == {"lib.yaml", "base.yaml"}
    assert loaded == [broken]  # (it names `lib`, so it is tried; ci.yaml is no spec)
    assert all(path.read_text("utf-8") == OTHER for path in hidden)
    assert broken.read_text("utf-8").startswith("cnnspec: 1\nuse: [lib.yaml\n")


def test_the_packaged_zoo_is_neither_scanned_nor_renamed(folder: Path) -> None:
    assert workspace.scan([zoo_dir()]).files == []
    zoo = BASE.replace("use: [lib.yaml]", "use: [lib.yaml, zoo:blocks/squeeze_excite]").replace(
        "  - global_avg_pool2d\n", "  - squeeze_excite\n  - global_avg_pool2d\n"
    )
    space = Folder(folder, {"lib.yaml": LIBRARY, "base.yaml": zoo})
    with pytest.raises(RenameError, match=r"`squeeze_excite`: it is written in the packaged zoo file"):
        space.rename("base.yaml", "squeeze_excite\n", 2, "se")


def test_a_spec_on_disk_in_error_is_left_as_it_is(folder: Path) -> None:
    """As an open spec in error is (the server passes only those that compile)."""
    space = Folder(folder, {"lib.yaml": LIBRARY, "base.yaml": BASE})
    wrong = OTHER.replace("- flatten", "- flatten\n  - dense: {units: oops}")
    space.disk("wrong.yaml", wrong)
    assert set(space.rename("base.yaml", "- double", 3, "twice")) == {"lib.yaml", "base.yaml"}


def test_a_workspace_larger_than_the_scan_is_refused_saying_so(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    space = Folder(folder, {"lib.yaml": LIBRARY, "base.yaml": BASE})
    space.disk("other.yaml", OTHER)
    monkeypatch.setattr(workspace, "MAX_FILES", 2)
    found = workspace.scan([folder])
    assert found.capped and len(found.files) == 2
    with pytest.raises(RenameError, match=r"more than 2 YAML files .* rename refused"):
        space.rename("base.yaml", "- double", 3, "twice")
    monkeypatch.setattr(workspace, "MAX_FILES", 3)
    assert "other.yaml" in space.rename("base.yaml", "- double", 3, "twice")
    monkeypatch.setattr(workspace, "MAX_FOLDERS", 0)  # a home folder: not walked to its end
    with pytest.raises(RenameError, match=r"more than 3 YAML files \(or 0 folders\)"):
        space.rename("base.yaml", "- double", 3, "twice")
    monkeypatch.setattr(workspace, "MAX_FOLDERS", 10)
    monkeypatch.setattr(workspace, "MAX_BYTES", 10)  # too big: not read, the log says so
    assert not workspace.scan([folder]).files and len(workspace.scan([folder]).too_big) == 3


def test_an_open_documents_unsaved_text_wins_over_its_disk_text(folder: Path) -> None:
    """An open library is read as the editor holds it: the edit's lines are those of that
    text (its calls moved down two lines, one more call), not the disk's."""
    space = Folder(folder, {"lib.yaml": LIBRARY, "base.yaml": BASE})
    space.disk("deep.yaml", DEEP)
    space.put("lib2.yaml", LIB2)
    unsaved = LIB2.replace("blocks:\n", "# edited\n\nblocks:\n").replace(
        '      - double: {filters: "${filters}"}\n', '      - double: {filters: "${filters}"}\n' * 2, 1
    )
    space.documents.set(folder / "lib2.yaml", unsaved, 2)  # not saved
    changes = space.rename("base.yaml", "- double", 3, "twice")
    places = changes["lib2.yaml"]
    assert sorted(p.line for p in places) == [8, 9, 10]
    renamed = rename_checks.apply(unsaved, places)
    assert renamed.count("- twice:") == 3 and "# edited" in renamed
    assert (folder / "lib2.yaml").read_text("utf-8") == LIB2


def test_the_workspace_rename_never_imports_tensorflow(folder: Path) -> None:
    """(In this process: when an earlier test imported TensorFlow, there is nothing to tell.)"""
    before = {name for name in ("tensorflow", "keras") if name in sys.modules}
    space = Folder(folder, {"lib.yaml": LIBRARY, "base.yaml": BASE})
    space.disk("other.yaml", OTHER)
    space.disk("cut.yaml", CUT)
    assert set(space.rename("base.yaml", "- double", 3, "twice")) == {"lib.yaml", "base.yaml", "other.yaml"}
    assert {name for name in ("tensorflow", "keras") if name in sys.modules} == before


def test_an_id_is_renamed_from_the_until_that_cuts_at_it(folder: Path) -> None:
    """On a backbone item's ``until:``: the id of the backbone's spec it names (a dotted
    one: the segment under the cursor, ``blk`` in BASE or ``c`` in LIBRARY), renamed there,
    at every ``until:`` that names it and in every spec that reads its file, as a rename
    from the declaration is; the specs compile to the same models."""
    space = Folder(folder, {"lib.yaml": LIBRARY, "base.yaml": BASE, "inner.yaml": INNER})
    space.disk("cut.yaml", CUT)  # (on disk: renamed with the others)
    assert space.rename("inner.yaml", "until: blk.c", 7, "x") == space.rename("base.yaml", "id: blk", 4, "x")
    texts = space.applied("inner.yaml", "until: blk.c", 7, "body_block")  # on `blk`
    assert set(texts) == {"base.yaml", "inner.yaml"}
    assert "id: body_block" in texts["base.yaml"] and "until: body_block.c" in texts["inner.yaml"]
    texts = space.applied("inner.yaml", "until: body_block.c", 18, "conv")  # on `c`
    assert set(texts) == {"lib.yaml", "inner.yaml"}
    assert "id: conv" in texts["lib.yaml"] and "until: body_block.conv" in texts["inner.yaml"]
    space.put("cut.yaml", (folder / "cut.yaml").read_text("utf-8"))
    texts = space.applied("cut.yaml", "until: stem", 8, "first")  # a plain one
    assert set(texts) == {"base.yaml", "cut.yaml"} and "until: first, vars" in texts["cut.yaml"]
    assert "id: first" in space.text("base.yaml")  # (open: its editor text)


def test_from_an_until_the_spec_that_also_uses_the_library_is_renamed_with_the_backbone(
    folder: Path,
) -> None:
    """The spec cutting at ``blk.c`` reads LIBRARY itself (its own call of ``double``): the
    ``c`` of its ``until:`` is still the backbone's, renamed there and in the library."""
    both = INNER.replace("input:", "use: [lib.yaml]\ninput:").replace(
        "  - flatten\n", "  - double: {filters: 2}\n  - flatten\n"
    )
    space = Folder(folder, {"lib.yaml": LIBRARY, "base.yaml": BASE, "both.yaml": both})
    texts = space.applied("both.yaml", "until: blk.c", 11, "conv")
    assert set(texts) == {"lib.yaml", "both.yaml"} and "until: blk.conv" in texts["both.yaml"]


def test_from_an_until_the_backbones_spec_is_renamed_though_nothing_else_is_read(folder: Path) -> None:
    """No workspace folders and the backbone's spec not open: it is still read (the cut
    compiles with it) and renamed."""
    space = Workspace(folder, {"cut.yaml": CUT})
    for name, text in {"lib.yaml": LIBRARY, "base.yaml": BASE}.items():
        (folder / name).write_text(text, "utf-8")
    changes = space.rename("cut.yaml", "until: stem", 8, "first")
    stem, cut = position(BASE, "id: stem", 4), position(CUT, "until: stem", 7)
    assert {file: [(p.line, p.start, p.end) for p in places] for file, places in changes.items()} == {
        "base.yaml": [(stem.line, stem.character, stem.character + 4)],
        "cut.yaml": [(cut.line, cut.character, cut.character + 4)],
    }


def test_a_rename_from_the_declaration_reads_the_backbone_spec_of_a_spec_that_cuts(folder: Path) -> None:
    """LIBRARY's ``c`` renamed from its declaration, with INNER open (it cuts at ``blk.c``)
    and no workspace folders: BASE, INNER's backbone, is neither open nor scanned but reads
    LIBRARY and names ``c`` in its freeze pattern ``blk.c``. It is read as the backbone's spec
    is from an ``until:``: its pattern is rewritten, and it is compiled before and after with
    the others (INNER's compile takes BASE's model alone, not its patterns: it could not tell).
    Before, BASE was neither rewritten nor checked, and was left broken."""
    frozen = BASE + "training: {freeze: [blk.c]}\n"
    space = Workspace(folder, {"lib.yaml": LIBRARY, "inner.yaml": INNER})
    (folder / "base.yaml").write_text(frozen, "utf-8")
    changes = space.rename("lib.yaml", "id: c", 4, "conv", others=("inner.yaml",))
    c, pattern, until = (
        position(LIBRARY, "id: c", 4),
        position(frozen, "blk.c]", 4),
        position(INNER, "blk.c", 4),
    )
    assert {file: [(p.line, p.start, p.end) for p in places] for file, places in changes.items()} == {
        "lib.yaml": [(c.line, c.character, c.character + 1)],
        "base.yaml": [(pattern.line, pattern.character, pattern.character + 1)],
        "inner.yaml": [(until.line, until.character, until.character + 1)],
    }
    for name in ("lib.yaml", "inner.yaml"):
        space.put(name, rename_checks.apply(space.text(name), changes[name]))
    (folder / "base.yaml").write_text(rename_checks.apply(frozen, changes["base.yaml"]), "utf-8")
    assert "freeze: [blk.conv]" in (folder / "base.yaml").read_text("utf-8")
    for name in ("base.yaml", "inner.yaml"):
        analysis = check(folder / name, space.documents.text)
        assert analysis.compiled is not None and not analysis.diagnostics, analysis.diagnostics
    # and it is compiled: a glob of its own (never rewritten) that would then match nothing
    space.put("lib.yaml", LIBRARY)
    space.put("inner.yaml", INNER)
    (folder / "base.yaml").write_text(BASE + 'training: {freeze: ["*_c"]}\n', "utf-8")
    with pytest.raises(RenameError, match=r"would break base\.yaml: .*'\*_c' matches none"):
        space.rename("lib.yaml", "id: c", 4, "conv", others=("inner.yaml",))


def test_a_var_is_renamed_from_the_key_under_a_backbones_vars(folder: Path) -> None:
    """On ``width`` of CUT's ``vars: {width: 8}``: BASE's var (BASE not open), renamed there
    and at the key, as from its declaration; prepareRename's range is the key."""
    space = Folder(folder, {"cut.yaml": CUT})
    for name, text in {"lib.yaml": LIBRARY, "base.yaml": BASE}.items():
        space.disk(name, text)
    symbol = space.target("cut.yaml", "width: 8", 2)
    key = position(CUT, "width: 8")
    assert symbol is not None and symbol.name == "width"
    assert (symbol.at.line, symbol.at.start, symbol.at.end) == (key.line, key.character, key.character + 5)
    texts = space.applied("cut.yaml", "width: 8", 2, "w")
    assert set(texts) == {"base.yaml", "cut.yaml"}
    assert "vars: {w: 4}" in texts["base.yaml"] and '"${w}"' in texts["base.yaml"]
    assert "vars: {w: 8}}" in texts["cut.yaml"]


def test_an_until_that_names_no_id_is_refused_saying_why(folder: Path) -> None:
    """A call without an ``id`` (its automatic name: rename the block) and a layer's name (the
    compiler's, read from the compiled model) are refused with the reason; prepareRename
    offers nothing there. The id after an automatic name is one: renamed in the library."""
    unnamed = BASE.replace("    id: blk\n", "")
    space = Folder(folder, {"lib.yaml": LIBRARY, "base.yaml": unnamed})
    layer = _layer_names(folder / "base.yaml")[-2]  # (the global pooling's)
    for until, offset, reason in [
        ("double_1.c", 2, r"`double_1`: it is the automatic name of a call of block `double` in base\.yaml"),
        (layer, 2, rf"`{layer}`: in base\.yaml it is no id but the name the compiler gives a layer"),
    ]:
        space.put("cut.yaml", CUT.replace("until: stem", f"until: {until}"))
        assert space.target("cut.yaml", f"until: {until}", 7 + offset) is None
        with pytest.raises(RenameError, match=reason):
            space.rename("cut.yaml", f"until: {until}", 7 + offset, "other")
    space.put("cut.yaml", CUT.replace("until: stem", "until: double_1.c"))
    assert set(space.applied("cut.yaml", "until: double_1.c", 16, "conv")) == {"lib.yaml", "cut.yaml"}


def _layer_names(path: Path) -> list[str]:
    analysis = check(path, lambda _: None)
    assert analysis.compiled is not None, analysis.diagnostics
    return [node.name for node in analysis.compiled.ir.nodes]


def test_an_until_into_a_zoo_model_is_refused_saying_so(folder: Path) -> None:
    cut = CUT.replace(
        "spec: base.yaml, until: stem, vars: {width: 8}", "spec: zoo:efficientnet_b0, until: stem"
    )
    space = Folder(folder, {"cut.yaml": cut})
    with pytest.raises(RenameError, match="cut point of the packaged zoo model zoo:efficientnet_b0"):
        space.rename("cut.yaml", "until: stem", 8, "first")
    # a key of its `vars:` (it said "nothing to rename here: only ids, blocks, vars, …", on a var)
    keyed = cut.replace("until: stem", "until: stem, vars: {include_top: false}")
    space = Folder(folder, {"cut.yaml": keyed})
    with pytest.raises(
        RenameError, match=r"`include_top`: it is written in the packaged zoo file .*efficientnet"
    ):
        space.rename("cut.yaml", "include_top", 2, "top")


# -- over the wire --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The workspace folder of the server below: only what each test writes into it."""
    return tmp_path_factory.mktemp("workspace").resolve()


@pytest_lsp.fixture(
    scope="module",
    config=ClientServerConfig(server_command=[sys.executable, "-c", SERVE], client_factory=_make_client),
)
async def client(lsp_client: LanguageClient, served: Path):
    folder = types.WorkspaceFolder(uri=served.as_uri(), name="workspace")
    await lsp_client.initialize_session(
        types.InitializeParams(capabilities=types.ClientCapabilities(), workspace_folders=[folder])
    )
    yield
    await lsp_client.shutdown_session()


def edited(text: str, edits: list[types.TextEdit]) -> str:
    """``text`` with ``edits`` (on one line each, UTF-16 columns of ASCII text) made."""
    lines = LINE_BREAK.split(text)
    for edit in sorted(edits, key=lambda e: (e.range.start.line, e.range.start.character), reverse=True):
        row, line = edit.range.start.line, lines[edit.range.start.line]
        lines[row] = line[: edit.range.start.character] + edit.new_text + line[edit.range.end.character :]
    return "\n".join(lines)


def models(folder: Path, names: list[str]) -> list[list[tuple[object, ...]]]:
    return [model_of(check(folder / name, lambda _: None)) for name in names]


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.xdist_group("lsp")
async def test_a_rename_over_the_wire_covers_the_specs_on_disk(client: LanguageClient, served: Path):
    """A block renamed from an open spec: the edit names the URI of a spec on disk that is not
    open; an id renamed in an open spec: the `until:` of one on disk that cuts at it. The
    renamed files compile to the same models."""
    files = {"lib.yaml": LIBRARY, "base.yaml": BASE, "other.yaml": OTHER, "cut.yaml": CUT}
    for name, text in files.items():
        (served / name).write_text(text, "utf-8")
    specs = ["base.yaml", "other.yaml", "cut.yaml"]
    before = models(served, specs)
    base = served / "base.yaml"
    await open_text(client, base, BASE)
    doc = types.TextDocumentIdentifier(base.as_uri())
    at = position(BASE, "- double", 3)
    edit = await answer(client.text_document_rename_async(types.RenameParams(doc, at, "twice")))
    assert set(edit.changes) == {(served / name).as_uri() for name in ("lib.yaml", "base.yaml", "other.yaml")}
    for name in ("lib.yaml", "base.yaml", "other.yaml"):
        (served / name).write_text(edited(files[name], edit.changes[(served / name).as_uri()]), "utf-8")
    assert "- twice: {filters: 2, kernel: 1}" in (served / "other.yaml").read_text("utf-8")

    text = (served / "base.yaml").read_text("utf-8")
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            types.VersionedTextDocumentIdentifier(version=2, uri=base.as_uri()),
            [types.TextDocumentContentChangeWholeDocument(text=text)],
        )
    )
    at = position(text, "id: stem", 4)
    edit = await answer(client.text_document_rename_async(types.RenameParams(doc, at, "first")))
    assert set(edit.changes) == {base.as_uri(), (served / "cut.yaml").as_uri()}
    base.write_text(edited(text, edit.changes[base.as_uri()]), "utf-8")
    cut = edited(CUT, edit.changes[(served / "cut.yaml").as_uri()])
    assert "until: first," in cut
    (served / "cut.yaml").write_text(cut, "utf-8")
    assert models(served, specs) == before
    client.text_document_did_close(types.DidCloseTextDocumentParams(doc))


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.xdist_group("lsp")
async def test_over_the_wire_an_open_documents_unsaved_text_wins(client: LanguageClient, served: Path):
    """An open spec's edits are ranges of the text the editor holds, not of the disk's."""
    (served / "two").mkdir()  # (beside the other test's files, which read another lib.yaml)
    (served / "two" / "lib.yaml").write_text(LIBRARY, "utf-8")
    user = served / "two" / "user.yaml"
    user.write_text(OTHER, "utf-8")
    unsaved = OTHER.replace("model:\n", "# not saved\n\nmodel:\n")
    await open_text(client, user, unsaved)
    lib = served / "two" / "lib.yaml"
    await open_text(client, lib, LIBRARY)
    doc = types.TextDocumentIdentifier(lib.as_uri())
    edit = await answer(
        client.text_document_rename_async(types.RenameParams(doc, position(LIBRARY, "double:", 1), "dbl"))
    )
    renamed = edited(unsaved, edit.changes[user.as_uri()])
    assert renamed == unsaved.replace("- double:", "- dbl:")
    assert user.read_text("utf-8") == OTHER
    for path in (user, lib):
        client.text_document_did_close(
            types.DidCloseTextDocumentParams(types.TextDocumentIdentifier(path.as_uri()))
        )


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.xdist_group("lsp")
async def test_over_the_wire_a_rename_from_an_until_edits_the_backbones_spec(
    client: LanguageClient, served: Path
):
    """prepareRename on a dotted ``until:`` gives the segment under the cursor; the rename
    edits the file declaring that id (not open) and the ``until:``; an automatic name there
    is refused with the reason as the error's message."""
    (served / "three").mkdir()
    for name, text in {"lib.yaml": LIBRARY, "base.yaml": BASE}.items():
        (served / "three" / name).write_text(text, "utf-8")
    inner = served / "three" / "inner.yaml"
    inner.write_text(INNER, "utf-8")
    await open_text(client, inner, INNER)
    doc = types.TextDocumentIdentifier(inner.as_uri())
    at = position(INNER, "until: blk.c", 11)
    prepared = await answer(client.text_document_prepare_rename_async(types.PrepareRenameParams(doc, at)))
    assert prepared.placeholder == "c" and prepared.range.start == position(INNER, "until: blk.c", 11)
    edit = await answer(client.text_document_rename_async(types.RenameParams(doc, at, "conv")))
    lib = served / "three" / "lib.yaml"
    assert set(edit.changes) == {lib.as_uri(), inner.as_uri()}
    assert "id: conv" in edited(LIBRARY, edit.changes[lib.as_uri()])
    assert "until: blk.conv" in edited(INNER, edit.changes[inner.as_uri()])
    unnamed = INNER.replace("until: blk.c", "until: double_1.c")
    (served / "three" / "base.yaml").write_text(BASE.replace("    id: blk\n", ""), "utf-8")
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            types.VersionedTextDocumentIdentifier(version=2, uri=inner.as_uri()),
            [types.TextDocumentContentChangeWholeDocument(text=unnamed)],
        )
    )
    with pytest.raises(JsonRpcException, match="automatic name of a call of block `double`"):
        await answer(
            client.text_document_rename_async(
                types.RenameParams(doc, position(unnamed, "until: double_1", 9), "first")
            )
        )
    client.text_document_did_close(types.DidCloseTextDocumentParams(doc))
