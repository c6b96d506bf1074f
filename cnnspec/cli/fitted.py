"""A table laid out for the width of the terminal it is printed to, in which the figures and the
names a user types are never cut (no TensorFlow).

Rich's own layout of a table too wide for the terminal narrows the widest columns first and
then every column alike, cutting cells with ``…``: at 80 columns ``cnnspec zoo`` showed
densenet121, 169 and 201 all as ``densenet…`` and parameter counts as ``14,307,8…``, and at 60
columns ``cnnspec runs`` showed ``0.16…`` (or dropped whole columns to no width at all). Here
each column has a :data:`Role`: figures keep their width; free text gives way first, cut with
``…`` on its one line; then names, which fold onto the next line, so that none is lost
(:class:`FittedTable`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderResult
from rich.table import Table
from rich.text import Text

#: ``figure``: a number or a shape, never narrowed; ``name``: what a user types (a zoo variant,
#: a run folder), narrowed only after the free text; ``text``: the rest, which gives way first.
Role = Literal["figure", "name", "text"]

#: The order columns give way in: (role, the narrowest a column of it goes at that step, or
#: its own width where that is less), the widest column of the role first, so that they narrow
#: alike. Free text is cut with "…" on its line, to 5 cells and then to 2, before a name is
#: folded (at 80 columns a run folder, ``digits_cnn-20261207-180102``, stays whole beside runs'
#: four other columns of text); a name keeps 12 before free text goes to 1. (Folded text, as
#: first tried, made a row of ten lines of a date and a hash two cells wide.)
STEPS: tuple[tuple[Role, int], ...] = (("text", 5), ("text", 2), ("name", 12), ("text", 1), ("name", 1))


@dataclass(frozen=True)
class FittedColumn:
    """A column of a :class:`FittedTable`: its header, its :data:`Role` and where its cells sit."""

    header: str
    role: Role
    justify: Literal["left", "right"] = "left"


class FittedTable:
    """A table whose rows (Rich markup, as ``Table.add_row`` takes them) are laid out when it is
    printed, for the width it gets (:func:`fit`): as Rich lays them out where they fit; else
    each column as wide as :data:`STEPS` leaves it, folding what is wider, never with ``…``."""

    def __init__(self, title: str, columns: Sequence[FittedColumn]) -> None:
        self.title = title
        self.columns = list(columns)
        self.rows: list[tuple[str, ...]] = []

    def add_row(self, *cells: str) -> None:
        self.rows.append(cells)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield self.table(options.max_width)

    def table(self, width: int | None = None) -> Table:
        """The Rich table for ``width`` cells (``None``: as wide as it needs)."""
        natural = [
            max([cell_len(column.header), *(Text.from_markup(row[i]).cell_len for row in self.rows)])
            for i, column in enumerate(self.columns)
        ]
        # each column's padding (a cell on either side) and the lines between and around them
        frame = 3 * len(self.columns) + 1
        roles = [column.role for column in self.columns]
        widths = natural if width is None else fit(natural, roles, width - frame)
        table = Table(title=self.title, title_justify="left")
        for column, wide, own in zip(self.columns, widths, natural, strict=True):
            table.add_column(
                column.header,
                justify=column.justify,
                # free text is cut with "…" on its one line (a date, a hash: a row of ten lines
                # for them was worse); a name folds onto the next line, never cut
                no_wrap=column.role != "name",
                overflow="fold" if column.role == "name" else "ellipsis",
                width=wide if wide < own else None,
            )
        for row in self.rows:
            table.add_row(*row)
        return table


def fit(natural: Sequence[int], roles: Sequence[Role], room: int) -> list[int]:
    """Column widths (without padding) that fit ``room`` cells: ``natural`` where they fit, else
    narrowed step by step as :data:`STEPS` says, the widest column of a step first. Figures are
    not narrowed here: only where they alone overflow does Rich narrow every column, and they
    fold too."""
    widths = list(natural)
    for role, floor in STEPS:
        while sum(widths) > room:
            narrowable = [
                i for i, kind in enumerate(roles) if kind == role and widths[i] > min(natural[i], floor)
            ]
            if not narrowable:
                break
            widths[max(narrowable, key=lambda i: widths[i])] -= 1
    return widths
