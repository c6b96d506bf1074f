"""Ctrl-C and SIGTERM during training, delivered where Keras can stop cleanly.

Python raises ``KeyboardInterrupt`` wherever the main thread happens to be when the signal is
handled. Inside ``model.fit`` that can be a tf.data iterator's ``__del__`` (Keras drops the last
epoch's iterator at every epoch start and validation pass), and an exception raised in
``__del__`` is printed and ignored: training would go on as if the key had never been pressed.
So while ``fit`` runs, the first signal only sets a flag, and :class:`~cnnspec.training.
callbacks.InterruptCheck` raises ``KeyboardInterrupt`` at the next batch or epoch boundary (a
few milliseconds later). A second signal raises at once. Outside ``fit`` (loading data, the
final evaluation, writing files) a signal raises at once, as Python's own handler does, and is
also remembered until ``fit`` starts: set-up code can swallow it the same way (a ``__del__``, a
callback of TensorFlow's), and a search worker that missed its Ctrl-C so would train on. Python
prints such a swallowed exception as "Exception ignored in ..." with a traceback; the gate
keeps that report off the user's terminal (it is remembered and raised again), and passes every
other unraisable exception on to the hook that was there before.

While a command line handles the stop (``train``, ``lr_find``: :attr:`InterruptGate.notes`), a
signal raised at once is also noted (:func:`cnnspec.fileio.note_stop`), as the command line's own
handler notes it for every other command: h5py drops it in the middle of the final
``model.save`` (the run then finished, exit 0, after a SIGTERM) or turns it into an error of its
own (an "internal error", exit 3); noted, no write commits after it and the command ends
"interrupted".
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import Any

from cnnspec.fileio import note_stop


class InterruptGate:
    """The process's signal handler for Ctrl-C/SIGTERM while ``cnnspec train`` runs."""

    def __init__(self) -> None:
        self.requested = False
        self.deferring = False
        #: Whether a signal raised at once is noted too (set by the command line that reports
        #: the stop: :func:`cnnspec.cli.common.batch_boundary_stops`).
        self.notes = False
        self._previous_hook: Any = sys.unraisablehook

    def handler(self, signum: int, frame: Any) -> None:
        if self.deferring and not self.requested:
            self.requested = True  # InterruptCheck raises at the next batch boundary
            return
        # at once; and remembered outside fit, in case whatever runs now swallows it
        self.requested = not self.deferring
        if self.notes:  # and no write commits after it, should whatever runs now swallow it
            note_stop()
        if sys.unraisablehook != self._unraisable:
            self._previous_hook = sys.unraisablehook
            sys.unraisablehook = self._unraisable
        raise KeyboardInterrupt

    def _unraisable(self, report: Any) -> None:
        """``sys.unraisablehook``: silent for a signal swallowed by a ``__del__`` or a weakref
        callback while it is remembered (:meth:`check` raises it again), the previous hook's
        report for anything else."""
        if issubclass(report.exc_type, KeyboardInterrupt) and self.requested:
            return
        self._previous_hook(report)

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        """While inside, the first signal waits for :meth:`check`; one that came too late for
        any check (after the last batch) is raised on the way out; one that came before and
        was swallowed on the way here is raised on entry."""
        self.check()
        self.deferring = True
        try:
            yield
        except BaseException:
            self.requested = False
            raise
        finally:
            self.deferring = False
        self.check()

    def check(self) -> None:
        """Raise ``KeyboardInterrupt`` when a signal came since the last check."""
        if self.requested:
            self.requested = False
            raise KeyboardInterrupt


GATE = InterruptGate()
