"""An existing file named by `report -o`, `visualize -o`, `schema -o`, `build -o` and
`build --plot` is replaced only when cnnspec wrote it (its mark), or with --force; else the
command refuses (exit 2), before any work, and the file is left byte for byte
(cli/outputs.py and the marks: the report's generator tag, the pictures' PNG text, the
schema's $id, the built model's zip member, the DOT beside a graph picture).

The TensorFlow-free tests show the refusal happens first by making the work itself fail (the
schema generator, write_report, write_history, build_model, Graphviz): the refusal is still
what the user sees. The marked (slow) ones share the reporting tests' one trained run."""

from __future__ import annotations

import io
import json
import os
import shutil
import stat
import zipfile
from pathlib import Path

import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from cnnspec.cli import schema as schema_module
from cnnspec.spec.schema import SCHEMA_ID
from tests.conftest import FIXTURES, TINY_DIGITS_MODEL
from tests.test_report_support import flat, invoke, trained_run

CELLS = FIXTURES / "codegen" / "cells.yaml"
USERS = b"the user's own file\n"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The reporting tests' tiny trained run (trained once per session; used only by the slow
    tests, which read it and write elsewhere)."""
    return trained_run(tmp_path_factory)


def refused(result, path: Path, option: str) -> None:
    """The command refused to replace ``path``: exit 2, the message names it and --force."""
    text = flat(result)
    assert result.exit_code == 2, result.output
    assert f"error: {path} already exists and carries no mark of cnnspec's" in text
    assert f"hint: pass --force to replace it, or choose another {option} (cnnspec replaces only" in text
    assert "one written by an earlier version carries no mark" in text


def listing(folder: Path) -> dict[str, bytes | None]:
    """Every entry of ``folder`` with its bytes: a refusal leaves no temp file and no change."""
    return {p.name: p.read_bytes() if p.is_file() else None for p in sorted(folder.iterdir())}


def png(software: str | None = None) -> bytes:
    """A small PNG the user made, with a ``Software`` text entry when given."""
    info = PngInfo()
    if software is not None:
        info.add_text("Software", software)
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), "red").save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


def software(path: Path) -> str | None:
    """The ``Software`` text of a PNG file, read with PIL (independently of cnnspec's reader)."""
    with Image.open(path) as image:
        return image.info.get("Software")


def fake_graphviz(folder: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A `dot` on the path that records that it ran (the returned file) and prints PICTURE."""
    bin_dir = folder / "bin"
    bin_dir.mkdir()
    ran = folder / "graphviz-ran"
    dot = bin_dir / "dot"
    dot.write_text(f"#!/bin/sh\ncat > /dev/null\ntouch '{ran}'\nprintf PICTURE\n")
    dot.chmod(dot.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return ran


def stand_in_model(folder: Path) -> Path:
    """A .keras that passes the checks before Keras (`graph` and `history` never load it)."""
    folder.mkdir(exist_ok=True)
    model = folder / "m.keras"
    with zipfile.ZipFile(model, "w") as archive:
        archive.writestr("config.json", "{}")
    return model


def fail(*args: object, **kwargs: object) -> None:
    raise AssertionError("the work started before the refusal")


# -- schema ------------------------------------------------------------------------------------


def test_schema_refuses_a_users_file_before_generating_the_schema(tmp_path, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    spec = out / "victim.yaml"
    spec.write_bytes(b"cnnspec: 1\nname: mine\n")
    other = out / "other.schema.json"  # a JSON Schema, but not cnnspec's
    other.write_text(json.dumps({"$schema": "x", "$id": "https://example.com/s.json", "title": "t"}))
    before = listing(out)
    monkeypatch.setattr(schema_module, "schema_text", fail)
    for path in (spec, other):
        refused(invoke("schema", "-o", path), path, "-o")
    assert listing(out) == before


def test_schema_force_replaces_a_users_file(tmp_path):
    spec = tmp_path / "victim.yaml"
    spec.write_bytes(USERS)
    result = invoke("schema", "-o", spec, "--force")
    assert result.exit_code == 0, result.output
    assert json.loads(spec.read_text())["$id"] == SCHEMA_ID


def test_schema_replaces_the_schemas_it_wrote(tmp_path):
    target = tmp_path / "cnnspec.schema.json"
    shutil.copy(FIXTURES.parent.parent / "schemas" / "cnnspec.schema.json", target)  # `make schema`
    for args in ([], [], ["--library"], []):  # the spec's and the library's schema are both ours
        result = invoke("schema", *args, "-o", target)
        assert result.exit_code == 0, result.output
    # what decides is the $id among the first keys: an edited file without it is the user's
    target.write_text(target.read_text().replace(SCHEMA_ID, "https://example.com/mine.json", 1))
    edited = target.read_bytes()
    refused(invoke("schema", "-o", target), target, "-o")
    assert target.read_bytes() == edited


# -- report --------------------------------------------------------------------------------------


def test_report_refuses_a_users_page_before_reading_the_run(tmp_path, monkeypatch):
    import cnnspec.reporting.html as html

    run = tmp_path / "run"
    run.mkdir()
    (run / "lock.json").write_text("{}")
    page = tmp_path / "keep.html"
    page.write_bytes(b'<html><head><meta name="generator" content="Hugo 0.1"></head></html>\n')
    before = listing(tmp_path)
    monkeypatch.setattr(html, "write_report", fail)
    refused(invoke("report", run, "-o", page), page, "--out")
    assert listing(tmp_path) == before


@pytest.mark.slow
@pytest.mark.xdist_group("reporting")
def test_report_force_replaces_a_users_page(run_dir, tmp_path):
    page = tmp_path / "keep.html"
    page.write_bytes(USERS)
    result = invoke("report", run_dir, "-o", page, "--force")
    assert result.exit_code == 0, result.output
    assert b'<meta name="generator" content="cnnspec ' in page.read_bytes()[:4096]


@pytest.mark.slow
@pytest.mark.xdist_group("reporting")
def test_report_replaces_the_page_it_wrote(run_dir, tmp_path):
    page = tmp_path / "r.html"
    for _ in range(2):
        result = invoke("report", run_dir, "-o", page)
        assert result.exit_code == 0, result.output
    # its generator tag is what makes it ours: without it, the page is refused
    text = page.read_text(encoding="utf-8").replace('name="generator"', 'name="author"', 1)
    page.write_text(text, encoding="utf-8")
    refused(invoke("report", run_dir, "-o", page), page, "--out")
    assert page.read_text(encoding="utf-8") == text


# -- visualize -----------------------------------------------------------------------------------


def test_visualize_refuses_a_users_picture_before_drawing(tmp_path, monkeypatch):
    import cnnspec.reporting.views as views

    model = stand_in_model(tmp_path / "model")
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.png").write_bytes(png("Matplotlib version3.11.2, https://matplotlib.org/"))
    (out / "history.png").write_bytes(png())
    (out / "graph.png").write_bytes(png())  # no graph.dot beside it: not drawn by cnnspec
    before = listing(out)
    monkeypatch.setattr(views, "write_history", fail)
    ran = fake_graphviz(tmp_path, monkeypatch)
    refused(invoke("visualize", model, "history", "-o", out / "keep.png"), out / "keep.png", "--out")
    refused(invoke("visualize", model, "history", "-o", out), out / "history.png", "--out")  # a folder
    graph = invoke("visualize", model, "graph", "--spec", CELLS, "-o", out / "graph.png")
    refused(graph, out / "graph.png", "--out")
    assert listing(out) == before and not ran.exists()


@pytest.mark.slow
@pytest.mark.xdist_group("reporting")
def test_visualize_force_replaces_a_users_picture(run_dir, tmp_path):
    picture = tmp_path / "keep.png"
    picture.write_bytes(png())
    result = invoke("visualize", run_dir, "history", "-o", picture, "--force")
    assert result.exit_code == 0, result.output
    assert software(picture) == "cnnspec"


@pytest.mark.slow
@pytest.mark.xdist_group("reporting")
def test_visualize_replaces_the_pictures_it_drew(run_dir, tmp_path):
    picture = tmp_path / "curves.png"
    for _ in range(2):
        result = invoke("visualize", run_dir, "history", "-o", picture)
        assert result.exit_code == 0, result.output
    assert software(picture) == "cnnspec"  # every matplotlib picture carries the mark
    result = invoke("visualize", run_dir, "samples", "-o", tmp_path)  # a view that loads the model
    assert result.exit_code == 0 and software(tmp_path / "samples.png") == "cnnspec"
    # predict's masks ("cnnspec predict") are cnnspec's too; another program's picture is not
    picture.write_bytes(png("cnnspec predict"))
    assert invoke("visualize", run_dir, "history", "-o", picture).exit_code == 0
    picture.write_bytes(png("cnnspecial paint"))
    refused(invoke("visualize", run_dir, "history", "-o", picture), picture, "--out")
    assert picture.read_bytes() == png("cnnspecial paint")


def test_visualize_graph_replaces_only_a_picture_it_marked(tmp_path, monkeypatch):
    """Graphviz's picture carries cnnspec's mark (an SVG comment, a PNG text): a picture is
    replaced when it has the mark, not because the DOT beside it is cnnspec's (a user may
    have drawn their own picture from that DOT); a PDF can carry no mark: only --force."""
    from cnnspec.analysis.graph import SVG_MARK

    model = stand_in_model(tmp_path / "model")
    fake_graphviz(tmp_path, monkeypatch)
    picture = tmp_path / "g.svg"
    picture.write_bytes(USERS)
    result = invoke("visualize", model, "graph", "--spec", CELLS, "-o", picture, "--force")
    assert result.exit_code == 0, result.output
    drawn = f"{SVG_MARK}\nPICTURE".encode()
    assert picture.read_bytes() == drawn
    result = invoke("visualize", model, "graph", "--spec", CELLS, "-o", picture)  # marked: ours
    assert result.exit_code == 0 and picture.read_bytes() == drawn
    # the user's own rendering of cnnspec's g.dot (which is there and marked) is theirs
    picture.write_bytes(b"my own drawing of g.dot")
    refused(invoke("visualize", model, "graph", "--spec", CELLS, "-o", picture), picture, "--out")
    assert picture.read_bytes() == b"my own drawing of g.dot"
    pdf = tmp_path / "g.pdf"
    assert invoke("visualize", model, "graph", "--spec", CELLS, "-o", pdf).exit_code == 0
    refused(invoke("visualize", model, "graph", "--spec", CELLS, "-o", pdf), pdf, "--out")
    assert invoke("visualize", model, "graph", "--spec", CELLS, "-o", pdf, "--force").exit_code == 0
    # a named DOT file is cnnspec's only with the mark in its own head
    dot = tmp_path / "notes.dot"
    dot.write_bytes(b"digraph mine {}\n")
    refused(invoke("visualize", model, "graph", "--spec", CELLS, "-o", dot), dot, "--out")
    assert dot.read_bytes() == b"digraph mine {}\n"


def test_graphviz_pictures_carry_a_mark_that_keeps_them_valid(tmp_path):
    from cnnspec.analysis.graph import mark_picture
    from cnnspec.cli.build import is_marked_picture

    marked = tmp_path / "g.png"
    marked.write_bytes(mark_picture(".png", png(None)))
    with Image.open(marked) as image:  # still a PNG PIL reads whole
        image.load()
    assert software(marked) == "cnnspec" and is_marked_picture(marked)
    plain = tmp_path / "plain.png"
    plain.write_bytes(png(None))
    assert not is_marked_picture(plain)
    svg = mark_picture(".svg", b'<?xml version="1.0"?>\n<svg/>\n')
    assert svg.startswith(b'<?xml version="1.0"?>\n<!-- generated by cnnspec -->\n<svg/>')
    assert mark_picture(".pdf", b"%PDF-1.4 ...") == b"%PDF-1.4 ..."


# -- build ---------------------------------------------------------------------------------------


def test_build_refuses_a_users_model_and_picture_before_building(tmp_path, monkeypatch):
    import cnnspec.backends.keras_builder as keras_builder

    monkeypatch.setattr(keras_builder, "build_model", fail)
    ran = fake_graphviz(tmp_path, monkeypatch)
    out = tmp_path / "out"
    trained = stand_in_model(out)  # a model cnnspec build did not save (a trained one, say)
    picture = out / "g.png"
    picture.write_bytes(png())
    before = listing(out)
    refused(invoke("build", CELLS, "-o", trained), trained, "-o")
    refused(invoke("build", CELLS, "-o", out / "new.keras", "--plot", picture), picture, "--plot")
    # the default NAME.keras is in the user's folder as well
    monkeypatch.chdir(out)
    shutil.copy(trained, out / "cells.keras")
    before["cells.keras"] = trained.read_bytes()
    refused(invoke("build", CELLS), Path("cells.keras"), "-o")
    assert listing(out) == before and not ran.exists()


@pytest.mark.slow
@pytest.mark.xdist_group("reporting")
def test_build_replaces_its_own_model_but_not_a_trained_one(run_dir, tmp_path, monkeypatch):
    from cnnspec.training.modelfile import load_model

    spec = tmp_path / "tiny.yaml"
    spec.write_text("cnnspec: 1\nname: tiny\n" + TINY_DIGITS_MODEL)
    built = tmp_path / "m.keras"
    fake_graphviz(tmp_path, monkeypatch)
    picture = tmp_path / "g.svg"  # (the fake Graphviz prints no PNG: an SVG takes the mark as text)
    for _ in range(2):  # the second build replaces the model and the picture of the first
        result = invoke("build", spec, "-o", built, "--plot", picture)
        assert result.exit_code == 0, result.output
    with zipfile.ZipFile(built) as archive:
        assert json.loads(archive.read("cnnspec-build.json"))["written_by"] == "cnnspec build"
    assert load_model(built).count_params() == 90  # Keras loads it, the extra member aside
    assert picture.read_bytes() == b"<!-- generated by cnnspec -->\nPICTURE"
    # the run's model.keras was saved by train, not build: kept, unless --force
    trained = tmp_path / "trained.keras"
    shutil.copy(run_dir / "model.keras", trained)
    kept = trained.read_bytes()
    refused(invoke("build", spec, "-o", trained), trained, "-o")
    assert trained.read_bytes() == kept
    result = invoke("build", spec, "-o", trained, "--force")
    assert result.exit_code == 0, result.output
    assert trained.read_bytes() != kept
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no temp files
