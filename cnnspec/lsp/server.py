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
import hashlib
import logging
import os
import sys
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote

from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pygls.lsp.server import LanguageServer
from pygls.protocol import LanguageServerProtocol
from pygls.protocol.language_server import lsp_method
from pygls.uris import to_fs_path

from cnnspec.lsp import completion as completing
from cnnspec.lsp import diagnostics, hover, navigation, symbols
from cnnspec.lsp.documents import Analysis, Documents, looks_like_spec, path_of
from cnnspec.lsp.locate import Cursor, TreeIndex, path_at
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
}


class _Protocol(LanguageServerProtocol):
    """pygls logs a request whose parameters it cannot read and drops it, so the client would
    wait for an answer forever; this protocol first answers it with the JSON-RPC error."""

    def structure_message(self, data: dict[str, Any]) -> Any:
        try:
            return super().structure_message(data)
        except JsonRpcException as exc:
            if isinstance(data, dict) and "method" in data and data.get("id") is not None:
                self._send_response(data["id"], error=exc.to_response_error())
            raise

    @lsp_method(types.TEXT_DOCUMENT_DID_CHANGE)
    def lsp_text_document__did_change(
        self, params: types.DidChangeTextDocumentParams
    ) -> Generator[Any, Any, None]:
        """pygls applies a change to its copy of the document before any handler runs, and a
        document never opened has none: the KeyError would reach the user as "Error in
        server". A change of an unknown document is a client's mistake; it is ignored."""
        if unquote(params.text_document.uri) not in self.workspace.text_documents:
            log.warning("ignoring a change of %s, which is not open", params.text_document.uri)
            return
        yield from super().lsp_text_document__did_change(params)

    @property
    def shut_down(self) -> bool:
        """Whether the client sent ``shutdown`` (the exit code of ``exit`` depends on it)."""
        return self._shutdown


class CnnspecServer(LanguageServer):
    """The cnnspec language server: documents, their analyses, and the debounce timers."""

    def __init__(self, debounce: float = DEFAULT_DEBOUNCE_S) -> None:
        super().__init__("cnnspec", __version__, protocol_cls=_Protocol)
        self.documents = Documents()
        self.debounce = debounce
        self.uris: dict[Path, str] = {}
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

    def sync(self, uri: str) -> Path:
        """Copy the editor's text of ``uri`` into the document store."""
        path = self.path(uri)
        document = self.workspace.get_text_document(uri)
        self.uris[path] = uri
        self.documents.set(path, document.source, document.version)
        return path

    @property
    def encoding(self) -> str:
        """The position encoding agreed with the client at ``initialize`` (UTF-16 before)."""
        try:
            chosen = self.server_capabilities.position_encoding
        except AttributeError:  # not initialized yet
            return UTF16
        return str(getattr(chosen, "value", chosen) or UTF16)  # an enum member or a plain string

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
        with contextlib.suppress(RuntimeError):  # RuntimeError: called outside the loop
            self.last_check[path] = asyncio.get_running_loop().time()
        checked = [path, *self.documents.dependents(path)]
        publish: dict[Path, None] = {}
        for target in checked:
            self.pending.pop(target, None)
            previous = self.documents.analyses.get(target)
            analysis = self.documents.analyze(target, full or target in self.full)
            self.full.discard(target)
            if previous is not None:  # a file it no longer reads loses the errors it put there
                publish.update(
                    dict.fromkeys(f for f in previous.files - analysis.files if f in self.documents.open)
                )
            if analysis.doc is not None:
                self.last_good[target] = analysis
            publish[target] = None
            publish.update(dict.fromkeys(f for f in analysis.files if f in self.documents.open))
        for target in publish:
            self.publish(target)

    def publish(self, path: Path) -> None:
        try:
            found = diagnostics.for_document(self.documents, path, self.encoding, self.uri)
        except Exception:  # never lose the connection over one conversion
            log.exception("converting diagnostics of %s", path)
            found = []
        analysis = self.documents.analyses.get(path)
        self.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(
                uri=self.uri(path), diagnostics=found, version=analysis.version if analysis else None
            )
        )

    def close(self, uri: str) -> None:
        path = self.path(uri)
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
        compiled, else an open spec's that includes it: a block library), and a located doc
        of the text the editor holds (``None`` when there is none: see :meth:`located`)."""
        path = self.path(uri)
        for pending in list(self.pending):  # every open document as the editor holds it now
            self.flush(pending)
        own = self.documents.analyses.get(path)
        if own is not None and own.compiled is None:
            for other in self.documents.dependents(path):
                analysis = self.documents.analyses.get(other)
                if analysis is None or analysis.compiled is None:
                    continue
                if self.documents.current(analysis):
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

    def index(self, analysis: Analysis | None) -> TreeIndex | None:
        if analysis is None or analysis.compiled is None:
            return None
        cached = self.indexes.get(id(analysis))
        if cached is not None and cached[0] is analysis:
            return cached[1]
        if len(self.indexes) > 64:
            self.indexes.clear()
        built = TreeIndex(analysis.compiled.ir)
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
        if text is None:
            return None
        return types.Hover(types.MarkupContent(types.MarkupKind.Markdown, text))

    @server.feature(types.TEXT_DOCUMENT_DEFINITION)
    @_guard(None)
    def on_definition(ls: CnnspecServer, params: types.DefinitionParams) -> types.Location | None:
        found = ls.cursor(params.text_document.uri, params.position)
        if found is None:
            return None
        _, doc, cursor, line, column = found
        target = navigation.definition(doc, cursor, line, column)
        if target is None:
            return None
        if target.loc is None:
            start = types.Position(0, 0)
            return types.Location(ls.uri(path_of(target.file)), types.Range(start, start))
        return diagnostics.location(target.loc, ls.encoding, ls.uri)

    @server.feature(types.TEXT_DOCUMENT_REFERENCES)
    @_guard([])
    def on_references(ls: CnnspecServer, params: types.ReferenceParams) -> list[types.Location]:
        found = ls.cursor(params.text_document.uri, params.position)
        if found is None:
            return []
        _, doc, cursor, _, _ = found
        locs = navigation.references(doc, cursor, params.context.include_declaration)
        return [diagnostics.location(loc, ls.encoding, ls.uri) for loc in locs]

    @server.feature(
        types.TEXT_DOCUMENT_COMPLETION,
        types.CompletionOptions(trigger_characters=["{", "$", "[", ",", " "]),
    )
    @_guard(None)
    def on_completion(ls: CnnspecServer, params: types.CompletionParams) -> types.CompletionList | None:
        path, _, doc = ls.context(params.text_document.uri)
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
            doc, cursor, line, column, lines.lines[: max(row, 0)], known, path, ls.documents.text
        )  # (a backbone's spec open in the editor: its unsaved text)
        items = [
            types.CompletionItem(
                label=s.label,
                kind=_COMPLETION_KINDS.get(s.what),
                detail=s.detail or None,
                insert_text=s.snippet,
                insert_text_format=types.InsertTextFormat.Snippet if s.snippet else None,
            )
            for s in found
        ]
        return types.CompletionList(is_incomplete=False, items=items)

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


def serve(debounce: float = DEFAULT_DEBOUNCE_S) -> None:
    """Run the server on stdin/stdout until the client says ``exit``; the process exits 0
    only when ``shutdown`` came first, as LSP requires (pygls swallows its own exit code).
    A Ctrl-C or SIGTERM that ended it (pygls swallows its ``KeyboardInterrupt`` too, but the
    command line's handler noted it: :func:`cnnspec.fileio.note_stop`) is raised again, so
    ``cnnspec lsp`` ends as every command does: "interrupted", exit 130."""
    from cnnspec.fileio import check_stop

    server = create_server(debounce)
    server.start_io()
    check_stop()
    protocol = server.protocol
    sys.exit(0 if isinstance(protocol, _Protocol) and protocol.shut_down else 1)
