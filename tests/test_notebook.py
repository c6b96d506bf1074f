"""`cnnspec codegen SPEC -o NAME.ipynb` (cnnspec/backends/notebook.py): the checked code of the
.py file, in cells, as nbformat 4.5 JSON; a training script's last cell calls main() with the
options as a list, and its data paths resolve from the notebook's folder (no __file__ there)."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cnnspec.backends.notebook import code_of
from cnnspec.cli.app import app

ROOT = Path(__file__).resolve().parents[1]


def codegen(*args: str) -> str:
    result = CliRunner().invoke(app, ["codegen", *args])
    assert result.exit_code == 0, result.output
    return result.output


def without_main_guard(code: str) -> list[ast.stmt]:
    body = ast.parse(code).body
    assert ast.unparse(body[-1]).startswith("if __name__ == '__main__':")
    return body[:-1]


@pytest.mark.parametrize(
    ("spec", "script"), [("digits_cnn", True), ("resnet", False), ("shapes_multilabel", True)]
)
def test_the_notebook_holds_the_code_of_the_py_file(tmp_path: Path, spec: str, script: bool) -> None:
    flags = ["--script"] if script else []
    path = str(ROOT / "specs" / f"{spec}.yaml")
    said = codegen(path, *flags, "-o", str(tmp_path / "nb.ipynb"))
    assert "as a notebook" in said
    codegen(path, *flags, "-o", str(tmp_path / "code.py"))
    notebook = (tmp_path / "nb.ipynb").read_text("utf-8")
    document = json.loads(notebook)
    assert (document["nbformat"], document["nbformat_minor"]) == (4, 5)
    assert document["metadata"]["kernelspec"]["name"] == "python3"
    ids = [cell["id"] for cell in document["cells"]]
    assert len(set(ids)) == len(ids) and all(re.fullmatch(r"[a-zA-Z0-9-_]{1,64}", i) for i in ids)
    for cell in document["cells"]:
        assert cell["cell_type"] in ("code", "markdown") and cell["metadata"] == {}
        assert isinstance(cell["source"], list) and all(isinstance(line, str) for line in cell["source"])
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None
    code = (tmp_path / "code.py").read_text("utf-8")
    cells = [c for c in document["cells"] if c["cell_type"] == "code"]
    last = "".join(cells[-1]["source"])
    body = ast.parse(code_of(notebook)).body
    if script:  # the .py's statements, then main() with an options list instead of the guard
        # (but the docstring's first paragraphs: it tells how to run the cells)
        py_doc, nb_doc = ast.get_docstring(ast.parse(code)), ast.get_docstring(ast.Module(body, []))
        assert nb_doc is not None and py_doc is not None and "Run the cells in order" in nb_doc
        assert nb_doc.split("Run ")[0] == py_doc.split("Run ")[0]
        assert [ast.dump(s) for s in body[1:-1]] == [ast.dump(s) for s in without_main_guard(code)[1:]]
        assert ast.unparse(body[-1]) == "main([])" and 'main(["--epochs", "5"' in last
        headings = ["".join(c["source"]) for c in document["cells"] if c["cell_type"] == "markdown"]
        assert "## data" in headings and "## the program" in headings
    else:  # every function in a cell of its own, then the model built and summarized
        assert [ast.dump(s) for s in body[:-2]] == [ast.dump(s) for s in ast.parse(code).body]
        assert last == "model = build_model()\nmodel.summary()"
        assert sum("def " in "".join(c["source"]) for c in cells) == len(cells) - 2


@pytest.mark.slow
def test_a_notebook_trains_from_its_folder(tmp_path: Path) -> None:
    """Its cells run in order with no __file__ (as Jupyter runs them), in the notebook's
    folder: the default data path, relative to the notebook, is found there."""
    from tests.conftest import run_python
    from tests.test_codegen_parity import SPEC, write_images

    write_images(tmp_path / "images")
    (tmp_path / "parity.yaml").write_text(SPEC, encoding="utf-8")
    codegen(str(tmp_path / "parity.yaml"), "--script", "-o", str(tmp_path / "nb.ipynb"))
    assert "except NameError:" in (tmp_path / "nb.ipynb").read_text("utf-8")
    runner = tmp_path / "run_cells.py"
    runner.write_text(
        "import json, sys\n"
        "document = json.load(open(sys.argv[1]))\n"
        "cells = [''.join(c['source']) for c in document['cells'] if c['cell_type'] == 'code']\n"
        'cells[-1] = \'main(["--epochs", "1", "--out", "out"])\'\n'
        "space = {'__name__': '__main__'}\n"
        "for cell in cells:\n"
        "    exec(compile(cell, 'cell', 'exec'), space)\n",
        encoding="utf-8",
    )
    ran = run_python(runner, "nb.ipynb", cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr[-2000:]
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text("utf-8"))
    assert metrics["epochs"] == 1 and 0 <= metrics["test_accuracy"] <= 1
