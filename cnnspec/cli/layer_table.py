"""The layer table of ``cnnspec inspect`` and ``build --summary``, laid out for the width of
the terminal it is printed to: the numbers never give way, the layer names do (no TensorFlow)."""

from __future__ import annotations

from typing import Any, Literal

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderResult
from rich.measure import Measurement
from rich.segment import Segment
from rich.table import Table
from rich.text import Text

from cnnspec.analysis.report import human_count, shape_text
from cnnspec.cli.render import safe

#: The narrowest layer column worth keeping the kind and output shape whole for: ``…`` and
#: the last 9 characters of a name (``…_conv2d_1``). Below it a very narrow terminal wraps the
#: kind and shape too (the numbers never: they are what the table is for).
LAYER_MIN_WIDTH = 10
#: Rows from which the table is written line by line into lines Rich lays out for a sample of
#: them (:meth:`SummaryTable.many_rows`), rather than by Rich's table, which lays out and renders
#: every cell: 9,000 layers took 3.7 s of CPU that way, where `inspect --format json` takes 1.3 s.
MANY_ROWS = 500
#: What a name cut short starts with: its end stays, the part that tells siblings apart
#: (``conv2_bottleneck_1_conv2d_1`` and ``…_conv2d_2`` share the group's prefix).
ELLIPSIS = "…"


class LayerCell:
    """A layer-column cell: a name indented by its group ``level``, cut at the start to ``…``
    and its end when the column is narrower than it (Rich's own ellipsis cuts the end, the
    part that differs between the layers of a block). A ``group`` header (``conv2/block_1``)
    breaks after its ``/`` instead, a part on each line: its row has nothing else to show.
    Never read as markup."""

    def __init__(self, name: str, level: int = 0, *, group: bool = False) -> None:
        self.name = name
        self.level = level
        self.group = group

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        width = cell_len("  " * self.level + self.name)
        return Measurement(min(width, 1 + len(ELLIPSIS)), width)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        style = "bold cyan" if self.group else ""
        for line in self.lines(options.max_width):
            yield Text(line, style=style, no_wrap=True, overflow="crop", end="\n")

    def lines(self, width: int) -> list[str]:
        """The cell's lines in ``width`` cells: the indented name when it fits; else one
        :func:`tail` of it, or, for a group header, its ``/``-ended parts packed into lines."""
        # A narrow column indents each level by less (the same for every row, so siblings
        # stay aligned): the names need the room more.
        step = 2 if width >= 24 else 1 if width >= 2 * LAYER_MIN_WIDTH - 4 else 0
        indent = " " * (step * self.level)
        if cell_len(indent + self.name) <= width:
            return [indent + self.name]
        if not self.group:
            return [indent + tail(self.name, width - len(indent))]
        lines = [""]
        for part in self.name.replace("/", "/\n").split("\n"):
            if lines[-1] and cell_len(lines[-1] + part) > width:
                lines.append("")
            lines[-1] += part
        return [tail(line, width) for line in lines]


def tail(name: str, width: int) -> str:
    """``name`` in ``width`` cells: whole when it fits, else ``…`` and as much of its end."""
    if cell_len(name) <= width:
        return name
    if width <= len(ELLIPSIS):
        return ELLIPSIS[: max(width, 0)]
    while name and cell_len(name) > width - len(ELLIPSIS):
        name = name[1:]
    return ELLIPSIS + name


def summary_table(summary: dict[str, Any], title: str) -> SummaryTable:
    """A Rich table of an inspect summary; block and combinator groups get header rows. It is
    laid out for the console it is printed to (:class:`SummaryTable`)."""
    return SummaryTable(summary, title)


class SummaryTable:
    """An inspect summary's layer table, laid out when printed, for the width it gets.

    The numbers (params, frozen, MACs) are never cut or wrapped, nor, as long as the layer
    names keep :data:`LAYER_MIN_WIDTH` cells, the kind and output shape: a name too long for
    what they leave is cut at its start (:class:`LayerCell`). Only a very narrow terminal
    wraps the kind and shape too."""

    def __init__(self, summary: dict[str, Any], title: str) -> None:
        self.summary = summary
        self.title = title

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        headers, rows, natural = self.cells()
        width = options.max_width
        if len(rows) < MANY_ROWS or not _roomy(width, natural):
            yield self.layout(headers, rows, natural, width)
            return
        yield from self.many_rows(console, options, headers, rows, natural)

    def table(self, width: int | None = None) -> Table:
        """The Rich table for ``width`` cells (``None``: as wide as it needs)."""
        return self.layout(*self.cells(), width)

    def cells(self) -> tuple[list[str], list[list[LayerCell | str]], list[int]]:
        """The headers, the rows' cells (a group's header row before its layers), and each
        column's natural width but the layer column's (the widest of its texts)."""
        frozen = bool(self.summary.get("frozen_params"))
        # layer-wise learning rates: a column of the factors, where a layer's is not 1
        scaled = any(row.get("learning_rate_scale", 1.0) != 1.0 for row in self.summary["layers"])
        group = ""
        rows: list[list[LayerCell | str]] = []
        for row in self.summary["layers"]:
            if row["group"] != group:
                group = row["group"]
                if group:
                    rows.append([LayerCell(group, group=True), *[""] * (4 + frozen + scaled)])
            level = row["group"].count("/") + 1 if row["group"] else 0
            cells: list[LayerCell | str] = [
                LayerCell(row["name"], level),
                safe(row["kind"]),
                shape_text(row["output_shape"]),
                f"{row['params']:,}",
            ]
            if frozen:
                cells.append(f"{row['frozen_params']:,}" if row["frozen_params"] else "")
            if scaled:
                factor = row.get("learning_rate_scale", 1.0)
                cells.append(f"×{factor:g}" if factor != 1.0 else "")
            cells.append(human_count(row["macs"]) if row["macs"] else "")
            rows.append(cells)
        headers = [
            "layer",
            "kind",
            "output shape",
            "params",
            *(["frozen"] if frozen else []),
            *(["lr"] if scaled else []),
            "MACs",
        ]
        natural = [
            max([cell_len(header)] + [cell_len(r[i]) for r in rows if isinstance(r[i], str)])
            for i, header in enumerate(headers)
        ]
        return headers, rows, natural

    def layout(
        self, headers: list[str], rows: list[list[LayerCell | str]], natural: list[int], width: int | None
    ) -> Table:
        """The Rich table of ``rows`` for ``width`` cells, its columns as wide as ``natural``
        asks (the widths of every row's cells, whichever rows this one shows)."""
        roomy = width is None or _roomy(width, natural)
        table = Table(title=self.title, title_justify="left", show_lines=False)
        table.add_column("layer")  # the one column that gives way, cutting names (LayerCell)
        for i, header in enumerate(headers[1:], start=1):
            justify: Literal["left", "right"] = "left" if i == 1 else "right"
            if i >= 3 or roomy:  # min_width: Rich's last resort would shrink no_wrap columns too
                table.add_column(header, justify=justify, no_wrap=True, min_width=natural[i])
            else:  # a very narrow terminal: the shape wraps between axes, a long kind folds
                table.add_column(header, justify=justify, overflow="fold")
        for cells in rows:
            table.add_row(*cells)
        return table

    def many_rows(
        self,
        console: Console,
        options: ConsoleOptions,
        headers: list[str],
        rows: list[list[LayerCell | str]],
        natural: list[int],
    ) -> RenderResult:
        """The table of many rows, as Rich lays it out, line by line: Rich renders a sample
        (the title, the headers, each column's widest cell and a group's header row), whose
        columns are those of the whole table (their widths depend on those cells alone), and
        every row is written into the sample's line of its kind, its border and styles kept.
        Where a row would take more than a line, or the sample's lines are not of that form,
        Rich lays out the whole table."""
        widest = {max(range(len(rows)), key=lambda r: _cell_width(rows[r][i])) for i in range(len(headers))}
        first_group = next((r for r, cells in enumerate(rows) if _is_group(cells)), None)
        picked = sorted(widest | ({first_group} if first_group is not None else set()))
        sample = [rows[r] for r in picked]
        lines = console.render_lines(
            self.layout(headers, sample, natural, options.max_width), options, pad=False
        )
        head, body, bottom = lines[: -len(sample) - 1], lines[-len(sample) - 1 : -1], lines[-1]
        # each row of the sample on a line of its own, as Rich writes one: a border, a pad, the
        # cell and a pad for each column, then the last border
        one_line = all(len(line) == 4 * len(headers) + 1 for line in body)
        templates = {_is_group(cells): line for cells, line in zip(sample, body)}
        written = (
            [_written(cells, templates[_is_group(cells)], console) for cells in rows] if one_line else []
        )
        if not one_line or any(line is None for line in written):
            yield self.layout(headers, rows, natural, options.max_width)
            return
        for line in (*head, *written, bottom):
            yield from line
            yield Segment.line()


def _written(cells: list[LayerCell | str], template: list[Segment], console: Console) -> list[Segment] | None:
    """The row ``cells`` written into ``template`` (its line of the sample): each cell's text in
    its column's width, justified as the sample's cell, with its style; ``None`` where a cell
    takes more than a line."""
    line = list(template)
    for i, cell in enumerate(cells):
        at = 2 + 4 * i  # (the template holds a border, a pad, the cell and a pad a column)
        shown = line[at]
        width = cell_len(shown.text)
        if isinstance(cell, LayerCell):
            texts = cell.lines(width)
            if len(texts) != 1:
                return None
            text = texts[0]
        else:
            text = console.render_str(cell, highlight=False).plain if cell else ""
        room = width - cell_len(text)
        if room < 0:
            return None
        right = i >= 2  # (the numbers and the shape: as the columns justify them)
        line[at] = Segment(" " * room + text if right else text + " " * room, shown.style)
    return line


def _cell_width(cell: LayerCell | str) -> int:
    """The widest a cell is laid out (a layer cell indented by its level)."""
    if isinstance(cell, LayerCell):
        return cell_len("  " * cell.level + cell.name)
    return cell_len(cell)


def _is_group(cells: list[LayerCell | str]) -> bool:
    return isinstance(cells[0], LayerCell) and cells[0].group


def _roomy(width: int, natural: list[int]) -> bool:
    """Whether ``width`` leaves the layer column :data:`LAYER_MIN_WIDTH` cells beside the
    others at their natural widths, each column's padding (a cell on either side) and the
    lines between and around them."""
    frame = 3 * len(natural) + 1
    return width - frame - sum(natural[1:]) >= LAYER_MIN_WIDTH
