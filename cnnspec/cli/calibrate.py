"""`cnnspec calibrate RUN` — fit a classifier's temperature on its validation split.

The temperature (reporting/temperature.py) goes into the run folder as ``temperature.json``;
``evaluate``, ``predict``, ``visualize`` and ``report`` then apply it (``--temperature auto``)
and say so. The run's test split is not touched: evaluating it afterwards shows what the
temperature did on images the fit never saw.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from cnnspec.cli.common import AllowOutsideOption, guarded, owning_run, stdout
from cnnspec.cli.evaluate import FormatOption, print_notes
from cnnspec.cli.render import TextOrJson, safe
from cnnspec.errors import UsageError


@guarded
def calibrate(
    target: Annotated[
        Path,
        typer.Argument(
            help="a run folder written by `cnnspec train` (or its model.keras)", show_default=False
        ),
    ],
    format: FormatOption = TextOrJson.text,
    allow_outside: AllowOutsideOption = False,
) -> None:
    """Fit a classifier's temperature on its validation split, so that its confidence matches
    its accuracy.

    One number T scales the class probabilities (softmax(log p / T)): above 1 the model was
    overconfident, below 1 underconfident. The top class never changes. The fit minimises
    the negative log-likelihood of the run's validation images; the result, with the figures
    before and after, is written to RUN/temperature.json, which evaluate, predict, visualize
    and report then apply (--temperature 1 shows the model's own probabilities).
    """
    from cnnspec.fileio import check_writable, sha256_file, write_atomic
    from cnnspec.reporting.run import MODEL_FILE, described_outputs, load_test_data, locate, predict
    from cnnspec.reporting.temperature import FILE, fitted
    from cnnspec.training.modelfile import load_model

    run = locate(target, None, allow_outside=allow_outside)
    if run.run_dir is None or run.compiled is None or run.config is None:
        raise UsageError(
            f"expected a run folder written by `cnnspec train`; {target} is a model file outside one",
            "a temperature is fitted on the run's validation split and kept in its folder: pass "
            "the run folder",
        )
    if run.model_path.resolve() != (run.run_dir / MODEL_FILE).resolve():
        raise UsageError(
            f"expected the run's own {MODEL_FILE}; {target} is another model file in {run.run_dir}",
            f"pass the run folder {run.run_dir}",
        )
    config = run.config
    if config.task_path:
        raise UsageError(
            "expected a classifier (one output of classes) to fit a temperature; this model's outputs "
            f"are {described_outputs(config.tasks)}",
            "a multi-label or segmentation output would need a temperature per label or class",
        )
    check_writable(run.run_dir, option="RUN")  # before TensorFlow is imported
    model = load_model(run.model_path)
    held_out = load_test_data(run, model, split="validation")
    if len(held_out.y) == 0:
        raise UsageError(
            f"expected validation images to fit the temperature on; {run.name} held out none "
            "(data.validation_split: 0)",
            "train with data.validation_split above 0 (the test images must stay unseen to judge the fit)",
        )
    probs = predict(model, held_out.x, held_out.settings.rescale, run.output_kind(model))
    result = fitted(probs, held_out.y, sha256_file(run.model_path))
    notes = list(held_out.notes)
    if result.at_bound:
        notes.append(
            f"the fit stopped at the end of the range searched (T = {result.temperature:.4g}): the "
            "validation images are too few or too easy to tell a temperature"
        )
    document = result.describe()
    path = run.run_dir / FILE
    with owning_run(run.run_dir, run.run_dir):
        write_atomic(path, json.dumps(document, indent=2) + "\n")
    print_notes(notes)
    if format == TextOrJson.json:
        typer.echo(json.dumps({**document, "file": str(path), "notes": notes}, indent=2))
        return
    lean = (
        "it was overconfident"
        if result.temperature > 1.005
        else "it was underconfident"
        if result.temperature < 0.995
        else "it was about as sure as right"
    )
    console = stdout()
    console.print(
        f"{safe(run.name)}: temperature [bold]{result.temperature:.4g}[/bold] ({lean}), fitted on "
        f"{result.images:,} validation images",
        highlight=False,
    )
    console.print(
        f"  negative log-likelihood {result.nll_before:.4f} → {result.nll_after:.4f} · "
        f"ECE {result.ece_before:.2%} → {result.ece_after:.2%}",
        highlight=False,
    )
    console.print(f"wrote {safe(path)}", highlight=False)
