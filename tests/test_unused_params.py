"""The unused-param warning: a block parameter that no expression of its block reads, so every
call's argument for it changes nothing, as a var nothing reads is warned of (unused-var)."""

from __future__ import annotations

from pathlib import Path

import pytest
from lsprotocol import types
from typer.testing import CliRunner

from cnnspec.api import compile_spec, compile_text
from cnnspec.cli.app import app
from cnnspec.lsp import diagnostics
from cnnspec.lsp.documents import Documents
from cnnspec.spec.library import check_library

HIDDEN = """\
cnnspec: 1
name: hide
input: {shape: [8, 8, 3]}
blocks:
  b:
    params: {k: int, unused: {type: int, default: 1}}
    layers:
      - repeat: {times: 2, as: k, layers: [conv2d: {filters: "${k + 1}", kernel_size: 1}]}
model:
  - b: {k: 7, unused: 5}
  - flatten
"""


def test_a_parameter_hidden_by_a_loop_variable_or_never_read_is_warned_of_at_its_declaration():
    """`- b: {k: 7, unused: 5}` compiled without a word: every `${k}` read the loop variable,
    and nothing read `unused`."""
    hidden, unread = compile_text(HIDDEN, "hide.yaml").warnings
    assert (hidden.code, hidden.path, hidden.loc.line, hidden.loc.column) == (
        "unused-param",
        "blocks.b.params.k",
        6,
        14,
    )
    assert hidden.message == (
        "parameter 'k' of block `b` is never read: it is shadowed by the loop variable of the repeat "
        "at blocks.b.layers[0], which every `${k}` reads instead"
    )
    assert [note.message for note in hidden.notes] == [
        "the loop variable of the repeat at blocks.b.layers[0] is declared at blocks.b.layers[0].repeat.as "
        "(hide.yaml:8:28)"
    ]
    assert hidden.hint == (
        "rename the loop variable (`as:`) or the parameter where the parameter is meant; "
        "or remove the parameter"
    )
    assert (unread.code, unread.path, unread.loc.line, unread.loc.column) == (
        "unused-param",
        "blocks.b.params.unused",
        6,
        22,
    )
    assert (
        unread.message
        == "parameter 'unused' of block `b` is never read: every call's argument for it changes nothing"
    )
    assert (
        unread.hint == "read it with `${unused}` in the block, or remove it (and the calls' arguments for it)"
    )
    assert unread.notes == ()


@pytest.mark.parametrize(
    "body",
    [
        # in a layer, embedded in a string, in a `when`, in the block's `defaults`
        '    layers: [{conv2d: {filters: "${k}", kernel_size: 1}, id: "c${unused}"}]\n',
        '    layers:\n      - conv2d: {filters: "${k}", kernel_size: 1}\n        when: "${unused > 0}"\n',
        '    defaults: {conv2d: {kernel_size: "${unused}"}}\n    layers: [conv2d: {filters: "${k}"}]\n',
        # inside a repeat whose loop variable is another name, in its `times`
        '    layers:\n      - repeat: {times: "${unused}", as: i, layers: [conv2d: {filters: "${k + i}", '
        "kernel_size: 1}]}\n",
    ],
    ids=["layer", "when", "defaults", "repeat"],
)
def test_a_parameter_read_anywhere_in_its_block_is_not_warned_of(body):
    text = HIDDEN.replace(HIDDEN[HIDDEN.index("    layers:") : HIDDEN.index("model:")], body)
    assert compile_text(text, "t.yaml").warnings == []


def test_a_default_reading_a_parameter_counts_only_for_one_declared_before_it():
    # `b`'s default reads `a`, declared before it: `a` is read; `c`'s own default cannot read `c`
    text = HIDDEN.replace(
        "params: {k: int, unused: {type: int, default: 1}}",
        'params: {a: int, k: {type: int, default: "${a * 2}"}, c: {type: int, default: 1}}',
    ).replace("- b: {k: 7, unused: 5}", "- b: {a: 1}")
    text = text.replace(
        'as: k, layers: [conv2d: {filters: "${k + 1}"', 'as: i, layers: [conv2d: {filters: "${k + i}"'
    )
    assert [w.path for w in compile_text(text, "t.yaml").warnings] == ["blocks.b.params.c"]


def test_a_library_block_is_warned_of_in_the_library_not_in_the_spec_that_uses_it(tmp_path: Path):
    lib = tmp_path / "lib.yaml"
    lib.write_text("cnnspec: 1\n" + HIDDEN[HIDDEN.index("blocks:") : HIDDEN.index("model:")])
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "cnnspec: 1\nname: s\ninput: {shape: [8, 8, 3]}\nuse: [lib.yaml]\nmodel: [b: 7, flatten]\n"
    )
    assert compile_spec(spec).warnings == []
    result = CliRunner().invoke(app, ["validate", str(lib)])
    assert result.exit_code == 0, result.output
    assert (
        "lib.yaml:4:14: warning: blocks.b.params.k: parameter 'k' of block `b` is never read" in result.output
    )
    assert "lib.yaml:4:22: warning: blocks.b.params.unused: parameter 'unused'" in result.output


def test_the_language_server_shows_it_faded_out_at_the_parameter(tmp_path: Path):
    path = (tmp_path / "hide.yaml").resolve()
    documents = Documents()
    documents.set(path, HIDDEN, 1)
    documents.analyze(path)
    shown = diagnostics.for_document(documents, path)
    assert [(d.code, d.range.start.line, d.range.start.character) for d in shown] == [
        ("unused-param", 5, 13),
        ("unused-param", 5, 21),
    ]
    assert all(d.tags == [types.DiagnosticTag.Unnecessary] for d in shown)


def test_a_parameter_misspelt_where_it_is_read_is_named_in_the_hint(tmp_path: Path):
    # a block library checked on its own: `${kernl}` waits for a caller, and the warning is
    # what points at it
    lib = tmp_path / "lib.yaml"
    lib.write_text(
        "cnnspec: 1\nblocks:\n  b:\n    params: {kernel: {type: int, default: 3}}\n"
        '    layers: [conv2d: {filters: 4, kernel_size: "${kernl}"}]\n'
    )
    (warning,) = check_library(lib).warnings
    assert (warning.code, warning.path, warning.hint) == (
        "unused-param",
        "blocks.b.params.kernel",
        "the block reads `${kernl}`: did you mean `${kernel}` there?",
    )
