"""`cnnspec import SOURCE -o spec.yaml` — a Keras model (.keras, JSON config, keras:NAME) → a spec.

The .keras and JSON paths read JSON only and never import TensorFlow; keras:NAME and
``--weights`` from keras:NAME build the model (TensorFlow, lazily).
"""

from __future__ import annotations

import os
import time
from typing import Annotated

import typer

from cnnspec.cli.common import DEFAULT_MAX_PARAMS, MaxParamsOption, file_output, guarded, stdout
from cnnspec.fileio import check_writable, same_file


@guarded
def import_(
    source: Annotated[
        str,
        typer.Argument(
            help="a .keras file, a Keras JSON config (model.to_json() or model.get_config()), or keras:NAME",
            show_default=False,
        ),
    ],
    out: Annotated[  # text: Typer's Path drops the trailing slash of `-o new_folder/`
        str, typer.Option("--output", "--out", "-o", metavar="<path>", help="the spec file to write")
    ],
    weights: Annotated[
        bool,
        typer.Option(
            "--weights",
            help="also write the source's weights beside the spec as NAME.weights.h5, NAME the -o "
            "file's (model.yaml: model.weights.h5; spec: weights:)",
        ),
    ] = False,
    fold: Annotated[
        bool, typer.Option("--fold/--no-fold", help="fold repeated structure into blocks and repeats")
    ] = True,
    force: Annotated[
        bool, typer.Option("--force", "-f", help="replace an existing spec (and weights) file")
    ] = False,
    max_params: MaxParamsOption = DEFAULT_MAX_PARAMS,
) -> None:
    """Import a Keras model as a readable spec, folded into blocks and repeats."""
    from cnnspec.cli.render import safe
    from cnnspec.errors import UsageError
    from cnnspec.importer.output import run_import, weights_name, zoo_counterpart

    source = _check_source(source)
    output = file_output(out, "model.yaml", dash=False)
    assert output is not None
    # (--force replaced a model.keras with YAML; the source itself gets its own message below)
    if output.suffix.lower() not in (".yaml", ".yml") and not same_file(output, source):
        raise UsageError(
            f"expected -o to name a spec file ending in .yaml; received {output}",
            f"for example -o {output.with_suffix('.yaml').name}",
        )
    targets = [output, *([output.with_name(weights_name(output))] if weights else [])]
    for target in targets:  # a read-only folder, a file in the way: refused before the work
        check_writable(target, option="-o", folder=False)
    # the source itself is refused with its own message (importer.output), --force or not
    existing = [t for t in targets if os.path.lexists(t) and not same_file(t, source)]
    if existing and not force:  # (as codegen: a spec the user wrote is not replaced unasked)
        verb = "already exist" if len(existing) > 1 else "already exists"
        raise UsageError(
            f"{' and '.join(map(str, existing))} {verb}",
            f"pass --force to replace {'them' if len(existing) > 1 else 'it'}",
        )
    start = time.perf_counter()
    imported = run_import(source, output, weights=weights, folding=fold, max_params=max_params)
    seconds = time.perf_counter() - start
    console = stdout()
    console.print(
        f"[green]imported[/green] {safe(source)} → {safe(output)} in {seconds:.2f} s", highlight=False
    )
    console.print(f"  spec lines:    {imported.lines}", highlight=False)
    zoo = zoo_counterpart(imported)
    if zoo is not None:
        console.print(
            f"  zoo spec:      {zoo.spec_lines} lines (zoo:{zoo.variant}, {zoo.spec.name})", highlight=False
        )
    console.print(f"  source layers: {imported.source_layers}", highlight=False)
    if imported.rewritten:
        console.print(
            f"  rewritten:     {imported.rewritten} raw-op hard sigmoids, ReLU(6)(x + 3) / 6, as "
            "activation: hard_sigmoid",
            highlight=False,
        )
    found = ", ".join(imported.blocks) if imported.blocks else "none"
    console.print(f"  blocks found:  {len(imported.blocks)} ({safe(found)})", highlight=False)
    if weights and imported.weights_file is not None:
        console.print(f"  weights:       {safe(output.with_name(weights_name(output)))}", highlight=False)
    elif weights:
        console.print(
            "  note:          the model has no parameters, so there are no weights to carry: "
            "no weights file was written and the spec has no weights: key",
            highlight=False,
        )
    for note in imported.notes:  # what the spec does not keep of the source, and its effect
        console.print(f"  note:          {safe(note)}", highlight=False)


def _check_source(source: str) -> str:
    """The model file SOURCE names: a run folder of ``cnnspec train`` stands for its
    ``model.keras``, as it does for evaluate, predict and export (it was "expected a file;
    received a folder"). Refuse a SOURCE path that names no file (nothing there, another folder,
    a FIFO or device, an empty path) as a usage error, exit 2, as evaluate, export and report
    refuse the paths they read; a file that is there but no model stays a located error of the
    import (exit 1)."""
    from cnnspec.errors import UsageError
    from cnnspec.fileio import special_kind
    from cnnspec.importer.source import KERAS_PREFIX

    if source.startswith(KERAS_PREFIX):
        return source
    what = "pass a .keras file, a JSON config or keras:NAME"
    if not source:  # Path("") is the working folder, which would be "a folder"
        raise UsageError("expected a model file; received an empty path", what)
    kind = special_kind(source)  # reading a FIFO would wait for a writer; a device is no model
    if os.path.isdir(source):
        model = os.path.join(source, "model.keras")
        if os.path.isfile(model):  # (a run folder: its model, as for evaluate and export, which
            return model  # take a folder holding a model.keras, lock.json or not)
        if os.path.isfile(os.path.join(source, "lock.json")):
            raise UsageError(
                f"{source}: the run folder has no model.keras (the run has not finished)",
                f"finish it with `cnnspec train SPEC --resume {source}`, or {what}",
            )
        raise UsageError(
            f"{source}: expected a file, or a run folder with its model.keras; received a folder", what
        )
    if kind is not None:
        raise UsageError(f"{source}: expected a model file; received {kind}", what)
    if not os.path.isfile(source):
        raise UsageError(f"{source}: no such file", what)
    return source
