"""Which files a backbone's ``spec:`` may read: like an ``extends`` file, one inside the spec's
folder (or the packaged zoo), or anywhere with ``--allow-outside``; the resolved path counts,
and the working directory never widens the rule. A refusal is the loader's own located error
and hint. TensorFlow-free."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cnnspec.analysis.passes import compile_doc, compile_spec
from cnnspec.cli.app import app
from cnnspec.errors import SpecError
from cnnspec.lsp.documents import Documents
from cnnspec.spec.compose import load_spec

runner = CliRunner()

SECRET = """\
cnnspec: 1
name: secret_token_ABC123
input: {shape: [8, 8, 1]}
model:
  - conv2d: {filters: 4, kernel_size: 3}
    id: leaked
  - global_avg_pool2d
  - dense: {units: 3}
"""


def spec_naming(ref: str) -> str:
    """A spec whose first item is a backbone from ``ref``."""
    return f"""\
cnnspec: 1
name: evil
input: {{shape: [8, 8, 1]}}
model:
  - backbone: {{spec: {ref}}}
  - dense: {{units: 2}}
"""


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """The audit's layout: home/secret.yaml and home/dl/evil/spec.yaml naming ../../secret.yaml."""
    root = tmp_path / "home"
    (root / "dl" / "evil").mkdir(parents=True)
    (root / "secret.yaml").write_text(SECRET, encoding="utf-8")
    (root / "dl" / "evil" / "spec.yaml").write_text(spec_naming("../../secret.yaml"), encoding="utf-8")
    return root


def flat(text: str) -> str:
    """CLI output without the line breaks a narrow terminal puts in."""
    return " ".join(text.split())


def assert_refused(output: str, folder: Path) -> None:
    text = flat(output)
    assert "refusing to read '../../secret.yaml': it is outside the spec's folder" in text
    assert f"({folder.resolve()})" in output.replace("\n", "").replace(" ", "")  # even if wrapped
    assert "model[0].backbone.spec" in text
    assert "spec.yaml:5:22" in text  # located where the backbone names the file
    assert "hint: pass --allow-outside if you trust this file" in text
    assert "secret_token_ABC123" not in text and "leaked" not in text


@pytest.mark.parametrize("cwd", ["home", "evil"])
def test_a_backbone_spec_outside_the_folder_is_refused_from_any_working_directory(home, monkeypatch, cwd):
    """From home/ the file is under the working directory: that does not make it allowed."""
    folder = home / "dl" / "evil"
    monkeypatch.chdir(home if cwd == "home" else folder)
    spec = "dl/evil/spec.yaml" if cwd == "home" else "spec.yaml"
    result = runner.invoke(app, ["inspect", spec])
    assert result.exit_code == 1, result.output
    assert_refused(result.output, folder)


@pytest.mark.parametrize("cwd", ["home", "evil"])
def test_allow_outside_lets_a_backbone_spec_outside_the_folder_be_read(home, monkeypatch, cwd):
    monkeypatch.chdir(home if cwd == "home" else home / "dl" / "evil")
    spec = "dl/evil/spec.yaml" if cwd == "home" else "spec.yaml"
    result = runner.invoke(app, ["inspect", spec, "--allow-outside"])
    assert result.exit_code == 0, result.output
    assert "backbone_1_leaked" in flat(result.output)


def test_the_refusal_is_the_one_extends_gets(home, monkeypatch):
    """Same message, hint and code as an ``extends`` of the same file from the same place."""
    folder = home / "dl" / "evil"
    (folder / "ext.yaml").write_text("cnnspec: 1\nextends: ../../secret.yaml\n", encoding="utf-8")
    monkeypatch.chdir(home)
    errors = []
    for name in ("spec.yaml", "ext.yaml"):
        with pytest.raises(SpecError) as caught:
            compile_spec(folder / name)
        (error,) = caught.value.errors
        errors.append(error)
    backbone, extends = errors
    assert (backbone.message, backbone.hint, backbone.code) == (extends.message, extends.hint, extends.code)


@pytest.mark.parametrize("ref", ["base.yaml", "nets/base.yaml", "./nets/../base.yaml"])
def test_a_backbone_spec_inside_the_folder_is_read_from_anywhere(tmp_path, monkeypatch, ref):
    folder = tmp_path / "proj"
    (folder / "nets").mkdir(parents=True)
    (folder / "base.yaml").write_text(SECRET, encoding="utf-8")
    (folder / "nets" / "base.yaml").write_text(SECRET, encoding="utf-8")
    (folder / "spec.yaml").write_text(spec_naming(ref), encoding="utf-8")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for cwd in (elsewhere, folder, folder / "nets"):
        monkeypatch.chdir(cwd)
        result = runner.invoke(app, ["inspect", str(folder / "spec.yaml")])
        assert result.exit_code == 0, result.output
        assert "backbone_1_leaked" in flat(result.output)


def test_a_backbone_of_a_backbone_stays_inside_the_backbones_folder(tmp_path, monkeypatch):
    """A backbone spec in a subfolder names its own backbone relative to itself, inside it."""
    folder = tmp_path / "proj"
    (folder / "nets").mkdir(parents=True)
    (folder / "nets" / "inner.yaml").write_text(SECRET, encoding="utf-8")
    (folder / "nets" / "outer.yaml").write_text(
        spec_naming("inner.yaml").replace("dense: {units: 2}", "dense: {units: 5}"), encoding="utf-8"
    )
    (folder / "spec.yaml").write_text(spec_naming("nets/outer.yaml"), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    compiled = compile_spec(folder / "spec.yaml")
    assert compiled.ir.node("backbone_1_backbone_1_leaked") is not None


def test_a_backbone_named_by_an_extends_file_may_use_the_whole_spec_folder(tmp_path, monkeypatch):
    """The folder is the top-level spec's, as for the extends file's own includes."""
    folder = tmp_path / "proj"
    (folder / "bases").mkdir(parents=True)
    (folder / "secret.yaml").write_text(SECRET, encoding="utf-8")
    (folder / "bases" / "base.yaml").write_text(spec_naming("../secret.yaml"), encoding="utf-8")
    (folder / "spec.yaml").write_text("cnnspec: 1\nextends: bases/base.yaml\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert compile_spec(folder / "spec.yaml").ir.node("backbone_1_leaked") is not None
    # … but not above it, even from the working directory that holds it
    (folder / "bases" / "base.yaml").write_text(spec_naming("../../secret.yaml"), encoding="utf-8")
    (tmp_path / "secret.yaml").write_text(SECRET, encoding="utf-8")
    with pytest.raises(SpecError) as caught:
        compile_spec(folder / "spec.yaml")
    (error,) = caught.value.errors
    assert error.code == "outside" and "--allow-outside" in (error.hint or "")


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symbolic links")
def test_a_symbolic_link_inside_the_folder_pointing_outside_is_refused(home, monkeypatch):
    folder = home / "dl" / "evil"
    try:
        (folder / "link.yaml").symlink_to(home / "secret.yaml")
    except OSError:
        pytest.skip("cannot create symbolic links here")
    (folder / "spec.yaml").write_text(spec_naming("link.yaml"), encoding="utf-8")
    monkeypatch.chdir(home)
    result = runner.invoke(app, ["inspect", "dl/evil/spec.yaml"])
    assert result.exit_code == 1, result.output
    text = flat(result.output)
    assert "refusing to read 'link.yaml': it is outside the spec's folder" in text
    assert "hint: pass --allow-outside if you trust this file" in text
    allowed = runner.invoke(app, ["inspect", "dl/evil/spec.yaml", "--allow-outside"])
    assert allowed.exit_code == 0, allowed.output


def test_a_loaded_document_compiles_with_allow_outside_passed_explicitly(home, monkeypatch):
    """``compile_doc`` (reporting, search trials) takes the option too; without it, refused."""
    monkeypatch.chdir(home)
    path = home / "dl" / "evil" / "spec.yaml"
    with pytest.raises(SpecError):
        compile_doc(load_spec(path), path=path)
    compiled = compile_doc(load_spec(path), path=path, allow_outside=True)
    assert compiled.ir.node("backbone_1_leaked") is not None


def test_the_language_server_refuses_a_backbone_spec_outside_the_documents_folder(home, monkeypatch):
    monkeypatch.chdir(home)  # an editor's workspace root: the secret is under it
    path = (home / "dl" / "evil" / "spec.yaml").resolve()
    documents = Documents()
    documents.set(path, spec_naming("../../secret.yaml"), 1)
    analysis = documents.analyze(path)
    assert analysis.compiled is None
    (diagnostic,) = analysis.diagnostics
    assert "refusing to read '../../secret.yaml': it is outside the spec's folder" in diagnostic.message
    assert diagnostic.hint == "pass --allow-outside if you trust this file"
    assert diagnostic.loc is not None and (diagnostic.loc.line, diagnostic.loc.column) == (5, 22)
