"""`cnnspec predict MODEL IMAGE...` — the top classes of a trained model for image files.

MODEL is a run folder or a ``.keras`` file (class names come from the run folder). IMAGE files
are PNG/JPEG/BMP/GIF (converted to the model's channels and size the way a training image
folder is read) or ``.npy`` arrays in the training data's format. JSON output::

    {"model": "...", "classes": [...],
     "predictions": [{"input": "cat.png", "notes": [...],
                      "top": [{"class": "cat", "index": 3, "probability": 0.97}, ...]}]}
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from cnnspec.cli.common import guarded, stdout
from cnnspec.cli.evaluate import FormatOption, TextOrJson
from cnnspec.errors import UsageError


def top_k(probabilities: Any, names: list[str], k: int) -> list[dict[str, Any]]:
    order = probabilities.argsort()[::-1][:k]
    return [{"class": names[i], "index": int(i), "probability": float(probabilities[i])} for i in order]


@guarded
def predict(
    model: Annotated[Path, typer.Argument(help="a run folder or a .keras model file", show_default=False)],
    images: Annotated[
        list[Path], typer.Argument(help="PNG/JPEG/BMP/GIF images or .npy arrays", show_default=False)
    ],
    top: Annotated[int, typer.Option("--top-k", "-k", min=1, help="how many classes to show")] = 3,
    format: FormatOption = TextOrJson.text,
) -> None:
    """Classify images with a trained model: the top-k classes with their probabilities."""
    import numpy as np

    from cnnspec.reporting.images import read_inputs
    from cnnspec.reporting.run import file_rescale, input_shape, locate
    from cnnspec.reporting.run import predict as predict_batch
    from cnnspec.training.modelfile import load_model

    if not images:
        raise UsageError("expected at least one image file")
    run = locate(model)
    keras_model = load_model(run.model_path)
    shape = input_shape(keras_model)
    samples = read_inputs(list(images), shape)
    kind = run.output_kind(keras_model)
    results: list[dict[str, Any]] = []
    names: list[str] = []
    for integer in (True, False):  # one batch per kind of pixels (they scale differently)
        group = [(i, s) for i, s in enumerate(samples) if s.integer == integer]
        if not group:
            continue
        batch = np.stack([s.pixels for _, s in group])
        probs = predict_batch(keras_model, batch, file_rescale(run, keras_model, integer), kind)
        names = run.names_for(probs.shape[1])
        for (index, item), row in zip(group, probs):
            entry = {"input": item.label, "notes": list(item.notes), "top": top_k(row, names, top)}
            results.append({"order": index, **entry})
    results.sort(key=lambda r: r.pop("order"))
    if format == TextOrJson.json:
        document = {"model": str(run.model_path), "classes": names, "predictions": results}
        typer.echo(json.dumps(document, indent=2))
        return
    console = stdout()
    for result in results:
        console.print(f"[bold]{escape(result['input'])}[/bold]", highlight=False)
        if result["notes"]:
            console.print(f"  [dim]{escape('; '.join(result['notes']))}[/dim]", highlight=False)
        table = Table(show_edge=False, box=None, padding=(0, 1))
        table.add_column("#", justify="right", style="dim")
        table.add_column("class")
        table.add_column("probability", justify="right")
        table.add_column("")
        for rank, entry in enumerate(result["top"], start=1):
            p = entry["probability"]
            label = escape(entry["class"])
            table.add_row(
                str(rank),
                f"[bold green]{label}[/bold green]" if rank == 1 else label,
                f"{p:.2%}",
                f"[cyan]{'█' * round(20 * p)}[/cyan]",
            )
        console.print(table)
