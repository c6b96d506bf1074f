"""`cnnspec calibrate RUN` — fit a classifier's (or a multi-label or segmentation model's)
temperature on its validation split (``--data SOURCE``: on a calibration set of the user's own,
never the run's own images: :mod:`cnnspec.reporting.own_data`).

The temperature (reporting/temperature.py) goes into the run folder as ``temperature.json``;
``evaluate``, ``predict``, ``visualize`` and ``report`` then apply it (``--temperature auto``,
the default of the first three; report takes no option: it shows the run as it stands) and
say so. The run's test split is not touched: evaluating it afterwards shows what the
temperature did on images the fit never saw.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from cnnspec.cli.common import AllowOutsideOption, echo, given_path, guarded, owning_run, stdout
from cnnspec.cli.evaluate import FormatOption, print_notes, undecodable_notes
from cnnspec.cli.render import TextOrJson, safe
from cnnspec.errors import UsageError


@guarded
def calibrate(
    target: Annotated[
        Path,
        typer.Argument(
            help="a run folder written by `cnnspec train` (or its model.keras)",
            show_default=False,
            parser=given_path,
        ),
    ],
    format: FormatOption = TextOrJson.text,
    data: Annotated[
        str | None,
        typer.Option(
            "--data",
            help="fit on images of this source instead of the run's validation split (the images "
            "`cnnspec evaluate RUN --data SOURCE` scores): a calibration set of your own, never "
            "the run's own data or any of its image files",
        ),
    ] = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="write a temperature the fit found at an end of the range searched (0.05 or 20) too",
        ),
    ] = False,
    allow_outside: AllowOutsideOption = False,
) -> None:
    """Fit a classifier's temperature on its validation split, so that its confidence matches
    its accuracy.

    One number T scales the class probabilities (softmax(log p / T)): above 1 the model was
    overconfident, below 1 underconfident. The top class never changes (that of a --tta or
    --ensemble mean may: each view is scaled before the mean). The fit minimises
    the negative log-likelihood of the run's validation images; the result, with the figures
    before and after, is written to RUN/temperature.json, which evaluate, predict, visualize
    and report then apply (evaluate, predict and visualize: --temperature none shows the
    model's own probabilities; report shows the run as it stands). A
    multi-label model gets one temperature for all its labels (sigmoid(logit / T)), a
    segmentation one for all its pixels (fitted on up to 250,000 validation pixels). A fit
    that ends at an end of the range searched (T = 0.05 or 20) is not written without --force.
    A fit that leaves the expected calibration error worse (few images: the likelihood and
    the ECE can disagree) is written with a note saying so; delete temperature.json to undo it.

    --data SOURCE fits on a calibration set of your own instead: the images `cnnspec evaluate
    RUN --data SOURCE` would score (for a run trained without a validation split, or to fit on
    more images). The run's own data is refused: its test split must stay unseen. So is a
    folder or CSV holding any image file the run trained, validated or was tested on (the
    same file, under a link too; for a run trained with --hash-content, a copy of its bytes).
    Arrays (an .npz) with the pixels of the run's training or test images have those images
    set aside, with a note; arrays of no other image are refused.
    """
    import numpy as np

    from cnnspec.fileio import check_writable, sha256_file, write_atomic
    from cnnspec.jsontext import json_text, utf8_safe
    from cnnspec.reporting.calibration import NO_PREDICTION, decided
    from cnnspec.reporting.held_out import load_test_data
    from cnnspec.reporting.own_data import seen_note
    from cnnspec.reporting.run import MODEL_FILE, locate
    from cnnspec.reporting.stand_in import described_outputs
    from cnnspec.reporting.temperature import FILE, fitted, fitted_on, scales
    from cnnspec.training.modelfile import load_model

    run = locate(target, None, allow_outside=allow_outside, run_only=True)
    if run.run_dir is not None and (run.compiled is None or run.config is None):
        raise UsageError(
            f"cannot tell how the run trained: resolved.yaml, its spec, is missing from the run "
            f"folder {run.run_dir} (or can't be read)",
            "put back the resolved.yaml `cnnspec train` wrote",
        )
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
    if config.task_path and not scales(config.tasks):
        raise UsageError(
            "expected a classifier, a multi-label or a segmentation model (one output) to fit a "
            f"temperature; this model's outputs are {described_outputs(config.tasks)}",
            "a regression output, or several outputs, take no single temperature",
        )
    check_writable(  # before TensorFlow is imported
        run.run_dir,
        option="the run folder",
        hint="a temperature is kept in its run folder: make that disk writable, or copy the run folder "
        "to a writable disk and calibrate the copy",
    )
    model = load_model(run.model_path)
    held_out = load_test_data(run, model, data, split="validation" if data is None else "test")
    split = "validation" if data is None else f"--data {data}"
    set_aside = None
    if data is not None:
        held_out, set_aside = _without_own_data(run, held_out, data)
    if len(held_out.y) == 0 and data is not None:
        raise UsageError(
            f"expected images to fit the temperature on; --data {data} has none in the split "
            "evaluate scores (its test split)",
            "pass a source with test images (an .npz with x_test, a folder of class sub-folders)",
        )
    if len(held_out.y) == 0:
        raise UsageError(
            f"expected validation images to fit the temperature on; {run.name} held out none "
            "(data.validation_split: 0)",
            "fit it on other labelled images with --data SOURCE, or train with data.validation_split "
            "above 0 (the test images must stay unseen to judge the fit)",
        )
    probs, labels, per_image, unit = _validation_answers(model, held_out)
    result = fitted(
        probs,
        labels,
        sha256_file(run.model_path),
        split=split,
        per_image=per_image,
        images=len(held_out.y) if unit == "pixels" else None,  # (a sample of their pixels)
    )
    images = fitted_on(result)
    # (evaluate's note of --data images the run trained or validated on: what is left of them
    # here are validation images, which calibrate fits on without --data; the rest, set aside)
    scored = seen_note(held_out.own, data, run.name) if data is not None else None
    notes = [note for note in held_out.notes if note != scored]
    if set_aside is not None:
        notes.append(set_aside)
    if result.at_bound:
        # (every later evaluate and predict would apply it: a degenerate fit is not written unasked)
        predicted, _ = decided(probs)  # (a row that is not numbers: no prediction, no mistake)
        mistakes = int(((predicted != np.asarray(labels)) & (predicted != NO_PREDICTION)).sum())
        reason = (
            f"the model makes no mistake on the {images}, so the "
            "likelihood only grows as the temperature falls"
            if mistakes == 0
            else f"{images} with {_mistakes(mistakes, len(labels), unit if config.task_path else None)} "
            "are too few, or "
            "the model too weak or too sure on them, to tell a temperature"
        )
        why = (
            f"the fit ended at the end of the range searched (T = {result.temperature:.4g}; "
            f"{'validation ' if data is None else ''}NLL {result.nll_before:.4f} → "
            f"{result.nll_after:.4f}): {reason}"
        )
        if not force:
            raise UsageError(
                f"expected a temperature inside the range searched; {why}. Nothing was written",
                (
                    "train on more data or hold out more validation images (data.validation_split)"
                    if data is None
                    else "pass a larger calibration set, with the mistakes the model makes"
                )
                + "; --force writes it anyway",
            )
        notes.append(why)
    worse = _worse_ece_note(result, run.run_dir / FILE, images, data)
    if worse is not None:
        notes.append(worse)
    document = result.describe()
    path = run.run_dir / FILE
    with owning_run(run.run_dir, run.run_dir):
        write_atomic(path, json_text(document))
    notes = undecodable_notes(notes, document, str(path), run.name, images)  # (shown \xNN, said)
    print_notes(notes)
    if format == TextOrJson.json:
        # (what it fitted on, as the text line says it: a segmentation's pixels, a multi-label's labels)
        fitted_rows = {"rows": len(labels), "unit": unit} if config.task_path else {}
        shown = {**document, **fitted_rows, "file": str(path), "notes": notes}
        echo(json.dumps(utf8_safe(shown)[0], indent=2))  # (a path that is no UTF-8 escaped)
        return
    lean = (
        "it was overconfident"
        if result.temperature > 1.005
        else "it was underconfident"
        if result.temperature < 0.995
        else "it was about as sure as right"
    )
    console = stdout()
    labelled = f" ({len(labels):,} {unit})" if config.task_path else ""
    console.print(
        f"{safe(run.name)}: temperature [bold]{result.temperature:.4g}[/bold] ({lean}), fitted on "
        f"{safe(images)}{labelled}",
        highlight=False,
    )
    console.print(
        f"  negative log-likelihood {result.nll_before:.4f} → {result.nll_after:.4f} · "
        f"ECE {result.ece_before:.2%} → {result.ece_after:.2%}",
        highlight=False,
    )
    console.print(f"wrote {safe(path)}", highlight=False)


#: The run's splits whose images a temperature is never fitted on (its validation images are
#: what calibrate fits on without ``--data``).
NEVER_FITTED = ("training", "test")


def _without_own_data(run: Any, held_out: Any, data: str) -> tuple[Any, str | None]:
    """``held_out`` (``--data``'s images) without the run's own training and test images, and
    the note that says how many were set aside (``None``: none were); refused where they are
    the run's own data. Fitting on its test split would leave no unseen images to judge the
    fit, and on its training images the model's confidence is not what it is on new ones.

    Named and ``.npz`` data that hashes as the run's data is refused; so is a folder or CSV
    (whose test images alone never hash as the run's whole data) holding any file the run
    trained or was tested on (:func:`~cnnspec.reporting.own_data.own_images`): the same files
    are the run's data given back by mistake. Arrays are told by their pixels, which other
    images can share: those of the run's training or test images are set aside (to the model
    they are those images), the rest fitted on, and only arrays with no other image refused.
    Its validation images are no mistake: they are what calibrate fits on without ``--data``
    (refused, the hint sent the user back to the very images it refused)."""
    from cnnspec.reporting.own_data import MATCHED_BY

    recorded = ((run.lock or {}).get("data") or {}).get("content_hash")
    if recorded is not None and recorded == held_out.content_hash:
        raise UsageError(
            f"expected a calibration set other than the run's own data; --data {data} is the data "
            f"{run.name} was trained and tested on",
            "leave --data out to fit on the run's validation split, or pass images the run never saw",
        )
    own = held_out.own
    if own is None or own.by not in ("file", "content", "pixels"):
        return held_out, None
    seen = sum(own.counts.get(split, 0) for split in NEVER_FITTED)
    if seen == 0:
        return held_out, None  # (none, or the run's validation images)
    if own.by != "pixels" or own.owners is None or seen == own.images:
        raise UsageError(
            f"expected a calibration set other than the run's own images; {own.total:,} of the "
            f"{own.images:,} images of --data {data} are {run.name}'s own ({own.listed()} images: "
            f"{MATCHED_BY[own.by]})",
            "fit on a held-out calibration folder of images the run never trained, validated or "
            "was tested on (its test split must stay unseen to judge the fit), or leave --data "
            "out to fit on the run's validation split",
        )
    keep = [i for i, split in enumerate(own.owners) if split not in NEVER_FITTED]
    note = (
        f"set aside {seen:,} of the {own.images:,} images of --data {data}, {run.name}'s own "
        f"{own.listed(NEVER_FITTED)} images ({MATCHED_BY[own.by]}): a temperature is never fitted "
        f"on the images the model trained on, nor on its test split, which must stay unseen to "
        f"judge the fit; fitted on the other {len(keep):,}"
    )
    return _images(held_out, keep), note


def _images(held_out: Any, keep: list[int]) -> Any:
    """``held_out`` with only its images (and their targets) at the indices ``keep``."""
    import dataclasses

    import numpy as np

    y = held_out.y
    kept_y = {k: np.asarray(v)[keep] for k, v in y.items()} if isinstance(y, dict) else np.asarray(y)[keep]
    return dataclasses.replace(held_out, x=np.asarray(held_out.x)[keep], y=kept_y)


#: How much the ECE may rise before a note says so: the figures are printed to 0.01 %, and a
#: rise of less is rounding, not a worse fit.
_ECE_RISE = 5e-5


def _mistakes(count: int, rows: int, unit: str | None) -> str:
    """How many mistakes a degenerate fit saw: an image's (``unit`` ``None``), or of a task's
    rows, counted in them (``345 of their 512 pixels wrong``: a segmentation's 345 mistakes
    were read as 345 mistaken images of 8)."""
    if unit is None:
        return f"{count:,} mistake(s)"
    return f"{count:,} of their {rows:,} {unit} wrong"


def _worse_ece_note(result: Any, path: Path, images: str, data: str | None) -> str | None:
    """The note of a fit whose expected calibration error rose (``None`` where it did not):
    the fit minimises the negative log-likelihood, and on few images (or a model far from
    calibrated) a temperature can lower that while confidence and accuracy drift further
    apart. The file is still written (the likelihood is the objective and got better), but
    the user must see what the calibration figure did, and how to undo it."""
    if not result.ece_after > result.ece_before + _ECE_RISE:
        return None
    more = (
        "more validation images, or --data a calibration set of your own"
        if data is None
        else ("a larger calibration set")
    )
    return (
        f"the expected calibration error got worse with this temperature (ECE "
        f"{result.ece_before:.2%} → {result.ece_after:.2%}), though the negative log-likelihood, "
        f"which the fit minimises, fell ({result.nll_before:.4f} → {result.nll_after:.4f}): on "
        f"{images} the two can disagree. `rm {path}` goes back to the model's own "
        f"probabilities; or calibrate again on more images ({more})"
    )


def _validation_answers(model: Any, held_out: Any) -> tuple[Any, Any, int, str]:
    """The model's probabilities for the held-out images as rows the fit takes, their labels,
    the rows per image and what a row is: a classifier's class probabilities (one row an
    image), a multi-label output's labels (each a two-class row of its own: ``label
    decisions``), or a segmentation's pixels (a seeded sample of at most 250,000: ``pixels``)."""
    from cnnspec.reporting.calibration import label_rows, pixel_rows
    from cnnspec.reporting.model_graph import OutputKind
    from cnnspec.reporting.predictions import label_answers, map_answers, predict

    config = held_out.config
    if not config.task_path:
        kind = OutputKind(binary=config.binary, from_logits=config.loss.from_logits)
        return predict(model, held_out.x, held_out.settings.rescale, kind), held_out.y, 1, "images"
    (task,) = config.tasks
    if task.task == "segmentation":
        maps, masks = map_answers(model, held_out, task)
        rows, labels = pixel_rows(maps, masks)
        return rows, labels, 1, "pixels"
    probs, truth = label_answers(model, held_out, task)
    rows, labels = label_rows(probs, truth)
    return rows, labels, probs.shape[1], "label decisions"
