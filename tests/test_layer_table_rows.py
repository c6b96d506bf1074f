"""The layer table of many rows is written line by line into lines Rich lays out for a sample of
them (:meth:`SummaryTable.many_rows`): what it prints is, byte for byte, what Rich's table of
every row prints, on a plain and a colour terminal, at every width that keeps the names' column
(a row Rich would break over lines, or a terminal too narrow, gets Rich's own table)."""

from __future__ import annotations

import functools
from io import StringIO
from pathlib import Path

import pytest
from rich.console import Console

from cnnspec.analysis.passes import compile_spec
from cnnspec.api import compile_text
from cnnspec.cli import layer_table
from cnnspec.cli.layer_table import summary_table
from tests.conftest import FIXTURES, SPECS_DIR

#: Many rows with a long kind beside short ones and a long id,
#: in groups of a block called many times.
MANY = """\
cnnspec: 1
name: many
input: {shape: [8, 8, 1]}
blocks:
  unit:
    params: {f: int}
    layers:
      - conv2d: {filters: "${f}", kernel_size: 3, padding: same}
      - batch_norm
      - relu
model:
  - repeat: {times: 60, layers: [unit: {f: 4}]}
  - conv2d: {filters: 2, kernel_size: 1}
    id: a_rather_long_layer_identifier_to_cut_on_narrow_terminals
  - global_avg_pool2d
  - dense: {units: 3, activation: softmax}
"""


def printed(summary: dict, title: str, width: int, colour: bool, many_rows: int) -> str:
    layer_table.MANY_ROWS = many_rows
    buffer = StringIO()
    console = Console(
        width=width, file=buffer, color_system="truecolor" if colour else None, force_terminal=colour
    )
    console.print(summary_table(summary, title))
    return buffer.getvalue()


@pytest.fixture
def many_rows_at(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(layer_table, "MANY_ROWS", layer_table.MANY_ROWS)  # (put back after)


#: Each summary compiled once for the cases that print it (printing leaves it as it is).
SUMMARIES = {
    name: functools.cache(make)
    for name, make in {
        "resnet": lambda: compile_spec(SPECS_DIR / "resnet.yaml", []).summary(),
        "resnet50": lambda: compile_spec(SPECS_DIR / "resnet50.yaml", []).summary(),
        "frozen": lambda: compile_spec(FIXTURES / "codegen" / "frozen.yaml", []).summary(),
        "many": lambda: compile_text(MANY, "many.yaml").summary(),
    }.items()
}


@pytest.mark.parametrize("name", sorted(SUMMARIES))
@pytest.mark.parametrize("width", [60, 80, 101, 140, 300])
@pytest.mark.parametrize("colour", [False, True], ids=["plain", "colour"])
def test_many_rows_print_what_richs_table_prints(many_rows_at, name, width, colour):
    summary = SUMMARIES[name]()
    title = f"{name} ([bold]{name}.yaml[/bold]) with a title long enough to wrap on a narrow terminal"
    rich = printed(summary, title, width, colour, many_rows=10**9)
    assert printed(summary, title, width, colour, many_rows=0) == rich


def laid_out_by(summary: dict, width: int) -> str:
    """Which way the table is printed ``width`` cells wide: "lines" (the rows written into the
    sample's lines) or "rich" (Rich's table of every row)."""
    layer_table.MANY_ROWS = 0
    console = Console(width=width, file=StringIO(), color_system=None)
    rendered = list(summary_table(summary, "t").__rich_console__(console, console.options))
    return "rich" if len(rendered) == 1 and type(rendered[0]).__name__ == "Table" else "lines"


def test_rows_are_written_into_lines_where_each_takes_one(many_rows_at):
    """Where the names' column keeps its room, each row is written into the sample's lines; a
    terminal too narrow for it, or a group header that breaks after its ``/`` (ResNet-50's
    ``conv2/bottleneck_1/projection_1`` at 80 columns), gets Rich's table."""
    many = SUMMARIES["many"]()
    assert [laid_out_by(many, width) for width in (60, 80, 300)] == ["rich", "lines", "lines"]
    resnet50 = SUMMARIES["resnet50"]()
    assert [laid_out_by(resnet50, width) for width in (80, 300)] == ["rich", "lines"]


def test_a_large_table_prints_the_same_and_its_line_count(many_rows_at, tmp_path: Path):
    text = MANY.replace("times: 60", "times: 400")
    summary = compile_text(text, "many.yaml").summary()
    rich = printed(summary, "many", 120, False, many_rows=10**9)
    fast = printed(summary, "many", 120, False, many_rows=500)
    assert fast == rich and len(fast.splitlines()) > 1200
