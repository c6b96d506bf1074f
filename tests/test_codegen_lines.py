"""Long lines in generated code (backends/codegen_lines.py): strings and comments that come from
the spec (a data path in a ``--help`` text, a var's string, the spec's file name in the header)
are folded so that the code passes ruff's line length (E501), with the same meaning."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from cnnspec.api import compile_spec
from cnnspec.backends.codegen_lines import LINE_LENGTH, fold_long_lines
from cnnspec.backends.python_emitter import generate_code
from tests.test_codegen import ruff_check

WORDS = " ".join(f"word{i}" for i in range(40))
PATH = "datasets/" + "/".join(f"folder_{i}" for i in range(14)) + "/flowers.npz"


def accepted(line: str) -> bool:
    """Ruff's E501 accepts a line within the length, or one of a single word."""
    return len(line) <= LINE_LENGTH or len(line.split()) == 1


def same_code(before: str, after: str) -> None:
    assert ast.dump(ast.parse(after)) == ast.dump(ast.parse(before))
    assert all(accepted(line) for line in after.splitlines()), after


@pytest.mark.parametrize(
    "source",
    [
        f'NOTE = "{WORDS}"\n',
        f'parser.add_argument("--data", help="the data (default: {PATH}, relative to this script)")\n',
        f'out = new_run_folder("runs/{"m" * 120}")\n',
        f'x = here / "{PATH}" if flag else None\n',
        f'def f():\n    return {{"key": "{WORDS}", "other": 1}}\n',
        f'help = (\n    "short part "\n    "{WORDS}"\n)\n',
        f"quoted = 'say \"{WORDS}\"'\n",
        f'escaped = "tab\\tnul\\x00 {WORDS} \\u2028"\n',
    ],
    ids=["constant", "keyword", "only-argument", "expression", "nested", "joined", "quotes", "escapes"],
)
def test_long_strings_are_folded_with_the_same_value(source):
    folded = fold_long_lines(source)
    assert folded != source
    same_code(source, folded)
    assert fold_long_lines(folded) == folded


def test_a_long_only_argument_gets_no_extra_parentheses(tmp_path):
    folded = fold_long_lines(f'out = Path("runs/{"m" * 120} of a model")\n')
    assert folded == f'out = Path(\n    "runs/{"m" * 120}"\n    " of a model"\n)\n'
    assert ruff_check("from pathlib import Path\n\n" + folded, tmp_path) == ""


def test_long_comments_are_wrapped_at_spaces_and_long_words_cut():
    source = f"# Generated from {PATH} {WORDS} {'z' * 150}\nx = 1\n    # {WORDS}\n"
    folded = fold_long_lines(source)
    assert all(len(line) <= LINE_LENGTH for line in folded.splitlines())
    assert "".join(folded.replace("#", "").split()) == "".join(source.replace("#", "").split())
    assert folded.splitlines()[-1].startswith("    # ")


def test_short_code_docstrings_and_fstrings_are_left_as_they_are():
    source = (
        f'def f(name):\n    """{WORDS}\n    {WORDS}"""\n    return f"{{name}} {WORDS}"\n'
        f"x = 1\n"
        f'y = [\n    "{"a" * 150}",\n]\n'
    )
    assert fold_long_lines(source) == source
    assert fold_long_lines("x = 1\n") == "x = 1\n"


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("format_code", [True, False], ids=["formatted", "raw"])
@pytest.mark.parametrize("script", [False, True], ids=["module", "script"])
def test_specs_with_long_texts_generate_ruff_clean_code(tmp_path, script, format_code):
    """A data path of ~40 characters already made a ``--help`` line too long."""
    model = "model:\n  - flatten\n  - dense: {units: 2, activation: softmax}\n"
    specs = [
        write(
            tmp_path,
            "path.yaml",
            "cnnspec: 1\nname: m\ninput: {shape: [8, 8, 1]}\n"
            + model
            + 'data: {source: {npz: "datasets/flowers/flowers_train_2024_v2.npz"}}\n',
        ),
        write(
            tmp_path,
            "var.yaml",
            f'cnnspec: 1\nname: m\ninput: {{shape: [8, 8, 1]}}\nvars: {{note: "{"a" * 105}"}}\n'
            + model
            + f'data: {{source: {{npz: "{PATH}"}}}}\n',
        ),
        write(
            tmp_path,
            "a folder with a long name and spaces/and another one beside it/the spec of a model.yaml",
            "cnnspec: 1\nname: a_model_with_a_rather_long_name_of_sixty_characters_or_so_x\n"
            "input: {shape: [8, 8, 1]}\n" + model,
        ),
    ]
    for path in specs:
        text = generate_code(
            compile_spec(path),
            script=script,
            source_name=str(path),
            output=tmp_path / "train.py",
            format_code=format_code,
        ).text
        assert ruff_check(text, tmp_path, "check.py") == "", path.name
