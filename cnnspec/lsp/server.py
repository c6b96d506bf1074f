"""The pygls wiring: text sync, debounced checks, and one handler per LSP feature.

Checks run on the server's event loop (the front end takes milliseconds: about 9 ms of CPU for
ResNet-50). They are debounced per document: the first change after a quiet period is checked
at once, and changes that follow within ``debounce`` seconds of a check wait for the next one,
so a burst of typing costs one check per period while a single edit is answered immediately. A
request (hover, definition, …) first runs every pending check, so answers always match the
text the editor holds. Opening and saving a document asks for a full check, which also compiles
the candidates of its ``search:`` section (seconds: see :mod:`cnnspec.lsp.documents`); a check
on type repeats what the last full one found there. Any exception in a feature becomes an error response or an
empty result; the server keeps serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import inspect
import json
import logging
import os
import sys
import threading
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote

from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pygls.lsp.server import LanguageServer
from pygls.protocol import JsonRPCProtocol, LanguageServerProtocol
from pygls.protocol.json_rpc import JsonRPCNotification, JsonRPCRequestMessage, RPCRequest
from pygls.protocol.language_server import lsp_method
from pygls.uris import to_fs_path

from cnnspec.errors import Diagnostic, SpecPath
from cnnspec.ir import ModelIR
from cnnspec.lsp import completion as completing
from cnnspec.lsp import (
    diagnostics,
    edits,
    fixes,
    hover,
    navigation,
    rename_reading,
    rename_symbols,
    rename_target,
    symbols,
)
from cnnspec.lsp import documents as checking
from cnnspec.lsp import references as referencing
from cnnspec.lsp import rename as renaming
from cnnspec.lsp import workspace as workspaces
from cnnspec.lsp.documents import Analysis, Documents, SearchRun, looks_like_spec, path_of
from cnnspec.lsp.locate import Cursor, TreeIndex, path_at
from cnnspec.lsp.stdin import StopAwareStdin, wake_on_stop
from cnnspec.lsp.text import UTF16, Lines
from cnnspec.spec.loader import SourceDoc, display_name
from cnnspec.version import __version__

DEFAULT_DEBOUNCE_S = 0.2
log = logging.getLogger("cnnspec.lsp")
T = TypeVar("T")

_COMPLETION_KINDS = {
    "var": types.CompletionItemKind.Variable,
    "id": types.CompletionItemKind.Reference,
    "kind": types.CompletionItemKind.Class,
    "block": types.CompletionItemKind.Function,
    "combinator": types.CompletionItemKind.Keyword,
    "parameter": types.CompletionItemKind.Property,
    "value": types.CompletionItemKind.Value,  # a parameter's choice, true/false, a zoo name
    "layer": types.CompletionItemKind.Field,  # a backbone's layer name at `until:`
}


class _Protocol(LanguageServerProtocol):
    """pygls's protocol, held to the rules of JSON-RPC and LSP where pygls leaves a client
    waiting for an answer that never comes, or applies an edit where the editor did not make it:

    - a request whose parameters pygls cannot read: answered with the JSON-RPC error (pygls
      logs it and drops it);
    - a message that is no JSON-RPC message (a JSON array, a number, an object without
      ``"jsonrpc": "2.0"``): a request among them is answered Invalid Request;
    - before ``initialize``, a request is answered ServerNotInitialized (-32002) and a
      notification dropped, as LSP requires (pygls would answer it from an empty workspace);
      a second ``initialize`` is an Invalid Request;
    - after ``shutdown``, a request is answered Invalid Request and a notification dropped;
      only ``exit`` is served (pygls logs the request and never answers it);
    - a ``didChange`` is applied by LSP's line breaks and the agreed position encoding
      (:mod:`cnnspec.lsp.edits`), not by pygls's :meth:`str.splitlines`;
    - once the editor stops reading the server's output (a write meets a broken pipe), nothing
      more is written and the server stops reading (:class:`_Output`): pygls raised
      ``BrokenPipeError`` out of every later write, a traceback on stderr each, and served on.

    A body that is no JSON at all is answered by :meth:`CnnspecServer.report_server_error`:
    it never reaches the protocol.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: Whether ``initialize`` came (a request before it is refused, a second one too).
        self.initialize_received = False

    def set_writer(self, writer: Any, *args: Any, **kwargs: Any) -> None:
        """Write through :class:`_Output`, which ends the server when the output is gone."""
        server = self._server
        gone = server.output_lost if isinstance(server, CnnspecServer) else None
        super().set_writer(_Output(writer, gone), *args, **kwargs)

    def structure_message(self, data: dict[str, Any]) -> Any:
        data = self.with_params(data)
        try:
            return super().structure_message(data)
        except JsonRpcException as exc:
            if isinstance(data, dict) and "method" in data and data.get("id") is not None:
                self._send_response(data["id"], error=exc.to_response_error())
            raise

    def with_params(self, data: Any) -> Any:
        """``data`` with ``params: {}`` where a request or notification leaves them out (or
        sends ``null``) but its type needs them: JSON-RPC allows leaving them out, and pygls
        refused an ``initialized`` without them as Invalid Params (so the server never asked
        to watch the files) and answered an unknown method without them as an Internal Error.
        A method whose parameters are optional (``shutdown``, ``exit``) keeps ``None``; one
        whose parameters need fields is still refused, as Invalid Params."""
        if not isinstance(data, dict) or not isinstance(data.get("method"), str) or "result" in data:
            return data
        if data.get("params") is not None or "error" in data:
            return data
        generic = JsonRPCRequestMessage if "id" in data else JsonRPCNotification
        message_type = self.get_message_type(data["method"]) or generic
        try:  # (lsprotocol's and pygls's message classes: `params` without a default is required)
            needed = inspect.signature(message_type).parameters.get("params")
        except (TypeError, ValueError):
            return data
        if needed is None or needed.default is not inspect.Parameter.empty:
            return data
        return {**data, "params": {}}

    def refuse(self, msg_id: Any, code: types.ErrorCodes | int, message: str) -> None:
        """Answer the request ``msg_id`` with an error. An id JSON-RPC does not allow (or none
        could be read) is answered as ``null``, which pygls's converter would leave out."""
        value = int(code)
        if isinstance(msg_id, (int, str)) and not isinstance(msg_id, bool):
            self._send_response(msg_id, error=types.ResponseError(code=value, message=message))
        else:
            error = {"code": value, "message": message}
            self._send_data({"jsonrpc": JsonRPCProtocol.VERSION, "id": None, "error": error})

    def handle_message(self, message: Any) -> None:
        """Serve ``message`` when LSP's lifecycle allows it, else answer or drop it (see the
        class). Responses to the server's own requests always pass."""
        if getattr(message, "jsonrpc", None) != JsonRPCProtocol.VERSION:
            self.refuse_invalid(message)
            return
        method = getattr(message, "method", None)
        if not isinstance(method, str):
            super().handle_message(message)  # a response (or an error) from the client
            return
        request = isinstance(message, RPCRequest)
        if method == types.EXIT:
            super().handle_message(message)
        elif self._shutdown:
            self.refuse_or_drop(
                message,
                types.ErrorCodes.InvalidRequest,
                f"the server is shut down: `{method}` is refused (only `exit` is accepted now)",
                "after shutdown",
            )
        elif method == types.INITIALIZE and request:
            if self.initialize_received:
                self.refuse(message.id, types.ErrorCodes.InvalidRequest, "the server is already initialized")
                return
            self.initialize_received = True
            super().handle_message(message)
        elif not self.initialize_received:
            self.refuse_or_drop(
                message,
                types.ErrorCodes.ServerNotInitialized,
                f"`{method}` before `initialize`: the server is not initialized",
                "before initialize",
            )
        else:
            super().handle_message(message)

    def refuse_or_drop(self, message: Any, code: types.ErrorCodes, text: str, when: str) -> None:
        """Out of LSP's lifecycle (``when``): a request is answered with the error ``code``, a
        notification dropped (no one waits for it)."""
        if isinstance(message, RPCRequest):
            self.refuse(message.id, code, text)
        else:
            log.info("dropping the notification %r %s", message.method, when)

    def refuse_invalid(self, message: Any) -> None:
        """Answer what is not a JSON-RPC 2.0 message with Invalid Request, when it could be a
        request (a notification or a response is answered by no one: it is dropped)."""
        if isinstance(message, dict):
            if "method" not in message or "id" not in message:
                log.warning("dropping a message that is no JSON-RPC 2.0 message: %.200r", message)
                return
            msg_id = message.get("id")
        elif hasattr(message, "jsonrpc") and hasattr(message, "method") and hasattr(message, "id"):
            msg_id = message.id  # a request of another JSON-RPC version
        elif hasattr(message, "jsonrpc"):
            log.warning("dropping a message of JSON-RPC version %r", message.jsonrpc)
            return
        else:  # a JSON array, string or number: not a message at all
            msg_id = None
        self.refuse(msg_id, types.ErrorCodes.InvalidRequest, 'not a JSON-RPC 2.0 request ("jsonrpc": "2.0")')

    @property
    def encoding(self) -> str:
        """The position encoding agreed with the client at ``initialize`` (UTF-16 before)."""
        try:
            chosen = self.server_capabilities.position_encoding
        except AttributeError:  # not initialized yet
            return UTF16
        return str(getattr(chosen, "value", chosen) or UTF16)  # an enum member or a plain string

    @lsp_method(types.TEXT_DOCUMENT_DID_CHANGE)
    def lsp_text_document__did_change(
        self, params: types.DidChangeTextDocumentParams
    ) -> Generator[Any, Any, None]:
        """Apply the changes to the editor's text, then run the server's handler. A change of
        a document never opened is a client's mistake, ignored (pygls's KeyError would reach
        the user as "Error in server"). The changes are applied here, not by pygls, which
        splits lines where LSP does not and puts a character past the line's end after its
        line break (:mod:`cnnspec.lsp.edits`)."""
        document = self.workspace.text_documents.get(unquote(params.text_document.uri))
        if document is None:
            log.warning("ignoring a change of %s, which is not open", params.text_document.uri)
            return
        text = edits.apply_changes(document.source, params.content_changes, self.encoding)
        self.workspace.put_text_document(  # public API: a new document of the text and version
            types.TextDocumentItem(
                uri=document.uri,
                language_id=document.language_id or "",
                version=params.text_document.version,
                text=text,
            )
        )
        if (handler := self.fm.features.get(types.TEXT_DOCUMENT_DID_CHANGE)) is not None:
            yield handler, (params,), None

    @property
    def shut_down(self) -> bool:
        """Whether the client sent ``shutdown`` (the exit code of ``exit`` depends on it)."""
        return self._shutdown


class _Output:
    """pygls's writer, held quiet once the reader of the output went away: the write that
    meets the broken pipe calls ``gone`` (the server stops), and it and every later write are
    dropped (no one can read them)."""

    def __init__(self, writer: Any, gone: Callable[[], None] | None) -> None:
        self.writer = writer
        self.gone = gone
        self.lost = False

    def write(self, data: bytes) -> Any:
        if self.lost:
            return None
        try:
            return self.writer.write(data)
        except BrokenPipeError:
            self.lost = True
            if self.gone is not None:
                self.gone()
            return None

    def close(self) -> None:
        with contextlib.suppress(OSError):  # (a closed pipe: what it holds is dropped anyway)
            self.writer.close()


class CnnspecServer(LanguageServer):
    """The cnnspec language server: documents, their analyses, and the debounce timers."""

    def __init__(self, debounce: float = DEFAULT_DEBOUNCE_S) -> None:
        super().__init__("cnnspec", __version__, protocol_cls=_Protocol)
        self.documents = Documents()
        self.debounce = debounce
        self.uris: dict[Path, str] = {}
        #: Every URI open for a file (a symbolic link and its target are one file), the one
        #: last synced last: closing one leaves the file open under the others.
        self.open_uris: dict[Path, list[str]] = {}
        self.pending: dict[Path, asyncio.TimerHandle] = {}
        self.last_check: dict[Path, float] = {}
        #: The documents whose next check is a full one (opened or saved since their last).
        self.full: set[Path] = set()
        self.indexes: dict[int, tuple[Analysis, TreeIndex]] = {}
        #: The last analysis that loaded its document, per file. Its positions are used only
        #: while every file it read still has the text it read (a check can fail for a
        #: reason outside the text: a file gone from the disk); completion takes the names
        #: of its blocks while the text under the cursor is half-typed YAML.
        self.last_good: dict[Path, Analysis] = {}
        #: The input being read (:func:`serve`), ended when the output is gone.
        self.stdin: StopAwareStdin | None = None
        #: Whether the editor stopped reading the output (:meth:`output_lost`).
        self.output_gone = False
        #: The documents whose search candidates a thread compiles now (:meth:`search_later`),
        #: and those whose checks left them owed again meanwhile (compiled once it is done).
        self.searching: set[Path] = set()
        self.search_again: set[Path] = set()

    def output_lost(self) -> None:
        """The editor stopped reading the output: stop reading its input, so the loop ends
        and ``cnnspec lsp`` exits 141, quietly, as every command whose reader went away."""
        self.output_gone = True
        if self._stop_event is not None:
            self._stop_event.set()
        if self.stdin is not None:
            self.stdin.end()

    # -- documents ------------------------------------------------------------------------
    def path(self, uri: str) -> Path:
        fs = to_fs_path(uri)
        if fs is None:  # untitled: and other schemes: named in the working directory (where
            # their relative `use:` paths lead), each URI by a name of its own, no file's
            last = uri.rsplit("/", 1)[-1].rsplit(":", 1)[-1] or "untitled"
            digest = hashlib.sha256(uri.encode("utf-8", "surrogatepass")).hexdigest()[:12]
            fs = str(Path.cwd() / f"{last}~{digest}")
        try:
            return Path(fs).resolve()
        except (ValueError, OSError):  # `%00` in the URI, a symbolic-link loop: only the text is real
            return Path(os.path.abspath(fs))

    def shown(self, text: str) -> str:
        """``text`` (a hover, a refusal) with each ``untitled:`` buffer named as the editor
        names it (``Untitled-1``), not by the file name it is held under here
        (``Untitled-1~9f9424a25148``, :meth:`path`)."""
        for path, uri in self.uris.items():
            if to_fs_path(uri) is None and "~" in path.name:
                text = text.replace(display_name(path), path.name.rsplit("~", 1)[0])
        return text

    def shown_diagnostic(self, diagnostic: types.Diagnostic) -> types.Diagnostic:
        """``diagnostic`` with an ``untitled:`` buffer named as the editor names it in its
        message and related information (:meth:`shown`): a note said where a name is declared as
        "(Untitled-1~9f9424a25148:7:14)", as hovers did."""
        import attrs

        related = diagnostic.related_information
        return attrs.evolve(
            diagnostic,
            message=self.shown(diagnostic.message),
            related_information=None
            if related is None
            else [attrs.evolve(item, message=self.shown(item.message)) for item in related],
        )

    def sync(self, uri: str) -> Path:
        """Copy the editor's text of ``uri`` into the document store."""
        path = self.path(uri)
        document = self.workspace.get_text_document(uri)
        self.uris[path] = uri
        opened = self.open_uris.setdefault(path, [])
        if uri in opened:
            opened.remove(uri)
        opened.append(uri)
        self.documents.set(path, document.source, document.version)
        return path

    @property
    def encoding(self) -> str:
        """The position encoding agreed with the client at ``initialize`` (UTF-16 before)."""
        protocol = self.protocol
        if isinstance(protocol, _Protocol):
            return protocol.encoding
        return UTF16  # not reached: the server is made with its own protocol

    def report_server_error(self, error: Exception, source: type[Exception]) -> None:
        """A message body that is not UTF-8 or not JSON (pygls's reader hands it here, as the
        ``JsonRpcException`` class, and drops it) is answered with JSON-RPC's Parse error,
        ``id`` null, and the server keeps serving; any other error is pygls's to report."""
        if source is JsonRpcException and isinstance(error, (UnicodeDecodeError, json.JSONDecodeError)):
            protocol = self.protocol
            if isinstance(protocol, _Protocol):
                what = "not UTF-8" if isinstance(error, UnicodeDecodeError) else "not valid JSON"
                protocol.refuse(
                    None, types.ErrorCodes.ParseError, f"parse error: the message is {what} ({error})"
                )
                return
        super().report_server_error(error, source)

    def folders(self) -> list[Path]:
        """The workspace's folders (``workspaceFolders``, else ``rootUri``/``rootPath``): a
        rename covers the specs in them that are not open (:mod:`cnnspec.lsp.workspace`)."""
        workspace = self.workspace
        folders = [to_fs_path(folder.uri) or "" for folder in workspace.folders.values()]
        return workspaces.roots(folders, workspace.root_path)

    def uri(self, path: Path) -> str:
        """The URI the editor opened ``path`` under, else its ``file:`` URI."""
        return self.uris.get(path) or path.as_uri()

    def schedule(self, path: Path, full: bool = False) -> None:
        """Check ``path`` now if it was not checked within ``debounce``, else when that has
        passed; ``full``: that check compiles the search candidates too (open, save)."""
        if full:
            self.full.add(path)
        if path in self.pending:
            return  # the pending check reads the latest text when it runs
        loop = asyncio.get_running_loop()
        wait = max(0.0, self.last_check.get(path, float("-inf")) + self.debounce - loop.time())
        self.pending[path] = loop.call_later(wait, self.check, path)

    def flush(self, path: Path) -> None:
        """Run a pending check of ``path`` now (a request must see the current text)."""
        handle = self.pending.get(path)
        if handle is not None:
            handle.cancel()
            self.check(path)

    def check(self, path: Path) -> None:
        """Check ``path``, the open specs that include it, and publish what changed. A full
        check of ``path`` (it was saved) is a full check of those specs too: a saved library
        changes what their search candidates compile to."""
        self.pending.pop(path, None)
        if path not in self.documents.open:
            self.full.discard(path)
            return
        full = path in self.full
        checked = [path, *self.documents.dependents(path)]
        publish: dict[Path, None] = {}
        for target in checked:
            self.pending.pop(target, None)
            previous = self.documents.analyses.get(target)
            analysis = self.documents.analyze(target, full or target in self.full, background=True)
            self.full.discard(target)
            self.took(target, previous, analysis, publish)
            if analysis.search_deferred:
                self.search_later(target)
        # when it ended: a check longer than the debounce (a spec of thousands of layers) was
        # followed at once by the next keystroke's, and each edit waited for all of them
        with contextlib.suppress(RuntimeError):  # RuntimeError: called outside the loop
            self.last_check[path] = asyncio.get_running_loop().time()
        for target in publish:
            self.publish(target)

    def took(
        self, path: Path, previous: Analysis | None, analysis: Analysis, publish: dict[Path, None]
    ) -> None:
        """``analysis`` is now ``path``'s (it replaced ``previous``): the files whose
        diagnostics it changed are added to ``publish``."""
        if previous is not None:  # a file it no longer reads loses the errors it put there
            publish.update(
                dict.fromkeys(f for f in previous.files - analysis.files if f in self.documents.open)
            )
        if analysis.doc is not None:
            self.last_good[path] = analysis
        publish[path] = None
        publish.update(dict.fromkeys(f for f in analysis.files if f in self.documents.open))

    def search_later(self, path: Path) -> None:
        """Compile the search candidates that ``path``'s check left owed, in a thread of their
        own (:meth:`Documents.search_job`, on the text of this moment): one document at a time,
        and again once done when a check left them owed meanwhile. The thread is a daemon: an
        ``exit`` does not wait for it."""
        if self.searching:
            self.search_again.add(path)
            return
        self.searching.add(path)
        job = self.documents.search_job(path)
        loop = asyncio.get_running_loop()

        def compile_candidates() -> None:
            try:
                result: tuple[Analysis, SearchRun] | None = job()
            except Exception:  # (the check turns a compiler bug into a diagnostic already)
                log.exception("compiling the search candidates of %s", path)
                result = None
            with contextlib.suppress(RuntimeError):  # the loop closed: the server is ending
                loop.call_soon_threadsafe(self.searched, path, result)

        threading.Thread(target=compile_candidates, name="cnnspec-search", daemon=True).start()

    def searched(self, path: Path, result: tuple[Analysis, SearchRun] | None) -> None:
        """A :meth:`search_later` thread is done: its analysis is ``path``'s when every file it
        read still has the text it read (published at once), and the next owed document's
        candidates are compiled."""
        self.searching.discard(path)
        previous = self.documents.analyses.get(path)
        if result is not None and self.documents.adopt(path, *result):
            publish: dict[Path, None] = {}
            self.took(path, previous, result[0], publish)
            for target in publish:
                self.publish(target)
        while self.search_again and not self.searching:
            waiting = self.search_again.pop()
            if waiting in self.documents.owed and waiting in self.documents.open:
                self.search_later(waiting)

    def publish(self, path: Path) -> None:
        try:
            found = [
                self.shown_diagnostic(item)
                for item in diagnostics.for_document(self.documents, path, self.encoding, self.uri)
            ]
        except Exception:  # never lose the connection over one conversion
            log.exception("converting diagnostics of %s", path)
            found = []
        analysis = self.documents.analyses.get(path)
        synced = self.uri(path)  # (the URI whose text was checked; its version is the analysis's)
        for uri in self.open_uris.get(path) or [synced]:  # a link and its target open: both
            version = analysis.version if analysis is not None and uri == synced else None
            self.text_document_publish_diagnostics(
                types.PublishDiagnosticsParams(uri=uri, diagnostics=found, version=version)
            )

    def fixed_text(self, path: Path, analysis: Analysis, text: str) -> tuple[str, list[fixes.Fix]]:
        """The document's text with every fix made, round after round as ``cnnspec validate
        --fix`` makes them (:func:`~cnnspec.lsp.fixes.fix_rounds`: a fix can uncover the next
        mistake), and the fixes; its current check (``analysis``) is the first round's, and each
        later round checks the text as :meth:`Documents.analyze` does: a block library on its
        own, a family file in each of its variants (not as a spec of one model)."""

        def diagnose(fixed: str) -> tuple[list[Diagnostic], str | None]:
            if fixed == text:
                return analysis.diagnostics, analysis.name

            def reader(asked: Path) -> str | None:
                return fixed if asked == path else self.documents.text(asked)

            if checking.is_library(fixed):
                again = self.documents._library(path, reader, None)
            else:
                again = checking.check_family(path, reader, None, SearchRun([]))
            return again.diagnostics, analysis.name

        return fixes.fix_rounds(text, diagnose)

    def close(self, uri: str) -> None:
        path = self.path(uri)
        opened = self.open_uris.get(path, [])
        if uri in opened:
            opened.remove(uri)
        if opened:  # still open under another URI (a link to it): its diagnostics go there now
            self.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=uri, diagnostics=[]))
            self.schedule(self.sync(opened[-1]))
            return
        self.open_uris.pop(path, None)
        handle = self.pending.pop(path, None)
        if handle is not None:
            handle.cancel()
        self.full.discard(path)
        dependents = self.documents.dependents(path)
        previous = self.documents.analyses.get(path)
        included = previous.files - {path} if previous is not None else set()
        self.documents.close(path)
        self.last_good.pop(path, None)
        self.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(uri=self.uri(path), diagnostics=[])
        )
        self.uris.pop(path, None)
        for other in dependents:  # they read the file from disk again
            self.check(other)
        for other in included & set(self.documents.open):  # without this spec's errors in them
            self.publish(other)

    # -- what a request reads ---------------------------------------------------------------
    def context(self, uri: str) -> tuple[Path, Analysis | None, SourceDoc | None]:
        """The document's path, the analysis that knows most about it (its own when it
        compiled, else an open spec's whose composed document includes it: a block library
        that spec ``use:``s, or a base it ``extends``), and a located doc of the text the
        editor holds (``None`` when there is none: see :meth:`located`)."""
        path = self.path(uri)
        for pending in list(self.pending):  # every open document as the editor holds it now
            self.flush(pending)
        own = self.documents.analyses.get(path)
        if own is not None and own.compiled is None:
            name = display_name(path)
            for other in self.documents.dependents(path):
                analysis = self.documents.analyses.get(other)
                if analysis is None or analysis.compiled is None or analysis.doc is None:
                    continue
                # A spec that read the file only through a backbone (whose spec `use:`s it)
                # compiled that spec apart: its own document holds none of the file's
                # positions, and every lookup by position there would find nothing.
                if workspaces.reads(analysis.doc, name) and self.documents.current(analysis):
                    return path, analysis, analysis.doc
        return path, own, self.located(path, own)

    def located(self, path: Path, own: Analysis | None) -> SourceDoc | None:
        """The located document of ``path`` whose positions are those of the text the editor
        holds: the latest analysis's, else the last one that loaded while no file it read
        has changed since. Never a document of another text: its positions would point at
        other lines (an answer about the wrong item is worse than none)."""
        for analysis in (own, self.last_good.get(path)):
            if analysis is not None and analysis.doc is not None and self.documents.current(analysis):
                return analysis.doc
        return None

    def automatic(
        self, uri: str, analysis: Analysis | None, doc: SourceDoc
    ) -> dict[SpecPath, frozenset[str]] | None:
        """The automatic names of the block calls in ``doc`` (``double_1``), read from the
        compiled tree of the analysis ``doc`` belongs to (its own, or the last that compiled
        it); ``None`` when no compiled tree is of this text (a tree of another text would name
        other calls)."""
        for candidate in (analysis, self.last_good.get(self.path(uri))):
            if candidate is not None and candidate.doc is doc and candidate.compiled is not None:
                return navigation.automatic_names(doc, candidate.compiled.ir)
        return None

    def others(self, doc: SourceDoc) -> list[rename_symbols.Other]:
        """The other open specs that compile as the editor holds them (not ``doc``), each
        with the automatic names of its block calls: what a rename or references read
        besides ``doc``."""
        return [
            (other.doc, navigation.automatic_names(other.doc, other.compiled.ir))
            for path, other in self.documents.analyses.items()
            if other.doc is not None
            and other.doc is not doc
            and other.compiled is not None
            and path in self.documents.open
            and self.documents.current(other)
        ]

    def compiled_ir(self, analysis: Analysis | None, doc: SourceDoc | None) -> ModelIR | None:
        """The compiled model of ``doc`` when ``analysis`` compiled that very document (else
        ``None``: the features that need its names resolve ``doc`` themselves)."""
        if analysis is None or analysis.compiled is None or doc is None or analysis.doc is not doc:
            return None
        return analysis.compiled.ir

    def index(self, analysis: Analysis | None) -> TreeIndex | None:
        if analysis is None or analysis.compiled is None:
            return None
        cached = self.indexes.get(id(analysis))
        if cached is not None and cached[0] is analysis:
            return cached[1]
        if len(self.indexes) > 64:
            self.indexes.clear()
        built = TreeIndex(analysis.compiled.ir, analysis.compiled.frozen_at_start())
        self.indexes[id(analysis)] = (analysis, built)
        return built

    def cursor(
        self, uri: str, position: types.Position
    ) -> tuple[Analysis | None, SourceDoc, Cursor, str, int] | None:
        """What is under ``position``: (analysis, doc, cursor, line text, code-point column)."""
        path, analysis, doc = self.context(uri)
        text = self.documents.text(path)
        if doc is None or text is None:
            return None
        lines = Lines(text, self.encoding)
        line = lines.line(position.line)
        if not line.strip() or line.lstrip().startswith("#"):
            return None  # a blank or comment line belongs to no value (path_at would pick the last)
        column = lines.codepoint(position.line, position.character)
        found = path_at(doc, display_name(path), position.line + 1, column + 1)
        if found is None:
            return None
        return analysis, doc, found, line, column


def _replacing(lines: Lines, row: int, column: int, s: completing.Suggestion) -> types.TextEdit | None:
    """The edit of a suggestion that replaces the ``s.replace`` code points before the cursor
    (a pattern such as ``stage3.block2``, several words to an editor), else ``None``."""
    if s.replace is None:
        return None
    start = types.Position(row, lines.units(row, max(column - s.replace, 0)))
    end = types.Position(row, lines.units(row, column))
    return types.TextEdit(types.Range(start, end), s.insert if s.insert is not None else s.label)


def _guard(default: T) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """A feature handler that logs an unexpected exception and answers ``default``."""

    def wrap(func: Callable[..., T]) -> Callable[..., T]:
        def handler(ls: CnnspecServer, params: Any) -> T:
            try:
                return func(ls, params)
            except Exception:
                log.exception("%s failed", func.__name__)
                return default

        handler.__name__ = func.__name__
        handler.__doc__ = func.__doc__
        return handler

    return wrap


def _before(a: types.Position, b: types.Position) -> bool:
    """Whether position ``a`` comes strictly before ``b``."""
    return (a.line, a.character) < (b.line, b.character)


#: The files whose changes on disk the server asks the client to report: specs and libraries.
WATCHED_FILES = "**/*.{yaml,yml}"


def _line_edits(lines: Lines, fixed: str) -> list[types.TextEdit]:
    """The edits that turn the document (``lines``) into ``fixed``: one per line that changed
    (a fix never adds or removes a line), so the editor keeps what the user sees elsewhere."""
    after = Lines(fixed, lines.encoding)
    return [
        types.TextEdit(
            types.Range(
                types.Position(row, lines.units(row, 0)), types.Position(row, lines.units(row, len(old)))
            ),
            new,
        )
        for row, (old, new) in enumerate(zip(lines.lines, after.lines, strict=True))
        if old != new
    ]


def create_server(debounce: float = DEFAULT_DEBOUNCE_S) -> CnnspecServer:
    """A server with every feature registered (not started)."""
    server = CnnspecServer(debounce)

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    @_guard(None)
    def did_open(ls: CnnspecServer, params: types.DidOpenTextDocumentParams) -> None:
        ls.schedule(ls.sync(params.text_document.uri), full=True)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    @_guard(None)
    def did_change(ls: CnnspecServer, params: types.DidChangeTextDocumentParams) -> None:
        ls.schedule(ls.sync(params.text_document.uri))

    @server.feature(types.TEXT_DOCUMENT_DID_SAVE)
    @_guard(None)
    def did_save(ls: CnnspecServer, params: types.DidSaveTextDocumentParams) -> None:
        """Saved: check it again with its search candidates (an unopened file: ignored)."""
        path = ls.path(params.text_document.uri)
        if path in ls.documents.open:
            ls.schedule(path, full=True)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    @_guard(None)
    def did_close(ls: CnnspecServer, params: types.DidCloseTextDocumentParams) -> None:
        ls.close(params.text_document.uri)

    @server.feature(types.INITIALIZED)
    @_guard(None)
    def initialized(ls: CnnspecServer, params: types.InitializedParams) -> None:
        """Ask the client to report changes on disk of the files a spec may read (`extends`,
        `use:`, a backbone's spec): Neovim and Helix report only the files a server asked for,
        so a library changed there left the open specs' diagnostics stale."""
        workspace = ls.client_capabilities.workspace
        watching = workspace.did_change_watched_files if workspace is not None else None
        if watching is None or not watching.dynamic_registration:
            return
        watcher = types.FileSystemWatcher(glob_pattern=WATCHED_FILES)
        ls.client_register_capability(
            types.RegistrationParams(
                registrations=[
                    types.Registration(
                        id="cnnspec-watched-files",
                        method=types.WORKSPACE_DID_CHANGE_WATCHED_FILES,
                        register_options=types.DidChangeWatchedFilesRegistrationOptions(watchers=[watcher]),
                    )
                ]
            )
        )

    @server.feature(types.WORKSPACE_DID_CHANGE_WATCHED_FILES)
    @_guard(None)
    def watched(ls: CnnspecServer, params: types.DidChangeWatchedFilesParams) -> None:
        """A file changed on disk: re-check the open specs that read it."""
        for change in params.changes:
            path = ls.path(change.uri)
            for other in ls.documents.dependents(path):
                ls.schedule(other)

    @server.feature(types.TEXT_DOCUMENT_HOVER)
    @_guard(None)
    def on_hover(ls: CnnspecServer, params: types.HoverParams) -> types.Hover | None:
        found = ls.cursor(params.text_document.uri, params.position)
        if found is None:
            return None
        analysis, doc, cursor, line, column = found
        compiled = analysis.compiled if analysis is not None else None
        text = hover.hover_text(doc, compiled, ls.index(analysis), cursor, line, column)
        output = rename_reading.output_key_at(
            doc, cursor, column, ls.automatic(params.text_document.uri, analysis, doc)
        )
        if output is not None:  # (a key naming a model output: the output it names)
            item = navigation.item_declared_at(doc, output[1])
            text = hover.output_text(doc, ls.index(analysis), output[0], item)
        if text is None:
            return None
        return types.Hover(types.MarkupContent(types.MarkupKind.Markdown, ls.shown(text)))

    @server.feature(types.TEXT_DOCUMENT_DEFINITION)
    @_guard(None)
    def on_definition(
        ls: CnnspecServer, params: types.DefinitionParams
    ) -> types.Location | list[types.Location] | None:
        """One location, or several for a glob freeze pattern (every item it covers)."""
        found = ls.cursor(params.text_document.uri, params.position)
        if found is None:
            return None
        analysis, doc, cursor, line, column = found
        automatic = ls.automatic(params.text_document.uri, analysis, doc)
        targets = navigation.definitions(
            doc, cursor, line, column, automatic, ir=ls.compiled_ir(analysis, doc), reader=ls.documents.text
        )
        output = rename_reading.output_key_at(doc, cursor, column, automatic) if not targets else None
        if output is not None:  # a key naming a model output (`training.outputs.cnt`): its id
            targets = [navigation.Target(output[1].file, output[1])]
        locations = []
        for target in targets:
            if target.loc is None:
                start = types.Position(0, 0)
                locations.append(types.Location(ls.uri(path_of(target.file)), types.Range(start, start)))
            else:
                locations.append(diagnostics.location(target.loc, ls.encoding, ls.uri))
        if not locations:
            return None
        return locations[0] if len(locations) == 1 else locations

    def file_text(ls: CnnspecServer, file: str) -> str | None:
        """The text of a file as locations name it: the editor's, else the one last read."""
        return ls.documents.text(path_of(file)) or rename_symbols.default_text(file)

    @server.feature(types.TEXT_DOCUMENT_REFERENCES)
    @_guard([])
    def on_references(ls: CnnspecServer, params: types.ReferenceParams) -> list[types.Location]:
        """Every reference to the name under the cursor, in the open specs and those of the
        workspace's folders that read its file, as a rename reads them (:mod:`.references`)."""
        found = ls.cursor(params.text_document.uri, params.position)
        if found is None:
            return []
        analysis, doc, cursor, line, column = found
        locs = referencing.references(
            doc,
            cursor,
            line,
            column,
            params.context.include_declaration,
            ls.automatic(params.text_document.uri, analysis, doc),
            row=params.position.line,
            others=ls.others(doc),
            folders=ls.folders(),
            reader=ls.documents.text,
            text_of=lambda file: file_text(ls, file),
        )
        split: dict[str, Lines] = {}
        return [
            types.Location(
                ls.uri(path_of(loc.file)),
                diagnostics.to_range(referencing.span(loc, file_lines(ls, loc.file, split))),
            )
            for loc in locs
        ]

    def file_lines(ls: CnnspecServer, file: str, split: dict[str, Lines]) -> Lines:
        """The lines of ``file`` (:func:`file_text`), split once per request (``split``): a
        name used a thousand times split its file a thousand times."""
        lines = split.get(file)
        if lines is None:
            lines = split[file] = Lines(file_text(ls, file) or "", ls.encoding)
        return lines

    def edit_range(
        ls: CnnspecServer, place: rename_symbols.Replacement, split: dict[str, Lines] | None = None
    ) -> types.Range:
        lines = file_lines(ls, place.file, {} if split is None else split)
        return types.Range(
            types.Position(place.line, lines.units(place.line, place.start)),
            types.Position(place.line, lines.units(place.line, place.end)),
        )

    @server.feature(types.TEXT_DOCUMENT_PREPARE_RENAME)
    @_guard(None)
    def on_prepare_rename(
        ls: CnnspecServer, params: types.PrepareRenameParams
    ) -> types.PrepareRenamePlaceholder | None:
        """The range and text of the renamable name under the cursor; ``None`` where nothing
        can be renamed (a kind, a glob, a comment, the zoo: :mod:`cnnspec.lsp.rename`)."""
        found = ls.cursor(params.text_document.uri, params.position)
        if found is None:
            return None
        analysis, doc, cursor, line, column = found
        automatic = ls.automatic(params.text_document.uri, analysis, doc)
        symbol, _ = rename_target.located(
            doc,
            cursor,
            line,
            column,
            automatic,
            lambda file: file_text(ls, file),
            params.position.line,
            ls.documents.text,  # (a backbone's spec open in the editor: its unsaved text)
        )
        if symbol is None:
            return None
        return types.PrepareRenamePlaceholder(edit_range(ls, symbol.at), symbol.name)

    @server.feature(types.TEXT_DOCUMENT_RENAME)
    def on_rename(ls: CnnspecServer, params: types.RenameParams) -> types.WorkspaceEdit | None:
        """The edits, file by file, that rename the name under the cursor (in the open specs
        and the workspace's; keyed by file URI: ``changes``, which needs no document version,
        so an unopened file's edit is as an open one's), checked by compiling every spec they
        touch; a refusal is a RequestFailed error whose message says why (the editor shows
        it). Any other exception is logged and answered with no edit."""
        try:
            found = ls.cursor(params.text_document.uri, params.position)
            if found is None:
                raise rename_symbols.RenameError("nothing to rename here")
            analysis, doc, cursor, line, column = found
            automatic = ls.automatic(params.text_document.uri, analysis, doc)
            changes = renaming.rename(
                doc,
                cursor,
                line,
                column,
                params.new_name,
                automatic=automatic,
                text_of=lambda file: file_text(ls, file),
                reader=ls.documents.text,
                others=ls.others(doc),
                row=params.position.line,
                folders=ls.folders(),
            )
        except rename_symbols.RenameError as exc:
            refusal = ls.shown(exc.message)  # (an untitled buffer named as the editor names it)
            raise JsonRpcException(refusal, code=int(types.LSPErrorCodes.RequestFailed)) from None
        except Exception:
            log.exception("on_rename failed")
            return None
        split: dict[str, Lines] = {}
        return types.WorkspaceEdit(
            changes={
                ls.uri(path_of(file)): [types.TextEdit(edit_range(ls, p, split), p.text) for p in places]
                for file, places in changes.items()
            }
        )

    @server.feature(
        types.TEXT_DOCUMENT_COMPLETION,
        types.CompletionOptions(trigger_characters=["{", "$", "[", ",", " "]),
    )
    @_guard(None)
    def on_completion(ls: CnnspecServer, params: types.CompletionParams) -> types.CompletionList | None:
        path, analysis, doc = ls.context(params.text_document.uri)
        text = ls.documents.text(path)
        if text is None or not looks_like_spec(text):
            return None
        lines = Lines(text, ls.encoding)
        row = params.position.line
        column = lines.codepoint(row, params.position.character)
        line = lines.line(row)
        if line.lstrip().startswith("#"):
            return None  # a comment
        cursor = path_at(doc, display_name(path), row + 1, column + 1) if doc is not None else None
        last = ls.last_good.get(path)
        known = last.doc if last is not None else None  # its blocks' names, not its positions
        found = completing.complete(
            doc,
            cursor,
            line,
            column,
            lines.lines[: max(row, 0)],
            known,
            path,
            ls.documents.text,  # (a backbone's spec open in the editor: its unsaved text)
            ls.compiled_ir(analysis, doc),
        )
        items = [
            types.CompletionItem(
                label=s.label,
                kind=_COMPLETION_KINDS.get(s.what),
                detail=s.detail or None,
                insert_text=s.snippet if s.replace is None else None,
                insert_text_format=types.InsertTextFormat.Snippet if s.snippet else None,
                text_edit=_replacing(lines, row, column, s),
                sort_text=f"{s.rank}{s.label}",  # the editor sorts by it: rank first, then label
            )
            for s in found
        ]
        return types.CompletionList(is_incomplete=False, items=items)

    @server.feature(
        types.TEXT_DOCUMENT_CODE_ACTION,
        types.CodeActionOptions(
            code_action_kinds=[types.CodeActionKind.QuickFix, types.CodeActionKind.SourceFixAll]
        ),
    )
    @_guard([])
    def on_code_action(ls: CnnspecServer, params: types.CodeActionParams) -> list[types.CodeAction]:
        """Quick fixes of the document's own diagnostics in the range asked about: the edits
        their hints spell out (:mod:`cnnspec.lsp.fixes`), from its current check; and
        ``source.fixAll`` (an editor's "fix all", or on save): every fix of the document at
        once, as ``cnnspec validate --fix`` makes them in one round, also offered beside the
        quick fixes where the document has two or more."""
        only = params.context.only
        quick = only is None or any(types.CodeActionKind.QuickFix.startswith(k) for k in only)
        every = only is not None and any(types.CodeActionKind.SourceFixAll.startswith(k) for k in only)
        if not quick and not every:
            return []
        path = ls.path(params.text_document.uri)
        ls.flush(path)
        analysis = ls.documents.analyses.get(path)
        text = ls.documents.text(path)
        if analysis is None or text is None or path not in ls.documents.open:
            return []
        lines = Lines(text, ls.encoding)

        def where(fix: fixes.Fix) -> types.Range:
            return types.Range(
                types.Position(fix.line, lines.units(fix.line, fix.start)),
                types.Position(fix.line, lines.units(fix.line, fix.end)),
            )

        asked = params.range
        actions = []
        for diagnostic in analysis.diagnostics if quick else ():
            fix = fixes.fix_for(diagnostic, analysis.name, text, lines)
            if fix is None:
                continue
            span = where(fix)
            if _before(asked.end, span.start) or _before(span.end, asked.start):
                continue
            edit = types.WorkspaceEdit(changes={params.text_document.uri: [types.TextEdit(span, fix.text)]})
            actions.append(
                types.CodeAction(
                    title=fix.title,
                    kind=types.CodeActionKind.QuickFix,
                    diagnostics=[
                        diagnostics.convert(diagnostic, analysis.name, text, ls.encoding, ls.uri, lines)
                    ],
                    edit=edit,
                    is_preferred=True,
                )
            )
        every_fix = fixes.fixes_of(analysis.diagnostics, analysis.name, text)
        if every_fix and (every or (quick and actions and len(every_fix) > 1)):
            fixed, made = ls.fixed_text(path, analysis, text)
            count = f"{len(made)} problem{'s' if len(made) > 1 else ''}"
            actions.append(
                types.CodeAction(
                    title=f"Fix all: {count} cnnspec can fix",
                    kind=types.CodeActionKind.SourceFixAll,
                    edit=types.WorkspaceEdit(changes={params.text_document.uri: _line_edits(lines, fixed)}),
                )
            )
        return actions

    @server.feature(types.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
    @_guard([])
    def on_symbols(ls: CnnspecServer, params: types.DocumentSymbolParams) -> list[types.DocumentSymbol]:
        path = ls.path(params.text_document.uri)
        ls.flush(path)
        own = ls.documents.analyses.get(path)
        text = ls.documents.text(path)
        if own is None or text is None or own.library:
            return []
        doc = ls.located(path, own)
        if doc is None:
            return []
        ir = own.compiled.ir if own.compiled is not None and doc is own.doc else None
        return symbols.outline(doc, display_name(path), text, ir, ls.encoding)

    return server


class _OneLine(logging.Filter):
    """A log record's exception as one line after its message, no traceback: pygls logs every
    message it cannot read with its traceback, which an editor's log then shows as a crash."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            record.msg = f"{record.getMessage()}: {type(exc).__name__}: {exc}"
            record.args = ()
            record.exc_info = None
            record.exc_text = None
        return True


def _one_line_logs() -> None:
    """pygls's warnings and errors on stderr, a line each (:class:`_OneLine`)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.WARNING)
    handler.addFilter(_OneLine())
    handler.setFormatter(logging.Formatter("%(name)s: %(levelname)s: %(message)s"))
    for name in ("pygls", "cnnspec.lsp"):
        logger = logging.getLogger(name)
        logger.addHandler(handler)
        logger.propagate = False


def serve(debounce: float = DEFAULT_DEBOUNCE_S) -> None:
    """Run the server on stdin/stdout until the client says ``exit``; the process exits 0
    only when ``shutdown`` came first, as LSP requires (pygls swallows its own exit code).
    A Ctrl-C or SIGTERM that ended it (pygls swallows its ``KeyboardInterrupt`` too, but the
    command line's handler noted it: :func:`cnnspec.fileio.note_stop`) is raised again, so
    ``cnnspec lsp`` ends as every command does: "interrupted", exit 130. When the editor
    stops reading the output, it ends as every command whose reader went away: exit 141."""
    from cnnspec.fileio import check_stop

    server = create_server(debounce)
    _one_line_logs()
    with wake_on_stop() as wake:  # (a stop ends the reading thread's wait: StopAwareStdin)
        server.stdin = StopAwareStdin(sys.stdin.buffer, wake)
        try:
            server.start_io(stdin=server.stdin)
        finally:
            server.stdin.close()
    check_stop()
    if server.output_gone:  # the command line's handler says it as exit 141, quietly
        raise BrokenPipeError(errno.EPIPE, "the editor stopped reading the language server's output")
    protocol = server.protocol
    sys.exit(0 if isinstance(protocol, _Protocol) and protocol.shut_down else 1)
