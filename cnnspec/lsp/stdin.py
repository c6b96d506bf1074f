"""The language server's standard input: bounded, and ended by a Ctrl-C or SIGTERM.

pygls reads stdin in a worker thread (``readline``, then ``read`` of the body). Two things went
wrong with the plain stream:

- a ``Content-Length: 99999999999`` made pygls allocate it, and the session ended in "out of
  memory" (:data:`MAX_MESSAGE_BYTES`);
- a Ctrl-C or SIGTERM while the editor kept stdin open was noted, but pygls then waited for its
  reading thread, which stayed blocked in ``readline`` until the editor closed the pipe: the
  server went on running. A second signal during that wait made Python abort at shutdown
  ("could not acquire lock for <stdin>", exit 134).

:class:`StopAwareStdin` reads the file descriptor itself, waiting in ``select`` on it and on a
wake-up pipe that the signal handlers write to (:func:`wake_on_stop`): once a stop is noted
(:func:`cnnspec.fileio.note_stop`) the reader returns end-of-file, pygls's loop ends, and
``cnnspec lsp`` ends as every command does, "interrupted", exit 130.

The server ends its reading the same way when the editor stops reading its output
(:meth:`StopAwareStdin.end`): nothing it says can arrive any more.

pygls also takes a header only as ``Content-Length: N`` exactly, and finds the next message where
the last one's body ends. So one message framed otherwise (``content-length: N``, which the base
protocol allows: its headers are HTTP's, whose names have no case), or whose length was wrong,
lost every message after it, unanswered and unlogged: its body, which has no line break, was read
as the start of the next header line, and so on. :meth:`StopAwareStdin.readline` reads the
headers itself and hands pygls each message's length as pygls spells it; bytes that belong to no
message are skipped up to the next ``Content-Length`` header, with a warning on stderr.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import select
import signal
from collections.abc import Iterator
from typing import Any

from cnnspec.fileio import note_stop, stop_noted

log = logging.getLogger("cnnspec.lsp")

#: The largest message body read (a spec is at most 1 MB, cnnspec.spec.loader.MAX_BYTES; JSON's
#: escapes may multiply it): a header that claims more is a client's mistake, not a reason to
#: allocate it.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
#: How much is read from the descriptor at a time (and of a refused body, dropped at a time).
_CHUNK = 1024 * 1024
#: The longest header line kept whole: a stream with no line break is handed on in pieces of
#: this size (pygls refuses them as headers) rather than held in memory to its end.
_MAX_LINE = 64 * 1024
#: A header line: a name (HTTP's token characters) and a colon.
_HEADER = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+[ \t]*:")
#: Where a message begins: its length header, in any case. A line may hold it after bytes of no
#: message (a body longer than its length said, or one whose header gave none).
_LENGTH_HEADER = re.compile(rb"content-length[ \t]*:", re.IGNORECASE)
#: The body pygls is handed for a message whose headers gave no usable length: no JSON, so the
#: server answers it as one, a Parse error (its id is unknown: ``null``).
_NO_JSON = b"\x00"


class StopAwareStdin:
    """Standard input for pygls's reader (``readline`` and ``read``), read from the descriptor
    of ``stream``: end-of-file once a stop is noted (the wake-up descriptor ``wake`` becomes readable
    when a signal handler runs), and no body read whole past :data:`MAX_MESSAGE_BYTES` (it is
    read through and dropped; pygls gets a body that is no JSON, which the server answers as
    one, Parse error, and goes on)."""

    def __init__(self, stream: Any, wake: int | None = None) -> None:
        self.stream = stream
        try:
            self.fd: int | None = stream.fileno()
        except (AttributeError, OSError, ValueError):  # (io.UnsupportedOperation: in memory)
            self.fd = None
        self.wake = wake
        self._buffer = bytearray()
        self._ended = False
        #: The header lines pygls is still to read of the message found (see :meth:`readline`).
        self._headers: list[bytes] = []
        #: A body to hand pygls instead of the stream's (:data:`_NO_JSON`), or ``None``.
        self._body: bytes | None = None
        #: A pipe whose read end becomes readable when :meth:`end` is called: it wakes a
        #: reading thread waiting in ``select`` (the editor may never send another byte).
        self._end_pipe: tuple[int, int] | None = os.pipe() if self.fd is not None else None

    def end(self) -> None:
        """Stop reading: the reader returns end-of-file from now on, also one waiting now
        (called from another thread: the server's, once its output is gone)."""
        self._ended = True
        if self._end_pipe is not None:
            with contextlib.suppress(OSError):  # (closed: the reading is over anyway)
                os.write(self._end_pipe[1], b"\x00")

    def close(self) -> None:
        """Release the pipe of :meth:`end` (the stream itself is the caller's)."""
        pipe, self._end_pipe = self._end_pipe, None
        for fd in pipe or ():
            with contextlib.suppress(OSError):
                os.close(fd)

    def _fill(self) -> bool:
        """Read what the stream has into the buffer, waiting for it; ``False`` at its end or
        once a stop is noted (nothing more is read then)."""
        chunk = b"" if self._ended else self._next_chunk()
        if chunk:
            self._buffer += chunk
            return True
        self._ended = True
        return False

    def _next_chunk(self) -> bytes:
        """What the descriptor has next, waiting for it; ``b""`` at its end or once a stop is
        noted. A stream with no descriptor (one in memory) is read by lines: no stop ends a
        wait on it."""
        if self.fd is None:
            return bytes(self.stream.readline())
        watched = [self.fd] if self.wake is None else [self.fd, self.wake]
        if self._end_pipe is not None:
            watched.append(self._end_pipe[0])
        while not stop_noted() and not self._ended:
            ready, _, _ = select.select(watched, [], [])
            if self._end_pipe is not None and self._end_pipe[0] in ready:
                return b""  # (ended: see end)
            if self.wake is not None and self.wake in ready:
                with contextlib.suppress(OSError):  # (drained: the next signal wakes it again)
                    os.read(self.wake, 4096)
                continue  # (the loop's test reads whether it was a stop)
            if self.fd in ready:
                return os.read(self.fd, _CHUNK)
        return b""

    def _take(self, size: int) -> bytes:
        taken = bytes(self._buffer[:size])
        del self._buffer[:size]
        return taken

    def readline(self) -> bytes:
        """The next header line of a message as pygls reads it: ``Content-Length: N\\r\\n``, then
        the blank line that ends the headers, for each message in the stream; ``b""`` at its end.
        A length header is taken in any case and spacing, and the message's other headers
        (``Content-Type``) are read and left. Bytes of no message before a length header are
        skipped, with a warning; a message whose headers give no length, or an invalid one, is
        handed on as one byte of no JSON (:data:`_NO_JSON`), which the server answers as a Parse
        error, and what follows it is skipped up to the next length header."""
        if not self._headers:
            length = self._next_length()
            if length is None:
                return b""
            self._headers = [b"Content-Length: %d\r\n" % length, b"\r\n"]
        return self._headers.pop(0)

    def _next_length(self) -> int | None:
        """Read the next message's headers: its length (``None`` at the end of the stream)."""
        skipped = 0  # bytes of no message
        headers = 0  # bytes of the headers read of the message begun (0: none begun)
        length = -1  # its length (-1: none valid given)
        while line := self._line():
            found = _LENGTH_HEADER.search(line)
            if found is not None and (found.start() or length >= 0):
                # a message begins inside the line, or a second length header: what was read
                # before it belongs to no message
                skipped += found.start() + headers
                headers, length = 0, -1
            if found is not None:
                value = line[found.end() :].strip()
                length = int(value) if value.isdigit() else -1
                headers += len(line) - found.start()
            elif not line.strip():
                if headers:
                    break
            elif _HEADER.match(line):  # (another header: Content-Type, before the length or after)
                headers += len(line)
            else:
                skipped += headers + len(line)
                headers, length = 0, -1
        else:
            if skipped or headers:
                log.warning("%d bytes at the end of the input were no message", skipped + headers)
            return None
        if skipped:
            log.warning("%d bytes that were no message were skipped before the next one", skipped)
        if length <= 0:
            log.warning("a message's headers gave no valid Content-Length: answered as a parse error")
            self._body = _NO_JSON
            return len(_NO_JSON)
        return length

    def _line(self) -> bytes:
        """The stream's next line (with its line break), what is left at the end, or ``b""``."""
        while b"\n" not in self._buffer and len(self._buffer) < _MAX_LINE:
            if not self._fill():
                break
        end = self._buffer.find(b"\n")
        return self._take(end + 1 if end >= 0 else _MAX_LINE)

    def read(self, size: int = -1) -> bytes:
        """``size`` bytes (fewer at the end); a body over :data:`MAX_MESSAGE_BYTES` is dropped
        and read as one byte that is no JSON."""
        if self._body is not None:
            body, self._body = self._body, None
            return body
        if size < 0:
            while self._fill():
                pass
            return self._take(len(self._buffer))
        if size <= MAX_MESSAGE_BYTES:
            while len(self._buffer) < size and self._fill():
                pass
            return self._take(size)
        log.warning("a message of %d bytes was skipped: the most read is %d", size, MAX_MESSAGE_BYTES)
        left = size
        while left > 0:
            if not self._buffer and not self._fill():
                return b""  # the stream ended inside the body: no message follows
            left -= len(self._take(min(left, _CHUNK)))
        return _NO_JSON


@contextlib.contextmanager
def wake_on_stop() -> Iterator[int | None]:
    """A descriptor that becomes readable when a SIGINT or SIGTERM handler runs (the command
    line's, which notes the stop and raises ``KeyboardInterrupt`` in the main thread): each
    handler in place is wrapped to write a byte to it first. ``None`` where no handler of
    Python's is in place (an ignored signal stays ignored) or off the main thread."""
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)  # (a handler must never block on a full pipe)
    previous: dict[int, Any] = {}
    try:
        for number in (signal.SIGINT, signal.SIGTERM):
            handler = signal.getsignal(number)
            if callable(handler):
                previous[number] = signal.signal(number, _waking(write_end, handler))
    except ValueError:  # not the main thread: its signals are not this server's
        pass
    try:
        yield read_end if previous else None
    finally:
        for number, handler in previous.items():
            with contextlib.suppress(ValueError):
                signal.signal(number, handler)
        os.close(read_end)
        os.close(write_end)


def _waking(write_end: int, handler: Any) -> Any:
    """``handler``, the stop noted and a byte written to ``write_end`` before it runs (noted
    first: the reading thread, woken, must find it noted, and ``handler`` may raise)."""

    def waking(signum: int, frame: Any) -> Any:
        note_stop()
        with contextlib.suppress(OSError):
            os.write(write_end, b"\x00")
        return handler(signum, frame)

    return waking
