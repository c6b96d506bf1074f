"""`cnnspec zoo` — list the packaged model zoo (no TensorFlow)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from cnnspec.analysis.report import human_count
from cnnspec.cli.common import echo, guarded, stdout
from cnnspec.cli.fitted import FittedColumn, FittedTable
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
    # The name is what zoo:NAME takes and the counts are the point: the family, the Keras class
    # and the input shape give way (at 80 columns Rich cut densenet121/169/201 to `densenet…`)
    table = FittedTable(
        "cnnspec model zoo (zoo:NAME)",
        [
            FittedColumn("name", "name"),
            FittedColumn("family", "text"),
            FittedColumn("keras.applications", "text"),
            FittedColumn("params", "figure", "right"),
            FittedColumn("MACs", "figure", "right"),
            FittedColumn("input", "figure", "right"),
            FittedColumn("smallest", "figure", "right"),
        ],
    )
    for entry in entries:
        table.add_row(
            entry.name,
            entry.family,
            entry.keras_name,
            f"{entry.params:,}",
            human_count(entry.macs),
            "×".join(map(str, entry.input_shape)),  # (as `smallest`: no batch axis to say)
            "×".join(map(str, entry.min_input_shape() or ())) or "?",
        )
    stdout().print(table)
