"""`cnnspec lr-find FILE` — a learning-rate range test: which rate to train the spec with.

The model trains for ``--steps`` batches with the rate growing exponentially from ``--min`` to
``--max`` (cnnspec/training/lr_find.py), on the spec's data, augmentation, optimizer, weights
sources and frozen layers; nothing of it is kept. It prints the suggested rate (where the
smoothed loss falls fastest), the rate of the lowest loss and a tenth of it, and with
``--plot`` draws the loss against the rate.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Annotated

import typer

from cnnspec.analysis.settings_types import FLOAT32_RANGE
from cnnspec.cli.common import (
    DEFAULT_MAX_PARAMS,
    EXIT_INTERRUPTED,
    AllowOutsideOption,
    MaxParamsOption,
    SetOption,
    SpecArgument,
    batch_boundary_stops,
    compile_reported,
    echo,
    given_output,
    guarded,
    stderr,
    stdout,
)
from cnnspec.cli.render import TextOrJson, safe
from cnnspec.errors import UsageError


@guarded
def lr_find(
    file: SpecArgument,
    set: SetOption = None,
    low: Annotated[float, typer.Option("--min", help="the first rate tried")] = 1e-7,
    high: Annotated[float, typer.Option("--max", help="the last rate tried")] = 10.0,
    steps: Annotated[
        int, typer.Option("--steps", min=5, max=100_000, help="batches of the sweep, one rate each")
    ] = 100,
    plot: Annotated[
        Path | None,
        typer.Option("--plot", help="draw the loss against the rate into this PNG", parser=given_output),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="replace an existing --plot picture that cnnspec did not draw")
    ] = False,
    format: Annotated[TextOrJson, typer.Option("--format", "-f", help="text or json")] = TextOrJson.text,
    weights: Annotated[
        str | None,
        typer.Option("--weights", help="start from these weights, as `cnnspec train --weights`"),
    ] = None,
    allow_outside: AllowOutsideOption = False,
    max_params: MaxParamsOption = DEFAULT_MAX_PARAMS,
) -> None:
    """Find a learning rate: train briefly with the rate growing from --min to --max.

    Every batch has its own rate; the sweep stops once the loss diverges. It suggests the rate
    where the smoothed loss falls fastest, and names the rate of the lowest loss and a tenth of
    it. Nothing is kept but the --plot picture.
    """
    from cnnspec.cli.outputs import refuse_foreign, refuse_idle_force
    from cnnspec.fileio import check_writable, write_atomic
    from cnnspec.reporting.images import is_cnnspec_png

    if not 0 < low < high:
        raise UsageError(f"expected 0 < --min < --max; received --min {low:g} and --max {high:g}")
    # the optimizer holds its rate in float32: 1e-310 was 0 there, 1e300 infinite
    if not (FLOAT32_RANGE[0] <= low and high <= FLOAT32_RANGE[1]) or not math.isfinite(high / low):
        raise UsageError(
            f"expected --min and --max between {FLOAT32_RANGE[0]:g} and {FLOAT32_RANGE[1]:g} (rates a "
            f"float32 holds); received --min {low:g} and --max {high:g}",
            "learning rates from 1e-7 to 10 (the defaults) cover what trains",
        )
    if plot is None:
        refuse_idle_force(force, "--plot", "draws nothing without it")
    else:
        if plot.suffix.lower() != ".png":
            raise UsageError(f"expected --plot to end in .png; received {plot}")
        check_writable(plot, option="--plot", folder=False)
        _refuse_run_folder(plot)  # --force or not: a run's own pictures are not ours to replace
        refuse_foreign(plot, "--plot", force, is_cnnspec_png)
    from cnnspec.training.lr_find import find_rate, rate_override, sweep_overrides, sweep_png
    from cnnspec.training.outcomes import TrainingInterrupted

    overrides = list(set or [])
    compiled = compile_reported(file, overrides, allow_outside=allow_outside, max_params=max_params)
    sweeping = compile_reported(
        file,
        [*overrides, *sweep_overrides(compiled, low, high, steps)],
        allow_outside=allow_outside,
        max_params=max_params,
        warnings=False,
    )
    try:  # Ctrl-C and SIGTERM stop the sweep at a batch boundary
        with batch_boundary_stops():
            stderr().print(
                f"sweeping {safe(compiled.name)}: {steps} batches, rate {low:g} → {high:g} ...",
                highlight=False,
            )
            sweep = find_rate(compiled, sweeping, steps, weights)
    except TrainingInterrupted:
        stderr().print("[yellow]interrupted[/yellow]: nothing was kept", highlight=False)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    if plot is not None:
        write_atomic(plot, sweep_png(sweep, f"{compiled.name}: learning-rate range test"))
    if format == TextOrJson.json:
        import json

        echo(json.dumps({"spec": str(file), "model": compiled.name, **sweep.describe()}, indent=1))
        return
    console = stdout()
    for line in sweep.summary():
        console.print(safe(line), highlight=False)
    if sweep.steepest is not None:
        override = rate_override(compiled, sweep.steepest)
        if override is None:
            console.print("use it as the first phase's learning_rate", highlight=False)
        else:
            import shlex

            command = shlex.join(["cnnspec", "train", str(file), *_given(set), "--set", override])
            console.print(f"train with it: {safe(command)}", highlight=False, soft_wrap=True, markup=False)
    if plot is not None:
        console.print(f"wrote {safe(plot)}", highlight=False)


def _given(overrides: list[str] | None) -> list[str]:
    """The command line's own ``--set`` options, to repeat in the printed train command."""
    return [word for item in overrides or [] for word in ("--set", item)]


def _refuse_run_folder(plot: Path) -> None:
    """Refuse a ``--plot`` in a run folder, or inside one (exit 2, whatever ``--force`` says),
    as ``visualize -o``, ``report -o`` and ``runs compare --png`` refuse another run's: a
    sweep belongs to no run, and ``--plot RUN/history.png`` replaced that run's own curves
    without a word (cnnspec drew them, so their mark let them be replaced). Links are
    followed: the picture is where they lead."""
    from cnnspec.cli.outputs import enclosing_run

    holder = enclosing_run(Path(os.path.realpath(plot)).parent)
    if holder is None:
        return
    raise UsageError(
        f"expected --plot outside the folders of runs; {plot} is inside {holder}, a run's folder, "
        "where the picture would be read as that run's own",
        "choose another --plot (lr-find draws for no run)",
    )
