"""``--force`` where a command writes no file it could replace is a usage error, not a flag
dropped without a word: a user who meant to replace a file would find it unchanged."""

from __future__ import annotations

from pathlib import Path

import pytest

from cnnspec.cli.app import app
from tests.conftest import SPECS_DIR

SPEC = str(SPECS_DIR / "basic_cnn.yaml")


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["codegen", SPEC, "--force"], "this command prints the code to standard output"),
        (["codegen", SPEC, "-o", "-", "-f"], "this command prints the code to standard output"),
        (["schema", "--force"], "this command prints the schema"),
        (["schema", "--check", "--force"], "this command compares with the committed file"),
        (["schema", "--kinds", "-f"], "this command lists the kinds"),
        (["lr-find", SPEC, "--force"], "this command draws nothing without it"),
        (["report", "runs/x", "--force"], "writes the run's own report.html"),
    ],
    ids=["codegen", "codegen-dash", "schema", "schema-check", "schema-kinds", "lr-find", "report"],
)
def test_force_without_a_file_to_replace_is_a_usage_error(runner, tmp_path, monkeypatch, args, words):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, args)
    text = " ".join(result.output.split())
    assert result.exit_code == 2 and words in text, result.output
    assert "leave out --force" in text and "Traceback" not in result.output
    assert not list(Path(tmp_path).iterdir())  # nothing written


def test_force_with_a_file_still_replaces_it(runner, tmp_path):
    target = tmp_path / "model.py"
    target.write_text("# mine\n")
    result = runner.invoke(app, ["codegen", SPEC, "-o", str(target), "--force", "--no-format"])
    assert result.exit_code == 0, result.output
    assert "def build_model" in target.read_text()
