"""Quick fixes (:mod:`cnnspec.lsp.fixes`): the edit each hint spells out, on the diagnostics
the editor's own check finds (``Documents.analyze``), applied to the text, which then checks
clean; and none where the hint names no replacement of the located token, or the token no
longer reads as the mistake. The server's code action is tested end to end in test_lsp.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from cnnspec.lsp.documents import Analysis, Documents
from cnnspec.lsp.fixes import Fix, fix_for

pytest.importorskip("pygls", reason="the `lsp` extra is part of `dev`")

HEAD = "cnnspec: 1\nname: t\ninput: {shape: [8, 8, 1]}\nmodel:\n"
TAIL = "  - flatten\n  - dense: {units: 2, activation: softmax}\n"


def analyzed(path: Path, text: str) -> Analysis:
    documents = Documents()
    documents.set(path, text, 1)
    return documents.analyze(path)


def fixes_of(path: Path, text: str) -> list[Fix]:
    analysis = analyzed(path, text)
    found = [fix_for(d, analysis.name, text) for d in analysis.diagnostics]
    return [fix for fix in found if fix is not None]


def applied(text: str, fix: Fix) -> str:
    lines = text.split("\n")
    line = lines[fix.line]
    lines[fix.line] = line[: fix.start] + fix.text + line[fix.end :]
    return "\n".join(lines)


@pytest.mark.parametrize(
    ("wrong", "right", "title"),
    [
        ("  - conv2d: {filters: 4, kernel_size: 3, activaton: relu}\n", "activation", "`activaton`"),
        ('  - conv2d: {filters: 4, kernel_size: 3, activation: "rleu"}\n', "relu", "`rleu`"),
        ("  - conv2d: {filters: 4, kernel_size: 3, activation: rleu}  # comment\n", "relu", "`rleu`"),
        ("  - maxpool2d: 2\n", "max_pool2d", "`maxpool2d`"),
        ("  - conv2d: {filters: 4, kernel_size: 3}\n  - dropout 0.3   # why\n", "dropout: 0.3", "Write"),
        ("  - conv2d: {filters: 4, kernel_size: 3}\n  - dropout:0.3\n", "dropout: 0.3", "Write"),
    ],
    ids=["key", "quoted value", "commented", "kind", "colon", "blank after colon"],
)
def test_a_fix_writes_what_the_hint_says_and_the_spec_checks_clean(tmp_path, wrong, right, title):
    text = HEAD + wrong + TAIL
    (fix,) = fixes_of(tmp_path / "t.yaml", text)
    assert fix.text == right and title in fix.title
    fixed = applied(text, fix)
    assert analyzed(tmp_path / "t.yaml", fixed).diagnostics == []
    assert fixed.count("#") == text.count("#")  # a comment kept


def test_an_alias_hint_is_fixed_too(tmp_path):
    """The hint for another library's name: "did you mean `learning_rate`? cnnspec spells …"."""
    text = HEAD + TAIL + "training: {optimizer: {adam: {lr: 0.01}}}\n"
    (fix,) = fixes_of(tmp_path / "t.yaml", text)
    assert (fix.title, fix.text) == ("Replace `lr` with `learning_rate`", "learning_rate")
    assert analyzed(tmp_path / "t.yaml", applied(text, fix)).diagnostics == []


def test_no_fix_where_the_token_is_more_than_the_word_or_no_longer_the_mistake(tmp_path):
    # an unknown var inside an expression: the token is the whole `${…}`
    text = HEAD.replace("model:", "vars: {width: 4}\nmodel:") + '  - dense: {units: "${widht}"}\n'
    analysis = analyzed(tmp_path / "t.yaml", text)
    assert analysis.diagnostics and all(fix_for(d, analysis.name, text) is None for d in analysis.diagnostics)
    # the text changed since the check: the located token no longer reads as the mistake
    text = HEAD + "  - dropout:0.3\n" + TAIL
    analysis = analyzed(tmp_path / "t.yaml", text)
    (diagnostic,) = analysis.diagnostics
    assert fix_for(diagnostic, analysis.name, text) is not None
    assert fix_for(diagnostic, analysis.name, text.replace("dropout:0.3", "flatten")) is None
    # located in another file (a library the spec uses): fixed there, not here
    assert fix_for(diagnostic, "other.yaml", text) is None
