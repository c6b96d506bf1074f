"""`cnnspec zoo` and `cnnspec runs` on a terminal narrower than their tables
(cnnspec/cli/fitted.py): the names a user types and the figures are never cut with "…"; the
free text gives way (cut with "…"), and a name folds onto the next line only where it must."""

from __future__ import annotations

from io import StringIO

import pytest
from rich.console import Console
from typer.testing import CliRunner

from cnnspec.analysis.zoo import catalog
from cnnspec.cli.app import app
from cnnspec.cli.fitted import fit
from tests.test_runs import make_run

RUNS = ("digits_cnn-20261207-180102", "digits_cnn-20261207-181530")


def printed(monkeypatch: pytest.MonkeyPatch, module: str, width: int, *args: str) -> str:
    """What the command prints to a terminal ``width`` cells wide (CliRunner's output is no
    terminal: there the tables get 160 columns, and nothing is cut)."""
    buffer = StringIO()
    console = Console(file=buffer, width=width, color_system=None, highlight=False, emoji=False)
    monkeypatch.setattr(f"cnnspec.cli.{module}.stdout", lambda: console)
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return buffer.getvalue()


def rows(text: str, first: int) -> list[list[list[str]]]:
    """Each body row of the table in ``text``: each column's pieces, one per printed line (a
    row starts where column ``first``, a figure, has one)."""
    found: list[list[list[str]]] = []
    for line in text.splitlines():
        if not line.startswith("│"):
            continue
        cells = [cell.strip() for cell in line.split("│")[1:-1]]
        if cells[first]:
            found.append([[] for _ in cells])
        for column, cell in enumerate(cells):
            if cell:
                found[-1][column].append(cell)
    return found


def test_zoo_keeps_every_name_and_figure_whole_at_80_columns(monkeypatch):
    text = printed(monkeypatch, "zoo", 80, "zoo")
    table = rows(text, first=3)
    entries = catalog()
    assert len(table) == len(entries)
    for row, entry in zip(table, entries, strict=True):
        assert row[0] == [entry.name]  # densenet121, 169 and 201 read `densenet…` here
        assert row[3] == [f"{entry.params:,}"]  # the parameter count on one line, whole (`14,307,8…`)
        assert row[5] == ["×".join(map(str, entry.input_shape))]
        assert not any("…" in piece for column in (0, 3, 4, 5, 6) for piece in row[column])


@pytest.mark.parametrize("width", [80, 60])
def test_runs_keeps_the_folder_names_and_figures_whole(monkeypatch, tmp_path, width):
    root = tmp_path / "runs"
    for name, accuracy in zip(RUNS, (0.95, 0.875), strict=True):
        make_run(root / name, lr=0.01, accuracy=accuracy, created="2026-12-07T18:01:02+0000")
    text = printed(monkeypatch, "runs", width, "runs", str(root))
    table = rows(text, first=4)
    assert not any("…" in piece for row in table for column in (0, 4, 5, 6) for piece in row[column])
    assert [row[4] for row in table] == [["0.9500"], ["0.8750"]]  # (`0.95…` at 60 columns)
    assert all(row[6] == ["12.5s"] for row in table)
    if width == 80:  # the folder to pass to compare and report, whole (it read `digits_…`)
        assert [row[0] for row in table] == [[name] for name in RUNS]
    else:
        assert ["".join(row[0]) for row in table] == list(RUNS)


def test_figures_never_give_way_text_before_names():
    roles = ["name", "text", "figure", "text"]
    assert fit([20, 10, 8, 6], roles, 60) == [20, 10, 8, 6]  # room for all: as they are
    assert fit([20, 10, 8, 6], roles, 36) == [20, 4, 8, 4]  # the widest text first
    assert fit([20, 10, 8, 6], roles, 30) == [18, 2, 8, 2]  # text to 2 cells, then the name
    assert fit([20, 10, 8, 6], roles, 10) == [1, 1, 8, 1]  # figures keep their width
