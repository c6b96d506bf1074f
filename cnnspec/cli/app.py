"""The `cnnspec` Typer application: joins the per-command modules.

Command modules import only light dependencies at import time, so `cnnspec validate`,
`inspect` and `schema` never load TensorFlow. A command line that names one command imports
only that command's module (:func:`main`): a cold `cnnspec validate` does not pay for building
the other eighteen commands and what their modules import (issue 15's validate time).

SIGTERM (``kill``, a scheduler ending a job) stops every command as Ctrl-C does: exit 130,
"interrupted", and the clean-up of every atomic write and scratch folder runs. A Ctrl-C ends
the same way (no traceback) from the moment :func:`main` runs, while the command's modules
are still being imported too.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import signal
import sys
from typing import TYPE_CHECKING, Any, NoReturn

from cnnspec.version import __version__

if TYPE_CHECKING:
    import typer

#: Every command: its name on the command line → (module, function). Help and completion
#: list them in this order.
COMMANDS: dict[str, tuple[str, str]] = {
    "validate": ("cnnspec.cli.validate", "validate"),
    "inspect": ("cnnspec.cli.inspect", "inspect"),
    "schema": ("cnnspec.cli.schema", "schema"),
    "build": ("cnnspec.cli.build", "build"),
    "train": ("cnnspec.cli.train", "train"),
    "evaluate": ("cnnspec.cli.evaluate", "evaluate"),
    "calibrate": ("cnnspec.cli.calibrate", "calibrate"),
    "visualize": ("cnnspec.cli.visualize", "visualize"),
    "predict": ("cnnspec.cli.predict", "predict"),
    "report": ("cnnspec.cli.report", "report"),
    "export": ("cnnspec.cli.export", "export"),
    "benchmark": ("cnnspec.cli.benchmark", "benchmark"),
    "codegen": ("cnnspec.cli.codegen", "codegen"),
    "zoo": ("cnnspec.cli.zoo", "zoo"),
    "search": ("cnnspec.cli.search", "search"),
    "lr-find": ("cnnspec.cli.lr_find", "lr_find"),
    "runs": ("cnnspec.cli.runs", "runs"),
    "lsp": ("cnnspec.cli.lsp", "lsp"),
    "import": ("cnnspec.cli.import_", "import_"),
}


def _version(value: bool) -> None:
    import typer

    if value:
        typer.echo(f"cnnspec {__version__}")
        raise typer.Exit()


def _main_options() -> Any:
    """The group's callback (its options). Made when the application is built: Typer is
    imported there, not with this module, so that :func:`main` is running (and catching a
    Ctrl-C) before the first slow import starts."""
    import typer

    def main_options(
        version: bool = typer.Option(
            False, "--version", callback=_version, is_eager=True, help="print the version"
        ),
    ) -> None:
        """Validate, inspect, build and generate code for CNN specs."""
        # Before the command parses its own options, for every command: `lsp` has no guard
        from cnnspec.cli.common import refuse_closed_stdout
        from cnnspec.reporting import glyphs

        refuse_closed_stdout()
        glyphs.install()  # (a picture's missing glyphs: one note, not matplotlib's raw lines)

    return main_options


def build_app(only: str | None = None) -> typer.Typer:
    """The application with every command, or with command ``only`` alone (what a command
    line naming it needs: the group and its options are the same)."""
    import typer

    built = typer.Typer(
        name="cnnspec",
        help="A declarative compiler for convolutional neural networks.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    built.callback()(_main_options())
    for name, (module, function) in COMMANDS.items():
        if only is None or name == only:
            command = getattr(importlib.import_module(module), function)
            built.command(name=name if name == "import" else None, help=flowed(command.__doc__))(command)
    return built


def flowed(doc: str | None) -> str | None:
    """A command's docstring with each paragraph's lines joined. Typer's Rich help keeps a
    paragraph's line breaks, so the source's wrapping (about 95 columns) would show as ragged
    lines in a narrower terminal; Rich wraps the joined text to the terminal's width. A
    paragraph that is a list (a line starting with ``- `` or ``* ``) keeps its lines."""
    import inspect  # (not at import: the module loads before main() can catch a Ctrl-C)

    if doc is None:
        return None
    paragraphs = inspect.cleandoc(doc).split("\n\n")
    return "\n\n".join(
        paragraph
        if any(line.lstrip().startswith(("- ", "* ")) for line in paragraph.splitlines())
        else " ".join(line.strip() for line in paragraph.splitlines())
        for paragraph in paragraphs
    )


_APP: typer.Typer | None = None


def __getattr__(name: str) -> Any:
    # `app` (every command) is built on first use: tests and `from cnnspec.cli.app import app`.
    global _APP
    if name == "app":
        if _APP is None:
            _APP = build_app()
        return _APP
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _command_named(argv: list[str]) -> str | None:
    """The command a command line names, when it is the first argument (the group's only
    option, ``--version``, ends the program before any command runs, and help lists all)."""
    return argv[0] if argv and argv[0] in COMMANDS else None


#: The cycle collector's generation-0 threshold in a CLI process (Python's default: 700). A
#: command allocates tens of thousands of small objects that live until it ends (the spec tree,
#: the IR, imported modules); at 700 the collector scans them thousands of times (~10 % of a
#: cold zoo validate, issue 15). Library users of cnnspec keep Python's settings.
GC_THRESHOLD = 20_000


#: The exit status of an interrupted command (Ctrl-C, SIGTERM): 128 + SIGINT, as
#: :func:`cnnspec.cli.common.guarded` reports it.
EXIT_INTERRUPTED = 130
#: The exit status when the reader of the output went away: 128 + SIGPIPE, as
#: :data:`cnnspec.cli.common.EXIT_PIPE` (the commands' own output).
EXIT_PIPE = 141


def main(prog_name: str | None = None) -> None:
    """The ``cnnspec`` console script (``prog_name``: how its help names it, when not as run)."""
    try:
        _stop_on_sigterm()
        _usable_terminal()
        if sys.stdout is None:  # now: Click prints --version and --help before any callback
            _refuse_closed_stdout()
        gc.set_threshold(GC_THRESHOLD, *gc.get_threshold()[1:])
        only = _command_named(sys.argv[1:])
        built = build_app(only) if only is not None else build_app()
        # What is imported by now (Typer, Click, PyYAML, the command's modules) lives until the
        # process ends: frozen, the collector's full collections and its last one at exit do
        # not scan it again (~2 % of a cold zoo validate, issue 15).
        gc.freeze()
        if prog_name is None:
            built()  # (named as Click finds it: `cnnspec`)
        else:
            built(prog_name=prog_name)
    except KeyboardInterrupt:  # before the command's guard was there (imports, the app's build)
        _say_interrupted()
        _quiet_finalizers()
        raise SystemExit(EXIT_INTERRUPTED) from None
    except SystemExit as done:
        # Typer ends a KeyboardInterrupt raised outside the command's guard (while Click parses
        # the command line) with a silent exit 130; the guard itself has said "interrupted"
        if done.code == EXIT_INTERRUPTED and _raised_from(done, KeyboardInterrupt):
            _say_interrupted()
        if done.code == EXIT_INTERRUPTED:
            _quiet_finalizers()
        elif done.code == 1 and _raised_from(done, BrokenPipeError):
            # help, --version or a usage error printed into a closed pipe (`cnnspec -h | head -1`),
            # before any guard: Rich and Click end it with 1, the status of a spec error
            _stop_for_closed_output()
        raise
    except Exception as error:
        # a Ctrl-C or SIGTERM while the command's modules were imported can come back as another
        # error: Python wraps one raised in a class's __set_name__ (dataclasses) in a RuntimeError
        from cnnspec.cli.common import failed_writing_stdout, say_stdout_failed
        from cnnspec.fileio import stop_noted

        if stop_noted() or _raised_from(error, KeyboardInterrupt):
            _say_interrupted()
            _quiet_finalizers()
            raise SystemExit(EXIT_INTERRUPTED) from None
        if failed_writing_stdout(error):  # help or --version, printed before any guard
            raise SystemExit(say_stdout_failed(error)) from None
        raise


def _usable_terminal() -> None:
    """What the process was given of its terminal, made usable before anything prints.

    - An output encoding that cannot write every character (``PYTHONIOENCODING=ascii``, a C
      locale with ``PYTHONUTF8=0``) writes the ones it cannot as escapes (``\u2014``), as
      Python's stderr does: cnnspec's own messages have ``—``, ``→`` and ``×``, and one of them
      ended every command with "internal error (UnicodeEncodeError …)", the help with a traceback.
    - ``COLUMNS`` or ``LINES`` that is no positive number is ignored (``export COLUMNS=$(tput
      cols)`` without a terminal gives ``0``): Rich took ``COLUMNS=0`` for a width of nothing and
      printed not a word, errors and hints included."""
    import codecs
    import os

    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        try:
            utf8 = codecs.lookup(getattr(stream, "encoding", None) or "utf-8").name == "utf-8"
        except LookupError:
            utf8 = False
        # (a C locale's surrogateescape writes back undecodable file-name bytes, and only them)
        if reconfigure is not None and (getattr(stream, "errors", None) == "strict" or not utf8):
            # (a closed or detached stream: said where it is used)
            with contextlib.suppress(OSError, ValueError):
                reconfigure(errors="backslashreplace")
    for name in ("COLUMNS", "LINES"):
        given = os.environ.get(name)
        if given is not None and not (given.strip().isdigit() and int(given) > 0):
            del os.environ[name]


def _refuse_closed_stdout() -> None:
    """Stop with exit 2 and the usual error and hint (:func:`cnnspec.cli.common.
    refuse_closed_stdout`) outside Typer, which would turn the exit it raises into a status."""
    from cnnspec.cli.common import refuse_closed_stdout

    try:
        refuse_closed_stdout()
    except RuntimeError as stop:  # typer.Exit
        raise SystemExit(getattr(stop, "exit_code", 2)) from None


def _stop_on_sigterm() -> None:
    """SIGTERM raises ``KeyboardInterrupt`` in the main thread, as Ctrl-C does: by default it
    ends the process at once, so no ``finally`` ran and every atomic write left its temp file
    (and a benchmark its timing worker). Both signals are also noted
    (:func:`cnnspec.fileio.note_stop`): where something swallows the exception, no write
    commits and the command still ends "interrupted". ``train`` and ``search`` put their own
    handlers in place while they run. A signal that the parent process set to be ignored stays
    ignored."""
    import cnnspec.fileio  # noqa: F401  (now: the handler must not import while a signal lands mid-import)

    try:
        if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
            signal.signal(signal.SIGTERM, _terminated)
        if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            signal.signal(signal.SIGINT, _terminated)
    except ValueError:  # not the main thread (an embedding program): its signals are its own
        pass


def _terminated(signum: int, frame: Any) -> None:
    from cnnspec.fileio import note_stop

    note_stop()
    raise KeyboardInterrupt


def _raised_from(done: BaseException, kind: type[BaseException]) -> bool:
    """Whether the exceptions that ``done`` was raised from (the chain a traceback would show)
    include a ``kind``: a ``KeyboardInterrupt`` that no guard reported (a guard raises ``from
    None``), or the ``BrokenPipeError`` of Rich's or Click's exit 1 for a closed pipe."""
    seen: set[int] = set()
    current: BaseException | None = done
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, kind):
            return True
        current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)
    return False


def _stop_for_closed_output() -> NoReturn:
    """End quietly with :data:`EXIT_PIPE`, as a command's guard ends when its output's reader
    went away (:func:`cnnspec.cli.common.stop_for_closed_stdout`): stdout and stderr point at
    the null device, so nothing is flushed into the closed pipe at exit."""
    from cnnspec.cli.common import silence_closed_output

    silence_closed_output(sys.stdout, sys.stderr)
    raise SystemExit(EXIT_PIPE) from None


def _quiet_finalizers() -> None:
    """After "interrupted", the process only ends: keep the finalizers of what the stop cut
    short off stderr. A write interrupted inside ``ZipFile`` (``model.save``) leaves the zip
    open on a closed temp file, and its ``__del__`` (when the exception's frames are freed, or
    at exit) fails with "seek of closed file", printed as "Exception ignored in ..." after the
    line that said how the command ended (a rare race, seen in ``tests/test_signals.py``'s
    SIGTERM during a build)."""
    sys.unraisablehook = _ignore_unraisable


def _ignore_unraisable(report: Any) -> None:
    """``sys.unraisablehook`` of a process that is ending after a stop."""


def _say_interrupted() -> None:
    # plain text: Rich may not be imported yet, and the command's output is all there is of it
    try:
        sys.stderr.write("interrupted\n")
        sys.stderr.flush()
    except (AttributeError, OSError, ValueError):  # stderr closed (None if fd 2 was): the status says it
        pass
