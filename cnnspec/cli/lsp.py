"""`cnnspec lsp` — the language server over stdio, for editors (no TensorFlow)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from cnnspec.cli.common import fail_usage, guarded


@guarded
def lsp(
    debounce_ms: Annotated[
        int,
        typer.Option(
            "--debounce-ms",
            min=0,
            help="while the user types, check a document at most once per this many milliseconds",
        ),
    ] = 200,
    stdio: Annotated[
        bool,
        typer.Option(
            "--stdio",
            help="talk over stdin/stdout, the only transport (editors pass it; it may be left out)",
            show_default=False,
        ),
    ] = False,
) -> None:
    """Language server over stdio: diagnostics, quick fixes, hover, definitions, rename, completion, outline.

    Ctrl-C or SIGTERM ends it as every command: "interrupted", exit 130."""
    try:
        from cnnspec.lsp.server import serve
    except ImportError as exc:
        raise fail_usage(
            f"the language server needs the `lsp` extra ({(exc.name or 'pygls').split('.')[0]} is missing)",
            "pip install 'cnnspec[lsp]'",
        ) from None
    if sys.stdin is None:  # (fd 0 closed: `cnnspec lsp <&-`) nothing would ever come to answer
        raise fail_usage(
            "expected standard input to be open: the language server reads the editor's requests there",
            "start it from the editor (or with a pipe to its stdin), as `cnnspec lsp --stdio`",
        )
    serve(debounce_ms / 1000)
