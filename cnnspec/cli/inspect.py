"""`cnnspec inspect FILE` — the layer table with shapes, parameters and MACs (no TensorFlow)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import typer

from cnnspec.analysis.report import human_count, shape_text
from cnnspec.cli.common import (
    DEFAULT_MAX_PARAMS,
    AllowOutsideOption,
    MaxParamsOption,
    SetOption,
    SpecArgument,
    compile_reported,
    echo,
    guarded,
    report,
    stdout,
)
from cnnspec.cli.layer_table import summary_table
from cnnspec.cli.render import OutputFormat, safe
from cnnspec.errors import format_path
from cnnspec.ir import ModelIR


def print_summary(summary: dict[str, Any], title: str) -> None:
    """Print the layer table and the totals line."""
    console = stdout()
    console.print(summary_table(summary, title))
    console.print(
        f"input {shape_text(summary['input_shape'])} → output {shape_text(summary['output_shape'])}  "
        f"total params [bold]{summary['total_params']:,}[/bold] "
        f"(trainable {summary['trainable_params']:,}, non-trainable {summary['non_trainable_params']:,}"
        + (f", of which frozen {summary['frozen_params']:,}" if summary.get("frozen_params") else "")
        + "), "
        f"MACs {human_count(summary['macs'])}",
        highlight=False,
    )


@guarded
def inspect(
    file: SpecArgument,
    format: Annotated[
        OutputFormat,
        typer.Option(
            "--format", "-f", help="text, json or github (errors and warnings as GitHub annotations)"
        ),
    ] = OutputFormat.text,
    set: SetOption = None,
    allow_outside: AllowOutsideOption = False,
    max_params: MaxParamsOption = DEFAULT_MAX_PARAMS,
) -> None:
    """Print every layer's output shape, parameter count and MACs, with totals."""
    compiled = compile_reported(file, set, allow_outside=allow_outside, max_params=max_params, warnings=False)
    # JSON's stdout holds the summary alone: its warnings go to stderr, as text, and into the
    # document as `warnings` (as validate's JSON has them: a tool reading it lost them)
    report(compiled.warnings, "text" if format == OutputFormat.json else format.value)
    summary = compiled.summary()
    if format == OutputFormat.json:
        echo(json.dumps({**summary, "warnings": [w.to_json() for w in compiled.warnings]}, indent=2))
        return
    print_summary(summary, f"{compiled.name} ({safe(Path(file))})")
    applied = defaults_applied(compiled.ir)
    if applied:
        stdout().print("per-kind defaults applied: " + "; ".join(applied), highlight=False, soft_wrap=True)


def defaults_applied(ir: ModelIR) -> list[str]:
    """``kind param=value (N layers)`` for each effective value the spec's or a block's
    ``defaults:`` gave the layers that did not write that parameter."""
    # a backbone's layers by its own file's paths and defaults: its `model[2]` is not the model's
    # (they were counted with the model's item of that path, their own defaults left out)
    by_path = {
        (file, format_path(path)): params
        for file, defaulted in [("", ir.defaulted), *ir.backbone_defaulted.items()]
        for path, params in defaulted.items()
    }
    counts: Counter[tuple[str, str, str]] = Counter()
    for node in ir.nodes:
        for param in by_path.get((ir.backbone_layers.get(node.name, ""), node.path), ()):
            counts[(node.kind, param, json.dumps(node.params.get(param)))] += 1
    return [
        f"{kind} {param}={safe(value)} ({n} layer{'s' if n != 1 else ''})"
        for (kind, param, value), n in sorted(counts.items())
    ]
