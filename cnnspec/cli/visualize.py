"""`cnnspec visualize TARGET WHAT` — one picture of a trained model or its run, as a PNG file.

WHAT: history (learning curves), confusion (confusion matrix, `--normalize`), features
(feature maps of `--layer` for one test image or `--image`), filters (kernels of a convolution),
graph (the model graph: Graphviz when installed, always DOT and Mermaid text), samples (test
images with predicted and true classes, mistakes in red), gradcam (where in one test image, or
`--image`, the feature maps of `--layer` raise the score of `--class`: Grad-CAM,
reporting/gradcam.py), calibration (the reliability diagram of a classifier's confidence, of
a multi-label model's labels or of a segmentation's pixels, on the test split:
reporting/calibration.py). `history`,
`confusion` and `graph` read the run folder only and never load TensorFlow (a `.keras` file
alone with no confusion matrix beside it loads its model only to say why, when it has no
classes to confuse): they draw a run that has not finished (killed, or still training: its
curves so far) or whose model.keras is gone, with a note that says so; the views that run the
model refuse such a run.

The views that show probabilities (samples' confidences, gradcam's ``p``, calibration) scale
them as evaluate does (gradcam of a segmentation shows pixel shares, and refuses the option):
``--temperature`` takes evaluate's words through its one definition
(``auto``, the run's temperature.json; ``none`` or ``1``, the model's own; a number), and the
picture's title and the line printed say which temperature they are of
(:func:`cnnspec.reporting.temperature.described`).

A picture that ``--out`` names (as a file, or in a folder) and that is there already is
replaced only when cnnspec drew it (its PNG, or a graph's SVG, carries cnnspec's mark; a PDF
cannot), or with ``--force``; the run folder's own pictures (no ``--out``) are
replaced as before.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cnnspec.analysis.graph import GRAPH_SUFFIXES
from cnnspec.cli.common import AllowOutsideOption, given_output, given_path, guarded, owning_run, stdout
from cnnspec.cli.evaluate import (
    DataOption,
    SpecOption,
    TargetArgument,
    TemperatureOption,
    print_notes,
    refuse_other_run,
    run_of,
    undecodable_notes,
)
from cnnspec.cli.render import safe
from cnnspec.errors import UsageError

if TYPE_CHECKING:
    from cnnspec.reporting.run import Run as RunT


class View(StrEnum):
    history = "history"
    confusion = "confusion"
    features = "features"
    filters = "filters"
    graph = "graph"
    samples = "samples"
    gradcam = "gradcam"
    calibration = "calibration"


def output_path(out: Path | None, folder: Path, default: str, suffixes: tuple[str, ...] = (".png",)) -> Path:
    """``--out`` as a file (with an allowed suffix) or a folder; else ``folder/default``."""
    if out is None:
        return folder / default
    if names_folder(out):
        return out / default
    if out.suffix.lower() not in suffixes:
        raise UsageError(
            f"expected --out to end in {' or '.join(suffixes)} (or to be a folder); received {out}"
        )
    return out


def names_folder(out: Path) -> bool:
    """Whether ``--out`` names a folder: one that exists, or a new path without a suffix
    (``-o pictures/``: the command line's trailing slash is gone by the time Typer gives the
    path, and a picture's file name needs its suffix anyway)."""
    from cnnspec.paths import exists, is_dir

    # (safe: a path the OS won't look into is then checked, and refused, as a file's)
    return is_dir(out) or (not exists(out) and out.suffix == "")


#: What a view drawn of a run without its model.keras (:attr:`~cnnspec.reporting.run.Run.missing_model`)
#: shows, for the note that says so.
SAYS_OF_MISSING = {
    View.history: "the learning curves are of the epochs its history.json holds",
    View.confusion: "the matrix is the one its folder holds",
    View.graph: "the graph is drawn from its resolved spec",
}


def _safe_name(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)


def _check_confusion_applies(run: RunT) -> None:
    """Refuse a confusion matrix of a model outside its run whose outputs (as predict and
    evaluate read them: :func:`~cnnspec.reporting.stand_in.model_tasks`) have no classes to confuse,
    a regression or multi-label model, instead of sending the user to `cnnspec evaluate`, which
    would write none; the task rules' own refusal (asking for ``--spec``) where they cannot
    tell. Called only when the model's folder has no confusion matrix to draw, so TensorFlow is
    loaded only on that error path (a drawable matrix is read without it)."""
    from cnnspec.reporting.stand_in import described_outputs, model_tasks
    from cnnspec.reporting.views import SAMPLES_OF_TASK
    from cnnspec.training.modelfile import load_model

    tasks = model_tasks(load_model(run.model_path), run.name, run.model_path)
    if any(out.task in ("classification", "segmentation") for out in tasks):
        return  # it has one to make: the caller's "run evaluate first" stands
    described = described_outputs(tasks)
    shown = " and ".join(dict.fromkeys(SAMPLES_OF_TASK.get(out.task, "classes") for out in tasks))
    raise UsageError(
        f"expected a classification or segmentation output for a confusion matrix; "
        f"{run.model_path.name} has none (its outputs, as read from the model: {described})",
        f"`cnnspec visualize {run.model_path} samples --data SOURCE` draws test images with true "
        f"and predicted {shown}; or pass --spec SPEC if the model is not what was read",
    )


#: The views each view-specific option applies to (another view would draw without it).
OPTION_VIEWS: dict[str, tuple[View, ...]] = {
    "--data": (View.features, View.gradcam, View.samples, View.calibration),
    "--layer": (View.features, View.filters, View.gradcam),
    "--sample": (View.features, View.gradcam),
    "--image": (View.features, View.gradcam),
    "--class": (View.gradcam,),
    "--max": (View.features, View.filters, View.samples),
    "--normalize": (View.confusion,),
    "--mistakes": (View.samples,),
    "--seed": (View.samples,),
    # the views that show probabilities: the rest draw none a temperature would change
    "--temperature": (View.samples, View.gradcam, View.calibration),
}


def _refuse_other_views_options(what: View, given: dict[str, bool]) -> None:
    """Refuse an option given for a view that does not read it: ``visualize RUN confusion
    --data X.npz`` drew the run's own matrix, exit 0, as if of X's images."""
    for option, views in OPTION_VIEWS.items():
        if given[option] and what not in views:
            names = ", ".join(view.value for view in views)
            also = " (`cnnspec evaluate RUN --data SOURCE` scores other images)" if option == "--data" else ""
            raise UsageError(
                f"expected {option} with the {names} view{'s' if len(views) > 1 else ''}; "
                f"{what.value} does not read it",
                f"leave {option} out, or draw one of those views{also}",
            )


@guarded
def visualize(
    target: TargetArgument,
    what: Annotated[
        View,
        typer.Argument(help="history, confusion, features, filters, graph, samples, gradcam or calibration"),
    ],
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "--output",
            "-o",
            help="the PNG to write, or a folder, created if missing (default: the run folder)",
            parser=given_output,
        ),
    ] = None,
    layer: Annotated[
        str | None,
        typer.Option(
            "--layer",
            "-l",
            help="features/filters: the layer (default: the first conv); gradcam: the layer whose "
            "maps are weighed (default: the last with maps larger than one pixel)",
        ),
    ] = None,
    sample: Annotated[
        int,
        typer.Option(
            "--sample", help="features/gradcam: index of the test image (with an .npy --image: of its images)"
        ),
    ] = 0,
    image: Annotated[
        Path | None,
        typer.Option(
            "--image", help="features/gradcam: use this image file (or .npy) instead", parser=given_path
        ),
    ] = None,
    target_class: Annotated[
        str | None,
        typer.Option(
            "--class",
            help="gradcam: the class (or a multi-label model's label) to explain, by name or index "
            "(default: the predicted one, the likeliest label, a segmentation's most common class "
            "after class 0)",
        ),
    ] = None,
    max_items: Annotated[
        int | None,
        typer.Option(
            "--max", min=1, max=256, help="features: maps (16), filters: tiles (64), samples: images (16)"
        ),
    ] = None,
    normalize: Annotated[
        bool, typer.Option("--normalize", help="confusion: each true class's row as percentages")
    ] = False,
    mistakes: Annotated[
        bool, typer.Option("--mistakes", help="samples: show only misclassified images")
    ] = False,
    seed: Annotated[int, typer.Option("--seed", min=0, help="samples: which images are drawn")] = 0,
    spec: SpecOption = None,
    data: DataOption = None,
    temperature: TemperatureOption = "auto",
    force: Annotated[
        bool,
        typer.Option("--force", "-f", help="replace an existing --out picture that cnnspec did not draw"),
    ] = False,
    allow_outside: AllowOutsideOption = False,
) -> None:
    """Draw one picture of a trained model and print the path of the PNG it wrote.

    samples, gradcam and calibration show the probabilities scaled by the run's temperature
    (temperature.json, written by `cnnspec calibrate`) or by --temperature, as evaluate does;
    the picture and the line printed say which. An existing --out picture is replaced only
    when cnnspec drew it, or with --force."""
    from cnnspec.cli.outputs import refuse_foreign
    from cnnspec.fileio import check_writable, user_path, write_atomic
    from cnnspec.paths import refuse_unreadable
    from cnnspec.reporting.images import is_cnnspec_png
    from cnnspec.reporting.run import locate
    from cnnspec.reporting.temperature import parse_option

    wanted = parse_option(temperature)  # (a word it does not take: refused before anything is read)
    _refuse_other_views_options(
        what,
        {
            "--data": data is not None,
            "--layer": layer is not None,
            "--sample": sample != 0,
            "--image": image is not None,
            "--class": target_class is not None,
            "--max": max_items is not None,
            "--normalize": normalize,
            "--mistakes": mistakes,
            "--seed": seed != 0,
            "--temperature": temperature.strip().lower() != "auto",
        },
    )
    # only this command line may let the run's spec read outside its folder, never lock.json;
    # the views of the folder alone draw a run without its model.keras (unfinished, or lost)
    reads_folder = what in (View.history, View.confusion, View.graph)
    # a name too long, another user's folder: said as the option's, before the model is read
    if image is not None:
        refuse_unreadable(image, "--image to name an image or .npy file")
    if data is not None:
        refuse_unreadable(user_path(data), "--data to name a source, a file or a folder")
    run = locate(target, spec, allow_outside=allow_outside, need_model=not reads_folder)
    folder = run.out_dir
    console = stdout()
    writes_to = folder  # the folder the picture goes to (output_path's reading of --out)
    if out is not None:
        writes_to = out if names_folder(out) else out.parent
    from cnnspec.cli.outputs import written_to

    where, instead = written_to(out, run.run_dir)
    check_writable(writes_to, option=where, hint=instead)  # before TensorFlow is imported
    if out is not None and writes_to != out:  # the file's own name too (too long: said as --out's)
        check_writable(out, option="--out", folder=False)
    if out is not None:  # another run's history.png or confusion_matrix.png is that run's own
        refuse_other_run(writes_to, run)

    # a run folder's own pictures are replaced as before; --out, and the folder of a model file
    # outside a run folder, are the user's, where only a picture cnnspec drew is replaced
    checked = out is not None or run.run_dir is None

    def picture(default: str) -> Path:
        """Where a PNG view goes (:func:`output_path`), refused when it names a picture that is
        there and that cnnspec did not draw, where ``checked``. The graph's files are checked by
        graph_files."""
        path = output_path(out, folder, default)
        if checked:
            refuse_foreign(path, "--out", force, is_cnnspec_png)
        return path

    if out is not None and not names_folder(out) and what != View.graph:
        picture("")  # a file: refused before anything is read or drawn (a folder: as each is named)
    missing = run.missing_model if run.run_dir is not None else None  # (a model file is there)
    notes = [f"{missing}; {SAYS_OF_MISSING[what]}"] if missing else []
    with owning_run(run_of(run), writes_to):  # a picture written into a run folder (a checkpoint's too)
        written: list[Path] = []
        lines: list[str] = []  # (the lines printed beside the picture: a name in them is noted)
        if what == View.history:
            from cnnspec.reporting.views import write_history

            written.append(write_history(run, picture("history.png")))
        elif what == View.confusion:
            from cnnspec.reporting.views import write_confusion

            name = "confusion_matrix_normalized.png" if normalize else "confusion_matrix.png"
            try:
                written.append(write_confusion(run, picture(name), normalize))
            except UsageError:
                # a .keras alone: is a confusion matrix its to have at all? (a model to ask)
                if run.config is None and run.model_path.is_file():
                    _check_confusion_applies(run)
                raise
        elif what == View.graph:
            from cnnspec.cli.build import write_graph

            if run.compiled is None:
                raise UsageError(
                    f"expected a spec to draw the graph from; {run.model_path} is not in a run folder",
                    "pass --spec SPEC",
                )
            written += write_graph(
                run.compiled.ir,
                output_path(out, folder, "graph.png", GRAPH_SUFFIXES),
                origin=f"visualize from {run.run_dir or run.model_path}",
                option="--out",
                force=force or not checked,  # (a run's own graph.png: replaced as before)
            )
        else:
            from cnnspec.reporting.views import Probe
            from cnnspec.training.modelfile import load_model

            own = "--temperature none for the model's own probabilities"
            probe = Probe(run, load_model(run.model_path), data, wanted=wanted, own=own)
            if what == View.features:
                png, name = probe.features(layer, sample=sample, max_maps=max_items or 16, image=image)
                default = f"features_{_safe_name(name)}.png"
            elif what == View.gradcam:
                png, name, line = probe.class_map(layer, sample=sample, image=image, target=target_class)
                default = f"gradcam_{_safe_name(name)}.png"
                lines.append(line)
                console.print(safe(line), highlight=False)
            elif what == View.calibration:
                png, line = probe.calibration()
                default = "calibration.png"
                lines.append(line)
                console.print(safe(line), highlight=False)
            elif what == View.filters:
                png, name = probe.filters(layer, max_filters=max_items or 64)
                default = f"filters_{_safe_name(name)}.png"
            else:
                png = probe.samples(max_items or 16, mistakes=mistakes, seed=seed)
                default = "samples_mistakes.png" if mistakes else "samples.png"
            written.append(write_atomic(picture(default), png))
            notes += probe.notes
    print_notes(undecodable_notes(notes, lines, [str(path) for path in written]))
    for path in written:
        console.print(f"wrote {safe(path)}", highlight=False)
