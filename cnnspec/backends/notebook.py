"""``cnnspec codegen SPEC -o NAME.ipynb``: the generated code as a Jupyter notebook.

The notebook holds the very code of the ``.py`` file, checked as that is (the whitelist and
the comparison with the compiled model run on the whole text before it is split), in cells:
the header and imports first; a training script's sections (its ``# -- data ---`` lines), each
after a Markdown heading; a model module's functions one per cell. The ``if __name__ ==
"__main__":`` block a script ends with becomes a last cell that calls ``main([...])`` with the
options as a list (a notebook has no command line: ``--epochs 5`` is ``main(["--epochs",
"5"])``); a model module's last cell builds the model and prints its summary.

The file is nbformat 4.5 JSON (cell ids included), written without the ``nbformat`` package:
the format is a few plain keys, and Jupyter, VS Code and Colab open it as it is.
"""

from __future__ import annotations

import ast
import itertools
import json
import re
from dataclasses import dataclass

#: A script's section line: ``# -- data ---…`` (templates/_training_code.j2 and the scripts).
SECTION = re.compile(r"^# -- (?P<name>.+?) -+$")
MAIN_GUARD = 'if __name__ == "__main__":'


@dataclass(frozen=True)
class Cell:
    kind: str  # "code" or "markdown"
    text: str


def _lines(text: str) -> list[str]:
    return text.splitlines(keepends=True)


def _without_main_guard(code: str) -> str:
    """The code less its ``if __name__ == "__main__":`` block (the last top-level statement)."""
    tree = ast.parse(code)
    last = tree.body[-1] if tree.body else None
    if isinstance(last, ast.If) and ast.unparse(last.test) == "__name__ == '__main__'":
        kept = _lines(code)[: last.lineno - 1]
        return "".join(kept).rstrip("\n") + "\n"
    return code


def _function_starts(code: str) -> list[int]:
    """The 0-based line of each top-level function or class, with the comments just above it."""
    lines = code.splitlines()
    starts = []
    for node in ast.parse(code).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            first = (node.decorator_list[0].lineno if node.decorator_list else node.lineno) - 1
            while first > 0 and lines[first - 1].startswith("#"):
                first -= 1
            starts.append(first)
    return starts


def cells(code: str, *, script: bool, title: str, run_call: str) -> list[Cell]:
    """The notebook's cells for the generated ``code`` (``script``: a training program, split
    at its sections; else a model module, split at its functions); ``run_call``: the last
    cell's code."""
    body = _without_main_guard(code)
    lines = _lines(body)
    if script:
        starts = [i for i, line in enumerate(lines) if SECTION.match(line.rstrip("\n"))]
    else:
        starts = _function_starts(body)
    out = [Cell("markdown", title)]
    bounds = [0, *starts, len(lines)]
    for begin, end in itertools.pairwise(bounds):
        chunk = "".join(lines[begin:end]).strip("\n")
        if not chunk:
            continue
        heading = SECTION.match(lines[begin].rstrip("\n")) if script and begin in starts else None
        if heading:
            out.append(Cell("markdown", f"## {heading.group('name')}"))
        out.append(Cell("code", chunk))
    out.append(Cell("code", run_call))
    return out


def notebook_json(parts: list[Cell]) -> str:
    """nbformat 4.5 JSON of ``parts``: a Python 3 kernel, no outputs, ids ``cell-1`` …"""
    document = {
        "cells": [
            {
                "cell_type": part.kind,
                "id": f"cell-{index}",
                "metadata": {},
                "source": _lines(part.text),
                **({"execution_count": None, "outputs": []} if part.kind == "code" else {}),
            }
            for index, part in enumerate(parts, start=1)
        ],
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    return json.dumps(document, indent=1, ensure_ascii=False) + "\n"


def code_of(notebook: str) -> str:
    """The code cells of a notebook, joined as a file (for checks and tests)."""
    document = json.loads(notebook)
    blocks = ["".join(c["source"]) for c in document["cells"] if c["cell_type"] == "code"]
    return "\n\n".join(blocks) + "\n"
