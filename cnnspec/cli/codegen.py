"""`cnnspec codegen FILE [-o model.py] [--script]` — standalone Python from a spec.

The generated code does not import cnnspec. It is checked before anything is written: a
whitelist of the constructs the templates produce, and an abstract run of ``build_model()``
that must build exactly the compiled model (layer names, classes, arguments, inputs). Files
are written atomically and never over an existing file without ``--force``; never over the
spec itself, a folder, FIFO, device or socket, even with it. No TensorFlow is imported.
"""

from __future__ import annotations

import os
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
    echo,
    file_output,
    guarded,
    stderr,
    stdout,
)
from cnnspec.cli.render import safe
from cnnspec.errors import UsageError
from cnnspec.fileio import same_file


@guarded
def codegen(
    file: SpecArgument,
    out: Annotated[
        str | None,  # a str: Typer's Path drops the trailing slash of `-o new_folder/`
        typer.Option(
            "--output",
            "--out",
            "-o",
            metavar="<path>",
            help="the .py file to write (default, or -: print to stdout); a .ipynb name writes the "
            "code as a Jupyter notebook",
        ),
    ] = None,
    script: Annotated[
        bool,
        typer.Option("--script", help="a complete training program (data, fit, evaluation, plots)"),
    ] = False,
    force: Annotated[bool, typer.Option("--force", "-f", help="replace an existing output file")] = False,
    format_code: Annotated[
        bool,
        typer.Option("--format/--no-format", help="run `ruff format` on the code when ruff is installed"),
    ] = True,
    set: SetOption = None,
    allow_outside: AllowOutsideOption = False,
    max_params: MaxParamsOption = DEFAULT_MAX_PARAMS,
) -> None:
    """Generate readable Python that builds the spec's Keras model (or, with --script, trains it).

    Blocks become functions, `repeat` becomes loops, `vars` become constants. The code is
    proven to build the same layers as `cnnspec build` before it is written.
    """
    output = file_output(out, "model.py")
    if output is None:
        from cnnspec.cli.outputs import refuse_idle_force

        refuse_idle_force(force, "-o", "prints the code to standard output")
    else:
        # os.path: Path.is_dir/exists raise for a name the OS refuses (too long); those fail
        # cleanly where the file is written (check_writable, write_atomic)
        if os.path.isdir(output):
            raise UsageError(f"{output} is a folder; expected a file path such as model.py")
        if same_file(output, file):  # (before "already exists": --force would not help)
            raise UsageError(
                f"{output} is the spec file itself; codegen would replace the spec with Python",
                "choose another -o, such as model.py",
            )
        from cnnspec.fileio import check_writable

        check_writable(output, option="-o", folder=False)  # also refuses a FIFO, device, socket
        if os.path.lexists(output) and not force:
            raise UsageError(f"{output} already exists", "pass --force to replace it")
    from dataclasses import replace

    from cnnspec.analysis.passes import checks_weights_on_disk
    from cnnspec.backends.python_emitter import generate_code, source_label, source_lines

    read: list[Path] = []
    # --script: its weights are read when it runs, so a source not there is refused here as
    # validate refuses it (the script would stop with a traceback, its seed unknown)
    compiled = compile_reported(
        file,
        set,
        allow_outside=allow_outside,
        max_params=max_params,
        read=read,
        weights_on_disk=script and checks_weights_on_disk(Path(file)),
    )
    taken = next((path for path in read if output is not None and same_file(output, path)), None)
    if taken is not None:  # an `extends`, `use` or backbone spec: --force does not make it ours
        raise UsageError(
            f"{output} is a spec file that {file} reads (through extends, use or a backbone); "
            "codegen would replace it with Python",
            "choose another -o, such as model.py",
        )
    # The code is the spec's with the overrides: its header says so, for a reader to make it again
    # (the spec's hash in it is the overridden spec's).
    source = source_label(replace(compiled, path=Path(file)))  # (the file as typed)
    generated = generate_code(
        compiled, script=script, source_name=source, output=output, format_code=format_code
    )
    console = stderr()
    for note in generated.notes:
        console.print(f"[yellow]note:[/yellow] {safe(note)}", highlight=False, soft_wrap=True)
    if output is None:
        echo(generated.text, nl=False)
        return
    from cnnspec.backends.notebook import is_notebook, notebook_of
    from cnnspec.fileio import write_atomic

    notebook = is_notebook(output)
    write_atomic(
        output,
        notebook_of(generated.text, compiled.ir.name, source, script) if notebook else generated.text,
    )
    what = ("training script" if script else "model module") + (" as a notebook" if notebook else "")
    # zoo:NAME names no file here: its lines are the zoo family file's (as the import table counts)
    spec_lines = source_lines(Path(file) if Path(file).is_file() else Path(compiled.doc.file))
    stdout().print(  # (stdout: the code went to the file; every command says "wrote" there)
        f"[green]wrote[/green] {safe(output)}: {what}, {generated.lines} lines from "
        f"{spec_lines} spec lines ({'structured' if generated.structured else 'one layer per line'})",
        highlight=False,
        soft_wrap=True,
    )
