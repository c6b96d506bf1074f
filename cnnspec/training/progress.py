"""What a run prints: a Rich progress bar on a terminal, plain lines otherwise, or nothing.

:class:`Display` is plain Python (no TensorFlow); :meth:`Display.callback` makes the Keras
callback that feeds it, importing Keras only then.
"""

from __future__ import annotations

import contextlib
import re
import time
from typing import Any, Literal

from rich.console import Console
from rich.text import Text

from cnnspec.errors import printable
from cnnspec.jsontext import utf8_text

Mode = Literal["rich", "plain", "quiet"]
_SHORT = {"accuracy": "acc", "learning_rate": "lr", "val_accuracy": "val_acc"}
#: The one markup a message may lead with: the spec's name in bold (an identifier, so no ``[``).
_BOLD_NAME = re.compile(r"\[bold\]([A-Za-z0-9_]*)\[/bold\]")


def as_text(text: str) -> Text:
    """A message as Rich text, never read as markup: it carries the user's run folders,
    weights files and notes (``runs/[/x]`` would raise MarkupError, ``[bold]`` would vanish).
    Control characters are shown escaped, each line on its own, and each byte of a name that is
    not UTF-8 as ``\\xNN`` (:func:`~cnnspec.jsontext.utf8_text`), as train's last line and every
    other command show it (not ``\\udce9``); only a leading ``[bold]NAME[/bold]`` is styled."""
    shown = "\n".join(printable(utf8_text(line)) for line in text.split("\n"))
    lead = _BOLD_NAME.match(shown)
    if lead is None:
        return Text(shown)
    return Text.assemble((lead.group(1), "bold"), shown[lead.end() :])


def format_value(key: str, value: float) -> str:
    if key == "learning_rate":
        return f"{value:.2e}"
    return figure(value)


def figure(value: float) -> str:
    """A loss or metric as the console shows it: 4 decimals, or 4 significant digits where it
    is a million or more (a diverging run printed `loss 871717658667507515392.0000`)."""
    return f"{value:.4g}" if abs(value) >= 1e6 else f"{value:.4f}"


class Display:
    """Messages and per-epoch lines, styled for a terminal or plain for logs (CI)."""

    def __init__(self, mode: Mode = "plain", console: Console | None = None) -> None:
        self.mode = mode
        self.console = console or Console(highlight=False, soft_wrap=True, emoji=False)

    @classmethod
    def auto(cls, quiet: bool = False) -> Display:
        if quiet:
            return cls("quiet")
        console = Console(highlight=False, soft_wrap=True, emoji=False)
        return cls("rich" if console.is_terminal else "plain", console)

    def message(self, text: str) -> None:
        """A line of text, shown unless quiet (see :func:`as_text`: no markup but a leading
        bold spec name; styles are dropped when plain)."""
        if self.mode != "quiet":
            self.console.print(as_text(text), highlight=False)

    def warn(self, text: str) -> None:
        """A note that matters even with --quiet (e.g. a damaged snapshot was skipped): stderr.
        Its text is never read as markup (:func:`as_text`): notes name the user's files."""
        Console(stderr=True, highlight=False, soft_wrap=True, emoji=False).print(
            Text.assemble(("note:", "yellow"), " ", as_text(text)), highlight=False
        )

    def epoch_line(self, epoch: int, epochs: int, row: dict[str, float], keys: list[str]) -> str:
        width = len(str(epochs))
        parts = [f"epoch {epoch:>{width}}/{epochs}", f"{row.get('seconds', 0.0):6.1f}s"]
        for key in keys:
            if key in row:
                parts.append(f"{_SHORT.get(key, key)} {format_value(key, row[key])}")
        return "  ".join(parts)

    def callback(self, epochs: int, steps: int, keys: list[str], initial_epoch: int = 0) -> Any:
        """The Keras callback that reports progress in this display's mode."""
        import keras

        display = self

        class Progress(keras.callbacks.Callback):
            def __init__(self) -> None:
                super().__init__()
                self.progress: Any = None
                self.task: Any = None
                self.started = 0.0

            def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
                if display.mode != "rich":
                    return
                from rich.progress import (
                    BarColumn,
                    MofNCompleteColumn,
                    Progress,
                    TextColumn,
                    TimeElapsedColumn,
                    TimeRemainingColumn,
                )

                self.progress = Progress(
                    TextColumn("[bold]epoch {task.fields[epoch]}"),
                    BarColumn(),
                    TextColumn("step"),
                    MofNCompleteColumn(),
                    TimeElapsedColumn(),
                    TextColumn("eta"),
                    TimeRemainingColumn(),
                    TextColumn("{task.fields[live]}", markup=False),  # the spec's metric names
                    console=display.console,
                    transient=True,
                )
                self.progress.start()
                self.task = self.progress.add_task("train", total=steps, epoch="", live="")

            def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
                self.started = time.perf_counter()
                # the rate the epoch starts with, as history.csv records it (a schedule moves
                # it every step: the value Keras logs at the epoch's end is the next one's)
                self.lr: float | None = None
                with contextlib.suppress(AttributeError, TypeError, ValueError):
                    self.lr = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
                if self.progress is not None:
                    self.progress.reset(self.task, total=steps, epoch=f"{epoch + 1}/{epochs}", live="")

            def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
                if self.progress is None:
                    return
                live = "  ".join(
                    f"{_SHORT.get(k, k)} {figure(float(v))}" for k, v in (logs or {}).items() if k in keys
                )
                self.progress.update(self.task, completed=batch + 1, live=live)

            def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
                if display.mode == "quiet":
                    return
                row = {k: float(v) for k, v in (logs or {}).items()}
                row["seconds"] = time.perf_counter() - self.started
                if self.lr is not None:
                    row["learning_rate"] = self.lr
                line = display.epoch_line(epoch + 1, epochs, row, [*keys, "learning_rate"])
                display.console.print(line, highlight=False, markup=False)

            def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
                self.stop()

            def stop(self) -> None:
                if self.progress is not None:
                    self.progress.stop()
                    self.progress = None

        return Progress()
