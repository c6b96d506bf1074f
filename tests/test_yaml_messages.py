"""YAML mistakes a new user makes, each reported where it is written with a hint that fits it.

PyYAML names the token it could not place, where it noticed it: one generic hint for every
"mapping values are not allowed here", a key without a colon reported at the comment below it,
a `{` never closed reported lines later. The loader reads the text around PyYAML's marks to say
which mistake it is (cnnspec/spec/yaml_errors.py, ``explain_yaml_error``), and the resolver tells a
kind written without its colon (``- dropout 0.3``) from a misspelt one.

Each case edits one line of a small valid spec and runs ``cnnspec validate`` through the CLI:
the first error line (``LINE:COL: error: PATH: MESSAGE``) and its hint are asserted exactly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cnnspec.cli.app import app

#: A valid spec whose lines the cases edit (line numbers in the comments on the right).
BASE = """\
cnnspec: 1
name: digits
description: Small CNN for 8x8 digits.
input: {shape: [8, 8, 1]}
vars: {width: 8, classes: 10}
model:
  # a comment under `model`, as the shipped specs have them
  - conv2d: {filters: "${width}", kernel_size: 3, padding: same}
  - batch_norm: {momentum: 0.9}
  - activation: relu
  - global_avg_pool2d
  - dropout: 0.3
  - dense: {units: "${classes}", activation: softmax}
training:
  epochs: 4
  batch_size: 32
"""
# lines: 1 cnnspec, 3 description, 5 vars, 6 model, 7 comment, 8 conv2d, 9 batch_norm,
# 10 activation, 11 global_avg_pool2d, 12 dropout, 13 dense, 15 epochs, 16 batch_size

FLATTEN_HINT = (
    "to give a layer `id`, `inputs` or `when`, write its kind with a colon "
    "(`- flatten:`) and put those keys on the following lines"
)
TAB_HINT = "YAML does not allow tabs for indentation; use spaces"

#: (id, line replaced, its replacement, "LINE:COL: error: PATH: MESSAGE", hint)
CASES = [
    # -- "mapping values are not allowed here" ------------------------------------------------
    (
        "key_without_colon",  # reported at the key above, where the colon is missing (was 16:13)
        "  epochs: 4",
        "  epochs 4",
        "15:9: error: invalid YAML: missing `:` after `epochs`",
        "write `epochs: 4`",
    ),
    (
        "no_space_after_colon",
        "  epochs: 4",
        "  epochs:4",
        "15:9: error: invalid YAML: missing space after `:` in `epochs:4`",
        "YAML needs a space after the colon: `epochs: 4`",
    ),
    (
        "value_with_colon",
        "description: Small CNN for 8x8 digits.",
        "description: Digits CNN: a small model",
        "3:24: error: invalid YAML: mapping values are not allowed here",
        'quote a value that contains `: `: `description: "Digits CNN: a small model"`',
    ),
    (
        "nested_mapping_inline",
        "  - dropout: 0.3",
        "  - dropout: rate: 0.3",
        "12:18: error: invalid YAML: mapping values are not allowed here",
        "write `dropout: {rate: 0.3}` or `dropout: 0.3`",
    ),
    (
        "unquoted_expression_with_colon",
        "  - dropout: 0.3",
        '  - dropout:\n      rate: ${ {"a": 0.1}["a"] }',
        "13:20: error: invalid YAML: mapping values are not allowed here",
        'quote the expression: `\'${ {"a": 0.1}["a"] }\'`',
    ),
    (
        "kind_without_colon_then_id",  # the case the flatten/id hint was written for: kept
        "  - global_avg_pool2d",
        "  - global_avg_pool2d\n    id: gap",
        "12:7: error: invalid YAML: mapping values are not allowed here",
        FLATTEN_HINT,
    ),
    (
        "kind_without_colon_then_parameter",
        "  - global_avg_pool2d",
        "  - global_avg_pool2d\n    keepdims: true",
        "12:13: error: invalid YAML: mapping values are not allowed here",
        "write the kind with a colon (`- global_avg_pool2d:`) and indent its parameters further "
        "than `global_avg_pool2d`",
    ),
    (
        "kind_without_colon_before_flow_with_colon_inside",  # was "quote a value…": nonsense
        '  - dense: {units: "${classes}", activation: softmax}',
        "  - dense {units: 10, activation: softmax}",
        "13:10: error: invalid YAML: missing `:` after `dense`",
        "write `dense: {…}`: a key needs `: ` before its value",
    ),
    (
        "continuation_line_with_colon",  # was "missing `:` after `A`" on the line above
        "description: Small CNN for 8x8 digits.",
        "description:\n  A small model for\n  digits: fast and small",
        "5:9: error: invalid YAML: mapping values are not allowed here",
        'quote a value that contains `: `: `description: "A small model for digits: fast and small"`',
    ),
    (
        "plain_value_running_on",  # a multi-line plain value, not a key without a colon
        "description: Small CNN for 8x8 digits.",
        "description: Small CNN\n  for digits\n  size: 8",
        "5:7: error: invalid YAML: mapping values are not allowed here",
        "check indentation and quoting",
    ),
    # -- "while scanning a simple key": reported at PyYAML's context mark ------------------------
    (
        "top_key_without_colon",  # was 7:3, the comment below `model`
        "model:",
        "model",
        "6:1: error: invalid YAML: could not find expected ':'",
        "add a colon after the key: `model:`",
    ),
    (
        "top_key_without_space_after_colon",  # was "add a colon after the key: `name: :digits`"
        "name: digits",
        "name:digits",
        "2:5: error: invalid YAML: missing space after `:` in `name:digits`",
        "YAML needs a space after the colon: `name: digits`",
    ),
    (
        "list_item_without_dash",  # was 12:3, the next item
        "  - global_avg_pool2d",
        "  global_avg_pool2d",
        "11:3: error: invalid YAML: could not find expected ':'",
        "start each list item with `- `: `- global_avg_pool2d`",
    ),
    # -- "while parsing a flow mapping/sequence": PyYAML's location, the bracket in the hint ----
    (
        "flow_mapping_never_closed",
        "  - batch_norm: {momentum: 0.9}",
        "  - batch_norm: {momentum: 0.9",
        "10:15: error: invalid YAML: expected ',' or '}', but got ':'",
        "the `{` opened at 9:17 is never closed; close it with `}`",
    ),
    (
        "unclosed_expression_in_flow_mapping",  # was quoting `${classes, activation: softmax}`
        '  - dense: {units: "${classes}", activation: softmax}',
        "  - dense: {units: ${classes, activation: softmax}",
        "13:21: error: invalid YAML: expected ',' or '}', but got '{'",
        '`${classes` is missing its closing `}`; quote the expression: `"${classes}"`',
    ),
    (
        "unquoted_expression_with_comma_in_flow_mapping",  # a `,` inside its `(…)` is its own
        '  - dense: {units: "${classes}", activation: softmax}',
        "  - dense: {units: ${max(classes, 2)}, activation: softmax}",
        "13:21: error: invalid YAML: expected ',' or '}', but got '{'",
        'quote the expression: `"${max(classes, 2)}"`',
    ),
    (
        "flow_sequence_never_closed",
        "vars: {width: 8, classes: 10}",
        "vars: [8, 10",
        "6:6: error: invalid YAML: expected ',' or ']', but got ':'",
        "the `[` opened at 5:7 is never closed; close it with `]`",
    ),
    (
        "unquoted_expression_in_flow_mapping",
        '  - dense: {units: "${classes}", activation: softmax}',
        "  - dense: {units: ${classes}, activation: softmax}",
        "13:21: error: invalid YAML: expected ',' or '}', but got '{'",
        'quote the expression: `"${classes}"`',
    ),
    # -- "while parsing a block mapping" ----------------------------------------------------------
    (
        "kind_without_colon_before_flow",  # was 8:36, at the first `,`
        '  - conv2d: {filters: "${width}", kernel_size: 3, padding: same}',
        '  - conv2d {filters: "${width}", kernel_size: 3, padding: same}',
        "8:11: error: invalid YAML: missing `:` after `conv2d`",
        "write `conv2d: {…}`: a key needs `: ` before its value",
    ),
    (
        "item_indented_too_far",  # PyYAML's location is the mistake: kept
        "  - global_avg_pool2d",
        "    - global_avg_pool2d",
        "11:5: error: invalid YAML: expected <block end>, but found '-'",
        "check indentation and quoting",
    ),
    # -- tabs and quotes --------------------------------------------------------------------------
    (
        "tab_indentation",
        "  - activation: relu",
        "\t- activation: relu",
        "10:1: error: invalid YAML: found character '\\t' that cannot start any token",
        TAB_HINT,
    ),
    (
        "quote_never_closed",
        "  batch_size: 32",
        '  batch_size: "32',
        "17:1: error: invalid YAML: found unexpected end of stream",
        'the `"` opened at 16:15 is never closed',
    ),
    # -- the resolver: a kind whose colon was left out ------------------------------------------
    (
        "layer_kind_and_value_without_colon",
        "  - dropout: 0.3",
        "  - dropout 0.3",
        "12:5: error: model[4].dropout 0.3: unknown layer kind 'dropout 0.3'",
        "add a colon: `- dropout: 0.3`",
    ),
    (
        "layer_kind_and_value_without_a_blank_after_the_colon",  # one plain string to YAML
        "  - dropout: 0.3",
        "  - dropout:0.3",
        "12:5: error: model[4].dropout:0.3: unknown layer kind 'dropout:0.3'",
        "add a space after the colon: `- dropout: 0.3`",
    ),
    (
        "misspelt_layer_kind",  # a misspelling still gets "did you mean"
        "  - dropout: 0.3",
        "  - dropot",
        "12:5: error: model[4].dropot: unknown layer kind 'dropot'",
        "did you mean `dropout`?",
    ),
]


def validate(runner: Any, path: Path) -> tuple[str, list[str]]:
    """The first error line of ``cnnspec validate path`` without its file name, and its hints,
    after checking that it exits with 1."""
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 1, result.output
    lines = result.stderr.splitlines()
    prefix = f"{path}:"
    assert lines[0].startswith(prefix), result.stderr
    hints = [line.removeprefix("  hint: ") for line in lines if line.startswith("  hint: ")]
    return lines[0].removeprefix(prefix), hints


@pytest.mark.parametrize(("old", "new", "first", "hint"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_yaml_mistake_is_located_and_explained(
    runner: Any, write_spec: Any, old: str, new: str, first: str, hint: str
) -> None:
    assert BASE.count(old + "\n") == 1, old
    path = write_spec(BASE.replace(old + "\n", new + "\n"))
    line, hints = validate(runner, path)
    assert line == first
    assert hints[:1] == [hint]


def test_base_spec_is_valid(runner: Any, write_spec: Any) -> None:
    """The cases' starting point compiles, so each error is the edit's."""
    result = runner.invoke(app, ["validate", str(write_spec(BASE))])
    assert result.exit_code == 0, result.output


def test_bracket_position_counts_lines_as_editors_do(runner: Any, write_spec: Any) -> None:
    """A LINE SEPARATOR inside a quoted string is a line break to YAML, not to an editor: the
    `{` named in the hint is where the editor shows it, as the error's own location is."""
    text = BASE.replace("Small CNN for 8x8 digits.", '"Small CNN\u2028for 8x8 digits."').replace(
        "  - batch_norm: {momentum: 0.9}\n", "  - batch_norm: {momentum: 0.9\n"
    )
    line, hints = validate(runner, write_spec(text))
    assert line == "10:15: error: invalid YAML: expected ',' or '}', but got ':'"
    assert hints[:1] == ["the `{` opened at 9:17 is never closed; close it with `}`"]


def test_long_value_is_quoted_as_an_excerpt(runner: Any, write_spec: Any) -> None:
    """A hint quotes at most an excerpt of the line: a minified spec's line may be a megabyte."""
    text = BASE.replace("Small CNN for 8x8 digits.", "Digits " + "x" * 5000 + ": oops")
    line, hints = validate(runner, write_spec(text))
    assert line == "3:5021: error: invalid YAML: mapping values are not allowed here"
    assert hints[0].startswith('quote a value that contains `: `: `description: "Digits xxx')
    assert "…" in hints[0] and len(hints[0]) < 200


#: BASE with its list written at the indentation of `model` (as some editors write it).
ZERO_INDENT = BASE.replace("\n  - ", "\n- ").replace("\n  # a comment", "\n# a comment")


@pytest.mark.parametrize("newline", ["\n", "\r\n"], ids=["lf", "crlf"])
def test_key_without_colon_after_zero_indent_list(runner: Any, write_spec: Any, newline: str) -> None:
    """A key without its colon after a list at its own indentation is a key when lines
    indented further follow it (its children), not a list item without its `- `."""
    text = ZERO_INDENT.replace("training:\n", "training\n").replace("\n", newline)
    line, hints = validate(runner, write_spec(text))
    assert line == "14:1: error: invalid YAML: could not find expected ':'"
    assert hints[:1] == ["add a colon after the key: `training:`"]


def test_item_without_dash_in_zero_indent_list(runner: Any, write_spec: Any) -> None:
    """Between items at its indentation, a word without children is still a list item."""
    text = ZERO_INDENT.replace("- global_avg_pool2d\n", "global_avg_pool2d\n")
    line, hints = validate(runner, write_spec(text))
    assert line == "11:1: error: invalid YAML: could not find expected ':'"
    assert hints[:1] == ["start each list item with `- `: `- global_avg_pool2d`"]


def test_no_space_after_colon_with_bom(runner: Any, write_spec: Any) -> None:
    """`key:value` read as a key without a colon (the next line is a key) is told as the
    missing space, also after a byte order mark."""
    text = "\ufeff" + BASE.replace("name: digits\n", "name:t\n")
    line, hints = validate(runner, write_spec(text))
    assert line == "2:5: error: invalid YAML: missing space after `:` in `name:t`"
    assert hints[:1] == ["YAML needs a space after the colon: `name: t`"]


@pytest.mark.parametrize(
    ("text", "first"),
    [
        ("vars:\n  " + "k" * 1100 + ": 1\n", "17:3: error: invalid YAML: a key of 1100 characters"),
        ("vars: {" + "k" * 1100 + ": 1}\n", "16:8: error: invalid YAML: a key of 1100 characters"),
    ],
    ids=["block", "flow"],
)
def test_a_key_longer_than_yaml_reads_says_so(runner: Any, write_spec: Any, text: str, first: str) -> None:
    """PyYAML reads a key of at most 1024 characters: a longer one was "mapping values are not
    allowed here" (or "expected ',' or '}'") with the hint to check indentation and quoting,
    both of which were right."""
    line, hints = validate(runner, write_spec(BASE.replace("vars: {width: 8, classes: 10}\n", "") + text))
    assert line == first + "; YAML reads keys of at most 1024"
    assert hints == ["shorten the key"]
