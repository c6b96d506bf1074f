"""`cnnspec zoo` — list the packaged model zoo (no TensorFlow)."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from cnnspec.analysis.report import human_count, shape_text
from cnnspec.cli.common import echo, guarded, stdout
from cnnspec.cli.render import TextOrJson


@guarded
def zoo(
    format: Annotated[TextOrJson, typer.Option("--format", "-f", help="text or json")] = TextOrJson.text,
) -> None:
    """List the packaged zoo's models: name (zoo:NAME), family, parameters, MACs, input shape
    and the smallest input the model accepts."""
    from cnnspec.analysis.zoo import catalog

    entries = catalog()
    if format == TextOrJson.json:
        echo(json.dumps([entry.as_json() for entry in entries], indent=2))
        return
    table = Table(title="cnnspec model zoo (zoo:NAME)", title_justify="left")
    for column in ("name", "family", "keras.applications"):
        table.add_column(column)
    for column in ("params", "MACs", "input", "smallest"):
        table.add_column(column, justify="right")
    for entry in entries:
        table.add_row(
            entry.name,
            entry.family,
            entry.keras_name,
            f"{entry.params:,}",
            human_count(entry.macs),
            shape_text([None, *entry.input_shape]),
            "×".join(map(str, entry.min_input_shape() or ())) or "?",
        )
    stdout().print(table)
