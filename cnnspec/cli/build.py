"""`cnnspec build FILE -o model.keras` — compile a spec into a saved Keras model."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Annotated

import typer

from cnnspec.cli.common import (
    DEFAULT_MAX_PARAMS,
    AllowOutsideOption,
    MaxParamsOption,
    SetOption,
    SpecArgument,
    compile_reported,
    guarded,
    stdout,
)
from cnnspec.errors import UsageError


def write_graph(ir: object, target: Path) -> list[Path]:
    """Render the graph to ``target`` with Graphviz when installed; always write DOT and
    Mermaid text beside it. Returns the files written."""
    from cnnspec.analysis.graph import to_dot, to_mermaid
    from cnnspec.fileio import atomic_path, write_atomic

    dot_text = to_dot(ir)  # type: ignore[arg-type]
    written = [
        write_atomic(target.with_suffix(".dot"), dot_text),
        write_atomic(target.with_suffix(".mmd"), to_mermaid(ir)),  # type: ignore[arg-type]
    ]
    dot = shutil.which("dot")
    if dot and target.suffix.lower() in (".png", ".svg", ".pdf"):
        with atomic_path(target) as temp:
            subprocess.run(
                [dot, f"-T{target.suffix[1:].lower()}", "-o", str(temp)],
                input=dot_text.encode(),
                check=True,
                capture_output=True,
                timeout=120,
            )
        written.insert(0, target)
    elif target.suffix.lower() in (".png", ".svg", ".pdf"):
        stdout().print(
            f"[yellow]Graphviz is not installed[/yellow], so {target} was not drawn; the graph is in "
            f"{written[0]} (DOT) and {written[1]} (Mermaid). To draw it: `apt-get install graphviz`.",
            highlight=False,
        )
    return written


@guarded
def build(
    file: SpecArgument,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="where to save the .keras model")
    ] = None,
    summary: Annotated[
        bool, typer.Option("--summary", help="print the layer table of the built model")
    ] = False,
    plot: Annotated[
        Path | None, typer.Option("--plot", help="draw the model graph (PNG/SVG/PDF or .dot)")
    ] = None,
    set: SetOption = None,
    weights: Annotated[
        str | None,
        typer.Option(
            "--weights",
            help="load these weights (a run folder, .keras, .weights.h5 or imagenet) and the "
            "backbones' own; prints what was loaded",
        ),
    ] = None,
    random_weights: Annotated[
        bool,
        typer.Option(
            "--random-weights", help="leave the weights random: load neither --weights nor the spec's"
        ),
    ] = False,
    allow_outside: AllowOutsideOption = False,
    max_params: MaxParamsOption = DEFAULT_MAX_PARAMS,
) -> None:
    """Build the Keras model of a spec and save it in the native .keras format (atomically).

    The spec's weight sources load as in training: its backbones' own, then the whole model's
    (`weights:`, or --weights in its place); with none, or --random-weights, weights are random."""
    from cnnspec.backends.keras_builder import build_model

    if weights is not None and random_weights:
        raise UsageError("--weights and --random-weights contradict each other; give one")
    compiled = compile_reported(file, set, allow_outside=allow_outside, max_params=max_params)
    target = output or Path(f"{compiled.name}.keras")
    if target.suffix != ".keras":
        raise UsageError(f"expected an output path ending in .keras; received {target}")
    if target.is_dir():
        raise UsageError(f"{target} is a directory")
    from cnnspec.fileio import atomic_path, check_writable

    check_writable(target, option="-o", folder=False)  # before TensorFlow is imported
    if plot is not None:
        check_writable(plot, option="--plot", folder=False)
    model = build_model(compiled.ir)
    loaded: list[str] = []
    if not random_weights:
        from cnnspec.training.transfer import apply_plan, plan_loads, spec_loads

        loads = spec_loads(compiled, weights)  # [] for a spec without weight sources
        for plan in plan_loads(model, loads) if loads else ():
            apply_plan(model, plan)
            loaded.extend(plan.lines())
    from cnnspec.training.state import model_file_bytes

    with atomic_path(target, needed=model_file_bytes(model)) as temp:
        model.save(temp)
    console = stdout()
    for line in loaded:
        console.print(line, highlight=False)
    if summary:
        from cnnspec.backends.live_summary import live_summary
        from cnnspec.cli.inspect import print_summary

        print_summary(live_summary(model, compiled.ir), f"{compiled.name} (built)")
    if plot is not None:
        for path in write_graph(compiled.ir, plot):
            console.print(f"wrote {path}", highlight=False)
    console.print(
        f"[green]built[/green] {compiled.name}: {model.count_params():,} parameters → {target}",
        highlight=False,
    )
