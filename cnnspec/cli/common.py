"""Shared CLI pieces: options, consoles, and the guard that turns errors into exit codes.

Exit codes: 0 success, 1 spec errors and files that could not be written (a full or failing
disk), 2 usage errors, 3 internal errors. No traceback is ever shown for a user mistake; an
unexpected exception prints a short "internal error" line.
"""

from __future__ import annotations

import builtins
import contextlib
import functools
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer

from cnnspec.analysis.report import DEFAULT_MAX_PARAMS
from cnnspec.errors import Diagnostic, SpecError, UsageError, WriteError, out_of_memory
from cnnspec.fileio import check_stop, stop_handled, stop_noted, user_path

if TYPE_CHECKING:
    from rich.console import Console

    from cnnspec.analysis.compiled import CompiledSpec

EXIT_SPEC = 1
EXIT_WRITE = 1  # a full, failing or read-only disk: the run can continue once it is fixed
EXIT_USAGE = 2
EXIT_INTERNAL = 3
EXIT_OUT_OF_MEMORY = 1  # as a full disk: a resource, not a bug; the command works once there is room
EXIT_KERNEL = 1  # a TensorFlow kernel of this machine refused the model: not cnnspec's bug
#: Ctrl-C or SIGTERM: 128 + SIGINT, as a shell reports a process that SIGINT ended.
EXIT_INTERRUPTED = 130
#: Stdout's reader went away (`cnnspec validate specs/*.yaml | head -1`): 128 + SIGPIPE, the
#: status a shell reports for a program that the signal stopped.
EXIT_PIPE = 141

F = TypeVar("F", bound=Callable[..., Any])

SetOption = Annotated[
    list[str] | None,
    typer.Option("--set", help="override a spec value, e.g. --set training.epochs=3 (repeatable)"),
]
#: ``--temperature``'s words, in the metavar of every command that takes it (evaluate, predict,
#: visualize, export; one parser reads them all: cnnspec.reporting.temperature.parse_option):
#: auto (the run's temperature.json), none (the model's own probabilities, as 1), or a number.
TEMPERATURE_METAVAR = "auto|none|T"
AllowOutsideOption = Annotated[
    bool,
    typer.Option(
        "--allow-outside",
        help="allow extends, use and backbone specs to read files outside the spec's folder",
    ),
]
MaxParamsOption = Annotated[
    int,
    typer.Option("--max-params", min=1, help="refuse models with more parameters than this"),
]
#: ``train --no-report`` and ``search --no-report``: a run ends without its report.html (the
#: page and its pictures are a second or two of a small run: a search's trials, a CI check).
NoReportOption = Annotated[
    bool,
    typer.Option(
        "--no-report",
        help="end the run without report.html (`cnnspec report RUN` writes it later)",
    ),
]


class _GivenPath:
    """A path argument or option, as Typer's ``parser=``: an empty one (``""``, an unset shell
    variable) is refused, where ``Path("")`` would read it as the working folder. A class for
    its ``__name__``, which Click shows as the type (``<path>``, as Typer's own ``Path`` does)."""

    __name__ = "path"

    def __call__(self, text: str | Path) -> Path:
        if isinstance(text, Path):  # a default, passed through
            return text
        if not text:
            raise typer.BadParameter("is empty; expected a path")
        # `~` as --weights and --data take it: `--out=~/runs` (a `~` the shell leaves alone)
        # made a folder named `~` in the working folder
        return user_path(text)


given_path = _GivenPath()


class _GivenOutput(_GivenPath):
    """An output path as Typer's ``parser=``: empty, or ``-`` (standard output, which the
    commands that take one read as such; here it made a folder named ``-``), refused."""

    def __call__(self, text: str | Path) -> Path:
        if text == "-":
            raise typer.BadParameter(
                "is - (standard output), which this command does not write to; expected a path"
            )
        return super().__call__(text)


given_output = _GivenOutput()


SpecArgument = Annotated[
    Path, typer.Argument(help="the spec file (YAML)", show_default=False, parser=given_path)
]


def compile_reported(
    file: Path,
    overrides: Sequence[str] | None,
    *,
    allow_outside: bool = False,
    max_params: int = DEFAULT_MAX_PARAMS,
    warnings: bool = True,
    read: list[Path] | None = None,
    weights_on_disk: bool = False,
) -> CompiledSpec:
    """Compile a command's spec (``--set``, ``--allow-outside``, ``--max-params``) and print its
    warnings to stderr (unless ``warnings`` is false). Errors raise :class:`SpecError`, which
    :func:`guarded` reports. ``read``: filled with every file the composition reads (its
    ``extends``, ``use`` and backbone specs, the spec too). ``weights_on_disk``: refuse weights
    sources that are not on the disk, as ``validate`` does
    (:attr:`cnnspec.analysis.passes.Context.weights_on_disk`)."""
    from cnnspec.analysis.passes import compile_spec

    def reader(path: Path) -> None:
        if read is not None:
            read.append(path)
        # (None: the file's text is read from disk, as without a reader)

    compiled = compile_spec(
        file,
        list(overrides or []),
        allow_outside=allow_outside,
        max_params=max_params,
        reader=reader if read is not None else None,
        weights_on_disk=weights_on_disk,
    )
    if warnings:
        report(compiled.warnings, "text")
    return compiled


@contextlib.contextmanager
def batch_boundary_stops() -> Iterator[None]:
    """While inside, Ctrl-C and a scheduler's SIGTERM are raised at the next batch or epoch
    boundary of a training (cnnspec/training/interrupts.py), not wherever Python happens to
    be; the handlers before are put back after. Not the main thread (some test runners): as
    they were. A signal raised at once is noted as the command line's own handler notes it
    (:attr:`~cnnspec.training.interrupts.InterruptGate.notes`)."""
    import signal

    from cnnspec.training.interrupts import GATE

    previous: dict[int, Any] = {}
    try:
        for number in (signal.SIGINT, signal.SIGTERM):
            previous[number] = signal.signal(number, GATE.handler)
    except ValueError:  # not the main thread
        pass
    noting, GATE.notes = GATE.notes, True  # (guarded says "interrupted" and lets the note go)
    GATE.requested = False  # a stop remembered for an earlier command of this process is its own
    try:
        yield
    finally:
        GATE.notes, GATE.requested = noting, False  # (this command's stop: said, or noted)
        for number, handler in previous.items():
            signal.signal(number, handler)


@contextlib.contextmanager
def owning_run(run_dir: Path | None, writes_to: Path, alternative: str | None = None) -> Iterator[None]:
    """Hold ``run_dir``'s lock (:mod:`cnnspec.training.runlock`) while a command writes into it.

    ``writes_to`` inside the run folder counts as into it (``visualize RUN -o RUN/pictures/``,
    ``evaluate RUN --out RUN/evals``: they went on beside a training that held the folder, and
    that training's cleanup of temp files may take theirs). Nothing is locked when ``writes_to``
    is elsewhere or ``run_dir`` is no run folder (no lock.json: the command reports that
    itself). A busy folder raises ``RunFolderBusy`` (exit 2; ``alternative``: the other way its
    hint offers). Once held, what killed commands left there is removed
    (:func:`~cnnspec.training.rundir.tidy`).
    """
    if run_dir is None or not (run_dir / "lock.json").is_file():
        yield
        return
    try:
        inside = writes_to.resolve().is_relative_to(run_dir.resolve())
    except (OSError, RuntimeError, ValueError):  # a link loop, a name the OS refuses: not ours
        inside = False
    if not inside:
        yield
        return
    from cnnspec.training.rundir import tidy
    from cnnspec.training.runlock import acquire

    with acquire(run_dir, alternative=alternative):
        # no write of ours is in flight there now: temp files are a killed command's (a report,
        # an evaluation, a SavedModel export's old folder set aside), and so are the snapshots
        # of a finished run, which no `train` of that run would ever remove
        tidy(run_dir)
        yield


def stdout() -> Console:
    """The console for results. Pipes and CI logs have no width of their own: there tables get
    160 columns instead of Rich's default 80."""
    from rich.console import Console  # not at import: see plain_stdout

    class ResultConsole(Console):
        def on_broken_pipe(self) -> None:  # Rich's own exits with 1, our "spec error" status
            self.quiet = True
            stop_for_closed_stdout()

    console = ResultConsole(highlight=False, emoji=False)
    if not console.is_terminal:
        console = ResultConsole(highlight=False, emoji=False, width=max(console.width, 160))
    return console


def stderr() -> Console:
    """The console for errors and notes. Like :func:`stdout`'s, it prints ``:name:`` as
    written: Rich's emoji codes would turn a spec's ``net:x:1`` into ``net❌1``."""
    from rich.console import Console

    return Console(stderr=True, highlight=False, emoji=False)


def plain_stdout() -> bool:
    """Whether Rich would write results to stdout exactly as their plain text: stdout is no
    terminal and nothing forces one (Rich's ``FORCE_COLOR``/``TTY_COMPATIBLE``; IPython, which
    Rich renders for). A command may then print a line without importing Rich, a quarter of a
    cold ``cnnspec validate``'s imports (issue 15); its output is the same either way."""
    if "FORCE_COLOR" in os.environ or os.environ.get("TTY_COMPATIBLE") or "get_ipython" in vars(builtins):
        return False
    try:
        return not sys.stdout.isatty()
    except (AttributeError, ValueError):  # closed (None when fd 1 was): let Rich decide
        return False


def report(diagnostics: list[Diagnostic], fmt: str = "text") -> None:
    """Print diagnostics in the chosen format (text to stderr; json/github to stdout)."""
    if not diagnostics and fmt not in ("json", "github"):
        return  # nothing to print: no console (and no Rich import) for a clean text run
    from cnnspec.cli.render import render_github, render_json, render_text

    if fmt == "json":
        echo(render_json(diagnostics))
    elif fmt == "github":
        if diagnostics:
            echo(render_github(diagnostics))
    else:
        render_text(diagnostics, stderr())


#: The largest piece :func:`echo` writes at once (a pipe's buffer).
ECHO_PIECE = 1 << 16


def echo(text: str, nl: bool = True) -> None:
    """Print ``text`` to standard output as ``typer.echo`` does, in pieces of at most
    :data:`ECHO_PIECE` bytes: one large write into a pipe whose reader went away comes back
    partly written, and Python took it as done (`cnnspec schema | head -1` ended 0, its output
    cut off without a word). A piece written after that fails, which every command reports as
    141, as a closed pipe is."""
    stream = sys.stdout
    buffer = getattr(stream, "buffer", None)
    if buffer is None:  # (a stream of text only)
        typer.echo(text, nl=nl)
        return
    data = (text + ("\n" if nl else "")).encode(stream.encoding or "utf-8", stream.errors or "strict")
    stream.flush()
    for start in range(0, len(data), ECHO_PIECE):
        buffer.write(data[start : start + ECHO_PIECE])
        buffer.flush()


def fail_usage(message: str, hint: str | None = None) -> typer.Exit:
    from cnnspec.cli.render import safe

    console = stderr()
    # A message's own line breaks stay (a list of bad files, one per line); any other control
    # character is shown escaped. soft_wrap: a long path is never broken across lines.
    text = "\n".join(safe(line) for line in message.split("\n"))
    console.print(f"[bold red]error:[/bold red] {text}", highlight=False, soft_wrap=True)
    if hint:
        console.print(f"  [cyan]hint:[/cyan] {safe(hint)}", highlight=False, soft_wrap=True)
    return typer.Exit(EXIT_USAGE)


def fail_write(fault: WriteError, option: str | None = None) -> typer.Exit:
    """Report a file that could not be written (exit 1): which, why, the space it needed, and
    how to go on: the command's own hint (train's ``--resume RUN``) or :func:`write_hint`
    (``option``: the command's output option, when it has one)."""
    from cnnspec.cli.render import safe

    console = stderr()
    console.print(f"[bold red]error:[/bold red] {safe(str(fault))}", highlight=False, soft_wrap=True)
    hint = fault.hint or write_hint(fault, option)
    console.print(f"  [cyan]hint:[/cyan] {safe(hint)}", highlight=False, soft_wrap=True)
    return typer.Exit(EXIT_WRITE)


def write_hint(fault: WriteError, option: str | None = None) -> str:
    """How to go on after ``fault`` when the command gave no hint of its own: fix what the errno
    says (or write elsewhere with ``option``), then run the same command again. A failed write
    leaves the old file as it was (:func:`cnnspec.fileio.atomic_path`), so that is all it takes."""
    from cnnspec.write_faults import write_fix

    fix = write_fix(fault.errno)
    elsewhere = f" or write elsewhere ({option})" if option else ""
    return f"{fix}{elsewhere}, then run the same command again"


#: The parameters of the commands' output option, ``-o`` (``--output`` or ``--out``) in each.
OUTPUT_PARAMETERS = frozenset({"output", "out"})


def output_option(parameters: Iterable[str]) -> str | None:
    """``-o`` when a command with these ``parameters`` has an output option, else ``None``."""
    return "-o" if OUTPUT_PARAMETERS.intersection(parameters) else None


#: What a command started with its standard output closed says, and how to go on.
CLOSED_STDOUT = "standard output is closed"
CLOSED_STDOUT_HINT = "redirect it to a file or to /dev/null instead of closing it (>&-)"


def file_output(text: str | None, example: str, *, dash: bool = True, option: str = "-o") -> Path | None:
    """The file path of an ``-o`` given as text; None (and ``-``, standard output, where the
    command prints without ``-o``: ``dash``) stays None. A trailing slash names a folder, which
    Typer's ``Path`` would drop (``-o new/`` wrote a file named ``new``), so these options take
    text and are refused here with an example of a file name in that folder. An empty ``-o ""``
    is refused too (``Path("")`` is the working folder: it was ". is a folder"); ``option``: the
    option's name in those messages."""
    if text is None or (dash and text == "-"):
        return None
    if text == "-":
        raise stdout_refused(option, example)
    if not text:
        raise UsageError(f"{option} is empty; expected a file path such as {example}")
    if text.endswith(("/", os.sep)):
        raise UsageError(f"{text} names a folder; expected a file path such as {text}{example}")
    return user_path(text)


def path_option(text: str | None, example: str, option: str = "-o") -> Path | None:
    """The path of an output option given as text, where ``-`` is no standard output: ``-``, a
    trailing slash or nothing is refused as :func:`file_output` refuses it (``example``: a file
    name in that folder); anything else is checked later by the command (its suffix, the file
    there)."""
    return None if text is None else file_output(text, example, dash=False, option=option)


def stdout_refused(option: str, example: str) -> UsageError:
    """The refusal of ``-`` (standard output) for an output option of a command that writes
    files only, in the words the options Typer parses give (:data:`given_output`)."""
    return UsageError(
        f"{option} is - (standard output), which this command does not write to; expected a path",
        f"name a file such as {example}",
    )


def refuse_closed_stdout() -> None:
    """Stop with exit 2 (:data:`EXIT_USAGE`) before a command does anything when it was started
    with its standard output closed (``cnnspec validate x.yaml >&-``).

    Python then sets ``sys.stdout`` to ``None``: ``isatty()`` on it was an internal error
    (exit 3), and ``print``/``typer.echo`` to it drop every line without a word, so ``zoo`` or
    ``codegen`` "succeeded" having written nothing. A closed stdout is the caller's mistake,
    unlike a reader that goes away mid-output (a pipe into ``head -1``: exit 141, quietly, in
    :func:`guarded`). With stderr closed as well there is nowhere to say so: the exit status is
    all that is left."""
    if sys.stdout is not None:
        return
    if sys.stderr is None:
        raise typer.Exit(EXIT_USAGE)
    raise fail_usage(CLOSED_STDOUT, CLOSED_STDOUT_HINT)


def guarded(func: F) -> F:
    """Run a command body; map SpecError and WriteError → 1, UsageError → 2, a closed stdout
    (its reader went away) → 141 without a word, anything unexpected → 3, Ctrl-C or SIGTERM →
    130 ("interrupted"), also when the command ran on because something swallowed the
    signal's exception (:func:`cnnspec.fileio.note_stop`). A command started with stdout
    closed stops first, with exit 2 (:func:`refuse_closed_stdout`)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        refuse_closed_stdout()  # (the app's callback did already; this guards a command run alone)
        fmt = kwargs.get("format")
        fmt = getattr(fmt, "value", fmt) or "text"
        try:
            done = func(*args, **kwargs)
            check_stop()  # a Ctrl-C or SIGTERM that something swallowed: still "interrupted"
            return done
        except typer.Exit as done:
            # the command's own failure after a swallowed stop: `export` reports the ONNX
            # converter's ImportError, which the KeyboardInterrupt became inside its imports
            if done.exit_code not in (0, EXIT_INTERRUPTED) and stop_noted():
                raise interrupted() from None
            if done.exit_code == EXIT_INTERRUPTED:  # said by the command itself (`train`)
                stop_handled()
            raise
        except KeyboardInterrupt:
            raise interrupted() from None
        except Exception as exc:
            if stop_noted():  # the signal's exception, swallowed, came back as another error
                raise interrupted() from None  # (h5py's TypeError in the middle of a model.save)
            raise failed(exc, fmt, kwargs) from None

    return wrapper  # type: ignore[return-value]


def interrupted() -> typer.Exit:
    """Say "interrupted" and end with exit 130: a Ctrl-C or SIGTERM, handled."""
    stop_handled()
    stderr().print("interrupted")
    return typer.Exit(EXIT_INTERRUPTED)


def failed(exc: Exception, fmt: str, kwargs: dict[str, Any]) -> typer.Exit:
    """Report a command's error (called while it is handled) and give the exit that says it."""
    if isinstance(exc, SpecError):
        report(exc.diagnostics, fmt)
        return typer.Exit(EXIT_SPEC)
    if isinstance(exc, UsageError):
        if exc.diagnostics:  # located in an option's text: said as a spec's errors are, exit 2
            report(exc.diagnostics, fmt)
            return typer.Exit(EXIT_USAGE)
        return fail_usage(str(exc), exc.hint)
    if isinstance(exc, WriteError):
        return fail_write(exc, output_option(kwargs))
    if isinstance(exc, BrokenPipeError) and stdout_gone():
        stop_for_closed_stdout()
    from cnnspec.cli.render import safe

    if failed_writing_stdout(exc):
        return typer.Exit(say_stdout_failed(exc))

    from cnnspec.write_faults import library_write_fault

    # a full disk under a file TensorFlow writes itself, which it says as ResourceExhausted
    if (fault := library_write_fault(exc, None)) is not None:
        return fail_write(fault, output_option(kwargs))
    if (memory := out_of_memory(exc)) is not None:  # `train` says more: it can resume the run
        stderr().print(f"[bold red]error:[/bold red] out of memory: {safe(memory)}", highlight=False)
        stderr().print(
            "  [cyan]hint:[/cyan] free the memory (another process may hold the device), or give the "
            "command less to hold at once (smaller images or batches, a smaller model)",
            highlight=False,
        )
        return typer.Exit(EXIT_OUT_OF_MEMORY)
    from cnnspec.training.onednn import KernelRefusal, kernel_limit

    # a platform's limit, not cnnspec's bug; said with the layer where the command had the model
    limit = exc.limit if isinstance(exc, KernelRefusal) else kernel_limit(exc)
    if limit is not None:
        stderr().print(f"[bold red]error:[/bold red] {safe(limit.message)}", highlight=False)
        stderr().print(f"  [cyan]hint:[/cyan] {safe(limit.hint)}", highlight=False)
        return typer.Exit(EXIT_KERNEL)
    if os.environ.get("CNNSPEC_DEBUG"):
        raise exc
    from cnnspec.paths import working_folder_gone

    if isinstance(exc, FileNotFoundError) and working_folder_gone():
        return fail_usage(
            "the working folder no longer exists (it was removed or renamed after this command's "
            "shell entered it), and this command needs it to find its files",
            "cd to a folder that exists and run the command again",
        )

    stderr().print(
        f"[bold red]internal error[/bold red] ({type(exc).__name__}: {safe(exc)}); please report "
        "it with the spec that caused it (set CNNSPEC_DEBUG=1 for the traceback)",
        highlight=False,
    )
    return typer.Exit(EXIT_INTERNAL)


def stop_for_closed_stdout() -> NoReturn:
    """End the command quietly with :data:`EXIT_PIPE`: nobody reads the rest of its output.
    Stdout is pointed at the null device first (:func:`silence_closed_output`)."""
    silence_closed_output()
    raise typer.Exit(EXIT_PIPE) from None


def silence_closed_output(*streams: Any) -> None:
    """Point the file descriptors of ``streams`` (default: stdout) at the null device, so nothing
    flushes into a closed pipe at exit (Python would print "Exception ignored ... BrokenPipeError"
    and, for stdout, end with status 120). Shared by the commands (:func:`stop_for_closed_stdout`)
    and :func:`cnnspec.cli.app.main` (help or a usage error printed into a closed pipe)."""
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        for stream in streams or (sys.stdout,):
            with contextlib.suppress(AttributeError, ValueError, OSError):  # closed, or no descriptor
                os.dup2(null, stream.fileno())
    finally:
        os.close(null)


def failed_writing_stdout(exc: BaseException) -> bool:
    """Whether ``exc`` is the output going to a full disk or a failing device (``> /dev/full``):
    the machine's fault, said as a write error, and not a bug to report (a closed pipe is said
    otherwise)."""
    return isinstance(exc, OSError) and not isinstance(exc, BrokenPipeError) and raised_writing_stdout(exc)


def say_stdout_failed(exc: BaseException) -> int:
    """Say that stdout could not be written (:func:`failed_writing_stdout`); the exit status."""
    from cnnspec.cli.render import safe

    silence_closed_output()
    reason = getattr(exc, "strerror", None) or exc
    stderr().print(
        f"[bold red]error:[/bold red] cannot write to standard output: {safe(reason)}", highlight=False
    )
    stderr().print(
        "  [cyan]hint:[/cyan] send the output where it can be written (free space on its disk), "
        "then run the same command again",
        highlight=False,
    )
    return EXIT_WRITE


def raised_writing_stdout(exc: BaseException) -> bool:
    """Whether ``exc`` was raised writing to stdout: the frame it was raised in (the innermost
    of its traceback, where the failing ``write``/``flush`` was called) holds the stream
    (typer's echo, its ``file``) or a console printing to it (Rich's, its ``file``).

    Only that frame: any frame on the way held one too where a command had made its console
    before the error (``visualize``'s ``console = stdout()``), and a path the OS refused there
    (``Permission denied``) was said as "cannot write to standard output"."""
    streams = [sys.stdout, getattr(sys.stdout, "buffer", None), sys.__stdout__]
    targets = {id(stream) for stream in streams if stream is not None}
    trace = exc.__traceback__
    if trace is None:
        return False
    while trace.tb_next is not None:
        trace = trace.tb_next
    for value in trace.tb_frame.f_locals.values():
        try:
            held = getattr(value, "file", None)
        except Exception:  # (a property that fails: no stream of ours)
            held = None
        if id(value) in targets or id(held) in targets:
            return True
    return False


def stdout_gone() -> bool:
    """Whether stdout is a pipe whose reader has closed it (``poll`` reports an error on it)."""
    try:
        import select

        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & select.POLLERR for _, events in poller.poll(0))
    except (AttributeError, ValueError, OSError):  # no file descriptor (a test's capture), no poll
        return False


def is_terminal() -> bool:
    return sys.stdout.isatty()
